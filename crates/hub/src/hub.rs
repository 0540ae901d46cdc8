//! One event loop's view of the topics: backlog replicas and local
//! subscribers.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::hash::Hash;
use std::mem;
use std::sync::Arc;

use crate::{Backlog, Config, Error, Event, EventId, Gap, Replay, is_valid_topic};

/// How a subscriber receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A WebSocket session: [`Event::ws_frame`].
    WebSocket,
    /// A WebSocket session that gets each event's data alone:
    /// [`Event::ws_raw_frame`].
    RawWebSocket,
    /// A Server-Sent Events stream: [`Event::sse`].
    EventStream,
    /// A long poll: answered once, with [`Event::json`].
    Poll,
}

/// A topic's replica on one loop.
#[derive(Debug)]
struct Topic<S> {
    /// Its id in [`TopicIds`], by which its subscribers' registrations
    /// name it.
    id: u32,
    backlog: Backlog,
    /// The backlog is complete and deliveries are flowing (always, with a
    /// broker that delivers everything everywhere).
    ready: bool,
    websocket: Vec<S>,
    raw_websocket: Vec<S>,
    event_stream: Vec<S>,
    waiters: Vec<S>,
    /// Subscribers waiting for the topic to be ready.
    pending: Vec<PendingSub<S>>,
    /// Subscribers that resumed from an id this replica has not seen yet.
    ahead: Vec<AheadSub<S>>,
}

#[derive(Debug)]
struct PendingSub<S> {
    sub: S,
    transport: Transport,
    last_id: Option<String>,
}

#[derive(Debug)]
struct AheadSub<S> {
    sub: S,
    transport: Transport,
    id: EventId,
    /// [`Hub::tick`]'s count when it arrived.
    since_tick: u64,
}

impl<S> Topic<S> {
    fn new(config: &Config, name: &str, id: u32, ready: bool) -> Topic<S> {
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
        }
    }

    fn is_unwatched(&self) -> bool {
        self.websocket.is_empty()
            && self.raw_websocket.is_empty()
            && self.event_stream.is_empty()
            && self.waiters.is_empty()
            && self.pending.is_empty()
            && self.ahead.is_empty()
    }

    fn list(&mut self, transport: Transport) -> &mut Vec<S> {
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
struct Place(u32);

impl Place {
    /// In the topic's `pending` list.
    const PENDING: Place = Place(u32::MAX);
    /// In the topic's `ahead` list.
    const AHEAD: Place = Place(u32::MAX - 1);
    /// In the topic's list for its transport, at an index too large for
    /// the others: looked for when it leaves.
    const LIVE_FAR: Place = Place(u32::MAX - 2);

    /// At this index of the topic's list for its transport.
    fn live(index: usize) -> Place {
        u32::try_from(index)
            .ok()
            .filter(|&i| i < Place::LIVE_FAR.0)
            .map_or(Place::LIVE_FAR, Place)
    }

    /// The index it is at in its live list, if known.
    fn index(self) -> Option<usize> {
        (self.0 < Place::LIVE_FAR.0).then(|| usize::try_from(self.0).ok())?
    }
}

/// One per subscriber: kept small (12 bytes, no pointer).
#[derive(Debug)]
struct Registration {
    /// Its topic's id in [`TopicIds`].
    topic: u32,
    place: Place,
    transport: Transport,
}

/// The names of this loop's topics by a 4-byte id, so that a registration
/// names its topic without a 16-byte pointer. An id is given back when
/// its topic goes (never while a subscriber is registered to it) and
/// reused.
#[derive(Debug, Default)]
struct TopicIds {
    names: Vec<Option<Arc<str>>>,
    free: Vec<u32>,
}

impl TopicIds {
    /// An id for the new topic `name`. Ids count topics that exist at
    /// once, each holding a backlog: far fewer than `u32::MAX`.
    fn take(&mut self, name: &Arc<str>) -> u32 {
        if let Some(id) = self.free.pop()
            && let Some(slot) = self.names.get_mut(index(id))
        {
            *slot = Some(Arc::clone(name));
            return id;
        }
        self.names.push(Some(Arc::clone(name)));
        u32::try_from(self.names.len() - 1).unwrap_or(u32::MAX)
    }

    fn give_back(&mut self, id: u32) {
        if let Some(slot) = self.names.get_mut(index(id))
            && slot.take().is_some()
        {
            self.free.push(id);
        }
    }

    fn name(&self, id: u32) -> Option<&Arc<str>> {
        self.names.get(index(id))?.as_ref()
    }
}

fn index(id: u32) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX)
}

