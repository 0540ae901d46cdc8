//! The state of an HTTP/2 session, apart from the loop: the tether-h2
//! connection, its streams and what each one is (a request whose body is
//! coming, an answer being sent, an event stream, a WebSocket), the output
//! queued on each until the client's windows take it, and the conversion
//! of heads between HTTP/2 fields and what the application sees.
//!
//! Calling contract: the session code in the parent module owns an [`H2Session`]
//! per connection, feeds its connection the bytes read, queues output per
//! stream with [`H2Session::enqueue`] and moves it to the connection's output
//! queue with [`H2Session::drain`]; nothing here calls the application.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use tether_h2::ErrorCode;
use tether_h2::connection::{Event as H2Event, Request as H2Request, ServerConnection};

use crate::app::Response;
use crate::app::sse_coding::Coding;
use crate::loops::Stats;
use crate::output::{OutQueue, Pool};
use crate::server::body;
use crate::server::env::LoopEnv;
use crate::server::fields::response_fields;
use crate::server::push_target::PushTarget;
use crate::server::websocket::Session;

/// How much of a refused request's body is read and dropped after its
/// answer, so that the client finishes sending and then reads the answer.
/// RFC 9113 §8.1 lets a server stop the upload with RST_STREAM(NO_ERROR)
/// instead, but clients that are still sending when it arrives (curl 7.88
/// among them) report a stream error and lose the answer. A body larger
/// than this (announced or sent) is stopped with the reset.
pub(super) const REFUSED_BODY_DISCARD: usize = 1 << 20;

/// Streams of one connection whose bodies are being dropped at once: they
/// count against the concurrent-stream limit anyway, this bounds the map
/// even if that limit is set high.
pub(super) const MAX_DISCARDING_STREAMS: usize = 256;

/// One HTTP/2 connection's session.
pub(crate) struct H2Session {
    pub(super) conn: ServerConnection,
    /// The start of a frame not yet whole.
    pub(super) partial: Vec<u8>,
    pub(super) streams: BTreeMap<u32, H2Stream>,
    /// Answered streams whose request bodies are still arriving, with how
    /// many more of their bytes are read and dropped before a reset, and
    /// until when.
    pub(super) discarding: BTreeMap<u32, Discard>,
    /// With no stream open, the connection closes at this time: the
    /// keep-alive timeout from its start, its last request or the last
    /// moment a stream was open. Other input does not move it: bytes that
    /// are discarded (a refused body, frames on a reset stream, PINGs,
    /// WINDOW_UPDATEs) must not hold an idle connection open.
    pub(super) deadline: Instant,
    /// Bytes queued on all streams, waiting for window.
    pub(super) queued: usize,
    /// What [`H2Session::body_bytes`] was when last added to the loop's gauge.
    pub(super) reported_body_bytes: usize,
}

/// The body of a request answered before it was read, being dropped.
#[derive(Debug, Clone, Copy)]
pub(super) struct Discard {
    /// How many more of its bytes are read before the stream is reset.
    pub(super) left: usize,
    /// When the stream is reset if the body has not ended: the handshake
    /// timeout from its refusal (timed after the input that refused it),
    /// so that a trickle cannot keep it going.
    pub(super) until: Option<Instant>,
}

/// What the server keeps for one stream.
pub(in crate::server) struct H2Stream {
    pub(super) kind: Kind,
    /// DATA waiting for the client's window.
    pub(super) queue: VecDeque<Piece>,
    pub(super) queued: usize,
    /// END_STREAM once the queue is sent.
    pub(super) end: bool,
    /// A WebSocket's input handled while its answers were queued past the
    /// output limit: bytes of the stream's window not given back yet.
    pub(super) owed: usize,
    /// When the stream is reset if it is still stalled: a request body
    /// not yet whole, or output the client's windows do not take.
    pub(super) stall: Option<Stall>,
}

/// What a stream may be stalled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stalled {
    /// Its request body: the whole request is due within the handshake
    /// timeout of its HEADERS, as on HTTP/1.1.
    Body,
    /// The client's window: some of its output must go within each
    /// keep-alive timeout.
    Window,
}

