//! The bridge between tether's pub/sub hub (`tether-hub`, served by
//! `tether-apps`' `HubApp`) and NATS JetStream, so that several tether
//! nodes serve the same topics: a second engine beside `tether-redis`.
//!
//! Every topic is a subject of one JetStream stream
//! (`PREFIX.topic.NAME`, see [`subject_of`]). A published event is added
//! to the stream, which gives it its place in the topic's order for every
//! node; its id is `EPOCH-SEQ`, the stream's creation time in
//! milliseconds and the message's stream sequence, so that
//! `Last-Event-ID` resumes exactly on any node. The stream keeps one
//! message more per subject than the backlog, so the id before the
//! backlog is always known and the gap signal is exact. Publish keys are
//! JetStream's `Nats-Msg-Id`. See the README for the whole design.
//!
//! The client (`async-nats`) runs on a thread of its own, on a tokio
//! current-thread runtime: the event loops never wait for NATS.
//!
//! ```no_run
//! use tether_nats::{NatsBridge, NatsConfig};
//! # fn loops() -> (tether_hub::Config, usize) { (tether_hub::Config::default(), 2) }
//! let (hub, threads) = loops();
//! let bridge = NatsBridge::new(NatsConfig::new("nats://127.0.0.1:4222").backlog(&hub))?;
//! let brokers: Vec<_> = (0..threads).map(|_| bridge.broker()).collect();
//! // ...give each loop its broker, then start the bridge with a way to
//! // post to the loops (tether-server's `Poster`):
//! bridge.start(|to, message| { let _ = (to, message); })?;
//! # drop(brokers);
//! bridge.shutdown();
//! # Ok::<(), tether_nats::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod bridge;
mod config;
mod control;
mod error;
mod limits;
mod limits_sync;
mod presence;
mod presence_sync;
mod reader;
mod runtime;
mod shared;
mod subject;
mod topic;

use std::fmt;
use std::sync::Arc;

use tether_bus::{BusBroker, Threads};
use tether_hub::{HubMessage, NodeLimits, Publish};
use tokio::sync::mpsc;

pub use config::NatsConfig;
pub use error::Error;
pub use shared::{NatsBus, Status};
pub use subject::subject_of;
pub use tether_bus::{LIMITS_PERIOD, Revoker};

use shared::{Control, Post, SharedLimits, Stats};

/// The bridge between a tether server's hub and NATS JetStream: its
/// settings, its thread, and the brokers of the event loops.
///
/// Make it ([`NatsBridge::new`]), give each event loop a
/// [`NatsBridge::broker`], then [`NatsBridge::start`] it with a way to
/// post to the loops; [`NatsBridge::shutdown`] (or dropping it) stops the
/// thread.
///
/// ```
/// use tether_hub::{Broker, BrokerState};
/// use tether_nats::{NatsBridge, NatsConfig};
///
/// let bridge = NatsBridge::new(NatsConfig::new("nats://127.0.0.1:4222"))?;
/// let broker = bridge.broker();
/// // Not started: not connected, publishes are refused.
/// assert_eq!(broker.state(), BrokerState::Connecting);
/// assert!(!broker.complete(), "loops follow topics on demand");
/// assert!(NatsBridge::new(NatsConfig::new("http://nope")).is_err());
/// let mut config = NatsConfig::new("nats://a:4222,nats://b:4222");
/// assert!(NatsBridge::new(config.clone()).is_ok());
/// config.prefix = "a.*".into();
/// assert!(NatsBridge::new(config).is_err());
/// # Ok::<(), tether_nats::Error>(())
/// ```
pub struct NatsBridge {
    shared: Arc<NatsBus>,
    thread: Threads<Receivers>,
}

/// The thread's ends of its channels, until it starts.
type Receivers = (mpsc::Receiver<Publish>, mpsc::UnboundedReceiver<Control>);

