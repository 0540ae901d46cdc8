//! `tether serve`: runs the server with the demo (or the hub alone, or the
//! bare echo).

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use tether_apps::{
    DEFAULT_TOKEN_COOKIE, Demo, DemoLogin, Echo, HttpBackend, HubApp, HubAuth, HubSettings, HubShared,
    PublishRate, UnknownNamespace,
};
use tether_auth::{KeyFile, Keys, Private, Validation};
use tether_hub::HubMessage;
use tether_hub_durable::{DurableBroker, DurableConfig, Fsync};
use tether_server::{App, Cluster, Config, Handshake, Poster};

use crate::namespace::{NamespaceArg, parse_namespace};
use crate::{config, logger, namespace, reload};

/// Which application to serve.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum AppChoice {
    /// The demo page at /, /echo and the hub (with a clock topic and chat.* topics).
    Demo,
    /// The pub/sub hub alone: /topics/..., /tickets, /metrics.
    Hub,
    /// A WebSocket echo on every path (what Autobahn|Testsuite runs against).
    Echo,
}

/// The environment variable that can hold the publish token (better than
/// the command line, which other users of the machine can see).
const TOKEN_VARIABLE: &str = "TETHER_PUBLISH_TOKEN";

/// The environment variable that can hold the metrics token.
const METRICS_TOKEN_VARIABLE: &str = "TETHER_METRICS_TOKEN";

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Secret, String> {
        if s.is_empty() {
            return Err("the token is empty".to_owned());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// Options of `tether serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Read options from this TOML file, each key an option's long name:
    /// `threads = 2`, `data-dir = "/var/lib/tether"`, `memory = true`,
    /// `trusted-origin = ["https://app.example.com"]`. The command line and
    /// the TETHER_<NAME> variables win over it; an option that repeats,
    /// given there, replaces the file's whole list.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 8080)]
    port: u16,
    /// The application to serve.
    #[arg(long, value_enum, default_value = "demo")]
    app: AppChoice,
    /// Event loops, one thread each, sharing the port (SO_REUSEPORT)
    /// [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 1024))]
    threads: Option<usize>,
    /// Most connections at once per event loop; more get 503. Default: the
    /// open-file limit (raised to its hard limit) less a small reserve,
    /// shared among the loops.
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 10_000_000))]
    max_connections: Option<usize>,
    /// Seconds the process may stay out of descriptors before clients
    /// waiting to be accepted get 503 with Retry-After (until then, accept
    /// is retried every 100 ms).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 1.0)]
    accept_patience: f64,
    /// Largest WebSocket frame payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20, value_parser = whole::<u64>(1, GIB))]
    max_frame_size: u64,
    /// Largest WebSocket message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = whole::<usize>(1, GIB))]
    max_message_size: usize,
    /// Most frames in one WebSocket message.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = whole::<u32>(1, 10_000_000))]
    max_fragments: u32,
    /// Output queued per connection before the slow-consumer policy applies, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(KIB, MEMORY))]
    max_output: usize,
    /// Largest request head, in bytes (larger gets 431).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024, value_parser = whole::<usize>(KIB, MIB))]
    max_request_head: usize,
    /// Largest request body an application route accepts, in bytes (larger gets 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(1, GIB))]
    max_request_body: usize,
    /// Seconds a new connection has to send its request head.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Seconds of silence before a WebSocket ping (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 30.0)]
    ping_interval: f64,
    /// Seconds of silence before a WebSocket is given up (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 60.0)]
    idle_timeout: f64,
    /// Seconds between SSE heartbeat comments on a quiet stream.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 15.0)]
    sse_heartbeat: f64,
    /// Seconds a graceful shutdown may take.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 5.0)]
    shutdown_timeout: f64,
    /// HTTP/2: with prior knowledge (h2c) on plain ports, by ALPN `h2`
    /// over TLS; HTTP/1.1 is served beside it either way.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    http2: bool,
    /// HTTP/3 over QUIC on the TLS port's number (UDP), with the same
    /// certificates; TCP answers then advertise it (`Alt-Svc`). Needs
    /// TLS (--tls-cert and --tls-key, or --tls-self-signed).
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "on|off", default_value = "off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    http3: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: log::LevelFilter,
    #[command(flatten)]
    hub: HubArgs,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    durable: DurableArgs,
    #[command(flatten)]
    hooks: HookArgs,
    #[cfg(feature = "redis")]
    #[command(flatten)]
    redis: RedisArgs,
    #[cfg(feature = "nats")]
    #[command(flatten)]
    nats: NatsArgs,
    #[cfg(feature = "deflate")]
    #[command(flatten)]
    deflate: DeflateArgs,
    #[cfg(feature = "tls")]
    #[command(flatten)]
    tls: TlsArgs,
}

/// TLS: the certificate and key that make the port serve https:// and
/// wss:// instead of http:// and ws://.
#[cfg(feature = "tls")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "TLS (https:// and wss://)")]
pub(crate) struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key. SIGHUP reads both files again
    /// (a renewed certificate) without dropping a connection.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a certificate for localhost and 127.0.0.1 made at
    /// start (for local use: clients must be told to trust it, e.g.
    /// `curl -k`; its SHA-256 fingerprint is printed).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// Serve TLS on this address (e.g. 0.0.0.0:8443; port 0 picks one)
    /// and plain HTTP on --addr/--port, side by side on every event loop.
    /// Without it, --port serves TLS alone. Needs a certificate
    /// (--tls-cert and --tls-key, or --tls-self-signed).
    #[arg(long, value_name = "ADDR:PORT")]
    tls_listen: Option<SocketAddr>,
}

#[cfg(feature = "tls")]
const TLS_LISTEN_NEEDS_CERTIFICATE: &str =
    "--tls-listen needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)";

/// Why `--http3 on` is refused without a certificate.
#[cfg(feature = "tls")]
const HTTP3_NEEDS_CERTIFICATE: &str =
    "--http3 on needs TLS: QUIC carries TLS 1.3 (--tls-cert and --tls-key, or --tls-self-signed)";

/// Loads `--tls-cert` and `--tls-key` into the configuration; the URL
/// scheme the server then answers on.
#[cfg(feature = "tls")]
fn configure_tls(args: &Args, config: &mut Config) -> Result<&'static str, String> {
    let scheme = load_tls(args, config)?;
    match args.tls.tls_listen {
        Some(_) if config.tls.is_none() => Err(TLS_LISTEN_NEEDS_CERTIFICATE.into()),
        Some(addr) => {
            config.tls_addr = Some(addr);
            Ok("http")
        }
        None => Ok(scheme),
    }
}

/// Loads the certificate and key the options name into the
/// configuration; the scheme of a port that serves them.
#[cfg(feature = "tls")]
fn load_tls(args: &Args, config: &mut Config) -> Result<&'static str, String> {
    if args.tls.tls_self_signed {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, made.cert.der());
        let hex: Vec<String> = fingerprint.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        println!(
            "TLS: a self-signed certificate for localhost, 127.0.0.1 and ::1, SHA-256 {}",
            hex.join(":")
        );
        config.tls = Some(
            tether_server::tls::server_config_from_pem(
                made.cert.pem().as_bytes(),
                made.signing_key.serialize_pem().as_bytes(),
            )
            .map_err(|e| e.to_string())?,
        );
        return Ok("https");
    }
    let (Some(cert), Some(key)) = (&args.tls.tls_cert, &args.tls.tls_key) else {
        return Ok("http");
    };
    let (cert_pem, key_pem) = read_tls_files(cert, key)?;
    let reloadable = tether_server::tls::ReloadableCert::from_pem(&cert_pem, &key_pem)
        .map_err(|e| tls_pair_error(cert, key, &e))?;
    config.tls = Some(reloadable.server_config());
    reload_on_sighup(reloadable, cert.clone(), key.clone()).map_err(|e| format!("SIGHUP: {e}"))?;
    Ok("https")
}

/// The contents of `--tls-cert` and `--tls-key`: regular files of at
/// most [`MAX_PEM_FILE`](crate::files::MAX_PEM_FILE) bytes each.
#[cfg(feature = "tls")]
fn read_tls_files(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    use crate::files::{MAX_PEM_FILE, read};
    let cert_pem = read(cert, MAX_PEM_FILE, "a certificate file").map_err(|e| format!("--tls-cert {e}"))?;
    let key_pem = read(key, MAX_PEM_FILE, "a private key file").map_err(|e| format!("--tls-key {e}"))?;
    Ok((cert_pem, key_pem))
}

