//! Publishing: over HTTP (`POST /topics/NAME`), over a WebSocket, from
//! the server itself or the embedding application; each publish checked,
//! held for the backend's word where a namespace asks for it, handed to
//! the broker, and its outcome told to whoever waits for it.

mod gate;
mod multiplexed;
mod publish;

use std::time::{Duration, Instant};

use tether_hub::{Decision, Error as HubError, EventId, HubMessage, Publish, PublishAnswer, Transport};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message, MessageRef, Reply, Response};

use self::gate::{Gated, PublishGate, Refused, publish_question, rewritten};
use self::publish::{External, NotPublished, Publishes, Settled, WsPublish, error_json};
use super::access::Credential;
use super::admission::Served;
use super::backend::Hook;
use super::broker_view::LoopContext;
use super::deliver::Delivery;
use super::hooks::{BackendHooks, refused, unavailable};
use super::loop_parts::LoopParts;
use super::metrics::{Outcome, add};
use super::rate;
use super::rpc::Call;

pub(super) use self::publish::Pending;
use super::replies::{close_reason, error_response, rate_limited};
use super::subscribers::Subscriber;

/// The outcome of one item of a server API publish, for the request
/// that waits for its items: the request, the item, the outcome.
pub(super) type ItemSettled = (ConnId, usize, Result<(EventId, bool), HubError>);

/// The loop's publishes waiting for their outcome: those the broker has,
/// and those held for the backend's word (its publish hook) before it.
/// Both are this concern's alone; the rest of the hub reaches them
/// through its methods.
#[derive(Debug, Default)]
pub(super) struct Publishing {
    /// Publishes handed to the broker, waiting for their outcome.
    publishes: Publishes,
    /// Publishes waiting for the backend's publish hook.
    gate: PublishGate,
}

impl Publishing {
    /// Lets go of the publishes held for connections that left: done
    /// before each use of the gate, so that it is as if each had been
    /// let go of as its connection left.
    fn let_go_of_departed(&mut self, departed: &mut Vec<ConnId>) {
        for conn in departed.drain(..) {
            self.gate.forget(conn);
        }
    }

    /// Holds `gated`, from `conn`, under the backend's question `token`
    /// until its decision comes: its publisher's later publishes wait
    /// behind it.
    fn hold(&mut self, parts: &mut LoopParts<'_>, token: u64, conn: ConnId, gated: Gated) {
        self.let_go_of_departed(parts.departed);
        self.gate.hold(token, conn, gated);
    }

    /// Whether the backend's decision `token` is about a publish held here.
    pub(super) fn asked(&mut self, parts: &mut LoopParts<'_>, token: u64) -> bool {
        self.let_go_of_departed(parts.departed);
        self.gate.asked(token)
    }

    /// Whether `conn` has a publish still held for the backend's word.
    pub(super) fn holds(&mut self, parts: &mut LoopParts<'_>, conn: ConnId) -> bool {
        self.let_go_of_departed(parts.departed);
        self.gate.holds(conn)
    }

    /// Forgets `conn`'s publishes held for the backend (its request is
    /// answered otherwise, or gone).
    pub(super) fn forget_held(&mut self, parts: &mut LoopParts<'_>, conn: ConnId) {
        self.let_go_of_departed(parts.departed);
        self.gate.forget(conn);
    }

    /// Forgets `conn`'s publishes, held or with the broker: its request
    /// timed out or is gone.
    pub(super) fn forget(&mut self, parts: &mut LoopParts<'_>, conn: ConnId) {
        self.forget_held(parts, conn);
        self.publishes.forget(conn);
    }

    /// Forgets the outcomes the server API request `conn` waits for.
    pub(super) fn forget_pending(&mut self, conn: ConnId) {
        self.publishes.forget(conn);
    }

    /// The loop's tick: publishes whose outcome did not come in time,
    /// and the connections that left, let go of.
    pub(super) fn tick(&mut self, parts: &mut LoopParts<'_>, now: std::time::Instant) {
        self.let_go_of_departed(parts.departed);
        self.publishes.time_out(now);
    }

    /// Hands `publish` to the broker; `pending` is told its outcome.
    pub(super) fn submit(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        publish: Publish,
        pending: Pending,
    ) -> Result<(), HubError> {
        self.submit_arrived(ctx, parts, publish, pending, Instant::now())
    }

    /// [`Publishing::submit`], of a publish that `arrived` earlier (it
    /// waited for the backend's word).
    fn submit_arrived(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        publish: Publish,
        pending: Pending,
        arrived: Instant,
    ) -> Result<(), HubError> {
        (self.publishes).submit(
            &mut LoopContext { ctx },
            &mut *parts.broker,
            parts.stats,
            publish,
            (pending, arrived),
        )
    }

