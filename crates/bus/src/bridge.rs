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

    /// The replicas this node requires of the bus before it acknowledges
    /// a publish, against those the bus has, as its threads last counted
    /// them (never blocking): what the node's readiness reports. `None`
    /// (the default) when the node requires none, or the bus replicates
    /// by itself before it acknowledges (NATS JetStream).
    fn replicas(&self) -> Option<ReplicaWatch> {
        None
    }
}

/// Reads the replicas a bus has against those a node requires, as last
/// counted (cheap: an atomic load or two).
pub type ReplicaWatch = Arc<dyn Fn() -> Replicas + Send + Sync>;

/// The replicas a node requires of its bus, and what the bus has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    /// Replicas each publish must reach before it is acknowledged.
    pub required: usize,
    /// What the bus has.
    pub online: ReplicaCount,
    /// Whether the bus has had them online (counted at least `required`)
    /// since the node started. Until it has, their lack is this node's
    /// own condition: its configuration asks what its bus may never have
    /// given (a misconfiguration, or a replica not there yet). Once it
    /// has, a later lack is the bus's, shared by every node on it, as
    /// the bus going away is.
    pub seen: bool,
}

/// How many replicas the bus has, as far as the node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaCount {
    /// Counted on the current connection (on a cluster, the fewest of any
    /// primary's).
    Online(usize),
    /// Connected, not counted yet.
    NotCounted,
    /// The bus refuses to say (an ACL that forbids the command): the
    /// publishes still wait for the replicas, the count is unknown.
    Refused,
    /// The bus is not connected: nothing to count.
    Away,
}

impl Replicas {
    /// Whether the node can acknowledge publishes as configured, as far
    /// as it knows: true unless the bus, connected, has fewer replicas
    /// than it requires or has not been counted yet. (Away, the bus's
    /// own check says so; refused, only the publishes can tell.)
    pub fn enough(&self) -> bool {
        match self.online {
            ReplicaCount::Online(online) => online >= self.required,
            ReplicaCount::NotCounted => false,
            ReplicaCount::Refused | ReplicaCount::Away => true,
        }
    }

    /// What readiness says of them (one line).
    pub fn describe(&self) -> String {
        let found = self.found();
        if self.seen || self.enough() {
            found
        } else {
            format!("{found} (not online since this node started)")
        }
    }

    fn found(&self) -> String {
        let required = self.required;
        match self.online {
            ReplicaCount::Online(online) if online >= required => {
                format!("{online} online, {required} required")
            }
            ReplicaCount::Online(online) => {
                format!("{online} online, {required} required: publishes are refused (503) until they are")
            }
            ReplicaCount::NotCounted => format!("not counted yet, {required} required"),
            ReplicaCount::Refused => format!(
                "not countable (the bus refuses to say), {required} required: each publish waits for them"
            ),
            ReplicaCount::Away => format!("not countable while the bus is away, {required} required"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_replicas_and_what_readiness_says() {
        let replicas = |online| Replicas {
            required: 1,
            online,
            seen: true,
        };
        assert!(replicas(ReplicaCount::Online(1)).enough());
        assert!(replicas(ReplicaCount::Online(2)).enough());
        assert!(!replicas(ReplicaCount::Online(0)).enough());
        assert!(!replicas(ReplicaCount::NotCounted).enough());
        assert!(replicas(ReplicaCount::Away).enough());
        assert!(replicas(ReplicaCount::Refused).enough());
        assert_eq!(
            replicas(ReplicaCount::Online(1)).describe(),
            "1 online, 1 required"
        );
        assert!(
            replicas(ReplicaCount::Online(0))
                .describe()
                .starts_with("0 online, 1 required: publishes are refused (503)")
        );
        let never = Replicas {
            required: 1,
            online: ReplicaCount::Online(0),
            seen: false,
        };
        assert!(
            never
                .describe()
                .ends_with("until they are (not online since this node started)")
        );
    }
}
