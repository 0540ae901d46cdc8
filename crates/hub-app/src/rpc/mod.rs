//! Calls from a client to the backend (the rpc hook): a multiplexed
//! socket's `{"type":"rpc","id":N,"method":"M","data":…}` (and a
//! `POST /rpc`) put to the backend as a question whose answer goes back
//! to that caller alone, by the id the client chose. Each call is
//! answered once: its result, or an error with a code, never a close —
//! no hook configured, the caller over its calls in flight or its rate,
//! the backend busy, slow or answering nonsense are each an error to
//! that call.

pub(crate) mod answer;
mod http;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tether_hub::{Decision, HubMessage};
use tether_server::{ConnId, Ctx, Message, Reply};

use self::answer::Outcome;
use crate::backend::{Busy, Hook, Question};
use crate::hooks::BackendHooks;
use crate::loop_parts::LoopParts;
use crate::metrics::Outcome as Counted;
use crate::rate::{Bucket, PublishRate};

/// A call as a client made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The client's id for it (answers name it; 0 over HTTP).
    pub(crate) id: u64,
    /// The method's name, checked ([`crate::multiplex::message::is_method`]).
    pub(crate) method: String,
    /// Its data as JSON text, checked; `None` when it had none.
    pub(crate) data: Option<String>,
}

/// Who waits for a call's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A multiplexed socket, by the call's id.
    Socket(ConnId, u64),
    /// A `POST /rpc` request.
    Request(ConnId),
}

/// A call out to the backend.
#[derive(Debug)]
struct Out {
    caller: Caller,
    asked_at: Instant,
}

/// A socket's calls out and its own rate.
#[derive(Debug, Default)]
struct Socket {
    /// The ids of its calls out (at most
    /// [`HubSettings::max_rpc_in_flight`](crate::HubSettings::max_rpc_in_flight)).
    ids: Vec<u64>,
    bucket: Option<Bucket>,
}

/// A call refused before it was asked: its outcome, and for a caller
/// over its rate, when it may call again.
type Refused = (Outcome, Option<Duration>);

/// The calls of one loop's callers.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    /// By the token of the backend's question.
    out: HashMap<u64, Out>,
    sockets: HashMap<ConnId, Socket>,
    /// The token each `POST /rpc` request waits on.
    requests: HashMap<ConnId, u64>,
}

impl Calls {
    /// A call of the multiplexed socket `conn`, whose subject is
    /// `subject`: asked of the backend, or answered an error at once.
    pub(crate) fn call(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        subject: Option<String>,
        call: Call,
    ) {
        let id = call.id;
        match self.admit_socket(ctx.now(), parts, conn, subject.as_deref(), id) {
            Err((refused, _)) => ctx.send(conn, &Message::text(refused.message(id))),
            Ok(()) => match ask(ctx, parts, hooks, subject, "websocket", call) {
                Ok(token) => {
                    let caller = Caller::Socket(conn, id);
                    let asked_at = ctx.now();
                    self.out.insert(token, Out { caller, asked_at });
                    self.sockets.entry(conn).or_default().ids.push(id);
                }
                Err(refused) => ctx.send(conn, &Message::text(refused.message(id))),
            },
        }
    }

    /// Whether the socket `conn` may make call `id` now: its id not in
    /// flight, its calls in flight and its rate (and its subject's) under
    /// their bounds.
    fn admit_socket(
        &mut self,
        now: Instant,
        parts: &LoopParts<'_>,
        conn: ConnId,
        subject: Option<&str>,
        id: u64,
    ) -> Result<(), Refused> {
        let settings = &parts.shared.settings;
        if settings.backend_for(Hook::Rpc).is_none() {
            return Err((no_hook(), None));
        }
        let socket = self.sockets.entry(conn).or_default();
        if socket.ids.contains(&id) {
            return Err((Outcome::error(409, "a call with this id is in flight"), None));
        }
        let most = settings.max_rpc_in_flight.max(1);
        if socket.ids.len() >= most {
            let refused = Outcome::error(429, format!("more than {most} calls in flight"));
            return Err((refused, None));
        }
        if let Some(rate) = settings.rpc_rate {
            let bucket = socket.bucket.get_or_insert_with(|| Bucket::full(rate, now));
            bucket
                .take(rate, now)
                .map_err(|wait| (too_fast(rate), Some(wait)))?;
        }
        subject_rate(parts, subject, now)
    }

