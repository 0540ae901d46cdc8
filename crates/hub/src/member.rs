//! Who may be present on a topic, what changes, and the messages about
//! it between loops (see `crate::presence`).

use std::sync::Arc;

use crate::json::json_string;
use crate::reply::ReplyTo;

/// The longest member name, in bytes. A subject that is longer (or not
/// a [valid member](is_valid_member)) is not used: the connection's own
/// name stands instead.
pub const MAX_MEMBER_LEN: usize = 128;

/// The most members one answer lists ([`Members::members`]); the count
/// ([`Members::count`]) is always the whole.
pub const MAX_LISTED_MEMBERS: usize = 1000;

/// The most members of other nodes kept per topic
/// ([`PresenceMessage::Remote`] beyond it is cut).
pub const MAX_REMOTE_MEMBERS: usize = 10_000;

/// How long a topic that nobody here is in stays followed across nodes
/// after the last question about it, in milliseconds.
pub const PRESENCE_LINGER_MS: u64 = 30_000;

/// Whether `name` may be a member: 1 to [`MAX_MEMBER_LEN`] bytes, no
/// control characters.
///
/// ```
/// assert!(tether_hub::is_valid_member("alice@example.com"));
/// assert!(!tether_hub::is_valid_member(""));
/// assert!(!tether_hub::is_valid_member("a\nb"));
/// assert!(!tether_hub::is_valid_member(&"a".repeat(129)));
/// ```
pub fn is_valid_member(name: &str) -> bool {
    (1..=MAX_MEMBER_LEN).contains(&name.len()) && !name.chars().any(char::is_control)
}

/// A member of a topic: a subscriber's identity, or one of this node's
/// connections that has none. A connection's member costs no name: it is
/// named `conn-NODE-LOOP-NUMBER` only where it is shown (a list, a join
/// or leave event, another node).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Member {
    /// An identity (a token's subject, a [valid member](is_valid_member)).
    Named(Arc<str>),
    /// A connection of this node without an identity.
    Connection(ConnectionMember),
}

impl Member {
    /// The member's name: its identity, or `conn-NODE-LOOP-NUMBER` for a
    /// connection of node `node`.
    pub fn name(&self, node: &str) -> Arc<str> {
        match self {
            Member::Named(name) => name.clone(),
            Member::Connection(connection) => Arc::from(format!(
                "conn-{node}-{}-{}",
                connection.loop_index(),
                connection.number()
            )),
        }
    }
}

/// One of this node's connections as a member: the event loop it is on
/// and its number there, held as one number (16 and 48 bits), so that a
/// member costs a subscriber no more than a name's pointer would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionMember(u64);

/// The bits of [`ConnectionMember::number`] (a loop that numbered 2^48
/// connections would begin again).
const CONNECTION_NUMBER_BITS: u32 = 48;
const CONNECTION_NUMBER_MASK: u64 = (1 << CONNECTION_NUMBER_BITS) - 1;

impl ConnectionMember {
    /// Connection `number` of event loop `loop_index` (numbers are told
    /// apart below 2^48).
    pub fn new(loop_index: u16, number: u64) -> ConnectionMember {
        ConnectionMember(
            (u64::from(loop_index) << CONNECTION_NUMBER_BITS) | (number & CONNECTION_NUMBER_MASK),
        )
    }

    /// The connection's event loop.
    pub fn loop_index(self) -> u16 {
        u16::try_from(self.0 >> CONNECTION_NUMBER_BITS).unwrap_or(u16::MAX)
    }

    /// The connection's number on its loop.
    pub fn number(self) -> u64 {
        self.0 & CONNECTION_NUMBER_MASK
    }

    /// Loop and number as one number (0 only for connection 0 of loop 0),
    /// for whoever keeps many.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// The member [`ConnectionMember::to_bits`] gave `bits` for.
    pub fn from_bits(bits: u64) -> ConnectionMember {
        ConnectionMember(bits)
    }
}

impl From<Arc<str>> for Member {
    fn from(name: Arc<str>) -> Member {
        Member::Named(name)
    }
}

impl From<&str> for Member {
    fn from(name: &str) -> Member {
        Member::Named(Arc::from(name))
    }
}

