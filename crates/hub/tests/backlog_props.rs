//! Properties of the backlog and of event ids: any sequence of publishes
//! and replays from any id gives exactly the events after it, or a gap
//! followed by everything held.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::sync::Arc;

use proptest::prelude::*;
use tether_hub::{Backlog, Event, EventId, Replay};

const EPOCH: u64 = 1_700_000_000_000;

fn event(seq: u64, data_len: usize) -> Arc<Event> {
    Event::new(
        Arc::from("topic"),
        EventId::new(EPOCH, seq),
        "message",
        &"x".repeat(data_len),
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    /// Replay from the id of the n-th published event (modulo the count).
    ReplayPublished(usize),
    ReplayZero,
    /// Replay from an id that was never published.
    ReplayOther(u64, u64),
    ReplayText(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..200).prop_map(Op::Publish),
        3 => any::<usize>().prop_map(Op::ReplayPublished),
        1 => Just(Op::ReplayZero),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| Op::ReplayOther(ms, seq)),
        1 => ".{0,12}".prop_map(Op::ReplayText),
    ]
}

/// What the backlog should hold: the longest suffix of `published` within
/// both bounds.
fn kept(published: &[Arc<Event>], max_events: usize, max_bytes: usize) -> &[Arc<Event>] {
    let mut start = published.len();
    let mut bytes = 0;
    while start > 0 {
        let cost = published[start - 1].cost();
        if published.len() - start + 1 > max_events || bytes + cost > max_bytes {
            break;
        }
        bytes += cost;
        start -= 1;
    }
    &published[start..]
}

fn ids<'a>(events: impl Iterator<Item = &'a Arc<Event>>) -> Vec<EventId> {
    events.map(|e| e.id()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn replay_is_exact_or_a_gap(
        max_events in 0usize..10,
        max_bytes in 0usize..3000,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut backlog = Backlog::new(max_events, max_bytes);
        let mut published: Vec<Arc<Event>> = Vec::new();
        for op in ops {
            let (text, known_index) = match op {
                Op::Publish(len) => {
                    let e = event(published.len() as u64 + 1, len);
                    backlog.push(e.clone()).unwrap();
                    published.push(e);
                    continue;
                }
                Op::ReplayPublished(n) if !published.is_empty() => {
                    let k = n % published.len();
                    (published[k].id().to_string(), Some(k))
                }
                Op::ReplayPublished(_) | Op::ReplayZero => ("0-0".to_owned(), None),
                Op::ReplayOther(ms, seq) => {
                    let id = EventId::new(ms, seq);
                    if id == EventId::ZERO || (ms == EPOCH && seq >= 1 && seq <= published.len() as u64) {
                        continue;
                    }
                    (id.to_string(), None)
                }
                Op::ReplayText(text) => {
                    if EventId::parse(&text).is_some() {
                        continue;
                    }
                    (text, None)
                }
            };
            let held = kept(&published, max_events, max_bytes);
            prop_assert_eq!(ids(backlog.iter()), ids(held.iter()));
            prop_assert_eq!(backlog.bytes(), held.iter().map(|e| e.cost()).sum::<usize>());
            let first_held = published.len() - held.len();
            let evicted = first_held.checked_sub(1).map(|i| published[i].id());
            let is_zero = text == "0-0";
            // After event k come published[k+1..]; after 0-0, everything.
            let after = match known_index {
                Some(k) => k + 1,
                None => 0,
            };
            let known = (known_index.is_some() || is_zero) && after >= first_held;
            match backlog.replay(&text) {
                Replay::Events(events) => {
                    prop_assert!(known, "events for an unknown id {:?}", text);
                    prop_assert_eq!(ids(events), ids(published[after..].iter()));
                }
                Replay::Gap(gap, events) => {
                    prop_assert!(!known, "gap for the known id {:?}", text);
                    prop_assert_eq!(ids(events), ids(held.iter()));
                    prop_assert_eq!(gap.first, held.first().map(|e| e.id()));
                    prop_assert_eq!(gap.resume, evicted.unwrap_or(EventId::ZERO));
                    // Resuming from the signal's id gives the same events, exactly.
                    let Replay::Events(again) = backlog.replay(&gap.resume.to_string()) else {
                        return Err(TestCaseError::fail("a gap after resuming from the gap"));
                    };
                    prop_assert_eq!(ids(again), ids(held.iter()));
                }
            }
        }
    }

    #[test]
    fn ids_round_trip(ms in any::<u64>(), seq in any::<u64>()) {
        let id = EventId::new(ms, seq);
        prop_assert_eq!(EventId::parse(&id.to_string()), Some(id));
    }

    #[test]
    fn only_canonical_text_parses(text in "[0-9-]{0,8}|.{0,10}") {
        if let Some(id) = EventId::parse(&text) {
            prop_assert_eq!(id.to_string(), text);
        }
    }
}
