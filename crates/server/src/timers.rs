//! One structure for every deadline of a loop (handshake, keepalive, idle,
//! close, SSE heartbeat, lingering close), which gives `Poll::poll` its
//! timeout.
//!
//! A min-heap with lazy deletion: each connection remembers the one
//! deadline it has in the heap. Activity only ever moves a connection's
//! deadline later, so the common case (a message arrives, the idle timer
//! moves) touches the heap not at all; when an entry fires early, the
//! connection is simply rescheduled at its real deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::ConnId;

/// The wake-ups of a loop's connections.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Entries as (key, connection), the key being the deadline as
    /// [`Scheduled`] counts it: 16 bytes an entry rather than 24.
    heap: BinaryHeap<Reverse<(u64, ConnId)>>,
    /// What [`Scheduled`] counts from.
    epoch: Instant,
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
            self.heap.push(Reverse((key, conn)));
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
        self.heap.peek().map(|Reverse((key, _))| self.instant(*key))
    }

    /// Removes and returns the next entry due at `now`, with its
    /// connection.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Entry, ConnId)> {
        let now = self.key(now);
        match self.heap.peek() {
            Some(Reverse((key, _))) if *key <= now => {
                self.heap.pop().map(|Reverse((key, conn))| (Entry(key), conn))
            }
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
        assert_eq!(popped, conn);
        assert!(timers.take_if_current(entry, &mut scheduled));
        assert!(!timers.take_if_current(entry, &mut scheduled), "taken once");
        assert_eq!(timers.pop_due(now), None);
        // The stale later entry is still there, but no longer current.
        let (stale, _) = timers
            .pop_due(now + Duration::from_secs(1))
            .expect("the first, stale entry");
        assert!(!timers.take_if_current(stale, &mut scheduled));
    }
}
