//! An HTTP/3 request from its head to its answer: the endpoint's events
//! read, a request's body gathered (bounded as on the other versions), the
//! head turned into a [`Head`] for the one dispatch, and the decision
//! carried out on the request stream.

use crate::app::sse_coding;
use crate::server::hosted::Hosted;
use std::time::Instant;

use log::debug;
use tether_h2::connection::Request as FieldRequest;
use tether_h3::ErrorCode;
use tether_h3::session::SessionEvent;
use tether_quic::{ConnectionHandle, ServerEvent};

use super::webtransport::client_close_reason;
use super::{H3Endpoint, Kind, detached, shutdown_answer};
use crate::app::{App, CloseReason, Request, Response, Route};
use crate::loops::Stats;
use crate::server::body::{self, Gathered};
use crate::server::dispatch::{
    Decision, Form, Head, Opening, answer_by, dispatch, error_response, too_large,
};
use crate::server::env::{Lent, LoopEnv};
use crate::server::fields::{app_headers, app_method, header_fields, joined_cookies, split_target};
use crate::server::guard::guarded;

impl H3Endpoint {
    /// Everything the endpoint has to say: connections opened and closed,
    /// requests, their bodies and their ends.
    pub(super) fn handle_events<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        now: Instant,
    ) {
        while let Some(event) = self.server.poll_event() {
            let conn = event.conn();
            self.contained(app, env, conn, "an HTTP/3 event", now, |endpoint, app, env| {
                endpoint.handle_event(app, env, event, now);
            });
        }
    }

    fn handle_event<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        event: ServerEvent,
        now: Instant,
    ) {
        #[cfg(test)]
        if let ServerEvent::Session { conn, .. } = &event {
            crate::server::inject::check_h3(self.server.remote_address(*conn));
        }
        match event {
            ServerEvent::Connected { conn, remote } => {
                debug!("HTTP/3 connection from {remote}");
                self.conn(conn);
            }
            ServerEvent::Session { conn, event } => {
                self.session_event(&mut Lent { app, env, now }, conn, event)
            }
            ServerEvent::Closed { conn, reason } => {
                debug!("HTTP/3 connection closed: {reason}");
                self.closed(app, env, conn, now);
            }
            ServerEvent::Writable { .. } => {}
        }
    }

    fn session_event<A: App>(&mut self, l: &mut Lent<'_, A>, conn: ConnectionHandle, event: SessionEvent) {
        let now = l.now;
        match event {
            SessionEvent::Request { stream_id, request } => self.request(l, conn, stream_id, request),
            SessionEvent::Data { stream_id, mut data } => {
                if let Some(Kind::WebSocket(_)) = self.kind_mut(conn, stream_id) {
                    self.ws_input(l, conn, stream_id, &mut data);
                } else {
                    self.data(l, conn, stream_id, &data);
                }
            }
            SessionEvent::End { stream_id } => {
                let streams = &mut self.conn(conn).streams;
                if let Some(Kind::Body { .. }) = streams.get(&stream_id)
                    && let Some(Kind::Body {
                        request, body, kept, ..
                    }) = streams.remove(&stream_id)
                {
                    let kept = kept.map(Route::Handler);
                    self.route_request(l, conn, stream_id, &request, &body, kept);
                } else if let Some(Kind::Discarding) = streams.get(&stream_id) {
                    streams.remove(&stream_id);
                } else if let Some(Kind::WebSocket(_)) = streams.get(&stream_id) {
                    // The client sends nothing more: a WebSocket without
                    // its close handshake.
                    self.server.reset(now, conn, stream_id, ErrorCode::H3_NO_ERROR);
                    self.gone(l, conn, stream_id, CloseReason::Dropped);
                }
            }
            SessionEvent::HeadTooLarge { stream_id } => {
                self.answer(now, conn, stream_id, &error_response(431), false);
            }
            SessionEvent::StreamError { stream_id, .. } | SessionEvent::Cancelled { stream_id, .. } => {
                self.wt_stream_reset(conn, stream_id);
                self.gone(l, conn, stream_id, CloseReason::Dropped);
            }
            SessionEvent::WebTransportStream {
                stream_id,
                session_id,
                bidirectional,
            } => self.wt_stream(conn, stream_id, session_id, bidirectional, now),
            SessionEvent::WebTransportData { stream_id, data, fin } => {
                self.wt_data(l, conn, stream_id, &data, fin);
            }
            SessionEvent::WebTransportReset { stream_id, .. }
            | SessionEvent::StopSending { stream_id, .. } => {
                self.wt_stream_reset(conn, stream_id);
            }
            SessionEvent::WebTransportStopped { target, .. } => self.wt_stopped(l, conn, target),
            SessionEvent::WebTransportClosed { session_id, close } => {
                let reason = client_close_reason(close.as_ref());
                self.gone(l, conn, session_id, reason);
            }
            // Datagrams from clients are not used: the session counted
            // them, and they are dropped.
            SessionEvent::Datagram { .. } => {}
            // Trailers carry nothing the application is given; the
            // control stream's news is the session's business.
            _ => {}
        }
    }

    /// A request's head: a CONNECT is judged at once (there is no body to
    /// wait for), any other request once its body is in.
    fn request<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        request: FieldRequest,
    ) {
        let now = l.now;
        self.conn(conn);
        if self.id_of(conn, stream_id).is_none() {
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_REQUEST_REJECTED);
            return;
        }
        if request.method == "CONNECT" {
            return self.route_request(l, conn, stream_id, &request, &[], None);
        }
        let announced = request
            .field("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > l.env.config.max_request_body as u64) {
            let head_only = request.method == "HEAD";
            let answer = self.body_too_large(l.app, l.env, conn, &request, now);
            self.conn(conn).streams.insert(stream_id, Kind::Discarding);
            self.answer(now, conn, stream_id, &answer, head_only);
            return;
        }
        self.conn(conn).streams.insert(
            stream_id,
            Kind::Body {
                request: Box::new(request),
                body: Vec::new(),
                asked: false,
                kept: None,
            },
        );
    }

    /// The answer to a request whose body is over the largest body (see
    /// [`too_large`]).
    fn body_too_large<A: App>(
        &self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        conn: ConnectionHandle,
        request: &FieldRequest,
        now: Instant,
    ) -> Response {
        let cookie = joined_cookies(request);
        let headers = app_headers(request, &cookie);
        let (path, query) = split_target(request);
        let app_request = Request {
            method: app_method(request),
            path,
            query,
            headers: &headers,
            admin: false,
            secure: true,
            peer: env
                .config
                .trusted_proxies
                .client(self.server.remote_address(conn), &headers),
        };
        let limit = env.config.max_request_body;
        let (app, ctx) = detached(app, env, now);
        let peers = ctx.peers;
        too_large(app, &peers.own().stats, &app_request, limit)
    }

    /// A piece of a request's body: the first one asks the application
    /// whether it refuses the request whatever its body is; a body past
    /// the limit is answered 413 and the rest dropped.
    fn data<A: App>(&mut self, l: &mut Lent<'_, A>, conn: ConnectionHandle, stream_id: u64, data: &[u8]) {
        let now = l.now;
        let max_body = l.env.config.max_request_body;
        let budget = l.env.config.request_bodies_per_connection.max(max_body);
        let streams = &mut self.conn(conn).streams;
        let held = body::held(streams.values().filter_map(|kind| match kind {
            Kind::Body { body, .. } => Some(body),
            _ => None,
        }));
        let Some(Kind::Body {
            request, body, asked, ..
        }) = streams.get_mut(&stream_id)
        else {
            return;
        };
        let head_only = request.method == "HEAD";
        let gathered = body::gather(body, data, held, max_body, budget);
        let first = !std::mem::replace(asked, true);
        match gathered {
            Gathered::Taken => {}
            Gathered::TooLong => {
                let request = request.clone();
                let answer = self.body_too_large(l.app, l.env, conn, &request, now);
                let body = self.conn(conn).streams.insert(stream_id, Kind::Discarding);
                self.released.extend(body.as_ref().and_then(Kind::state));
                self.answer(now, conn, stream_id, &answer, head_only);
                return;
            }
            Gathered::OverBudget => {
                debug!("HTTP/3 stream {stream_id}: request bodies at their limit; H3_REQUEST_REJECTED");
                Stats::add(&l.env.stats().h3_refused_bodies, 1);
                let body = self.conn(conn).streams.remove(&stream_id);
                self.released.extend(body.as_ref().and_then(Kind::state));
                self.server
                    .reset(now, conn, stream_id, ErrorCode::H3_REQUEST_REJECTED);
                return;
            }
        }
        if !first {
            return;
        }
        let Some(Kind::Body { request, .. }) = self.conns.get(&conn).and_then(|c| c.streams.get(&stream_id))
        else {
            return;
        };
        let cookie = joined_cookies(request);
        let headers = app_headers(request, &cookie);
        let (path, query) = split_target(request);
        let app_request = Request {
            method: app_method(request),
            path,
            query,
            headers: &headers,
            admin: false,
            secure: true,
            peer: l
                .env
                .config
                .trusted_proxies
                .client(self.server.remote_address(conn), &headers),
        };
        let (app, mut ctx) = l.detached();
        let peers = ctx.peers;
        let before = guarded(&peers.own().stats, "before_body", || {
            app.head_before_body(&mut ctx, &app_request)
        })
        .unwrap_or_else(|| Err(Response::text(500, "500 Internal Server Error\n")));
        match before {
            Ok(state) => {
                if let Some(Kind::Body { kept, .. }) = self.kind_mut(conn, stream_id) {
                    *kept = state;
                }
            }
            Err(refusal) => {
                self.conn(conn).streams.insert(stream_id, Kind::Discarding);
                self.answer(now, conn, stream_id, &refusal, head_only);
            }
        }
    }

    /// Routes a complete request, or lets a held one go on as `released`,
    /// and carries out the decision on its stream.
    pub(super) fn route_request<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        request: &FieldRequest,
        body: &[u8],
        released: Option<Route<u32>>,
    ) {
        let now = l.now;
        let Some(sid) = self.id_of(conn, stream_id) else {
            return;
        };
        let cookie = joined_cookies(request);
        let headers = app_headers(request, &cookie);
        let (path, query) = split_target(request);
        let websocket = request.is_extended_connect("websocket");
        let webtransport = request.is_extended_connect(tether_h3::webtransport::PROTOCOL);
        // A WebTransport session is served as the WebSocket its route
        // names.
        let form = if websocket || webtransport {
            Form::ConnectWebSocket
        } else if request.method == "CONNECT" {
            Form::Connect
        } else if request.method == "OPTIONS" && path == "*" {
            Form::Asterisk
        } else {
            Form::Origin
        };
        let head = Head {
            request: Request {
                method: app_method(request),
                path,
                query,
                headers: &headers,
                admin: false,
                secure: true,
                peer: l
                    .env
                    .config
                    .trusted_proxies
                    .client(self.server.remote_address(conn), &headers),
            },
            form,
        };
        let head_only = head.head_only();
        let closing_sessions = l.env.closing_sessions;
        let decision = {
            let (app, mut ctx) = l.detached();
            dispatch(app, &mut ctx, sid, &head, body, closing_sessions, released)
        };
        let answer = match decision {
            Decision::Answer(answer) => answer.into_response(),
            // A WebSocket over HTTP/3 is an extended CONNECT.
            Decision::Upgrade(tag) if !websocket && !webtransport => {
                l.app.release(tag);
                error_response(426)
            }
            Decision::Upgrade(tag) if webtransport => {
                let opening = Opening {
                    request: &head.request,
                    tag,
                };
                return self.accept_webtransport(l, conn, stream_id, request, opening);
            }
            Decision::Upgrade(tag) => {
                let opening = Opening {
                    request: &head.request,
                    tag,
                };
                return self.accept_websocket(l, conn, stream_id, request, opening);
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
                let coding = sse_coding::negotiate(&l.env.config, &head.request, compress, &mut headers);
                return self.start_stream(l, conn, stream_id, opening, (&headers, coding), head_only);
            }
            Decision::Later { tag, wait, held } => {
                let deadline = answer_by(now, wait);
                self.conn(conn).streams.insert(
                    stream_id,
                    Kind::Waiting {
                        tag,
                        head_only,
                        deadline,
                        held: held.then(|| Box::new((request.clone(), body.to_vec()))),
                    },
                );
                self.due_by(Some(deadline));
                if closing_sessions && let Some(response) = shutdown_answer(l.app, l.env, sid, tag, now) {
                    self.respond_later(sid, &response, now);
                }
                return;
            }
        };
        self.answer(now, conn, stream_id, &answer, head_only);
    }

    /// Sends a whole response on a request stream, which is forgotten
    /// (the endpoint sends what it holds of it, then ends it); a stream
    /// already answered before its body was read stays to drop the rest.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        stream_id: u64,
        response: &Response,
        head_only: bool,
    ) {
        if let Some(held) = self.conns.get_mut(&conn)
            && !matches!(held.streams.get(&stream_id), Some(Kind::Discarding))
            && let Some(kind) = held.streams.remove(&stream_id)
        {
            // Answered: the request is over.
            self.released.extend(kind.state());
        }
        let fields = header_fields(
            &response.content_type,
            Some(response.body.len()),
            response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let sent = self
            .server
            .send_head(now, conn, stream_id, response.status, &fields)
            .and_then(|()| {
                if head_only || response.body.is_empty() {
                    Ok(())
                } else {
                    self.server.send_data(now, conn, stream_id, &response.body)
                }
            })
            .and_then(|()| self.server.finish(now, conn, stream_id));
        if let Err(e) = sent {
            debug!("HTTP/3 answer on stream {stream_id}: {e}");
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_INTERNAL_ERROR);
        }
    }

    /// A connection is gone: every stream it had is, telling the
    /// application.
    pub(super) fn closed<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        conn: ConnectionHandle,
        now: Instant,
    ) {
        let streams: Vec<u64> = self
            .conns
            .get(&conn)
            .map(|c| c.streams.keys().copied().collect())
            .unwrap_or_default();
        for stream_id in streams {
            self.gone(&mut Lent { app, env, now }, conn, stream_id, CloseReason::Dropped);
        }
        if let Some(gone) = self.conns.remove(&conn) {
            self.released
                .extend(gone.streams.values().filter_map(Kind::state));
        }
    }
}
