//! An HTTP/1.1 connection's state: requests (pipelined, kept alive, one
//! perhaps waiting for the application's answer), then, after an upgrade,
//! a WebSocket session or an event stream.

use std::time::Instant;

use super::pending::PendingBody;
use crate::app::sse_coding::Coding;
use crate::server::push_target::PushTarget;
use crate::server::websocket::Session;

/// An HTTP/1.1 connection, in the phase it is in.
pub(in crate::server) enum H1Conn {
    /// Requests and their answers.
    Requests(Requests),
    /// A WebSocket session, after its upgrade.
    WebSocket(Session),
    /// A WebSocket session that is over (the close handshake done, or the
    /// session failed): its last bytes, the close frame among them, are
    /// owed until `deadline`, and then the connection is dropped. The
    /// session's timers have stopped, and a client that does not read
    /// would otherwise hold the connection for ever (with reading paused,
    /// even its end of stream goes unseen).
    ClosedWebSocket {
        tag: u32,
        /// The application has been told the session ended.
        notified: bool,
        deadline: Instant,
    },
    /// An event stream, after its response head; with its content
    /// coding if it is compressed.
    EventStream {
        tag: u32,
        heartbeat_at: Instant,
        coding: Option<Coding>,
    },
}

/// Waiting for a request head (the first, or the next on keep-alive), or
/// for the application's deferred answer to one.
pub(in crate::server) struct Requests {
    /// Bytes of requests not yet handled (while a body arrives, its
    /// request's head alone).
    pub(in crate::server) partial: Vec<u8>,
    /// A body arriving over several reads, gathered so far.
    pub(in crate::server) body: Option<Box<PendingBody>>,
    /// Requests in `partial` were left unanswered when the output went
    /// over its limit: they go on once it has drained.
    pub(in crate::server) stalled: bool,
    pub(in crate::server) deadline: Instant,
    /// `100 Continue` was sent for the request being received.
    pub(in crate::server) continued: bool,
    /// The head of the request being received was shown to the
    /// application ([`crate::App::refuse_before_body`]).
    pub(in crate::server) head_checked: bool,
    /// A request the application answers later.
    pub(in crate::server) waiting: Option<Deferred>,
    /// Nothing has been read yet: the first bytes may still be the
    /// HTTP/2 preface, or ALPN may have chosen `h2`.
    pub(in crate::server) fresh: bool,
    /// The state the application made of the head of the request being
    /// received ([`crate::BeforeBody::Handler`]): its route once its body
    /// is whole.
    pub(in crate::server) kept: Option<u32>,
}

/// A request whose answer the application gives later.
#[derive(Debug, Clone, Copy)]
pub(in crate::server) struct Deferred {
    pub(in crate::server) tag: u32,
    /// Held ([`crate::Reply::Hold`]): the request's own bytes, this many,
    /// are kept at the start of `partial` until it goes on or is answered
    /// (a request is far shorter than 4 GiB: the head and body limits).
    pub(in crate::server) held: u32,
    /// Close the connection after the answer.
    pub(in crate::server) close: bool,
    /// A `HEAD` request: the answer goes without its body.
    pub(in crate::server) head_only: bool,
}

impl H1Conn {
    /// The key of the request state the connection holds, if any.
    pub(in crate::server) fn state(&self) -> Option<u32> {
        match self {
            H1Conn::Requests(requests) => requests.waiting.map(|deferred| deferred.tag).or(requests.kept),
            H1Conn::WebSocket(session) => Some(session.tag),
            H1Conn::ClosedWebSocket { tag, .. } | H1Conn::EventStream { tag, .. } => Some(*tag),
        }
    }

    /// A new connection, whose first request head is due by `deadline`.
    pub(in crate::server) fn new(deadline: Instant) -> H1Conn {
        H1Conn::Requests(Requests {
            partial: Vec::new(),
            body: None,
            stalled: false,
            deadline,
            continued: false,
            head_checked: false,
            waiting: None,
            fresh: true,
            kept: None,
        })
    }

    /// A request on it waits for the application's answer.
    pub(in crate::server) fn awaits_answer(&self) -> bool {
        matches!(self, H1Conn::Requests(Requests { waiting: Some(_), .. }))
    }

    /// When its timer is next due.
    #[inline]
    pub(in crate::server) fn next_deadline(&self) -> Option<Instant> {
        match self {
            H1Conn::Requests(requests) => Some(requests.deadline),
            H1Conn::WebSocket(session) => session.ws.poll_timeout(),
            H1Conn::ClosedWebSocket { deadline, .. } => Some(*deadline),
            H1Conn::EventStream { heartbeat_at, .. } => Some(*heartbeat_at),
        }
    }

    /// Its session, while it takes broadcasts.
    #[inline]
    pub(in crate::server) fn push_target(&mut self) -> Option<PushTarget<'_>> {
        match self {
            H1Conn::WebSocket(session) if session.ws.can_send() => Some(PushTarget::WebSocket(session)),
            H1Conn::EventStream {
                heartbeat_at, coding, ..
            } => Some(PushTarget::EventStream(heartbeat_at, coding.as_mut())),
            _ => None,
        }
    }
}
