//! The pub/sub hub as a tether application: topics published over HTTP
//! and WebSocket, delivered over WebSocket, Server-Sent Events and long
//! polls, on every event loop, with access control and metrics.
//!
//! The sans-IO core is `tether-hub`; this module drives it: one
//! [`HubApp`] per event loop, each with its replica of the topics
//! ([`tether_hub::Hub`]) and its broker ([`tether_hub::Broker`]; by
//! default the in-process [`tether_hub::LocalBroker`], which sequences
//! each topic on one loop and posts the events to all of them). The
//! routes, statuses and message formats are described in the hub's README
//! (`crates/hub/README.md`).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tether_hub::{
    Broker, Config as HubConfig, Error as HubError, Event, EventId, Gap, Grant, Hub, HubMessage, LocalBroker,
    Polled, Publish, ReplyTo, Resumed, Subscribed, Tickets, Transport, is_valid_event_type, is_valid_topic,
    json_string, secret_matches,
};

use crate::{
    App, CloseCode, CloseReason, ConnId, Ctx, Encoded, Handshake, Message, Post, Reply, Request, Response,
    Route,
};

/// The hub's settings: its limits, and access control.
///
/// Its `Debug` output never shows the publish token.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubSettings {
    /// Backlog bounds, event size, topic limit and idle-topic expiry.
    pub hub: HubConfig,
    /// The bearer token that publishing over HTTP (`POST /topics/NAME`) and
    /// issuing tickets (`POST /tickets`) require. `None` (the default):
    /// both are refused with 403.
    pub publish_token: Option<String>,
    /// Subscribing (WebSocket, event stream, long poll) requires a ticket
    /// (`?ticket=`) or the token (`Authorization: Bearer`). Off by
    /// default.
    pub require_ticket: bool,
    /// How long a ticket is good for (30 s).
    pub ticket_ttl: Duration,
    /// Tickets outstanding at most (10 000); more get 503.
    pub max_tickets: usize,
    /// Origins allowed to subscribe or publish from a browser (an `Origin`
    /// header, compared case-insensitively, e.g. `https://example.com`).
    /// Empty (the default): any. Requests without `Origin` (not from a
    /// browser) are always allowed: the check is against cross-site
    /// WebSocket hijacking and its SSE equivalent.
    pub allowed_origins: Vec<String>,
    /// Topics that any WebSocket subscriber may publish to: exact names, or
    /// prefixes ending in `*` (`chat.*`). A subscriber whose ticket grants
    /// publishing, or who presented the token, may publish to its topic
    /// whatever this says. Empty by default.
    pub ws_publish: Vec<String>,
    /// The longest a long poll is held (25 s); `?timeout=SECONDS` asks for
    /// less.
    pub poll_timeout: Duration,
    /// How long an HTTP publish waits for the broker before 504 (10 s).
    pub publish_timeout: Duration,
    /// Bytes a WebSocket publisher may have on their way to the sequencer
    /// (1 MiB); a publisher that sends faster is closed with 1008.
    pub max_publish_in_flight: usize,
}

impl Default for HubSettings {
    fn default() -> HubSettings {
        HubSettings {
            hub: HubConfig::default(),
            publish_token: None,
            require_ticket: false,
            ticket_ttl: Duration::from_secs(30),
            max_tickets: 10_000,
            allowed_origins: Vec::new(),
            ws_publish: Vec::new(),
            poll_timeout: Duration::from_secs(25),
            publish_timeout: Duration::from_secs(10),
            max_publish_in_flight: 1 << 20,
        }
    }
}

impl fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSettings")
            .field("hub", &self.hub)
            .field(
                "publish_token",
                &self.publish_token.as_ref().map(|_| "<redacted>"),
            )
            .field("require_ticket", &self.require_ticket)
            .field("ticket_ttl", &self.ticket_ttl)
            .field("max_tickets", &self.max_tickets)
            .field("allowed_origins", &self.allowed_origins)
            .field("ws_publish", &self.ws_publish)
            .field("poll_timeout", &self.poll_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("max_publish_in_flight", &self.max_publish_in_flight)
            .finish()
    }
}

impl HubSettings {
    /// Whether a request with this `Origin` may come in.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin.trim()))
    }

    /// Whether any WebSocket subscriber of `topic` may publish to it.
    pub fn ws_publish_open(&self, topic: &str) -> bool {
        self.ws_publish
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => topic.starts_with(prefix),
                None => pattern == topic,
            })
    }

    /// `handshake` with a policy that refuses WebSocket upgrades (403) from
    /// origins not in [`HubSettings::allowed_origins`], on every route
    /// (the hub's own routes check it too, for every transport).
    pub fn origin_policy(&self, handshake: Handshake) -> Handshake {
        if self.allowed_origins.is_empty() {
            return handshake;
        }
        let settings = self.clone();
        handshake.policy(
            move |request: &tether_handshake::UpgradeRequest<'_>| match request.origin() {
                Some(origin) if !settings.origin_allowed(origin) => {
                    Err(tether_handshake::Rejection::forbidden("origin not allowed"))
                }
                _ => Ok(()),
            },
        )
    }
}

