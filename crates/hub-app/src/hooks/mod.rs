//! Requests held while the application's backend decides who they are
//! (the connect hook) or whether they may subscribe (the subscribe hook),
//! and the way back: the backend's thread posts the decision to the loop
//! that asked ([`ControlMessage::Decided`]), which lets the request go on
//! as what it now is, or answers it with the backend's refusal, or 503
//! when the backend could not decide.
//!
//! A request goes through the hub's callbacks up to three times: routed
//! to [`HubRoute::Decide`] and held while the question is out; let go on
//! as [`HubRoute::Decided`], the decision put into the request's
//! [`Admission`] (by `on_proceed`), where it is routed again with the
//! decision standing for its credential; and let go on once more as the
//! route that makes it (a long poll, a publish, a WebSocket, an event
//! stream), its new admission carrying the decision to that route's
//! callbacks, so that its timeout, its client leaving and shutdown are
//! that route's.

mod late;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_auth::{Identity, Rights, TetherClaim};
use tether_hub::{Allowed, ControlMessage, Decision, Grant, HubMessage};
use tether_server::{ConnId, Ctx, Reply, Request, Response, Route};

use super::access::Presented;
use super::access::{auth_ok, warning_time};
use super::admission::{Admission, Served};
use super::backend::{Busy, Hook, Question};
use super::loop_parts::LoopParts;
use super::metrics::{HubStats, Outcome, add, count_refusal};
use super::routes::{Endpoint, HubRoute};
use super::settings::HubSettings;
use super::subscribers::{Subscriber, Subscribers};

pub(super) use self::late::{Late, close_undecided};

/// How long a decision waits for its request to go on (the server hands
/// it to `on_proceed` right after): one that no request took (its client
/// left meanwhile) is forgotten then.
const DECIDED_FOR: Duration = Duration::from_secs(5);

/// What a loop asked the backend and has not heard back about, and what
/// it decided for requests still on their way.
#[derive(Debug)]
pub(super) struct Decisions<C = ConnId> {
    next: u64,
    asked: HashMap<u64, Asked<C>>,
    /// The question each held request waits on.
    held: HashMap<C, u64>,
    /// Decisions for requests about to go on, and when they were made:
    /// each is moved into its request's admission as it goes on.
    decided: HashMap<C, (Presented, Instant)>,
}

impl<C> Default for Decisions<C> {
    fn default() -> Decisions<C> {
        Decisions {
            next: 0,
            asked: HashMap::new(),
            held: HashMap::new(),
            decided: HashMap::new(),
        }
    }
}

/// A question out, and what it was for.
#[derive(Debug)]
pub(super) enum Asked<C = ConnId> {
    /// Who the held request `conn` is; then, with `then_subscribe`,
    /// whether it may subscribe to that topic.
    Connect {
        conn: C,
        transport: &'static str,
        then_subscribe: Option<String>,
    },
    /// Whether the held request `conn` (who the connect hook said, if it
    /// was asked) may subscribe; what its ticket granted, if it came
    /// with one (used when the question was put).
    Subscribe {
        conn: C,
        identity: Option<Identity>,
        ticket: Option<Grant>,
    },
    /// A later expiry for the subscriber `conn` (not a held request).
    Refresh { conn: C },
    /// Whether the WebSocket `conn` may subscribe as the subject its
    /// token named after its upgrade (not a held request either).
    Late { conn: C, late: Box<Late> },
    /// Whether a subscribe of the multiplexed socket `conn` may go on:
    /// the socket waits for it on that subscription alone (not a held
    /// request, and one of many a socket may have out).
    Subscription { conn: C },
}

impl<C: Copy> Asked<C> {
    fn conn(&self) -> C {
        match self {
            Asked::Connect { conn, .. }
            | Asked::Subscribe { conn, .. }
            | Asked::Refresh { conn }
            | Asked::Subscription { conn }
            | Asked::Late { conn, .. } => *conn,
        }
    }

    fn hook(&self) -> Hook {
        match self {
            Asked::Connect { .. } => Hook::Connect,
            Asked::Subscribe { .. } | Asked::Late { .. } | Asked::Subscription { .. } => Hook::Subscribe,
            Asked::Refresh { .. } => Hook::Refresh,
        }
    }
}

