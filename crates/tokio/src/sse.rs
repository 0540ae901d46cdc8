//! Server-Sent Events responses: a body over tether-sse's encoder, with
//! heartbeat comments and the right headers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http_body::Frame;
use tokio::time::Sleep;

/// Events written together into one body frame, at most (bytes).
const BATCH: usize = 64 << 10;

/// One event, encoded when it is made: a value that could inject fields
/// (an `id` or `event` with a line break) is refused then, so a stream of
/// `Event`s is always well formed. Data may hold any text; line breaks in
/// it become several `data` lines, which the client joins back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    encoded: Bytes,
}

impl Event {
    /// An event with only data (type "message").
    ///
    /// ```
    /// let event = tether_tokio::sse::Event::data("a\nb");
    /// assert_eq!(event.as_bytes(), b"data: a\ndata: b\n\n");
    /// ```
    pub fn data(data: &str) -> Event {
        let mut out = Vec::with_capacity(data.len() + 8);
        // Data alone always encodes.
        let _ = tether_sse::Event::new().data(data).encode(&mut out);
        Event { encoded: out.into() }
    }

    /// Any event tether-sse can encode, built with its builder.
    ///
    /// ```
    /// use tether_tokio::sse::Event;
    ///
    /// let event = Event::encode(tether_sse::Event::new().id("7").event("tick").data("x"))?;
    /// assert_eq!(event.as_bytes(), b"id: 7\nevent: tick\ndata: x\n\n");
    /// assert!(Event::encode(tether_sse::Event::new().id("1\nevent: spoofed").data("x")).is_err());
    /// # Ok::<(), tether_sse::Error>(())
    /// ```
    pub fn encode(event: tether_sse::Event<'_>) -> Result<Event, tether_sse::Error> {
        let mut out = Vec::new();
        event.encode(&mut out)?;
        Ok(Event { encoded: out.into() })
    }

    /// An event with an id (what a reconnecting client sends back as
    /// `Last-Event-ID`) and data.
    pub fn with_id(id: &str, data: &str) -> Result<Event, tether_sse::Error> {
        Event::encode(tether_sse::Event::new().id(id).data(data))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

/// The `Last-Event-ID` request header: the id of the last event a
/// reconnecting EventSource saw. `None` when absent or not visible ASCII.
pub fn last_event_id(headers: &http::HeaderMap) -> Option<&str> {
    headers.get("last-event-id").and_then(|v| v.to_str().ok())
}

/// An event stream response body: the events of `St`, encoded by
/// tether-sse, with a heartbeat comment (`:`) after each quiet interval
/// (default 15 s) so that proxies keep the connection open. It ends when
/// the stream does.
///
/// [`into_http`](Self::into_http) makes the response with the right
/// headers; with the `axum` feature, `Sse` is also an `IntoResponse`.
pub struct Sse<St> {
    stream: Pin<Box<St>>,
    heartbeat: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    prelude: Option<Bytes>,
    done: bool,
}

impl<St> std::fmt::Debug for Sse<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl<St: Stream<Item = Event>> Sse<St> {
    /// A body of `events`, heartbeats every 15 s.
    pub fn new(events: St) -> Sse<St> {
        Sse {
            stream: Box::pin(events),
            heartbeat: Some(Duration::from_secs(15)),
            timer: None,
            prelude: None,
            done: false,
        }
    }

    /// Sets (or, with `None`, turns off) the heartbeat interval.
    pub fn heartbeat(mut self, every: Option<Duration>) -> Sse<St> {
        self.heartbeat = every;
        self
    }

    /// Starts the stream with a `retry` line: the client waits this long
    /// before reconnecting.
    pub fn retry(mut self, after: Duration) -> Sse<St> {
        let mut out = Vec::new();
        tether_sse::retry(u64::try_from(after.as_millis()).unwrap_or(u64::MAX), &mut out);
        self.prelude = Some(out.into());
        self
    }

    /// The `200 OK` response with this body: `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, and
    /// `X-Accel-Buffering: no` (nginx would otherwise hold events back).
    pub fn into_http(self) -> http::Response<Sse<St>> {
        let mut response = http::Response::new(self);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache"),
        );
        headers.insert("x-accel-buffering", http::HeaderValue::from_static("no"));
        response
    }

    fn rearm(&mut self) {
        if let Some(every) = self.heartbeat {
            let at = tokio::time::Instant::now() + every;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
    }
}

impl<St: Stream<Item = Event>> http_body::Body for Sse<St> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::convert::Infallible>>> {
        // Unpin: the stream and the timer are boxed.
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(prelude) = this.prelude.take() {
            this.rearm();
            return Poll::Ready(Some(Ok(Frame::data(prelude))));
        }
        if this.timer.is_none() {
            this.rearm();
        }
        // Events ready now go out together, up to BATCH bytes.
        let mut batch: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        loop {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    match batch.take() {
                        None if joined.is_empty() => batch = Some(event.encoded),
                        None => joined.extend_from_slice(&event.encoded),
                        Some(first) => {
                            joined.extend_from_slice(&first);
                            joined.extend_from_slice(&event.encoded);
                        }
                    }
                    if joined.len() >= BATCH {
                        break;
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        let data = match batch {
            Some(one) => Some(one),
            None if !joined.is_empty() => Some(Bytes::from(joined)),
            None => None,
        };
        if let Some(data) = data {
            this.rearm();
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(timer) = &mut this.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            this.rearm();
            let mut out = Vec::with_capacity(2);
            tether_sse::heartbeat(&mut out);
            return Poll::Ready(Some(Ok(Frame::data(out.into()))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
