//! Delivery: the loop's replica of the topics, its subscribers (WebSocket,
//! event stream, long poll), the WebSockets that authenticate first, and
//! who is present. A subscriber arrives, is sent what it missed, gets
//! each event as it is delivered (encoded once, the bytes shared), and
//! leaves; its token expires or is revoked, and it is ended.

mod deltas;
mod multi_poll;
mod multiplex;
mod server_side;
mod streams;
mod tokens;
mod warming;

use std::sync::Arc;

use tether_hub::{Event, EventId, Hub, HubMessage, Polled, PresenceMessage, Start, Subscribed, Transport};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message, Reply, Response};

use super::access::{Awaiting, warning_time};
use super::admission::Served;
use super::auth::DEFAULT_AUTH_TIMEOUT;
use super::broker_view::LoopContext;
use super::hooks::{BackendHooks, refresh_by_backend};
use super::loop_parts::LoopParts;
use super::metrics::{Denial, HubStats, add, sub};
use super::multiplex::Muxes;
use super::presence::{Answer, Asker, Roster};
use super::replies::error_response;
use super::routes::{HubRoute, Refusal, Socket, TOO_MANY_CONNECTIONS};
use super::settings::HubSettings;
use super::subscribers::{
    SubKey, Subscriber, Subscribers, close_expired, close_revoked, fan_out, next_id, poll_response,
    poll_timeout_response, poll_wait, send_replay, send_resumed,
};

/// How long a long poll from nowhere waits for its topic's history at
/// least (see [`Delivery::poll`]): it comes from the sequencer in far less.
const HISTORY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The loop's topics and who is subscribed to them.
///
/// A subscriber that leaves takes its publishes still held for the
/// backend's word with it: it is named in
/// [`LoopParts::departed`], for the publishing concern.
pub(super) struct Delivery {
    /// The loop's replica of the topics, by subscription.
    hub: Hub<SubKey>,
    /// Its subscribers and long polls.
    pub(super) subscribers: Subscribers<ConnId>,
    /// WebSockets waiting for their first message, a token.
    awaiting: Awaiting,
    /// Who is present, and who watches.
    roster: Roster,
    /// The generation of the revocation list this loop last ended its
    /// revoked connections by.
    revocations_seen: u64,
    /// The multiplexed sockets' subscriptions (each socket's own entry,
    /// as a connection, is in `subscribers`).
    muxes: Muxes,
    /// The multi-topic long polls held (each one's own entry, as a
    /// connection, is in `subscribers`).
    polls: multi_poll::HeldPolls,
    /// Long polls (one-topic or multi-topic) that asked not to wait but
    /// are held for a topic's history, to learn its head: answered as
    /// soon as it comes, not at the end of the history's wait.
    history_polls: Vec<ConnId>,
    /// Event streams from nowhere held until their topics' histories are
    /// here.
    warming: warming::Warmings,
    /// The subscriptions that take deltas, and what each had last.
    deltas: deltas::Deltas,
    /// The topics subscribers wanted the latest event of since the app
    /// last looked (for the backend's latest hook).
    wanted: WantedValues,
}

/// The topics whose subscribers started at the latest event.
#[derive(Debug, Default)]
struct WantedValues(Vec<Arc<str>>);

impl WantedValues {
    /// Where a subscriber of `topic` that resumes after `last_id` (if
    /// any) starts: at the topic's latest event in a latest-value
    /// namespace, the topic then noted.
    fn start<'a>(&mut self, settings: &HubSettings, topic: &str, last_id: Option<&'a str>) -> Start<'a> {
        let start = Start::from_last_id(last_id, settings.replays_latest(topic));
        if start == Start::Latest {
            self.0.push(Arc::from(topic));
        }
        start
    }
}

pub(crate) use self::multiplex::SubscribeAsked;

impl Delivery {
    pub(super) fn new(hub: Hub<SubKey>, roster: Roster) -> Delivery {
        Delivery {
            hub,
            subscribers: Subscribers::default(),
            awaiting: Awaiting::default(),
            roster,
            revocations_seen: 0,
            muxes: Muxes::default(),
            polls: multi_poll::HeldPolls::default(),
            history_polls: Vec::new(),
            warming: warming::Warmings::default(),
            deltas: deltas::Deltas::default(),
            wanted: WantedValues::default(),
        }
    }

