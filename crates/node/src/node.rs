//! The node: set up from its configuration, bound, run.

use std::net::SocketAddr;

use tether_apps::{Demo, DemoLogin, Echo, HttpBackend, HubApp, HubSettings, HubShared};
use tether_hub::HubMessage;
use tether_hub_durable::{DurableBroker, DurableConfig};
use tether_server::{App, Cluster, Config, Handle, Handshake, Poster};

use crate::banner::{Announce, Banner};
use crate::bus::Bridge;
use crate::config::{Hooks, NodeApp, NodeConfig, Storage};
use crate::error::NodeError;
use crate::keys::KeyReload;
use crate::reload::{Hangup, Reloader};
use crate::tls::{Tls, TlsCert};

/// Why HTTP/3 is refused without a certificate.
#[cfg(feature = "tls")]
const HTTP3_NEEDS_CERTIFICATE: &str =
    "HTTP/3 needs TLS: QUIC carries TLS 1.3, and the node has no certificate (NodeConfig::tls)";

/// A node set up: its certificate loaded, its backend hooks, bus and
/// on-disk logs open, the hub's shared state made; not yet listening.
///
/// ```no_run
/// # use tether_node::{HubNode, NodeConfig};
/// let node = HubNode::new(NodeConfig::new("127.0.0.1:0".parse()?))?;
/// let listening = node.bind()?;
/// println!("on {}", listening.local_addr());
/// listening.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HubNode {
    server: Config,
    scheme: &'static str,
    handshake: Handshake,
    threads: usize,
    app: Built,
    handle_signals: bool,
    hooks: Vec<(&'static str, String)>,
    announce: Option<Announce>,
}

/// The application, made.
enum Built {
    Hub(HubParts),
    Demo(HubParts, Option<DemoLogin>),
    Echo,
}

/// What each loop's hub is made from.
struct HubParts {
    shared: HubShared,
    bridge: Option<Bridge>,
    durable: Vec<Option<DurableBroker>>,
    /// The outbox table to publish, if any.
    #[cfg(feature = "outbox")]
    outbox: Option<tether_outbox::OutboxConfig>,
    /// The Kafka topics to consume, if any.
    #[cfg(feature = "kafka")]
    kafka: Option<tether_kafka::KafkaConfig>,
}

/// The parts that run beside the loops once they are bound: the bus's
/// threads, the outbox and Kafka consumers'.
#[derive(Default)]
struct Beside {
    bridge: Option<Bridge>,
    #[cfg(feature = "outbox")]
    outbox: Option<tether_outbox::Consumer>,
    #[cfg(feature = "kafka")]
    kafka: Option<tether_kafka::Consumer>,
}

// The bus is taken out of the parts for binding (every loop's broker is
// made from it, and it then posts to the loops); it lives as long as the
// loops, in `Listening`.

impl HubParts {
    /// Loop `index`'s hub: on the bus, with its durable broker, or with
    /// the in-process broker.
    fn app(&mut self, bridge: Option<&Bridge>, index: usize) -> HubApp {
        match bridge {
            Some(bridge) => self.shared.app_with_broker(index, bridge.broker()),
            None => match self.durable.get_mut(index).and_then(Option::take) {
                Some(broker) => self.shared.app_with_broker(index, Box::new(broker)),
                None => self.shared.app(index),
            },
        }
    }
}

