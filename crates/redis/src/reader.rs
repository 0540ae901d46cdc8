//! The reader thread: answers follows with the topic's backlog from
//! Redis, reads the announcements of every publish (on one server,
//! `XREAD BLOCK` of the bus; on a partitioned cluster, an `XREAD` of each
//! partition's bus that a followed topic is in; with a slot per topic,
//! each followed stream) and posts
//! each event to the loops that follow its topic, in stream order; answers
//! publishers once their event is delivered; checks continuity after a
//! reconnection and resynchronises the topics that lost it.
//!
//! This file holds the thread's state, its loop and the messages it
//! takes, and what the other parts share (a bus's place, entries
//! delivered to the loops); follows are answered in `follows.rs`,
//! publishes read in `announcements.rs`, continuity kept in
//! `continuity.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};

use redis::RedisError;
use tether_hub::{EventId, HubMessage, ReplyTo};

use crate::bus;
use crate::commands::{self, Entry};
use crate::connection::{self, Con};
use crate::shared::{Link, Post, ReaderMsg, RedisBus, add};

mod announcements;
mod continuity;
mod follows;

/// Entries one `XREAD` or catch-up `XRANGE` takes from each topic's
/// stream at most.
const READ_COUNT: usize = 256;

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
