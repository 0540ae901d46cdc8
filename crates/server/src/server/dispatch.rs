//! The request path, written once for every HTTP version: a request head
//! in, a [`Decision`] out (an answer, a WebSocket to open, an event stream
//! to start, or the application's handler's reply).
//!
//! Calling contract: a session (HTTP/1.1 connection or HTTP/2 stream)
//! turns its own head into a [`Head`] once the request is read whole, calls
//! [`dispatch`] with the application and a context, and carries out the
//! decision in its own framing. Nothing here writes bytes or knows a
//! connection's state; whether the connection goes on after an answer is
//! the session's business.

use crate::server::hosted::Hosted;
use std::time::{Duration, Instant};

use super::guard::guarded;
use crate::access::{Access, Opened};
use crate::app::Reply;
use crate::app::{App, ConnId, Ctx, Readiness, Request, Response, Route, shared_asked};
use crate::loops::Stats;

/// What kind of target a request names, beyond its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// A path (and query), the usual request.
    Origin,
    /// `OPTIONS *`: about the server as a whole (RFC 9110 section 9.3.7).
    Asterisk,
    /// A CONNECT to a host: a proxy's request, which this server is not.
    Connect,
    /// An RFC 8441 extended CONNECT for a WebSocket: the only answer that
    /// opens nothing is a refusal, since a 2xx tells the client its
    /// WebSocket is open.
    ConnectWebSocket,
}

/// A request head as every HTTP version gives it to the dispatch.
pub(super) struct Head<'r> {
    /// What the application sees.
    pub(super) request: Request<'r>,
    /// The target's form.
    pub(super) form: Form,
}

impl Head<'_> {
    /// Whether the answer goes out as its head alone (RFC 9110 section
    /// 9.3.2).
    pub(super) fn head_only(&self) -> bool {
        self.request.method == "HEAD"
    }
}

/// An answer a session writes at once.
pub(super) enum Answer {
    /// Answer this; the session goes on with its next request (on HTTP/1.1
    /// unless the request or a shutdown says otherwise).
    Respond(Response),
    /// Answer with a fixed page, 200.
    Page {
        /// Its `Content-Type`.
        content_type: &'static str,
        /// Its body.
        body: &'static [u8],
    },
    /// Answer with a short error after which an HTTP/1.1 connection
    /// closes: the application panicked, sessions are closing, or the
    /// request is one the server does not serve.
    Fail {
        /// The status.
        status: u16,
        /// Whether to ask the client to retry in a second (503).
        retry_after: bool,
    },
}

impl Answer {
    /// The response, as the multiplexed versions write it (HTTP/1.1
    /// writes pages and failures itself, with its connection's close).
    pub(super) fn into_response(self) -> Response {
        match self {
            Answer::Respond(response) => response,
            Answer::Page { content_type, body } => {
                Response::new(200, content_type, body).header("Cache-Control", "no-cache")
            }
            Answer::Fail { status, retry_after } => {
                let answer = error_response(status);
                if retry_after {
                    answer.header("Retry-After", "1")
                } else {
                    answer
                }
            }
        }
    }
}

/// A request the dispatch gave to a session it opens (a WebSocket, an
/// event stream): what the application saw of it, and the key of the
/// state the application keeps for it, handed on together to the
/// carrier that opens the session.
#[derive(Clone, Copy)]
pub(super) struct Opening<'a> {
    pub(super) request: &'a Request<'a>,
    pub(super) tag: u32,
}

/// What a session does with a request.
pub(super) enum Decision {
    /// Answer at once.
    Answer(Answer),
    /// Open a WebSocket with the request's state (its key in the
    /// application's table) if the session's handshake accepts the
    /// request; the session releases the state if it does not.
    Upgrade(u32),
    /// Start an event stream (its head alone for HEAD, whose state is
    /// released already) with the application's own fields.
    EventStream {
        /// The request's state.
        tag: u32,
        /// The application's fields for the head.
        headers: Vec<(String, String)>,
        /// Whether the application lets the stream be compressed.
        compress: bool,
    },
    /// The application answers later, within `wait`.
    Later {
        /// The request's state.
        tag: u32,
        /// How long it may take.
        wait: Duration,
        /// The application may instead let the request go on as another
        /// route ([`Reply::Hold`]): the session keeps the request.
        held: bool,
    },
}

