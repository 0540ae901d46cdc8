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
mod limits;
mod limits_sync;
mod presence;
mod presence_sync;
mod reader;
mod runtime;
mod shared;
mod subject;
mod topic;

use std::future::Future;
use std::sync::Arc;

use tether_bus::BusBroker;
use tether_bus::runtime::{Backend, RuntimeBridge, RuntimeBus, Settings, Stats};
use tether_hub::Publish;
use tokio::sync::mpsc;

pub use config::NatsConfig;
pub use shared::{NatsCounters, Status};
pub use subject::subject_of;
pub use tether_bus::runtime::{Error, ErrorKind};
pub use tether_bus::{LIMITS_PERIOD, Revoker};

use shared::{Control, Post};

/// The bridge between a tether server's hub and NATS JetStream: its
/// settings, its thread, and the brokers of the event loops (the bridge
/// every bus on a tokio runtime of its own shares, over [`Nats`]).
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
///
/// [`NatsBridge::share_limits`] shares this node's connection counts per
/// subject and its revocations with the other nodes through two
/// JetStream key-value buckets (`STREAM_conns`, `STREAM_revoked`; the
/// latter needs NATS 2.11 or later, for its per-message times to live):
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
pub type NatsBridge = RuntimeBridge<Nats>;

/// What the loops' brokers and the bridge's thread share: the bus behind
/// every [`NatsBroker`] (made by [`NatsBridge`]).
pub type NatsBus = RuntimeBus<Nats>;

/// NATS JetStream, as the one bridge of the buses on a tokio runtime
/// runs it: its settings' checks, its status, and the thread's work
/// (this crate's `runtime` module).
#[derive(Debug)]
pub enum Nats {}

impl Backend for Nats {
    const KIND: &'static str = "nats";
    type Config = NatsConfig;
    type Counters = NatsCounters;
    type Status = Status;

    fn settings(config: &NatsConfig) -> Settings<'_> {
        Settings {
            prefix: &config.prefix,
            max_queued_publishes: config.max_queued_publishes,
            presence_ttl: config.presence_ttl,
            request_timeout: config.request_timeout,
        }
    }

    fn check(config: &NatsConfig) -> Result<(), &'static str> {
        if runtime::servers(&config.url).is_err()
            || !config.url.split(',').all(|u| u.trim().starts_with("nats://"))
        {
            return Err("the URL must be nats://HOST:PORT[,nats://HOST:PORT...]");
        }
        Ok(())
    }

    fn status(stats: &Stats<Nats>) -> Status {
        Status::of(stats)
    }

    fn write_metrics(status: &Status, out: &mut String) {
        status.write_metrics(out);
    }

    fn describe(config: &NatsConfig) -> String {
        format!(
            "NATS JetStream at {} (stream {}, subjects {}.topic.TOPIC)",
            config.server(),
            config.stream_name(),
            config.prefix,
        )
    }

    fn run(
        shared: Arc<NatsBus>,
        post: Post,
        publishes: mpsc::Receiver<Publish>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> impl Future<Output = ()> {
        runtime::main(shared, post, publishes, control)
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
