//! HTTP/2: event streams and RFC 8441 WebSockets as streams of one
//! connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tether_h2::ErrorCode;
use tether_h2::client::{ClientConnection, Config as H2Config, Event as H2Event, SendError};
use tether_h2::hpack::Field;
use tether_sse::{Item, Limits, MessageEvent, Parser};
use tether_ws::{CloseCode, CloseFrame, Connection, Message, Role, State};

use crate::transport::{Transport, connect_tcp, is_timeout};
use crate::{Error, Event, Url};

/// How long one wait for the socket lasts before the lock is given up, so
/// that handles on other threads get their turn.
const SLICE: Duration = Duration::from_millis(20);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Settings for an [`H2Connection`].
///
/// | setting | default |
/// | --- | --- |
/// | connect timeout (TCP, TLS and the server's SETTINGS) | 10 s |
/// | read timeout of each handle's blocking calls | none |
/// | each stream's receive window | 1 MiB |
/// | the connection's receive window | 16 MiB |
/// | WebSocket limits ([`tether_ws::Config`]) | its defaults |
/// | event stream parser limits ([`Limits`]) | 64 KiB lines, 16 MiB events |
#[derive(Debug, Clone)]
pub struct H2Builder {
    url: String,
    tls: crate::tls::TlsChoice,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    stream_window: u32,
    connection_window: u32,
    ws: tether_ws::Config,
    limits: Limits,
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

/// An HTTP/2 connection to a server, carrying event streams and
/// WebSockets (RFC 8441) on streams of their own.
///
/// Each [`event_stream`](Self::event_stream) and
/// [`websocket`](Self::websocket) opens a stream and returns a handle;
/// handles are blocking, and may be used from several threads (the
/// connection is shared behind a lock, and whichever handle waits reads
/// the socket for all of them). What a stream receives waits for its
/// handle; a handle that does not read keeps the server from sending more
/// on its stream (flow control), not on the others.
///
/// ```no_run
/// use tether_client::{Event, H2Connection};
///
/// let h2 = H2Connection::connect("http://127.0.0.1:8080")?;
/// let mut clock = h2.event_stream("/clock")?;
/// let mut echo = h2.websocket("/echo")?;
/// echo.send_text("hello")?;
/// if let Event::Message(reply) = echo.recv()? {
///     println!("echo: {reply:?}");
/// }
/// if let Some(event) = clock.next_event()? {
///     println!("{}: {}", event.event_type(), event.data());
/// }
/// # Ok::<(), tether_client::Error>(())
/// ```
#[derive(Clone)]
pub struct H2Connection {
    inner: Arc<Mutex<Inner>>,
    url: Url,
    options: H2Builder,
}

impl std::fmt::Debug for H2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Connection")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl H2Connection {
    /// Connects to `url` with the defaults: see [`H2Builder::new`].
    pub fn connect(url: &str) -> Result<H2Connection, Error> {
        H2Builder::new(url).connect()
    }

    /// Settings for a connection to `url`.
    pub fn builder(url: impl Into<String>) -> H2Builder {
        H2Builder::new(url)
    }

    /// Opens an event stream: a GET for `path` (with its query) that must
    /// be answered 200 with `text/event-stream`.
    pub fn event_stream(&self, path: &str) -> Result<H2EventStream, Error> {
        self.event_stream_with(path, &[])
    }

    /// [`event_stream`](Self::event_stream) with request headers of one's
    /// own (`last-event-id`, `authorization`...; names are sent in
    /// lowercase).
    pub fn event_stream_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<H2EventStream, Error> {
        let mut fields = self.pseudo("GET", path, false)?;
        fields.push(Field::new("accept", "text/event-stream"));
        fields.push(Field::new("cache-control", "no-cache"));
        push_headers(&mut fields, headers)?;
        let stream = self.open(&fields, true)?;
        let (status, head) = match self.response(stream) {
            Ok(response) => response,
            Err(e) => {
                self.forget(stream);
                return Err(e);
            }
        };
        let content_type = field(&head, "content-type").unwrap_or_default();
        let failure = if status != 200 {
            Some(Error::Refused {
                status,
                reason: String::new(),
            })
        } else if !content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        {
            Some(Error::ContentType(content_type))
        } else {
            None
        };
        if let Some(e) = failure {
            self.forget(stream);
            return Err(e);
        }
        Ok(H2EventStream {
            conn: self.clone(),
            stream,
            parser: Parser::with_limits(self.options.limits),
            ended: false,
        })
    }

