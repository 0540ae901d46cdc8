//! The settings both WebSocket clients are made from: the blocking one
//! ([`crate::WebSocket`]) and the one for an event loop
//! ([`crate::NonBlockingClient`]). Each client's module adds the method
//! that makes it.

use std::time::Duration;

use tether_backoff::Backoff;
use tether_client_core::url::{Scheme, Url};

use crate::error::Error;

/// Settings for a WebSocket connection: what the upgrade request says,
/// limits, timeouts, compression and reconnection. Build one with
/// [`WebSocket::builder`](crate::WebSocket::builder), then
/// [`connect`](Self::connect) (blocking) or hand it a socket with
/// [`NonBlockingClient::new`](crate::NonBlockingClient::new).
///
/// | setting | default |
/// | --- | --- |
/// | subprotocols, extra headers, `Origin` | none |
/// | permessage-deflate offer | on (feature `deflate`): `permessage-deflate; client_max_window_bits` |
/// | connect timeout | 10 s per address |
/// | opening handshake timeout | 10 s |
/// | write timeout (blocking) | 30 s |
/// | limits, keepalive ([`tether_ws::Config`]) | 16 MiB frames, 64 MiB messages, 100 000 fragments, ping after 30 s of silence, give up after 60 s, 5 s for the close handshake |
/// | wait for the server to close TCP after the close handshake | 1 s |
/// | reconnection | off |
/// | answers (pongs, the close echo) queued unwritten before the connection fails with 1008 | 1 MiB |
/// | bytes one [`NonBlockingClient::on_readable`](crate::NonBlockingClient::on_readable) reads at most | 256 KiB |
///
/// ```no_run
/// use std::time::Duration;
/// use tether_client::{Backoff, WebSocket};
///
/// let mut ws = WebSocket::builder("ws://127.0.0.1:9001/chat?room=1")
///     .protocol("chat.v1")
///     .header("Authorization", "Bearer abc")
///     .origin("http://127.0.0.1:9001")
///     .max_message_size(1 << 20)
///     .reconnect(Backoff::new().max(Duration::from_secs(10)))
///     .connect()?;
/// assert_eq!(ws.protocol(), Some("chat.v1"));
/// # Ok::<(), tether_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketBuilder {
    url: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) origin: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) close_linger: Duration,
    pub(crate) ws: tether_ws::Config,
    pub(crate) compression: bool,
    #[cfg(feature = "deflate")]
    pub(crate) deflate_offer: tether_deflate::ClientOffer,
    pub(crate) reconnect: Option<Backoff>,
    pub(crate) tls: crate::tls::TlsChoice,
    pub(crate) max_queued_answers: usize,
    pub(crate) read_budget: usize,
}

/// The default of [`WebSocketBuilder::max_queued_answers`]: 1 MiB.
pub const DEFAULT_MAX_QUEUED_ANSWERS: usize = 1024 * 1024;

/// The default of [`WebSocketBuilder::read_budget`]: 256 KiB.
pub const DEFAULT_READ_BUDGET: usize = 256 * 1024;