/// One loop's hub counters, read by `/metrics` on any loop.
#[derive(Debug, Default)]
struct HubStats {
    subscribers_websocket: AtomicU64,
    subscribers_event_stream: AtomicU64,
    subscribers_poll: AtomicU64,
    published: AtomicU64,
    publish_refused: AtomicU64,
    sent_websocket: AtomicU64,
    sent_event_stream: AtomicU64,
    sent_poll: AtomicU64,
    gaps: AtomicU64,
    slow_consumer_drops: AtomicU64,
    refused_401: AtomicU64,
    refused_403: AtomicU64,
    tickets_issued: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

impl HubStats {
    fn subscribers(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::WebSocket => &self.subscribers_websocket,
            Transport::EventStream => &self.subscribers_event_stream,
            Transport::Poll => &self.subscribers_poll,
        }
    }

    fn sent(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::WebSocket => &self.sent_websocket,
            Transport::EventStream => &self.sent_event_stream,
            Transport::Poll => &self.sent_poll,
        }
    }
}

/// What every loop's [`HubApp`] shares: the settings, the tickets (a
/// ticket issued on one loop is redeemed on whichever loop the client
/// lands; the lock is taken only to issue and redeem) and the counters.
///
/// ```no_run
/// use tether_server::apps::{HubSettings, HubShared};
/// use tether_server::{Cluster, Config, Handshake};
///
/// let mut settings = HubSettings::default();
/// settings.publish_token = Some("s3cret".into());
/// let loops = 4;
/// let shared = HubShared::new(settings, loops);
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let handshake = shared.settings().origin_policy(Handshake::new());
/// let cluster = Cluster::bind(config, handshake, loops, |index| shared.app(index))?;
/// cluster.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct HubShared {
    settings: Arc<HubSettings>,
    tickets: Arc<Mutex<Tickets>>,
    stats: Arc<[HubStats]>,
    /// The brokers of all loops share its topic count.
    local: Arc<LocalBroker>,
}

impl fmt::Debug for HubShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubShared")
            .field("settings", &self.settings)
            .field("loops", &self.stats.len())
            .finish_non_exhaustive()
    }
}

impl HubShared {
    /// The shared part of a hub of `loops` event loops.
    pub fn new(settings: HubSettings, loops: usize) -> HubShared {
        HubShared {
            tickets: Arc::new(Mutex::new(Tickets::new(
                settings.ticket_ttl,
                settings.max_tickets,
            ))),
            stats: (0..loops.max(1)).map(|_| HubStats::default()).collect(),
            local: Arc::new(LocalBroker::new(settings.hub.clone())),
            settings: Arc::new(settings),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// The application for loop `loop_index`, with the in-process broker.
    pub fn app(&self, loop_index: usize) -> HubApp {
        self.app_with_broker(loop_index, Box::new(self.local.sibling()))
    }

    /// The application for loop `loop_index`, with another broker (one
    /// value per loop; see [`tether_hub::Broker`] for the contract).
    pub fn app_with_broker(&self, loop_index: usize, broker: Box<dyn Broker + Send>) -> HubApp {
        HubApp {
            hub: Hub::new(self.settings.hub.clone(), broker.complete()),
            broker,
            shared: self.clone(),
            index: loop_index.min(self.stats.len() - 1),
            conns: HashMap::new(),
            publishes: HashMap::new(),
            next_token: 0,
        }
    }
}

/// Tags of the hub's routes; other applications that embed the hub (the
/// demo) keep clear of this range (see [`HubApp::handles`]).
const TAG_BASE: u32 = 0x4855_0000;
const TAG_MASK: u32 = 0xFFFF_0000;
const TAG_PUBLISH: u32 = TAG_BASE | 1;
const TAG_EVENTS: u32 = TAG_BASE | 2;
const TAG_WS: u32 = TAG_BASE | 3;
const TAG_WS_PUBLISHER: u32 = TAG_BASE | 4;
const TAG_POLL: u32 = TAG_BASE | 5;
const TAG_TICKETS: u32 = TAG_BASE | 6;
const TAG_METRICS: u32 = TAG_BASE | 7;
/// A refused request: this plus the [`Refusal`].
const TAG_REFUSED: u32 = TAG_BASE | 0x100;

/// Why `route` refused a request, answered in `on_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadTopic = 0,
    BadEventType,
    NoCredentials,
    BadCredentials,
    Origin,
    Ticket,
    OnlyPost,
    OnlyGet,
}

impl Refusal {
    const ALL: [Refusal; 8] = [
        Refusal::BadTopic,
        Refusal::BadEventType,
        Refusal::NoCredentials,
        Refusal::BadCredentials,
        Refusal::Origin,
        Refusal::Ticket,
        Refusal::OnlyPost,
        Refusal::OnlyGet,
    ];

    fn route(self) -> Route {
        Route::Handler(TAG_REFUSED + self as u32)
    }

    fn response(self) -> Response {
        match self {
            Refusal::BadTopic => Response::text(400, format!("{}\n", HubError::InvalidTopic)),
            Refusal::BadEventType => Response::text(400, format!("{}\n", HubError::InvalidEventType)),
            Refusal::NoCredentials => unauthorized(false),
            Refusal::BadCredentials => unauthorized(true),
            Refusal::Origin => Response::text(403, "origin not allowed\n"),
            Refusal::Ticket => Response::text(403, format!("{}\n", HubError::TicketRefused)),
            Refusal::OnlyPost => Response::text(405, "405 Method Not Allowed\n").header("Allow", "POST"),
            Refusal::OnlyGet => Response::text(405, "405 Method Not Allowed\n").header("Allow", "GET, HEAD"),
        }
    }
}

fn unauthorized(invalid: bool) -> Response {
    if invalid {
        Response::text(401, "invalid token\n").header(
            "WWW-Authenticate",
            "Bearer realm=\"tether\", error=\"invalid_token\"",
        )
    } else {
        Response::text(401, "a bearer token is required\n")
            .header("WWW-Authenticate", "Bearer realm=\"tether\"")
    }
}

/// What a hub route addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Publish,
    Events,
    WebSocket,
    Poll,
}

