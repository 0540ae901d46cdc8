//! What every loop of a hub shares.

use std::fmt;
use std::sync::Arc;

use tether_hub::{Broker, LocalBroker};

use super::HubApp;
use super::access::Access;
use super::metrics::HubStats;
use super::settings::HubSettings;

/// What every loop's [`HubApp`] shares: the settings, the tickets (a
/// ticket issued on one loop is redeemed on whichever loop the client
/// lands; the lock is taken only to issue and redeem) and the counters.
///
/// ```no_run
/// use tether_apps::{HubSettings, HubShared};
/// use tether_server::{Cluster, Config, Handshake};
///
/// let mut settings = HubSettings::default();
/// settings.publish_token = Some("s3cret".into());
/// let loops = 4;
/// let shared = HubShared::new(settings, loops);
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let handshake = shared.settings().origin_policy(Handshake::new());
/// let cluster = Cluster::bind(config, handshake, loops, |index| shared.app(index))?;
/// cluster.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct HubShared {
    pub(super) settings: Arc<HubSettings>,
    pub(super) stats: Arc<[Arc<HubStats>]>,
    /// The brokers of all loops share its topic count.
    pub(super) local: Arc<LocalBroker>,
    /// Credentials, tickets and their holders.
    pub(super) access: Access,
    /// Random, made at start: names anonymous members apart from other
    /// processes'.
    pub(super) node: Arc<str>,
}

impl fmt::Debug for HubShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubShared")
            .field("settings", &self.settings)
            .field("loops", &self.stats.len())
            .finish_non_exhaustive()
    }
}

impl HubShared {
    /// The shared part of a hub of `loops` event loops.
    pub fn new(settings: HubSettings, loops: usize) -> HubShared {
        let settings = Arc::new(settings);
        HubShared {
            stats: (0..loops.max(1)).map(|_| Arc::default()).collect(),
            local: Arc::new(LocalBroker::new(settings.hub.clone())),
            access: Access::new(settings.clone()),
            settings,
            node: node_tag(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The application for loop `loop_index`, with the in-process broker.
    pub fn app(&self, loop_index: usize) -> HubApp {
        self.app_with_broker(loop_index, Box::new(self.local.sibling()))
    }

    /// The application for loop `loop_index`, with another broker (one
    /// value per loop; see [`tether_hub::Broker`] for the contract).
    pub fn app_with_broker(&self, loop_index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        HubApp::on_loop(self.clone(), loop_index, broker)
    }
}

/// Eight random hex digits (or, without randomness, the process id).
fn node_tag() -> Arc<str> {
    let mut random = [0u8; 4];
    let tag = match getrandom::fill(&mut random) {
        Ok(()) => u32::from_be_bytes(random),
        Err(_) => std::process::id(),
    };
    Arc::from(format!("{tag:08x}"))
}
