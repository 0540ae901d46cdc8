//! Clients on tokio: the WebSocket client ([`connect`], [`ClientBuilder`])
//! and an EventSource client ([`EventSource`]) that resumes with
//! `Last-Event-ID` and backs off between attempts. `wss://` and `https://`
//! with the `tls` feature.

use std::io;
use std::pin::Pin;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tether_client_core::url::Url;
use tether_handshake::{ClientRequest, Status};
use tether_ws::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::ws::{Options, Role, WebSocket};

/// The largest response head read in a handshake.
const MAX_HEAD: usize = tether_client_core::limits::MAX_RESPONSE_HEAD;

/// A client's transport: TCP, or TLS over it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// `ws://` or `http://`.
    Plain(TcpStream),
    /// `wss://` or `https://`.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How to set up TLS, with the `tls` feature.
#[derive(Clone, Default)]
pub(crate) struct Tls {
    #[cfg(feature = "tls")]
    config: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

#[cfg(feature = "tls")]
fn native_roots() -> Result<Arc<tokio_rustls::rustls::ClientConfig>, Error> {
    use std::sync::OnceLock;
    use tokio_rustls::rustls;
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Tls)
}

/// Opens TCP (and TLS) to `url`, within `timeout`.
pub(crate) async fn open(url: &Url, tls: &Tls, timeout: Duration) -> Result<Stream, Error> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((url.connect_host(), url.port())))
        .await
        .map_err(|_| Error::Timeout("connect"))??;
    let _ = tcp.set_nodelay(true);
    if !url.scheme().is_secure() {
        return Ok(Stream::Plain(tcp));
    }
    #[cfg(feature = "tls")]
    {
        use tokio_rustls::rustls::pki_types::ServerName;
        let config = match &tls.config {
            Some(config) => Arc::clone(config),
            None => native_roots()?,
        };
        let name =
            ServerName::try_from(url.connect_host().to_owned()).map_err(|e| Error::Tls(e.to_string()))?;
        let stream = tokio::time::timeout(
            timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| Error::Timeout("TLS handshake"))?
        .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Stream::Tls(Box::new(stream)))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        Err(Error::Usage(
            "wss:// and https:// need the `tls` feature".to_owned(),
        ))
    }
}

