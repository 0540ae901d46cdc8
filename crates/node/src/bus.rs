//! The bus between nodes (Redis, NATS or RabbitMQ): a broker per event loop, the
//! threads that feed the loops, and the cluster-wide limits.

use tether_apps::{HubSettings, HubShared};
use tether_hub::HubMessage;
use tether_server::Poster;

/// The bus that shares the hub's topics with other nodes.
// Made once, at start: the size of a variant costs nothing, and boxing
// it would change what embedders write.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Bus {
    /// Redis Streams, on one server (`redis://`), a Redis Cluster
    /// (`redis+cluster://`) or the master Redis Sentinel names
    /// (`redis+sentinel://`); over TLS with `rediss://`,
    /// `rediss+cluster://` and `rediss+sentinel://`.
    #[cfg(feature = "redis")]
    Redis(tether_redis::RedisConfig),
    /// NATS JetStream.
    #[cfg(feature = "nats")]
    Nats(tether_nats::NatsConfig),
    /// RabbitMQ streams (`amqp://`), a stream per topic.
    #[cfg(feature = "rabbitmq")]
    RabbitMq(tether_rabbitmq::RabbitConfig),
}

/// A bus set up (not started): whichever it is, driven through its
/// lifecycle ([`tether_bus::BusBridge`]).
pub(crate) struct Bridge(Box<dyn tether_bus::BusBridge>);

impl Bridge {
    /// Sets up the bus `bus` names, its backlog bounds those of
    /// `settings`, and says so in the log. The one place that asks which
    /// bus it is.
    pub(crate) fn new(bus: Bus, settings: &HubSettings) -> Result<Bridge, String> {
        let bridge = set_up(bus, settings)?;
        log::info!("hub: topics are shared through {}", bridge.describe());
        Ok(Bridge(bridge))
    }

    /// A broker for one event loop.
    pub(crate) fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        self.0.broker()
    }

    /// Starts the bridge's threads, which post to the loops through
    /// `poster`.
    pub(crate) fn start(&self, poster: Poster<HubMessage>) -> std::io::Result<()> {
        self.0
            .start(std::sync::Arc::new(move |to, message| poster.post(to, message)))
    }

    /// Shares the hub's connection counts per subject and its revocations
    /// with the other nodes (the bridge's thread writes and reads them
    /// every half second).
    pub(crate) fn share_limits(&self, shared: &HubShared) {
        let revoker = self
            .0
            .share_limits(std::sync::Arc::new(ClusterLimits(shared.clone())));
        shared.on_revoke(move |revocations| revoker.revoke(ClusterLimits::entries(revocations)));
    }
}

impl Bridge {
    /// Has `/readyz` report the replicas the bus has against those this
    /// node requires (`--redis-wait-replicas`), if it requires any. Until
    /// the bus has had them online since the node started, their lack is
    /// this node's own condition (its configuration asks what its bus
    /// does not give: a misconfiguration, or a replica not there yet) and
    /// takes it out of rotation; a rollout that sets the option against a
    /// Redis without its replica stops at its first pod. Once it has, a
    /// later lack is the bus's, every node's at once, as the bus going
    /// away is: reported, counted when the probe asks for shared
    /// conditions. The bus itself is the hub's check.
    pub(crate) fn share_readiness(&self, shared: &HubShared) {
        if let Some(watch) = self.0.replicas() {
            shared.add_readiness_check(move |report| {
                let replicas = watch();
                let (enough, found) = (replicas.enough(), replicas.describe());
                if replicas.seen {
                    report.shared("replicas", enough, &found);
                } else {
                    report.check("replicas", enough, &found);
                }
            });
        }
    }
}

/// The bridge of the bus `bus` names, its backlog bounded by `settings`.
fn set_up(bus: Bus, settings: &HubSettings) -> Result<Box<dyn tether_bus::BusBridge>, String> {
    let _ = settings;
    match bus {
        #[cfg(feature = "redis")]
        Bus::Redis(config) => tether_redis::RedisBridge::new(config.backlog(&settings.hub))
            .map(|bridge| Box::new(bridge) as Box<dyn tether_bus::BusBridge>)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "nats")]
        Bus::Nats(config) => tether_nats::NatsBridge::new(config.backlog(&settings.hub))
            .map(|bridge| Box::new(bridge) as Box<dyn tether_bus::BusBridge>)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "rabbitmq")]
        Bus::RabbitMq(config) => tether_rabbitmq::RabbitBridge::new(config.backlog(&settings.hub))
            .map(|bridge| Box::new(bridge) as Box<dyn tether_bus::BusBridge>)
            .map_err(|e| e.to_string()),
    }
}

/// The hub's side of what the nodes share about their users, whichever
/// bus carries it.
struct ClusterLimits(HubShared);

impl ClusterLimits {
    /// Revocations taken on this node's loops, as the bridges share them.
    fn entries(revocations: &[tether_apps::Revocation]) -> Vec<(String, u64)> {
        revocations.iter().map(|r| (r.entry(), r.until)).collect()
    }
}

impl tether_hub::NodeLimits for ClusterLimits {
    fn connections_here(&self) -> Vec<(std::sync::Arc<str>, usize)> {
        self.0.connections_here()
    }

    fn set_connections_elsewhere(&self, counts: std::collections::HashMap<std::sync::Arc<str>, usize>) {
        self.0.set_connections_elsewhere(counts);
    }

    fn revoked(&self, entries: Vec<(String, u64)>) {
        let revocations: Vec<tether_apps::Revocation> = entries
            .iter()
            .filter_map(|(entry, until)| tether_apps::Revocation::from_entry(entry, *until))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = self.0.revoke(&revocations, now) {
            log::warn!("hub: revocations from the bus: {e}");
        }
    }
}
