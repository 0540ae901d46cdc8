//! The HTTP/3 streams that outlive their request: event streams and
//! deferred answers (WebSockets: `websocket.rs`), started, fed, timed and ended, and what the
//! endpoint does to each from outside its input (push, end, answer, let go on: the
//! sink's operations, carried out by `H3Endpoint::act`).
//! Also the two steps of a graceful shutdown for the endpoint.

use crate::server::hosted::Hosted;
use std::time::Instant;

use log::debug;
use tether_h3::ErrorCode;
use tether_quic::ConnectionHandle;
use tether_ws::CloseCode;

use super::webtransport::frame_payload;
use super::{H3Endpoint, Kind, detached, shutdown_answer};
use crate::app::sse_coding::{self, Coding};
use crate::app::{App, CloseReason, ConnId, Encoded, Response, Route};
use crate::loops::Stats;
use crate::server::dispatch::{Opening, deferred_answer, last_event_id};
use crate::server::env::{Lent, LoopEnv};
use crate::server::fields::header_fields;
use crate::server::guard::{self, guarded};
use crate::server::push_target::PushTarget;

impl H3Endpoint {
    /// An event stream on a request stream (or, for HEAD, only its head).
    pub(super) fn start_stream<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        opening: Opening<'_>,
        (extra, mut coding): (&[(String, String)], Option<Coding>),
        head_only: bool,
    ) {
        let Opening { request, tag } = opening;
        let now = l.now;
        let Some(sid) = self.id_of(conn, stream_id) else {
            if !head_only {
                l.app.release(tag);
            }
            return;
        };
        let fields = header_fields(
            "text/event-stream",
            None,
            [("cache-control", "no-cache"), ("x-accel-buffering", "no")]
                .into_iter()
                .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        );
        let retry = u64::try_from(l.env.config.sse_retry.as_millis()).unwrap_or(u64::MAX);
        let mut hint = Vec::with_capacity(16);
        // No blank line after the hint: see the HTTP/1.1 event stream's.
        tether_sse::retry(retry, &mut hint);
        if let Some(coding) = coding.as_mut() {
            hint = sse_coding::opening(coding, &hint);
        }
        let sent = self
            .server
            .send_head(now, conn, stream_id, 200, &fields)
            .and_then(|()| {
                if head_only {
                    self.server.finish(now, conn, stream_id)
                } else {
                    self.server.send_data(now, conn, stream_id, &hint)
                }
            });
        if let Err(e) = sent {
            debug!("HTTP/3 event stream head on stream {stream_id}: {e}");
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_INTERNAL_ERROR);
            // A HEAD's state was released with its decision.
            if !head_only {
                l.app.release(tag);
            }
            return;
        }
        if head_only {
            return;
        }
        let heartbeat_at = now + l.env.config.sse_heartbeat;
        self.conn(conn).streams.insert(
            stream_id,
            Kind::Sse {
                tag,
                heartbeat_at,
                coding,
            },
        );
        self.due_by(Some(heartbeat_at));
        Stats::add(&l.env.stats().open_event_stream, 1);
        let last_event_id = last_event_id(request);
        let Some(Kind::Sse { tag, .. }) = self.conn(conn).streams.get_mut(&stream_id) else {
            return;
        };
        let (app, mut ctx) = l.detached();
        let peers = ctx.peers;
        let subscribed = guarded(&peers.own().stats, "on_subscribe", || {
            app.on_subscribe(&mut ctx, sid, tag, request, last_event_id.as_deref())
        });
        if subscribed.is_none() {
            // The application, in an unknown state, is not told.
            self.finish_stream(l.env, conn, stream_id, now);
        }
    }

    /// Ends an event stream after what it has queued (its trailer last,
    /// if it is compressed), and forgets it.
    fn finish_stream<P>(&mut self, env: &LoopEnv<P>, conn: ConnectionHandle, stream_id: u64, now: Instant) {
        if let Some(Kind::Sse {
            coding: Some(coding), ..
        }) = self.conns.get(&conn).and_then(|c| c.streams.get(&stream_id))
        {
            let trailer = sse_coding::trailer(coding);
            let _ = self.server.send_data(now, conn, stream_id, &trailer);
        }
        self.forget(env, conn, stream_id);
        let _ = self.server.finish(now, conn, stream_id);
    }

    /// Queues a broadcast on the event stream or WebSocket `id` names
    /// (nothing if it names none), and says whether its client now leaves
    /// more than the limit unsent: the slow-consumer policy's cue.
    pub(in crate::server) fn push<P>(
        &mut self,
        env: &LoopEnv<P>,
        id: ConnId,
        encoded: Encoded,
        now: Instant,
    ) -> bool {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return false;
        };
        let config = &env.config;
        let stats = env.stats();
        let push_target = match self.kind_mut(conn, stream_id) {
            Some(Kind::Sse {
                heartbeat_at, coding, ..
            }) => PushTarget::EventStream(heartbeat_at, coding.as_mut()),
            Some(Kind::WebSocket(session)) if session.ws.can_send() => PushTarget::WebSocket(session),
            Some(Kind::WebTransport(wt)) if wt.ws.ws.can_send() => {
                // The session negotiated no compression: the plain frame,
                // whose payload is the message.
                let frame = PushTarget::WebSocket(&wt.ws).bytes(&encoded, stats, now, config);
                let Some(message) = frame_payload(&frame) else {
                    return false;
                };
                let Some(slow) = self.wt_push(conn, stream_id, message, env.config.max_output, now) else {
                    return false;
                };
                Stats::add(&stats.messages_out, 1);
                return slow;
            }
            _ => return false,
        };
        let bytes = push_target.bytes(&encoded, stats, now, config);
        if self.server.send_data(now, conn, stream_id, &bytes).is_err() {
            return false;
        }
        Stats::add(&stats.messages_out, 1);
        self.server.unsent_bytes(conn, stream_id) > env.config.max_output
    }

    /// The slow-consumer policy on an HTTP/3 stream: reset with
    /// H3_REQUEST_CANCELLED, which drops what it had queued and leaves the
    /// connection's other streams alone.
    pub(in crate::server) fn cut_loose<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        id: ConnId,
        now: Instant,
    ) {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return;
        };
        debug!("slow consumer on HTTP/3 stream {stream_id}: resetting it");
        Stats::add(&env.stats().slow_consumers, 1);
        Stats::add(&env.stats().h3_slow_consumer_resets, 1);
        if let Some(Kind::WebTransport(_)) = self.kind_mut(conn, stream_id) {
            self.wt_cut_loose(conn, stream_id, now);
        } else {
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_REQUEST_CANCELLED);
        }
        self.gone(
            &mut Lent { app, env, now },
            conn,
            stream_id,
            CloseReason::SlowConsumer,
        );
    }

    /// Ends the event stream `id` names: the application is told, and the
    /// stream ends after what is queued.
    pub(in crate::server) fn end_stream<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        id: ConnId,
        reason: CloseReason,
        now: Instant,
    ) {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return;
        };
        let Some(&Kind::Sse { tag, .. }) = self.conns.get(&conn).and_then(|c| c.streams.get(&stream_id))
        else {
            return;
        };
        self.finish_stream(env, conn, stream_id, now);
        let (app, mut ctx) = detached(app, env, now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_unsubscribe", || {
            app.on_unsubscribe(&mut ctx, id, tag, reason)
        });
    }

    /// The application's deferred answer to the request `id` names.
    pub(in crate::server) fn respond_later(&mut self, id: ConnId, response: &Response, now: Instant) {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return;
        };
        let Some(Kind::Waiting { head_only, held, .. }) =
            self.conns.get(&conn).and_then(|c| c.streams.get(&stream_id))
        else {
            return;
        };
        let head_only = *head_only;
        let answer = deferred_answer(response, held.as_ref().map(|held| &held.0));
        self.answer(now, conn, stream_id, &answer, head_only);
    }

    /// Lets the request the application held on `id` go on as `route`.
    pub(in crate::server) fn proceed<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        id: ConnId,
        route: Route,
        now: Instant,
    ) {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return;
        };
        let Some(streams) = self.conns.get_mut(&conn).map(|c| &mut c.streams) else {
            return;
        };
        if !matches!(streams.get(&stream_id), Some(Kind::Waiting { held: Some(_), .. })) {
            return;
        }
        let Some(Kind::Waiting {
            held: Some(held),
            tag,
            ..
        }) = streams.remove(&stream_id)
        else {
            return;
        };
        let (request, body) = *held;
        let route = app.proceed_route(id, route, tag);
        self.route_request(
            &mut Lent { app, env, now },
            conn,
            stream_id,
            &request,
            &body,
            Some(route),
        );
    }

    /// A stream ended by the client, the connection or the server:
    /// forgotten, and the application told.
    pub(super) fn gone<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        reason: CloseReason,
    ) {
        let Some(sid) = self.id_of(conn, stream_id) else {
            return;
        };
        let Some(kind) = self.forget(l.env, conn, stream_id) else {
            return;
        };
        let (app, mut ctx) = l.detached();
        let peers = ctx.peers;
        guarded(&peers.own().stats, "the end of a stream", || match kind {
            Kind::Sse { tag, .. } => app.on_unsubscribe(&mut ctx, sid, tag, reason),
            Kind::Waiting { tag, .. } => app.on_request_abandoned(&mut ctx, sid, tag),
            Kind::WebSocket(session) if !session.notified => app.on_close(&mut ctx, sid, session.tag, reason),
            Kind::WebTransport(wt) if !wt.ws.notified => app.on_close(&mut ctx, sid, wt.ws.tag, reason),
            Kind::WebSocket(_) | Kind::WebTransport(_) | Kind::Body { .. } | Kind::Discarding => {}
        });
    }

    /// What is due on the streams: deferred answers whose time is up, and
    /// event streams' heartbeats.
    pub(super) fn on_timer<A: App>(&mut self, app: &mut Hosted<A>, env: &mut LoopEnv<A::Post>, now: Instant) {
        let heartbeat = env.config.sse_heartbeat;
        let mut timed_out = Vec::new();
        let mut beats = Vec::new();
        let mut ws_due = Vec::new();
        // The deadlines not due now; those due are answered (the stream
        // forgotten) or their WebSocket's next timer counted as it is set.
        let mut next = None;
        for (&conn, held) in &mut self.conns {
            for (&stream_id, kind) in &mut held.streams {
                let later = match kind {
                    Kind::Waiting { tag, deadline, .. } if now >= *deadline => {
                        timed_out.push((conn, stream_id, *tag));
                        None
                    }
                    Kind::Waiting { deadline, .. } => Some(*deadline),
                    Kind::Sse {
                        heartbeat_at, coding, ..
                    } => {
                        if now >= *heartbeat_at {
                            *heartbeat_at = now + heartbeat;
                            // A compressed stream's heartbeat is counted
                            // in its checksum as it is queued.
                            beats.push((conn, stream_id, coding.as_mut().map(sse_coding::heartbeat)));
                        }
                        Some(*heartbeat_at)
                    }
                    Kind::WebSocket(_) | Kind::WebTransport(_) => {
                        match kind.session_mut().and_then(|s| s.ws.poll_timeout()) {
                            Some(at) if now >= at => {
                                ws_due.push((conn, stream_id));
                                None
                            }
                            at => at,
                        }
                    }
                    Kind::Body { .. } | Kind::Discarding => None,
                };
                next = [next, later].into_iter().flatten().min();
            }
        }
        self.streams_due = next;
        // Each under its connection's guard: a panic costs that one, and
        // the walk goes on with the others.
        let mut comment = Vec::with_capacity(4);
        tether_sse::heartbeat(&mut comment);
        for (conn, stream_id, compressed) in beats {
            let bytes = compressed.as_deref().unwrap_or(&comment);
            self.contained(app, env, conn, "a heartbeat", now, |endpoint, _, _| {
                let _ = endpoint.server.send_data(now, conn, stream_id, bytes);
            });
        }
        for (conn, stream_id, tag) in timed_out {
            self.contained(
                app,
                env,
                conn,
                "a deferred answer's timeout",
                now,
                |endpoint, app, env| {
                    let Some(sid) = endpoint.id_of(conn, stream_id) else {
                        return;
                    };
                    let (app, mut ctx) = detached(app, env, now);
                    let peers = ctx.peers;
                    let response = guarded(&peers.own().stats, "on_request_timeout", || {
                        app.on_request_timeout(&mut ctx, sid, tag)
                    })
                    .unwrap_or_else(|| Response::text(500, "500 Internal Server Error\n"));
                    if let Some(access) = &env.peers.own().access {
                        access.deferred_answer(sid, response.status, response.body.len());
                    }
                    endpoint.respond_later(sid, &response, now);
                },
            );
        }
        for (conn, stream_id) in ws_due {
            self.contained(app, env, conn, "a WebSocket timer", now, |endpoint, app, env| {
                endpoint.ws_timer(&mut Lent { app, env, now }, conn, stream_id);
            });
        }
    }

    /// The first step of a graceful shutdown: GOAWAY on every connection,
    /// so that clients open no new request.
    pub(in crate::server) fn begin_shutdown<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        now: Instant,
    ) {
        self.for_every_connection(app, env, "GOAWAY", now, |server| server.goaway(now));
    }

    /// The loop is exiting: every connection is closed (H3_NO_ERROR), and
    /// what that takes is sent as far as the socket takes it now.
    pub(in crate::server) fn close_all<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        registry: &mio::Registry,
        now: Instant,
    ) {
        self.for_every_connection(app, env, "the last close", now, |server| {
            server.close_all(now, ErrorCode::H3_NO_ERROR);
        });
        self.writable(app, env, registry, now);
    }

    /// Runs `work`, a call of the endpoint's that visits every connection;
    /// after a panic, which drops the connection it was visiting, runs it
    /// again for the others (once more per connection dropped at most: a
    /// second visit of the same connection does no harm, GOAWAY and the
    /// close being idempotent).
    fn for_every_connection<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        what: &'static str,
        now: Instant,
        mut work: impl FnMut(&mut tether_quic::QuicServer),
    ) {
        loop {
            let Err(panic) = guard::catch(None, || work(&mut self.server)) else {
                return;
            };
            let fault = super::caught(&mut self.server, None, what, panic);
            let dropped = fault.dropped;
            self.settle_fault(app, env, fault, now);
            if !dropped {
                return;
            }
        }
    }

    /// The second step, once every loop has drained: deferred requests
    /// are answered, WebSockets closed with 1001, event streams ended.
    pub(in crate::server) fn close_sessions<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        now: Instant,
    ) {
        let mut waiting = Vec::new();
        let mut events = Vec::new();
        let mut sockets = Vec::new();
        for (&conn, held) in &self.conns {
            for (&stream_id, kind) in &held.streams {
                let Some(sid) = self.id_of(conn, stream_id) else {
                    continue;
                };
                match kind {
                    Kind::Waiting { tag, .. } => waiting.push((sid, *tag)),
                    Kind::Sse { .. } => events.push(sid),
                    Kind::WebSocket(_) | Kind::WebTransport(_) => sockets.push(sid),
                    Kind::Body { .. } | Kind::Discarding => {}
                }
            }
        }
        // Each under its connection's guard.
        let conn_of = |sid: ConnId| ConnectionHandle(sid.quic_index());
        for (sid, tag) in waiting {
            self.contained(
                app,
                env,
                conn_of(sid),
                "the shutdown",
                now,
                |endpoint, app, env| {
                    if let Some(response) = shutdown_answer(app, env, sid, tag, now) {
                        endpoint.respond_later(sid, &response, now);
                    }
                },
            );
        }
        for sid in sockets {
            self.contained(
                app,
                env,
                conn_of(sid),
                "the shutdown",
                now,
                |endpoint, app, env| {
                    endpoint.close_ws(
                        &mut Lent { app, env, now },
                        sid,
                        CloseCode::GOING_AWAY,
                        "server shutting down",
                    );
                },
            );
        }
        for sid in events {
            self.contained(
                app,
                env,
                conn_of(sid),
                "the shutdown",
                now,
                |endpoint, app, env| {
                    endpoint.end_stream(app, env, sid, CloseReason::Shutdown, now);
                },
            );
        }
    }
}
