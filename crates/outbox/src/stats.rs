//! What the consumer counts and how it is doing: lock-free counters for
//! `/metrics`, and its health for `/readyz`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The consumer's counters since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) database_errors: AtomicU64,
    /// The rows pending at the last count.
    pub(crate) pending: AtomicU64,
    /// 1 while this consumer holds the table.
    pub(crate) active: AtomicU64,
}

/// A copy of the consumer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Rows published (acknowledged by the publisher) and deleted.
    pub published: u64,
    /// Rows the publisher refused, marked failed.
    pub failed: u64,
    /// Publishes tried again: the publisher could not take them, or the
    /// transaction that would have deleted their rows failed.
    pub retries: u64,
    /// Connections lost or refused, statements failed.
    pub database_errors: u64,
    /// The rows waiting to be published, at the last count (after each
    /// batch, and on each wake).
    pub pending: u64,
    /// Whether this consumer holds the table (the others stand by).
    pub active: bool,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            published: self.published.load(Relaxed),
            failed: self.failed.load(Relaxed),
            retries: self.retries.load(Relaxed),
            database_errors: self.database_errors.load(Relaxed),
            pending: self.pending.load(Relaxed),
            active: self.active.load(Relaxed) == 1,
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl Stats {
    /// Writes the counters in the Prometheus text format, labelled with
    /// `table`.
    ///
    /// ```
    /// let mut out = String::new();
    /// tether_outbox::Stats::default().write_metrics("tether_outbox", &mut out);
    /// assert!(out.contains("tether_outbox_published_total{table=\"tether_outbox\"} 0"));
    /// ```
    pub fn write_metrics(&self, table: &str, out: &mut String) {
        let label = format!("table=\"{table}\"");
        let metrics: [(&str, &str, &str, u64); 6] = [
            (
                "tether_outbox_published_total",
                "counter",
                "Outbox rows published and deleted.",
                self.published,
            ),
            (
                "tether_outbox_failed_total",
                "counter",
                "Outbox rows the hub refused (a bad topic, too large...), marked failed and kept.",
                self.failed,
            ),
            (
                "tether_outbox_retries_total",
                "counter",
                "Outbox publishes tried again (the hub could not take them, or their rows could not be deleted).",
                self.retries,
            ),
            (
                "tether_outbox_database_errors_total",
                "counter",
                "Outbox database connections lost or refused, and statements failed.",
                self.database_errors,
            ),
            (
                "tether_outbox_pending_rows",
                "gauge",
                "Outbox rows waiting to be published, at the last count (the consumer's lag).",
                self.pending,
            ),
            (
                "tether_outbox_active",
                "gauge",
                "Whether this node's consumer holds the outbox table (1) or stands by (0).",
                u64::from(self.active),
            ),
        ];
        for (name, kind, help, value) in metrics {
            tether_ingest::write_metric(out, name, kind, help, &label, value);
        }
    }
}

/// Where the consumer stands with its database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not connected yet, since it started.
    #[default]
    Connecting,
    /// Connected, and the table's consumer.
    Active,
    /// Connected; another node's consumer holds the table.
    Standby,
    /// Cannot reach its database or its table, for this reason; `reached`
    /// says whether it had, since it started.
    Failing {
        /// What went wrong last.
        error: String,
        /// It had been connected since it started.
        reached: bool,
    },
    /// Stopped.
    Stopped,
}

impl Health {
    /// Whether the consumer can do its work (active or standing by).
    pub fn ok(&self) -> bool {
        matches!(self, Health::Active | Health::Standby)
    }

    /// One line for `/readyz`.
    pub fn describe(&self) -> String {
        match self {
            Health::Connecting => "connecting to the database".to_owned(),
            Health::Active => "publishing the table".to_owned(),
            Health::Standby => "standing by (another node publishes the table)".to_owned(),
            Health::Failing { error, .. } => format!("cannot reach the database: {error}"),
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
            Health::Active | Health::Standby => true,
            Health::Failing { reached, .. } => *reached,
            Health::Connecting | Health::Stopped => false,
        };
        Health::Failing { error, reached }
    });
}
