//! Bridges tether's pub/sub hub to a Redis server, so that several tether
//! nodes serve the same topics: every published event goes to a Redis
//! Stream per topic (`XADD`), which gives it its id and its place in the
//! topic's order, cluster-wide; the backlog for `Last-Event-ID` replay is
//! the stream itself, fetched when a node starts to follow a topic. On one
//! Redis server each publish is also announced, in the same atomic step,
//! on one stream all nodes read (the *bus*), so that what a node pays to
//! receive an event does not grow with the number of topics it follows;
//! on a Redis Cluster the same, with one bus per partition of the topics.
//! The core crates never depend on this one.
//!
//! # Why an announcement stream
//!
//! Reading each followed stream (`XREAD BLOCK` naming them all) costs
//! Redis and the node work per followed topic at every read: with 100 000
//! followed topics every call lists 100 000 keys, whatever the traffic.
//! Instead, on one server, the script that adds an event to its topic's
//! stream also adds a copy (topic, id, data, and a number from a counter)
//! to `PREFIX!bus`, and the reader waits in one `XREAD BLOCK` of that
//! stream (and its wake stream) whatever it follows, passing over the
//! announcements of topics it does not follow (a hash lookup). Redis 7's
//! sharded pub/sub (`SPUBLISH`) would filter by topic in Redis, but its
//! messages are lost whenever the subscriber's connection is, so every
//! reconnection would have to re-read each followed stream anyway, and the
//! `redis` crate's synchronous client has no sharded subscriber (its
//! `PubSub` knows `SUBSCRIBE` and `PSUBSCRIBE` only; `SSUBSCRIBE` is in
//! its async cluster client alone). A stream keeps the announcements: a
//! reader that loses its connection reads on from where it was, and the
//! numbers tell it exactly when it missed some (the bus trimmed past it at
//! [`RedisConfig::bus_max_len`], or the counter reset). Then, and after
//! every reconnection, it takes the bus's end as its place and reads each
//! followed topic's stream from the last event it delivered (pipelined
//! `XRANGE`s): events before that place come from there, later ones from
//! the bus, one seen in both is passed over by its id. Nothing
//! acknowledged is lost or delivered twice, and a topic's order is its
//! stream's, since the bus gets each topic's events in that order. The
//! price: each node reads every event published on its Redis (not only
//! those of topics it follows), and Redis keeps the bus (about
//! `bus_max_len` entries, each an event's size plus about 60 bytes).
//!
//! # How it runs
//!
//! - [`RedisBridge`] owns two threads, each with its own connection (the
//!   `redis` crate's synchronous client): the **writer** `XADD`s publishes
//!   in batches (`MAXLEN ~` bounds each stream as the hub bounds its
//!   backlog), and the **reader** sends each following loop the topic's
//!   backlog (`HubMessage::Ready`), then reads the bus (on a cluster, the
//!   followed streams) and posts every event of a followed topic
//!   (`HubMessage::Deliver`, encoded once, shared by all loops) to the
//!   loops that follow its topic, in stream order. Both
//!   reach the event loops through the server's `Handle::post`, which wakes
//!   a loop through its `mio::Waker`; the loops never wait for Redis.
//! - [`RedisBroker`] is what each event loop holds (a
//!   [`Broker`](tether_hub::Broker), the one every bus shares): it
//!   hands publishes to the writer over a bounded channel (refusing them,
//!   503, while the writer is not connected or is behind), and follows and
//!   unfollows to the reader.
//! - The reader waits in `XREAD BLOCK` on the bus plus a small *wake
//!   stream* of its own, to which the writer adds an entry whenever the
//!   reader has new work (a follow, a publisher to answer): nothing sent to
//!   it before that entry can be missed.
//! - A publish with a publish key (`Publish::key`) is added by a Lua
//!   script that checks the key too: Redis runs it atomically, so the
//!   key check and the entry are one step, whichever nodes publish. It
//!   keeps the topic's keys in a hash (`PREFIX!pub:TOPIC`, key to entry
//!   id) and a sorted set (`PREFIX!pub-ms:TOPIC`, to forget the keys of
//!   trimmed entries), and puts the key in the entry (field `key`). A key
//!   is remembered while its entry is in the stream; a publish whose key
//!   is remembered adds nothing and is answered `HubMessage::Duplicate`.
//! - A publisher is answered (`HubMessage::Published`) by the reader, after
//!   the event's delivery to the publisher's loop when that loop follows
//!   the topic, as the broker contract asks.
//! - **Reconnection.** Either connection that fails is made again after an
//!   exponential backoff (capped, with jitter); the logs say when it is lost
//!   (warn) and back (info), and the state, reconnects and age of the last
//!   error are in `/metrics` ([`Broker::write_metrics`](tether_hub::Broker::write_metrics)). Once back, the
//!   reader goes on from the last id it delivered (reading each followed
//!   stream from it, see above) if that id is still in the stream and
//!   Redis did not restart; otherwise continuity is lost: the
//!   topic's loops get a new `Ready`, and the hub ends the topic's
//!   subscriptions so that clients resume from their last ids (with a gap
//!   signal if events are gone).
//! - **Presence** (who is subscribed, `tether_hub::Presence`): a third
//!   thread with its own connection writes this node's members of each
//!   topic to a sorted set (`PREFIX!presence:TOPIC`, on a cluster
//!   `PREFIX!presence:{TOPIC}`, the stream's slot) as `NODE/MEMBER`
//!   scored by the Unix millisecond it expires at
//!   ([`RedisConfig::presence_ttl`], 15 s), scores them again every third
//!   of that, removes a member when its last connection here leaves (and
//!   all of them at shutdown), and every [`RedisConfig::presence_poll`]
//!   (1 s) drops expired entries (`ZREMRANGEBYSCORE`) and reads the other
//!   nodes' members of the topics this node watches, for their
//!   sequencer loops. A join or leave elsewhere shows here within about
//!   the poll; a node that dies, within about the time to live. Nodes'
//!   clocks are compared through the scores: keep them in sync.
//! - **User actions** (the server API's `POST /api/disconnect`,
//!   `/api/unsubscribe` and `/api/refresh`; [`Broker::user_action`](tether_hub::Broker::user_action)): the
//!   presence thread adds each action taken on this node to a control
//!   stream (`PREFIX!control`, `MAXLEN ~ 1000`) with this node's name, and
//!   every [`RedisConfig::presence_poll`] reads the entries added since it
//!   last read (since its first connection, to begin with), posting the
//!   other nodes' actions to loop 0, which hands them to every loop. An
//!   action reaches the other nodes within about the poll; one taken
//!   while a node's presence connection is down reaches it once it is
//!   back, if the stream still holds it; one taken on a node whose
//!   presence connection is down is not sent (it acts on that node's
//!   connections only).
//! - **Redis Cluster** (`redis+cluster://HOST:PORT,...`): one script may
//!   only write keys of one slot, so the topics are grouped into
//!   [`RedisConfig::cluster_partitions`] partitions (16) by the slot of
//!   their name, and every key of a partition carries its hash tag
//!   (`PREFIX{TAG}TOPIC`, `PREFIX{TAG}!pub:TOPIC`, `PREFIX{TAG}!bus`...;
//!   the tags' slots spread evenly over the slot space, and so over the
//!   primaries). Each partition is then what one server is above: a
//!   publish adds its event and announces it on the partition's bus in one
//!   script, and the reader reads the bus of each partition a followed
//!   topic is in, whatever the number of topics it follows, with the same
//!   numbering, catch-up and resynchronisation. No read blocks (a
//!   blocking `XREAD` cannot span slots, and would hold that node's
//!   connection): the reader polls those buses with plain `XREAD`s every
//!   [`RedisConfig::cluster_poll`] while nothing comes. With 0 partitions
//!   (the layout of earlier versions), each topic's name is its keys'
//!   hash tag (`PREFIX{TOPIC}`), nothing is announced and the reader polls
//!   each followed stream, so its reads grow with the topics it follows.
//!   Presence sets are `PREFIX!presence:{TOPIC}` in both. The connections
//!   are the `redis` crate's cluster connections (routing, `MOVED`,
//!   `ASK`); publishes go one command each; a failed-over primary is a
//!   lost connection, made again (a promoted replica that missed the last
//!   announcements shows as a hole in the numbers, and the topics catch
//!   up or resynchronise).
//! - **Redis Sentinel** (`redis+sentinel://HOST:PORT,.../MASTER_NAME`):
//!   one server, the master the sentinels name. Each connection asks them
//!   in order (`SENTINEL get-master-addr-by-name`) and keeps the address
//!   only if its `ROLE` is master; a lost connection or `READONLY` asks
//!   again, so a failover is followed. The promoted replica's other
//!   `run_id` is not taken for a restart: each followed topic's last
//!   delivered event is looked for in its stream instead.
//!
//! # Example
//!
//! ```no_run
//! use tether_redis::{RedisBridge, RedisConfig};
//! use tether_apps::{HubSettings, HubShared};
//! use tether_server::{Cluster, Config, Handshake};
//!
//! let mut settings = HubSettings::default();
//! settings.publish_token = Some("s3cret".into());
//! let redis = RedisConfig::new("redis://127.0.0.1:6379/").backlog(&settings.hub);
//! let bridge = RedisBridge::new(redis)?;
//! let loops = 4;
//! let shared = HubShared::new(settings, loops);
//! let config = Config::new("127.0.0.1:8080".parse().unwrap());
//! let cluster = Cluster::bind(config, Handshake::new(), loops, |index| {
//!     shared.app_with_broker(index, Box::new(bridge.broker()))
//! })?;
//! let poster = cluster.poster();
//! bridge.start(move |to, message| poster.post(to, message))?;
//! cluster.run()?;
//! bridge.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

