//! WebSocket and Server-Sent Events clients on tether's protocol crates.
//!
//! - [`WebSocket`]: a blocking WebSocket client (RFC 6455) over
//!   `std::net::TcpStream`: connect by URL, subprotocols, extra headers,
//!   the permessage-deflate offer (feature `deflate`, on by default),
//!   automatic pongs, the close handshake, and optional reconnection with
//!   exponential [`Backoff`].
//! - [`NonBlockingClient`]: the same client for an event loop the caller
//!   owns (mio or any readiness loop), over any non-blocking `Read +
//!   Write` stream; see its calling contract.
//! - [`EventSource`]: a blocking Server-Sent Events client with the WHATWG
//!   `EventSource` semantics (redirects, `Last-Event-ID`, `retry`, 204,
//!   content type checks, chunked and `Content-Length` bodies).
//! - [`H2Connection`]: HTTP/2 (h2c with prior knowledge for `http://` and
//!   `ws://`, ALPN `h2` over TLS for `https://` and `wss://`) carrying
//!   event streams ([`H2EventStream`]) and RFC 8441 WebSockets
//!   ([`H2WebSocket`]) as streams of one connection, on `tether-h2`.
//!
//! The protocol work is `tether-handshake`'s, `tether-ws`'s, `tether-sse`'s
//! and `tether-deflate`'s; this crate adds sockets, timeouts and policy.
//! Masking keys and handshake nonces come from the operating system's
//! random source (`getrandom`), as RFC 6455 section 10.3 requires.
//! `wss://` and `https://` URLs use TLS ([`tls`]: rustls, feature `tls`,
//! on by default), checked against the system's trusted roots unless the
//! builder is given a configuration of its own.
//!
//! # Example
//!
//! ```no_run
//! use tether_client::{CloseCode, Event, EventSource, WebSocket};
//!
//! let mut ws = WebSocket::builder("ws://127.0.0.1:9001/echo").protocol("chat").connect()?;
//! ws.send_text("hello")?;
//! if let Event::Message(reply) = ws.recv()? {
//!     println!("echo: {reply:?}");
//! }
//! ws.close(CloseCode::NORMAL, "")?;
//!
//! for event in EventSource::connect("http://127.0.0.1:9001/clock")?.take(2) {
//!     println!("{}", event?.data());
//! }
//! # Ok::<(), tether_client::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod error;
mod event;
mod fetch;
mod h2;
#[cfg(feature = "tls")]
mod h3;
mod http;
mod nonblocking;
mod rng;
mod session;
mod sse;
pub mod tls;
mod transport;
mod url;
mod websocket;

pub use builder::{DEFAULT_MAX_QUEUED_ANSWERS, DEFAULT_READ_BUDGET, WebSocketBuilder};
pub use error::Error;
pub use event::Event;
pub use fetch::{FetchOptions, Fetched, get};
pub use h2::{H2Builder, H2Connection, H2EventStream, H2WebSocket, WsOptions};
#[cfg(feature = "tls")]
pub use h3::{H3Builder, H3EventStream};
pub use nonblocking::NonBlockingClient;
pub use sse::{DEFAULT_MAX_RESPONSE_HEAD, EventSource, EventSourceBuilder, ReadyState, SseEvent, StopHandle};
pub use tether_backoff::Backoff;
pub use tether_client_core::url::{Scheme, Url};
pub use tether_sse::{Limits as SseLimits, MessageEvent};
pub use tether_ws::{CloseCode, CloseFrame, Config as WsConfig, ControlPayload, Message, MessageKind, State};
pub use url::resolve;
pub use websocket::{Messages, WebSocket};

/// permessage-deflate (RFC 7692), for [`WebSocketBuilder::deflate_offer`].
#[cfg(feature = "deflate")]
pub use tether_deflate as deflate;

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

#[cfg(test)]
mod tests {
    /// Clients can be moved to another thread (a load generator's workers).
    #[test]
    fn clients_are_send() {
        fn send<T: Send>() {}
        send::<crate::WebSocket>();
        send::<crate::NonBlockingClient<std::net::TcpStream>>();
        send::<crate::EventSource>();
        send::<crate::StopHandle>();
        send::<crate::Error>();
        send::<crate::H2Connection>();
        send::<crate::H2EventStream>();
        send::<crate::H2WebSocket>();
    }
}