    /// `POST /rpc` with `body`, from `subject`: held for the backend's
    /// answer, or answered at once.
    pub(crate) fn request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        subject: Option<String>,
        body: &[u8],
    ) -> Reply {
        let settings = &parts.shared.settings;
        let Some(backend) = settings.backend_for(Hook::Rpc) else {
            return Reply::Now(http::response(&no_hook(), None));
        };
        let wait = backend.timeout().saturating_add(Duration::from_secs(1));
        let asked = http::read_call(body)
            .map_err(|refused| (refused, None))
            .and_then(|call| {
                subject_rate(parts, subject.as_deref(), ctx.now())?;
                ask(ctx, parts, hooks, subject, "http", call).map_err(|refused| (refused, None))
            });
        match asked {
            Ok(token) => {
                let caller = Caller::Request(conn);
                let asked_at = ctx.now();
                self.out.insert(token, Out { caller, asked_at });
                self.requests.insert(conn, token);
                Reply::Later(wait)
            }
            Err((refused, retry)) => Reply::Now(http::response(&refused, retry)),
        }
    }

    /// Whether question `token` is a call's still out.
    pub(crate) fn is_call(&self, token: u64) -> bool {
        self.out.contains_key(&token)
    }

    /// The backend's decision about the call of question `token`: its
    /// caller is answered (nothing, if it left or was answered already).
    pub(crate) fn decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        token: u64,
        decision: Decision,
    ) {
        let Some(out) = self.out.remove(&token) else {
            return;
        };
        parts.stats.decided(Hook::Rpc, Counted::of(&decision));
        self.answer(ctx, parts, out.caller, &answer::of_decision(decision));
    }

    /// Tells `caller` its call's outcome, and forgets the call.
    fn answer(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        caller: Caller,
        outcome: &Outcome,
    ) {
        match caller {
            Caller::Socket(conn, id) => {
                if let Some(socket) = self.sockets.get_mut(&conn) {
                    socket.ids.retain(|&out| out != id);
                }
                ctx.send(conn, &Message::text(outcome.message(id)));
            }
            Caller::Request(conn) => {
                self.requests.remove(&conn);
                parts.cors.respond(ctx, conn, http::response(outcome, None));
            }
        }
    }

    /// The socket `conn` is gone: its calls' answers, when they come, go
    /// nowhere.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        if self.sockets.remove(&conn).is_some() {
            self.out
                .retain(|_, out| !matches!(out.caller, Caller::Socket(c, _) if c == conn));
        }
    }

    /// The `POST /rpc` request `conn` is answered otherwise (its client
    /// left, its wait ran out, the server shuts down): its call's answer
    /// goes nowhere.
    pub(crate) fn forget_request(&mut self, conn: ConnId) {
        if let Some(token) = self.requests.remove(&conn) {
            self.out.remove(&token);
        }
    }

    /// The loop's tick: a socket's call the backend has not answered a
    /// second after its timeout (an embedder's backend that lost it) is
    /// answered 504 (a request's own wait answers it), and sockets with
    /// nothing out and a full bucket forgotten.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>, now: Instant) {
        let settings = parts.shared.settings.clone();
        let wait = settings
            .backend_for(Hook::Rpc)
            .map_or(Duration::ZERO, |backend| backend.timeout())
            .saturating_add(Duration::from_secs(1));
        let late: Vec<u64> = (self.out.iter())
            .filter(|(_, out)| matches!(out.caller, Caller::Socket(..)))
            .filter(|(_, out)| now.saturating_duration_since(out.asked_at) > wait)
            .map(|(&token, _)| token)
            .collect();
        for token in late {
            if let Some(out) = self.out.remove(&token) {
                parts.stats.decided(Hook::Rpc, Counted::Unavailable);
                let outcome = Outcome::error(504, "the application's backend did not answer (timeout)");
                self.answer(ctx, parts, out.caller, &outcome);
            }
        }
        let rate = settings.rpc_rate;
        self.sockets.retain(|_, socket| {
            !socket.ids.is_empty()
                || rate
                    .zip(socket.bucket.as_mut())
                    .is_some_and(|(r, b)| !b.is_full(r, now))
        });
    }
}

/// The answer to a `POST /rpc` whose call the backend did not answer in
/// time.
pub(crate) fn timed_out() -> tether_server::Response {
    let outcome = Outcome::error(504, "the application's backend did not answer (timeout)");
    http::response(&outcome, None)
}

/// The error of a call made with no rpc hook configured.
fn no_hook() -> Outcome {
    Outcome::error(501, "no rpc hook is configured")
}

fn too_fast(rate: PublishRate) -> Outcome {
    let reason = format!(
        "more than {} calls a second (in bursts of {})",
        rate.per_second, rate.burst
    );
    Outcome::error(429, reason)
}

/// Takes one of `subject`'s calls under its rate, over all its
/// connections (an anonymous caller has no subject's rate).
fn subject_rate(parts: &LoopParts<'_>, subject: Option<&str>, now: Instant) -> Result<(), Refused> {
    let Some(rate) = parts.shared.settings.rpc_rate else {
        return Ok(());
    };
    (parts.shared.access)
        .rpc_rate_limit(subject, now)
        .map_err(|wait| (too_fast(rate), Some(wait)))
}

/// Puts `call` to the backend: the question's token.
fn ask(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &LoopParts<'_>,
    hooks: &mut BackendHooks,
    subject: Option<String>,
    transport: &'static str,
    call: Call,
) -> Result<u64, Outcome> {
    let question = question(parts.shared.settings.hub.max_event_size, subject, transport, call)?;
    (hooks.ask(ctx, parts, question)).map_err(|Busy| Outcome::error(503, "the application's backend is busy"))
}

/// The rpc hook's question about `call` by `subject` over `transport`:
/// its data at most `max_data` bytes, read as JSON (the caller checked
/// it is).
fn question(
    max_data: usize,
    subject: Option<String>,
    transport: &'static str,
    call: Call,
) -> Result<Question, Outcome> {
    let data = call.data.as_deref().unwrap_or("null");
    if data.len() > max_data {
        return Err(Outcome::error(
            413,
            format!("the data is more than {max_data} bytes"),
        ));
    }
    let data =
        serde_json::from_str(data).map_err(|e| Outcome::error(400, format!("the data is not JSON: {e}")))?;
    Ok(Question::Rpc {
        subject,
        transport,
        method: call.method,
        data,
    })
}
