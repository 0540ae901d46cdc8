//! The pub/sub hub as a tether application: topics published over HTTP
//! and WebSocket, delivered over WebSocket, Server-Sent Events and long
//! polls, on every event loop, with access control and metrics.
//!
//! The sans-IO core is `tether-hub`; this crate drives it: one
//! [`HubApp`] per event loop, each with its replica of the topics
//! ([`tether_hub::Hub`]) and its broker ([`tether_hub::Broker`]; by
//! default the in-process [`tether_hub::LocalBroker`], which sequences
//! each topic on one loop and posts the events to all of them). The
//! routes, statuses and message formats are described in the hub's README
//! (`crates/hub/README.md`). `tether-apps` re-exports all of it, beside
//! the demo that mounts the hub next to its own pages.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

// Everything here handles bytes and numbers from the network: nothing may
// panic on them. These lints make every exception visible, each `allow`
// with its reason beside it (tests are exempt).
mod access;
mod admin;
mod api;
mod auth;
mod awaiting;
mod backend;
mod broker_view;
mod client_script;
mod conn_map;
mod connections;
mod cors;
mod decide;
mod external;
mod http_backend;
mod metrics;
mod namespace;
mod origin;
mod poll;
mod presence;
mod publish;
mod publish_hook;
mod rate;
mod replies;
mod revoked;
mod router;
mod routes;
mod settings;
mod shared;
mod subscribers;
mod ticket_holder;
mod verified_tokens;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tether_hub::{
    Broker, ControlMessage, Error as HubError, Event, EventId, Hub, HubMessage, Members, Polled, Publish,
    PublishAnswer, Subscribed, Transport,
};

use self::access::TokenRefused;
use self::admin::{Admin, AdminRoute};
use self::api::{Batches, GatheringRequests};
pub use self::auth::{DEFAULT_AUTH_TIMEOUT, DEFAULT_TOKEN_COOKIE, HubAuth};
use self::awaiting::{Awaiting, auth_ok, warning_time};
pub use self::backend::{AnswerTo, Backend, Busy, Hook, Question};
use self::broker_view::LoopContext;
use self::cors::Cors;
use self::decide::Decisions;
pub use self::external::{HubPublisher, PublishError, PublishFuture};
pub use self::http_backend::{DEFAULT_PER_LOOP, HttpBackend};
use self::metrics::{Denial, HubStats, add, sub};
pub use self::namespace::{Namespace, UnknownNamespace, WhoPublishes, WhoSubscribes};
pub use self::origin::Origins;
use self::poll::{next_id, poll_response, poll_timeout_response};
use self::presence::{Answer, Asker, Roster};
use self::publish::{External, NotPublished, Pending, Publishes, Settled, error_json};
pub use self::rate::PublishRate;
use self::replies::{close_reason, error_response, rate_limited, send_error, shutting_down};
pub use self::revoked::{DEFAULT_REVOCATION_TTL, MAX_REVOCATIONS, Revocation, Revoked};
use self::routes::{Endpoint, HubRoute, Refusal, Socket, TOO_MANY_CONNECTIONS, parse_path};
pub use self::settings::HubSettings;
pub use self::shared::{HubShared, RevocationListFull};
use self::subscribers::{
    Subscriber, Subscribers, close_expired, close_revoked, fan_out, send_replay, send_resumed,
};
use tether_server::{
    App, CloseCode, CloseReason, ConnId, Ctx, Message, MessageRef, Reply, Request, Response, Route,
};