/// Settings of a WebSocket client connection, then
/// [`connect`](Self::connect).
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    options: Options,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    deflate: bool,
    connect_timeout: Duration,
    tls: Tls,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("protocols", &self.protocols)
            .field("deflate", &self.deflate)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A client of `url` (`ws://` or `wss://`), offering permessage-deflate
    /// (with the `deflate` feature), 10 s to connect and 10 s more for the
    /// opening handshake ([`Options::handshake_timeout`]).
    pub fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            options: Options::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            deflate: cfg!(feature = "deflate"),
            connect_timeout: Duration::from_secs(10),
            tls: Tls::default(),
        }
    }

    /// The connection's options (limits, timers, buffers).
    pub fn options(mut self, options: Options) -> ClientBuilder {
        self.options = options;
        self
    }

    /// Offers a subprotocol (in order of preference).
    pub fn protocol(mut self, name: impl Into<String>) -> ClientBuilder {
        self.protocols.push(name.into());
        self
    }

    /// Adds a header to the upgrade request (checked by tether-handshake).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether to offer permessage-deflate.
    pub fn deflate(mut self, on: bool) -> ClientBuilder {
        self.deflate = on && cfg!(feature = "deflate");
        self
    }

    /// How long TCP (and TLS) may take to connect.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// The TLS client configuration for `wss://` (default: the system's
    /// trusted roots, rustls with ring).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<tokio_rustls::rustls::ClientConfig>) -> ClientBuilder {
        self.tls.config = Some(config);
        self
    }

    /// Connects and runs the opening handshake. The URL is parsed by
    /// tether-client-core's rules, the same as tether-client's: `ws:` or
    /// `wss:`, no user information, no fragment.
    pub async fn connect(self) -> Result<WebSocket<Stream>, Error> {
        let url = Url::parse_websocket(&self.url)?;
        let stream = open(&url, &self.tls, self.connect_timeout).await?;
        self.handshake(stream, &url.host_header(), url.target()).await
    }

    /// Runs the opening handshake over a stream the caller connected, for
    /// `host` (the `Host` header) and `target` (path and query), within the
    /// options' [`handshake_timeout`](Options::handshake_timeout) (10 s by
    /// default; past it, [`Error::Timeout`]).
    pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        host: &str,
        target: &str,
    ) -> Result<WebSocket<S>, Error> {
        tokio::time::timeout(self.options.handshake_timeout, self.exchange(io, host, target))
            .await
            .map_err(|_| Error::Timeout("handshake"))?
    }

    /// [`handshake`](Self::handshake) without its deadline.
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut io: S,
        host: &str,
        target: &str,
    ) -> Result<WebSocket<S>, Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
        #[cfg(feature = "deflate")]
        let offers = [tether_deflate::ClientOffer::new()];
        #[cfg(feature = "deflate")]
        let offer = tether_deflate::offer_header(&offers);
        #[cfg(not(feature = "deflate"))]
        let offer = String::new();
        let protocols: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut request = ClientRequest::new(host, target, nonce)
            .protocols(&protocols)
            .headers(&headers);
        if self.deflate {
            request = request.extensions(&offer);
        }
        let mut out = Vec::with_capacity(256);
        let handshake = request.write(&mut out).map_err(Error::Handshake)?;
        io.write_all(&out).await?;
        io.flush().await?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            match handshake.validate_response(&buf) {
                Ok(Status::Complete((response, used))) => {
                    let protocol = response.protocol().map(str::to_owned);
                    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
                    let mut conn = Connection::new(
                        tether_ws::Role::Client(crate::ws::mask_source()),
                        self.options.config,
                        crate::ws::now(),
                    );
                    #[cfg(feature = "deflate")]
                    {
                        let agreed = tether_deflate::accept_response(&offers, response.extensions())
                            .map_err(|_| Error::Handshake(tether_handshake::Error::UnexpectedExtension))?;
                        if let Some(params) = agreed {
                            conn = conn.with_extension(Box::new(tether_deflate::Deflate::new(
                                tether_deflate::Role::Client,
                                params,
                            )));
                        }
                    }
                    #[cfg(not(feature = "deflate"))]
                    if !response.extensions().is_empty() {
                        return Err(Error::Handshake(tether_handshake::Error::UnexpectedExtension));
                    }
                    let leftover = buf.get(used..).unwrap_or_default().to_vec();
                    let mut ws = WebSocket::from_connection(io, conn, Role::Client, &self.options, &leftover);
                    ws.set_protocol(protocol);
                    return Ok(ws);
                }
                Ok(Status::Partial) if buf.len() < MAX_HEAD => {
                    let before = buf.len();
                    buf.resize(before + 1024, 0);
                    let n = io.read(buf.get_mut(before..).unwrap_or_default()).await?;
                    buf.truncate(before + n);
                    if n == 0 {
                        return Err(Error::Dropped);
                    }
                }
                Ok(Status::Partial) => {
                    return Err(Error::Handshake(tether_handshake::Error::Http(
                        tether_handshake::httparse::Error::TooManyHeaders,
                    )));
                }
                Err(tether_handshake::Error::UnexpectedStatus(status)) => return Err(Error::Status(status)),
                Err(e) => return Err(Error::Handshake(e)),
            }
        }
    }
}

/// Connects to a `ws://` (or, with `tls`, `wss://`) URL with the default
/// settings.
///
/// ```no_run
/// # async fn run() -> Result<(), tether_tokio::Error> {
/// let mut ws = tether_tokio::client::connect("ws://127.0.0.1:9001/echo").await?;
/// ws.send("hello").await?;
/// let echo = ws.recv().await?;
/// ws.close(tether_tokio::CloseCode::NORMAL, "bye").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<WebSocket<Stream>, Error> {
    ClientBuilder::new(url).connect().await
}

mod eventsource;
pub use eventsource::EventSource;
