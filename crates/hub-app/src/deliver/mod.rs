//! Delivery: the loop's replica of the topics, its subscribers (WebSocket,
//! event stream, long poll), the WebSockets that authenticate first, and
//! who is present. A subscriber arrives, is sent what it missed, gets
//! each event as it is delivered (encoded once, the bytes shared), and
//! leaves; its token expires or is revoked, and it is ended.

use std::sync::Arc;

use tether_hub::{Decision, Event, EventId, Hub, HubMessage, Polled, PresenceMessage, Subscribed, Transport};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message, MessageRef, Reply, Response};

use super::access::{Awaiting, auth_ok, warning_time};
use super::access::{TokenGrant, TokenRefused};
use super::admission::Served;
use super::auth::DEFAULT_AUTH_TIMEOUT;
use super::backend::Hook;
use super::broker_view::LoopContext;
use super::hooks::{BackendHooks, refresh_by_backend};
use super::hooks::{Late, close_undecided};
use super::loop_parts::LoopParts;
use super::metrics::{Denial, HubStats, Outcome, add, sub};
use super::presence::{Answer, Asker, Roster};
use super::replies::{close_reason, error_response};
use super::routes::{HubRoute, Refusal, Socket, TOO_MANY_CONNECTIONS};
use super::subscribers::{
    Subscriber, Subscribers, close_expired, close_revoked, fan_out, next_id, poll_response,
    poll_timeout_response, poll_wait, send_replay, send_resumed,
};

/// The loop's topics and who is subscribed to them.
///
/// A subscriber that leaves takes its publishes still held for the
/// backend's word with it: it is named in
/// [`LoopParts::departed`], for the publishing concern.
pub(super) struct Delivery {
    /// The loop's replica of the topics.
    hub: Hub<ConnId>,
    /// Its subscribers and long polls.
    pub(super) subscribers: Subscribers<ConnId>,
    /// WebSockets waiting for their first message, a token.
    awaiting: Awaiting,
    /// Who is present, and who watches.
    roster: Roster,
    /// The generation of the revocation list this loop last ended its
    /// revoked connections by.
    revocations_seen: u64,
}

impl Delivery {
    pub(super) fn new(hub: Hub<ConnId>, roster: Roster) -> Delivery {
        Delivery {
            hub,
            subscribers: Subscribers::default(),
            awaiting: Awaiting::default(),
            roster,
            revocations_seen: 0,
        }
    }

    /// A WebSocket session opened, as its admission says (what it was
    /// let in as, its topic, who it is).
    pub(super) fn open(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        served: Served<'_, '_>,
    ) {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let (HubRoute::WebSocket(socket), Some(topic)) = (admission.route, admission.topic().cloned()) else {
            return;
        };
        let mut subscriber = Subscriber::websocket(topic, admission.wants(), socket);
        let settings = &parts.shared.settings;
        let access = &parts.shared.access;
        if socket == Socket::AuthFirst {
            let timeout = settings
                .auth
                .as_ref()
                .map_or(DEFAULT_AUTH_TIMEOUT, |auth| auth.auth_timeout);
            let until = ctx.now().checked_add(timeout).unwrap_or_else(|| ctx.now());
            self.awaiting.admit(conn, subscriber, until);
            return;
        }
        subscriber.hold(admission.holder(access, request));
        let now = access.unix_secs(ctx.now());
        refresh_by_backend(admission.presented(), settings, &mut subscriber, now);
        // A raw subscriber gets no warning (it could not tell it from
        // data, nor send another token): it is closed when its token
        // expires, unless the backend gives it a later expiry.
        if subscriber.transport == Transport::WebSocket {
            subscriber.set_warn_at(subscriber.deadline().map(|d| warning_time(d, now)));
        }
        self.subscribe(ctx, parts, conn, subscriber);
    }

    /// An event stream started, as its admission says (its topic, who it
    /// is).
    pub(super) fn start_stream(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        served: Served<'_, '_>,
        last_event_id: Option<&str>,
    ) {
        let Served {
            conn,
            request,
            admission,
        } = served;
        if let Some(topic) = admission.topic().cloned() {
            let mut subscriber = Subscriber::event_stream(topic, admission.wants(), last_event_id);
            let access = &parts.shared.access;
            subscriber.hold(admission.holder(access, request));
            let now = access.unix_secs(ctx.now());
            refresh_by_backend(
                admission.presented(),
                &parts.shared.settings,
                &mut subscriber,
                now,
            );
            self.subscribe(ctx, parts, conn, subscriber);
        }
    }