// Everything here handles bytes and numbers from the network: nothing may
// panic on them. These lints make every exception visible, each `allow`
// with its reason beside it (tests are exempt).
mod bus;
mod commands;
mod config;
mod connection;
mod control;
mod error;
mod history;
mod limits;
mod presence;
mod publish;
mod reader;
mod sentinel;
mod shared;
#[cfg(test)]
mod test_values;
mod tls;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use tether_bus::{BusBroker, Threads};
use tether_hub::HubMessage;

pub use config::RedisConfig;
pub use error::Error;
pub use limits::NodeLimits;
pub use shared::{RedisBus, Status};
pub use tether_bus::{LIMITS_PERIOD, Revoker};

use shared::{Control, Post, ReaderMsg, SharedLimits, Stats, WriterMsg};

/// The bridge between a tether server's hub and Redis: its settings, its
/// two threads, and the brokers of the event loops. See the crate's
/// documentation for how it works.
///
/// Make it ([`RedisBridge::new`]), give each event loop a
/// [`RedisBridge::broker`], then [`RedisBridge::start`] it with a way to
/// post to the loops; [`RedisBridge::shutdown`] (or dropping it) stops the
/// threads.
///
/// ```
/// use tether_hub::{Broker, BrokerState};
/// use tether_redis::{RedisBridge, RedisConfig};
///
/// let bridge = RedisBridge::new(RedisConfig::new("redis://127.0.0.1:6379/"))?;
/// let broker = bridge.broker();
/// // Not started: not connected, publishes are refused.
/// assert_eq!(broker.state(), BrokerState::Connecting);
/// assert!(!broker.complete(), "loops follow topics on demand");
/// assert!(RedisBridge::new(RedisConfig::new("http://nope")).is_err());
/// // A Redis Cluster: any of its nodes; the prefix may hold no brace.
/// let mut config = RedisConfig::new("redis+cluster://127.0.0.1:7000,127.0.0.1:7001");
/// assert!(RedisBridge::new(config.clone()).is_ok());
/// config.prefix = "{app}:".into();
/// assert!(RedisBridge::new(config).is_err());
/// assert!(RedisBridge::new(RedisConfig::new("redis+cluster://a:1/3")).is_err());
/// // The master Redis Sentinel names: the sentinels, then the master's name.
/// let mut config = RedisConfig::new("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster");
/// config.sentinel_password = Some("s3cret".into());
/// assert!(RedisBridge::new(config).is_ok());
/// assert!(RedisBridge::new(RedisConfig::new("redis+sentinel://10.0.0.1:26379")).is_err());
/// # Ok::<(), tether_redis::Error>(())
/// ```
pub struct RedisBridge {
    shared: Arc<RedisBus>,
    threads: Threads<Receivers>,
}

