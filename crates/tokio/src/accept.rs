//! The server's opening handshake: on a raw stream ([`Acceptor::accept`]),
//! and the part the hyper and axum upgrades share.

use std::sync::Arc;

use tether_handshake::{Accepted, Rejection, RequestHead, ServerConfig, Status};
use tether_ws::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::Error;
use crate::ws::{Options, Role, WebSocket};

/// The handshake's extension values: boxed tether-ws extensions.
pub type Extensions = Box<dyn tether_ws::Extension>;

/// The largest request head [`Acceptor::accept`] reads (the design's 16 KiB).
const MAX_HEAD: usize = 16 << 10;

/// How a server accepts WebSocket upgrades: tether-handshake's
/// [`ServerConfig`] (subprotocols, extension negotiators, policy) and the
/// [`Options`] of the connections. Build it once and share it (it is
/// `Send + Sync`; [`Acceptor::shared`] puts it in an `Arc`).
///
/// The default offers permessage-deflate (with the `deflate` feature:
/// tether-deflate's defaults, no context takeover), no subprotocols, no
/// policy.
pub struct Acceptor {
    handshake: ServerConfig<Extensions>,
    options: Options,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("handshake", &self.handshake)
            .field("options", &self.options)
            .finish()
    }
}

impl Default for Acceptor {
    fn default() -> Acceptor {
        let handshake = ServerConfig::new();
        #[cfg(feature = "deflate")]
        let handshake = handshake.negotiator(tether_deflate::DeflateConfig::new());
        Acceptor::new(handshake, Options::default())
    }
}

/// An upgrade checked and agreed: the values the 101 response and the
/// connection are built from.
pub(crate) struct Agreed {
    pub(crate) accept_key: String,
    pub(crate) protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value of the response, if any.
    pub(crate) extensions_header: Option<String>,
    pub(crate) extensions: Vec<Extensions>,
}

impl Agreed {
    fn from_accepted(accepted: Accepted<'_, Extensions>) -> Agreed {
        let header = accepted
            .extensions()
            .iter()
            .map(|e| e.element())
            .collect::<Vec<_>>()
            .join(", ");
        Agreed {
            accept_key: accepted.accept_key().to_owned(),
            protocol: accepted.protocol().map(str::to_owned),
            extensions_header: (!header.is_empty()).then_some(header),
            extensions: accepted.into_extension_values(),
        }
    }
}

impl Acceptor {
    /// An acceptor with this handshake configuration and these options.
    pub fn new(handshake: ServerConfig<Extensions>, options: Options) -> Acceptor {
        Acceptor { handshake, options }
    }

    /// The default acceptor with other options.
    pub fn with_options(options: Options) -> Acceptor {
        Acceptor {
            options,
            ..Acceptor::default()
        }
    }

    /// In an `Arc`, to share among connections (and, for axum, to add as
    /// an `Extension` layer: see [`crate::axum::WebSocketUpgrade`]).
    pub fn shared(self) -> Arc<Acceptor> {
        Arc::new(self)
    }

    /// The connections' options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Checks an upgrade request and agrees the subprotocol and
    /// extensions, or says how to refuse it.
    pub(crate) fn agree(&self, head: RequestHead<'_>) -> Result<Agreed, Rejection> {
        self.handshake.accept(head).map(Agreed::from_accepted)
    }

    /// The open WebSocket for an agreed upgrade over `io`.
    pub(crate) fn open<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        agreed: Agreed,
        leftover: &[u8],
    ) -> WebSocket<S> {
        let mut conn = Connection::new(tether_ws::Role::Server, self.options.config, crate::ws::now());
        for extension in agreed.extensions {
            conn = conn.with_extension(extension);
        }
        let mut ws = WebSocket::from_connection(io, conn, Role::Server, &self.options, leftover);
        ws.set_protocol(agreed.protocol);
        ws
    }

    /// The whole server handshake on a raw stream (no HTTP server in
    /// front): reads the request head (at most 16 KiB), answers 101 with
    /// the agreed subprotocol and extensions, and returns the open
    /// WebSocket; or answers the complete refusal (400, 403, 405, 426 with
    /// `Sec-WebSocket-Version: 13`, 431) and returns
    /// [`Error::Status`]. Bytes that came after the head are kept as the
    /// first frames. All of it within [`Options::handshake_timeout`] (10 s
    /// by default), or [`Error::Timeout`] and the stream dropped.
    ///
    /// ```no_run
    /// # async fn serve() -> Result<(), tether_tokio::Error> {
    /// let acceptor = tether_tokio::Acceptor::default();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    /// let (stream, _) = listener.accept().await?;
    /// let mut ws = acceptor.accept(stream).await?;
    /// while let Some(message) = ws.recv().await? {
    ///     ws.send(&message).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(&self, io: S) -> Result<WebSocket<S>, Error> {
        // The whole exchange has one deadline, not one per read: a client
        // sending a byte at a time cannot stretch it. Past it, the stream
        // is dropped (closed) with the unfinished handshake.
        tokio::time::timeout(self.options.handshake_timeout, self.handshake(io))
            .await
            .map_err(|_| Error::Timeout("handshake"))?
    }

    /// [`accept`](Self::accept) without its deadline.
    async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(&self, mut io: S) -> Result<WebSocket<S>, Error> {
        let mut buf = Vec::with_capacity(4096);
        loop {
            let outcome = match tether_handshake::parse_request(&buf) {
                Ok(Status::Complete((request, used))) => Some((self.agree(request.head()), used)),
                Ok(Status::Partial) if buf.len() >= MAX_HEAD => {
                    Some((Err(Rejection::from(HEAD_TOO_LARGE)), 0))
                }
                Ok(Status::Partial) => None,
                Err(e) => Some((Err(Rejection::from(e)), 0)),
            };
            match outcome {
                Some((Ok(agreed), used)) => {
                    let mut response = Vec::with_capacity(256);
                    write_101(&agreed, &mut response);
                    io.write_all(&response).await?;
                    io.flush().await?;
                    let leftover = buf.get(used..).unwrap_or_default().to_vec();
                    return Ok(self.open(io, agreed, &leftover));
                }
                Some((Err(refusal), _)) => {
                    let mut response = Vec::new();
                    refusal.write_response(&mut response);
                    io.write_all(&response).await?;
                    let _ = io.shutdown().await;
                    return Err(Error::Status(refusal.status()));
                }
                None => {
                    let before = buf.len();
                    buf.resize(before + 4096, 0);
                    let n = io.read(buf.get_mut(before..).unwrap_or_default()).await?;
                    buf.truncate(before + n);
                    if n == 0 {
                        return Err(Error::Dropped);
                    }
                }
            }
        }
    }
}

/// A head over 16 KiB: 431.
const HEAD_TOO_LARGE: tether_handshake::Error =
    tether_handshake::Error::Http(tether_handshake::httparse::Error::TooManyHeaders);

/// Writes the 101 response of an agreed upgrade.
fn write_101(agreed: &Agreed, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    for (name, value) in response_headers(agreed) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The 101's headers after `Upgrade` and `Connection`.
pub(crate) fn response_headers(agreed: &Agreed) -> impl Iterator<Item = (&'static str, &str)> {
    [
        Some(("Sec-WebSocket-Accept", agreed.accept_key.as_str())),
        agreed.protocol.as_deref().map(|p| ("Sec-WebSocket-Protocol", p)),
        agreed
            .extensions_header
            .as_deref()
            .map(|e| ("Sec-WebSocket-Extensions", e)),
    ]
    .into_iter()
    .flatten()
}