impl Decision {
    fn respond(response: Response) -> Decision {
        Decision::Answer(Answer::Respond(response))
    }

    fn fail(status: u16, retry_after: bool) -> Decision {
        Decision::Answer(Answer::Fail { status, retry_after })
    }
}

/// The deadline of a request the application defers for longer than an
/// `Instant` can hold: a year, which no connection outlives.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// When the application's answer to a [`Decision::Later`] is due: a wait
/// too long to represent is as good as forever.
pub(super) fn answer_by(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait).unwrap_or(now + FOREVER)
}

/// The answer a refused method gets: 405 naming the methods the route
/// takes. The request was read whole, so the connection's framing holds.
fn refuse_method(allow: &str) -> Decision {
    Decision::respond(Response::text(405, "405 Method Not Allowed\n").header("Allow", allow))
}

/// `/readyz`: whether this node can keep its promises for the work a
/// load balancer sends it (see [`Readiness`]): 200 while every check that
/// counts passes, 503 with `Retry-After` while one fails (the server's
/// own: it drains before a shutdown; or one of the application's), the
/// body naming each check. `?shared=1` counts the conditions every node
/// shares too (a hub's bus away). `/healthz` is the liveness beside it:
/// 200 whenever the loop answers at all.
fn readiness<A: App>(
    app: &Hosted<A>,
    ctx: &Ctx<'_, A::Post>,
    request: &Request<'_>,
    head_only: bool,
) -> Decision {
    if request.method != "GET" && !head_only {
        return refuse_method("GET, HEAD");
    }
    let own = ctx.peers.own();
    let mut report = Readiness::new(shared_asked(request.query));
    let draining = own.draining();
    report.check(
        "draining",
        !draining,
        if draining {
            "yes: shutting down after its drain delay"
        } else {
            "no"
        },
    );
    // A panic in the application's checks counts as a failed check.
    if guarded(&own.stats, "readiness", || app.readiness(&mut report)).is_none() {
        report.check("app", false, "its readiness checks panicked");
    }
    if report.ready() {
        return Decision::respond(Response::text(200, report.body()));
    }
    // A drain ends in a shutdown: a load balancer need not ask again soon.
    let retry_after = if draining { "5" } else { "1" };
    Decision::respond(Response::text(503, report.body()).header("Retry-After", retry_after))
}

/// Routes a complete request and asks the application what it needs to
/// decide. `id` is the connection (or stream) the application's callbacks
/// name; `closing_sessions` while the server closes its sessions;
/// `released` is the route the application chose for a request it held
/// ([`Reply::Hold`], [`Ctx::proceed`]), asked of it no further, with the
/// key of the state the request was held with. A state the decision does
/// not carry on (an answer) is released here; one it carries is the
/// session's to keep and release.
pub(super) fn dispatch<A: App>(
    app: &mut Hosted<A>,
    ctx: &mut Ctx<'_, A::Post>,
    id: ConnId,
    head: &Head<'_>,
    body: &[u8],
    closing_sessions: bool,
    released: Option<Route<u32>>,
) -> Decision {
    let held = released.is_some();
    let logged = ctx.peers.own().access.is_some();
    if logged {
        app.note_subject();
    }
    let decision = decide(app, ctx, id, head, body, closing_sessions, released);
    if let Some(access) = &ctx.peers.own().access {
        if held {
            // Reported again now that it goes on.
            access.forget(id);
        }
        let released = app.released_subject();
        let subject = match &decision {
            Decision::Upgrade(tag) | Decision::EventStream { tag, .. } | Decision::Later { tag, .. } => {
                app.subject(*tag).or(released)
            }
            Decision::Answer(_) => released,
        };
        report(access, id, head, &decision, ctx.now, subject.as_deref());
    }
    decision
}