    /// The topics subscribers wanted the latest event of since the last
    /// call, taken.
    pub(super) fn take_wanted_values(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.wanted.0)
    }

    /// A WebSocket session opened, as its admission says (what it was
    /// let in as, its topic, who it is).
    pub(super) fn open(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        served: Served<'_, '_>,
    ) {
        if served.admission.route == HubRoute::Multiplexed {
            return self.open_multiplexed(ctx, parts, hooks, served);
        }
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
        let start = (self.wanted).start(&parts.shared.settings, topic, since.as_deref());
        match self.hub.poll_at(topic, SubKey::whole(conn), start) {
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
                let topic: Arc<str> = (self.hub.subscription(SubKey::whole(conn)))
                    .map_or_else(|| Arc::from(topic), |(name, _)| Arc::clone(name));
                if let Polled::Held { follow: true } = held {
                    parts.broker.follow(&topic, &mut LoopContext { ctx });
                }
                // A poll from nowhere of a topic whose history is on its
                // way waits for it even when it asked not to wait: its
                // answer's `next` is the topic's head, known then.
                let timeout = match held {
                    Polled::Held { .. } if since.is_none() => {
                        if timeout.is_zero() {
                            self.history_polls.push(conn);
                        }
                        timeout.max(HISTORY_WAIT)
                    }
                    _ => timeout,
                };
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
        let held = self.answer_held_poll(ctx, parts, SubKey::whole(conn), None, &[]);
        let response = match (held, self.subscribers.get(conn)) {
            (Some(answer), _) => answer,
            // From nowhere, of a topic whose head is not known yet: an
            // answer would send it back to the topic's first event.
            (None, Some(poll)) if poll.requested().is_none() && !self.hub.is_ready(&poll.topic) => {
                super::replies::refuse(
                    503,
                    "the topic's history is on its way: poll again\n".to_owned(),
                    Some(super::replies::SOON),
                )
            }
            (None, Some(poll)) => poll_timeout_response(&self.hub, &poll.topic, poll.requested()),
            (None, None) => Response::empty(204),
        };
        self.leave(ctx, parts, conn, reason);
        response
    }

    /// The polls that asked not to wait and were held for a history alone:
    /// answered now that every history they wait for is here (the others
    /// kept; those gone or answered meanwhile forgotten).
    fn answer_history_polls(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>) {
        for conn in std::mem::take(&mut self.history_polls) {
            let due = if let Some(held) = self.polls.get(&conn) {
                held.placed(&self.hub)
            } else {
                match self.subscribers.get(conn) {
                    Some(poll) if poll.transport == Transport::Poll && poll.requested().is_none() => {
                        self.hub.is_ready(&poll.topic)
                    }
                    _ => continue,
                }
            };
            if due {
                let answer = self.end_poll(ctx, parts, conn, &CloseReason::Ended);
                parts.cors.respond(ctx, conn, answer);
            } else {
                self.history_polls.push(conn);
            }
        }
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
        self.expire_tickets(ctx, parts, now);
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
    /// by `ask_refresh` (which says how many seconds the backend may take
    /// to answer, when it was asked). Run before [`Delivery::expire`].
    ///
    /// A warning due a second before the expiry is missed when the loop's
    /// one-second tick slips past that second (a busy machine): asked at
    /// its expiry instead, the subscriber waits for the answer, up to the
    /// backend's timeout, rather than ending without the backend asked.
    pub(super) fn warn(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        now: u64,
        mut ask_refresh: impl FnMut(&mut Ctx<'_, HubMessage>, ConnId, &Subscriber) -> Option<u64>,
    ) {
        while let Some((conn, left)) = self.subscribers.next_warning(now) {
            if let Some(subscriber) = self.subscribers.get(conn)
                && subscriber.refreshed
            {
                if let Some(wait) = ask_refresh(ctx, conn, subscriber)
                    && left == 0
                {
                    self.subscribers.renew(conn, Some(now + wait), None);
                }
                continue;
            }
            if left == 0 {
                // Late: it expires now, and is told so.
                continue;
            }
            let text = format!("{{\"type\":\"auth-expiring\",\"in\":{left}}}");
            ctx.send(conn, &Message::text(text));
        }
    }

    /// A WebSocket or event-stream subscriber arrives: register, replay.
    pub(super) fn subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        mut subscriber: Subscriber,
    ) {
        if !admit_connection(ctx, parts, conn, &mut subscriber) {
            return;
        }
        let topic = subscriber.topic.clone();
        let transport = subscriber.transport;
        let (settings, stats) = (&parts.shared.settings, parts.stats);
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
        let start = (self.wanted).start(settings, &topic, subscriber.requested());
        let takes_deltas = subscriber.delta && settings.sends_deltas(&topic);
        match (self.hub).subscribe_at(&topic, SubKey::whole(conn), transport, start) {
            Ok(Subscribed::Live(replay)) => {
                if takes_deltas {
                    let last = replay.clone().events().next_back();
                    self.deltas.take(SubKey::whole(conn), last);
                }
                let to = subscriber.replaying(conn);
                send_replay(ctx, stats, to, replay.gap(), replay.events());
            }
            Ok(Subscribed::Held { follow }) => {
                if takes_deltas {
                    self.deltas.take(SubKey::whole(conn), None);
                }
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
        if let Some((name, _)) = self.hub.subscription(SubKey::whole(conn))
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
    pub(super) fn hub(&self) -> &Hub<SubKey> {
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
        if !self.deltas.is_empty() {
            self.deltas.forget(SubKey::whole(conn));
        }
        if let Some(left) = self.hub.unsubscribe(SubKey::whole(conn))
            && left.unfollow
        {
            parts.broker.unfollow(&left.topic, &mut LoopContext { ctx });
        }
        self.leave_multiplexed(ctx, parts, conn);
        self.drop_held_poll(ctx, parts, conn);
    }

    /// A held subscription is live (or a held long poll answered): a
    /// one-topic connection's, or a multiplexed socket's.
    fn resumed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        resumed: tether_hub::Resumed<SubKey>,
    ) {
        if resumed.sub.is_whole() {
            if !self.deltas.is_empty() {
                self.deltas.replayed(resumed.sub, resumed.events.last());
            }
            let hub = &self.hub;
            let head = |topic: &str| hub.head(topic);
            send_resumed(ctx, parts.stats, &mut self.subscribers, parts.cors, resumed, head);
        } else if resumed.transport == Transport::Poll {
            let (key, gap) = (resumed.sub, resumed.gap);
            if let Some(answer) = self.answer_held_poll(ctx, parts, key, gap, &resumed.events) {
                parts.cors.respond(ctx, key.conn, answer);
            }
        } else {
            self.resumed_multiplexed(ctx, parts.stats, &resumed);
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
        // The topic's event before this one, where some subscription may
        // take this one as a delta against it.
        let before = (!self.deltas.is_empty() && parts.shared.settings.sends_deltas(event.topic()))
            .then(|| self.hub.head(event.topic()));
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
        if let Some(before) = before {
            deltas::fan_out(
                ctx,
                stats,
                &mut self.deltas,
                &mut self.muxes,
                &event,
                &delivery,
                before,
            );
        } else {
            fan_out(ctx, stats, &event, &delivery);
            if self.muxes.has_streams() {
                let whole = crate::sse_encoded::sse_multi(&event);
                streams::deliver(
                    ctx,
                    stats,
                    &mut self.muxes,
                    delivery.event_stream,
                    event.id(),
                    &whole,
                );
            }
        }
        let events = [event.clone()];
        let mut answers = Vec::new();
        let resumed = delivery.resumed;
        for waiter in delivery.waiters {
            if !waiter.is_whole() {
                if let Some(answer) = self.answer_held_poll(ctx, parts, waiter, None, &events) {
                    answers.push((waiter.conn, answer));
                }
                continue;
            }
            let waiter = waiter.conn;
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
        for resumed in resumed {
            self.resumed(ctx, parts, resumed);
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
        for resumed in readied.resumed {
            self.resumed(ctx, parts, resumed);
        }
        if !self.history_polls.is_empty() {
            self.answer_history_polls(ctx, parts);
        }
        if !self.warming.is_empty() {
            self.open_warmed(ctx);
        }
        let stats = parts.stats;
        for (key, transport) in readied.resync {
            let conn = key.conn;
            match transport {
                Transport::WebSocket | Transport::RawWebSocket => {
                    ctx.close(conn, CloseCode::SERVICE_RESTART, "resynchronising: resume")
                }
                Transport::EventStream => ctx.end_stream(conn),
                Transport::Poll if !key.is_whole() => {
                    if let Some(answer) = self.answer_held_poll(ctx, parts, key, None, &[]) {
                        parts.cors.respond(ctx, conn, answer);
                    }
                }
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
            self.resumed(ctx, parts, resumed);
        }
        if !self.warming.is_empty() {
            self.tick_warming(ctx, parts);
        }
    }
}

/// Whether a connection that opens (`subscriber`, its own entry) may: its
/// token was not revoked since its request was routed, and its subject
/// has a place left among its connections (taken here). One that may not
/// is closed, or its stream ended.
fn admit_connection(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &LoopParts<'_>,
    conn: ConnId,
    subscriber: &mut Subscriber,
) -> bool {
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
        return false;
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
                return false;
            }
        }
    }
    true
}
