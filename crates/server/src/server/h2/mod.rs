//! HTTP/2 sessions (RFC 9113): a connection whose first bytes are the
//! client preface (plain listeners, prior knowledge) or whose TLS
//! handshake chose ALPN `h2` is served by a [`ServerConnection`] from
//! tether-h2, and each of its streams is what an HTTP/1.1 connection
//! would be: a request answered now or later, an event stream, or a
//! WebSocket over an extended CONNECT (RFC 8441).
//!
//! Every stream the application sees has an id of its own
//! ([`ConnId::with_stream`]); callbacks for streams get a context that
//! acts through the loop's actions (or, for a WebSocket, a scratch queue
//! whose bytes become the stream's DATA), so the application cannot tell
//! HTTP/2 from HTTP/1.1.
//!
//! Output on a stream goes out as DATA frames as far as the client's
//! windows allow; the rest waits in the stream's queue (bytes shared with
//! other streams, a broadcast, stay shared: a frame header is written and
//! the shared payload queued behind it, no copy). A stream whose queue
//! grows while the connection's queued total is beyond
//! [`crate::config::Config::max_output`] (a client that does not open its window)
//! is reset (CANCEL) by the slow-consumer policy; other streams go on.
//!
//! Request bodies are gathered until they are complete, and the windows
//! reopened as they are, so that a body larger than a window gets through;
//! what bounds a connection's memory is [`crate::config::Config::h2_request_bodies`]:
//! the bodies still arriving on a connection hold at most that much (the
//! capacity of their buffers), and a stream whose body would need more is
//! reset with REFUSED_STREAM. With the request heads, each at most
//! [`crate::config::Config::max_request_head`] and at most
//! `max_concurrent_streams` of them, and the one incomplete frame kept
//! between reads, that is what a connection's input can hold.

use std::time::Instant;

use log::debug;
use tether_h2::ErrorCode;
use tether_h2::connection::{Event as H2Event, Request as H2Request};
use tether_ws::{CloseCode, Event};

mod state;

pub(crate) use state::H2Session;
use state::{
    H2Stream, Kind, PLACEHOLDER_KEY, Piece, REFUSED_BODY_DISCARD, app_headers, app_method, joined_cookies,
    response_fields, split_target,
};

use super::dispatch::{Decision, Form, Head, answer_by, error_response, last_event_id};
use super::{Server, Session, State, Stats, guarded, live};
use crate::app::{App, CloseReason, ConnId, Ctx, Request, Response};
use crate::app::{Current, InPlace};
use crate::output::{Chunk, OutQueue, Pool};
use crate::server::env::LoopEnv;

impl<A: App> Server<A> {
    /// Makes connection `id` an HTTP/2 session.
    pub(super) fn start_h2(&mut self, id: ConnId, now: Instant) -> bool {
        let mut config = self.env.config.h2;
        let head_limit = u32::try_from(self.env.config.max_request_head).unwrap_or(u32::MAX);
        config.max_header_list_size = config.max_header_list_size.min(head_limit).max(1);
        let deadline = now + self.env.config.handshake_timeout;
        let Some(session) = H2Session::new(config, deadline) else {
            return false;
        };
        let Some(conn) = self.conn_mut(id) else {
            return false;
        };
        conn.state = State::H2(Box::new(session));
        Stats::add(&self.stats().h2_connections, 1);
        debug!("HTTP/2 session");
        true
    }

