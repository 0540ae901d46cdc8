// The README's example is an axum app: a doctest with that feature on.
#![cfg_attr(feature = "axum", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "axum"),
    doc = "tether's WebSocket and SSE crates on tokio (see the README)."
)]
//!
//! # Features
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `ws` (default) | [`WebSocket`] over any `AsyncRead + AsyncWrite`, [`Acceptor::accept`] on a raw stream |
//! | `deflate` (default) | permessage-deflate, when the peer offers or accepts it |
//! | `hyper` | [`hyper::upgrade`]: the upgrade of a hyper 1.x request |
//! | `axum` | [`axum::WebSocketUpgrade`], [`axum::LastEventId`], `Sse` as a response |
//! | `sse` | [`sse::Sse`], an event-stream body with heartbeats |
//! | `client` | [`client::connect`] and [`client::EventSource`] |
//! | `tls` | `wss://` and `https://` for the clients (tokio-rustls) |
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The docs link to every feature's items (docs.rs builds with all of them,
// and CI checks those links); a build with only some features would find
// the others' links broken.
#![cfg_attr(
    not(all(
        feature = "ws",
        feature = "deflate",
        feature = "hyper",
        feature = "axum",
        feature = "sse",
        feature = "client"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

mod error;
pub use error::Error;

#[cfg(feature = "ws")]
mod accept;
#[cfg(feature = "ws")]
mod queue;
#[cfg(feature = "ws")]
mod received;
#[cfg(feature = "ws")]
mod ws;
#[cfg(feature = "ws")]
pub use accept::{Acceptor, Extensions};
#[cfg(feature = "ws")]
pub use received::Received;
#[cfg(feature = "ws")]
pub use tether_ws::{CloseCode, CloseFrame, Config, Message, MessageKind, MessageRef, State};
#[cfg(feature = "ws")]
pub use ws::{Options, Role, WebSocket};

#[cfg(feature = "hyper")]
pub mod hyper;

#[cfg(feature = "axum")]
pub mod axum;

#[cfg(feature = "sse")]
pub mod sse;

#[cfg(feature = "client")]
pub mod client;

/// Accepts a WebSocket on a raw stream with the default [`Acceptor`]
/// (see [`Acceptor::accept`]).
#[cfg(feature = "ws")]
pub async fn accept<S>(io: S) -> Result<WebSocket<S>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    Acceptor::default().accept(io).await
}
