//! The bridge's status and metrics, from its counters (atomics, never
//! locks; those every bus keeps are `tether_bus::Counters`, NATS's own
//! [`NatsCounters`]), and what the bridge's tasks take from `tether-bus`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use tether_bus::{Control, Post, SharedLimits, add};
use tether_hub::BrokerState;

use crate::Nats;

/// The counters only NATS's bridge keeps, beside those every bus keeps.
#[derive(Debug, Default)]
pub struct NatsCounters {
    /// Checks of a topic's continuity made because the node's reader was
    /// far behind.
    pub(crate) behind_checks: AtomicU64,
}

/// The counters of the bridge ([`tether_bus::runtime::Stats`] over NATS).
pub(crate) type Stats = tether_bus::runtime::Stats<Nats>;

impl Status {
    /// The status the counters give now.
    pub(crate) fn of(stats: &Stats) -> Status {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Status {
            state: stats.state(),
            reconnects: get(&stats.reconnects),
            errors: get(&stats.errors),
            resyncs: get(&stats.resyncs),
            events_added: get(&stats.added),
            duplicates: get(&stats.duplicates),
            publishes_refused: get(&stats.refused),
            events_read: get(&stats.read),
            followed_topics: get(&stats.followed),
            behind_checks: get(&stats.own.behind_checks),
        }
    }
}

/// The bridge's connection and counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Up (connected, stream ready), connecting, or down (shut down).
    pub state: BrokerState,
    /// Connections to NATS made again after being lost.
    pub reconnects: u64,
    /// Failed requests and lost connections.
    pub errors: u64,
    /// Topics resynchronised (a new `Ready`) after continuity was lost.
    pub resyncs: u64,
    /// Events this node added to the stream.
    pub events_added: u64,
    /// Keyed publishes of this node that JetStream found duplicate.
    pub duplicates: u64,
    /// Publishes refused (NATS unreachable, or it refused the publish).
    pub publishes_refused: u64,
    /// Events read from the stream and delivered to this node's loops.
    pub events_read: u64,
    /// Topics this node follows.
    pub followed_topics: u64,
    /// Checks of a topic's continuity made because the node's reader was
    /// far enough behind that the stream might have trimmed unread events.
    pub behind_checks: u64,
}

impl Status {
    /// Appends the bridge's metrics in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "tether_nats_connected",
            "gauge",
            "Whether the connection to NATS is up with the stream ready (1) or not (0).",
            u64::from(self.state == BrokerState::Up),
        );
        metric(
            "tether_nats_reconnects_total",
            "counter",
            "Connections to NATS made again after being lost.",
            self.reconnects,
        );
        metric(
            "tether_nats_errors_total",
            "counter",
            "Failed requests to NATS and lost connections.",
            self.errors,
        );
        metric(
            "tether_nats_resyncs_total",
            "counter",
            "Topics resynchronised after continuity was lost.",
            self.resyncs,
        );
        metric(
            "tether_nats_events_added_total",
            "counter",
            "Events this node added to the stream.",
            self.events_added,
        );
        metric(
            "tether_nats_duplicates_total",
            "counter",
            "Keyed publishes of this node whose key JetStream remembered (nothing added).",
            self.duplicates,
        );
        metric(
            "tether_nats_publishes_refused_total",
            "counter",
            "Publishes refused (NATS unreachable, or it refused them).",
            self.publishes_refused,
        );
        metric(
            "tether_nats_events_read_total",
            "counter",
            "Events read from the stream and delivered to this node's loops.",
            self.events_read,
        );
        metric(
            "tether_nats_behind_checks_total",
            "counter",
            "Topic continuity checks made because this node's reader was far behind the stream.",
            self.behind_checks,
        );
        metric(
            "tether_nats_followed_topics",
            "gauge",
            "Topics this node follows.",
            self.followed_topics,
        );
    }
}
