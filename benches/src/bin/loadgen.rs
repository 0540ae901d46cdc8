//! `loadgen`: a single-threaded mio load generator for WebSocket and
//! Server-Sent Events servers. See `benches/README.md`.
//!
//! Each mode prints a line for people and a JSON object on one line for
//! scripts, and exits non-zero when something went wrong (a connection
//! failed, an echo differed, a subscriber missed an event).
// A measuring and testing tool, not a server: it panics where it cannot go on, and indexes its own buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use tether_benches::loadgen::conn::{Dial, Kind, TlsListener};
use tether_benches::loadgen::report::{self, Report};
use tether_benches::loadgen::tls::Tls;
use tether_benches::loadgen::{
    echo, fanout, h2, idle, latency, multi, plan, replay, sources, summary, sys, topics, watch,
};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load generator for WebSocket and SSE servers (one thread, mio)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Echo throughput: each connection sends a message, waits for its echo, repeats.
    Echo(EchoArgs),
    /// Echo round-trip percentiles at a fixed offered rate (open loop).
    Latency(LatencyArgs),
    /// One publisher, N subscribers: delivery rate, latency, and every event checked.
    Fanout(FanoutArgs),
    /// N idle WebSockets held open: the server's RSS growth per connection (after one WebSocket opened and closed, so that code paged in once is not counted).
    Idle(IdleArgs),
    /// Fan-out to multiplexed WebSockets (the hub's /ws): N sockets each following K topics, publishes spread over P of them, every topic checked apart.
    Topics(TopicsArgs),
    /// A topic's backlog read from its start (lastEventId=0-0), timed; optionally published first.
    Replay(ReplayArgs),
    /// Reads JSON lines tagged with server=NAME and prints the comparison tables.
    Summary(SummaryArgs),
    /// Plans a run spread over processes: the loopback source addresses its connections need (at most a third of the ephemeral port range per source and server address pair). Prints the plan on stderr and the source count on stdout; refuses a --sources that is too few.
    Plan(PlanArgs),
}

#[derive(Args, Debug)]
struct Common {
    /// Server address: host:port, or with a scheme: ws:// or http:// for
    /// plain TCP, wss:// or https:// for TLS (e.g. wss://localhost:8443).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Over TLS, also trust the certificates in this PEM file (a CA, or
    /// the server's own self-signed certificate) besides the system's roots.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// The server's TLS listener beside a plain --addr (wss://host:port or
    /// https://host:port): every second connection goes there over TLS
    /// (HTTP/1.1 connections only).
    #[arg(long, value_name = "URL")]
    half_tls: Option<String>,
    /// The server's pid: its CPU time (and RSS) are read from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Most handshakes in progress at once while connecting (kept under the
    /// common listen backlog of 128, which a burst of connects overflows).
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Seconds allowed for opening all connections.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// KEY=VALUE added to the JSON line (repeatable), e.g. server=tether.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// Run as N processes started together, each with its share of the
    /// connections (subscribers; offered rate), and report them as one
    /// (echo, latency and fanout).
    #[arg(long, value_parser = at_least_one, default_value_t = 1)]
    procs: usize,
    /// Bind the connections, in turn, to the loopback addresses 127.0.0.1
    /// to 127.0.0.N before they connect: one source address has about
    /// 28 000 ephemeral ports towards one server address (HTTP/1.1
    /// connections only; the server must listen on loopback).
    #[arg(long, value_name = "N")]
    sources: Option<usize>,
    /// With --procs 2 or more (echo, latency, fanout): a server process to
    /// watch (repeatable, e.g. every process sharing the port). The parent
    /// adds the time to open every connection, the servers' summed RSS and
    /// the kernel's TCP memory per connection, and their CPU time per
    /// delivery.
    #[arg(long = "watch-pid", value_name = "PID", requires = "procs")]
    watch_pids: Vec<u32>,
    /// With --watch-pid: the bus joining the servers (e.g. redis-server),
    /// whose CPU time over the run is added.
    #[arg(long, value_name = "PID", requires = "watch_pids")]
    watch_bus_pid: Option<u32>,
    /// With --watch-pid: seconds to wait once every connection is open
    /// before reading the memory figures.
    #[arg(long, default_value_t = 1.0)]
    watch_settle: f64,
    /// Set by the parent of a multi-process run: this is process I of N.
    #[arg(long, hide = true, value_name = "I/N", value_parser = multi::Share::parse)]
    child: Option<multi::Share>,
}

