//! What every loop of a hub shares.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tether_hub::LocalBroker;

use super::access::Access;
use super::access::Revocation;
use super::external::HubPublisher;
use super::metrics::HubStats;
use super::settings::HubSettings;

/// What every loop's [`HubApp`](crate::HubApp) shares: the settings, the tickets (a
/// ticket issued on one loop is redeemed on whichever loop the client
/// lands; the lock is taken only to issue and redeem) and the counters.
///
/// ```no_run
/// use tether_hub_app::{HubSettings, HubShared};
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
    /// The settings as [`HubShared::reload`] last left them; each loop
    /// catches up with them ([`HubShared::catch_up`]).
    current: Arc<Current>,
    /// Told of the revocations the server API takes, to share them with
    /// the other nodes.
    revocation_sink: Arc<Mutex<Option<RevocationSink>>>,
    /// Checks `/readyz` reports beside the hub's own.
    readiness_checks: Arc<Mutex<Vec<ReadinessCheck>>>,
    /// Writers of `/metrics` lines beside the hub's own.
    metrics_writers: Arc<Mutex<Vec<MetricsWriter>>>,
    /// The topics whose current value a loop of this node has asked the
    /// backend for and not had the answer of: one question per topic at
    /// a time, whichever loop its subscribers are on.
    pub(super) values_asked: Arc<Mutex<HashSet<Arc<str>>>>,
}

/// What [`HubShared::add_metrics`] is given.
type MetricsWriter = Arc<dyn Fn(&mut String) + Send + Sync>;

/// What [`HubShared::add_readiness_check`] is given.
type ReadinessCheck = Arc<dyn Fn(&mut tether_server::Readiness) + Send + Sync>;

/// What [`HubShared::on_revoke`] is given.
type RevocationSink = Box<dyn Fn(&[Revocation]) + Send + Sync>;

/// The newest settings, and how many times they were replaced.
#[derive(Debug)]
struct Current {
    settings: Mutex<Arc<HubSettings>>,
    generation: AtomicU64,
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
    /// A publisher into this hub from outside its loops, which `poster`
    /// (the server's, [`Cluster::poster`](tether_server::Cluster::poster))
    /// posts to.
    pub fn publisher(&self, poster: tether_server::Poster<tether_hub::HubMessage>) -> HubPublisher {
        HubPublisher::new(poster, &self.settings)
    }

    /// The shared part of a hub of `loops` event loops.
    pub fn new(settings: HubSettings, loops: usize) -> HubShared {
        let settings = Arc::new(settings);
        HubShared {
            stats: (0..loops.max(1)).map(|_| Arc::default()).collect(),
            local: Arc::new(LocalBroker::new(settings.hub.clone())),
            access: Access::new(settings.clone()),
            current: Arc::new(Current {
                settings: Mutex::new(settings.clone()),
                generation: AtomicU64::new(0),
            }),
            settings,
            node: node_tag(),
            revocation_sink: Arc::default(),
            readiness_checks: Arc::default(),
            metrics_writers: Arc::default(),
            values_asked: Arc::default(),
        }
    }

    /// Revokes tokens on every loop of this node, as `POST /api/revoke`
    /// does, but without telling `on_revoke`: for revocations heard of
    /// from another node (or read at start). Each loop ends its
    /// connections they revoke on its next tick, within a second.
    /// Entries that expired by `now` (Unix seconds) are left out.
    ///
    /// # Errors
    ///
    /// The list holds [`MAX_REVOCATIONS`](crate::MAX_REVOCATIONS) entries
    /// that have not expired: those that fit are taken.
    pub fn revoke(&self, revocations: &[Revocation], now: u64) -> Result<(), RevocationListFull> {
        self.access
            .revocations
            .add(revocations, now)
            .map_err(|_| RevocationListFull)
    }

    /// The revocations in force at `now` (Unix seconds).
    pub fn revocations(&self, now: u64) -> Vec<Revocation> {
        self.access.revocations.entries(now)
    }