    /// Opens a WebSocket with an extended CONNECT (RFC 8441), offering
    /// permessage-deflate (feature `deflate`).
    pub fn websocket(&self, path: &str) -> Result<H2WebSocket, Error> {
        self.websocket_with(path, &WsOptions::default())
    }

    /// [`websocket`](Self::websocket) with subprotocols, headers and the
    /// compression offer of one's choosing.
    pub fn websocket_with(&self, path: &str, options: &WsOptions) -> Result<H2WebSocket, Error> {
        let mut fields = self.pseudo("CONNECT", path, true)?;
        fields.push(Field::new("sec-websocket-version", "13"));
        if !options.protocols.is_empty() {
            fields.push(Field::new("sec-websocket-protocol", options.protocols.join(", ")));
        }
        #[cfg(feature = "deflate")]
        let offers = if options.compression {
            vec![options.deflate_offer]
        } else {
            Vec::new()
        };
        #[cfg(feature = "deflate")]
        if !offers.is_empty() {
            fields.push(Field::new(
                "sec-websocket-extensions",
                tether_deflate::offer_header(&offers),
            ));
        }
        let headers: Vec<(&str, &str)> = options
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        push_headers(&mut fields, &headers)?;
        let stream = self.open(&fields, false)?;
        let accepted = self.response(stream).and_then(|(status, head)| {
            if status != 200 {
                return Err(Error::Refused {
                    status,
                    reason: String::new(),
                });
            }
            let masks = crate::rng::mask_source().map_err(|e| Error::io("random masks", e))?;
            let ws = Connection::new(Role::Client(masks), self.options.ws, Instant::now());
            let extensions = field(&head, "sec-websocket-extensions");
            #[cfg(feature = "deflate")]
            let ws = {
                let parsed = match &extensions {
                    Some(value) => tether_handshake::parse_extensions(value)?,
                    None => Vec::new(),
                };
                match (
                    tether_deflate::accept_response(&offers, &parsed).map_err(Error::Deflate)?,
                    offers.first(),
                ) {
                    (Some(params), Some(offer)) => ws.with_extension(Box::new(offer.extension(params))),
                    _ => ws,
                }
            };
            #[cfg(not(feature = "deflate"))]
            if extensions.is_some() {
                return Err(Error::Handshake(tether_handshake::Error::UnexpectedExtension));
            }
            let protocol = field(&head, "sec-websocket-protocol");
            if protocol
                .as_ref()
                .is_some_and(|p| !options.protocols.iter().any(|o| o == p))
            {
                return Err(Error::Handshake(tether_handshake::Error::UnexpectedProtocol));
            }
            Ok((ws, protocol, extensions))
        });
        let (ws, protocol, extensions) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                self.forget(stream);
                return Err(e);
            }
        };
        Ok(H2WebSocket {
            conn: self.clone(),
            stream,
            ws,
            input: Vec::new(),
            consumed: 0,
            out: Vec::new(),
            protocol,
            extensions,
            ended: false,
        })
    }

    /// How many streams are open on the connection.
    pub fn active_streams(&self) -> usize {
        self.lock().h2.active_streams()
    }

    /// Ends the connection: GOAWAY, then the socket is shut down. Every
    /// handle fails from then on.
    pub fn close(&self) {
        let mut inner = self.lock();
        let mut out = std::mem::take(&mut inner.out);
        inner.h2.go_away(ErrorCode::NO_ERROR, &mut out);
        inner.out = out;
        let _ = inner.flush();
        inner.io.shutdown();
        inner.failure.get_or_insert(Failure::Closed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pseudo-header fields of a request on this connection.
    fn pseudo(&self, method: &str, path: &str, websocket: bool) -> Result<Vec<Field>, Error> {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(Error::InvalidArgument(format!(
                "{path:?} is not a path (it starts with / and has no spaces or control characters)"
            )));
        }
        let scheme = if self.url.scheme().is_secure() {
            "https"
        } else {
            "http"
        };
        let mut fields = vec![Field::new(":method", method)];
        if websocket {
            fields.push(Field::new(":protocol", "websocket"));
        }
        fields.push(Field::new(":scheme", scheme));
        fields.push(Field::new(":path", path));
        fields.push(Field::new(":authority", self.url.host_header()));
        Ok(fields)
    }

    /// Opens a stream, waiting for a free slot if the server's concurrency
    /// limit is reached.
    fn open(&self, fields: &[Field], end_stream: bool) -> Result<u32, Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        self.wait(Some(deadline), "a free HTTP/2 stream", |inner| {
            let mut out = std::mem::take(&mut inner.out);
            let opened = inner.h2.open_stream(fields, end_stream, &mut out);
            inner.out = out;
            match opened {
                Ok(stream) => {
                    inner.streams.insert(stream, Slot::default());
                    Some(inner.flush().map(|()| stream))
                }
                Err(SendError::StreamLimit) => None,
                Err(SendError::ExtendedConnectDisabled) => Some(Err(Error::Refused {
                    status: 0,
                    reason: "the server does not take WebSockets over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL)"
                        .to_owned(),
                })),
                Err(_) => Some(Err(Error::Closed)),
            }
        })
    }

    /// Waits for the response head on `stream`.
    fn response(&self, stream: u32) -> Result<(u16, Vec<Field>), Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        self.wait(Some(deadline), "the response head", |inner| {
            let slot = inner.streams.get_mut(&stream)?;
            if let Some(head) = slot.head.take() {
                return Some(Ok(head));
            }
            slot.reset.map(|code| Err(Error::StreamReset(code)))
        })
    }

    /// Resets `stream` if still open and forgets it, giving back to the
    /// connection's window what it had received.
    fn forget(&self, stream: u32) {
        let mut inner = self.lock();
        let Inner { h2, out, streams, .. } = &mut *inner;
        if let Some(slot) = streams.remove(&stream) {
            let _ = h2.reset(stream, ErrorCode::CANCEL, out);
            h2.release(stream, slot.data.len(), out);
        }
        let _ = inner.flush();
    }

    /// Runs `check` under the lock until it answers, reading the socket in
    /// between; fails at `deadline` with [`Error::Timeout`] naming `what`,
    /// or when the connection has failed.
    fn wait<T>(
        &self,
        deadline: Option<Instant>,
        what: &'static str,
        mut check: impl FnMut(&mut Inner) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        loop {
            let mut inner = self.lock();
            if let Some(answer) = check(&mut inner) {
                return answer;
            }
            if let Some(failure) = &inner.failure {
                return Err(failure.to_error());
            }
            let slice = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::Timeout(what));
                    }
                    SLICE.min(deadline - now)
                }
                None => SLICE,
            };
            inner.pump(slice);
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        self.options.read_timeout.map(|t| Instant::now() + t)
    }

    /// Queues `bytes` (and END_STREAM after them, if `end`) on `stream`
    /// and sends what the windows allow.
    fn send(&self, stream: u32, bytes: &[u8], end: bool) -> Result<(), Error> {
        let mut inner = self.lock();
        if let Some(failure) = &inner.failure {
            return Err(failure.to_error());
        }
        let Some(slot) = inner.streams.get_mut(&stream) else {
            return Err(Error::Closed);
        };
        if let Some(code) = slot.reset {
            return Err(Error::StreamReset(code));
        }
        slot.pending.extend_from_slice(bytes);
        slot.end_pending |= end;
        inner.send_pending(stream);
        inner.flush()
    }
}