/// Why the certificate and key do not make a pair, naming both files.
#[cfg(feature = "tls")]
fn tls_pair_error(cert: &Path, key: &Path, e: &std::io::Error) -> String {
    format!(
        "--tls-cert {} and --tls-key {}: {e}",
        cert.display(),
        key.display()
    )
}

/// What a start would check of `--tls-cert` and `--tls-key`: both read,
/// parse, and the key is the certificate's.
#[cfg(feature = "tls")]
fn check_tls_files(args: &Args) -> Result<(), String> {
    let (Some(cert), Some(key)) = (&args.tls.tls_cert, &args.tls.tls_key) else {
        return Ok(());
    };
    let (cert_pem, key_pem) = read_tls_files(cert, key)?;
    tether_server::tls::ReloadableCert::from_pem(&cert_pem, &key_pem)
        .map(drop)
        .map_err(|e| tls_pair_error(cert, key, &e))
}

#[cfg(not(feature = "tls"))]
fn check_tls_files(_: &Args) -> Result<(), String> {
    Ok(())
}

/// Reads the certificate and key again on each SIGHUP: handshakes from
/// then on use the new pair; established connections keep theirs. A pair
/// that cannot be loaded is logged and the current one stays.
#[cfg(feature = "tls")]
fn reload_on_sighup(
    reloadable: std::sync::Arc<tether_server::tls::ReloadableCert>,
    cert: PathBuf,
    key: PathBuf,
) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("tether-tls-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let replaced = read_tls_files(&cert, &key).and_then(|(cert_pem, key_pem)| {
                    reloadable
                        .replace_pem(&cert_pem, &key_pem)
                        .map_err(|e| tls_pair_error(&cert, &key, &e))
                });
                match replaced {
                    Ok(()) => log::info!("TLS: certificate and key reloaded"),
                    Err(e) => log::warn!("TLS: reload failed, the current certificate stays: {e}"),
                }
            }
        })?;
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn configure_tls(_: &Args, _: &mut Config) -> Result<&'static str, String> {
    Ok("http")
}

/// A `--trusted-origin`: an exact origin. `*` is refused: it cannot go
/// with credentials (cookies, `Authorization`), which the hub's routes use.
fn parse_trusted_origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Err("* is not accepted: name each origin (the hub's routes take credentials)".to_owned());
    }
    if HubSettings::is_origin(text) {
        Ok(text.to_owned())
    } else {
        Err("not an origin: http:// or https://, a host and an optional port, nothing more".to_owned())
    }
}

/// The hub's options (`--app demo` and `--app hub`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Hub (pub/sub topics)")]
pub(crate) struct HubArgs {
    /// The bearer token that publishing over HTTP and issuing tickets
    /// require (or set TETHER_PUBLISH_TOKEN, which other users cannot see
    /// in the process list). Without one, publishing over HTTP is refused.
    #[arg(long, value_name = "TOKEN")]
    publish_token: Option<Secret>,
    /// Subscribing (WebSocket, SSE, long poll) needs a ticket (?ticket=,
    /// from POST /tickets) or the token.
    #[arg(long)]
    require_ticket: bool,
    /// Seconds a ticket is good for.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 30.0)]
    ticket_ttl: f64,
    /// An origin whose pages may use the hub from a browser, besides the
    /// server's own (repeat for more; exact origins such as
    /// https://app.example.com, never *): they may subscribe and publish,
    /// get CORS answers with credentials, and may use the token cookie.
    /// When any is given, other origins are refused (403). Whatever is
    /// given, a token cookie counts only from the server's own origin and
    /// these. --allowed-origin and --cors-origin are other names for it.
    #[arg(
        long = "trusted-origin",
        visible_aliases = ["allowed-origin", "cors-origin"],
        value_name = "ORIGIN",
        value_parser = parse_trusted_origin
    )]
    trusted_origins: Vec<String>,
    /// Topics any WebSocket subscriber may publish to: a name, or a prefix
    /// ending in * (repeat for more). The demo adds chat.*.
    #[arg(long = "ws-publish", value_name = "PATTERN")]
    ws_publish: Vec<String>,
    /// Events each topic keeps for Last-Event-ID replay.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = whole::<usize>(0, 10_000_000))]
    backlog_events: usize,
    /// Bytes each topic keeps for replay (both encodings of each event);
    /// keep it under --max-output.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(0, MEMORY))]
    backlog_bytes: usize,
    /// Largest event a publisher may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = whole::<usize>(1, GIB))]
    max_event_size: usize,
    /// Most topics with events at once.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = whole::<usize>(1, 100_000_000))]
    max_topics: usize,
    /// Seconds without a publish after which a topic is forgotten (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 3600.0)]
    topic_ttl: f64,
    /// Longest a long poll is held, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 25.0)]
    poll_timeout: f64,
    /// A namespace: the topics a pattern names, with rules of their own
    /// (repeat for more, or separate with ;), e.g. 'chat.*
    /// publish=subscribers backlog-events=200'. Keys:
    /// subscribe=anyone|token|hook, private=true (subscribe=token),
    /// publish=token|subscribers|backend|hook|nobody, presence=on|off,
    /// join-leave=on|off, backlog-events=N, backlog-bytes=N,
    /// topic-ttl=SECONDS (0: never), durable=on|off (with --data-dir). The
    /// most specific pattern governs a
    /// topic; what it leaves out, the options above decide.
    #[arg(long = "namespace", value_name = "SPEC", value_parser = parse_namespace, value_delimiter = ';')]
    namespaces: Vec<NamespaceArg>,
    /// Events per second each WebSocket connection, and each token
    /// subject over all its connections and HTTP publishes, may publish
    /// on average (the publish token over HTTP is not limited). Over it,
    /// a WebSocket is closed with 1008, an HTTP publish answered 429.
    #[arg(long, value_name = "EVENTS", value_parser = parse_rate)]
    publish_rate: Option<f64>,
    /// Events a --publish-rate allows at once (default: the rate, at least 1).
    #[arg(long, value_name = "N", requires = "publish_rate", value_parser = clap::value_parser!(u32).range(1..))]
    publish_burst: Option<u32>,
    /// The most WebSockets and event streams one token subject may have
    /// open (on this node; with --redis, over the cluster as each node
    /// last heard, about every half second); 0: no limit. Over it, an
    /// upgrade or a stream is answered 429 with Retry-After, a WebSocket
    /// that authenticates with its first message closed with 1008.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = whole::<usize>(0, 10_000_000))]
    max_connections_per_subject: usize,
    /// What a topic in no --namespace gets: the options above (default),
    /// or refused (404).
    #[arg(long, value_enum, value_name = "WHAT", default_value = "default")]
    unknown_namespace: UnknownNamespaceChoice,
}

/// `--publish-rate`: events per second, more than 0 and at most a million.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1e6)
        .ok_or_else(|| "expected events per second, more than 0 and at most 1000000".to_owned())
}

/// `--unknown-namespace`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum UnknownNamespaceChoice {
    /// The hub-wide options.
    Default,
    /// Refused (404).
    Refuse,
}

impl HubArgs {
    /// The hub settings, and where the token came from (never the token).
    fn settings(&self) -> Result<(HubSettings, Option<&'static str>), String> {
        let mut settings = HubSettings::default();
        let (token, source) = match &self.publish_token {
            // Read from the variable by clap when the options do not give it.
            Some(token) if std::env::var(TOKEN_VARIABLE).is_ok_and(|t| t == token.0) => {
                (Some(token.0.clone()), Some(TOKEN_VARIABLE))
            }
            Some(token) => (Some(token.0.clone()), Some("--publish-token")),
            None => match std::env::var(TOKEN_VARIABLE) {
                Ok(token) if !token.is_empty() => (Some(token), Some(TOKEN_VARIABLE)),
                _ => (None, None),
            },
        };
        settings.publish_token = token;
        settings.require_ticket = self.require_ticket;
        settings.ticket_ttl = seconds(self.ticket_ttl);
        settings.trusted_origins = self.trusted_origins.clone();
        settings.ws_publish = self.ws_publish.clone();
        settings.hub.max_backlog_events = self.backlog_events;
        settings.hub.max_backlog_bytes = self.backlog_bytes;
        settings.hub.max_event_size = self.max_event_size;
        settings.hub.max_topics = self.max_topics;
        settings.hub.topic_ttl = optional_seconds(self.topic_ttl);
        settings.poll_timeout = seconds(self.poll_timeout);
        namespace::apply(&self.namespaces, &mut settings)?;
        settings.max_connections_per_subject =
            (self.max_connections_per_subject > 0).then_some(self.max_connections_per_subject);
        settings.publish_rate = self.publish_rate.map(|rate| {
            let burst = self.publish_burst.map_or(rate.ceil().max(1.0), f64::from);
            PublishRate::new(rate, burst)
        });
        settings.unknown_namespace = match self.unknown_namespace {
            UnknownNamespaceChoice::Default => UnknownNamespace::Default,
            UnknownNamespaceChoice::Refuse => UnknownNamespace::Refuse,
        };
        Ok((settings, source))
    }
}

