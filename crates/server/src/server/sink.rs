//! Where the application's output for one id goes: a sink is an HTTP/1.1
//! connection or one stream of an HTTP/2 connection, and the four things
//! done to a session from outside its own input (a broadcast pushed to it,
//! its WebSocket closed, its event stream ended, a deferred answer given)
//! are asked here, once, whatever carries them. A request stream of a
//! QUIC connection (HTTP/3) is the same kind of sink, reached through the
//! loop's QUIC endpoint, which carries out the same operations on its own
//! streams: this file names no QUIC type.
//!
//! Calling contract: the loop finds the connection of the id the
//! application was given ([`crate::app::ConnId`], with a stream for
//! HTTP/2) and calls these with it; a stream that is gone, or a session
//! in another phase, is ignored. A push's bytes, its early flush and the
//! slow-consumer check are decided here for both carriers, which only
//! queue the bytes (and each applies its own slow-consumer policy); the
//! other three are written by the session that owns the sink, in its own
//! framing. What the loop must do next comes back as a [`Pushed`] from a push.

use std::time::Instant;

use log::debug;
use tether_ws::CloseCode;

use super::conn::{Conn, State};
use super::env::{Call, LoopEnv};
use crate::app::{App, CloseReason, ConnId, Encoded, Response, Route};
use crate::transport::{Stream, TlsSession};

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

/// What a push leaves to the loop.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    /// Nothing was queued (the session is gone, closing or takes no
    /// broadcasts).
    Nothing,
    /// Queued, and the connection marked to flush.
    Queued,
    /// Queued, and its client does not take what it is sent: the carrier's
    /// slow-consumer policy applies ([`cut_loose`]).
    Slow,
    /// The socket failed: drop the connection.
    Failed,
}

/// Queues a broadcast (shared bytes, compressed where the session takes
/// them so) for a WebSocket or an event stream, and says whether the
/// slow-consumer policy applies to what its client does not take.
///
/// The hot path of a fan-out, called once per subscriber and event: it
/// takes the connection and the environment as they are rather than a
/// [`Call`], and the TLS sessions by slot, read only for an early flush.
#[inline]
pub(super) fn push<P>(
    conn: &mut Conn,
    tls: &mut [Option<Box<TlsSession>>],
    env: &mut LoopEnv<P>,
    id: ConnId,
    encoded: &Encoded,
    now: Instant,
) -> Pushed {
    if conn.link.closing {
        return Pushed::Nothing;
    }
    let max_output = env.config.max_output;
    let config = &env.config;
    let stats = &env.peers.own().stats;
    let pool = &mut env.pool;
    let Conn {
        state, link, socket, ..
    } = conn;
    // The session that takes the broadcast and its bytes, queued as its
    // carrier queues them: on the connection's queue as they are, or as
    // DATA on the stream, as far as its windows allow. One match on the
    // carrier: this runs once per subscriber and event.
    let stalled = match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => {
            let Some(push_target) = h1.push_target() else {
                return Pushed::Nothing;
            };
            let bytes = push_target.bytes(encoded, stats, now, config);
            // Joined with the broadcast queued before it this turn, if any.
            let out = link.out.get_or_insert_with(|| pool.queue());
            out.push_broadcast(&bytes, pool);
            false
        }
        (Sink::Stream(stream), State::H2(h2)) => {
            let Some(push_target) = h2.push_target(stream) else {
                return Pushed::Nothing;
            };
            let bytes = push_target.bytes(encoded, stats, now, config).into_owned();
            if let Some(gone) = h2.push_shared(stream, bytes, link.queue(pool), pool) {
                gone.count_gone(stats, &mut env.released);
            }
            // A client that does not open the stream's window while the
            // connection holds more than the limit.
            h2.stalled(stream, max_output)
        }
        _ => return Pushed::Nothing,
    };
    let out = link.queue(pool);
    if out.len() > max_output {
        // Output is written only once per loop turn, so a burst of
        // broadcasts can queue more than the limit for a peer that reads
        // promptly. Bytes its socket takes now say nothing against it:
        // judge only what the socket refuses.
        let tls = tls.get_mut(id.index()).and_then(|s| s.as_deref_mut());
        let mut socket = Stream { socket, tls };
        if let Err(e) = out.flush(&mut socket, pool) {
            debug!("write error: {e}");
            return Pushed::Failed;
        }
    }
    // A client that does not read the socket (or, on HTTP/2, a stream's
    // window).
    let queued = out.len();
    env.mark_dirty(id, link);
    if stalled || queued > max_output {
        debug!("slow consumer: {queued} bytes queued, cutting it loose");
        return Pushed::Slow;
    }
    Pushed::Queued
}

/// The slow-consumer policy of the carrier `id` names: an HTTP/1.1
/// connection drops what is queued and not begun and closes its
/// WebSocket with 1008 or ends its event stream; an HTTP/2 stream is reset
/// with CANCEL.
pub(super) fn cut_loose<A: App>(state: &mut State, c: &mut Call<'_, '_, A>, id: ConnId, now: Instant) {
    match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => h1.cut_loose(c, now),
        (Sink::Stream(_), State::H2(h2)) => h2.cut_loose(id, c, now),
        _ => {}
    }
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

/// Lets a request the application held go on as `route`.
pub(super) fn proceed<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    id: ConnId,
    route: Route,
    now: Instant,
) {
    match (Sink::of(id), state) {
        (Sink::Connection, State::H1(h1)) => h1.proceed(c, route, now),
        (Sink::Stream(_), State::H2(h2)) => h2.proceed(id, c, route, now),
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
