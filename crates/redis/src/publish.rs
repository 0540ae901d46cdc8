//! What publishes an event: the commands and scripts that add it to its
//! topic's stream (and, on one server or a partitioned cluster, announce it on its bus, see
//! [`crate::bus`]; with a publish key, check the key first), and their
//! replies. No I/O here: the writer sends what these build.

use redis::{Cmd, ErrorKind, RedisError, Value};
use tether_hub::{EventId, Publish};

use crate::commands::{FIELD_BINARY, FIELD_DATA, Keys, parse_id};

/// A script's text whose body runs under `pcall`: what Redis refuses in it
/// (a key that is not a stream, say) is answered as a value,
/// `{'error', message}`, not as an error reply (see [`publish`]).
macro_rules! refusals_as_values {
    ($body:literal) => {
        concat!(
            "local ok, result = pcall(function()",
            $body,
            "end)\n",
            "if ok then return result end\n",
            "if type(result) == 'table' then result = result.err end\n",
            "return {'error', tostring(result)}\n",
        )
    };
}

/// Keys forgotten at most per keyed publish (bounds a script's work).
const PRUNE_BATCH: usize = 1000;

/// The script behind a keyed publish: in one atomic step, forget the keys
/// whose entries were trimmed from the stream (those of earlier
/// milliseconds than the stream's first entry, and those of its own
/// millisecond with a smaller sequence number), answer with the entry of a
/// key still remembered (`{0, id}`), or add the entry with its key and
/// remember it (`{1, id}`). The index lives as long as the stream (same
/// expiry, if the stream has one).
///
/// Where publishes are announced (one server, a partitioned cluster) the
/// entry is announced on its topic's bus too (see
/// [`crate::bus`]), in the same step.
///
/// KEYS: the stream, the index hash, the index sorted set, and where
/// publishes are announced the bus and its counter. ARGV: the `MAXLEN ~`
/// bound, the event type, the data, the publish key, the index's batch,
/// and where announced the bus's bound and the topic.
const PUBLISH_KEYED: &str = refusals_as_values!(
    r"
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then
  local ms, seq = string.match(first[1], '^(%d+)-(%d+)$')
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ms, 'LIMIT', 0, ARGV[5])
  local edge = redis.call('ZRANGEBYSCORE', KEYS[3], ms, ms, 'LIMIT', 0, ARGV[5])
  for _, key in ipairs(edge) do
    local kept = redis.call('HGET', KEYS[2], key)
    local kept_seq = kept and string.match(kept, '^%d+-(%d+)$')
    if not kept_seq or tonumber(kept_seq) < tonumber(seq) then
      gone[#gone + 1] = key
    end
  end
  if #gone > 0 then
    redis.call('HDEL', KEYS[2], unpack(gone))
    redis.call('ZREM', KEYS[3], unpack(gone))
  end
else
  redis.call('DEL', KEYS[2], KEYS[3])
end
local id = redis.call('HGET', KEYS[2], ARGV[4])
if id and #redis.call('XRANGE', KEYS[1], id, id) > 0 then
  return {0, id}
end
id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2], ARGV[#ARGV], ARGV[3], 'key', ARGV[4])
if KEYS[4] then
  local n = redis.call('INCR', KEYS[5])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'topic', ARGV[7], 'id', id, 'n', n, 'event', ARGV[2], ARGV[#ARGV], ARGV[3], 'key', ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[4], id)
redis.call('ZADD', KEYS[3], string.match(id, '^%d+'), ARGV[4])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
else
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[3])
end
return {1, id}
"
);