impl Common {
    /// `Some(procs)` when this is the parent of a multi-process run.
    fn parent_of(&self) -> Option<usize> {
        (self.procs > 1 && self.child.is_none()).then_some(self.procs)
    }

    /// Runs as the parent of a multi-process run, watching the servers
    /// given.
    fn run_parent(&self) -> Result<Report, String> {
        let watch = if self.watch_pids.is_empty() {
            None
        } else {
            Some(watch::Options {
                pids: self.watch_pids.clone(),
                bus_pid: self.watch_bus_pid,
                settle: seconds(self.watch_settle, "watch-settle")?,
            })
        };
        multi::run(self.procs, watch).map_err(|e| e.to_string())
    }

    /// This process's part of `total`: all of it unless it is one of
    /// several.
    fn share(&self, total: usize, what: &str) -> Result<usize, String> {
        match self.child {
            None => Ok(total),
            Some(share) => match share.of(total) {
                0 => Err(format!("--procs {} is more than {what} ({total})", share.count)),
                n => Ok(n),
            },
        }
    }
}

#[derive(Args, Debug)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Request target of the echo endpoint.
    #[arg(long, default_value = "/")]
    path: String,
    /// Connections.
    #[arg(long, short = 'c', value_parser = at_least_one, default_value_t = 100)]
    connections: usize,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Seconds to measure.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Seconds of echo before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Send binary messages (default: text).
    #[arg(long)]
    binary: bool,
    /// Compare every echoed byte with what was sent.
    #[arg(long)]
    verify: bool,
    /// Offer permessage-deflate (fail if the server declines it): the
    /// message is JSON-like text, compressed once and sent as it is every
    /// time; echoes are inflated and checked. Not with --h2.
    #[arg(long, conflicts_with = "h2")]
    deflate: bool,
    /// Messages in flight on each connection: a connection sends this many
    /// at the start and one more for every echo. Not with --h2.
    #[arg(long, value_parser = at_least_one, default_value_t = 1, conflicts_with = "h2")]
    pipeline: usize,
    /// Over HTTP/2 (h2c with prior knowledge): each WebSocket (--connections counts them) is a stream,
    /// --streams-per-conn of them to a connection.
    #[arg(long)]
    h2: bool,
    /// With --h2: streams on each connection.
    #[arg(long, value_parser = at_least_one, default_value_t = 100)]
    streams_per_conn: usize,
}

