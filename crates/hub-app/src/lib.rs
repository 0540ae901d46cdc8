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
/// The parts of a [`HubApp`] every concern borrows, split from the
/// concern's own field: `parts!(self)`.
macro_rules! parts {
    ($app:ident) => {
        LoopParts {
            shared: &$app.shared,
            stats: &$app.stats,
            broker: &mut *$app.broker,
            cors: &mut $app.cors,
            departed: &mut $app.departed,
        }
    };
}

mod access;
mod admin;
mod admission;
mod api;
mod auth;
mod backend;
mod broker_view;
mod client_script;
mod connections;
mod cors;
mod deliver;
mod embedder;
mod external;
mod hooks;
mod http_backend;
mod json_text;
mod latency;
mod latest_value;
mod loop_parts;
mod metrics;
mod multiplex;
mod namespace;
mod origin;
mod presence;
mod process;
mod publishing;
mod rate;
mod readiness;
mod replies;
mod router;
mod routes;
mod rpc;
mod settings;
mod shared;
mod sse_encoded;
mod subscribers;

use std::sync::Arc;
use std::time::Duration;

use tether_hub::{Broker, ControlMessage, HubMessage, Members};

/// Not part of the API: the hub's readers of network input, for the
/// fuzz targets (`fuzz/fuzz_targets/hub_mux_message.rs`).
#[doc(hidden)]
pub mod fuzz;

