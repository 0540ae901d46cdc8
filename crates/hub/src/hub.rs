//! One event loop's view of the topics: backlog replicas and local
//! subscribers.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::hash::Hash;
use std::mem;
use std::sync::Arc;

use tether_topic::is_valid_topic;

use crate::backlog::{Backlog, Replay};
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::id::EventId;

mod outcomes;
mod start;
mod topic;
mod transport;

pub use self::outcomes::{Delivery, Left, Polled, Readied, Resumed, Subscribed, TopicInfo};
pub use self::start::Start;
use self::topic::{Admission, PendingSub, Place, Registration, Topic, TopicIds, admit, place_live, resume};
pub use self::transport::Transport;

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
    /// The broker's ids of a topic are one sequence
    /// ([`crate::Broker::ids_one_sequence`]): a subscriber ahead is held
    /// until the topic reaches its id, with no time limit.
    one_sequence: bool,
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
            one_sequence: false,
        }
    }

    /// The broker's ids of a topic only grow, across the runs of every
    /// node and of the bus ([`crate::Broker::ids_one_sequence`]). A
    /// client's id ahead of this hub is then one it has not read yet,
    /// never one of another history: the client had every event up to it.
    /// So the subscriber is held until the topic reaches that id, however
    /// long that takes, and [`Config::resume_wait`] does not apply; it is
    /// never sent again what it had.
    #[must_use]
    pub fn with_one_sequence(mut self, one_sequence: bool) -> Hub<S> {
        self.one_sequence = one_sequence;
        self
    }

    /// The limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers a WebSocket or event-stream subscriber of `topic` and
    /// returns the replay to send it first: nothing without a `last_id`,
    /// else what follows it or a gap signal (see [`Backlog::replay`]).
    /// As [`Hub::subscribe_at`] with [`Start::from_last_id`]`(last_id, false)`.
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe_at`].
    pub fn subscribe(
        &mut self,
        topic: &str,
        sub: S,
        transport: Transport,
        last_id: Option<&str>,
    ) -> Result<Subscribed<'_>, Error> {
        self.subscribe_at(topic, sub, transport, Start::from_last_id(last_id, false))
    }

    /// Registers a WebSocket or event-stream subscriber of `topic` and
    /// returns the replay to send it first: nothing ([`Start::Next`]), the
    /// topic's latest event ([`Start::Latest`], [`Backlog::latest`]), or
    /// what follows an id or a gap signal ([`Start::After`],
    /// [`Backlog::replay`]). A subscriber held for the topic's history
    /// gets the same when it comes ([`Hub::ready`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`]; [`Error::AlreadySubscribed`] if `sub` is
    /// registered; [`Error::InvalidArgument`] for [`Transport::Poll`] (use
    /// [`Hub::poll_at`]).
    pub fn subscribe_at(
        &mut self,
        topic: &str,
        sub: S,
        transport: Transport,
        start: Start<'_>,
    ) -> Result<Subscribed<'_>, Error> {
        if transport == Transport::Poll {
            return Err(Error::InvalidArgument("long polls subscribe with Hub::poll"));
        }
        self.check(topic, sub)?;
        let (name, created) = self.ensure_topic(topic);
        if let Some(follow) = self.hold_until_ready(&name, sub, transport, start, created) {
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
        match admit(entry, subs, sub, transport, start.last_id(), *ticks) {
            Admission::Ahead => {
                *ahead += 1;
                Ok(Subscribed::Held { follow: false })
            }
            Admission::Live | Admission::Answer => {
                Ok(Subscribed::Live(first_replay(&topics[&name].backlog, start)))
            }
        }
    }

    /// A long poll: answers at once when there is something after `since`
    /// (or a gap signal); otherwise registers the poller to be answered
    /// with the topic's next event after `since`. Without `since`, only a
    /// future event answers it. As [`Hub::poll_at`] with
    /// [`Start::from_last_id`]`(since, false)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`], [`Error::AlreadySubscribed`].
    pub fn poll(&mut self, topic: &str, sub: S, since: Option<&str>) -> Result<Polled, Error> {
        self.poll_at(topic, sub, Start::from_last_id(since, false))
    }

    /// A long poll: answers at once when there is something after the id
    /// of [`Start::After`] (or a gap signal), or, for [`Start::Latest`],
    /// when the topic has a latest event (that event alone); otherwise
    /// registers the poller to be answered with the topic's next event.
    /// A poller held for the topic's history is answered the same way
    /// when it comes, if it can be ([`Hub::ready`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`], [`Error::AlreadySubscribed`].
    pub fn poll_at(&mut self, topic: &str, sub: S, start: Start<'_>) -> Result<Polled, Error> {
        self.check(topic, sub)?;
        let (name, created) = self.ensure_topic(topic);
        if let Some(follow) = self.hold_until_ready(&name, sub, Transport::Poll, start, created) {
            return Ok(Polled::Held { follow });
        }
        if start == Start::Latest
            && let Some(entry) = self.topics.get(&name)
        {
            let events: Vec<Arc<Event>> = entry.backlog.latest().cloned().collect();
            if !events.is_empty() {
                let unfollow = self.tidy(&name);
                return Ok(Polled::Now {
                    gap: None,
                    events,
                    unfollow,
                });
            }
        }
        let since = start.last_id();
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
                let unfollow = self.tidy(&name);
                Ok(Polled::Now {
                    gap,
                    events,
                    unfollow,
                })
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
        start: Start<'_>,
        created: bool,
    ) -> Option<bool> {
        let entry = self.topics.get_mut(name)?;
        if entry.ready {
            return None;
        }
        entry.pending.push(PendingSub {
            sub,
            transport,
            last_id: start.last_id().map(str::to_owned),
            latest: start == Start::Latest,
        });
        self.subs
            .insert(sub, Registration::new(entry.id, transport, Place::PENDING));
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
        let name = Arc::clone(self.ids.name(registration.topic())?);
        if let Some(topic) = self.topics.get_mut(&name) {
            match registration.place {
                Place::PENDING => topic.pending.retain(|p| p.sub != sub),
                Place::AHEAD => {
                    topic.ahead.retain(|a| a.sub != sub);
                    self.ahead -= 1;
                }
                place => {
                    let list = topic.list(registration.transport());
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
            transport: registration.transport(),
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
    /// subscribers held for an id that has not arrived within
    /// [`Config::resume_wait`] get a gap signal and the backlog, and are
    /// live (not when the ids are one sequence: [`Hub::with_one_sequence`]).
    pub fn tick(&mut self) -> Vec<Resumed<S>> {
        self.ticks += 1;
        let mut resumed = Vec::new();
        if self.ahead == 0 || self.one_sequence {
            return resumed;
        }
        let wait = self.config.resume_wait_ticks();
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
                if waiting.since_tick + wait > *ticks {
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
            let start = match (pending.last_id.as_deref(), pending.latest) {
                (Some(last_id), _) => Start::After(last_id),
                (None, true) => Start::Latest,
                (None, false) => Start::Next,
            };
            // A long poll from nowhere that wants the latest event is
            // answered with it, as one that arrives now would be.
            if pending.transport == Transport::Poll
                && start == Start::Latest
                && entry.backlog.latest().len() > 0
            {
                subs.remove(&pending.sub);
                readied.resumed.push(Resumed {
                    sub: pending.sub,
                    transport: Transport::Poll,
                    gap: None,
                    events: entry.backlog.latest().cloned().collect(),
                });
                continue;
            }
            match admit(
                entry,
                subs,
                pending.sub,
                pending.transport,
                start.last_id(),
                *ticks,
            ) {
                Admission::Ahead => *ahead += 1,
                Admission::Live if pending.transport == Transport::Poll => {}
                Admission::Live | Admission::Answer => {
                    let replay = first_replay(&entry.backlog, start);
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

    /// Whether this loop has `topic` with its backlog in place: a
    /// subscriber of a topic that is not is held until it is, and the
    /// topic's [`Hub::head`] is not known until then.
    pub fn is_ready(&self, topic: &str) -> bool {
        self.topics.get(topic).is_some_and(|t| t.ready)
    }

    /// Keeps `topic` followed for a request that waits for its history
    /// before it opens (an event stream from nowhere, whose `200` promises
    /// every event published after it: the topic's head has to be known
    /// first); `Ok(true)` when the broker has to follow the topic now.
    /// Each call is let go of with one [`Hub::cool`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`].
    pub fn warm(&mut self, topic: &str) -> Result<bool, Error> {
        if !is_valid_topic(topic) {
            return Err(Error::InvalidTopic);
        }
        let (name, created) = self.ensure_topic(topic);
        let Some(entry) = self.topics.get_mut(&name) else {
            return Ok(false);
        };
        entry.warming = entry.warming.saturating_add(1);
        Ok(created && !entry.ready)
    }

    /// Lets go of one [`Hub::warm`] of `topic`: true if the topic was
    /// followed on demand and nothing keeps it now (unfollow it).
    pub fn cool(&mut self, topic: &str) -> bool {
        let Some(entry) = self.topics.get_mut(topic) else {
            return false;
        };
        entry.warming = entry.warming.saturating_sub(1);
        self.tidy(topic)
    }

    /// Whether a subscriber of `topic` arriving now would be held for the
    /// topic's history: this loop follows topics on demand and does not
    /// have this one ready.
    pub fn awaits_history(&self, topic: &str) -> bool {
        !self.complete && !self.is_ready(topic)
    }

    /// A subscriber's topic and transport.
    pub fn subscription(&self, sub: S) -> Option<(&Arc<str>, Transport)> {
        let registration = self.subs.get(&sub)?;
        Some((self.ids.name(registration.topic())?, registration.transport()))
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
                    held: t.pending.len() + t.ahead.len() + t.warming as usize,
                },
            )
        })
    }
}

/// What a subscriber placed live is sent first, from where it starts.
fn first_replay<'b>(backlog: &'b Backlog, start: Start<'_>) -> Replay<'b> {
    match start {
        Start::After(last_id) => backlog.replay(last_id),
        Start::Next => backlog.replay_id(backlog.head()),
        Start::Latest => Replay::Events(backlog.latest()),
    }
}

#[cfg(test)]
mod tests;