/// What [`admit`] did with a subscriber of a ready topic.
enum Admission {
    /// Registered live: send it the replay from its last id.
    Live,
    /// Registered to wait for its id to arrive.
    Ahead,
    /// A long poll to answer now with the replay; not registered.
    Answer,
}

/// The result of [`Hub::subscribe`].
#[derive(Debug)]
pub enum Subscribed<'a> {
    /// The subscriber is live: send it this replay first (a gap signal if
    /// there is one, then the events), before anything else.
    Live(Replay<'a>),
    /// The subscriber is held, to come back in a [`Resumed`] (from
    /// [`Hub::deliver`], [`Hub::ready`] or [`Hub::tick`]); send it nothing
    /// until then. Either the topic is not ready (a broker that replicates
    /// topics on demand is fetching its backlog), or the subscriber
    /// resumed from an id this loop has not seen yet (an event still on
    /// its way here, as when a client moves from one loop to another: it
    /// becomes live, with nothing to replay, when that event arrives, or
    /// gets a gap signal if no such event comes within one to two ticks).
    Held {
        /// This is the topic's first subscriber on this loop: ask the broker
        /// to follow the topic ([`crate::Broker::follow`]).
        follow: bool,
    },
}

/// The result of [`Hub::poll`].
#[derive(Debug)]
pub enum Polled {
    /// Answer now (the poller is not registered): a gap signal, or events
    /// after `since`, or both.
    Now {
        /// The gap signal, if any.
        gap: Option<Gap>,
        /// The events, oldest first.
        events: Vec<Arc<Event>>,
    },
    /// Nothing to answer yet: the poller waits for the topic's next event
    /// (it comes in [`Delivery::waiters`]).
    Wait,
    /// Held, as in [`Subscribed::Held`]; a [`Resumed`] answers it, or a
    /// [`Delivery::waiters`] once it is waiting.
    Held {
        /// Ask the broker to follow the topic.
        follow: bool,
    },
}

/// What to do with one delivered event on this loop.
#[derive(Debug)]
pub struct Delivery<'a, S> {
    /// WebSocket subscribers: send them [`Event::ws_frame`].
    pub websocket: &'a [S],
    /// Raw WebSocket subscribers: send them [`Event::ws_raw_frame`].
    pub raw_websocket: &'a [S],
    /// Event-stream subscribers: send them [`Event::sse`].
    pub event_stream: &'a [S],
    /// Long polls to answer with the event; they are no longer registered.
    pub waiters: Vec<S>,
    /// Held subscribers that resumed from an id that turned out not to
    /// exist (the topic went past it): send each its gap signal and
    /// replay, which includes this event.
    pub resumed: Vec<Resumed<S>>,
}

/// A held subscriber (see [`Subscribed::Held`]) that is live now, with
/// what to send it first.
#[derive(Debug)]
pub struct Resumed<S> {
    /// The subscriber.
    pub sub: S,
    /// Its transport. A WebSocket or event-stream subscriber is live now; a
    /// long poll is to be answered with this, and is no longer registered.
    pub transport: Transport,
    /// The gap signal, if any.
    pub gap: Option<Gap>,
    /// The events to send, oldest first.
    pub events: Vec<Arc<Event>>,
}

/// The result of [`Hub::ready`].
#[derive(Debug)]
pub struct Readied<S> {
    /// Held subscribers, now live (or answered, for long polls).
    pub resumed: Vec<Resumed<S>>,
    /// When the topic was ready already (the broker lost continuity and
    /// resynchronised it): its live subscribers may have missed events.
    /// End their subscriptions (WebSocket close 1012, end the event
    /// stream) so that they resume from their last id, and answer the long
    /// polls among them (no longer registered) as if they had timed out.
    pub resync: Vec<(S, Transport)>,
}

/// A subscriber that left, from [`Hub::unsubscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// Its topic.
    pub topic: Arc<str>,
    /// Its transport.
    pub transport: Transport,
    /// It was the last on this loop of a topic followed on demand: tell the
    /// broker ([`crate::Broker::unfollow`]); the replica is gone.
    pub unfollow: bool,
}

