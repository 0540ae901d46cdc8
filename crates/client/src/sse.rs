//! A blocking Server-Sent Events client with `EventSource` semantics.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tether_client_core::event_source::{self, Head, Reconnection};
use tether_client_core::limits;
use tether_client_core::redirect::Redirects;
use tether_client_core::url::{Scheme, Url};
use tether_sse::{Item, Limits, MessageEvent, Parser};

use crate::error::Error;
use crate::http::{self, Body};
use crate::transport::Transport;
use crate::transport::{is_timeout, time_left};

/// The default of [`EventSourceBuilder::max_response_head`]: 16 KiB, the
/// size of the largest request head a tether server reads.
pub const DEFAULT_MAX_RESPONSE_HEAD: usize = limits::MAX_RESPONSE_HEAD;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Settings for an [`EventSource`].
///
/// | setting | default |
/// | --- | --- |
/// | reconnection time (until the stream sends `retry:`) | 3 s |
/// | longest reconnection time `retry:` may set | 10 min |
/// | redirects followed per connection | 20 |
/// | connect, TLS, redirects and response head, per attempt | 10 s |
/// | read timeout on the open stream | none (a silent stream waits) |
/// | consecutive failed connection attempts | no limit |
/// | extra request headers | none |
/// | parser limits ([`Limits`]) | 64 KiB lines, 16 MiB events |
/// | response head | 16 KiB |
#[derive(Debug, Clone)]
pub struct EventSourceBuilder {
    url: String,
    headers: Vec<(String, String)>,
    retry: Duration,
    max_redirects: u32,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    max_retries: Option<u32>,
    limits: Limits,
    tls: crate::tls::TlsChoice,
    max_head: usize,
    backoff: tether_backoff::Backoff,
    max_reconnection_time: Duration,
    retry_unavailable: bool,
}

impl EventSourceBuilder {
    /// The defaults, for `url` (parsed by [`build`](Self::build)).
    pub fn new(url: impl Into<String>) -> EventSourceBuilder {
        EventSourceBuilder {
            url: url.into(),
            headers: Vec::new(),
            retry: limits::RECONNECTION_TIME,
            max_redirects: limits::MAX_REDIRECTS,
            connect_timeout: limits::CONNECT_TIMEOUT,
            read_timeout: None,
            max_retries: None,
            limits: Limits::new(),
            tls: crate::tls::TlsChoice::default(),
            max_head: DEFAULT_MAX_RESPONSE_HEAD,
            backoff: tether_backoff::Backoff::new(),
            max_reconnection_time: limits::MAX_RECONNECTION_TIME,
            retry_unavailable: false,
        }
    }

    /// The longest reconnection time a stream's `retry:` may set (default
    /// 10 minutes): a larger one counts as this, so that one line from a
    /// server cannot park the client for days.
    pub fn max_reconnection_time(mut self, max: Duration) -> EventSourceBuilder {
        self.max_reconnection_time = max;
        self
    }

    /// The growing wait added to the reconnection time after connections
    /// that delivered no event (default: [`Backoff`](tether_backoff::Backoff)'s,
    /// 500 ms doubling to 30 s, jittered).
    pub fn backoff(mut self, backoff: tether_backoff::Backoff) -> EventSourceBuilder {
        self.backoff = backoff;
        self
    }

    /// The TLS configuration for a `wss://` or `https://` URL (roots of
    /// one's own, say: [`crate::tls::roots_from_pem`]); by default the
    /// operating system's trusted roots.
    #[cfg(feature = "tls")]
    pub fn tls_config(
        mut self,
        config: std::sync::Arc<crate::tls::rustls::ClientConfig>,
    ) -> EventSourceBuilder {
        self.tls = crate::tls::TlsChoice::Given(config);
        self
    }

    /// Adds a request header (`Authorization`, `Cookie`...). The
    /// credential headers (`Authorization`, `Cookie`,
    /// `Proxy-Authorization`) go to the URL's origin only, not to another
    /// one a redirect names.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> EventSourceBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The reconnection time until the stream sets one with `retry:`.
    pub fn retry(mut self, delay: Duration) -> EventSourceBuilder {
        self.retry = delay;
        self
    }

    /// How many redirects one connection attempt follows before failing
    /// with [`Error::TooManyRedirects`].
    pub fn max_redirects(mut self, limit: u32) -> EventSourceBuilder {
        self.max_redirects = limit;
        self
    }