#[derive(Args, Debug)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Request target of the echo endpoint.
    #[arg(long, default_value = "/")]
    path: String,
    /// Connections (messages go to them in turn).
    #[arg(long, short = 'c', value_parser = at_least_one, default_value_t = 10)]
    connections: usize,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Messages per second, over all connections.
    #[arg(long, short = 'r', default_value_t = 10_000.0)]
    rate: f64,
    /// Seconds to measure.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds to wait for the last echoes.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Send binary messages (default: text).
    #[arg(long)]
    binary: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    /// WebSocket subscribers.
    Ws,
    /// Server-Sent Events subscribers.
    Sse,
    /// Fan-out only: half WebSocket subscribers, half event streams of the
    /// same topic (the publisher's path with its final /ws changed to
    /// /events), in each process.
    Mixed,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// How subscribers connect.
    #[arg(long, value_enum, default_value = "ws")]
    transport: Transport,
    /// Subscribers.
    #[arg(long, short = 'n', default_value_t = 100)]
    subscribers: usize,
    /// The publisher's WebSocket request target (a hub topic's WebSocket
    /// route, or a chat room such as /chat?room=T).
    #[arg(long, default_value = "/topics/chat.bench/ws")]
    pub_path: String,
    /// The subscribers' request target [default: the publisher's for ws;
    /// for sse, the publisher's with its final /ws changed to /events].
    #[arg(long)]
    sub_path: Option<String>,
    /// Messages published per second.
    #[arg(long, short = 'r', default_value_t = 100.0)]
    rate: f64,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Seconds to publish.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Subscribers take raw messages only, no JSON envelope (a server
    /// that sends each published message as it came, such as a plain
    /// pub/sub echo).
    #[arg(long)]
    raw: bool,
    /// Over HTTP/2 (h2c with prior knowledge): each subscriber is a stream,
    /// --streams-per-conn of them to a connection.
    #[arg(long)]
    h2: bool,
    /// Over HTTP/3 (QUIC, on the UDP port of the https:// --addr): each
    /// subscriber is an event stream (--transport sse), --streams-per-conn
    /// of them to a connection, each connection on a UDP socket of its
    /// own; the publisher stays a WebSocket over TLS.
    #[arg(long, conflicts_with = "h2")]
    h3: bool,
    /// With --h2 or --h3: streams on each connection.
    #[arg(long, value_parser = at_least_one, default_value_t = 100)]
    streams_per_conn: usize,
    /// The publisher sends the hub's JSON envelopes (?envelope=1 is added to
    /// --pub-path) and times and checks the acknowledgement of each (one
    /// process only).
    #[arg(long)]
    ack: bool,
    /// With --ack: most publishes unacknowledged at once; the schedule
    /// waits while that many are (with a --rate above what the server
    /// takes, this measures the acknowledged publishes per second).
    #[arg(long, value_parser = at_least_one, requires = "ack")]
    window: Option<usize>,
    /// WebSocket subscribers offer permessage-deflate
    /// (`permessage-deflate; client_max_window_bits`) and inflate the
    /// messages that come compressed; with --raw each is checked byte for
    /// byte. The report adds bytes read and server CPU per delivery.
    #[arg(long)]
    deflate: bool,
    /// Pad messages with JSON-like text (a made-up quote feed, about 3 to
    /// 1 with deflate) instead of dots.
    #[arg(long)]
    json_payload: bool,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    common: Common,
    /// The topic's path: the publisher opens PATH/ws?envelope=1, the reader
    /// PATH/events (sse) or PATH/ws (ws), with ?lastEventId=0-0.
    #[arg(long, default_value = "/topics/bench.replay")]
    topic: String,
    /// How the reader connects.
    #[arg(long, value_enum, default_value = "sse")]
    transport: Transport,
    /// Events to publish and to read back.
    #[arg(long, short = 'n', value_parser = at_least_one_u64, default_value_t = 100_000)]
    events: u64,
    /// Publish the events first (as the hub's JSON envelopes, each acknowledged).
    #[arg(long)]
    publish: bool,
    /// Publish only; do not read them back.
    #[arg(long, requires = "publish")]
    no_replay: bool,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Most publishes unacknowledged at once.
    #[arg(long, value_parser = at_least_one, default_value_t = 256)]
    window: usize,
    /// Seconds publishing may take, and reading back.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
}

#[derive(Args, Debug)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Request target of a WebSocket endpoint.
    #[arg(long, default_value = "/")]
    path: String,
    /// Connections to hold.
    #[arg(long, short = 'c', value_parser = at_least_one, default_value_t = 1000)]
    connections: usize,
    /// Seconds to wait after the last handshake before reading the RSS.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// Seconds to hold the connections after that.
    #[arg(long, default_value_t = 2.0)]
    hold: f64,
    /// HTTP/3: QUIC connections to the UDP port of the https:// --addr
    /// that open no request stream (handshake and control streams only),
    /// instead of WebSockets.
    #[arg(long)]
    h3: bool,
    /// Each connection (a multiplexed socket: --path /ws) subscribes
    /// PREFIX.0 to PREFIX.K-1 (--topic-prefix) and waits for each to be
    /// answered before the RSS is read: the figure per connection then
    /// holds K subscriptions.
    #[arg(long, value_name = "K", default_value_t = 0)]
    subscribe: usize,
    /// With --subscribe: the topics' common prefix.
    #[arg(long, value_name = "PREFIX", default_value = "idle")]
    topic_prefix: String,
}

