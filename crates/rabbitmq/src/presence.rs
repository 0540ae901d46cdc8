//! Presence across nodes, over the control exchange ([`crate::link`]):
//! each node sends its members of each topic (one a line), with how long
//! they count, when they change and every third of that time; a node
//! keeps the others' as heard, each until its time passes on its own
//! clock, and posts those of the topics its loops watch to the topic's
//! sequencer loop every second.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tether_hub::{HubMessage, MAX_REMOTE_MEMBERS, PresenceMessage, is_valid_member};
use tokio::time::Instant;

/// The most members a node's message about one topic is read with.
const MAX_MEMBERS_READ: usize = MAX_REMOTE_MEMBERS;

/// A node's members of a topic, until when they count.
type Heard = (Instant, Vec<Arc<str>>);

/// What the bridge holds of presence.
#[derive(Default)]
pub(crate) struct Presence {
    /// This node's members, by topic.
    pub(crate) mine: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// The other nodes' members by topic and node, until when they count.
    pub(crate) others: HashMap<Arc<str>, HashMap<String, Heard>>,
    /// Topics watched, with their sequencer loop.
    pub(crate) watched: HashMap<Arc<str>, usize>,
}

impl Presence {
    /// A member's first connection on this node arrived, or its last left.
    pub(crate) fn member(&mut self, topic: &Arc<str>, member: Arc<str>, present: bool) {
        let members = self.mine.entry(topic.clone()).or_default();
        if present {
            members.insert(member);
        } else {
            members.remove(&member);
        }
    }

    /// This node's members of `topic`, one a line (forgotten when none).
    pub(crate) fn encode_mine(&mut self, topic: &str) -> Vec<u8> {
        let Some(members) = self.mine.get(topic) else {
            return Vec::new();
        };
        if members.is_empty() {
            self.mine.remove(topic);
            return Vec::new();
        }
        let mut out = Vec::new();
        for member in members {
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(member.as_bytes());
        }
        out
    }

    /// Another node's members of `topic`, counting until `until`
    /// (invalid names skipped, at most [`MAX_MEMBERS_READ`]).
    pub(crate) fn heard(&mut self, topic: Arc<str>, node: &str, until: Instant, body: &[u8]) {
        let members: Vec<Arc<str>> = std::str::from_utf8(body)
            .unwrap_or("")
            .split('\n')
            .filter(|m| is_valid_member(m))
            .take(MAX_MEMBERS_READ)
            .map(Arc::from)
            .collect();
        let nodes = self.others.entry(topic.clone()).or_default();
        if members.is_empty() {
            nodes.remove(node);
            if nodes.is_empty() {
                self.others.remove(&topic);
            }
        } else {
            nodes.insert(node.to_owned(), (until, members));
        }
    }

    /// The other nodes' members of each watched topic, to its sequencer
    /// (those past their time dropped first).
    pub(crate) fn remote(&mut self, now: Instant) -> Vec<(usize, HubMessage)> {
        self.others.retain(|_, nodes| {
            nodes.retain(|_, (until, _)| *until > now);
            !nodes.is_empty()
        });
        let mut out = Vec::new();
        for (topic, &loop_index) in &self.watched {
            let mut members: Vec<Arc<str>> = self
                .others
                .get(topic)
                .into_iter()
                .flat_map(|nodes| nodes.values())
                .flat_map(|(_, members)| members.iter().cloned())
                .collect();
            let truncated = members.len() > MAX_REMOTE_MEMBERS;
            members.truncate(MAX_REMOTE_MEMBERS);
            let message = PresenceMessage::Remote {
                topic: topic.clone(),
                members,
                truncated,
            };
            out.push((loop_index, HubMessage::Presence(message)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn members_are_heard_until_their_time() {
        let mut presence = Presence::default();
        let topic: Arc<str> = Arc::from("room");
        presence.member(&topic, Arc::from("alice"), true);
        presence.member(&topic, Arc::from("bob smith"), true);
        let body = presence.encode_mine("room");
        let now = Instant::now();
        presence.heard(topic.clone(), "n2", now + Duration::from_secs(5), &body);
        presence.heard(topic.clone(), "n3", now + Duration::from_secs(5), b"\nzed\n");
        presence.heard(topic.clone(), "n4", now + Duration::from_secs(5), b"bad\xff");
        presence.watched.insert(topic.clone(), 1);
        let [
            (
                1,
                HubMessage::Presence(PresenceMessage::Remote {
                    members, truncated, ..
                }),
            ),
        ] = &presence.remote(now)[..]
        else {
            panic!()
        };
        let mut members: Vec<&str> = members.iter().map(|m| &**m).collect();
        members.sort_unstable();
        assert_eq!((members, *truncated), (vec!["alice", "bob smith", "zed"], false));
        // Past their time, and a node that has none: gone.
        presence.heard(topic.clone(), "n3", now + Duration::from_secs(5), b"");
        let later = presence.remote(now + Duration::from_secs(6));
        let [(1, HubMessage::Presence(PresenceMessage::Remote { members, .. }))] = &later[..] else {
            panic!()
        };
        assert!(members.is_empty());
        presence.member(&topic, Arc::from("alice"), false);
        presence.member(&topic, Arc::from("bob smith"), false);
        assert!(presence.encode_mine("room").is_empty());
    }
}