/// A topic's numbers on this loop, from [`Hub::topics`] (or
/// [`TopicInfo::of_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// Events in the backlog.
    pub events: usize,
    /// Bytes in the backlog.
    pub bytes: usize,
    /// The last event's id, or `0-0`.
    pub head: EventId,
    /// WebSocket subscribers on this loop, raw ones included.
    pub websocket: usize,
    /// Event-stream subscribers on this loop.
    pub event_stream: usize,
    /// Long polls waiting on this loop.
    pub waiting: usize,
    /// Subscribers held on this loop.
    pub held: usize,
}

impl TopicInfo {
    /// A topic known by its backlog alone (as a broker holds it), with
    /// no subscriber.
    pub fn of_backlog(backlog: &Backlog) -> TopicInfo {
        TopicInfo {
            events: backlog.len(),
            bytes: backlog.bytes(),
            head: backlog.head(),
            websocket: 0,
            event_stream: 0,
            waiting: 0,
            held: 0,
        }
    }
}

/// One event loop's hub: a replica of each topic's backlog, and the
/// loop's own subscribers. `S` identifies a subscriber (a connection id).
///
/// Sans-IO, in the words every tether crate uses: events in rather
/// than bytes ([`Hub::deliver`], from the broker), events and bytes out
/// (whom to send what, as a [`Delivery`], with the bytes each event was
/// encoded to once, shared); it sends nothing itself. Time passed in as
/// ticks ([`Hub::tick`], about once a second), and no deadline out: the
/// caller's next tick is the only one.
///
/// Every loop of a server has one; a [`crate::Broker`] sequences publishes
/// and delivers each event to every loop's hub ([`Hub::deliver`]) in the
/// same order. Subscribing ([`Hub::subscribe`]) replays from the replica
/// and registers the subscriber in one call, so nothing delivered in
/// between can be missed or repeated, as long as the loop handles
/// deliveries and subscriptions one at a time (it is single-threaded).
///
/// ```
/// use std::sync::Arc;
/// use tether_hub::{Config, Event, EventId, Hub, Replay, Subscribed, Transport};
///
/// let mut hub: Hub<u32> = Hub::new(Config::default(), true);
/// let first = Event::new(Arc::from("news"), EventId::new(1, 1), "message", "one")?;
/// hub.deliver(first)?;
///
/// // Subscriber 7 saw nothing yet: the replay has "one"; then it is live.
/// let Subscribed::Live(Replay::Events(replay)) =
///     hub.subscribe("news", 7, Transport::EventStream, Some("0-0"))?
/// else { panic!() };
/// assert_eq!(replay.count(), 1);
/// let second = Event::new(Arc::from("news"), EventId::new(1, 2), "message", "two")?;
/// let delivery = hub.deliver(second)?;
/// assert_eq!(delivery.event_stream, [7]);
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug)]
pub struct Hub<S> {
    config: Config,
    complete: bool,
    topics: HashMap<Arc<str>, Topic<S>>,
    ids: TopicIds,
    subs: HashMap<S, Registration>,
    ticks: u64,
    /// Subscribers in `ahead` lists, over all topics.
    ahead: usize,
}

