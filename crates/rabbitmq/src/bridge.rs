//! What the bridge's tasks share: the [`Bridge`] (one thread, so `Rc`
//! and cells), the link to RabbitMQ while it is up, the commands a
//! topic's task takes, and the names every task uses. The tasks are in
//! [`crate::runtime`] (routing), [`crate::link`] (the connection and the
//! nodes' control messages) and [`crate::topic`] (a topic's stream).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection};
use tether_hub::{HistoryQuery, HubMessage, Publish, ReplyTo};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use crate::RabbitBus;
use crate::limits::Limits;
use crate::presence::Presence;
use crate::shared::Post;

/// The header that carries an event's type, when it is not `message`.
pub(crate) const EVENT_HEADER: &str = "tether-event";
/// The header that carries an event's publish key.
pub(crate) const KEY_HEADER: &str = "tether-key";
/// The header that marks a binary event ([`BINARY`]): its body is bytes,
/// not UTF-8 text. A node of a release before binary events skips such a
/// message (logged) when it is not UTF-8, and delivers it as text when it
/// happens to be.
pub(crate) const ENCODING_HEADER: &str = "tether-encoding";
/// [`ENCODING_HEADER`]'s value for a binary event.
pub(crate) const BINARY: &str = "binary";
/// The header of a node's marker: a message that is no event, written
/// to learn where a stream ends (AMQP 0-9-1 does not say).
pub(crate) const MARKER_HEADER: &str = "tether-marker";
/// The header of a delivery's stream offset (set by the broker).
pub(crate) const OFFSET_HEADER: &str = "x-stream-offset";

/// The reconnection backoff every bus on a tokio runtime uses.
pub(crate) use tether_bus::runtime::reconnect_backoff as backoff;

/// Topics whose stream is opened (declared, its end found, its backlog
/// read) at once at most: a node that follows thousands at once would
/// otherwise have them all in flight against the request timeout.
pub(crate) const OPENS_AT_ONCE: usize = 32;

/// The connection while it is up, and its channel for publishes (in
/// confirm mode).
#[derive(Clone)]
pub(crate) struct Link {
    /// Counts the connections made: a task that saw its consumer end
    /// waits for a later one.
    pub(crate) generation: u64,
    pub(crate) connection: Rc<Connection>,
    pub(crate) publisher: Channel,
}

/// A topic's task, as the routing knows it.
pub(crate) struct TopicEntry {
    pub(crate) tx: mpsc::UnboundedSender<TopicCmd>,
}

/// To a topic's task.
#[derive(Debug)]
pub(crate) enum TopicCmd {
    /// A loop follows the topic: send it `Ready`, then the events.
    Follow(usize),
    /// A loop no longer follows it.
    Unfollow(usize),
    /// Add an event; answer the publisher once the broker confirmed it
    /// and the task read it back (its id is its offset).
    Publish(Publish),
    /// Answer `GET /api/history` from the backlog.
    History(HistoryQuery, ReplyTo),
    /// The broker's confirmation of a publish (by its message id), or why
    /// there is none.
    Confirmed(String, Result<(), String>),
}

/// What the bridge's tasks share (one thread: `Rc` and cells).
pub(crate) struct Bridge {
    pub(crate) shared: Arc<RabbitBus>,
    pub(crate) post: Post,
    /// The link while up (`None` while away).
    pub(crate) link: watch::Sender<Option<Link>>,
    pub(crate) topics: RefCell<HashMap<Arc<str>, TopicEntry>>,
    /// This node's random name (in its message ids and control messages).
    pub(crate) node: String,
    /// Numbers this node's messages.
    pub(crate) sent: Cell<u64>,
    /// Publishes sent and not yet answered.
    pub(crate) in_flight: Cell<usize>,
    pub(crate) presence: RefCell<Presence>,
    pub(crate) limits: RefCell<Limits>,
    /// [`OPENS_AT_ONCE`] permits.
    pub(crate) opening: Semaphore,
    /// Told when a publish sent on the link of generation
    /// [`stalled_on`](Self::stalled_on) went unanswered for the request
    /// timeout: the link is made again.
    pub(crate) stalled: Notify,
    pub(crate) stalled_on: Cell<u64>,
}

impl Bridge {
    pub(crate) fn post(&self, to: usize, message: HubMessage) {
        (self.post)(to, message);
    }

    /// The link, if up.
    pub(crate) fn link(&self) -> Option<Link> {
        self.link.borrow().clone()
    }

    /// A publish sent on the link of `generation` was neither confirmed
    /// and read back in time. Seen with RabbitMQ 3.10 after a stream's
    /// writer died: a channel that went on confirming publishes the
    /// stream never got, for as long as it lived, while a new connection
    /// published at once. Whatever the cause, the link is made again.
    pub(crate) fn stall(&self, generation: u64) {
        self.stalled_on.set(generation);
        self.stalled.notify_waiters();
    }

    /// A new message id of this node.
    pub(crate) fn message_id(&self) -> String {
        let n = self.sent.get() + 1;
        self.sent.set(n);
        format!("{}.{n}", self.node)
    }
}

/// A header's text, if it has one.
pub(crate) fn header_text<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// A header's whole number, if it has one.
pub(crate) fn header_number(headers: Option<&FieldTable>, name: &str) -> Option<u64> {
    match headers?.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

/// Sets a text header.
pub(crate) fn set_text(headers: &mut FieldTable, name: &str, value: &str) {
    headers.insert(ShortString::from(name), AMQPValue::LongString(value.into()));
}

/// Sets a number header.
pub(crate) fn set_number(headers: &mut FieldTable, name: &str, value: u64) {
    headers.insert(
        ShortString::from(name),
        AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX)),
    );
}
