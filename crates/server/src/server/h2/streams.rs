//! The sessions on an HTTP/2 connection's streams: an event stream, a
//! WebSocket over an extended CONNECT (RFC 8441) and a deferred answer,
//! started, fed and ended, and what is done to each from outside its
//! input (closed, ended, answered, cut loose).

use crate::app::sse_coding::{self, Coding};
use crate::server::hosted::Hosted;
use std::time::Instant;

use log::debug;
use tether_h2::ErrorCode;
use tether_h2::connection::Request as H2Request;
use tether_ws::CloseCode;

use super::state::{H2Session, Kind, Piece};
use crate::app::{App, CloseReason, ConnId, Ctx, Response};

use crate::loops::Stats;
use crate::output::{Chunk, OutQueue};
use crate::server::dispatch::{Opening, deferred_answer, last_event_id};
use crate::server::env::Call;
use crate::server::fields::response_fields;
use crate::server::guard::guarded;
use crate::server::websocket::{Output, accept_connect, over_shared_budget};

impl H2Session {
    /// Ends an event stream's body after what it has queued: its
    /// trailer, if it is compressed, then END_STREAM.
    fn end_body(&mut self, stream: u32) {
        let trailer = match self.streams.get(&stream).map(|s| &s.kind) {
            Some(Kind::Sse {
                coding: Some(coding), ..
            }) => sse_coding::trailer(coding),
            _ => Vec::new(),
        };
        self.enqueue(stream, Piece::Owned(trailer, 0));
        if let Some(s) = self.streams.get_mut(&stream) {
            s.end = true;
        }
    }

