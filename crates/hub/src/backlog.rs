//! A topic's recent events, bounded by count and by bytes, for replay.

use std::collections::VecDeque;
use std::collections::vec_deque;
use std::sync::Arc;

use crate::error::Error;
use crate::event::Event;
use crate::id::EventId;
use crate::json::Gap;

/// The recent events of one topic, oldest first, bounded by count and by
/// bytes (each event counts for [`Event::cost`]); the oldest go first.
///
/// It answers "what comes after this id?" ([`Backlog::replay`]) exactly,
/// or says that it cannot: when the id is older than what is held, or is
/// not an id of this topic (malformed, ahead of it, from an earlier run of
/// the server), the answer is a [`Gap`] followed by everything held. An id
/// that is not held but lies inside what is (an event the bus acknowledged
/// and then lost) gets a [`Gap`] from that id, then only what is held
/// after it: the client is not sent again what it had.
///
/// Known ids: the id of any held event, the id of the last event dropped
/// (everything after it is held), and [`EventId::ZERO`] while nothing has
/// been dropped (everything since the topic began is held).
///
/// ```
/// use std::sync::Arc;
/// use tether_hub::{Backlog, Event, EventId, Replay};
///
/// let mut backlog = Backlog::new(2, usize::MAX);
/// for seq in 1..=3 {
///     backlog.push(Event::new(Arc::from("t"), EventId::new(9, seq), "message", "x")?)?;
/// }
/// // 9-1 was dropped: after it come 9-2 and 9-3, both held.
/// let Replay::Events(events) = backlog.replay("9-1") else { panic!() };
/// assert_eq!(events.map(|e| e.id().seq()).collect::<Vec<_>>(), [2, 3]);
/// // 0-0 is too old now: a gap, then everything held.
/// let Replay::Gap(gap, events) = backlog.replay("0-0") else { panic!() };
/// assert_eq!((gap.first, gap.resume), (Some(EventId::new(9, 2)), EventId::new(9, 1)));
/// assert_eq!(events.len(), 2);
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Backlog {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
    /// The last event dropped, if any was.
    evicted: Option<EventId>,
    /// The last event pushed, held or not.
    last: Option<EventId>,
    /// Events held with [`Event::lost_before`] or [`Event::lost_after`]:
    /// a replay that crosses one is a gap. Zero almost always, so replays
    /// look for none.
    holes: usize,
}

/// Whether a replay that crosses `event` must say that events may be
/// missing.
fn is_hole(event: &Event) -> bool {
    event.lost_before().is_some() || event.lost_after()
}

/// The answer to a replay request.
#[derive(Debug, Clone)]
pub enum Replay<'a> {
    /// The id is known: exactly the events after it (maybe none).
    Events(Events<'a>),
    /// Events may have been missed: the signal, then everything held.
    Gap(Gap, Events<'a>),
}

impl<'a> Replay<'a> {
    /// The gap signal, if there is one.
    pub fn gap(&self) -> Option<Gap> {
        match self {
            Replay::Events(_) => None,
            Replay::Gap(gap, _) => Some(*gap),
        }
    }

    /// The events to send (after the signal, if any).
    pub fn events(self) -> Events<'a> {
        match self {
            Replay::Events(events) | Replay::Gap(_, events) => events,
        }
    }
}

/// Events of a backlog, oldest first.
#[derive(Debug, Clone)]
pub struct Events<'a>(vec_deque::Iter<'a, Arc<Event>>);

impl<'a> Iterator for Events<'a> {
    type Item = &'a Arc<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Events<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for Events<'_> {}

impl Backlog {
    /// An empty backlog that keeps at most `max_events` events and
    /// `max_bytes` bytes (either may be 0: then nothing is kept, and only
    /// the last id is known).
    pub fn new(max_events: usize, max_bytes: usize) -> Backlog {
        Backlog {
            events: VecDeque::new(),
            bytes: 0,
            max_events,
            max_bytes,
            evicted: None,
            last: None,
            holes: 0,
        }
    }

