//! The reader thread: answers follows with the topic's backlog from
//! Redis, reads the announcements of every publish (on one server,
//! `XREAD BLOCK` of the bus; on a partitioned cluster, an `XREAD` of each
//! partition's bus that a followed topic is in; with a slot per topic,
//! each followed stream) and posts
//! each event to the loops that follow its topic, in stream order; answers
//! publishers once their event is delivered; checks continuity after a
//! reconnection and resynchronises the topics that lost it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};

use redis::RedisError;
use tether_hub::{Event, EventId, HubMessage, ReplyTo};

use crate::bus;
use crate::commands::{self, Entry};
use crate::connection::{self, Con};
use crate::shared::{Link, Post, ReaderMsg, RedisBus, add};

/// Entries one `XREAD` or catch-up `XRANGE` takes from each topic's
/// stream at most.
const READ_COUNT: usize = 256;

/// Announcements one `XREAD` takes from the bus at most.
const BUS_READ_COUNT: usize = 1024;

/// Followed topics caught up in one round trip (a pipeline of `XRANGE`s).
const CATCH_UP_BATCH: usize = 256;

/// Entries one `XREVRANGE` fetches at most while building a backlog.
const PAGE: usize = 256;

/// One topic this node reads.
#[derive(Debug)]
struct Followed {
    key: String,
    /// The bus its events are announced on (unused with a slot per topic).
    bus: usize,
    /// Loops that have their `Ready` and get every event after `last`.
    loops: Vec<usize>,
    /// Loops owed a `Ready`.
    waiting: Vec<usize>,
    /// `last` is known (the backlog was fetched).
    known: bool,
    /// The id of the last event delivered (or the backlog's head).
    last: EventId,
    /// Publishes added as these ids (or duplicates of them), answered
    /// once delivered to their loop.
    outcomes: Vec<Outcome>,
    /// The key holds something other than a stream: it is not read.
    broken: bool,
}

impl Followed {
    fn new(key: String, bus: usize) -> Followed {
        Followed {
            key,
            bus,
            loops: Vec::new(),
            waiting: Vec::new(),
            known: false,
            last: EventId::ZERO,
            outcomes: Vec::new(),
            broken: false,
        }
    }

    fn follows(&self, loop_index: usize) -> bool {
        self.loops.contains(&loop_index) || self.waiting.contains(&loop_index)
    }

    /// Whether `reply` may be answered now for an event `id`: its loop
    /// does not follow the topic, or has been sent the event (or never
    /// will be: the topic is not read).
    fn answerable(&self, id: EventId, reply: &ReplyTo) -> bool {
        !self.follows(reply.loop_index)
            || self.broken
            || (self.loops.contains(&reply.loop_index) && self.known && self.last >= id)
    }
}

/// Where the reader is in one announcement stream.
#[derive(Debug)]
struct Bus {
    key: String,
    /// The id of the last announcement read (where reading goes on).
    last: EventId,
    /// The number of the last announcement read, if known: the next must
    /// be one more, or some were missed.
    seq: Option<u64>,
    /// Followed topics announced on it (entries of `Reader::topics`).
    followed: usize,
    /// `last` was taken while this bus was read. On a cluster a partition
    /// that no followed topic is in is not read; its place is taken again
    /// (before a topic of it fetches its backlog, so that nothing
    /// published between the two is missed) when one is followed.
    placed: bool,
}

/// A publish to answer: its event's id, where to, and whether it was a
/// duplicate (its key remembered: nothing was added).
#[derive(Debug, Clone, Copy)]
struct Outcome {
    id: EventId,
    reply: ReplyTo,
    duplicate: bool,
}

pub(crate) struct Reader {
    shared: Arc<RedisBus>,
    post: Post,
    rx: Receiver<ReaderMsg>,
    con: Option<Con>,
    link: Link,
    /// The Redis server's `run_id` on the last connection.
    run_id: Option<String>,
    topics: HashMap<Arc<str>, Followed>,
    /// Topics that had a loop added to their `waiting` (maybe already
    /// served): what `serve_follows` looks at, rather than every topic.
    owed: Vec<Arc<str>>,
    wake_last: EventId,
    /// The announcement streams: one on one server, one per partition on
    /// a partitioned cluster, none with a slot per topic.
    buses: Vec<Bus>,
}

