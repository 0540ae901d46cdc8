//! Redis keys, ids, the commands the bridge sends and the replies it
//! reads. No I/O here: the threads send what these build.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};

use tether_hub::{
    DEFAULT_EVENT_TYPE, Event, EventId, Payload, is_valid_event_type, is_valid_publish_key, is_valid_topic,
};

/// The stream field that holds an event's type.
pub(crate) const FIELD_EVENT: &str = "event";
/// The stream field that holds an event's data.
pub(crate) const FIELD_DATA: &str = "data";

/// The stream field that holds a binary event's data (its bytes exactly)
/// in place of [`FIELD_DATA`]. A node of a release before binary events
/// finds no data in such an entry and delivers it as an empty text event;
/// it never fails on it.
pub(crate) const FIELD_BINARY: &str = "binary";
/// The stream field that holds an event's publish key, if it has one.
pub(crate) const FIELD_KEY: &str = "key";

/// How topics' keys are named, in one of three layouts:
///
/// - **One Redis server**: the prefix, then the topic's name
///   (`PREFIX TOPIC`); one announcement stream, `PREFIX!bus` (see
///   [`crate::bus`]).
/// - **A Redis Cluster, partitioned** (the default there): the topics are
///   grouped into [`crate::RedisConfig::cluster_partitions`] partitions by
///   the slot their name hashes to, and every key of a partition carries
///   the partition's hash tag (`PREFIX{TAG}TOPIC`, `PREFIX{TAG}!bus`), so
///   that one script may add an event to its topic's stream and announce
///   it on the partition's bus. A node then reads one bus per partition,
///   whatever the number of topics it follows. The tags are chosen so that
///   the partitions' slots are spread evenly over the slot space (and so
///   over the primaries).
/// - **A Redis Cluster, a slot per topic** (`cluster_partitions` 0, the
///   layout of earlier versions): the name is the hash tag
///   (`PREFIX{TOPIC}`), nothing is announced, and a node polls each
///   followed stream.
///
/// Topic names never hold `{` or `}` (nor `!`), and a cluster's prefix
/// holds neither brace (checked by `RedisBridge::new`), so the tag is
/// exactly what is between the braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
    pub(crate) cluster: bool,
    /// On a partitioned cluster, each partition's hash tag; else empty.
    tags: Vec<String>,
}

/// The slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16_384;

/// Partitions a cluster may be split into at most.
pub(crate) const MAX_PARTITIONS: usize = 1024;

/// The slot Redis Cluster gives a key whose hash tag (or whole key) is
/// `tag`: CRC16 (XMODEM) modulo 16 384.
pub(crate) fn slot(tag: &[u8]) -> usize {
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    usize::from(crc) % SLOTS
}

/// What Redis Cluster hashes of `key` to find its slot: the text between
/// the first `{` and the first `}` after it, when there is some, else the
/// whole key.
pub(crate) fn hash_tag(key: &str) -> &str {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key)
}

/// The hash tags of `partitions` partitions: partition `i` owns the slots
/// from `i * 16384 / partitions` up to the next partition's first, and its
/// tag is the first of `i-0`, `i-1`, ... whose slot is among them.
fn partition_tags(partitions: usize) -> Vec<String> {
    (0..partitions)
        .map(|i| {
            let (low, high) = (i * SLOTS / partitions, (i + 1) * SLOTS / partitions);
            (0u64..)
                .map(|k| format!("{i}-{k}"))
                .find(|tag| (low..high).contains(&slot(tag.as_bytes())))
                .unwrap_or_default()
        })
        .collect()
}

