//! Presence across nodes through the JetStream key-value bucket: the
//! bridge's side of [`crate::presence`] (which holds the state and the
//! values' format) — finding the bucket, putting this node's members,
//! watching the other nodes' entries of the topics asked about, and
//! posting them to each topic's sequencer loop.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures_util::StreamExt;
use tether_hub::{HubMessage, MAX_REMOTE_MEMBERS, PresenceMessage};

use crate::bridge::Bridge;
use crate::presence::{Watched, decode, encode, topic_token, unix_ms};
use crate::shared::add;

impl Bridge {
    /// Finds the presence bucket, or makes it.
    pub(crate) async fn ensure_presence(&self) -> Result<(), String> {
        let config = &self.shared.config;
        let wanted = kv::Config {
            bucket: format!("{}_presence", config.stream_name()),
            history: 1,
            max_age: config.presence_ttl,
            num_replicas: config.replicas.max(1),
            storage: async_nats::jetstream::stream::StorageType::Memory,
            ..Default::default()
        };
        let store = self.key_value(wanted).await?;
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
            let truncated = members.len() > MAX_REMOTE_MEMBERS;
            members.truncate(MAX_REMOTE_MEMBERS);
            self.post(
                watched.loop_index,
                HubMessage::Presence(PresenceMessage::Remote {
                    topic: topic.clone(),
                    members,
                    truncated,
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
