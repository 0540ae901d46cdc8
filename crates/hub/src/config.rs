//! The hub's limits, with their defaults.

use std::time::Duration;

/// How much a hub keeps and accepts. Every limit has a default
/// ([`Config::default`]) and a field to change it.
///
/// Memory: each event loop holds a replica of every topic's backlog, but
/// the replicas share the events themselves (reference counts), so a
/// backlog costs its bytes once however many loops there are. At most
/// `max_topics × max_backlog_bytes` in all.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Events a topic's backlog keeps for replay (1000).
    pub max_backlog_events: usize,
    /// Bytes a topic's backlog keeps, counting both encodings of each event
    /// (1 MiB). Keep it below the server's per-connection output limit, so
    /// that a full replay fits in a subscriber's queue.
    pub max_backlog_bytes: usize,
    /// The largest event data a publisher may send, in bytes (64 KiB).
    pub max_event_size: usize,
    /// Topics with events at once (1024); a publish that would create one
    /// more is refused ([`crate::Error::TopicLimit`]).
    pub max_topics: usize,
    /// A topic with no publish for this long is forgotten, backlog and ids
    /// included (1 hour); `None` keeps topics forever. A forgotten topic
    /// starts over with a new epoch, so clients that resume with its old
    /// ids get a gap signal.
    pub topic_ttl: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_backlog_events: 1000,
            max_backlog_bytes: 1 << 20,
            max_event_size: 64 * 1024,
            max_topics: 1024,
            topic_ttl: Some(Duration::from_secs(3600)),
        }
    }
}