/// The hub on one event loop: routes, subscribers, the loop's replica of
/// the topics, its broker. Make one per loop with [`HubShared::app`]; on
/// a single loop, [`HubApp::new`].
///
/// Routes (see the hub's README for every status and format):
///
/// | route | what |
/// | --- | --- |
/// | `POST /topics/NAME` | publish the body (the publish token, or a JSON Web Token granting `pub` on the topic; `?event=TYPE` or `Tether-Event: TYPE`; `?id=KEY` or `Tether-Publish-Id: KEY`, a publish key) |
/// | `GET /topics/NAME/events` | Server-Sent Events; `Last-Event-ID` or `?lastEventId=` resumes |
/// | `GET /topics/NAME/ws` | WebSocket: events as JSON; `?lastEventId=` resumes; publish when allowed (`?envelope=1`: JSON envelopes with an optional publish key, acknowledged); `?format=raw`: each event's data alone, no ids, no resume, every message sent is published, errors close the socket |
/// | `GET /topics/NAME/poll?since=ID` | long poll, answered as JSON |
/// | `CONNECT /topics/NAME/wt` (`:protocol = webtransport`, HTTP/3) | WebTransport: the `/ws` endpoint's subscription, auth and JSON messages; each message the server sends is a line (`\n`-terminated) on one unidirectional stream it opens; each unidirectional stream the client opens is one message (ended by FIN), as a WebSocket text message; bidirectional streams are refused, client datagrams dropped; `?datagrams=1`: each event that fits is also sent as an HTTP datagram (lossy) |
/// | `GET /topics/NAME/presence` | the topic's members (`{"topic","members","count"}`), from its sequencer loop; `?presence=1` on `/events` and `/ws` adds `join` and `leave` events (no id, not kept) |
/// | `POST /tickets` | a single-use ticket for `?ticket=` (`?topic=` limits it to one topic): asked for with a JSON Web Token, it carries the token's subject and rights, exactly, until the token expires; with the publish token, those of the holder its body names (`{"sub":"alice","exp":T,"tether":{"sub":[...],"pub":[...]}}`), or without a body the publish token's reach |
/// | `POST /api/publish` | the server API: `{"items":[{"topic","data","type"?,"key"?},...]}`, each published as `POST /topics/NAME` would, answered per item in order (`{"results":[{"id"}|{"error"}]}`); the publisher's credential |
/// | `POST /api/broadcast` | `{"topics":[...],"data","type"?}`: one event to each topic, answered as above |
/// | `GET /api/history?topic=NAME&since=ID&limit=N` | a page of the topic's backlog (`{"topic","events","next","more","gap"}`) |
/// | `GET /api/presence?topic=NAME`, `POST /api/presence/counts` | a topic's members (`{"topic","members","count","truncated"}`); member counts of up to 1000 topics (`{"counts":{"NAME":N}}`) |
/// | `GET /api/topics?after=NAME&limit=N`, `GET /api/topics/info?topic=NAME` | the topics this node has: subscribers, backlog, last id |
/// | `POST /api/disconnect`, `/api/unsubscribe`, `/api/refresh` | act on every connection of a credential's subject, on every loop (`{"user":"SUB",...}`; the publish token only) |
/// | `POST /api/revoke`, `GET /api/revoked` | revoke tokens by `jti` (`{"jti":"ID"}`) or a subject's issued before a time (`{"subject":"SUB","before":T}`), on every loop (and, through [`HubShared::on_revoke`], every node); list them (the publish token only) |
/// | `GET /metrics` | Prometheus text format |
/// | `GET /tether-client.js` | the browser client (`clients/js`, built) as an ES module, for pages served elsewhere |
/// | `GET /admin` | on the admin listener only: the live admin page, fed by `GET /admin/events` (a JSON snapshot a second); behind the metrics token, as a bearer token or a session from `POST /admin/login` |
///
/// With [`HubSettings::auth`], topics it calls private need a JSON Web
/// Token that grants them to be subscribed to (401 without a good token,
/// 403 with one that does not grant the topic), and a subscriber whose
/// token expires is closed (WebSocket, 1008), ended (event stream) or
/// answered (long poll: 401, `token expired`) on the next tick. See [`HubAuth`] for where tokens are read.
///
/// A WebSocket upgrade that presents no credential at all, to a topic
/// that needs one (or with `?auth=1`, to publish on an open topic), is
/// let in to send `{"type":"auth","token":"..."}` as its first message
/// (within [`HubAuth::auth_timeout`]): until then it is not subscribed,
/// and any other message closes it (1008). It is told
/// `{"type":"auth-ok","expires_in":SECONDS}` when a token is taken, and
/// `{"type":"auth-expiring","in":SECONDS}` a third of the token's time
/// left (at most 30 s) before it expires; another auth message replaces
/// the token in place. An event stream whose token expires gets an
/// `auth-expired` event before it ends.
///
/// With [`HubSettings::max_connections_per_subject`], a subject's
/// WebSockets and event streams are counted over every loop, and one over
/// the limit is refused (429) before it starts. A revoked token
/// ([`HubShared::revoke`], `POST /api/revoke`) is refused (401 `token
/// revoked`) and its open connections are ended on each loop's next tick.
pub struct HubApp {
    shared: HubShared,
    index: usize,
    /// This loop's counters (one of `shared`'s).
    stats: Arc<HubStats>,
    hub: Hub<ConnId>,
    broker: Box<dyn Broker + Send>,
    /// Its subscribers and long polls.
    subscribers: Subscribers<ConnId>,
    /// WebSockets waiting for their first message, a token.
    awaiting: Awaiting,
    /// Every answer goes out through it.
    cors: Cors,
    /// Requests held for the application's backend to decide.
    decisions: Decisions,
    /// Publishes waiting for the backend's publish hook.
    publish_gate: publish_hook::PublishGate,
    /// Publishes waiting for their outcome.
    publishes: Publishes,
    /// Server API requests waiting for their items' outcomes.
    batches: Batches,
    /// Server API requests waiting for every loop's answer.
    gathering: GatheringRequests,
    /// Who is present, and who watches.
    roster: Roster,
    /// The admin page's sessions and streams.
    admin: Admin,
    /// Answers to the embedding application's presence questions
    /// ([`HubApp::ask_presence`]), until it takes them.
    presence_answers: Vec<(ConnId, Members)>,
    /// The generation of the shared settings this loop reads
    /// ([`HubShared::reload`]).
    settings_seen: u64,
    /// The generation of the revocation list this loop last ended its
    /// revoked connections by.
    revocations_seen: u64,
}

