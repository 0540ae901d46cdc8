//! Where the application's output for one id goes: a sink is an HTTP/1.1
//! connection or one stream of an HTTP/2 connection, and the four things
//! done to a session from outside its own input (a broadcast pushed to it,
//! its WebSocket closed, its event stream ended, a deferred answer given)
//! are asked here, once, whatever carries them.
//!
//! Calling contract: the loop calls these with the id the application was
//! given ([`crate::app::ConnId`], with a stream for HTTP/2); the session
//! that owns the sink writes in its own framing, and an id whose
//! connection or stream is gone is ignored.

use std::time::Instant;

use tether_ws::CloseCode;

use super::Server;
use crate::app::{App, CloseReason, ConnId, Encoded, Response};

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

impl<A: App> Server<A> {
    /// Queues a broadcast (shared bytes, compressed where the session
    /// takes them so) for a WebSocket or an event stream; the
    /// slow-consumer policy applies to what its client does not take.
    pub(super) fn push(&mut self, id: ConnId, encoded: Encoded, now: Instant) {
        match Sink::of(id) {
            Sink::Connection(id) => self.conn_push(id, encoded, now),
            Sink::Stream(sid) => self.h2_push(sid, encoded, now),
        }
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
