//! How one fan-out event reaches its subscribers over time: when it was
//! published, when its first and its last delivery were read, how the
//! latency depends on a subscriber's place in the order it connected (a
//! server that always serves its oldest connections first shows a slope
//! across the tenths), and how many events each read carries (a server that
//! batches the events queued for a subscriber into one write shows more
//! than one).
//!
//! Calling contract: the publisher calls [`Spread::published`] with each
//! message's number and time; a subscriber's read that delivered messages
//! `from..to` (numbers, in order) calls [`Spread::arrived`] with the time
//! of the read. Times are nanoseconds on one clock.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::report;

/// Tenths of the subscribers, by the order in which they connected.
const PARTS: usize = 10;

/// The most messages whose first and last reads are kept (16 bytes each,
/// 24 with the publication time).
const MAX_TIMED: usize = 1 << 22;

/// The timeline of a fan-out's events and the latency of its subscribers
/// by their place.
#[derive(Debug)]
pub struct Spread {
    subscribers: usize,
    /// Publication time of message `n` at index `n - 1` (0: not known).
    sent: Vec<u64>,
    /// First and last time message `n` was read, at index `n - 1`.
    first: Vec<u64>,
    last: Vec<u64>,
    /// Latency of the deliveries to each tenth of the subscribers.
    by_part: Vec<Histogram<u64>>,
    /// Reads that delivered at least one message, and their messages.
    reads: u64,
    deliveries: u64,
}

impl Spread {
    /// A timeline for `subscribers` subscribers.
    pub fn new(subscribers: usize) -> Spread {
        Spread {
            subscribers: subscribers.max(1),
            sent: Vec::new(),
            first: Vec::new(),
            last: Vec::new(),
            by_part: (0..PARTS).map(|_| report::latency_histogram()).collect(),
            reads: 0,
            deliveries: 0,
        }
    }

    /// The histogram for subscriber `index`'s deliveries (to hand to the
    /// reader, which records each delivery's latency in it).
    pub fn histogram_of(&mut self, index: usize) -> &mut Histogram<u64> {
        let part = (index * PARTS / self.subscribers).min(PARTS - 1);
        &mut self.by_part[part]
    }

    /// Message `seq` (from 1) was published at `ns`.
    pub fn published(&mut self, seq: u64, ns: u64) {
        if let Some(at) = self.slot(seq) {
            self.sent[at] = ns;
        }
    }

    /// The index of message `seq` in the timeline, made room for: `None`
    /// for 0 and for numbers beyond the most messages timed.
    fn slot(&mut self, seq: u64) -> Option<usize> {
        let at = usize::try_from(seq)
            .ok()?
            .checked_sub(1)
            .filter(|&at| at < MAX_TIMED)?;
        if self.sent.len() <= at {
            self.sent.resize(at + 1, 0);
            self.first.resize(at + 1, u64::MAX);
            self.last.resize(at + 1, 0);
        }
        Some(at)
    }

    /// One read delivered messages `from..to` at `ns`.
    pub fn arrived(&mut self, from: u64, to: u64, ns: u64) {
        if to <= from {
            return;
        }
        self.reads += 1;
        self.deliveries += to - from;
        for seq in from..to {
            // Kept even when published by another process, whose
            // publication times come with its timeline ([`Spread::merge`]).
            let Some(at) = self.slot(seq) else {
                continue;
            };
            self.first[at] = self.first[at].min(ns);
            self.last[at] = self.last[at].max(ns);
        }
    }

    /// The timeline as JSON, for the parent of a multi-process run to
    /// [`merge`](Spread::merge): each message's publication time (0: not
    /// published here), first and last read (0: none here).
    pub fn timeline(&self) -> Value {
        let first: Vec<u64> = self
            .first
            .iter()
            .map(|&f| if f == u64::MAX { 0 } else { f })
            .collect();
        json!({ "sent": self.sent, "first": first, "last": self.last })
    }