/// Reports a decision to the access log: an answer as it is given, a
/// WebSocket or an event stream as it opens, and a deferred request
/// once its answer comes ([`Access::deferred_answer`]).
#[cold]
fn report(
    access: &Access,
    id: ConnId,
    head: &Head<'_>,
    decision: &Decision,
    since: Instant,
    subject: Option<&str>,
) {
    let request = &head.request;
    let multiplexed = id.stream() != 0 || id.is_quic();
    let (status, bytes, opened) = match decision {
        Decision::Answer(Answer::Respond(response)) => {
            (response.status, response.body.len(), Opened::Nothing)
        }
        Decision::Answer(Answer::Page { body, .. }) => (200, body.len(), Opened::Nothing),
        Decision::Answer(Answer::Fail { status, .. }) => (*status, error_body_len(*status), Opened::Nothing),
        // A WebSocket over HTTP/2 or HTTP/3 is an extended CONNECT; any
        // other request there that asks for one gets 426.
        Decision::Upgrade(_) if multiplexed && head.form != Form::ConnectWebSocket => {
            (426, error_body_len(426), Opened::Nothing)
        }
        Decision::Upgrade(_) if multiplexed => (200, 0, Opened::WebSocket),
        Decision::Upgrade(_) => (101, 0, Opened::WebSocket),
        Decision::EventStream { .. } => (200, 0, Opened::EventStream),
        Decision::Later { wait, .. } => {
            return access.defer(id, request, since, answer_by(since, *wait), subject);
        }
    };
    access.answered(id, request, since, status, bytes, opened, subject);
}

/// The length of [`error_response`]'s body, without making it.
fn error_body_len(status: u16) -> usize {
    // "NNN Reason\n"
    3 + 1 + tether_http1::reason_phrase(status).len() + 1
}

/// What [`dispatch`] decides, before it is reported.
fn decide<A: App>(
    app: &mut Hosted<A>,
    ctx: &mut Ctx<'_, A::Post>,
    id: ConnId,
    head: &Head<'_>,
    body: &[u8],
    closing_sessions: bool,
    released: Option<Route<u32>>,
) -> Decision {
    let stats = &ctx.peers.own().stats;
    if released.is_none() {
        Stats::add(&stats.http_requests, 1);
    }
    let request = &head.request;
    let method = request.method;
    let head_only = head.head_only();
    match head.form {
        Form::Asterisk => {
            return Decision::respond(Response::empty(200).header("Allow", "GET, HEAD, POST, OPTIONS"));
        }
        Form::Connect => {
            return Decision::fail(501, false);
        }
        Form::Origin | Form::ConnectWebSocket => {}
    }
    let fail = |status| Decision::fail(status, false);
    let route = if let Some(route) = released {
        route
    } else if request.path == "/healthz" {
        Route::Page {
            content_type: "text/plain; charset=utf-8",
            body: b"ok\n",
        }
    } else if request.path == "/readyz" {
        return readiness(app, ctx, request, head_only);
    } else {
        match guarded(stats, "route", || app.route(request)) {
            Some(route) => route,
            None => return fail(500),
        }
    };
    // Whatever ends in an answer here releases the state the route made.
    let answer = |app: &mut Hosted<A>, decision: Decision| {
        if let Route::WebSocket(key) | Route::EventStream(key) | Route::Handler(key) = route {
            app.release(key);
        }
        decision
    };
    if closing_sessions && matches!(route, Route::WebSocket(_) | Route::EventStream(_)) {
        // Sessions are being closed: one opened now would only be closed
        // again, or keep the loop from exiting.
        return answer(app, Decision::fail(503, true));
    }
    if head.form == Form::ConnectWebSocket {
        match route {
            Route::Handler(tag) => return refuse_connect(app, ctx, id, tag, request),
            Route::WebSocket(_) | Route::NotFound => {}
            _ => return answer(app, Decision::respond(error_response(400))),
        }
    }
    match route {
        Route::NotFound => Decision::respond(error_response(404)),
        Route::Page { .. } if method != "GET" && !head_only => refuse_method("GET, HEAD"),
        Route::Page { content_type, body } => Decision::Answer(Answer::Page { content_type, body }),
        Route::WebSocket(_) if method != "GET" => answer(app, refuse_method("GET")),
        Route::WebSocket(tag) => Decision::Upgrade(tag),
        Route::EventStream(_) if method != "GET" && !head_only => answer(app, refuse_method("GET, HEAD")),
        Route::EventStream(tag) => {
            let headers = guarded(stats, "event_stream_headers", || {
                let compress = app.compress_event_stream(tag, request);
                (app.event_stream_headers(tag, request), compress)
            });
            match headers {
                // A HEAD gets the head alone: no stream keeps the state.
                Some((headers, compress)) if head_only => answer(
                    app,
                    Decision::EventStream {
                        tag,
                        headers,
                        compress,
                    },
                ),
                Some((headers, compress)) => Decision::EventStream {
                    tag,
                    headers,
                    compress,
                },
                None => answer(app, fail(500)),
            }
        }
        Route::Handler(tag) => {
            let peers = ctx.peers;
            match guarded(&peers.own().stats, "on_request", || {
                app.on_request(ctx, id, tag, request, body)
            }) {
                None => answer(app, fail(500)),
                Some(Reply::Now(response)) => answer(app, Decision::respond(response)),
                Some(Reply::Later(wait)) => Decision::Later {
                    tag,
                    wait,
                    held: false,
                },
                Some(Reply::Hold(wait)) => Decision::Later {
                    tag,
                    wait,
                    held: true,
                },
            }
        }
    }
}