    /// Calls `sink` with the revocations `POST /api/revoke` takes on any
    /// loop of this node (from that loop, so it must not block: hand them
    /// to a thread that shares them with the other nodes).
    pub fn on_revoke(&self, sink: impl Fn(&[Revocation]) + Send + Sync + 'static) {
        *self.revocation_sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(sink));
    }

    /// Adds a check every loop reports when `GET /readyz` asks it, after
    /// the hub's own (`bus`): for what the hub cannot see by itself, as
    /// the replicas its bus has against those the node requires. `check`
    /// runs on the loop that answers the probe: it must not block (read
    /// what a thread of its own last found).
    pub fn add_readiness_check(&self, check: impl Fn(&mut tether_server::Readiness) + Send + Sync + 'static) {
        let mut checks = self.readiness_checks.lock().unwrap_or_else(|e| e.into_inner());
        checks.push(Arc::new(check));
    }

    /// Reports the checks [`HubShared::add_readiness_check`] added.
    pub(super) fn report_readiness(&self, report: &mut tether_server::Readiness) {
        // Cloned out, so that no check runs under the lock.
        let checks = self
            .readiness_checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for check in checks {
            check(report);
        }
    }

    /// Adds lines to `/metrics`, after the hub's own: for a part of the
    /// node the hub does not see, as the outbox consumer. `write` appends
    /// metrics in the Prometheus text format (their `# HELP` and `# TYPE`
    /// lines with them); it runs on the loop that answers the scrape, so
    /// it must not block (read counters a thread of its own keeps).
    pub fn add_metrics(&self, write: impl Fn(&mut String) + Send + Sync + 'static) {
        let mut writers = self.metrics_writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.push(Arc::new(write));
    }

    /// Writes the lines of [`HubShared::add_metrics`]'s writers.
    pub(super) fn write_metrics(&self, out: &mut String) {
        // Cloned out, so that no writer runs under the lock.
        let writers = self
            .metrics_writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for write in writers {
            write(out);
        }
    }

    /// Tells the sink of [`HubShared::on_revoke`], if there is one.
    pub(super) fn share_revocations(&self, revocations: &[Revocation]) {
        if let Some(sink) = &*self.revocation_sink.lock().unwrap_or_else(|e| e.into_inner()) {
            sink(revocations);
        }
    }

    /// The WebSockets and event streams each subject has open on this
    /// node (over every loop): what a cluster shares so that each node
    /// counts the others' against
    /// [`HubSettings::max_connections_per_subject`].
    pub fn connections_here(&self) -> Vec<(Arc<str>, usize)> {
        self.access.connections.snapshot()
    }

    /// The other nodes' connections by subject, as last heard of:
    /// counted with this node's own against
    /// [`HubSettings::max_connections_per_subject`] until replaced.
    pub fn set_connections_elsewhere(&self, elsewhere: std::collections::HashMap<Arc<str>, usize>) {
        self.access.connections.set_elsewhere(elsewhere);
    }

    /// The settings this value reads (those it was made with, or, for a
    /// loop's, the newest it has caught up with).
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The newest settings, as [`HubShared::reload`] last left them.
    pub fn current_settings(&self) -> Arc<HubSettings> {
        self.current
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the settings of every loop of the running hub, from the
    /// next request, message or tick each loop handles (what connections
    /// already open were granted stays theirs). What cannot change while
    /// the hub runs is kept as it is, and named in the answer (option
    /// names, for a log): the hub's bounds and namespaces' backlogs
    /// (`hub`, which the brokers hold), the trusted origins (the
    /// WebSocket handshake's origin policy is fixed at start), the
    /// metrics' listener, and whether tokens are verified at all (their
    /// keys are reloaded on their own, [`HubAuth::set_keys`]; the other
    /// token options are taken).
    ///
    /// [`HubAuth::set_keys`]: crate::HubAuth::set_keys
    pub fn reload(&self, mut new: HubSettings) -> Vec<&'static str> {
        let mut lock = self.current.settings.lock().unwrap_or_else(|e| e.into_inner());
        let old = lock.clone();
        let mut kept = Vec::new();
        if new.hub != old.hub {
            kept.push("the backlog, event and topic limits (backlog-*, max-event-size, max-topics, topic-ttl, namespaces' backlog-*, topic-ttl and durable)");
        }
        new.hub = old.hub.clone();
        if new.trusted_origins != old.trusted_origins {
            kept.push("trusted-origin");
            new.trusted_origins = old.trusted_origins.clone();
        }
        if new.metrics_on_admin_listener != old.metrics_on_admin_listener {
            kept.push("metrics-listen");
            new.metrics_on_admin_listener = old.metrics_on_admin_listener;
        }
        new.auth = match (&old.auth, new.auth.take()) {
            // The keys stay shared with whatever reloads them.
            (Some(old), Some(new)) => {
                let mut auth = old.clone();
                auth.validation = new.validation;
                auth.private = new.private;
                auth.cookie = new.cookie;
                auth.query = new.query;
                auth.auth_timeout = new.auth_timeout;
                Some(auth)
            }
            (None, None) => None,
            (old, _) => {
                kept.push("the token keys (jwt-*: whether tokens are verified at all)");
                old.clone()
            }
        };
        // The backend's threads and connections stay (its options take a
        // restart).
        new.backend = old.backend.clone();
        self.access.set_ticket_ttl(new.ticket_ttl);
        *lock = Arc::new(new);
        self.current.generation.fetch_add(1, Ordering::Release);
        kept
    }

    /// Takes the newest settings if they were replaced since this value
    /// last looked: one atomic load when they were not.
    pub(super) fn catch_up(&mut self, seen: &mut u64) {
        let generation = self.current.generation.load(Ordering::Acquire);
        if generation == *seen {
            return;
        }
        let settings = self.current_settings();
        self.access.set_settings(settings.clone());
        self.settings = settings;
        *seen = generation;
    }
}

/// [`HubShared::revoke`] could not take every entry: the revocation list
/// is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationListFull;

impl fmt::Display for RevocationListFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the revocation list is full")
    }
}

impl std::error::Error for RevocationListFull {}

/// Eight random hex digits (or, without randomness, the process id).
fn node_tag() -> Arc<str> {
    let mut random = [0u8; 4];
    let tag = match getrandom::fill(&mut random) {
        Ok(()) => u32::from_be_bytes(random),
        Err(_) => std::process::id(),
    };
    Arc::from(format!("{tag:08x}"))
}