impl Reader {
    pub(crate) fn new(shared: Arc<RedisBus>, post: Post, rx: Receiver<ReaderMsg>) -> Reader {
        Reader {
            link: Link::new("reader", shared.clone()),
            post,
            rx,
            con: None,
            run_id: None,
            topics: HashMap::new(),
            owed: Vec::new(),
            wake_last: EventId::ZERO,
            buses: (0..shared.keys.buses())
                .map(|bus| Bus {
                    key: shared.keys.bus(bus),
                    last: EventId::ZERO,
                    seq: None,
                    followed: 0,
                    placed: false,
                })
                .collect(),
            shared,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(ReaderMsg::Stop) | Err(TryRecvError::Disconnected) => return self.stop(),
                    Ok(message) => self.apply(message),
                    Err(TryRecvError::Empty) => break,
                }
            }
            if self.shared.stats.stopped() {
                return self.stop();
            }
            if self.con.is_none() {
                if self.link.wait().is_zero() {
                    // On a cluster no read blocks in Redis.
                    let read_timeout = if self.shared.keys.cluster {
                        self.shared.config.command_timeout
                    } else {
                        self.shared.config.block + self.shared.config.command_timeout
                    };
                    if let Some(con) = self.link.connect(read_timeout) {
                        self.con = Some(con);
                        if let Err(e) = self.check_continuity() {
                            self.lost(&e);
                        }
                    }
                }
                if self.con.is_none() {
                    match self.rx.recv_timeout(self.link.wait()) {
                        Ok(ReaderMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return self.stop(),
                        Ok(message) => self.apply(message),
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                    continue;
                }
            }
            match self.serve_follows().and_then(|()| self.read()) {
                Err(e) => self.lost(&e),
                // Nothing came (on a cluster, where reads do not block):
                // wait for work, or the next poll.
                Ok(false) => {
                    let wait = if self.readable().next().is_some() {
                        self.shared.config.cluster_poll
                    } else {
                        self.shared.config.block
                    };
                    match self.rx.recv_timeout(wait) {
                        Ok(ReaderMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return self.stop(),
                        Ok(message) => self.apply(message),
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                }
                Ok(true) => {}
            }
        }
    }

    /// The followed topics whose streams are read now.
    fn readable(&self) -> impl Iterator<Item = (&Arc<str>, &Followed)> {
        self.topics
            .iter()
            .filter(|(_, f)| f.known && !f.broken && !f.loops.is_empty())
    }

    fn apply(&mut self, message: ReaderMsg) {
        match message {
            ReaderMsg::Follow { topic, loop_index } => {
                let keys = &self.shared.keys;
                let followed = self.topics.entry(topic.clone()).or_insert_with(|| {
                    let bus = keys.partition(&topic);
                    if let Some(bus) = self.buses.get_mut(bus) {
                        bus.followed += 1;
                    }
                    Followed::new(keys.stream(&topic), bus)
                });
                // A loop follows once between unfollows; a repeat means it
                // wants the backlog again.
                followed.loops.retain(|&l| l != loop_index);
                if followed.waiting.is_empty() {
                    self.owed.push(topic);
                }
                if !followed.waiting.contains(&loop_index) {
                    followed.waiting.push(loop_index);
                }
            }
            ReaderMsg::Unfollow { topic, loop_index } => {
                let Some(followed) = self.topics.get_mut(&topic) else {
                    return;
                };
                followed.loops.retain(|&l| l != loop_index);
                followed.waiting.retain(|&l| l != loop_index);
                let empty = followed.loops.is_empty() && followed.waiting.is_empty();
                if empty {
                    if let Some(followed) = self.topics.remove(&topic) {
                        if let Some(bus) = self.buses.get_mut(followed.bus) {
                            bus.followed = bus.followed.saturating_sub(1);
                            // On a cluster a bus nobody follows is not
                            // read (one server's is always read).
                            bus.placed &= bus.followed > 0 || !self.shared.keys.cluster;
                        }
                        for outcome in followed.outcomes {
                            self.answer(outcome);
                        }
                    }
                } else {
                    self.flush_outcomes(&topic);
                }
            }
            ReaderMsg::Added {
                topic,
                id,
                reply,
                duplicate,
            } => {
                let outcome = Outcome { id, reply, duplicate };
                match self.topics.get_mut(&topic) {
                    Some(followed) if !followed.answerable(id, &reply) => followed.outcomes.push(outcome),
                    _ => self.answer(outcome),
                }
            }
            ReaderMsg::Stop => {}
        }
        self.shared
            .stats
            .followed
            .store(self.topics.len() as u64, Ordering::Relaxed);
    }

    fn answer(&self, outcome: Outcome) {
        let Outcome { id, reply, duplicate } = outcome;
        let token = reply.token;
        let message = if duplicate {
            HubMessage::Duplicate { token, id }
        } else {
            HubMessage::Published {
                token,
                result: Ok(id),
            }
        };
        (self.post)(reply.loop_index, message);
    }

    /// Answers the publishes whose events have reached their loops.
    fn flush_outcomes(&mut self, topic: &Arc<str>) {
        let Some(followed) = self.topics.get_mut(topic) else {
            return;
        };
        if followed.outcomes.is_empty() {
            return;
        }
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut followed.outcomes)
            .into_iter()
            .partition(|o| followed.answerable(o.id, &o.reply));
        followed.outcomes = later;
        for outcome in now {
            self.answer(outcome);
        }
    }

    /// Sends `Ready` to the loops owed one: the topic's backlog, from
    /// Redis, up to the last event delivered (so that the events read next
    /// follow it without a hole).
    fn serve_follows(&mut self) -> Result<(), RedisError> {
        let owed = std::mem::take(&mut self.owed);
        for (done, topic) in owed.iter().enumerate() {
            if let Err(e) = self.serve_follow(topic) {
                // Served once connected again: this topic and the rest.
                self.owed.extend(owed.into_iter().skip(done));
                return Err(e);
            }
        }
        Ok(())
    }

    /// [`Reader::serve_follows`] for one topic (nothing if no loop waits).
    fn serve_follow(&mut self, topic: &Arc<str>) -> Result<(), RedisError> {
        if let Some(bus) = self.topics.get(topic).map(|f| f.bus)
            && self.buses.get(bus).is_some_and(|b| !b.placed)
        {
            // Before the backlog: what is published after it is announced
            // after this place.
            self.place(bus)?;
        }
        {
            let con = connection::connected(&mut self.con)?;
            let config = &self.shared.config;
            let Some(followed) = self.topics.get_mut(topic).filter(|f| !f.waiting.is_empty()) else {
                return Ok(());
            };
            let (history, dropped) = if followed.broken || (followed.known && followed.last == EventId::ZERO)
            {
                (Vec::new(), None)
            } else {
                let end = followed.known.then_some(followed.last);
                match fetch_history(
                    con,
                    topic,
                    &followed.key,
                    end,
                    config.history_events,
                    config.history_bytes,
                ) {
                    Ok(backlog) => backlog,
                    Err(e) if commands::is_server_error(&e) => {
                        log::warn!(
                            "redis: topic {topic} is not read: its key {} is not a stream ({e})",
                            followed.key
                        );
                        followed.broken = true;
                        (Vec::new(), None)
                    }
                    Err(e) => return Err(e),
                }
            };
            if !followed.known {
                followed.last = history
                    .last()
                    .map(|e| e.id())
                    .or(dropped)
                    .unwrap_or(EventId::ZERO);
                followed.known = true;
            }
            let waiting = std::mem::take(&mut followed.waiting);
            for &loop_index in &waiting {
                (self.post)(
                    loop_index,
                    HubMessage::Ready {
                        topic: topic.clone(),
                        history: history.clone(),
                        dropped,
                    },
                );
            }
            followed.loops.extend(waiting);
        }
        self.flush_outcomes(topic);
        Ok(())
    }

    /// Reads what was published and posts what comes; whether anything
    /// may have come (false: nothing did, and nothing waited for it).
    ///
    /// On one server: one `XREAD BLOCK` of the bus (every topic's
    /// announcements, in order) and the wake stream, whatever the number
    /// of topics followed; an announcement of a topic this node does not
    /// follow is passed over. A hole in the announcements' numbers (the
    /// bus was trimmed past this reader, or its counter reset) makes the
    /// reader catch up from each followed topic's stream. On a cluster,
    /// where one command may only touch keys of one slot and blocking
    /// would hold that node's connection, plain `XREAD`s: of each
    /// partition's bus that a followed topic is in (at most the number of
    /// partitions, whatever the topics followed), or with a slot per
    /// topic, of each followed stream.
    fn read(&mut self) -> Result<bool, RedisError> {
        if !self.shared.keys.cluster {
            return self.read_bus();
        }
        if self.buses.is_empty() {
            return self.read_cluster();
        }
        self.read_partitions()
    }

    /// [`Reader::read`] on one server.
    fn read_bus(&mut self) -> Result<bool, RedisError> {
        let Some(bus) = self.buses.first() else {
            return Ok(false);
        };
        let streams = [
            (bus.key.as_str(), bus.last),
            (self.shared.wake_key.as_str(), self.wake_last),
        ];
        let block_ms = u64::try_from(self.shared.config.block.as_millis()).unwrap_or(u64::MAX);
        let xread = commands::xread(&streams, BUS_READ_COUNT, Some(block_ms.max(1)));
        let reply = connection::connected(&mut self.con)?.query(&xread)?;
        let mut announcements = Vec::new();
        for (key, entries) in commands::xread_streams(&reply)? {
            if key == self.shared.wake_key.as_bytes() {
                if let Some(last) = commands::parse_entries(entries)?.last() {
                    self.wake_last = last.id;
                }
            } else if key == bus.key.as_bytes() {
                announcements = bus::parse(entries)?;
            }
        }
        self.take(0, announcements)?;
        Ok(true)
    }

    /// [`Reader::read`] on a partitioned cluster.
    fn read_partitions(&mut self) -> Result<bool, RedisError> {
        let reading: Vec<usize> = (0..self.buses.len())
            .filter(|&b| {
                self.buses
                    .get(b)
                    .is_some_and(|bus| bus.placed && bus.followed > 0)
            })
            .collect();
        if reading.is_empty() {
            // Idle: a check that the cluster is still there.
            connection::connected(&mut self.con)?.query(&redis::cmd("PING"))?;
            return Ok(false);
        }
        let cmds: Vec<redis::Cmd> = reading
            .iter()
            .filter_map(|&b| self.buses.get(b))
            .map(|bus| commands::xread(&[(bus.key.as_str(), bus.last)], BUS_READ_COUNT, None))
            .collect();
        let replies = connection::connected(&mut self.con)?.send_all(&cmds)?;
        let mut read = false;
        for (b, reply) in reading.into_iter().zip(replies) {
            let Some(bus) = self.buses.get(b) else { continue };
            let mut announcements = Vec::new();
            for (key, entries) in commands::xread_streams(&reply)? {
                if key == bus.key.as_bytes() {
                    announcements = bus::parse(entries)?;
                }
            }
            read |= !announcements.is_empty();
            if !self.take(b, announcements)? {
                // Caught up from the streams: every place was taken again,
                // and the replies after this one are stale.
                break;
            }
        }
        Ok(read)
    }

    /// Delivers the events of `announcements`, read from bus `b`, of the
    /// topics this node follows; false if a hole in their numbers made
    /// the reader catch up from the streams instead (see
    /// [`Reader::resume`]).
    fn take(&mut self, b: usize, announcements: Vec<bus::Announcement>) -> Result<bool, RedisError> {
        let mut touched: Vec<Arc<str>> = Vec::new();
        let mut continued = true;
        for announcement in announcements {
            let Some(bus) = self.buses.get_mut(b) else { break };
            if let Some(seq) = announcement.seq {
                if bus.seq.is_some_and(|last| last.checked_add(1) != Some(seq)) {
                    log::warn!(
                        "redis: announcements missed on {} (number {seq} after {:?}): every followed topic catches up from its stream",
                        bus.key,
                        bus.seq
                    );
                    self.resume()?;
                    continued = false;
                    break;
                }
                bus.seq = Some(seq);
            }
            bus.last = announcement.bus_id;
            let (Some(name), Some(entry)) = (announcement.topic, announcement.entry) else {
                continue;
            };
            let Some((topic, followed)) = self.topics.get_key_value(name.as_str()) else {
                continue;
            };
            if !followed.known || followed.broken {
                continue;
            }
            let topic = topic.clone();
            self.deliver(&topic, std::slice::from_ref(&entry));
            if !touched.contains(&topic) {
                touched.push(topic);
            }
        }
        for topic in touched {
            self.flush_outcomes(&topic);
        }
        Ok(continued)
    }

    /// Takes bus `b`'s end as the place to read it from.
    fn place(&mut self, b: usize) -> Result<(), RedisError> {
        let Some(bus) = self.buses.get_mut(b) else {
            return Ok(());
        };
        let con = connection::connected(&mut self.con)?;
        let end = bus::parse(&con.query(&commands::xrevrange(&bus.key, None, 1))?)?.pop();
        bus.last = end.as_ref().map_or(EventId::ZERO, |a| a.bus_id);
        bus.seq = end.and_then(|a| a.seq);
        bus.placed = true;
        Ok(())
    }

    /// Where publishes are announced, after a (re)connection or missed
    /// announcements: takes each bus's end as the place to read from (on a
    /// cluster, of the partitions a followed topic is in), then reads each
    /// followed topic's stream from its last delivered event (events
    /// announced before that place come from there, those after it from
    /// the bus; one delivered by both is passed over the second time). A
    /// topic whose last delivered event left its stream lost continuity:
    /// it is resynchronised.
    fn resume(&mut self) -> Result<(), RedisError> {
        for b in 0..self.buses.len() {
            if self
                .buses
                .get(b)
                .is_some_and(|bus| bus.followed > 0 || !self.shared.keys.cluster)
            {
                self.place(b)?;
            } else if let Some(bus) = self.buses.get_mut(b) {
                bus.placed = false;
            }
        }
        let mut behind: Vec<Arc<str>> = self
            .topics
            .iter()
            .filter(|(_, f)| f.known && !f.broken)
            .map(|(topic, _)| topic.clone())
            .collect();
        while !behind.is_empty() {
            let batch: Vec<Arc<str>> = behind.drain(..behind.len().min(CATCH_UP_BATCH)).collect();
            behind.extend(self.catch_up(&batch)?);
        }
        Ok(())
    }

    /// One round trip of [`Reader::resume`]: the entries of each topic's
    /// stream from its last delivered event on; the topics with more to
    /// read.
    fn catch_up(&mut self, topics: &[Arc<str>]) -> Result<Vec<Arc<str>>, RedisError> {
        let cmds: Vec<redis::Cmd> = topics
            .iter()
            .filter_map(|topic| self.topics.get(topic))
            .map(|f| commands::xrange_from(&f.key, f.last, READ_COUNT + 1))
            .collect();
        let (replies, failure) = connection::connected(&mut self.con)?.pipeline(&cmds);
        if let Some(e) = failure {
            return Err(e);
        }
        let mut more = Vec::new();
        let mut lost = Vec::new();
        for (topic, reply) in topics.iter().zip(replies) {
            let Some(followed) = self.topics.get_mut(topic) else {
                continue;
            };
            let entries = match reply {
                Ok(reply) => commands::parse_entries(&reply)?,
                Err(e) if commands::is_server_error(&e) => {
                    log::warn!(
                        "redis: topic {topic} is no longer read: its key {} is not a stream ({e})",
                        followed.key
                    );
                    followed.broken = true;
                    lost.push(topic.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let full = entries.len() > READ_COUNT;
            let new = if followed.last == EventId::ZERO {
                &entries[..]
            } else if entries.first().is_some_and(|e| e.id == followed.last) {
                entries.get(1..).unwrap_or_default()
            } else {
                lost.push(topic.clone());
                continue;
            };
            self.deliver(topic, new);
            self.flush_outcomes(topic);
            if full {
                more.push(topic.clone());
            }
        }
        for topic in lost {
            self.resync(&topic);
        }
        Ok(more)
    }

    fn read_cluster(&mut self) -> Result<bool, RedisError> {
        let streams: Vec<(Arc<str>, String, EventId)> = self
            .readable()
            .map(|(topic, f)| (topic.clone(), f.key.clone(), f.last))
            .collect();
        let con = connection::connected(&mut self.con)?;
        if streams.is_empty() {
            // Idle: a check that the cluster is still there.
            con.query(&redis::cmd("PING"))?;
            return Ok(false);
        }
        let mut replies = Vec::with_capacity(streams.len());
        for (topic, key, last) in streams {
            let reply = con.query(&commands::xread(&[(&key, last)], READ_COUNT, None))?;
            replies.push((topic, key, reply));
        }
        let mut read = false;
        for (topic, key, reply) in replies {
            for (stream, entries) in commands::parse_xread(&reply)? {
                if stream == key.as_bytes() && !entries.is_empty() {
                    read = true;
                    self.deliver(&topic, &entries);
                }
            }
            self.flush_outcomes(&topic);
        }
        Ok(read)
    }

    fn deliver(&mut self, topic: &Arc<str>, entries: &[Entry]) {
        let Some(followed) = self.topics.get_mut(topic) else {
            return;
        };
        for entry in entries {
            if entry.id <= followed.last {
                continue;
            }
            followed.last = entry.id;
            add(&self.shared.stats.read, 1);
            let Some(event) = entry.to_event(topic) else {
                log::warn!("redis: entry {} of {topic} cannot be an event; skipped", entry.id);
                continue;
            };
            for &loop_index in &followed.loops {
                (self.post)(loop_index, HubMessage::Deliver(event.clone()));
            }
        }
    }

    /// Just (re)connected: if Redis restarted, or a topic's last delivered
    /// event is no longer in its stream, events may be gone: such topics
    /// get a new `Ready` (their subscribers resume from their last ids).
    /// Otherwise reading goes on from the last delivered id (where
    /// publishes are announced, see [`Reader::resume`]).
    fn check_continuity(&mut self) -> Result<(), RedisError> {
        let con = connection::connected(&mut self.con)?;
        // A cluster's nodes restart and fail over one by one: each
        // topic's check below is what tells.
        let restarted = if self.shared.keys.cluster {
            false
        } else {
            let info = con.query(redis::cmd("INFO").arg("server"))?;
            let run_id = commands::parse_run_id(&info);
            let restarted = self.run_id.is_some() && run_id != self.run_id;
            if restarted {
                log::warn!("redis: the Redis server restarted: every followed topic is resynchronised");
            }
            self.run_id = run_id;
            restarted
        };
        if self.shared.keys.announces() {
            if restarted {
                let known: Vec<Arc<str>> = self
                    .topics
                    .iter()
                    .filter(|(_, f)| f.known && !f.broken)
                    .map(|(topic, _)| topic.clone())
                    .collect();
                for topic in known {
                    self.resync(&topic);
                }
            }
            return self.resume();
        }
        let mut lost = Vec::new();
        for (topic, followed) in &mut self.topics {
            if !followed.known || followed.broken {
                continue;
            }
            let intact = !restarted
                && (followed.last == EventId::ZERO
                    || match con.query(&commands::xrange_one(&followed.key, followed.last)) {
                        Ok(reply) => !commands::parse_entries(&reply)?.is_empty(),
                        Err(e) if commands::is_server_error(&e) => {
                            log::warn!(
                                "redis: topic {topic} is no longer read: its key {} is not a stream ({e})",
                                followed.key
                            );
                            followed.broken = true;
                            false
                        }
                        Err(e) => return Err(e),
                    });
            if !intact {
                lost.push(topic.clone());
            }
        }
        for topic in lost {
            self.resync(&topic);
        }
        Ok(())
    }

    /// Continuity of `topic` is lost: its loops get a new `Ready` (the hub
    /// then ends their subscriptions, so that clients resume); pending
    /// answers go now, as the subscribers start over anyway.
    fn resync(&mut self, topic: &Arc<str>) {
        let Some(followed) = self.topics.get_mut(topic) else {
            return;
        };
        log::warn!(
            "redis: continuity of topic {topic} lost (its events since {} may be gone): its subscribers resume",
            followed.last
        );
        add(&self.shared.stats.resyncs, 1);
        followed.known = false;
        followed.last = EventId::ZERO;
        let loops = std::mem::take(&mut followed.loops);
        if followed.waiting.is_empty() {
            self.owed.push(topic.clone());
        }
        followed.waiting.extend(loops);
        let outcomes = std::mem::take(&mut followed.outcomes);
        for outcome in outcomes {
            self.answer(outcome);
        }
    }

    fn lost(&mut self, e: &RedisError) {
        self.con = None;
        self.link.lost(e, "deliveries pause until it is back");
    }

    fn stop(mut self) {
        if let Some(con) = self.con.as_mut().filter(|_| !self.shared.keys.cluster) {
            let _ = con.query(redis::cmd("DEL").arg(&self.shared.wake_key));
        }
        self.shared.stats.reader_up.store(false, Ordering::Relaxed);
    }
}

/// A topic's backlog from its stream, oldest first: the newest entries up
/// to `end` (the stream's end if `None`), at most `max_events` of them and
/// `max_bytes` (both encodings), and the id of the entry just before them
/// if there was one (still held; or, when entries were trimmed from the
/// stream's start, the id just before the first held).
fn fetch_history(
    con: &mut Con,
    topic: &Arc<str>,
    key: &str,
    end: Option<EventId>,
    max_events: usize,
    max_bytes: usize,
) -> Result<(Vec<Arc<Event>>, Option<EventId>), RedisError> {
    let mut newest_first: Vec<Arc<Event>> = Vec::new();
    let mut bytes = 0;
    let mut dropped = None;
    let mut end = end;
    'pages: loop {
        let want = (max_events + 1 - newest_first.len()).min(PAGE);
        let page = commands::parse_entries(&con.query(&commands::xrevrange(key, end, want))?)?;
        let got = page.len();
        let page_oldest = page.last().map(|entry| entry.id);
        for entry in page {
            let Some(event) = entry.to_event(topic) else {
                continue;
            };
            if newest_first.len() >= max_events || bytes + event.cost() > max_bytes {
                dropped = Some(entry.id);
                break 'pages;
            }
            bytes += event.cost();
            newest_first.push(event);
        }
        match page_oldest.and_then(commands::prev_id) {
            Some(before) if got == want => end = Some(before),
            _ => break,
        }
    }
    if dropped.is_none() {
        // The history goes back to the stream's first entry (up to `end`):
        // were entries before it trimmed? Then the id just before it
        // stands for them (a client that comes back with one of them, or
        // with 0-0, gets a gap signal).
        dropped = match con.query(&commands::xinfo_stream(key)) {
            Ok(info) => match commands::parse_stream_info(&info) {
                Some(info) if info.lost_entries() => match newest_first.last() {
                    Some(oldest) => commands::prev_id(oldest.id()),
                    None => end.or(info.last_generated),
                },
                _ => None,
            },
            // No such key: a topic nobody published to yet.
            Err(e) if commands::is_server_error(&e) => None,
            Err(e) => return Err(e),
        };
    }
    newest_first.reverse();
    Ok((newest_first, dropped))
}