pub use self::access::{DEFAULT_REVOCATION_TTL, MAX_REVOCATIONS, Revocation, Revoked};
use self::admin::{Admin, AdminRoute};
pub use self::admission::Admission;
use self::admission::Served;
use self::api::ServerApi;
pub use self::auth::{DEFAULT_AUTH_TIMEOUT, DEFAULT_TOKEN_COOKIE, HubAuth};
pub use self::backend::{AnswerTo, Backend, Busy, Hook, Question};
use self::broker_view::LoopContext;
use self::cors::Cors;
use self::deliver::Delivery;
pub use self::external::{HubPublisher, PublishError, PublishFuture};
use self::hooks::{BackendHooks, unavailable};
pub use self::http_backend::{DEFAULT_PER_LOOP, HttpBackend};
use self::loop_parts::LoopParts;
use self::metrics::HubStats;
pub use self::namespace::{Namespace, UnknownNamespace, WhoPublishes, WhoSubscribes};
pub use self::origin::Origins;
use self::presence::{Answer, Asker};
use self::publishing::Publishing;
pub use self::rate::PublishRate;
use self::readiness::BusReadiness;
use self::replies::shutting_down;
use self::router::Routing;
use self::routes::HubRoute;
use self::rpc::Calls;
pub use self::settings::HubSettings;
pub use self::shared::{HubShared, RevocationListFull};
use tether_server::{
    App, BeforeBody, CloseReason, ConnId, Ctx, MessageRef, Readiness, Reply, Request, Response, Route,
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
/// | `GET /ws` | one WebSocket, many topics: JSON messages subscribe (each with its own `since`, `presence`, `ticket`), unsubscribe, publish (acknowledged), authenticate and call the backend's rpc hook (answered to the caller alone, by the call's id); a refused subscribe is an answer with the topic route's status, never a close; at most [`HubSettings::max_subscriptions`] topics a socket |
/// | `POST /rpc` | a call to the backend's rpc hook (`{"method","data"}`), with a publish's credentials: answered `{"data":…}`, or the error's code as its status with `{"code","reason"}` |
/// | `GET /topics/NAME/poll?since=ID` | long poll, answered as JSON |
/// | `CONNECT /topics/NAME/wt` (`:protocol = webtransport`, HTTP/3) | WebTransport: the `/ws` endpoint's subscription, auth and JSON messages; each message the server sends is a line (`\n`-terminated) on one unidirectional stream it opens; each unidirectional stream the client opens is one message (ended by FIN), as a WebSocket text message; bidirectional streams are refused, client datagrams dropped; `?datagrams=1`: each event that fits is also sent as an HTTP datagram (lossy) |
/// | `GET /topics/NAME/presence` | the topic's members (`{"topic","members","count"}`), from its sequencer loop; `?presence=1` on `/events` and `/ws` adds `join` and `leave` events (no id, not kept) |
/// | `POST /tickets` | a single-use ticket for `?ticket=` (`?topic=` limits it to one topic): asked for with a JSON Web Token, it carries the token's subject and rights, exactly, until the token expires; with the publish token, those of the holder its body names (`{"sub":"alice","exp":T,"tether":{"sub":[...],"pub":[...]}}`), or without a body the publish token's reach |
/// | `POST /api/publish` | the server API: `{"items":[{"topic","data","type"?,"key"?},...]}`, each published as `POST /topics/NAME` would, answered per item in order (`{"results":[{"id"}|{"error"}]}`); the publisher's credential |
/// | `POST /api/broadcast` | `{"topics":[...],"data","type"?}`: one event to each topic, answered as above |
/// | `GET /api/history?topic=NAME&since=ID&limit=N` | a page of the topic's backlog (`{"topic","events","next","more","gap"}`) |
/// | `GET /api/presence?topic=NAME`, `POST /api/presence/counts` | a topic's members (`{"topic","members","count","truncated"}`); member counts of up to 1000 topics (`{"counts":{"NAME":N}}`) |
/// | `GET /api/topics?after=NAME&limit=N`, `GET /api/topics/info?topic=NAME` | the topics this node has: subscribers, backlog, last id |
/// | `POST /api/disconnect`, `/api/subscribe`, `/api/unsubscribe`, `/api/refresh` | act on every connection of a credential's subject, on every loop (`{"user":"SUB",...}`; the publish token only); subscribe and unsubscribe act on a multiplexed socket's subscription without closing it |
/// | `GET /api/connections?user=SUB` | the subject's connections on every loop (`{"user","connections":[{"loop","transport","topic","since"}],"count","truncated"}`; the publish token only) |
/// | `POST /api/revoke`, `GET /api/revoked` | revoke tokens by `jti` (`{"jti":"ID"}`) or a subject's issued before a time (`{"subject":"SUB","before":T}`), on every loop (and, through [`HubShared::on_revoke`], every node); list them (the publish token only) |
/// | `GET /metrics` | Prometheus text format |
/// | `GET /tether-client.js` | the browser client (`clients/js`, built) as an ES module, for pages served elsewhere |
/// | `GET /admin` | on the admin listener only (which answers 421 to a `Host` that is not its address, `localhost` or one of [`HubSettings::admin_hosts`]): the live admin page, fed by `GET /admin/events` (a JSON snapshot a second); behind the metrics token, as a bearer token or a session from `POST /admin/login`; its actions are the server API's endpoints under `/admin/api/` (the same origin and, to change anything, the session's `X-CSRF-Token` required; each logged) and `GET /admin/watch?topic=NAME`, a topic's events live. Without a metrics token the page is read-only (the counters) and its actions answer 403 |
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
    broker: Box<dyn Broker + Send>,
    /// Every answer goes out through it.
    cors: Cors,
    /// The topics, their subscribers and who is present.
    delivery: Delivery,
    /// Publishes waiting for their outcome.
    publishing: Publishing,
    /// Requests and publishes held for the application's backend to
    /// decide.
    hooks: BackendHooks,
    /// Clients' calls out to the backend's rpc hook.
    calls: Calls,
    /// Questions out to the backend's latest hook.
    values: latest_value::LatestValues,
    /// Server API requests waiting for their items or for every loop.
    api: ServerApi,
    /// The admin page's sessions and streams.
    admin: Admin,
    /// Answers to the embedding application's presence questions
    /// ([`HubApp::ask_presence`]), until it takes them.
    presence_answers: Vec<(ConnId, Members)>,
    /// The generation of the shared settings this loop reads
    /// ([`HubShared::reload`]).
    settings_seen: u64,
    /// The connections that left since the publishing concern last let
    /// go of their held publishes ([`LoopParts::departed`]).
    departed: Vec<ConnId>,
    /// Whether the bus was reached since the loop started (`/readyz`).
    bus_readiness: BusReadiness,
}

