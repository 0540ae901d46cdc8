//! What the consumer counts and how it is doing: lock-free counters for
//! `/metrics`, and its health for `/readyz`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The consumer's counters since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) consumed: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) kafka_errors: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) rebalances: AtomicU64,
    pub(crate) partitions: AtomicU64,
    pub(crate) lag: AtomicU64,
}

/// A copy of the consumer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records read from Kafka (a record read again after a restart
    /// counts again).
    pub consumed: u64,
    /// Records published (acknowledged by the publisher, or recognised as
    /// a duplicate).
    pub published: u64,
    /// Records skipped: a value or header not UTF-8, no value, or
    /// refused by the publisher (a bad topic, too large). Their offsets
    /// are committed with the others'.
    pub failed: u64,
    /// Publishes tried again (the publisher could not take them now).
    pub retries: u64,
    /// Kafka errors: brokers unreachable, requests refused or timed out.
    pub kafka_errors: u64,
    /// Offset commits the group's coordinator acknowledged.
    pub commits: u64,
    /// Rebalances of the group this consumer took part in (after the
    /// first join).
    pub rebalances: u64,
    /// Partitions assigned to this consumer now.
    pub partitions: u64,
    /// Records behind the partitions' high watermarks, summed, at the
    /// last fetch (as the brokers report them).
    pub lag: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            consumed: self.consumed.load(Relaxed),
            published: self.published.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retries: self.retries.load(Relaxed),
            kafka_errors: self.kafka_errors.load(Relaxed),
            commits: self.commits.load(Relaxed),
            rebalances: self.rebalances.load(Relaxed),
            partitions: self.partitions.load(Relaxed),
            lag: self.lag.load(Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl Stats {
    /// Writes the counters in the Prometheus text format, labelled with
    /// the consumer `group`.
    ///
    /// ```
    /// let mut out = String::new();
    /// tether_kafka::Stats::default().write_metrics("tether", &mut out);
    /// assert!(out.contains("tether_kafka_published_total{group=\"tether\"} 0"));
    /// ```
    pub fn write_metrics(&self, group: &str, out: &mut String) {
        let label = format!("group=\"{group}\"");
        let metrics: [(&str, &str, &str, u64); 9] = [
            (
                "tether_kafka_consumed_total",
                "counter",
                "Kafka records read.",
                self.consumed,
            ),
            (
                "tether_kafka_published_total",
                "counter",
                "Kafka records published into the hub.",
                self.published,
            ),
            (
                "tether_kafka_failed_total",
                "counter",
                "Kafka records skipped: not UTF-8, no value, or refused by the hub (a bad topic, too large).",
                self.failed,
            ),
            (
                "tether_kafka_retries_total",
                "counter",
                "Kafka records' publishes tried again (the hub could not take them now).",
                self.retries,
            ),
            (
                "tether_kafka_errors_total",
                "counter",
                "Kafka errors: brokers unreachable, requests refused or timed out.",
                self.kafka_errors,
            ),
            (
                "tether_kafka_commits_total",
                "counter",
                "Offset commits the consumer group's coordinator acknowledged.",
                self.commits,
            ),
            (
                "tether_kafka_rebalances_total",
                "counter",
                "Rebalances of the consumer group this consumer took part in.",
                self.rebalances,
            ),
            (
                "tether_kafka_partitions",
                "gauge",
                "Partitions assigned to this consumer by its group.",
                self.partitions,
            ),
            (
                "tether_kafka_lag_records",
                "gauge",
                "Records behind the partitions' high watermarks at the last fetch, summed.",
                self.lag,
            ),
        ];
        for (name, kind, help, value) in metrics {
            tether_ingest::write_metric(out, name, kind, help, &label, value);
        }
    }
}

/// Where the consumer stands with its brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not connected yet, since it started.
    #[default]
    Connecting,
    /// Connected, its offsets read: consuming.
    Consuming,
    /// Cannot reach its brokers, a topic or the group's coordinator, for
    /// this reason; `reached` says whether it had, since it started.
    Failing {
        /// What went wrong last.
        error: String,
        /// It had been consuming since it started.
        reached: bool,
    },
    /// Stopped.
    Stopped,
}

impl Health {
    /// Whether the consumer can do its work.
    pub fn ok(&self) -> bool {
        matches!(self, Health::Consuming)
    }

    /// One line for `/readyz`.
    pub fn describe(&self) -> String {
        match self {
            Health::Connecting => "connecting to Kafka".to_owned(),
            Health::Consuming => "consuming".to_owned(),
            Health::Failing { error, .. } => format!("cannot reach Kafka: {error}"),
            Health::Stopped => "stopped".to_owned(),
        }
    }
}

/// The health, shared with whoever asks.
pub(crate) type HealthCell = tether_ingest::HealthCell<Health>;

/// Failing with `error`, on `cell`; reached if it had been connected, now
/// or before.
pub(crate) fn fail(cell: &HealthCell, error: String) {
    cell.update(|health| {
        let reached = match health {
            Health::Consuming => true,
            Health::Failing { reached, .. } => *reached,
            Health::Connecting | Health::Stopped => false,
        };
        Health::Failing { error, reached }
    });
}