    /// Adds another process's [`timeline`](Spread::timeline): publication
    /// times it knows, the earlier first read and the later last read of
    /// each message.
    pub fn merge(&mut self, timeline: &Value) -> Result<(), String> {
        let numbers = |key: &str| -> Result<Vec<u64>, String> {
            timeline[key]
                .as_array()
                .ok_or_else(|| format!("a timeline without {key}"))?
                .iter()
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| format!("a timeline's {key}: not a number"))
                })
                .collect()
        };
        let (sent, first, last) = (numbers("sent")?, numbers("first")?, numbers("last")?);
        for (at, &ns) in sent.iter().enumerate() {
            if ns != 0
                && let Some(slot) = self.slot(at as u64 + 1)
            {
                self.sent[slot] = ns;
            }
        }
        for (at, (&f, &l)) in first.iter().zip(&last).enumerate() {
            if f == 0 {
                continue;
            }
            if let Some(slot) = self.slot(at as u64 + 1) {
                self.first[slot] = self.first[slot].min(f);
                self.last[slot] = self.last[slot].max(l);
            }
        }
        Ok(())
    }

    /// The JSON fields of the events' timeline alone: `first_delivery_us`
    /// and `last_delivery_us` (see [`Spread::json`]).
    pub fn delivery_json(&self) -> serde_json::Map<String, Value> {
        let mut first = report::latency_histogram();
        let mut last = report::latency_histogram();
        for ((&sent, &f), &l) in self.sent.iter().zip(&self.first).zip(&self.last) {
            if sent == 0 || f == u64::MAX {
                continue;
            }
            first.saturating_record(f.saturating_sub(sent).max(1));
            last.saturating_record(l.saturating_sub(sent).max(1));
        }
        let mut m = serde_json::Map::new();
        m.insert("first_delivery_us".into(), report::percentiles_us(&first));
        m.insert("last_delivery_us".into(), report::percentiles_us(&last));
        m
    }

    /// Every tenth's deliveries together.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = report::latency_histogram();
        for part in &self.by_part {
            // Same bounds: adding cannot fail.
            let _ = all.add(part);
        }
        all
    }

    /// The JSON fields: `first_delivery_us` and `last_delivery_us`
    /// (percentiles over events of the time from publication to the first
    /// and the last read of it), `p99_us_by_tenth` (the p99 of each tenth
    /// of the subscribers, oldest first) and `deliveries_per_read`.
    pub fn json(&self) -> serde_json::Map<String, Value> {
        let p99 = |h: &Histogram<u64>| {
            (!h.is_empty()).then(|| (h.value_at_quantile(0.99) as f64 / 100.0).round() / 10.0)
        };
        let mut m = self.delivery_json();
        m.insert(
            "p99_us_by_tenth".into(),
            json!(self.by_part.iter().map(p99).collect::<Vec<_>>()),
        );
        m.insert(
            "deliveries_per_read".into(),
            json!(
                (self.reads > 0)
                    .then(|| (self.deliveries as f64 / self.reads as f64 * 100.0).round() / 100.0)
            ),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_reads_of_each_event_and_reads_per_delivery() {
        let mut spread = Spread::new(20);
        spread.published(1, 1_000);
        spread.published(2, 2_000);
        // One subscriber reads both in one read, another each on its own.
        spread.arrived(1, 3, 5_000);
        spread.arrived(1, 2, 3_000);
        spread.arrived(2, 3, 9_000);
        let json = spread.json();
        assert_eq!(json["deliveries_per_read"], json!(1.33));
        // Event 1: first at 3 us, last at 5 us after 1 us; event 2: 3 and
        // 7 us after 2 us.
        assert_eq!(json["first_delivery_us"]["max"], json!(3.0));
        assert_eq!(json["last_delivery_us"]["max"], json!(7.0));
        assert_eq!(json["last_delivery_us"]["p50"], json!(4.0));
    }

    #[test]
    fn subscribers_fall_into_tenths_by_their_place() {
        let mut spread = Spread::new(20);
        spread.histogram_of(0).record(1_000).unwrap();
        spread.histogram_of(19).record(9_000).unwrap();
        let json = spread.json();
        let tenths = json["p99_us_by_tenth"].as_array().unwrap();
        assert_eq!(tenths.len(), 10);
        assert_eq!(tenths[0], json!(1.0));
        assert_eq!(tenths[9], json!(9.0));
        assert!(tenths[1].is_null());
        assert_eq!(spread.merged().len(), 2);
        // Messages never published are not timed.
        spread.arrived(5, 6, 1);
        assert!(spread.json()["first_delivery_us"].is_null());
    }

    #[test]
    fn timelines_of_processes_merge_into_one() {
        // The publishing process: message 1 at 1 us, read at 3 us; message
        // 2 at 2 us, read at 4 us.
        let mut publisher = Spread::new(10);
        publisher.published(1, 1_000);
        publisher.published(2, 2_000);
        publisher.arrived(1, 3, 4_000);
        publisher.arrived(1, 2, 3_000);
        // Another process's subscribers read message 1 at 2 us and 9 us,
        // and never saw message 2.
        let mut other = Spread::new(10);
        other.arrived(1, 2, 2_000);
        other.arrived(1, 2, 9_000);
        assert!(other.json()["first_delivery_us"].is_null());

        let mut all = Spread::new(20);
        all.merge(&publisher.timeline()).unwrap();
        all.merge(&other.timeline()).unwrap();
        let json = all.delivery_json();
        // Message 1: first 1 us and last 8 us after its publication;
        // message 2: 2 us for both.
        assert_eq!(json["first_delivery_us"]["max"], json!(2.0));
        assert_eq!(json["last_delivery_us"]["max"], json!(8.0));
        assert_eq!(json["last_delivery_us"]["p50"], json!(2.0));
        assert!(all.merge(&json!({"sent": [1]})).is_err());
    }
}