    /// How long one connection attempt may take, from the TCP connect
    /// through TLS, the request and any redirects to the end of the
    /// response head, all together.
    pub fn connect_timeout(mut self, timeout: Duration) -> EventSourceBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// Treats a stream silent for this long as a network error (and so
    /// reconnects). Useful with servers that send heartbeat comments.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> EventSourceBuilder {
        self.read_timeout = timeout;
        self
    }

    /// Gives up after this many connection attempts in a row fail on the
    /// network, returning the last error (`None`, the default and
    /// `EventSource`'s way: never).
    pub fn max_retries(mut self, attempts: Option<u32>) -> EventSourceBuilder {
        self.max_retries = attempts;
        self
    }

    /// Retries 502, 503 and 504 answers as failed attempts (after the
    /// wait, counted against [`max_retries`](Self::max_retries)) instead
    /// of failing for good, which is `EventSource`'s way and the default.
    /// A load balancer answers them while the servers behind it restart
    /// or fail their health checks; a service that follows a hub through
    /// one, and must not stop, turns this on.
    pub fn retry_unavailable(mut self, on: bool) -> EventSourceBuilder {
        self.retry_unavailable = on;
        self
    }

    /// The parser's limits on line and event sizes.
    pub fn limits(mut self, limits: Limits) -> EventSourceBuilder {
        self.limits = limits;
        self
    }

    /// The largest response head read, status line and header fields
    /// together (default [`DEFAULT_MAX_RESPONSE_HEAD`], 16 KiB): a server
    /// that sends a longer one fails the source for good with
    /// [`Error::Http`] saying so, since trying again would meet the same
    /// head. Redirects count too.
    pub fn max_response_head(mut self, bytes: usize) -> EventSourceBuilder {
        self.max_head = bytes;
        self
    }

    /// Checks the URL and headers; connects on the first
    /// [`next_event`](EventSource::next_event).
    pub fn build(self) -> Result<EventSource, Error> {
        let url = Url::parse(&self.url)?;
        if !matches!(url.scheme(), Scheme::Http | Scheme::Https) {
            return Err(crate::url::unsupported_scheme(&url, "event stream"));
        }
        for (name, value) in &self.headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(Error::InvalidArgument(format!(
                    "header name {name:?} is not a token"
                )));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Error::InvalidArgument(format!(
                    "header {name} has CR, LF or NUL in its value"
                )));
            }
            if [
                "host",
                "accept",
                "last-event-id",
                "content-length",
                "transfer-encoding",
            ]
            .iter()
            .any(|own| name.eq_ignore_ascii_case(own))
            {
                return Err(Error::InvalidArgument(format!(
                    "header {name} is set by the client itself"
                )));
            }
        }
        Ok(EventSource {
            parser: Parser::with_limits(self.limits),
            policy: Reconnection::new()
                .max_reconnection_time(self.max_reconnection_time)
                .reconnection_time(self.retry)
                .backoff(self.backoff)
                .max_retries(self.max_retries)
                .retry_unavailable(self.retry_unavailable),
            options: self,
            url,
            state: ReadyState::Connecting,
            stream: None,
            wait_first: false,
            delay: Duration::ZERO,
            notice: None,
            stop: StopHandle::default(),
            buf: Vec::new(),
        })
    }
}

/// Where an [`EventSource`] stands, as `EventSource.readyState` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// The stream is open.
    Open,
    /// Stopped for good: by [`EventSource::close`] or a [`StopHandle`], by
    /// a 204 response, or after a fatal error.
    Closed,
}

/// What [`EventSource::next_event`] reports: the DOM's `open`, `message`
/// and `error` events.
#[derive(Debug)]
#[non_exhaustive]
pub enum SseEvent {
    /// A stream opened (first connection or a reconnection).
    Open,
    /// An event arrived.
    Message(MessageEvent),
    /// The stream ended or a connection attempt failed on the network;
    /// the client waits `delay` (the reconnection time) and reconnects,
    /// with `Last-Event-ID` if it has one.
    Reconnecting {
        /// How long it waits first.
        delay: Duration,
        /// What went wrong; `None` when the server simply ended the stream.
        error: Option<Error>,
    },
    /// An event went past the parser's [`Limits`] and was dropped; the
    /// stream goes on.
    Dropped(tether_sse::Error),
}

