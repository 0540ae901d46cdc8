//! Settings for an HTTP/2 connection, and connecting: TCP, TLS with ALPN
//! `h2`, the preface and the server's SETTINGS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_client_core::url::Url;
use tether_h2::client::{ClientConnection, Config as H2Config};
use tether_sse::Limits;

use super::H2Connection;
use super::shared::Inner;
use crate::error::Error;
#[cfg(feature = "tls")]
use crate::transport::is_timeout;
use crate::transport::{Transport, connect_tcp};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Settings for an [`H2Connection`].
///
/// | setting | default |
/// | --- | --- |
/// | connect timeout (TCP, TLS and the server's SETTINGS; also the longest a send waits for room under a stream's 1 MiB queue) | 10 s |
/// | read timeout of each handle's blocking calls | none |
/// | each stream's receive window | 1 MiB |
/// | the connection's receive window | 16 MiB |
/// | WebSocket limits ([`tether_ws::Config`]) | its defaults |
/// | event stream parser limits ([`Limits`]) | 64 KiB lines, 16 MiB events |
#[derive(Debug, Clone)]
pub struct H2Builder {
    url: String,
    tls: crate::tls::TlsChoice,
    pub(super) connect_timeout: Duration,
    pub(super) read_timeout: Option<Duration>,
    stream_window: u32,
    connection_window: u32,
    pub(super) ws: tether_ws::Config,
    pub(super) limits: Limits,
}

impl H2Builder {
    /// The defaults, for `url`: `http://` or `ws://` for h2c with prior
    /// knowledge (the server must speak HTTP/2 from the first byte),
    /// `https://` or `wss://` for TLS with ALPN `h2`. Only the scheme, host
    /// and port are used.
    pub fn new(url: impl Into<String>) -> H2Builder {
        H2Builder {
            url: url.into(),
            tls: crate::tls::TlsChoice::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            stream_window: 1 << 20,
            connection_window: 16 << 20,
            ws: tether_ws::Config::default(),
            limits: Limits::new(),
        }
    }

    /// The TLS configuration (its ALPN list is replaced by `h2`); by
    /// default the operating system's trusted roots.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<crate::tls::rustls::ClientConfig>) -> H2Builder {
        self.tls = crate::tls::TlsChoice::Given(config);
        self
    }

    /// How long to wait for the TCP connection, the TLS handshake, the
    /// server's SETTINGS and each response head.
    pub fn connect_timeout(mut self, timeout: Duration) -> H2Builder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a handle's blocking call waits for the server before
    /// failing with [`Error::Timeout`] (`None`: for ever).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> H2Builder {
        self.read_timeout = timeout;
        self
    }

    /// Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE): how
    /// much a server may send on a stream its reader has not consumed;
    /// at most 2^31-1.
    pub fn stream_window(mut self, bytes: u32) -> H2Builder {
        self.stream_window = bytes;
        self
    }

    /// The WebSocket limits of every WebSocket on the connection.
    pub fn ws_config(mut self, config: tether_ws::Config) -> H2Builder {
        self.ws = config;
        self
    }

    /// The parser limits of every event stream on the connection.
    pub fn sse_limits(mut self, limits: Limits) -> H2Builder {
        self.limits = limits;
        self
    }

    /// Connects: TCP, TLS with ALPN `h2` for a secure scheme (failing if
    /// the server does not choose `h2`), the connection preface, and the
    /// server's SETTINGS.
    pub fn connect(self) -> Result<H2Connection, Error> {
        let url = Url::parse(&self.url)?;
        let config = H2Config {
            initial_window_size: self.stream_window,
            connection_window: self.connection_window.max(self.stream_window).max(65_535),
            ..H2Config::default()
        };
        let mut out = Vec::new();
        let h2 = ClientConnection::new(config, &mut out)
            .map_err(|e| Error::InvalidArgument(format!("HTTP/2 settings: {e}")))?;
        let io = connect(&url, self.connect_timeout, &self.tls)?;
        let inner = Inner {
            io,
            h2,
            input: Vec::new(),
            out,
            read_buf: vec![0; READ_CHUNK],
            streams: HashMap::new(),
            failure: None,
        };
        let conn = H2Connection {
            inner: Arc::new(Mutex::new(inner)),
            url,
            options: self,
        };
        let deadline = Instant::now() + conn.options.connect_timeout;
        conn.wait(Some(deadline), "the server's HTTP/2 SETTINGS", |inner| {
            inner.h2.settings_received().then_some(Ok(()))
        })?;
        Ok(conn)
    }
}

/// TCP, and TLS with ALPN `h2` for a secure scheme.
fn connect(url: &Url, timeout: Duration, tls: &crate::tls::TlsChoice) -> Result<Transport, Error> {
    let socket = connect_tcp(url, timeout)?;
    socket
        .set_write_timeout(Some(timeout))
        .map_err(|e| Error::io("set the write timeout", e))?;
    if !url.scheme().is_secure() {
        return Ok(Transport::Plain(socket));
    }
    secure(socket, url, timeout, tls)
}

#[cfg(feature = "tls")]
fn secure(
    mut socket: std::net::TcpStream,
    url: &Url,
    timeout: Duration,
    tls: &crate::tls::TlsChoice,
) -> Result<Transport, Error> {
    let mut config = (*tls.config()?).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name =
        rustls::pki_types::ServerName::try_from(url.host().trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| Error::InvalidArgument(format!("{} is not a name TLS can check", url.host())))?
            .to_owned();
    let mut session = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::io("start TLS", std::io::Error::other(e)))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| Error::io("set the read timeout", e))?;
    while session.is_handshaking() {
        session.complete_io(&mut socket).map_err(|e| {
            if is_timeout(&e) {
                Error::Timeout("TLS handshake")
            } else {
                Error::io("TLS handshake", e)
            }
        })?;
    }
    if session.alpn_protocol() != Some(b"h2") {
        return Err(Error::Refused {
            status: 0,
            reason: "the server did not choose h2 in ALPN".to_owned(),
        });
    }
    Ok(Transport::Tls(Box::new(rustls::StreamOwned::new(
        session, socket,
    ))))
}

#[cfg(not(feature = "tls"))]
fn secure(
    _: std::net::TcpStream,
    url: &Url,
    _: Duration,
    _: &crate::tls::TlsChoice,
) -> Result<Transport, Error> {
    Err(crate::url::unsupported_scheme(url, "this"))
}
