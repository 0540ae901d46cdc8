//! What reaches a bridge's threads from the event loops and the bridge
//! (besides publishes), and how the threads reach the loops back.

use std::fmt;
use std::sync::Arc;

use tether_hub::{
    ControlMessage, Event, EventId, HistoryAnswer, HistoryQuery, HubMessage, NodeLimits, ReplyTo, UserAction,
    history_json_of,
};

/// How a bridge's threads reach the event loops: post a message to one
/// loop, waking it (the server's `Handle::post`). Messages posted by one
/// thread to one loop arrive in order.
pub type Post = Arc<dyn Fn(usize, HubMessage) + Send + Sync>;

/// A node's [`NodeLimits`], as a bridge's thread holds it (a handle that
/// prints without its contents).
#[derive(Clone)]
pub struct SharedLimits(pub Arc<dyn NodeLimits>);

impl fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeLimits")
    }
}

/// To a bridge's threads, besides publishes: what the loops' brokers
/// ([`crate::BusBroker`]), the bridge and its [`crate::Revoker`] ask of
/// the bus. A bus routes each to the thread that acts on it
/// ([`crate::Bus::control`]).
#[derive(Debug)]
pub enum Control {
    /// A loop's first subscriber of the topic arrived (`follow`): send
    /// it `Ready` (with the topic's backlog), then the topic's events; or
    /// its last left.
    Follow {
        /// The topic.
        topic: Arc<str>,
        /// The loop.
        loop_index: usize,
        /// Follow (true) or unfollow (false).
        follow: bool,
    },
    /// A member's first connection on this node arrived (`present`), or
    /// its last left.
    Member {
        /// The topic.
        topic: Arc<str>,
        /// The member.
        member: Arc<str>,
        /// Arrived (true) or left (false).
        present: bool,
    },
    /// Start (`watch`) or stop posting the other nodes' members of the
    /// topic to the loop (its sequencer).
    Watch {
        /// The topic.
        topic: Arc<str>,
        /// The loop the members go to.
        loop_index: usize,
        /// Start (true) or stop (false).
        watch: bool,
    },
    /// Read a page of a topic's history from the bus (the backlog a
    /// follow would get) and post it to `reply` as
    /// `ControlMessage::HistoryOf`: the page, or
    /// `HistoryAnswer::Unavailable` when the bus cannot be read within
    /// its timeout.
    History {
        /// The page asked for.
        query: HistoryQuery,
        /// Where the answer goes.
        reply: ReplyTo,
    },
    /// An action on a user's connections taken on this node, for the
    /// other nodes.
    UserAction(UserAction),
    /// The hub's connection counts and revocations, to share from now on.
    Limits(SharedLimits),
    /// Revocations taken on this node, `(entry, until)`, for every node.
    Revoke(Vec<(String, u64)>),
    /// Stop (a bridge's thread removes what it wrote for this node first,
    /// where it can).
    Stop,
}

/// Posts the answer to [`Control::History`]: the page of the backlog the
/// bus read (`Ok((history, dropped))`, as `HubMessage::Ready` carries
/// it), held as a loop holds a backlog (`max_events`, `max_bytes`), or
/// [`HistoryAnswer::Unavailable`].
pub fn answer_history(
    post: &Post,
    query: &HistoryQuery,
    reply: ReplyTo,
    read: Result<(Vec<Arc<Event>>, Option<EventId>), ()>,
    max_events: usize,
    max_bytes: usize,
) {
    let answer = match read {
        Ok((history, dropped)) => {
            HistoryAnswer::Page(history_json_of(query, history, dropped, max_events, max_bytes))
        }
        Err(()) => HistoryAnswer::Unavailable,
    };
    let message = ControlMessage::HistoryOf {
        token: reply.token,
        answer,
    };
    post(reply.loop_index, HubMessage::Control(message));
}