    /// A publish of the embedding application's, posted by a
    /// [`HubPublisher`](crate::HubPublisher): submitted as the server's
    /// own, and answered where an HTTP publisher would be (a refusal at
    /// once, by [`Publishes::submit`]).
    pub(super) fn external(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        publish: Publish,
        answer: PublishAnswer,
    ) {
        let now = ctx.now();
        let until = now
            .checked_add(parts.shared.settings.publish_timeout)
            .unwrap_or(now);
        let pending = Pending::External(External { answer, until });
        if let Err(e) = self.submit(ctx, parts, publish, pending) {
            log::debug!("hub: an external publish was refused: {e}");
        }
    }

    /// `POST /topics/NAME`, as its admission says (its topic, parsed
    /// when it was routed; its credential, verified here once and read by
    /// every step after): checked, rate-limited, held for the backend or
    /// handed to the broker.
    pub(super) fn http_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        served: Served<'_, '_>,
        body: &[u8],
    ) -> Reply {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let (access, settings, stats) = (&parts.shared.access, &parts.shared.settings, parts.stats);
        let Some(topic) = admission.topic().cloned() else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let topic = &*topic;
        let credential = admission.credential(access, request);
        if let Some(refusal) = access.check_publisher(stats, credential, Some(topic)) {
            return Reply::Now(refusal);
        }
        let is_publish_token = matches!(credential, Ok(Credential::Admin));
        if let Err(wait) = access.rate_limit_request(credential, ctx.now()) {
            add(&stats.rate_limited, 1);
            return Reply::Now(rate_limited(wait));
        }
        let publish = match publish::from_request(topic, request, body, settings) {
            Ok(publish) => publish,
            Err(refusal) => return Reply::Now(refusal),
        };
        if settings.publish_hook(topic) && !is_publish_token {
            let subject = admission.publisher_subject(access, request);
            let Ok(token) = hooks.ask(ctx, parts, publish_question(subject, &publish)) else {
                return Reply::Now(unavailable());
            };
            let (pending, arrived) = (Pending::Http(conn), Instant::now());
            self.hold(
                parts,
                token,
                conn,
                Gated {
                    publish,
                    pending,
                    arrived,
                },
            );
            let settings = &parts.shared.settings;
            let wait = settings.backend.as_ref().map_or(Duration::ZERO, |b| b.timeout());
            return Reply::Later(wait + Duration::from_secs(1) + settings.publish_timeout);
        }
        match self.submit(ctx, parts, publish, Pending::Http(conn)) {
            Ok(()) => Reply::Later(parts.shared.settings.publish_timeout),
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    /// A message from a WebSocket: its token first, if it has to
    /// authenticate; another token; else a publish (an envelope, or the
    /// message itself on a raw socket). A multiplexed socket's call is
    /// returned, for the calls concern.
    pub(super) fn ws_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        hooks: &mut BackendHooks,
        conn: ConnId,
        message: MessageRef<'_>,
    ) -> Option<Call> {
        if delivery.awaits_token(conn) {
            delivery.first_message(ctx, parts, hooks, conn, message);
            return None;
        }
        if delivery.is_multiplexed(conn) {
            return self.multiplexed_message(ctx, parts, delivery, hooks, conn, message);
        }
        let raw = (delivery.subscribers.get(conn)).is_some_and(|s| s.transport == Transport::RawWebSocket);
        let settings = &parts.shared.settings;
        // On a raw socket every message is data, an auth message too.
        if !raw
            && settings.auth.is_some()
            && let Some(token) = message.as_text().and_then(tether_auth::ws_auth_token)
        {
            delivery.refresh(ctx, parts, hooks, conn, &token);
            return None;
        }
        let subscriber = delivery.subscribers.get_mut(conn)?;
        let limited =
            subscriber.may_publish && (raw || message.is_text()) && over_rate(parts, subscriber, ctx.now());
        let published = if limited {
            Err(NotPublished::RateLimited)
        } else {
            publish::from_message(subscriber, conn, message, settings)
        };
        let answered = Answered { raw, topic: None };
        self.publish_from_socket(ctx, parts, delivery, hooks, conn, published, answered);
        None
    }

    /// A WebSocket publisher's publish, read (or refused as it was read):
    /// held for the backend's word where its topic asks for it, else
    /// handed to the broker; a refusal told as `answered` says.
    #[allow(
        clippy::too_many_arguments,
        reason = "the loop's concerns, lent, and the publish"
    )]
    fn publish_from_socket(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        hooks: &mut BackendHooks,
        conn: ConnId,
        published: Result<WsPublish, NotPublished>,
        answered: Answered<'_>,
    ) {
        let settings = &parts.shared.settings;
        let refused = match published {
            Ok(ws) if settings.publish_hook(&ws.publish.topic) => {
                let subject = (delivery.subscribers.get(conn)).and_then(|s| s.subject().map(str::to_owned));
                match hooks.ask(ctx, parts, publish_question(subject, &ws.publish)) {
                    Ok(token) => {
                        let (publish, pending, arrived) = (ws.publish, ws.pending, Instant::now());
                        return self.hold(
                            parts,
                            token,
                            conn,
                            Gated {
                                publish,
                                pending,
                                arrived,
                            },
                        );
                    }
                    Err(_) => {
                        let key = ws.publish.key.as_deref().map(str::to_owned);
                        if let Some(subscriber) = delivery.subscribers.get_mut(conn) {
                            subscriber.settle_in_flight(ws.len);
                        }
                        NotPublished::Undecided(key)
                    }
                }
            }
            Ok(ws) => match self.submit(ctx, parts, ws.publish, ws.pending) {
                Ok(()) => return,
                Err(e) => {
                    if let Some(subscriber) = delivery.subscribers.get_mut(conn) {
                        subscriber.settle_in_flight(ws.len);
                    }
                    NotPublished::Hub(e, ws.key)
                }
            },
            Err(refused) => refused,
        };
        refuse_ws_publish(ctx, parts, delivery, conn, refused, answered);
    }

    /// The outcome of a publish: its event's id and whether it was a
    /// duplicate (its key remembered: nothing published), or the refusal.
    /// An item of a server API request is the API's to settle: returned.
    pub(super) fn published(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        token: u64,
        result: Result<(EventId, bool), HubError>,
    ) -> Option<ItemSettled> {
        let pending = self.publishes.take(token, parts.stats)?;
        match publish::settle(pending, result, &mut delivery.subscribers, parts.stats) {
            Settled::Answer(conn, response) => parts.cors.respond(ctx, conn, response),
            Settled::WsReply(conn, text) => ctx.send(conn, &Message::text(text)),
            Settled::CloseRaw(conn, e) => refuse_raw(ctx, parts, delivery, conn, &e),
            Settled::Item(conn, index, result) => return Some((conn, index, result)),
            Settled::Nothing => {}
        }
        None
    }

    /// The backend's decision about the publish question `token`: the
    /// publishes it lets go, in their publisher's order, published (as
    /// rewritten) or refused.
    pub(super) fn publish_decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        token: u64,
        decision: Decision,
    ) {
        self.let_go_of_departed(parts.departed);
        for (gated, decision) in self.gate.decided(token, decision) {
            let outcome = Outcome::of(&decision);
            parts.stats.decided(Hook::Publish, outcome);
            let Gated {
                publish,
                pending,
                arrived,
            } = gated;
            let key = publish.key.as_deref().map(str::to_owned);
            let (pending, refusal) = match decision {
                Decision::Allow(allowed) => {
                    let publish = match allowed.data {
                        Some(data) => rewritten(publish, data, &parts.shared.settings.hub),
                        None => Ok(publish),
                    };
                    match publish {
                        Ok(publish) => {
                            let publisher = pending.to_tell_of_refusal();
                            match self.submit_arrived(ctx, parts, publish, pending, arrived) {
                                Ok(()) => continue,
                                Err(e) => (publisher, Refused::Hub(e)),
                            }
                        }
                        Err(refused) => {
                            add(&parts.stats.publish_refused, 1);
                            (pending, refused)
                        }
                    }
                }
                Decision::Deny { status, reason } => (pending, Refused::Denied(status, reason)),
                decision => {
                    log::debug!("hub: the backend did not decide a publish: {decision:?}");
                    (pending, Refused::Undecided)
                }
            };
            refuse_held_publish(ctx, parts, delivery, pending, refusal, key);
        }
    }
}

