//! The server's own options of `tether serve` (address, loops, limits,
//! timeouts, HTTP versions, compression) and the application chosen; the
//! values every group parses are in `values.rs`.

use std::net::IpAddr;
use std::path::PathBuf;

use tether_server::{Config, Handshake};

use super::auth::AuthArgs;
#[cfg(feature = "nats")]
use super::bus::NatsArgs;
#[cfg(feature = "rabbitmq")]
use super::bus::RabbitArgs;
#[cfg(feature = "redis")]
use super::bus::RedisArgs;
use super::hooks::HookArgs;
use super::hub::{DurableArgs, HubArgs, MetricsArgs};
#[cfg(feature = "tls")]
use super::tls::TlsArgs;
use super::values::{GIB, KIB, MEMORY, MIB, optional_seconds, parse_on_off, parse_seconds, seconds, whole};

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

/// Options of `tether serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Read options from this TOML file, each key an option's long name:
    /// `threads = 2`, `data-dir = "/var/lib/tether"`, `memory = true`,
    /// `trusted-origin = ["https://app.example.com"]`. The command line and
    /// the `TETHER_<NAME>` variables win over it; an option that repeats,
    /// given there, replaces the file's whole list.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) addr: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, default_value_t = 8080)]
    pub(crate) port: u16,
    /// The application to serve.
    #[arg(long, value_enum, default_value = "demo")]
    pub(crate) app: AppChoice,
    /// Event loops, one thread each, sharing the port (SO_REUSEPORT)
    /// [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 1024))]
    pub(crate) threads: Option<usize>,
    /// Most connections at once per event loop; more get 503. Default: the
    /// open-file limit (raised to its hard limit) less a small reserve,
    /// shared among the loops.
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 10_000_000))]
    pub(crate) max_connections: Option<usize>,
    /// Seconds the process may stay out of descriptors before clients
    /// waiting to be accepted get 503 with Retry-After (until then, accept
    /// is retried every 100 ms).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 1.0)]
    pub(crate) accept_patience: f64,
    /// Largest WebSocket frame payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20, value_parser = whole::<u64>(1, GIB))]
    pub(crate) max_frame_size: u64,
    /// Largest WebSocket message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = whole::<usize>(1, GIB))]
    pub(crate) max_message_size: usize,
    /// Most frames in one WebSocket message.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = whole::<u32>(1, 10_000_000))]
    pub(crate) max_fragments: u32,
    /// Output queued per connection before the slow-consumer policy applies, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(KIB, MEMORY))]
    pub(crate) max_output: usize,
    /// Largest request head, in bytes (larger gets 431).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024, value_parser = whole::<usize>(KIB, MIB))]
    pub(crate) max_request_head: usize,
    /// Largest request body an application route accepts, in bytes (larger gets 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = whole::<usize>(1, GIB))]
    pub(crate) max_request_body: usize,
    /// Seconds a new connection has to send its request head.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 10.0)]
    pub(crate) handshake_timeout: f64,
    /// Seconds of silence before a WebSocket ping (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 30.0)]
    pub(crate) ping_interval: f64,
    /// Seconds of silence before a WebSocket is given up (0: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 60.0)]
    pub(crate) idle_timeout: f64,
    /// Seconds between SSE heartbeat comments on a quiet stream.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 15.0)]
    pub(crate) sse_heartbeat: f64,
    /// Event streams sent compressed (gzip or deflate) to clients whose
    /// Accept-Encoding takes it, each event compressed once for all its
    /// streams; a namespace's compress=off leaves its topics' plain.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub(crate) sse_compression: bool,
    /// Event-stream bytes shorter than this go uncompressed within a
    /// compressed stream.
    #[arg(long, value_name = "BYTES", default_value_t = 128, value_parser = whole::<usize>(0, GIB))]
    pub(crate) sse_compress_min: usize,
    /// Seconds a graceful shutdown may take.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 5.0)]
    pub(crate) shutdown_timeout: f64,
    /// Seconds an HTTP connection with no request in progress stays open
    /// (HTTP/1.1 between requests; HTTP/2 with no stream open, whatever
    /// else the client sends); also how long a stream's output may stall.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 60.0)]
    pub(crate) keep_alive_timeout: f64,
    /// Seconds to go on reading (and dropping) what a client sends after
    /// the server's last bytes to it, so that they are not lost to a reset.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 2.0)]
    pub(crate) linger: f64,
    /// HTTP/2: with prior knowledge (h2c) on plain ports, by ALPN `h2`
    /// over TLS; HTTP/1.1 is served beside it either way.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub(crate) http2: bool,
    /// HTTP/3 over QUIC on the TLS port's number (UDP), with the same
    /// certificates; TCP answers then advertise it (`Alt-Svc`). Needs
    /// TLS (--tls-cert and --tls-key, or --tls-self-signed).
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "on|off", default_value = "off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub(crate) http3: bool,
    /// Seconds without a packet from the client before a QUIC connection
    /// is dropped.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 30.0)]
    pub(crate) http3_idle_timeout: f64,
    /// QUIC handshakes in progress at once from one source (an IPv4
    /// address or an IPv6 /64) per event loop; more are refused.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = whole::<usize>(1, 1_000_000))]
    pub(crate) http3_max_half_open_per_source: usize,
    /// QUIC handshakes in progress at once per event loop; more are
    /// refused.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = whole::<usize>(1, 10_000_000))]
    pub(crate) http3_max_half_open: usize,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub(crate) log_level: log::LevelFilter,
    /// How log lines are written on standard error: text, or one JSON
    /// object a line (time, level, kind, target, message; an access
    /// line's fields) for a log collector; with json, the start line on
    /// standard output is one JSON object too.
    #[arg(long, value_enum, value_name = "text|json", default_value = "text")]
    pub(crate) log_format: crate::logger::Format,
    /// Write a line for each request answered (method, target with
    /// credentials such as token= redacted, status, body bytes, duration,
    /// transport, HTTP version, peer, the credential's subject) beside
    /// the log, in its format.
    #[arg(long)]
    pub(crate) access_log: bool,
    /// A proxy or load balancer in front (an address, or a network as
    /// ADDRESS/PREFIX; repeat for more): a request whose TCP peer is in
    /// one has the client its Forwarded (or else X-Forwarded-For) header
    /// names as its address, in the logs and for the hooks. From any
    /// other peer those headers are ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub(crate) trusted_proxies: Vec<tether_server::Cidr>,
    /// Share this server's ports (the main one, --tls-listen's,
    /// --metrics-listen's, HTTP/3's UDP) with other processes started
    /// with this too (SO_REUSEPORT, same user): the kernel spreads new
    /// connections over them all. Off, no other process can listen on
    /// them, and a port another process holds is refused (`address in
    /// use`) rather than silently shared, whatever either one's --threads.
    /// An HTTP/3 connection stays with its process: a client whose address
    /// changes may reach another one and lose it.
    #[arg(long)]
    pub(crate) reuse_port: bool,
    /// Seconds to keep serving after SIGTERM before the graceful shutdown
    /// begins, with /readyz answering 503 meanwhile, so that a load
    /// balancer stops sending new clients before the port closes (0: shut
    /// down at once; SIGINT and a second signal never wait).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = 2.0)]
    pub(crate) drain_delay: f64,
    #[command(flatten)]
    pub(crate) hub: HubArgs,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,
    #[command(flatten)]
    pub(crate) durable: DurableArgs,
    #[command(flatten)]
    pub(crate) hooks: HookArgs,
    #[cfg(feature = "redis")]
    #[command(flatten)]
    pub(crate) redis: RedisArgs,
    #[cfg(feature = "nats")]
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[cfg(feature = "rabbitmq")]
    #[command(flatten)]
    pub(crate) rabbitmq: RabbitArgs,
    #[cfg(feature = "outbox")]
    #[command(flatten)]
    pub(crate) outbox: super::outbox::OutboxArgs,
    #[cfg(feature = "kafka")]
    #[command(flatten)]
    pub(crate) kafka: super::kafka::KafkaArgs,
    #[cfg(feature = "deflate")]
    #[command(flatten)]
    pub(crate) deflate: DeflateArgs,
    #[cfg(feature = "tls")]
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
}