/// Decisions by the application's backend over HTTP (`--app demo` and
/// `--app hub`): the JSON each hook is sent and answers is in
/// crates/hooks/README.md.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Backend decisions (HTTP hooks, --app demo and --app hub)")]
pub(crate) struct HookArgs {
    /// Ask this URL (http://HOST:PORT/PATH) who a request that presents no
    /// token (nor ticket, nor publish token) is: its subject, rights and
    /// expiry, from the --hook-forward-header fields and
    /// --hook-forward-cookie cookies. The request waits for the answer; a
    /// refusal is its status and reason, no answer in time is 503 with
    /// Retry-After, never an allow.
    #[arg(long, value_name = "URL")]
    hook_connect: Option<String>,
    /// Ask this URL whether a subscriber may read a topic, for the
    /// namespaces that say subscribe=hook.
    #[arg(long, value_name = "URL")]
    hook_subscribe: Option<String>,
    /// Ask this URL whether a publish goes out, as it is or with other
    /// data, for the namespaces that say publish=hook (all but the publish
    /// token's publishes; a WebSocket's in the order it sent them).
    #[arg(long, value_name = "URL")]
    hook_publish: Option<String>,
    /// Ask this URL for a later expiry of a connection the connect hook
    /// let in, shortly before it expires (at most 30 s before); a refusal
    /// or no answer lets it expire when it was to.
    #[arg(long, value_name = "URL")]
    hook_refresh: Option<String>,
    /// Seconds the backend has to answer (queueing included), 0.001 to 60.
    #[arg(long, value_name = "SECONDS", value_parser = parse_hook_timeout, default_value_t = 1.0)]
    hook_timeout: f64,
    /// A request header field the connect hook is given (repeat for more;
    /// any case, sent in lower case).
    #[arg(long = "hook-forward-header", value_name = "NAME", value_parser = parse_header_name)]
    hook_forward_headers: Vec<String>,
    /// A cookie the connect hook is given (repeat for more).
    #[arg(long = "hook-forward-cookie", value_name = "NAME", value_parser = parse_cookie_name)]
    hook_forward_cookies: Vec<String>,
    /// Threads asking the backend, each with its own keep-alive
    /// connection to each hook's host (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = tether_hooks::DEFAULT_WORKERS,
          value_parser = whole::<usize>(1, 1024))]
    hook_workers: usize,
    /// Most questions outstanding from each event loop; more are answered
    /// 503 at once.
    #[arg(long, value_name = "N", default_value_t = tether_apps::DEFAULT_PER_LOOP,
          value_parser = whole::<usize>(1, 1_000_000))]
    hook_queue: usize,
}

/// `--hook-timeout`: more than 0, at most a minute.
fn parse_hook_timeout(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.001 && *s <= 60.0)
        .ok_or_else(|| "expected seconds, 0.001 to 60".to_owned())
}

/// `--hook-forward-header`: a field name (RFC 9110 token), kept in lower
/// case.
fn parse_header_name(text: &str) -> Result<String, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if text.is_empty() || !text.bytes().all(token) {
        return Err("expected a header field name (letters, digits and !#$%&'*+-.^_`|~)".to_owned());
    }
    Ok(text.to_ascii_lowercase())
}

/// `--hook-forward-cookie`: a cookie name.
fn parse_cookie_name(text: &str) -> Result<String, String> {
    if is_cookie_name(text) {
        Ok(text.to_owned())
    } else {
        Err("expected a cookie name".to_owned())
    }
}

impl HookArgs {
    /// The backend the options ask for, started (its threads run until
    /// the process ends), if any; `loops` event loops ask it.
    fn backend(&self, settings: &HubSettings, loops: usize) -> Result<Option<HttpBackend>, String> {
        let Some(config) = self.config(settings)? else {
            return Ok(None);
        };
        let hooks = tether_hooks::Hooks::start(config).map_err(|e| format!("hooks: {e}"))?;
        Ok(Some(
            HttpBackend::new(hooks, loops, self.hook_queue)
                .forward_headers(&self.hook_forward_headers)
                .forward_cookies(&self.hook_forward_cookies),
        ))
    }

    /// The hooks' configuration, checked, if any hook is given.
    fn config(&self, settings: &HubSettings) -> Result<Option<tether_hooks::Config>, String> {
        self.check(settings)?;
        let timeout = seconds(self.hook_timeout);
        let mut config = tether_hooks::Config::new()
            .workers(self.hook_workers)
            .thread_name("tether-hook");
        let mut any = false;
        for (kind, url) in [
            (tether_hooks::HookKind::Connect, &self.hook_connect),
            (tether_hooks::HookKind::Subscribe, &self.hook_subscribe),
            (tether_hooks::HookKind::Publish, &self.hook_publish),
            (tether_hooks::HookKind::Refresh, &self.hook_refresh),
        ] {
            if let Some(url) = url {
                any = true;
                config = config
                    .hook(kind, url, timeout)
                    .map_err(|e| format!("--hook-{}: {e}", kind.name()))?;
            }
        }
        Ok(any.then_some(config))
    }

    /// The checks that touch nothing: options that go together, and a
    /// namespace that asks a hook that is not there.
    fn check(&self, settings: &HubSettings) -> Result<(), String> {
        if self.hook_connect.is_none()
            && !(self.hook_forward_headers.is_empty() && self.hook_forward_cookies.is_empty())
        {
            return Err("--hook-forward-header and --hook-forward-cookie need --hook-connect".to_owned());
        }
        if self.hook_refresh.is_some() && self.hook_connect.is_none() {
            return Err(
                "--hook-refresh needs --hook-connect (it refreshes the connections that hook let in)"
                    .to_owned(),
            );
        }
        if !(1..=1024).contains(&self.hook_workers) {
            return Err("--hook-workers: expected 1 to 1024".to_owned());
        }
        if self.hook_queue == 0 {
            return Err("--hook-queue: expected at least 1".to_owned());
        }
        if self.hook_subscribe.is_none()
            && let Some(namespace) = settings
                .namespaces
                .iter()
                .find(|n| n.subscribe == Some(tether_apps::WhoSubscribes::Hook))
        {
            return Err(format!(
                "--namespace {}: subscribe=hook needs --hook-subscribe",
                namespace.pattern
            ));
        }
        if self.hook_publish.is_none()
            && let Some(namespace) = settings
                .namespaces
                .iter()
                .find(|n| n.publish == Some(tether_apps::WhoPublishes::Hook))
        {
            return Err(format!(
                "--namespace {}: publish=hook needs --hook-publish",
                namespace.pattern
            ));
        }
        Ok(())
    }
}

