//! The bridge between tether's pub/sub hub (`tether-hub`, served by
//! `tether-apps`' `HubApp`) and RabbitMQ **streams**, over AMQP 0-9-1
//! (`lapin`), so that several tether nodes serve the same topics: a bus
//! beside `tether-redis` and `tether-nats`.
//!
//! Every topic is a stream of its own (`PREFIX.topic.NAME`). A published
//! event is added to it (acknowledged once the broker confirms it), and
//! its id is `1-OFFSET`, the stream's offset, which every node reads the
//! same, so that `Last-Event-ID` resumes exactly on any node. The broker
//! tells no offset with a confirmation, and AMQP no stream's end: a node
//! reads what it publishes back, and finds a stream's end by reading back
//! a marker of its own. See the README for the whole design and the
//! numbers behind it.
//!
//! The client runs on a thread of its own, on a tokio current-thread
//! runtime: the event loops never wait for RabbitMQ.
//!
//! ```no_run
//! use tether_rabbitmq::{RabbitBridge, RabbitConfig};
//! # fn loops() -> (tether_hub::Config, usize) { (tether_hub::Config::default(), 2) }
//! let (hub, threads) = loops();
//! let bridge = RabbitBridge::new(RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f").backlog(&hub))?;
//! let brokers: Vec<_> = (0..threads).map(|_| bridge.broker()).collect();
//! // ...give each loop its broker, then start the bridge with a way to
//! // post to the loops (tether-server's `Poster`):
//! bridge.start(|to, message| { let _ = (to, message); })?;
//! # drop(brokers);
//! bridge.shutdown();
//! # Ok::<(), tether_rabbitmq::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod bridge;
mod config;
mod error;
mod limits;
mod link;
mod presence;
mod replica;
mod runtime;
mod shared;
mod stream;
mod topic;

use std::fmt;
use std::sync::Arc;

use tether_bus::{BusBroker, Threads};
use tether_hub::{HubMessage, NodeLimits, Publish};
use tokio::sync::mpsc;

pub use config::RabbitConfig;
pub use error::Error;
pub use shared::{RabbitBus, Status};
pub use tether_bus::{LIMITS_PERIOD, Revoker};

use shared::{Control, Post, SharedLimits, Stats};

/// The bridge between a tether server's hub and RabbitMQ streams: its
/// settings, its thread, and the brokers of the event loops.
///
/// Make it ([`RabbitBridge::new`]), give each event loop a
/// [`RabbitBridge::broker`], then [`RabbitBridge::start`] it with a way to
/// post to the loops; [`RabbitBridge::shutdown`] (or dropping it) stops the
/// thread.
///
/// ```
/// use tether_hub::{Broker, BrokerState};
/// use tether_rabbitmq::{RabbitBridge, RabbitConfig};
///
/// let bridge = RabbitBridge::new(RabbitConfig::new("amqp://127.0.0.1:5672/%2f"))?;
/// let broker = bridge.broker();
/// // Not started: not connected, publishes are refused.
/// assert_eq!(broker.state(), BrokerState::Connecting);
/// assert!(!broker.complete(), "loops follow topics on demand");
/// assert!(RabbitBridge::new(RabbitConfig::new("http://nope")).is_err());
/// assert!(RabbitBridge::new(RabbitConfig::new("amqp://a:5672,b:5672/%2f")).is_ok());
/// assert!(RabbitBridge::new(RabbitConfig::new("amqp://a:5672,b:x/%2f")).is_err());
/// let mut config = RabbitConfig::new("amqp://u:p@a:5672/%2f");
/// assert!(RabbitBridge::new(config.clone()).is_ok());
/// config.prefix = "a.*".into();
/// assert!(RabbitBridge::new(config).is_err());
/// # Ok::<(), tether_rabbitmq::Error>(())
/// ```
pub struct RabbitBridge {
    shared: Arc<RabbitBus>,
    thread: Threads<Receivers>,
}

/// The thread's ends of its channels, until it starts.
type Receivers = (mpsc::Receiver<Publish>, mpsc::UnboundedReceiver<Control>);

