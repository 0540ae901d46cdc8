//! The counters every bus keeps, behind its status and its metrics
//! (atomics, written by the bridge's threads, read by anyone; never
//! locks).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tether_hub::BrokerState;
use tether_hub::histogram::{Histogram, ROUND_TRIP};

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The counters and the flag every bus keeps; a bus's own stats hold
/// these and what only it counts.
#[derive(Debug)]
pub struct Counters {
    /// The bridge was shut down.
    pub stopped: AtomicBool,
    /// Connections made again after being lost.
    pub reconnects: AtomicU64,
    /// Failed attempts, failed requests and lost connections.
    pub errors: AtomicU64,
    /// Topics resynchronised (a new `Ready`) after continuity was lost.
    pub resyncs: AtomicU64,
    /// Events this node added to the bus.
    pub added: AtomicU64,
    /// Keyed publishes of this node the bus found duplicate.
    pub duplicates: AtomicU64,
    /// Publishes refused (the bus unreachable, or it refused them).
    pub refused: AtomicU64,
    /// Events read from the bus and delivered to this node's loops.
    pub read: AtomicU64,
    /// Topics this node follows.
    pub followed: AtomicU64,
    /// The bus's round trips: a request to it and its answer, as each bus
    /// times them (what the hub shows as `tether_bus_round_trip_seconds`).
    pub round_trip: Histogram,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            stopped: AtomicBool::default(),
            reconnects: AtomicU64::default(),
            errors: AtomicU64::default(),
            resyncs: AtomicU64::default(),
            added: AtomicU64::default(),
            duplicates: AtomicU64::default(),
            refused: AtomicU64::default(),
            read: AtomicU64::default(),
            followed: AtomicU64::default(),
            round_trip: Histogram::new(ROUND_TRIP),
        }
    }
}

impl Counters {
    /// Whether the bridge was shut down.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Marks the bridge shut down: from now on its brokers report
    /// [`BrokerState::Down`] and refuse publishes.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// The state for the hub: down once shut down, up while `connected`,
    /// connecting otherwise.
    pub fn state(&self, connected: bool) -> BrokerState {
        if self.stopped() {
            BrokerState::Down
        } else if connected {
            BrokerState::Up
        } else {
            BrokerState::Connecting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_connection_until_stopped() {
        let counters = Counters::default();
        assert_eq!(counters.state(false), BrokerState::Connecting);
        assert_eq!(counters.state(true), BrokerState::Up);
        add(&counters.refused, 2);
        assert_eq!(counters.refused.load(Ordering::Relaxed), 2);
        counters.stop();
        assert!(counters.stopped());
        assert_eq!(counters.state(true), BrokerState::Down);
    }
}