impl<S: Copy + Eq + Hash> Hub<S> {
    /// An empty hub. `complete`: the broker delivers every event of every
    /// topic to every loop ([`crate::Broker::complete`]), so topics are
    /// ready as soon as they exist; otherwise each topic waits for the
    /// broker's [`Hub::ready`] after the first subscriber.
    pub fn new(config: Config, complete: bool) -> Hub<S> {
        Hub {
            config,
            complete,
            topics: HashMap::new(),
            ids: TopicIds::default(),
            subs: HashMap::new(),
            ticks: 0,
            ahead: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers a WebSocket or event-stream subscriber of `topic` and
    /// returns the replay to send it first: nothing without a `last_id`,
    /// else what follows it or a gap signal (see [`Backlog::replay`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`]; [`Error::AlreadySubscribed`] if `sub` is
    /// registered; [`Error::InvalidArgument`] for [`Transport::Poll`] (use
    /// [`Hub::poll`]).
    pub fn subscribe(
        &mut self,
        topic: &str,
        sub: S,
        transport: Transport,
        last_id: Option<&str>,
    ) -> Result<Subscribed<'_>, Error> {
        if transport == Transport::Poll {
            return Err(Error::InvalidArgument("long polls subscribe with Hub::poll"));
        }
        self.check(topic, sub)?;
        let (name, created) = self.ensure_topic(topic);
        if let Some(follow) = self.hold_until_ready(&name, sub, transport, last_id, created) {
            return Ok(Subscribed::Held { follow });
        }
        let Self {
            topics,
            subs,
            ticks,
            ahead,
            ..
        } = self;
        #[allow(
            clippy::expect_used,
            reason = "ensure_topic made the entry and nothing removed it since"
        )]
        let entry = topics.get_mut(&name).expect("ensured above");
        match admit(entry, subs, sub, transport, last_id, *ticks) {
            Admission::Ahead => {
                *ahead += 1;
                Ok(Subscribed::Held { follow: false })
            }
            Admission::Live | Admission::Answer => {
                let backlog = &topics[&name].backlog;
                Ok(Subscribed::Live(match last_id {
                    Some(last_id) => backlog.replay(last_id),
                    None => backlog.replay_id(backlog.head()),
                }))
            }
        }
    }

    /// A long poll: answers at once when there is something after `since`
    /// (or a gap signal); otherwise registers the poller to be answered
    /// with the topic's next event after `since`. Without `since`, only a
    /// future event answers it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`], [`Error::AlreadySubscribed`].
    pub fn poll(&mut self, topic: &str, sub: S, since: Option<&str>) -> Result<Polled, Error> {
        self.check(topic, sub)?;
        let (name, created) = self.ensure_topic(topic);
        if let Some(follow) = self.hold_until_ready(&name, sub, Transport::Poll, since, created) {
            return Ok(Polled::Held { follow });
        }
        let Self {
            topics,
            subs,
            ticks,
            ahead,
            ..
        } = self;
        #[allow(
            clippy::expect_used,
            reason = "ensure_topic made the entry and nothing removed it since"
        )]
        let entry = topics.get_mut(&name).expect("ensured above");
        match admit(entry, subs, sub, Transport::Poll, since, *ticks) {
            Admission::Live => Ok(Polled::Wait),
            Admission::Ahead => {
                *ahead += 1;
                Ok(Polled::Held { follow: false })
            }
            Admission::Answer => {
                let replay = entry.backlog.replay(since.unwrap_or_default());
                let gap = replay.gap();
                let events = replay.events().cloned().collect();
                self.tidy(&name);
                Ok(Polled::Now { gap, events })
            }
        }
    }

    fn check(&self, topic: &str, sub: S) -> Result<(), Error> {
        if !is_valid_topic(topic) {
            return Err(Error::InvalidTopic);
        }
        if self.subs.contains_key(&sub) {
            return Err(Error::AlreadySubscribed);
        }
        Ok(())
    }

    /// The topic's shared name, creating the topic if need be; and whether
    /// it was just created.
    fn ensure_topic(&mut self, topic: &str) -> (Arc<str>, bool) {
        match self.topics.get_key_value(topic) {
            Some((name, _)) => (name.clone(), false),
            None => {
                let name: Arc<str> = Arc::from(topic);
                let id = self.ids.take(&name);
                self.topics
                    .insert(name.clone(), Topic::new(&self.config, topic, id, self.complete));
                (name, true)
            }
        }
    }

    /// Holds a subscriber of a topic that is not ready; `Some(follow)` if
    /// it did.
    fn hold_until_ready(
        &mut self,
        name: &Arc<str>,
        sub: S,
        transport: Transport,
        last_id: Option<&str>,
        created: bool,
    ) -> Option<bool> {
        let entry = self.topics.get_mut(name)?;
        if entry.ready {
            return None;
        }
        entry.pending.push(PendingSub {
            sub,
            transport,
            last_id: last_id.map(str::to_owned),
        });
        self.subs.insert(
            sub,
            Registration {
                topic: entry.id,
                transport,
                place: Place::PENDING,
            },
        );
        Some(created)
    }

    /// Drops a topic nobody watches if it holds nothing, or if the broker
    /// would stop feeding it; true if it was followed on demand (unfollow).
    fn tidy(&mut self, name: &str) -> bool {
        let Some(entry) = self.topics.get(name) else {
            return false;
        };
        if !entry.is_unwatched() {
            return false;
        }
        let followed = !self.complete;
        if followed || entry.backlog.last_id().is_none() {
            let id = entry.id;
            self.topics.remove(name);
            self.ids.give_back(id);
        }
        followed
    }

    /// Forgets a subscriber (it closed, was cut loose, or its poll timed
    /// out); `None` if it was not registered (a long poll already
    /// answered, say).
    pub fn unsubscribe(&mut self, sub: S) -> Option<Left> {
        let registration = self.subs.remove(&sub)?;
        // A topic is not dropped while a subscriber is registered to it.
        let name = Arc::clone(self.ids.name(registration.topic)?);
        if let Some(topic) = self.topics.get_mut(&name) {
            match registration.place {
                Place::PENDING => topic.pending.retain(|p| p.sub != sub),
                Place::AHEAD => {
                    topic.ahead.retain(|a| a.sub != sub);
                    self.ahead -= 1;
                }
                place => {
                    let list = topic.list(registration.transport);
                    let index = (place.index())
                        .filter(|&i| list.get(i) == Some(&sub))
                        .or_else(|| list.iter().position(|&s| s == sub));
                    if let Some(index) = index {
                        list.swap_remove(index);
                        if let Some(&moved) = list.get(index)
                            && let Some(r) = self.subs.get_mut(&moved)
                        {
                            r.place = Place::live(index);
                        }
                    }
                }
            }
        }
        let unfollow = self.tidy(&name);
        Some(Left {
            topic: name,
            transport: registration.transport,
            unfollow,
        })
    }

    /// Takes one event from the broker: appends it to the topic's replica
    /// and says whom to send it to. With a complete broker the topic is
    /// created if need be.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] (its id is not after the topic's last) and
    /// [`Error::NotFollowed`] (a topic followed on demand that is not, or
    /// not yet, ready): the event is dropped. Both mean a broker broke its
    /// contract, except `NotFollowed` just after an unfollow.
    pub fn deliver(&mut self, event: Arc<Event>) -> Result<Delivery<'_, S>, Error> {
        let Self {
            topics,
            ids,
            subs,
            config,
            complete,
            ahead,
            ..
        } = self;
        let topic = match topics.entry(event.topic().clone()) {
            MapEntry::Occupied(o) => o.into_mut(),
            MapEntry::Vacant(v) if *complete => {
                let id = ids.take(v.key());
                let topic = Topic::new(config, v.key(), id, true);
                v.insert(topic)
            }
            MapEntry::Vacant(_) => return Err(Error::NotFollowed),
        };
        if !topic.ready {
            return Err(Error::NotFollowed);
        }
        let id = event.id();
        topic.backlog.push(event)?;
        let waiters = mem::take(&mut topic.waiters);
        for waiter in &waiters {
            subs.remove(waiter);
        }
        // Subscribers held for this id (or one it went past) are placed
        // after these lengths, so that this delivery does not reach them.
        let (websocket_len, raw_len, event_stream_len) = (
            topic.websocket.len(),
            topic.raw_websocket.len(),
            topic.event_stream.len(),
        );
        let mut resumed = Vec::new();
        let mut i = 0;
        while let Some(waiting) = topic.ahead.get(i) {
            if waiting.id > id {
                i += 1;
                continue;
            }
            let held = topic.ahead.swap_remove(i);
            *ahead -= 1;
            if held.id == id {
                // Caught up: live from the next event on.
                place_live(topic, subs, held.sub, held.transport);
            } else if let Some(r) = resume(topic, subs, held.sub, held.transport, held.id) {
                resumed.push(r);
            }
        }
        Ok(Delivery {
            // The lists only grew since their lengths were taken.
            websocket: topic.websocket.get(..websocket_len).unwrap_or_default(),
            raw_websocket: topic.raw_websocket.get(..raw_len).unwrap_or_default(),
            event_stream: topic.event_stream.get(..event_stream_len).unwrap_or_default(),
            waiters,
            resumed,
        })
    }

    /// Counts a tick (the application calls it about once a second):
    /// subscribers held for an id that has not arrived within one to two
    /// ticks get a gap signal and the backlog, and are live.
    pub fn tick(&mut self) -> Vec<Resumed<S>> {
        self.ticks += 1;
        let mut resumed = Vec::new();
        if self.ahead == 0 {
            return resumed;
        }
        let Self {
            topics,
            subs,
            ticks,
            ahead,
            ..
        } = self;
        for topic in topics.values_mut() {
            let mut i = 0;
            while let Some(waiting) = topic.ahead.get(i) {
                if waiting.since_tick + 2 > *ticks {
                    i += 1;
                    continue;
                }
                let held = topic.ahead.swap_remove(i);
                *ahead -= 1;
                if let Some(r) = resume(topic, subs, held.sub, held.transport, held.id) {
                    resumed.push(r);
                }
            }
        }
        resumed
    }

    /// The broker has the backlog of a topic followed on demand: `history`
    /// (oldest first; beyond the backlog bounds only the newest are kept),
    /// and `dropped`, the id of the event just before it if there was one.
    /// Deliveries of later events follow. Held subscribers come back in
    /// [`Readied::resumed`] with their replay.
    ///
    /// # Errors
    ///
    /// [`Error::NotFollowed`] if no subscriber is waiting for the topic
    /// (it was unfollowed meanwhile); [`Error::OutOfOrder`] if the
    /// history's ids do not increase (the topic stays as it was).
    pub fn ready(
        &mut self,
        topic: &str,
        history: Vec<Arc<Event>>,
        dropped: Option<EventId>,
    ) -> Result<Readied<S>, Error> {
        let Self {
            topics,
            subs,
            ticks,
            ahead,
            config,
            ..
        } = self;
        let Some(entry) = topics.get_mut(topic) else {
            return Err(Error::NotFollowed);
        };
        let (events, bytes) = config.backlog_bounds(topic);
        let mut backlog = Backlog::new(events, bytes);
        backlog.reset(history, dropped)?;
        entry.backlog = backlog;
        let was_ready = mem::replace(&mut entry.ready, true);
        let mut readied = Readied {
            resumed: Vec::new(),
            resync: Vec::new(),
        };
        if was_ready {
            readied
                .resync
                .extend(entry.websocket.iter().map(|&s| (s, Transport::WebSocket)));
            readied
                .resync
                .extend(entry.raw_websocket.iter().map(|&s| (s, Transport::RawWebSocket)));
            readied
                .resync
                .extend(entry.event_stream.iter().map(|&s| (s, Transport::EventStream)));
            for waiter in mem::take(&mut entry.waiters) {
                subs.remove(&waiter);
                readied.resync.push((waiter, Transport::Poll));
            }
        }
        for pending in mem::take(&mut entry.pending) {
            let last_id = pending.last_id.as_deref();
            match admit(entry, subs, pending.sub, pending.transport, last_id, *ticks) {
                Admission::Ahead => *ahead += 1,
                Admission::Live if pending.transport == Transport::Poll => {}
                Admission::Live | Admission::Answer => {
                    let replay = match last_id {
                        Some(last_id) => entry.backlog.replay(last_id),
                        None => entry.backlog.replay_id(entry.backlog.head()),
                    };
                    readied.resumed.push(Resumed {
                        sub: pending.sub,
                        transport: pending.transport,
                        gap: replay.gap(),
                        events: replay.events().cloned().collect(),
                    });
                }
            }
        }
        Ok(readied)
    }

    /// The broker forgot a topic (it was idle): its backlog and ids go;
    /// subscribers stay, and later events start a new epoch.
    pub fn forget(&mut self, topic: &str) {
        if let Some(entry) = self.topics.get_mut(topic) {
            entry.backlog.clear();
            self.tidy(topic);
        }
    }

    /// A topic's backlog replica, if this loop has the topic.
    pub fn backlog(&self, topic: &str) -> Option<&Backlog> {
        self.topics.get(topic).map(|t| &t.backlog)
    }

    /// The id a subscriber that has every event of `topic` is at (its last
    /// event's id, or `0-0`).
    pub fn head(&self, topic: &str) -> EventId {
        self.backlog(topic).map_or(EventId::ZERO, Backlog::head)
    }

    /// A subscriber's topic and transport.
    pub fn subscription(&self, sub: S) -> Option<(&Arc<str>, Transport)> {
        let registration = self.subs.get(&sub)?;
        Some((self.ids.name(registration.topic)?, registration.transport))
    }

    /// Every topic this loop has, with its numbers.
    pub fn topics(&self) -> impl Iterator<Item = (&Arc<str>, TopicInfo)> + '_ {
        self.topics.iter().map(|(name, t)| {
            (
                name,
                TopicInfo {
                    events: t.backlog.len(),
                    bytes: t.backlog.bytes(),
                    head: t.backlog.head(),
                    websocket: t.websocket.len() + t.raw_websocket.len(),
                    event_stream: t.event_stream.len(),
                    waiting: t.waiters.len(),
                    held: t.pending.len() + t.ahead.len(),
                },
            )
        })
    }
}