impl fmt::Debug for RabbitBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitBridge")
            .field("server", &self.shared.config.server())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl RabbitBridge {
    /// A bridge with these settings; nothing connects before
    /// [`RabbitBridge::start`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`].
    pub fn new(config: RabbitConfig) -> Result<RabbitBridge, Error> {
        let urls = config.urls();
        if !config.url.trim().starts_with("amqp://")
            || urls.iter().any(|url| url.parse::<lapin::uri::AMQPUri>().is_err())
        {
            return Err(Error::InvalidConfig(
                "the URL must be amqp://[USER:PASS@]HOST[:PORT][,HOST[:PORT]...][/VHOST]",
            ));
        }
        if config.history_events == 0 || config.segment_bytes == 0 || config.stream_max_bytes == 0 {
            return Err(Error::InvalidConfig(
                "history_events, segment_bytes and stream_max_bytes must be at least 1",
            ));
        }
        if !config::is_valid_prefix(&config.prefix) {
            return Err(Error::InvalidConfig(
                "the prefix must be tokens of letters, digits, _ and - joined by dots",
            ));
        }
        if config.max_queued_publishes == 0 {
            return Err(Error::InvalidConfig("max_queued_publishes must be at least 1"));
        }
        if config.presence_ttl < std::time::Duration::from_millis(100) {
            return Err(Error::InvalidConfig("presence_ttl must be at least 100 ms"));
        }
        if config.request_timeout.is_zero() {
            return Err(Error::InvalidConfig("request_timeout must be more than zero"));
        }
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        Ok(RabbitBridge {
            shared: Arc::new(RabbitBus {
                config,
                publish_tx,
                control_tx,
                stats: Stats::default(),
                last_error: std::sync::Mutex::new(None),
            }),
            thread: Threads::new("rabbitmq", (publish_rx, control_rx)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RabbitConfig {
        &self.shared.config
    }

    /// A broker for one event loop (make one per loop).
    pub fn broker(&self) -> RabbitBroker {
        BusBroker::new(self.shared.clone())
    }

    /// Starts the bridge's thread. `post(loop, message)` hands a message
    /// to an event loop and wakes it (with tether-server:
    /// `move |to, m| poster.post(to, m)`); messages posted by one thread
    /// to one loop must arrive in order.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyStarted`], [`Error::Spawn`].
    pub fn start(&self, post: impl Fn(usize, HubMessage) + Send + Sync + 'static) -> Result<(), Error> {
        let Some((publish_rx, control_rx)) = self.thread.take() else {
            return Err(Error::AlreadyStarted);
        };
        let post: Post = Arc::new(post);
        let shared = self.shared.clone();
        self.thread
            .spawn("tether-rabbitmq", move || {
                runtime::run(shared, post, publish_rx, control_rx)
            })
            .map_err(Error::Spawn)
    }

    /// The connection and counters now.
    pub fn status(&self) -> Status {
        self.shared.stats.status()
    }

    /// Shares this node's connection counts per subject and its
    /// revocations with the other nodes (the counts over the control
    /// exchange, the revocations in the stream `PREFIX.revoked`), from
    /// the bridge's thread, every [`LIMITS_PERIOD`]: `limits` is told the
    /// others' counts, and every revocation when they change (all of
    /// them once connected). The [`Revoker`] adds revocations for every
    /// node. Call it before or after [`RabbitBridge::start`]; a second call
    /// replaces `limits`.
    ///
    /// ```
    /// # use std::collections::HashMap;
    /// # use std::sync::Arc;
    /// use tether_hub::NodeLimits;
    /// use tether_rabbitmq::{RabbitBridge, RabbitConfig};
    ///
    /// struct Alone;
    /// impl NodeLimits for Alone {
    ///     fn connections_here(&self) -> Vec<(Arc<str>, usize)> { Vec::new() }
    ///     fn set_connections_elsewhere(&self, _: HashMap<Arc<str>, usize>) {}
    ///     fn revoked(&self, _: Vec<(String, u64)>) {}
    /// }
    ///
    /// let bridge = RabbitBridge::new(RabbitConfig::new("amqp://127.0.0.1:5672/%2f"))?;
    /// let revoker = bridge.share_limits(Arc::new(Alone));
    /// // Written once the bridge is started and connected.
    /// revoker.revoke(vec![("jti:abc".into(), 1_900_000_000)]);
    /// # Ok::<(), tether_rabbitmq::Error>(())
    /// ```
    pub fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        let _ = self.shared.control_tx.send(Control::Limits(SharedLimits(limits)));
        Revoker::new(self.shared.clone())
    }

    /// Stops the thread (publishes still queued are refused, those sent
    /// are answered or time out, at most
    /// [`RabbitConfig::request_timeout`]) and waits for it. The brokers
    /// report [`BrokerState::Down`](tether_hub::BrokerState::Down) from
    /// then on and refuse publishes.
    pub fn shutdown(&self) {
        self.shared.stats.stop();
        let _ = self.shared.control_tx.send(Control::Stop);
        self.thread.join();
    }
}

impl tether_bus::BusBridge for RabbitBridge {
    fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        Box::new(RabbitBridge::broker(self))
    }

    fn start(&self, post: Post) -> std::io::Result<()> {
        RabbitBridge::start(self, move |to, message| post(to, message)).map_err(std::io::Error::other)
    }

    fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        RabbitBridge::share_limits(self, limits)
    }

    fn shutdown(&self) {
        RabbitBridge::shutdown(self);
    }

    fn describe(&self) -> String {
        let config = self.config();
        format!(
            "RabbitMQ streams at {} (a stream per topic, {}.topic.TOPIC)",
            config.server(),
            config.prefix,
        )
    }
}

impl Drop for RabbitBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One event loop's [`Broker`](tether_hub::Broker) over RabbitMQ, from
/// [`RabbitBridge::broker`]: the broker every bus shares
/// ([`tether_bus::BusBroker`]) over this crate's [`RabbitBus`].
///
/// It never blocks the loop: publishes go to the bridge's thread over a
/// bounded channel, follows and unfollows over another. Topics are
/// followed on demand ([`Broker::complete`](tether_hub::Broker::complete)
/// is false).
///
/// Besides `tether_broker_up` and `tether_broker_state{broker="rabbitmq"}`,
/// its metrics are `tether_rabbitmq_connected`, `tether_rabbitmq_reconnects_total`,
/// `tether_rabbitmq_errors_total`, `tether_rabbitmq_resyncs_total`,
/// `tether_rabbitmq_events_added_total`, `tether_rabbitmq_duplicates_total`,
/// `tether_rabbitmq_publishes_refused_total`, `tether_rabbitmq_events_read_total`,
/// and `tether_rabbitmq_followed_topics` (topics this node follows or publishes to).
pub type RabbitBroker = BusBroker<RabbitBus>;