impl<C: Copy + Eq + std::hash::Hash> Decisions<C> {
    /// Forgets what a held request waited for (it was answered, timed
    /// out, or its client left).
    pub(super) fn forget(&mut self, conn: C) {
        if let Some(token) = self.held.remove(&conn) {
            self.asked.remove(&token);
        }
        self.decided.remove(&conn);
    }

    /// Forgets the question a socket waits on, if any: its answer, when it
    /// comes, finds nothing to act on.
    fn forget_question(&mut self, conn: C) {
        if let Some(token) = self.held.remove(&conn) {
            self.asked.remove(&token);
        }
    }

    /// The decision made for the held request `conn`, which goes on now
    /// ([`tether_server::App::on_proceed`]): taken, into its admission.
    pub(super) fn take_decided(&mut self, conn: C) -> Option<Presented> {
        self.decided.remove(&conn).map(|(presented, _)| presented)
    }

    /// Forgets the decisions no request took.
    pub(super) fn tick(&mut self, now: Instant) {
        self.decided
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= DECIDED_FOR);
    }
}

/// The transport a hub path names, as a question tells the backend.
fn transport_of(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::WebSocket => "websocket",
        Endpoint::Events => "sse",
        Endpoint::Poll => "poll",
        Endpoint::Presence => "presence",
        Endpoint::Publish => "http",
    }
}

/// The identity an allow of the connect hook gives, or why it cannot be
/// taken: patterns that are not patterns, or an expiry already passed.
fn identity_of(allowed: Allowed, now: u64) -> Result<Identity, Response> {
    let claim = TetherClaim::new(allowed.subscribe, allowed.publish);
    let Ok(rights) = Rights::from_claim(&claim, allowed.subject.as_deref()) else {
        log::warn!("hub: the backend's connect answer has rights that are not topic patterns");
        return Err(unavailable());
    };
    if allowed.expires_at.is_some_and(|exp| exp <= now) {
        return Err(Response::text(401, "expired\n"));
    }
    Ok(Identity::new(allowed.subject, rights, allowed.expires_at))
}

/// The connect hook's question about `request`, coming in over
/// `transport` for `topic` (none for the multiplexed socket): its peer,
/// and the header fields and cookies the backend sees.
fn connect_question(
    settings: &HubSettings,
    request: &Request<'_>,
    transport: &'static str,
    topic: Option<&str>,
) -> Question {
    let backend = settings.backend.as_deref();
    let headers = backend.map_or_else(Vec::new, |b| forwarded_headers(request, b.forwarded_headers()));
    // A cookie speaks for its owner only on a request from the server's
    // own or a trusted origin (a page elsewhere can make the browser send
    // it, to a WebSocket above all).
    let cookies = match backend {
        Some(b) if super::origin::cookie_ok(&settings.trusted_origins, request) => {
            forwarded_cookies(request, b.forwarded_cookies())
        }
        _ => Vec::new(),
    };
    Question::Connect {
        transport,
        topic: topic.map(str::to_owned),
        remote: request.peer_addr().map(|a| a.ip().to_string()),
        headers,
        cookies,
    }
}

/// The answer to a request the backend could not decide.
pub(super) fn unavailable() -> Response {
    super::replies::refuse(
        503,
        "the application's backend did not decide\n",
        Some(super::replies::SOON),
    )
}

/// The answer to a request the backend refused.
pub(super) fn refused(status: u16, reason: &str) -> Response {
    let status = if (400..500).contains(&status) { status } else { 403 };
    let reason = if reason.is_empty() { "refused" } else { reason };
    Response::text(status, format!("{reason}\n"))
}

/// The backend's hooks on one loop: the questions out and what they
/// hold (requests, publishes), the decisions made for sessions about to
/// open.
#[derive(Debug)]
pub(super) struct BackendHooks {
    /// Requests held for the backend to decide, and its decisions.
    pub(super) decisions: Decisions,
    /// This loop's index: where the answers are posted.
    index: usize,
    /// This loop's counters: the backend's answer times go in, from
    /// whichever thread answers.
    stats: Arc<HubStats>,
}

/// Whether `subscriber`, about to subscribe, asks the backend for a
/// later expiry before it expires: it was let in by the connect hook
/// (with an expiry), and the backend answers refresh questions. Its
/// warning time is then when it asks.
pub(super) fn refresh_by_backend(
    presented: Option<&Presented>,
    settings: &HubSettings,
    subscriber: &mut Subscriber,
    now: u64,
) {
    let by_hook = presented.is_some_and(|p| p.identity.as_ref().is_some_and(|i| i.expires_at.is_some()));
    if by_hook
        && subscriber.subject().is_some()
        && subscriber.transport != tether_hub::Transport::Poll
        && settings.backend_for(Hook::Refresh).is_some()
    {
        subscriber.refreshed = true;
        subscriber.set_warn_at(subscriber.deadline().map(|d| warning_time(d, now)));
    }
}