    /// The session, the connection's output queue and the pool.
    fn h2_parts(&mut self, id: ConnId) -> Option<(&mut H2Session, &mut OutQueue, &mut Pool)> {
        let Self { conns, env, .. } = self;
        let LoopEnv { pool, .. } = env;
        let conn = live(conns, id)?;
        let State::H2(h2) = &mut conn.state else {
            return None;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        Some((h2, out, pool))
    }

    /// The HTTP/2 session of connection `id`, its output queue and the
    /// loop's environment, for the session's own methods.
    fn http2(&mut self, id: ConnId) -> Option<(&mut H2Session, &mut OutQueue, &mut LoopEnv<A::Post>)> {
        let Self { conns, env, .. } = self;
        let conn = live(conns, id)?;
        let State::H2(h2) = &mut conn.state else {
            return None;
        };
        let out = conn.out.get_or_insert_with(|| env.pool.queue());
        Some((h2, out, env))
    }

    /// Bytes from the client of an HTTP/2 session.
    pub(super) fn h2_input(&mut self, id: ConnId, data: &[u8], now: Instant) {
        let keep_alive = self.env.config.keep_alive_timeout;
        let mut events = Vec::new();
        {
            let Some((h2, out, pool)) = self.h2_parts(id) else {
                return;
            };
            if h2.conn.is_closed() {
                return;
            }
            h2.deadline = now + keep_alive;
            let used = if h2.partial.is_empty() {
                let unsent = out.len();
                let used = out.write_with(pool, |o| h2.conn.receive_queued(data, unsent, o, &mut events));
                h2.partial.extend_from_slice(data.get(used..).unwrap_or_default());
                used
            } else {
                let mut buf = std::mem::take(&mut h2.partial);
                buf.extend_from_slice(data);
                let unsent = out.len();
                let used = out.write_with(pool, |o| h2.conn.receive_queued(&buf, unsent, o, &mut events));
                buf.drain(..used.min(buf.len()));
                h2.partial = buf;
                used
            };
            let _ = used;
            if h2.conn.is_closed() {
                h2.partial = Vec::new();
            }
        }
        for event in events {
            self.h2_event(id, event, now);
        }
        self.h2_after(id, now);
    }

    fn h2_event(&mut self, id: ConnId, event: H2Event, now: Instant) {
        match event {
            H2Event::Request {
                stream,
                request,
                end_stream,
            } => self.h2_request(id, stream, request, end_stream, now),
            H2Event::Data {
                stream,
                data,
                end_stream,
            } => self.h2_data(id, stream, data, end_stream, now),
            H2Event::Trailers { stream, .. } => self.h2_data(id, stream, Vec::new(), true, now),
            H2Event::Reset { stream, code, .. } => {
                debug!("HTTP/2 stream {stream} reset: {code:?}");
                self.h2_gone(id.with_stream(stream), CloseReason::Dropped, now);
            }
            H2Event::WindowOpened { stream } => self.h2_drain(id, (stream != 0).then_some(stream)),
            H2Event::ConnectionError(error) => debug!("HTTP/2 connection error: {error}"),
            _ => {}
        }
    }

    /// A new stream's request.
    fn h2_request(&mut self, id: ConnId, stream: u32, request: H2Request, end_stream: bool, now: Instant) {
        Stats::add(&self.stats().h2_streams, 1);
        let max_body = self.env.config.max_request_body;
        let Some((h2, _, _)) = self.h2_parts(id) else {
            return;
        };
        let websocket = request.is_extended_connect("websocket");
        h2.streams.insert(stream, H2Stream::new(Kind::Answered));
        if end_stream || websocket {
            return self.h2_dispatch(id, stream, &request, &[], now);
        }
        let announced = request
            .field("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let head_only = request.method == "HEAD";
        if announced.is_some_and(|n| n > max_body as u64) {
            if let Some((h2, out, env)) = self.http2(id) {
                h2.refuse_with(env, out, stream, &error_response(413), head_only, None);
            }
            return;
        }
        // The head is in and the body is not: a request refused whatever
        // its body is answered now, its body never read.
        let admin = self.conn_mut(id).is_some_and(|c| c.admin);
        let secure = self.is_tls(id);
        let cookie = joined_cookies(&request);
        let headers = app_headers(&request, &cookie);
        let (path, query) = split_target(&request);
        let app_request = Request {
            method: app_method(&request),
            path,
            query,
            headers: &headers,
            admin,
            secure,
        };
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let refusal = guarded(&peers.own().stats, "refuse_before_body", || {
            app.refuse_before_body(&mut ctx, &app_request)
        })
        .unwrap_or_else(|| Some(Response::text(500, "500 Internal Server Error\n")));
        if let Some(refusal) = refusal {
            let discard = announced.map_or(Some(REFUSED_BODY_DISCARD), |n| {
                usize::try_from(n).ok().filter(|&n| n <= REFUSED_BODY_DISCARD)
            });
            if let Some((h2, out, env)) = self.http2(id) {
                h2.refuse_with(env, out, stream, &refusal, head_only, discard);
            }
            return;
        }
        if let Some((h2, _, _)) = self.h2_parts(id)
            && let Some(s) = h2.streams.get_mut(&stream)
        {
            s.kind = Kind::Body {
                request: Box::new(request),
                body: Vec::new(),
            };
        }
    }

    /// Body bytes (or, empty with `end_stream`, the end of a body).
    fn h2_data(&mut self, id: ConnId, stream: u32, mut data: Vec<u8>, end_stream: bool, now: Instant) {
        let max_body = self.env.config.max_request_body;
        let budget = self.env.config.h2_request_bodies.max(max_body);
        let len = data.len();
        let Some((h2, out, pool)) = self.h2_parts(id) else {
            return;
        };
        // Every byte delivered is given back to the windows, whatever
        // becomes of it: the body is copied (and bounded below), a
        // WebSocket's input is handled below, and anything else is not
        // wanted.
        out.write_with(pool, |o| h2.conn.release(stream, len, o));
        if let Some(left) = h2.discarding.get_mut(&stream) {
            // The body of a request already answered.
            match left.checked_sub(len) {
                Some(rest) if !end_stream => *left = rest,
                Some(_) => {
                    h2.discarding.remove(&stream);
                }
                None => {
                    h2.discarding.remove(&stream);
                    h2.refuse(stream, ErrorCode::NO_ERROR, out, pool);
                }
            }
            return;
        }
        let held = h2.body_bytes();
        let Some(s) = h2.streams.get_mut(&stream) else {
            return;
        };
        match &mut s.kind {
            Kind::Body { body, request } => {
                let needed = body.len().saturating_add(len);
                if needed > max_body {
                    let head_only = request.method == "HEAD";
                    if let Some((h2, out, env)) = self.http2(id) {
                        h2.refuse_with(env, out, stream, &error_response(413), head_only, None);
                    }
                    return;
                }
                if end_stream && body.is_empty() {
                    // The whole body in one frame: no copy.
                    let Kind::Body { request, .. } = std::mem::replace(&mut s.kind, Kind::Answered) else {
                        return;
                    };
                    return self.h2_dispatch(id, stream, &request, &data, now);
                }
                if needed > body.capacity() {
                    // Grown by doubling, as a Vec would, but never past
                    // the largest body, and only within the connection's
                    // budget.
                    let grown = body.capacity().saturating_mul(2).max(needed).min(max_body);
                    let extra = grown.saturating_sub(body.capacity());
                    if held.saturating_add(extra) > budget {
                        if let Some((h2, out, env)) = self.http2(id) {
                            h2.refuse_body(env, out, stream);
                        }
                        return;
                    }
                    body.reserve_exact(grown.saturating_sub(body.len()));
                }
                body.extend_from_slice(&data);
                if end_stream {
                    let Kind::Body { request, body } = std::mem::replace(&mut s.kind, Kind::Answered) else {
                        return;
                    };
                    self.h2_dispatch(id, stream, &request, &body, now);
                }
            }
            Kind::WebSocket(_) => {
                if !data.is_empty() {
                    self.h2_ws_input(id, stream, &mut data, now);
                }
                if end_stream {
                    // The client will send nothing more: a WebSocket
                    // without its close handshake.
                    self.h2_reset(
                        id.with_stream(stream),
                        ErrorCode::NO_ERROR,
                        CloseReason::Dropped,
                        now,
                    );
                }
            }
            _ => {}
        }
    }

    /// A complete request: routed once for every version, and answered in
    /// HTTP/2's framing.
    fn h2_dispatch(&mut self, id: ConnId, stream: u32, h2_request: &H2Request, body: &[u8], now: Instant) {
        let sid = id.with_stream(stream);
        let cookie = joined_cookies(h2_request);
        let headers = app_headers(h2_request, &cookie);
        let (path, query) = split_target(h2_request);
        let websocket = h2_request.is_extended_connect("websocket");
        let form = if websocket {
            Form::ConnectWebSocket
        } else if h2_request.method == "CONNECT" {
            // Not a proxy; and no other protocol over CONNECT.
            Form::Connect
        } else if h2_request.method == "OPTIONS" && path == "*" {
            Form::Asterisk
        } else {
            Form::Origin
        };
        let head = Head {
            request: Request {
                method: app_method(h2_request),
                path,
                query,
                headers: &headers,
                admin: self.conn_mut(id).is_some_and(|c| c.admin),
                secure: self.is_tls(id),
            },
            form,
        };
        let head_only = head.head_only();
        match self.dispatch(sid, &head, body, now) {
            Decision::Respond(response) => {
                if let Some((h2, out, env)) = self.http2(id) {
                    h2.answer(env, out, stream, &response, head_only);
                }
            }
            Decision::Page { content_type, body } => {
                let page = Response::new(200, content_type, body).header("Cache-Control", "no-cache");
                if let Some((h2, out, env)) = self.http2(id) {
                    h2.answer(env, out, stream, &page, head_only);
                }
            }
            Decision::Fail { status, retry_after } => {
                let mut answer = error_response(status);
                if retry_after {
                    answer = answer.header("Retry-After", "1");
                }
                if let Some((h2, out, env)) = self.http2(id) {
                    h2.answer(env, out, stream, &answer, head_only);
                }
            }
            // A WebSocket over HTTP/2 is an extended CONNECT.
            Decision::Upgrade(_) if !websocket => {
                if let Some((h2, out, env)) = self.http2(id) {
                    h2.answer(env, out, stream, &error_response(426), head_only);
                }
            }
            Decision::Upgrade(tag) => {
                self.h2_accept_websocket(id, stream, h2_request, &head.request, tag, now)
            }
            Decision::EventStream { tag, headers } => {
                self.h2_start_stream(id, stream, &head.request, tag, &headers, head_only, now);
            }
            Decision::Later { tag, wait } => {
                let deadline = answer_by(now, wait);
                if let Some((h2, _, _)) = self.h2_parts(id)
                    && let Some(s) = h2.streams.get_mut(&stream)
                {
                    s.kind = Kind::Waiting {
                        tag,
                        head_only,
                        deadline,
                    };
                }
                if self.closing_sessions() {
                    self.answer_at_shutdown(sid, tag, now);
                }
            }
        }
    }

    /// An event stream on `stream` (or, for HEAD, only its head).
    #[allow(clippy::too_many_arguments)]
    fn h2_start_stream(
        &mut self,
        id: ConnId,
        stream: u32,
        request: &Request<'_>,
        tag: u32,
        extra: &[(String, String)],
        head_only: bool,
        now: Instant,
    ) {
        let retry = u64::try_from(self.env.config.sse_retry.as_millis()).unwrap_or(u64::MAX);
        let heartbeat_at = now + self.env.config.sse_heartbeat;
        let fields = response_fields(
            200,
            "text/event-stream",
            None,
            [("cache-control", "no-cache"), ("x-accel-buffering", "no")]
                .into_iter()
                .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        );
        {
            let Some((h2, out, pool)) = self.h2_parts(id) else {
                return;
            };
            if out
                .write_with(pool, |o| h2.conn.send_headers(stream, &fields, head_only, o))
                .is_err()
                || head_only
            {
                h2.forget(stream);
                return;
            }
            let Some(s) = h2.streams.get_mut(&stream) else {
                return;
            };
            s.kind = Kind::Sse {
                tag,
                heartbeat_at,
                ended: false,
            };
            let mut hint = Vec::with_capacity(16);
            tether_sse::retry(retry, &mut hint);
            hint.push(b'\n');
            h2.enqueue(stream, Piece::Owned(hint, 0));
            h2.drain(stream, out, pool);
        }
        Stats::add(&self.stats().open_event_stream, 1);
        let last_event_id = last_event_id(request);
        let sid = id.with_stream(stream);
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let subscribed = guarded(&peers.own().stats, "on_subscribe", || {
            app.on_subscribe(&mut ctx, sid, tag, request, last_event_id.as_deref())
        });
        if subscribed.is_none() {
            // The application, in an unknown state, is not told.
            if let Some((h2, out, pool)) = self.h2_parts(id) {
                if let Some(s) = h2.streams.get_mut(&stream) {
                    if let Kind::Sse { ended, .. } = &mut s.kind {
                        *ended = true;
                    }
                    s.end = true;
                }
                if let Some(gone) = h2.drain(stream, out, pool) {
                    gone.count_gone(self.stats());
                }
            }
        }
    }

    /// RFC 8441: the extended CONNECT is judged like an upgrade (the
    /// handshake's policy, subprotocols and extensions), answered 200, and
    /// the stream carries WebSocket frames both ways.
    fn h2_accept_websocket(
        &mut self,
        id: ConnId,
        stream: u32,
        h2_request: &H2Request,
        request: &Request<'_>,
        tag: u32,
        now: Instant,
    ) {
        let target = h2_request.path.as_deref().unwrap_or("/");
        let authority = h2_request.authority.as_deref().unwrap_or_default();
        let mut head_fields = vec![
            httparse::Header {
                name: "Host",
                value: authority.as_bytes(),
            },
            httparse::Header {
                name: "Upgrade",
                value: b"websocket",
            },
            httparse::Header {
                name: "Connection",
                value: b"Upgrade",
            },
            httparse::Header {
                name: "Sec-WebSocket-Key",
                value: PLACEHOLDER_KEY,
            },
        ];
        head_fields.extend(request.headers.iter().copied().filter(|h| {
            !["host", "sec-websocket-key", "upgrade", "connection"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n))
        }));
        let handshake = self.handshake.clone();
        let head = tether_handshake::RequestHead::new("GET", target, 1, &head_fields);
        let accepted = match handshake.accept(head) {
            Ok(accepted) => accepted,
            Err(rejection) => {
                debug!(
                    "HTTP/2 WebSocket refused: {} {}",
                    rejection.status(),
                    rejection.reason()
                );
                let response = Response::text(rejection.status(), format!("{}\n", rejection.reason()));
                if let Some((h2, out, env)) = self.http2(id) {
                    h2.answer(env, out, stream, &response, false);
                }
                return;
            }
        };
        let protocol = accepted.protocol().map(str::to_owned);
        let extensions = accepted
            .extensions()
            .iter()
            .map(|e| e.element())
            .collect::<Vec<_>>()
            .join(", ");
        let mut extra = Vec::new();
        if let Some(protocol) = protocol.as_deref() {
            extra.push(("sec-websocket-protocol", protocol));
        }
        if !extensions.is_empty() {
            extra.push(("sec-websocket-extensions", extensions.as_str()));
        }
        let fields = response_fields(200, "", None, extra);
        let session = Session::accepted(accepted, tag, &self.ws_config, now);
        {
            let Some((h2, out, pool)) = self.h2_parts(id) else {
                return;
            };
            if out
                .write_with(pool, |o| h2.conn.send_headers(stream, &fields, false, o))
                .is_err()
            {
                h2.forget(stream);
                return;
            }
            let Some(s) = h2.streams.get_mut(&stream) else {
                return;
            };
            s.kind = Kind::WebSocket(session);
        }
        Stats::add(&self.stats().open_websocket, 1);
        let opened = self.h2_with_ws(id, stream, now, |app, ctx, sid, tag| {
            app.on_open(ctx, sid, tag, request);
        });
        if opened == Some(None) {
            // Its state is unknown: the application is not told of the
            // session's end either.
            self.h2_ws_fail(id, stream, now);
        }
    }

    /// Runs `f` with the application and a context whose current
    /// connection is the WebSocket on `stream` (what it sends to that
    /// session is encoded there, compressed if negotiated), then queues
    /// what was written on the stream. `None` if there is no such
    /// session; `Some(None)` if the callback panicked.
    fn h2_with_ws(
        &mut self,
        id: ConnId,
        stream: u32,
        now: Instant,
        f: impl FnOnce(&mut A, &mut Ctx<'_, A::Post>, ConnId, u32),
    ) -> Option<Option<()>> {
        let sid = id.with_stream(stream);
        let (conn, app, mut base) = self.split(id, now)?;
        let State::H2(h2) = &mut conn.state else {
            return None;
        };
        let s = h2.streams.get_mut(&stream)?;
        let Kind::WebSocket(session) = &mut s.kind else {
            return None;
        };
        let mut scratch = base.pool.queue();
        let mut closing = false;
        let tag = session.tag;
        let peers = base.peers;
        let mut ctx = base.with_current(Current {
            id: sid,
            ws: Some(&mut session.ws),
            deflate_window: session.deflate_window,
            out: &mut scratch,
            closing: &mut closing,
            in_place: InPlace::No,
        });
        let result = guarded(&peers.own().stats, "a WebSocket callback", || {
            f(app, &mut ctx, sid, tag)
        });
        let closed = session.ws.state() == tether_ws::State::Closed;
        self.h2_take_scratch(id, stream, scratch, closed);
        Some(result)
    }

    /// Moves what a WebSocket wrote into `scratch` onto its stream, and
    /// sends what the windows allow.
    fn h2_take_scratch(&mut self, id: ConnId, stream: u32, mut scratch: Box<OutQueue>, closed: bool) {
        let chunks = scratch.take_chunks();
        let gone = {
            let Some((h2, out, pool)) = self.h2_parts(id) else {
                return;
            };
            pool.give_back_queue(scratch);
            for chunk in chunks {
                let piece = match chunk {
                    Chunk::Owned(bytes) | Chunk::Payload(bytes) => Piece::Owned(bytes, 0),
                    Chunk::Shared(bytes) => Piece::Shared(bytes, 0),
                };
                h2.enqueue(stream, piece);
            }
            if closed && let Some(s) = h2.streams.get_mut(&stream) {
                s.end = true;
            }
            h2.drain(stream, out, pool)
        };
        if let Some(gone) = gone {
            gone.count_gone(self.stats());
        }
    }

    /// A WebSocket whose application callback panicked: closed with
    /// 1011, without telling the application again.
    fn h2_ws_fail(&mut self, id: ConnId, stream: u32, now: Instant) {
        if let Some((h2, _, _)) = self.h2_parts(id)
            && let Some(Kind::WebSocket(session)) = h2.streams.get_mut(&stream).map(|s| &mut s.kind)
        {
            session.notified = true;
        }
        self.h2_with_ws(id, stream, now, |_, ctx, sid, _| {
            ctx.close(sid, CloseCode::INTERNAL_ERROR, "internal error");
        });
    }

    /// WebSocket frames in DATA on `stream`.
    fn h2_ws_input(&mut self, id: ConnId, stream: u32, data: &mut [u8], now: Instant) {
        let sid = id.with_stream(stream);
        let result = {
            let Self { conns, app, env, .. } = self;
            let LoopEnv {
                actions, pool, peers, ..
            } = env;
            let Some(conn) = live(conns, id) else { return };
            let State::H2(h2) = &mut conn.state else { return };
            let Some(s) = h2.streams.get_mut(&stream) else {
                return;
            };
            let Kind::WebSocket(session) = &mut s.kind else {
                return;
            };
            let mut scratch = pool.queue();
            let mut base = Ctx::new(now, actions, pool, peers);
            let mut closing = false;
            session.receive(app, &mut base, sid, data, &mut scratch, &mut closing, None, now);
            (scratch, session.is_closed())
        };
        let (scratch, closed) = result;
        self.h2_take_scratch(id, stream, scratch, closed);
    }

    /// Sends what the windows now allow: on `stream`, or on every stream.
    fn h2_drain(&mut self, id: ConnId, stream: Option<u32>) {
        let mut gone = Vec::new();
        {
            let Some((h2, out, pool)) = self.h2_parts(id) else {
                return;
            };
            let streams: Vec<u32> = match stream {
                Some(s) => vec![s],
                None => h2
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.queue.is_empty() || s.end)
                    .map(|(&k, _)| k)
                    .collect(),
            };
            for s in streams {
                gone.extend(h2.drain(s, out, pool));
            }
        }
        for s in &gone {
            s.count_gone(self.stats());
        }
    }

    /// A stream ended by the client or the connection: forgotten, and the
    /// application told (as for a dropped connection).
    fn h2_gone(&mut self, sid: ConnId, reason: CloseReason, now: Instant) {
        let Some((h2, _, _)) = self.h2_parts(sid.connection()) else {
            return;
        };
        h2.discarding.remove(&sid.stream());
        let Some(gone) = h2.forget(sid.stream()) else {
            return;
        };
        gone.count_gone(self.stats());
        self.h2_notify(sid, gone.kind, reason, now);
    }

    fn h2_notify(&mut self, sid: ConnId, kind: Kind, reason: CloseReason, now: Instant) {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "the end of a stream", || match kind {
            Kind::WebSocket(session) if !session.notified => app.on_close(&mut ctx, sid, session.tag, reason),
            Kind::Sse {
                tag, ended: false, ..
            } => app.on_unsubscribe(&mut ctx, sid, tag, reason),
            Kind::Waiting { tag, .. } => app.on_request_abandoned(&mut ctx, sid, tag),
            _ => {}
        });
    }

