//! The EventSource's reconnection policy (the "processing model" of the
//! WHATWG HTML standard, with bounds): what a response head means, how long
//! to wait before the next attempt, when to give up, and which
//! `Last-Event-ID` goes with the request.
//!
//! The rules:
//!
//! - `200` with `Content-Type: text/event-stream` (parameters ignored)
//!   opens the stream; `200` with another type fails for good, as does any
//!   status other than `204` and the redirects; `204 No Content` stops for
//!   good without an error; a redirect is followed (see
//!   [`redirect`](crate::redirect)).
//! - After the stream ends, or is lost, the client waits the reconnection
//!   time (3 s until the stream sends `retry:`; a `retry:` over the
//!   maximum, 10 minutes by default, counts as the maximum) and
//!   reconnects. When the connection delivered no event since the last
//!   reconnection, a growing wait ([`Backoff`]: 500 ms doubling to 30 s,
//!   jittered) is added, so that a server that ends every stream at once
//!   is not asked again in a hot loop; an event starts it over.
//! - A connection attempt that fails on the network waits the same way;
//!   after `max_retries` such failures in a row (no limit by default, as
//!   browsers do) the client gives up. An open stream resets the count.
//! - `Last-Event-ID` carries the last event id when it is not empty and
//!   a header can carry it exactly: an id with a control character (the
//!   parser already leaves out ids with NUL) or with white space at either
//!   end (which a server trims) is not sent, and the server starts the
//!   stream as for a new client, rather than every attempt failing.
//!
//! The driver calls [`Reconnection::head`] with each response head,
//! [`Reconnection::opened`] once a stream opens, [`Reconnection::retry`]
//! and [`Reconnection::event`] as the parser yields them, and
//! [`Reconnection::ended`] or [`Reconnection::failed`] to learn the wait.
//!
//! ```
//! use std::time::Duration;
//! use tether_client_core::event_source::{Head, Reconnection};
//!
//! let mut policy = Reconnection::new().backoff(tether_backoff::Backoff::new().jitter(0.0));
//! assert_eq!(policy.head(200, Some("text/event-stream; charset=utf-8")), Head::Open);
//! policy.opened();
//! policy.retry(250);
//! policy.event();
//! // The stream delivered an event: the reconnection time alone.
//! assert_eq!(policy.ended(), Duration::from_millis(250));
//! // The next one delivered nothing: the backoff is added.
//! assert_eq!(policy.ended(), Duration::from_millis(750));
//! assert_eq!(policy.head(204, None), Head::Stop);
//! ```

use std::time::Duration;

use tether_backoff::{Attempts, Backoff};

use crate::Error;
use crate::limits;

/// What a response head means for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// The stream: read its body.
    Open,
    /// `204 No Content`: stop for good, without an error.
    Stop,
    /// A redirect: follow it with [`Redirects`](crate::redirect::Redirects).
    Redirect,
    /// Fail for good: trying again would meet the same answer.
    Fail(Error),
    /// A status that says "not now" (502, 503 or 504) from a source told
    /// to retry them ([`Reconnection::retry_unavailable`]): a failed
    /// attempt, counted by [`Reconnection::failed`], then another after
    /// the wait it gives.
    Retry(Error),
}