#[derive(Args, Debug)]
struct TopicsArgs {
    #[command(flatten)]
    common: Common,
    /// The multiplexed WebSocket's request target.
    #[arg(long, default_value = "/ws")]
    path: String,
    /// Subscribing sockets.
    #[arg(long, short = 'n', value_parser = at_least_one, default_value_t = 100)]
    subscribers: usize,
    /// Topics each socket follows: PREFIX.0 to PREFIX.K-1.
    #[arg(long, short = 'k', value_parser = at_least_one, default_value_t = 10)]
    topics: usize,
    /// Of them, how many (the first ones) are published to, in turn
    /// [default: all].
    #[arg(long, value_parser = at_least_one)]
    published: Option<usize>,
    /// The topics' common prefix (the hub must let their subscribers
    /// publish: --ws-publish 'PREFIX.*').
    #[arg(long, value_name = "PREFIX", default_value = "bench.mux")]
    topic_prefix: String,
    /// Messages published per second, over all the published topics.
    #[arg(long, short = 'r', default_value_t = 100.0)]
    rate: f64,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Seconds to publish.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
}

#[derive(Args, Debug)]
struct SummaryArgs {
    /// Files of JSON lines (from runs tagged with server=NAME, and
    /// generator=NAME when another generator ran them).
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    /// The server the ratios are to.
    #[arg(long, default_value = "tether")]
    baseline: String,
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// Connections in all.
    #[arg(long)]
    connections: u64,
    /// Server processes.
    #[arg(long, default_value_t = 1)]
    servers: u64,
    /// Load generator processes.
    #[arg(long, default_value_t = 1)]
    procs: u64,
    /// Source addresses wanted; refused when too few. Default: the fewest
    /// that suffice.
    #[arg(long)]
    sources: Option<u64>,
    /// The ephemeral port range, "LOW HIGH" (default: this machine's,
    /// /proc/sys/net/ipv4/ip_local_port_range).
    #[arg(long, value_name = "LOW HIGH")]
    port_range: Option<String>,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

fn at_least_one_u64(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what} must be a non-negative number of seconds"))
}

/// Splits `--addr` into whether it asks for TLS and its host:port.
fn split_scheme(addr: &str) -> Result<(bool, &str), String> {
    let (tls, rest) = match addr.split_once("://") {
        None => (false, addr),
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => (false, rest),
            "wss" | "https" => (true, rest),
            _ => {
                return Err(format!(
                    "--addr {addr}: the scheme must be ws, wss, http or https"
                ));
            }
        },
    };
    // A trailing slash is allowed; a path goes in --path.
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.is_empty() || host_port.contains('/') {
        return Err(format!("--addr {addr}: give host:port (the path goes in --path)"));
    }
    Ok((tls, host_port))
}

/// The first address of `host_port` (given as `given`).
fn resolve(host_port: &str, given: &str) -> Result<SocketAddr, String> {
    host_port
        .to_socket_addrs()
        .map_err(|e| format!("{given}: {e}"))?
        .next()
        .ok_or_else(|| format!("{given}: no address"))
}

fn dial(common: &Common) -> Result<Dial, String> {
    let (tls, host_port) = split_scheme(&common.addr)?;
    let addr = resolve(host_port, &common.addr)?;
    let tls_for = |host_port: &str| {
        let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host);
        Tls::new(host, common.ca.as_deref()).map_err(|e| e.to_string())
    };
    let half_tls = match &common.half_tls {
        None => None,
        Some(_) if tls => return Err("--half-tls is beside a plain --addr".into()),
        Some(url) => match split_scheme(url)? {
            (true, other) => Some(TlsListener {
                addr: resolve(other, url)?,
                host: other.to_owned(),
                tls: tls_for(other)?,
            }),
            (false, _) => {
                return Err(format!(
                    "--half-tls {url}: give wss://host:port or https://host:port"
                ));
            }
        },
    };
    let tls = if tls {
        Some(tls_for(host_port)?)
    } else {
        if common.ca.is_some() && half_tls.is_none() {
            return Err("--ca is for TLS: give --addr as wss://host:port or https://host:port".into());
        }
        None
    };
    Ok(Dial {
        addr,
        host: host_port.to_owned(),
        tls,
        concurrency: common.connect_concurrency,
        timeout: seconds(common.connect_timeout, "connect-timeout")?,
        sources: match common.sources {
            Some(n) => sources::loopback(n)?,
            None => Vec::new(),
        },
        half_tls,
    })
}

