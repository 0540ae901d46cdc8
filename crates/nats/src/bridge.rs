//! What the bridge's tasks share: the [`Bridge`] (one thread, so `Rc`
//! and cells), the followed topics' entries, the commands a topic's task
//! takes, and the headers and backoff every task uses. The tasks
//! themselves are in [`crate::runtime`] (publishes, follows),
//! [`crate::reader`] (the node's live events), [`crate::topic`] (a
//! followed topic) and [`crate::presence_sync`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::{self, kv, stream};
use tether_hub::HubMessage;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::NatsBus;
use crate::limits::Limits;
use crate::presence::Presence;
use crate::shared::Post;

/// The header that carries an event's type, when it is not `message`.
pub(crate) const EVENT_HEADER: &str = "Tether-Event";
/// The header that carries an event's publish key.
pub(crate) const KEY_HEADER: &str = "Tether-Key";
/// The header that marks a binary event ([`BINARY`]): its payload is
/// bytes, not UTF-8 text. A node of a release before binary events skips
/// such a message (logged) when it is not UTF-8, and delivers it as text
/// when it happens to be.
pub(crate) const ENCODING_HEADER: &str = "Tether-Encoding";
/// [`ENCODING_HEADER`]'s value for a binary event.
pub(crate) const BINARY: &str = "binary";

/// The reconnection backoff every bus on a tokio runtime uses.
pub(crate) use tether_bus::runtime::reconnect_backoff as backoff;

/// The consumers the bridge's stream allows, when the bridge makes it:
/// each node has one for its live events and one for each topic whose
/// backlog it is reading (at most [`LOADS_AT_ONCE`]). Left unset, the
/// server's default applies, 1000 on nats-server 2.15 (`/jsz`'s
/// `default_max_consumers`), which some 30 nodes following new topics at
/// once would reach.
pub(crate) const MAX_CONSUMERS: i32 = 1_000_000;

/// Topics whose backlog is read (or whose continuity is checked) at once
/// at most: each is a JetStream API request or two the server answers in
/// turn, and a node that follows thousands of topics at once (at start,
/// or after a reconnection) would otherwise have them all in flight
/// against the request timeout.
pub(crate) const LOADS_AT_ONCE: usize = 32;

/// A followed topic, as the bridge's main task and the topic's own task
/// share it.
pub(crate) struct TopicEntry {
    /// Tells the entries of one topic apart across unfollow and follow.
    pub(crate) serial: u64,
    /// The loops that follow it.
    pub(crate) loops: Vec<usize>,
    /// The stream sequence of the last event delivered to the loops.
    pub(crate) delivered: u64,
    /// Publishers to answer once `delivered` reaches the sequence.
    pub(crate) waiting: Vec<(u64, usize, HubMessage)>,
    /// To the topic's task.
    pub(crate) tx: mpsc::UnboundedSender<TopicCmd>,
}

/// What the bridge's tasks share (one thread: `Rc` and cells).
pub(crate) struct Bridge {
    pub(crate) shared: Arc<NatsBus>,
    pub(crate) post: Post,
    pub(crate) js: jetstream::Context,
    /// The stream, once found or made.
    pub(crate) stream: RefCell<Option<stream::Stream>>,
    /// The stream's creation time in Unix milliseconds: the first part of
    /// every event id, so that an id from a stream made again (its
    /// sequence started over) is never taken for one of this stream.
    pub(crate) epoch: Cell<u64>,
    /// True while connected with the stream ready.
    pub(crate) up: watch::Sender<bool>,
    pub(crate) topics: RefCell<HashMap<Arc<str>, TopicEntry>>,
    /// Publishes sent and not yet acknowledged.
    pub(crate) in_flight: Cell<usize>,
    /// Presence across nodes ([`crate::presence`]).
    pub(crate) presence: RefCell<Presence>,
    /// Connection counts and revocations across nodes ([`crate::limits`]).
    pub(crate) limits: RefCell<Limits>,
    /// This node's random name (in its presence and counts keys).
    pub(crate) node: String,
    /// [`LOADS_AT_ONCE`] permits, one held by each topic's task while it
    /// reads its backlog or checks its continuity.
    pub(crate) loading: Semaphore,
    /// The stream sequence of the last message the node's reader
    /// ([`crate::reader`]) handed over: it reads on after it.
    pub(crate) position: Cell<u64>,
    /// The messages the stream keeps per subject (`u64::MAX`: no limit):
    /// a reader further behind than this may find some trimmed.
    pub(crate) per_subject: Cell<u64>,
    /// Counts the times the reader was placed (at start, after a lost
    /// connection, and when the stream was made again): it reads from the
    /// place again.
    pub(crate) placed: watch::Sender<u64>,
}

impl Bridge {
    pub(crate) fn post(&self, to: usize, message: HubMessage) {
        (self.post)(to, message);
    }

    /// Whether the task `serial` is still `topic`'s. A task whose loops
    /// all unfollowed lives on until it has read its commands, and a new
    /// follow meanwhile starts a task of its own: what the old one would
    /// post (a backlog loaded before the new task's, events the new one
    /// delivers too) is stale, and a loop cannot tell it from the new
    /// task's.
    pub(crate) fn is_current(&self, topic: &str, serial: u64) -> bool {
        self.topics
            .borrow()
            .get(topic)
            .is_some_and(|entry| entry.serial == serial)
    }

    /// A topic's task delivered up to `seq`: answer the publishers that
    /// waited for it.
    pub(crate) fn delivered(&self, topic: &str, serial: u64, seq: u64) {
        let mut answers = Vec::new();
        if let Some(entry) = self.topics.borrow_mut().get_mut(topic)
            && entry.serial == serial
        {
            entry.delivered = entry.delivered.max(seq);
            let delivered = entry.delivered;
            let (now, later) = std::mem::take(&mut entry.waiting)
                .into_iter()
                .partition(|(s, _, _)| *s <= delivered);
            entry.waiting = later;
            answers = now;
        }
        for (_, to, message) in answers {
            self.post(to, message);
        }
    }

    /// Every followed topic checks that nothing of its events was trimmed
    /// before the reader got to them, and reads on (or resynchronises).
    pub(crate) fn check_topics(&self) {
        for entry in self.topics.borrow().values() {
            let _ = entry.tx.send(TopicCmd::Check);
        }
    }

    /// The stream, if found.
    pub(crate) fn stream(&self) -> Option<stream::Stream> {
        self.stream.borrow().clone()
    }

    /// Finds a key-value bucket, or makes it with these settings.
    pub(crate) async fn key_value(&self, wanted: kv::Config) -> Result<kv::Store, String> {
        let timeout = self.shared.config.request_timeout;
        let bucket = wanted.bucket.clone();
        match tokio::time::timeout(timeout, self.js.create_key_value(wanted)).await {
            Ok(Ok(store)) => Ok(store),
            // Made by another node with other settings: used as it is.
            _ => tokio::time::timeout(timeout, self.js.get_key_value(bucket))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string()),
        }
    }
}

/// To a topic's task, from the bridge's main task and its reader.
#[derive(Debug)]
pub(crate) enum TopicCmd {
    /// A message of the topic's subject, in the stream's order, and
    /// whether the reader was far enough behind when it was sent that the
    /// stream may have trimmed earlier messages of the topic unread
    /// ([`crate::reader`]).
    Message(Box<async_nats::jetstream::Message>, bool),
    /// A loop follows the topic: send it `Ready` (from what the task
    /// holds), then the events.
    Follow(usize),
    /// A loop no longer follows it.
    Unfollow(usize),
    /// The reader was placed again, or its consumer failed: check
    /// continuity and read on.
    Check,
}