/// Tells the publisher of a held publish that it was not published.
fn refuse_held_publish(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &mut LoopParts<'_>,
    delivery: &mut Delivery,
    pending: Pending,
    refusal: Refused,
    key: Option<String>,
) {
    match pending {
        Pending::Http(conn) => {
            let response: Response = match refusal {
                Refused::Hub(e) => error_response(&e),
                Refused::Denied(status, reason) => refused(status, &reason),
                Refused::Undecided => unavailable(),
            };
            parts.cors.respond(ctx, conn, response);
        }
        Pending::WebSocket { conn, len, named, .. } => {
            let Some(subscriber) = delivery.subscribers.get_mut(conn) else {
                return;
            };
            subscriber.settle_in_flight(len);
            let raw = subscriber.transport == Transport::RawWebSocket;
            let answered = Answered {
                raw,
                topic: named.as_deref(),
            };
            let refused = match refusal {
                Refused::Hub(e) => NotPublished::Hub(e, key),
                Refused::Denied(_, reason) => NotPublished::Denied(
                    if reason.is_empty() {
                        "refused".to_owned()
                    } else {
                        reason
                    },
                    key,
                ),
                Refused::Undecided => NotPublished::Undecided(key),
            };
            refuse_ws_publish(ctx, parts, delivery, conn, refused, answered);
        }
        Pending::Internal | Pending::Api { .. } | Pending::External(_) => {}
    }
}