impl Args {
    /// The server's configuration the options give (without TLS, which
    /// [`TlsArgs::tls`](super::tls::TlsArgs) loads, and the admin
    /// listener, which the metrics' options set).
    pub(crate) fn server_config(&self) -> Config {
        let mut config = Config::new(std::net::SocketAddr::new(self.addr, self.port));
        config.max_connections = self.max_connections;
        config.accept_patience = seconds(self.accept_patience);
        config.max_output = self.max_output;
        config.max_request_head = self.max_request_head;
        config.max_request_body = self.max_request_body;
        config.handshake_timeout = seconds(self.handshake_timeout);
        config.sse_heartbeat = seconds(self.sse_heartbeat);
        config.sse_compression = self.sse_compression;
        config.sse_compress_min = self.sse_compress_min;
        config.shutdown_timeout = seconds(self.shutdown_timeout);
        config.keep_alive_timeout = seconds(self.keep_alive_timeout);
        config.linger = seconds(self.linger);
        config.http2 = self.http2;
        config.reuse_port = self.reuse_port;
        config.drain_delay = seconds(self.drain_delay);
        #[cfg(feature = "tls")]
        {
            config.http3 = self.http3;
            // One handshake timeout for every transport.
            config.quic.handshake_timeout = config.handshake_timeout;
            config.quic.idle_timeout = seconds(self.http3_idle_timeout);
            config.quic.max_half_open_per_source = self.http3_max_half_open_per_source;
            config.quic.max_half_open = self.http3_max_half_open;
        }
        config.ws = tether_ws::Config::default()
            .max_frame_size(self.max_frame_size)
            .max_message_size(self.max_message_size)
            .max_fragments(self.max_fragments)
            .ping_interval(optional_seconds(self.ping_interval))
            .idle_timeout(optional_seconds(self.idle_timeout));
        config.trusted_proxies = tether_server::TrustedProxies::new(self.trusted_proxies.clone());
        config.access_log = self
            .access_log
            .then(|| crate::access_log::access_log(self.log_format));
        config
    }
}