    /// Appends an event, dropping the oldest ones beyond the bounds (an
    /// event larger than the byte bound is dropped at once).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] if its id is not greater than the last one's
    /// (a broker broke its contract); the backlog is unchanged.
    pub fn push(&mut self, event: Arc<Event>) -> Result<(), Error> {
        let id = event.id();
        if let Some(last) = self.last
            && id <= last
        {
            return Err(Error::OutOfOrder { last, got: id });
        }
        self.last = Some(id);
        self.bytes += event.cost();
        self.holes += usize::from(is_hole(&event));
        self.events.push_back(event);
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            let Some(old) = self.events.pop_front() else { break };
            self.bytes -= old.cost();
            self.holes -= usize::from(is_hole(&old));
            self.evicted = Some(old.id());
        }
        Ok(())
    }

    /// Marks the last event held as one after which events of its epoch
    /// may have been lost ([`Event::set_lost_after`]); false if no event is
    /// held, or the last one is shared (an event is marked while a
    /// damaged log is recovered, before anyone else holds it).
    pub fn mark_lost_after(&mut self) -> bool {
        let Some(last) = self.events.back_mut() else {
            return false;
        };
        let was_hole = is_hole(last);
        let Some(event) = Arc::get_mut(last) else {
            return false;
        };
        event.set_lost_after();
        self.holes += usize::from(!was_hole);
        true
    }

