//! Who is present on each topic: the members of its subscribers, counted
//! by connection, held by the topic's sequencer loop.
//!
//! A *member* is a subscriber's identity (a token's subject) or, without
//! one, a name the application makes for the connection. A member with
//! two connections to a topic (two tabs) joins once, when the first
//! arrives, and leaves once, when the last is gone.
//!
//! Across loops: each loop posts [`PresenceMessage::Join`] and
//! [`PresenceMessage::Leave`] for its subscribers to the topic's sequencer
//! ([`crate::sequencer_of`]), whose [`Presence`] owns the topic's member
//! set, tells every loop of each change ([`PresenceMessage::Changed`]) and
//! answers [`PresenceMessage::Query`] with the set. Across nodes, a broker
//! that shares presence ([`crate::Broker::shares_presence`]) is told of
//! this node's members and brings the other nodes' members back as
//! [`PresenceMessage::Remote`]; a member is present while any node has it.
//!
//! ```
//! use std::sync::Arc;
//! use tether_hub::{ConnectionMember, Member, Presence};
//!
//! let mut presence = Presence::new("n1");
//! let topic: Arc<str> = Arc::from("room");
//! let alice = Member::from("alice");
//! assert!(presence.join(&topic, &alice).changed, "her first tab: she joins");
//! assert!(!presence.join(&topic, &alice).changed, "a second tab: nothing new");
//! assert!(!presence.leave(&topic, &alice).changed);
//! // A connection without an identity is a member of its own.
//! let anonymous = Member::Connection(ConnectionMember::new(0, 7));
//! assert!(presence.join(&topic, &anonymous).changed);
//! let listed = presence.list("room");
//! assert_eq!(listed.members, [Arc::from("alice"), Arc::from("conn-n1-0-7")]);
//! assert!(presence.leave(&topic, &alice).changed, "her last tab: she leaves");
//! assert!(presence.leave(&topic, &anonymous).changed);
//! assert_eq!(presence.list("room").count, 0);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::broker::{Broker, Context, HubMessage, sequencer_of};
use crate::member::{
    Change, ConnectionMember, MAX_LISTED_MEMBERS, MAX_REMOTE_MEMBERS, Member, Members, Outcome,
    PRESENCE_LINGER_MS, PresenceMessage, is_valid_member,
};
use crate::reply::ReplyTo;

/// A topic's members on its sequencer.
#[derive(Debug, Default)]
struct TopicMembers {
    /// This node's named members, with their connections (every loop's).
    local: HashMap<Arc<str>, u32>,
    /// This node's connections that are members of their own
    /// ([`Member::Connection`]), one number each: most subscribers of a
    /// public topic, kept without a name.
    connections: HashSet<ConnectionMember>,
    /// The other nodes' members, as last heard.
    remote: HashSet<Arc<str>>,
    /// `remote` is a part of them only (cut by the broker or here).
    remote_truncated: bool,
    /// Heard from the other nodes since the topic was followed.
    remote_known: bool,
    /// Followed across nodes ([`Broker::watch_presence`]).
    watched: bool,
    /// The last question about the topic, in Unix ms.
    last_query_ms: u64,
    /// Questions waiting for the other nodes' members.
    waiting: Vec<ReplyTo>,
}

impl TopicMembers {
    fn is_present(&self, member: &str) -> bool {
        self.local.contains_key(member) || self.remote.contains(member)
    }

    fn has_local(&self) -> bool {
        !self.local.is_empty() || !self.connections.is_empty()
    }

    fn is_idle(&self) -> bool {
        !self.has_local() && self.remote.is_empty() && !self.watched && self.waiting.is_empty()
    }

    /// This node's members' names.
    fn local_names<'a>(&'a self, node: &'a str) -> impl Iterator<Item = Arc<str>> + 'a {
        let connections = self
            .connections
            .iter()
            .map(move |&connection| Member::Connection(connection).name(node));
        self.local.keys().cloned().chain(connections)
    }
}

/// The member sets of the topics a loop sequences. Sans-IO: the calls say
/// what changed; [`Presence::receive`] does the posting.
#[derive(Debug)]
pub struct Presence {
    topics: HashMap<Arc<str>, TopicMembers>,
    /// This node's name, in its connections' member names.
    node: Arc<str>,
}

impl Presence {
    /// Nobody anywhere; `node` names this node in its connections' member
    /// names ([`Member::name`]).
    pub fn new(node: impl Into<Arc<str>>) -> Presence {
        Presence {
            topics: HashMap::new(),
            node: node.into(),
        }
    }

    /// One more connection of `member` on `topic`, on this node.
    pub fn join(&mut self, topic: &Arc<str>, member: &Member) -> Outcome {
        let entry = self.topics.entry(topic.clone()).or_default();
        match member {
            Member::Named(name) => {
                let was_present = entry.is_present(name);
                let count = entry.local.entry(name.clone()).or_insert(0);
                *count = count.saturating_add(1);
                Outcome {
                    here: *count == 1,
                    changed: !was_present,
                }
            }
            &Member::Connection(connection) => {
                let new = entry.connections.insert(connection);
                Outcome {
                    here: new,
                    changed: new,
                }
            }
        }
    }

