//! The bridge's status and metrics, from its counters (atomics, never
//! locks; those every bus keeps are `tether_bus::Counters`), and what the
//! bridge's tasks take from `tether-bus`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use tether_bus::{Control, Post, add};
use tether_hub::BrokerState;

use crate::RabbitMq;

/// The counters of the bridge ([`tether_bus::runtime::Stats`] over
/// RabbitMQ, which keeps none of its own).
pub(crate) type Stats = tether_bus::runtime::Stats<RabbitMq>;

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
        }
    }
}

/// The bridge's connection and counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Up (connected, channels open), connecting, or down (shut down).
    pub state: BrokerState,
    /// Connections to RabbitMQ made again after being lost.
    pub reconnects: u64,
    /// Failed requests and lost connections.
    pub errors: u64,
    /// Topics resynchronised (a new `Ready`) after continuity was lost.
    pub resyncs: u64,
    /// Events this node added to the streams.
    pub events_added: u64,
    /// Keyed publishes of this node that the stream held already (within the backlog).
    pub duplicates: u64,
    /// Publishes refused (RabbitMQ unreachable, or it refused the publish).
    pub publishes_refused: u64,
    /// Events read from the streams and delivered to this node's loops.
    pub events_read: u64,
    /// Topics this node follows.
    pub followed_topics: u64,
}

impl Status {
    /// Appends the bridge's metrics in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "tether_rabbitmq_connected",
            "gauge",
            "Whether the connection to RabbitMQ is up with its channels open (1) or not (0).",
            u64::from(self.state == BrokerState::Up),
        );
        metric(
            "tether_rabbitmq_reconnects_total",
            "counter",
            "Connections to RabbitMQ made again after being lost.",
            self.reconnects,
        );
        metric(
            "tether_rabbitmq_errors_total",
            "counter",
            "Failed requests to RabbitMQ and lost connections.",
            self.errors,
        );
        metric(
            "tether_rabbitmq_resyncs_total",
            "counter",
            "Topics resynchronised after continuity was lost.",
            self.resyncs,
        );
        metric(
            "tether_rabbitmq_events_added_total",
            "counter",
            "Events this node added to the streams.",
            self.events_added,
        );
        metric(
            "tether_rabbitmq_duplicates_total",
            "counter",
            "Keyed publishes of this node found duplicate in the stream's backlog (delivered once).",
            self.duplicates,
        );
        metric(
            "tether_rabbitmq_publishes_refused_total",
            "counter",
            "Publishes refused (RabbitMQ unreachable, or it refused them).",
            self.publishes_refused,
        );
        metric(
            "tether_rabbitmq_events_read_total",
            "counter",
            "Events read from the streams and delivered to this node's loops.",
            self.events_read,
        );
        metric(
            "tether_rabbitmq_followed_topics",
            "gauge",
            "Topics this node follows.",
            self.followed_topics,
        );
    }
}
