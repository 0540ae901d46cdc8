//! WebSocket sessions and event streams: the upgrade, incoming frames,
//! output pushed from elsewhere and the slow-consumer policy.

use std::time::Instant;

use log::debug;
use tether_handshake::RequestHead;
use tether_ws::CloseCode;

use super::dispatch::last_event_id;
use super::{Conn, Kind, Server, Session, State, Stats, guarded};
use crate::app::{App, CloseReason, ConnId, Request};
use crate::app::{Current, InPlace};
use crate::http::write_sse_head;
use crate::transport::Stream;

impl<A: App> Server<A> {
    pub(super) fn upgrade(
        &mut self,
        id: ConnId,
        req: &tether_http1::RequestHead<'_, '_>,
        request: &Request<'_>,
        tag: u32,
        rest: &[u8],
        now: Instant,
    ) {
        let minor_version = match req.version() {
            tether_http1::Version::Http10 => 0,
            _ => 1,
        };
        let head = RequestHead::new(req.method(), req.target(), minor_version, req.headers());
        let accepted = match self.handshake.accept(head) {
            Ok(accepted) => accepted,
            Err(rejection) => {
                debug!("upgrade refused: {} {}", rejection.status(), rejection.reason());
                self.respond(id, |out| rejection.write_response(out), true);
                return;
            }
        };
        let mut response = Vec::with_capacity(160);
        if accepted.write_response(&mut response, &[]).is_err() {
            // Only GET upgrades.
            return self.http_error(id, 500, false);
        }
        let session = Session::accepted(accepted, tag, &self.ws_config, now);
        self.respond(id, |out| out.extend_from_slice(&response), false);
        let Some((conn, app, mut ctx)) = self.split(id, now) else {
            return;
        };
        conn.kind = Kind::WebSocket;
        let stats = &ctx.peers.own().stats;
        Stats::sub(&stats.open_http, 1);
        Stats::add(&stats.open_websocket, 1);
        conn.state = State::WebSocket(session);
        let Conn {
            state: State::WebSocket(session),
            out,
            closing,
            ..
        } = conn
        else {
            return;
        };
        let out = out.get_or_insert_with(|| ctx.pool.queue());
        let peers = ctx.peers;
        let mut ctx = ctx.with_current(Current {
            id,
            ws: Some(&mut session.ws),
            deflate_window: session.deflate_window,
            out,
            closing,
            in_place: InPlace::No,
        });
        if guarded(&peers.own().stats, "on_open", || {
            app.on_open(&mut ctx, id, tag, request)
        })
        .is_none()
        {
            // Its state is unknown: the application is not told of the
            // session's end either.
            session.notified = true;
            return self.close_ws(id, CloseCode::INTERNAL_ERROR, "internal error", now);
        }
        if !rest.is_empty() {
            // What the client sent right behind its upgrade request: rare,
            // and copied once to be received in place.
            self.ws_input(id, &mut rest.to_vec(), now);
        }
    }

    pub(super) fn start_stream(
        &mut self,
        id: ConnId,
        request: &Request<'_>,
        tag: u32,
        headers: &[(String, String)],
        now: Instant,
    ) {
        let retry = u64::try_from(self.env.config.sse_retry.as_millis()).unwrap_or(u64::MAX);
        self.respond(
            id,
            |out| {
                write_sse_head(out, headers, true);
                tether_sse::retry(retry, out);
                out.push(b'\n');
            },
            false,
        );
        let last_event_id = last_event_id(request);
        let heartbeat_at = now + self.env.config.sse_heartbeat;
        let Some((conn, app, mut base)) = self.split(id, now) else {
            return;
        };
        conn.kind = Kind::EventStream;
        let stats = &base.peers.own().stats;
        Stats::sub(&stats.open_http, 1);
        Stats::add(&stats.open_event_stream, 1);
        conn.state = State::Sse { tag, heartbeat_at };
        let out = conn.out.get_or_insert_with(|| base.pool.queue());
        let stats = &base.peers.own().stats;
        let mut ctx = base.with_current(Current {
            id,
            ws: None,
            deflate_window: 0,
            out,
            closing: &mut conn.closing,
            in_place: InPlace::No,
        });
        let subscribed = guarded(stats, "on_subscribe", || {
            app.on_subscribe(&mut ctx, id, tag, request, last_event_id.as_deref())
        });
        if subscribed.is_none() {
            // The response head is out: all that is left is to end the
            // stream (the application, in an unknown state, is not told).
            conn.closing = true;
        } else if conn.closing {
            // The application ended the stream at once.
            guarded(stats, "on_unsubscribe", || {
                app.on_unsubscribe(&mut base, id, tag, CloseReason::Ended)
            });
        }
    }