    /// `GET /topics/NAME/poll`: the events since the id asked for, now,
    /// or the poll held until one comes.
    pub(super) fn poll(
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
        // Taken first: a ticket's holder is forgotten here whatever the
        // answer.
        let holder = admission.holder(&parts.shared.access, request);
        let Some(topic) = admission.topic() else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let topic = &**topic;
        let since = request.query_param("since").filter(|s| !s.is_empty());
        let timeout = match poll_wait(request, parts.shared.settings.poll_timeout) {
            Ok(timeout) => timeout,
            Err(refused) => return Reply::Now(refused),
        };
        match self.hub.poll(topic, conn, since.as_deref()) {
            Ok(Polled::Now {
                gap,
                events,
                unfollow,
            }) => {
                if unfollow {
                    parts.broker.unfollow(&Arc::from(topic), &mut LoopContext { ctx });
                }
                add(&parts.stats.sent_poll, events.len() as u64);
                if gap.is_some() {
                    add(&parts.stats.gaps, 1);
                }
                let next = next_id(&events, gap, since.as_deref(), || self.hub.head(topic));
                Reply::Now(poll_response(topic, &events, gap, since.as_deref(), next))
            }
            Ok(held @ (Polled::Wait | Polled::Held { .. })) => {
                // The hub's own name of the topic, shared.
                let topic: Arc<str> = (self.hub.subscription(conn))
                    .map_or_else(|| Arc::from(topic), |(name, _)| Arc::clone(name));
                if let Polled::Held { follow: true } = held {
                    parts.broker.follow(&topic, &mut LoopContext { ctx });
                }
                let mut poll = Subscriber::new(topic, Transport::Poll, since);
                // Answered when its token expires, if that comes first.
                poll.hold(holder);
                self.register(parts.stats, conn, poll);
                Reply::Later(timeout)
            }
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    fn register(&mut self, stats: &HubStats, conn: ConnId, subscriber: Subscriber) {
        add(stats.subscribers(subscriber.transport), 1);
        self.subscribers.insert(conn, subscriber);
    }

    /// A long poll that nothing answered: its usual empty answer, with the
    /// id to poll from next.
    pub(super) fn end_poll(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        reason: &CloseReason,
    ) -> Response {
        let response = match self.subscribers.get(conn) {
            Some(poll) => poll_timeout_response(&self.hub, &poll.topic, poll.requested()),
            None => Response::empty(204),
        };
        self.leave(ctx, parts, conn, reason);
        response
    }

    /// Logs (at debug) that a subscriber is ended and why, with its
    /// connection and subject: what an operator asks of a disconnect.
    fn log_ended(&self, conn: ConnId, why: &str) {
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let conn_id = conn.to_string();
        match self.subscribers.get(conn).and_then(|s| s.subject()) {
            Some(subject) => log::debug!(subject = subject, conn = conn_id.as_str(); "hub: ended: {why}"),
            None => log::debug!(conn = conn_id.as_str(); "hub: ended: {why}"),
        }
    }

    /// Closes the WebSocket subscribers, ends the event streams and
    /// answers the long polls (401, the token expired) whose token has
    /// expired by `now` (Unix seconds).
    pub(super) fn expire(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>, now: u64) {
        while let Some((conn, transport)) = self.subscribers.next_expired(now) {
            self.log_ended(conn, "its token expired");
            self.leave(ctx, parts, conn, &CloseReason::Ended);
            parts.stats.deny(Denial::SessionExpired);
            match transport {
                Transport::Poll => parts
                    .cors
                    .respond(ctx, conn, Refusal::ExpiredCredentials.response()),
                _ => close_expired(ctx, conn, transport),
            }
        }
    }

    /// Closes the WebSocket subscribers, ends the event streams and
    /// answers the long polls (401, the token revoked) whose token was
    /// revoked since the last look, at `now` (Unix seconds): one atomic
    /// load when the list did not change.
    pub(super) fn end_revoked(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>, now: u64) {
        let revocations = &parts.shared.access.revocations;
        let generation = revocations.generation();
        if generation == self.revocations_seen {
            return;
        }
        self.revocations_seen = generation;
        let revoked = self
            .subscribers
            .revoked(|s| revocations.is_revoked(s.token_id(), s.subject(), s.issued_at(), now));
        for (conn, transport) in revoked {
            self.log_ended(conn, "its token was revoked");
            self.leave(ctx, parts, conn, &CloseReason::Ended);
            parts.stats.deny(Denial::Revoked);
            match transport {
                Transport::Poll => parts.cors.respond(ctx, conn, Refusal::Revoked.response()),
                _ => close_revoked(ctx, conn, transport),
            }
        }
    }

    /// Tells the WebSocket subscribers whose token expires soon, by `now`
    /// (Unix seconds), in how many seconds: they may send another. A
    /// subscriber the backend let in asks it for a later expiry instead,
    /// by `ask_refresh`.
    pub(super) fn warn(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        now: u64,
        mut ask_refresh: impl FnMut(&mut Ctx<'_, HubMessage>, ConnId, &Subscriber),
    ) {
        while let Some((conn, left)) = self.subscribers.next_warning(now) {
            if let Some(subscriber) = self.subscribers.get(conn)
                && subscriber.refreshed
            {
                ask_refresh(ctx, conn, subscriber);
                continue;
            }
            let text = format!("{{\"type\":\"auth-expiring\",\"in\":{left}}}");
            ctx.send(conn, &Message::text(text));
        }
    }

    /// The first message of a WebSocket that has to authenticate: a token
    /// that grants its topic subscribes it, anything else closes it. On a
    /// `subscribe=hook` topic the backend is asked first, for the token's
    /// subject: the socket is subscribed (and told `auth-ok`) only when
    /// it allows.
    pub(super) fn first_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        message: MessageRef<'_>,
    ) {
        let Some((subscriber, ok)) =
            self.awaiting
                .first_message(ctx, &parts.shared.access, parts.stats, conn, message)
        else {
            return;
        };
        if parts.shared.settings.subscribe_hook(&subscriber.topic) {
            let subject = subscriber.subject().map(str::to_owned);
            let topic = subscriber.topic.to_string();
            let late = Late::FirstMessage {
                subscriber,
                auth_ok: ok,
            };
            if hooks.ask_late(ctx, parts, conn, subject, topic, late).is_err() {
                close_undecided(ctx, conn);
            }
            return;
        }
        ctx.send(conn, &Message::text(ok));
        self.subscribe(ctx, parts, conn, subscriber);
    }

    /// Another token from a subscribed WebSocket: its rights replace the
    /// old ones and its deadline moves; one that does not verify, or no
    /// longer grants the topic, closes the connection. A token that names
    /// the subject of a socket that had none, on a `subscribe=hook` topic,
    /// is taken only when the backend allows that subject.
    pub(super) fn refresh(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        token: &str,
    ) {
        let Some((topic, had)) =
            (self.subscribers.get(conn)).map(|s| (s.topic.clone(), s.subject().is_some()))
        else {
            return;
        };
        let access = &parts.shared.access;
        let now = access.unix_secs_at_arrival();
        match access.take_token(token, &topic, now) {
            Ok(grant)
                if !had && grant.holder.subject.is_some() && parts.shared.settings.subscribe_hook(&topic) =>
            {
                let subject = grant.holder.subject.clone();
                let late = Late::InBand { grant, now };
                if hooks
                    .ask_late(ctx, parts, conn, subject, topic.to_string(), late)
                    .is_err()
                {
                    self.leave(ctx, parts, conn, &CloseReason::Ended);
                    close_undecided(ctx, conn);
                }
            }
            Ok(grant) => self.take_grant(ctx, parts, conn, grant, now),
            Err(TokenRefused::Revoked) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                add(&parts.stats.refused_401, 1);
                parts.stats.deny(Denial::Revoked);
                ctx.close(conn, CloseCode::POLICY, "token revoked");
            }
            Err(TokenRefused::Invalid(e)) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::of(&e));
                ctx.close(
                    conn,
                    CloseCode::POLICY,
                    close_reason(&format!("invalid token: {e}")),
                );
            }
            Err(TokenRefused::NotGranted) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "topic no longer granted");
            }
        }
    }

    /// What a token a subscribed socket sent grants, taken at `now` (Unix
    /// seconds): its rights, its deadline, and its subject if the socket
    /// had none; another subject than the socket's closes it.
    pub(super) fn take_grant(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        grant: TokenGrant,
        now: u64,
    ) {
        let Some(had) = self.subscribers.get(conn).map(|s| s.subject().map(str::to_owned)) else {
            return;
        };
        let named = match (had.as_deref(), grant.holder.subject.as_deref()) {
            // A connection is one subject's for good: what it was
            // counted, revoked and acted on as.
            (Some(had), new) if new != Some(had) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "the token names another subject");
                return;
            }
            (None, named) => named,
            _ => None,
        };
        // A socket that came in without a credential names its
        // subject: counted, and present, as that subject from now
        // on, as if it had come in with it.
        if let Some(subject) = named
            && !self.take_subject(ctx, parts, conn, subject)
        {
            return;
        }
        let deadline = grant.holder.deadline;
        let warn_at = deadline.map(|d| warning_time(d, now));
        let Some(subscriber) = self.subscribers.renew(conn, deadline, warn_at) else {
            return;
        };
        subscriber.may_publish = grant.may_publish;
        // The new token's id and `iat` are what a revocation is
        // checked against from now on (its subject is the one
        // the connection was counted under).
        subscriber.set_token(grant.holder.token_id, grant.holder.issued_at);
        ctx.send(conn, &Message::text(auth_ok(deadline, now)));
    }

    /// A subscribed socket without a subject takes `subject` (from a
    /// token it sent): a place among the subject's connections (none
    /// left: closed with 1008, false), and present as the subject where
    /// its topic keeps presence.
    fn take_subject(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        subject: &str,
    ) -> bool {
        let (settings, access, stats) = (&parts.shared.settings, &parts.shared.access, parts.stats);
        let slot = match access
            .connections
            .open(subject, settings.max_connections_per_subject)
        {
            Some(slot) => slot,
            None => {
                log::debug!(
                    subject = subject, conn = conn.to_string().as_str();
                    "hub: closed: the subject named late has its most connections open"
                );
                add(&stats.connection_limited, 1);
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                ctx.close(conn, CloseCode::POLICY, TOO_MANY_CONNECTIONS);
                return false;
            }
        };
        let Some(subscriber) = self.subscribers.get_mut(conn) else {
            return false;
        };
        subscriber.set_subject(Some(subject.to_owned()));
        subscriber.rare_mut().slot = Some(slot);
        subscriber.set_since(Some(access.unix_secs(ctx.now())));
        // Present as its connection until now: as its subject from now on
        // (a subject that is no member name leaves it as it was).
        if let Some(old) = subscriber.member()
            && tether_hub::is_valid_member(subject)
        {
            let topic = Arc::clone(&subscriber.topic);
            let key = (conn, subscriber.transport);
            let watches = subscriber.watches;
            self.roster.leave(ctx, &topic, conn, Some(&old));
            let member = self.roster.join(ctx, &topic, key, Some(subject), watches);
            subscriber.set_member(member);
        }
        true
    }

    /// A WebSocket or event-stream subscriber arrives: register, replay.
    pub(super) fn subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        mut subscriber: Subscriber,
    ) {
        let topic = subscriber.topic.clone();
        let transport = subscriber.transport;
        let (settings, access, stats) = (&parts.shared.settings, &parts.shared.access, parts.stats);
        // Revoked since its request was routed (on another loop, say).
        let now = access.unix_secs(ctx.now());
        if access.revocations.is_revoked(
            subscriber.token_id(),
            subscriber.subject(),
            subscriber.issued_at(),
            now,
        ) {
            stats.deny(Denial::Revoked);
            close_revoked(ctx, conn, transport);
            return;
        }
        // A subject's connections are counted, on every loop; one over
        // the most it may have (let in by the route a moment before
        // another took the last place) is closed at once.
        if let Some(subject) = subscriber.subject() {
            let max = settings.max_connections_per_subject;
            match access.connections.open(subject, max) {
                Some(slot) => {
                    subscriber.rare_mut().slot = Some(slot);
                    subscriber.set_since(Some(now));
                }
                None => {
                    log::debug!(
                        subject = subject, conn = conn.to_string().as_str();
                        "hub: closed: the subject has its most connections open"
                    );
                    add(&stats.connection_limited, 1);
                    match transport {
                        Transport::WebSocket | Transport::RawWebSocket => {
                            ctx.close(conn, CloseCode::POLICY, TOO_MANY_CONNECTIONS);
                        }
                        _ => {
                            let event = tether_sse::Event::new()
                                .event("refused")
                                .data(TOO_MANY_CONNECTIONS);
                            if let Err(e) = ctx.send_event(conn, &event) {
                                log::debug!("hub: refused event not sent: {e}");
                            }
                            ctx.end_stream(conn);
                        }
                    }
                    return;
                }
            }
        }
        // A namespace without presence: no member, no watcher (the router
        // refused `?presence=1`).
        if settings.keeps_presence(&topic) && !subscriber.unlisted() {
            let member = self.roster.join(
                ctx,
                &topic,
                (conn, transport),
                subscriber.subject(),
                subscriber.watches,
            );
            subscriber.set_member(member);
        }
        self.register(stats, conn, subscriber);
        let Some(subscriber) = self.subscribers.get(conn) else {
            return;
        };
        match self
            .hub
            .subscribe(&topic, conn, transport, subscriber.requested())
        {
            Ok(Subscribed::Live(replay)) => {
                send_replay(ctx, stats, conn, subscriber, replay.gap(), replay.events());
            }
            Ok(Subscribed::Held { follow }) => {
                if follow {
                    parts.broker.follow(&topic, &mut LoopContext { ctx });
                }
            }
            Err(e) => {
                log::warn!("hub: subscribe failed: {e}");
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                match transport {
                    Transport::WebSocket | Transport::RawWebSocket => {
                        ctx.close(conn, CloseCode::INTERNAL_ERROR, "subscribe failed")
                    }
                    _ => ctx.end_stream(conn),
                }
                return;
            }
        }
        // One copy of the topic's name for all its subscribers: the hub's
        // (the one it came with goes once the roster has seen it).
        if let Some((name, _)) = self.hub.subscription(conn)
            && let Some(subscriber) = self.subscribers.get_mut(conn)
        {
            subscriber.topic = Arc::clone(name);
        }
    }

    /// Whether `conn` is a WebSocket still to send its token.
    pub(super) fn awaits_token(&self, conn: ConnId) -> bool {
        self.awaiting.contains(conn)
    }

    /// The loop's replica of the topics, to read (the metrics, the
    /// server API's history).
    pub(super) fn hub(&self) -> &Hub<ConnId> {
        &self.hub
    }

    /// `topic` has no subscriber on any loop: its replica here goes.
    pub(super) fn forget_topic(&mut self, topic: &str) {
        self.hub.forget(topic);
    }

    /// Asks the topic's sequencer loop who is present on `topic`, for
    /// `asker`; the answer comes back as a post.
    pub(super) fn ask_members(&mut self, ctx: &mut Ctx<'_, HubMessage>, asker: Asker, topic: &str) {
        self.roster.ask(ctx, asker, topic);
    }

    /// `conn`'s presence question is no longer wanted.
    pub(super) fn forget_question(&mut self, conn: ConnId) {
        self.roster.forget(conn);
    }

    /// A presence message from another loop: an answer for an asker
    /// here, if it was one.
    pub(super) fn presence_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        broker: &mut dyn tether_hub::Broker,
        message: PresenceMessage,
    ) -> Option<Answer> {
        self.roster.receive(ctx, broker, message)
    }

    /// How many members this loop's topics have.
    pub(super) fn members(&self) -> usize {
        self.roster.count()
    }

    /// The WebSockets that did not send their token in time, closed.
    pub(super) fn time_out_awaiting(&mut self, ctx: &mut Ctx<'_, HubMessage>, stats: &HubStats) {
        self.awaiting.time_out(ctx, stats);
    }

    /// Presence's tick: its members' leases renewed with the broker.
    pub(super) fn tick_presence(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        broker: &mut dyn tether_hub::Broker,
    ) {
        self.roster.tick(ctx, broker);
    }

    /// A subscriber or long poll is gone.
    pub(super) fn leave(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        reason: &CloseReason,
    ) {
        self.awaiting.forget(conn);
        parts.departed.push(conn);
        if let Some(subscriber) = self.subscribers.remove(conn) {
            sub(parts.stats.subscribers(subscriber.transport), 1);
            if *reason == CloseReason::SlowConsumer {
                add(&parts.stats.slow_consumer_drops, 1);
            }
            let member = subscriber.member();
            if member.is_some() || subscriber.watches {
                self.roster.leave(ctx, &subscriber.topic, conn, member.as_ref());
            }
        }
        if let Some(left) = self.hub.unsubscribe(conn)
            && left.unfollow
        {
            parts.broker.unfollow(&left.topic, &mut LoopContext { ctx });
        }
    }

    /// An event, sequenced: to every subscriber of its topic on this loop
    /// (encoded once per wire format), and the long polls waiting for it
    /// answered.
    pub(super) fn deliver(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        event: Arc<Event>,
    ) {
        let stats = parts.stats;
        let delivery = match self.hub.deliver(event.clone()) {
            Ok(delivery) => delivery,
            Err(e) => {
                log::debug!(
                    "hub: delivery of {} to {} dropped: {e}",
                    event.id(),
                    event.topic()
                );
                return;
            }
        };
        fan_out(ctx, stats, &event, &delivery);
        let events = [event.clone()];
        let mut answers = Vec::new();
        for waiter in delivery.waiters {
            if let Some(poll) = self.subscribers.remove(waiter) {
                sub(&stats.subscribers_poll, 1);
                add(&stats.sent_poll, 1);
                let since = poll.requested();
                answers.push((
                    waiter,
                    poll_response(&poll.topic, &events, None, since, event.id()),
                ));
            }
        }
        for resumed in delivery.resumed {
            send_resumed(ctx, stats, &mut self.subscribers, parts.cors, resumed);
        }
        for (conn, response) in answers {
            parts.cors.respond(ctx, conn, response);
        }
    }

    /// A topic's backlog, from its sequencer: the subscribers that waited
    /// for it resumed, those that cannot be told to resynchronise.
    pub(super) fn ready(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        topic: &str,
        history: Vec<Arc<Event>>,
        dropped: Option<EventId>,
    ) {
        let readied = match self.hub.ready(topic, history, dropped) {
            Ok(readied) => readied,
            Err(e) => {
                log::debug!("hub: backlog of {topic} dropped: {e}");
                return;
            }
        };
        let stats = parts.stats;
        for resumed in readied.resumed {
            send_resumed(ctx, stats, &mut self.subscribers, parts.cors, resumed);
        }
        for (conn, transport) in readied.resync {
            match transport {
                Transport::WebSocket | Transport::RawWebSocket => {
                    ctx.close(conn, CloseCode::SERVICE_RESTART, "resynchronising: resume")
                }
                Transport::EventStream => ctx.end_stream(conn),
                Transport::Poll => {
                    if let Some(poll) = self.subscribers.remove(conn) {
                        sub(&stats.subscribers_poll, 1);
                        let response = poll_timeout_response(&self.hub, &poll.topic, poll.requested());
                        parts.cors.respond(ctx, conn, response);
                    }
                }
            }
        }
    }

    /// The loop's tick: subscribers whose replay was held resumed.
    pub(super) fn tick(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>) {
        for resumed in self.hub.tick() {
            send_resumed(ctx, parts.stats, &mut self.subscribers, parts.cors, resumed);
        }
    }
}