/// Identities: JSON Web Tokens, the keys that verify them, the topics that
/// need them.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Identities (JSON Web Tokens, --app demo and --app hub)")]
pub(crate) struct AuthArgs {
    /// Verify HS256 tokens with the secret in this file (at least 32
    /// bytes; one final line ending, \n or \r\n, is not part of it, and
    /// is warned about at start: an issuer must sign with the bytes before
    /// it). SIGHUP reads every key file again.
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Verify RS256, ES256 or EdDSA tokens with this PEM public key.
    #[arg(long, value_name = "FILE")]
    jwt_public_key: Option<PathBuf>,
    /// Verify tokens with the keys of this JSON Web Key Set (a file; a
    /// token's kid chooses the key).
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// Accept only tokens whose aud names this (repeat for more). Without
    /// it, tokens with an aud are refused.
    #[arg(long = "jwt-audience", value_name = "AUD")]
    jwt_audiences: Vec<String>,
    /// Accept only tokens whose iss is this (repeat for more).
    #[arg(long = "jwt-issuer", value_name = "ISS")]
    jwt_issuers: Vec<String>,
    /// Seconds of clock difference allowed when checking exp, nbf and iat.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    jwt_leeway: u64,
    /// Topics that only a token granting them may subscribe to: a name, or
    /// a prefix ending in * (repeat for more). Others stay open.
    #[arg(long = "private", value_name = "PATTERN")]
    private: Vec<String>,
    /// The cookie a token may come in (browsers: set it HttpOnly; Secure;
    /// SameSite=Strict).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TOKEN_COOKIE)]
    token_cookie: String,
    /// Read a token from ?token= too. Off by default: query strings are
    /// written to the access logs of proxies and servers.
    #[arg(long)]
    token_query: bool,
    /// Seconds a WebSocket that came without a token, to a topic that needs
    /// one, has to send {"type":"auth","token":"..."} as its first message.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    auth_timeout: u64,
    /// Seconds a token from the demo's sign-in (POST /demo/login) is good
    /// for. The demo signs them with a random secret made at start, unless
    /// a key is given above: then the sign-in is off.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    demo_token_ttl: u64,
}

/// Key files, each with the option that named it.
type KeyFiles = Vec<(&'static str, KeyFile)>;

impl AuthArgs {
    /// The key files named, each with its option.
    fn key_files(&self) -> KeyFiles {
        let mut files = Vec::new();
        if let Some(path) = &self.jwt_secret_file {
            files.push(("--jwt-secret-file", KeyFile::Secret(path.clone())));
        }
        if let Some(path) = &self.jwt_public_key {
            files.push(("--jwt-public-key", KeyFile::Pem(path.clone())));
        }
        if let Some(path) = &self.jwks {
            files.push(("--jwks", KeyFile::Jwks(path.clone())));
        }
        files
    }

    /// How the hub verifies tokens, `None` without a key file or
    /// `demo_keys`; and the key files, to read again on SIGHUP.
    fn hub_auth(&self, demo_keys: Option<Keys>) -> Result<Option<(HubAuth, KeyFiles)>, String> {
        self.check(demo_keys.is_some())?;
        let files = self.key_files();
        if files.is_empty() && demo_keys.is_none() {
            return Ok(None);
        }
        let keys = match demo_keys {
            Some(keys) if files.is_empty() => keys,
            _ => {
                let (keys, warnings) = load_keys(&files)?;
                for warning in warnings {
                    log::warn!("{warning}");
                }
                keys
            }
        };
        let mut auth = HubAuth::new(keys);
        auth.validation = Validation::new()
            .leeway(self.jwt_leeway)
            .audience(self.jwt_audiences.iter().cloned())
            .issuer(self.jwt_issuers.iter().cloned());
        auth.private = Private::new(&self.private).map_err(|e| format!("--private: {e}"))?;
        auth.cookie = Some(self.token_cookie.clone());
        auth.query = self.token_query;
        auth.auth_timeout = std::time::Duration::from_secs(self.auth_timeout);
        Ok(Some((auth, files)))
    }

    /// The checks of [`hub_auth`](Self::hub_auth) that need no key, with
    /// or without the demo's keys.
    fn check(&self, demo_keys: bool) -> Result<(), String> {
        if self.key_files().is_empty() && !demo_keys {
            let needs_key = [
                (!self.private.is_empty(), "--private"),
                (!self.jwt_audiences.is_empty(), "--jwt-audience"),
                (!self.jwt_issuers.is_empty(), "--jwt-issuer"),
                (self.token_query, "--token-query"),
            ];
            if let Some((_, flag)) = needs_key.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{flag} needs a key to verify tokens with (--jwt-secret-file, --jwt-public-key or --jwks)"
                ));
            }
            return Ok(());
        }
        if !is_cookie_name(&self.token_cookie) {
            return Err(format!(
                "--token-cookie {:?} is not a cookie name",
                self.token_cookie
            ));
        }
        Private::new(&self.private).map_err(|e| format!("--private: {e}"))?;
        Ok(())
    }
}

/// RFC 6265's cookie-name: an HTTP token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads the key files (each a regular file of at most
/// [`MAX_KEY_FILE`](crate::files::MAX_KEY_FILE) bytes) into one set; an
/// error names the option whose file failed. With the set, warnings about
/// the files (a secret file's line ending).
fn load_keys(files: &[(&'static str, KeyFile)]) -> Result<(Keys, Vec<String>), String> {
    let mut keys = Vec::new();
    let mut warnings = Vec::new();
    for (flag, file) in files {
        let (path, what) = match file {
            KeyFile::Secret(path) => (path, "a secret file"),
            KeyFile::Pem(path) => (path, "a public key file"),
            KeyFile::Jwks(path) => (path, "a JSON Web Key Set file"),
        };
        let contents =
            crate::files::read(path, crate::files::MAX_KEY_FILE, what).map_err(|e| format!("{flag} {e}"))?;
        let set = match file {
            KeyFile::Secret(_) => {
                warnings.extend(secret_warnings(flag, path, &contents));
                Keys::from_secret(&contents)
            }
            KeyFile::Pem(_) => Keys::from_pem(&contents),
            KeyFile::Jwks(_) => Keys::from_jwks(&contents),
        }
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        keys.extend(set.keys().iter().cloned());
    }
    let keys = Keys::new(keys).map_err(|e| format!("the key files together: {e}"))?;
    Ok((keys, warnings))
}

/// What to tell about the secret file at `path`: its final line ending
/// is not part of the secret (an issuer that signs with the file's bytes
/// as they are makes tokens that never verify), and whitespace left at
/// either end of the secret is.
pub(crate) fn secret_warnings(flag: &str, path: &Path, contents: &[u8]) -> Vec<String> {
    let secret = tether_auth::secret_of_file(contents);
    let file = path.display();
    let mut warnings = Vec::new();
    if secret.len() < contents.len() {
        warnings.push(format!(
            "{flag} {file} ends with a line ending, which is not part of the secret: the secret is \
             the {} bytes before it, and tokens must be signed with those (as `tether gentoken` \
             does), not with the file as it is",
            secret.len()
        ));
    }
    let space = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    if space(secret.last()) || space(secret.first()) {
        warnings.push(format!(
            "{flag} {file}: the secret begins or ends with whitespace (a space, a tab, a second \
             line ending), which is part of it"
        ));
    }
    warnings
}

/// Reads the key files again on each SIGHUP: tokens are verified with the
/// new keys from then on. Keys that cannot be loaded are logged and the
/// current ones stay.
fn reload_keys_on_sighup(auth: HubAuth, files: KeyFiles) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("tether-key-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                match load_keys(&files) {
                    Ok((keys, _)) => {
                        auth.set_keys(keys);
                        log::info!("hub: token keys reloaded");
                    }
                    Err(e) => log::warn!("hub: key reload failed, the current keys stay: {e}"),
                }
            }
        })?;
    Ok(())
}

/// Where the hub's /metrics is served and who may read it.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Metrics (/metrics of --app demo and --app hub)")]
pub(crate) struct MetricsArgs {
    /// Serve /metrics on a listener of its own at this address (say
    /// 127.0.0.1:9090, or another private interface), and not on the
    /// main port (which then answers it with 404); the live admin page,
    /// /admin, is served there too (and only there).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// /metrics requires Authorization: Bearer TOKEN (or set
    /// TETHER_METRICS_TOKEN, which other users cannot see in the process
    /// list); so does /admin, where a browser signs in with it once.
    #[arg(long, value_name = "TOKEN")]
    metrics_token: Option<Secret>,
    /// Add a series per topic (backlog events and bytes). Off by default:
    /// it names every topic, and a label per topic has no bound.
    #[arg(long)]
    metrics_topics: bool,
}

impl MetricsArgs {
    fn apply(&self, settings: &mut HubSettings, config: &mut Config) {
        settings.metrics_topics = self.metrics_topics;
        settings.metrics_token = match &self.metrics_token {
            Some(token) => Some(token.0.clone()),
            None => std::env::var(METRICS_TOKEN_VARIABLE)
                .ok()
                .filter(|t| !t.is_empty()),
        };
        settings.metrics_on_admin_listener = self.metrics_listen.is_some();
        config.admin_addr = self.metrics_listen;
    }
}

