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
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Operation, Store};
use bytes::Bytes;
use futures_util::StreamExt;
use tether_hub::{HubMessage, MAX_REMOTE_MEMBERS, PresenceMessage, is_valid_member};

use crate::runtime::Bridge;
use crate::shared::add;

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

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
    serials: u64,
}

pub(crate) struct Watched {
    loop_index: usize,
    serial: u64,
    nodes: HashMap<String, (u64, Vec<Arc<str>>)>,
}

impl Bridge {
    /// Finds the presence bucket, or makes it.
    pub(crate) async fn ensure_presence(&self) -> Result<(), String> {
        let config = &self.shared.config;
        let bucket = format!("{}_presence", config.stream_name());
        let wanted = kv::Config {
            bucket: bucket.clone(),
            history: 1,
            max_age: config.presence_ttl,
            num_replicas: config.replicas.max(1),
            storage: async_nats::jetstream::stream::StorageType::Memory,
            ..Default::default()
        };
        let timeout = config.request_timeout;
        let store = match tokio::time::timeout(timeout, self.js.create_key_value(wanted)).await {
            Ok(Ok(store)) => store,
            // Made by another node with other settings: use it as it is.
            _ => tokio::time::timeout(timeout, self.js.get_key_value(bucket))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?,
        };
        self.presence.borrow_mut().store = Some(store);
        Ok(())
    }

    /// A member's first connection on this node arrived, or its last left.
    pub(crate) fn member(self: &Rc<Self>, topic: Arc<str>, member: Arc<str>, present: bool) {
        let mut presence = self.presence.borrow_mut();
        let members = presence.mine.entry(topic.clone()).or_default();
        if present {
            members.insert(member);
        } else {
            members.remove(&member);
        }
        drop(presence);
        self.put_members(&topic);
    }

    /// Writes this node's members of `topic` (or deletes its key when
    /// there are none).
    pub(crate) fn put_members(self: &Rc<Self>, topic: &Arc<str>) {
        let mut presence = self.presence.borrow_mut();
        let Some(store) = presence.store.clone() else {
            return;
        };
        let key = format!("{}.{}", topic_token(topic), self.node);
        let value = match presence.mine.get(topic) {
            Some(members) if !members.is_empty() => {
                let ttl = u64::try_from(self.shared.config.presence_ttl.as_millis()).unwrap_or(u64::MAX);
                Some(encode(unix_ms().saturating_add(ttl), members))
            }
            _ => {
                presence.mine.remove(topic);
                None
            }
        };
        drop(presence);
        let bridge = self.clone();
        let timeout = self.shared.config.request_timeout;
        tokio::task::spawn_local(async move {
            let done = match value {
                Some(value) => tokio::time::timeout(timeout, store.put(&key, Bytes::from(value)))
                    .await
                    .map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                None => tokio::time::timeout(timeout, store.delete(&key))
                    .await
                    .map(|r| r.map_err(|e| e.to_string())),
            };
            if !matches!(done, Ok(Ok(()))) {
                add(&bridge.shared.stats.errors, 1);
                log::debug!("nats: presence of {key} not written (written again at the next refresh)");
            }
        });
    }

    /// Writes every topic's members again (before they expire).
    pub(crate) fn refresh_presence(self: &Rc<Self>) {
        let topics: Vec<Arc<str>> = self.presence.borrow().mine.keys().cloned().collect();
        for topic in topics {
            self.put_members(&topic);
        }
    }

    /// Starts (`watch`) or stops posting the other nodes' members of
    /// `topic` to `loop_index`.
    pub(crate) fn watch_presence(self: &Rc<Self>, topic: Arc<str>, loop_index: usize, watch: bool) {
        let mut presence = self.presence.borrow_mut();
        if !watch {
            presence.watched.remove(&topic);
            return;
        }
        if presence.watched.contains_key(&topic) {
            return;
        }
        presence.serials += 1;
        let serial = presence.serials;
        presence.watched.insert(
            topic.clone(),
            Watched {
                loop_index,
                serial,
                nodes: HashMap::new(),
            },
        );
        drop(presence);
        tokio::task::spawn_local(watch_topic(self.clone(), topic, serial));
    }

    /// Posts each watched topic's other members (those not expired) to
    /// its loop.
    pub(crate) fn post_presence(&self) {
        let now = unix_ms();
        let presence = self.presence.borrow();
        for (topic, watched) in &presence.watched {
            let mut members: Vec<Arc<str>> = Vec::new();
            for (expires, node_members) in watched.nodes.values() {
                if *expires > now {
                    members.extend(node_members.iter().cloned());
                }
            }
            members.truncate(MAX_REMOTE_MEMBERS);
            self.post(
                watched.loop_index,
                HubMessage::Presence(PresenceMessage::Remote {
                    topic: topic.clone(),
                    members,
                }),
            );
        }
    }

    /// Removes this node's entries (at shutdown).
    pub(crate) async fn clear_presence(&self) {
        let (store, keys) = {
            let presence = self.presence.borrow();
            let keys: Vec<String> = presence
                .mine
                .keys()
                .map(|topic| format!("{}.{}", topic_token(topic), self.node))
                .collect();
            (presence.store.clone(), keys)
        };
        let Some(store) = store else {
            return;
        };
        let timeout = self.shared.config.request_timeout;
        for key in keys {
            let _ = tokio::time::timeout(timeout, store.delete(&key)).await;
        }
    }
}

/// Follows the other nodes' entries of one watched topic until it is no
/// longer watched.
async fn watch_topic(bridge: Rc<Bridge>, topic: Arc<str>, serial: u64) {
    let pattern = format!("{}.*", topic_token(&topic));
    let still_watched = |bridge: &Bridge| {
        bridge
            .presence
            .borrow()
            .watched
            .get(&topic)
            .is_some_and(|w| w.serial == serial)
    };
    while still_watched(&bridge) {
        let store = bridge.presence.borrow().store.clone();
        let watch = match store {
            Some(store) => store
                .watch_with_history(&pattern)
                .await
                .map_err(|e| e.to_string()),
            None => Err("no bucket yet".to_owned()),
        };
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(e) => {
                log::debug!("nats: presence of {topic}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            // Checked at least every second, so that an unwatched topic's
            // task ends.
            let entry = match tokio::time::timeout(Duration::from_secs(1), watch.next()).await {
                Err(_) if still_watched(&bridge) => continue,
                Err(_) => return,
                Ok(Some(Ok(entry))) => entry,
                Ok(_) => break,
            };
            let Some((_, node)) = entry.key.split_once('.') else {
                continue;
            };
            if node == bridge.node {
                continue;
            }
            let mut presence = bridge.presence.borrow_mut();
            let Some(watched) = presence.watched.get_mut(&topic).filter(|w| w.serial == serial) else {
                return;
            };
            match entry.operation {
                Operation::Put => match decode(&entry.value) {
                    Some(value) => {
                        watched.nodes.insert(node.to_owned(), value);
                    }
                    None => {
                        watched.nodes.remove(node);
                    }
                },
                Operation::Delete | Operation::Purge => {
                    watched.nodes.remove(node);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
