//! The hub's options of `tether serve` (`--app demo` and `--app hub`):
//! access, limits and namespaces; metrics; where events are kept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tether_apps::{HubSettings, PublishRate, UnknownNamespace};
use tether_hub_durable::{DurableConfig, Fsync};
use tether_node::Storage;
use tether_server::Config;

use super::values::{GIB, MEMORY, Secret, optional_seconds, parse_seconds, seconds, whole};
use crate::namespace::{self, NamespaceArg, parse_namespace};

/// The environment variable that can hold the publish token (better than
/// the command line, which other users of the machine can see).
pub(crate) const TOKEN_VARIABLE: &str = "TETHER_PUBLISH_TOKEN";

/// The environment variable that can hold the metrics token.
const METRICS_TOKEN_VARIABLE: &str = "TETHER_METRICS_TOKEN";

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
    pub(crate) publish_token: Option<Secret>,
    /// Subscribing (WebSocket, SSE, long poll) needs a ticket (?ticket=,
    /// from POST /tickets) or the token.
    #[arg(long)]
    pub(crate) require_ticket: bool,
    /// Seconds a ticket is good for.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 30.0)]
    pub(crate) ticket_ttl: f64,
    /// An origin whose pages may use the hub from a browser, besides the
    /// server's own (repeat for more; exact origins such as
    /// `https://app.example.com`, never `*`): they may subscribe and publish,
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
    pub(crate) trusted_origins: Vec<String>,
    /// Topics any WebSocket subscriber may publish to: a name, or a prefix
    /// ending in * (repeat for more). The demo adds chat.*.
    #[arg(long = "ws-publish", value_name = "PATTERN")]
    pub(crate) ws_publish: Vec<String>,
    /// Events each topic keeps for Last-Event-ID replay.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = whole::<usize>(0, 10_000_000))]
    pub(crate) backlog_events: usize,
    /// Bytes each topic keeps for replay (both encodings of each event);
    /// keep it under --max-output.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(0, MEMORY))]
    pub(crate) backlog_bytes: usize,
    /// Largest event a publisher may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = whole::<usize>(1, GIB))]
    pub(crate) max_event_size: usize,
    /// Most topics with events at once.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = whole::<usize>(1, 100_000_000))]
    pub(crate) max_topics: usize,
    /// Seconds without a publish after which a topic is forgotten (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 3600.0)]
    pub(crate) topic_ttl: f64,
    /// Longest a long poll is held, in seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 25.0)]
    pub(crate) poll_timeout: f64,
    /// A namespace: the topics a pattern names, with rules of their own
    /// (repeat for more, or separate with ;), e.g. 'chat.*
    /// publish=subscribers backlog-events=200'. Keys:
    /// subscribe=anyone|token|hook, private=true (subscribe=token),
    /// publish=token|subscribers|backend|hook|nobody, presence=on|off,
    /// join-leave=on|off, latest=on|off (a subscriber from nowhere gets
    /// the topic's latest event first), delta=on|off (subscribers that
    /// ask get each event as a delta against the one before it),
    /// compress=on|off (off: its event streams go uncompressed),
    /// backlog-events=N, backlog-bytes=N,
    /// topic-ttl=SECONDS (0: never), durable=on|off (with --data-dir). The
    /// most specific pattern governs a
    /// topic; what it leaves out, the options above decide.
    #[arg(long = "namespace", value_name = "SPEC", value_parser = parse_namespace, value_delimiter = ';')]
    pub(crate) namespaces: Vec<NamespaceArg>,
    /// Events per second each WebSocket connection, and each token
    /// subject over all its connections and HTTP publishes, may publish
    /// on average (the publish token over HTTP is not limited). Over it,
    /// a WebSocket is closed with 1008, an HTTP publish answered 429.
    #[arg(long, value_name = "EVENTS", value_parser = parse_rate)]
    pub(crate) publish_rate: Option<f64>,
    /// Events a --publish-rate allows at once (default: the rate, at least 1).
    #[arg(long, value_name = "N", requires = "publish_rate", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) publish_burst: Option<u32>,
    /// The most WebSockets and event streams one token subject may have
    /// open (on this node; with --redis, over the cluster as each node
    /// last heard, about every half second); 0: no limit. Over it, an
    /// upgrade or a stream is answered 429 with Retry-After, a WebSocket
    /// that authenticates with its first message closed with 1008.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = whole::<usize>(0, 10_000_000))]
    pub(crate) max_connections_per_subject: usize,
    /// The most topics one multiplexed WebSocket (GET /ws) follows at
    /// once; one more subscribe is answered with a refusal (status 429),
    /// the socket left open.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = whole::<usize>(1, 65_535))]
    pub(crate) max_subscriptions: usize,
    /// Subscribe and unsubscribe messages one multiplexed WebSocket
    /// (GET /ws) may send a second, on average, in bursts of
    /// --max-subscriptions or of the rate, whichever is more; one over
    /// it is answered with a refusal (status 429) or an error and not
    /// acted on, the socket left open.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = whole::<u32>(1, 1_000_000))]
    pub(crate) max_subscribe_rate: u32,
    /// Calls ({"type":"rpc"} on GET /ws) one multiplexed WebSocket may
    /// have waiting for the --hook-rpc backend at once; one more is
    /// answered with an rpc-error (code 429) and not asked.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = whole::<usize>(1, 65_535))]
    pub(crate) max_rpc_in_flight: usize,
    /// Calls to the --hook-rpc backend each multiplexed WebSocket, and
    /// each subject over all its connections, may make a second on
    /// average; one over it is answered with an rpc-error (code 429) and
    /// not asked. 0: no limit.
    #[arg(long, value_name = "CALLS", default_value_t = 10.0, value_parser = parse_rpc_rate)]
    pub(crate) rpc_rate: f64,
    /// Calls an --rpc-rate allows at once (default: twice the rate, at
    /// least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rpc_burst: Option<u32>,
    /// What a topic in no --namespace gets: the options above (default),
    /// or refused (404).
    #[arg(long, value_enum, value_name = "WHAT", default_value = "default")]
    unknown_namespace: UnknownNamespaceChoice,
    /// Tickets outstanding at most on this node (issued, not yet used or
    /// expired, and held for a token's holder); past it, POST /tickets is
    /// answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = whole::<usize>(1, 10_000_000))]
    pub(crate) max_tickets: usize,
    /// Tickets outstanding at most for one subject (a token's sub, or the
    /// holder the publish token names), so that one token cannot take
    /// them all; past it, POST /tickets is answered 429 with Retry-After
    /// (until its oldest expires) while other subjects still get theirs.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = whole::<usize>(1, 10_000_000))]
    pub(crate) max_tickets_per_subject: usize,
    /// Seconds a subscriber resuming from an id this node has not seen yet
    /// is held for it: it goes live when the id arrives, with nothing
    /// missed or repeated; past this, it gets the gap signal and the
    /// backlog (the id may be of another node's history). With a bus
    /// (--redis, --nats) ids are one sequence, an id ahead is one this
    /// node has not read yet, and the subscriber is held until the topic
    /// reaches it, without this limit.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 10.0)]
    pub(crate) resume_wait: f64,
}

