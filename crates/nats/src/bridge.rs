//! What the bridge's tasks share: the [`Bridge`] (one thread, so `Rc`
//! and cells), the followed topics' entries, the commands a topic's task
//! takes, and the headers and backoff every task uses. The tasks
//! themselves are in [`crate::runtime`] (publishes, follows),
//! [`crate::topic`] (a topic's consumer) and [`crate::presence_sync`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tether_backoff::Backoff;
use tether_hub::HubMessage;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::limits::Limits;
use crate::presence::Presence;
use crate::shared::{Post, Shared};

/// The header that carries an event's type, when it is not `message`.
pub(crate) const EVENT_HEADER: &str = "Tether-Event";
/// The header that carries an event's publish key.
pub(crate) const KEY_HEADER: &str = "Tether-Key";

/// The reconnection backoff: 100 ms doubling to 5 s, each delay drawn
/// from its upper half (as the Redis bridge's).
pub(crate) fn backoff() -> Backoff {
    Backoff::new()
        .initial(Duration::from_millis(100))
        .max(Duration::from_secs(5))
        .jitter(0.5)
}

/// The consumers the bridge's stream allows, when the bridge makes it:
/// each node makes one for each topic it follows. Left unset, the server's
/// default applies, which is 1000 on nats-server 2.15 (`/jsz`'s
/// `default_max_consumers`): two nodes following 600 topics each then
/// never finished following them.
pub(crate) const MAX_CONSUMERS: i32 = 1_000_000;

/// Topics whose backlog is read (or whose consumer is made again) at once
/// at most: each makes a consumer, a JetStream API request the server
/// answers in turn, and a node that follows thousands of topics at once
/// (at start, or after a reconnection) would otherwise have them all in
/// flight against the request timeout. Following 10 000 topics on each of
/// two nodes took 7.0 s with 32, 9.8 s with no bound (one run each).
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
    pub(crate) shared: Arc<Shared>,
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
    /// reads its backlog or makes its consumer again.
    pub(crate) loading: Semaphore,
}

impl Bridge {
    pub(crate) fn post(&self, to: usize, message: HubMessage) {
        (self.post)(to, message);
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

/// To a topic's task, from the bridge's main task.
#[derive(Debug)]
pub(crate) enum TopicCmd {
    /// A loop follows the topic: send it `Ready` (from what the task
    /// holds), then the events.
    Follow(usize),
    /// A loop no longer follows it.
    Unfollow(usize),
    /// The connection is back: check continuity and read on.
    Check,
}