impl Keys {
    /// The keys under `prefix`: on one server, or on a cluster split into
    /// `partitions` (0: a slot per topic; at most [`MAX_PARTITIONS`]).
    pub(crate) fn new(prefix: &str, cluster: bool, partitions: usize) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            cluster,
            tags: if cluster {
                partition_tags(partitions.min(MAX_PARTITIONS))
            } else {
                Vec::new()
            },
        }
    }

    /// The number of announcement streams: 1 on one server, the
    /// partitions on a partitioned cluster, 0 with a slot per topic.
    pub(crate) fn buses(&self) -> usize {
        if self.cluster { self.tags.len() } else { 1 }
    }

    /// Whether publishes are announced on a bus (see [`Keys::buses`]).
    pub(crate) fn announces(&self) -> bool {
        self.buses() > 0
    }

    /// The bus (the partition) a topic's events are announced on.
    pub(crate) fn partition(&self, topic: &str) -> usize {
        if self.tags.is_empty() {
            0
        } else {
            slot(topic.as_bytes()) * self.tags.len() / SLOTS
        }
    }

    /// What comes between the prefix and the name: the partition's tag in
    /// braces on a partitioned cluster, else nothing.
    fn tag_of(&self, topic: &str) -> String {
        self.tags
            .get(self.partition(topic))
            .map(|tag| format!("{{{tag}}}"))
            .unwrap_or_default()
    }

    /// The cluster slot of a topic's stream (and of every key the topic
    /// has, which share its hash tag).
    pub(crate) fn stream_slot(&self, topic: &str) -> u16 {
        let key = self.stream(topic);
        u16::try_from(slot(hash_tag(&key).as_bytes())).unwrap_or(0)
    }

    /// The key of a topic's stream.
    pub(crate) fn stream(&self, topic: &str) -> String {
        let prefix = &self.prefix;
        if !self.cluster {
            format!("{prefix}{topic}")
        } else if self.tags.is_empty() {
            format!("{prefix}{{{topic}}}")
        } else {
            format!("{prefix}{}{topic}", self.tag_of(topic))
        }
    }

    /// The topic whose stream is `key`, if `key` is one (the prefix, then
    /// a valid topic name: in braces with a slot per topic, after its
    /// partition's tag on a partitioned cluster).
    pub(crate) fn topic_of<'k>(&self, key: &'k [u8]) -> Option<&'k str> {
        let mut name = key.strip_prefix(self.prefix.as_bytes())?;
        if self.cluster && self.tags.is_empty() {
            name = name.strip_prefix(b"{")?.strip_suffix(b"}")?;
        } else if self.cluster {
            let close = name.iter().position(|&b| b == b'}')?;
            name = name.get(close + 1..)?;
        }
        let name = std::str::from_utf8(name).ok()?;
        (is_valid_topic(name) && self.stream(name).as_bytes() == key).then_some(name)
    }

    /// The keys of a topic's publish-key index: a hash from each
    /// remembered publish key to its entry's id, and a sorted set of the
    /// same keys by their entry's milliseconds (to forget those trimmed
    /// from the stream). `!` is not allowed in topic names, so neither is
    /// ever a stream's key.
    pub(crate) fn index(&self, topic: &str) -> (String, String) {
        let prefix = &self.prefix;
        if self.cluster && self.tags.is_empty() {
            (
                format!("{prefix}!pub:{{{topic}}}"),
                format!("{prefix}!pub-ms:{{{topic}}}"),
            )
        } else {
            let tag = self.tag_of(topic);
            (
                format!("{prefix}{tag}!pub:{topic}"),
                format!("{prefix}{tag}!pub-ms:{topic}"),
            )
        }
    }

    /// The key of announcement stream `bus` (see [`crate::bus`]):
    /// `PREFIX!bus`, or `PREFIX{TAG}!bus` for a cluster's partition. `!`
    /// is not allowed in topic names, so no topic's stream has this key.
    pub(crate) fn bus(&self, bus: usize) -> String {
        format!("{}{}!bus", self.prefix, self.bus_tag(bus))
    }

    /// The key of the counter that numbers bus `bus`'s announcements.
    pub(crate) fn bus_seq(&self, bus: usize) -> String {
        format!("{}{}!bus-seq", self.prefix, self.bus_tag(bus))
    }

    fn bus_tag(&self, bus: usize) -> String {
        self.tags
            .get(bus)
            .map(|tag| format!("{{{tag}}}"))
            .unwrap_or_default()
    }

    /// The key of a topic's presence set: `PREFIX!presence:TOPIC`
    /// (`PREFIX!presence:{TOPIC}` on a cluster, the topic's own slot,
    /// whatever the layout: presence commands name one key each). `!` is
    /// not allowed in topic names, so no topic's stream has this key
    /// (`PREFIX{TOPIC}:presence` could be the stream of a topic named so).
    pub(crate) fn presence(&self, topic: &str) -> String {
        if self.cluster {
            format!("{}!presence:{{{topic}}}", self.prefix)
        } else {
            format!("{}!presence:{topic}", self.prefix)
        }
    }
}

/// The key of a node's wake stream. `!` is not allowed in topic names, so
/// no topic's stream can have this key.
pub(crate) fn wake_key(prefix: &str, node: u64) -> String {
    format!("{prefix}!wake:{node:016x}")
}

/// 64 random bits naming this node's wake key, from the standard library's
/// per-process random keys.
pub(crate) fn random_node_id() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// The id right before `id` (what an exclusive end at `id` means), or
/// `None` before `0-0`.
pub(crate) fn prev_id(id: EventId) -> Option<EventId> {
    match id.seq().checked_sub(1) {
        Some(seq) => Some(EventId::new(id.ms(), seq)),
        None => id.ms().checked_sub(1).map(|ms| EventId::new(ms, u64::MAX)),
    }
}

