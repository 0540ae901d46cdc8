//! One structure for every deadline of a loop (handshake, keepalive, idle,
//! close, SSE heartbeat, lingering close), which gives `Poll::poll` its
//! timeout.
//!
//! A min-heap with lazy deletion: each connection remembers the one
//! deadline it has in the heap. Activity only ever moves a connection's
//! deadline later, so the common case (a message arrives, the idle timer
//! moves) touches the heap not at all; when an entry fires early, the
//! connection is simply rescheduled at its real deadline.
//!
//! An entry names its connection by slab slot alone, not by generation:
//! a stale entry of a closed connection whose slot was taken again only
//! fires for the new one if its key equals the new connection's recorded
//! key, which means the same deadline, so the new connection is woken
//! exactly when it asked to be.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::app::ConnId;

/// The wake-ups of a loop's connections.
#[derive(Debug)]
pub(crate) struct Timers {
    /// One entry per connection with a deadline, at least: 12 bytes each
    /// (a `(u64, ConnId)` would take 24).
    heap: BinaryHeap<Reverse<HeapEntry>>,
    /// What [`Scheduled`] counts from.
    epoch: Instant,
}

/// A heap entry: the key (the deadline as [`Scheduled`] counts it) in
/// two halves, so that the entry is aligned to 4 bytes and takes 12, and
/// the connection's slab slot. Ordered by key first (the derived order
/// compares the fields in turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HeapEntry {
    key_high: u32,
    key_low: u32,
    slot: u32,
}

impl HeapEntry {
    fn key(&self) -> u64 {
        (u64::from(self.key_high) << 32) | u64::from(self.key_low)
    }
}

/// A popped heap entry, to be checked with [`Timers::take_if_current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry(u64);

/// A connection's record of its entry in the heap: nanoseconds after the
/// loop's epoch, plus one (zero: none). Eight bytes where an
/// `Option<Instant>` takes sixteen, in every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scheduled(u64);

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            epoch: Instant::now(),
        }
    }
}

impl Timers {
    fn key(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// Makes sure `conn` is woken no later than `at`. `scheduled` is the
    /// connection's record of its entry in the heap, updated here.
    pub(crate) fn schedule(&mut self, conn: ConnId, at: Instant, scheduled: &mut Scheduled) {
        let key = self.key(at);
        if scheduled.0 == 0 || key < scheduled.0 {
            // Neither conversion can fail: the halves fit by construction,
            // and a slot is a `ConnId`'s `u32` index.
            self.heap.push(Reverse(HeapEntry {
                key_high: u32::try_from(key >> 32).unwrap_or(u32::MAX),
                key_low: u32::try_from(key & u64::from(u32::MAX)).unwrap_or(u32::MAX),
                slot: u32::try_from(conn.index()).unwrap_or(u32::MAX),
            }));
            scheduled.0 = key;
        }
    }

    fn instant(&self, key: u64) -> Instant {
        self.epoch + std::time::Duration::from_nanos(key - 1)
    }

    /// Whether a popped entry is the connection's live one (and not one it
    /// has since replaced); if so, the record is cleared.
    pub(crate) fn take_if_current(&self, entry: Entry, scheduled: &mut Scheduled) -> bool {
        let current = scheduled.0 == entry.0;
        if current {
            scheduled.0 = 0;
        }
        current
    }

    /// The earliest entry's deadline (the entry may be stale).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| self.instant(entry.key()))
    }

    /// Removes and returns the next entry due at `now`, with the slab
    /// slot of its connection (whichever connection holds it now: see
    /// [`Timers::take_if_current`]).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Entry, usize)> {
        let now = self.key(now);
        match self.heap.peek() {
            Some(Reverse(entry)) if entry.key() <= now => self
                .heap
                .pop()
                .map(|Reverse(entry)| (Entry(entry.key()), entry.slot as usize)),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn later_deadlines_do_not_grow_the_heap() {
        let mut timers = Timers::default();
        let now = Instant::now();
        let conn = ConnId::new(1, 1);
        let mut scheduled = Scheduled::default();
        for s in 1..100 {
            timers.schedule(conn, now + Duration::from_secs(s), &mut scheduled);
        }
        assert_eq!(timers.len(), 1);
        timers.schedule(conn, now, &mut scheduled);
        assert_eq!(timers.len(), 2, "an earlier deadline is pushed");
        assert_eq!(timers.next(), Some(now));
        let (entry, popped) = timers.pop_due(now).expect("due");
        assert_eq!(popped, conn.index());
        assert!(timers.take_if_current(entry, &mut scheduled));
        assert!(!timers.take_if_current(entry, &mut scheduled), "taken once");
        assert_eq!(timers.pop_due(now), None);
        // The stale later entry is still there, but no longer current.
        let (stale, _) = timers
            .pop_due(now + Duration::from_secs(1))
            .expect("the first, stale entry");
        assert!(!timers.take_if_current(stale, &mut scheduled));
    }

    #[test]
    fn entries_pop_in_deadline_order_across_the_halves_of_the_key() {
        let mut timers = Timers::default();
        let epoch = timers.epoch;
        // Keys below and above 2^32 ns (4.29 s), and one far beyond, so
        // that both halves of the key decide the order somewhere.
        let deadlines = [
            Duration::from_secs(5),
            Duration::from_millis(4294),
            Duration::from_secs(4),
            Duration::from_millis(4296),
            Duration::from_secs(86_400 * 400),
            Duration::from_nanos(1),
            Duration::from_secs(9),
        ];
        let mut records = vec![Scheduled::default(); deadlines.len()];
        for (slot, (after, record)) in deadlines.iter().zip(&mut records).enumerate() {
            timers.schedule(ConnId::new(slot, 7), epoch + *after, record);
        }
        let mut popped = Vec::new();
        while let Some((entry, slot)) = timers.pop_due(epoch + Duration::from_secs(86_400 * 401)) {
            assert!(timers.take_if_current(entry, &mut records[slot]));
            popped.push(slot);
        }
        assert_eq!(popped, [5, 2, 1, 3, 0, 6, 4]);
    }

    #[test]
    fn an_entry_takes_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<HeapEntry>>(), 12);
    }
}
