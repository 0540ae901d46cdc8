//! Plain HTTP/1.1 on a connection: request heads (pipelined, kept alive),
//! bodies, routing through the one dispatch, and the responses the server
//! or the application gives, now or later.

use std::mem;
use std::time::Instant;

use log::debug;

use super::pending::{PendingBody, take_length};
use super::state::{Deferred, H1Conn, Requests};
use crate::app::sse_coding;
use crate::app::{App, Request, Response, Route};
use crate::http;
use crate::server::dispatch::{Answer, Decision, Form, Head, Opening, answer_by, dispatch, too_large};
use crate::server::env::Call;
use crate::server::guard::guarded;
use crate::server::link::Link;
use crate::transport::Stream;

/// Header lines accepted in a request head.
const MAX_HEADERS: usize = 64;

/// Whether a chunked body took more than `limit` bytes of framing (size
/// lines, extensions, line ends, trailers) beside its `data` bytes: the
/// body limit bounds what it decodes to, this what it may cost to read.
fn framing_over(wire: usize, data: usize, limit: usize) -> bool {
    wire.saturating_sub(data) > limit
}

/// The most framing one chunked request body may carry: a trailer section
/// of a head's size and as much again as the body limit, which is room for
/// a full-size body in chunks of a few bytes each (see
/// [`crate::Config::max_request_body`]).
fn max_chunk_framing(config: &crate::config::Config) -> usize {
    config.max_request_head.saturating_add(config.max_request_body)
}

/// What bounds the reading of one request, from the configuration: its
/// head and body, and the framing a chunked body may carry beside it.
struct ReadLimits {
    parse: tether_http1::Limits,
    max_framing: usize,
}

impl ReadLimits {
    fn of(config: &crate::config::Config) -> Self {
        ReadLimits {
            parse: tether_http1::Limits::new()
                .max_head(config.max_request_head)
                .max_body(u64::try_from(config.max_request_body).unwrap_or(u64::MAX)),
            max_framing: max_chunk_framing(config),
        }
    }
}

/// One complete request as it lies in what was read: its head, its body,
/// how many bytes the two took, and what follows them.
struct Complete<'r, 'h, 'b> {
    head: &'r tether_http1::RequestHead<'h, 'b>,
    body: &'r [u8],
    len: usize,
    rest: &'r [u8],
}

/// What to do after one HTTP request.
enum Next {
    /// Parse the next pipelined request.
    Continue,
    /// The connection is no longer plain HTTP (or is closing).
    Stop,
    /// The application answers this request later: keep what follows.
    Wait,
    /// The application decides later: keep the request and what follows.
    Hold,
}

impl H1Conn {
    /// The requests' state, while the connection is in that phase.
    fn requests(&mut self) -> Option<&mut Requests> {
        match self {
            H1Conn::Requests(requests) => Some(requests),
            _ => None,
        }
    }