/// permessage-deflate (RFC 7692) preferences of `tether serve`.
#[cfg(feature = "deflate")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Compression (permessage-deflate)")]
pub(crate) struct DeflateArgs {
    /// Do not offer permessage-deflate: every message goes out as it is.
    #[arg(long)]
    pub(crate) no_compression: bool,
    /// Keep the server's compression context between messages: better
    /// ratios for streams of similar messages, about 260 KiB more per
    /// connection at level 1, 370 KiB at higher levels (by default one
    /// compressor per thread serves all).
    #[arg(long)]
    pub(crate) deflate_server_context_takeover: bool,
    /// Let clients keep their compression context between messages: better
    /// ratios, about 47 KiB more per connection to inflate with.
    #[arg(long)]
    pub(crate) deflate_client_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, as a power of two
    /// (8-15); clients may ask for less.
    #[arg(long, value_name = "BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15))]
    pub(crate) deflate_server_window_bits: u8,
    /// Largest LZ77 window to ask clients to compress with (8-15), when
    /// they offer to be limited.
    #[arg(long, value_name = "BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(8..=15))]
    pub(crate) deflate_client_window_bits: u8,
    /// Messages smaller than this are sent uncompressed [default: 256, or
    /// 32 with --deflate-server-context-takeover].
    #[arg(long, value_name = "BYTES", value_parser = whole::<usize>(0, GIB))]
    pub(crate) deflate_min_size: Option<usize>,
    /// zlib compression level, 0 (store) to 9 (smallest, slowest).
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub(crate) deflate_level: u8,
}

#[cfg(feature = "deflate")]
pub(crate) fn handshake(args: &Args) -> Handshake {
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
pub(crate) fn handshake(_: &Args) -> Handshake {
    Handshake::new()
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    /// The server configuration `tether serve ARGV` makes, with `file`
    /// as its configuration file.
    #[allow(clippy::expect_used, reason = "a test fails by panicking")]
    fn config_of(file: &str, argv: &[&str]) -> tether_server::Config {
        let path = std::env::temp_dir().join(format!("tether-serve-keys-{}.toml", std::process::id()));
        std::fs::write(&path, file).expect("write the file");
        let mut all: Vec<OsString> = vec!["--config".into(), path.clone().into()];
        all.extend(argv.iter().map(OsString::from));
        let parsed = super::super::parse(&all);
        let _ = std::fs::remove_file(&path);
        parsed.expect("the options parse").0.server_config()
    }

    #[test]
    fn the_keep_alive_linger_and_quic_bounds_are_keys_and_options() {
        let defaults = config_of("", &[]);
        assert_eq!(defaults.keep_alive_timeout, Duration::from_secs(60));
        assert_eq!(defaults.linger, Duration::from_secs(2));
        let file = "keep-alive-timeout = 7.5\nlinger = 0.25\n\
                    http3-idle-timeout = 12\nhttp3-max-half-open-per-source = 3\n\
                    http3-max-half-open = 99\nhandshake-timeout = 4\n";
        let from_file = config_of(file, &[]);
        assert_eq!(from_file.keep_alive_timeout, Duration::from_millis(7500));
        assert_eq!(from_file.linger, Duration::from_millis(250));
        assert_eq!(from_file.quic.idle_timeout, Duration::from_secs(12));
        assert_eq!(from_file.quic.max_half_open_per_source, 3);
        assert_eq!(from_file.quic.max_half_open, 99);
        assert_eq!(from_file.quic.handshake_timeout, Duration::from_secs(4));
        let options = [
            "--keep-alive-timeout",
            "9",
            "--linger",
            "1",
            "--http3-idle-timeout",
            "5",
            "--http3-max-half-open-per-source",
            "2",
            "--http3-max-half-open",
            "50",
        ];
        let from_options = config_of(file, &options);
        assert_eq!(from_options.keep_alive_timeout, Duration::from_secs(9));
        assert_eq!(from_options.linger, Duration::from_secs(1));
        assert_eq!(from_options.quic.idle_timeout, Duration::from_secs(5));
        assert_eq!(from_options.quic.max_half_open_per_source, 2);
        assert_eq!(from_options.quic.max_half_open, 50);
    }
}