impl HubApp {
    /// The answer to a request on one of the hub's handler routes, before
    /// its CORS fields: the concern whose route it is answers it.
    fn answer_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        admission: &mut Admission,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let route = admission.route;
        if route == HubRoute::Metrics {
            let sources = metrics::Sources {
                loops: &self.shared.stats,
                hub: self.delivery.hub(),
                broker: &*self.broker,
                per_topic: self.shared.settings.metrics_topics,
                shared: Some(&self.shared),
            };
            let token = self.shared.settings.metrics_token.as_deref();
            let build = self.shared.settings.build_info.as_ref();
            return Reply::Now(metrics::answer(request, token, || ctx.stats(), &sources, build));
        }
        if let HubRoute::Admin(route) = route {
            let token = self.shared.settings.metrics_token.as_deref();
            if route == AdminRoute::Api {
                // The page's actions: the server API's, once let in.
                return match self.admin.action(request, body, token) {
                    Ok(route) => self.api.request_as_admin(
                        ctx,
                        &mut parts!(self),
                        api::Lent {
                            delivery: &mut self.delivery,
                            publishing: &mut self.publishing,
                        },
                        api::Call { conn, request, body },
                        route,
                    ),
                    Err(refused) => Reply::Now(refused),
                };
            }
            return Reply::Now(self.admin.answer(route, request, body, token));
        }
        match route {
            HubRoute::Preflight => Reply::Now(self.cors.preflight(request).unwrap_or_else(|| {
                metrics::add(&self.stats.refused_403, 1);
                Response::text(403, "origin not allowed\n")
            })),
            HubRoute::Publish => {
                let served = Served {
                    conn,
                    request,
                    admission,
                };
                (self.publishing).http_publish(ctx, &mut parts!(self), &mut self.hooks, served, body)
            }
            HubRoute::Api(_) => self.api.request(
                ctx,
                &mut parts!(self),
                api::Lent {
                    delivery: &mut self.delivery,
                    publishing: &mut self.publishing,
                },
                api::Call { conn, request, body },
                admission,
            ),
            HubRoute::Poll => {
                let served = Served {
                    conn,
                    request,
                    admission,
                };
                self.delivery.poll(ctx, &mut parts!(self), served)
            }
            HubRoute::MultiPoll => {
                let served = Served {
                    conn,
                    request,
                    admission,
                };
                self.delivery.poll_multi(ctx, &mut parts!(self), served)
            }
            HubRoute::Presence => match admission.topic() {
                Some(topic) => {
                    self.delivery.ask_members(ctx, Asker::Page(conn), topic);
                    Reply::Later(self.shared.settings.publish_timeout)
                }
                None => Reply::Now(Response::text(404, "404 Not Found\n")),
            },
            HubRoute::Tickets => {
                let access = &self.shared.access;
                let credential = admission.take_credential(access, request);
                Reply::Now(access.issue_ticket(&self.stats, request, credential, body))
            }
            HubRoute::Refused(refusal) => Reply::Now(refusal.response()),
            HubRoute::Rpc => {
                let subject = admission.publisher_subject(&self.shared.access, request);
                (self.calls).request(ctx, &parts!(self), &mut self.hooks, conn, subject, body)
            }
            HubRoute::Decide => {
                let served = Served {
                    conn,
                    request,
                    admission,
                };
                (self.hooks).decide_request(ctx, &mut parts!(self), served)
            }
            HubRoute::Heads { .. } => self
                .delivery
                .warm(ctx, &mut parts!(self), conn, request, admission),
            HubRoute::Decided => {
                // Routed again, with the backend's decision standing for
                // its credential.
                let Some(presented) = admission.take_presented() else {
                    return Reply::Now(unavailable());
                };
                let ticket = admission.take_ticket();
                let again = Routing::Again { presented, ticket };
                let route = router::route(&self.shared.access, &self.stats, request, again);
                let max = self.shared.settings.max_subscriptions;
                let route = self.delivery.hold_for_heads(request, max, route);
                BackendHooks::go_on_as(ctx, conn, route, admission)
            }
            _ => Reply::Now(Response::text(404, "404 Not Found\n")),
        }
    }

    /// A long poll, a presence question, a held request or a publish that
    /// was not answered in time, before its CORS fields.
    fn request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, route: HubRoute) -> Response {
        match route {
            HubRoute::Poll | HubRoute::MultiPoll => {
                (self.delivery).end_poll(ctx, &mut parts!(self), conn, &CloseReason::Ended)
            }
            HubRoute::Presence => {
                self.delivery.forget_question(conn);
                Response::text(504, "the members were not known in time\n")
            }
            HubRoute::Api(_) | HubRoute::Admin(AdminRoute::Api) => {
                (self.api).timeout(conn, &mut self.delivery, &mut self.publishing)
            }
            HubRoute::Decide | HubRoute::Decided => self.hooks.decision_timeout(conn),
            HubRoute::Heads { .. } => (self.delivery).heads_timeout(ctx, &mut parts!(self), conn),
            HubRoute::Rpc => {
                self.calls.forget_request(conn);
                rpc::timed_out()
            }
            _ => {
                self.publishing.forget(&mut parts!(self), conn);
                Response::text(504, "the broker did not answer in time\n")
            }
        }
    }
}

