//! Sans-IO HTTP/3 (RFC 9114) framing and QPACK (RFC 9204).
//!
//! This crate does no I/O, keeps no clock and knows nothing of QUIC: the
//! caller reads each QUIC stream and hands its bytes in; frames, settings,
//! header fields and errors come out, and everything it encodes is
//! appended to a caller's buffer. Every length it reads from the network is
//! checked against a limit before anything is allocated for it.
//!
//! - [`varint`]: QUIC variable-length integers (RFC 9000 §16), whole and
//!   incrementally.
//! - [`frame`]: the frames of RFC 9114 §7, an incremental
//!   [`frame::FrameDecoder`] that buffers at most a limit for a frame and
//!   streams DATA payloads out in pieces, and the encoder.
//! - [`settings`]: the SETTINGS frame's parameters and their rules.
//! - [`stream`]: the unidirectional stream types, the rules about which
//!   may be opened once, and the control stream's state machine.
//! - [`message`]: the framing a request and a response share on a
//!   request stream (heads, DATA, trailers), which [`request`] and
//!   [`response`] read.
//! - [`request`]: the framing rules of a request stream, as a server reads
//!   it.
//! - [`qpack`]: header compression, with a decoder that keeps a bounded
//!   dynamic table and refuses blocked-stream bombs, and a static-only
//!   encoder.
//! - [`head`]: request and trailer sections checked (RFC 9114 §4.2,
//!   §4.3.1), extended CONNECT (RFC 9220) included.
//! - [`response`]: the framing rules of a request stream's response, as
//!   a client reads it.
//! - [`client`]: the client side of a connection, sans-IO: the control
//!   stream's start and request heads out, the server's stream bytes in,
//!   responses (head, body pieces, trailers, end) out.
//! - [`session`]: the server side of a connection, sans-IO: stream bytes
//!   in by QUIC stream ID, typed requests out, responses in, the bytes of
//!   each stream (the control and QPACK decoder streams included) out;
//!   WebTransport sessions, their streams and datagrams included.
//! - [`webtransport`]: WebTransport over HTTP/3's constants, stream
//!   prefixes, capsules and HTTP datagrams (RFC 9297).
//!
//! Every error the peer can cause is an [`Error`]: the HTTP/3 or QPACK
//! [`ErrorCode`] to close the connection with, and the [`Violation`] that
//! says which rule was broken.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub mod client;
mod error;
pub mod frame;
mod frame_types;
pub mod head;
pub mod message;
pub mod qpack;
pub mod request;
pub mod response;
pub mod session;
pub mod settings;
pub mod stream;
mod stream_ids;
pub mod varint;
pub mod webtransport;

pub use error::{Error, ErrorCode, Misuse, Violation};