impl fmt::Debug for HubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubApp")
            .field("loop", &self.index)
            .field("broker", &self.broker.kind())
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl HubApp {
    /// A hub on a single event loop.
    pub fn new(settings: HubSettings) -> HubApp {
        HubShared::new(settings, 1).app(0)
    }

    /// The hub of loop `index`, with its broker.
    fn on_loop(shared: HubShared, index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        let stats = shared
            .stats
            .get(index)
            .or(shared.stats.last())
            .cloned()
            .unwrap_or_default();
        HubApp {
            hub: Hub::new(shared.settings.hub.clone(), broker.complete()),
            broker,
            index,
            stats,
            subscribers: Subscribers::default(),
            awaiting: Awaiting::default(),
            cors: Cors::new(shared.settings.clone()),
            decisions: Decisions::default(),
            publish_gate: publish_hook::PublishGate::default(),
            publishes: Publishes::default(),
            batches: Batches::default(),
            gathering: GatheringRequests::default(),
            roster: Roster::new(shared.node.clone(), index),
            admin: Admin::default(),
            presence_answers: Vec::new(),
            shared,
            settings_seen: 0,
            revocations_seen: 0,
        }
    }

    /// Whether a route tag is one of the hub's (for applications that
    /// embed the hub and pass it the callbacks of its routes).
    pub fn handles(tag: u32) -> bool {
        HubRoute::decode(tag).is_some()
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.shared.settings
    }

    fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// Publishes from the server itself (a feed it produces): no token, no
    /// answer but the counters.
    ///
    /// # Errors
    ///
    /// What [`Publish::new`] refuses, and what the broker refuses at once.
    pub fn publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        topic: &str,
        event_type: Option<&str>,
        data: &str,
    ) -> Result<(), HubError> {
        let publish = Publish::new(topic, event_type, data, &self.shared.settings.hub)?;
        self.publishes.submit(
            &mut LoopContext { ctx },
            &mut *self.broker,
            &self.stats,
            publish,
            Pending::Internal,
        )
    }

    /// A publish of the embedding application's, posted by a
    /// [`HubPublisher`]: submitted as the server's own, and answered
    /// where an HTTP publisher would be (a refusal at once, by
    /// [`Publishes::submit`](publish::Publishes::submit)).
    fn external_publish(&mut self, ctx: &mut Ctx<'_, HubMessage>, publish: Publish, answer: PublishAnswer) {
        let now = ctx.now();
        let until = now
            .checked_add(self.shared.settings.publish_timeout)
            .unwrap_or(now);
        let pending = Pending::External(External { answer, until });
        let submitted = self.publishes.submit(
            &mut LoopContext { ctx },
            &mut *self.broker,
            &self.stats,
            publish,
            pending,
        );
        if let Err(e) = submitted {
            log::debug!("hub: an external publish was refused: {e}");
        }
    }

    /// Asks who is present on `topic` for the embedding application's
    /// request `conn` (answered later, or never if the topic's sequencer
    /// is gone): the members come from
    /// [`HubApp::take_presence_answers`] after one of the next posts
    /// ([`App::on_post`]). [`HubApp::forget_presence_question`] drops the
    /// question, with its request.
    pub fn ask_presence(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, topic: &str) {
        self.roster.ask(ctx, Asker::Embedder(conn), topic);
    }

    /// The answers to [`HubApp::ask_presence`] that came since the last
    /// call, by request.
    pub fn take_presence_answers(&mut self) -> Vec<(ConnId, Members)> {
        std::mem::take(&mut self.presence_answers)
    }

    /// `conn`'s presence question is no longer wanted.
    pub fn forget_presence_question(&mut self, conn: ConnId) {
        self.roster.forget(conn);
        self.presence_answers.retain(|(asker, _)| *asker != conn);
    }

    fn http_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        // Worked out once: every step below reads it.
        let admission = self.shared.access.admit(request);
        let Some((topic, _)) = admission.target else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        if let Some(refusal) = self
            .shared
            .access
            .check_publisher(&self.stats, &admission, Some(topic))
        {
            return Reply::Now(refusal);
        }
        if let Err(wait) = self.shared.access.rate_limit_request(&admission, ctx.now()) {
            add(&self.stats.rate_limited, 1);
            return Reply::Now(rate_limited(wait));
        }
        let publish = match publish::from_request(topic, request, body, &self.shared.settings) {
            Ok(publish) => publish,
            Err(refusal) => return Reply::Now(refusal),
        };
        if self.shared.settings.publish_hook(topic) && !admission.is_publish_token() {
            let subject = self.shared.access.publisher_subject(request, &admission);
            return self.ask_publish(ctx, conn, subject, publish, Pending::Http(conn));
        }
        match self.publishes.submit(
            &mut LoopContext { ctx },
            &mut *self.broker,
            &self.stats,
            publish,
            Pending::Http(conn),
        ) {
            Ok(()) => Reply::Later(self.shared.settings.publish_timeout),
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    fn poll(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, request: &Request<'_>) -> Reply {
        let Some((topic, _)) = parse_path(request.path()) else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        // Taken first: a ticket's holder is forgotten here whatever the
        // answer.
        let holder = self.shared.access.holder_of(request, ctx.now());
        let since = request.query_param("since").filter(|s| !s.is_empty());
        let timeout = match poll::wait(request, self.shared.settings.poll_timeout) {
            Ok(timeout) => timeout,
            Err(refused) => return Reply::Now(refused),
        };
        match self.hub.poll(topic, conn, since.as_deref()) {
            Ok(Polled::Now { gap, events }) => {
                add(&self.stats().sent_poll, events.len() as u64);
                if gap.is_some() {
                    add(&self.stats().gaps, 1);
                }
                let next = next_id(&events, gap, since.as_deref(), || self.hub.head(topic));
                Reply::Now(poll_response(topic, &events, gap, since.as_deref(), next))
            }
            Ok(held @ (Polled::Wait | Polled::Held { .. })) => {
                // The hub's own name of the topic, shared.
                let topic: Arc<str> = (self.hub.subscription(conn))
                    .map_or_else(|| Arc::from(topic), |(name, _)| Arc::clone(name));
                if let Polled::Held { follow: true } = held {
                    self.broker.follow(&topic, &mut LoopContext { ctx });
                }
                let mut poll = Subscriber::new(topic, Transport::Poll, since);
                // Answered when its token expires, if that comes first.
                poll.hold(holder);
                self.register(conn, poll);
                Reply::Later(timeout)
            }
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    fn register(&mut self, conn: ConnId, subscriber: Subscriber) {
        add(self.stats().subscribers(subscriber.transport), 1);
        self.subscribers.insert(conn, subscriber);
    }

    /// Closes the WebSocket subscribers, ends the event streams and
    /// answers the long polls (401, the token expired) whose token has
    /// expired by `now` (Unix seconds).
    fn expire(&mut self, ctx: &mut Ctx<'_, HubMessage>, now: u64) {
        while let Some((conn, transport)) = self.subscribers.next_expired(now) {
            self.leave(ctx, conn, &CloseReason::Ended);
            self.stats().deny(Denial::SessionExpired);
            match transport {
                Transport::Poll => self
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
    fn end_revoked(&mut self, ctx: &mut Ctx<'_, HubMessage>, now: u64) {
        let revocations = &self.shared.access.revocations;
        let generation = revocations.generation();
        if generation == self.revocations_seen {
            return;
        }
        self.revocations_seen = generation;
        let revoked = self
            .subscribers
            .revoked(|s| revocations.is_revoked(s.token_id(), s.subject(), s.issued_at(), now));
        for (conn, transport) in revoked {
            self.leave(ctx, conn, &CloseReason::Ended);
            self.stats().deny(Denial::Revoked);
            match transport {
                Transport::Poll => self.cors.respond(ctx, conn, Refusal::Revoked.response()),
                _ => close_revoked(ctx, conn, transport),
            }
        }
    }

    /// Tells the WebSocket subscribers whose token expires soon, by `now`
    /// (Unix seconds), in how many seconds: they may send another.
    /// A subscriber the backend let in asks it for a later expiry instead
    /// (see [`HubApp::ask_refresh`]).
    fn warn(&mut self, ctx: &mut Ctx<'_, HubMessage>, now: u64) {
        while let Some((conn, left)) = self.subscribers.next_warning(now) {
            if self.subscribers.get(conn).is_some_and(|s| s.refreshed) {
                self.ask_refresh(ctx, conn);
                continue;
            }
            let text = format!("{{\"type\":\"auth-expiring\",\"in\":{left}}}");
            ctx.send(conn, &Message::text(text));
        }
    }

    /// The first message of a WebSocket that has to authenticate: a token
    /// that grants its topic subscribes it, anything else closes it.
    fn first_message(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, message: MessageRef<'_>) {
        if let Some(subscriber) =
            self.awaiting
                .first_message(ctx, &self.shared.access, &self.stats, conn, message)
        {
            self.subscribe(ctx, conn, subscriber);
        }
    }

    /// Another token from a subscribed WebSocket: its rights replace the
    /// old ones and its deadline moves; one that does not verify, or no
    /// longer grants the topic, closes the connection.
    fn refresh(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, token: &str) {
        let Some(topic) = self.subscribers.get(conn).map(|s| s.topic.clone()) else {
            return;
        };
        let now = self.shared.access.unix_secs_at_arrival();
        match self.shared.access.take_token(token, &topic, now) {
            Ok(grant) => {
                let deadline = grant.holder.deadline;
                let warn_at = deadline.map(|d| warning_time(d, now));
                let Some(subscriber) = self.subscribers.renew(conn, deadline, warn_at) else {
                    return;
                };
                subscriber.may_publish = grant.may_publish;
                // The new token's id and `iat` are what a revocation is
                // checked against from now on (its subject stays the one
                // the connection was counted under).
                subscriber.set_token(grant.holder.token_id, grant.holder.issued_at);
                ctx.send(conn, &Message::text(auth_ok(deadline, now)));
            }
            Err(TokenRefused::Revoked) => {
                self.leave(ctx, conn, &CloseReason::Ended);
                add(&self.stats.refused_401, 1);
                self.stats().deny(Denial::Revoked);
                ctx.close(conn, CloseCode::POLICY, "token revoked");
            }
            Err(TokenRefused::Invalid(e)) => {
                self.leave(ctx, conn, &CloseReason::Ended);
                self.stats().deny(Denial::of(&e));
                ctx.close(
                    conn,
                    CloseCode::POLICY,
                    close_reason(&format!("invalid token: {e}")),
                );
            }
            Err(TokenRefused::NotGranted) => {
                self.leave(ctx, conn, &CloseReason::Ended);
                self.stats().deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "topic no longer granted");
            }
        }
    }

    /// A WebSocket or event-stream subscriber arrives: register, replay.
    fn subscribe(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, mut subscriber: Subscriber) {
        let topic = subscriber.topic.clone();
        let transport = subscriber.transport;
        // Revoked since its request was routed (on another loop, say).
        let now = self.shared.access.unix_secs(ctx.now());
        if self.shared.access.revocations.is_revoked(
            subscriber.token_id(),
            subscriber.subject(),
            subscriber.issued_at(),
            now,
        ) {
            self.stats().deny(Denial::Revoked);
            close_revoked(ctx, conn, transport);
            return;
        }
        // A subject's connections are counted, on every loop; one over
        // the most it may have (let in by the route a moment before
        // another took the last place) is closed at once.
        if let Some(subject) = subscriber.subject() {
            let max = self.shared.settings.max_connections_per_subject;
            match self.shared.access.connections.open(subject, max) {
                Some(slot) => subscriber.rare_mut().slot = Some(slot),
                None => {
                    add(&self.stats.connection_limited, 1);
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
        if self.shared.settings.keeps_presence(&topic) {
            let member = self.roster.join(
                ctx,
                &topic,
                (conn, transport),
                subscriber.subject(),
                subscriber.watches,
            );
            subscriber.set_member(member);
        }
        self.register(conn, subscriber);
        let Self {
            hub,
            stats,
            subscribers,
            ..
        } = self;
        let Some(subscriber) = subscribers.get(conn) else {
            return;
        };
        match hub.subscribe(&topic, conn, transport, subscriber.requested()) {
            Ok(Subscribed::Live(replay)) => {
                send_replay(ctx, stats, conn, subscriber, replay.gap(), replay.events());
            }
            Ok(Subscribed::Held { follow }) => {
                if follow {
                    self.broker.follow(&topic, &mut LoopContext { ctx });
                }
            }
            Err(e) => {
                log::warn!("hub: subscribe failed: {e}");
                self.leave(ctx, conn, &CloseReason::Ended);
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

    /// A subscriber or long poll is gone.
    fn leave(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, reason: &CloseReason) {
        self.awaiting.forget(conn);
        self.publish_gate.forget(conn);
        if let Some(subscriber) = self.subscribers.remove(conn) {
            sub(self.stats().subscribers(subscriber.transport), 1);
            if *reason == CloseReason::SlowConsumer {
                add(&self.stats().slow_consumer_drops, 1);
            }
            let member = subscriber.member();
            if member.is_some() || subscriber.watches {
                self.roster.leave(ctx, &subscriber.topic, conn, member.as_ref());
            }
        }
        if let Some(left) = self.hub.unsubscribe(conn)
            && left.unfollow
        {
            self.broker.unfollow(&left.topic, &mut LoopContext { ctx });
        }
    }

    fn ws_message(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, message: MessageRef<'_>) {
        if self.awaiting.contains(conn) {
            return self.first_message(ctx, conn, message);
        }
        let raw = self
            .subscribers
            .get(conn)
            .is_some_and(|s| s.transport == Transport::RawWebSocket);
        // On a raw socket every message is data, an auth message too.
        if !raw
            && self.shared.settings.auth.is_some()
            && let Some(token) = message.as_text().and_then(tether_auth::ws_auth_token)
        {
            return self.refresh(ctx, conn, &token);
        }
        let Some(subscriber) = self.subscribers.get_mut(conn) else {
            return;
        };
        let limited = match self.shared.settings.publish_rate {
            Some(rate) if subscriber.may_publish && message.as_text().is_some() => {
                let now = ctx.now();
                subscriber
                    .rare_mut()
                    .bucket
                    .get_or_insert_with(|| rate::Bucket::full(rate, now))
                    .take(rate, now)
                    .and_then(|()| self.shared.access.rate_limit(subscriber.subject(), now))
                    .is_err()
            }
            _ => false,
        };
        let published = if limited {
            Err(NotPublished::RateLimited)
        } else {
            publish::from_message(subscriber, conn, message, &self.shared.settings)
        };
        let refused = match published {
            Ok(ws) if self.shared.settings.publish_hook(&ws.publish.topic) => {
                let subject = self
                    .subscribers
                    .get(conn)
                    .and_then(|s| s.subject().map(str::to_owned));
                match self.hold_publish(ctx, conn, subject, ws.publish, ws.pending) {
                    Ok(()) => return,
                    Err(key) => {
                        if let Some(subscriber) = self.subscribers.get_mut(conn) {
                            subscriber.settle_in_flight(ws.len);
                        }
                        NotPublished::Undecided(key)
                    }
                }
            }
            Ok(ws) => match self.publishes.submit(
                &mut LoopContext { ctx },
                &mut *self.broker,
                &self.stats,
                ws.publish,
                ws.pending,
            ) {
                Ok(()) => return,
                Err(e) => {
                    if let Some(subscriber) = self.subscribers.get_mut(conn) {
                        subscriber.settle_in_flight(ws.len);
                    }
                    NotPublished::Hub(e, ws.key)
                }
            },
            Err(refused) => refused,
        };
        self.refuse_ws_publish(ctx, conn, refused, raw);
    }

    /// Tells the WebSocket publisher `conn` why its message was not
    /// published: an error message on a JSON socket, a close on a raw one
    /// (which has no messages but data), a close for a publisher too fast.
    fn refuse_ws_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        refused: NotPublished,
        raw: bool,
    ) {
        match (refused, raw) {
            (NotPublished::TooFast, _) => ctx.close(
                conn,
                CloseCode::POLICY,
                "publishing faster than the hub sequences",
            ),
            (NotPublished::RateLimited, _) => {
                add(&self.stats.rate_limited, 1);
                self.leave(ctx, conn, &CloseReason::Ended);
                ctx.close(conn, CloseCode::POLICY, "publishing faster than the rate limit");
            }
            (NotPublished::Refused(code, why), true) => self.close_raw(ctx, conn, code, why),
            (NotPublished::Refused(_, why), false) => send_error(ctx, conn, why),
            (NotPublished::BadEnvelope(why), _) => send_error(ctx, conn, &why),
            (NotPublished::Hub(e, _), true) => self.refuse_raw(ctx, conn, &e),
            (NotPublished::Hub(e, key), false) => {
                ctx.send(conn, &Message::text(error_json(&e.to_string(), key.as_deref())));
            }
            (NotPublished::Denied(why, _), true) => self.close_raw(ctx, conn, CloseCode::POLICY, &why),
            (NotPublished::Denied(why, key), false) => {
                ctx.send(conn, &Message::text(error_json(&why, key.as_deref())));
            }
            (NotPublished::Undecided(_), true) => {
                self.close_raw(ctx, conn, CloseCode::TRY_AGAIN_LATER, publish::UNDECIDED);
            }
            (NotPublished::Undecided(key), false) => {
                ctx.send(
                    conn,
                    &Message::text(error_json(publish::UNDECIDED, key.as_deref())),
                );
            }
        }
    }

    /// A raw subscriber's publish is refused: it has no messages but data,
    /// so it is closed, with the reason (1008 for what it sent, 1013 when
    /// the hub cannot take publishes now).
    fn refuse_raw(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, e: &HubError) {
        let code = if e.http_status() == 503 {
            CloseCode::TRY_AGAIN_LATER
        } else {
            CloseCode::POLICY
        };
        self.close_raw(ctx, conn, code, &e.to_string());
    }

    /// Closes a raw subscriber: it leaves at once, so that nothing more is
    /// sent to it before the close frame.
    fn close_raw(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, code: CloseCode, why: &str) {
        self.leave(ctx, conn, &CloseReason::Ended);
        ctx.close(conn, code, close_reason(why));
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_, HubMessage>, event: Arc<Event>) {
        let Self {
            hub,
            stats,
            subscribers,
            ..
        } = self;
        let delivery = match hub.deliver(event.clone()) {
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
            if let Some(poll) = subscribers.remove(waiter) {
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
            send_resumed(ctx, stats, subscribers, &mut self.cors, resumed);
        }
        for (conn, response) in answers {
            self.cors.respond(ctx, conn, response);
        }
    }

    /// The outcome of a publish: its event's id and whether it was a
    /// duplicate (its key remembered: nothing published), or the refusal.
    fn published(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        token: u64,
        result: Result<(EventId, bool), HubError>,
    ) {
        let Some(pending) = self.publishes.take(token) else {
            return;
        };
        match publish::settle(pending, result, &mut self.subscribers, &self.stats) {
            Settled::Answer(conn, response) => self.cors.respond(ctx, conn, response),
            Settled::WsReply(conn, text) => ctx.send(conn, &Message::text(text)),
            Settled::CloseRaw(conn, e) => self.refuse_raw(ctx, conn, &e),
            Settled::Item(conn, index, result) => self.api_item_settled(ctx, conn, index, result),
            Settled::Nothing => {}
        }
    }

    fn ready(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
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
        let stats = &self.stats;
        for resumed in readied.resumed {
            send_resumed(ctx, stats, &mut self.subscribers, &mut self.cors, resumed);
        }
        for (conn, transport) in readied.resync {
            match transport {
                Transport::WebSocket | Transport::RawWebSocket => {
                    ctx.close(conn, CloseCode::SERVICE_RESTART, "resynchronising: resume")
                }
                Transport::EventStream => ctx.end_stream(conn),
                Transport::Poll => {
                    if let Some(poll) = self.subscribers.remove(conn) {
                        sub(&self.stats.subscribers_poll, 1);
                        let response = poll_timeout_response(&self.hub, &poll.topic, poll.requested());
                        self.cors.respond(ctx, conn, response);
                    }
                }
            }
        }
    }
}

/// Where each loop's hub is made.
impl HubShared {
    /// The application for loop `loop_index`, with the in-process broker.
    pub fn app(&self, loop_index: usize) -> HubApp {
        self.app_with_broker(loop_index, Box::new(self.local.sibling()))
    }

    /// The application for loop `loop_index`, with another broker (one
    /// value per loop; see [`tether_hub::Broker`] for the contract).
    pub fn app_with_broker(&self, loop_index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        HubApp::on_loop(self.clone(), loop_index, broker)
    }
}

impl App for HubApp {
    type Post = HubMessage;

    fn route(&mut self, request: &Request<'_>) -> Route {
        // Every request starts here: settings replaced since the last one
        // apply from it on.
        self.shared.catch_up(&mut self.settings_seen);
        if request.via_admin_listener()
            && let Some(route) = self
                .admin
                .route(request, self.shared.settings.metrics_token.as_deref())
        {
            return route;
        }
        router::route(&self.shared.access, &self.stats, request)
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, request: &Request<'_>) {
        // Who the backend said it is, if it was asked.
        let presented = self.decisions.take_decided(conn, ctx.now());
        let before = self.shared.access.present(presented);
        self.open(ctx, conn, tag, request);
        self.shared.access.present(before);
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        _tag: u32,
        message: MessageRef<'_>,
    ) {
        self.shared.catch_up(&mut self.settings_seen);
        self.ws_message(ctx, conn, message);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, _tag: u32, reason: CloseReason) {
        self.leave(ctx, conn, &reason);
    }

    fn event_stream_headers(&mut self, _tag: u32, request: &Request<'_>) -> Vec<(String, String)> {
        // The CORS fields a cross-origin EventSource needs, as on the
        // hub's other routes.
        self.cors.stream_headers(request)
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        let presented = self.decisions.take_decided(conn, ctx.now());
        let before = self.shared.access.present(presented);
        self.start_stream(ctx, conn, tag, request, last_event_id);
        self.shared.access.present(before);
    }

    fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        _tag: u32,
        reason: CloseReason,
    ) {
        if self.admin.is_stream(conn) {
            self.admin.unsubscribe(conn);
            return;
        }
        self.leave(ctx, conn, &reason);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.shared.catch_up(&mut self.settings_seen);
        let now = self.shared.access.unix_secs(ctx.now());
        self.expire(ctx, now);
        self.end_revoked(ctx, now);
        self.warn(ctx, now);
        self.awaiting.time_out(ctx, &self.stats);
        self.decisions.tick(ctx.now());
        self.publishes.time_out(ctx.now());
        let stats = &self.stats;
        for resumed in self.hub.tick() {
            send_resumed(ctx, stats, &mut self.subscribers, &mut self.cors, resumed);
        }
        self.broker.tick(&mut LoopContext { ctx });
        self.roster.tick(ctx, &mut *self.broker);
        self.stats
            .presence_members
            .store(self.roster.count() as u64, std::sync::atomic::Ordering::Relaxed);
        let sources = metrics::Sources {
            loops: &self.shared.stats,
            hub: &self.hub,
            broker: &*self.broker,
            per_topic: false,
        };
        let token = self.shared.settings.metrics_token.as_deref();
        self.admin.tick(ctx, &sources, token);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let route = HubRoute::decode(tag);
        if matches!(route, Some(HubRoute::Metrics | HubRoute::Admin(_))) {
            return self.answer_request(ctx, conn, tag, request, body);
        }
        let reply = self.answer_request(ctx, conn, tag, request, body);
        self.cors.reply(conn, request, reply)
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) -> Response {
        let response = self.request_timeout(ctx, conn, tag);
        self.cors.finish(conn, response)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) {
        self.cors.forget(conn);
        match HubRoute::decode(tag) {
            Some(HubRoute::Poll) => self.leave(ctx, conn, &CloseReason::Dropped),
            Some(HubRoute::Presence) => self.roster.forget(conn),
            Some(HubRoute::Api(_)) => self.api_abandoned(conn),
            Some(HubRoute::Decide | HubRoute::Decided) => self.decisions.forget(conn),
            _ => {
                self.publish_gate.forget(conn);
                self.publishes.forget(conn);
            }
        }
    }

    fn refuse_before_body(
        &mut self,
        _ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> Option<Response> {
        if request.via_admin_listener() {
            return None;
        }
        // Called before `route` when a body is still to come.
        self.shared.catch_up(&mut self.settings_seen);
        // Publishing, tickets and the server API need the token, whatever
        // the body says.
        if let Some(refusal) = self.api_refuse_before_body(request) {
            return Some(self.cors.now(request, refusal));
        }
        let target = parse_path(request.path());
        let needs_token = request.method() == "POST"
            && (request.path() == "/tickets" || matches!(target, Some((_, Endpoint::Publish))));
        // Who a request without credentials is, the backend says: its body
        // is read first.
        let asks_connect = self.shared.settings.backend_for(backend::Hook::Connect).is_some()
            && self.shared.access.presents_nothing(request);
        if needs_token && !asks_connect {
            let admission = self.shared.access.admit_to(request, target);
            let topic = admission.target.map(|(topic, _)| topic);
            let access = &self.shared.access;
            match access.check_publisher(&self.stats, &admission, topic) {
                Some(refusal) => Some(self.cors.now(request, refusal)),
                None => {
                    // The body's callback reads this verification.
                    if let Ok(credential) = &admission.credential {
                        access.keep_for_next_callback(request, credential);
                    }
                    None
                }
            }
        } else {
            None
        }
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        if request.via_admin_listener() {
            return None;
        }
        let answer = self.api_too_large(request, limit)?;
        Some(self.cors.now(request, answer))
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        // Publishes are refused from now on (503 with Retry-After), here
        // and when forwarded to this loop's sequencer: everything
        // acknowledged so far is delivered before the sessions close.
        self.broker.shutdown(&mut LoopContext { ctx });
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
    ) -> Option<Response> {
        let response = self.request_shutdown(ctx, conn, tag)?;
        Some(self.cors.finish(conn, response))
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        match message {
            HubMessage::Deliver(event) => self.deliver(ctx, event),
            HubMessage::Published { token, result } => {
                self.published(ctx, token, result.map(|id| (id, false)));
            }
            HubMessage::Duplicate { token, id } => self.published(ctx, token, Ok((id, true))),
            HubMessage::Ready {
                topic,
                history,
                dropped,
            } => self.ready(ctx, &topic, history, dropped),
            HubMessage::Forget(topic) => self.hub.forget(&topic),
            HubMessage::Broker(message) => self.broker.receive(message, &mut LoopContext { ctx }),
            HubMessage::Presence(message) => {
                match self.roster.receive(ctx, &mut *self.broker, message) {
                    Some(Answer::Page(conn, response)) => self.cors.respond(ctx, conn, response),
                    Some(Answer::Api(asker, topic, members)) => {
                        self.api_members(ctx, asker, &topic, &members);
                    }
                    Some(Answer::Embedder(conn, members)) => self.presence_answers.push((conn, members)),
                    None => {}
                }
                self.stats
                    .presence_members
                    .store(self.roster.count() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            HubMessage::Control(ControlMessage::Decided { token, decision }) => {
                self.decision(ctx, token, decision);
            }
            HubMessage::Control(message) => self.api_control(ctx, message),
            HubMessage::External { publish, answer } => self.external_publish(ctx, publish, answer),
            other => log::debug!("hub: unexpected {other:?}"),
        }
    }
}

/// The answers of the hub's routes.
impl HubApp {
    /// The answer to a request on one of the hub's handler routes, before
    /// its CORS fields.
    fn answer_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let route = HubRoute::decode(tag);
        if route == Some(HubRoute::Metrics) {
            return self.metrics_request(ctx, request);
        }
        if let Some(HubRoute::Admin(route)) = route {
            let token = self.shared.settings.metrics_token.as_deref();
            return Reply::Now(self.admin.answer(route, request, body, token));
        }
        match route {
            Some(HubRoute::Preflight) => Reply::Now(self.cors.preflight(request).unwrap_or_else(|| {
                add(&self.stats.refused_403, 1);
                Response::text(403, "origin not allowed\n")
            })),
            Some(HubRoute::Publish) => self.http_publish(ctx, conn, request, body),
            Some(HubRoute::Api(route)) => self.api_request(ctx, conn, request, body, route),
            Some(HubRoute::Poll) => self.poll(ctx, conn, request),
            Some(HubRoute::Presence) => match parse_path(request.path()) {
                Some((topic, _)) => {
                    self.roster.ask(ctx, Asker::Page(conn), topic);
                    Reply::Later(self.shared.settings.publish_timeout)
                }
                None => Reply::Now(Response::text(404, "404 Not Found\n")),
            },
            Some(HubRoute::Tickets) => {
                Reply::Now(self.shared.access.issue_ticket(&self.stats, request, body))
            }
            Some(HubRoute::Refused(refusal)) => Reply::Now(refusal.response()),
            Some(HubRoute::Decide) => self.decide_request(ctx, conn, request),
            Some(HubRoute::Decided) => self.decided_request(ctx, conn, request, body),
            _ => Reply::Now(Response::text(404, "404 Not Found\n")),
        }
    }
}

/// The answers of the hub's callbacks, before CORS headers are added.
impl HubApp {
    /// A WebSocket session opened (with the backend's decision presented,
    /// if there is one).
    fn open(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, request: &Request<'_>) {
        let Some(HubRoute::WebSocket(socket)) = HubRoute::decode(tag) else {
            return;
        };
        let Some(mut subscriber) = Subscriber::websocket(request, socket) else {
            return;
        };
        if socket == Socket::AuthFirst {
            let timeout = self
                .shared
                .settings
                .auth
                .as_ref()
                .map_or(DEFAULT_AUTH_TIMEOUT, |auth| auth.auth_timeout);
            let until = ctx.now().checked_add(timeout).unwrap_or_else(|| ctx.now());
            self.awaiting.admit(conn, subscriber, until);
            return;
        }
        subscriber.hold(self.shared.access.holder_of(request, ctx.now()));
        let now = self.shared.access.unix_secs(ctx.now());
        self.refresh_by_backend(&mut subscriber, now);
        // A raw subscriber gets no warning (it could not tell it from
        // data, nor send another token): it is closed when its token
        // expires, unless the backend gives it a later expiry.
        if subscriber.transport == Transport::WebSocket {
            subscriber.set_warn_at(subscriber.deadline().map(|d| warning_time(d, now)));
        }
        self.subscribe(ctx, conn, subscriber);
    }

    /// An event stream started (with the backend's decision presented,
    /// if there is one).
    fn start_stream(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        if HubRoute::decode(tag) == Some(HubRoute::Admin(AdminRoute::Events)) {
            let sources = metrics::Sources {
                loops: &self.shared.stats,
                hub: &self.hub,
                broker: &*self.broker,
                per_topic: false,
            };
            let token = self.shared.settings.metrics_token.as_deref();
            self.admin.subscribe(ctx, conn, request, &sources, token);
            return;
        }
        if let Some(mut subscriber) = Subscriber::event_stream(request, last_event_id) {
            subscriber.hold(self.shared.access.holder_of(request, ctx.now()));
            let now = self.shared.access.unix_secs(ctx.now());
            self.refresh_by_backend(&mut subscriber, now);
            self.subscribe(ctx, conn, subscriber);
        }
    }

    fn metrics_request(&mut self, ctx: &mut Ctx<'_, HubMessage>, request: &Request<'_>) -> Reply {
        let sources = metrics::Sources {
            loops: &self.shared.stats,
            hub: &self.hub,
            broker: &*self.broker,
            per_topic: self.shared.settings.metrics_topics,
        };
        let token = self.shared.settings.metrics_token.as_deref();
        Reply::Now(metrics::answer(request, token, || ctx.stats(), &sources))
    }

    /// A long poll that nothing answered: its usual empty answer, with the
    /// id to poll from next.
    fn end_poll(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, reason: &CloseReason) -> Response {
        let response = match self.subscribers.get(conn) {
            Some(poll) => poll_timeout_response(&self.hub, &poll.topic, poll.requested()),
            None => Response::empty(204),
        };
        self.leave(ctx, conn, reason);
        response
    }

    fn request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) -> Response {
        match HubRoute::decode(tag) {
            Some(HubRoute::Poll) => self.end_poll(ctx, conn, &CloseReason::Ended),
            Some(HubRoute::Presence) => {
                self.roster.forget(conn);
                Response::text(504, "the members were not known in time\n")
            }
            Some(HubRoute::Api(_)) => self.api_timeout(conn),
            Some(HubRoute::Decide | HubRoute::Decided) => self.decision_timeout(conn),
            _ => {
                self.publish_gate.forget(conn);
                self.publishes.forget(conn);
                Response::text(504, "the broker did not answer in time\n")
            }
        }
    }

    fn request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
    ) -> Option<Response> {
        match HubRoute::decode(tag) {
            // A long poll still waiting has no events: it gets its usual
            // empty answer (with the id to poll from next), and when to
            // come back.
            Some(HubRoute::Poll) => Some(replies::refusal(
                self.end_poll(ctx, conn, &CloseReason::Shutdown),
                Some(replies::SOON),
            )),
            // The sequencer may be gone already.
            Some(HubRoute::Presence) => {
                self.roster.forget(conn);
                Some(shutting_down())
            }
            // Nothing is decided any more, and a publish still waiting for
            // the backend's decision was not published and will not be:
            // its client may send it again elsewhere.
            Some(HubRoute::Decide | HubRoute::Decided) => {
                self.decisions.forget(conn);
                self.publish_gate.forget(conn);
                Some(shutting_down())
            }
            _ if self.publish_gate.holds(conn) => {
                self.publish_gate.forget(conn);
                Some(shutting_down())
            }
            // A publish the broker has waits for its outcome, which every
            // loop's drain guarantees is on its way (or its own timeout
            // answers 504).
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
