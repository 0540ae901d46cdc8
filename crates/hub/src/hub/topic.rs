//! A topic's replica on one loop and its subscribers: the lists each
//! transport's subscribers are in, where each subscriber is registered (in
//! a few bytes), the topics' short ids, and the placing of a subscriber
//! that arrives or resumes.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::outcomes::Resumed;
use super::transport::Transport;
use crate::backlog::Backlog;
use crate::config::Config;
use crate::event::Event;
use crate::id::EventId;

/// A topic's replica on one loop.
#[derive(Debug)]
pub(super) struct Topic<S> {
    /// Its id in [`TopicIds`], by which its subscribers' registrations
    /// name it.
    pub(super) id: u32,
    pub(super) backlog: Backlog,
    /// The backlog is complete and deliveries are flowing (always, with a
    /// broker that delivers everything everywhere).
    pub(super) ready: bool,
    pub(super) websocket: Vec<S>,
    pub(super) raw_websocket: Vec<S>,
    pub(super) event_stream: Vec<S>,
    pub(super) waiters: Vec<S>,
    /// Subscribers waiting for the topic to be ready.
    pub(super) pending: Vec<PendingSub<S>>,
    /// Subscribers that resumed from an id this replica has not seen yet.
    pub(super) ahead: Vec<AheadSub<S>>,
    /// Requests that wait for the topic to be ready before they open
    /// ([`Hub::warm`](crate::Hub::warm)): they keep it followed.
    pub(super) warming: u32,
}

#[derive(Debug)]
pub(super) struct PendingSub<S> {
    pub(super) sub: S,
    pub(super) transport: Transport,
    pub(super) last_id: Option<String>,
    /// From nowhere ([`Start::Latest`](super::Start::Latest)): the topic's
    /// latest event replayed.
    pub(super) latest: bool,
}

#[derive(Debug)]
pub(super) struct AheadSub<S> {
    pub(super) sub: S,
    pub(super) transport: Transport,
    pub(super) id: EventId,
    /// [`Hub::tick`](crate::Hub::tick)'s count when it arrived.
    pub(super) since_tick: u64,
}

impl<S> Topic<S> {
    pub(super) fn new(config: &Config, name: &str, id: u32, ready: bool) -> Topic<S> {
        let (events, bytes) = config.backlog_bounds(name);
        Topic {
            id,
            backlog: Backlog::new(events, bytes),
            ready,
            websocket: Vec::new(),
            raw_websocket: Vec::new(),
            event_stream: Vec::new(),
            waiters: Vec::new(),
            pending: Vec::new(),
            ahead: Vec::new(),
            warming: 0,
        }
    }

    pub(super) fn is_unwatched(&self) -> bool {
        self.websocket.is_empty()
            && self.raw_websocket.is_empty()
            && self.event_stream.is_empty()
            && self.waiters.is_empty()
            && self.pending.is_empty()
            && self.ahead.is_empty()
            && self.warming == 0
    }

    pub(super) fn list(&mut self, transport: Transport) -> &mut Vec<S> {
        match transport {
            Transport::WebSocket => &mut self.websocket,
            Transport::RawWebSocket => &mut self.raw_websocket,
            Transport::EventStream => &mut self.event_stream,
            Transport::Poll => &mut self.waiters,
        }
    }
}

/// Where a subscriber is registered, in four bytes (there is one per
/// subscriber): an index of the topic's list for its transport, or one
/// of the two markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place(u32);

impl Place {
    /// In the topic's `pending` list.
    pub(super) const PENDING: Place = Place(u32::MAX);
    /// In the topic's `ahead` list.
    pub(super) const AHEAD: Place = Place(u32::MAX - 1);
    /// In the topic's list for its transport, at an index too large for
    /// the others: looked for when it leaves.
    pub(super) const LIVE_FAR: Place = Place(u32::MAX - 2);

    /// At this index of the topic's list for its transport.
    pub(super) fn live(index: usize) -> Place {
        u32::try_from(index)
            .ok()
            .filter(|&i| i < Place::LIVE_FAR.0)
            .map_or(Place::LIVE_FAR, Place)
    }

    /// The index it is at in its live list, if known.
    pub(super) fn index(self) -> Option<usize> {
        (self.0 < Place::LIVE_FAR.0).then(|| usize::try_from(self.0).ok())?
    }
}

/// One per subscriber: kept small (8 bytes, no pointer), so that a map
/// slot with a 16-byte key (a connection and its subscription's number)
/// is no larger than one with a 12-byte key was beside 12 bytes.
#[derive(Debug)]
pub(super) struct Registration {
    /// Its topic's id in [`TopicIds`] in the low 30 bits, its transport
    /// in the top two.
    topic_transport: u32,
    pub(super) place: Place,
}

/// The bits of [`Registration::topic_transport`] below its transport.
const TOPIC_BITS: u32 = 30;