/// Where the hub keeps its events (`--app demo` and `--app hub`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Durability (the hub's events on disk)")]
pub(crate) struct DurableArgs {
    /// Keep every topic's events in an append-only log in this directory
    /// (created at start; one log per event loop), and recover them on
    /// start: clients resume with their Last-Event-ID across a restart.
    #[arg(long, value_name = "DIR", default_value = "./tether-data")]
    data_dir: PathBuf,
    /// Keep events in memory only (lost on restart), as before.
    #[arg(long, conflicts_with_all = ["data_dir", "fsync", "retention"])]
    memory: bool,
    /// When appended events reach the disk: always (before each publish is
    /// answered), interval=MS (at most MS milliseconds after), or never
    /// (when the kernel writes back). Killing the process loses nothing
    /// answered in any mode; a power loss loses nothing with always, up to
    /// MS ms of publishes with interval, and up to the kernel's writeback
    /// delay (about 30 s on Linux) with never.
    #[arg(long, value_name = "MODE", value_parser = parse_fsync, default_value = "interval=10")]
    fsync: Fsync,
    /// Delete logged events older than this many seconds (they are not
    /// recovered after a restart either); without it, only the backlog
    /// bounds (--backlog-*) decide.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    retention: Option<f64>,
}

fn parse_fsync(text: &str) -> Result<Fsync, String> {
    match text {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        _ => {
            let ms = text
                .strip_prefix("interval=")
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or_else(|| "always, never, or interval=MS with MS from 1 to 60000".to_string())?;
            Ok(Fsync::Interval(Duration::from_millis(ms)))
        }
    }
}

/// Each loop's durable broker, unless `--memory` (or `--redis`, which
/// keeps the events in Redis).
fn durable_brokers(
    args: &Args,
    settings: &HubSettings,
    threads: usize,
) -> Result<Vec<Option<DurableBroker>>, String> {
    if args.durable.memory {
        log::info!("hub: events in memory only (--memory): a restart loses them");
        return Ok((0..threads).map(|_| None).collect());
    }
    let mut config = DurableConfig::new(args.durable.data_dir.clone());
    config.fsync = args.durable.fsync;
    config.retention = args.durable.retention.map(seconds);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let brokers = DurableBroker::open_all(&settings.hub, &config, threads, now_ms)?;
    log::info!(
        "hub: events kept in {} (fsync {:?})",
        args.durable.data_dir.display(),
        args.durable.fsync
    );
    Ok(brokers.into_iter().map(Some).collect())
}

/// The Redis bridge's options (`--app demo` and `--app hub`).
#[cfg(feature = "redis")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Redis (several tether nodes share the topics)")]
pub(crate) struct RedisArgs {
    /// Share the hub's topics with other tether nodes through this Redis
    /// server (redis://HOST:PORT[/DB]) or Redis Cluster
    /// (redis+cluster://HOST:PORT[,HOST:PORT...]): each topic is a Redis
    /// stream, which numbers and orders its events for every node and
    /// keeps their backlog for Last-Event-ID replay. Without it, the hub
    /// runs in this process alone.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Put before each topic's name to make its stream's key (topic news:
    /// tether:news); nodes that share topics use the same prefix.
    #[arg(long, value_name = "PREFIX", default_value = "tether:", requires = "redis")]
    redis_prefix: String,
    /// How long this node's presence entries (who is subscribed here) live
    /// in Redis unless renewed; they are renewed every third of it, so a
    /// node that dies has its members leave the other nodes' lists within
    /// about this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, requires = "redis",
          value_parser = parse_presence_ttl)]
    redis_presence_ttl: f64,
    /// On a Redis Cluster, the partitions the topics are grouped into
    /// (each partition's keys share a hash tag, and a node reads one
    /// announcement stream per partition, however many topics it
    /// follows); every node must give the same number. 0 keeps the layout
    /// of earlier versions (a slot per topic, tether:{news}, each followed
    /// stream polled): keep 0 for a cluster that holds streams written so.
    #[arg(long, value_name = "N", default_value_t = 16, requires = "redis",
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    redis_cluster_partitions: u16,
}

/// `--redis-presence-ttl`, `--nats-presence-ttl`: 0.1 to 3600 seconds.
#[cfg(any(feature = "redis", feature = "nats"))]
fn parse_presence_ttl(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.1..=3600.0).contains(&s) => Ok(s),
        _ => Err("a number of seconds from 0.1 to 3600".to_owned()),
    }
}

/// The NATS bridge's options (`--app demo` and `--app hub`).
#[cfg(feature = "nats")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "NATS (several tether nodes share the topics)")]
pub(crate) struct NatsArgs {
    /// Share the hub's topics with other tether nodes through NATS
    /// JetStream (nats://HOST:PORT, or several nats://HOST:PORT separated
    /// by commas for a NATS cluster): each topic is a subject of one
    /// stream, which numbers and orders its events for every node and
    /// keeps their backlog for Last-Event-ID replay.
    #[arg(long, value_name = "URL")]
    #[cfg_attr(feature = "redis", arg(conflicts_with = "redis"))]
    nats: Option<String>,
    /// The subjects' prefix (topic news: PREFIX.topic.news) and the
    /// stream's name (its dots made _); nodes that share topics use the
    /// same one.
    #[arg(long, value_name = "PREFIX", default_value = "tether", requires = "nats")]
    nats_prefix: String,
    /// The stream's replicas when this node creates it (3 on a NATS
    /// cluster of three nodes or more, so that it survives one lost).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "nats",
          value_parser = clap::value_parser!(u8).range(1..=5))]
    nats_replicas: u8,
    /// How long this node's presence entries (who is subscribed here)
    /// live in NATS unless renewed; they are renewed every third of it,
    /// so a node that dies has its members leave the other nodes' lists
    /// within about this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, requires = "nats",
          value_parser = parse_presence_ttl)]
    nats_presence_ttl: f64,
}

/// The bus bridge (`--redis` or `--nats`), when built in.
enum Bridge {
    /// Through Redis.
    #[cfg(feature = "redis")]
    Redis(tether_redis::RedisBridge),
    /// Through NATS JetStream.
    #[cfg(feature = "nats")]
    Nats(tether_nats::NatsBridge),
}

impl Bridge {
    /// A broker for one event loop.
    fn broker(&self) -> Box<dyn tether_hub::Broker + Send> {
        match *self {
            #[cfg(feature = "redis")]
            Bridge::Redis(ref bridge) => Box::new(bridge.broker()),
            #[cfg(feature = "nats")]
            Bridge::Nats(ref bridge) => Box::new(bridge.broker()),
        }
    }

    /// Starts the bridge's threads, which post to the loops.
    fn start(&self, post: impl Fn(usize, HubMessage) + Send + Sync + 'static) -> std::io::Result<()> {
        let _ = &post;
        match *self {
            #[cfg(feature = "redis")]
            Bridge::Redis(ref bridge) => bridge.start(post).map_err(std::io::Error::other),
            #[cfg(feature = "nats")]
            Bridge::Nats(ref bridge) => bridge.start(post).map_err(std::io::Error::other),
        }
    }
}

/// The bridge `--nats` or `--redis` asks for, set up (not started), if
/// any.
fn bus_bridge(args: &Args, settings: &HubSettings) -> Result<Option<Bridge>, String> {
    if let Some(bridge) = nats_bridge(args, settings)? {
        return Ok(Some(bridge));
    }
    redis_bridge(args, settings)
}

/// The bridge `--nats` asks for, set up (not started), if any.
#[cfg(feature = "nats")]
fn nats_bridge(args: &Args, settings: &HubSettings) -> Result<Option<Bridge>, String> {
    let Some(url) = &args.nats.nats else {
        return Ok(None);
    };
    let mut config = tether_nats::NatsConfig::new(url.as_str()).backlog(&settings.hub);
    config.prefix = args.nats.nats_prefix.clone();
    config.replicas = usize::from(args.nats.nats_replicas);
    config.presence_ttl = std::time::Duration::from_secs_f64(args.nats.nats_presence_ttl);
    let bridge = tether_nats::NatsBridge::new(config).map_err(|e| e.to_string())?;
    log::info!(
        "hub: topics are shared through NATS JetStream at {} (stream {}, subjects {}.topic.TOPIC)",
        bridge.config().server(),
        bridge.config().stream_name(),
        bridge.config().prefix,
    );
    Ok(Some(Bridge::Nats(bridge)))
}