/// A stream's stall deadline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stall {
    pub(super) on: Stalled,
    pub(super) at: Instant,
    /// Output went since the deadline was set: it is set again instead.
    pub(super) progressed: bool,
}

impl H2Session {
    /// The keys of the request states its streams hold.
    pub(in crate::server) fn states(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams.values().filter_map(|s| s.kind.state())
    }
}

impl Kind {
    /// The key of the request state the stream holds, if any.
    pub(in crate::server) fn state(&self) -> Option<u32> {
        match self {
            Kind::Waiting { tag, .. } | Kind::Sse { tag, .. } => Some(*tag),
            Kind::WebSocket(session) => Some(session.tag),
            Kind::Body { kept, .. } => *kept,
            _ => None,
        }
    }
}

impl H2Stream {
    /// What the stream may be stalled on now, if anything: a quiet event
    /// stream or WebSocket (nothing queued) is not.
    pub(super) fn stalled_on(&self) -> Option<Stalled> {
        match self.kind {
            Kind::Body { .. } => Some(Stalled::Body),
            _ if self.queued > 0 => Some(Stalled::Window),
            _ => None,
        }
    }
}

/// Bytes waiting on a stream, and how much of them is sent.
pub(super) enum Piece {
    Owned(Vec<u8>, usize),
    Shared(Arc<[u8]>, usize),
}

impl Piece {
    pub(super) fn rest(&self) -> &[u8] {
        match self {
            Piece::Owned(bytes, at) => bytes.get(*at..).unwrap_or_default(),
            Piece::Shared(bytes, at) => bytes.get(*at..).unwrap_or_default(),
        }
    }

    pub(super) fn advance(&mut self, n: usize) {
        match self {
            Piece::Owned(_, at) | Piece::Shared(_, at) => *at += n,
        }
    }
}

pub(super) enum Kind {
    /// The request's body is arriving.
    Body {
        request: Box<H2Request>,
        body: Vec<u8>,
        /// The state the application made of its head
        /// ([`crate::BeforeBody::Handler`]): its route once the body is
        /// whole.
        kept: Option<u32>,
    },
    /// The response is on its way; the stream is forgotten once it is
    /// sent.
    Answered,
    /// The application answers later ([`crate::Reply::Later`]), or, holding
    /// the request ([`crate::Reply::Hold`]), may let it go on instead.
    Waiting {
        tag: u32,
        head_only: bool,
        deadline: Instant,
        /// The request and its body, kept to go on with, when held.
        held: Option<Box<(H2Request, Vec<u8>)>>,
    },
    /// An event stream; `ended` once the application was told it ended.
    Sse {
        tag: u32,
        heartbeat_at: Instant,
        ended: bool,
        /// Its content coding, if it is compressed.
        coding: Option<Coding>,
    },
    /// A WebSocket (RFC 8441).
    WebSocket(Session),
}

impl H2Stream {
    /// Takes a stream that is gone off the open-session gauges, and its
    /// request's state to `released` (its session told already).
    pub(in crate::server) fn count_gone(&self, stats: &Stats, released: &mut Vec<u32>) {
        match self.kind {
            Kind::Sse { .. } => Stats::sub(&stats.open_event_stream, 1),
            Kind::WebSocket(_) => Stats::sub(&stats.open_websocket, 1),
            _ => {}
        }
        released.extend(self.kind.state());
    }

    pub(super) fn new(kind: Kind) -> H2Stream {
        H2Stream {
            kind,
            queue: VecDeque::new(),
            queued: 0,
            end: false,
            owed: 0,
            stall: None,
        }
    }
}

impl H2Session {
    pub(crate) fn new(config: tether_h2::connection::Config, deadline: Instant) -> Option<H2Session> {
        Some(H2Session {
            conn: ServerConnection::new(config).ok()?,
            partial: Vec::new(),
            streams: BTreeMap::new(),
            discarding: BTreeMap::new(),
            deadline,
            queued: 0,
            reported_body_bytes: 0,
        })
    }

