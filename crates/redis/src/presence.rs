//! The presence thread: writes this node's members of each topic to the
//! topic's sorted set in Redis, refreshes them before they expire, and
//! reads the other nodes' members of the topics the loops watch.
//!
//! Each topic's set (`Keys::presence`) holds `NODE/MEMBER` entries scored
//! by the Unix millisecond they expire at. A node adds its entries when a
//! member's first connection arrives, removes them when its last leaves
//! (and all of them when it shuts down), and scores them again every
//! third of the time to live; a node that dies stops doing so, and its
//! entries drop out of every reader's view once their time is past
//! (readers remove them, `ZREMRANGEBYSCORE`). Every command names one
//! key, so on a Redis Cluster each goes to the topic's slot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redis::{Cmd, RedisError, Value};
use tether_hub::{
    ControlMessage, EventId, HistoryQuery, HubMessage, MAX_REMOTE_MEMBERS, PresenceMessage, ReplyTo,
    is_valid_member,
};

use crate::commands::is_server_error;
use crate::connection::Con;
use crate::control;
use crate::history;
use tether_bus::unix_ms;

use crate::limits::{self, LIMITS_PERIOD};
use crate::shared::{Control, Link, Post, RedisBus, SharedLimits};

/// Members added or scored again in one command at most.
const BATCH: usize = 512;
/// Messages handled at most between two looks at the work that is due.
const PER_TURN: usize = 64;

pub(crate) struct PresenceThread {
    shared: Arc<RedisBus>,
    post: Post,
    rx: Receiver<Control>,
    con: Option<Con>,
    link: Link,
    /// This node's name in the entries.
    node: String,
    /// This node's members, by topic.
    mine: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Topics whose other members are read, and the loop (the topic's
    /// sequencer) they go to.
    watched: HashMap<Arc<str>, usize>,
    next_refresh: Instant,
    next_read: Instant,
    /// The control stream's key.
    control_key: String,
    /// The last id read from the control stream (`None` before the
    /// first connection: from then on, every action is read).
    control_from: Option<EventId>,
    /// What this node shares about its users, once the hub gave it.
    limits: Option<SharedLimits>,
    next_limits: Instant,
    /// Revocations not yet written (Redis was away).
    revoking: Vec<(String, u64)>,
    /// The revocations' change count as last read (`None`: read them all).
    revoked_seen: Option<Value>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The member of a `NODE/MEMBER` entry of another node than `node`.
pub(crate) fn other_member<'e>(entry: &'e [u8], node: &str) -> Option<&'e str> {
    let entry = std::str::from_utf8(entry).ok()?;
    let (owner, member) = entry.split_once('/')?;
    (owner != node && is_valid_member(member)).then_some(member)
}

/// The entries of a `ZRANGEBYSCORE` reply.
pub(crate) fn parse_members(value: &Value) -> Vec<&[u8]> {
    match value {
        Value::Array(items) | Value::Set(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::BulkString(bytes) => Some(&bytes[..]),
                _ => None,
            })
            .take(MAX_REMOTE_MEMBERS)
            .collect(),
        _ => Vec::new(),
    }
}

impl PresenceThread {
    pub(crate) fn new(shared: Arc<RedisBus>, post: Post, rx: Receiver<Control>) -> PresenceThread {
        let now = Instant::now();
        PresenceThread {
            link: Link::new("presence", shared.clone()),
            control_key: control::key(&shared.config.prefix),
            node: format!("{:016x}", shared.node_id),
            shared,
            post,
            rx,
            con: None,
            mine: HashMap::new(),
            watched: HashMap::new(),
            next_refresh: now,
            next_read: now,
            control_from: None,
            limits: None,
            next_limits: now,
            revoking: Vec::new(),
            revoked_seen: None,
        }
    }

    fn ttl(&self) -> Duration {
        self.shared.config.presence_ttl.max(Duration::from_millis(30))
    }