/// What may be chosen for one WebSocket on an [`H2Connection`].
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// Subprotocols offered, most preferred first.
    pub protocols: Vec<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Whether to offer permessage-deflate (on by default with the
    /// feature `deflate`).
    pub compression: bool,
    /// The offer made when `compression` is on.
    #[cfg(feature = "deflate")]
    pub deflate_offer: tether_deflate::ClientOffer,
}

#[cfg_attr(not(feature = "deflate"), allow(clippy::derivable_impls))]
impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            protocols: Vec::new(),
            headers: Vec::new(),
            compression: cfg!(feature = "deflate"),
            #[cfg(feature = "deflate")]
            deflate_offer: tether_deflate::ClientOffer::new(),
        }
    }
}

/// Why the connection cannot be used any more.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Lost,
    Io(ErrorKind),
    H2(tether_h2::client::ConnectionError),
    Closed,
}

impl Failure {
    fn to_error(self) -> Error {
        match self {
            Failure::Lost => Error::ConnectionLost,
            Failure::Io(kind) => Error::io("HTTP/2 connection", kind.into()),
            Failure::H2(e) => Error::H2(e),
            Failure::Closed => Error::Closed,
        }
    }
}

/// What a stream received and what waits to be sent on it.
#[derive(Debug, Default)]
struct Slot {
    head: Option<(u16, Vec<Field>)>,
    /// Received, not yet taken by the handle (nor released).
    data: Vec<u8>,
    /// The server ended the stream.
    ended: bool,
    reset: Option<ErrorCode>,
    /// Our bytes waiting for window.
    pending: Vec<u8>,
    end_pending: bool,
}

