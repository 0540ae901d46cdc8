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
mod limits;
mod link;
mod presence;
mod replica;
mod runtime;
mod shared;
mod stream;
mod topic;

use std::future::Future;
use std::sync::Arc;

use tether_bus::BusBroker;
use tether_bus::runtime::{Backend, RuntimeBridge, RuntimeBus, Settings, Stats};
use tether_hub::Publish;
use tokio::sync::mpsc;

pub use config::RabbitConfig;
pub use shared::Status;
pub use tether_bus::runtime::{Error, ErrorKind};
pub use tether_bus::{LIMITS_PERIOD, Revoker};

use shared::{Control, Post};

/// The bridge between a tether server's hub and RabbitMQ streams: its
/// settings, its thread, and the brokers of the event loops (the bridge
/// every bus on a tokio runtime of its own shares, over [`RabbitMq`]).
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
///
/// [`RabbitBridge::share_limits`] shares this node's connection counts
/// per subject (over the control exchange) and its revocations (in the
/// stream `PREFIX.revoked`) with the other nodes:
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
pub type RabbitBridge = RuntimeBridge<RabbitMq>;

/// What the loops' brokers and the bridge's thread share: the bus behind
/// every [`RabbitBroker`] (made by [`RabbitBridge`]).
pub type RabbitBus = RuntimeBus<RabbitMq>;

/// RabbitMQ streams, as the one bridge of the buses on a tokio runtime
/// runs them: its settings' checks, its status, and the thread's work
/// (this crate's `runtime` module).
#[derive(Debug)]
pub enum RabbitMq {}

impl Backend for RabbitMq {
    const KIND: &'static str = "rabbitmq";
    type Config = RabbitConfig;
    type Counters = ();
    type Status = Status;

    fn settings(config: &RabbitConfig) -> Settings<'_> {
        Settings {
            prefix: &config.prefix,
            max_queued_publishes: config.max_queued_publishes,
            presence_ttl: config.presence_ttl,
            request_timeout: config.request_timeout,
        }
    }

    fn check(config: &RabbitConfig) -> Result<(), &'static str> {
        if !config.url.trim().starts_with("amqp://")
            || config
                .urls()
                .iter()
                .any(|url| url.parse::<lapin::uri::AMQPUri>().is_err())
        {
            return Err("the URL must be amqp://[USER:PASS@]HOST[:PORT][,HOST[:PORT]...][/VHOST]");
        }
        if config.history_events == 0 || config.segment_bytes == 0 || config.stream_max_bytes == 0 {
            return Err("history_events, segment_bytes and stream_max_bytes must be at least 1");
        }
        Ok(())
    }

    fn status(stats: &Stats<RabbitMq>) -> Status {
        Status::of(stats)
    }

    fn write_metrics(status: &Status, out: &mut String) {
        status.write_metrics(out);
    }

    fn describe(config: &RabbitConfig) -> String {
        format!(
            "RabbitMQ streams at {} (a stream per topic, {}.topic.TOPIC)",
            config.server(),
            config.prefix,
        )
    }

    fn run(
        shared: Arc<RabbitBus>,
        post: Post,
        publishes: mpsc::Receiver<Publish>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> impl Future<Output = ()> {
        runtime::main(shared, post, publishes, control)
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