/// `/topics/NAME[/events|/ws|/poll]`: the topic and the endpoint.
fn parse_path(path: &str) -> Option<(&str, Endpoint)> {
    let rest = path.strip_prefix("/topics/")?;
    Some(match rest.split_once('/') {
        None => (rest, Endpoint::Publish),
        Some((topic, "events")) => (topic, Endpoint::Events),
        Some((topic, "ws")) => (topic, Endpoint::WebSocket),
        Some((topic, "poll")) => (topic, Endpoint::Poll),
        Some(_) => return None,
    })
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request
/// has that header (`Some("")` for another scheme).
fn bearer<'a>(request: &Request<'a>) -> Option<&'a str> {
    let value = request.header("authorization")?.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => Some(""),
    }
}

/// A subscriber or long poll of this loop.
#[derive(Debug)]
struct Subscriber {
    topic: Arc<str>,
    transport: Transport,
    /// The id it resumed from (`Last-Event-ID`, `lastEventId`, `since`).
    requested: Option<String>,
    /// A WebSocket subscriber may publish to its topic.
    may_publish: bool,
    /// The event type of what it publishes (`?event=`).
    event_type: Option<String>,
    /// Bytes it published that the sequencer has not answered yet.
    in_flight: usize,
}

impl Subscriber {
    fn new(topic: Arc<str>, transport: Transport, requested: Option<String>) -> Subscriber {
        Subscriber {
            topic,
            transport,
            requested,
            may_publish: false,
            event_type: None,
            in_flight: 0,
        }
    }
}

/// A publish waiting for its outcome.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Http(ConnId),
    WebSocket(ConnId, usize),
    Internal,
}

/// The hub on one event loop: routes, subscribers, the loop's replica of
/// the topics, its broker. Make one per loop with [`HubShared::app`]; on
/// a single loop, [`HubApp::new`].
///
/// Routes (see the hub's README for every status and format):
///
/// | route | what |
/// | --- | --- |
/// | `POST /topics/NAME` | publish the body (bearer token; `?event=TYPE` or `Tether-Event: TYPE`) |
/// | `GET /topics/NAME/events` | Server-Sent Events; `Last-Event-ID` or `?lastEventId=` resumes |
/// | `GET /topics/NAME/ws` | WebSocket: events as JSON; `?lastEventId=` resumes; publish when allowed |
/// | `GET /topics/NAME/poll?since=ID` | long poll, answered as JSON |
/// | `POST /tickets` | a single-use ticket for `?ticket=` (bearer token) |
/// | `GET /metrics` | Prometheus text format |
pub struct HubApp {
    shared: HubShared,
    index: usize,
    hub: Hub<ConnId>,
    broker: Box<dyn Broker + Send>,
    conns: HashMap<ConnId, Subscriber>,
    publishes: HashMap<u64, Pending>,
    next_token: u64,
}