impl HubNode {
    /// Sets the node up: loads the certificate, starts the backend hooks'
    /// threads, sets the bus up (not started) or opens the on-disk logs
    /// (recovering them), and makes the hub's shared state. Logs what it
    /// set up.
    ///
    /// # Errors
    ///
    /// The certificate, the hooks, the bus or the logs could not be set
    /// up, or the configuration does not hold together.
    pub fn new(config: NodeConfig) -> Result<HubNode, NodeError> {
        let NodeConfig {
            mut server,
            handshake,
            threads,
            app,
            hub: mut settings,
            publish_token_source,
            key_files,
            tls,
            storage,
            bus,
            hooks,
            #[cfg(feature = "outbox")]
            outbox,
            #[cfg(feature = "kafka")]
            kafka,
            handle_signals,
            reload_settings,
            sighup,
            announce,
        } = config;
        // SIGHUP is taken first, so that one sent while the node is set up
        // reloads once it is, rather than ending the process.
        let cert_files = matches!(
            &tls,
            Some(Tls {
                cert: TlsCert::Files { .. },
                ..
            })
        );
        let wanted = handle_signals || reload_settings.is_some() || !key_files.is_empty() || cert_files;
        let hangup = match sighup {
            Some(hangup) => Some(hangup),
            None if wanted => Some(Hangup::install().map_err(NodeError::Signals)?),
            None => None,
        };
        #[cfg(feature = "tls")]
        let mut scheme = if server.tls.is_some() && server.tls_addr.is_none() {
            "https"
        } else {
            "http"
        };
        #[cfg(not(feature = "tls"))]
        let mut scheme = "http";
        let mut cert = None;
        if let Some(tls) = &tls {
            (scheme, cert) = crate::tls::configure(tls, &mut server).map_err(NodeError::Tls)?;
        }
        #[cfg(feature = "tls")]
        if server.http3 && server.tls.is_none() {
            return Err(NodeError::Config(HTTP3_NEEDS_CERTIFICATE.to_owned()));
        }
        let threads = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1);
        let hub = !matches!(app, NodeApp::Echo);
        let demo = matches!(app, NodeApp::Demo(_));
        let login = match app {
            NodeApp::Demo(Some(mut login)) => {
                login.secure = scheme == "https";
                settings = Demo::settings_with_login(settings, &login);
                Some(login)
            }
            NodeApp::Demo(None) => {
                settings = Demo::settings(settings);
                None
            }
            NodeApp::Hub | NodeApp::Echo => None,
        };
        let keys = match (&settings.auth, key_files.is_empty()) {
            (Some(auth), false) if hub => Some(KeyReload::new(auth.clone(), key_files)),
            _ => None,
        };
        let mut hook_urls = Vec::new();
        if hub && let Some(hooks) = hooks {
            hook_urls = crate::banner::hooks(&hooks.config);
            let backend = backend(hooks, threads).map_err(NodeError::Config)?;
            let named: Vec<String> = hook_urls
                .iter()
                .map(|(name, url)| format!("{name} {url}"))
                .collect();
            log::info!("hooks: the backend decides: {} ({backend:?})", named.join("; "));
            settings.backend = Some(std::sync::Arc::new(backend));
        }
        let handshake = settings.origin_policy(handshake);
        let app = if hub {
            let bridge = match bus {
                Some(bus) => Some(Bridge::new(bus, &settings).map_err(NodeError::Config)?),
                None => None,
            };
            let durable = match (&bridge, storage) {
                (None, Storage::Durable(durable)) => {
                    durable_brokers(&durable, &settings, threads).map_err(NodeError::Storage)?
                }
                (None, Storage::Memory) => {
                    log::info!("hub: events in memory only: a restart loses them");
                    Vec::new()
                }
                (Some(_), _) => Vec::new(),
            };
            announce_hub(&settings, publish_token_source.as_deref());
            announce_metrics(&settings, &server);
            let shared = HubShared::new(settings, threads);
            if let Some(bridge) = &bridge {
                bridge.share_limits(&shared);
                bridge.share_readiness(&shared);
            }
            let parts = HubParts {
                shared,
                bridge,
                durable,
                #[cfg(feature = "outbox")]
                outbox,
                #[cfg(feature = "kafka")]
                kafka,
            };
            if demo {
                Built::Demo(parts, login)
            } else {
                Built::Hub(parts)
            }
        } else {
            #[cfg(feature = "outbox")]
            if outbox.is_some() {
                log::warn!("outbox: the echo has no hub to publish the rows into: not started");
            }
            #[cfg(feature = "kafka")]
            if kafka.is_some() {
                log::warn!("kafka: the echo has no hub to publish the records into: not started");
            }
            Built::Echo
        };
        if let Some(hangup) = hangup {
            let hub = match &app {
                Built::Hub(parts) | Built::Demo(parts, _) => Some(parts.shared.clone()),
                Built::Echo => None,
            };
            let reloader = Reloader {
                settings: reload_settings,
                hub,
                keys,
                cert,
            };
            hangup.spawn(reloader).map_err(NodeError::Signals)?;
        }
        Ok(HubNode {
            server,
            scheme,
            handshake,
            threads,
            app,
            handle_signals,
            hooks: hook_urls,
            announce,
        })
    }

    /// The hub's state shared by the loops (to give it new settings, say
    /// on a reload: [`HubShared::reload`]); `None` for the echo.
    pub fn hub(&self) -> Option<&HubShared> {
        match &self.app {
            Built::Hub(parts) | Built::Demo(parts, _) => Some(&parts.shared),
            Built::Echo => None,
        }
    }

    /// Binds the port (and the TLS, QUIC and admin listeners the
    /// configuration asks for), installs the signal handlers, starts the
    /// bus, and prints where it listens (`tether listening on
    /// http://ADDR/ (...)`, the line scripts wait for).
    ///
    /// # Errors
    ///
    /// A port that cannot be bound, signal handlers that cannot be
    /// installed, a bus that cannot start.
    pub fn bind(self) -> Result<Listening, NodeError> {
        let HubNode {
            server,
            scheme,
            handshake,
            threads,
            app,
            handle_signals,
            hooks,
            announce,
        } = self;
        let setup = Setup {
            config: server,
            scheme,
            handshake,
            threads,
            handle_signals,
            hooks,
            announce,
        };
        let mut beside = Beside::default();
        let loops = match app {
            Built::Demo(mut parts, login) => {
                if let Some(login) = &login {
                    log::info!(
                        "demo: POST /demo/login gives tokens good for {} s, signed with {}",
                        login.ttl.as_secs(),
                        login.secret_origin()
                    );
                }
                let bridge = parts.bridge.take();
                let wanted = parts.beside();
                let make = |index| {
                    let hub = parts.app(bridge.as_ref(), index);
                    match &login {
                        Some(login) => Demo::with_login(hub, login.clone()),
                        None => Demo::with_hub(hub),
                    }
                };
                let bound = |poster| wanted.start(bridge.as_ref(), poster, &mut beside);
                let cluster = setup.bind(make, "open it in a browser", bound)?;
                beside.bridge = bridge;
                Loops::Demo(Box::new(cluster))
            }
            Built::Hub(mut parts) => {
                let bridge = parts.bridge.take();
                let wanted = parts.beside();
                let make = |index| parts.app(bridge.as_ref(), index);
                let bound = |poster| wanted.start(bridge.as_ref(), poster, &mut beside);
                let cluster = setup.bind(make, "the pub/sub hub at /topics", bound)?;
                beside.bridge = bridge;
                Loops::Hub(Box::new(cluster))
            }
            Built::Echo => Loops::Echo(Box::new(setup.bind(
                |_| Echo::everywhere(),
                "a WebSocket echo on every path",
                |_| Ok(()),
            )?)),
        };
        Ok(Listening {
            loops,
            _beside: beside,
        })
    }

    /// [`bind`](Self::bind), then [`Listening::run`]: serves until shut
    /// down (SIGINT or SIGTERM with `handle_signals`).
    ///
    /// # Errors
    ///
    /// Those of [`bind`](Self::bind) and [`Listening::run`].
    pub fn run(self) -> Result<(), NodeError> {
        self.bind()?.run()
    }
}

