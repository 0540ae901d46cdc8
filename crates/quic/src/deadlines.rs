//! When each connection next needs the server's attention: a min-heap of
//! deadlines keyed by connection, so that the earliest one is read, and
//! the due ones taken, without walking every connection.
//!
//! A connection's deadline moves each time it is touched (its idle timer
//! restarts with every packet). Instead of finding its old entry in the
//! heap, a new entry is pushed with the next generation, and entries whose
//! generation is no longer their key's are dropped when they reach the
//! top (lazy invalidation). Stale entries are at most a fixed multiple of
//! the live ones: past it, the heap is rebuilt from the live deadlines.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Instant;

/// Stale entries allowed beyond this many per live deadline (plus a few)
/// before the heap is rebuilt.
const STALE_PER_LIVE: usize = 2;

/// Deadlines by key, earliest first.
#[derive(Debug)]
pub(crate) struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    /// Each key's deadline and the generation of its live heap entry.
    live: BTreeMap<K, (Instant, u64)>,
    next_generation: u64,
}

impl<K: Ord + Copy> Deadlines<K> {
    pub(crate) fn new() -> Deadlines<K> {
        Deadlines {
            heap: BinaryHeap::new(),
            live: BTreeMap::new(),
            next_generation: 0,
        }
    }

    /// `key` needs attention at `at` (none: not at any time), instead of
    /// whenever it was before.
    pub(crate) fn set(&mut self, key: K, at: Option<Instant>) {
        let Some(at) = at else {
            self.live.remove(&key);
            return;
        };
        if self.live.get(&key).is_some_and(|(was, _)| *was == at) {
            return;
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        self.live.insert(key, (at, generation));
        self.heap.push(Reverse((at, generation, key)));
        if self.heap.len() > STALE_PER_LIVE.saturating_add(1).saturating_mul(self.live.len()) + 64 {
            self.rebuild();
        }
    }

    /// `key` is gone.
    pub(crate) fn remove(&mut self, key: K) {
        self.live.remove(&key);
    }

    /// The earliest deadline.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes every key whose deadline is `now` or earlier, earliest
    /// first; each has no deadline until set again.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(at) = self.next()
            && at <= now
        {
            if let Some(Reverse((_, _, key))) = self.heap.pop() {
                self.live.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// Entries in the heap, live and stale.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.heap.len()
    }

    fn is_live(&self, generation: u64, key: &K) -> bool {
        self.live.get(key).is_some_and(|(_, g)| *g == generation)
    }

    /// Pops stale entries off the top.
    fn drop_stale(&mut self) {
        while let Some(Reverse((_, generation, key))) = self.heap.peek() {
            if self.is_live(*generation, key) {
                return;
            }
            self.heap.pop();
        }
    }

    fn rebuild(&mut self) {
        self.heap = self
            .live
            .iter()
            .map(|(key, (at, generation))| Reverse((*at, *generation, *key)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(start: Instant, ms: u64) -> Option<Instant> {
        Some(start + Duration::from_millis(ms))
    }

    #[test]
    fn a_moved_deadline_replaces_the_old_one_which_is_skipped() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new();
        deadlines.set(1u32, at(start, 10));
        deadlines.set(2, at(start, 20));
        // Key 1 moves later: its entry at 10 ms is stale, not due.
        deadlines.set(1, at(start, 30));
        assert_eq!(deadlines.next(), at(start, 20));
        assert_eq!(deadlines.take_due(start + Duration::from_millis(25)), vec![2]);
        assert_eq!(deadlines.next(), at(start, 30));
        // Moved earlier, then removed: nothing is left due.
        deadlines.set(1, at(start, 5));
        assert_eq!(deadlines.next(), at(start, 5));
        deadlines.remove(1);
        assert_eq!(deadlines.next(), None);
        assert!(deadlines.take_due(start + Duration::from_secs(1)).is_empty());
        assert_eq!(deadlines.entries(), 0, "stale entries popped");
    }

    #[test]
    fn due_keys_come_out_earliest_first_once_each_and_the_rest_stay() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new();
        for (key, ms) in [(7u32, 30), (3, 10), (5, 20), (9, 40)] {
            deadlines.set(key, at(start, ms));
        }
        // Set again to the same instant: no second entry.
        deadlines.set(3, at(start, 10));
        assert_eq!(deadlines.entries(), 4);
        assert_eq!(
            deadlines.take_due(start + Duration::from_millis(30)),
            vec![3, 5, 7]
        );
        assert!(deadlines.take_due(start + Duration::from_millis(30)).is_empty());
        assert_eq!(deadlines.next(), at(start, 40));
        // None clears a deadline.
        deadlines.set(9, None);
        assert_eq!(deadlines.next(), None);
    }

    #[test]
    fn stale_entries_stay_bounded_when_deadlines_keep_moving() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new();
        // Ten keys whose deadlines move later 10 000 times each, none
        // ever reaching the top as stale (a busy connection's idle timer).
        for round in 0..10_000u64 {
            for key in 0..10u32 {
                deadlines.set(key, at(start, 1000 + round));
            }
        }
        assert!(deadlines.entries() <= 3 * 10 + 64, "{}", deadlines.entries());
        assert_eq!(deadlines.next(), at(start, 1000 + 9_999));
        assert_eq!(deadlines.take_due(start + Duration::from_secs(60)).len(), 10);
    }
}