/// Whether a publish now takes `subscriber` over the publish rate (its
/// connection's bucket, or its subject's over every connection).
fn over_rate(parts: &LoopParts<'_>, subscriber: &mut Subscriber, now: std::time::Instant) -> bool {
    let Some(rate) = parts.shared.settings.publish_rate else {
        return false;
    };
    subscriber
        .rare_mut()
        .bucket
        .get_or_insert_with(|| rate::Bucket::full(rate, now))
        .take(rate, now)
        .and_then(|()| parts.shared.access.rate_limit(subscriber.subject(), now))
        .is_err()
}

/// How a WebSocket publisher is told of a refusal: a raw socket is
/// closed (it has no messages but data), a JSON one is sent an error,
/// naming the topic on a multiplexed socket.
#[derive(Debug, Clone, Copy)]
struct Answered<'a> {
    raw: bool,
    topic: Option<&'a str>,
}

/// Tells the WebSocket publisher `conn` why its message was not
/// published: an error message on a JSON socket, a close on a raw one
/// (which has no messages but data), a close for a publisher too fast.
fn refuse_ws_publish(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &mut LoopParts<'_>,
    delivery: &mut Delivery,
    conn: ConnId,
    refused: NotPublished,
    answered: Answered<'_>,
) {
    let Answered { raw, topic } = answered;
    match (refused, raw) {
        (NotPublished::TooFast, _) => ctx.close(
            conn,
            CloseCode::POLICY,
            "publishing faster than the hub sequences",
        ),
        (NotPublished::RateLimited, _) => {
            add(&parts.stats.rate_limited, 1);
            delivery.leave(ctx, parts, conn, &CloseReason::Ended);
            ctx.close(conn, CloseCode::POLICY, "publishing faster than the rate limit");
        }
        (NotPublished::Refused(code, why), true) => close_raw(ctx, parts, delivery, conn, code, why),
        (NotPublished::Refused(_, why), false) => {
            ctx.send(conn, &Message::text(error_json(topic, why, None)))
        }
        (NotPublished::BadEnvelope(why), _) => ctx.send(conn, &Message::text(error_json(topic, &why, None))),
        (NotPublished::Hub(e, _), true) => {
            close_raw(ctx, parts, delivery, conn, raw_close_code(&e), &e.to_string());
        }
        (NotPublished::Hub(e, key), false) => {
            ctx.send(
                conn,
                &Message::text(error_json(topic, &e.to_string(), key.as_deref())),
            );
        }
        (NotPublished::Denied(why, _), true) => {
            close_raw(ctx, parts, delivery, conn, CloseCode::POLICY, &why);
        }
        (NotPublished::Denied(why, key), false) => {
            ctx.send(conn, &Message::text(error_json(topic, &why, key.as_deref())));
        }
        (NotPublished::Undecided(_), true) => {
            close_raw(
                ctx,
                parts,
                delivery,
                conn,
                CloseCode::TRY_AGAIN_LATER,
                publish::UNDECIDED,
            );
        }
        (NotPublished::Undecided(key), false) => {
            ctx.send(
                conn,
                &Message::text(error_json(topic, publish::UNDECIDED, key.as_deref())),
            );
        }
    }
}

/// The close code of a raw subscriber whose publish the hub refused:
/// 1008 for what it sent, 1013 when the hub cannot take publishes now.
fn raw_close_code(e: &HubError) -> CloseCode {
    if e.http_status() == 503 {
        CloseCode::TRY_AGAIN_LATER
    } else {
        CloseCode::POLICY
    }
}

/// A raw subscriber's publish is refused: it has no messages but data,
/// so it is closed, with the reason.
fn refuse_raw(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &mut LoopParts<'_>,
    delivery: &mut Delivery,
    conn: ConnId,
    e: &HubError,
) {
    close_raw(ctx, parts, delivery, conn, raw_close_code(e), &e.to_string());
}

/// Closes a raw subscriber: it leaves at once, so that nothing more is
/// sent to it before the close frame.
fn close_raw(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &mut LoopParts<'_>,
    delivery: &mut Delivery,
    conn: ConnId,
    code: CloseCode,
    why: &str,
) {
    delivery.leave(ctx, parts, conn, &CloseReason::Ended);
    ctx.close(conn, code, close_reason(why));
}