/// `--publish-rate`: events per second, more than 0 and at most a million.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1e6)
        .ok_or_else(|| "expected events per second, more than 0 and at most 1000000".to_owned())
}

/// `--rpc-rate`: calls per second, 0 (no limit) to a million.
fn parse_rpc_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1e6)
        .ok_or_else(|| "expected calls per second, 0 (no limit) to 1000000".to_owned())
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
    pub(crate) fn settings(&self) -> Result<(HubSettings, Option<&'static str>), String> {
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
        settings.hub.resume_wait = seconds(self.resume_wait);
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
        settings.max_tickets = self.max_tickets;
        settings.max_tickets_per_subject = self.max_tickets_per_subject;
        settings.max_subscriptions = self.max_subscriptions;
        settings.max_subscribe_rate = self.max_subscribe_rate;
        settings.max_rpc_in_flight = self.max_rpc_in_flight;
        settings.rpc_rate = (self.rpc_rate > 0.0).then(|| {
            let burst = self
                .rpc_burst
                .map_or((2.0 * self.rpc_rate).ceil().max(1.0), f64::from);
            PublishRate::new(self.rpc_rate, burst)
        });
        Ok((settings, source))
    }
}

/// Where the hub's /metrics is served and who may read it.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Metrics (/metrics of --app demo and --app hub)")]
pub(crate) struct MetricsArgs {
    /// Serve /metrics on a listener of its own at this address (say
    /// 127.0.0.1:9090, or another private interface), and not on the
    /// main port (which then answers it with 404); the live admin page,
    /// /admin, is served there too (and only there). It answers 421 to a
    /// request whose Host is not its address, localhost or an
    /// --admin-host.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// /metrics requires Authorization: Bearer TOKEN (or set
    /// TETHER_METRICS_TOKEN, which other users cannot see in the process
    /// list); so does /admin, where a browser signs in with it once. It is
    /// the admin credential: without it the admin page is read-only (the
    /// counters) and its actions are refused (403).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) metrics_token: Option<Secret>,
    /// A host name the --metrics-listen listener serves besides its own
    /// address and localhost (repeat for more): a name, with a port to
    /// match that port only (admin.example.com, ops.example:8443), as a
    /// browser names it in Host (the name of a proxy or ingress in front
    /// of it, say). A request naming another host is answered 421, so
    /// that a page whose DNS name was made to point at the listener (DNS
    /// rebinding) reaches nothing there.
    #[arg(long = "admin-host", value_name = "NAME", value_parser = parse_admin_host)]
    pub(crate) admin_hosts: Vec<String>,
    /// Add a series per topic (backlog events and bytes). Off by default:
    /// it names every topic, and a label per topic has no bound.
    #[arg(long)]
    pub(crate) metrics_topics: bool,
}