struct Inner {
    io: Transport,
    h2: ClientConnection,
    /// Received, not yet taken by the HTTP/2 connection.
    input: Vec<u8>,
    out: Vec<u8>,
    read_buf: Vec<u8>,
    streams: HashMap<u32, Slot>,
    failure: Option<Failure>,
}

impl Inner {
    fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.io.write_all(&self.out).and_then(|()| self.io.flush());
        self.out.clear();
        written.map_err(|e| {
            self.failure.get_or_insert(Failure::Io(e.kind()));
            Error::io("write", e)
        })
    }

    /// Writes what is queued, reads once (waiting up to `wait`) and takes
    /// what the server sent.
    fn pump(&mut self, wait: Duration) {
        if self.flush().is_err() {
            return;
        }
        if let Err(e) = self
            .io
            .tcp()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
        {
            self.failure.get_or_insert(Failure::Io(e.kind()));
            return;
        }
        match self.io.read(&mut self.read_buf) {
            Ok(0) => {
                self.failure.get_or_insert(Failure::Lost);
            }
            Ok(n) => {
                let Inner { input, read_buf, .. } = self;
                input.extend_from_slice(read_buf.get(..n).unwrap_or_default());
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                self.failure.get_or_insert(Failure::Io(e.kind()));
            }
        }
        let mut events = Vec::new();
        let used = self.h2.receive(&self.input, &mut self.out, &mut events);
        self.input.drain(..used);
        for event in events {
            self.on_event(event);
        }
        let _ = self.flush();
    }

    fn on_event(&mut self, event: H2Event) {
        match event {
            H2Event::Response {
                stream,
                status,
                fields,
                end_stream,
            } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.head = Some((status, fields));
                    slot.ended |= end_stream;
                }
            }
            H2Event::Data {
                stream,
                data,
                end_stream,
            } => match self.streams.get_mut(&stream) {
                Some(slot) => {
                    slot.data.extend_from_slice(&data);
                    slot.ended |= end_stream;
                }
                // A handle that is gone: nobody will read it.
                None => self.h2.release(stream, data.len(), &mut self.out),
            },
            H2Event::Trailers { stream, .. } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.ended = true;
                }
            }
            H2Event::Reset { stream, code, .. } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.reset = Some(code);
                }
            }
            H2Event::WindowOpened { stream: 0 } => {
                let waiting: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.pending.is_empty() || s.end_pending)
                    .map(|(&id, _)| id)
                    .collect();
                for stream in waiting {
                    self.send_pending(stream);
                }
            }
            H2Event::WindowOpened { stream } => self.send_pending(stream),
            H2Event::ConnectionError(e) => {
                self.failure.get_or_insert(Failure::H2(e));
            }
            _ => {}
        }
    }

    fn send_pending(&mut self, stream: u32) {
        let Inner { h2, out, streams, .. } = self;
        let Some(slot) = streams.get_mut(&stream) else {
            return;
        };
        if slot.pending.is_empty() && !slot.end_pending {
            return;
        }
        match h2.send_data(stream, &slot.pending, slot.end_pending, out) {
            Ok(n) => {
                slot.pending.drain(..n);
                if slot.pending.is_empty() {
                    slot.end_pending = false;
                }
            }
            Err(_) => {
                slot.pending.clear();
                slot.end_pending = false;
            }
        }
    }

    /// What `stream` received, handed to its handle: the connection's
    /// window opens again by as much.
    fn take(&mut self, stream: u32) -> Option<(Vec<u8>, bool, Option<ErrorCode>)> {
        let slot = self.streams.get_mut(&stream)?;
        let data = std::mem::take(&mut slot.data);
        let (ended, reset) = (slot.ended, slot.reset);
        if !data.is_empty() {
            self.h2.release(stream, data.len(), &mut self.out);
        }
        Some((data, ended, reset))
    }
}