    /// The next time the session has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.streams.is_empty().then_some(self.deadline);
        let earliest = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for stream in self.streams.values() {
            let at = match &stream.kind {
                Kind::Waiting { deadline, .. } => Some(*deadline),
                Kind::Sse { heartbeat_at, .. } => Some(*heartbeat_at),
                Kind::WebSocket(session) => session.ws.poll_timeout(),
                Kind::Body { .. } | Kind::Answered => None,
            };
            // A stall not yet timed (output queued by an action, with no
            // clock at hand) is timed at the latest when the connection
            // would have been idle long enough.
            let stall = match (stream.stall, stream.stalled_on()) {
                (Some(stall), Some(_)) => Some(stall.at),
                (None, Some(_)) => Some(self.deadline),
                (_, None) => None,
            };
            next = earliest(earliest(next, at), stall);
        }
        for discard in self.discarding.values() {
            next = earliest(next, Some(discard.until.unwrap_or(self.deadline)));
        }
        next
    }

    /// Times the refused bodies being dropped that have no deadline yet:
    /// `within` from `now`.
    pub(super) fn time_discards(&mut self, now: Instant, within: Duration) {
        for discard in self.discarding.values_mut() {
            discard.until.get_or_insert(now + within);
        }
    }

    /// The refused bodies still coming at their deadline: their streams
    /// are to be reset.
    pub(super) fn due_discards(&mut self, now: Instant) -> Vec<u32> {
        let due: Vec<u32> = self
            .discarding
            .iter()
            .filter(|(_, d)| d.until.is_some_and(|at| now >= at))
            .map(|(&stream, _)| stream)
            .collect();
        for stream in &due {
            self.discarding.remove(stream);
        }
        due
    }

    /// Times the stalls of streams that have none yet, from `now`; a
    /// stream no longer stalled, or stalled on something else, forgets or
    /// restarts its time.
    pub(super) fn time_stalls(&mut self, now: Instant, body: Duration, window: Duration) {
        for s in self.streams.values_mut() {
            let on = s.stalled_on();
            s.stall = match (s.stall, on) {
                (Some(stall), Some(on)) if stall.on == on => Some(stall),
                (_, Some(on)) => Some(Stall {
                    on,
                    at: now + if on == Stalled::Body { body } else { window },
                    progressed: false,
                }),
                (_, None) => None,
            };
        }
    }

    /// The streams whose stall is due at `now` and still holds: to reset.
    /// A stream whose output moved since gets another `window`.
    pub(super) fn due_stalls(&mut self, now: Instant, window: Duration) -> Vec<u32> {
        let mut due = Vec::new();
        for (&id, s) in self.streams.iter_mut() {
            let on = s.stalled_on();
            let Some(stall) = s.stall.as_mut() else { continue };
            if now < stall.at || on != Some(stall.on) {
                continue;
            }
            if stall.on == Stalled::Window && stall.progressed {
                stall.at = now + window;
                stall.progressed = false;
                continue;
            }
            due.push(id);
        }
        due
    }

    /// The memory held by request bodies still arriving.
    pub(super) fn body_bytes(&self) -> usize {
        body::held(self.streams.values().filter_map(|s| match &s.kind {
            Kind::Body { body, .. } => Some(body),
            _ => None,
        }))
    }

    pub(super) fn enqueue(&mut self, stream: u32, piece: Piece) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let len = piece.rest().len();
        if len == 0 {
            return;
        }
        s.queued = s.queued.saturating_add(len);
        self.queued = self.queued.saturating_add(len);
        s.queue.push_back(piece);
    }

    /// Sends what the windows allow of `stream`'s queue, and END_STREAM
    /// once it is empty and the stream is to end; returns the stream if
    /// that ended it (it is forgotten).
    pub(super) fn drain(&mut self, stream: u32, out: &mut OutQueue, pool: &mut Pool) -> Option<H2Stream> {
        let H2Session {
            conn,
            streams,
            queued,
            ..
        } = self;
        let s = streams.get_mut(&stream)?;
        while let Some(front) = s.queue.front_mut() {
            let rest = front.rest().len();
            let n = match out.write_with(pool, |o| conn.send_data_head(stream, rest, false, o)) {
                Ok(n) => n,
                Err(_) => {
                    // The stream is gone on the connection's side (reset,
                    // or the connection ended): nothing more goes.
                    *queued = queued.saturating_sub(s.queued);
                    s.queued = 0;
                    s.queue.clear();
                    break;
                }
            };
            if n == 0 {
                break;
            }
            match front {
                // The common case: a whole shared payload in one frame.
                Piece::Shared(bytes, 0) if n == bytes.len() => out.push_shared(bytes.clone()),
                _ => {
                    let bytes = front.rest().get(..n).unwrap_or_default();
                    out.write_with(pool, |o| o.extend_from_slice(bytes));
                }
            }
            if let Some(stall) = s.stall.as_mut() {
                stall.progressed = true;
            }
            front.advance(n);
            if n == rest
                && let Some(Piece::Owned(bytes, _)) = s.queue.pop_front()
            {
                pool.give_back(bytes);
            }
            s.queued = s.queued.saturating_sub(n);
            *queued = queued.saturating_sub(n);
        }
        if s.queue.is_empty() && s.end {
            let _ = out.write_with(pool, |o| conn.send_data_head(stream, 0, true, o));
            // The client may still send (a WebSocket's close frame): what
            // the stream was owed goes back before it is forgotten.
            let owed = std::mem::take(&mut s.owed);
            out.write_with(pool, |o| conn.release_stream(stream, owed, o));
            return streams.remove(&stream);
        }
        None
    }

    /// `n` bytes of a WebSocket's input on `stream` were handled (their
    /// connection window went back already): the stream's window for them
    /// goes back too, unless what the stream has queued is over `limit`
    /// (the client does not take the answers its input makes): then they
    /// are owed until [`H2Session::repay`] finds the queue down to half of
    /// it. The client can so send at most a window's worth of input past
    /// the limit; stopping to read the connection instead would stop the
    /// WINDOW_UPDATEs that drain the queue too.
    pub(super) fn consumed(
        &mut self,
        stream: u32,
        n: usize,
        limit: usize,
        out: &mut OutQueue,
        pool: &mut Pool,
    ) {
        if let Some(s) = self.streams.get_mut(&stream) {
            let holding = s.owed > 0;
            s.owed = s.owed.saturating_add(n);
            if s.queued > limit || (holding && s.queued > limit / 2) {
                return;
            }
        }
        self.repay(stream, usize::MAX, out, pool);
        if !self.streams.contains_key(&stream) {
            // Forgotten (closed or reset by its input): nothing to hold.
            out.write_with(pool, |o| self.conn.release_stream(stream, n, o));
        }
    }

    /// Gives `stream` back the window it is owed (see
    /// [`H2Session::consumed`]) once its queue is down to `limit / 2`.
    pub(super) fn repay(&mut self, stream: u32, limit: usize, out: &mut OutQueue, pool: &mut Pool) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        if s.owed == 0 || s.queued > limit / 2 {
            return;
        }
        let owed = std::mem::take(&mut s.owed);
        out.write_with(pool, |o| self.conn.release_stream(stream, owed, o));
    }

    /// The session on `stream` that takes a broadcast, while it does.
    pub(in crate::server) fn push_target(&mut self, stream: u32) -> Option<PushTarget<'_>> {
        let s = self.streams.get_mut(&stream)?;
        match &mut s.kind {
            Kind::WebSocket(session) if session.ws.can_send() && !s.end => {
                Some(PushTarget::WebSocket(session))
            }
            Kind::Sse {
                heartbeat_at,
                ended: false,
                coding,
                ..
            } => Some(PushTarget::EventStream(heartbeat_at, coding.as_mut())),
            _ => None,
        }
    }

    /// Queues a broadcast's shared bytes on `stream` and sends what the
    /// windows allow, as [`H2Session::drain`].
    pub(in crate::server) fn push_shared(
        &mut self,
        stream: u32,
        bytes: Arc<[u8]>,
        out: &mut OutQueue,
        pool: &mut Pool,
    ) -> Option<H2Stream> {
        self.enqueue(stream, Piece::Shared(bytes, 0));
        self.drain(stream, out, pool)
    }

    /// Whether `stream` waits for a window its client does not open while
    /// the connection holds more than `limit` for its streams.
    pub(in crate::server) fn stalled(&self, stream: u32, limit: usize) -> bool {
        self.queued > limit && self.streams.get(&stream).is_some_and(|s| s.queued > 0)
    }

    /// Sends a whole response on `stream`, which is forgotten once it is
    /// sent. `head_only` for a HEAD request, whose answer has no body.
    pub(super) fn answer<P>(
        &mut self,
        env: &mut LoopEnv<P>,
        out: &mut OutQueue,
        stream: u32,
        response: &Response,
        head_only: bool,
    ) {
        let pool = &mut env.pool;
        let fields = response_fields(
            response.status,
            &response.content_type,
            Some(response.body.len()),
            response
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .chain(env.alt_svc.as_deref().map(|v| ("alt-svc", v))),
        );
        let no_body = head_only || response.body.is_empty();
        if out
            .write_with(pool, |o| self.conn.send_headers(stream, &fields, no_body, o))
            .is_err()
            || no_body
        {
            self.forget(stream);
            return;
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        s.kind = Kind::Answered;
        s.end = true;
        self.enqueue(stream, Piece::Owned(response.body.clone(), 0));
        self.drain(stream, out, pool);
    }

    /// Answers a request before its body is read. With `discard`,
    /// up to that many bytes of the body are then read and dropped until
    /// the client ends the stream; without it (or past it), the stream is
    /// reset with NO_ERROR so that the client stops sending (RFC 9113
    /// §8.1).
    pub(super) fn refuse_with<P>(
        &mut self,
        env: &mut LoopEnv<P>,
        out: &mut OutQueue,
        stream: u32,
        response: &Response,
        head_only: bool,
        discard: Option<usize>,
    ) {
        self.answer(env, out, stream, response, head_only);
        match discard {
            // The answer may still wait for window: it stays queued.
            Some(left) if self.discarding.len() < MAX_DISCARDING_STREAMS => {
                self.discarding.insert(stream, Discard { left, until: None });
            }
            _ => {
                self.refuse(stream, ErrorCode::NO_ERROR, out, &mut env.pool);
                self.forget(stream);
            }
        }
    }

    /// Resets a stream whose body would pass the connection's budget for
    /// request bodies with REFUSED_STREAM: it was not processed, and the
    /// client may send it again (RFC 9113 §8.7).
    pub(super) fn refuse_body<P>(&mut self, env: &mut LoopEnv<P>, out: &mut OutQueue, stream: u32) {
        debug!("HTTP/2 stream {stream}: request bodies at their limit; REFUSED_STREAM");
        Stats::add(&env.stats().h2_refused_bodies, 1);
        self.refuse(stream, ErrorCode::REFUSED_STREAM, out, &mut env.pool);
        self.forget(stream);
    }

    /// Resets a stream because of what the client did with it, charged to
    /// the connection's rapid-reset budget (which may end the connection).
    pub(super) fn refuse(&mut self, stream: u32, code: ErrorCode, out: &mut OutQueue, pool: &mut Pool) {
        if let Ok(Some(H2Event::ConnectionError(error))) =
            out.write_with(pool, |o| self.conn.refuse(stream, code, o))
        {
            debug!("HTTP/2 connection error: {error}");
        }
    }

    /// Forgets a stream, with what it had queued.
    pub(super) fn forget(&mut self, stream: u32) -> Option<H2Stream> {
        let s = self.streams.remove(&stream)?;
        self.queued = self.queued.saturating_sub(s.queued);
        Some(s)
    }
}
