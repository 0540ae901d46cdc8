//! Server settings, with the defaults from tether's design.

use std::net::SocketAddr;
use std::time::Duration;

/// The handshake settings: subprotocols, extension negotiators (whose
/// values are the WebSocket extensions to install) and the policy hook that
/// may refuse an upgrade with 403 (for example an Origin allowlist).
///
/// With the `deflate` feature (on by default), offer permessage-deflate by
/// adding its negotiator; the first negotiated extension is installed in
/// each WebSocket connection:
///
/// ```
/// # #[cfg(feature = "deflate")] {
/// use tether_server::Handshake;
/// use tether_server::deflate::DeflateConfig;
///
/// let handshake = Handshake::new().negotiator(DeflateConfig::new().min_size(128));
/// # let _ = handshake; }
/// ```
pub type Handshake = tether_handshake::ServerConfig<Box<dyn tether_ws::Extension>>;

/// How a server listens and what it tolerates. Every limit has a default
/// (see [`Config::new`]) and a field to change it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Connections beyond this (per event loop) are answered `503` with
    /// `Retry-After` and closed. `None`: the open-file limit (raised to its
    /// hard limit at start) less a reserve for the loop's own descriptors,
    /// divided among the loops of a [`crate::Cluster`].
    pub max_connections: Option<usize>,
    /// Whether to raise `RLIMIT_NOFILE` to its hard limit at start.
    pub raise_fd_limit: bool,
    /// How long the process may stay out of descriptors before clients
    /// waiting in the listen queue are answered `503` with `Retry-After`
    /// instead of waiting on (1 s). Until then the loop retries `accept`
    /// every 100 ms, so a short shortage only delays them.
    pub accept_patience: Duration,
    /// The largest request head; a larger one gets `431` (16 KiB).
    pub max_request_head: usize,
    /// The largest request body an application route accepts, announced
    /// with `Content-Length`; a larger one gets `413` (1 MiB). A chunked
    /// body may also take at most this much framing (chunk lines and
    /// their extensions, line ends) plus [`Config::max_request_head`] for
    /// its trailers; more gets `400`.
    pub max_request_body: usize,
    /// How long a new connection has to send a complete request head (and
    /// so, for a WebSocket, to finish its handshake) before it is dropped
    /// (10 s).
    pub handshake_timeout: Duration,
    /// How long a keep-alive HTTP connection may sit between requests
    /// (60 s): on HTTP/2, with no stream open, counted from its last
    /// request or open stream, whatever else the client sends (bytes the
    /// server drops do not keep it open). Also how long a stream's output
    /// may stay stalled on the client's window. `tether serve
    /// --keep-alive-timeout`.
    pub keep_alive_timeout: Duration,
    /// Output queued for one connection beyond which the slow-consumer
    /// policy applies (1 MiB): a connection's own replies pause reading
    /// from it until it drains; bytes pushed to it from elsewhere (a
    /// broadcast, an event) cut it loose instead, so that it never holds
    /// up anyone else.
    pub max_output: usize,
    /// WebSocket limits and keepalive (16 MiB frames, 64 MiB messages,
    /// 100 000 fragments, ping after 30 s of silence, give up after 60 s).
    pub ws: tether_ws::Config,
    /// A heartbeat comment on an event stream after this much silence
    /// (15 s), so that proxies keep it open and dead peers are noticed.
    pub sse_heartbeat: Duration,
    /// The `retry:` hint sent when a stream starts (3 s).
    pub sse_retry: Duration,
    /// Event streams compressed for clients that accept it (off): gzip or
    /// deflate, as `Accept-Encoding` prefers, each event flushed at once,
    /// and the bytes of an event sent to many streams compressed once for
    /// all (see `Encoded::with_sse_piece_lazy`). An application may
    /// leave a stream uncompressed (`App::compress_event_stream`). Needs
    /// the `deflate` feature; without it, no stream is compressed.
    pub sse_compression: bool,
    /// Event-stream bytes shorter than this go uncompressed within a
    /// compressed stream (128), where compressing would gain little for
    /// its cost.
    pub sse_compress_min: usize,
    /// How long a graceful shutdown may take before the remaining
    /// connections are dropped (5 s).
    pub shutdown_timeout: Duration,
    /// After the last bytes of a connection are written, how long to keep
    /// reading (and discarding) until the peer closes, so that our final
    /// bytes are not lost to a reset (2 s). `tether serve --linger`.
    pub linger: Duration,
    /// The size of the one read buffer the loop shares among all
    /// connections (64 KiB).
    pub read_buffer: usize,
    /// Serve TLS (`https://`, `wss://`) instead of plain TCP: every
    /// connection on the listener starts with a TLS handshake. `None` (the
    /// default) for plain TCP. See [`crate::tls`] to make one from PEM
    /// files. Feature `tls`, on by default.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// With [`Config::tls`] set: a listener of its own for TLS, beside the
    /// plain one at `addr` (both on every loop; port 0 picks a free
    /// port). `None` (the default): `addr` itself serves TLS when `tls` is
    /// set. Feature `tls`.
    #[cfg(feature = "tls")]
    pub tls_addr: Option<SocketAddr>,
    /// A second listener for operators (metrics, health), plain TCP, on
    /// the first loop only: requests that come through it are marked
    /// ([`crate::Request::via_admin_listener`]) for the application to
    /// serve what belongs there (the hub serves `/metrics` there and
    /// nothing else). Meant for a private address. `None` by default.
    pub admin_addr: Option<SocketAddr>,
    /// Serve HTTP/2 (on by default): with prior knowledge (h2c) on plain
    /// listeners, where a connection whose first bytes are the HTTP/2
    /// preface becomes an HTTP/2 session and any other stays HTTP/1.1, and
    /// by ALPN `h2` on TLS ones (the TLS configuration's ALPN list is set
    /// to `h2, http/1.1` at bind; `http/1.1` alone when off).
    pub http2: bool,
    /// The HTTP/2 connection's limits (concurrent streams, windows, frame
    /// size, the rapid-reset and flood budgets: see
    /// [`tether_h2::connection::Config`]). Its header list limit is
    /// lowered to [`Config::max_request_head`] when that is smaller.
    pub h2: tether_h2::connection::Config,
    /// The memory one HTTP/2 or HTTP/3 connection may hold for request
    /// bodies still arriving, in bytes, over all its streams (2 MiB; never
    /// less than [`Config::max_request_body`], so that one body of the
    /// largest size always fits). A stream whose body would take more is
    /// reset as not processed, so that the client may retry it
    /// (REFUSED_STREAM, RFC 9113 §8.7; H3_REQUEST_REJECTED, RFC 9114
    /// §4.1.1), and the others go on. Each body is handed to the
    /// application once it is complete, and its memory is then free again.
    pub request_bodies_per_connection: usize,
    /// Serve HTTP/3 (off by default): with [`Config::tls`] set, each loop
    /// serves QUIC on a UDP socket bound on the TLS listener's port number
    /// (see [`Config::reuse_port`] for whether it is shared) with the same
    /// certificates (ALPN `h3`); responses over TCP then carry
    /// `Alt-Svc: h3=":PORT"`. Binding fails with `InvalidInput` when it is
    /// on without TLS. Feature `tls`.
    #[cfg(feature = "tls")]
    pub http3: bool,
    /// The QUIC endpoint's limits (connections, streams, windows,
    /// timeouts, retry under load: see [`tether_quic::QuicConfig`]), with
    /// HTTP/3. Feature `tls`.
    #[cfg(feature = "tls")]
    pub quic: tether_quic::QuicConfig,
    /// Where each answered request is reported (off by default: `None`
    /// costs one branch a request). See [`AccessEntry`](crate::AccessEntry)
    /// for what is reported and when.
    pub access_log: Option<crate::access::AccessLog>,
    /// The proxies whose `Forwarded` or `X-Forwarded-For` header names
    /// the client (none by default): a request whose TCP peer is in one
    /// of these networks has the address the header gives as its
    /// [`Request::peer_addr`](crate::Request::peer_addr), in the access
    /// log and for the application; from any other peer the headers are
    /// ignored. See [`TrustedProxies`](crate::TrustedProxies).
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// Let other processes listen on the same addresses too (off by
    /// default). Off, each listener (main, TLS, admin, and the UDP socket
    /// of HTTP/3) is one socket without `SO_REUSEPORT`, which the loops of
    /// one [`crate::Cluster`] share among themselves and the kernel lets
    /// no other socket listen (TCP) or bind (UDP) beside: binding fails
    /// with `AddrInUse` when another socket holds the address, and no
    /// later server can join this one, so that a second server never
    /// silently takes a share of the first one's clients. On, every loop
    /// binds sockets of its own with `SO_REUSEPORT`, and the kernel spreads
    /// connections over them and over those of every other process of the
    /// same user that did the same (and only those: a server started
    /// without it still refuses to share, and is refused). Turn it on in
    /// every one of them. HTTP/3's connections are not handed between
    /// processes: a client whose address changes may land on another
    /// process, which does not hold its connection.
    pub reuse_port: bool,
    /// How long the server keeps serving after SIGTERM before its
    /// graceful shutdown begins (zero by default: at once). Meanwhile
    /// `/readyz` answers `503` with `Retry-After`, so that a load balancer
    /// that checks it stops sending new clients before the listeners
    /// close. SIGINT, a second signal, and [`crate::Handle::shutdown`]
    /// do not wait.
    pub drain_delay: Duration,
}

impl Config {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            max_connections: None,
            raise_fd_limit: true,
            accept_patience: Duration::from_secs(1),
            max_request_head: 16 * 1024,
            max_request_body: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_output: 1 << 20,
            ws: tether_ws::Config::default(),
            sse_heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(3),
            sse_compression: false,
            sse_compress_min: 128,
            shutdown_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            read_buffer: 64 * 1024,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            tls_addr: None,
            admin_addr: None,
            http2: true,
            h2: tether_h2::connection::Config::default(),
            request_bodies_per_connection: 2 << 20,
            #[cfg(feature = "tls")]
            http3: false,
            #[cfg(feature = "tls")]
            quic: tether_quic::QuicConfig {
                // One WebTransport session a connection (what a browser
                // page opens per URL).
                session: tether_h3::session::SessionConfig {
                    max_webtransport_sessions: 1,
                    ..tether_h3::session::SessionConfig::default()
                },
                ..tether_quic::QuicConfig::default()
            },
            access_log: None,
            trusted_proxies: crate::proxy::TrustedProxies::default(),
            reuse_port: false,
            drain_delay: Duration::ZERO,
        }
    }
}
