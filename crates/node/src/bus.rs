//! The bus between nodes (Redis or NATS): a broker per event loop, the
//! threads that feed the loops, and the cluster-wide limits.

use tether_apps::{HubSettings, HubShared};
use tether_hub::HubMessage;
use tether_server::Poster;

/// The bus that shares the hub's topics with other nodes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Bus {
    /// Redis Streams, on one server (`redis://`) or a Redis Cluster
    /// (`redis+cluster://`).
    #[cfg(feature = "redis")]
    Redis(tether_redis::RedisConfig),
    /// NATS JetStream.
    #[cfg(feature = "nats")]
    Nats(tether_nats::NatsConfig),
}

/// A bus set up (not started).
pub(crate) enum Bridge {
    #[cfg(feature = "redis")]
    Redis(tether_redis::RedisBridge),
    #[cfg(feature = "nats")]
    Nats(tether_nats::NatsBridge),
}

impl Bridge {
    /// Sets up the bus `bus` names, its backlog bounds those of
    /// `settings`, and says so in the log.
    pub(crate) fn new(bus: Bus, settings: &HubSettings) -> Result<Bridge, String> {
        let _ = settings;
        match bus {
            #[cfg(feature = "redis")]
            Bus::Redis(config) => redis(config, settings),
            #[cfg(feature = "nats")]
            Bus::Nats(config) => nats(config, settings),
        }
    }

    /// A broker for one event loop.
    pub(crate) fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        match *self {
            #[cfg(feature = "redis")]
            Bridge::Redis(ref bridge) => Box::new(bridge.broker()),
            #[cfg(feature = "nats")]
            Bridge::Nats(ref bridge) => Box::new(bridge.broker()),
        }
    }

    /// Starts the bridge's threads, which post to the loops through
    /// `poster`.
    pub(crate) fn start(&self, poster: Poster<HubMessage>) -> std::io::Result<()> {
        let post = move |to, message| poster.post(to, message);
        let _ = &post;
        match *self {
            #[cfg(feature = "redis")]
            Bridge::Redis(ref bridge) => bridge.start(post).map_err(std::io::Error::other),
            #[cfg(feature = "nats")]
            Bridge::Nats(ref bridge) => bridge.start(post).map_err(std::io::Error::other),
        }
    }

    /// Shares the hub's connection counts per subject and its revocations
    /// with the other nodes (the bridge's thread writes and reads them
    /// every half second).
    pub(crate) fn share_limits(&self, shared: &HubShared) {
        let _ = shared;
        match *self {
            #[cfg(feature = "redis")]
            Bridge::Redis(ref bridge) => {
                let revoker = bridge.share_limits(std::sync::Arc::new(ClusterLimits(shared.clone())));
                shared.on_revoke(move |revocations| revoker.revoke(ClusterLimits::entries(revocations)));
            }
            #[cfg(feature = "nats")]
            Bridge::Nats(ref bridge) => {
                let revoker = bridge.share_limits(std::sync::Arc::new(ClusterLimits(shared.clone())));
                shared.on_revoke(move |revocations| revoker.revoke(ClusterLimits::entries(revocations)));
            }
        }
    }
}

#[cfg(feature = "nats")]
fn nats(config: tether_nats::NatsConfig, settings: &HubSettings) -> Result<Bridge, String> {
    let bridge = tether_nats::NatsBridge::new(config.backlog(&settings.hub)).map_err(|e| e.to_string())?;
    log::info!(
        "hub: topics are shared through NATS JetStream at {} (stream {}, subjects {}.topic.TOPIC)",
        bridge.config().server(),
        bridge.config().stream_name(),
        bridge.config().prefix,
    );
    Ok(Bridge::Nats(bridge))
}

#[cfg(feature = "redis")]
fn redis(config: tether_redis::RedisConfig, settings: &HubSettings) -> Result<Bridge, String> {
    let cluster = config.url.starts_with("redis+cluster://");
    let bridge = tether_redis::RedisBridge::new(config.backlog(&settings.hub)).map_err(|e| e.to_string())?;
    let layout = match (cluster, bridge.config().cluster_partitions) {
        (false, _) => String::new(),
        (true, 0) => ", a slot per topic".to_owned(),
        (true, n) => format!(", {n} partitions"),
    };
    log::info!(
        "hub: topics are shared through Redis{} at {} (topic news is the stream {}{layout})",
        if cluster { " Cluster" } else { "" },
        bridge.config().server(),
        bridge.stream_key("news"),
    );
    Ok(Bridge::Redis(bridge))
}

/// The hub's side of what the nodes share about their users, whichever
/// bus carries it.
#[cfg(any(feature = "redis", feature = "nats"))]
struct ClusterLimits(HubShared);

#[cfg(any(feature = "redis", feature = "nats"))]
impl ClusterLimits {
    /// Revocations taken on this node's loops, as the bridges share them.
    fn entries(revocations: &[tether_apps::Revocation]) -> Vec<(String, u64)> {
        revocations.iter().map(|r| (r.entry(), r.until)).collect()
    }
}

#[cfg(any(feature = "redis", feature = "nats"))]
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