    /// Handles bytes on a plain HTTP connection: as many complete requests
    /// as they hold, keeping an unfinished one for the next read.
    pub(in crate::server) fn requests_input<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        data: &[u8],
        now: Instant,
    ) {
        self.input_released(c, data, None, now);
    }

    /// [`H1Conn::requests_input`], the first complete request going on as
    /// `released` when the application chose its route (it was held).
    fn input_released<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        data: &[u8],
        mut released: Option<Route<u32>>,
        now: Instant,
    ) {
        let config = &c.env.config;
        let pipeline_limit = config.max_request_head + config.max_request_body;
        let read_limits = ReadLimits::of(config);
        let (limits, max_framing) = (read_limits.parse, read_limits.max_framing);
        let Some(Requests {
            partial,
            waiting,
            body,
            stalled,
            ..
        }) = self.requests()
        else {
            return;
        };
        // What was left for later starts with a request of its own.
        let resumed = mem::take(stalled);
        if waiting.is_some() {
            // A pipelined request behind one the application has not
            // answered yet: keep it, within the limits of one request.
            if partial.len() + data.len() > pipeline_limit {
                // The pipelined request is not parsed: its method is unknown.
                error(c, 413, false);
            } else {
                partial.extend_from_slice(data);
            }
            return;
        }
        if let Some(body) = body.take() {
            let head = mem::take(partial);
            return self.body_input(c, head, body, data, &read_limits, now);
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
        let mut starts_request = owned_len == 0 || resumed;
        // A chunked body, decoded; a body with a length is borrowed as it is.
        let mut decoded = Vec::new();
        // The decoder of a chunked body still arriving.
        let mut unfinished = None;
        while !rest.is_empty() {
            if c.link.paused && released.is_none() {
                // The answers so far are over the output limit: the rest
                // waits, unparsed, until the client has read half of them
                // (a held request given its route still goes on).
                if let Some(requests) = self.requests() {
                    requests.partial.extend_from_slice(rest);
                    requests.stalled = true;
                }
                return;
            }
            let request_start = rest;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let (head, head_len) = match tether_http1::parse_request(rest, &mut headers, &limits) {
                Ok(tether_http1::Status::Complete(parsed)) => parsed,
                Ok(tether_http1::Status::Partial) => {
                    return self.keep_partial(c, rest, starts_request, false, now);
                }
                Err(e) => {
                    debug!("bad request: {e}");
                    if e.status() == Some(413) {
                        // The head is whole and its Content-Length over
                        // the limit: read it again, unbounded, so that the
                        // application may say it in its own shape.
                        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                        let unbounded = limits.max_body(u64::MAX);
                        if let Ok(tether_http1::Status::Complete((head, _))) =
                            tether_http1::parse_request(rest, &mut fields, &unbounded)
                        {
                            let answer = body_too_large(c, &head, now);
                            return respond_with(c, &answer, head.method() == "HEAD", true);
                        }
                    }
                    return error(c, e.status().unwrap_or(400), false);
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
                        Ok((used, _)) if framing_over(used, decoded.len(), max_framing) => {
                            return refuse_body(c, &head, &FRAMING_TOO_LARGE, now);
                        }
                        Ok((used, true)) => Some((&decoded[..], used)),
                        Ok((_, false)) => {
                            if framing == tether_http1::Framing::Chunked {
                                unfinished = Some(decoder);
                            }
                            None
                        }
                        Err(e) => return refuse_body(c, &head, &e, now),
                    }
                }
            };
            let Some((body, body_len)) = body else {
                // The head is complete and the body is not: a request the
                // application refuses is answered now, its body unread
                // (and, with `Expect: 100-continue`, never sent).
                if let Some(refusal) = self.refuse_before_body(c, &head, now) {
                    let head_only = head.method() == "HEAD";
                    return respond_with(c, &refusal, head_only, true);
                }
                let expects_continue = head.expect_continue();
                // The body goes on from where this read stopped: the head
                // alone is kept, and the body so far beside it (a chunked
                // body's decoder too), so that the next read costs only
                // its own bytes.
                let pending = match (unfinished, head.framing()) {
                    (Some(decoder), _) => PendingBody::Chunked {
                        decoder,
                        decoded: mem::take(&mut decoded),
                        wire: after_head.len(),
                    },
                    (None, tether_http1::Framing::Length(length)) => {
                        // The head's parse bounds `length` by the largest
                        // body.
                        let length = usize::try_from(length).unwrap_or(usize::MAX);
                        PendingBody::length(after_head, length)
                    }
                    _ => return self.keep_partial(c, rest, starts_request, expects_continue, now),
                };
                let head_bytes = rest.get(..head_len).unwrap_or_default();
                self.keep_partial(c, head_bytes, starts_request, expects_continue, now);
                if let Some(requests) = self.requests() {
                    requests.body = Some(Box::new(pending));
                }
                return;
            };
            if let Some(requests) = self.requests() {
                requests.head_checked = false;
                // A handler whose state was made of its head: its route.
                if let Some(key) = requests.kept.take() {
                    released = released.or(Some(Route::Handler(key)));
                }
            }
            let after = after_head.get(body_len..).unwrap_or_default();
            let len = request_start.len() - after.len();
            let complete = Complete {
                head: &head,
                body,
                len,
                rest: after,
            };
            let next = self.handle_request(c, &complete, released.take(), now);
            rest = after;
            starts_request = true;
            match next {
                Next::Continue => {}
                Next::Stop => return,
                Next::Wait => {
                    if let Some(requests) = self.requests() {
                        requests.partial.extend_from_slice(rest);
                    }
                    return;
                }
                Next::Hold => {
                    if let Some(requests) = self.requests() {
                        requests.partial.extend_from_slice(request_start);
                    }
                    return;
                }
            }
        }
    }

    /// Whether requests wait unanswered for the output to drain.
    pub(in crate::server) fn stalled(&self) -> bool {
        matches!(self, H1Conn::Requests(Requests { stalled: true, .. }))
    }

    /// Answers the requests that waited for the output to drain, once it
    /// has (as far as the output limit lets it, again).
    pub(in crate::server) fn resume<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) {
        if c.link.paused || !self.stalled() {
            return;
        }
        if c.link.closing {
            // Nothing more is answered on a closing connection.
            if let Some(requests) = self.requests() {
                requests.stalled = false;
                requests.partial.clear();
            }
            return;
        }
        self.requests_input(c, &[], now);
    }

    /// More of a body whose request's head is `head`: gathered (a chunked
    /// one decoded) on from where the last read stopped. Once it is whole,
    /// the request goes on as if it had come in one read (a chunked body
    /// in one chunk).
    fn body_input<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        head: Vec<u8>,
        mut body: Box<PendingBody>,
        data: &[u8],
        limits: &ReadLimits,
        now: Instant,
    ) {
        let fault = match &mut *body {
            PendingBody::Chunked {
                decoder,
                decoded,
                wire,
            } => match decoder.decode(data, decoded) {
                Ok((used, done)) => {
                    *wire = wire.saturating_add(used);
                    if framing_over(*wire, decoded.len(), limits.max_framing) {
                        Some(FRAMING_TOO_LARGE)
                    } else if done {
                        let mut whole = head;
                        whole.reserve(decoded.len() + 32 + data.len().saturating_sub(used));
                        if !decoded.is_empty() {
                            whole.extend_from_slice(format!("{:x}\r\n", decoded.len()).as_bytes());
                            whole.extend_from_slice(decoded);
                            whole.extend_from_slice(b"\r\n");
                        }
                        whole.extend_from_slice(b"0\r\n\r\n");
                        whole.extend_from_slice(data.get(used..).unwrap_or_default());
                        return self.whole_request(c, whole, now);
                    } else {
                        None
                    }
                }
                Err(e) => Some(e),
            },
            PendingBody::Length { body, length } => {
                let (used, done) = take_length(body, data, *length);
                if done {
                    let after = data.get(used..).unwrap_or_default();
                    let mut whole = head;
                    whole.reserve(body.len() + after.len());
                    whole.extend_from_slice(body);
                    whole.extend_from_slice(after);
                    return self.whole_request(c, whole, now);
                }
                None
            }
        };
        let Some(fault) = fault else {
            if let Some(requests) = self.requests() {
                requests.partial = head;
                requests.body = Some(body);
            }
            return c.env.mark_dirty(c.id, c.link);
        };
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match tether_http1::parse_request(&head, &mut fields, &limits.parse) {
            Ok(tether_http1::Status::Complete((head, _))) => refuse_body(c, &head, &fault, now),
            _ => error(c, 400, false),
        }
    }

    /// A request whose body has arrived, `whole` with what followed it in
    /// the same read: handled as if it had come at once (its body copied
    /// once more, with its head, not once per read).
    fn whole_request<A: App>(&mut self, c: &mut Call<'_, '_, A>, whole: Vec<u8>, now: Instant) {
        if let Some(requests) = self.requests() {
            requests.partial = whole;
        }
        self.input_released(c, &[], None, now)
    }

    /// Shows the application the head of a request whose body is still to
    /// come, once per request: its refusal, if it has one.
    fn refuse_before_body<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        head: &tether_http1::RequestHead<'_, '_>,
        now: Instant,
    ) -> Option<Response> {
        let requests = self.requests()?;
        if mem::replace(&mut requests.head_checked, true) {
            return None;
        }
        let request = app_request(head, c.link, c.socket, &c.env.config.trusted_proxies);
        let (app, mut ctx) = c.detached(now);
        let peers = ctx.peers;
        let before = guarded(&peers.own().stats, "before_body", || {
            app.head_before_body(&mut ctx, &request)
        });
        match before {
            Some(Ok(kept)) => {
                if let Some(requests) = self.requests() {
                    requests.kept = kept;
                }
                None
            }
            Some(Err(refusal)) => Some(refusal),
            None => Some(Response::text(500, "500 Internal Server Error\n")),
        }
    }

    /// Keeps the start of a request until the rest arrives. Once a request
    /// has begun it must be complete within the handshake timeout, whether
    /// it is the connection's first or a later keep-alive one.
    fn keep_partial<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        rest: &[u8],
        started: bool,
        expects_continue: bool,
        now: Instant,
    ) {
        let head_deadline = now + c.env.config.handshake_timeout;
        let mut send_continue = false;
        if let Some(Requests {
            partial,
            deadline,
            continued,
            ..
        }) = self.requests()
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
            respond(
                c,
                |out| out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n"),
                false,
            );
        }
        c.env.mark_dirty(c.id, c.link);
    }

    /// One complete request; `released`, the route the application chose
    /// for it.
    fn handle_request<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        complete: &Complete<'_, '_, '_>,
        released: Option<Route<u32>>,
        now: Instant,
    ) -> Next {
        let Complete {
            head,
            body,
            len,
            rest,
        } = *complete;
        let form = match head.form() {
            tether_http1::TargetForm::Asterisk => Form::Asterisk,
            tether_http1::TargetForm::Authority => Form::Connect,
            tether_http1::TargetForm::Origin | tether_http1::TargetForm::Absolute => Form::Origin,
        };
        let request = Head {
            request: app_request(head, c.link, c.socket, &c.env.config.trusted_proxies),
            form,
        };
        // Once a shutdown has begun, every answer closes its connection.
        let keep_alive = head.keep_alive() && !c.env.shutting_down;
        let head_only = request.head_only();
        let closing_sessions = c.env.closing_sessions;
        let decision = {
            let id = c.id;
            let (app, mut ctx) = c.detached(now);
            dispatch(app, &mut ctx, id, &request, body, closing_sessions, released)
        };
        match decision {
            Decision::Answer(Answer::Respond(response)) => respond_with(c, &response, head_only, !keep_alive),
            Decision::Answer(Answer::Page { content_type, body }) => {
                let alt_svc = c.env.alt_svc.clone();
                let mut headers = vec![("Cache-Control", "no-cache")];
                headers.extend(alt_svc.as_deref().map(|v| ("Alt-Svc", v)));
                respond(
                    c,
                    |out| {
                        http::write_response(out, 200, &headers, content_type, body, head_only, !keep_alive)
                    },
                    !keep_alive,
                );
            }
            Decision::Answer(Answer::Fail { status, retry_after }) => {
                let alt_svc = c.env.alt_svc.clone();
                let mut extra = vec![];
                if retry_after {
                    extra.push(("Retry-After", "1"));
                }
                extra.extend(alt_svc.as_deref().map(|v| ("Alt-Svc", v)));
                respond(c, |out| http::write_error(out, status, &extra, head_only), true);
                return Next::Stop;
            }
            Decision::Upgrade(tag) => {
                let opening = Opening {
                    request: &request.request,
                    tag,
                };
                self.upgrade(c, head, opening, rest, now);
                return Next::Stop;
            }
            Decision::EventStream {
                mut headers,
                compress,
                ..
            } if head_only => {
                advertise_http3(c, &mut headers);
                // The head says what the stream would be sent in.
                let _ = sse_coding::negotiate(&c.env.config, &request.request, compress, &mut headers);
                // GET's head, and no stream: nothing follows it, so the
                // connection goes on to the next request.
                respond(
                    c,
                    |out| http::write_sse_head(out, &headers, !keep_alive),
                    !keep_alive,
                );
            }
            Decision::EventStream {
                tag,
                mut headers,
                compress,
            } => {
                advertise_http3(c, &mut headers);
                let opening = Opening {
                    request: &request.request,
                    tag,
                };
                self.start_stream(c, opening, &mut headers, compress, now);
                return Next::Stop;
            }
            Decision::Later { tag, wait, held } => {
                if let Some(requests) = self.requests() {
                    requests.waiting = Some(Deferred {
                        tag,
                        close: !keep_alive,
                        head_only,
                        held: if held {
                            u32::try_from(len).unwrap_or(u32::MAX)
                        } else {
                            0
                        },
                    });
                    requests.deadline = answer_by(now, wait);
                } else {
                    c.app.release(tag);
                }
                if closing_sessions && let Some(response) = c.shutdown_answer(c.id, tag, now) {
                    // The connection closes after this answer: what
                    // follows the request does not matter.
                    self.respond_later(c, &response, now);
                }
                c.env.mark_dirty(c.id, c.link);
                return if held { Next::Hold } else { Next::Wait };
            }
        }
        if !keep_alive {
            return Next::Stop;
        }
        let keep_alive_deadline = now + c.env.config.keep_alive_timeout;
        if let Some(requests) = self.requests() {
            requests.deadline = keep_alive_deadline;
        }
        Next::Continue
    }

    /// The application's deferred answer to the request waiting on this
    /// connection: the answer, then any request that arrived behind it.
    pub(in crate::server) fn respond_later<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        response: &Response,
        now: Instant,
    ) {
        let keep_alive_deadline = now + c.env.config.keep_alive_timeout;
        let Some(Requests {
            waiting,
            deadline,
            partial,
            ..
        }) = self.requests()
        else {
            return;
        };
        let Some(deferred) = waiting.take() else { return };
        // Answered: the request is over.
        c.app.release(deferred.tag);
        // A held request's own bytes go with its answer.
        partial.drain(..(deferred.held as usize).min(partial.len()));
        *deadline = keep_alive_deadline;
        let pipelined = !partial.is_empty();
        respond_with(c, response, deferred.head_only, deferred.close);
        if deferred.close {
            return;
        }
        if pipelined {
            self.requests_input(c, &[], now);
        }
        // Reading stopped while the request waited: go on with what the
        // socket holds, unless the next request waits in turn.
        if !self.awaits_answer() {
            c.env.backlog.push(c.id);
        }
    }

    /// The application lets the request it held go on as `route`: the
    /// request, kept whole, is parsed and routed again, then what follows.
    pub(in crate::server) fn proceed<A: App>(&mut self, c: &mut Call<'_, '_, A>, route: Route, now: Instant) {
        let Some(requests) = self.requests() else { return };
        let Some(deferred) = requests.waiting.filter(|deferred| deferred.held != 0) else {
            return;
        };
        requests.waiting = None;
        requests.deadline = now + c.env.config.keep_alive_timeout;
        let route = c.app.proceed_route(c.id, route, deferred.tag);
        self.input_released(c, &[], Some(route), now);
        // Reading stopped while the request was held: go on with what the
        // socket holds, unless the next request waits in turn.
        if !self.awaits_answer() {
            c.env.backlog.push(c.id);
        }
    }

    /// A deferred request's time is up: the application gives its answer.
    pub(in crate::server) fn request_timed_out<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        tag: u32,
        now: Instant,
    ) {
        let id = c.id;
        let response = c.timed_out(id, tag, now);
        self.respond_later(c, &response, now);
    }
}