#[cfg(not(feature = "nats"))]
fn nats_bridge(_: &Args, _: &HubSettings) -> Result<Option<Bridge>, String> {
    Ok(None)
}

/// The bridge `--redis` asks for, set up (not started), if any.
#[cfg(feature = "redis")]
fn redis_bridge(args: &Args, settings: &HubSettings) -> Result<Option<Bridge>, String> {
    let Some(url) = &args.redis.redis else {
        return Ok(None);
    };
    let mut config = tether_redis::RedisConfig::new(url.as_str()).backlog(&settings.hub);
    config.prefix = args.redis.redis_prefix.clone();
    config.presence_ttl = std::time::Duration::from_secs_f64(args.redis.redis_presence_ttl);
    config.cluster_partitions = usize::from(args.redis.redis_cluster_partitions);
    let bridge = tether_redis::RedisBridge::new(config).map_err(|e| e.to_string())?;
    let cluster = url.starts_with("redis+cluster://");
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
    Ok(Some(Bridge::Redis(bridge)))
}

#[cfg(not(feature = "redis"))]
fn redis_bridge(_: &Args, _: &HubSettings) -> Result<Option<Bridge>, String> {
    Ok(None)
}

/// Loop `index`'s hub: on the Redis bridge, with its durable broker, or
/// with the in-process broker.
fn hub_app(
    shared: &HubShared,
    bridge: Option<&Bridge>,
    durable: &mut [Option<DurableBroker>],
    index: usize,
) -> HubApp {
    match bridge {
        Some(bridge) => shared.app_with_broker(index, bridge.broker()),
        None => match durable.get_mut(index).and_then(Option::take) {
            Some(broker) => shared.app_with_broker(index, Box::new(broker)),
            None => shared.app(index),
        },
    }
}

/// With a bridge, the hub's connection counts per subject and its
/// revocations are shared with the other nodes (the bridge's thread
/// writes and reads them every half second).
fn share_limits(bridge: Option<&Bridge>, shared: &HubShared) {
    match bridge {
        #[cfg(feature = "redis")]
        Some(Bridge::Redis(bridge)) => {
            let revoker = bridge.share_limits(std::sync::Arc::new(ClusterLimits(shared.clone())));
            shared.on_revoke(move |revocations| revoker.revoke(ClusterLimits::entries(revocations)));
        }
        #[cfg(feature = "nats")]
        Some(Bridge::Nats(bridge)) => {
            let revoker = bridge.share_limits(std::sync::Arc::new(ClusterLimits(shared.clone())));
            shared.on_revoke(move |revocations| revoker.revoke(ClusterLimits::entries(revocations)));
        }
        #[allow(
            unreachable_patterns,
            reason = "no bridge when neither Redis's nor NATS's is built in"
        )]
        Some(_) | None => {
            let _ = shared;
        }
    }
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

/// Starts the bridge's threads, which post to the loops through `poster`.
fn start_bridge(bridge: Option<&Bridge>, poster: Poster<HubMessage>) -> std::io::Result<()> {
    match bridge {
        Some(bridge) => bridge.start(move |to, message| poster.post(to, message)),
        None => {
            let _ = poster;
            Ok(())
        }
    }
}

/// permessage-deflate (RFC 7692) preferences of `tether serve`.
#[cfg(feature = "deflate")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Compression (permessage-deflate)")]
pub(crate) struct DeflateArgs {
    /// Do not offer permessage-deflate: every message goes out as it is.
    #[arg(long)]
    no_compression: bool,
    /// Keep the server's compression context between messages: better
    /// ratios for streams of similar messages, about 380 KiB more per
    /// connection (by default one compressor per thread serves all).
    #[arg(long)]
    deflate_server_context_takeover: bool,
    /// Let clients keep their compression context between messages: better
    /// ratios, about 48 KiB more per connection to inflate with.
    #[arg(long)]
    deflate_client_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, as a power of two
    /// (8-15); clients may ask for less.
    #[arg(long, value_name = "BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15))]
    deflate_server_window_bits: u8,
    /// Largest LZ77 window to ask clients to compress with (8-15), when
    /// they offer to be limited.
    #[arg(long, value_name = "BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15))]
    deflate_client_window_bits: u8,
    /// Messages smaller than this are sent uncompressed [default: 256, or
    /// 32 with --deflate-server-context-takeover].
    #[arg(long, value_name = "BYTES", value_parser = whole::<usize>(0, GIB))]
    deflate_min_size: Option<usize>,
    /// zlib compression level, 0 (store) to 9 (smallest, slowest).
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    deflate_level: u8,
}

#[cfg(feature = "deflate")]
fn handshake(args: &Args) -> Handshake {
    use tether_server::deflate::DeflateConfig;
    let d = &args.deflate;
    if d.no_compression {
        return Handshake::new();
    }
    #[allow(
        clippy::expect_used,
        reason = "every value was range-checked by clap's value parsers"
    )]
    let deflate = DeflateConfig::new()
        .server_context_takeover(d.deflate_server_context_takeover)
        .client_context_takeover(d.deflate_client_context_takeover)
        .server_max_window_bits(d.deflate_server_window_bits)
        .and_then(|c| c.client_max_window_bits(d.deflate_client_window_bits))
        .and_then(|c| c.level(d.deflate_level))
        .expect("clap checked the ranges");
    let deflate = match d.deflate_min_size {
        Some(bytes) => deflate.min_size(bytes),
        None => deflate,
    };
    Handshake::new().negotiator(deflate)
}

#[cfg(not(feature = "deflate"))]
fn handshake(_: &Args) -> Handshake {
    Handshake::new()
}

/// A KiB, a MiB and a GiB, for the bounds of the size options.
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The bound of the options that size what is held in memory for a
/// connection or a topic (64 GiB): a benchmark keeps 4 GiB of backlog.
const MEMORY: u64 = 1 << 36;

/// A count or size option's parser: a whole number from `min` to `max`
/// (a larger one, say 9223372036854775807, is refused naming the range,
/// rather than taken as "no limit" or wrapped).
fn whole<T>(min: u64, max: u64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |text: &str| {
        let outside = || format!("expected a whole number from {min} to {max}");
        let n: u64 = text.trim().parse().map_err(|_| outside())?;
        if !(min..=max).contains(&n) {
            return Err(outside());
        }
        T::try_from(n).map_err(|_| outside())
    }
}

/// The longest duration any option takes: a day. Beyond it a timer means
/// "never", which each option spells `0` where it allows it.
const MAX_SECONDS: f64 = 86_400.0;

/// A duration option: seconds from 0 to a day, fractions allowed.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        // true and false: what a configuration file's booleans say.
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{text:?} is neither on nor off")),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(format!("{text} is outside 0 to {MAX_SECONDS} seconds"));
    }
    Ok(seconds)
}

fn seconds(s: f64) -> Duration {
    // parse_seconds has bounded it; anything else is no time at all.
    Duration::try_from_secs_f64(s.clamp(0.0, MAX_SECONDS)).unwrap_or(Duration::ZERO)
}

fn optional_seconds(s: f64) -> Option<Duration> {
    (s > 0.0).then(|| seconds(s))
}

/// Options that a configuration file cannot set.
const RESERVED: &[&str] = &["config"];

/// The command `tether serve` as `tether` declares it (its help included),
/// without the environment.
fn command() -> clap::Command {
    crate::Cli::command()
        .find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| <Args as clap::Args>::augment_args(clap::Command::new("serve")))
        .bin_name("tether serve")
}

/// `tether serve ARGS` (what follows `serve`): the options from the
/// command line, from TETHER_<NAME> and from the `--config` file, in that
/// precedence, then [`run`].
pub(crate) fn main(argv: &[OsString]) -> ExitCode {
    match parse(argv) {
        Ok((args, given)) => {
            // With a file, SIGHUP reads the options again.
            let reload = args.config.is_some().then(|| Reload {
                argv: argv.to_vec(),
                given,
            });
            run(&args, reload)
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("tether serve: {line}");
            }
            ExitCode::from(2)
        }
    }
}