/// A node listening, not yet serving: [`run`](Listening::run) serves.
pub struct Listening {
    loops: Loops,
    /// The bus and the outbox and Kafka consumers, if any: they post to
    /// the loops while they run.
    _beside: Beside,
}

/// Boxed: the demo's loops are larger than the echo's.
enum Loops {
    Hub(Box<Cluster<HubApp>>),
    Demo(Box<Cluster<Demo>>),
    Echo(Box<Cluster<Echo>>),
}

impl Listening {
    /// The address the main port listens on (its port picked if 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.loops {
            Loops::Hub(c) => c.local_addr(),
            Loops::Demo(c) => c.local_addr(),
            Loops::Echo(c) => c.local_addr(),
        }
    }

    /// A handle on the loops, for another thread: its
    /// [`shutdown`](Handle::shutdown) stops the node gracefully.
    pub fn handle(&self) -> Handle {
        match &self.loops {
            Loops::Hub(c) => c.handle(),
            Loops::Demo(c) => c.handle(),
            Loops::Echo(c) => c.handle(),
        }
    }

    /// Runs every loop, the first on this thread, until all have shut
    /// down.
    ///
    /// # Errors
    ///
    /// The first error a loop hit (a loop that fails stops the others).
    pub fn run(self) -> Result<(), NodeError> {
        let Listening { loops, _beside } = self;
        match loops {
            Loops::Hub(c) => (*c).run(),
            Loops::Demo(c) => (*c).run(),
            Loops::Echo(c) => (*c).run(),
        }
        .map_err(NodeError::Serve)
    }
}