impl Registration {
    /// Topic ids are kept below `1 << 30` ([`TopicIds::take`]).
    pub(super) fn new(topic: u32, transport: Transport, place: Place) -> Registration {
        let transport = match transport {
            Transport::WebSocket => 0,
            Transport::RawWebSocket => 1,
            Transport::EventStream => 2,
            Transport::Poll => 3,
        };
        Registration {
            topic_transport: (topic & ((1 << TOPIC_BITS) - 1)) | transport << TOPIC_BITS,
            place,
        }
    }

    /// Its topic's id in [`TopicIds`].
    pub(super) fn topic(&self) -> u32 {
        self.topic_transport & ((1 << TOPIC_BITS) - 1)
    }

    pub(super) fn transport(&self) -> Transport {
        match self.topic_transport >> TOPIC_BITS {
            0 => Transport::WebSocket,
            1 => Transport::RawWebSocket,
            2 => Transport::EventStream,
            _ => Transport::Poll,
        }
    }
}

/// The names of this loop's topics by a 4-byte id, so that a registration
/// names its topic without a 16-byte pointer. An id is given back when
/// its topic goes (never while a subscriber is registered to it) and
/// reused.
#[derive(Debug, Default)]
pub(super) struct TopicIds {
    pub(super) names: Vec<Option<Arc<str>>>,
    pub(super) free: Vec<u32>,
}

impl TopicIds {
    /// An id for the new topic `name`. Ids count topics that exist at
    /// once, each holding a backlog: far fewer than `1 << 30`, the most a
    /// [`Registration`] holds (a loop with more would confuse the ones
    /// past it; `max_topics` keeps far below).
    pub(super) fn take(&mut self, name: &Arc<str>) -> u32 {
        if let Some(id) = self.free.pop()
            && let Some(slot) = self.names.get_mut(index(id))
        {
            *slot = Some(Arc::clone(name));
            return id;
        }
        self.names.push(Some(Arc::clone(name)));
        u32::try_from(self.names.len() - 1).unwrap_or(u32::MAX)
    }

    pub(super) fn give_back(&mut self, id: u32) {
        if let Some(slot) = self.names.get_mut(index(id))
            && slot.take().is_some()
        {
            self.free.push(id);
        }
    }

    pub(super) fn name(&self, id: u32) -> Option<&Arc<str>> {
        self.names.get(index(id))?.as_ref()
    }
}

pub(super) fn index(id: u32) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX)
}

/// What [`admit`] did with a subscriber of a ready topic.
pub(super) enum Admission {
    /// Registered live: send it the replay from its last id.
    Live,
    /// Registered to wait for its id to arrive.
    Ahead,
    /// A long poll to answer now with the replay; not registered.
    Answer,
}

/// Places a subscriber of a ready topic: live (with its replay to send),
/// held for an id not seen yet, or, for a long poll with something to
/// answer, nowhere. Registers (or unregisters) it accordingly.
pub(super) fn admit<S: Copy + Eq + Hash>(
    topic: &mut Topic<S>,
    subs: &mut HashMap<S, Registration>,
    sub: S,
    transport: Transport,
    last_id: Option<&str>,
    ticks: u64,
) -> Admission {
    if let Some(id) = last_id.and_then(EventId::parse)
        && id > topic.backlog.head()
    {
        topic.ahead.push(AheadSub {
            sub,
            transport,
            id,
            since_tick: ticks,
        });
        subs.insert(sub, Registration::new(topic.id, transport, Place::AHEAD));
        return Admission::Ahead;
    }
    if transport == Transport::Poll
        && let Some(since) = last_id
    {
        let replay = topic.backlog.replay(since);
        if replay.gap().is_some() || replay.events().len() > 0 {
            subs.remove(&sub);
            return Admission::Answer;
        }
    }
    place_live(topic, subs, sub, transport);
    Admission::Live
}

pub(super) fn place_live<S: Copy + Eq + Hash>(
    topic: &mut Topic<S>,
    subs: &mut HashMap<S, Registration>,
    sub: S,
    transport: Transport,
) {
    let id = topic.id;
    let list = topic.list(transport);
    list.push(sub);
    let index = list.len() - 1;
    subs.insert(sub, Registration::new(id, transport, Place::live(index)));
}

/// A held subscriber whose id did not arrive: the gap signal and the
/// backlog; live afterwards (a long poll: answered, unregistered).
pub(super) fn resume<S: Copy + Eq + Hash>(
    topic: &mut Topic<S>,
    subs: &mut HashMap<S, Registration>,
    sub: S,
    transport: Transport,
    id: EventId,
) -> Option<Resumed<S>> {
    let replay = topic.backlog.replay_id(id);
    let gap = replay.gap();
    let events: Vec<Arc<Event>> = replay.events().cloned().collect();
    if transport == Transport::Poll {
        if gap.is_none() && events.is_empty() {
            place_live(topic, subs, sub, transport);
            return None;
        }
        subs.remove(&sub);
    } else {
        place_live(topic, subs, sub, transport);
    }
    Some(Resumed {
        sub,
        transport,
        gap,
        events,
    })
}