/// Stops an [`EventSource`] from another thread, interrupting a blocked
/// read or a reconnection wait. (A TCP connect in progress is not
/// interrupted: it ends within the connect timeout, and the source stops
/// then.)
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    inner: Arc<(Mutex<StopState>, Condvar)>,
}

#[derive(Debug, Default)]
struct StopState {
    stopped: bool,
    /// A clone of the open socket, to shut it down.
    socket: Option<TcpStream>,
}

impl StopHandle {
    /// Stops the event source: it closes its connection, and its next (or
    /// current) `next_event` returns `None`.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        self.inner.1.notify_all();
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    fn lock(&self) -> MutexGuard<'_, StopState> {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits `delay`, or less if stopped; true if stopped.
    fn sleep(&self, delay: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .inner
            .1
            .wait_timeout_while(guard, delay, |s| !s.stopped)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.stopped
    }

    /// Registers the open socket; false if already stopped.
    fn attach(&self, socket: &TcpStream) -> bool {
        let mut state = self.lock();
        if state.stopped {
            return false;
        }
        state.socket = socket.try_clone().ok();
        true
    }

    fn detach(&self) {
        self.lock().socket = None;
    }
}

/// The open response: its socket and how its body is framed.
struct Stream {
    socket: Transport,
    body: Body,
}

