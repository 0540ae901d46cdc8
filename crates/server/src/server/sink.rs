//! Where the application's output for one id goes: a sink is an HTTP/1.1
//! connection or one stream of an HTTP/2 connection, and the four things
//! done to a session from outside its own input (a broadcast pushed to it,
//! its WebSocket closed, its event stream ended, a deferred answer given)
//! are asked here, once, whatever carries them.
//!
//! Calling contract: the loop finds the connection of the id the
//! application was given ([`crate::app::ConnId`], with a stream for
//! HTTP/2) and calls these with it; a stream that is gone, or a session
//! in another phase, is ignored. A push's bytes, its early flush and the
//! slow-consumer check are decided here for both carriers, which only
//! queue the bytes (and each applies its own slow-consumer policy); the
//! other three are written by the session that owns the sink, in its own
//! framing. What the loop must do next comes back as an [`After`].

use std::time::Instant;

use log::debug;
use tether_ws::CloseCode;

use super::conn::State;
use super::env::Call;
use super::link::After;
use crate::app::{App, CloseReason, ConnId, Encoded, Response};
use crate::loops::Stats;

/// The carrier an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// An HTTP/1.1 connection (a WebSocket, an event stream or requests).
    Connection,
    /// A stream of an HTTP/2 connection.
    Stream(u32),
}

impl Sink {
    /// The sink `id` names.
    fn of(id: ConnId) -> Sink {
        match id.stream() {
            0 => Sink::Connection,
            stream => Sink::Stream(stream),
        }
    }
}

/// Queues a broadcast (shared bytes, compressed where the session takes
/// them so) for a WebSocket or an event stream; the slow-consumer policy
/// applies to what its client does not take.
pub(super) fn push<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    id: ConnId,
    encoded: Encoded,
    now: Instant,
) -> After {
    if c.link.closing {
        return After::Keep;
    }
    let env = &mut *c.env;
    let max_output = env.config.max_output;
    let heartbeat = env.config.sse_heartbeat;
    let pushee = match (Sink::of(id), &mut *state) {
        (Sink::Stream(stream), State::H2(h2)) => h2.pushee(stream),
        (Sink::Connection, State::H1(h1)) => h1.pushee(),
        _ => None,
    };
    let stats = &env.peers.own().stats;
    let Some(bytes) = pushee.map(|p| p.bytes(encoded, stats, now, heartbeat)) else {
        return After::Keep;
    };
    let pool = &mut env.pool;
    let out = c.link.queue(pool);
    // How the carrier queues the bytes: on the connection's queue as they
    // are, or as DATA on the stream, as far as its windows allow.
    let gone = match &mut *state {
        State::H2(h2) => h2.push_shared(id.stream(), bytes, out, pool),
        _ => {
            out.push_shared(bytes);
            None
        }
    };
    Stats::add(&stats.messages_out, 1);
    if out.len() > max_output {
        // Output is written only once per loop turn, so a burst of
        // broadcasts can queue more than the limit for a peer that reads
        // promptly. Bytes its socket takes now say nothing against it:
        // judge only what the socket refuses.
        if let Err(e) = out.flush(&mut *c.socket, pool) {
            debug!("write error: {e}");
            return After::Drop;
        }
    }
    // A client that does not read the socket, or (on HTTP/2) does not
    // open a stream's window while the connection holds more than the
    // limit.
    let queued = out.len();
    let stalled = match &*state {
        State::H2(h2) => h2.stalled(id.stream(), max_output),
        _ => false,
    };
    if let Some(gone) = gone {
        gone.count_gone(stats);
    }
    if stalled || queued > max_output {
        match state {
            State::H1(h1) => {
                debug!("slow consumer: {queued} bytes queued, cutting it loose");
                h1.cut_loose(c, now);
            }
            State::H2(h2) => h2.cut_loose(id, c, now),
            State::Draining { .. } => {}
        }
    }
    After::Flush
}

/// Starts the close handshake of a WebSocket.
pub(super) fn close_ws<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    id: ConnId,
    code: CloseCode,
    reason: &str,
    now: Instant,
) {
    match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => h1.close_ws(c, code, reason, now),
        (Sink::Stream(_), State::H2(h2)) => h2.close_ws(id, c, code, reason, now),
        _ => {}
    }
}

/// Ends an event stream after what is queued, telling the application.
pub(super) fn end_stream<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    id: ConnId,
    reason: CloseReason,
    now: Instant,
) {
    match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => h1.end_stream(c, reason, now),
        (Sink::Stream(_), State::H2(h2)) => h2.end_stream(id, c, reason, now),
        _ => {}
    }
}

/// Sends the application's deferred answer to a request.
pub(super) fn respond_later<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    id: ConnId,
    response: &Response,
    now: Instant,
) {
    match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => h1.respond_later(c, response, now),
        (Sink::Stream(_), State::H2(h2)) => h2.respond_later(id, c, response),
        _ => {}
    }
}