    /// Resets a stream with `code` and forgets it, telling the
    /// application.
    fn h2_reset(&mut self, sid: ConnId, code: ErrorCode, reason: CloseReason, now: Instant) {
        if let Some((h2, out, pool)) = self.h2_parts(sid.connection()) {
            let _ = out.write_with(pool, |o| h2.conn.reset(sid.stream(), code, o));
        }
        self.h2_gone(sid, reason, now);
    }

    /// The slow-consumer policy on a stream: reset with CANCEL, which
    /// drops what it had queued and leaves the connection's other streams
    /// alone.
    pub(super) fn h2_cut_loose(&mut self, sid: ConnId, now: Instant) {
        debug!("slow consumer on HTTP/2 stream {}: resetting it", sid.stream());
        Stats::add(&self.stats().slow_consumers, 1);
        self.h2_reset(sid, ErrorCode::CANCEL, CloseReason::SlowConsumer, now);
    }

    /// Starts the close handshake of the WebSocket on a stream.
    pub(super) fn h2_close_ws(&mut self, sid: ConnId, code: CloseCode, reason: &str, now: Instant) {
        self.h2_with_ws(sid.connection(), sid.stream(), now, |_, ctx, sid, _| {
            ctx.close(sid, code, reason);
        });
        self.mark_dirty(sid.connection());
    }