impl fmt::Debug for HubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubApp")
            .field("loop", &self.index)
            .field("broker", &self.broker.kind())
            .field("subscribers", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// The broker's view of the loop, over the server's context.
struct LoopContext<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl tether_hub::Context for LoopContext<'_, '_> {
    fn loops(&self) -> usize {
        self.ctx.loop_index().1
    }

    fn this_loop(&self) -> usize {
        self.ctx.loop_index().0
    }

    fn post(&mut self, to_loop: usize, message: HubMessage) {
        self.ctx.post(to_loop, Box::new(message));
    }

    fn unix_ms(&self) -> u64 {
        unix_ms()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl HubApp {
    /// A hub on a single event loop.
    pub fn new(settings: HubSettings) -> HubApp {
        HubShared::new(settings, 1).app(0)
    }

    /// Whether a route tag is one of the hub's (for applications that
    /// embed the hub and pass it the callbacks of its routes).
    pub fn handles(tag: u32) -> bool {
        tag & TAG_MASK == TAG_BASE
    }

    /// The settings.
    pub fn settings(&self) -> &HubSettings {
        &self.shared.settings
    }

    fn stats(&self) -> &HubStats {
        &self.shared.stats[self.index]
    }

    /// Publishes from the server itself (a feed it produces): no token, no
    /// answer but the counters.
    ///
    /// # Errors
    ///
    /// What [`Publish::new`] refuses, and what the broker refuses at once.
    pub fn publish(
        &mut self,
        ctx: &mut Ctx<'_>,
        topic: &str,
        event_type: Option<&str>,
        data: &str,
    ) -> Result<(), HubError> {
        let publish = Publish::new(topic, event_type, data, &self.shared.settings.hub)?;
        self.submit(ctx, publish, Pending::Internal)
    }

    fn submit(&mut self, ctx: &mut Ctx<'_>, publish: Publish, pending: Pending) -> Result<(), HubError> {
        let token = self.next_token;
        self.next_token += 1;
        let reply = ReplyTo {
            loop_index: ctx.loop_index().0,
            token,
        };
        self.publishes.insert(token, pending);
        let result = self
            .broker
            .publish(publish.reply_to(reply), &mut LoopContext { ctx });
        if result.is_err() {
            self.publishes.remove(&token);
            add(&self.stats().publish_refused, 1);
        }
        result
    }

    fn origin_ok(&self, request: &Request<'_>) -> bool {
        request
            .header("origin")
            .is_none_or(|origin| self.shared.settings.origin_allowed(origin))
    }

    /// Who may subscribe: a ticket, the token, or anyone when tickets are
    /// not required. The grant says whether a WebSocket may also publish.
    fn authorize_subscriber(&self, request: &Request<'_>, topic: &str) -> Result<Grant, Refusal> {
        let settings = &self.shared.settings;
        if let Some(ticket) = request.query_param("ticket") {
            let mut tickets = self.shared.tickets.lock().unwrap_or_else(|e| e.into_inner());
            return tickets
                .redeem(Instant::now(), &ticket, topic)
                .map_err(|_| Refusal::Ticket);
        }
        match (bearer(request), &settings.publish_token) {
            (Some(given), Some(token)) if secret_matches(token, given) => Ok(Grant {
                topic: None,
                publish: true,
            }),
            (Some(_), _) => Err(Refusal::BadCredentials),
            (None, _) if settings.require_ticket => Err(Refusal::NoCredentials),
            (None, _) => Ok(Grant::default()),
        }
    }

    /// Checks the publish token: `None` if it is right, else the answer.
    fn check_token(&self, request: &Request<'_>) -> Option<Response> {
        let Some(token) = &self.shared.settings.publish_token else {
            add(&self.stats().refused_403, 1);
            return Some(Response::text(
                403,
                "publishing over HTTP is disabled: the server has no publish token\n",
            ));
        };
        let refusal = match bearer(request) {
            Some(given) if secret_matches(token, given) => return None,
            Some(_) => unauthorized(true),
            None => unauthorized(false),
        };
        add(&self.stats().refused_401, 1);
        Some(refusal)
    }

    fn http_publish(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>, body: &[u8]) -> Reply {
        if let Some(refusal) = self.check_token(request) {
            return Reply::Now(refusal);
        }
        let Some((topic, _)) = parse_path(request.path()) else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let event_type = request
            .query_param("event")
            .or_else(|| request.header("tether-event").map(str::to_owned));
        let Ok(data) = std::str::from_utf8(body) else {
            return Reply::Now(Response::text(400, "the body must be UTF-8 text\n"));
        };
        let publish = match Publish::new(topic, event_type.as_deref(), data, &self.shared.settings.hub) {
            Ok(publish) => publish,
            Err(e) => return Reply::Now(error_response(&e)),
        };
        match self.submit(ctx, publish, Pending::Http(conn)) {
            Ok(()) => Reply::Later(self.shared.settings.publish_timeout),
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    fn issue_ticket(&mut self, request: &Request<'_>) -> Response {
        if request.method() != "POST" {
            return Refusal::OnlyPost.response();
        }
        if let Some(refusal) = self.check_token(request) {
            return refusal;
        }
        let topic = request.query_param("topic").filter(|t| !t.is_empty());
        if topic.as_deref().is_some_and(|t| !is_valid_topic(t)) {
            return Refusal::BadTopic.response();
        }
        let publish = matches!(request.query_param("publish").as_deref(), Some("1" | "true"));
        if publish && topic.is_none() {
            return Response::text(400, "a ticket that grants publishing names its topic (?topic=)\n");
        }
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            return Response::text(500, "no randomness for a ticket\n");
        }
        let grant = Grant {
            topic: topic.map(Arc::from),
            publish,
        };
        let mut tickets = self.shared.tickets.lock().unwrap_or_else(|e| e.into_inner());
        match tickets.issue(Instant::now(), random, grant) {
            Ok(ticket) => {
                add(&self.stats().tickets_issued, 1);
                let expires_in = tickets.ttl().as_secs_f64();
                Response::json(
                    200,
                    format!("{{\"ticket\":\"{ticket}\",\"expires_in\":{expires_in}}}"),
                )
                .header("Cache-Control", "no-store")
            }
            Err(e) => error_response(&e),
        }
    }

    fn poll(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) -> Reply {
        let Some((topic, _)) = parse_path(request.path()) else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let since = request.query_param("since").filter(|s| !s.is_empty());
        let longest = self.shared.settings.poll_timeout;
        let timeout = request
            .query_param("timeout")
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .map_or(longest, |t| Duration::from_secs_f64(t.max(0.0)).min(longest));
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
                let topic: Arc<str> = Arc::from(topic);
                if let Polled::Held { follow: true } = held {
                    self.broker.follow(&topic, &mut LoopContext { ctx });
                }
                self.register(conn, Subscriber::new(topic, Transport::Poll, since));
                Reply::Later(timeout)
            }
            Err(e) => Reply::Now(error_response(&e)),
        }
    }

    fn register(&mut self, conn: ConnId, subscriber: Subscriber) {
        add(self.stats().subscribers(subscriber.transport), 1);
        self.conns.insert(conn, subscriber);
    }

    /// A WebSocket or event-stream subscriber arrives: register, replay.
    fn subscribe(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, subscriber: Subscriber) {
        let topic = subscriber.topic.clone();
        let transport = subscriber.transport;
        self.register(conn, subscriber);
        let Self {
            hub,
            shared,
            index,
            conns,
            ..
        } = self;
        let stats = &shared.stats[*index];
        let subscriber = &conns[&conn];
        match hub.subscribe(&topic, conn, transport, subscriber.requested.as_deref()) {
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
                    Transport::WebSocket => ctx.close(conn, CloseCode::INTERNAL_ERROR, "subscribe failed"),
                    _ => ctx.end_stream(conn),
                }
            }
        }
    }

    /// A subscriber or long poll is gone.
    fn leave(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, reason: &CloseReason) {
        if let Some(subscriber) = self.conns.remove(&conn) {
            sub(self.stats().subscribers(subscriber.transport), 1);
            if *reason == CloseReason::SlowConsumer {
                add(&self.stats().slow_consumer_drops, 1);
            }
        }
        if let Some(left) = self.hub.unsubscribe(conn) {
            if left.unfollow {
                self.broker.unfollow(&left.topic, &mut LoopContext { ctx });
            }
        }
    }

    fn ws_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message) {
        let max_in_flight = self.shared.settings.max_publish_in_flight;
        let Some(subscriber) = self.conns.get_mut(&conn) else {
            return;
        };
        if !subscriber.may_publish {
            return send_error(
                ctx,
                conn,
                "publishing to this topic over WebSocket is not allowed",
            );
        }
        let Some(text) = message.as_text() else {
            return send_error(ctx, conn, "only text messages are published");
        };
        if subscriber.in_flight + text.len() > max_in_flight {
            ctx.close(
                conn,
                CloseCode::POLICY,
                "publishing faster than the hub sequences",
            );
            return;
        }
        let publish = match Publish::new(
            &subscriber.topic,
            subscriber.event_type.as_deref(),
            text,
            &self.shared.settings.hub,
        ) {
            Ok(publish) => publish,
            Err(e) => return send_error(ctx, conn, &e.to_string()),
        };
        let len = text.len();
        subscriber.in_flight += len;
        if let Err(e) = self.submit(ctx, publish, Pending::WebSocket(conn, len)) {
            if let Some(subscriber) = self.conns.get_mut(&conn) {
                subscriber.in_flight -= len;
            }
            send_error(ctx, conn, &e.to_string());
        }
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_>, event: Arc<Event>) {
        let Self {
            hub,
            shared,
            index,
            conns,
            ..
        } = self;
        let stats = &shared.stats[*index];
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
        if !delivery.websocket.is_empty() {
            add(&stats.sent_websocket, delivery.websocket.len() as u64);
            ctx.send_encoded(
                delivery.websocket.iter().copied(),
                &Encoded::from(event.ws_frame().clone()),
            );
        }
        if !delivery.event_stream.is_empty() {
            add(&stats.sent_event_stream, delivery.event_stream.len() as u64);
            ctx.send_encoded(
                delivery.event_stream.iter().copied(),
                &Encoded::from(event.sse().clone()),
            );
        }
        let events = [event.clone()];
        for waiter in delivery.waiters {
            if let Some(poll) = conns.remove(&waiter) {
                sub(&stats.subscribers_poll, 1);
                add(&stats.sent_poll, 1);
                let since = poll.requested.as_deref();
                ctx.respond(
                    waiter,
                    poll_response(&poll.topic, &events, None, since, event.id()),
                );
            }
        }
        for resumed in delivery.resumed {
            send_resumed(ctx, stats, conns, resumed);
        }
    }

    fn published(&mut self, ctx: &mut Ctx<'_>, token: u64, result: Result<EventId, HubError>) {
        let Some(pending) = self.publishes.remove(&token) else {
            return;
        };
        match &result {
            Ok(_) => add(&self.stats().published, 1),
            Err(_) => add(&self.stats().publish_refused, 1),
        }
        match (pending, result) {
            (Pending::Http(conn), Ok(id)) => {
                ctx.respond(conn, Response::json(200, format!("{{\"id\":\"{id}\"}}")));
            }
            (Pending::Http(conn), Err(e)) => ctx.respond(conn, error_response(&e)),
            (Pending::WebSocket(conn, len), result) => {
                if let Some(subscriber) = self.conns.get_mut(&conn) {
                    subscriber.in_flight = subscriber.in_flight.saturating_sub(len);
                    if let Err(e) = result {
                        send_error(ctx, conn, &e.to_string());
                    }
                }
            }
            (Pending::Internal, Err(e)) => log::warn!("hub: a publish of the server's own was refused: {e}"),
            (Pending::Internal, Ok(_)) => {}
        }
    }

    fn ready(&mut self, ctx: &mut Ctx<'_>, topic: &str, history: Vec<Arc<Event>>, dropped: Option<EventId>) {
        let readied = match self.hub.ready(topic, history, dropped) {
            Ok(readied) => readied,
            Err(e) => {
                log::debug!("hub: backlog of {topic} dropped: {e}");
                return;
            }
        };
        let stats = &self.shared.stats[self.index];
        for resumed in readied.resumed {
            send_resumed(ctx, stats, &mut self.conns, resumed);
        }
        for (conn, transport) in readied.resync {
            match transport {
                Transport::WebSocket => {
                    ctx.close(conn, CloseCode::SERVICE_RESTART, "resynchronising: resume")
                }
                Transport::EventStream => ctx.end_stream(conn),
                Transport::Poll => {
                    if let Some(poll) = self.conns.remove(&conn) {
                        sub(&stats.subscribers_poll, 1);
                        ctx.respond(conn, poll_timeout_response(&self.hub, &poll));
                    }
                }
            }
        }
    }

    /// `/metrics`: the server's counters and the hub's, in the Prometheus
    /// text format.
    fn metrics(&self, ctx: &Ctx<'_>) -> Response {
        let server = ctx.stats();
        let total = |f: fn(&HubStats) -> &AtomicU64| -> u64 {
            self.shared
                .stats
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "tether_connections",
            "gauge",
            "Open connections by transport.",
            &[
                ("{transport=\"http\"}", server.open_http),
                ("{transport=\"websocket\"}", server.open_websocket),
                ("{transport=\"sse\"}", server.open_event_stream),
            ],
        );
        metric(
            "tether_connections_accepted_total",
            "counter",
            "Connections accepted.",
            &[("", server.accepted)],
        );
        metric(
            "tether_connections_refused_total",
            "counter",
            "Connections refused with 503 at the connection limit.",
            &[("", server.refused_busy)],
        );
        metric(
            "tether_http_requests_total",
            "counter",
            "HTTP requests answered.",
            &[("", server.http_requests)],
        );
        metric(
            "tether_messages_received_total",
            "counter",
            "WebSocket messages received.",
            &[("", server.messages_in)],
        );
        metric(
            "tether_messages_sent_total",
            "counter",
            "WebSocket messages and SSE events sent.",
            &[("", server.messages_out)],
        );
        metric(
            "tether_bytes_received_total",
            "counter",
            "Bytes read from sockets.",
            &[("", server.bytes_in)],
        );
        metric(
            "tether_bytes_sent_total",
            "counter",
            "Bytes written to sockets.",
            &[("", server.bytes_out)],
        );
        metric(
            "tether_slow_consumers_total",
            "counter",
            "Connections cut loose for not reading their output (WebSocket close 1008, event stream ended).",
            &[("", server.slow_consumers)],
        );
        metric(
            "tether_hub_subscribers",
            "gauge",
            "Hub subscribers by transport (long polls waiting count as poll).",
            &[
                ("{transport=\"websocket\"}", total(|s| &s.subscribers_websocket)),
                ("{transport=\"sse\"}", total(|s| &s.subscribers_event_stream)),
                ("{transport=\"poll\"}", total(|s| &s.subscribers_poll)),
            ],
        );
        metric(
            "tether_hub_publishes_total",
            "counter",
            "Publishes by outcome (sequenced, or refused by the broker).",
            &[
                ("{result=\"ok\"}", total(|s| &s.published)),
                ("{result=\"refused\"}", total(|s| &s.publish_refused)),
            ],
        );
        metric(
            "tether_hub_events_sent_total",
            "counter",
            "Events sent to subscribers (live and replayed) by transport.",
            &[
                ("{transport=\"websocket\"}", total(|s| &s.sent_websocket)),
                ("{transport=\"sse\"}", total(|s| &s.sent_event_stream)),
                ("{transport=\"poll\"}", total(|s| &s.sent_poll)),
            ],
        );
        metric(
            "tether_hub_gaps_total",
            "counter",
            "\"You missed events\" signals sent.",
            &[("", total(|s| &s.gaps))],
        );
        metric(
            "tether_hub_slow_consumer_drops_total",
            "counter",
            "Hub subscribers dropped by the slow-consumer policy.",
            &[("", total(|s| &s.slow_consumer_drops))],
        );
        metric(
            "tether_hub_refused_total",
            "counter",
            "Requests refused by access control, by status.",
            &[
                ("{status=\"401\"}", total(|s| &s.refused_401)),
                ("{status=\"403\"}", total(|s| &s.refused_403)),
            ],
        );
        metric(
            "tether_hub_tickets_issued_total",
            "counter",
            "Tickets issued.",
            &[("", total(|s| &s.tickets_issued))],
        );
        let (mut topics, mut events, mut bytes) = (0u64, 0u64, 0u64);
        let mut per_topic: Vec<(&Arc<str>, tether_hub::TopicInfo)> = self.hub.topics().collect();
        per_topic.sort_by(|a, b| a.0.cmp(b.0));
        for (_, info) in &per_topic {
            topics += 1;
            events += info.events as u64;
            bytes += info.bytes as u64;
        }
        metric(
            "tether_hub_topics",
            "gauge",
            "Topics with a backlog or subscribers.",
            &[("", topics)],
        );
        metric(
            "tether_hub_backlog_events",
            "gauge",
            "Events held for replay, over all topics.",
            &[("", events)],
        );
        metric(
            "tether_hub_backlog_bytes",
            "gauge",
            "Bytes held for replay, over all topics.",
            &[("", bytes)],
        );
        let labels: Vec<String> = per_topic
            .iter()
            .map(|(name, _)| format!("{{topic=\"{name}\"}}"))
            .collect();
        let samples = |f: fn(&tether_hub::TopicInfo) -> usize| -> Vec<(&str, u64)> {
            labels
                .iter()
                .zip(&per_topic)
                .map(|(l, (_, info))| (l.as_str(), f(info) as u64))
                .collect()
        };
        metric(
            "tether_hub_topic_backlog_events",
            "gauge",
            "Events held for replay, by topic.",
            &samples(|i| i.events),
        );
        metric(
            "tether_hub_topic_backlog_bytes",
            "gauge",
            "Bytes held for replay, by topic.",
            &samples(|i| i.bytes),
        );
        let state = self.broker.state();
        metric(
            "tether_broker_up",
            "gauge",
            "Whether the broker takes publishes and delivers (1) or not (0).",
            &[("", u64::from(state == tether_hub::BrokerState::Up))],
        );
        let kind = self.broker.kind();
        let state_labels: Vec<String> = ["up", "connecting", "down"]
            .iter()
            .map(|s| format!("{{broker=\"{kind}\",state=\"{s}\"}}"))
            .collect();
        metric(
            "tether_broker_state",
            "gauge",
            "The broker's connection state (1 for the current one).",
            &state_labels
                .iter()
                .map(|l| {
                    (
                        l.as_str(),
                        u64::from(l.contains(&format!("\"{}\"", state.as_str()))),
                    )
                })
                .collect::<Vec<_>>(),
        );
        self.broker.write_metrics(&mut out);
        Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out)
            .header("Cache-Control", "no-cache")
    }
}

