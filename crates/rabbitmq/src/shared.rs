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

use crate::config::RabbitConfig;

/// What the loops' brokers and the bridge's thread share: the bus behind
/// every [`crate::RabbitBroker`] (made by [`crate::RabbitBridge`]).
pub struct RabbitBus {
    pub(crate) config: RabbitConfig,
    pub(crate) publish_tx: mpsc::Sender<Publish>,
    pub(crate) control_tx: mpsc::UnboundedSender<Control>,
    pub(crate) stats: Stats,
    /// What the last failure to connect said.
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
}

impl fmt::Debug for RabbitBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitBus")
            .field("server", &self.config.server())
            .finish_non_exhaustive()
    }
}

impl Bus for RabbitBus {
    const KIND: &'static str = "rabbitmq";
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

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The counters: those every bus keeps, and RabbitMQ's own.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Those every bus keeps (reached through `Deref`).
    pub(crate) bus: Counters,
    /// Connected to RabbitMQ, its channels open.
    pub(crate) up: AtomicBool,
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
