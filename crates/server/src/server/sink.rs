//! Where the application's output for one id goes: a sink is an HTTP/1.1
//! connection or one stream of an HTTP/2 connection, and the four things
//! done to a session from outside its own input (a broadcast pushed to it,
//! its WebSocket closed, its event stream ended, a deferred answer given)
//! are asked here, once, whatever carries them.
//!
//! Calling contract: the loop calls these with the id the application was
//! given ([`crate::app::ConnId`], with a stream for HTTP/2); an id whose
//! connection or stream is gone is ignored. A push's bytes, its early
//! flush and the slow-consumer check are decided here for both carriers,
//! which only queue the bytes (and each applies its own slow-consumer
//! policy); the other three are written by the session that owns the
//! sink, in its own framing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use tether_ws::CloseCode;

use super::env::LoopEnv;
use super::{Server, Session, State, Stats, live, session};
use crate::app::{App, CloseReason, ConnId, Encoded, Response};
use crate::transport::Stream;

/// The carrier an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sink {
    /// An HTTP/1.1 connection (a WebSocket, an event stream or requests).
    Connection(ConnId),
    /// A stream of an HTTP/2 connection; the id carries both.
    Stream(ConnId),
}

impl Sink {
    /// The sink `id` names.
    pub(super) fn of(id: ConnId) -> Sink {
        if id.stream() == 0 {
            Sink::Connection(id)
        } else {
            Sink::Stream(id)
        }
    }
}

/// A session that takes broadcasts, where its carrier keeps it.
pub(super) enum Pushee<'a> {
    WebSocket(&'a Session),
    /// An event stream, with when its next heartbeat is due.
    EventStream(&'a mut Instant),
}

impl Pushee<'_> {
    /// The session of a connection's state, while it takes broadcasts.
    fn of(state: &mut State) -> Option<Pushee<'_>> {
        match state {
            State::WebSocket(session) if session.ws.can_send() => Some(Pushee::WebSocket(session)),
            State::Sse { heartbeat_at, .. } => Some(Pushee::EventStream(heartbeat_at)),
            _ => None,
        }
    }

    /// What of `encoded` this session is sent: a WebSocket's frame (the
    /// shared compressed twin if it negotiated one), or an event stream's
    /// bytes, which put its next heartbeat off as a heartbeat would.
    #[inline]
    fn bytes(self, encoded: Encoded, stats: &Stats, now: Instant, heartbeat: Duration) -> Arc<[u8]> {
        match self {
            Pushee::WebSocket(session) => session.frame_of(&encoded, stats),
            Pushee::EventStream(heartbeat_at) => {
                *heartbeat_at = now + heartbeat;
                encoded.bytes
            }
        }
    }
}

impl<A: App> Server<A> {
    /// Queues a broadcast (shared bytes, compressed where the session
    /// takes them so) for a WebSocket or an event stream; the
    /// slow-consumer policy applies to what its client does not take.
    pub(super) fn push(&mut self, id: ConnId, encoded: Encoded, now: Instant) {
        let max_output = self.env.config.max_output;
        let heartbeat = self.env.config.sse_heartbeat;
        let Self { conns, tls, env, .. } = self;
        let LoopEnv { pool, peers, .. } = env;
        let Some(conn) = live(conns, id.connection()) else {
            return;
        };
        if conn.closing {
            return;
        }
        let stats = &peers.own().stats;
        let pushee = match (Sink::of(id), &mut conn.state) {
            (Sink::Stream(sid), State::H2(h2)) => h2.pushee(sid.stream()),
            (Sink::Connection(_), state) => Pushee::of(state),
            (Sink::Stream(_), _) => None,
        };
        let Some(bytes) = pushee.map(|p| p.bytes(encoded, stats, now, heartbeat)) else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        // How the carrier queues the bytes: on the connection's queue as
        // they are, or as DATA on the stream, as far as its windows allow.
        let gone = match &mut conn.state {
            State::H2(h2) => h2.push_shared(id.stream(), bytes, out, pool),
            _ => {
                out.push_shared(bytes);
                None
            }
        };
        Stats::add(&stats.messages_out, 1);
        if out.len() > max_output {
            // Output is written only once per loop turn, so a burst of
            // broadcasts can queue more than the limit for a peer that
            // reads promptly. Bytes its socket takes now say nothing
            // against it: judge only what the socket refuses.
            let mut socket = Stream {
                socket: &mut conn.socket,
                tls: session(tls, id.index()),
            };
            if let Err(e) = out.flush(&mut socket, pool) {
                debug!("write error: {e}");
                self.remove(id.connection(), CloseReason::Dropped);
                return;
            }
        }
        // A client that does not read the socket, or (on HTTP/2) does not
        // open a stream's window while the connection holds more than
        // the limit.
        let stalled = match &conn.state {
            State::H2(h2) => h2.stalled(id.stream(), max_output),
            _ => false,
        };
        let queued = out.len();
        let over = stalled || queued > max_output;
        if let Some(gone) = gone {
            gone.count_gone(self.stats());
        }
        if over {
            match Sink::of(id) {
                Sink::Connection(id) => {
                    debug!("slow consumer: {queued} bytes queued, cutting it loose");
                    self.cut_loose(id, now);
                }
                Sink::Stream(sid) => self.h2_cut_loose(sid, now),
            }
        }
        self.mark_dirty(id.connection());
    }

    /// Starts the close handshake of a WebSocket.
    pub(super) fn close_ws(&mut self, id: ConnId, code: CloseCode, reason: &str, now: Instant) {
        match Sink::of(id) {
            Sink::Connection(id) => self.conn_close_ws(id, code, reason, now),
            Sink::Stream(sid) => self.h2_close_ws(sid, code, reason, now),
        }
    }

    /// Ends an event stream after what is queued, telling the application.
    pub(super) fn end_stream(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        match Sink::of(id) {
            Sink::Connection(id) => self.conn_end_stream(id, reason, now),
            Sink::Stream(sid) => self.h2_end_stream(sid, reason, now),
        }
    }

    /// Sends the application's deferred answer to a request.
    pub(super) fn respond_later(&mut self, id: ConnId, response: &Response, now: Instant) {
        match Sink::of(id) {
            Sink::Connection(id) => self.conn_respond_later(id, response, now),
            Sink::Stream(sid) => self.h2_respond_later(sid, response),
        }
    }
}