    /// Ends an event stream on a stream: the application is told, and
    /// END_STREAM follows what is queued.
    pub(super) fn h2_end_stream(&mut self, sid: ConnId, reason: CloseReason, now: Instant) {
        let id = sid.connection();
        let linger = self.env.config.linger;
        let tag = {
            let Some((h2, _, _)) = self.h2_parts(id) else {
                return;
            };
            let Some(s) = h2.streams.get_mut(&sid.stream()) else {
                return;
            };
            let Kind::Sse {
                tag,
                ended,
                heartbeat_at,
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
            s.end = true;
            *tag
        };
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_unsubscribe", || {
            app.on_unsubscribe(&mut ctx, sid, tag, reason)
        });
        self.h2_drain(id, Some(sid.stream()));
        self.mark_dirty(id);
    }

    /// The application's deferred answer to a request on a stream.
    pub(super) fn h2_respond_later(&mut self, sid: ConnId, response: &Response) {
        let id = sid.connection();
        let Some((h2, _, _)) = self.h2_parts(id) else {
            return;
        };
        let Some(Kind::Waiting { head_only, .. }) = h2.streams.get(&sid.stream()).map(|s| &s.kind) else {
            return;
        };
        let head_only = *head_only;
        if let Some((h2, out, env)) = self.http2(id) {
            h2.answer(env, out, sid.stream(), response, head_only);
        }
        self.mark_dirty(id);
    }

    /// What is due on an HTTP/2 session: deferred answers, heartbeats,
    /// WebSocket timers, the idle timeout.
    pub(super) fn h2_timer(&mut self, id: ConnId, now: Instant) {
        let heartbeat = self.env.config.sse_heartbeat;
        let Some((h2, out, pool)) = self.h2_parts(id) else {
            return;
        };
        if h2.streams.is_empty() && now >= h2.deadline {
            debug!("HTTP/2 connection idle; GOAWAY");
            out.write_with(pool, |o| h2.conn.go_away(ErrorCode::NO_ERROR, o));
            if let Some(conn) = self.conn_mut(id) {
                conn.closing = true;
            }
            self.mark_dirty(id);
            return;
        }
        let mut timed_out = Vec::new();
        let mut unsent = Vec::new();
        let mut ws_due = Vec::new();
        for (&stream, s) in h2.streams.iter_mut() {
            match &mut s.kind {
                Kind::Waiting { tag, deadline, .. } if now >= *deadline => timed_out.push((stream, *tag)),
                Kind::Sse {
                    heartbeat_at,
                    ended: true,
                    ..
                } if now >= *heartbeat_at => unsent.push(stream),
                Kind::Sse { heartbeat_at, .. } if now >= *heartbeat_at => {
                    *heartbeat_at = now + heartbeat;
                    let mut comment = Vec::with_capacity(4);
                    tether_sse::heartbeat(&mut comment);
                    s.queued = s.queued.saturating_add(comment.len());
                    h2.queued = h2.queued.saturating_add(comment.len());
                    s.queue.push_back(Piece::Owned(comment, 0));
                }
                Kind::WebSocket(session) if session.ws.poll_timeout().is_some_and(|at| now >= at) => {
                    ws_due.push(stream);
                }
                _ => {}
            }
        }
        self.h2_drain(id, None);
        for stream in unsent {
            debug!("event stream {stream} could not send its end in time; resetting");
            self.h2_reset(
                id.with_stream(stream),
                ErrorCode::CANCEL,
                CloseReason::Dropped,
                now,
            );
        }
        for (stream, tag) in timed_out {
            self.request_timed_out(id.with_stream(stream), tag, now);
        }
        for stream in ws_due {
            self.h2_ws_timer(id, stream, now);
        }
        self.h2_after(id, now);
    }

    fn h2_ws_timer(&mut self, id: ConnId, stream: u32, now: Instant) {
        let mut failure = None;
        self.h2_with_ws(id, stream, now, |_, ctx, _, _| {
            if let Some(Current {
                ws: Some(ws), out, ..
            }) = ctx.current.as_mut()
            {
                let pool = &mut *ctx.pool;
                if let Some(Event::Failed(error)) = out.write_with(pool, |o| ws.handle_timeout(now, o)) {
                    failure = Some(error);
                }
            }
        });
        let Some(error) = failure else { return };
        debug!("websocket timer on stream {stream}: {error}");
        let sid = id.with_stream(stream);
        let reason = match error {
            tether_ws::Error::IdleTimeout => CloseReason::Failed(CloseCode::GOING_AWAY),
            _ => CloseReason::Dropped,
        };
        if matches!(error, tether_ws::Error::CloseTimeout) {
            return self.h2_reset(sid, ErrorCode::CANCEL, reason, now);
        }
        let tag = {
            let Some((h2, _, _)) = self.h2_parts(id) else {
                return;
            };
            let Some(Kind::WebSocket(session)) = h2.streams.get_mut(&stream).map(|s| &mut s.kind) else {
                return;
            };
            if session.notified {
                return;
            }
            session.notified = true;
            session.tag
        };
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_close", || {
            app.on_close(&mut ctx, sid, tag, reason)
        });
    }

    /// After input, a timer or an action: a connection that ended (an
    /// error, or our GOAWAY with no stream left) closes once its output is
    /// written; a client whose own answers pile up is not read until it
    /// takes them.
    pub(super) fn h2_after(&mut self, id: ConnId, now: Instant) {
        let max_output = self.env.config.max_output;
        let (closed, finished, held, before) = {
            let Some((h2, out, _)) = self.h2_parts(id) else {
                return;
            };
            let held = h2.body_bytes();
            let before = std::mem::replace(&mut h2.reported_body_bytes, held);
            let over = out.len() > max_output;
            let closed = h2.conn.is_closed();
            let finished = closed || (h2.streams.is_empty() && h2.conn.is_finished());
            if let Some(conn) = self.conn_mut(id)
                && over
            {
                conn.paused = true;
            }
            (closed, finished, held, before)
        };
        let gauge = &self.stats().h2_request_body_bytes;
        if held > before {
            Stats::add(gauge, (held - before) as u64);
        } else {
            Stats::sub(gauge, (before - held) as u64);
        }
        if closed {
            self.h2_drop_streams(id, CloseReason::Dropped, now);
        }
        if finished && let Some(conn) = self.conn_mut(id) {
            conn.closing = true;
        }
        self.mark_dirty(id);
    }

    /// Forgets every stream, telling the application.
    pub(super) fn h2_drop_streams(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let streams: Vec<u32> = match self.h2_parts(id) {
            Some((h2, _, _)) => h2.streams.keys().copied().collect(),
            None => return,
        };
        for stream in streams {
            self.h2_gone(id.with_stream(stream), reason.clone(), now);
        }
    }

    /// The first step of a graceful shutdown: GOAWAY, so that the client
    /// opens no new stream; a connection with none open closes.
    pub(super) fn h2_begin_shutdown(&mut self, id: ConnId) {
        let Some((h2, out, pool)) = self.h2_parts(id) else {
            return;
        };
        out.write_with(pool, |o| h2.conn.go_away(ErrorCode::NO_ERROR, o));
        let idle = h2.streams.is_empty();
        if let Some(conn) = self.conn_mut(id)
            && idle
        {
            conn.closing = true;
        }
        self.mark_dirty(id);
    }

    /// The second step: deferred requests are answered, WebSockets closed
    /// with 1001, event streams ended.
    pub(super) fn h2_close_sessions(&mut self, id: ConnId, now: Instant) {
        let mut waiting = Vec::new();
        let mut sockets = Vec::new();
        let mut events = Vec::new();
        {
            let Some((h2, _, _)) = self.h2_parts(id) else {
                return;
            };
            for (&stream, s) in &h2.streams {
                match s.kind {
                    Kind::Waiting { tag, .. } => waiting.push((stream, tag)),
                    Kind::WebSocket(_) => sockets.push(stream),
                    Kind::Sse { ended: false, .. } => events.push(stream),
                    _ => {}
                }
            }
        }
        for (stream, tag) in waiting {
            self.answer_at_shutdown(id.with_stream(stream), tag, now);
        }
        for stream in sockets {
            self.h2_close_ws(
                id.with_stream(stream),
                CloseCode::GOING_AWAY,
                "server shutting down",
                now,
            );
        }
        for stream in events {
            self.h2_end_stream(id.with_stream(stream), CloseReason::Shutdown, now);
        }
        self.h2_after(id, now);
    }
}

/// Tells the application that every stream of a connection being dropped
/// has ended, and keeps the gauges right.
pub(super) fn notify_removed<A: App>(
    app: &mut A,
    ctx: &mut Ctx<'_, A::Post>,
    id: ConnId,
    session: H2Session,
    reason: CloseReason,
) {
    let stats = &ctx.peers.own().stats;
    Stats::sub(&stats.h2_request_body_bytes, session.reported_body_bytes as u64);
    for (stream, s) in session.streams {
        let sid = id.with_stream(stream);
        match s.kind {
            Kind::WebSocket(session) => {
                Stats::sub(&stats.open_websocket, 1);
                if !session.notified {
                    app.on_close(ctx, sid, session.tag, reason.clone());
                }
            }
            Kind::Sse { tag, ended, .. } => {
                Stats::sub(&stats.open_event_stream, 1);
                if !ended {
                    app.on_unsubscribe(ctx, sid, tag, reason.clone());
                }
            }
            Kind::Waiting { tag, .. } => app.on_request_abandoned(ctx, sid, tag),
            Kind::Body { .. } | Kind::Answered => {}
        }
    }
}
