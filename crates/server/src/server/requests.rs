//! Plain HTTP/1.1 on a connection: request heads (pipelined, kept alive),
//! bodies, routing, and the responses the server or the application gives,
//! now or later.

use std::mem;
use std::time::Instant;

use log::debug;

use super::dispatch::{Decision, Form, Head, answer_by};
use super::env::LoopEnv;
use super::{Deferred, MAX_HEADERS, Next, Server, State, guarded, live};
use crate::app::{App, ConnId, Request, Response};
use crate::http;

impl<A: App> Server<A> {
    /// Handles bytes on a plain HTTP connection: as many complete requests
    /// as they hold, keeping an unfinished one for the next read.
    pub(super) fn http_input(&mut self, id: ConnId, data: &[u8], now: Instant) {
        let pipeline_limit = self.env.config.max_request_head + self.env.config.max_request_body;
        let Some(conn) = self.conn_mut(id) else { return };
        let State::Http { partial, waiting, .. } = &mut conn.state else {
            return;
        };
        if waiting.is_some() {
            // A pipelined request behind one the application has not
            // answered yet: keep it, within the limits of one request.
            if partial.len() + data.len() > pipeline_limit {
                // The pipelined request is not parsed: its method is unknown.
                self.http_error(id, 413, false);
            } else {
                partial.extend_from_slice(data);
            }
            return;
        }
        // How much of an unfinished request was already buffered.
        let owned_len = partial.len();
        let owned;
        let buf: &[u8] = if partial.is_empty() {
            data
        } else {
            partial.extend_from_slice(data);
            owned = mem::take(partial);
            &owned
        };
        // What is left to handle, and whether it starts a new request (not
        // the rest of one buffered before).
        let mut rest = buf;
        let mut starts_request = owned_len == 0;
        let limits = tether_http1::Limits::new()
            .max_head(self.env.config.max_request_head)
            .max_body(u64::try_from(self.env.config.max_request_body).unwrap_or(u64::MAX));
        // A chunked body, decoded; a body with a length is borrowed as it is.
        let mut decoded = Vec::new();
        while !rest.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let (head, head_len) = match tether_http1::parse_request(rest, &mut headers, &limits) {
                Ok(tether_http1::Status::Complete(parsed)) => parsed,
                Ok(tether_http1::Status::Partial) => {
                    return self.keep_partial(id, rest, starts_request, false, now);
                }
                Err(e) => {
                    debug!("bad request: {e}");
                    return self.http_error(id, e.status().unwrap_or(400), false);
                }
            };
            let after_head = rest.get(head_len..).unwrap_or_default();
            let body = match head.framing() {
                tether_http1::Framing::Length(length) => usize::try_from(length)
                    .ok()
                    .and_then(|length| after_head.get(..length))
                    .map(|body| (body, body.len())),
                framing => {
                    decoded.clear();
                    let mut decoder =
                        tether_http1::BodyDecoder::new(framing, limits.max_body, limits.max_head);
                    match decoder.decode(after_head, &mut decoded) {
                        Ok((used, true)) => Some((&decoded[..], used)),
                        Ok((_, false)) => None,
                        Err(e) => {
                            debug!("bad request body: {e}");
                            let head_only = head.method() == "HEAD";
                            return self.http_error(id, e.status().unwrap_or(400), head_only);
                        }
                    }
                }
            };
            let Some((body, body_len)) = body else {
                // The head is complete and the body is not: a request the
                // application refuses is answered now, its body unread
                // (and, with `Expect: 100-continue`, never sent).
                if let Some(refusal) = self.refuse_before_body(id, &head, now) {
                    let head_only = head.method() == "HEAD";
                    return self.respond_with(id, &refusal, head_only, true);
                }
                return self.keep_partial(id, rest, starts_request, head.expect_continue(), now);
            };
            if let Some(State::Http { head_checked, .. }) = self.conn_mut(id).map(|c| &mut c.state) {
                *head_checked = false;
            }
            let after = after_head.get(body_len..).unwrap_or_default();
            let next = self.handle_request(id, &head, body, after, now);
            rest = after;
            starts_request = true;
            match next {
                Next::Continue => {}
                Next::Stop => return,
                Next::Wait => {
                    if let Some(State::Http { partial, .. }) = self.conn_mut(id).map(|c| &mut c.state) {
                        partial.extend_from_slice(rest);
                    }
                    return;
                }
            }
        }
    }

    /// Shows the application the head of a request whose body is still to
    /// come, once per request: its refusal, if it has one.
    fn refuse_before_body(
        &mut self,
        id: ConnId,
        head: &tether_http1::RequestHead<'_, '_>,
        now: Instant,
    ) -> Option<Response> {
        let secure = self.is_tls(id);
        let conn = self.conn_mut(id)?;
        let admin = conn.admin;
        let State::Http { head_checked, .. } = &mut conn.state else {
            return None;
        };
        if std::mem::replace(head_checked, true) {
            return None;
        }
        let request = Request {
            method: head.method(),
            path: head.path(),
            query: head.query(),
            headers: head.headers(),
            admin,
            secure,
        };
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "refuse_before_body", || {
            app.refuse_before_body(&mut ctx, &request)
        })
        .unwrap_or_else(|| Some(Response::text(500, "500 Internal Server Error\n")))
    }

    /// Keeps the start of a request until the rest arrives. Once a request
    /// has begun it must be complete within the handshake timeout, whether
    /// it is the connection's first or a later keep-alive one.
    fn keep_partial(&mut self, id: ConnId, rest: &[u8], started: bool, expects_continue: bool, now: Instant) {
        let head_deadline = now + self.env.config.handshake_timeout;
        let mut send_continue = false;
        if let Some(State::Http {
            partial,
            deadline,
            continued,
            ..
        }) = self.conn_mut(id).map(|c| &mut c.state)
        {
            partial.clear();
            partial.extend_from_slice(rest);
            if started {
                *continued = false;
                if head_deadline < *deadline {
                    *deadline = head_deadline;
                }
            }
            if expects_continue && !*continued {
                *continued = true;
                send_continue = true;
            }
        }
        if send_continue {
            self.respond(
                id,
                |out| out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"),
                false,
            );
        }
        self.mark_dirty(id);
    }

    /// Answers with an error and closes; `head_only` for a HEAD request,
    /// whose answer has no body.
    pub(super) fn http_error(&mut self, id: ConnId, status: u16, head_only: bool) {
        self.respond(id, |out| http::write_error(out, status, &[], head_only), true);
    }

    /// Appends a response to a connection's output, optionally closing
    /// after it.
    pub(super) fn respond(&mut self, id: ConnId, write: impl FnOnce(&mut Vec<u8>), close: bool) {
        let max_output = self.env.config.max_output;
        let Self { conns, env, .. } = self;
        let LoopEnv { pool, .. } = env;
        let Some(conn) = live(conns, id) else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        out.write_with(pool, write);
        // A client that pipelines requests and does not read the answers
        // is not read either until it has taken half of them: what it
        // costs stays within the output limit and one read's worth.
        if out.len() > max_output {
            conn.paused = true;
        }
        if close {
            conn.closing = true;
        }
        self.mark_dirty(id);
    }

    fn respond_with(&mut self, id: ConnId, response: &Response, head_only: bool, close: bool) {
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.respond(
            id,
            |out| {
                http::write_response(
                    out,
                    response.status,
                    &headers,
                    &response.content_type,
                    &response.body,
                    head_only,
                    close,
                )
            },
            close,
        );
    }

    fn handle_request(
        &mut self,
        id: ConnId,
        head: &tether_http1::RequestHead<'_, '_>,
        body: &[u8],
        rest: &[u8],
        now: Instant,
    ) -> Next {
        let form = match head.form() {
            tether_http1::TargetForm::Asterisk => Form::Asterisk,
            tether_http1::TargetForm::Authority => Form::Connect,
            tether_http1::TargetForm::Origin | tether_http1::TargetForm::Absolute => Form::Origin,
        };
        let request = Head {
            request: Request {
                method: head.method(),
                path: head.path(),
                query: head.query(),
                headers: head.headers(),
                admin: self.conn_mut(id).is_some_and(|c| c.admin),
                secure: self.is_tls(id),
            },
            form,
        };
        // Once a shutdown has begun, every answer closes its connection.
        let keep_alive = head.keep_alive() && self.shutdown.is_none();
        let head_only = request.head_only();
        match self.dispatch(id, &request, body, now) {
            Decision::Respond(response) => self.respond_with(id, &response, head_only, !keep_alive),
            Decision::Page { content_type, body } => {
                self.respond(
                    id,
                    |out| {
                        http::write_response(
                            out,
                            200,
                            &[("Cache-Control", "no-cache")],
                            content_type,
                            body,
                            head_only,
                            !keep_alive,
                        )
                    },
                    !keep_alive,
                );
            }
            Decision::Fail { status, retry_after } => {
                let extra: &[(&str, &str)] = if retry_after { &[("Retry-After", "1")] } else { &[] };
                self.respond(id, |out| http::write_error(out, status, extra, head_only), true);
                return Next::Stop;
            }
            Decision::Upgrade(tag) => {
                self.upgrade(id, head, &request.request, tag, rest, now);
                return Next::Stop;
            }
            Decision::EventStream { headers, .. } if head_only => {
                // GET's head, and no stream: nothing follows it, so the
                // connection goes on to the next request.
                self.respond(
                    id,
                    |out| http::write_sse_head(out, &headers, !keep_alive),
                    !keep_alive,
                );
            }
            Decision::EventStream { tag, headers } => {
                self.start_stream(id, &request.request, tag, &headers, now);
                return Next::Stop;
            }
            Decision::Later { tag, wait } => {
                if let Some(State::Http {
                    waiting, deadline, ..
                }) = self.conn_mut(id).map(|c| &mut c.state)
                {
                    *waiting = Some(Deferred {
                        tag,
                        close: !keep_alive,
                        head_only,
                    });
                    *deadline = answer_by(now, wait);
                }
                if self.closing_sessions() {
                    self.answer_at_shutdown(id, tag, now);
                }
                self.mark_dirty(id);
                return Next::Wait;
            }
        }
        if !keep_alive {
            return Next::Stop;
        }
        let keep_alive_deadline = now + self.env.config.keep_alive_timeout;
        if let Some(State::Http { deadline, .. }) = self.conn_mut(id).map(|c| &mut c.state) {
            *deadline = keep_alive_deadline;
        }
        Next::Continue
    }

    /// [`Server::respond_later`] on an HTTP/1.1 connection: the answer,
    /// then any request that arrived behind it.
    pub(super) fn conn_respond_later(&mut self, id: ConnId, response: &Response, now: Instant) {
        let keep_alive_deadline = now + self.env.config.keep_alive_timeout;
        let Some(State::Http {
            waiting,
            deadline,
            partial,
            ..
        }) = self.conn_mut(id).map(|c| &mut c.state)
        else {
            return;
        };
        let Some(deferred) = waiting.take() else { return };
        *deadline = keep_alive_deadline;
        let pipelined = !partial.is_empty();
        self.respond_with(id, response, deferred.head_only, deferred.close);
        if deferred.close {
            return;
        }
        if pipelined {
            self.http_input(id, &[], now);
        }
        // Reading stopped while the request waited: go on with what the
        // socket holds, unless the next request waits in turn.
        if self.conn_mut(id).is_some_and(|c| !c.awaits_answer()) {
            self.backlog.push(id);
        }
    }

    /// A deferred request's time is up: the application gives its answer.
    pub(super) fn request_timed_out(&mut self, id: ConnId, tag: u32, now: Instant) {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let response = guarded(&peers.own().stats, "on_request_timeout", || {
            app.on_request_timeout(&mut ctx, id, tag)
        })
        .unwrap_or_else(|| Response::text(500, "500 Internal Server Error\n"));
        self.respond_later(id, &response, now);
    }
}