fn run(cli: Cli) -> Result<(Report, Vec<String>), String> {
    sys::raise_open_files_limit().map_err(|e| format!("raising the open-files limit: {e}"))?;
    let common = match &cli.mode {
        Mode::Echo(a) => Some(&a.common),
        Mode::Latency(a) => Some(&a.common),
        Mode::Fanout(a) => Some(&a.common),
        Mode::Idle(a) => Some(&a.common),
        Mode::Replay(a) => Some(&a.common),
        Mode::Topics(a) => Some(&a.common),
        Mode::Summary(_) | Mode::Plan(_) => None,
    };
    if common.is_some_and(|c| !c.watch_pids.is_empty() && c.procs < 2) {
        return Err(
            "--watch-pid is measured by the parent of a multi-process run: give --procs 2 or more".into(),
        );
    }
    Ok(match cli.mode {
        Mode::Echo(a) if a.common.parent_of().is_some() => (a.common.run_parent()?, a.common.tags),
        Mode::Latency(a) if a.common.parent_of().is_some() => (a.common.run_parent()?, a.common.tags),
        Mode::Fanout(a) if a.ack && a.common.procs > 1 => {
            return Err(
                "--ack runs as one process (the acknowledgements go to the publisher's alone)".into(),
            );
        }
        Mode::Fanout(a) if a.common.parent_of().is_some() => (a.common.run_parent()?, a.common.tags),
        Mode::Echo(a) => {
            let opts = echo::Options {
                dial: dial(&a.common)?,
                target: a.path,
                connections: a.common.share(a.connections, "--connections")?,
                size: a.size,
                binary: a.binary,
                verify: a.verify,
                deflate: a.deflate,
                pipeline: a.pipeline,
                warmup: seconds(a.warmup, "warmup")?,
                duration: seconds(a.duration, "duration")?,
                server_pid: a.common.pid,
                child: a.common.child.is_some(),
            };
            let report = if a.h2 {
                h2::echo(&opts, a.streams_per_conn)
            } else {
                echo::run(&opts)
            };
            (opened("echo", report)?, a.common.tags)
        }
        Mode::Latency(a) => {
            let opts = latency::Options {
                dial: dial(&a.common)?,
                target: a.path,
                connections: a.common.share(a.connections, "--connections")?,
                size: a.size,
                binary: a.binary,
                rate: a.rate / a.common.child.map_or(1, |s| s.count) as f64,
                warmup: seconds(a.warmup, "warmup")?,
                duration: seconds(a.duration, "duration")?,
                drain: seconds(a.drain, "drain")?,
                server_pid: a.common.pid,
                child: a.common.child.is_some(),
            };
            (opened("latency", latency::run(&opts))?, a.common.tags)
        }
        Mode::Fanout(a) => {
            let transport = match a.transport {
                Transport::Ws | Transport::Mixed => Kind::WebSocket,
                Transport::Sse => Kind::EventStream,
            };
            let events_path = || match a
                .pub_path
                .split_once('?')
                .unwrap_or((&a.pub_path, ""))
                .0
                .strip_suffix("/ws")
            {
                Some(topic) => Ok(format!("{topic}/events")),
                None => Err("--transport sse or mixed needs --sub-path with this --pub-path"),
            };
            let subscribe_target = match (&a.sub_path, a.transport) {
                (Some(path), _) => path.clone(),
                (None, Transport::Ws | Transport::Mixed) => a.pub_path.clone(),
                (None, Transport::Sse) => events_path()?,
            };
            let mixed_sse_target = match a.transport {
                Transport::Mixed => Some(events_path()?),
                _ => None,
            };
            let publish_target = if a.ack {
                let sep = if a.pub_path.contains('?') { '&' } else { '?' };
                format!("{}{sep}envelope=1", a.pub_path)
            } else {
                a.pub_path
            };
            let opts = fanout::Options {
                dial: dial(&a.common)?,
                transport,
                subscribers: a.common.share(a.subscribers, "--subscribers")?,
                publish_target,
                subscribe_target,
                mixed_sse_target,
                rate: a.rate,
                size: a.size,
                duration: seconds(a.duration, "duration")?,
                drain: seconds(a.drain, "drain")?,
                server_pid: a.common.pid,
                publish: a.common.child.is_none_or(|s| s.index == 0),
                raw: a.raw,
                child: a.common.child.is_some(),
                h2: (a.h2 || a.h3).then_some(a.streams_per_conn),
                h3: a.h3,
                ack: a.ack,
                window: a.window,
                deflate: a.deflate,
                json_payload: a.json_payload,
            };
            (opened("fanout", fanout::run(&opts))?, a.common.tags)
        }
        Mode::Idle(a) => {
            if a.common.procs > 1 {
                return Err("idle runs as one process (--procs is for echo, latency and fanout)".into());
            }
            let opts = idle::Options {
                dial: dial(&a.common)?,
                target: a.path,
                connections: a.connections,
                settle: seconds(a.settle, "settle")?,
                hold: seconds(a.hold, "hold")?,
                server_pid: a.common.pid,
                h3: a.h3,
                subscribe: topics::topic_names(&a.topic_prefix, a.subscribe),
            };
            (opened("idle", idle::run(&opts))?, a.common.tags)
        }
        Mode::Replay(a) => {
            if a.common.procs > 1 {
                return Err("replay runs as one process".into());
            }
            let opts = replay::Options {
                dial: dial(&a.common)?,
                topic: a.topic,
                transport: match a.transport {
                    Transport::Ws => Kind::WebSocket,
                    Transport::Sse => Kind::EventStream,
                    Transport::Mixed => return Err("replay reads with one transport: ws or sse".into()),
                },
                events: a.events,
                publish: a.publish,
                replay: !a.no_replay,
                size: a.size,
                window: a.window,
                timeout: seconds(a.timeout, "timeout")?,
            };
            (opened("replay", replay::run(&opts))?, a.common.tags)
        }
        Mode::Topics(a) => {
            if a.common.procs > 1 {
                return Err("topics runs as one process".into());
            }
            let opts = topics::Options {
                dial: dial(&a.common)?,
                target: a.path,
                subscribers: a.subscribers,
                topics: topics::topic_names(&a.topic_prefix, a.topics),
                published: a.published.unwrap_or(a.topics),
                rate: a.rate,
                size: a.size,
                duration: seconds(a.duration, "duration")?,
                drain: seconds(a.drain, "drain")?,
                server_pid: a.common.pid,
            };
            (opened("topics", topics::run(&opts))?, a.common.tags)
        }
        Mode::Plan(a) => {
            let ports = match &a.port_range {
                Some(text) => plan::parse_port_range(text).ok_or("--port-range: expected \"LOW HIGH\"")?,
                None => plan::local_port_range().map_err(|e| e.to_string())?,
            };
            let plan = plan::plan(a.connections, a.servers, a.procs, ports, a.sources)?;
            eprintln!("{plan}");
            println!("{}", plan.sources);
            std::process::exit(0);
        }
        Mode::Summary(a) => {
            let mut text = String::new();
            for file in &a.files {
                text += &std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
                text.push('\n');
            }
            print!("{}", summary::table(&text, &a.baseline));
            std::process::exit(0);
        }
    })
}

