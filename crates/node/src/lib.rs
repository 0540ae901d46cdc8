//! A tether server assembled: the pub/sub hub (or the demo, or a
//! WebSocket echo) on one event loop per thread, with the hub's broker
//! on each loop (in memory, on disk, or over Redis or NATS to other
//! nodes), TLS, the admin listener, the application's backend hooks, and
//! SIGINT/SIGTERM (graceful shutdown) and SIGHUP (the settings, the
//! token key files and the certificate read again, in that order, on one
//! thread) handled: what `tether serve` runs, for a program of your own.
//!
//! ```no_run
//! use tether_node::{HubNode, NodeConfig};
//!
//! let mut config = NodeConfig::new("127.0.0.1:8080".parse()?);
//! config.hub.publish_token = Some("a-long-random-token".to_owned());
//! HubNode::new(config)?.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The configuration is plain Rust ([`NodeConfig`]): the server's
//! [`Config`], the hub's [`HubSettings`], and the node's parts; reading a
//! file or a command line into it is the caller's business.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Setting up a server reads files and numbers an operator gave: nothing
// may panic on them (tests are exempt).
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

/// The book's page on this crate, its Rust example run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/crates/node.md")]
struct BookExamples;

mod banner;
mod bus;
mod config;
mod error;
pub mod files;
#[cfg(any(feature = "outbox", feature = "kafka"))]
mod ingest;
#[cfg(feature = "kafka")]
mod kafka;
mod keys;
mod node;
#[cfg(feature = "outbox")]
mod outbox;
mod reload;
mod tls;

pub use banner::{Announce, Banner};
pub use bus::Bus;
pub use config::{Hooks, NodeApp, NodeConfig, Storage};
pub use error::NodeError;
pub use keys::{KeyFiles, load_keys, secret_warnings};
pub use node::{HubNode, Listening};
pub use reload::{Hangup, ReloadLog, SettingsReload};
#[cfg(feature = "tls")]
pub use tls::check_files as check_tls_files;
pub use tls::{Tls, TlsCert};

/// Re-exported: the hub's settings and shared state, and the server's
/// configuration, which a [`NodeConfig`] is made of.
pub use tether_apps::{DemoLogin, HubSettings, HubShared};
pub use tether_hub_durable::{DurableConfig, Fsync};
#[cfg(feature = "kafka")]
pub use tether_kafka::{KafkaConfig, Mechanism as KafkaSaslMechanism, Sasl as KafkaSasl};
#[cfg(feature = "outbox")]
pub use tether_outbox::{OutboxConfig, TableName};
pub use tether_server::{Config, Handle, Handshake};
