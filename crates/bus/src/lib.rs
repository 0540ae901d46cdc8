//! The part every bus bridge of tether's pub/sub hub shares, written
//! once: `tether-redis` and `tether-nats` implement [`Bus`] for what
//! differs between them (how events are sequenced, replayed, sent and
//! received across nodes; how presence, limits and user actions travel),
//! and share the per-loop broker ([`BusBroker`]), its counters
//! ([`Counters`]), the messages to the bridge's threads ([`Control`]),
//! the limits' pace and [`Revoker`], user actions as fields
//! ([`action`]), and the start and join of a bridge's threads
//! ([`Threads`]); a bridge's lifecycle as a node drives it
//! ([`BusBridge`]); and what nodes exchange besides events, in one
//! encoding ([`wire`]). With the feature `runtime`, [`runtime`]: the
//! one bridge of the buses whose client runs on a tokio runtime of its
//! own (NATS, RabbitMQ), over what each implements of its broker. See
//! the README for an example.
//!
//! The layers: `tether-hub` (the broker contract) below this crate, the
//! bridges above it; the core crates never depend on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub mod action;
mod bridge;
mod broker;
mod control;
mod counters;
mod limits;
#[cfg(feature = "runtime")]
pub mod runtime;
mod threads;
pub mod wire;

use std::time::{SystemTime, UNIX_EPOCH};

pub use bridge::{BusBridge, ReplicaCount, ReplicaWatch, Replicas};
pub use broker::{Bus, BusBroker};
pub use control::{Control, Post, SharedLimits, answer_history};
pub use counters::{Counters, add};
pub use limits::{COUNTS_TTL, LIMITS_PERIOD, Revoker, add_count};
pub use threads::Threads;

/// Milliseconds since the Unix epoch (what presence entries expire at:
/// the nodes' clocks are compared through them).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