impl fmt::Debug for NatsBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBridge")
            .field("server", &self.shared.config.server())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl NatsBridge {
    /// A bridge with these settings; nothing connects before
    /// [`NatsBridge::start`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`].
    pub fn new(config: NatsConfig) -> Result<NatsBridge, Error> {
        if runtime::servers(&config.url).is_err()
            || !config.url.split(',').all(|u| u.trim().starts_with("nats://"))
        {
            return Err(Error::InvalidConfig(
                "the URL must be nats://HOST:PORT[,nats://HOST:PORT...]",
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
        Ok(NatsBridge {
            shared: Arc::new(NatsBus {
                config,
                publish_tx,
                control_tx,
                stats: Stats::default(),
            }),
            thread: Threads::new("nats", (publish_rx, control_rx)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &NatsConfig {
        &self.shared.config
    }

    /// A broker for one event loop (make one per loop).
    pub fn broker(&self) -> NatsBroker {
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
            .spawn("tether-nats", move || {
                runtime::run(shared, post, publish_rx, control_rx)
            })
            .map_err(Error::Spawn)
    }

    /// The connection and counters now.
    pub fn status(&self) -> Status {
        self.shared.stats.status()
    }

    /// Shares this node's connection counts per subject and its
    /// revocations with the other nodes, through two JetStream key-value
    /// buckets (`STREAM_conns`, `STREAM_revoked`; the latter needs NATS
    /// 2.11 or later, for its per-message times to live), from the
    /// bridge's thread, every [`LIMITS_PERIOD`]: `limits` is told the
    /// others' counts, and every revocation when they change (all of
    /// them once connected). The [`Revoker`] adds revocations for every
    /// node. Call it before or after [`NatsBridge::start`]; a second call
    /// replaces `limits`.
    ///
    /// ```
    /// # use std::collections::HashMap;
    /// # use std::sync::Arc;
    /// use tether_hub::NodeLimits;
    /// use tether_nats::{NatsBridge, NatsConfig};
    ///
    /// struct Alone;
    /// impl NodeLimits for Alone {
    ///     fn connections_here(&self) -> Vec<(Arc<str>, usize)> { Vec::new() }
    ///     fn set_connections_elsewhere(&self, _: HashMap<Arc<str>, usize>) {}
    ///     fn revoked(&self, _: Vec<(String, u64)>) {}
    /// }
    ///
    /// let bridge = NatsBridge::new(NatsConfig::new("nats://127.0.0.1:4222"))?;
    /// let revoker = bridge.share_limits(Arc::new(Alone));
    /// // Written once the bridge is started and connected.
    /// revoker.revoke(vec![("jti:abc".into(), 1_900_000_000)]);
    /// # Ok::<(), tether_nats::Error>(())
    /// ```
    pub fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        let _ = self.shared.control_tx.send(Control::Limits(SharedLimits(limits)));
        Revoker::new(self.shared.clone())
    }

    /// Stops the thread (publishes still queued are refused, those sent
    /// are answered or time out, at most
    /// [`NatsConfig::request_timeout`]) and waits for it. The brokers
    /// report [`BrokerState::Down`](tether_hub::BrokerState::Down) from
    /// then on and refuse publishes.
    pub fn shutdown(&self) {
        self.shared.stats.stop();
        let _ = self.shared.control_tx.send(Control::Stop);
        self.thread.join();
    }
}

impl tether_bus::BusBridge for NatsBridge {
    fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        Box::new(NatsBridge::broker(self))
    }

    fn start(&self, post: Post) -> std::io::Result<()> {
        NatsBridge::start(self, move |to, message| post(to, message)).map_err(std::io::Error::other)
    }

    fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker {
        NatsBridge::share_limits(self, limits)
    }

    fn shutdown(&self) {
        NatsBridge::shutdown(self);
    }

    fn describe(&self) -> String {
        let config = self.config();
        format!(
            "NATS JetStream at {} (stream {}, subjects {}.topic.TOPIC)",
            config.server(),
            config.stream_name(),
            config.prefix,
        )
    }
}

impl Drop for NatsBridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One event loop's [`Broker`](tether_hub::Broker) over NATS, from
/// [`NatsBridge::broker`]: the broker every bus shares
/// ([`tether_bus::BusBroker`]) over this crate's [`NatsBus`].
///
/// It never blocks the loop: publishes go to the bridge's thread over a
/// bounded channel, follows and unfollows over another. Topics are
/// followed on demand ([`Broker::complete`](tether_hub::Broker::complete)
/// is false).
///
/// Besides `tether_broker_up` and `tether_broker_state{broker="nats"}`,
/// its metrics are `tether_nats_connected`, `tether_nats_reconnects_total`,
/// `tether_nats_errors_total`, `tether_nats_resyncs_total`,
/// `tether_nats_events_added_total`, `tether_nats_duplicates_total`,
/// `tether_nats_publishes_refused_total`, `tether_nats_events_read_total`,
/// `tether_nats_followed_topics` and `tether_nats_behind_checks_total`.
pub type NatsBroker = BusBroker<NatsBus>;