/// What binding needs, whatever the application.
struct Setup {
    config: Config,
    scheme: &'static str,
    handshake: Handshake,
    threads: usize,
    handle_signals: bool,
    hooks: Vec<(&'static str, String)>,
    announce: Option<Announce>,
}

impl Setup {
    /// Binds, calls `bound` with a poster to the loops (before they run),
    /// and says where it listens.
    fn bind<A: App + Send + 'static>(
        self,
        make_app: impl FnMut(usize) -> A,
        what: &'static str,
        bound: impl FnOnce(Poster<A::Post>) -> std::io::Result<()>,
    ) -> Result<Cluster<A>, NodeError> {
        let Setup {
            config,
            scheme,
            handshake,
            threads,
            handle_signals,
            hooks,
            announce,
        } = self;
        // A bind's error names the address and the listener it was for.
        let mut server = Cluster::bind(config, handshake, threads, make_app).map_err(NodeError::Serve)?;
        if handle_signals {
            server.handle_signals().map_err(NodeError::Serve)?;
        }
        bound(server.poster()).map_err(NodeError::Serve)?;
        #[cfg(feature = "tls")]
        let http3_url = server.quic_addr().map(|quic| format!("udp://{quic}/"));
        #[cfg(not(feature = "tls"))]
        let http3_url = None;
        let banner = Banner {
            url: format!("{scheme}://{}/", server.local_addr()),
            serves: what,
            tls_url: server.tls_addr().map(|tls| format!("https://{tls}/")),
            http3_url,
            metrics_url: server.admin_addr().map(|admin| format!("http://{admin}/metrics")),
            admin_url: server.admin_addr().map(|admin| format!("http://{admin}/admin")),
            hooks,
        };
        // Scripts wait for the first line (and read the port from it when
        // binding 0).
        match announce {
            Some(announce) => announce.say(&banner),
            None => {
                for line in banner.lines() {
                    println!("{line}");
                }
            }
        }
        log::info!(
            "{threads} event loop(s), at most {} connections each",
            server.max_connections()
        );
        Ok(server)
    }
}

/// What is to run beside the loops of a hub besides its bus (which is
/// taken out of its parts for binding: every loop's broker is made from
/// it, and it then posts to the loops).
struct Wanted {
    /// The outbox consumer's configuration, and the hub it publishes to.
    #[cfg(feature = "outbox")]
    outbox: Option<(tether_outbox::OutboxConfig, HubShared)>,
    /// The Kafka consumer's configuration, and the hub it publishes to.
    #[cfg(feature = "kafka")]
    kafka: Option<(tether_kafka::KafkaConfig, HubShared)>,
}

impl HubParts {
    fn beside(&mut self) -> Wanted {
        Wanted {
            #[cfg(feature = "outbox")]
            outbox: self.outbox.take().map(|config| (config, self.shared.clone())),
            #[cfg(feature = "kafka")]
            kafka: self.kafka.take().map(|config| (config, self.shared.clone())),
        }
    }
}

impl Wanted {
    /// Starts the bus's threads, if there is a bus, and the outbox and
    /// Kafka consumers, if there are, posting to the loops through
    /// `poster` (the consumers are kept in `beside`).
    fn start(
        self,
        bridge: Option<&Bridge>,
        poster: Poster<HubMessage>,
        beside: &mut Beside,
    ) -> std::io::Result<()> {
        if let Some(bridge) = bridge {
            bridge.start(poster.clone())?;
        }
        #[cfg(feature = "outbox")]
        if let Some((config, shared)) = self.outbox {
            beside.outbox = Some(crate::outbox::start(config, &shared, poster.clone())?);
        }
        #[cfg(feature = "kafka")]
        if let Some((config, shared)) = self.kafka {
            beside.kafka = Some(crate::kafka::start(config, &shared, poster.clone())?);
        }
        #[cfg(not(any(feature = "outbox", feature = "kafka")))]
        let _ = (self, beside);
        drop(poster);
        Ok(())
    }
}