impl App for HubApp {
    type Post = HubMessage;
    type State = Admission;

    fn route(&mut self, request: &Request<'_>) -> Route<Admission> {
        // Every request starts here: settings replaced since the last one
        // apply from it on.
        self.shared.catch_up(&mut self.settings_seen);
        let settings = &self.shared.settings;
        if request.via_admin_listener()
            && let Some(route) =
                self.admin
                    .route(request, settings.metrics_token.as_deref(), &settings.admin_hosts)
        {
            return route.map(Admission::new);
        }
        let route = router::route(&self.shared.access, &self.stats, request, Routing::First);
        (self.delivery).hold_for_heads(request, settings.max_subscriptions, route)
    }

    fn on_open(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Admission,
        request: &Request<'_>,
    ) {
        // Held for the backend's word, its origin kept: no answer comes
        // now.
        self.cors.forget(conn);
        let served = Served {
            conn,
            request,
            admission: state,
        };
        (self.delivery).open(ctx, &mut parts!(self), &mut self.hooks, served);
        // Held for its topic's history: its subscription keeps it now.
        (self.delivery).warmed(ctx, &mut parts!(self), conn);
        self.ask_for_values(ctx);
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        _state: &mut Admission,
        message: MessageRef<'_>,
    ) {
        self.shared.catch_up(&mut self.settings_seen);
        let call = (self.publishing).ws_message(
            ctx,
            &mut parts!(self),
            &mut self.delivery,
            &mut self.hooks,
            conn,
            message,
        );
        if let Some(call) = call {
            let subject = self.delivery.subscribers.get(conn).and_then(|s| s.subject());
            let subject = subject.map(str::to_owned);
            (self.calls).call(ctx, &parts!(self), &mut self.hooks, conn, subject, call);
        }
        self.ask_for_values(ctx);
    }

    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        _state: &mut Admission,
        reason: CloseReason,
    ) {
        self.cors.forget(conn);
        // A question about the subject its token named, still out.
        self.hooks.forget(conn);
        self.calls.forget(conn);
        (self.delivery).leave(ctx, &mut parts!(self), conn, &reason);
    }

    fn compress_event_stream(&mut self, state: &mut Admission, request: &Request<'_>) -> bool {
        let settings = &self.shared.settings;
        match state.topic() {
            Some(topic) => settings.compresses(topic),
            // A multi-topic stream: only if each of its topics may be.
            None => request
                .query_params("topic")
                .all(|topic| settings.compresses(&topic)),
        }
    }

    fn event_stream_headers(
        &mut self,
        _state: &mut Admission,
        request: &Request<'_>,
    ) -> Vec<(String, String)> {
        // The CORS fields a cross-origin EventSource needs, as on the
        // hub's other routes.
        self.cors.stream_headers(request)
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Admission,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        // As for a WebSocket's opening: no answer comes now.
        self.cors.forget(conn);
        if state.route == HubRoute::Admin(AdminRoute::Events) {
            let sources = metrics::Sources {
                loops: &self.shared.stats,
                hub: self.delivery.hub(),
                broker: &*self.broker,
                per_topic: false,
                shared: None,
            };
            let token = self.shared.settings.metrics_token.as_deref();
            self.admin.subscribe(ctx, conn, request, &sources, token);
            return;
        }
        if state.route == HubRoute::Admin(AdminRoute::Watch) {
            // The admin watching a topic: a subscriber that needs no
            // rights and is nobody's presence.
            let token = self.shared.settings.metrics_token.as_deref();
            match self.admin.watch(conn, request, token) {
                Some(topic) => {
                    let resume = last_event_id.map(str::to_owned);
                    let mut watcher =
                        subscribers::Subscriber::new(topic, tether_hub::Transport::EventStream, resume);
                    watcher.set_unlisted();
                    (self.delivery).subscribe(ctx, &mut parts!(self), conn, watcher);
                }
                None => ctx.end_stream(conn),
            }
            return;
        }
        let multi = state.route == HubRoute::MultiEvents;
        let served = Served {
            conn,
            request,
            admission: state,
        };
        if multi {
            let hooks = &mut self.hooks;
            (self.delivery).start_multi_stream(ctx, &mut parts!(self), hooks, served, last_event_id);
        } else {
            (self.delivery).start_stream(ctx, &mut parts!(self), served, last_event_id);
        }
        // Held for its topics' histories: its subscriptions keep them now.
        (self.delivery).warmed(ctx, &mut parts!(self), conn);
        self.ask_for_values(ctx);
    }

    /// The backend's subject or the token's, as far as the request's
    /// admission has been told.
    fn subject<'s>(&self, state: &'s Admission) -> Option<&'s str> {
        state.subject()
    }

    /// None: a subscriber's topic, subject and deadline are in the hub's
    /// own tables by connection from its opening on, and the rest of its
    /// admission is spent. The server then keeps no slot for an open
    /// session.
    fn keeps_session_state(&self, _state: &Admission) -> bool {
        false
    }

    fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        _state: &mut Admission,
        reason: CloseReason,
    ) {
        self.cors.forget(conn);
        if self.admin.is_stream(conn) {
            self.admin.unsubscribe(conn);
            return;
        }
        // A watch stream leaves its topic as any subscriber does.
        self.admin.unwatch(conn);
        (self.delivery).leave(ctx, &mut parts!(self), conn, &reason);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    /// Whether every check of [`HubApp::readiness`](App::readiness) that
    /// counts passes.
    fn ready(&self) -> bool {
        let mut report = Readiness::new(false);
        self.readiness(&mut report);
        report.ready()
    }

    /// The bus (see the guide's network faults page for the policy): up;
    /// away after it was reached, a shared condition (the node serves its
    /// subscribers from its backlog and answers publishes 503); not
    /// reached since the node started, or shut down, its own. Then the
    /// checks the node added ([`HubShared::add_readiness_check`]).
    fn readiness(&self, report: &mut Readiness) {
        self.bus_readiness.report(&*self.broker, report);
        self.shared.report_readiness(report);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.shared.catch_up(&mut self.settings_seen);
        let now = self.shared.access.unix_secs(ctx.now());
        // Warned (or the backend asked for more time) before expired: a
        // tick that came late still asks before it ends anyone.
        let (hooks, settings, stats) = (&mut self.hooks, &self.shared.settings, &self.stats);
        self.delivery.warn(ctx, now, |ctx, conn, subscriber| {
            hooks.ask_refresh(ctx, settings, stats, conn, subscriber)
        });
        (self.delivery).expire(ctx, &mut parts!(self), now);
        (self.delivery).end_revoked(ctx, &mut parts!(self), now);
        self.delivery.time_out_awaiting(ctx, &self.stats);
        self.hooks.tick(ctx.now());
        (self.calls).tick(ctx, &mut parts!(self), ctx.now());
        self.forget_late_values(ctx.now());
        self.ask_for_values(ctx);
        self.publishing.tick(&mut parts!(self), ctx.now());
        self.delivery.tick(ctx, &mut parts!(self));
        self.broker.tick(&mut LoopContext { ctx });
        self.bus_readiness.observe(&*self.broker);
        self.delivery.tick_presence(ctx, &mut *self.broker);
        self.stats.presence_members.store(
            self.delivery.members() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let sources = metrics::Sources {
            loops: &self.shared.stats,
            hub: self.delivery.hub(),
            broker: &*self.broker,
            per_topic: false,
            shared: None,
        };
        let token = self.shared.settings.metrics_token.as_deref();
        self.admin.tick(ctx, &sources, token);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Admission,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        if matches!(state.route, HubRoute::Metrics | HubRoute::Admin(_)) {
            return self.answer_request(ctx, conn, state, request, body);
        }
        let reply = self.answer_request(ctx, conn, state, request, body);
        self.ask_for_values(ctx);
        self.cors.reply(conn, request, reply)
    }

    fn on_proceed(&mut self, conn: ConnId, state: &mut Admission, _route: &Route) {
        // Let go on by the backend: its decision goes into the request's
        // admission, which is routed again with it.
        if let Some(presented) = self.hooks.take_decided(conn) {
            state.route = HubRoute::Decided;
            state.set_presented(presented);
        }
        // Its topics' histories are here: it opens as the stream it is.
        if let Some(route) = self.delivery.opens_as(conn) {
            state.route = route;
        }
    }

    fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Admission,
    ) -> Response {
        let response = self.request_timeout(ctx, conn, state.route);
        self.cors.finish(conn, response)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, state: &mut Admission) {
        self.cors.forget(conn);
        match state.route {
            HubRoute::Poll | HubRoute::MultiPoll => {
                (self.delivery).leave(ctx, &mut parts!(self), conn, &CloseReason::Dropped)
            }
            HubRoute::Presence => self.delivery.forget_question(conn),
            HubRoute::Api(_) | HubRoute::Admin(AdminRoute::Api) => {
                (self.api).abandoned(conn, &mut self.delivery, &mut self.publishing)
            }
            HubRoute::Decide | HubRoute::Decided => self.hooks.forget(conn),
            HubRoute::Heads { .. } => (self.delivery).warmed(ctx, &mut parts!(self), conn),
            HubRoute::Rpc => self.calls.forget_request(conn),
            _ => {
                self.publishing.forget(&mut parts!(self), conn);
            }
        }
    }

    fn before_body(
        &mut self,
        _ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> BeforeBody<Admission> {
        if request.via_admin_listener() {
            // A host the admin listener does not serve is refused before
            // its body is read, as `route` would after.
            self.shared.catch_up(&mut self.settings_seen);
            return match admin::misdirected(request, &self.shared.settings.admin_hosts) {
                Some(refused) => BeforeBody::Refuse(refused),
                None => BeforeBody::Read,
            };
        }
        // Called before `route` when a body is still to come: the
        // admission is made here, of the head, and kept by the server for
        // `on_request` (no `route` follows for the request).
        self.shared.catch_up(&mut self.settings_seen);
        let access = &self.shared.access;
        let Route::Handler(mut admission) = router::route(access, &self.stats, request, Routing::First)
        else {
            return BeforeBody::Read;
        };
        // A refusal routing made (and counted) stands whatever the body.
        if let HubRoute::Refused(refusal) = admission.route {
            return BeforeBody::Refuse(self.cors.now(request, refusal.response()));
        }
        // Publishing, tickets and the server API need the token, whatever
        // the body says.
        let refusal = ServerApi::refuse_before_body(access, &self.stats, request, &mut admission)
            .or_else(|| router::refuse_publisher_before_body(access, &self.stats, request, &mut admission));
        match refusal {
            Some(refusal) => BeforeBody::Refuse(self.cors.now(request, refusal)),
            None => BeforeBody::Handler(admission),
        }
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        if request.via_admin_listener() {
            return None;
        }
        let answer = ServerApi::too_large(request, limit)?;
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
        state: &mut Admission,
    ) -> Option<Response> {
        let response = match state.route {
            // A long poll still waiting has no events: it gets its usual
            // empty answer (with the id to poll from next), and when to
            // come back.
            HubRoute::Poll | HubRoute::MultiPoll => replies::refusal(
                (self.delivery).end_poll(ctx, &mut parts!(self), conn, &CloseReason::Shutdown),
                Some(replies::SOON),
            ),
            // The sequencer may be gone already.
            HubRoute::Presence => {
                self.delivery.forget_question(conn);
                shutting_down()
            }
            // Nothing is decided any more, and a publish still waiting for
            // the backend's decision was not published and will not be:
            // its client may send it again elsewhere.
            HubRoute::Decide | HubRoute::Decided => {
                self.hooks.forget(conn);
                self.publishing.forget_held(&mut parts!(self), conn);
                shutting_down()
            }
            // The call's answer would come to a server that no longer
            // answers: nothing is known of what the backend did.
            HubRoute::Rpc => {
                self.calls.forget_request(conn);
                shutting_down()
            }
            _ if self.publishing.holds(&mut parts!(self), conn) => {
                self.publishing.forget_held(&mut parts!(self), conn);
                shutting_down()
            }
            // A publish the broker has waits for its outcome, which every
            // loop's drain guarantees is on its way (or its own timeout
            // answers 504).
            _ => return None,
        };
        Some(self.cors.finish(conn, response))
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        let settled = match message {
            HubMessage::Deliver(event) => {
                latency::arrived(&self.stats, self.broker.kind(), event.id());
                return self.delivery.deliver(ctx, &mut parts!(self), event);
            }
            HubMessage::Published { token, result } => (self.publishing).published(
                ctx,
                &mut parts!(self),
                &mut self.delivery,
                token,
                result.map(|id| (id, false)),
            ),
            HubMessage::Duplicate { token, id } => {
                (self.publishing).published(ctx, &mut parts!(self), &mut self.delivery, token, Ok((id, true)))
            }
            HubMessage::Ready {
                topic,
                history,
                dropped,
            } => {
                (self.delivery).ready(ctx, &mut parts!(self), &topic, history, dropped);
                return self.ask_for_values(ctx);
            }
            HubMessage::Forget(topic) => return self.delivery.forget_topic(&topic),
            HubMessage::Broker(message) => return self.broker.receive(message, &mut LoopContext { ctx }),
            HubMessage::Presence(message) => {
                match (self.delivery).presence_message(ctx, &mut *self.broker, message) {
                    Some(Answer::Page(conn, response)) => self.cors.respond(ctx, conn, response),
                    Some(Answer::Api(asker, topic, members)) => {
                        self.api.members(ctx, &mut self.cors, asker, &topic, &members);
                    }
                    Some(Answer::Embedder(conn, members)) => self.presence_answers.push((conn, members)),
                    None => {}
                }
                self.stats.presence_members.store(
                    self.delivery.members() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                None
            }
            HubMessage::Control(ControlMessage::Decided { token, decision }) => {
                if self.values.asked(token) {
                    self.value_decided(ctx, token, decision);
                } else if self.calls.is_call(token) {
                    (self.calls).decided(ctx, &mut parts!(self), token, decision);
                } else if self.publishing.asked(&mut parts!(self), token) {
                    (self.publishing).publish_decided(
                        ctx,
                        &mut parts!(self),
                        &mut self.delivery,
                        token,
                        decision,
                    );
                } else if let Some(conn) = self.hooks.take_subscription(token) {
                    (self.delivery).multiplexed_decided(ctx, &mut parts!(self), conn, token, decision);
                } else if let Some((conn, late)) = self.hooks.take_late(token) {
                    (self.delivery).late_decided(ctx, &mut parts!(self), conn, late, decision);
                } else {
                    (self.hooks).decision(
                        ctx,
                        &mut parts!(self),
                        &mut self.delivery.subscribers,
                        token,
                        decision,
                    );
                }
                None
            }
            HubMessage::Control(message) => {
                (self.api).control(ctx, &mut parts!(self), &mut self.delivery, message);
                None
            }
            HubMessage::External { publish, answer } => {
                (self.publishing).external(ctx, &mut parts!(self), publish, answer);
                None
            }
            other => {
                log::debug!("hub: unexpected {other:?}");
                None
            }
        };
        if let Some((conn, index, result)) = settled {
            (self.api).item_settled(ctx, &mut self.cors, conn, index, result);
        }
        // A subscription the backend let go on.
        self.ask_for_values(ctx);
    }
}

#[cfg(test)]
mod tests;
