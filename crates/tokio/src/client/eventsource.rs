//! An EventSource client: reconnects, resumes with `Last-Event-ID`, backs
//! off; its rules are tether-client-core's, shared with tether-client.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tether_backoff::Backoff;
use tether_client_core::event_source::{self, Head, Reconnection};
use tether_client_core::limits;
use tether_client_core::redirect::Redirects;
use tether_client_core::url::{Scheme, Url};
use tether_sse::{Item, MessageEvent, Parser};

use super::{Tls, open};
use crate::error::Error;

/// A client of an event stream (`http://`, or `https://` with `tls`), with
/// the EventSource semantics of the WHATWG HTML standard, by the rules of
/// tether-client-core (the same as tether-client's `EventSource`): it reads
/// events with tether-sse's parser, reconnects when the stream ends or the
/// connection fails, and sends `Last-Event-ID` with the last id seen so the
/// server can resume.
///
/// - Between attempts it waits the reconnection time (3 s until the
///   stream's `retry:` sets another, at most 10 minutes), plus the
///   [`Backoff`]'s growing wait when the connection delivered no event, so
///   that a server that ends every stream at once is not asked again in a
///   hot loop.
/// - Redirects (301, 302, 303, 307, 308) are followed, at most 20 per
///   attempt; one from `https` to `http` fails for good.
/// - A response other than `200` with `Content-Type: text/event-stream`
///   ends it: `204 No Content` is the server's way to say "stop"
///   (`Ok(None)`), another status is [`Error::Status`], a wrong type or a
///   bad redirect [`Error::Policy`]. So does a response head over 16 KiB
///   ([`max_response_head`](Self::max_response_head)).
/// - An event id that a header cannot carry exactly (a control character,
///   white space at an end) is not sent as `Last-Event-ID`.
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
    url: Url,
    tls: Tls,
    parser: Parser,
    /// The id sent as `Last-Event-ID` when nothing newer was seen.
    initial_id: String,
    policy: Reconnection,
    body: Option<Incoming>,
    /// The wait before the next attempt, once one was made.
    wait: Option<Duration>,
    connect_timeout: Duration,
    /// How long the server may take to answer with its response head.
    response_timeout: Duration,
    max_redirects: u32,
    max_head: usize,
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
            url: Url::parse_event_stream(url)?,
            tls: Tls::default(),
            parser: Parser::new(),
            initial_id: String::new(),
            policy: Reconnection::new(),
            body: None,
            wait: None,
            connect_timeout: limits::CONNECT_TIMEOUT,
            response_timeout: limits::CONNECT_TIMEOUT,
            max_redirects: limits::MAX_REDIRECTS,
            max_head: limits::MAX_RESPONSE_HEAD,
        })
    }

    /// How long a server may take, once connected, to answer the request
    /// with its response head (default 10 s). A server that takes longer
    /// counts as a failed attempt: the client drops the connection and
    /// tries again after the wait, as it does when the connection fails.
    /// Events are awaited without a limit: a stream may stay quiet as long
    /// as it likes.
    pub fn response_timeout(mut self, timeout: Duration) -> EventSource {
        self.response_timeout = timeout;
        self
    }

    /// The wait added to the reconnection time after connections that
    /// delivered no event (default: tether-backoff's, 500 ms doubling to
    /// 30 s, jittered); its [`max_attempts`](Backoff::max_attempts) is how
    /// many failed attempts in a row end it (default: none do).
    pub fn backoff(mut self, backoff: Backoff) -> EventSource {
        self.policy = self.policy.backoff(backoff).max_retries(backoff.attempts_limit());
        self
    }

    /// The reconnection time until the stream sets one with `retry:`
    /// (default 3 s).
    pub fn reconnection_time(mut self, delay: Duration) -> EventSource {
        self.policy = self.policy.reconnection_time(delay);
        self
    }

    /// The longest reconnection time a stream's `retry:` may set (default
    /// 10 minutes): a larger one counts as this.
    pub fn max_reconnection_time(mut self, max: Duration) -> EventSource {
        self.policy = self.policy.max_reconnection_time(max);
        self
    }

    /// Retries 502, 503 and 504 answers as failed attempts (after the
    /// wait, ended by the backoff's attempts limit) instead of failing for
    /// good, which is `EventSource`'s way and the default: a load balancer
    /// answers them while the servers behind it restart.
    pub fn retry_unavailable(mut self, on: bool) -> EventSource {
        self.policy = self.policy.retry_unavailable(on);
        self
    }

    /// How many redirects one attempt follows (default 20).
    pub fn max_redirects(mut self, limit: u32) -> EventSource {
        self.max_redirects = limit;
        self
    }

    /// The largest response head read (default 16 KiB; at least 8 KiB,
    /// hyper's smallest read buffer). A longer one fails for good with
    /// [`Error::Policy`]: trying again would meet the same head.
    pub fn max_response_head(mut self, bytes: usize) -> EventSource {
        self.max_head = bytes.max(8 << 10);
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

    /// The current reconnection time (what `retry:` set, bounded).
    pub fn current_reconnection_time(&self) -> Duration {
        self.policy.current_reconnection_time()
    }

    /// The next event; `Ok(None)` when the server said to stop (204).
    /// Reconnects as the policy allows; its last failure is the error once
    /// it gives up.
    pub async fn next(&mut self) -> Result<Option<MessageEvent>, Error> {
        loop {
            while let Some(item) = self.parser.poll() {
                match item {
                    Ok(Item::Event(event)) => {
                        self.policy.event();
                        return Ok(Some(event));
                    }
                    Ok(Item::Retry(ms)) => self.policy.retry(ms),
                    // An event over the parser's limits is dropped; the
                    // stream goes on.
                    Err(_) => {}
                }
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
                        self.wait = Some(self.policy.ended());
                    }
                }
                continue;
            }
            if let Some(wait) = self.wait.take() {
                tokio::time::sleep(wait).await;
            }
            match self.open().await {
                Ok(Some(body)) => {
                    self.policy.opened();
                    self.body = Some(body);
                }
                Ok(None) => return Ok(None),
                // None is mended by trying again.
                Err(Error::Status(status)) if !self.policy.retries(status) => {
                    return Err(Error::Status(status));
                }
                Err(e @ (Error::Usage(_) | Error::Policy(_))) => return Err(e),
                Err(e) => match self.policy.failed() {
                    Some(wait) => self.wait = Some(wait),
                    None => return Err(e),
                },
            }
        }
    }

    /// One attempt, following redirects: the stream's body, `None` for
    /// 204, or the failure.
    async fn open(&mut self) -> Result<Option<Incoming>, Error> {
        let mut url = self.url.clone();
        let mut redirects = Redirects::new(&self.url, self.max_redirects);
        loop {
            let stream = open(&url, &self.tls, self.connect_timeout).await?;
            let response = tokio::time::timeout(self.response_timeout, self.request(stream, &url))
                .await
                .map_err(|_| Error::Timeout("response head"))??;
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let status = response.status().as_u16();
            match self.policy.head(status, content_type.as_deref()) {
                Head::Open => return Ok(Some(response.into_body())),
                Head::Stop => return Ok(None),
                Head::Redirect => {
                    let location = response
                        .headers()
                        .get(http::header::LOCATION)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    url = redirects
                        .follow(&url, status, location.as_deref(), &[Scheme::Http, Scheme::Https])
                        // The URL came from the server: its fault.
                        .map_err(Error::Policy)?;
                }
                Head::Fail(e) | Head::Retry(e) => return Err(e.into()),
            }
        }
    }

    /// The GET of `url` over a connected stream, up to the response head.
    async fn request(&self, stream: super::Stream, url: &Url) -> Result<http::Response<Incoming>, Error> {
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(self.max_head.max(8 << 10))
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        tokio::spawn(connection);
        let mut request = http::Request::get(url.target())
            .header(http::header::HOST, url.host_header())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        if let Some(id) = event_source::last_event_id(self.last_event_id()) {
            request = request.header("last-event-id", id);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Usage(e.to_string()))?;
        sender.send_request(request).await.map_err(|e| {
            if e.is_parse_too_large() {
                Error::Policy(tether_client_core::Error::HeadTooLarge { limit: self.max_head })
            } else {
                Error::Io(std::io::Error::other(e))
            }
        })
    }
}
