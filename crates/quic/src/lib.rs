//! QUIC for tether's event loop: a `quinn-proto` endpoint driven sans-IO,
//! serving HTTP/3 through tether-h3's session.
//!
//! [`QuicServer`] owns no socket and reads no clock: the caller's loop
//! hands it each datagram its UDP socket received and the current instant,
//! sends the datagrams it gives back, and calls it again at the instant
//! [`QuicServer::next_timeout`] names. TLS is rustls with the ring
//! provider, configured from the TCP listener's `rustls::ServerConfig`
//! with ALPN `h3`. Each connection's streams feed a
//! [`tether_h3::session::ServerSession`]; its requests come out as
//! [`ServerEvent::Session`], and responses go back in by connection and
//! stream.
//!
//! - [`client`]: the other end, an HTTP/3 client connection
//!   ([`QuicClient`]) driven the same way, for tests, the load generator
//!   and the client crate.
//! - [`config`]: the limits ([`QuicConfig`]) and the quinn-proto
//!   configuration made from them.
//! - [`server`]: the endpoint ([`QuicServer`]) and its events.
//! - [`routing`]: connection IDs that name the server holding their
//!   connection, and reading that back from a datagram.
//! - [`QuicStats`]: what the server counts ([`QuicServer::stats`]).
//!
//! Each connection's deadline is kept in a min-heap keyed by connection,
//! and only the connections something touched are asked for datagrams,
//! so that a loop turn costs the same however many connections are idle.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub mod client;
pub mod config;
mod connection;
mod deadlines;
mod event;
pub mod routing;
mod send_queue;
pub mod server;
mod stats;

pub use client::{ClientError, ClientEvent, QuicClient};
pub use config::{ALPN_H3, ConfigError, QuicConfig};
pub use quinn_proto::{ConnectionHandle, Transmit};
pub use server::{QuicServer, SendError, ServerEvent};
pub use stats::QuicStats;
