//! HTTP/2 sessions (RFC 9113): a connection whose first bytes are the
//! client preface (plain listeners, prior knowledge) or whose TLS
//! handshake chose ALPN `h2` is served by a
//! [`ServerConnection`](tether_h2::connection::ServerConnection) from
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
//! grows by a broadcast while the connection's queued total is beyond
//! [`crate::config::Config::max_output`] (a client that does not open its window)
//! is reset (CANCEL) by the slow-consumer policy; other streams go on.
//! What a WebSocket's input makes it answer (PONGs, echoes) is bounded by
//! flow control instead, as HTTP/1.1 stops reading: while the stream has
//! more than `max_output` queued, the stream's window for the input
//! handled is held back, and given back once the queue is down to half of
//! that. A stream whose output makes no progress for `keep_alive_timeout`
//! is reset.
//!
//! A connection with no stream open is idle, and gets GOAWAY
//! `keep_alive_timeout` after its last request or open stream, whatever
//! else it sends: bytes the server drops (the body of a request it
//! refused, DATA on a stream it reset, PINGs, WINDOW_UPDATEs) do not hold
//! it open. The body of a refused request is read and dropped for at
//! most `handshake_timeout` before its stream is reset.
//!
//! Request bodies are gathered until they are complete, and the windows
//! reopened as they are, so that a body larger than a window gets through;
//! what bounds a connection's memory is [`crate::config::Config::request_bodies_per_connection`]:
//! the bodies still arriving on a connection hold at most that much (the
//! capacity of their buffers), and a stream whose body would need more is
//! reset with REFUSED_STREAM. With the request heads, each at most
//! [`crate::config::Config::max_request_head`] and at most
//! `max_concurrent_streams` of them, and the one incomplete frame kept
//! between reads, that is what a connection's input can hold.

//!
//! Calling contract: [`H2Session`] owns its methods; each takes one
//! [`Call`] by `&mut`: the connection's id and link, the application and
//! the loop's environment (a stream's id, where a method is about one,
//! beside it).
//! The loop passes the bytes it read ([`H2Session::input`]) and calls
//! [`H2Session::on_timer`] when [`H2Session::next_deadline`] is due; the
//! sink pushes, closes, ends and answers through the methods of those
//! names. Output goes to the link, which the loop flushes.

use std::time::Instant;

use log::debug;
use tether_h2::ErrorCode;
use tether_h2::connection::{Event as H2Event, Request as H2Request};

mod lifecycle;
mod state;
mod streams;

pub(crate) use state::H2Session;
use state::{H2Stream, Kind, REFUSED_BODY_DISCARD};

use crate::app::sse_coding;
use crate::app::{App, CloseReason, ConnId, Request, Response, Route};
use crate::loops::Stats;
use crate::server::body::{Gathered, gather};
use crate::server::dispatch::{
    Decision, Form, Head, Opening, answer_by, dispatch, error_response, too_large,
};
use crate::server::env::Call;
use crate::server::fields::{app_headers, app_method, joined_cookies, split_target};
use crate::server::guard::guarded;

impl H2Session {
    /// Bytes from the client.
    pub(in crate::server) fn input<A: App>(&mut self, c: &mut Call<'_, '_, A>, data: &[u8], now: Instant) {
        if self.conn.is_closed() {
            return;
        }
        let mut events = Vec::new();
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        let unsent = out.len();
        if self.partial.is_empty() {
            let used = out.write_with(pool, |o| self.conn.receive_queued(data, unsent, o, &mut events));
            self.partial
                .extend_from_slice(data.get(used..).unwrap_or_default());
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(data);
            let used = out.write_with(pool, |o| self.conn.receive_queued(&buf, unsent, o, &mut events));
            buf.drain(..used.min(buf.len()));
            self.partial = buf;
        }
        if self.conn.is_closed() {
            self.partial = Vec::new();
        }
        for event in events {
            self.event(c, event, now);
        }
        self.after(c, now);
    }

    fn event<A: App>(&mut self, c: &mut Call<'_, '_, A>, event: H2Event, now: Instant) {
        let id = c.id;
        match event {
            H2Event::Request {
                stream,
                request,
                end_stream,
            } => self.request(c, stream, request, end_stream, now),
            H2Event::Data {
                stream,
                data,
                end_stream,
            } => self.data(c, stream, data, end_stream, now),
            H2Event::Trailers { stream, .. } => self.data(c, stream, Vec::new(), true, now),
            H2Event::Reset { stream, code, .. } => {
                debug!("HTTP/2 stream {stream} reset: {code:?}");
                self.gone(id.with_stream(stream), c, CloseReason::Dropped, now);
            }
            H2Event::WindowOpened { stream } => self.send_ready(c, (stream != 0).then_some(stream)),
            H2Event::ConnectionError(error) => debug!("HTTP/2 connection error: {error}"),
            _ => {}
        }
    }