    /// What follows `last_id` (as a client sent it: `Last-Event-ID`,
    /// `lastEventId`, `since`).
    pub fn replay(&self, last_id: &str) -> Replay<'_> {
        match EventId::parse(last_id) {
            Some(id) => self.replay_id(id),
            None => self.gap(),
        }
    }

    /// What follows `id`.
    pub fn replay_id(&self, id: EventId) -> Replay<'_> {
        let from = if Some(id) == self.evicted || (id == EventId::ZERO && self.evicted.is_none()) {
            0
        } else {
            match self.events.binary_search_by(|e| e.id().cmp(&id)) {
                Ok(index) => index + 1,
                // An id of an epoch whose events after the one before it
                // may have been lost: the client had one of them.
                Err(index)
                    if index
                        .checked_sub(1)
                        .and_then(|before| self.events.get(before))
                        .is_some_and(|e| e.lost_after() && e.id().ms() == id.ms()) =>
                {
                    return Replay::Gap(
                        Gap {
                            first: self.events.get(index).map(|e| e.id()),
                            resume: id,
                            lost: None,
                        },
                        Events(self.events.range(index..)),
                    );
                }
                Err(index) => match self.events.get(index).and_then(|e| e.lost_before()) {
                    // The last id lost is known: what follows it is held.
                    Some((_, last)) if last == id => index,
                    Some((first, last)) if first <= id && id < last => {
                        return Replay::Gap(
                            Gap {
                                first: self.events.get(index).map(|e| e.id()),
                                resume: id,
                                lost: Some((first, last)),
                            },
                            Events(self.events.range(index..)),
                        );
                    }
                    // An id no longer held but inside what is (after the
                    // last dropped, before the last held): an event the
                    // bus acknowledged and then lost (a primary that died
                    // before replicating it). The client had it and all
                    // before it, so it gets what is held after it, behind
                    // a gap from it that also covers any other event lost
                    // before the next held one.
                    _ if index < self.events.len() && (index > 0 || self.evicted.is_some_and(|e| e < id)) => {
                        return self.gap_from(id, index);
                    }
                    _ => return self.gap(),
                },
            }
        };
        let events = self.events.range(from..);
        if self.holes > 0 {
            // Events after the id were lost, not dropped: the client is
            // told, then gets every event that is left, in order. The
            // event the id names counts too when what followed it may be
            // lost.
            let resumed = from
                .checked_sub(1)
                .and_then(|at| self.events.get(at))
                .filter(|e| e.id() == id);
            let known = events
                .clone()
                .find_map(|e| e.lost_before().filter(|&(_, last)| last > id));
            let maybe = resumed.into_iter().chain(events.clone()).any(|e| e.lost_after());
            if known.is_some() || maybe {
                return Replay::Gap(
                    Gap {
                        first: self.events.get(from).map(|e| e.id()),
                        resume: id,
                        lost: known,
                    },
                    Events(events),
                );
            }
        }
        Replay::Events(Events(events))
    }

    /// A gap from `id`, not held, to the event at `index`, the first held
    /// after it; then that event and the rest. Names the first hole
    /// known after `id`, if a replay from there crosses one.
    fn gap_from(&self, id: EventId, index: usize) -> Replay<'_> {
        let events = self.events.range(index..);
        let lost = if self.holes > 0 {
            events
                .clone()
                .find_map(|e| e.lost_before().filter(|&(_, last)| last > id))
        } else {
            None
        };
        Replay::Gap(
            Gap {
                first: self.events.get(index).map(|e| e.id()),
                resume: id,
                lost,
            },
            Events(events),
        )
    }

    fn gap(&self) -> Replay<'_> {
        Replay::Gap(
            Gap {
                first: self.first_id(),
                resume: self.evicted.unwrap_or(EventId::ZERO),
                lost: None,
            },
            Events(self.events.iter()),
        )
    }

    /// Forgets everything, ids included: the topic starts over.
    pub fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
        self.holes = 0;
        self.evicted = None;
        self.last = None;
    }

    /// Replaces the contents with `history` (oldest first, ids increasing),
    /// as a broker that keeps the backlog elsewhere hands it over. `dropped`
    /// is the id of the event just before the first of `history`, if there
    /// was one (so that it stays a known id), else `None`: the history goes
    /// back to the topic's beginning.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] if the ids do not increase; the backlog is
    /// then empty, with no known id but `0-0`.
    pub fn reset(
        &mut self,
        history: impl IntoIterator<Item = Arc<Event>>,
        dropped: Option<EventId>,
    ) -> Result<(), Error> {
        self.clear();
        self.evicted = dropped;
        self.last = dropped;
        for event in history {
            if let Err(e) = self.push(event) {
                self.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The number of events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The bytes held (the sum of [`Event::cost`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The oldest event held.
    pub fn first_id(&self) -> Option<EventId> {
        self.events.front().map(|e| e.id())
    }

    /// The last event pushed (held or not).
    pub fn last_id(&self) -> Option<EventId> {
        self.last
    }

    /// The id a subscriber that has every event so far is at: the last
    /// event's, or [`EventId::ZERO`] before the first.
    pub fn head(&self) -> EventId {
        self.last.unwrap_or(EventId::ZERO)
    }

    /// The topic's latest event, if the backlog still holds it: the last
    /// event pushed, alone; nothing when none was, or when it was too
    /// large to keep (an older one would not be the latest).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Backlog, Event, EventId};
    ///
    /// let mut backlog = Backlog::new(10, usize::MAX);
    /// assert_eq!(backlog.latest().count(), 0);
    /// for seq in 1..=3 {
    ///     backlog.push(Event::new(Arc::from("t"), EventId::new(9, seq), "message", "x")?)?;
    /// }
    /// let latest: Vec<_> = backlog.latest().map(|e| e.id()).collect();
    /// assert_eq!(latest, [EventId::new(9, 3)]);
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    pub fn latest(&self) -> Events<'_> {
        let held = self.events.back().is_some_and(|e| Some(e.id()) == self.last);
        let from = if held {
            self.events.len() - 1
        } else {
            self.events.len()
        };
        Events(self.events.range(from..))
    }

    /// The events held, oldest first.
    pub fn iter(&self) -> Events<'_> {
        Events(self.events.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, data_len: usize) -> Arc<Event> {
        Event::new(
            Arc::from("t"),
            EventId::new(100, seq),
            "message",
            &"d".repeat(data_len),
        )
        .unwrap()
    }

    fn ids(events: Events<'_>) -> Vec<u64> {
        events.map(|e| e.id().seq()).collect()
    }

    fn exact(replay: Replay<'_>) -> Vec<u64> {
        match replay {
            Replay::Events(events) => ids(events),
            Replay::Gap(gap, _) => panic!("unexpected gap {gap:?}"),
        }
    }

    fn gap(replay: Replay<'_>) -> (Gap, Vec<u64>) {
        match replay {
            Replay::Gap(gap, events) => (gap, ids(events)),
            Replay::Events(events) => panic!("expected a gap, got events {:?}", ids(events)),
        }
    }

    #[test]
    fn bounded_by_count() {
        let mut b = Backlog::new(3, usize::MAX);
        for seq in 1..=5 {
            b.push(event(seq, 1)).unwrap();
        }
        assert_eq!(ids(b.iter()), [3, 4, 5]);
        assert_eq!(
            (b.first_id(), b.last_id()),
            (Some(EventId::new(100, 3)), Some(EventId::new(100, 5)))
        );
    }

    #[test]
    fn bounded_by_bytes() {
        let one = event(1, 10).cost();
        let mut b = Backlog::new(usize::MAX, 2 * one + one / 2);
        for seq in 1..=4 {
            b.push(event(seq, 10)).unwrap();
            assert!(b.bytes() <= 2 * one + one / 2);
        }
        assert_eq!(ids(b.iter()), [3, 4]);
        assert_eq!(b.bytes(), 2 * one);
        // An event larger than the bound is dropped at once, but its id is
        // known: after it comes nothing.
        b.push(event(5, 10_000)).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
        assert_eq!(exact(b.replay("100-5")), Vec::<u64>::new());
        assert_eq!(gap(b.replay("100-4")).0.resume, EventId::new(100, 5));
    }

    #[test]
    fn replays_exactly_what_follows_a_known_id() {
        let mut b = Backlog::new(4, usize::MAX);
        assert_eq!(exact(b.replay("0-0")), Vec::<u64>::new());
        for seq in 1..=3 {
            b.push(event(seq, 1)).unwrap();
        }
        assert_eq!(exact(b.replay("0-0")), [1, 2, 3]);
        assert_eq!(exact(b.replay("100-1")), [2, 3]);
        assert_eq!(exact(b.replay("100-3")), Vec::<u64>::new());
        for seq in 4..=6 {
            b.push(event(seq, 1)).unwrap();
        }
        // Held: 3..=6; 2 was the last dropped.
        assert_eq!(exact(b.replay("100-2")), [3, 4, 5, 6]);
        assert_eq!(exact(b.replay("100-4")), [5, 6]);
    }

    #[test]
    fn gap_for_old_unknown_and_malformed_ids() {
        let mut b = Backlog::new(2, usize::MAX);
        for seq in 1..=4 {
            b.push(event(seq, 1)).unwrap();
        }
        let expected = Gap {
            first: Some(EventId::new(100, 3)),
            resume: EventId::new(100, 2),
            lost: None,
        };
        for id in [
            "100-1",  // older than the backlog
            "0-0",    // the beginning, no longer held
            "100-9",  // ahead of the topic
            "99-3",   // another epoch (an earlier run)
            "101-1",  // a later epoch
            "banana", // malformed
            "", "100-03",
        ] {
            assert_eq!(gap(b.replay(id)), (expected, vec![3, 4]), "{id:?}");
        }
    }

    #[test]
    fn a_replay_across_lost_events_is_a_gap_naming_them() {
        let mut b = Backlog::new(10, usize::MAX);
        for seq in [1, 2, 5, 6] {
            let mut e = event(seq, 1);
            if seq == 5 {
                Arc::get_mut(&mut e)
                    .unwrap()
                    .set_lost_before(EventId::new(100, 3), EventId::new(100, 4));
            }
            b.push(e).unwrap();
        }
        let lost = Some((EventId::new(100, 3), EventId::new(100, 4)));
        for (from, first, rest) in [
            ("0-0", 1, vec![1, 2, 5, 6]),
            ("100-1", 2, vec![2, 5, 6]),
            ("100-2", 5, vec![5, 6]),
        ] {
            let expected = Gap {
                first: Some(EventId::new(100, first)),
                resume: EventId::parse(from).unwrap(),
                lost,
            };
            assert_eq!(gap(b.replay(from)), (expected, rest), "{from}");
        }
        // Inside the hole: a gap from there; its last id and after: exact.
        let inside = Gap {
            first: Some(EventId::new(100, 5)),
            resume: EventId::new(100, 3),
            lost,
        };
        assert_eq!(gap(b.replay("100-3")), (inside, vec![5, 6]));
        assert_eq!(exact(b.replay("100-4")), [5, 6]);
        assert_eq!(exact(b.replay("100-5")), [6]);
        // Once the event after the hole is dropped, replays never cross it.
        for seq in 7..=16 {
            b.push(event(seq, 1)).unwrap();
        }
        assert_eq!(b.holes, 0);
        assert_eq!(exact(b.replay("100-7")).len(), 9);
    }

    #[test]
    fn gap_on_an_empty_topic() {
        let b = Backlog::new(2, usize::MAX);
        assert_eq!(
            gap(b.replay("5-5")),
            (
                Gap {
                    first: None,
                    resume: EventId::ZERO,
                    lost: None,
                },
                vec![]
            )
        );
    }

    #[test]
    fn resuming_from_the_gap_gives_no_second_gap() {
        let mut b = Backlog::new(2, usize::MAX);
        for seq in 1..=5 {
            b.push(event(seq, 1)).unwrap();
        }
        let (signal, events) = gap(b.replay("nope"));
        assert_eq!(exact(b.replay(&signal.resume.to_string())), events);
    }

    #[test]
    fn refuses_ids_that_do_not_increase() {
        let mut b = Backlog::new(2, usize::MAX);
        b.push(event(2, 1)).unwrap();
        assert_eq!(
            b.push(event(2, 1)),
            Err(Error::OutOfOrder {
                last: EventId::new(100, 2),
                got: EventId::new(100, 2)
            })
        );
        assert!(b.push(event(1, 1)).is_err());
        assert_eq!(ids(b.iter()), [2]);
    }

    #[test]
    fn reset_and_clear() {
        let mut b = Backlog::new(10, usize::MAX);
        b.reset([event(4, 1), event(5, 1)], Some(EventId::new(100, 3)))
            .unwrap();
        assert_eq!(exact(b.replay("100-3")), [4, 5]);
        assert!(b.replay("0-0").gap().is_some());
        b.reset([event(1, 1), event(2, 1)], None).unwrap();
        assert_eq!(exact(b.replay("0-0")), [1, 2]);
        assert!(b.reset([event(2, 1), event(1, 1)], None).is_err());
        assert!(b.is_empty());
        b.push(event(7, 1)).unwrap();
        b.clear();
        assert_eq!(
            (b.len(), b.bytes(), b.last_id(), b.head()),
            (0, 0, None, EventId::ZERO)
        );
        assert_eq!(exact(b.replay("0-0")), Vec::<u64>::new());
    }

    #[test]
    fn events_after_one_marked_lost_after_are_a_gap_from_it_before_it_and_within_its_epoch() {
        let mut b = Backlog::new(10, usize::MAX);
        for seq in 1..=3 {
            b.push(Event::new(Arc::from("t"), EventId::new(5, seq), "message", "x").unwrap())
                .unwrap();
        }
        assert!(b.mark_lost_after());
        b.push(Event::new(Arc::from("t"), EventId::new(6, 1), "message", "x").unwrap())
            .unwrap();
        for from in ["5-3", "5-4", "5-9"] {
            let (signal, events) = gap(b.replay(from));
            assert_eq!((signal.lost, events), (None, vec![1]), "{from}");
        }
        let (signal, events) = gap(b.replay("5-1"));
        assert_eq!((signal.first, signal.lost), (Some(EventId::new(5, 2)), None));
        assert_eq!(events, vec![2, 3, 1]);
        // After it, in the next epoch: exact.
        assert!(b.replay("6-1").gap().is_none());
        // Once evicted, the mark goes with it.
        let mut small = Backlog::new(1, usize::MAX);
        small
            .push(Event::new(Arc::from("t"), EventId::new(5, 1), "message", "x").unwrap())
            .unwrap();
        assert!(small.mark_lost_after());
        small
            .push(Event::new(Arc::from("t"), EventId::new(6, 1), "message", "x").unwrap())
            .unwrap();
        assert_eq!(small.holes, 0);
        // Nothing to mark in an empty backlog.
        assert!(!Backlog::new(1, usize::MAX).mark_lost_after());
    }

    #[test]
    fn an_id_lost_inside_the_backlog_replays_only_what_follows_it() {
        // 100-3 and 100-6 were acknowledged, delivered, then lost by the
        // bus (a primary that died before replicating them).
        let mut b = Backlog::new(10, usize::MAX);
        for seq in [1, 2, 4, 5, 7] {
            b.push(event(seq, 1)).unwrap();
        }
        for (from, first, rest) in [("100-3", 4, vec![4, 5, 7]), ("100-6", 7, vec![7])] {
            let expected = Gap {
                first: Some(EventId::new(100, first)),
                resume: EventId::parse(from).unwrap(),
                lost: None,
            };
            assert_eq!(gap(b.replay(from)), (expected, rest), "{from}");
        }
        // Known ids stay exact; ids ahead of the topic are still held
        // back by the hub and then get everything.
        assert_eq!(exact(b.replay("100-2")), [4, 5, 7]);
        assert_eq!(gap(b.replay("100-8")).1, [1, 2, 4, 5, 7]);
        assert_eq!(gap(b.replay("100-8")).0.resume, EventId::ZERO);
        // Another millisecond between two held ones: the same.
        let mut m = Backlog::new(10, usize::MAX);
        for (ms, seq) in [(100, 1), (100, 2), (102, 0)] {
            m.push(Event::new(Arc::from("t"), EventId::new(ms, seq), "message", "x").unwrap())
                .unwrap();
        }
        for from in ["100-3", "101-0", "101-7", "102-0"] {
            let replay = m.replay(from);
            if from == "102-0" {
                assert_eq!(exact(replay), Vec::<u64>::new());
            } else {
                let (signal, events) = gap(replay);
                assert_eq!(
                    (signal.first, signal.resume),
                    (Some(EventId::new(102, 0)), EventId::parse(from).unwrap()),
                    "{from}"
                );
                assert_eq!(events, vec![0], "{from}");
            }
        }
    }

    #[test]
    fn an_id_lost_between_the_last_dropped_and_the_first_held() {
        let mut b = Backlog::new(2, usize::MAX);
        for seq in [1, 2, 4, 5] {
            b.push(event(seq, 1)).unwrap();
        }
        // 100-2 was dropped, 100-3 lost, 100-4 is the first held.
        let expected = Gap {
            first: Some(EventId::new(100, 4)),
            resume: EventId::new(100, 3),
            lost: None,
        };
        assert_eq!(gap(b.replay("100-3")), (expected, vec![4, 5]));
        // Older than the last dropped: everything, from it.
        let (signal, events) = gap(b.replay("100-1"));
        assert_eq!((signal.resume, events), (EventId::new(100, 2), vec![4, 5]));
        // With nothing dropped, an id before the first held is no id of
        // this topic's (an earlier run's): everything, from the start.
        let mut fresh = Backlog::new(10, usize::MAX);
        fresh.push(event(4, 1)).unwrap();
        let (signal, events) = gap(fresh.replay("100-3"));
        assert_eq!((signal.resume, events), (EventId::ZERO, vec![4]));
    }

    #[test]
    fn an_id_lost_before_a_known_hole_names_the_hole() {
        let mut b = Backlog::new(10, usize::MAX);
        for seq in [1, 3, 6] {
            let mut e = event(seq, 1);
            if seq == 6 {
                Arc::get_mut(&mut e)
                    .unwrap()
                    .set_lost_before(EventId::new(100, 4), EventId::new(100, 5));
            }
            b.push(e).unwrap();
        }
        let lost = Some((EventId::new(100, 4), EventId::new(100, 5)));
        let expected = Gap {
            first: Some(EventId::new(100, 3)),
            resume: EventId::new(100, 2),
            lost,
        };
        assert_eq!(gap(b.replay("100-2")), (expected, vec![3, 6]));
    }

    proptest::proptest! {
        /// Whatever the bus lost and the backlog dropped, a client that
        /// resumes from any id it could have had (one held, dropped or
        /// lost after the last dropped) gets exactly what is held after
        /// it, and a gap unless the id is known.
        #[test]
        fn a_replay_never_repeats_and_never_skips_what_is_held(
            kept in proptest::collection::vec(proptest::bool::ANY, 1..40),
            max_events in 1usize..12,
        ) {
            let mut b = Backlog::new(max_events, usize::MAX);
            let all: Vec<u64> = (1..=kept.len() as u64).collect();
            for (&seq, &keep) in all.iter().zip(&kept) {
                if keep {
                    b.push(event(seq, 1)).unwrap();
                }
            }
            let held = ids(b.iter());
            let Some(&last) = held.last() else { return Ok(()) };
            for &seq in all.iter().filter(|&&seq| seq <= last) {
                let id = EventId::new(100, seq);
                if b.evicted.is_some_and(|e| id < e) {
                    continue;
                }
                let replay = b.replay_id(id);
                let signalled = replay.gap();
                let got = ids(replay.events());
                let after: Vec<u64> = held.iter().copied().filter(|&s| s > seq).collect();
                if b.evicted.is_none() && seq < held[0] {
                    // Before the topic's first event: everything.
                    proptest::prop_assert_eq!(got, held.clone());
                    continue;
                }
                proptest::prop_assert_eq!(&got, &after, "from {}", seq);
                let known = held.contains(&seq) || Some(id) == b.evicted;
                proptest::prop_assert_eq!(signalled.is_some(), !known, "from {}", seq);
                if let Some(signal) = signalled {
                    proptest::prop_assert_eq!(signal.resume, id);
                    proptest::prop_assert_eq!(signal.first, after.first().map(|&s| EventId::new(100, s)));
                }
            }
        }
    }
}