/// An `--admin-host`: a host name or address, and an optional port.
fn parse_admin_host(text: &str) -> Result<String, String> {
    if HubSettings::is_admin_host(text) {
        Ok(text.to_owned())
    } else {
        Err(
            "not a host: a name or address and an optional port (admin.example.com, ops.example:8443), \
             no scheme, path or *"
                .to_owned(),
        )
    }
}

impl MetricsArgs {
    pub(crate) fn apply(&self, settings: &mut HubSettings, config: &mut Config) {
        settings.metrics_topics = self.metrics_topics;
        settings.admin_hosts = self.admin_hosts.clone();
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
    pub(crate) data_dir: PathBuf,
    /// Keep events in memory only (lost on restart), as before.
    #[arg(long, conflicts_with_all = ["data_dir", "fsync", "retention"])]
    pub(crate) memory: bool,
    /// When appended events reach the disk: always (before each publish is
    /// answered), interval=MS (at most MS milliseconds after), or never
    /// (when the kernel writes back). Killing the process loses nothing
    /// answered in any mode; a power loss loses nothing with always, up to
    /// MS ms of publishes with interval, and up to the kernel's writeback
    /// delay (about 30 s on Linux) with never.
    #[arg(long, value_name = "MODE", value_parser = parse_fsync, default_value = "interval=10")]
    pub(crate) fsync: Fsync,
    /// Delete logged events older than this many seconds (they are not
    /// recovered after a restart either); without it, only the backlog
    /// bounds (--backlog-*) decide.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) retention: Option<f64>,
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

impl DurableArgs {
    /// Where the options keep the hub's events.
    pub(crate) fn storage(&self) -> Storage {
        if self.memory {
            return Storage::Memory;
        }
        let mut config = DurableConfig::new(self.data_dir.clone());
        config.fsync = self.fsync;
        config.retention = self.retention.map(seconds);
        Storage::Durable(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, FromArgMatches as _};

    use super::*;

    fn settings(args: &[&str]) -> HubSettings {
        let cmd = HubArgs::augment_args(clap::Command::new("serve"));
        let matches = cmd.try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()));
        let hub = HubArgs::from_arg_matches(&matches.expect("the options parse")).expect("hub options");
        hub.settings().expect("settings").0
    }

    #[test]
    fn calls_to_the_backend_are_bounded_by_default_and_as_told() {
        let default = settings(&[]);
        assert_eq!(default.max_rpc_in_flight, 16);
        assert_eq!(default.rpc_rate, Some(PublishRate::new(10.0, 20.0)));
        let told = settings(&[
            "--max-rpc-in-flight",
            "4",
            "--rpc-rate",
            "2.5",
            "--rpc-burst",
            "7",
        ]);
        assert_eq!(told.max_rpc_in_flight, 4);
        assert_eq!(told.rpc_rate, Some(PublishRate::new(2.5, 7.0)));
        assert_eq!(
            settings(&["--rpc-rate", "3"]).rpc_rate,
            Some(PublishRate::new(3.0, 6.0))
        );
        assert_eq!(settings(&["--rpc-rate", "0"]).rpc_rate, None);
        let cmd = || HubArgs::augment_args(clap::Command::new("serve"));
        for bad in [
            &["--rpc-rate", "-1"][..],
            &["--max-rpc-in-flight", "0"],
            &["--rpc-burst", "0"],
        ] {
            let argv = std::iter::once("serve").chain(bad.iter().copied());
            assert!(cmd().try_get_matches_from(argv).is_err(), "{bad:?}");
        }
    }
}