impl BackendHooks {
    pub(super) fn new(index: usize, stats: Arc<HubStats>) -> BackendHooks {
        BackendHooks {
            decisions: Decisions::default(),
            index,
            stats,
        }
    }

    /// Puts `question` to the backend for `asked`; the answer comes back
    /// as a post to this loop.
    fn ask_backend(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        settings: &HubSettings,
        question: Question,
        asked: Asked,
    ) -> Result<(), Busy> {
        let token = self.put_question(ctx, settings, question)?;
        self.decisions.held.insert(asked.conn(), token);
        self.decisions.asked.insert(token, asked);
        Ok(())
    }

    /// `conn`'s question, or the decision made for it, is no longer
    /// wanted (its request is gone or answered otherwise).
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.decisions.forget(conn);
    }

    /// The decision the backend made for `conn`, let go on: taken.
    pub(super) fn take_decided(&mut self, conn: ConnId) -> Option<Presented> {
        self.decisions.take_decided(conn)
    }

    /// The loop's tick: decisions not taken in time are dropped.
    pub(super) fn tick(&mut self, now: Instant) {
        self.decisions.tick(now);
    }

    /// Puts `question` to the backend: the token its answer will name,
    /// when it comes back as a post to this loop.
    fn put_question(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        settings: &HubSettings,
        question: Question,
    ) -> Result<u64, Busy> {
        let hook = question.hook();
        let Some(backend) = settings.backend_for(hook).cloned() else {
            // A namespace asks for a hook the backend does not answer.
            log::warn!("hub: no backend answers the {} hook", hook.name());
            return Err(Busy);
        };
        self.decisions.next += 1;
        let token = self.decisions.next;
        let poster = ctx.poster();
        let index = self.index;
        let (stats, asked_at) = (self.stats.clone(), Instant::now());
        let answer = Box::new(move |decision| {
            stats.latencies.hook(hook).observe(asked_at.elapsed());
            poster.post(
                index,
                HubMessage::Control(ControlMessage::Decided { token, decision }),
            );
        });
        backend.ask(index, question, answer)?;
        Ok(token)
    }

    /// A request routed to [`HubRoute::Decide`]: the question its route
    /// needs answered first, the request held meanwhile.
    pub(super) fn decide_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        served: Served<'_, '_>,
    ) -> Reply {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let settings = parts.shared.settings.clone();
        let access = &parts.shared.access;
        let asks_connect = settings.backend_for(Hook::Connect).is_some()
            && access.presents_nothing(request, admission.ticket(), admission.presented());
        let topicless = match request.path() {
            super::router::MULTIPLEXED_PATH => Some("websocket"),
            super::router::MULTI_EVENTS_PATH => Some("sse"),
            super::router::MULTI_POLL_PATH => Some("poll"),
            super::router::RPC_PATH => Some("http"),
            _ => None,
        };
        if let Some(transport) = topicless
            && asks_connect
        {
            // A multiplexed connection (or a call) names no one topic:
            // only who it is is asked (each of its topics is decided
            // later, as its namespace says).
            let question = connect_question(&settings, request, transport, None);
            let asked = Asked::Connect {
                conn,
                transport,
                then_subscribe: None,
            };
            return self.hold_for(ctx, parts, &settings, question, asked);
        }
        let (Some(topic), Some(endpoint)) = (admission.topic().cloned(), admission.endpoint()) else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let topic = &*topic;
        let transport = transport_of(endpoint);
        let subscribes = endpoint != Endpoint::Publish && settings.subscribe_hook(topic);
        let (question, asked) = if asks_connect {
            (
                connect_question(&settings, request, transport, Some(topic)),
                Asked::Connect {
                    conn,
                    transport,
                    then_subscribe: subscribes.then(|| topic.to_owned()),
                },
            )
        } else {
            // Its ticket is used now, once, whatever the backend says.
            let ticket = match access.redeem_ticket(admission.ticket(), topic) {
                Ok(ticket) => ticket,
                Err(refusal) => {
                    count_refusal(parts.stats, refusal);
                    return Reply::Now(refusal.response());
                }
            };
            let identity = admission.presented().and_then(|p| p.identity.clone());
            let subject = match &identity {
                Some(identity) => identity.subject.clone(),
                None => admission.credential_subject(access, request),
            };
            (
                Question::Subscribe {
                    subject,
                    topic: topic.to_owned(),
                    transport,
                },
                Asked::Subscribe {
                    conn,
                    identity,
                    ticket,
                },
            )
        };
        self.hold_for(ctx, parts, &settings, question, asked)
    }

    /// Puts `question` for the held request `asked` is about: held until
    /// the backend decides (and a second more), or 503 at once when the
    /// backend cannot be asked.
    fn hold_for(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        settings: &HubSettings,
        question: Question,
        asked: Asked,
    ) -> Reply {
        let hook = question.hook();
        match self.ask_backend(ctx, settings, question, asked) {
            Ok(()) => {
                let wait = settings
                    .backend
                    .as_ref()
                    .map_or(Duration::ZERO, |b| b.timeout())
                    .saturating_add(Duration::from_secs(1));
                Reply::Hold(wait)
            }
            Err(Busy) => {
                parts.stats.decided(hook, Outcome::Unavailable);
                Reply::Now(unavailable())
            }
        }
    }

    /// Asks the backend whether the WebSocket `conn` may subscribe to
    /// `topic` as `subject`, named by a token after its upgrade (`late`
    /// says what it becomes on an allow); a question it waited on before
    /// is forgotten. `Err`: the backend could not be asked (counted).
    pub(super) fn ask_late(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        conn: ConnId,
        subject: Option<String>,
        topic: String,
        late: Late,
    ) -> Result<(), Busy> {
        self.decisions.forget_question(conn);
        let question = Question::Subscribe {
            subject,
            topic,
            transport: "websocket",
        };
        let asked = Asked::Late {
            conn,
            late: Box::new(late),
        };
        self.ask_backend(ctx, &parts.shared.settings, question, asked)
            .inspect_err(|_| parts.stats.decided(Hook::Subscribe, Outcome::Unavailable))
    }

    /// Asks the backend whether the multiplexed socket `conn` may
    /// subscribe to `topic` as `subject`: the question's token, which the
    /// subscription waits on. `Err`: the backend could not be asked
    /// (counted).
    pub(super) fn ask_subscription(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        conn: ConnId,
        subject: Option<String>,
        topic: String,
        transport: &'static str,
    ) -> Result<u64, Busy> {
        let question = Question::Subscribe {
            subject,
            topic,
            transport,
        };
        let token = self
            .put_question(ctx, &parts.shared.settings, question)
            .inspect_err(|_| parts.stats.decided(Hook::Subscribe, Outcome::Unavailable))?;
        self.decisions.asked.insert(token, Asked::Subscription { conn });
        Ok(token)
    }

    /// The multiplexed socket whose subscription question `token` is, if
    /// it is one (its answer is the delivery's to act on).
    pub(super) fn take_subscription(&mut self, token: u64) -> Option<ConnId> {
        if !matches!(self.decisions.asked.get(&token), Some(Asked::Subscription { .. })) {
            return None;
        }
        self.decisions.asked.remove(&token).map(|asked| asked.conn())
    }

    /// The socket and what it becomes, if question `token` is about a
    /// subject named late (its answer is the delivery's to act on).
    pub(super) fn take_late(&mut self, token: u64) -> Option<(ConnId, Late)> {
        if !matches!(self.decisions.asked.get(&token), Some(Asked::Late { .. })) {
            return None;
        }
        let Some(Asked::Late { conn, late }) = self.decisions.asked.remove(&token) else {
            return None;
        };
        self.decisions.held.remove(&conn);
        Some((conn, *late))
    }

    /// The backend's decision about question `token` (a publish's is the
    /// publishing's to act on).
    pub(super) fn decision(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        subscribers: &mut Subscribers<ConnId>,
        token: u64,
        decision: Decision,
    ) {
        let Some(asked) = self.decisions.asked.remove(&token) else {
            // Answered already (timed out), or its client left.
            return;
        };
        if let Asked::Refresh { conn } = asked {
            return refreshed(ctx, parts, subscribers, conn, decision);
        }
        let conn = asked.conn();
        self.decisions.held.remove(&conn);
        let hook = asked.hook();
        let outcome = Outcome::of(&decision);
        parts.stats.decided(hook, outcome);
        let allowed = match decision {
            Decision::Allow(allowed) => allowed,
            Decision::Deny { status, reason } => {
                match status {
                    401 => add(&parts.stats.refused_401, 1),
                    _ => add(&parts.stats.refused_403, 1),
                }
                return parts.cors.respond(ctx, conn, refused(status, &reason));
            }
            decision => {
                log::debug!("hub: the backend did not decide ({}): {decision:?}", hook.name());
                return parts.cors.respond(ctx, conn, unavailable());
            }
        };
        let now = parts.shared.access.unix_secs(ctx.now());
        match asked {
            Asked::Connect {
                transport,
                then_subscribe,
                ..
            } => {
                let identity = match identity_of(allowed, now) {
                    Ok(identity) => identity,
                    Err(response) => return parts.cors.respond(ctx, conn, response),
                };
                let Some(topic) = then_subscribe else {
                    return self.go_on(
                        ctx,
                        conn,
                        Presented {
                            identity: Some(identity),
                            subscribe_decided: false,
                            ticket: None,
                        },
                    );
                };
                let question = Question::Subscribe {
                    subject: identity.subject.clone(),
                    topic,
                    transport,
                };
                let asked = Asked::Subscribe {
                    conn,
                    identity: Some(identity),
                    ticket: None,
                };
                if self
                    .ask_backend(ctx, &parts.shared.settings, question, asked)
                    .is_err()
                {
                    parts.stats.decided(Hook::Subscribe, Outcome::Unavailable);
                    parts.cors.respond(ctx, conn, unavailable());
                }
            }
            Asked::Subscribe { identity, ticket, .. } => self.go_on(
                ctx,
                conn,
                Presented {
                    identity,
                    subscribe_decided: true,
                    ticket,
                },
            ),
            Asked::Refresh { .. } | Asked::Late { .. } | Asked::Subscription { .. } => {}
        }
    }

    /// Asks the backend for a later expiry of the subscriber `conn`, whose
    /// own is near: the whole seconds the backend may take to answer (its
    /// timeout, rounded up). Not asked (busy): `None`, and it expires when
    /// it was to.
    pub(super) fn ask_refresh(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        settings: &HubSettings,
        stats: &HubStats,
        conn: ConnId,
        subscriber: &Subscriber,
    ) -> Option<u64> {
        let subject = subscriber.subject().map(str::to_owned)?;
        let transport = match subscriber.transport {
            tether_hub::Transport::EventStream => "sse",
            tether_hub::Transport::Poll => "poll",
            _ => "websocket",
        };
        match self.put_question(ctx, settings, Question::Refresh { subject, transport }) {
            Ok(token) => {
                self.decisions.asked.insert(token, Asked::Refresh { conn });
                let timeout = settings.backend_for(Hook::Refresh)?.timeout();
                Some((timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(1))
            }
            Err(Busy) => {
                stats.decided(Hook::Refresh, Outcome::Unavailable);
                None
            }
        }
    }

    /// Lets the held request `conn` go on with what the backend decided:
    /// as [`HubRoute::Decided`], the decision handed to its admission
    /// when it does ([`Decisions::take_decided`]).
    fn go_on(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, presented: Presented) {
        (self.decisions.decided).insert(conn, (presented, ctx.now()));
        ctx.proceed(conn, Route::Handler(()));
    }

    /// A request the backend let go on ([`HubRoute::Decided`]), routed
    /// again (`route`, with the decision standing for its credential): let
    /// go on as that route (a handler, or the session it now opens), the
    /// new admission its state from now on. A handler's request goes on
    /// under its own route, so that its timeout, its client leaving and
    /// shutdown are handled as that route's (a long poll's timeout is its
    /// empty answer, not a 503 for a decision that was made).
    pub(super) fn go_on_as(
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        route: Route<Admission>,
        state: &mut Admission,
    ) -> Reply {
        let route = route.map(|admission| {
            *state = admission;
        });
        if matches!(route, Route::Handler(())) && state.route == HubRoute::Decided {
            return Reply::Now(unavailable());
        }
        ctx.proceed(conn, route);
        Reply::Hold(Duration::from_secs(1))
    }

    /// A held request whose decision did not come in time.
    pub(super) fn decision_timeout(&mut self, conn: ConnId) -> Response {
        self.decisions.forget(conn);
        unavailable()
    }

    /// Puts `question` (the rpc, latest or publish hook's) to the
    /// backend: the token its decision will name (the concern that asked
    /// keeps its caller, topic or publish under it), or `Err` if it could
    /// not be asked (counted).
    pub(super) fn ask(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        question: Question,
    ) -> Result<u64, Busy> {
        let hook = question.hook();
        self.put_question(ctx, &parts.shared.settings, question)
            .inspect_err(|_| parts.stats.decided(hook, Outcome::Unavailable))
    }
}