/// `XADD key MAXLEN 1 SEQ-0 w 1`: a wake-up for the reader of a node,
/// whose `XREAD` includes this stream. Explicit, increasing ids, so that
/// a wake is never mistaken for an old one, even after the key expired or
/// Redis restarted.
pub(crate) fn wake(key: &str, seq: u64) -> Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key)
        .arg("MAXLEN")
        .arg("1")
        .arg(format!("{seq}-0"))
        .arg("w")
        .arg("1");
    cmd
}

/// How long a wake stream outlives its last wake-up: a node that died
/// leaves nothing behind for longer.
pub(crate) const WAKE_TTL_MS: u64 = 10 * 60 * 1000;

/// `PEXPIRE key WAKE_TTL_MS`.
pub(crate) fn wake_expiry(key: &str) -> Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(WAKE_TTL_MS);
    cmd
}

/// `XREAD COUNT count [BLOCK ms] STREAMS key... id...`: the entries after
/// each id, waiting up to `block_ms` for the first (if given).
pub(crate) fn xread(streams: &[(&str, EventId)], count: usize, block_ms: Option<u64>) -> Cmd {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(count);
    if let Some(ms) = block_ms {
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS");
    for (key, _) in streams {
        cmd.arg(*key);
    }
    for (_, id) in streams {
        cmd.arg(id.to_string());
    }
    cmd
}

/// `XREVRANGE key END - COUNT count`: the newest entries up to `end`
/// (inclusive; `None`: the stream's end), newest first.
pub(crate) fn xrevrange(key: &str, end: Option<EventId>, count: usize) -> Cmd {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(key);
    match end {
        Some(id) => cmd.arg(id.to_string()),
        None => cmd.arg("+"),
    };
    cmd.arg("-").arg("COUNT").arg(count);
    cmd
}

/// `XRANGE key ID ID`: the entry `id`, if the stream still holds it.
pub(crate) fn xrange_one(key: &str, id: EventId) -> Cmd {
    let id = id.to_string();
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(key).arg(&id).arg(&id);
    cmd
}

/// `XRANGE key ID + COUNT count`: the entries from `id` on (`id` itself
/// first, if the stream still holds it); from the start for `0-0`.
pub(crate) fn xrange_from(key: &str, id: EventId, count: usize) -> Cmd {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(key);
    if id == EventId::ZERO {
        cmd.arg("-");
    } else {
        cmd.arg(id.to_string());
    }
    cmd.arg("+").arg("COUNT").arg(count);
    cmd
}

/// `XINFO STREAM key`.
pub(crate) fn xinfo_stream(key: &str) -> Cmd {
    let mut cmd = redis::cmd("XINFO");
    cmd.arg("STREAM").arg(key);
    cmd
}

/// One stream entry, as the bridge reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: EventId,
    pub(crate) event_type: String,
    pub(crate) data: Payload,
    pub(crate) key: Option<String>,
}

impl Entry {
    /// The hub's event for this entry, encoded once.
    pub(crate) fn to_event(&self, topic: &Arc<str>) -> Option<Arc<Event>> {
        Event::of_payload(
            topic.clone(),
            self.id,
            &self.event_type,
            &self.data,
            self.key.as_deref(),
        )
        .ok()
    }
}

pub(crate) fn malformed(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "unexpected reply from Redis", what.to_owned()))
}

pub(crate) fn text(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// A stream id as the hub's [`EventId`] (Redis writes them canonically).
pub(crate) fn parse_id(value: &Value) -> Option<EventId> {
    EventId::parse(std::str::from_utf8(text(value)?).ok()?)
}

/// Key-value pairs, from a RESP2 flat array or a RESP3 map.
pub(crate) fn pairs(value: &Value) -> Option<Vec<(&Value, &Value)>> {
    match value {
        Value::Array(items) if items.len() % 2 == 0 => Some(
            items
                .chunks_exact(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((k, v)),
                    _ => None,
                })
                .collect(),
        ),
        Value::Map(map) => Some(map.iter().map(|(k, v)| (k, v)).collect()),
        _ => None,
    }
}

