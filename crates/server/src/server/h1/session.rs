//! An HTTP/1.1 connection's sessions: the upgrade to a WebSocket and its
//! incoming frames, the start of an event stream, and what is done to
//! either from outside its input (closed, ended, cut loose).

use std::time::Instant;

use log::debug;
use tether_handshake::RequestHead;
use tether_ws::CloseCode;

use super::requests::respond;
use super::state::H1Conn;
use crate::app::sse_coding;
use crate::app::{App, CloseReason};
use crate::app::{Current, InPlace};
use crate::http::{write_error, write_sse_head};
use crate::loops::Stats;
use crate::server::dispatch::{Opening, last_event_id};
use crate::server::env::Call;
use crate::server::guard::guarded;
use crate::server::link::{Kind, Link};
use crate::server::websocket::{Output, Session};

impl H1Conn {
    /// Upgrades the connection to a WebSocket, if the handshake accepts
    /// it: the answer, the session, `on_open`, then whatever the client
    /// sent right behind its request.
    pub(super) fn upgrade<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        req: &tether_http1::RequestHead<'_, '_>,
        opening: Opening<'_>,
        rest: &[u8],
        now: Instant,
    ) {
        let Opening { request, tag } = opening;
        let id = c.id;
        let minor_version = match req.version() {
            tether_http1::Version::Http10 => 0,
            _ => 1,
        };
        let head = RequestHead::new(req.method(), req.target(), minor_version, req.headers());
        let accepted = match c.env.handshake.accept(head) {
            Ok(accepted) => accepted,
            Err(rejection) => {
                debug!("upgrade refused: {} {}", rejection.status(), rejection.reason());
                let alt_svc = c.env.alt_svc.clone();
                let extra: Vec<(&str, &str)> =
                    alt_svc.as_deref().map(|v| ("Alt-Svc", v)).into_iter().collect();
                respond(c, |out| rejection.write_response_with(out, &extra), true);
                c.app.release(tag);
                return;
            }
        };
        let mut response = Vec::with_capacity(160);
        let alt_svc = c.env.alt_svc.clone();
        let extra: Vec<(&str, &str)> = alt_svc.as_deref().map(|v| ("Alt-Svc", v)).into_iter().collect();
        if accepted.write_response(&mut response, &extra).is_err() {
            // Only GET upgrades.
            respond(c, |out| write_error(out, 500, &[], false), true);
            c.app.release(tag);
            return;
        }
        let session = Session::accepted(accepted, tag, &c.env.ws_config, now);
        respond(c, |out| out.extend_from_slice(&response), false);
        c.link.kind = Kind::WebSocket;
        let stats = c.env.stats();
        Stats::sub(&stats.open_http, 1);
        Stats::add(&stats.open_websocket, 1);
        *self = H1Conn::WebSocket(session);
        let H1Conn::WebSocket(session) = self else {
            return;
        };
        let (app, mut base, link, _) = c.parts(now);
        let Link { out, closing, .. } = link;
        let out = out.get_or_insert_with(|| base.pool.queue());
        let peers = base.peers;
        let mut ctx = base.with_current(Current {
            id,
            ws: Some(&mut session.ws),
            deflate_window: session.deflate_window,
            sse: None,
            out,
            closing,
            in_place: InPlace::No,
        });
        if guarded(&peers.own().stats, "on_open", || {
            app.on_open(&mut ctx, id, &mut session.tag, request)
        })
        .is_none()
        {
            // Its state is unknown: the application is not told of the
            // session's end either.
            session.notified = true;
            return self.close_ws(c, CloseCode::INTERNAL_ERROR, "internal error", now);
        }
        if !rest.is_empty() {
            // What the client sent right behind its upgrade request: rare,
            // and copied once to be received in place.
            self.ws_input(c, &mut rest.to_vec(), now);
        }
    }

    /// Starts an event stream: its head and retry hint, then
    /// `on_subscribe`.
    pub(super) fn start_stream<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        opening: Opening<'_>,
        headers: &mut Vec<(String, String)>,
        compress: bool,
        now: Instant,
    ) {
        let Opening { request, tag } = opening;
        let id = c.id;
        let retry = u64::try_from(c.env.config.sse_retry.as_millis()).unwrap_or(u64::MAX);
        let mut coding = sse_coding::negotiate(&c.env.config, request, compress, headers);
        respond(
            c,
            |out| {
                write_sse_head(out, headers, true);
                // The hint alone, with no blank line after it: a blank
                // line dispatches, and a dispatch sets the client's last
                // event id from this stream's id buffer, still empty
                // (WHATWG HTML 9.2.6): a stream ended before its first
                // event would make the client resume from the start.
                let mut hint = Vec::with_capacity(16);
                tether_sse::retry(retry, &mut hint);
                match coding.as_mut() {
                    Some(coding) => out.extend_from_slice(&sse_coding::opening(coding, &hint)),
                    None => out.extend_from_slice(&hint),
                }
            },
            false,
        );
        let last_event_id = last_event_id(request);
        let heartbeat_at = now + c.env.config.sse_heartbeat;
        let sse_min = c.env.config.sse_compress_min;
        c.link.kind = Kind::EventStream;
        let stats = c.env.stats();
        Stats::sub(&stats.open_http, 1);
        Stats::add(&stats.open_event_stream, 1);
        *self = H1Conn::EventStream {
            tag,
            heartbeat_at,
            coding,
        };
        let H1Conn::EventStream { tag, coding, .. } = self else {
            return;
        };
        let (app, mut base, link, _) = c.parts(now);
        let Link { out, closing, .. } = link;
        let out = out.get_or_insert_with(|| base.pool.queue());
        let stats = &base.peers.own().stats;
        let mut ctx = base.with_current(Current {
            id,
            ws: None,
            deflate_window: 0,
            sse: coding.as_mut().map(|coding| (coding, sse_min)),
            out,
            closing,
            in_place: InPlace::No,
        });
        let subscribed = guarded(stats, "on_subscribe", || {
            app.on_subscribe(&mut ctx, id, tag, request, last_event_id.as_deref())
        });
        if subscribed.is_none() {
            // The response head is out: all that is left is to end the
            // stream (the application, in an unknown state, is not told).
            *closing = true;
        } else if *closing {
            // The application ended the stream at once.
            guarded(stats, "on_unsubscribe", || {
                app.on_unsubscribe(&mut base, id, *tag, CloseReason::Ended)
            });
        }
        if *closing && let Some(coding) = coding {
            // Ended at once: the trailer after what was sent.
            out.push_shared(sse_coding::trailer(coding).into());
        }
    }

    /// Bytes from the client of a WebSocket, received where they lie, so
    /// that an echo goes back from there.
    pub(super) fn ws_input<A: App>(&mut self, c: &mut Call<'_, '_, A>, data: &mut [u8], now: Instant) {
        let id = c.id;
        let H1Conn::WebSocket(session) = self else {
            return;
        };
        let max_output = c.env.config.max_output;
        let linger = c.env.config.linger;
        let (app, mut base, link, socket) = c.parts(now);
        let Link { out, closing, .. } = &mut *link;
        let out = out.get_or_insert_with(|| base.pool.queue());
        session.receive(
            app,
            &mut base,
            id,
            data,
            Output {
                out,
                closing,
                socket: Some(socket),
            },
        );
        if out.len() > max_output {
            link.paused = true;
        }
        self.end_if_closed(link, now + linger);
        c.mark_dirty();
    }

    /// A WebSocket session that has closed (its close handshake done, or
    /// failed) becomes what is left of it: the connection closes once its
    /// output is written, and is dropped at `deadline` if it is not
    /// written by then (its client not reading).
    pub(super) fn end_if_closed(&mut self, link: &mut Link, deadline: Instant) {
        let H1Conn::WebSocket(session) = self else {
            return;
        };
        if !session.is_closed() {
            return;
        }
        link.closing = true;
        *self = H1Conn::ClosedWebSocket {
            tag: session.tag,
            notified: session.notified,
            deadline,
        };
    }

    /// The slow-consumer policy for output pushed from elsewhere: what is
    /// queued and not yet begun is dropped; a WebSocket gets close 1008
    /// (the close timeout then bounds how long it may take to read it), an
    /// event stream ends (its client resumes from its last event id).
    pub(in crate::server) fn cut_loose<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) {
        let id = c.id;
        let linger = c.env.config.linger;
        Stats::add(&c.env.stats().slow_consumers, 1);
        let (app, mut ctx, link, _) = c.parts(now);
        let out = link.out.get_or_insert_with(|| ctx.pool.queue());
        out.keep_started(ctx.pool);
        match self {
            H1Conn::WebSocket(session) => {
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
            H1Conn::EventStream {
                tag, heartbeat_at, ..
            } => {
                if !link.closing {
                    let peers = ctx.peers;
                    guarded(&peers.own().stats, "on_unsubscribe", || {
                        app.on_unsubscribe(&mut ctx, id, *tag, CloseReason::SlowConsumer)
                    });
                }
                // A closing stream's heartbeat timer is its deadline.
                *heartbeat_at = now + linger;
            }
            H1Conn::Requests(_) | H1Conn::ClosedWebSocket { .. } => {}
        }
        link.closing = true;
        c.mark_dirty();
    }

    /// Starts the close handshake of the WebSocket.
    pub(in crate::server) fn close_ws<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        code: CloseCode,
        reason: &str,
        now: Instant,
    ) {
        let H1Conn::WebSocket(session) = self else {
            return;
        };
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        let _ = out.write_with(pool, |out| session.ws.close(code, reason, now, out));
        c.mark_dirty();
    }

    /// Ends the event stream after what is queued, telling the
    /// application.
    pub(in crate::server) fn end_stream<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        reason: CloseReason,
        now: Instant,
    ) {
        let id = c.id;
        let H1Conn::EventStream { tag, coding, .. } = *self else {
            return;
        };
        if c.link.closing {
            return;
        }
        c.link.closing = true;
        if let Some(coding) = coding {
            // The body ends with the connection: its trailer goes last.
            let pool = &mut c.env.pool;
            c.link
                .queue(pool)
                .push_shared(sse_coding::trailer(&coding).into());
        }
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_unsubscribe", || {
            app.on_unsubscribe(&mut ctx, id, tag, reason)
        });
        c.mark_dirty();
    }
}
