//! Kafka topics consumed into tether's hub: each record a publish, its
//! offset committed for the consumer group once the publish is
//! acknowledged.
//!
//! - **Where a record goes**: the tether topic of its `tether-topic`
//!   header, else the mapping's for its Kafka topic
//!   ([`KafkaConfig::mapping`]), else its Kafka topic's own name; its
//!   value is the data (UTF-8), its `tether-event` header the event type.
//! - **Once**: the publish key is `kafka:TOPIC:PARTITION:OFFSET`; a
//!   record published again after a crash between its publish and the
//!   commit of its offset carries the same key, and a publisher that
//!   remembers keys (tether's hub does) makes no second event.
//! - **Skipped, counted and logged**: a record whose value or header is
//!   not UTF-8, or that has no value, or that the publisher refuses (a
//!   bad topic): its offset is committed with the others'.
//! - **In order per partition**: a partition's records are published one
//!   after another; a publish the hub cannot take now is tried again,
//!   after a backoff, before any later record of its partition.
//!
//! - **Shared in a group**: the consumer joins its group (`JoinGroup`,
//!   `SyncGroup`, the range assignor run by the group's leader) and reads
//!   only the partitions assigned to it; it heartbeats, and in a
//!   rebalance commits what was acknowledged and joins again; stopped,
//!   it leaves the group, so that the others take its partitions at once.
//!
//! The client is `rskafka` (pure Rust, on tokio), which fetches but
//! keeps no group: the membership and the offsets are the crate's own
//! requests to the group's coordinator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
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

mod answers;
mod assign;
mod config;
mod consumer;
mod error;
mod group;
mod membership;
mod record;
mod sasl;
mod stats;
mod transport;
mod wire;

pub use config::{KafkaConfig, MAX_TOPIC_LEN};
pub use consumer::{Consumer, KafkaWatch};
pub use error::Error;
pub use record::{EVENT_HEADER, TOPIC_HEADER};
pub use sasl::{Mechanism, Sasl};
pub use stats::{Health, Stats};

/// Not part of the API: the coordinator's answers as the consumer reads
/// them, for the fuzz target (`fuzz/fuzz_targets/kafka_answers.rs`).
#[doc(hidden)]
pub mod fuzz {
    /// Reads `body` as each answer the consumer parses (`FindCoordinator`,
    /// `OffsetFetch`, `OffsetCommit`, `JoinGroup`, `SyncGroup`,
    /// `Heartbeat`, `SaslHandshake`, `SaslAuthenticate`, and the members' subscriptions and assignments in
    /// them): never a panic, and a coordinator taken is a plain host and
    /// a port.
    pub fn answers(body: &[u8]) {
        if let Ok((host, port)) = crate::answers::coordinator(body) {
            debug_assert!(port > 0 && !host.is_empty() && !host.contains(['/', '@', ' ']));
        }
        let _ = crate::answers::committed(body);
        let _ = crate::answers::commit(body);
        if let Ok(joined) = crate::answers::joined(body) {
            debug_assert!(!joined.member.is_empty());
            for (_, metadata) in &joined.members {
                let _ = crate::answers::subscription(metadata);
            }
        }
        if let Ok(assigned) = crate::answers::synced(body) {
            let _ = crate::answers::assignment(&assigned);
        }
        let _ = crate::answers::acknowledged(body, "Heartbeat");
        let _ = crate::answers::sasl_handshake(body);
        let _ = crate::answers::sasl_authenticate(body);
        let _ = crate::answers::subscription(body);
        if let Ok(partitions) = crate::answers::assignment(body) {
            debug_assert!(partitions.iter().all(|(_, p)| *p >= 0));
        }
    }
}
