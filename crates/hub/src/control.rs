//! Actions on a user's connections, and questions put to every loop: the
//! messages the server API posts to all of a node's loops (each loop owns
//! its connections, so each acts on its own) and the answers that come
//! back to the loop that asked.

use std::sync::Arc;

use crate::history::{HistoryAnswer, HistoryQuery};
use crate::hub::TopicInfo;
use crate::reply::ReplyTo;

/// What to do to every connection whose credential's subject is `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserAction {
    /// Close them: a WebSocket with this close code and reason, an event
    /// stream ended, a long poll answered.
    Disconnect {
        /// The subject.
        user: Arc<str>,
        /// The WebSocket close code (1000, 1008 or 4000 to 4999).
        code: u16,
        /// The WebSocket close reason (at most 123 bytes).
        reason: String,
    },
    /// End their subscriptions to `topic`, as [`UserAction::Disconnect`]
    /// does.
    Unsubscribe {
        /// The subject.
        user: Arc<str>,
        /// The topic.
        topic: Arc<str>,
        /// The WebSocket close code.
        code: u16,
        /// The WebSocket close reason.
        reason: String,
    },
    /// Subscribe their multiplexed sockets to `topic` (each told
    /// `{"control":"subscribed","topic":T,"by":"server"}`); their
    /// one-topic connections are left as they are.
    Subscribe {
        /// The subject.
        user: Arc<str>,
        /// The topic.
        topic: Arc<str>,
    },
    /// Their credentials now expire at `expires_at` (Unix seconds): they
    /// are warned and closed then, as when their token expires.
    Refresh {
        /// The subject.
        user: Arc<str>,
        /// Unix seconds.
        expires_at: u64,
    },
}

impl UserAction {
    /// The subject it acts on.
    pub fn user(&self) -> &Arc<str> {
        match self {
            UserAction::Disconnect { user, .. }
            | UserAction::Unsubscribe { user, .. }
            | UserAction::Subscribe { user, .. }
            | UserAction::Refresh { user, .. } => user,
        }
    }
}

/// A topic as one loop knows it, for [`ControlMessage::Topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReport {
    /// The topic.
    pub topic: Arc<str>,
    /// What the loop has of it.
    pub info: TopicInfo,
}

/// Between a node's loops (inside [`crate::HubMessage::Control`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlMessage {
    /// To every loop: act on the user's connections; answered with
    /// [`ControlMessage::Done`] to `reply`, if there is one.
    Act {
        /// The action.
        action: UserAction,
        /// Where the count goes.
        reply: Option<ReplyTo>,
    },
    /// The answer to [`ControlMessage::Act`]: how many connections the
    /// loop acted on.
    Done {
        /// [`ReplyTo::token`].
        token: u64,
        /// Connections acted on.
        count: usize,
    },
    /// To every loop: which topics it has, with their numbers; answered
    /// with [`ControlMessage::TopicsOf`].
    Topics {
        /// Where the answer goes.
        reply: ReplyTo,
        /// Only this topic (`None`: every one).
        only: Option<Arc<str>>,
    },
    /// To any one loop, from a broker: an action taken on another node,
    /// to post to every loop of this one as [`ControlMessage::Act`]
    /// without a reply (see [`crate::Broker::user_action`]).
    Relay(UserAction),
    /// To a topic's sequencer loop: a page of the topic's backlog, as
    /// its broker holds it ([`crate::Broker::backlog`]) or reads it from
    /// its bus ([`crate::Broker::history`]); answered with
    /// [`ControlMessage::HistoryOf`].
    History {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The page asked for.
        query: HistoryQuery,
    },
    /// The answer to [`ControlMessage::History`].
    HistoryOf {
        /// [`ReplyTo::token`].
        token: u64,
        /// The page, or why there is none.
        answer: HistoryAnswer,
    },
    /// The answer to [`ControlMessage::Topics`].
    TopicsOf {
        /// [`ReplyTo::token`].
        token: u64,
        /// The loop's topics.
        topics: Vec<TopicReport>,
    },
    /// To the loop that asked the application's backend (its own thread
    /// posting back): the decision, for the question numbered `token`.
    Decided {
        /// The loop's number for the question.
        token: u64,
        /// What the backend decided.
        decision: crate::decision::Decision,
    },
    /// To every loop: its connections whose credential's subject is
    /// `user`; answered with [`ControlMessage::ConnectionsOf`].
    Connections {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The subject.
        user: Arc<str>,
    },
    /// The answer to [`ControlMessage::Connections`]: at most
    /// [`MAX_LISTED_CONNECTIONS`] of the loop's.
    ConnectionsOf {
        /// [`ReplyTo::token`].
        token: u64,
        /// The loop's connections of the subject.
        connections: Vec<ConnectionReport>,
    },
}

/// The most connections of one subject a loop lists in
/// [`ControlMessage::ConnectionsOf`].
pub const MAX_LISTED_CONNECTIONS: usize = 1000;

/// One connection of a subject, as its loop knows it, for
/// [`ControlMessage::Connections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The loop that holds it.
    pub loop_index: usize,
    /// How it receives events.
    pub transport: crate::hub::Transport,
    /// The topic it subscribes to.
    pub topic: Arc<str>,
    /// The Unix second it subscribed, when known.
    pub since: Option<u64>,
    /// Whether it is a multiplexed connection (a `/ws` socket or a
    /// multi-topic event stream), whose subscriptions end one by one
    /// while it stays open.
    pub multiplexed: bool,
}

/// The topics of every loop as one list, by name: subscribers summed,
/// the backlog the largest any loop replicates (every loop that has a
/// topic's backlog has the same one, or, catching up, less of it).
pub fn merge_topics(reports: impl IntoIterator<Item = TopicReport>) -> Vec<TopicReport> {
    let mut merged: std::collections::BTreeMap<Arc<str>, TopicInfo> = std::collections::BTreeMap::new();
    for report in reports {
        match merged.get_mut(&report.topic) {
            None => {
                merged.insert(report.topic, report.info);
            }
            Some(info) => {
                let other = report.info;
                info.websocket += other.websocket;
                info.event_stream += other.event_stream;
                info.waiting += other.waiting;
                info.held += other.held;
                if other.head > info.head || (other.head == info.head && other.events > info.events) {
                    info.events = other.events;
                    info.bytes = other.bytes;
                    info.head = other.head;
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(topic, info)| TopicReport { topic, info })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::EventId;

    fn report(topic: &str, head: u64, events: usize, websocket: usize) -> TopicReport {
        TopicReport {
            topic: Arc::from(topic),
            info: TopicInfo {
                events,
                bytes: events * 10,
                head: EventId::new(head, 0),
                websocket,
                event_stream: 1,
                waiting: 0,
                held: 0,
            },
        }
    }

    #[test]
    fn topics_merge_by_name() {
        let merged = merge_topics([
            report("b", 2, 2, 1),
            report("a", 1, 1, 0),
            report("b", 3, 3, 2),
            report("b", 1, 1, 0),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(&*merged[0].topic, "a");
        let b = &merged[1].info;
        assert_eq!((b.websocket, b.event_stream), (3, 3));
        assert_eq!((b.events, b.bytes, b.head), (3, 30, EventId::new(3, 0)));
    }
}
