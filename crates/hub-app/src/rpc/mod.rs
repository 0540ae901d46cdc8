//! Calls from a client to the backend (the rpc hook): a multiplexed
//! socket's `{"type":"rpc","id":N,"method":"M","data":…}` (and a
//! `POST /rpc`) put to the backend as a question whose answer goes back
//! to that caller alone, by the id the client chose. Each call is
//! answered once: its result, or an error with a code, never a close —
//! no hook configured, the caller over its calls in flight or its rate,
//! the backend busy, slow or answering nonsense are each an error to
//! that call.

pub(crate) mod answer;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tether_hub::{Decision, HubMessage};
use tether_server::{ConnId, Ctx, Message};

use self::answer::Outcome;
use crate::backend::{Busy, Hook, Question};
use crate::hooks::BackendHooks;
use crate::loop_parts::LoopParts;
use crate::metrics::Outcome as Counted;
use crate::rate::Bucket;

/// A call as a client made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The client's id for it (answers name it).
    pub(crate) id: u64,
    /// The method's name, checked ([`crate::multiplex::message::is_method`]).
    pub(crate) method: String,
    /// Its data as JSON text, checked; `None` when it had none.
    pub(crate) data: Option<String>,
}

/// A call out to the backend.
#[derive(Debug)]
struct Out {
    conn: ConnId,
    id: u64,
    asked_at: Instant,
}

/// A caller's calls out and its own rate.
#[derive(Debug, Default)]
struct Caller {
    /// The ids of its calls out (at most
    /// [`HubSettings::max_rpc_in_flight`](crate::HubSettings::max_rpc_in_flight)).
    ids: Vec<u64>,
    bucket: Option<Bucket>,
}

/// The calls of one loop's callers.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    /// By the token of the backend's question.
    out: HashMap<u64, Out>,
    callers: HashMap<ConnId, Caller>,
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
        match self.ask(ctx, parts, hooks, conn, subject, call) {
            Ok(token) => {
                let asked_at = ctx.now();
                self.out.insert(token, Out { conn, id, asked_at });
                self.callers.entry(conn).or_default().ids.push(id);
            }
            Err(refused) => ctx.send(conn, &Message::text(refused.message(id))),
        }
    }

    /// Puts `call` to the backend, if it may be: the question's token.
    fn ask(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        subject: Option<String>,
        call: Call,
    ) -> Result<u64, Outcome> {
        let settings = &parts.shared.settings;
        if settings.backend_for(Hook::Rpc).is_none() {
            return Err(Outcome::error(501, "no rpc hook is configured"));
        }
        let now = ctx.now();
        let caller = self.callers.entry(conn).or_default();
        if caller.ids.contains(&call.id) {
            return Err(Outcome::error(409, "a call with this id is in flight"));
        }
        let most = settings.max_rpc_in_flight.max(1);
        if caller.ids.len() >= most {
            return Err(Outcome::error(429, format!("more than {most} calls in flight")));
        }
        if let Some(rate) = settings.rpc_rate {
            let bucket = caller.bucket.get_or_insert_with(|| Bucket::full(rate, now));
            let taken = bucket
                .take(rate, now)
                .and_then(|()| parts.shared.access.rpc_rate_limit(subject.as_deref(), now));
            if taken.is_err() {
                let reason = format!(
                    "more than {} calls a second (in bursts of {})",
                    rate.per_second, rate.burst
                );
                return Err(Outcome::error(429, reason));
            }
        }
        let question = question(settings.hub.max_event_size, subject, "websocket", call)?;
        hooks
            .ask_rpc(ctx, parts, question)
            .map_err(|Busy| Outcome::error(503, "the application's backend is busy"))
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
        parts: &LoopParts<'_>,
        token: u64,
        decision: Decision,
    ) {
        let Some(out) = self.out.remove(&token) else {
            return;
        };
        parts.stats.decided(Hook::Rpc, Counted::of(&decision));
        self.answer(ctx, &out, &answer::of_decision(decision));
    }

    /// Tells the caller of `out` its outcome, and forgets the call.
    fn answer(&mut self, ctx: &mut Ctx<'_, HubMessage>, out: &Out, outcome: &Outcome) {
        if let Some(caller) = self.callers.get_mut(&out.conn) {
            caller.ids.retain(|&id| id != out.id);
        }
        ctx.send(out.conn, &Message::text(outcome.message(out.id)));
    }

    /// The connection `conn` is gone: its calls' answers, when they come,
    /// go nowhere.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        if self.callers.remove(&conn).is_some() {
            self.out.retain(|_, out| out.conn != conn);
        }
    }

    /// The loop's tick: a call the backend has not answered a second after
    /// its timeout (an embedder's backend that lost it) is answered 504,
    /// and callers with nothing out and a full bucket forgotten.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &LoopParts<'_>, now: Instant) {
        let settings = &parts.shared.settings;
        let Some(backend) = settings.backend_for(Hook::Rpc) else {
            return self.drain(ctx, Outcome::error(501, "no rpc hook is configured"));
        };
        let wait = backend.timeout().saturating_add(Duration::from_secs(1));
        let late: Vec<u64> = (self.out.iter())
            .filter(|(_, out)| now.saturating_duration_since(out.asked_at) > wait)
            .map(|(&token, _)| token)
            .collect();
        for token in late {
            if let Some(out) = self.out.remove(&token) {
                parts.stats.decided(Hook::Rpc, Counted::Unavailable);
                let outcome = Outcome::error(504, "the application's backend did not answer (timeout)");
                self.answer(ctx, &out, &outcome);
            }
        }
        let rate = settings.rpc_rate;
        self.callers.retain(|_, caller| {
            !caller.ids.is_empty()
                || rate
                    .zip(caller.bucket.as_mut())
                    .is_some_and(|(r, b)| !b.is_full(r, now))
        });
    }

    /// Every call out answered `outcome` (the hook was taken away).
    fn drain(&mut self, ctx: &mut Ctx<'_, HubMessage>, outcome: Outcome) {
        for (_, out) in std::mem::take(&mut self.out) {
            self.answer(ctx, &out, &outcome);
        }
        self.callers.clear();
    }
}

/// The rpc hook's question about `call` by `subject` over `transport`:
/// its data at most `max_data` bytes, read as JSON (the caller checked
/// it is).
pub(crate) fn question(
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