/// The answer about a subject a socket named after its upgrade
/// ([`Late`]).
impl Delivery {
    /// The backend's decision about the subject a socket named late.
    pub(super) fn late_decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        late: Late,
        decision: Decision,
    ) {
        let outcome = match &decision {
            Decision::Allow(_) => Outcome::Allowed,
            Decision::Deny { .. } => Outcome::Denied,
            _ => Outcome::Unavailable,
        };
        parts.stats.decided(Hook::Subscribe, outcome);
        match (decision, late) {
            (Decision::Allow(_), Late::FirstMessage { subscriber, auth_ok }) => {
                ctx.send(conn, &Message::text(auth_ok));
                self.subscribe(ctx, parts, conn, subscriber);
            }
            (Decision::Allow(_), Late::InBand { grant, now }) => {
                self.take_grant(ctx, parts, conn, grant, now);
            }
            (Decision::Deny { status, reason }, _) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                match status {
                    401 => add(&parts.stats.refused_401, 1),
                    _ => add(&parts.stats.refused_403, 1),
                }
                parts.stats.deny(Denial::NotGranted);
                let reason = if reason.is_empty() { "refused" } else { &reason };
                ctx.close(conn, CloseCode::POLICY, close_reason(reason));
            }
            (decision, _) => {
                log::debug!("hub: the backend did not decide (subscribe, late subject): {decision:?}");
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                close_undecided(ctx, conn);
            }
        }
    }
}