    /// One connection fewer of `member` on `topic`, on this node (nothing
    /// if it had none).
    pub fn leave(&mut self, topic: &str, member: &Member) -> Outcome {
        let Some(entry) = self.topics.get_mut(topic) else {
            return Outcome::default();
        };
        let outcome = match member {
            Member::Named(name) => {
                let Some(count) = entry.local.get_mut(name) else {
                    return Outcome::default();
                };
                *count = count.saturating_sub(1);
                let here = *count == 0;
                if here {
                    entry.local.remove(name);
                }
                let changed = here && !entry.remote.contains(name);
                Outcome { here, changed }
            }
            &Member::Connection(connection) => {
                let gone = entry.connections.remove(&connection);
                Outcome {
                    here: gone,
                    changed: gone,
                }
            }
        };
        if entry.is_idle() {
            self.topics.remove(topic);
        }
        outcome
    }

    /// The other nodes' members of `topic` now (at most
    /// [`MAX_REMOTE_MEMBERS`]; invalid names are skipped), `truncated` if
    /// the broker cut the list; the changes it makes, joins first.
    ///
    /// A cut list is a window on the other nodes' members that may move
    /// with no one joining or leaving, so while the list is cut (or when
    /// it stops being cut) no change is told for the other nodes'
    /// members: their joins and leaves would be the window's, not
    /// theirs. Lists and counts go on from the window.
    pub fn set_remote(&mut self, topic: &Arc<str>, members: Vec<Arc<str>>, truncated: bool) -> Vec<Change> {
        let entry = self.topics.entry(topic.clone()).or_default();
        entry.remote_known = true;
        let mut remote = HashSet::with_capacity(members.len().min(MAX_REMOTE_MEMBERS));
        let mut cut = truncated;
        for member in members {
            if remote.len() >= MAX_REMOTE_MEMBERS {
                cut = true;
                break;
            }
            if is_valid_member(&member) {
                remote.insert(member);
            }
        }
        let old = std::mem::replace(&mut entry.remote, remote);
        let was_cut = std::mem::replace(&mut entry.remote_truncated, cut);
        let mut changes = Vec::new();
        if cut || was_cut {
            if entry.is_idle() {
                self.topics.remove(topic);
            }
            return changes;
        }
        for member in entry.remote.difference(&old) {
            if !entry.local.contains_key(member) {
                changes.push(Change {
                    topic: topic.clone(),
                    member: member.clone(),
                    joined: true,
                });
            }
        }
        for member in old.difference(&entry.remote) {
            if !entry.local.contains_key(member) {
                changes.push(Change {
                    topic: topic.clone(),
                    member: member.clone(),
                    joined: false,
                });
            }
        }
        if entry.is_idle() {
            self.topics.remove(topic);
        }
        changes
    }

    /// The members of `topic` (here and, as last heard, elsewhere).
    pub fn list(&self, topic: &str) -> Members {
        let Some(entry) = self.topics.get(topic) else {
            return Members::default();
        };
        let mut all: Vec<Arc<str>> = entry.local_names(&self.node).collect();
        all.extend(
            entry
                .remote
                .iter()
                .filter(|m| !entry.local.contains_key(*m))
                .cloned(),
        );
        all.sort_unstable();
        // A name given twice (a subject that reads as a connection's name)
        // is one member.
        all.dedup();
        Members {
            count: all.len(),
            members: all.into_iter().take(MAX_LISTED_MEMBERS).collect(),
        }
    }

