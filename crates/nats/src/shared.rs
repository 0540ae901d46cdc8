//! What the loops' brokers and the bridge's thread share: the settings,
//! the channels to the thread, and the counters behind the status and the
//! metrics (atomics, never locks; those every bus keeps are
//! `tether_bus::Counters`).

use std::fmt::{self, Write as _};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tether_bus::{Bus, Counters};
pub(crate) use tether_bus::{Control, Post, SharedLimits, add};
use tether_hub::{BrokerState, Publish};
use tokio::sync::mpsc;

use crate::config::NatsConfig;

/// What the loops' brokers and the bridge's thread share: the bus behind
/// every [`crate::NatsBroker`] (made by [`crate::NatsBridge`]).
pub struct NatsBus {
    pub(crate) config: NatsConfig,
    pub(crate) publish_tx: mpsc::Sender<Publish>,
    pub(crate) control_tx: mpsc::UnboundedSender<Control>,
    pub(crate) stats: Stats,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("server", &self.config.server())
            .finish_non_exhaustive()
    }
}

impl Bus for NatsBus {
    const KIND: &'static str = "nats";
    type Status = Status;

    fn counters(&self) -> &Counters {
        &self.stats.bus
    }

    fn connected(&self) -> bool {
        self.stats.up.load(Ordering::Acquire)
    }

    fn publishing(&self) -> bool {
        self.connected()
    }

    fn try_publish(&self, publish: Publish) -> bool {
        self.publish_tx.try_send(publish).is_ok()
    }

    fn control(&self, message: Control) {
        let _ = self.control_tx.send(message);
    }

    fn status(&self) -> Status {
        self.stats.status()
    }

    fn write_metrics(&self, out: &mut String) {
        self.stats.status().write_metrics(out);
    }
}

/// The counters: those every bus keeps, and NATS's own.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Those every bus keeps (reached through `Deref`).
    pub(crate) bus: Counters,
    /// Connected to NATS with the stream found (or made).
    pub(crate) up: AtomicBool,
    pub(crate) behind_checks: AtomicU64,
}

impl Deref for Stats {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.bus
    }
}

impl Stats {
    pub(crate) fn state(&self) -> BrokerState {
        self.bus.state(self.up.load(Ordering::Acquire))
    }

    pub(crate) fn status(&self) -> Status {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Status {
            state: self.state(),
            reconnects: get(&self.reconnects),
            errors: get(&self.errors),
            resyncs: get(&self.resyncs),
            events_added: get(&self.added),
            duplicates: get(&self.duplicates),
            publishes_refused: get(&self.refused),
            events_read: get(&self.read),
            followed_topics: get(&self.followed),
            behind_checks: get(&self.behind_checks),
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