/// The backend's answer about a later expiry for the subscriber
/// `conn`: an allow moves its expiry (a WebSocket is told, as for a new
/// token); a refusal, or no answer, leaves it to expire when it was to.
fn refreshed(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &LoopParts<'_>,
    subscribers: &mut Subscribers<ConnId>,
    conn: ConnId,
    decision: Decision,
) {
    let outcome = Outcome::of(&decision);
    parts.stats.decided(Hook::Refresh, outcome);
    let Decision::Allow(Allowed {
        expires_at: Some(exp),
        ..
    }) = decision
    else {
        log::debug!("hub: no later expiry for a subscriber: {decision:?}");
        return;
    };
    let now = parts.shared.access.unix_secs(ctx.now());
    // As at the start, the backend's expiry is the deadline itself.
    let deadline = exp;
    let Some(subscriber) = subscribers.renew(conn, Some(deadline), Some(warning_time(deadline, now))) else {
        return;
    };
    if subscriber.transport == tether_hub::Transport::WebSocket {
        ctx.send(conn, &tether_server::Message::text(auth_ok(Some(deadline), now)));
    }
}

/// The header fields of `request` that `names` (lower case) lists.
fn forwarded_headers(request: &Request<'_>, names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| Some((name.clone(), request.header(name)?.to_owned())))
        .collect()
}

