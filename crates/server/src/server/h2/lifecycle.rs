//! An HTTP/2 session's own life: its timers (stalled streams, deferred
//! answers, heartbeats, WebSocket timers, the idle timeout), what follows every
//! input, timer or action (end the connection, stop reading), the two
//! steps of a graceful shutdown, and the end of every stream when the
//! connection is dropped.

use crate::server::hosted::Hosted;
use std::time::Instant;

use log::debug;
use tether_h2::ErrorCode;
use tether_ws::CloseCode;

use super::state::{H2Session, Kind, Piece};
use crate::app::sse_coding;
use crate::app::{App, CloseReason, ConnId, Ctx};
use crate::loops::Stats;
use crate::server::env::Call;
use crate::server::guard::guarded;
use crate::server::link::NextStep;
use crate::server::websocket;

impl H2Session {
    /// What is due: stalled streams (reset with CANCEL), deferred
    /// answers, heartbeats, WebSocket timers, the idle timeout.
    pub(in crate::server) fn on_timer<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) -> NextStep {
        let id = c.id;
        let heartbeat = c.env.config.sse_heartbeat;
        if self.streams.is_empty() && now >= self.deadline {
            if c.link.closing {
                // The GOAWAY went into the output a linger ago and the
                // client has not taken it: nothing more is owed.
                debug!("HTTP/2 connection idle and not reading its GOAWAY; dropped");
                return NextStep::Drop;
            }
            debug!("HTTP/2 connection idle; GOAWAY");
            let pool = &mut c.env.pool;
            c.link
                .queue(pool)
                .write_with(pool, |o| self.conn.go_away(ErrorCode::NO_ERROR, o));
            c.link.closing = true;
            // Once written, the connection is shut down and drained; until
            // then this is the deadline (the timer must not find the same
            // past deadline again: it would fire for ever).
            self.deadline = now + c.env.config.linger;
            c.mark_dirty();
            return NextStep::Keep;
        }
        for stream in self.due_discards(now) {
            debug!("HTTP/2 stream {stream}: refused body still coming at its deadline; resetting");
            let pool = &mut c.env.pool;
            let out = c.link.queue(pool);
            self.refuse(stream, ErrorCode::NO_ERROR, out, pool);
        }
        let window = c.env.config.keep_alive_timeout;
        for stream in self.due_stalls(now, window) {
            debug!("HTTP/2 stream {stream}: request body or window stalled; resetting");
            self.reset(
                id.with_stream(stream),
                c,
                ErrorCode::CANCEL,
                CloseReason::Dropped,
                now,
            );
        }
        let mut timed_out = Vec::new();
        let mut unsent = Vec::new();
        let mut ws_due = Vec::new();
        for (&stream, s) in self.streams.iter_mut() {
            match &mut s.kind {
                Kind::Waiting { tag, deadline, .. } if now >= *deadline => timed_out.push((stream, *tag)),
                Kind::Sse {
                    heartbeat_at,
                    ended: true,
                    ..
                } if now >= *heartbeat_at => unsent.push(stream),
                Kind::Sse {
                    heartbeat_at, coding, ..
                } if now >= *heartbeat_at => {
                    *heartbeat_at = now + heartbeat;
                    let piece = match coding {
                        Some(coding) => Piece::Shared(sse_coding::heartbeat(coding), 0),
                        None => {
                            let mut comment = Vec::with_capacity(4);
                            tether_sse::heartbeat(&mut comment);
                            Piece::Owned(comment, 0)
                        }
                    };
                    let len = piece.rest().len();
                    s.queued = s.queued.saturating_add(len);
                    self.queued = self.queued.saturating_add(len);
                    s.queue.push_back(piece);
                }
                Kind::WebSocket(session) if session.ws.poll_timeout().is_some_and(|at| now >= at) => {
                    ws_due.push(stream);
                }
                _ => {}
            }
        }
        self.send_ready(c, None);
        for stream in unsent {
            debug!("event stream {stream} could not send its end in time; resetting");
            self.reset(
                id.with_stream(stream),
                c,
                ErrorCode::CANCEL,
                CloseReason::Dropped,
                now,
            );
        }
        for (stream, tag) in timed_out {
            let sid = id.with_stream(stream);
            let response = c.timed_out(sid, tag, now);
            self.respond_later(sid, c, &response);
        }
        for stream in ws_due {
            self.ws_timer(c, stream, now);
        }
        self.after(c, now);
        NextStep::Keep
    }

    fn ws_timer<A: App>(&mut self, c: &mut Call<'_, '_, A>, stream: u32, now: Instant) {
        let id = c.id;
        let mut failure = None;
        self.with_ws(c, stream, now, |_, ctx, _, _| {
            failure = websocket::handle_timer(ctx, now);
        });
        let Some(error) = failure else { return };
        debug!("websocket timer on stream {stream}: {error}");
        let sid = id.with_stream(stream);
        let reason = websocket::timer_close_reason(&error);
        if matches!(error, tether_ws::Error::CloseTimeout) {
            return self.reset(sid, c, ErrorCode::CANCEL, reason, now);
        }
        let Some(Kind::WebSocket(session)) = self.streams.get_mut(&stream).map(|s| &mut s.kind) else {
            return;
        };
        if session.notified {
            return;
        }
        session.notified = true;
        let tag = session.tag;
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_close", || {
            app.on_close(&mut ctx, sid, tag, reason)
        });
    }

    /// After input, a timer or an action: a connection that ended (an
    /// error, or our GOAWAY with no stream left) closes once its output is
    /// written; a client whose own answers pile up is not read until it
    /// takes them.
    pub(in crate::server) fn after<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) {
        let config = &c.env.config;
        self.time_stalls(now, config.handshake_timeout, config.keep_alive_timeout);
        self.time_discards(now, config.handshake_timeout);
        if !self.streams.is_empty() {
            // Not idle: the keep-alive timeout counts from the last moment
            // a stream was open.
            self.deadline = now + config.keep_alive_timeout;
        }
        let held = self.body_bytes();
        let before = std::mem::replace(&mut self.reported_body_bytes, held);
        if c.link.queued() > c.env.config.max_output {
            c.link.paused = true;
        }
        let closed = self.conn.is_closed();
        let finished = closed || (self.streams.is_empty() && self.conn.is_finished());
        let gauge = &c.env.stats().h2_request_body_bytes;
        if held > before {
            Stats::add(gauge, (held - before) as u64);
        } else {
            Stats::sub(gauge, (before - held) as u64);
        }
        if closed {
            self.drop_streams(c, CloseReason::Dropped, now);
        }
        if finished {
            c.link.closing = true;
        }
        c.mark_dirty();
    }

    /// Forgets every stream, telling the application.
    fn drop_streams<A: App>(&mut self, c: &mut Call<'_, '_, A>, reason: CloseReason, now: Instant) {
        let id = c.id;
        let streams: Vec<u32> = self.streams.keys().copied().collect();
        for stream in streams {
            self.gone(id.with_stream(stream), c, reason.clone(), now);
        }
    }

    /// The first step of a graceful shutdown: GOAWAY, so that the client
    /// opens no new stream; a connection with none open closes.
    pub(in crate::server) fn begin_shutdown<A: App>(&mut self, c: &mut Call<'_, '_, A>) {
        let pool = &mut c.env.pool;
        c.link
            .queue(pool)
            .write_with(pool, |o| self.conn.go_away(ErrorCode::NO_ERROR, o));
        if self.streams.is_empty() {
            c.link.closing = true;
        }
        c.mark_dirty();
    }

    /// The second step: deferred requests are answered, WebSockets closed
    /// with 1001, event streams ended.
    pub(in crate::server) fn close_sessions<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) {
        let id = c.id;
        let mut waiting = Vec::new();
        let mut sockets = Vec::new();
        let mut events = Vec::new();
        for (&stream, s) in &self.streams {
            match s.kind {
                Kind::Waiting { tag, .. } => waiting.push((stream, tag)),
                Kind::WebSocket(_) => sockets.push(stream),
                Kind::Sse { ended: false, .. } => events.push(stream),
                _ => {}
            }
        }
        for (stream, tag) in waiting {
            let sid = id.with_stream(stream);
            if let Some(response) = c.shutdown_answer(sid, tag, now) {
                self.respond_later(sid, c, &response);
            }
        }
        for stream in sockets {
            let sid = id.with_stream(stream);
            self.close_ws(sid, c, CloseCode::GOING_AWAY, "server shutting down", now);
        }
        for stream in events {
            self.end_stream(id.with_stream(stream), c, CloseReason::Shutdown, now);
        }
        self.after(c, now);
    }

    /// Tells the application that every stream of a connection being
    /// dropped has ended, and keeps the gauges right.
    pub(in crate::server) fn notify_removed<A: App>(
        self,
        app: &mut Hosted<A>,
        ctx: &mut Ctx<'_, A::Post>,
        id: ConnId,
        reason: CloseReason,
    ) {
        let stats = &ctx.peers.own().stats;
        Stats::sub(&stats.h2_request_body_bytes, self.reported_body_bytes as u64);
        for (stream, s) in self.streams {
            let sid = id.with_stream(stream);
            match s.kind {
                // Each state is dropped here, after its last callback if
                // that is still owed.
                Kind::WebSocket(session) => {
                    Stats::sub(&stats.open_websocket, 1);
                    if session.notified {
                        app.release(session.tag);
                    } else {
                        app.close_final(ctx, sid, session.tag, reason.clone());
                    }
                }
                Kind::Sse { tag, ended, .. } => {
                    Stats::sub(&stats.open_event_stream, 1);
                    if ended {
                        app.release(tag);
                    } else {
                        app.unsubscribe_final(ctx, sid, tag, reason.clone());
                    }
                }
                Kind::Waiting { tag, .. } => app.abandoned_final(ctx, sid, tag),
                // Its state was made of its head alone: no callback is owed.
                Kind::Body { kept: Some(key), .. } => app.release(key),
                Kind::Body { .. } | Kind::Answered => {}
            }
        }
    }
}
