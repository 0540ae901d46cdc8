//! The tether server: one `mio` event loop per thread that serves
//! WebSocket, Server-Sent Events and plain HTTP on one port.
//!
//! An [`App`] decides what each path is ([`Route`]) and reacts to
//! WebSocket messages and event-stream subscriptions through a [`Ctx`]
//! (the trait's documentation has a complete example). This crate knows no
//! application: the ready-made ones (the pub/sub hub, an echo, a chat
//! room, a clock feed, the demo) are in `tether-apps`, built on this
//! crate's public interface only. The protocol work is done by the
//! sans-IO crates `tether-handshake`, `tether-ws` and `tether-sse`; this
//! crate is the driver around them: sockets, buffers, timers and
//! backpressure.
//!
//! Design points, measured against an idle connection owning nothing:
//! one read buffer shared by the loop; output queued per connection only
//! while the socket pushes back, written with vectored writes; write
//! interest registered only while bytes are pending; a broadcast encoded
//! once and shared by reference count among its recipients; every deadline
//! in one timer heap that gives `Poll::poll` its timeout.
// One call needs `unsafe` (glibc's malloc_trim, `memory.rs`), allowed
// there alone with its SAFETY comment.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
/// The crate README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeExamples;

// Everything here handles bytes and numbers from the network: nothing may
// panic on them. These lints make every exception visible, each `allow`
// with its reason beside it (tests are exempt).
mod access;
mod app;
mod cluster;
mod config;
mod http;
mod loops;
// Used by the HTTP/3 endpoint, which comes with TLS.
#[cfg(feature = "tls")]
mod memory;
mod output;
mod proxy;
mod request;
mod server;
mod timers;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
mod tls_session;
mod transport;

pub use access::{AccessEntry, AccessLog, Opened, SessionBytes, SessionEnd, Transport, Version};
pub use app::{
    App, BeforeBody, CloseReason, ConnId, Ctx, Encoded, Readiness, Reply, Request, Response, Route,
};
pub use cluster::Cluster;
pub use config::{Config, Handshake};
pub use loops::{Handle, Poster, StatsSnapshot};
pub use proxy::{Cidr, CidrError, MAX_HOPS, TrustedProxies};
pub use server::Server;
pub use tether_ws::{CloseCode, Message, MessageKind, MessageRef};
/// One TLS session over bytes in memory, for tests and the fuzz targets;
/// not part of the server's API.
#[cfg(feature = "tls")]
#[doc(hidden)]
pub use tls_session::harness as tls_harness;

/// The connection whose work the calling thread is doing, if it is an
/// event loop's thread inside one connection's work (reading it, writing
/// it, or an application callback for it): for a log line written then
/// to name the connection. Shown as [`ConnId`]'s `Display` writes it.
pub fn serving_connection() -> Option<ConnId> {
    server::guard::serving()
}

/// The sans-IO HTTP/2 crate the server's HTTP/2 sessions run on, for its
/// [`Config`](h2::connection::Config) ([`Config::h2`]).
pub use tether_h2 as h2;

/// permessage-deflate (RFC 7692): register a
/// [`DeflateConfig`](deflate::DeflateConfig) with
/// [`Handshake::negotiator`](tether_handshake::ServerConfig::negotiator).
/// Cargo feature `deflate`, on by default.
#[cfg(feature = "deflate")]
pub use tether_deflate as deflate;

/// The examples of the book's page on embedding the crates
/// (docs/src/crates/examples.md), run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/crates/examples.md")]
struct BookExamples;