/// `{"control":"error","error":"..."}` to a WebSocket subscriber.
fn send_error(ctx: &mut Ctx<'_>, conn: ConnId, message: &str) {
    let text = format!("{{\"control\":\"error\",\"error\":{}}}", json_string(message));
    ctx.send(conn, &Message::text(text));
}

fn error_response(e: &HubError) -> Response {
    let response = Response::text(e.http_status(), format!("{e}\n"));
    if e.http_status() == 503 {
        response.header("Retry-After", "1")
    } else {
        response
    }
}

/// Sends a gap signal (if any) and replayed events to a WebSocket or
/// event-stream subscriber.
fn send_replay<'e>(
    ctx: &mut Ctx<'_>,
    stats: &HubStats,
    conn: ConnId,
    subscriber: &Subscriber,
    gap: Option<Gap>,
    events: impl Iterator<Item = &'e Arc<Event>>,
) {
    let transport = subscriber.transport;
    if let Some(gap) = gap {
        add(&stats.gaps, 1);
        let (topic, requested) = (
            &subscriber.topic,
            subscriber.requested.as_deref().unwrap_or_default(),
        );
        match transport {
            Transport::WebSocket => ctx.send(conn, &Message::text(gap.ws_json(topic, requested))),
            _ => ctx.send_encoded(
                [conn],
                &Encoded::from(Arc::<[u8]>::from(gap.sse(topic, requested))),
            ),
        }
    }
    let mut sent = 0;
    for event in events {
        let bytes = match transport {
            Transport::WebSocket => event.ws_frame(),
            _ => event.sse(),
        };
        ctx.send_encoded([conn], &Encoded::from(bytes.clone()));
        sent += 1;
    }
    add(stats.sent(transport), sent);
}