/// The backend the hooks ask, started (its threads run until the process
/// ends); `loops` event loops ask it.
fn backend(hooks: Hooks, loops: usize) -> Result<HttpBackend, String> {
    let started = tether_hooks::Hooks::start(hooks.config).map_err(|e| format!("hooks: {e}"))?;
    Ok(HttpBackend::new(started, loops, hooks.queue)
        .forward_headers(&hooks.forward_headers)
        .forward_cookies(&hooks.forward_cookies))
}

/// Each loop's durable broker, its logs recovered.
fn durable_brokers(
    config: &DurableConfig,
    settings: &HubSettings,
    threads: usize,
) -> Result<Vec<Option<DurableBroker>>, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let brokers = DurableBroker::open_all(&settings.hub, config, threads, now_ms)?;
    log::info!(
        "hub: events kept in {} (fsync {:?})",
        config.dir.display(),
        config.fsync
    );
    Ok(brokers.into_iter().map(Some).collect())
}

/// Warns of what the metrics leave open without a metrics token: the
/// admin page's actions (refused: it is read-only), and `/metrics` (with
/// the admin page's counters) on an address other than the loopback,
/// where anyone who reaches it reads them.
fn announce_metrics(settings: &HubSettings, server: &Config) {
    if settings.metrics_token.is_some() {
        return;
    }
    let reached_by = |ip: std::net::IpAddr| match ip.is_unspecified() {
        true => format!("any address of this machine ({ip})"),
        false => ip.to_string(),
    };
    if let Some(admin) = server.admin_addr {
        log::warn!(
            "admin: the admin page is read-only: no metrics token is set (--metrics-token or \
             TETHER_METRICS_TOKEN), the one admin credential; its actions (publish, watch, \
             disconnect, revoke) are refused until one is"
        );
        if !admin.ip().is_loopback() {
            log::warn!(
                "metrics: /metrics and the admin page's counters are readable by anyone who reaches {} \
                 on port {}: no metrics token is set",
                reached_by(admin.ip()),
                admin.port()
            );
        }
    }
    if !settings.metrics_on_admin_listener && !server.addr.ip().is_loopback() {
        log::warn!(
            "metrics: /metrics on the main port is readable by anyone who reaches {} on port {}: \
             no metrics token is set, and /metrics has no listener of its own (--metrics-listen)",
            reached_by(server.addr.ip()),
            server.addr.port()
        );
    }
}

/// Says how publishing is set up, without the token itself.
fn announce_hub(settings: &HubSettings, token_source: Option<&str>) {
    match (token_source, &settings.publish_token) {
        (Some(source), _) => log::info!("hub: publishing over HTTP needs the bearer token (from {source})"),
        (None, Some(_)) => {
            log::info!("hub: publishing over HTTP needs the bearer token (from the configuration)")
        }
        (None, None) => log::warn!(
            "hub: no publish token: publishing over HTTP \
             and issuing tickets are refused with 403"
        ),
    }
    if settings.require_ticket {
        log::info!("hub: subscribing needs a ticket or a token");
    }
    if let Some(auth) = &settings.auth {
        log::info!(
            "hub: JSON Web Tokens verified with {} key(s), from Authorization: Bearer{}{}",
            auth.keys().keys().len(),
            auth.cookie
                .as_ref()
                .map_or(String::new(), |name| format!(", the cookie {name}")),
            if auth.query { " and ?token=" } else { "" }
        );
        if !auth.private.patterns().is_empty() {
            let patterns: Vec<String> = auth.private.patterns().iter().map(ToString::to_string).collect();
            log::info!(
                "hub: private topics (a token must grant them): {}",
                patterns.join(", ")
            );
        }
    }
    if !settings.trusted_origins.is_empty() {
        log::info!(
            "hub: browsers may connect from this server's own origin and {} (CORS with credentials); other origins get 403",
            settings.trusted_origins.join(", ")
        );
    }
}