/// A member arrived or left a topic (anywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The topic.
    pub topic: Arc<str>,
    /// The member.
    pub member: Arc<str>,
    /// Joined (true) or left (false).
    pub joined: bool,
}

impl Change {
    /// The event type: `join` or `leave`.
    pub fn event_type(&self) -> &'static str {
        if self.joined { "join" } else { "leave" }
    }

    /// The event's data: `{"member":"NAME"}`.
    pub fn data(&self) -> String {
        format!("{{\"member\":{}}}", json_string(&self.member))
    }

    /// The event as a multi-topic event stream sends it: type `join` or
    /// `leave`, the data `{"topic":"T","member":"NAME"}`, and no id (it is
    /// not one of the topic's events, and the stream's cursor does not
    /// move).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::Change;
    ///
    /// let change = Change { topic: Arc::from("A"), member: Arc::from("ann"), joined: false };
    /// assert_eq!(change.sse_multi(), b"event: leave\ndata: {\"topic\":\"A\",\"member\":\"ann\"}\n\n");
    /// ```
    pub fn sse_multi(&self) -> Vec<u8> {
        let data = format!(
            "{{\"topic\":{},\"member\":{}}}",
            json_string(&self.topic),
            json_string(&self.member)
        );
        let mut out = Vec::with_capacity(data.len() + 22);
        // The type is fixed and JSON escapes line breaks: nothing to refuse.
        let _ = tether_sse::Event::new()
            .event(self.event_type())
            .data(&data)
            .encode(&mut out);
        out
    }

    /// The WebSocket (JSON) form:
    /// `{"topic":"T","event":"join","member":"NAME"}`, without an id (it
    /// is not one of the topic's events).
    pub fn json(&self) -> String {
        format!(
            "{{\"topic\":{},\"event\":\"{}\",\"member\":{}}}",
            json_string(&self.topic),
            self.event_type(),
            json_string(&self.member)
        )
    }
}

/// What a [`crate::Presence::join`] or [`crate::Presence::leave`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The member's first connection on this node arrived, or its last
    /// left (what a broker sharing presence is told).
    pub here: bool,
    /// The member became present, or stopped being present, anywhere (a
    /// join or leave event).
    pub changed: bool,
}

/// A topic's members, from [`crate::Presence::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The members, sorted, at most [`MAX_LISTED_MEMBERS`].
    pub members: Vec<Arc<str>>,
    /// How many members there are in all.
    pub count: usize,
}

impl Members {
    /// `{"topic":"T","members":["a","b"],"count":2}`, with
    /// `"truncated":true` when not every member is listed.
    pub fn json(&self, topic: &str) -> String {
        let mut out = format!("{{\"topic\":{},\"members\":[", json_string(topic));
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(member));
        }
        out.push_str(&format!("],\"count\":{}", self.count));
        if self.count > self.members.len() {
            out.push_str(",\"truncated\":true");
        }
        out.push('}');
        out
    }
}

/// Presence between loops (inside [`crate::HubMessage::Presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceMessage {
    /// To the topic's sequencer: a connection of `member` subscribed.
    Join {
        /// The topic.
        topic: Arc<str>,
        /// The member.
        member: Member,
    },
    /// To the topic's sequencer: a connection of `member` left.
    Leave {
        /// The topic.
        topic: Arc<str>,
        /// The member.
        member: Member,
    },
    /// To the topic's sequencer: who is present? Answered with
    /// [`PresenceMessage::Members`] to `reply`.
    Query {
        /// The topic.
        topic: Arc<str>,
        /// Where the answer goes.
        reply: ReplyTo,
    },
    /// The answer to a [`PresenceMessage::Query`].
    Members {
        /// [`ReplyTo::token`].
        token: u64,
        /// The members.
        members: Members,
    },
    /// To every loop: a member joined or left.
    Changed(Change),
    /// To the topic's sequencer, from a broker sharing presence: the
    /// members other nodes have now (every one of them: it replaces the
    /// last such message).
    Remote {
        /// The topic.
        topic: Arc<str>,
        /// The other nodes' members (a member on two nodes may be named
        /// twice).
        members: Vec<Arc<str>>,
        /// The broker cut the list at [`MAX_REMOTE_MEMBERS`]: which of
        /// the other nodes' members it holds may change from one message
        /// to the next without anyone joining or leaving.
        truncated: bool,
    },
}
