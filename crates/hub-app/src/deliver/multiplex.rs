//! The delivery's side of multiplexed sockets (`GET /ws`): a socket
//! opens as a connection (its credential's deadline, subject, revocation
//! and place among its subject's connections, as any socket's), then each
//! subscribe is decided as a one-topic connection to that topic would be
//! (its rights, namespace, ticket, the backend's subscribe hook, its
//! replay or gap signal, its presence) and answered, never by a close;
//! each subscription is registered with the replica under its own key.

use std::sync::Arc;
use std::time::Instant;

use tether_hub::{Decision, HubMessage, Resumed, Subscribed, Transport, is_valid_topic};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message, Response};

use super::Delivery;
use super::streams::{self, StreamReplay};
use crate::access::{Credential, auth_ok, warning_time};
use crate::admission::Served;
use crate::backend::Hook;
use crate::broker_view::LoopContext;
use crate::hooks::{BackendHooks, refresh_by_backend};
use crate::loop_parts::LoopParts;
use crate::metrics::{Denial, HubStats, Outcome, count_refusal};
use crate::multiplex::answer;
use crate::multiplex::{Multiplexed, SubscribedBy, Subscription};
use crate::routes::Refusal;
use crate::settings::HubSettings;
use crate::subscribers::{Replaying, SubKey, Subscriber, send_replay};

/// The most bytes of a `since` id a subscribe is answered for: ids are
/// `MS-SEQ`, far shorter.
const LONGEST_SINCE: usize = 128;

/// Why the hub ended a subscription that a token sent later no longer
/// grants.
const NO_LONGER_GRANTED: &str = "topic no longer granted";

/// A subscribe, as the client (or the server) asked for it.
#[derive(Debug)]
pub(crate) struct SubscribeAsked<'a> {
    pub(crate) topic: &'a str,
    pub(crate) since: Option<String>,
    pub(crate) presence: bool,
    pub(crate) ticket: Option<&'a str>,
    pub(crate) by: SubscribedBy,
    /// It takes deltas where the topic's namespace sends them.
    pub(crate) delta: bool,
}

fn send(ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, text: String) {
    ctx.send(conn, &Message::text(text));
}

/// How a multiplexed connection is told about its subscriptions: a
/// socket by messages, an event stream by events named for the answer
/// (`refused`, `unsubscribed`) whose data is the message a socket gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    Socket,
    Stream,
}

impl Wire {
    pub(super) fn of(connection: &Multiplexed) -> Wire {
        if connection.is_stream() {
            Wire::Stream
        } else {
            Wire::Socket
        }
    }

    /// The transport its subscriptions are registered under.
    pub(super) fn transport(self) -> Transport {
        match self {
            Wire::Socket => Transport::WebSocket,
            Wire::Stream => Transport::EventStream,
        }
    }

    /// What the backend's subscribe hook is told it is.
    fn hook_name(self) -> &'static str {
        match self {
            Wire::Socket => "websocket",
            Wire::Stream => "sse",
        }
    }

    /// Sends answer `text` (of type `kind`) to `conn`.
    pub(super) fn tell(self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, kind: &str, text: String) {
        match self {
            Wire::Socket => send(ctx, conn, text),
            Wire::Stream => {
                let event = tether_sse::Event::new().event(kind).data(&text);
                if let Err(e) = ctx.send_event(conn, &event) {
                    log::debug!("hub: a {kind} event was not sent: {e}");
                }
            }
        }
    }
}

/// The `refused` answer a per-topic route's refusal `response` makes.
fn refused_as(ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, wire: Wire, topic: &str, response: &Response) {
    let error = String::from_utf8_lossy(&response.body);
    wire.tell(
        ctx,
        conn,
        "refused",
        answer::refused(topic, response.status, &error),
    );
}