/// A mode's report, or, when its connections could not all be opened, a
/// report of why ([`report::ConnectFailures`]: the counts by cause, in the JSON line
/// too), which makes the run fail as any problem does.
fn opened(mode: &str, result: std::io::Result<Report>) -> Result<Report, String> {
    result.or_else(|e| match report::connect_failures(&e) {
        Some(failures) => Ok(failures.report(mode)),
        None => Err(e.to_string()),
    })
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok((mut report, tags)) => {
            if let Value::Object(map) = &mut report.json {
                for tag in tags {
                    let (k, v) = tag.split_once('=').unwrap_or((tag.as_str(), ""));
                    map.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            }
            report.print();
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_scheme;

    #[test]
    fn addresses() {
        assert_eq!(split_scheme("127.0.0.1:80"), Ok((false, "127.0.0.1:80")));
        assert_eq!(split_scheme("ws://h:1/"), Ok((false, "h:1")));
        assert_eq!(split_scheme("HTTP://h:1"), Ok((false, "h:1")));
        assert_eq!(split_scheme("wss://localhost:8443"), Ok((true, "localhost:8443")));
        assert_eq!(split_scheme("https://[::1]:8443/"), Ok((true, "[::1]:8443")));
        assert!(split_scheme("ftp://h:1").is_err());
        assert!(split_scheme("wss://h:1/echo").is_err());
        assert!(split_scheme("wss://").is_err());
    }
}
