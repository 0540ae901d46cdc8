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