    pub(crate) fn run(mut self) {
        loop {
            if self.con.is_none() && self.link.wait().is_zero() {
                self.con = self.link.connect(self.shared.config.command_timeout);
                if self.con.is_some() {
                    self.start_control();
                    // Everything again: entries may have expired meanwhile.
                    self.next_refresh = Instant::now();
                    self.next_read = Instant::now();
                    self.next_limits = Instant::now();
                    self.revoked_seen = None;
                }
            }
            let mut due = self.next_refresh.min(self.next_read);
            if self.limits.is_some() || !self.revoking.is_empty() {
                due = due.min(self.next_limits);
            }
            let wait = if self.con.is_none() {
                self.link.wait()
            } else {
                due.saturating_duration_since(Instant::now())
            };
            match self.rx.recv_timeout(wait) {
                Ok(message) => {
                    if !self.handle(message) {
                        return self.stop();
                    }
                    // At most a turn's worth: the refreshes and reads
                    // that are due go on between turns, however many
                    // messages (history pages, say) keep coming.
                    for _ in 1..PER_TURN {
                        let Ok(message) = self.rx.try_recv() else { break };
                        if !self.handle(message) {
                            return self.stop();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.stop(),
            }
            if self.con.is_none() {
                continue;
            }
            let now = Instant::now();
            if now >= self.next_refresh {
                self.next_refresh = now + self.ttl() / 3;
                let topics: Vec<Arc<str>> = self.mine.keys().cloned().collect();
                for topic in topics {
                    self.refresh(&topic);
                }
            }
            if now >= self.next_read {
                self.next_read = now + self.shared.config.presence_poll;
                let topics: Vec<(Arc<str>, usize)> =
                    self.watched.iter().map(|(t, l)| (t.clone(), *l)).collect();
                for (topic, loop_index) in topics {
                    self.read(&topic, loop_index);
                }
                self.read_control();
            }
            if now >= self.next_limits {
                self.next_limits = now + LIMITS_PERIOD;
                self.share_limits();
            }
        }
    }

    /// False to stop.
    fn handle(&mut self, message: Control) -> bool {
        match message {
            Control::Member {
                topic,
                member,
                present,
            } => {
                let entry = format!("{}/{member}", self.node);
                if present {
                    self.mine.entry(topic.clone()).or_default().insert(member);
                    let expiry = unix_ms().saturating_add(millis(self.ttl()));
                    let key = self.shared.keys.presence(&topic);
                    let add = redis::cmd("ZADD").arg(&key).arg(expiry).arg(&entry).clone();
                    self.send(&[add, self.pexpire(&key)]);
                } else {
                    if let Some(members) = self.mine.get_mut(&topic) {
                        members.remove(&member);
                        if members.is_empty() {
                            self.mine.remove(&topic);
                        }
                    }
                    let key = self.shared.keys.presence(&topic);
                    self.send(&[redis::cmd("ZREM").arg(&key).arg(&entry).clone()]);
                }
            }
            Control::Watch {
                topic,
                loop_index,
                watch,
            } => {
                if watch {
                    self.watched.insert(topic.clone(), loop_index);
                    if self.con.is_some() {
                        // A question may be waiting for this.
                        self.read(&topic, loop_index);
                    }
                } else {
                    self.watched.remove(&topic);
                }
            }
            Control::UserAction(action) => {
                if let Some(add) = control::add(&self.control_key, &self.node, &action) {
                    self.send(&[add]);
                }
            }
            Control::Limits(limits) => {
                self.limits = Some(limits);
                self.next_limits = Instant::now();
                self.revoked_seen = None;
            }
            Control::Revoke(entries) => {
                // What cannot be written would fail its whole batch, again
                // and again.
                let fits = |entry: &str| !entry.is_empty() && entry.len() <= tether_bus::wire::MAX_ENTRY_LEN;
                self.revoking
                    .extend(entries.into_iter().filter(|(entry, _)| fits(entry)));
                self.next_limits = Instant::now();
            }
            Control::History { query, reply } => self.history(&query, reply),
            Control::Stop => return false,
            // The reader's: the bus never sends them here.
            Control::Follow { .. } => {}
        }
        true
    }

    /// A page of a topic's history, read on this thread's connection
    /// (each command within the connection's timeout) and posted to the
    /// loop that asked; unavailable while the connection is down.
    fn history(&mut self, query: &HistoryQuery, reply: ReplyTo) {
        let (max_events, max_bytes) = (
            self.shared.config.history_events,
            self.shared.config.history_bytes,
        );
        let key = self.shared.keys.stream(&query.topic);
        let read = match self.con.as_mut() {
            None => Err(()),
            Some(con) => history::read_history(con, &key, query, max_events, max_bytes).map_err(|e| {
                log::debug!("redis: history of {} not read: {e}", query.topic);
                self.lost(&e);
            }),
        };
        tether_bus::answer_history(&self.post, query, reply, read, max_events, max_bytes);
    }

    /// The key expires a while after its last write, so that a set every
    /// node of which is gone does not stay behind.
    fn pexpire(&self, key: &str) -> Cmd {
        redis::cmd("PEXPIRE")
            .arg(key)
            .arg(millis(self.ttl()).saturating_mul(2))
            .clone()
    }

    /// Scores this node's members of `topic` again.
    fn refresh(&mut self, topic: &Arc<str>) {
        let Some(members) = self.mine.get(topic) else {
            return;
        };
        let expiry = unix_ms().saturating_add(millis(self.ttl()));
        let key = self.shared.keys.presence(topic);
        let members: Vec<&Arc<str>> = members.iter().collect();
        let mut cmds = Vec::new();
        for chunk in members.chunks(BATCH) {
            let mut add = redis::cmd("ZADD");
            add.arg(&key);
            for member in chunk {
                add.arg(expiry).arg(format!("{}/{member}", self.node));
            }
            cmds.push(add);
        }
        cmds.push(self.pexpire(&key));
        self.send(&cmds);
    }

    /// Reads the other nodes' members of `topic` (dropping the expired
    /// entries first) and posts them to its sequencer.
    fn read(&mut self, topic: &Arc<str>, loop_index: usize) {
        let Some(con) = self.con.as_mut() else { return };
        let now = unix_ms();
        let key = self.shared.keys.presence(topic);
        let cmds = [
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({now}"))
                .clone(),
            redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg(now)
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_REMOTE_MEMBERS)
                .clone(),
        ];
        let (replies, failure) = con.pipeline(&cmds);
        if let Some(e) = failure {
            return self.lost(&e);
        }
        let Some(Ok(reply)) = replies.get(1) else {
            log::debug!("redis: presence of {topic} not read");
            return;
        };
        let entries = parse_members(reply);
        // As many as asked for: the set may hold more.
        let truncated = entries.len() >= MAX_REMOTE_MEMBERS;
        let members: Vec<Arc<str>> = entries
            .into_iter()
            .filter_map(|entry| other_member(entry, &self.node))
            .map(Arc::from)
            .collect();
        (self.post)(
            loop_index,
            HubMessage::Presence(PresenceMessage::Remote {
                topic: topic.clone(),
                members,
                truncated,
            }),
        );
    }

    /// On the first connection: the control stream is read from its
    /// last entry on (what other nodes did before this one came is
    /// theirs). A connection made again goes on from the last id read.
    fn start_control(&mut self) {
        if self.control_from.is_some() {
            return;
        }
        let Some(con) = self.con.as_mut() else { return };
        let last = redis::cmd("XREVRANGE")
            .arg(&self.control_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .clone();
        match con.query(&last) {
            Ok(reply) => {
                let last = control::parse_range(&reply).and_then(|entries| entries.first().map(|e| e.id));
                self.control_from = Some(last.unwrap_or(EventId::ZERO));
            }
            Err(e) => self.lost(&e),
        }
    }

    /// Relays the other nodes' user actions added since the last read to
    /// a loop, which posts each to every loop.
    fn read_control(&mut self) {
        let (Some(con), Some(from)) = (self.con.as_mut(), self.control_from) else {
            return;
        };
        let read = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(control::READ_COUNT)
            .arg("STREAMS")
            .arg(&self.control_key)
            .arg(from.to_string())
            .clone();
        let reply = match con.query(&read) {
            Ok(reply) => reply,
            Err(e) => return self.lost(&e),
        };
        let Some(entries) = control::parse_xread(&reply) else {
            log::debug!("redis: the control stream's reply was not read");
            return;
        };
        for entry in entries {
            self.control_from = Some(entry.id);
            if entry.node == self.node {
                continue;
            }
            match entry.action {
                Some(action) => (self.post)(0, HubMessage::Control(ControlMessage::Relay(action))),
                None => log::debug!("redis: control entry {} is not an action", entry.id),
            }
        }
    }

    fn send(&mut self, cmds: &[Cmd]) {
        let Some(con) = self.con.as_mut() else { return };
        let (replies, failure) = con.pipeline(cmds);
        for e in replies.into_iter().filter_map(Result::err) {
            log::debug!("redis: presence command refused: {e}");
        }
        if let Some(e) = failure {
            self.lost(&e);
        }
    }

    fn lost(&mut self, e: &RedisError) {
        if is_server_error(e) {
            return;
        }
        self.con = None;
        self.link.lost(
            e,
            "this node's members expire elsewhere if it stays away; they are written again once it is back",
        );
    }

    /// Writes the revocations waiting, this node's connection counts, and
    /// reads the others' counts and, when they changed, the revocations.
    fn share_limits(&mut self) {
        let prefix = self.shared.config.prefix.clone();
        let now_secs = unix_ms() / 1000;
        if !self.revoking.is_empty() {
            let key = limits::revoked_key(&prefix);
            let mut cmds: Vec<Cmd> = self
                .revoking
                .chunks(BATCH)
                .map(|chunk| {
                    let mut add = redis::cmd("ZADD");
                    add.arg(&key);
                    // Entries were checked as they came (`Control::Revoke`).
                    for (entry, until) in chunk {
                        if let Some(member) = limits::revoked_member(entry, *until) {
                            add.arg(*until).arg(member);
                        }
                    }
                    add
                })
                .collect();
            cmds.push(
                redis::cmd("INCR")
                    .arg(limits::revoked_generation_key(&prefix))
                    .clone(),
            );
            let Some(con) = self.con.as_mut() else { return };
            let (replies, failure) = con.pipeline(&cmds);
            if let Some(e) = failure {
                return self.lost(&e);
            }
            if replies.iter().all(Result::is_ok) {
                self.revoking.clear();
            } else {
                log::warn!("redis: revocations not written; tried again in {LIMITS_PERIOD:?}");
            }
        }
        let Some(SharedLimits(node_limits)) = self.limits.clone() else {
            return;
        };
        let ttl = millis(limits::COUNTS_TTL);
        let nodes = limits::nodes_key(&prefix);
        let now_ms = unix_ms();
        let (counts, left_out) = tether_bus::wire::encode_counts(&node_limits.connections_here());
        if left_out > 0 {
            log::debug!("redis: {left_out} subjects' connection counts not shared (empty or too long)");
        }
        let cmds = [
            redis::cmd("SET")
                .arg(limits::counts_key(&prefix, &self.node))
                .arg(counts)
                .arg("PX")
                .arg(ttl)
                .clone(),
            redis::cmd("ZADD")
                .arg(&nodes)
                .arg(now_ms.saturating_add(ttl))
                .arg(&self.node)
                .clone(),
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(&nodes)
                .arg("-inf")
                .arg(format!("({now_ms}"))
                .clone(),
            redis::cmd("ZRANGEBYSCORE")
                .arg(&nodes)
                .arg(now_ms)
                .arg("+inf")
                .clone(),
            redis::cmd("GET")
                .arg(limits::revoked_generation_key(&prefix))
                .clone(),
        ];
        let Some(con) = self.con.as_mut() else { return };
        let (replies, failure) = con.pipeline(&cmds);
        if let Some(e) = failure {
            return self.lost(&e);
        }
        let others: Vec<String> = match replies.get(3) {
            Some(Ok(reply)) => limits::members(reply)
                .into_iter()
                .filter_map(|node| std::str::from_utf8(node).ok())
                .filter(|node| *node != self.node)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let mut elsewhere = HashMap::new();
        if !others.is_empty() {
            let gets: Vec<Cmd> = others
                .iter()
                .map(|node| redis::cmd("GET").arg(limits::counts_key(&prefix, node)).clone())
                .collect();
            let (counts, failure) = con.pipeline(&gets);
            if let Some(e) = failure {
                return self.lost(&e);
            }
            for reply in counts.iter().flatten() {
                if let Some(text) = crate::commands::text(reply)
                    && let Err(e) = tether_bus::wire::decode_counts(text, &mut elsewhere)
                {
                    log::debug!("redis: another node's connection counts were not read: {e}");
                }
            }
        }
        node_limits.set_connections_elsewhere(elsewhere);
        let generation = match replies.get(4) {
            Some(Ok(generation)) => generation.clone(),
            _ => return,
        };
        if self.revoked_seen.as_ref() == Some(&generation) {
            return;
        }
        let key = limits::revoked_key(&prefix);
        let cmds = [
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now_secs)
                .clone(),
            redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg(format!("({now_secs}"))
                .arg("+inf")
                .clone(),
        ];
        let (replies, failure) = con.pipeline(&cmds);
        if let Some(e) = failure {
            return self.lost(&e);
        }
        let Some(Ok(reply)) = replies.get(1) else {
            log::debug!("redis: the revocations were not read");
            return;
        };
        let entries = limits::members(reply)
            .into_iter()
            .filter_map(limits::parse_revoked_member)
            .collect();
        node_limits.revoked(entries);
        self.revoked_seen = Some(generation);
    }

    /// Shutting down: this node's members leave at once, everywhere.
    fn stop(mut self) {
        let mine = std::mem::take(&mut self.mine);
        for (topic, members) in mine {
            let key = self.shared.keys.presence(&topic);
            let members: Vec<&Arc<str>> = members.iter().collect();
            let cmds: Vec<Cmd> = members
                .chunks(BATCH)
                .map(|chunk| {
                    let mut rem = redis::cmd("ZREM");
                    rem.arg(&key);
                    for member in chunk {
                        rem.arg(format!("{}/{member}", self.node));
                    }
                    rem
                })
                .collect();
            self.send(&cmds);
        }
        self.shared.stats.presence_up.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_other_nodes_only() {
        assert_eq!(other_member(b"b/alice", "a"), Some("alice"));
        assert_eq!(other_member(b"b/x/y", "a"), Some("x/y"));
        assert_eq!(other_member(b"a/alice", "a"), None);
        assert_eq!(other_member(b"alice", "a"), None);
        assert_eq!(other_member(b"b/", "a"), None);
        assert_eq!(other_member(b"b/\xff", "a"), None);
        assert_eq!(other_member(b"b/a\nb", "a"), None);
    }

    #[test]
    fn a_topics_presence_set_shares_its_streams_slot_and_never_its_key() {
        let single = crate::commands::Keys::new("t:", false, 0);
        assert_eq!(single.presence("a"), "t:!presence:a");
        // A topic may be named `a:presence`; its stream is not the set.
        assert_ne!(single.stream("a:presence"), single.presence("a"));
        let cluster = crate::commands::Keys::new("t:", true, 0);
        assert_eq!(cluster.presence("a.b"), "t:!presence:{a.b}");
        assert_eq!(cluster.stream("a.b"), "t:{a.b}");
    }

    #[test]
    fn replies_are_read_as_they_come() {
        let reply = Value::Array(vec![
            Value::BulkString(b"n/a".to_vec()),
            Value::Int(3),
            Value::BulkString(b"n/b".to_vec()),
        ]);
        assert_eq!(parse_members(&reply), [&b"n/a"[..], &b"n/b"[..]]);
        assert!(parse_members(&Value::Nil).is_empty());
        let many = Value::Array(vec![Value::BulkString(b"n/a".to_vec()); MAX_REMOTE_MEMBERS + 3]);
        assert_eq!(parse_members(&many).len(), MAX_REMOTE_MEMBERS);
    }
}