/// Answers with an error and closes; `head_only` for a HEAD request,
/// whose answer has no body.
fn error<A: App>(c: &mut Call<'_, '_, A>, status: u16, head_only: bool) {
    let alt_svc = c.env.alt_svc.clone();
    let extra: Vec<(&str, &str)> = alt_svc.as_deref().map(|v| ("Alt-Svc", v)).into_iter().collect();
    respond(c, |out| http::write_error(out, status, &extra, head_only), true);
}

/// A chunked body whose framing is over [`max_chunk_framing`].
const FRAMING_TOO_LARGE: tether_http1::Error = tether_http1::Error::BadChunk("too much framing");

/// Answers a request whose body the server does not read, `e` saying why,
/// and closes.
fn refuse_body<A: App>(
    c: &mut Call<'_, '_, A>,
    head: &tether_http1::RequestHead<'_, '_>,
    e: &tether_http1::Error,
    now: Instant,
) {
    debug!("bad request body: {e}");
    let head_only = head.method() == "HEAD";
    if e.status() == Some(413) {
        let answer = body_too_large(c, head, now);
        return respond_with(c, &answer, head_only, true);
    }
    error(c, e.status().unwrap_or(400), head_only);
}

/// Adds `Alt-Svc` to an event stream's head while HTTP/3 is served, so
/// that a browser whose first contact is an `EventSource` learns of it
/// too.
fn advertise_http3<A: App>(c: &Call<'_, '_, A>, headers: &mut Vec<(String, String)>) {
    if let Some(alt_svc) = &c.env.alt_svc {
        headers.push(("Alt-Svc".to_owned(), alt_svc.to_string()));
    }
}

