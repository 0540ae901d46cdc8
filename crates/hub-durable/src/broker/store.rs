//! What one loop's durable broker keeps: each topic's backlog with the
//! log index of each of its events, and the loop's log with the age of
//! each segment, written to as events are numbered and trimmed as topics
//! move past its segments.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tether_hub::{Backlog, Config, Error, Event, EventId, Numbered};
use tether_log::Log;

use crate::record::encode_event;
use crate::sync::Syncer;

/// What the durable broker keeps of a topic beside its numbering
/// ([`Sequence::state`](tether_hub::Sequence::state)): the backlog, to answer a loop that follows the
/// topic, and where its events are in the log.
pub(super) struct Held {
    pub(super) backlog: Backlog,
    /// The log index of each event the backlog holds, oldest first.
    pub(super) indices: VecDeque<(EventId, u64)>,
    /// The id just before the backlog's first event, if any.
    pub(super) dropped: Option<EventId>,
    /// The log index of the topic's last event.
    pub(super) last_index: u64,
    /// Its events go to the log (`false`: a namespace kept in memory
    /// only, which needs no segment).
    pub(super) durable: bool,
}

impl Held {
    pub(super) fn new(config: &Config, topic: &str) -> Held {
        Held::after(config, topic, None)
    }

    /// Nothing held of `topic`, `dropped` the id before what comes next.
    pub(super) fn after(config: &Config, topic: &str, dropped: Option<EventId>) -> Held {
        let (events, bytes) = config.backlog_bounds(topic);
        let mut backlog = Backlog::new(events, bytes);
        // An empty history with a known id before it cannot be out of order.
        let _ = backlog.reset(Vec::new(), dropped);
        Held {
            backlog,
            indices: VecDeque::new(),
            dropped,
            last_index: 0,
            durable: config.is_durable(topic),
        }
    }

    /// Takes an event into the backlog (already numbered in order, its
    /// key remembered by the topic's [`Sequence`](tether_hub::Sequence)), with its log index if
    /// it was written to the log.
    pub(super) fn push(&mut self, event: Arc<Event>, index: Option<u64>) {
        let id = event.id();
        if let Some(index) = index {
            self.last_index = index;
        }
        if self.backlog.push(event).is_err() {
            return;
        }
        if let Some(index) = index {
            self.indices.push_back((id, index));
        }
        let first = self.backlog.first_id();
        while let Some(&(oldest, _)) = self.indices.front() {
            if Some(oldest) == first {
                break;
            }
            self.indices.pop_front();
            self.dropped = Some(oldest);
        }
    }

    /// The oldest log index this topic still needs: its oldest held event,
    /// or its last one (so that its numbering survives a restart); `None`
    /// for a topic kept in memory only.
    pub(super) fn first_needed(&self) -> Option<u64> {
        if !self.durable {
            return None;
        }
        Some(self.indices.front().map_or(self.last_index, |&(_, index)| index))
    }
}

/// A loop's log and what the broker knows of it.
pub(super) struct Store {
    pub(super) log: Log,
    pub(super) syncer: Option<Syncer>,
    /// The newest publish time in each segment (by base index).
    pub(super) segment_newest: VecDeque<(u64, u64)>,
    pub(super) append_errors: u64,
}

impl Store {
    /// Encodes and writes a numbered event, published at `now`: its log
    /// index. On failure nothing was written.
    pub(super) fn append(&mut self, numbered: Numbered<'_>, now: u64) -> Result<u64, Error> {
        let mut payload = Vec::with_capacity(numbered.event.data_bytes().len().saturating_add(64));
        encode_event(&mut payload, numbered.event, now, numbered.continues);
        let index = match self.log.append(&payload, Instant::now()) {
            Ok(index) => index,
            Err(e) => {
                self.append_errors = self.append_errors.saturating_add(1);
                log::error!("durable log {}: {e}; publish refused", self.log.dir().display());
                return Err(Error::BrokerUnavailable);
            }
        };
        if let Some(syncer) = &mut self.syncer {
            syncer.appended(&self.log);
        }
        let base = self.log.active_base();
        match self.segment_newest.back_mut() {
            Some((last_base, ms)) if *last_base == base => *ms = (*ms).max(now),
            _ => self.segment_newest.push_back((base, now)),
        }
        Ok(index)
    }

    /// Deletes the segments no topic needs any more.
    /// (`needed`: the oldest index a topic needs, if there is a topic;
    /// `retention` in milliseconds.)
    pub(super) fn remove_segments(&mut self, needed: Option<u64>, retention: Option<u64>, now_ms: u64) {
        let needed = needed.unwrap_or(self.log.next_index());
        let mut until = None;
        for segment in self.log.segments() {
            let newest = self
                .segment_newest
                .iter()
                .find(|(base, _)| *base == segment.base)
                .map_or(0, |&(_, ms)| ms);
            let expired = retention.is_some_and(|r| now_ms.saturating_sub(newest) >= r);
            if segment.end <= needed || expired {
                until = Some(segment.end);
            } else {
                break;
            }
        }
        let Some(until) = until else { return };
        match self.log.remove_before(until) {
            Ok(0) => {}
            Ok(_) => {
                let first = self.log.segments().next().map_or(0, |s| s.base);
                while self.segment_newest.front().is_some_and(|&(base, _)| base < first) {
                    self.segment_newest.pop_front();
                }
            }
            Err(e) => log::warn!("durable log {}: {e}", self.log.dir().display()),
        }
    }
}
