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

/// A scheduled wake-up for a connection.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    /// Makes sure `conn` is woken no later than `at`. `scheduled` is the
    /// connection's record of its entry in the heap, updated here.
    pub(crate) fn schedule(&mut self, conn: ConnId, at: Instant, scheduled: &mut Option<Instant>) {
        if scheduled.is_none_or(|s| at < s) {
            self.heap.push(Reverse((at, conn)));
            *scheduled = Some(at);
        }
    }

    /// The earliest entry, which may be stale.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the next entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
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
        let now = Instant::now();
        let mut timers = Timers::default();
        let conn = ConnId::new(1, 1);
        let mut scheduled = None;
        for s in 1..100 {
            timers.schedule(conn, now + Duration::from_secs(s), &mut scheduled);
        }
        assert_eq!(timers.len(), 1);
        timers.schedule(conn, now, &mut scheduled);
        assert_eq!(timers.len(), 2, "an earlier deadline is pushed");
        assert_eq!(timers.next(), Some(now));
        assert_eq!(timers.pop_due(now), Some((now, conn)));
        assert_eq!(timers.pop_due(now), None);
    }
}
