#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! - Encoding: [`Event`] (one event, borrowed fields) with
//!   [`Event::encode`], plus [`comment`], [`heartbeat`] and [`retry`] for
//!   lines written between events.
//! - Parsing: [`Parser`] (incremental, sans-IO; see its calling contract),
//!   which yields [`Item`]s: [`MessageEvent`]s and `retry` values.
//! - [`Limits`] bound what a peer can make the parser hold; [`Error`] is
//!   the one error type.
//!
//! `no_std` with `alloc`, no dependencies, no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The workspace's no-panic policy is not yet applied here: its warnings are
// being fixed one at a time, and this line goes with the last of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod encode;
mod error;
mod parse;
mod scan;

pub use encode::{Event, comment, heartbeat, retry};
pub use error::Error;
pub use parse::{Item, Limits, MessageEvent, Parser};
