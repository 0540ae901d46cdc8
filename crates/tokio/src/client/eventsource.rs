//! An EventSource client: reconnects, resumes with `Last-Event-ID`, backs
//! off.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_backoff::{Attempts, Backoff};
use tether_sse::{Item, MessageEvent, Parser};

use super::{Target, Tls, open};
use crate::Error;

/// A client of an event stream (`http://`, or `https://` with `tls`), with
/// the EventSource semantics of the WHATWG HTML standard: it reads events
/// with tether-sse's parser, reconnects when the stream ends or the
/// connection fails, sends `Last-Event-ID` with the last id seen so the
/// server can resume, and waits between attempts by the server's `retry`
/// or the [`Backoff`] (the longer of the two), starting the backoff over
/// after each successful connection.
///
/// A response other than `200` with `Content-Type: text/event-stream` ends
/// it: `204 No Content` is the server's way to say "stop" (`Ok(None)`),
/// anything else is [`Error::Status`]. An event id with a control
/// character, which no header value can carry, is not sent as
/// `Last-Event-ID`.
///
/// ```no_run
/// # async fn run() -> Result<(), tether_tokio::Error> {
/// let mut events = tether_tokio::client::EventSource::new("http://127.0.0.1:8080/events")?;
/// while let Some(event) = events.next().await? {
///     println!("{} {}: {}", event.last_event_id(), event.event_type(), event.data());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventSource {
    target: Target,
    tls: Tls,
    parser: Parser,
    /// The id sent as `Last-Event-ID` when nothing newer was seen.
    initial_id: String,
    attempts: Attempts,
    body: Option<Incoming>,
    /// Whether a connection was made or tried (the next one waits first).
    tried: bool,
    connect_timeout: Duration,
    /// How long the server may take to answer with its response head.
    response_timeout: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl EventSource {
    /// A client of `url`; it connects at the first [`next`](Self::next).
    pub fn new(url: &str) -> Result<EventSource, Error> {
        Ok(EventSource {
            target: Target::parse(url)?,
            tls: Tls::default(),
            parser: Parser::new(),
            initial_id: String::new(),
            attempts: Attempts::new(Backoff::new()),
            body: None,
            tried: false,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(10),
        })
    }

    /// How long a server may take, once connected, to answer the request
    /// with its response head (default 10 s). A server that takes longer
    /// counts as a failed attempt: the client drops the connection and
    /// tries again after the backoff's wait, as it does when the
    /// connection fails. Events are awaited without a limit: a stream may
    /// stay quiet as long as it likes.
    pub fn response_timeout(mut self, timeout: Duration) -> EventSource {
        self.response_timeout = timeout;
        self
    }

    /// The waits between attempts (default: tether-backoff's, 500 ms
    /// doubling to 30 s, jittered, without end).
    pub fn backoff(mut self, backoff: Backoff) -> EventSource {
        self.attempts = Attempts::new(backoff);
        self
    }

    /// Resumes from `id`: sent as `Last-Event-ID` until an event with an
    /// id arrives.
    pub fn resume_from(mut self, id: impl Into<String>) -> EventSource {
        self.initial_id = id.into();
        self
    }

    /// The TLS client configuration for `https://`.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>) -> EventSource {
        self.tls.config = Some(config);
        self
    }

    /// The last event id seen (or the one resumed from).
    pub fn last_event_id(&self) -> &str {
        match self.parser.last_event_id() {
            "" => &self.initial_id,
            id => id,
        }
    }

    /// The next event; `Ok(None)` when the server said to stop (204).
    /// Reconnects as often as the backoff allows; its last failure is the
    /// error once it gives up.
    pub async fn next(&mut self) -> Result<Option<MessageEvent>, Error> {
        let mut retry: Option<Duration> = None;
        loop {
            while let Some(item) = self.parser.poll() {
                match item {
                    Ok(Item::Event(event)) => return Ok(Some(event)),
                    Ok(Item::Retry(ms)) => retry = Some(Duration::from_millis(ms)),
                    // An event over the parser's limits is dropped; the
                    // stream goes on.
                    Err(_) => {}
                }
            }
            if let Some(ms) = self.parser.retry() {
                retry = Some(Duration::from_millis(ms));
            }
            if let Some(body) = &mut self.body {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            self.parser.feed(data);
                        }
                    }
                    Some(Err(_)) | None => {
                        self.parser.finish();
                        self.body = None;
                    }
                }
                continue;
            }
            if self.tried {
                if self.attempts.exhausted() {
                    return Err(Error::Dropped);
                }
                let backoff = self.attempts.next_delay();
                tokio::time::sleep(retry.map_or(backoff, |r| r.max(backoff))).await;
            }
            self.tried = true;
            match self.open().await {
                Ok(Some(body)) => {
                    self.attempts.reset();
                    self.body = Some(body);
                }
                Ok(None) => return Ok(None),
                // Neither is mended by trying again.
                Err(e @ (Error::Status(_) | Error::Usage(_))) => return Err(e),
                Err(e) if self.attempts.exhausted() => return Err(e),
                Err(_) => {}
            }
        }
    }

    /// One GET of the stream: its body, `None` for 204, or the failure.
    async fn open(&mut self) -> Result<Option<Incoming>, Error> {
        let stream = open(&self.target, &self.tls, self.connect_timeout).await?;
        tokio::time::timeout(self.response_timeout, self.request(stream))
            .await
            .map_err(|_| Error::Timeout("response head"))?
    }

    /// The GET over a connected stream, up to the response head.
    async fn request(&self, stream: super::Stream) -> Result<Option<Incoming>, Error> {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        tokio::spawn(connection);
        let mut request = http::Request::get(self.target.target.as_str())
            .header(http::header::HOST, self.target.authority.as_str())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        // An id is any text without NUL, but a header value cannot hold
        // control characters: such an id is not sent (the server starts
        // the stream as for a new client) rather than failing every
        // attempt from here on.
        let id = self.last_event_id();
        if let Ok(value) = http::HeaderValue::from_str(id)
            && !id.is_empty()
        {
            request = request.header("last-event-id", value);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Usage(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let status = response.status();
        if status == http::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let is_stream = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"));
        if status != http::StatusCode::OK || !is_stream {
            return Err(Error::Status(status.as_u16()));
        }
        Ok(Some(response.into_body()))
    }
}
