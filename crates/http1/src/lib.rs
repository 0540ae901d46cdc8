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
mod request;
mod response;
pub mod syntax;

pub use body::{BodyDecoder, Framing};
pub use encode::{ChunkedEncoder, Response, reason_phrase, write_continue, write_request};
pub use error::Error;
pub use httparse::{EMPTY_HEADER, Header};
pub use request::{RequestDecoder, RequestHead, TargetForm, parse_request};
pub use response::{ResponseDecoder, ResponseHead, parse_response};

/// The result of parsing something that may not have fully arrived yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Complete, with what was parsed.
    Complete(T),
    /// More bytes are needed; this is not an error.
    Partial,
}

/// The HTTP versions spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0: no chunked coding, no keep-alive unless asked for.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// What a peer can make a decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest head (request or status line and header section), and
    /// the largest trailer section. 16 KiB; more is 431.
    pub max_head: usize,
    /// The largest body. 1 MiB; more is 413.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_body: 1 << 20,
        }
    }
}

impl Limits {
    /// The defaults: a 16 KiB head, a 1 MiB body.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Another head (and trailer section) limit.
    pub fn max_head(mut self, bytes: usize) -> Limits {
        self.max_head = bytes;
        self
    }

    /// Another body limit.
    pub fn max_body(mut self, bytes: u64) -> Limits {
        self.max_body = bytes;
        self
    }
}
