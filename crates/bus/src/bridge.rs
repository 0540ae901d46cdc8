//! A bridge's life as a node drives it, whatever the bus: set up, a
//! broker per event loop, started, the hub's limits shared, shut down.

use std::sync::Arc;

use tether_hub::{Broker, NodeLimits};

use crate::control::Post;
use crate::limits::Revoker;

/// The lifecycle of a bus bridge (`tether_redis::RedisBridge`,
/// `tether_nats::NatsBridge`), as a node uses it. Each crate sets its
/// bridge up with its own settings (`new`, which connects to nothing);
/// from then on a node holds it as a `Box<dyn BusBridge>` and never asks
/// which bus it is. Lifecycle only: publishes and deliveries go through
/// the per-loop [`Broker`]s, never through this trait.
///
/// The calls, in order: [`broker`](Self::broker) once per event loop;
/// [`share_limits`](Self::share_limits) (before or after start);
/// [`start`](Self::start) once the loops can be posted to;
/// [`shutdown`](Self::shutdown) (also on drop).
pub trait BusBridge: Send + Sync {
    /// One event loop's broker (make one per loop).
    fn broker(&self) -> Box<dyn Broker + Send>;

    /// Starts the bridge's threads, which hand messages to the loops
    /// through `post` (messages posted by one thread to one loop arrive
    /// in order).
    ///
    /// # Errors
    ///
    /// Started already, or a thread could not be spawned.
    fn start(&self, post: Post) -> std::io::Result<()>;

    /// Shares this node's connection counts per subject and its
    /// revocations with the other nodes, every
    /// [`LIMITS_PERIOD`](crate::LIMITS_PERIOD), in the one format of
    /// [`wire`](crate::wire): `limits` is told the others' counts and the
    /// revocations; the [`Revoker`] adds revocations for every node. A
    /// second call replaces `limits`.
    fn share_limits(&self, limits: Arc<dyn NodeLimits>) -> Revoker;

    /// Stops the threads and waits for them; the brokers report `Down`
    /// and refuse publishes from then on.
    fn shutdown(&self);

    /// Where the topics are shared, for the node's start log (a URL
    /// without its credentials, and how topics map onto the bus).
    fn describe(&self) -> String;
}
