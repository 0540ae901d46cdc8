//! What the loops' brokers and the bridge's thread share: the settings,
//! the channels to the thread, and the counters behind the status and the
//! metrics (atomics, never locks).

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tether_hub::{BrokerState, HubMessage, NodeLimits, Publish, UserAction};
use tokio::sync::mpsc;

use crate::NatsConfig;

/// How the bridge's thread reaches the event loops: post a message to one
/// loop, waking it (the server's `Handle::post`).
pub(crate) type Post = Arc<dyn Fn(usize, HubMessage) + Send + Sync>;

/// A node's [`NodeLimits`], as the bridge's thread holds it
/// ([`crate::limits`]).
#[derive(Clone)]
pub(crate) struct HubLimits(pub(crate) Arc<dyn NodeLimits>);

impl fmt::Debug for HubLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeLimits")
    }
}

/// To the bridge's thread, besides publishes.
#[derive(Debug)]
pub(crate) enum Control {
    /// A loop's first subscriber of the topic arrived: send it `Ready`,
    /// then the topic's events.
    Follow { topic: Arc<str>, loop_index: usize },
    /// A loop's last subscriber of the topic left.
    Unfollow { topic: Arc<str>, loop_index: usize },
    /// A member's first connection on this node arrived (`present`), or
    /// its last left.
    Member {
        topic: Arc<str>,
        member: Arc<str>,
        present: bool,
    },
    /// Start (`watch`) or stop posting the other nodes' members of the
    /// topic to the loop.
    Watch {
        topic: Arc<str>,
        loop_index: usize,
        watch: bool,
    },
    /// An action on a user's connections taken on this node, for the
    /// other nodes.
    UserAction(UserAction),
    /// The hub's connection counts and revocations, to share from now on.
    Limits(HubLimits),
    /// Revocations taken on this node, for every node.
    Revoke(Vec<(String, u64)>),
    /// Stop.
    Stop,
}

/// Settings, channels and counters.
pub(crate) struct Shared {
    pub(crate) config: NatsConfig,
    pub(crate) publish_tx: mpsc::Sender<Publish>,
    pub(crate) control_tx: mpsc::UnboundedSender<Control>,
    pub(crate) stats: Stats,
}

/// The counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Connected to NATS with the stream found (or made).
    pub(crate) up: AtomicBool,
    /// The bridge was shut down.
    pub(crate) stopped: AtomicBool,
    pub(crate) reconnects: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) added: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) read: AtomicU64,
    pub(crate) followed: AtomicU64,
    pub(crate) behind_checks: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn state(&self) -> BrokerState {
        if self.stopped() {
            BrokerState::Down
        } else if self.up.load(Ordering::Acquire) {
            BrokerState::Up
        } else {
            BrokerState::Connecting
        }
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