    /// An event stream on `stream` (or, for HEAD, only its head).
    pub(super) fn start_stream<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        opening: Opening<'_>,
        (extra, mut coding): (&[(String, String)], Option<Coding>),
        head_only: bool,
        now: Instant,
    ) {
        let Opening { request, tag } = opening;
        let id = c.id;
        let retry = u64::try_from(c.env.config.sse_retry.as_millis()).unwrap_or(u64::MAX);
        let heartbeat_at = now + c.env.config.sse_heartbeat;
        let fields = response_fields(
            200,
            "text/event-stream",
            None,
            [("cache-control", "no-cache"), ("x-accel-buffering", "no")]
                .into_iter()
                .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .chain(c.env.alt_svc.as_deref().map(|v| ("alt-svc", v))),
        );
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        if out
            .write_with(pool, |o| self.conn.send_headers(stream, &fields, head_only, o))
            .is_err()
            || head_only
        {
            self.forget(stream);
            // A HEAD's state was released with its decision.
            if !head_only {
                c.app.release(tag);
            }
            return;
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            c.app.release(tag);
            return;
        };
        let mut hint = Vec::with_capacity(16);
        // No blank line after the hint: see the HTTP/1.1 event stream's.
        tether_sse::retry(retry, &mut hint);
        if let Some(coding) = coding.as_mut() {
            hint = sse_coding::opening(coding, &hint);
        }
        s.kind = Kind::Sse {
            tag,
            heartbeat_at,
            ended: false,
            coding,
        };
        self.enqueue(stream, Piece::Owned(hint, 0));
        self.drain(stream, out, pool);
        Stats::add(&c.env.stats().open_event_stream, 1);
        let last_event_id = last_event_id(request);
        let sid = id.with_stream(stream);
        // A stream its first drain ended has released its state already.
        let Some(Kind::Sse { tag, .. }) = self.streams.get_mut(&stream).map(|s| &mut s.kind) else {
            return;
        };
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        let subscribed = guarded(&peers.own().stats, "on_subscribe", || {
            app.on_subscribe(&mut ctx, sid, tag, request, last_event_id.as_deref())
        });
        if subscribed.is_none() {
            // The application, in an unknown state, is not told.
            if let Some(s) = self.streams.get_mut(&stream) {
                if let Kind::Sse { ended, .. } = &mut s.kind {
                    *ended = true;
                }
                self.end_body(stream);
            }
            let pool = &mut c.env.pool;
            let out = c.link.queue(pool);
            if let Some(gone) = self.drain(stream, out, pool) {
                gone.count_gone(&c.env.peers.own().stats, &mut c.env.released);
            }
        }
    }

    /// RFC 8441: the extended CONNECT is judged like an upgrade (the
    /// handshake's policy, subprotocols and extensions), answered 200, and
    /// the stream carries WebSocket frames both ways.
    pub(super) fn accept_websocket<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        h2_request: &H2Request,
        opening: Opening<'_>,
        now: Instant,
    ) {
        let Opening { request, tag } = opening;
        let accepted = accept_connect(&c.env.handshake, &c.env.ws_config, h2_request, request, tag, now);
        let (session, extra) = match accepted {
            Ok(accepted) => accepted,
            Err(refusal) => {
                let out = c.link.queue(&mut c.env.pool);
                self.answer(c.env, out, stream, &refusal, false);
                c.app.release(tag);
                return;
            }
        };
        let fields = response_fields(
            200,
            "",
            None,
            extra
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .chain(c.env.alt_svc.as_deref().map(|v| ("alt-svc", v))),
        );
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        if out
            .write_with(pool, |o| self.conn.send_headers(stream, &fields, false, o))
            .is_err()
        {
            self.forget(stream);
            c.app.release(tag);
            return;
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            c.app.release(tag);
            return;
        };
        s.kind = Kind::WebSocket(session);
        Stats::add(&c.env.stats().open_websocket, 1);
        let opened = self.with_ws(c, stream, now, |app, ctx, sid, tag| {
            app.on_open(ctx, sid, tag, request);
        });
        if opened == Some(None) {
            // Its state is unknown: the application is not told of the
            // session's end either.
            self.ws_fail(c, stream, now);
        }
    }

    /// Runs `f` with the application and a context whose current
    /// connection is the WebSocket on `stream` (what it sends to that
    /// session is encoded there, compressed if negotiated), then queues
    /// what was written on the stream. `None` if there is no such
    /// session; `Some(None)` if the callback panicked.
    pub(super) fn with_ws<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        now: Instant,
        f: impl FnOnce(&mut Hosted<A>, &mut Ctx<'_, A::Post>, ConnId, &mut u32),
    ) -> Option<Option<()>> {
        let id = c.id;
        let sid = id.with_stream(stream);
        let s = self.streams.get_mut(&stream)?;
        let Kind::WebSocket(session) = &mut s.kind else {
            return None;
        };
        let (app, mut base) = c.detached(now);
        let (scratch, result) = session.call(app, &mut base, sid, f);
        let closed = session.is_closed();
        self.take_scratch(c, stream, scratch, closed);
        Some(result)
    }

    /// Moves what a WebSocket wrote into `scratch` onto its stream, and
    /// sends what the windows allow.
    fn take_scratch<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        mut scratch: Box<OutQueue>,
        closed: bool,
    ) {
        let chunks = scratch.take_chunks();
        let pool = &mut c.env.pool;
        pool.give_back_queue(scratch);
        for chunk in chunks {
            let piece = match chunk {
                Chunk::Owned(bytes) | Chunk::Payload(bytes) => Piece::Owned(bytes, 0),
                Chunk::Shared(bytes) => Piece::Shared(bytes, 0),
            };
            self.enqueue(stream, piece);
        }
        if closed && let Some(s) = self.streams.get_mut(&stream) {
            s.end = true;
        }
        let out = c.link.queue(pool);
        if let Some(gone) = self.drain(stream, out, pool) {
            gone.count_gone(&c.env.peers.own().stats, &mut c.env.released);
        }
    }

    /// A WebSocket whose application callback panicked: closed with
    /// 1011, without telling the application again.
    fn ws_fail<A: App>(&mut self, c: &mut Call<'_, '_, A>, stream: u32, now: Instant) {
        if let Some(Kind::WebSocket(session)) = self.streams.get_mut(&stream).map(|s| &mut s.kind) {
            session.notified = true;
        }
        self.with_ws(c, stream, now, |_, ctx, sid, _| {
            ctx.close(sid, CloseCode::INTERNAL_ERROR, "internal error");
        });
    }

    /// WebSocket frames in DATA on `stream`.
    pub(super) fn ws_input<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        data: &mut [u8],
        now: Instant,
    ) {
        let id = c.id;
        let sid = id.with_stream(stream);
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let Kind::WebSocket(session) = &mut s.kind else {
            return;
        };
        let budget = c.env.config.ws.max_message_size;
        let (app, mut base) = c.detached(now);
        let mut scratch = base.pool.queue();
        let mut closing = false;
        session.receive(
            app,
            &mut base,
            sid,
            data,
            Output::queued(&mut scratch, &mut closing),
        );
        let held = session.held();
        let held_by_all = self.streams.values().map(|s| match &s.kind {
            Kind::WebSocket(session) => session.held(),
            _ => 0,
        });
        if over_shared_budget(held, held_by_all, budget)
            && let Some(Kind::WebSocket(session)) = self.streams.get_mut(&stream).map(|s| &mut s.kind)
        {
            session.fail_over_budget(
                app,
                &mut base,
                sid,
                budget,
                Output::queued(&mut scratch, &mut closing),
            );
        }
        let closed = !matches!(
            self.streams.get(&stream).map(|s| &s.kind),
            Some(Kind::WebSocket(session)) if !session.is_closed()
        );
        self.take_scratch(c, stream, scratch, closed);
    }

    /// Sends what the windows now allow: on `stream`, or on every stream.
    pub(super) fn send_ready<A: App>(&mut self, c: &mut Call<'_, '_, A>, stream: Option<u32>) {
        let streams: Vec<u32> = match stream {
            Some(s) => vec![s],
            None => self
                .streams
                .iter()
                .filter(|(_, s)| !s.queue.is_empty() || s.end)
                .map(|(&k, _)| k)
                .collect(),
        };
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        let mut gone = Vec::new();
        let limit = c.env.config.max_output;
        for s in streams {
            gone.extend(self.drain(s, out, pool));
            // A WebSocket whose answers drained gets its window back.
            self.repay(s, limit, out, pool);
        }
        for s in &gone {
            s.count_gone(&c.env.peers.own().stats, &mut c.env.released);
        }
    }

    /// A stream ended by the client or the connection: forgotten, and the
    /// application told (as for a dropped connection).
    pub(super) fn gone<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        reason: CloseReason,
        now: Instant,
    ) {
        self.discarding.remove(&sid.stream());
        let Some(gone) = self.forget(sid.stream()) else {
            return;
        };
        gone.count_gone(&c.env.peers.own().stats, &mut Vec::new());
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        // The stream's state is dropped here, after its last callback if
        // that is still owed.
        guarded(&peers.own().stats, "the end of a stream", || match gone.kind {
            Kind::WebSocket(session) if !session.notified => {
                app.close_final(&mut ctx, sid, session.tag, reason)
            }
            Kind::Sse {
                tag, ended: false, ..
            } => app.unsubscribe_final(&mut ctx, sid, tag, reason),
            Kind::Waiting { tag, .. } => app.abandoned_final(&mut ctx, sid, tag),
            kind => {
                if let Some(key) = kind.state() {
                    app.release(key);
                }
            }
        });
    }

    /// Resets a stream with `code` and forgets it, telling the
    /// application.
    pub(super) fn reset<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        code: ErrorCode,
        reason: CloseReason,
        now: Instant,
    ) {
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        let _ = out.write_with(pool, |o| self.conn.reset(sid.stream(), code, o));
        self.gone(sid, c, reason, now);
    }

    /// The slow-consumer policy on a stream: reset with CANCEL, which
    /// drops what it had queued and leaves the connection's other streams
    /// alone.
    pub(in crate::server) fn cut_loose<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        now: Instant,
    ) {
        debug!("slow consumer on HTTP/2 stream {}: resetting it", sid.stream());
        Stats::add(&c.env.stats().slow_consumers, 1);
        self.reset(sid, c, ErrorCode::CANCEL, CloseReason::SlowConsumer, now);
    }

    /// Starts the close handshake of the WebSocket on a stream.
    pub(in crate::server) fn close_ws<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        code: CloseCode,
        reason: &str,
        now: Instant,
    ) {
        self.with_ws(c, sid.stream(), now, |_, ctx, sid, _| {
            ctx.close(sid, code, reason);
        });
        c.mark_dirty();
    }

    /// Ends an event stream on a stream: the application is told, and
    /// END_STREAM follows what is queued.
    pub(in crate::server) fn end_stream<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        reason: CloseReason,
        now: Instant,
    ) {
        let linger = c.env.config.linger;
        let Some(s) = self.streams.get_mut(&sid.stream()) else {
            return;
        };
        let Kind::Sse {
            tag,
            ended,
            heartbeat_at,
            ..
        } = &mut s.kind
        else {
            return;
        };
        if *ended {
            return;
        }
        *ended = true;
        // From now, the heartbeat timer is the deadline to send it.
        *heartbeat_at = now + linger;
        let tag = *tag;
        self.end_body(sid.stream());
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_unsubscribe", || {
            app.on_unsubscribe(&mut ctx, sid, tag, reason)
        });
        self.send_ready(c, Some(sid.stream()));
        c.mark_dirty();
    }

    /// The application's deferred answer to a request on a stream.
    pub(in crate::server) fn respond_later<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        response: &Response,
    ) {
        let Some(Kind::Waiting {
            head_only, held, tag, ..
        }) = self.streams.get(&sid.stream()).map(|s| &s.kind)
        else {
            return;
        };
        let (head_only, tag) = (*head_only, *tag);
        let answer = deferred_answer(response, held.as_ref().map(|held| &held.0));
        let out = c.link.queue(&mut c.env.pool);
        // The answer ends the stream's wait: its state goes.
        self.answer(c.env, out, sid.stream(), &answer, head_only);
        c.app.release(tag);
        c.mark_dirty();
    }
}