    /// This node's members of `topic`, by name.
    pub fn local_members<'a>(&'a self, topic: &str) -> impl Iterator<Item = Arc<str>> + 'a {
        let node = &*self.node;
        self.topics
            .get(topic)
            .into_iter()
            .flat_map(move |t| t.local_names(node))
    }

    /// Members present over all the topics held here (a member of two
    /// topics counts twice).
    pub fn count(&self) -> usize {
        self.topics
            .values()
            .map(|t| {
                t.local.len()
                    + t.connections.len()
                    + t.remote.iter().filter(|m| !t.local.contains_key(*m)).count()
            })
            .sum()
    }

    /// On any loop: tells `topic`'s sequencer that a connection of
    /// `member` subscribed (`joined`) or left.
    pub fn post(cx: &mut dyn Context, topic: &Arc<str>, member: &Member, joined: bool) {
        let to = sequencer_of(topic, cx.loops());
        let (topic, member) = (topic.clone(), member.clone());
        let message = if joined {
            PresenceMessage::Join { topic, member }
        } else {
            PresenceMessage::Leave { topic, member }
        };
        cx.post(to, HubMessage::Presence(message));
    }

    /// On any loop: asks `topic`'s sequencer who is present; the answer
    /// comes to `reply` as [`PresenceMessage::Members`].
    pub fn query(cx: &mut dyn Context, topic: &Arc<str>, reply: ReplyTo) {
        let to = sequencer_of(topic, cx.loops());
        let message = PresenceMessage::Query {
            topic: topic.clone(),
            reply,
        };
        cx.post(to, HubMessage::Presence(message));
    }

    /// On the sequencer: takes a [`PresenceMessage::Join`], `Leave`,
    /// `Query` or `Remote`, posts the changes to every loop and the
    /// answers to those who asked, and tells the broker what it needs to
    /// know. `Members` and `Changed` are for the application, not for
    /// this: they are handed back.
    pub fn receive(
        &mut self,
        message: PresenceMessage,
        broker: &mut dyn Broker,
        cx: &mut dyn Context,
    ) -> Option<PresenceMessage> {
        let shared = broker.shares_presence();
        match message {
            PresenceMessage::Join { topic, member } => self.told(topic, &member, true, broker, cx),
            PresenceMessage::Leave { topic, member } => self.told(topic, &member, false, broker, cx),
            PresenceMessage::Query { topic, reply } => {
                if shared {
                    let now = cx.unix_ms();
                    let entry = self.topics.entry(topic.clone()).or_default();
                    entry.last_query_ms = now;
                    if !entry.remote_known {
                        entry.waiting.push(reply);
                        self.watch(&topic, broker, cx);
                        return None;
                    }
                }
                let members = self.list(&topic);
                answer(cx, reply, members);
            }
            PresenceMessage::Remote {
                topic,
                members,
                truncated,
            } => {
                // Late news of a topic no longer followed is dropped.
                if !self.topics.get(&topic).is_some_and(|t| t.watched) {
                    return None;
                }
                for change in self.set_remote(&topic, members, truncated) {
                    post_changed(cx, change);
                }
                let waiting = match self.topics.get_mut(&topic) {
                    Some(entry) => std::mem::take(&mut entry.waiting),
                    None => Vec::new(),
                };
                if !waiting.is_empty() {
                    let members = self.list(&topic);
                    for reply in waiting {
                        answer(cx, reply, members.clone());
                    }
                }
            }
            other => return Some(other),
        }
        None
    }

    /// Called now and then on the sequencer: topics nobody here is in and
    /// nobody asked about for [`PRESENCE_LINGER_MS`] stop being followed
    /// across nodes, and what the other nodes had of them is forgotten
    /// (without leave events: nobody here listens).
    pub fn tick(&mut self, broker: &mut dyn Broker, cx: &mut dyn Context) {
        let now = cx.unix_ms();
        let stale: Vec<Arc<str>> = self
            .topics
            .iter()
            .filter(|(_, t)| {
                t.watched
                    && !t.has_local()
                    && t.waiting.is_empty()
                    && now.saturating_sub(t.last_query_ms) >= PRESENCE_LINGER_MS
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in stale {
            broker.watch_presence(&topic, false, cx);
            self.topics.remove(&topic);
        }
    }

    /// A connection of `member` joined `topic` or left it: kept, the
    /// broker told if it shares presence and this was the member's first or
    /// last connection here, every loop told if the member arrived or left
    /// (the member's name made once, if either needs it).
    fn told(
        &mut self,
        topic: Arc<str>,
        member: &Member,
        joined: bool,
        broker: &mut dyn Broker,
        cx: &mut dyn Context,
    ) {
        let outcome = if joined {
            self.join(&topic, member)
        } else {
            self.leave(&topic, member)
        };
        let tell_broker = outcome.here && broker.shares_presence();
        if !tell_broker && !outcome.changed {
            return;
        }
        let name = member.name(&self.node);
        if tell_broker {
            broker.presence(&topic, &name, joined, cx);
            if joined {
                self.watch(&topic, broker, cx);
            }
        }
        if outcome.changed {
            changed(cx, topic, name, joined);
        }
    }

    fn watch(&mut self, topic: &Arc<str>, broker: &mut dyn Broker, cx: &mut dyn Context) {
        let entry = self.topics.entry(topic.clone()).or_default();
        if !entry.watched {
            entry.watched = true;
            broker.watch_presence(topic, true, cx);
        }
    }
}

fn changed(cx: &mut dyn Context, topic: Arc<str>, member: Arc<str>, joined: bool) {
    post_changed(
        cx,
        Change {
            topic,
            member,
            joined,
        },
    );
}

/// Posts a change to every loop.
fn post_changed(cx: &mut dyn Context, change: Change) {
    for to in 0..cx.loops() {
        cx.post(to, HubMessage::Presence(PresenceMessage::Changed(change.clone())));
    }
}

fn answer(cx: &mut dyn Context, reply: ReplyTo, members: Members) {
    cx.post(
        reply.loop_index,
        HubMessage::Presence(PresenceMessage::Members {
            token: reply.token,
            members,
        }),
    );
}

#[cfg(test)]
mod tests;