/// Places a subscriber of a ready topic: live (with its replay to send),
/// held for an id not seen yet, or, for a long poll with something to
/// answer, nowhere. Registers (or unregisters) it accordingly.
fn admit<S: Copy + Eq + Hash>(
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
        subs.insert(
            sub,
            Registration {
                topic: topic.id,
                transport,
                place: Place::AHEAD,
            },
        );
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

fn place_live<S: Copy + Eq + Hash>(
    topic: &mut Topic<S>,
    subs: &mut HashMap<S, Registration>,
    sub: S,
    transport: Transport,
) {
    let id = topic.id;
    let list = topic.list(transport);
    list.push(sub);
    let index = list.len() - 1;
    subs.insert(
        sub,
        Registration {
            topic: id,
            transport,
            place: Place::live(index),
        },
    );
}

/// A held subscriber whose id did not arrive: the gap signal and the
/// backlog; live afterwards (a long poll: answered, unregistered).
fn resume<S: Copy + Eq + Hash>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_is_small_and_its_size_is_shown() {
        // One per subscriber in a map that keeps room for up to twice its
        // entries: benches/README's fan-out memory breakdown counts it.
        let (registration, slot) = (
            mem::size_of::<Registration>(),
            mem::size_of::<([u32; 3], Registration)>(),
        );
        eprintln!("Registration: {registration} bytes; with a 12-byte id, a map slot: {slot} bytes");
        assert!(registration <= 12, "{registration}");
        assert!(slot <= 24, "{slot}");
    }

    #[test]
    fn a_topic_id_is_reused_after_its_topic_goes_and_names_the_right_topic() {
        let mut hub: Hub<u32> = Hub::new(Config::default(), true);
        assert!(hub.subscribe("a", 1, Transport::WebSocket, None).is_ok());
        assert!(hub.subscribe("b", 2, Transport::EventStream, None).is_ok());
        // "a" has no backlog: it goes with its last subscriber.
        assert!(hub.unsubscribe(1).is_some_and(|left| *left.topic == *"a"));
        assert!(hub.backlog("a").is_none());
        assert_eq!(hub.ids.free.len(), 1);
        assert!(hub.subscribe("c", 3, Transport::WebSocket, None).is_ok());
        assert!(hub.ids.free.is_empty(), "the id of a is taken by c");
        let name = |hub: &Hub<u32>, sub| hub.subscription(sub).map(|(t, _)| t.to_string());
        assert_eq!(name(&hub, 2).as_deref(), Some("b"));
        assert_eq!(name(&hub, 3).as_deref(), Some("c"));
        assert_eq!(name(&hub, 1), None);
        assert!(hub.unsubscribe(3).is_some_and(|left| *left.topic == *"c"));
        assert!(hub.unsubscribe(2).is_some_and(|left| *left.topic == *"b"));
        assert_eq!(hub.ids.free.len(), 2);
    }

    #[test]
    fn a_place_keeps_an_index_or_a_marker_and_a_far_index_is_looked_for() {
        assert_eq!(Place::live(7).index(), Some(7));
        assert_eq!(Place::live(0).index(), Some(0));
        for far in [u32::MAX - 2, u32::MAX - 1, u32::MAX] {
            let far = usize::try_from(far).unwrap_or(usize::MAX);
            assert_eq!(Place::live(far), Place::LIVE_FAR);
        }
        assert_eq!(Place::LIVE_FAR.index(), None);
        assert_eq!(Place::PENDING.index(), None);
        assert_eq!(Place::AHEAD.index(), None);
        // A registration whose index is not (or no longer) where it is
        // found is looked for, and the others' indexes stay right.
        let mut hub: Hub<u32> = Hub::new(Config::default(), true);
        for sub in 0..4 {
            assert!(hub.subscribe("t", sub, Transport::WebSocket, None).is_ok());
        }
        if let Some(r) = hub.subs.get_mut(&1) {
            r.place = Place::LIVE_FAR;
        }
        assert!(hub.unsubscribe(1).is_some());
        assert!(hub.unsubscribe(0).is_some());
        assert!(hub.unsubscribe(2).is_some());
        let Ok(event) = Event::new(Arc::from("t"), EventId::new(1, 0), "message", "x") else {
            panic!("an event");
        };
        let Ok(delivery) = hub.deliver(event) else {
            panic!("delivered");
        };
        assert_eq!(delivery.websocket, [3]);
    }
}
