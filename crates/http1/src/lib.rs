#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! - Requests: [`RequestDecoder`] (see its calling contract), or
//!   [`parse_request`] for a head alone; [`RequestHead`] with its
//!   [`TargetForm`] and [`Framing`].
//! - Responses: [`Response`], [`ChunkedEncoder`], [`write_continue`],
//!   [`reason_phrase`].
//! - Clients: [`write_request`], [`ResponseDecoder`] (see its calling
//!   contract) or [`parse_response`], [`ResponseHead`].
//! - [`syntax`]: tokens, optional whitespace, lists, decimals, for other
//!   crates that read or write HTTP fields.
//! - [`BodyDecoder`] frames a body on its own; [`Limits`] bounds what a
//!   peer can make the decoders hold; [`Error`] is the one error type.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod body;
mod encode;
mod error;
mod exchange;
mod fields;
mod limits;
mod request;
mod response;
mod status;
pub mod syntax;
mod version;

pub use body::{BodyDecoder, Framing};
pub use encode::{ChunkedEncoder, Response, reason_phrase, write_continue, write_request};
pub use error::Error;
pub use httparse::{EMPTY_HEADER, Header};
pub use limits::Limits;
pub use request::{RequestDecoder, RequestHead, TargetForm, parse_request};
pub use response::{ResponseDecoder, ResponseHead, parse_response};
pub use status::Status;
pub use version::Version;
