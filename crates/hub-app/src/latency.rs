//! The hub's latency histograms (one set per loop, in its
//! [`HubStats`](super::metrics::HubStats)), their buckets, and their part
//! of `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use tether_hub::EventId;

use super::backend::Hook;
use super::broker_view::unix_ms;
use super::metrics::HubStats;
use tether_hub::histogram::{Histogram, ROUND_TRIP, write_head, write_series};

/// Publish to acknowledgement: from 100 µs (the in-process broker
/// answers within the loop's turn) through the few milliseconds of a
/// bus's round trip or a disk's sync, to the seconds of a publish
/// timeout, in 1-2.5-5 steps so that a quantile reads to within about
/// half a step.
const PUBLISH: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// The backend's answer time: an HTTP request to the application, from
/// a millisecond on the same host to the seconds of its timeout.
const HOOK: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Delivery lag, measured between clocks in whole milliseconds (the
/// publish time in the event's id): from a millisecond to the minute of
/// a node that was cut off from its bus and catches up.
const DELIVERY_LAG: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000, 60_000_000,
];

/// One loop's latency histograms.
#[derive(Debug)]
pub(super) struct Latencies {
    /// From a publish's arrival to its outcome from the broker.
    pub(super) publish: Histogram,
    /// The backend's answer time, by hook (connect, subscribe,
    /// publish, refresh, rpc).
    hooks: [Histogram; Hook::ALL.len()],
    /// From an event's publish to its arrival on this loop, for brokers
    /// whose ids tell the publish time.
    pub(super) delivery_lag: Histogram,
}

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies {
            publish: Histogram::new(PUBLISH),
            hooks: std::array::from_fn(|_| Histogram::new(HOOK)),
            delivery_lag: Histogram::new(DELIVERY_LAG),
        }
    }
}

impl Latencies {
    /// The histogram of `hook`'s answer times.
    pub(super) fn hook(&self, hook: Hook) -> &Histogram {
        let [connect, subscribe, publish, refresh, rpc, latest] = &self.hooks;
        match hook {
            Hook::Connect => connect,
            Hook::Subscribe => subscribe,
            Hook::Publish => publish,
            Hook::Refresh => refresh,
            Hook::Rpc => rpc,
            Hook::Latest => latest,
        }
    }
}

/// Whether the ids of events from the broker named `kind` are their
/// publish times: a Redis stream entry's id is the time Redis stored it;
/// the other brokers put a topic's epoch there, which says nothing of
/// when an event was published.
pub(super) fn ids_are_publish_times(kind: &str) -> bool {
    kind == "redis"
}

/// The delivery lag of an event published at `published_ms` and here at
/// `now_ms` (Unix milliseconds); a publish time ahead of this clock (the
/// clocks differ) counts as no lag.
pub(super) fn lag(published_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(published_ms))
}

/// Counts the delivery lag of event `id`, from the broker named `kind`,
/// arrived on this loop now (when its id tells when it was published).
pub(super) fn arrived(stats: &HubStats, kind: &str, id: EventId) {
    if ids_are_publish_times(kind) {
        stats.latencies.delivery_lag.observe(lag(id.ms(), unix_ms()));
    }
}

/// Writes the histograms, added up over `loops`, and the round trips of
/// the bus (`round_trip`, the broker's; empty without a bus).
pub(super) fn write(out: &mut String, loops: &[Arc<HubStats>], round_trip: Option<&Histogram>) {
    let name = "tether_hub_publish_seconds";
    write_head(
        out,
        name,
        "Publishes from their arrival (a wait for the backend's publish hook included) to their outcome from the broker (sequenced, duplicate or refused), whatever they came by.",
    );
    write_series(out, name, "", loops.iter().map(|s| &s.latencies.publish));
    let name = "tether_hub_backend_seconds";
    write_head(
        out,
        name,
        "The application's backend's answer time, by hook (a question it did not answer in time counts at its timeout).",
    );
    for hook in Hook::ALL {
        let labels = format!("hook=\"{}\"", hook.name());
        write_series(out, name, &labels, loops.iter().map(|s| s.latencies.hook(hook)));
    }
    let name = "tether_hub_delivery_lag_seconds";
    write_head(
        out,
        name,
        "Events from their publish to their arrival on a loop, measured where the broker's event ids are publish times (Redis); empty with other brokers.",
    );
    write_series(out, name, "", loops.iter().map(|s| &s.latencies.delivery_lag));
    let name = "tether_bus_round_trip_seconds";
    write_head(
        out,
        name,
        "Requests to the bus and their answers (Redis: a batch of publishes to their replies, and a PING each second while none comes; NATS: a publish to its JetStream acknowledgement); empty without a bus.",
    );
    let none = Histogram::new(ROUND_TRIP);
    write_series(out, name, "", std::iter::once(round_trip.unwrap_or(&none)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fit_the_histogram() {
        for bounds in [PUBLISH, HOOK, DELIVERY_LAG, ROUND_TRIP] {
            assert!(bounds.len() <= 15 && bounds.is_sorted(), "{bounds:?}");
        }
    }

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag(1_000, 1_250), Duration::from_millis(250));
        assert_eq!(lag(2_000, 1_000), Duration::ZERO);
    }

    #[test]
    fn every_hook_has_its_series() {
        let stats = Arc::new(HubStats::default());
        stats
            .latencies
            .hook(Hook::Refresh)
            .observe(Duration::from_millis(3));
        let mut out = String::new();
        write(&mut out, &[stats], None);
        assert!(
            out.contains("tether_hub_backend_seconds_count{hook=\"refresh\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("tether_hub_backend_seconds_count{hook=\"connect\"} 0\n"),
            "{out}"
        );
        assert!(out.contains("tether_hub_publish_seconds_count 0\n"), "{out}");
        assert!(
            out.contains("tether_hub_delivery_lag_seconds_bucket{le=\"60\"} 0\n"),
            "{out}"
        );
        // No bus: its round trips are there, empty.
        assert!(
            out.contains("tether_bus_round_trip_seconds_bucket{le=\"5\"} 0\n"),
            "{out}"
        );
    }

    #[test]
    fn the_bus_round_trips_are_the_brokers() {
        let bus = Histogram::new(ROUND_TRIP);
        bus.observe(Duration::from_micros(300));
        let mut out = String::new();
        write(&mut out, &[Arc::new(HubStats::default())], Some(&bus));
        assert!(
            out.contains("tether_bus_round_trip_seconds_bucket{le=\"0.00025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("tether_bus_round_trip_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("tether_bus_round_trip_seconds_count 1\n"), "{out}");
    }
}