/// What publishes `publish` to its topic's stream: without a publish
/// key, where publishes are announced (one server, a partitioned cluster)
/// [`PUBLISH_ANNOUNCED`] (the entry and its announcement on the topic's
/// bus, bounded to about `bus_len`), with a slot per topic
/// [`PUBLISH_PLAIN`]; with one, [`PUBLISH_KEYED`] (`EVAL`), which checks
/// the key and adds the entry (and its announcement) atomically.
///
/// Every script answers what Redis refused (a key that is not a stream,
/// say) as a value, `{'error', message}`, not as an error reply: a Redis
/// Cluster pipeline fails as a whole at any error reply, which would
/// refuse every publish sent with it (and any of them that was added
/// would be added again when retried without a key).
pub(crate) fn publish(
    keys: &Keys,
    max_len: usize,
    bus_len: usize,
    loaded: &Loaded,
    publish: &Publish,
) -> Cmd {
    let key = keys.stream(&publish.topic);
    let bus = keys.partition(&publish.topic);
    let Some(publish_key) = &publish.key else {
        if !keys.announces() {
            return scripted_xadd(&key, max_len, publish);
        }
        return announced(keys, max_len, bus_len, loaded, publish);
    };
    let (index, by_ms) = keys.index(&publish.topic);
    let mut cmd = eval(PUBLISH_KEYED, loaded.keyed.as_deref());
    cmd.arg(if keys.announces() { 5 } else { 3 })
        .arg(&key)
        .arg(&index)
        .arg(&by_ms);
    if keys.announces() {
        cmd.arg(keys.bus(bus)).arg(keys.bus_seq(bus));
    }
    cmd.arg(max_len)
        .arg(&publish.event_type)
        .arg(publish.data.as_bytes())
        .arg(&**publish_key)
        .arg(PRUNE_BATCH);
    if keys.announces() {
        cmd.arg(bus_len).arg(&*publish.topic);
    }
    cmd.arg(data_field(publish));
    cmd
}

/// The stream field a publish's data goes in, the scripts' last argument:
/// `data` for text, `binary` for bytes (see [`FIELD_BINARY`]).
fn data_field(publish: &Publish) -> &'static str {
    if publish.data.is_binary() {
        FIELD_BINARY
    } else {
        FIELD_DATA
    }
}

/// The scripts' SHA1 digests once Redis holds them (`SCRIPT LOAD`, on
/// one server, each time the writer connects): a publish then sends
/// `EVALSHA` and the digest instead of the script's text. Without them
/// (not loaded, or Redis answered `NOSCRIPT`: its script cache was
/// flushed), `EVAL` and the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) announced: Option<String>,
    pub(crate) keyed: Option<String>,
}

/// `SCRIPT LOAD` of each script, in [`Loaded`]'s order.
pub(crate) fn load() -> [Cmd; 2] {
    [PUBLISH_ANNOUNCED, PUBLISH_KEYED].map(|script| {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(script);
        cmd
    })
}

/// The digest in a `SCRIPT LOAD` reply.
pub(crate) fn parse_loaded(value: &Value) -> Option<String> {
    let digest = std::str::from_utf8(crate::commands::text(value)?).ok()?;
    (digest.len() == 40 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_owned())
}

/// `EVALSHA digest` if Redis holds the script, else `EVAL script`.
fn eval(script: &str, digest: Option<&str>) -> Cmd {
    match digest {
        Some(digest) => {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(digest);
            cmd
        }
        None => {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(script);
            cmd
        }
    }
}

/// The reply to [`publish`]: the entry's id, and whether it is a
/// duplicate (the key was remembered: nothing was added); or what Redis
/// refused in the script, or a reply of no known shape.
pub(crate) fn parse_published(value: &Value) -> Result<(EventId, bool), RedisError> {
    let unexpected = || RedisError::from((ErrorKind::Parse, "unexpected reply", format!("{value:?}")));
    match value {
        Value::Array(parts) => match &parts[..] {
            [Value::Int(added), id] => Ok((parse_id(id).ok_or_else(unexpected)?, *added == 0)),
            [tag, message] if crate::commands::text(tag) == Some(&b"error"[..]) => {
                let message = crate::commands::text(message).map(String::from_utf8_lossy);
                if let Some(e) = message.as_deref().and_then(unavailable) {
                    return Err(e);
                }
                Err(RedisError::from((
                    ErrorKind::Extension,
                    "refused in the publish script",
                    message.map_or_else(String::new, |m| m.into_owned()),
                )))
            }
            _ => Err(unexpected()),
        },
        other => Ok((parse_id(other).ok_or_else(unexpected)?, false)),
    }
}

/// A refusal inside the script that is the server's state rather than
/// the publish's (`READONLY`: a master turned replica under a
/// connection that stayed open, as after a Sentinel failover; `LOADING`,
/// `MASTERDOWN`...): that error with its kind, which
/// [`crate::commands::is_server_error`] counts as a failing connection,
/// so the writer connects again (and, with Sentinel, asks where the
/// master is now). `None` for a refusal of the publish itself.
fn unavailable(message: &str) -> Option<RedisError> {
    let line = message.lines().next().unwrap_or_default();
    let Ok(Value::ServerError(e)) = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()) else {
        return None;
    };
    let e = RedisError::from(e);
    (matches!(e.kind(), ErrorKind::Server(_)) && !crate::commands::is_server_error(&e)).then_some(e)
}