/// An event stream on an [`H2Connection`]. It does not reconnect: when
/// the server ends the stream, [`next_event`](Self::next_event) returns
/// `None`; open a new one with the `last-event-id` header to resume.
/// Dropping it resets the stream (CANCEL).
pub struct H2EventStream {
    conn: H2Connection,
    stream: u32,
    parser: Parser,
    ended: bool,
}

impl std::fmt::Debug for H2EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2EventStream")
            .field("stream", &self.stream)
            .field("last_event_id", &self.parser.last_event_id())
            .finish_non_exhaustive()
    }
}

impl H2EventStream {
    /// The HTTP/2 stream identifier.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The last event ID the stream set.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The next event, waiting for it; `None` once the server has ended
    /// the stream and every event before the end was returned.
    pub fn next_event(&mut self) -> Result<Option<MessageEvent>, Error> {
        let deadline = self.conn.read_deadline();
        loop {
            match self.parser.poll() {
                Some(Ok(Item::Event(event))) => return Ok(Some(event)),
                Some(Ok(Item::Retry(_))) => continue,
                Some(Err(e)) => return Err(Error::Sse(e)),
                None => {}
            }
            if self.ended {
                return Ok(None);
            }
            let stream = self.stream;
            let (data, ended, reset) = self.conn.wait(deadline, "read", |inner| {
                let taken = inner.take(stream)?;
                let (data, ended, reset) = &taken;
                (!data.is_empty() || *ended || reset.is_some()).then_some(Ok(taken))
            })?;
            self.parser.feed(&data);
            if let Some(code) = reset {
                self.ended = true;
                return Err(Error::StreamReset(code));
            }
            if ended {
                self.parser.finish();
                self.ended = true;
            }
        }
    }
}

impl Drop for H2EventStream {
    fn drop(&mut self) {
        self.conn.forget(self.stream);
    }
}

/// A WebSocket on an [`H2Connection`] (RFC 8441): WebSocket frames in the
/// DATA of one stream. Pongs to the server's pings and the echo of its
/// close frame are sent while [`recv`](Self::recv) reads. After the close
/// handshake the stream is ended; dropping it earlier resets the stream.
pub struct H2WebSocket {
    conn: H2Connection,
    stream: u32,
    ws: Connection,
    /// Received, not yet taken by the WebSocket.
    input: Vec<u8>,
    consumed: usize,
    out: Vec<u8>,
    protocol: Option<String>,
    extensions: Option<String>,
    /// The stream ended (or was ended by us).
    ended: bool,
}

impl std::fmt::Debug for H2WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2WebSocket")
            .field("stream", &self.stream)
            .field("state", &self.ws.state())
            .finish_non_exhaustive()
    }
}

impl H2WebSocket {
    /// The HTTP/2 stream identifier.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The subprotocol the server selected.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The `sec-websocket-extensions` the server answered with.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// The WebSocket state.
    pub fn state(&self) -> State {
        self.ws.state()
    }