/// The cookies of `request` that `names` lists.
fn forwarded_cookies(request: &Request<'_>, names: &[String]) -> Vec<(String, String)> {
    let Some(cookie) = request.header("cookie") else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| Some((name.clone(), tether_auth::cookie_token(cookie, name)?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_becomes_an_identity_with_its_rights() {
        let allowed = Allowed::new()
            .identity(
                Some("ann".into()),
                vec!["user.{sub}.*".into()],
                vec!["chat.1".into()],
            )
            .expires_at(Some(2000));
        let identity = identity_of(allowed, 1000).unwrap();
        assert_eq!(identity.subject.as_deref(), Some("ann"));
        assert!(identity.rights.may_subscribe("user.ann.inbox"));
        assert!(!identity.rights.may_subscribe("user.bob.inbox"));
        assert!(identity.rights.may_publish("chat.1"));
        assert_eq!(identity.expires_at, Some(2000));
    }

    #[test]
    fn an_allow_already_expired_or_with_bad_patterns_is_not_taken() {
        let expired = Allowed::new().expires_at(Some(1000));
        assert_eq!(identity_of(expired, 1000).unwrap_err().status, 401);
        let bad = Allowed::new().identity(Some("ann".into()), vec!["not a pattern".into()], vec![]);
        assert_eq!(identity_of(bad, 1000).unwrap_err().status, 503);
    }

    #[test]
    fn refusals_keep_client_statuses_only() {
        assert_eq!(refused(401, "who are you").status, 401);
        assert_eq!(refused(200, "").status, 403);
        assert_eq!(refused(503, "").status, 403);
        assert_eq!(refused(429, "slow down").body, b"slow down\n");
    }

    #[test]
    fn a_decision_is_taken_once_by_its_request() {
        let mut decisions = Decisions::<u32>::default();
        let now = Instant::now();
        decisions.decided.insert(7, (Presented::default(), now));
        assert!(decisions.take_decided(8).is_none());
        assert!(decisions.take_decided(7).is_some());
        assert!(decisions.take_decided(7).is_none());
    }

    #[test]
    fn decisions_no_request_took_are_forgotten() {
        let mut decisions = Decisions::<u32>::default();
        let start = Instant::now();
        decisions.decided.insert(7, (Presented::default(), start));
        decisions
            .decided
            .insert(8, (Presented::default(), start + DECIDED_FOR));
        decisions.tick(start + DECIDED_FOR + Duration::from_secs(1));
        assert!(decisions.take_decided(7).is_none());
        assert!(decisions.take_decided(8).is_some());
    }
}
