//! The hub's limits, with their defaults.

use std::time::Duration;

/// How much a hub keeps and accepts. Every limit has a default
/// ([`Config::default`]) and a field to change it.
///
/// Memory: each event loop holds a replica of every topic's backlog, but
/// the replicas share the events themselves (reference counts), so a
/// backlog costs its bytes once however many loops there are. At most
/// `max_topics × max_backlog_bytes` in all.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Other bounds for some topics: the backlog and expiry of the topics
    /// a pattern names (`chat.*`, `clock`), in place of the ones above.
    /// The most specific pattern that matches a topic governs it
    /// ([`tether_topic::most_specific`]); a topic none matches has the
    /// ones above. Empty by default.
    pub namespaces: Vec<TopicLimits>,
    /// How long a subscriber that resumes from an id this hub has not
    /// seen yet is held for it (10 s): another node may have delivered it
    /// already while this one is still catching up with its bus (after a
    /// partition, a paused bus, a restart). The id arriving makes the
    /// subscriber live from the next event, with nothing missed and
    /// nothing repeated; past this wait it gets the gap signal and the
    /// backlog, which a client whose id was real already had in part.
    /// Where the broker's ids are one sequence (a bus:
    /// [`crate::Broker::ids_one_sequence`]) an id ahead is never of
    /// another history, and the subscriber is held until the topic
    /// reaches it, without this limit.
    /// Counted in the hub's ticks ([`crate::Hub::tick`], about one a
    /// second), so it holds for this long to one tick more.
    pub resume_wait: Duration,
}

/// The backlog and expiry of the topics a pattern names
/// ([`Config::namespaces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicLimits {
    /// A topic name, or a prefix followed by `*`
    /// ([`tether_topic::is_valid_pattern`]).
    pub pattern: String,
    /// As [`Config::max_backlog_events`], for these topics.
    pub max_backlog_events: usize,
    /// As [`Config::max_backlog_bytes`], for these topics.
    pub max_backlog_bytes: usize,
    /// As [`Config::topic_ttl`], for these topics.
    pub topic_ttl: Option<Duration>,
    /// Their events go to the durable log, where the hub has one
    /// (`tether-hub-durable`); `false`: they are kept in memory only, and
    /// a restart loses them (their subscribers then get a gap). `true` by
    /// default.
    pub durable: bool,
}

impl TopicLimits {
    /// The topics of `pattern`, with the bounds `config` gives every topic
    /// (change the fields for the ones that differ).
    pub fn new(pattern: impl Into<String>, config: &Config) -> TopicLimits {
        TopicLimits {
            pattern: pattern.into(),
            max_backlog_events: config.max_backlog_events,
            max_backlog_bytes: config.max_backlog_bytes,
            topic_ttl: config.topic_ttl,
            durable: true,
        }
    }
}

impl Config {
    /// The namespace that governs `topic`, if any.
    fn namespace_of(&self, topic: &str) -> Option<&TopicLimits> {
        let index = tether_topic::most_specific(self.namespaces.iter().map(|n| n.pattern.as_str()), topic)?;
        self.namespaces.get(index)
    }

    /// The backlog bounds of `topic`: events, bytes.
    ///
    /// ```
    /// use tether_hub::{Config, TopicLimits};
    ///
    /// let mut config = Config::default();
    /// let mut chat = TopicLimits::new("chat.*", &config);
    /// chat.max_backlog_events = 50;
    /// config.namespaces.push(chat);
    /// assert_eq!(config.backlog_bounds("chat.lobby"), (50, 1 << 20));
    /// assert_eq!(config.backlog_bounds("news"), (1000, 1 << 20));
    /// ```
    pub fn backlog_bounds(&self, topic: &str) -> (usize, usize) {
        match self.namespace_of(topic) {
            Some(n) => (n.max_backlog_events, n.max_backlog_bytes),
            None => (self.max_backlog_events, self.max_backlog_bytes),
        }
    }

    /// How long `topic` may go without a publish before it is forgotten.
    pub fn topic_ttl_of(&self, topic: &str) -> Option<Duration> {
        self.namespace_of(topic).map_or(self.topic_ttl, |n| n.topic_ttl)
    }

    /// The ticks a subscriber ahead of the hub is held:
    /// [`Config::resume_wait`] in whole seconds, rounded up, and one for
    /// the tick it came in (at least two).
    pub(crate) fn resume_wait_ticks(&self) -> u64 {
        let seconds = self.resume_wait.as_secs() + u64::from(self.resume_wait.subsec_nanos() > 0);
        seconds.saturating_add(1).max(2)
    }

    /// Whether `topic`'s events go to the durable log, where there is one
    /// ([`TopicLimits::durable`]; every topic outside a namespace does).
    pub fn is_durable(&self, topic: &str) -> bool {
        self.namespace_of(topic).is_none_or(|n| n.durable)
    }

    /// Whether `topic`, last published to at `last_publish_ms`, has been
    /// idle past its time to live at `now_ms` (Unix milliseconds).
    pub fn is_expired(&self, topic: &str, last_publish_ms: u64, now_ms: u64) -> bool {
        self.topic_ttl_of(topic).is_some_and(|ttl| {
            now_ms.saturating_sub(last_publish_ms) >= u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
        })
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_backlog_events: 1000,
            max_backlog_bytes: 1 << 20,
            max_event_size: 64 * 1024,
            max_topics: 1024,
            topic_ttl: Some(Duration::from_secs(3600)),
            namespaces: Vec::new(),
            resume_wait: Duration::from_secs(10),
        }
    }
}
