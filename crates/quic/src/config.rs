//! The limits of a [`QuicServer`](crate::server::QuicServer) and the quinn-proto configuration
//! made from them.

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{IdleTimeout, ServerConfig, TransportConfig, VarInt};
use tether_h3::session::SessionConfig;

/// The ALPN protocol ID of HTTP/3 (RFC 9114 §3.1).
pub const ALPN_H3: &[u8] = b"h3";

/// What a [`QuicServer`](crate::server::QuicServer) allows a client. Every limit is explicit:
/// the defaults are tether's, not quinn-proto's.
#[derive(Debug, Clone, PartialEq)]
pub struct QuicConfig {
    /// Connections held at once; a new one past it is refused
    /// (CONNECTION_REFUSED).
    pub max_connections: usize,
    /// Handshakes in progress from which a client whose address is not
    /// validated yet gets a Retry first (RFC 9000 §8.1.2); 0 retries every
    /// new client.
    pub retry_above_handshakes: usize,
    /// Request streams a client may have open at once, from the end of
    /// its handshake (MAX_STREAMS).
    pub max_concurrent_bidi_streams: u32,
    /// Request streams a client may open before its handshake is complete
    /// (initial_max_streams_bidi; at most
    /// [`QuicConfig::max_concurrent_bidi_streams`]), raised to that once it
    /// is (default 16). QUIC keeps a slot for every stream a client may
    /// open from the moment the connection is made, so that a half-open
    /// handshake would otherwise hold a hundred of them; a client that
    /// opens more than this many requests in its first flight waits one
    /// round trip for the rest.
    pub handshake_bidi_streams: u32,
    /// Unidirectional streams a client may have open at once: its control
    /// and QPACK streams need 3 (RFC 9114 §6.2), the rest is room for
    /// grease and extension streams.
    pub max_concurrent_uni_streams: u32,
    /// A connection with no packet from the client for this long is
    /// dropped (max_idle_timeout).
    pub idle_timeout: Duration,
    /// A connection whose handshake is not complete after this long is
    /// closed.
    pub handshake_timeout: Duration,
    /// Bytes a client may send on one stream ahead of what was read
    /// (initial_max_stream_data_*).
    pub stream_receive_window: u32,
    /// Bytes a client may send on all streams ahead of what was read
    /// (initial_max_data).
    pub receive_window: u32,
    /// Bytes this server keeps unacknowledged per connection.
    pub send_window: u64,
    /// Bytes of QUIC datagrams (RFC 9221) kept per connection, received
    /// and not yet read or queued and not yet sent (past it the oldest
    /// are dropped). Datagrams are offered (the max_datagram_frame_size
    /// transport parameter) only when the session serves WebTransport
    /// ([`SessionConfig::max_webtransport_sessions`] above 0).
    pub datagram_buffer: usize,
    /// Bytes the server's own control and QPACK decoder streams may hold
    /// unsent before the connection is closed with H3_EXCESSIVE_LOAD
    /// (default 64 KiB). What they carry is small (SETTINGS, GOAWAY, a few
    /// bytes per request stream for acknowledgments and cancellations) and
    /// a client that grants them credit takes it at once; one that grants
    /// none while opening and resetting requests would otherwise make the
    /// server keep a cancellation per stream for ever.
    pub max_control_backlog: usize,
    /// The HTTP/3 session of each connection.
    pub session: SessionConfig,
    /// The first byte of every connection ID this server issues (its
    /// loop's index among several on one port), so that a datagram can
    /// be routed to the server holding its connection before any reads it
    /// ([`crate::routing::issuer_of`]); `None` (the default): IDs wholly
    /// random.
    pub connection_id_prefix: Option<u8>,
    /// Handshakes in progress from one source (an IPv4 address, or an
    /// IPv6 /64) at once; a new client from it past that is refused
    /// (CONNECTION_REFUSED) until one of them completes or times out
    /// (default 8). A real client opens one or two at a time; this keeps
    /// one source from holding the half-open state of many.
    pub max_half_open_per_source: usize,
    /// Handshakes in progress at once in all; a new client past that is
    /// refused (default 1024). Each is bounded in time by
    /// [`QuicConfig::handshake_timeout`].
    pub max_half_open: usize,
}

impl Default for QuicConfig {
    fn default() -> QuicConfig {
        QuicConfig {
            max_connections: 10_000,
            retry_above_handshakes: 64,
            max_concurrent_bidi_streams: 100,
            handshake_bidi_streams: 16,
            max_concurrent_uni_streams: 8,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            stream_receive_window: 64 * 1024,
            receive_window: 1024 * 1024,
            send_window: 1024 * 1024,
            datagram_buffer: 64 * 1024,
            max_control_backlog: 64 * 1024,
            session: SessionConfig::default(),
            connection_id_prefix: None,
            max_half_open_per_source: 8,
            max_half_open: 1024,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TLS configuration has no TLS 1.3 or no AES-128-GCM suite, which
    /// QUIC needs.
    Tls(quinn_proto::crypto::rustls::NoInitialCipherSuite),
    /// The idle timeout is too long to be sent (above 2^62 ms).
    IdleTimeout,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Tls(e) => write!(f, "TLS configuration unusable for QUIC: {e}"),
            ConfigError::IdleTimeout => f.write_str("idle timeout too long"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl QuicConfig {
    /// The transport parameters and limits quinn-proto applies.
    pub(crate) fn transport(&self) -> Result<TransportConfig, ConfigError> {
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.handshake_bidi_streams()))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams))
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.idle_timeout).map_err(|_| ConfigError::IdleTimeout)?,
            ))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window)
            // QUIC DATAGRAM frames only for HTTP datagrams (WebTransport).
            .datagram_receive_buffer_size(
                (self.session.max_webtransport_sessions > 0).then_some(self.datagram_buffer),
            )
            .datagram_send_buffer_size(self.datagram_buffer);
        // Segmentation offload stays on (quinn-proto's default): a caller
        // whose socket does GSO asks poll_transmit for several datagrams
        // at once, any other for one.
        Ok(transport)
    }

    /// The request streams a client may open while it handshakes.
    pub(crate) fn handshake_bidi_streams(&self) -> u32 {
        self.handshake_bidi_streams.min(self.max_concurrent_bidi_streams)
    }

    /// The server configuration: `tls` (the TCP listener's, certificates
    /// and all) with ALPN `h3` only and no 0-RTT, and these limits.
    pub(crate) fn server(&self, tls: &rustls::ServerConfig) -> Result<ServerConfig, ConfigError> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![ALPN_H3.to_vec()];
        tls.max_early_data_size = 0;
        let crypto = QuicServerConfig::try_from(Arc::new(tls)).map_err(ConfigError::Tls)?;
        let mut server = ServerConfig::with_crypto(Arc::new(crypto));
        server
            .transport_config(Arc::new(self.transport()?))
            .max_incoming(self.max_connections.max(1));
        Ok(server)
    }
}
