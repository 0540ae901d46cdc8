//! A WebSocket connection (RFC 6455) as a sans-IO state machine, for both
//! the server and the client role.
//!
//! [`Connection`] takes bytes in and gives events out; it writes outgoing
//! frames to a buffer the caller owns and reads time only from the `now`
//! the caller passes. It reassembles fragmented messages, validates text as
//! it arrives (failing fast on bad UTF-8), answers pings, runs the close
//! handshake, enforces the size limits of [`Config`] and keeps the
//! keepalive timers. A negotiated [`Extension`] (such as permessage-deflate)
//! can transform message payloads.
//!
//! The handshake is `tether-handshake`'s job and the socket the caller's:
//! this crate starts with an open connection.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod config;
mod connection;
mod error;
mod event;
mod extension;

pub use config::{Config, MaskSource, Role};
pub use connection::{Connection, SharedConfig, State};
pub use error::{Error, Limit};
pub use event::{CloseFrame, ControlPayload, Event, Incoming, Message, MessageKind, MessageRef};
pub use extension::{Extension, ExtensionError};
pub use tether_frame::{CloseCode, OpCode, Rsv};