/// The options: the file's entries go before the command line's, each
/// only if neither the command line nor the environment sets its option
/// (so a list on the command line replaces the file's), and clap parses
/// them all at once. Help, version and clap's own errors exit here.
fn parse(argv: &[OsString]) -> Result<(Args, reload::Given), String> {
    let cmd = config::with_env(command());
    let bin = || std::iter::once(OsString::from("tether serve"));
    // What the command line and the environment give, and the file they
    // name; their errors are reported by the full parse below.
    let given = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(bin().chain(argv.iter().cloned()))
        .unwrap_or_else(|e| e.exit());
    let mut from_file = Vec::new();
    let path = given.get_one::<PathBuf>("config");
    if let Some(path) = path {
        for entry in config::read(&command(), path, RESERVED).map_err(|e| e.describe(path))? {
            let source = given.value_source(&entry.id);
            if !matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
                from_file.extend(entry.args);
            }
        }
    }
    let matches = match cmd.try_get_matches_from(bin().chain(from_file).chain(argv.iter().cloned())) {
        Ok(matches) => matches,
        Err(e) => match (from_environment(&e, &command(), argv), path) {
            (Some(message), _) => return Err(message),
            (None, Some(path)) if e.use_stderr() => {
                return Err(format!(
                    "{} (with the options of {})",
                    config::first_line(&e),
                    path.display()
                ));
            }
            _ => e.exit(),
        },
    };
    let args = Args::from_arg_matches(&matches).map_err(|e| config::first_line(&e))?;
    Ok((args, reload::given(&command(), &matches)))
}

/// A clap error about a value that came from a `TETHER_<NAME>` variable,
/// said with the variable's name (clap names the option, `'--port
/// <PORT>'`, wherever the value came from); `None` for another error, or a
/// value the command line gave.
fn from_environment(e: &clap::Error, cmd: &clap::Command, argv: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = shown.strip_prefix("--")?.split([' ', '=']).next()?;
    let arg = cmd.get_arguments().find(|arg| arg.get_long() == Some(long))?;
    let variable = config::env_name(long);
    std::env::var_os(&variable).filter(|value| !value.is_empty())?;
    let mut names: Vec<&str> = vec![long];
    names.extend(arg.get_all_aliases().unwrap_or_default());
    let short = arg.get_short().map(|c| format!("-{c}"));
    let given = argv.iter().any(|word| {
        let word = word.to_string_lossy();
        let long_given = names.iter().any(|name| {
            word.strip_prefix("--")
                .and_then(|w| w.strip_prefix(name))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
        long_given || short.as_deref().is_some_and(|short| word.starts_with(short))
    });
    if given {
        return None;
    }
    Some(config::first_line(e).replace(&format!("'{shown}'"), &format!("{variable} (--{long})")))
}

/// The token options of `tether serve` that `argv` (with the
/// environment and the `--config` file, as serve reads them) give: the
/// HMAC secret file, whether a public key or key set is given, the
/// audiences and the issuers.
pub(crate) fn token_options(argv: &[OsString]) -> Result<TokenOptions, String> {
    let (args, _) = parse(argv)?;
    Ok(TokenOptions {
        secret_file: args.auth.jwt_secret_file.clone(),
        public_keys: args.auth.jwt_public_key.is_some() || args.auth.jwks.is_some(),
        audiences: args.auth.jwt_audiences.clone(),
        issuers: args.auth.jwt_issuers.clone(),
    })
}

/// See [`token_options`].
pub(crate) struct TokenOptions {
    pub(crate) secret_file: Option<PathBuf>,
    pub(crate) public_keys: bool,
    pub(crate) audiences: Vec<String>,
    pub(crate) issuers: Vec<String>,
}

/// What a SIGHUP needs to read the options again: the command line, and
/// what the options were.
pub(crate) struct Reload {
    argv: Vec<OsString>,
    given: reload::Given,
}

/// The hub's settings that `args` give (the demo's additions with
/// `--app demo`): at start, and again on each SIGHUP with `--config`.
/// The metrics' listener goes into `config`; the token key files (to read
/// again on SIGHUP) come back with them.
fn hub_settings(
    args: &Args,
    login: Option<&DemoLogin>,
    config: &mut Config,
) -> Result<(HubSettings, Option<&'static str>, KeyFiles), String> {
    let (mut settings, token_source) = args.hub.settings()?;
    args.metrics.apply(&mut settings, config);
    let demo_keys = login
        .map(DemoLogin::keys)
        .transpose()
        .map_err(|e| format!("the demo's key: {e}"))?;
    let files = match args.auth.hub_auth(demo_keys)? {
        Some((auth, files)) => {
            settings.auth = Some(auth);
            files
        }
        None => KeyFiles::default(),
    };
    if matches!(args.app, AppChoice::Demo) {
        settings = Demo::settings(settings);
    }
    Ok((settings, token_source, files))
}

/// On each SIGHUP, reads the options as at start and gives `shared` the
/// hub's settings they make; logs what changed, and what of it takes a
/// restart (kept as it is until then). A file that no longer reads, or
/// options that no longer go together, are logged and change nothing.
fn reload_hub_on_sighup(reload: Reload, login: Option<DemoLogin>, shared: HubShared) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    let Reload { argv, mut given } = reload;
    std::thread::Builder::new()
        .name("tether-config-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let (args, now_given) = match parse(&argv) {
                    Ok(parsed) => parsed,
                    Err(e) => {
                        log::warn!("config: reload failed, nothing changed: {e}");
                        continue;
                    }
                };
                let mut scratch = Config::new(SocketAddr::new(args.addr, args.port));
                let settings =
                    match preflight(&args).and_then(|()| hub_settings(&args, login.as_ref(), &mut scratch)) {
                        Ok((settings, _, _)) => settings,
                        Err(e) => {
                            log::warn!("config: reload failed, nothing changed: {e}");
                            continue;
                        }
                    };
                let (applied, restart) = reload::changes(&given, &now_given);
                let kept = shared.reload(settings);
                logger::init(args.log_level);
                if applied.is_empty() && restart.is_empty() {
                    log::info!("config: reloaded, nothing changed");
                } else if !applied.is_empty() {
                    log::info!("config: reloaded: {}", applied.join(", "));
                }
                if !restart.is_empty() {
                    log::warn!(
                        "config: changed, and taking effect only after a restart: {}",
                        restart.join(", ")
                    );
                }
                for what in kept {
                    log::warn!("config: kept until a restart: {what}");
                }
                given = now_given;
            }
        })?;
    Ok(())
}