/// A held subscriber is live (or a held long poll answered).
fn send_resumed(
    ctx: &mut Ctx<'_>,
    stats: &HubStats,
    conns: &mut HashMap<ConnId, Subscriber>,
    resumed: Resumed<ConnId>,
) {
    let conn = resumed.sub;
    if resumed.transport == Transport::Poll {
        let Some(poll) = conns.remove(&conn) else { return };
        sub(&stats.subscribers_poll, 1);
        add(&stats.sent_poll, resumed.events.len() as u64);
        if resumed.gap.is_some() {
            add(&stats.gaps, 1);
        }
        let since = poll.requested.as_deref();
        let next = next_id(&resumed.events, resumed.gap, since, || EventId::ZERO);
        ctx.respond(
            conn,
            poll_response(&poll.topic, &resumed.events, resumed.gap, since, next),
        );
        return;
    }
    let Some(subscriber) = conns.get(&conn) else {
        return;
    };
    send_replay(ctx, stats, conn, subscriber, resumed.gap, resumed.events.iter());
}

/// The id a long poller passes as `since` next time.
fn next_id(
    events: &[Arc<Event>],
    gap: Option<Gap>,
    since: Option<&str>,
    head: impl FnOnce() -> EventId,
) -> EventId {
    if let Some(last) = events.last() {
        return last.id();
    }
    if let Some(gap) = gap {
        return gap.resume;
    }
    since.and_then(EventId::parse).unwrap_or_else(head)
}