    /// Bytes from the client of an HTTP/1.1 WebSocket, received where
    /// they lie, so that an echo goes back from there.
    pub(super) fn ws_input(&mut self, id: ConnId, data: &mut [u8], now: Instant) {
        let max_output = self.env.config.max_output;
        let Some((conn, tls, app, mut base)) = self.split_with_tls(id, now) else {
            return;
        };
        let Conn {
            state: State::WebSocket(session),
            socket,
            out,
            closing,
            paused,
            ..
        } = conn
        else {
            return;
        };
        let out = out.get_or_insert_with(|| base.pool.queue());
        let mut stream = Stream { socket, tls };
        session.receive(app, &mut base, id, data, out, closing, Some(&mut stream), now);
        if session.is_closed() {
            *closing = true;
        }
        if out.len() > max_output {
            *paused = true;
        }
        self.mark_dirty(id);
    }

    /// The slow-consumer policy for output pushed from elsewhere: what is
    /// queued and not yet begun is dropped; a WebSocket gets close 1008
    /// (the close timeout then bounds how long it may take to read it), an
    /// event stream ends (its client resumes from its last event id).
    pub(super) fn cut_loose(&mut self, id: ConnId, now: Instant) {
        let linger = self.env.config.linger;
        Stats::add(&self.stats().slow_consumers, 1);
        let Some((conn, app, mut ctx)) = self.split(id, now) else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| ctx.pool.queue());
        out.keep_started(ctx.pool);
        match &mut conn.state {
            State::WebSocket(session) => {
                let _ = out.write_with(ctx.pool, |out| {
                    session.ws.close(CloseCode::POLICY, "slow consumer", now, out)
                });
                if !session.notified {
                    session.notified = true;
                    let tag = session.tag;
                    let peers = ctx.peers;
                    guarded(&peers.own().stats, "on_close", || {
                        app.on_close(&mut ctx, id, tag, CloseReason::SlowConsumer)
                    });
                }
            }
            State::Sse { tag, heartbeat_at } => {
                if !conn.closing {
                    let peers = ctx.peers;
                    guarded(&peers.own().stats, "on_unsubscribe", || {
                        app.on_unsubscribe(&mut ctx, id, *tag, CloseReason::SlowConsumer)
                    });
                }
                // A closing stream's heartbeat timer is its deadline.
                *heartbeat_at = now + linger;
            }
            _ => {}
        }
        conn.closing = true;
        self.mark_dirty(id);
    }

    /// [`Server::close_ws`] on an HTTP/1.1 connection.
    pub(super) fn conn_close_ws(&mut self, id: ConnId, code: CloseCode, reason: &str, now: Instant) {
        let Some((conn, _, ctx)) = self.split(id, now) else {
            return;
        };
        let State::WebSocket(session) = &mut conn.state else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| ctx.pool.queue());
        let _ = out.write_with(ctx.pool, |out| session.ws.close(code, reason, now, out));
        self.mark_dirty(id);
    }

    /// [`Server::end_stream`] on an HTTP/1.1 connection.
    pub(super) fn conn_end_stream(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let Some((conn, app, mut ctx)) = self.split(id, now) else {
            return;
        };
        let State::Sse { tag, .. } = conn.state else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_unsubscribe", || {
            app.on_unsubscribe(&mut ctx, id, tag, reason)
        });
        self.mark_dirty(id);
    }
}