impl WebSocketBuilder {
    /// The defaults, for `url` (parsed when connecting).
    pub fn new(url: impl Into<String>) -> WebSocketBuilder {
        WebSocketBuilder {
            url: url.into(),
            protocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(30)),
            close_linger: Duration::from_secs(1),
            ws: tether_ws::Config::default(),
            compression: cfg!(feature = "deflate"),
            #[cfg(feature = "deflate")]
            deflate_offer: tether_deflate::ClientOffer::new(),
            reconnect: None,
            tls: crate::tls::TlsChoice::default(),
            max_queued_answers: DEFAULT_MAX_QUEUED_ANSWERS,
            read_budget: DEFAULT_READ_BUDGET,
        }
    }

    /// The TLS configuration for a `wss://` or `https://` URL (roots of
    /// one's own, say: [`crate::tls::roots_from_pem`]); by default the
    /// operating system's trusted roots.
    #[cfg(feature = "tls")]
    pub fn tls_config(
        mut self,
        config: std::sync::Arc<crate::tls::rustls::ClientConfig>,
    ) -> WebSocketBuilder {
        self.tls = crate::tls::TlsChoice::Given(config);
        self
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Offers a subprotocol; call it again for more, most preferred first.
    pub fn protocol(mut self, protocol: impl Into<String>) -> WebSocketBuilder {
        self.protocols.push(protocol.into());
        self
    }

    /// Offers these subprotocols, most preferred first (replacing any
    /// offered before).
    pub fn protocols<I: IntoIterator<Item = S>, S: Into<String>>(mut self, protocols: I) -> WebSocketBuilder {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a header to the upgrade request (`Authorization`, `Cookie`,
    /// ...). The handshake's own headers (`Host`, `Upgrade`,
    /// `Sec-WebSocket-*`, ...) cannot be set this way.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> WebSocketBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends an `Origin` header, as a browser would.
    pub fn origin(mut self, origin: impl Into<String>) -> WebSocketBuilder {
        self.origin = Some(origin.into());
        self
    }

    /// How long to wait for each address to accept the TCP connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> WebSocketBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server has, once TCP is connected, for the TLS
    /// handshake (`wss://`) and the answer to the upgrade request, all
    /// together.
    pub fn handshake_timeout(mut self, timeout: Duration) -> WebSocketBuilder {
        self.handshake_timeout = timeout;
        self
    }

    /// How long one blocking write may wait for the server to read
    /// (`None`: forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> WebSocketBuilder {
        self.write_timeout = timeout;
        self
    }

    /// After the close handshake, how long to wait for the server to close
    /// the TCP connection before closing it ourselves (RFC 6455 section
    /// 7.1.1: the server closes first, so that it, not the client, holds
    /// the TIME_WAIT).
    pub fn close_linger(mut self, linger: Duration) -> WebSocketBuilder {
        self.close_linger = linger;
        self
    }

    /// All limits and keepalive timers at once.
    pub fn config(mut self, config: tether_ws::Config) -> WebSocketBuilder {
        self.ws = config;
        self
    }

    /// The largest message accepted (after decompression).
    pub fn max_message_size(mut self, bytes: usize) -> WebSocketBuilder {
        self.ws = self.ws.max_message_size(bytes);
        self
    }

    /// The largest frame payload accepted.
    pub fn max_frame_size(mut self, bytes: u64) -> WebSocketBuilder {
        self.ws = self.ws.max_frame_size(bytes);
        self
    }

    /// Sends a ping after this much silence from the server (`None`:
    /// never).
    pub fn ping_interval(mut self, interval: Option<Duration>) -> WebSocketBuilder {
        self.ws = self.ws.ping_interval(interval);
        self
    }

    /// Gives up on a server silent for this long (`None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> WebSocketBuilder {
        self.ws = self.ws.idle_timeout(timeout);
        self
    }

    /// Offers permessage-deflate (on by default with the `deflate`
    /// feature; without it, this does nothing).
    pub fn compression(mut self, on: bool) -> WebSocketBuilder {
        self.compression = on && cfg!(feature = "deflate");
        self
    }

    /// The permessage-deflate offer to make (turns compression on).
    #[cfg(feature = "deflate")]
    pub fn deflate_offer(mut self, offer: tether_deflate::ClientOffer) -> WebSocketBuilder {
        self.deflate_offer = offer;
        self.compression = true;
        self
    }

    /// Reconnects the blocking client after the connection is lost (or the
    /// server closes with 1001 going away, 1011, 1012 service restart, 1013
    /// try again later or 1014), waiting as `backoff` says between
    /// attempts. Off by default. The attempts in a row run on across
    /// reconnections that bring no message, so a server that lets the
    /// client in and closes at once meets growing waits and, with
    /// [`Backoff::max_attempts`], the end (its close frame or the loss is
    /// then reported); a message, or a connection up as long as the
    /// longest wait, starts them over.
    pub fn reconnect(mut self, backoff: Backoff) -> WebSocketBuilder {
        self.reconnect = Some(backoff);
        self
    }

    /// How many bytes of automatic answers to the server's frames (pongs,
    /// the close echo) may wait unwritten, the server not reading them,
    /// before the connection fails with close code 1008 (default
    /// [`DEFAULT_MAX_QUEUED_ANSWERS`], 1 MiB). What you send yourself is
    /// not counted. At least 1.
    pub fn max_queued_answers(mut self, bytes: usize) -> WebSocketBuilder {
        self.max_queued_answers = bytes.max(1);
        self
    }

    /// How many bytes one call of
    /// [`NonBlockingClient::on_readable`](crate::NonBlockingClient::on_readable)
    /// reads at most (default [`DEFAULT_READ_BUDGET`], 256 KiB), so that
    /// a server sending without pause cannot keep the caller's loop from
    /// its other work; what is left is read on the next call (see
    /// [`NonBlockingClient::wants_read`](crate::NonBlockingClient::wants_read)).
    /// At least 1. The blocking client reads as its calls need.
    pub fn read_budget(mut self, bytes: usize) -> WebSocketBuilder {
        self.read_budget = bytes.max(1);
        self
    }

    /// Parses the URL, refusing schemes other than `ws:` and `wss:`.
    pub fn parse_url(&self) -> Result<Url, Error> {
        let url = Url::parse(&self.url)?;
        if !matches!(url.scheme(), Scheme::Ws | Scheme::Wss) {
            return Err(crate::url::unsupported_scheme(&url, "WebSocket"));
        }
        Ok(Url::parse_websocket(&self.url)?)
    }
}