    /// A new stream's request.
    fn request<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        request: H2Request,
        end_stream: bool,
        now: Instant,
    ) {
        Stats::add(&c.env.stats().h2_streams, 1);
        // A request is what keeps a connection from being idle, whatever
        // becomes of it.
        self.deadline = now + c.env.config.keep_alive_timeout;
        let max_body = c.env.config.max_request_body;
        let websocket = request.is_extended_connect("websocket");
        self.streams.insert(stream, H2Stream::new(Kind::Answered));
        if end_stream || websocket {
            return self.dispatch_request(c, stream, &request, &[], now);
        }
        let announced = request
            .field("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let head_only = request.method == "HEAD";
        if announced.is_some_and(|n| n > max_body as u64) {
            let answer = body_too_large(c, &request, now);
            let out = c.link.queue(&mut c.env.pool);
            self.refuse_with(c.env, out, stream, &answer, head_only, None);
            return;
        }
        // The head is in and the body is not: a request refused whatever
        // its body is answered now, its body never read.
        let cookie = joined_cookies(&request);
        let headers = app_headers(&request, &cookie);
        let (path, query) = split_target(&request);
        let app_request = Request {
            method: app_method(&request),
            path,
            query,
            headers: &headers,
            admin: c.link.admin,
            secure: c.link.secure,
            peer: c
                .env
                .config
                .trusted_proxies
                .client(c.socket.peer_addr(), &headers),
        };
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        let before = guarded(&peers.own().stats, "before_body", || {
            app.head_before_body(&mut ctx, &app_request)
        })
        .unwrap_or_else(|| Err(Response::text(500, "500 Internal Server Error\n")));
        let kept = match before {
            Ok(kept) => kept,
            Err(refusal) => {
                let discard = announced.map_or(Some(REFUSED_BODY_DISCARD), |n| {
                    usize::try_from(n).ok().filter(|&n| n <= REFUSED_BODY_DISCARD)
                });
                let out = c.link.queue(&mut c.env.pool);
                self.refuse_with(c.env, out, stream, &refusal, head_only, discard);
                return;
            }
        };
        if let Some(s) = self.streams.get_mut(&stream) {
            s.kind = Kind::Body {
                request: Box::new(request),
                body: Vec::new(),
                kept,
            };
        }
    }

    /// Body bytes (or, empty with `end_stream`, the end of a body).
    fn data<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        mut data: Vec<u8>,
        end_stream: bool,
        now: Instant,
    ) {
        let id = c.id;
        let max_body = c.env.config.max_request_body;
        let budget = c.env.config.request_bodies_per_connection.max(max_body);
        let len = data.len();
        let pool = &mut c.env.pool;
        let out = c.link.queue(pool);
        // Every byte delivered is given back to the windows, whatever
        // becomes of it: the body is copied (and bounded below), and
        // anything else is not wanted. A WebSocket's input gets the
        // connection's window back now, and the stream's once handled
        // (held back while the answers it made wait unsent).
        let websocket = !self.discarding.contains_key(&stream)
            && matches!(
                self.streams.get(&stream).map(|s| &s.kind),
                Some(Kind::WebSocket(_))
            );
        if websocket {
            out.write_with(pool, |o| self.conn.release_connection(len, o));
        } else {
            out.write_with(pool, |o| self.conn.release(stream, len, o));
        }
        if let Some(discard) = self.discarding.get_mut(&stream) {
            // The body of a request already answered.
            match discard.left.checked_sub(len) {
                Some(rest) if !end_stream => discard.left = rest,
                Some(_) => {
                    self.discarding.remove(&stream);
                }
                None => {
                    self.discarding.remove(&stream);
                    self.refuse(stream, ErrorCode::NO_ERROR, out, pool);
                }
            }
            return;
        }
        let held = self.body_bytes();
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        match &mut s.kind {
            Kind::Body { body, request, kept } => {
                if body.len().saturating_add(len) > max_body {
                    if let Some(key) = kept.take() {
                        c.app.release(key);
                    }
                    let head_only = request.method == "HEAD";
                    let request = request.clone();
                    let answer = body_too_large(c, &request, now);
                    let out = c.link.queue(&mut c.env.pool);
                    self.refuse_with(c.env, out, stream, &answer, head_only, None);
                    return;
                }
                if end_stream && body.is_empty() {
                    // The whole body in one frame: no copy.
                    let Kind::Body { request, kept, .. } = std::mem::replace(&mut s.kind, Kind::Answered)
                    else {
                        return;
                    };
                    let kept = kept.map(Route::Handler);
                    return self.route_request(c, stream, &request, &data, kept, now);
                }
                if gather(body, &data, held, max_body, budget) != Gathered::Taken {
                    if let Some(key) = kept.take() {
                        c.app.release(key);
                    }
                    self.refuse_body(c.env, out, stream);
                    return;
                }
                if end_stream {
                    let Kind::Body { request, body, kept } = std::mem::replace(&mut s.kind, Kind::Answered)
                    else {
                        return;
                    };
                    let kept = kept.map(Route::Handler);
                    self.route_request(c, stream, &request, &body, kept, now);
                }
            }
            Kind::WebSocket(_) => {
                if !data.is_empty() {
                    self.ws_input(c, stream, &mut data, now);
                }
                let limit = c.env.config.max_output;
                let pool = &mut c.env.pool;
                let out = c.link.queue(pool);
                self.consumed(stream, len, limit, out, pool);
                if end_stream && self.streams.contains_key(&stream) {
                    // The client will send nothing more: a WebSocket
                    // without its close handshake.
                    self.reset(
                        id.with_stream(stream),
                        c,
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
    fn dispatch_request<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        h2_request: &H2Request,
        body: &[u8],
        now: Instant,
    ) {
        self.route_request(c, stream, h2_request, body, None, now);
    }

    /// The application lets the request it held on a stream go on as
    /// `route`.
    pub(in crate::server) fn proceed<A: App>(
        &mut self,
        sid: ConnId,
        c: &mut Call<'_, '_, A>,
        route: Route,
        now: Instant,
    ) {
        let stream = sid.stream();
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let Kind::Waiting { held: Some(_), .. } = &s.kind else {
            return;
        };
        let Kind::Waiting {
            held: Some(held),
            tag,
            ..
        } = std::mem::replace(&mut s.kind, Kind::Answered)
        else {
            return;
        };
        let (request, body) = *held;
        let route = c.app.proceed_route(sid, route, tag);
        self.route_request(c, stream, &request, &body, Some(route), now);
        c.mark_dirty();
    }

    /// Routes a request, or lets a held one go on as `released`.
    fn route_request<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        stream: u32,
        h2_request: &H2Request,
        body: &[u8],
        released: Option<Route<u32>>,
        now: Instant,
    ) {
        let id = c.id;
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
                admin: c.link.admin,
                secure: c.link.secure,
                peer: c
                    .env
                    .config
                    .trusted_proxies
                    .client(c.socket.peer_addr(), &headers),
            },
            form,
        };
        let head_only = head.head_only();
        let closing_sessions = c.env.closing_sessions;
        let decision = {
            let (app, mut ctx) = c.detached(now);
            dispatch(app, &mut ctx, sid, &head, body, closing_sessions, released)
        };
        let answer = match decision {
            Decision::Answer(answer) => answer.into_response(),
            // A WebSocket over HTTP/2 is an extended CONNECT.
            Decision::Upgrade(tag) if !websocket => {
                c.app.release(tag);
                error_response(426)
            }
            Decision::Upgrade(tag) => {
                let opening = Opening {
                    request: &head.request,
                    tag,
                };
                return self.accept_websocket(c, stream, h2_request, opening, now);
            }
            Decision::EventStream {
                tag,
                mut headers,
                compress,
            } => {
                let opening = Opening {
                    request: &head.request,
                    tag,
                };
                let coding = sse_coding::negotiate(&c.env.config, &head.request, compress, &mut headers);
                return self.start_stream(c, stream, opening, (&headers, coding), head_only, now);
            }
            Decision::Later { tag, wait, held } => {
                let deadline = answer_by(now, wait);
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.kind = Kind::Waiting {
                        tag,
                        head_only,
                        deadline,
                        held: held.then(|| Box::new((h2_request.clone(), body.to_vec()))),
                    };
                } else {
                    c.app.release(tag);
                    return;
                }
                if closing_sessions && let Some(response) = c.shutdown_answer(sid, tag, now) {
                    self.respond_later(sid, c, &response);
                }
                return;
            }
        };
        let out = c.link.queue(&mut c.env.pool);
        self.answer(c.env, out, stream, &answer, head_only);
    }
}

/// The answer to a request whose body is over the largest body (see
/// [`too_large`]).
fn body_too_large<A: App>(c: &mut Call<'_, '_, A>, request: &H2Request, now: Instant) -> Response {
    let cookie = joined_cookies(request);
    let headers = app_headers(request, &cookie);
    let (path, query) = split_target(request);
    let app_request = Request {
        method: app_method(request),
        path,
        query,
        headers: &headers,
        admin: c.link.admin,
        secure: c.link.secure,
        peer: c
            .env
            .config
            .trusted_proxies
            .client(c.socket.peer_addr(), &headers),
    };
    let limit = c.env.config.max_request_body;
    let (app, ctx) = c.detached(now);
    let peers = ctx.peers;
    too_large(app, &peers.own().stats, &app_request, limit)
}