    /// Sends a message.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        let sent = self.ws.send(message, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        let sent = self.ws.send_text(text, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        let sent = self.ws.send_binary(data, &mut self.out);
        self.finish_send(sent)
    }

    /// Sends a ping (at most 125 bytes); its pong comes from
    /// [`recv`](Self::recv) as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        let sent = self.ws.ping(payload, &mut self.out);
        self.finish_send(sent)
    }

    /// The next message or control frame, waiting for it.
    /// [`Event::Closed`] ends the WebSocket (the stream is ended too).
    pub fn recv(&mut self) -> Result<Event, Error> {
        let deadline = self.conn.read_deadline();
        loop {
            if self.ws.state() == State::Closed && self.consumed == self.input.len() {
                return Err(Error::Closed);
            }
            let now = Instant::now();
            while self.consumed < self.input.len() {
                let (used, event) = self.ws.receive(
                    self.input.get(self.consumed..).unwrap_or_default(),
                    now,
                    &mut self.out,
                );
                self.consumed += used;
                if let Some(event) = event {
                    return self.deliver(event);
                }
                if used == 0 {
                    break;
                }
            }
            if self.ws.poll_timeout().is_some_and(|t| t <= now)
                && let Some(event) = self.ws.handle_timeout(now, &mut self.out)
            {
                return self.deliver(event);
            }
            self.flush()?;
            if self.ended {
                return Err(Error::ConnectionLost);
            }
            let timer = self.ws.poll_timeout();
            let stream = self.stream;
            let got = self.conn.wait(deadline, "read", |inner| {
                if timer.is_some_and(|t| t <= Instant::now()) {
                    return Some(Ok(None));
                }
                let taken = inner.take(stream);
                let Some((data, ended, reset)) = &taken else {
                    return Some(Err(Error::Closed));
                };
                (!data.is_empty() || *ended || reset.is_some()).then_some(Ok(taken))
            })?;
            let Some((data, ended, reset)) = got else {
                continue;
            };
            if self.consumed == self.input.len() {
                self.input.clear();
                self.consumed = 0;
            }
            self.input.extend_from_slice(&data);
            if let Some(code) = reset {
                self.ended = true;
                self.conn.forget(self.stream);
                return Err(Error::StreamReset(code));
            }
            self.ended |= ended;
        }
    }

    /// Starts the close handshake and reads until the server's close
    /// frame, which is returned (messages that arrive meanwhile are
    /// dropped).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseFrame, Error> {
        let sent = self.ws.close(code, reason, Instant::now(), &mut self.out);
        self.finish_send(sent)?;
        loop {
            if let Event::Closed(frame) = self.recv()? {
                return Ok(frame);
            }
        }
    }

    fn deliver(&mut self, event: tether_ws::Event) -> Result<Event, Error> {
        self.flush()?;
        let event = match event {
            tether_ws::Event::Message(m) => Event::Message(m),
            tether_ws::Event::Ping(p) => Event::Ping(p),
            tether_ws::Event::Pong(p) => Event::Pong(p),
            tether_ws::Event::Close(frame) => Event::Closed(frame),
            tether_ws::Event::Failed(e) => {
                self.end_stream();
                return Err(Error::Protocol(e));
            }
        };
        if self.ws.state() == State::Closed {
            self.end_stream();
        }
        Ok(event)
    }

    fn finish_send(&mut self, sent: Result<(), tether_ws::Error>) -> Result<(), Error> {
        match sent {
            Ok(()) => self.flush(),
            Err(tether_ws::Error::AlreadyClosing) => Err(Error::Closed),
            Err(e) if e.is_usage_error() => Err(Error::InvalidArgument(e.to_string())),
            Err(e) => Err(Error::Protocol(e)),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.conn.send(self.stream, &out, false)
    }

    /// The WebSocket is closed: END_STREAM after what is queued.
    fn end_stream(&mut self) {
        let _ = self.flush();
        let _ = self.conn.send(self.stream, &[], true);
    }
}

impl Drop for H2WebSocket {
    fn drop(&mut self) {
        self.conn.forget(self.stream);
    }
}

/// The value of the first field named `name`, as text.
fn field(fields: &[Field], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| String::from_utf8_lossy(&f.value).into_owned())
}

/// Appends request headers, names in lowercase, refusing what HTTP/2 may
/// not carry.
fn push_headers(fields: &mut Vec<Field>, headers: &[(&str, &str)]) -> Result<(), Error> {
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let bad_name = name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b':');
        let bad_value = value.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n');
        let connection_specific = matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "host"
        );
        if bad_name || bad_value || connection_specific {
            return Err(Error::InvalidArgument(format!(
                "the header {name:?} cannot be sent over HTTP/2"
            )));
        }
        fields.push(Field::new(name, value.trim()));
    }
    Ok(())
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