/// Whether a `Content-Type` value's MIME type essence is
/// `text/event-stream` (parameters such as `charset` are ignored).
pub fn is_event_stream(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// The `Last-Event-ID` value to send for the last event id `id`, if any:
/// none for an empty id, or one that a header field cannot carry exactly
/// (a control character, or white space at either end).
pub fn last_event_id(id: &str) -> Option<&str> {
    let carried = !id.is_empty()
        && !id.chars().any(char::is_control)
        && !id.starts_with([' ', '\t'])
        && !id.ends_with([' ', '\t']);
    carried.then_some(id)
}

/// The reconnection state of one event source. No clock inside: it hands
/// out waits, which the driver sleeps.
#[derive(Debug, Clone)]
pub struct Reconnection {
    reconnection_time: Duration,
    max_reconnection_time: Duration,
    /// Reconnections in a row after connections that delivered nothing.
    quiet: Attempts,
    /// An event arrived since the last wait was handed out.
    delivered: bool,
    /// Failed attempts in a row.
    failures: u32,
    max_retries: Option<u32>,
    /// 502, 503 and 504 are failed attempts rather than the end.
    retry_unavailable: bool,
}

impl Default for Reconnection {
    fn default() -> Reconnection {
        Reconnection::new()
    }
}

impl Reconnection {
    /// The defaults: a reconnection time of 3 s
    /// ([`limits::RECONNECTION_TIME`]), `retry:` bounded by 10 minutes
    /// ([`limits::MAX_RECONNECTION_TIME`]), [`Backoff`]'s defaults after
    /// quiet connections, no limit on failed attempts.
    pub fn new() -> Reconnection {
        Reconnection {
            reconnection_time: limits::RECONNECTION_TIME,
            max_reconnection_time: limits::MAX_RECONNECTION_TIME,
            quiet: Attempts::new(Backoff::new()),
            delivered: false,
            failures: 0,
            max_retries: None,
            retry_unavailable: false,
        }
    }

    /// The reconnection time until the stream sets one with `retry:`
    /// (bounded by the maximum too).
    pub fn reconnection_time(mut self, delay: Duration) -> Reconnection {
        self.reconnection_time = delay.min(self.max_reconnection_time);
        self
    }

    /// The longest reconnection time `retry:` may set.
    pub fn max_reconnection_time(mut self, max: Duration) -> Reconnection {
        self.max_reconnection_time = max;
        self.reconnection_time = self.reconnection_time.min(max);
        self
    }

    /// The growing wait added after connections that delivered nothing.
    pub fn backoff(mut self, backoff: Backoff) -> Reconnection {
        self.quiet = Attempts::new(backoff);
        self
    }

    /// Gives up after this many failed attempts in a row (`None`: never).
    pub fn max_retries(mut self, attempts: Option<u32>) -> Reconnection {
        self.max_retries = attempts;
        self
    }

    /// Treats 502 Bad Gateway, 503 Service Unavailable and 504 Gateway
    /// Timeout as failed attempts, retried after the wait (and counted
    /// against [`max_retries`](Self::max_retries)), instead of failing
    /// the source for good as `EventSource` does (the default). A proxy
    /// answers them while its backends restart or fail their health
    /// checks; a client that must outlive that (a service following a
    /// hub behind a load balancer) turns this on.
    pub fn retry_unavailable(mut self, on: bool) -> Reconnection {
        self.retry_unavailable = on;
        self
    }

    /// Whether a response with `status` is a failed attempt to retry (see
    /// [`retry_unavailable`](Self::retry_unavailable)).
    pub fn retries(&self, status: u16) -> bool {
        self.retry_unavailable && matches!(status, 502..=504)
    }

    /// The current reconnection time.
    pub fn current_reconnection_time(&self) -> Duration {
        self.reconnection_time
    }

    /// What the response head `status` (with its `Content-Type`) means.
    pub fn head(&self, status: u16, content_type: Option<&str>) -> Head {
        match status {
            200 => match content_type {
                Some(t) if is_event_stream(t) => Head::Open,
                other => Head::Fail(Error::ContentType(other.unwrap_or_default().to_owned())),
            },
            204 => Head::Stop,
            s if crate::redirect::is_redirect(s) => Head::Redirect,
            status if self.retries(status) => Head::Retry(Error::Refused { status }),
            status => Head::Fail(Error::Refused { status }),
        }
    }

    /// A stream opened: failed attempts are counted from zero again.
    pub fn opened(&mut self) {
        self.failures = 0;
    }

    /// The stream's `retry:` field, in milliseconds: the new reconnection
    /// time, bounded by the maximum.
    pub fn retry(&mut self, ms: u64) {
        self.reconnection_time = Duration::from_millis(ms).min(self.max_reconnection_time);
    }

    /// The stream delivered an event.
    pub fn event(&mut self) {
        self.delivered = true;
    }

    /// The stream ended, or was lost, after it opened: the wait before the
    /// next attempt.
    pub fn ended(&mut self) -> Duration {
        if std::mem::take(&mut self.delivered) {
            self.quiet.reset();
            self.reconnection_time
        } else {
            self.reconnection_time.saturating_add(self.quiet.next_delay())
        }
    }

    /// A connection attempt failed on the network (or timed out): the wait
    /// before the next one, or `None` to give up.
    pub fn failed(&mut self) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self.max_retries.is_some_and(|max| self.failures > max) {
            return None;
        }
        Some(self.ended())
    }

    /// Failed attempts in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}
