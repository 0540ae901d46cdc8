//! Presence across nodes, in a JetStream key-value bucket: each node puts
//! its members of each topic under the key `TOPIC_HEX.NODE` (the topic's
//! name in hex, which the bucket's key alphabet can hold, and the node's
//! random name), as `EXPIRES_MS` and then one member a line; it puts them
//! again every third of the time to live, and the bucket forgets values
//! older than the time to live, so that a node that dies has its members
//! leave everyone's view within about that long. A node watches the keys
//! `TOPIC_HEX.*` of each topic its loops ask about, and posts the other
//! nodes' members (those not yet expired) to the topic's sequencer loop
//! every second.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::Store;
use tether_hub::is_valid_member;

pub(crate) use tether_bus::unix_ms;

/// A random name for this node (its keys' second part).
pub(crate) fn random_node() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// A topic's name in hex: a key token of the bucket's alphabet.
pub(crate) fn topic_token(topic: &str) -> String {
    let mut hex = String::with_capacity(topic.len() * 2);
    for b in topic.bytes() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The value of a node's entry: when it expires, then its members.
pub(crate) fn encode(expires_ms: u64, members: &HashSet<Arc<str>>) -> String {
    let mut value = expires_ms.to_string();
    for member in members {
        value.push('\n');
        value.push_str(member);
    }
    value
}

/// The expiry and members of an entry's value (invalid names skipped).
pub(crate) fn decode(value: &[u8]) -> Option<(u64, Vec<Arc<str>>)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut lines = text.split('\n');
    let expires = lines.next()?.parse().ok()?;
    let members = lines.filter(|m| is_valid_member(m)).map(Arc::from).collect();
    Some((expires, members))
}

/// What the bridge holds of presence.
#[derive(Default)]
pub(crate) struct Presence {
    /// The bucket, once found or made.
    pub(crate) store: Option<Store>,
    /// This node's members, by topic.
    pub(crate) mine: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Topics watched, with their sequencer loop and the other nodes'
    /// entries (node → expiry, members) as last heard.
    pub(crate) watched: HashMap<Arc<str>, Watched>,
    pub(crate) serials: u64,
}

pub(crate) struct Watched {
    pub(crate) loop_index: usize,
    pub(crate) serial: u64,
    pub(crate) nodes: HashMap<String, (u64, Vec<Arc<str>>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let members: HashSet<Arc<str>> = ["alice", "bob smith"].into_iter().map(Arc::from).collect();
        let (expires, mut decoded) = decode(encode(42, &members).as_bytes()).unwrap();
        decoded.sort();
        assert_eq!(expires, 42);
        assert_eq!(decoded, [Arc::from("alice"), Arc::from("bob smith")]);
        assert_eq!(decode(b"x\nalice"), None);
        assert_eq!(decode(b"7").map(|(e, m)| (e, m.len())), Some((7, 0)));
    }

    #[test]
    fn topic_tokens_are_key_tokens() {
        assert_eq!(topic_token("a.b:c"), "612e623a63");
        assert_ne!(random_node(), random_node());
    }
}