/// A blocking Server-Sent Events client with the semantics of the WHATWG
/// `EventSource` ("processing model" of the HTML standard):
///
/// - requests carry `Accept: text/event-stream` and `Cache-Control:
///   no-cache`, and `Last-Event-ID` on reconnection when the last event ID
///   is not empty and a header can carry it exactly (an id with a control
///   character, or white space at either end, is not sent);
/// - redirects (301, 302, 303, 307, 308) are followed, up to a limit; once
///   one leads to another origin (scheme, host or port), the builder's
///   `Authorization`, `Cookie` and `Proxy-Authorization` headers are no
///   longer sent, and a redirect from `https` to `http` fails for good;
/// - a 200 response whose `Content-Type` is not `text/event-stream`, or any
///   other status, fails the connection for good (no reconnection);
/// - 204 No Content stops it for good, without an error;
/// - a network error, or the end of the stream, is followed by a wait of
///   the reconnection time (which `retry:` sets) and a new request to the
///   original URL (redirects are followed again each time); when the
///   connection delivered no event, a growing wait ([`Backoff`](crate::Backoff)'s
///   defaults: 500 ms doubling up to 30 s, jittered) is added, so that a
///   server ending every stream at once is not asked again in a hot loop;
/// - bodies framed by `Transfer-Encoding: chunked`, by `Content-Length`
///   (the end of the body is the end of the stream) or by the end of the
///   connection all work.
///
/// Iterating gives the events; [`next_event`](Self::next_event) also tells
/// of openings and reconnections. [`close`](Self::close) or a
/// [`StopHandle`] stops it.
///
/// ```no_run
/// use tether_client::EventSource;
///
/// let mut source = EventSource::connect("http://127.0.0.1:9001/clock")?;
/// for event in source.by_ref().take(3) {
///     let event = event?;
///     println!("{} #{}: {}", event.event_type(), event.last_event_id(), event.data());
/// }
/// source.close();
/// # Ok::<(), tether_client::Error>(())
/// ```
pub struct EventSource {
    options: EventSourceBuilder,
    url: Url,
    parser: Parser,
    /// The reconnection rules, shared with tether-tokio's client.
    policy: Reconnection,
    state: ReadyState,
    stream: Option<Stream>,
    /// Wait `delay` before the next attempt.
    wait_first: bool,
    /// The wait before the next attempt, as the policy gave it.
    delay: Duration,
    /// A `Reconnecting` to report once the parser's queue is drained.
    notice: Option<SseEvent>,
    stop: StopHandle,
    buf: Vec<u8>,
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &self.url.to_string())
            .field("state", &self.state)
            .field("last_event_id", &self.parser.last_event_id())
            .field("reconnection_time", &self.policy.current_reconnection_time())
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// An event source for an `http://` URL with the default settings. It
    /// connects on the first [`next_event`](Self::next_event) (or `next`).
    pub fn connect(url: &str) -> Result<EventSource, Error> {
        EventSourceBuilder::new(url).build()
    }

    /// A builder for `url`.
    pub fn builder(url: impl Into<String>) -> EventSourceBuilder {
        EventSourceBuilder::new(url)
    }

    /// The URL requested (redirects are followed anew on each connection).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Where it stands.
    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    /// The last event ID, sent as `Last-Event-ID` on reconnection when not
    /// empty.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The current reconnection time.
    pub fn reconnection_time(&self) -> Duration {
        self.policy.current_reconnection_time()
    }

    /// A handle that stops this event source from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops for good and closes the connection.
    pub fn close(&mut self) {
        self.stop.stop();
        self.drop_stream();
        self.state = ReadyState::Closed;
    }

    fn drop_stream(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            stream.socket.shutdown();
        }
        self.stop.detach();
    }

    /// Blocks until the next thing happens: an event, an opening, a
    /// reconnection about to be waited for. `None` once stopped (by
    /// [`close`](Self::close), a [`StopHandle`] or a 204); `Some(Err)` for
    /// a fatal error, after which it is closed.
    pub fn next_event(&mut self) -> Option<Result<SseEvent, Error>> {
        loop {
            if self.stop.is_stopped() {
                self.drop_stream();
                self.state = ReadyState::Closed;
            }
            if self.state == ReadyState::Closed {
                return None;
            }
            match self.parser.poll() {
                Some(Ok(Item::Event(event))) => {
                    self.policy.event();
                    return Some(Ok(SseEvent::Message(event)));
                }
                Some(Ok(Item::Retry(ms))) => {
                    self.policy.retry(ms);
                    continue;
                }
                Some(Err(e)) => return Some(Ok(SseEvent::Dropped(e))),
                None => {}
            }
            if let Some(notice) = self.notice.take() {
                self.state = ReadyState::Connecting;
                let notice = match notice {
                    SseEvent::Reconnecting { error, .. } => {
                        self.delay = self.policy.ended();
                        SseEvent::Reconnecting {
                            delay: self.delay,
                            error,
                        }
                    }
                    other => other,
                };
                return Some(Ok(notice));
            }
            if self.stream.is_some() {
                self.read();
                continue;
            }
            if self.wait_first && self.stop.sleep(self.delay) {
                continue;
            }
            self.wait_first = true;
            match self.open() {
                Ok(Some(mut stream)) => {
                    if stream.body.is_complete() {
                        // The body came whole with the head; a
                        // `Reconnecting` is already queued.
                        stream.socket.shutdown();
                    } else if self.stop.attach(stream.socket.tcp()) {
                        self.stream = Some(stream);
                    } else {
                        continue;
                    }
                    self.state = ReadyState::Open;
                    self.policy.opened();
                    return Some(Ok(SseEvent::Open));
                }
                Ok(None) => {
                    self.state = ReadyState::Closed;
                    return None;
                }
                Err(e) if e.is_network_error() || self.retries(&e) => {
                    let Some(delay) = self.policy.failed() else {
                        self.state = ReadyState::Closed;
                        return Some(Err(e));
                    };
                    self.delay = delay;
                    self.state = ReadyState::Connecting;
                    return Some(Ok(SseEvent::Reconnecting {
                        delay,
                        error: Some(e),
                    }));
                }
                Err(e) => {
                    self.state = ReadyState::Closed;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Whether `e` is an answer this source was told to retry.
    fn retries(&self, e: &Error) -> bool {
        matches!(e, Error::Refused { status, .. } if self.policy.retries(*status))
    }

    /// One read of the open stream, fed to the parser; at the end of the
    /// stream (or on an error), prepares the reconnection.
    fn read(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        self.buf.resize(READ_CHUNK, 0);
        let end = match stream.socket.read(&mut self.buf) {
            Ok(0) if stream.body.is_complete() || stream.body.until_close() => Some(None),
            Ok(0) => Some(Some(Error::ConnectionLost)),
            Ok(n) => {
                let parser = &mut self.parser;
                match stream
                    .body
                    .decode(self.buf.get(..n).unwrap_or_default(), &mut |bytes| {
                        parser.feed(bytes)
                    }) {
                    Ok(true) => Some(None),
                    Ok(false) => None,
                    Err(e) => Some(Some(e)),
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => None,
            Err(e) if is_timeout(&e) => Some(Some(Error::Timeout("read: the stream went silent"))),
            Err(e) => Some(Some(Error::io("read", e))),
        };
        if let Some(error) = end {
            self.drop_stream();
            self.parser.finish();
            if self.stop.is_stopped() {
                return;
            }
            self.notice = Some(SseEvent::Reconnecting {
                delay: self.policy.current_reconnection_time(),
                error,
            });
        }
    }

    /// One connection attempt, following redirects: the open stream,
    /// `None` for 204, or why it failed.
    fn open(&mut self) -> Result<Option<Stream>, Error> {
        let mut url = self.url.clone();
        let mut redirects = Redirects::new(&self.url, self.options.max_redirects);
        // One deadline for the whole attempt, redirects included: a server
        // trickling its head a byte at a time, or redirecting again and
        // again, gets no fresh time for it.
        let deadline = Instant::now() + self.options.connect_timeout;
        const STEP: &str = "connect and response head";
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(STEP));
            }
            let mut socket = Transport::connect(&url, left, &self.options.tls)?;
            socket.handshake(deadline, STEP)?;
            time_left(socket.tcp(), deadline, STEP)?;
            let request = self.request(&url, &redirects);
            socket.write_all(&request).map_err(|e| {
                if is_timeout(&e) {
                    Error::Timeout("write the request")
                } else {
                    Error::io("write the request", e)
                }
            })?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let max_head = self.options.max_head;
            let over = || Error::Http(format!("response head over {max_head} bytes"));
            let (head, used) = loop {
                if let Some(parsed) = http::parse_head(&buf)? {
                    // Whole, but perhaps only after a read that took it
                    // past the limit.
                    if parsed.1 > max_head {
                        return Err(over());
                    }
                    break parsed;
                }
                if buf.len() > max_head {
                    return Err(over());
                }
                time_left(socket.tcp(), deadline, STEP)?;
                match socket.read(&mut chunk) {
                    Ok(0) => return Err(Error::ConnectionLost),
                    Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if is_timeout(&e) => return Err(Error::Timeout(STEP)),
                    Err(e) => return Err(Error::io("read the response", e)),
                }
            };
            match self.policy.head(head.status, head.content_type.as_deref()) {
                Head::Open => {
                    socket
                        .tcp()
                        .set_read_timeout(self.options.read_timeout)
                        .and_then(|()| {
                            // What the open stream writes (TLS alerts, key
                            // updates) gets the attempt's full time again.
                            socket.tcp().set_write_timeout(Some(self.options.connect_timeout))
                        })
                        .map_err(|e| Error::io("set the stream's timeouts", e))?;
                    let mut stream = Stream {
                        socket,
                        body: head.body,
                    };
                    let parser = &mut self.parser;
                    if stream
                        .body
                        .decode(buf.get(used..).unwrap_or_default(), &mut |bytes| {
                            parser.feed(bytes)
                        })?
                    {
                        // The whole body came with the head: the stream has
                        // already ended.
                        self.parser.finish();
                        self.notice = Some(SseEvent::Reconnecting {
                            delay: self.policy.current_reconnection_time(),
                            error: None,
                        });
                    }
                    return Ok(Some(stream));
                }
                Head::Stop => return Ok(None),
                Head::Redirect => {
                    socket.shutdown();
                    url = redirects
                        .follow(
                            &url,
                            head.status,
                            head.location.as_deref(),
                            &[Scheme::Http, Scheme::Https],
                        )
                        .map_err(|e| match e {
                            // The URL came from the server: its fault.
                            e @ (tether_client_core::Error::UnsupportedScheme { .. }
                            | tether_client_core::Error::InvalidUrl { .. }) => {
                                Error::BadRedirect(e.to_string())
                            }
                            e => e.into(),
                        })?;
                }
                Head::Fail(tether_client_core::Error::Refused { status })
                | Head::Retry(tether_client_core::Error::Refused { status }) => {
                    return Err(Error::Refused {
                        status,
                        reason: head.reason,
                    });
                }
                Head::Fail(e) | Head::Retry(e) => return Err(e.into()),
            }
        }
    }

    /// The request for `url`, with the caller's headers that the chain of
    /// redirects still sends.
    fn request(&self, url: &Url, redirects: &Redirects) -> Vec<u8> {
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
            url.target(),
            url.host_header()
        );
        if let Some(id) = event_source::last_event_id(self.parser.last_event_id()) {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        for (name, value) in &self.options.headers {
            if !redirects.sends(name) {
                continue;
            }
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.into_bytes()
    }
}

impl Iterator for EventSource {
    type Item = Result<MessageEvent, Error>;

    /// The next event, skipping openings and reconnections; `None` once
    /// stopped.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_event()? {
                Ok(SseEvent::Message(event)) => return Some(Ok(event)),
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