/// `tether check-config FILE`: reads the file as `tether serve --config`
/// does (without the environment), makes the checks `serve` makes before
/// it starts that touch nothing, and reads the files it names as a start
/// would (the token key files, the certificate and its key: each a
/// regular file within its bound, that parses, the key the
/// certificate's), as `nginx -t` does. Warnings go to stderr.
pub(crate) fn check_config(path: &Path) -> ExitCode {
    match check(path) {
        Ok(warnings) => {
            for warning in warnings {
                eprintln!("{}: warning: {warning}", path.display());
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> Result<Vec<String>, String> {
    let cmd = command();
    let entries = config::read(&cmd, path, RESERVED).map_err(|e| e.describe(path))?;
    let all = std::iter::once(OsString::from("tether serve")).chain(entries.into_iter().flat_map(|e| e.args));
    let in_file = |message: String| format!("{}: {message}", path.display());
    let matches = cmd
        .try_get_matches_from(all)
        .map_err(|e| in_file(config::first_line(&e)))?;
    let args = Args::from_arg_matches(&matches).map_err(|e| in_file(config::first_line(&e)))?;
    preflight(&args).map_err(&in_file)?;
    check_tls_files(&args).map_err(&in_file)?;
    let key_files = args.auth.key_files();
    if key_files.is_empty() || matches!(args.app, AppChoice::Echo) {
        return Ok(Vec::new());
    }
    let (_, warnings) = load_keys(&key_files).map_err(&in_file)?;
    Ok(warnings)
}

/// The checks of the options that `run` makes before it starts and that
/// read nothing and write nothing.
fn preflight(args: &Args) -> Result<(), String> {
    #[cfg(feature = "tls")]
    if args.tls.tls_listen.is_some() && args.tls.tls_cert.is_none() && !args.tls.tls_self_signed {
        return Err(TLS_LISTEN_NEEDS_CERTIFICATE.to_owned());
    }
    #[cfg(feature = "tls")]
    if args.http3 && args.tls.tls_cert.is_none() && !args.tls.tls_self_signed {
        return Err(HTTP3_NEEDS_CERTIFICATE.to_owned());
    }
    match args.app {
        AppChoice::Demo | AppChoice::Hub => {
            let (settings, _) = args.hub.settings()?;
            args.hooks.config(&settings)?;
            let demo_keys = matches!(args.app, AppChoice::Demo) && args.auth.key_files().is_empty();
            args.auth.check(demo_keys)
        }
        AppChoice::Echo => Ok(()),
    }
}

pub(crate) fn run(args: &Args, reload: Option<Reload>) -> ExitCode {
    logger::init(args.log_level);
    let mut config = Config::new(SocketAddr::new(args.addr, args.port));
    config.max_connections = args.max_connections;
    config.accept_patience = seconds(args.accept_patience);
    config.max_output = args.max_output;
    config.max_request_head = args.max_request_head;
    config.max_request_body = args.max_request_body;
    config.handshake_timeout = seconds(args.handshake_timeout);
    config.sse_heartbeat = seconds(args.sse_heartbeat);
    config.shutdown_timeout = seconds(args.shutdown_timeout);
    config.http2 = args.http2;
    #[cfg(feature = "tls")]
    {
        config.http3 = args.http3;
    }
    config.ws = tether_ws::Config::default()
        .max_frame_size(args.max_frame_size)
        .max_message_size(args.max_message_size)
        .max_fragments(args.max_fragments)
        .ping_interval(optional_seconds(args.ping_interval))
        .idle_timeout(optional_seconds(args.idle_timeout));
    let scheme = match configure_tls(args, &mut config) {
        Ok(scheme) => scheme,
        Err(e) => {
            eprintln!("tether serve: TLS: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(feature = "tls")]
    if config.http3 && config.tls.is_none() {
        eprintln!("tether serve: {HTTP3_NEEDS_CERTIFICATE}");
        return ExitCode::FAILURE;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let login = match demo_login(args, scheme) {
        Ok(login) => login,
        Err(e) => {
            eprintln!("tether serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let built = match args.app {
        AppChoice::Demo | AppChoice::Hub => hub_settings(args, login.as_ref(), &mut config),
        AppChoice::Echo => {
            if args.metrics.metrics_listen.is_some() {
                log::warn!("--metrics-listen has no effect with --app echo (it has no /metrics)");
            }
            args.hub
                .settings()
                .map(|(settings, source)| (settings, source, KeyFiles::default()))
        }
    };
    let (settings, token_source) = match built {
        Ok((settings, source, files)) => {
            if let (Some(auth), false) = (&settings.auth, files.is_empty())
                && let Err(e) = reload_keys_on_sighup(auth.clone(), files)
            {
                eprintln!("tether serve: SIGHUP: {e}");
                return ExitCode::FAILURE;
            }
            (settings, source)
        }
        Err(e) => {
            eprintln!("tether serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut settings = settings;
    if matches!(args.app, AppChoice::Demo | AppChoice::Hub) {
        match args.hooks.backend(&settings, threads) {
            Ok(backend) => {
                if let Some(backend) = backend {
                    log::info!("hooks: the backend decides: {backend:?}");
                    settings.backend = Some(std::sync::Arc::new(backend));
                }
            }
            Err(e) => {
                eprintln!("tether serve: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let handshake = settings.origin_policy(handshake(args));
    let bridge = match args.app {
        AppChoice::Demo | AppChoice::Hub => match bus_bridge(args, &settings) {
            Ok(bridge) => bridge,
            Err(e) => {
                eprintln!("tether serve: {e}");
                return ExitCode::FAILURE;
            }
        },
        AppChoice::Echo => {
            #[cfg(feature = "redis")]
            if args.redis.redis.is_some() {
                log::warn!("--redis has no effect with --app echo");
            }
            #[cfg(feature = "nats")]
            if args.nats.nats.is_some() {
                log::warn!("--nats has no effect with --app echo");
            }
            None
        }
    };
    let bridge = bridge.as_ref();
    let mut durable = match args.app {
        AppChoice::Demo | AppChoice::Hub if bridge.is_none() => {
            match durable_brokers(args, &settings, threads) {
                Ok(brokers) => brokers,
                Err(e) => {
                    eprintln!("tether serve: --data-dir: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => Vec::new(),
    };
    let result = match args.app {
        AppChoice::Demo => {
            announce_hub(&settings, token_source);
            let shared = HubShared::new(settings, threads);
            share_limits(bridge, &shared);
            if let Some(reload) = reload
                && let Err(e) = reload_hub_on_sighup(reload, login.clone(), shared.clone())
            {
                eprintln!("tether serve: SIGHUP: {e}");
                return ExitCode::FAILURE;
            }
            if let Some(login) = &login {
                log::info!(
                    "demo: POST /demo/login gives tokens good for {} s, signed with a secret made at start",
                    login.ttl.as_secs()
                );
            }
            serve(
                config,
                scheme,
                handshake,
                threads,
                |index| {
                    let hub = hub_app(&shared, bridge, &mut durable, index);
                    match &login {
                        Some(login) => Demo::with_login(hub, login.clone()),
                        None => Demo::with_hub(hub),
                    }
                },
                "open it in a browser",
                |handle| start_bridge(bridge, handle),
            )
        }
        AppChoice::Hub => {
            announce_hub(&settings, token_source);
            let shared = HubShared::new(settings, threads);
            share_limits(bridge, &shared);
            if let Some(reload) = reload
                && let Err(e) = reload_hub_on_sighup(reload, None, shared.clone())
            {
                eprintln!("tether serve: SIGHUP: {e}");
                return ExitCode::FAILURE;
            }
            serve(
                config,
                scheme,
                handshake,
                threads,
                |index| hub_app(&shared, bridge, &mut durable, index),
                "the pub/sub hub at /topics",
                |handle| start_bridge(bridge, handle),
            )
        }
        AppChoice::Echo => serve(
            config,
            scheme,
            handshake,
            threads,
            |_| Echo::everywhere(),
            "a WebSocket echo on every path",
            |_| Ok(()),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("tether serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The demo's sign-in: with `--app demo` and no key file, a random secret
/// made now (never shown), its tokens good for `--demo-token-ttl`, its
/// cookie `Secure` when the port serves TLS.
fn demo_login(args: &Args, scheme: &str) -> Result<Option<DemoLogin>, String> {
    if !matches!(args.app, AppChoice::Demo) || !args.auth.key_files().is_empty() {
        return Ok(None);
    }
    let mut login = DemoLogin::generate().map_err(|e| format!("the demo's secret: {e}"))?;
    login.ttl = Duration::from_secs(args.auth.demo_token_ttl);
    login.secure = scheme == "https";
    Ok(Some(login))
}

/// Says how publishing is set up, without the token itself.
fn announce_hub(settings: &HubSettings, token_source: Option<&str>) {
    match token_source {
        Some(source) => log::info!("hub: publishing over HTTP needs the bearer token (from {source})"),
        None => log::warn!(
            "hub: no publish token (--publish-token or {TOKEN_VARIABLE}): publishing over HTTP \
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

/// Binds, calls `bound` with a poster to the loops (before they run), and
/// runs until shut down.
fn serve<A: App + Send + 'static>(
    config: Config,
    scheme: &str,
    handshake: Handshake,
    threads: usize,
    make_app: impl FnMut(usize) -> A,
    what: &str,
    bound: impl FnOnce(Poster<A::Post>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let addr = config.addr;
    let mut server = Cluster::bind(config, handshake, threads, make_app)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
    server.handle_signals()?;
    bound(server.poster())?;
    let local = server.local_addr();
    // Scripts wait for this line (and read the port from it when binding 0).
    println!("tether listening on {scheme}://{local}/ ({what}; Ctrl-C stops)");
    if let Some(tls) = server.tls_addr() {
        println!("TLS beside it on https://{tls}/");
    }
    #[cfg(feature = "tls")]
    if let Some(quic) = server.quic_addr() {
        println!("HTTP/3 on udp://{quic}/");
    }
    if let Some(admin) = server.admin_addr() {
        println!("metrics on http://{admin}/metrics, the admin page on http://{admin}/admin");
    }
    log::info!(
        "{threads} event loop(s), at most {} connections each",
        server.max_connections()
    );
    server.run()
}