/// The threads' ends of their channels, until they start.
type Receivers = (Receiver<WriterMsg>, Receiver<ReaderMsg>, Receiver<Control>);

impl fmt::Debug for RedisBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBridge")
            .field("config", &self.shared.config)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl RedisBridge {
    /// A bridge with these settings; nothing connects before
    /// [`RedisBridge::start`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::InvalidConfig`], [`Error::Tls`].
    pub fn new(config: RedisConfig) -> Result<RedisBridge, Error> {
        if config.max_len == 0 {
            return Err(Error::InvalidConfig("max_len must be at least 1"));
        }
        if config.bus_max_len == 0 {
            return Err(Error::InvalidConfig("bus_max_len must be at least 1"));
        }
        if config.max_queued_publishes == 0 {
            return Err(Error::InvalidConfig("max_queued_publishes must be at least 1"));
        }
        let tls = tls::TlsFiles::load(&config).map_err(Error::Tls)?;
        let client = connection::Client::open(&config, tls).map_err(Error::InvalidUrl)?;
        let cluster = client.is_cluster();
        if cluster && config.prefix.contains(['{', '}']) {
            return Err(Error::InvalidConfig(
                "on a Redis Cluster the prefix may not hold { or } (each topic's name is its keys' hash tag)",
            ));
        }
        if cluster && config.cluster_poll.is_zero() {
            return Err(Error::InvalidConfig("cluster_poll must be more than zero"));
        }
        if config.cluster_partitions > commands::MAX_PARTITIONS {
            return Err(Error::InvalidConfig("cluster_partitions may be at most 1024"));
        }
        let keys = commands::Keys::new(&config.prefix, cluster, config.cluster_partitions);
        let server = config::redact(&config.url);
        if config.presence_poll.is_zero() {
            return Err(Error::InvalidConfig("presence_poll must be more than zero"));
        }
        let node_id = commands::random_node_id();
        let wake_key = commands::wake_key(&config.prefix, node_id);
        let (writer_tx, writer_rx) = mpsc::sync_channel(config.max_queued_publishes);
        let (reader_tx, reader_rx) = mpsc::channel();
        let (presence_tx, presence_rx) = mpsc::channel();
        Ok(RedisBridge {
            shared: Arc::new(RedisBus {
                config,
                keys,
                client,
                server,
                wake_key,
                node_id,
                writer_tx,
                reader_tx,
                presence_tx,
                stats: Stats::new(),
            }),
            threads: Threads::new("redis", (writer_rx, reader_rx, presence_rx)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    /// The key of `topic`'s stream: `PREFIX TOPIC` on one server; on a
    /// Redis Cluster `PREFIX{TAG}TOPIC`, the tag of the topic's partition
    /// ([`RedisConfig::cluster_partitions`]), or `PREFIX{TOPIC}` with a
    /// slot per topic.
    ///
    /// ```
    /// use tether_redis::{RedisBridge, RedisConfig};
    ///
    /// let one = RedisBridge::new(RedisConfig::new("redis://127.0.0.1:6379/"))?;
    /// assert_eq!(one.stream_key("news"), "tether:news");
    /// let mut config = RedisConfig::new("redis+cluster://127.0.0.1:7000");
    /// let partitioned = RedisBridge::new(config.clone())?;
    /// assert!(partitioned.stream_key("news").starts_with("tether:{"));
    /// assert!(partitioned.stream_key("news").ends_with("}news"));
    /// config.cluster_partitions = 0;
    /// assert_eq!(RedisBridge::new(config)?.stream_key("news"), "tether:{news}");
    /// # Ok::<(), tether_redis::Error>(())
    /// ```
    pub fn stream_key(&self, topic: &str) -> String {
        self.shared.keys.stream(topic)
    }

    /// A broker for one event loop (make one per loop).
    pub fn broker(&self) -> RedisBroker {
        BusBroker::new(self.shared.clone())
    }

    /// Starts the writer and reader threads. `post(loop, message)` hands
    /// a message to an event loop and wakes it (with tether-server:
    /// `move |to, m| poster.post(to, m)` with the server's `Poster`); messages posted by
    /// one thread to one loop must arrive in order.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyStarted`], [`Error::Spawn`].
    pub fn start(&self, post: impl Fn(usize, HubMessage) + Send + Sync + 'static) -> Result<(), Error> {
        let Some((writer_rx, reader_rx, presence_rx)) = self.threads.take() else {
            return Err(Error::AlreadyStarted);
        };
        let post: Post = Arc::new(post);
        let writer = writer::Writer::new(self.shared.clone(), post.clone(), writer_rx);
        let presence = presence::PresenceThread::new(self.shared.clone(), post.clone(), presence_rx);
        let reader = reader::Reader::new(self.shared.clone(), post, reader_rx);
        let threads = &self.threads;
        threads
            .spawn("tether-redis-writer", move || writer.run())
            .map_err(Error::Spawn)?;
        let spawned = threads
            .spawn("tether-redis-reader", move || reader.run())
            .and_then(|()| threads.spawn("tether-redis-presence", move || presence.run()));
        if let Err(e) = spawned {
            self.shutdown();
            return Err(Error::Spawn(e));
        }
        Ok(())
    }

    /// Shares this node's connection counts per subject and its
    /// revocations with the other nodes through Redis, from the presence
    /// thread, every [`LIMITS_PERIOD`]: `limits` is told the others'
    /// counts, and every revocation in Redis when the node connects and
    /// whenever they change. The [`Revoker`] adds revocations to Redis.
    pub fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        let _ = self
            .shared
            .presence_tx
            .send(Control::Limits(SharedLimits(limits)));
        Revoker::new(self.shared.clone())
    }

    /// The connections and counters now.
    pub fn status(&self) -> Status {
        self.shared.stats.status()
    }

    /// The replicas [`RedisConfig::wait_replicas`] requires against
    /// those Redis has online, as the writer last counted them (`INFO
    /// replication`, at each connection and every second): `None` when it
    /// requires none. The node's readiness reports them.
    pub fn replicas(&self) -> Option<tether_bus::ReplicaWatch> {
        let required = self.shared.config.wait_replicas;
        if required == 0 {
            return None;
        }
        let shared = self.shared.clone();
        Some(Arc::new(move || shared.stats.replicas(required)))
    }

    /// Stops the threads (publishes still queued are refused) and waits
    /// for them: at most about [`RedisConfig::command_timeout`] plus
    /// [`RedisConfig::block`]. The brokers report
    /// [`BrokerState::Down`](tether_hub::BrokerState::Down)
    /// from then on and refuse publishes.
    pub fn shutdown(&self) {
        self.shared.stats.stop();
        let _ = self.shared.writer_tx.try_send(WriterMsg::Stop);
        let _ = self.shared.reader_tx.send(ReaderMsg::Stop);
        let _ = self.shared.presence_tx.send(Control::Stop);
        // The writer first: its last act wakes the reader.
        self.threads.join();
    }
}

impl tether_bus::BusBridge for RedisBridge {
    fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        Box::new(RedisBridge::broker(self))
    }

    fn start(&self, post: Post) -> std::io::Result<()> {
        RedisBridge::start(self, move |to, message| post(to, message)).map_err(std::io::Error::other)
    }

    fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        RedisBridge::share_limits(self, limits)
    }

    fn shutdown(&self) {
        RedisBridge::shutdown(self);
    }

    fn replicas(&self) -> Option<tether_bus::ReplicaWatch> {
        RedisBridge::replicas(self)
    }

    fn describe(&self) -> String {
        let config = self.config();
        if let Some(sentinel) = self.shared.client.sentinel() {
            return format!(
                "Redis Sentinel: master {} as sentinels {} name it (topic news is the stream {})",
                sentinel.master_name(),
                sentinel.sentinels(),
                self.stream_key("news"),
            );
        }
        let cluster = self.shared.client.is_cluster();
        let layout = match (cluster, config.cluster_partitions) {
            (false, _) => String::new(),
            (true, 0) => ", a slot per topic".to_owned(),
            (true, n) => format!(", {n} partitions"),
        };
        format!(
            "Redis{} at {} (topic news is the stream {}{layout})",
            if cluster { " Cluster" } else { "" },
            config.server(),
            self.stream_key("news"),
        )
    }
}

impl Drop for RedisBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Not part of the API: the parsing of Redis replies the bridge does, for
/// the fuzz target (`fuzz/fuzz_targets/redis_reply.rs`).
#[doc(hidden)]
pub mod fuzz {
    use std::sync::Arc;

    use redis::Value;

    use crate::commands::{self, Keys};

    /// Reads `value` as each reply the bridge parses (an `XREAD`, an
    /// `XRANGE`, the bus's announcements, a publish's answer, an `XINFO
    /// STREAM`, an `INFO`, a sentinel's master address, a `ROLE`) and
    /// makes the hub's events of its entries, as the reader does; how
    /// many events were made. Never panics; an event keeps its entry's id.
    pub fn replies(value: &Value) -> usize {
        let mut events = 0;
        let topic: Arc<str> = Arc::from("fuzz");
        let mut to_events = |entries: &[commands::Entry]| {
            for entry in entries {
                if let Some(event) = entry.to_event(&topic) {
                    debug_assert_eq!(event.id(), entry.id);
                    events += 1;
                }
            }
        };
        if let Ok(streams) = commands::parse_xread(value) {
            for (cluster, partitions) in [(false, 0), (true, 0), (true, 16)] {
                let keys = Keys::new("t:", cluster, partitions);
                for (key, _) in &streams {
                    if let Some(name) = keys.topic_of(key) {
                        debug_assert_eq!(keys.stream(name).as_bytes(), &key[..]);
                    }
                }
            }
            for (_, entries) in &streams {
                to_events(entries);
            }
        }
        if let Ok(entries) = commands::parse_entries(value) {
            to_events(&entries);
        }
        if let Ok(announcements) = crate::bus::parse(value) {
            let entries: Vec<_> = announcements.into_iter().filter_map(|a| a.entry).collect();
            to_events(&entries);
        }
        let _ = crate::publish::parse_published(value);
        if let Some(info) = commands::parse_stream_info(value) {
            let _ = info.lost_entries();
        }
        let _ = commands::parse_run_id(value);
        // A sentinel's answers: an address taken is one a URL can hold.
        if let Ok(Some((host, port))) = crate::sentinel::parse_master_addr(value) {
            debug_assert!(port > 0 && !host.is_empty());
            debug_assert!(!host.contains(['/', '@', '?', '#', ' ']), "{host}");
        }
        let _ = crate::sentinel::parse_role(value);
        events
    }
}

/// One event loop's [`Broker`](tether_hub::Broker) over Redis, from
/// [`RedisBridge::broker`]: the broker every bus shares
/// ([`tether_bus::BusBroker`]) over this crate's [`RedisBus`].
///
/// It never blocks the loop: publishes go to the writer thread over a
/// bounded channel, follows and unfollows to the reader thread. Topics
/// are followed on demand ([`Broker::complete`](tether_hub::Broker::complete)
/// is false): a loop gets a topic's events only while it has subscribers
/// of it.
///
/// Besides `tether_broker_up` and `tether_broker_state{broker="redis"}`,
/// its metrics are `tether_redis_connected{connection="writer"|"reader"}`,
/// `tether_redis_reconnects_total`, `tether_redis_errors_total`,
/// `tether_redis_last_error_age_seconds` (once there was an error),
/// `tether_redis_resyncs_total`, `tether_redis_events_added_total`,
/// `tether_redis_duplicates_total`,
/// `tether_redis_publishes_refused_total`, `tether_redis_events_read_total`
/// and `tether_redis_followed_topics`.
pub type RedisBroker = BusBroker<RedisBus>;
