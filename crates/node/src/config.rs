//! What a node is made of: a plain Rust configuration, no file format.

use std::net::SocketAddr;
use std::path::PathBuf;

use tether_apps::{DemoLogin, HubSettings};
use tether_hub_durable::DurableConfig;
use tether_server::{Config, Handshake};

use crate::banner::Announce;
use crate::bus::Bus;
use crate::keys::KeyFiles;
use crate::reload::{Hangup, SettingsReload};
use crate::tls::Tls;

/// The application a node serves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NodeApp {
    /// The pub/sub hub alone: `/topics/...`, `/tickets`, `/api/...`,
    /// `/metrics`.
    Hub,
    /// The demo page at `/`, `/echo` and the hub (with a clock topic and
    /// `chat.*` topics); with a sign-in (`POST /demo/login`) whose tokens
    /// the hub verifies, if a [`DemoLogin`] is given.
    Demo(Option<DemoLogin>),
    /// A WebSocket echo on every path (what Autobahn|Testsuite runs
    /// against); no hub.
    Echo,
}

/// Where the hub keeps its events.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Storage {
    /// In memory only: a restart loses them.
    Memory,
    /// In an append-only log per event loop in a directory, recovered at
    /// start, so that clients resume with their Last-Event-ID across a
    /// restart.
    Durable(DurableConfig),
}

/// Asking the application's backend over HTTP (connect, subscribe,
/// publish, refresh): the hooks, and how the hub hands them requests.
#[derive(Clone, Debug)]
pub struct Hooks {
    /// The hooks' URLs, timeouts and workers.
    pub config: tether_hooks::Config,
    /// Most questions outstanding from each event loop; more are answered
    /// 503 at once.
    pub queue: usize,
    /// Request header fields the connect hook is given (lower case).
    pub forward_headers: Vec<String>,
    /// Cookies the connect hook is given.
    pub forward_cookies: Vec<String>,
}

impl Hooks {
    /// The hooks of `config`, with the default queue and nothing
    /// forwarded.
    pub fn new(config: tether_hooks::Config) -> Hooks {
        Hooks {
            config,
            queue: tether_apps::DEFAULT_PER_LOOP,
            forward_headers: Vec::new(),
            forward_cookies: Vec::new(),
        }
    }
}

/// Everything a [`HubNode`](crate::HubNode) is made of. Build one with
/// [`NodeConfig::new`] and set the fields that differ from the defaults.
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The server: the address, the limits, HTTP/2 and HTTP/3, the admin
    /// listener (`admin_addr`, where the hub's `/metrics` and `/admin`
    /// go when [`HubSettings::metrics_on_admin_listener`] says so).
    /// Its `tls` may be set directly too; [`NodeConfig::tls`] loads it
    /// from files.
    pub server: Config,
    /// The WebSocket handshake (permessage-deflate, say); the hub's
    /// origin policy is added to it.
    pub handshake: Handshake,
    /// Event loops, one thread each, sharing the port; `None`: the number
    /// of CPUs.
    pub threads: Option<usize>,
    /// The application.
    pub app: NodeApp,
    /// The hub's settings (also the origin policy of the echo).
    pub hub: HubSettings,
    /// Where the publish token came from, for the start log (never the
    /// token); `None` with a token: "the configuration".
    pub publish_token_source: Option<String>,
    /// The token key files behind `hub.auth`, read again on each SIGHUP.
    pub key_files: KeyFiles,
    /// TLS, loaded from files (and read again on each SIGHUP) or made.
    pub tls: Option<Tls>,
    /// Where the hub keeps its events (when no bus keeps them).
    pub storage: Storage,
    /// The bus shared with other nodes, if any.
    pub bus: Option<Bus>,
    /// The application's backend, if it decides.
    pub hooks: Option<Hooks>,
    /// A PostgreSQL outbox table whose rows the node publishes into the
    /// hub, if any (one node at a time per table; the others stand by).
    #[cfg(feature = "outbox")]
    pub outbox: Option<tether_outbox::OutboxConfig>,
    /// Kafka topics whose records the node publishes into the hub, if
    /// any.
    #[cfg(feature = "kafka")]
    pub kafka: Option<tether_kafka::KafkaConfig>,
    /// SIGINT and SIGTERM shut the node down gracefully, and SIGHUP
    /// reloads (an embedder with signal handling of its own turns this
    /// off and uses [`Listening::handle`](crate::Listening::handle); SIGHUP
    /// is still taken if there is something to reload: settings, key
    /// files or certificate files).
    pub handle_signals: bool,
    /// How SIGHUP reads the settings again, before it reads the key files
    /// and the certificate again; `None`: the settings stay as they are.
    pub reload_settings: Option<SettingsReload>,
    /// SIGHUP, if the caller took it before it made this configuration
    /// (so that one sent meanwhile is kept, not fatal); `None`: the node
    /// takes it when it is set up.
    pub sighup: Option<Hangup>,
    /// How the node says where it listens once it is bound; `None`:
    /// [`Banner::lines`](crate::Banner::lines) on standard output.
    pub announce: Option<Announce>,
}

impl NodeConfig {
    /// The hub on `addr`, events in memory, the defaults elsewhere.
    pub fn new(addr: SocketAddr) -> NodeConfig {
        NodeConfig {
            server: Config::new(addr),
            handshake: Handshake::new(),
            threads: None,
            app: NodeApp::Hub,
            hub: HubSettings::default(),
            publish_token_source: None,
            key_files: KeyFiles::new(),
            tls: None,
            storage: Storage::Memory,
            bus: None,
            hooks: None,
            #[cfg(feature = "outbox")]
            outbox: None,
            #[cfg(feature = "kafka")]
            kafka: None,
            handle_signals: true,
            reload_settings: None,
            sighup: None,
            announce: None,
        }
    }

    /// The events kept in an on-disk log in `dir`, with the default
    /// fsync and no retention limit.
    pub fn durable(mut self, dir: impl Into<PathBuf>) -> NodeConfig {
        self.storage = Storage::Durable(DurableConfig::new(dir.into()));
        self
    }
}