/// One entry: `[id, [field, value, ...]]`. Entries that tether did not
/// write still get through: a missing or invalid type reads as
/// `message`, missing data as empty, bytes that are not UTF-8 lossily, an
/// invalid publish key as none; data in [`FIELD_BINARY`] is binary.
pub(crate) fn parse_entry(value: &Value) -> Result<Entry, RedisError> {
    let Value::Array(parts) = value else {
        return Err(malformed("a stream entry"));
    };
    let [id, fields] = &parts[..] else {
        return Err(malformed("a stream entry"));
    };
    let id = parse_id(id).ok_or_else(|| malformed("a stream entry id"))?;
    let mut event_type = DEFAULT_EVENT_TYPE.to_owned();
    let mut data = Payload::default();
    let mut key = None;
    for (field, value) in pairs(fields).unwrap_or_default() {
        match (text(field), text(value)) {
            (Some(f), Some(v)) if f == FIELD_EVENT.as_bytes() => {
                if let Ok(t) = std::str::from_utf8(v)
                    && is_valid_event_type(t)
                {
                    t.clone_into(&mut event_type);
                }
            }
            (Some(f), Some(v)) if f == FIELD_DATA.as_bytes() => {
                data = Payload::Text(String::from_utf8_lossy(v).into_owned());
            }
            (Some(f), Some(v)) if f == FIELD_BINARY.as_bytes() => data = Payload::Binary(v.to_vec()),
            (Some(f), Some(v)) if f == FIELD_KEY.as_bytes() => {
                key = std::str::from_utf8(v)
                    .ok()
                    .filter(|k| is_valid_publish_key(k))
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    Ok(Entry {
        id,
        event_type,
        data,
        key,
    })
}

/// The entries of an `XRANGE`/`XREVRANGE` reply, in the reply's order.
pub(crate) fn parse_entries(value: &Value) -> Result<Vec<Entry>, RedisError> {
    match value {
        Value::Array(entries) => entries.iter().map(parse_entry).collect(),
        Value::Nil => Ok(Vec::new()),
        _ => Err(malformed("a list of stream entries")),
    }
}

/// A stream's key and entries, from an `XREAD` reply.
pub(crate) type StreamEntries = (Vec<u8>, Vec<Entry>);

/// An `XREAD` reply: each stream's key and new entries (nothing when it
/// timed out).
pub(crate) fn parse_xread(value: &Value) -> Result<Vec<StreamEntries>, RedisError> {
    xread_streams(value)?
        .into_iter()
        .map(|(key, entries)| Ok((key.to_vec(), parse_entries(entries)?)))
        .collect()
}

/// An `XREAD` reply as each stream's key and its list of entries, not yet
/// parsed.
pub(crate) fn xread_streams(value: &Value) -> Result<Vec<(&[u8], &Value)>, RedisError> {
    let streams: Vec<(&Value, &Value)> = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .iter()
            .map(|s| match s {
                Value::Array(kv) => match &kv[..] {
                    [k, v] => Ok((k, v)),
                    _ => Err(malformed("an XREAD stream")),
                },
                _ => Err(malformed("an XREAD stream")),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
        _ => return Err(malformed("an XREAD reply")),
    };
    streams
        .into_iter()
        .map(|(key, entries)| {
            let key = text(key).ok_or_else(|| malformed("an XREAD stream key"))?;
            Ok((key, entries))
        })
        .collect()
}

/// What an `XINFO STREAM` reply says about what the stream lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamInfo {
    /// Entries held.
    pub(crate) length: u64,
    /// Entries ever added (Redis 7 and later).
    pub(crate) entries_added: Option<u64>,
    /// The newest id removed with `XDEL` (Redis 7 and later; trimming does
    /// not count).
    pub(crate) max_deleted: Option<EventId>,
    /// The id of the last entry ever added.
    pub(crate) last_generated: Option<EventId>,
}

impl StreamInfo {
    /// Whether entries were removed from the stream (trimmed or deleted).
    /// An older Redis does not say: then assume so, so that a client
    /// gets a gap signal rather than silently missing events.
    pub(crate) fn lost_entries(&self) -> bool {
        match self.entries_added {
            Some(added) => added > self.length || self.max_deleted.is_some_and(|id| id > EventId::ZERO),
            None => true,
        }
    }
}

/// An `XINFO STREAM` reply.
pub(crate) fn parse_stream_info(value: &Value) -> Option<StreamInfo> {
    let fields = pairs(value)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| text(k) == Some(name.as_bytes()))
            .map(|(_, v)| *v)
    };
    let number = |v: &Value| match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => std::str::from_utf8(text(other)?).ok()?.parse().ok(),
    };
    Some(StreamInfo {
        length: field("length").and_then(number)?,
        entries_added: field("entries-added").and_then(number),
        max_deleted: field("max-deleted-entry-id").and_then(parse_id),
        last_generated: field("last-generated-id").and_then(parse_id),
    })
}

/// The `run_id` of an `INFO server` reply: it changes whenever Redis
/// restarts.
pub(crate) fn parse_run_id(value: &Value) -> Option<String> {
    let info = std::str::from_utf8(text(value)?).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .map(|id| id.trim().to_owned())
}

/// Whether Redis answered the command with an error about the command
/// itself (the connection is fine), rather than the connection failing.
/// The errors of a server that cannot serve the key now (a redirection
/// the cluster client gave up following, a cluster failing over, a
/// replica still loading or read-only) count as a failing connection: it
/// is made again, which finds the cluster's primaries anew.
pub(crate) fn is_server_error(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(kind) => !matches!(
            kind,
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::BusyLoading
        ),
        ErrorKind::Extension => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