/// The script behind a publish without a publish key where publishes are
/// announced (one server, a partitioned cluster): add
/// the event to its topic's stream (which gives its id), count it, and
/// add the announcement, in one atomic step (so that the bus's order is
/// each topic's order). Answers the event's id.
///
/// KEYS: the topic's stream, the bus, the counter. ARGV: the stream's
/// `MAXLEN ~` bound, the event type, the data, the bus's bound, the topic.
const PUBLISH_ANNOUNCED: &str = refusals_as_values!(
    r"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2], ARGV[#ARGV], ARGV[3])
local n = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'topic', ARGV[5], 'id', id, 'n', n, 'event', ARGV[2], ARGV[#ARGV], ARGV[3])
return id
"
);

/// The script behind a publish without a publish key on a cluster with a
/// slot per topic: `XADD key MAXLEN ~ max_len * event TYPE data DATA`
/// (Redis numbers the event, so ids and order are those of the stream
/// whichever node publishes, and trims the stream to about `max_len`
/// entries, never fewer), with what Redis refuses answered as a value
/// (see [`publish`]).
///
/// KEYS: the topic's stream. ARGV: the stream's `MAXLEN ~` bound, the
/// event type, the data.
const PUBLISH_PLAIN: &str = refusals_as_values!(
    r"
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2], ARGV[#ARGV], ARGV[3])
"
);

/// `EVAL` [`PUBLISH_PLAIN`] for `publish` (on a cluster, where scripts
/// are not loaded ahead: each node would need them).
fn scripted_xadd(key: &str, max_len: usize, publish: &Publish) -> Cmd {
    let mut cmd = eval(PUBLISH_PLAIN, None);
    cmd.arg(1)
        .arg(key)
        .arg(max_len)
        .arg(&publish.event_type)
        .arg(publish.data.as_bytes())
        .arg(data_field(publish));
    cmd
}

/// `EVAL` [`PUBLISH_ANNOUNCED`] for `publish`.
fn announced(keys: &Keys, max_len: usize, bus_len: usize, loaded: &Loaded, publish: &Publish) -> Cmd {
    let bus = keys.partition(&publish.topic);
    let mut cmd = eval(PUBLISH_ANNOUNCED, loaded.announced.as_deref());
    cmd.arg(3)
        .arg(keys.stream(&publish.topic))
        .arg(keys.bus(bus))
        .arg(keys.bus_seq(bus))
        .arg(max_len)
        .arg(&publish.event_type)
        .arg(publish.data.as_bytes())
        .arg(bus_len)
        .arg(&*publish.topic)
        .arg(data_field(publish));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::{args, bulk, cluster, plain};
    use tether_hub::Config;

    #[test]
    fn loaded_scripts_go_by_their_digest() {
        let digest = "0123456789abcdef0123456789abcdef01234567";
        let loaded = Loaded {
            announced: Some(digest.to_owned()),
            keyed: None,
        };
        let p = Publish::new("news", None, "x", &Config::default()).unwrap();
        let sent = args(&publish(&plain("t:"), 10, 500, &loaded, &p));
        assert_eq!(sent[..3], ["EVALSHA", digest, "3"]);
        let keyed = p.with_key("k").unwrap();
        assert_eq!(
            args(&publish(&plain("t:"), 10, 500, &loaded, &keyed))[..2],
            ["EVAL", PUBLISH_KEYED]
        );
        assert_eq!(args(&load()[0]), ["SCRIPT", "LOAD", PUBLISH_ANNOUNCED]);
        assert_eq!(args(&load()[1]), ["SCRIPT", "LOAD", PUBLISH_KEYED]);
        assert_eq!(parse_loaded(&bulk(digest)), Some(digest.to_owned()));
        assert_eq!(parse_loaded(&bulk("nope")), None);
        assert_eq!(parse_loaded(&Value::Nil), None);
    }

    #[test]
    fn a_publish_on_a_cluster_with_a_slot_per_topic() {
        let p = Publish::new("news", Some("update"), "a b\nc", &Config::default()).unwrap();
        assert_eq!(
            args(&publish(&cluster("t:"), 1000, 99, &Loaded::default(), &p)),
            [
                "EVAL",
                PUBLISH_PLAIN,
                "1",
                "t:{news}",
                "1000",
                "update",
                "a b\nc",
                "data"
            ]
        );
        // Bytes go in the binary field, exactly.
        let mut p = p;
        p.data = tether_hub::Payload::Binary(vec![0, 0xff]);
        let sent = publish(&cluster("t:"), 1000, 99, &Loaded::default(), &p);
        let last: Vec<_> = sent.args_iter().skip(6).collect();
        assert_eq!(
            last,
            [
                redis::Arg::Simple(&[0u8, 0xff][..]),
                redis::Arg::Simple(b"binary")
            ]
        );
    }

    #[test]
    fn an_announced_publish_names_the_stream_the_bus_and_the_counter() {
        let p = Publish::new("news", None, "x", &Config::default()).unwrap();
        let sent = args(&publish(&plain("t:"), 10, 500, &Loaded::default(), &p));
        assert_eq!(sent[..2], ["EVAL", PUBLISH_ANNOUNCED]);
        assert_eq!(
            sent[2..],
            [
                "3",
                "t:news",
                "t:!bus",
                "t:!bus-seq",
                "10",
                "message",
                "x",
                "500",
                "news",
                "data"
            ]
        );
    }

    #[test]
    fn keyed_publishes() {
        let config = Config::default();
        let plain = Publish::new("news", None, "x", &config).unwrap();
        assert_eq!(
            args(&publish(&cluster("t:"), 10, 99, &Loaded::default(), &plain))[..4],
            ["EVAL", PUBLISH_PLAIN, "1", "t:{news}"]
        );
        let keyed = plain.clone().with_key("order-1").unwrap();
        assert_eq!(
            args(&publish(&self::plain("t:"), 10, 99, &Loaded::default(), &plain))[..2],
            ["EVAL", PUBLISH_ANNOUNCED]
        );
        let sent = args(&publish(&self::plain("t:"), 10, 99, &Loaded::default(), &keyed));
        assert_eq!(sent[0], "EVAL");
        assert_eq!(sent[1], PUBLISH_KEYED);
        assert_eq!(
            sent[2..],
            [
                "5",
                "t:news",
                "t:!pub:news",
                "t:!pub-ms:news",
                "t:!bus",
                "t:!bus-seq",
                "10",
                "message",
                "x",
                "order-1",
                "1000",
                "99",
                "news",
                "data"
            ]
        );
        let sent = args(&publish(&cluster("t:"), 10, 99, &Loaded::default(), &keyed));
        assert_eq!(
            sent[2..],
            [
                "3",
                "t:{news}",
                "t:!pub:{news}",
                "t:!pub-ms:{news}",
                "10",
                "message",
                "x",
                "order-1",
                "1000",
                "data"
            ]
        );
        assert_eq!(self::plain("t:").topic_of(b"t:!pub:news"), None, "never a topic");
        assert_eq!(
            self::plain("t:").topic_of(b"t:!pub-ms:news"),
            None,
            "never a topic"
        );
        assert_eq!(
            parse_published(&Value::Array(vec![Value::Int(1), bulk("5-1")])).unwrap(),
            (EventId::new(5, 1), false)
        );
        assert_eq!(
            parse_published(&Value::Array(vec![Value::Int(0), bulk("5-1")])).unwrap(),
            (EventId::new(5, 1), true)
        );
        assert_eq!(
            parse_published(&bulk("5-2")).unwrap(),
            (EventId::new(5, 2), false)
        );
        assert!(parse_published(&Value::Array(vec![bulk("5-1")])).is_err());
        assert!(parse_published(&Value::Nil).is_err());
        // What Redis refused inside the script, answered as a value.
        let refused = parse_published(&Value::Array(vec![
            bulk("error"),
            bulk("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ]))
        .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Extension);
        assert!(refused.to_string().contains("WRONGTYPE"), "{refused}");
        assert!(crate::commands::is_server_error(&refused), "the publish's own");
        // A master turned replica refuses the write inside the script: the
        // connection's state, not the publish's.
        for message in [
            "READONLY You can't write against a read only replica.",
            "LOADING Redis is loading the dataset in memory",
        ] {
            let unavailable = parse_published(&Value::Array(vec![bulk("error"), bulk(message)])).unwrap_err();
            assert!(
                matches!(unavailable.kind(), ErrorKind::Server(_)),
                "{unavailable}"
            );
            assert!(!crate::commands::is_server_error(&unavailable), "{unavailable}");
        }
        let odd = parse_published(&Value::Array(vec![bulk("error"), bulk("\r\n-READONLY")])).unwrap_err();
        assert!(crate::commands::is_server_error(&odd), "{odd}");
    }
}
