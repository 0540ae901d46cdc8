//! Redis keys, ids, the commands the bridge sends and the replies it
//! reads. No I/O here: the threads send what these build.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};

use tether_hub::{
    DEFAULT_EVENT_TYPE, Event, EventId, is_valid_event_type, is_valid_publish_key, is_valid_topic,
};

/// The stream field that holds an event's type.
pub(crate) const FIELD_EVENT: &str = "event";
/// The stream field that holds an event's data.
pub(crate) const FIELD_DATA: &str = "data";
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
    pub(crate) data: String,
    pub(crate) key: Option<String>,
}

impl Entry {
    /// The hub's event for this entry, encoded once.
    pub(crate) fn to_event(&self, topic: &Arc<str>) -> Option<Arc<Event>> {
        Event::keyed(
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
/// invalid publish key as none.
pub(crate) fn parse_entry(value: &Value) -> Result<Entry, RedisError> {
    let Value::Array(parts) = value else {
        return Err(malformed("a stream entry"));
    };
    let [id, fields] = &parts[..] else {
        return Err(malformed("a stream entry"));
    };
    let id = parse_id(id).ok_or_else(|| malformed("a stream entry id"))?;
    let mut event_type = DEFAULT_EVENT_TYPE.to_owned();
    let mut data = String::new();
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
                data = String::from_utf8_lossy(v).into_owned();
            }
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
mod tests {
    use super::*;
    use crate::test_values::{args, bulk, cluster, plain};

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn keys() {
        let keys = plain("tether:");
        assert_eq!(keys.stream("news"), "tether:news");
        assert_eq!(keys.topic_of(b"tether:news"), Some("news"));
        assert_eq!(keys.topic_of(b"other:news"), None);
        assert_eq!(keys.topic_of(b"tether:"), None);
        assert_eq!(keys.topic_of(b"tether:a b"), None);
        assert_eq!(keys.topic_of(b"tether:{news}"), None);
        assert_eq!(plain("").topic_of(b"news"), Some("news"));
        let wake = wake_key("tether:", 0xabc);
        assert_eq!(wake, "tether:!wake:0000000000000abc");
        assert_eq!(keys.topic_of(wake.as_bytes()), None, "never a topic");
    }

    /// The hash tag of a key, as Redis Cluster finds it: what is between
    /// the first `{` and the next `}`, if that is not empty; else the
    /// whole key.
    fn hash_tag(key: &str) -> &str {
        key.find('{')
            .and_then(|open| {
                let rest = &key[open + 1..];
                rest.find('}')
                    .filter(|&close| close > 0)
                    .map(|close| &rest[..close])
            })
            .unwrap_or(key)
    }

    #[test]
    fn cluster_keys_share_the_topics_slot() {
        let keys = cluster("tether:");
        assert_eq!(keys.stream("news"), "tether:{news}");
        assert_eq!(
            keys.index("news"),
            (
                "tether:!pub:{news}".to_owned(),
                "tether:!pub-ms:{news}".to_owned()
            )
        );
        for topic in ["news", "a.b:c-d_e", "x"] {
            let (index, by_ms) = keys.index(topic);
            for key in [keys.stream(topic), index, by_ms] {
                assert_eq!(hash_tag(&key), topic, "{key}");
            }
        }
        assert_eq!(keys.topic_of(b"tether:{news}"), Some("news"));
        assert_eq!(keys.topic_of(b"tether:news"), None);
        assert_eq!(keys.topic_of(b"tether:{news"), None);
        assert_eq!(keys.topic_of(b"tether:{}"), None);
        assert_eq!(keys.topic_of(b"tether:!pub:{news}"), None);
        let keyed = tether_hub::Publish::new("news", None, "x", &tether_hub::Config::default())
            .unwrap()
            .with_key("k")
            .unwrap();
        assert_eq!(
            args(&crate::publish::publish(
                &keys,
                10,
                99,
                &Default::default(),
                &keyed
            ))[3..6],
            ["tether:{news}", "tether:!pub:{news}", "tether:!pub-ms:{news}"]
        );
    }

    #[test]
    fn slots_are_redis_clusters() {
        // The check value of CRC16/XMODEM (Redis Cluster's specification
        // gives it for its slots), and keys whose slots Redis reports.
        assert_eq!(slot(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b""), 0);
    }

    #[test]
    fn a_partitioned_cluster_keeps_a_topics_keys_and_its_bus_in_one_slot() {
        for partitions in [1, 3, 16, 1024] {
            let keys = crate::test_values::partitioned("tether:", partitions);
            assert_eq!(keys.buses(), partitions);
            // Each partition's tag is in its own share of the slots.
            for bus in 0..partitions {
                let key = keys.bus(bus);
                let slot = slot(hash_tag(&key).as_bytes());
                assert_eq!(slot * partitions / SLOTS, bus, "{key}");
                assert_eq!(hash_tag(&keys.bus_seq(bus)), hash_tag(&key));
            }
            for topic in ["news", "a.b:c-d_e", "x", "user.42.inbox"] {
                let bus = keys.partition(topic);
                assert_eq!(bus, slot(topic.as_bytes()) * partitions / SLOTS);
                let (index, by_ms) = keys.index(topic);
                let stream = keys.stream(topic);
                for key in [&stream, &index, &by_ms] {
                    assert_eq!(hash_tag(key), hash_tag(&keys.bus(bus)), "{key}");
                }
                assert!(stream.starts_with("tether:{") && stream.ends_with(&format!("}}{topic}")));
                assert_eq!(keys.topic_of(stream.as_bytes()), Some(topic));
                assert_eq!(keys.topic_of(index.as_bytes()), None);
                assert_eq!(keys.topic_of(keys.bus(bus).as_bytes()), None);
            }
        }
        let keys = crate::test_values::partitioned("tether:", 16);
        // Another partition's tag before a topic's name is no stream.
        let news = keys.partition("news");
        let other = keys.bus((news + 1) % 16).replace("!bus", "news");
        assert_eq!(keys.topic_of(other.as_bytes()), None);
        assert_eq!(keys.topic_of(b"tether:{news}"), None);
        // More partitions than there may be: as many as there may be.
        assert_eq!(
            crate::test_values::partitioned("t:", 5000).buses(),
            MAX_PARTITIONS
        );
        // The scripts name the partition's bus.
        let p = tether_hub::Publish::new("news", None, "x", &tether_hub::Config::default()).unwrap();
        let sent = args(&crate::publish::publish(&keys, 10, 99, &Default::default(), &p));
        assert_eq!(
            sent[2..6],
            [
                "3".to_owned(),
                keys.stream("news"),
                keys.bus(news),
                keys.bus_seq(news)
            ]
        );
        let keyed = p.with_key("k").unwrap();
        let sent = args(&crate::publish::publish(
            &keys,
            10,
            99,
            &Default::default(),
            &keyed,
        ));
        let (index, by_ms) = keys.index("news");
        assert_eq!(
            sent[2..8],
            [
                "5".to_owned(),
                keys.stream("news"),
                index,
                by_ms,
                keys.bus(news),
                keys.bus_seq(news)
            ]
        );
        assert_eq!(sent.last().map(String::as_str), Some("news"));
    }

    #[test]
    fn previous_ids() {
        assert_eq!(prev_id(EventId::new(5, 7)), Some(EventId::new(5, 6)));
        assert_eq!(prev_id(EventId::new(5, 0)), Some(EventId::new(4, u64::MAX)));
        assert_eq!(prev_id(EventId::new(0, 1)), Some(EventId::ZERO));
        assert_eq!(prev_id(EventId::ZERO), None);
    }

    #[test]
    fn redis_ids_are_event_ids() {
        assert_eq!(
            parse_id(&bulk("1718000000000-42")),
            Some(EventId::new(1_718_000_000_000, 42))
        );
        assert_eq!(
            parse_id(&Value::SimpleString("0-1".into())),
            Some(EventId::new(0, 1))
        );
        assert_eq!(parse_id(&bulk("1718000000000")), None);
        assert_eq!(parse_id(&Value::Int(5)), None);
        assert_eq!(
            EventId::new(1_718_000_000_000, 42).to_string(),
            "1718000000000-42"
        );
    }

    #[test]
    fn command_arguments() {
        assert_eq!(
            args(&wake("tether:!wake:1", 7)),
            ["XADD", "tether:!wake:1", "MAXLEN", "1", "7-0", "w", "1"]
        );
        assert_eq!(args(&wake_expiry("k")), ["PEXPIRE", "k", "600000"]);
        assert_eq!(
            args(&xread(
                &[("t:a", EventId::new(5, 1)), ("t:!wake", EventId::ZERO)],
                256,
                Some(2000)
            )),
            [
                "XREAD", "COUNT", "256", "BLOCK", "2000", "STREAMS", "t:a", "t:!wake", "5-1", "0-0"
            ]
        );
        assert_eq!(
            args(&xread(&[("t:{a}", EventId::new(5, 1))], 256, None)),
            ["XREAD", "COUNT", "256", "STREAMS", "t:{a}", "5-1"]
        );
        assert_eq!(
            args(&xrevrange("t:a", None, 11)),
            ["XREVRANGE", "t:a", "+", "-", "COUNT", "11"]
        );
        assert_eq!(
            args(&xrevrange("t:a", Some(EventId::new(3, 4)), 1)),
            ["XREVRANGE", "t:a", "3-4", "-", "COUNT", "1"]
        );
        assert_eq!(
            args(&xrange_one("t:a", EventId::new(3, 4))),
            ["XRANGE", "t:a", "3-4", "3-4"]
        );
        assert_eq!(args(&xinfo_stream("t:a")), ["XINFO", "STREAM", "t:a"]);
        assert_eq!(
            args(&xrange_from("t:a", EventId::new(3, 4), 9)),
            ["XRANGE", "t:a", "3-4", "+", "COUNT", "9"]
        );
        assert_eq!(
            args(&xrange_from("t:a", EventId::ZERO, 9)),
            ["XRANGE", "t:a", "-", "+", "COUNT", "9"]
        );
    }

    #[test]
    fn entries() {
        let reply = Value::Array(vec![
            entry("5-1", &["event", "update", "data", "one"]),
            entry("5-2", &["data", "two"]),
            entry("6-0", &["event", "gap", "data", "not a gap"]),
            entry("6-1", &["other", "x"]),
            entry("6-2", &["data", "k", "key", "order-1"]),
            entry("6-3", &["data", "k", "key", "not a key"]),
        ]);
        let entries = parse_entries(&reply).unwrap();
        let seen: Vec<(String, &str, &str)> = entries
            .iter()
            .map(|e| (e.id.to_string(), e.event_type.as_str(), e.data.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("5-1".to_owned(), "update", "one"),
                ("5-2".to_owned(), "message", "two"),
                ("6-0".to_owned(), "message", "not a gap"),
                ("6-1".to_owned(), "message", ""),
                ("6-2".to_owned(), "message", "k"),
                ("6-3".to_owned(), "message", "k"),
            ]
        );
        assert_eq!(entries[4].key.as_deref(), Some("order-1"));
        assert_eq!(entries[5].key, None);
        let keyed = entries[4].to_event(&Arc::from("news")).unwrap();
        assert_eq!(keyed.key(), Some("order-1"));
        assert_eq!(parse_entries(&Value::Array(vec![])).unwrap(), vec![]);
        assert!(parse_entries(&Value::Array(vec![bulk("5-1")])).is_err());
        assert!(parse_entries(&Value::Array(vec![entry("x", &[])])).is_err());
        let event = entries[0].to_event(&Arc::from("news")).unwrap();
        assert_eq!(
            event.json(),
            r#"{"topic":"news","id":"5-1","event":"update","data":"one"}"#
        );
    }

    #[test]
    fn xread_replies() {
        assert!(parse_xread(&Value::Nil).unwrap().is_empty());
        let resp2 = Value::Array(vec![
            Value::Array(vec![
                bulk("t:a"),
                Value::Array(vec![entry("1-1", &["data", "x"])]),
            ]),
            Value::Array(vec![
                bulk("t:!wake"),
                Value::Array(vec![entry("3-0", &["w", "1"])]),
            ]),
        ]);
        let streams = parse_xread(&resp2).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].0, b"t:a");
        assert_eq!(streams[0].1[0].data, "x");
        assert_eq!(streams[1].1[0].id, EventId::new(3, 0));
        let resp3 = Value::Map(vec![(
            bulk("t:a"),
            Value::Array(vec![entry("1-2", &["data", "y"])]),
        )]);
        assert_eq!(parse_xread(&resp3).unwrap()[0].1[0].id, EventId::new(1, 2));
        assert!(parse_xread(&Value::Int(1)).is_err());
    }

    #[test]
    fn xinfo_and_info() {
        let info = |fields: &[(&str, Value)]| {
            parse_stream_info(&Value::Array(
                fields.iter().flat_map(|(k, v)| [bulk(k), v.clone()]).collect(),
            ))
        };
        let trimmed = info(&[
            ("length", Value::Int(2)),
            ("last-generated-id", bulk("9-1")),
            ("max-deleted-entry-id", bulk("0-0")),
            ("entries-added", Value::Int(6)),
        ])
        .unwrap();
        assert_eq!(
            trimmed,
            StreamInfo {
                length: 2,
                entries_added: Some(6),
                max_deleted: Some(EventId::ZERO),
                last_generated: Some(EventId::new(9, 1)),
            }
        );
        assert!(trimmed.lost_entries());
        let whole = info(&[("length", Value::Int(6)), ("entries-added", Value::Int(6))]).unwrap();
        assert!(!whole.lost_entries());
        let deleted = info(&[
            ("length", Value::Int(6)),
            ("entries-added", Value::Int(6)),
            ("max-deleted-entry-id", bulk("3-0")),
        ]);
        assert!(deleted.unwrap().lost_entries());
        let old_redis = info(&[("length", Value::Int(6))]).unwrap();
        assert!(old_redis.lost_entries(), "unknown: assume the worst");
        assert_eq!(info(&[("groups", Value::Int(0))]), None);
        let resp3 = Value::Map(vec![
            (bulk("length"), Value::Int(1)),
            (bulk("entries-added"), Value::Int(1)),
        ]);
        assert!(!parse_stream_info(&resp3).unwrap().lost_entries());
        let info = bulk("# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\ntcp_port:6379\r\n");
        assert_eq!(parse_run_id(&info).as_deref(), Some("abc123"));
        assert_eq!(parse_run_id(&bulk("# Server\r\n")), None);
    }

    #[test]
    fn which_errors_are_the_commands() {
        let server = |line: &str| {
            let reply = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap();
            let Value::ServerError(e) = reply else {
                panic!("{reply:?}")
            };
            RedisError::from(e)
        };
        assert!(is_server_error(&server(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        )));
        assert!(is_server_error(&server("ERR unknown command")));
        for transient in [
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "READONLY You can't write against a read only replica.",
            "LOADING Redis is loading the dataset in memory",
        ] {
            assert!(!is_server_error(&server(transient)), "{transient}");
        }
        assert!(!is_server_error(&RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
    }
}