/// Appends a response to a connection's output, optionally closing after
/// it.
pub(super) fn respond<A: App>(c: &mut Call<'_, '_, A>, write: impl FnOnce(&mut Vec<u8>), close: bool) {
    let max_output = c.env.config.max_output;
    let (out, pool) = c.out();
    out.write_with(pool, write);
    // A client that pipelines requests and does not read the answers is
    // not answered (the requests it sent in one read wait, see
    // `input_released`) nor read until it has taken half of them: what it
    // costs stays within the output limit, one answer and one read's
    // worth.
    if out.len() > max_output {
        c.link.paused = true;
    }
    if close {
        c.link.closing = true;
    }
    c.mark_dirty();
}

fn respond_with<A: App>(c: &mut Call<'_, '_, A>, response: &Response, head_only: bool, close: bool) {
    let alt_svc = c.env.alt_svc.clone();
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(alt_svc.as_deref().map(|v| ("Alt-Svc", v)))
        .collect();
    respond(
        c,
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

/// The request as the application sees it, from its head and the
/// connection it came on.
/// The answer to a request whose body is over the largest body (see
/// [`too_large`]).
fn body_too_large<A: App>(
    c: &mut Call<'_, '_, A>,
    head: &tether_http1::RequestHead<'_, '_>,
    now: Instant,
) -> Response {
    let request = app_request(head, c.link, c.socket, &c.env.config.trusted_proxies);
    let limit = c.env.config.max_request_body;
    let (app, ctx) = c.detached(now);
    let peers = ctx.peers;
    too_large(app, &peers.own().stats, &request, limit)
}

fn app_request<'r>(
    head: &'r tether_http1::RequestHead<'_, '_>,
    link: &Link,
    socket: &Stream<'_>,
    proxies: &crate::proxy::TrustedProxies,
) -> Request<'r> {
    Request {
        method: head.method(),
        path: head.path(),
        query: head.query(),
        headers: head.headers(),
        admin: link.admin,
        secure: link.secure,
        peer: proxies.client(socket.peer_addr(), head.headers()),
    }
}