/// An extended CONNECT that the application routed to a handler: its
/// answer when it is a refusal (401, 403, ... as an HTTP/1.1 upgrade
/// gets), else 400, since a 2xx would tell the client its WebSocket is
/// open (RFC 8441 section 5); or, held, the decision later.
fn refuse_connect<A: App>(
    app: &mut Hosted<A>,
    ctx: &mut Ctx<'_, A::Post>,
    id: ConnId,
    tag: u32,
    request: &Request<'_>,
) -> Decision {
    let peers = ctx.peers;
    let reply = guarded(&peers.own().stats, "on_request", || {
        match app.on_request(ctx, id, tag, request, &[]) {
            Reply::Now(response) => Ok(Some(response)),
            Reply::Hold(wait) => Err(wait),
            Reply::Later(_) => {
                app.on_request_abandoned(ctx, id, tag);
                Ok(None)
            }
        }
    });
    if let Some(Err(wait)) = reply {
        return Decision::Later {
            tag,
            wait,
            held: true,
        };
    }
    // Answered now: the request is over.
    app.release(tag);
    Decision::respond(match reply {
        None | Some(Err(_)) => error_response(500),
        Some(Ok(Some(response))) => refusal_only(response),
        Some(Ok(None)) => error_response(400),
    })
}

/// The answer to an extended CONNECT that opens no WebSocket: a refusal as
/// it is, anything else 400 (a 2xx would tell the client its WebSocket is
/// open).
pub(super) fn refusal_only(response: Response) -> Response {
    if response.status >= 300 {
        response
    } else {
        error_response(400)
    }
}

/// The application's deferred answer as a multiplexed stream sends it:
/// as given, except to a held extended CONNECT (`held`, the request it
/// held), which does not go on and so gets a refusal only.
pub(super) fn deferred_answer<'r>(
    response: &'r Response,
    held: Option<&tether_h2::connection::Request>,
) -> std::borrow::Cow<'r, Response> {
    if held.is_some_and(|request| request.is_extended_connect("websocket")) {
        std::borrow::Cow::Owned(refusal_only(response.clone()))
    } else {
        std::borrow::Cow::Borrowed(response)
    }
}

/// Where an event stream resumes: its `Last-Event-ID`, or for a client
/// that cannot set one (a browser's `EventSource` reconnecting to a new
/// URL), the `lastEventId` query parameter. An id that is not UTF-8 still
/// reaches the application, made valid with U+FFFD: as malformed as it
/// was, so that it gets the "missed events" signal instead of being
/// mistaken for no id.
pub(super) fn last_event_id(request: &Request<'_>) -> Option<String> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("last-event-id"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .or_else(|| request.query_param("lastEventId"))
        .filter(|id| !id.is_empty())
}

/// The answer to a request whose body is over `limit`: the
/// application's ([`App::body_too_large`]), made 413, or the server's
/// plain one (also when the application panics).
pub(super) fn too_large<A: App>(
    app: &mut Hosted<A>,
    stats: &Stats,
    request: &Request<'_>,
    limit: usize,
) -> Response {
    match guarded(stats, "body_too_large", || app.body_too_large(request, limit)).flatten() {
        Some(answer) => Response {
            status: 413,
            ..answer
        },
        None => error_response(413),
    }
}

/// A short plain-text error, as every version writes one.
pub(super) fn error_response(status: u16) -> Response {
    Response::text(
        status,
        format!("{status} {}\n", tether_http1::reason_phrase(status)),
    )
}
