//! Counters for `/metrics`: lock-free to bump, copied out as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::answer::{Answer, Decision, Unavailable};

/// The upper bounds of the latency buckets, in milliseconds; a last
/// bucket holds everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 11] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/// A copy of the counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Asks accepted into the queue.
    pub asked: u64,
    /// Answered allow.
    pub allowed: u64,
    /// Answered deny.
    pub denied: u64,
    /// Answered unavailable, by reason.
    pub unavailable: UnavailableCounts,
    /// Asks refused at once with [`AskError::Busy`](crate::pool::AskError::Busy)
    /// (a loop's bound or the queue's was reached).
    pub busy: u64,
    /// Answers by the time from ask to answer: `latency[i]` counts those
    /// within [`LATENCY_BOUNDS_MS`]`[i]` ms (and over the bound before it);
    /// the last counts the slower ones. Not cumulative.
    pub latency: [u64; 12],
}

/// Unavailable answers by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnavailableCounts {
    /// [`Unavailable::Timeout`].
    pub timeout: u64,
    /// [`Unavailable::Down`].
    pub down: u64,
    /// [`Unavailable::Malformed`].
    pub malformed: u64,
    /// [`Unavailable::Status`], whatever the status.
    pub status: u64,
    /// [`Unavailable::ShuttingDown`].
    pub shutting_down: u64,
}

impl UnavailableCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.timeout + self.down + self.malformed + self.status + self.shutting_down
    }
}

impl Stats {
    /// Every answer given (allowed, denied, unavailable).
    pub fn answered(&self) -> u64 {
        self.allowed + self.denied + self.unavailable.total()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    asked: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    timeout: AtomicU64,
    down: AtomicU64,
    malformed: AtomicU64,
    status: AtomicU64,
    shutting_down: AtomicU64,
    busy: AtomicU64,
    latency: [AtomicU64; 12],
}

impl Counters {
    pub(crate) fn asked(&self) {
        self.asked.fetch_add(1, Relaxed);
    }

    pub(crate) fn busy(&self) {
        self.busy.fetch_add(1, Relaxed);
    }

    pub(crate) fn answered(&self, answer: &Answer, took: Duration) {
        let counter = match answer {
            Ok(Decision::Allow(_)) => &self.allowed,
            Ok(Decision::Deny(_)) => &self.denied,
            Err(Unavailable::Timeout) => &self.timeout,
            Err(Unavailable::Down) => &self.down,
            Err(Unavailable::Malformed) => &self.malformed,
            Err(Unavailable::Status(_)) => &self.status,
            Err(Unavailable::ShuttingDown) => &self.shutting_down,
            Err(Unavailable::Busy) => &self.busy,
        };
        counter.fetch_add(1, Relaxed);
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| took <= Duration::from_millis(bound))
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        if let Some(slot) = self.latency.get(bucket) {
            slot.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        Stats {
            asked: get(&self.asked),
            allowed: get(&self.allowed),
            denied: get(&self.denied),
            unavailable: UnavailableCounts {
                timeout: get(&self.timeout),
                down: get(&self.down),
                malformed: get(&self.malformed),
                status: get(&self.status),
                shutting_down: get(&self.shutting_down),
            },
            busy: get(&self.busy),
            latency: std::array::from_fn(|i| self.latency.get(i).map_or(0, get)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_land_in_their_counter_and_bucket() {
        let c = Counters::default();
        c.asked();
        c.answered(&Err(Unavailable::Status(500)), Duration::from_micros(500));
        c.answered(&Err(Unavailable::Timeout), Duration::from_millis(2));
        c.answered(&Err(Unavailable::Timeout), Duration::from_secs(10));
        c.busy();
        let s = c.snapshot();
        assert_eq!(
            (s.asked, s.busy, s.unavailable.status, s.unavailable.timeout),
            (1, 1, 1, 2)
        );
        assert_eq!(s.answered(), 3);
        assert_eq!((s.latency[0], s.latency[1], s.latency[11]), (1, 1, 1));
    }
}
