//! WebSockets over HTTP/3 (RFC 9220): an extended CONNECT judged as the
//! upgrade it stands for, answered 200, and the request stream carrying
//! WebSocket frames both ways in DATA frames; the session fed, timed and
//! closed as on the other carriers (`crate::server::websocket`).

use crate::server::hosted::Hosted;

use log::debug;
use tether_h2::connection::Request as FieldRequest;
use tether_h3::ErrorCode;
use tether_quic::ConnectionHandle;
use tether_ws::CloseCode;

use super::{H3Endpoint, Kind};
use crate::app::{App, ConnId, Ctx, Request};
use crate::loops::Stats;
use crate::output::{Chunk, OutQueue};
use crate::server::dispatch::Opening;
use crate::server::env::Lent;
use crate::server::fields::header_fields;
use crate::server::guard::guarded;
use crate::server::websocket::{self, Output, accept_connect};

impl H3Endpoint {
    /// Opens the WebSocket an extended CONNECT asks for, or answers its
    /// refusal.
    pub(super) fn accept_websocket<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        connect: &FieldRequest,
        opening: Opening<'_>,
    ) {
        let Opening { request, tag } = opening;
        let now = l.now;
        let (session, extra) =
            match accept_connect(&l.env.handshake, &l.env.ws_config, connect, request, tag, now) {
                Ok(accepted) => accepted,
                Err(refusal) => {
                    l.app.release(tag);
                    return self.answer(now, conn, stream_id, &refusal, false);
                }
            };
        let fields = header_fields("", None, extra.iter().map(|(n, v)| (*n, v.as_str())));
        if let Err(e) = self.server.send_head(now, conn, stream_id, 200, &fields) {
            debug!("HTTP/3 WebSocket head on stream {stream_id}: {e}");
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_INTERNAL_ERROR);
            l.app.release(tag);
            return;
        }
        self.open_session(l, conn, stream_id, Kind::WebSocket(Box::new(session)), request);
    }

    /// Keeps `kind` (a WebSocket, or a WebTransport session served as
    /// one) on the stream and tells the application it opened; one whose
    /// `on_open` panicked is closed with 1011.
    pub(super) fn open_session<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        kind: Kind,
        request: &Request<'_>,
    ) {
        self.conn(conn).streams.insert(stream_id, kind);
        Stats::add(&l.env.stats().open_websocket, 1);
        let opened = self.with_ws(l, conn, stream_id, |app, ctx, sid, tag| {
            app.on_open(ctx, sid, tag, request);
        });
        if opened == Some(None) {
            // Its state is unknown: the application is not told of the
            // session's end either.
            if let Some(session) = self.kind_mut(conn, stream_id).and_then(Kind::session_mut) {
                session.notified = true;
            }
            self.with_ws(l, conn, stream_id, |_, ctx, sid, _| {
                ctx.close(sid, CloseCode::INTERNAL_ERROR, "internal error");
            });
        }
    }

    /// Runs `f` with the application and a context whose current
    /// connection is the WebSocket on the stream, then sends what it
    /// wrote. `None` if there is no such session; `Some(None)` if the
    /// callback panicked.
    pub(super) fn with_ws<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        f: impl FnOnce(&mut Hosted<A>, &mut Ctx<'_, A::Post>, ConnId, &mut u32),
    ) -> Option<Option<()>> {
        let sid = self.id_of(conn, stream_id)?;
        let session = self.kind_mut(conn, stream_id).and_then(Kind::session_mut)?;
        let (app_ref, mut base) = l.detached();
        let (scratch, result) = session.call(app_ref, &mut base, sid, f);
        let closed = session.is_closed();
        self.take_scratch(l, conn, stream_id, scratch, closed);
        Some(result)
    }

    /// WebSocket frames from the client on the stream.
    pub(super) fn ws_input<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        data: &mut [u8],
    ) {
        let Some(sid) = self.id_of(conn, stream_id) else {
            return;
        };
        let Some(session) = self.kind_mut(conn, stream_id).and_then(Kind::session_mut) else {
            return;
        };
        let (app_ref, mut base) = l.detached();
        let mut scratch = base.pool.queue();
        let mut closing = false;
        session.receive(
            app_ref,
            &mut base,
            sid,
            data,
            Output::queued(&mut scratch, &mut closing),
        );
        let held = session.held();
        let closed = session.is_closed();
        self.take_scratch(l, conn, stream_id, scratch, closed);
        if closed {
            return;
        }
        // What the input made the server answer (PONGs, the application's
        // echoes) waits for the client's credit on the stream. Past
        // max_output the stream is not read (its credit not given back)
        // until that has drained to half: a client that does not read its
        // answers is given nothing more to answer, as over HTTP/1.1, and
        // one that reads gets an answer larger than max_output whole.
        let max_output = l.env.config.max_output;
        if self.server.unsent_bytes(conn, stream_id) > max_output {
            self.server.pause_reading(conn, stream_id, max_output / 2);
        }
        self.check_shared_budget(l, conn, stream_id, held);
    }

    /// After the session on `stream_id` (a WebSocket or a WebTransport
    /// session) took in bytes and now holds `held` of a message: fails it
    /// with 1009 if the messages in progress on its connection are
    /// together past the message limit.
    pub(super) fn check_shared_budget<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        held: usize,
    ) {
        let budget = l.env.config.ws.max_message_size;
        let held_by_all = self
            .conns
            .get(&conn)
            .into_iter()
            .flat_map(|c| c.streams.values())
            .map(Kind::held_messages);
        if !websocket::over_shared_budget(held, held_by_all, budget) {
            return;
        }
        let Some(sid) = self.id_of(conn, stream_id) else {
            return;
        };
        let Some(session) = self.kind_mut(conn, stream_id).and_then(Kind::session_mut) else {
            return;
        };
        debug!("HTTP/3 stream {stream_id}: the connection's messages in progress are past {budget} bytes");
        let (app_ref, mut base) = l.detached();
        let mut scratch = base.pool.queue();
        let mut closing = false;
        session.fail_over_budget(
            app_ref,
            &mut base,
            sid,
            budget,
            Output::queued(&mut scratch, &mut closing),
        );
        self.take_scratch(l, conn, stream_id, scratch, true);
    }

    /// Sends what a WebSocket wrote into `scratch` on its stream, and ends
    /// the stream once the session is closed (a WebTransport session's
    /// frames are unwrapped onto its own streams instead).
    fn take_scratch<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        mut scratch: Box<OutQueue>,
        closed: bool,
    ) {
        let now = l.now;
        let chunks = scratch.take_chunks();
        l.env.pool.give_back_queue(scratch);
        if let Some(Kind::WebTransport(_)) = self.kind_mut(conn, stream_id) {
            let mut written = Vec::new();
            for chunk in chunks {
                match chunk {
                    Chunk::Owned(bytes) | Chunk::Payload(bytes) => {
                        written.extend_from_slice(&bytes);
                        l.env.pool.give_back(bytes);
                    }
                    Chunk::Shared(bytes) => written.extend_from_slice(&bytes),
                }
            }
            return self.wt_output(l, conn, stream_id, &written);
        }
        for chunk in chunks {
            let sent = match chunk {
                Chunk::Owned(bytes) | Chunk::Payload(bytes) => {
                    let sent = self.server.send_data(now, conn, stream_id, &bytes);
                    l.env.pool.give_back(bytes);
                    sent
                }
                Chunk::Shared(bytes) => self.server.send_data(now, conn, stream_id, &bytes),
            };
            if sent.is_err() {
                break;
            }
        }
        if closed {
            self.forget(l.env, conn, stream_id);
            let _ = self.server.finish(now, conn, stream_id);
        } else if let Some(session) = self.kind_mut(conn, stream_id).and_then(Kind::session_mut) {
            // What the session did may have set its timers.
            let at = session.ws.poll_timeout();
            self.due_by(at);
        }
    }

    /// Starts the close handshake of the WebSocket `id` names.
    pub(in crate::server) fn close_ws<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        let Some((conn, stream_id)) = self.stream_of(id) else {
            return;
        };
        self.with_ws(l, conn, stream_id, |_, ctx, sid, _| {
            ctx.close(sid, code, reason);
        });
    }

    /// A WebSocket's timer (ping, idle, close handshake) is due.
    pub(super) fn ws_timer<A: App>(&mut self, l: &mut Lent<'_, A>, conn: ConnectionHandle, stream_id: u64) {
        let now = l.now;
        let mut failure = None;
        self.with_ws(l, conn, stream_id, |_, ctx, _, _| {
            failure = websocket::handle_timer(ctx, now);
        });
        let Some(error) = failure else { return };
        debug!("HTTP/3 WebSocket timer on stream {stream_id}: {error}");
        let reason = websocket::timer_close_reason(&error);
        if matches!(error, tether_ws::Error::CloseTimeout) {
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_REQUEST_CANCELLED);
            return self.gone(l, conn, stream_id, reason);
        }
        let Some(sid) = self.id_of(conn, stream_id) else {
            return;
        };
        let Some(session) = self.kind_mut(conn, stream_id).and_then(Kind::session_mut) else {
            return;
        };
        if std::mem::replace(&mut session.notified, true) {
            return;
        }
        let tag = session.tag;
        let (app, mut ctx) = l.detached();
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_close", || {
            app.on_close(&mut ctx, sid, tag, reason)
        });
    }
}