/// A long poll's answer:
/// `{"topic":"T","events":[...],"next":"ID","gap":null|{...}}`.
fn poll_response(
    topic: &str,
    events: &[Arc<Event>],
    gap: Option<Gap>,
    since: Option<&str>,
    next: EventId,
) -> Response {
    let mut body = String::with_capacity(64 + events.iter().map(|e| e.json().len() + 1).sum::<usize>());
    body.push_str("{\"topic\":");
    body.push_str(&json_string(topic));
    body.push_str(",\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(event.json());
    }
    let _ = write!(body, "],\"next\":\"{next}\",\"gap\":");
    match gap {
        Some(gap) => body.push_str(&gap.json(topic, since.unwrap_or_default())),
        None => body.push_str("null"),
    }
    body.push('}');
    Response::json(200, body).header("Cache-Control", "no-cache")
}

/// A long poll that nothing answered in time.
fn poll_timeout_response(hub: &Hub<ConnId>, poll: &Subscriber) -> Response {
    let since = poll.requested.as_deref();
    let next = next_id(&[], None, since, || hub.head(&poll.topic));
    poll_response(&poll.topic, &[], None, since, next)
}

impl App for HubApp {
    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/tickets" => return Route::Handler(TAG_TICKETS),
            "/metrics" => return Route::Handler(TAG_METRICS),
            _ => {}
        }
        let Some((topic, endpoint)) = parse_path(request.path()) else {
            return Route::NotFound;
        };
        if !is_valid_topic(topic) {
            return Refusal::BadTopic.route();
        }
        if !self.origin_ok(request) {
            add(&self.stats().refused_403, 1);
            return Refusal::Origin.route();
        }
        let method = request.method();
        if endpoint == Endpoint::Publish {
            return if method == "POST" {
                Route::Handler(TAG_PUBLISH)
            } else {
                Refusal::OnlyPost.route()
            };
        }
        if endpoint == Endpoint::Poll && method != "GET" && method != "HEAD" {
            return Refusal::OnlyGet.route();
        }
        let grant = match self.authorize_subscriber(request, topic) {
            Ok(grant) => grant,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::NoCredentials | Refusal::BadCredentials => &self.stats().refused_401,
                    _ => &self.stats().refused_403,
                };
                add(counter, 1);
                return refusal.route();
            }
        };
        match endpoint {
            Endpoint::Events => Route::EventStream(TAG_EVENTS),
            Endpoint::Poll => Route::Handler(TAG_POLL),
            _ => {
                if request
                    .query_param("event")
                    .is_some_and(|e| !is_valid_event_type(&e))
                {
                    return Refusal::BadEventType.route();
                }
                if grant.publish || self.shared.settings.ws_publish_open(topic) {
                    Route::WebSocket(TAG_WS_PUBLISHER)
                } else {
                    Route::WebSocket(TAG_WS)
                }
            }
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, tag: u32, request: &Request<'_>) {
        let Some((topic, _)) = parse_path(request.path()) else {
            return;
        };
        let last_id = request.query_param("lastEventId").filter(|id| !id.is_empty());
        let mut subscriber = Subscriber::new(Arc::from(topic), Transport::WebSocket, last_id);
        subscriber.may_publish = tag == TAG_WS_PUBLISHER;
        subscriber.event_type = request.query_param("event");
        self.subscribe(ctx, conn, subscriber);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _tag: u32, message: Message) {
        self.ws_message(ctx, conn, message);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _tag: u32, reason: CloseReason) {
        self.leave(ctx, conn, &reason);
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        _tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        if let Some((topic, _)) = parse_path(request.path()) {
            let last_id = last_event_id.map(str::to_owned);
            self.subscribe(
                ctx,
                conn,
                Subscriber::new(Arc::from(topic), Transport::EventStream, last_id),
            );
        }
    }

    fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _tag: u32, reason: CloseReason) {
        self.leave(ctx, conn, &reason);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        let stats = &self.shared.stats[self.index];
        for resumed in self.hub.tick() {
            send_resumed(ctx, stats, &mut self.conns, resumed);
        }
        self.broker.tick(&mut LoopContext { ctx });
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match tag {
            TAG_PUBLISH => self.http_publish(ctx, conn, request, body),
            TAG_POLL => self.poll(ctx, conn, request),
            TAG_TICKETS => Reply::Now(self.issue_ticket(request)),
            TAG_METRICS if matches!(request.method(), "GET" | "HEAD") => Reply::Now(self.metrics(ctx)),
            TAG_METRICS => Reply::Now(Refusal::OnlyGet.response()),
            _ => match Refusal::ALL.get(tag.wrapping_sub(TAG_REFUSED) as usize) {
                Some(refusal) => Reply::Now(refusal.response()),
                None => Reply::Now(Response::text(404, "404 Not Found\n")),
            },
        }
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, tag: u32) -> Response {
        match tag {
            TAG_POLL => {
                let response = match self.conns.get(&conn) {
                    Some(poll) => poll_timeout_response(&self.hub, poll),
                    None => Response::empty(204),
                };
                self.leave(ctx, conn, &CloseReason::Ended);
                response
            }
            _ => {
                self.publishes
                    .retain(|_, p| !matches!(p, Pending::Http(c) if *c == conn));
                Response::text(504, "the broker did not answer in time\n")
            }
        }
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, tag: u32) {
        if tag == TAG_POLL {
            self.leave(ctx, conn, &CloseReason::Dropped);
        } else {
            self.publishes
                .retain(|_, p| !matches!(p, Pending::Http(c) if *c == conn));
        }
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_>, message: Post) {
        let Ok(message) = message.downcast::<HubMessage>() else {
            return;
        };
        match *message {
            HubMessage::Deliver(event) => self.deliver(ctx, event),
            HubMessage::Published { token, result } => self.published(ctx, token, result),
            HubMessage::Ready {
                topic,
                history,
                dropped,
            } => self.ready(ctx, &topic, history, dropped),
            HubMessage::Forget(topic) => self.hub.forget(&topic),
            HubMessage::Broker(message) => self.broker.receive(message, &mut LoopContext { ctx }),
            other => log::debug!("hub: unexpected {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/topics/a"), Some(("a", Endpoint::Publish)));
        assert_eq!(parse_path("/topics/a/events"), Some(("a", Endpoint::Events)));
        assert_eq!(parse_path("/topics/a/ws"), Some(("a", Endpoint::WebSocket)));
        assert_eq!(parse_path("/topics/a/poll"), Some(("a", Endpoint::Poll)));
        assert_eq!(parse_path("/topics/"), Some(("", Endpoint::Publish)));
        assert_eq!(parse_path("/topics/a/other"), None);
        assert_eq!(parse_path("/topic/a"), None);
    }

    #[test]
    fn settings() {
        let mut s = HubSettings::default();
        assert!(s.origin_allowed("https://anything"));
        s.allowed_origins = vec!["https://Example.com/".into()];
        assert!(s.origin_allowed("https://example.com"));
        assert!(!s.origin_allowed("https://example.com.evil"));
        s.ws_publish = vec!["chat.*".into(), "exact".into()];
        assert!(s.ws_publish_open("chat.lobby"));
        assert!(s.ws_publish_open("exact"));
        assert!(!s.ws_publish_open("exactly"));
        assert!(!s.ws_publish_open("news"));
        s.publish_token = Some("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn refusal_tags_round_trip() {
        for refusal in Refusal::ALL {
            let Route::Handler(tag) = refusal.route() else {
                panic!()
            };
            assert!(HubApp::handles(tag));
            assert_eq!(Refusal::ALL[(tag - TAG_REFUSED) as usize], refusal);
        }
    }
}
