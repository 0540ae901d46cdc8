//! Sans-IO HTTP/2 (RFC 9113) and HPACK (RFC 7541).
//!
//! This crate does no I/O and keeps no clock: bytes go in, frames and
//! header lists come out, and everything it encodes is appended to a
//! caller's buffer. Every size it reads from the network is checked against
//! a limit before anything is allocated for it.
//!
//! [`frame`] reads and writes the frames of RFC 9113 §4 and §6: a
//! [`frame::FrameDecoder`] cuts a byte stream into typed frames that borrow
//! their payload, checks each against its type's rules, and says for every
//! breach whether it ends the connection or one stream and with which
//! [`ErrorCode`].
//!
//! [`connection`] is the server side of a connection built on both: the
//! client preface, SETTINGS, streams and their state, request validation,
//! flow control both ways, and the limits that keep a hostile client from
//! exhausting the server (rapid reset, floods of SETTINGS, PING,
//! CONTINUATION or empty frames).
//!
//! [`client`] is the client side: a [`client::ClientConnection`] opens
//! streams (requests, and RFC 8441 extended CONNECTs for WebSockets) and
//! keeps to the server's limits, with the same protections against a
//! hostile peer.
//!
//! [`hpack`] is the header compression of RFC 7541: an encoder and a
//! decoder with their tables, Huffman coding and the limits a decoder needs
//! against a hostile peer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub mod client;
pub mod connection;
mod error;
pub mod frame;
pub mod hpack;

pub use error::{Error, ErrorCode, Misuse, Violation};