impl Delivery {
    /// `GET /ws` opened, as its admission says (who it is); the topics
    /// its token's `join` claim names are subscribed as if it had asked.
    pub(super) fn open_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        served: Served<'_, '_>,
    ) {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let access = &parts.shared.access;
        let holder = admission.holder(access, request);
        // Routing refused a credential that does not verify.
        let credential = admission
            .take_credential(access, request)
            .unwrap_or(Credential::None);
        // The connection's own entry: no topic of its own, never a
        // member, not in the replica.
        let mut connection = Subscriber::new(Arc::from(""), Transport::WebSocket, None);
        connection.hold(holder);
        let now = access.unix_secs(ctx.now());
        refresh_by_backend(
            admission.presented(),
            &parts.shared.settings,
            &mut connection,
            now,
        );
        connection.set_warn_at(connection.deadline().map(|d| warning_time(d, now)));
        if !super::admit_connection(ctx, parts, conn, &mut connection) {
            return;
        }
        let join: Vec<String> = match &credential {
            Credential::Token(who) => who.rights.join_topics().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        self.muxes.open(conn, Multiplexed::new(credential));
        self.register(parts.stats, conn, connection);
        for topic in &join {
            let asked = SubscribeAsked {
                topic,
                since: None,
                presence: false,
                ticket: None,
                by: SubscribedBy::Join,
                delta: false,
            };
            self.subscribe_multiplexed(ctx, parts, Some(&mut *hooks), conn, asked);
        }
    }

    /// The topics the multiplexed socket `conn` follows (those waiting for
    /// the backend's word included); `None` for another connection.
    pub(crate) fn multiplexed_topics(&self, conn: ConnId) -> Option<Vec<Arc<str>>> {
        let socket = self.muxes.get(conn)?;
        Some(socket.iter().map(|s| Arc::clone(&s.topic)).collect())
    }

    /// Takes one subscribe or unsubscribe of the multiplexed socket `conn`
    /// under its rate ([`HubSettings::max_subscribe_rate`]): whether it
    /// may be acted on.
    pub(crate) fn take_churn(&mut self, conn: ConnId, settings: &HubSettings, now: Instant) -> bool {
        (self.muxes.get_mut(conn)).is_none_or(|socket| socket.take_churn(settings, now))
    }

    /// Whether `conn` is a multiplexed socket.
    pub(crate) fn is_multiplexed(&self, conn: ConnId) -> bool {
        self.muxes.contains(conn)
    }

    /// A subscribe of a multiplexed socket: refused with the status the
    /// topic's own route would answer, held for the backend's word, or
    /// placed (answered `subscribed`, then its replay or gap signal).
    ///
    /// `hooks` may be left out for a subscribe of the server's, which
    /// asks no hook.
    pub(crate) fn subscribe_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: Option<&mut BackendHooks>,
        conn: ConnId,
        asked: SubscribeAsked<'_>,
    ) {
        let (shared, stats) = (parts.shared, parts.stats);
        let (settings, access) = (&shared.settings, &shared.access);
        let topic = asked.topic;
        let Some(socket) = self.muxes.get_mut(conn) else {
            return;
        };
        let wire = Wire::of(socket);
        let refusal = if !is_valid_topic(topic) {
            Some(Refusal::BadTopic.response())
        } else if socket.get(topic).is_some() {
            Some(Response::text(409, "already subscribed to this topic"))
        } else if socket.len() >= settings.max_subscriptions {
            Some(Response::text(
                429,
                format!(
                    "a connection follows at most {} topics",
                    settings.max_subscriptions
                ),
            ))
        } else if settings.refuses_topic(topic) {
            Some(Refusal::NoNamespace.response())
        } else if asked.presence && !settings.tells_join_leave(topic) {
            Some(Refusal::JoinLeaveOff.response())
        } else if asked.since.as_ref().is_some_and(|s| s.len() > LONGEST_SINCE) {
            Some(Response::text(400, "since is an event id (MS-SEQ)"))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return refused_as(ctx, conn, wire, topic, &refusal);
        }
        let trusted = asked.by == SubscribedBy::Server;
        let asks_hook =
            !trusted && settings.subscribe_hook(topic) && !matches!(socket.credential, Credential::Admin);
        let mut subscription = Subscription::new(Arc::from(topic), 0);
        if !trusted {
            let credential: Result<Credential, Refusal> = Ok(socket.credential.clone());
            // A ticket is used here, once, whatever the backend says.
            match access.authorize_subscriber(asked.ticket, topic, || &credential, true, None) {
                Ok(grant) => subscription.may_publish = grant.publish,
                Err(refusal) => {
                    count_refusal(stats, refusal);
                    return refused_as(ctx, conn, wire, topic, &refusal.response());
                }
            }
            if asked.ticket.is_some() {
                subscription.by_ticket = true;
                subscription.deadline = access.take_ticket_holder(asked.ticket).and_then(|h| h.deadline);
            }
        }
        let Some(number) = socket.number_for(topic) else {
            let refusal = match wire {
                Wire::Socket => Response::text(429, "no subscription number left"),
                Wire::Stream => Response::text(400, "not a topic of this stream's list"),
            };
            return refused_as(ctx, conn, wire, topic, &refusal);
        };
        subscription.number = number;
        subscription.requested = asked.since;
        subscription.watches = asked.presence;
        subscription.by = asked.by;
        subscription.delta = asked.delta && settings.sends_deltas(topic);
        if asks_hook {
            let subject = self
                .subscribers
                .get(conn)
                .and_then(|s| s.subject().map(str::to_owned));
            let asked = hooks.map(|hooks| {
                hooks.ask_subscription(ctx, parts, conn, subject, topic.to_owned(), wire.hook_name())
            });
            match asked {
                Some(Ok(question)) => {
                    subscription.deciding = Some(question);
                    if let Some(socket) = self.muxes.get_mut(conn) {
                        socket.insert(subscription);
                    }
                }
                Some(Err(_)) | None => refused_as(ctx, conn, wire, topic, &crate::hooks::unavailable()),
            }
            return;
        }
        self.place(ctx, parts, conn, subscription);
    }

    /// Registers `subscription` with the replica and answers it:
    /// `subscribed`, then its replay or gap signal (or nothing yet, while
    /// the topic's backlog is on its way); its presence joined.
    fn place(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        mut subscription: Subscription,
    ) {
        let (shared, stats) = (parts.shared, parts.stats);
        let settings = &shared.settings;
        let Some(wire) = self.muxes.get(conn).map(Wire::of) else {
            return;
        };
        let transport = wire.transport();
        let key = SubKey::multiplexed(conn, subscription.number);
        let topic = Arc::clone(&subscription.topic);
        let requested = subscription.requested.as_deref();
        // Where a stream's topic is when it goes live, for its cursor.
        let head = (wire == Wire::Stream).then(|| self.hub.head(&topic));
        let start = (self.wanted).start(settings, &topic, requested);
        let subscribed = self.hub.subscribe_at(&topic, key, transport, start);
        // From nowhere, `subscribed` promises every event published after
        // it: held with the topic's history on its way, it is answered
        // when the history comes ([`Delivery::resumed_multiplexed`]).
        let from_nowhere_held = requested.is_none() && matches!(subscribed, Ok(Subscribed::Held { .. }));
        if wire == Wire::Socket && subscribed.is_ok() && !from_nowhere_held {
            let by_server = subscription.by != SubscribedBy::Client;
            send(
                ctx,
                conn,
                answer::subscribed(&topic, by_server, subscription.delta),
            );
        }
        // The last event its replay sends whole: a delta's first base.
        let replayed_last = match &subscribed {
            Ok(Subscribed::Live(replay)) if subscription.delta => {
                replay.clone().events().next_back().cloned()
            }
            _ => None,
        };
        match subscribed {
            Ok(Subscribed::Live(replay)) if wire == Wire::Stream => {
                let to = StreamReplay {
                    key,
                    topic: &topic,
                    requested,
                };
                streams::replay(
                    ctx,
                    stats,
                    &mut self.muxes,
                    to,
                    replay.gap(),
                    replay.events(),
                    head,
                );
            }
            Ok(Subscribed::Live(replay)) => {
                let to = Replaying {
                    conn,
                    transport,
                    topic: &topic,
                    requested,
                };
                send_replay(ctx, stats, to, replay.gap(), replay.events());
            }
            Ok(Subscribed::Held { follow }) => {
                if follow {
                    parts.broker.follow(&topic, &mut LoopContext { ctx });
                }
            }
            Err(e) => {
                let status = e.http_status();
                return wire.tell(
                    ctx,
                    conn,
                    "refused",
                    answer::refused(&topic, status, &e.to_string()),
                );
            }
        }
        if subscription.delta {
            self.deltas.take(key, replayed_last.as_ref());
        }
        if settings.keeps_presence(&topic) {
            let subject = self.subscribers.get(conn).and_then(Subscriber::subject);
            let member = self
                .roster
                .join(ctx, &topic, (conn, transport), subject, subscription.watches);
            subscription.member = Some(member);
        }
        // One copy of the topic's name for all its subscribers: the hub's.
        if let Some((name, _)) = self.hub.subscription(key) {
            subscription.topic = Arc::clone(name);
        }
        self.muxes.schedule(conn, &subscription);
        if let Some(socket) = self.muxes.get_mut(conn) {
            socket.insert(subscription);
        }
    }

    /// Ends the subscription of `conn` to `topic`: answered `unsubscribed`
    /// (with `reason` when the hub ends it). Whether it had one; a client
    /// that had none is told so.
    pub(crate) fn unsubscribe_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        topic: &str,
        reason: Option<&str>,
    ) -> bool {
        let Some(wire) = self.muxes.get(conn).map(Wire::of) else {
            return false;
        };
        let Some(subscription) = self.muxes.get_mut(conn).and_then(|s| s.remove(topic)) else {
            if reason.is_none() {
                let error = answer::error(Some(topic), "not subscribed to this topic");
                wire.tell(ctx, conn, "error", error);
            }
            return false;
        };
        self.muxes.forget_deadline(conn, &subscription);
        self.end_subscription(ctx, parts, conn, subscription);
        wire.tell(ctx, conn, "unsubscribed", answer::unsubscribed(topic, reason));
        true
    }

    /// A subscription goes: out of its topic's presence and the replica
    /// (the topic unfollowed at the broker if it was the last). One still
    /// waiting for the backend was never placed: its decision, when it
    /// comes, finds nothing.
    fn end_subscription(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        subscription: Subscription,
    ) {
        if !subscription.placed() {
            return;
        }
        if subscription.member.is_some() || subscription.watches {
            let member = subscription.member.as_ref();
            self.roster.leave(ctx, &subscription.topic, conn, member);
        }
        let key = SubKey::multiplexed(conn, subscription.number);
        if subscription.delta {
            self.deltas.forget(key);
        }
        if let Some(left) = self.hub.unsubscribe(key)
            && left.unfollow
        {
            parts.broker.unfollow(&left.topic, &mut LoopContext { ctx });
        }
    }

    /// A multiplexed socket is gone: every subscription of it ends.
    pub(super) fn leave_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
    ) {
        let Some(mut socket) = self.muxes.close(conn) else {
            return;
        };
        for subscription in socket.drain() {
            self.end_subscription(ctx, parts, conn, subscription);
        }
    }

    /// A held subscription of a multiplexed socket or stream is live: its
    /// replay.
    pub(super) fn resumed_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        stats: &HubStats,
        resumed: &Resumed<SubKey>,
    ) {
        let conn = resumed.sub.conn;
        let Some(socket) = self.muxes.get(conn) else {
            return;
        };
        let Some(subscription) = socket.by_number(resumed.sub.number) else {
            return;
        };
        if subscription.delta {
            self.deltas.replayed(resumed.sub, resumed.events.last());
        }
        if socket.is_stream() {
            let topic = Arc::clone(&subscription.topic);
            let requested = subscription.requested.clone();
            let head = self.hub.head(&topic);
            let to = StreamReplay {
                key: resumed.sub,
                topic: &topic,
                requested: requested.as_deref(),
            };
            let events = resumed.events.iter();
            return streams::replay(ctx, stats, &mut self.muxes, to, resumed.gap, events, Some(head));
        }
        if subscription.requested.is_none() {
            // Held from nowhere: its `subscribed` waited for the history.
            let by_server = subscription.by != SubscribedBy::Client;
            send(
                ctx,
                conn,
                answer::subscribed(&subscription.topic, by_server, subscription.delta),
            );
        }
        let to = Replaying {
            conn,
            transport: Transport::WebSocket,
            topic: &subscription.topic,
            requested: subscription.requested.as_deref(),
        };
        send_replay(ctx, stats, to, resumed.gap, resumed.events.iter());
    }

    /// The backend's decision about a multiplexed socket's subscribe
    /// (`question`): placed, or refused with its status and reason.
    pub(crate) fn multiplexed_decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        question: u64,
        decision: Decision,
    ) {
        let outcome = Outcome::of(&decision);
        parts.stats.decided(Hook::Subscribe, outcome);
        let Some(socket) = self.muxes.get_mut(conn) else {
            return;
        };
        let wire = Wire::of(socket);
        let Some(topic) = socket.by_question(question).map(|s| Arc::clone(&s.topic)) else {
            // Unsubscribed meanwhile.
            return;
        };
        let Some(mut subscription) = socket.remove(&topic) else {
            return;
        };
        match decision {
            Decision::Allow(_) => {
                subscription.deciding = None;
                self.place(ctx, parts, conn, subscription);
            }
            Decision::Deny { status, reason } => {
                parts.stats.deny(Denial::NotGranted);
                refused_as(ctx, conn, wire, &topic, &crate::hooks::refused(status, &reason));
            }
            decision => {
                log::debug!("hub: the backend did not decide (subscribe, multiplexed): {decision:?}");
                refused_as(ctx, conn, wire, &topic, &crate::hooks::unavailable());
            }
        }
    }

    /// Whether the multiplexed socket `conn` may publish to `topic`: its
    /// credential's rights (as far as the topic's namespace takes
    /// publishes from it), a subscription the topic lets its subscribers
    /// publish on, or one whose ticket granted it.
    pub(crate) fn may_publish_multiplexed(&self, conn: ConnId, topic: &str, settings: &HubSettings) -> bool {
        let Some(socket) = self.muxes.get(conn) else {
            return false;
        };
        if settings.refuses_topic(topic) {
            return false;
        }
        let subscribed = socket.get(topic).filter(|s| s.placed());
        socket.credential.may_publish(settings, topic)
            || subscribed.is_some_and(|s| s.may_publish || settings.ws_publish_open(topic))
    }

    /// A token from a multiplexed socket: it replaces the credential the
    /// socket holds (its deadline, its rights), and ends the
    /// subscriptions it no longer grants (`unsubscribed`, with the
    /// reason); one that does not verify is answered with an error and
    /// changes nothing. A revoked token, or one of another subject than
    /// the socket's, closes it (1008), as on a per-topic socket.
    pub(crate) fn auth_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        token: &str,
    ) {
        let (shared, stats) = (parts.shared, parts.stats);
        let access = &shared.access;
        let Some(auth) = shared.settings.auth.as_ref() else {
            return send(ctx, conn, answer::error(None, "this server verifies no tokens"));
        };
        let now = access.unix_secs_at_arrival();
        let who = match auth.verify(token, now) {
            Ok(who) => who,
            Err(e) => {
                stats.deny(Denial::of(&e));
                return send(ctx, conn, answer::error(None, &format!("invalid token: {e}")));
            }
        };
        if access.is_revoked(&who, now) {
            stats.deny(Denial::Revoked);
            self.leave(ctx, parts, conn, &CloseReason::Ended);
            return ctx.close(conn, CloseCode::POLICY, "token revoked");
        }
        let Some(had) = self.subscribers.get(conn).map(|s| s.subject().map(str::to_owned)) else {
            return;
        };
        match (had.as_deref(), who.subject.as_deref()) {
            // A connection is one subject's for good.
            (Some(had), new) if new != Some(had) => {
                stats.deny(Denial::NotGranted);
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                return ctx.close(conn, CloseCode::POLICY, "the token names another subject");
            }
            (None, Some(named)) => {
                let named = named.to_owned();
                if !self.take_subject(ctx, parts, conn, &named) {
                    return;
                }
                self.present_as(ctx, conn, &named);
            }
            _ => {}
        }
        let deadline = who.expires_at.map(|exp| auth.deadline(exp));
        let warn_at = deadline.map(|d| warning_time(d, now));
        if let Some(connection) = self.subscribers.renew(conn, deadline, warn_at) {
            connection.set_token(who.token_id.clone(), who.issued_at);
        }
        let ended: Vec<Arc<str>> = self.muxes.get(conn).map_or_else(Vec::new, |socket| {
            socket
                .iter()
                .filter(|s| !s.by_ticket && s.by != SubscribedBy::Server)
                .filter(|s| access.is_private(&s.topic) && !who.rights.may_subscribe(&s.topic))
                .map(|s| Arc::clone(&s.topic))
                .collect()
        });
        if let Some(socket) = self.muxes.get_mut(conn) {
            socket.credential = Credential::Token(Box::new(who));
        }
        for topic in ended {
            parts.stats.deny(Denial::NotGranted);
            self.unsubscribe_multiplexed(ctx, parts, conn, &topic, Some(NO_LONGER_GRANTED));
        }
        send(ctx, conn, auth_ok(deadline, now));
    }

    /// A multiplexed socket that named its subject late is present as it
    /// on every topic it is a member of (it was its connection until now).
    fn present_as(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, subject: &str) {
        if !tether_hub::is_valid_member(subject) {
            return;
        }
        let Some(socket) = self.muxes.get_mut(conn) else {
            return;
        };
        for subscription in socket.iter_mut() {
            if let Some(old) = subscription.member.take() {
                let topic = Arc::clone(&subscription.topic);
                self.roster.leave(ctx, &topic, conn, Some(&old));
                let key = (conn, Transport::WebSocket);
                let member = self
                    .roster
                    .join(ctx, &topic, key, Some(subject), subscription.watches);
                subscription.member = Some(member);
            }
        }
    }

    /// The subscriptions whose ticket's deadline passed by `now` (Unix
    /// seconds) end: `unsubscribed`, `ticket expired`.
    pub(super) fn expire_tickets(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        now: u64,
    ) {
        while let Some((conn, topic)) = self.muxes.next_expired(now) {
            parts.stats.deny(Denial::SessionExpired);
            // An event stream cannot be sent a fresher credential: it ends,
            // as a per-topic stream does, and its client comes back with
            // new tickets.
            if self.muxes.get(conn).is_some_and(Multiplexed::is_stream) {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                crate::subscribers::close_expired(ctx, conn, Transport::EventStream);
                continue;
            }
            self.unsubscribe_multiplexed(ctx, parts, conn, &topic, Some("ticket expired"));
        }
    }
}
