//! Routing: what the hub makes of a request, before its body, from the
//! path, the method, the origin and the credentials.

use std::cell::OnceCell;
use std::time::Instant;

use tether_hub::{Grant, is_valid_event_type, is_valid_topic};
use tether_server::{Request, Response, Route};

use super::access::{Access, Credential, Presented};
use super::admission::Admission;
use super::api::ApiRoute;
use super::backend::Hook;
use super::metrics::HubStats;
use super::metrics::count_refusal;
use super::routes::{Endpoint, Format, HubRoute, Refusal, Socket, Wants, param, parse_path};

/// What the hub makes of a request, as its [`Admission`]: its path, its
/// ticket and a subscriber's query read once, its credential verified
/// once (when a step needs it), the backend's decision it comes with
/// (when it is routed [`Routing::Again`]). Refusals decided here
/// whatever the body (a bad topic, a credential that does not do, an
/// origin that may not come in) are counted and answered in
/// `on_request`.
pub(super) fn route(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    routing: Routing,
) -> Route<Admission> {
    let (presented, ticket) = match routing {
        Routing::First => (None, param(request, "ticket")),
        Routing::Again { presented, ticket } => (Some(presented), ticket),
    };
    let target = parse_path(request.path());
    let seen = Seen {
        target,
        presented: presented.as_ref(),
        ticket: ticket.as_deref(),
    };
    let found = Found::default();
    let route = route_to(access, stats, request, &seen, &found);
    let Found { verified, wants } = found;
    // A multi-topic request's tickets are each its topic's, taken as its
    // subscriptions are made: none is the request's own.
    let ticket = match route {
        Route::EventStream(HubRoute::MultiEvents) | Route::Handler(HubRoute::MultiPoll) => None,
        _ => ticket,
    };
    route.map(|route| {
        Admission::routed(route, target, verified.into_inner(), presented, ticket).wanting(wants.into_inner())
    })
}

/// How a request comes to be routed.
pub(super) enum Routing {
    /// Of its head alone.
    First,
    /// Again, with the backend's decision standing for its credential,
    /// and the ticket read when it was first routed.
    Again {
        presented: Presented,
        ticket: Option<String>,
    },
}

/// What routing reads of a request once, beside its head: its path's
/// topic and endpoint, the backend's decision, its ticket.
struct Seen<'a> {
    target: Option<(&'a str, Endpoint)>,
    presented: Option<&'a Presented>,
    ticket: Option<&'a str>,
}

/// What routing works out of a request when a step first needs it, kept
/// for its admission.
#[derive(Default)]
struct Found {
    /// Its credential, verified.
    verified: OnceCell<Result<Credential, Refusal>>,
    /// What a subscriber's query asks for.
    wants: OnceCell<Wants>,
}

/// [`route`] of a request whose path and ticket are read (`seen`), what
/// it works out kept in `found`.
fn route_to(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    seen: &Seen<'_>,
    found: &Found,
) -> Route<HubRoute> {
    let Seen {
        target,
        presented,
        ticket,
    } = *seen;
    let verified = &found.verified;
    let settings = access.settings();
    // The admin listener serves the metrics and nothing else.
    if request.via_admin_listener() {
        return match request.path() {
            "/metrics" => HubRoute::Metrics.route(),
            _ => Route::NotFound,
        };
    }
    let api = ApiRoute::of(request.path());
    let is_hub_path = matches!(
        request.path(),
        "/tickets" | MULTIPLEXED_PATH | MULTI_EVENTS_PATH | MULTI_POLL_PATH | RPC_PATH
    ) || target.is_some()
        || api.is_some();
    if request.method() == "OPTIONS"
        && is_hub_path
        && request.header("access-control-request-method").is_some()
    {
        return HubRoute::Preflight.route();
    }
    if is_hub_path && !access.origin_ok(request) {
        // Another site's page: with the user's cookie, that is the
        // attack the cookie rule is there for, and counted as such.
        let refusal = if access.cookie_token(request) {
            Refusal::CrossOriginCookie
        } else {
            Refusal::Origin
        };
        count_refusal(stats, refusal);
        return refusal.route();
    }
    if let Some(api) = api {
        return HubRoute::Api(api).route();
    }
    match request.path() {
        // The browser client, for pages served from elsewhere that
        // subscribe here (the demo serves it beside its page too).
        crate::client_script::PATH => return crate::client_script::route(),
        "/tickets" => return HubRoute::Tickets.route(),
        "/metrics" if settings.metrics_on_admin_listener => return Route::NotFound,
        "/metrics" => return HubRoute::Metrics.route(),
        MULTIPLEXED_PATH => return multiplexed_route(access, stats, request, seen, found),
        MULTI_EVENTS_PATH => return multi_topic_route(access, stats, request, seen, HubRoute::MultiEvents),
        MULTI_POLL_PATH => return multi_topic_route(access, stats, request, seen, HubRoute::MultiPoll),
        RPC_PATH => return rpc_route(access, stats, request, seen, found),
        _ => {}
    }
    let Some((topic, endpoint)) = target else {
        return Route::NotFound;
    };
    if !is_valid_topic(topic) {
        return Refusal::BadTopic.route();
    }
    if settings.refuses_topic(topic) {
        return Refusal::NoNamespace.route();
    }
    let method = request.method();
    // Who a request without credentials is, the backend says.
    let asks_connect =
        settings.backend_for(Hook::Connect).is_some() && access.presents_nothing(request, ticket, presented);
    if endpoint == Endpoint::Publish {
        return if method == "POST" && asks_connect {
            HubRoute::Decide.route()
        } else if method == "POST" {
            HubRoute::Publish.route()
        } else {
            Refusal::OnlyPost.route()
        };
    }
    if matches!(endpoint, Endpoint::Poll | Endpoint::Presence) && method != "GET" && method != "HEAD" {
        return Refusal::OnlyGet.route();
    }
    let wants = match Wants::of(request) {
        Ok(wants) => found.wants.get_or_init(|| wants),
        Err(refusal) => return refusal.route(),
    };
    let raw = wants.format == Format::Raw;
    if raw && let Some(refusal) = raw_refusal(wants, endpoint) {
        return refusal.route();
    }
    if wants.presence && (raw || endpoint == Endpoint::Poll) {
        return Refusal::PresenceNotStream.route();
    }
    if wants.presence && !settings.tells_join_leave(topic) {
        return Refusal::JoinLeaveOff.route();
    }
    if endpoint == Endpoint::Presence && !settings.keeps_presence(topic) {
        return Refusal::PresenceOff.route();
    }
    if asks_connect {
        return HubRoute::Decide.route();
    }
    let first_message =
        endpoint == Endpoint::WebSocket && access.may_authenticate_later(request, ticket, presented);
    // The request's credential, verified once, when a step first needs
    // it (a ticket may make it needless), and kept in its admission for
    // the callback that starts the stream, socket or long poll.
    let credential =
        || verified.get_or_init(|| access.credential(request, presented, access.unix_secs(Instant::now())));
    let asked = Asked {
        topic,
        endpoint,
        wants,
        first_message,
        presented,
        ticket,
    };
    subscribe_route(access, stats, request, &asked, credential)
}

/// The path of the multiplexed WebSocket.
pub(super) const MULTIPLEXED_PATH: &str = "/ws";

/// `GET /ws`: its credential (the ones a per-topic socket takes) verified
/// now, as a per-topic socket's is: one that does not verify, or is
/// revoked, is refused (401), and a subject with as many connections
/// open as it may is refused (429). None at all is no refusal: open
/// topics are subscribed to, and a token may come later in a message;
/// with a connect hook, the backend is asked who it is first.
fn multiplexed_route(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    seen: &Seen<'_>,
    found: &Found,
) -> Route<HubRoute> {
    let credential = match admit_caller(access, stats, request, seen, found, Refusal::MultiplexedTicket) {
        Ok(credential) => credential,
        Err(route) => return route,
    };
    if let Some(refused) = refuse_full_subject(access, stats, None, || credential) {
        return refused;
    }
    HubRoute::Multiplexed.route()
}

/// The path of a call to the backend's rpc hook beside an event stream.
pub(super) const RPC_PATH: &str = "/rpc";

/// `POST /rpc`: its credential (the ones a publish takes: a token in
/// `Authorization`, the token cookie from an origin that may send it,
/// the query's) verified now (401 for one that does not verify or is
/// revoked); none at all is an anonymous caller, or, with a connect
/// hook, the backend is asked who it is first (its body read before).
/// A ticket is for a subscription, not a call: it is not taken (400).
fn rpc_route(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    seen: &Seen<'_>,
    found: &Found,
) -> Route<HubRoute> {
    if request.method() != "POST" {
        return Refusal::OnlyPost.route();
    }
    if let Err(route) = admit_caller(access, stats, request, seen, found, Refusal::RpcTicket) {
        return route;
    }
    HubRoute::Rpc.route()
}

/// The steps of a request that names no topic and comes as one caller
/// (`GET /ws`, `POST /rpc`): a ticket refused with `ticket_refusal` (a
/// ticket is one topic's subscription, not a caller's); none presented
/// at all, with a connect hook, the backend asked who it is first (the
/// request routed again with its answer standing for the credential,
/// and with no topic: the caller names its topics later, each asked
/// about as the namespace says); else its credential verified now, one
/// that does not verify or is revoked refused (401) and counted. `Ok`:
/// the credential verified, for what the route checks next.
fn admit_caller<'f>(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    seen: &Seen<'_>,
    found: &'f Found,
    ticket_refusal: Refusal,
) -> Result<&'f Result<Credential, Refusal>, Route<HubRoute>> {
    if seen.ticket.is_some() {
        return Err(ticket_refusal.route());
    }
    let presented = seen.presented;
    if access.settings().backend_for(Hook::Connect).is_some()
        && access.presents_nothing(request, None, presented)
    {
        return Err(HubRoute::Decide.route());
    }
    let credential = found
        .verified
        .get_or_init(|| access.credential(request, presented, access.unix_secs(Instant::now())));
    if let Err(refusal) = credential {
        count_refusal(stats, *refusal);
        return Err(refusal.route());
    }
    Ok(credential)
}

/// The refusal (429, counted) of a request whose subject (its ticket's,
/// or its credential's) has as many connections open as it may, if it
/// has.
fn refuse_full_subject<'a>(
    access: &Access,
    stats: &HubStats,
    ticket: Option<&str>,
    credential: impl FnOnce() -> &'a Result<Credential, Refusal>,
) -> Option<Route<HubRoute>> {
    let max = access.settings().max_connections_per_subject?;
    let subject = access
        .subject_of(ticket, credential)
        .filter(|subject| access.connections.is_full(subject, max))?;
    log::debug!(subject = &*subject; "hub: refused: the subject has {max} connections open");
    count_refusal(stats, Refusal::TooManyConnections);
    Some(Refusal::TooManyConnections.route())
}

/// The path of the multi-topic event stream (`?topic=A&topic=B`).
pub(super) const MULTI_EVENTS_PATH: &str = "/events";

/// The path of the multi-topic long poll (`?topic=A&topic=B&since=CURSOR`).
pub(super) const MULTI_POLL_PATH: &str = "/poll";

/// `GET /events` and `GET /poll` with their topics listed: the list read
/// whole first (400 for no topic, an invalid one, one twice, more than a
/// connection may follow), the credential verified (401 for one that
/// does not, a subject with all its connections open is refused 429),
/// then each topic checked as its own route would check it, its ticket
/// looked at, not used. The stream or poll goes ahead when one topic at
/// least may be followed (the others are refused inside it, each on its
/// own); when none may, the answer is the first topic's refusal.
fn multi_topic_route(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    seen: &Seen<'_>,
    route: HubRoute,
) -> Route<HubRoute> {
    let refuse = |refusal: Refusal| {
        count_refusal(stats, refusal);
        refusal.route()
    };
    if request.method() != "GET" && request.method() != "HEAD" {
        return Refusal::OnlyGet.route();
    }
    let settings = access.settings();
    let listed = match crate::multiplex::listed::listed(request, settings.max_subscriptions) {
        Ok(listed) => listed,
        Err(fault) => return Refusal::TopicList(fault).route(),
    };
    if route == HubRoute::MultiEvents && request.query_param("presence").is_some_and(|p| p != "0") {
        return Refusal::PresenceMulti.route();
    }
    let presented = seen.presented;
    let first_ticket = listed.tickets.first().map(String::as_str);
    // Who a request without credentials is, the backend's connect hook
    // says, as for the multiplexed socket (with no topic: each listed
    // topic is then decided as its own route would decide it); routed
    // again with its answer standing for the credential.
    if settings.backend_for(Hook::Connect).is_some()
        && access.presents_nothing(request, first_ticket, presented)
    {
        return HubRoute::Decide.route();
    }
    let credential = access.credential(request, presented, access.unix_secs(Instant::now()));
    if let Err(refusal) = credential {
        return refuse(refusal);
    }
    if route == HubRoute::MultiEvents
        && let Some(refused) = refuse_full_subject(access, stats, None, || &credential)
    {
        return refused;
    }
    let mut first_refusal = None;
    for topic in &listed.topics {
        let refused = if settings.refuses_topic(topic) {
            Some(Refusal::NoNamespace)
        } else if asks_subscribe(access, topic, presented, || &credential) {
            // The backend decides inside the stream.
            None
        } else {
            let ticket = access.ticket_for(&listed.tickets, topic);
            access
                .authorize_subscriber(ticket, topic, || &credential, false, None)
                .err()
        };
        match refused {
            None => return route.route(),
            Some(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    refuse(first_refusal.unwrap_or(Refusal::NotGranted))
}

/// What a subscriber's request asks for, from its path and query, and
/// the backend's decision it comes with.
struct Asked<'a> {
    topic: &'a str,
    endpoint: Endpoint,
    wants: &'a Wants,
    /// A WebSocket that may send its token as its first message.
    first_message: bool,
    presented: Option<&'a Presented>,
    ticket: Option<&'a str>,
}

/// The route of a subscriber's request (an event stream, a WebSocket, a
/// long poll, a presence question) to a topic that may be subscribed
/// to, by who it is: its `credential`, verified at the first call.
fn subscribe_route<'a>(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    asked: &Asked<'_>,
    credential: impl Fn() -> &'a Result<Credential, Refusal> + Copy,
) -> Route<HubRoute> {
    let Asked {
        topic,
        endpoint,
        wants,
        first_message,
        presented,
        ticket,
    } = *asked;
    let settings = access.settings();
    // A request that waits for the backend uses its ticket when the
    // backend is asked: once, the decision carrying what it grants.
    let asks = asks_subscribe(access, topic, presented, credential);
    let decided_ticket = presented.and_then(|p| p.ticket.clone());
    let grant = match access.authorize_subscriber(ticket, topic, credential, !asks, decided_ticket) {
        Err(Refusal::NoCredentials) if first_message => Grant::default(),
        Ok(grant) => grant,
        Err(refusal) => {
            count_refusal(stats, refusal);
            return refusal.route();
        }
    };
    if matches!(endpoint, Endpoint::Events | Endpoint::WebSocket)
        && let Some(refused) = refuse_full_subject(access, stats, ticket, credential)
    {
        return refused;
    }
    // A socket that authenticates with its first message names its
    // subject then: the backend is asked about that subject, after the
    // message, not about no one at the upgrade.
    let auth_first = endpoint == Endpoint::WebSocket
        && first_message
        && (access.is_private(topic)
            || settings.require_ticket
            || matches!(request.query_param("auth").as_deref(), Some("1" | "message")));
    if asks && !auth_first {
        return HubRoute::Decide.route();
    }
    match endpoint {
        Endpoint::Events => HubRoute::Events.route(),
        Endpoint::Poll => HubRoute::Poll.route(),
        // Who is present is as private as the topic's events.
        Endpoint::Presence => HubRoute::Presence.route(),
        _ => {
            if wants.event().is_some_and(|e| !is_valid_event_type(e)) {
                return Refusal::BadEventType.route();
            }
            if auth_first {
                if wants.format == Format::Raw {
                    return Refusal::RawFirstMessage.route();
                }
                HubRoute::WebSocket(Socket::AuthFirst).route()
            } else if grant.publish || settings.ws_publish_open(topic) {
                HubRoute::WebSocket(Socket::Publisher).route()
            } else {
                HubRoute::WebSocket(Socket::Subscriber).route()
            }
        }
    }
}

/// A publish or a ticket request refused before its body is read (its
/// body would be of no use): a credential missing, bad, or without the
/// right to publish to the topic. One the backend is to say who it is
/// (no credential, a connect hook) is read first.
///
/// The credential is the request's `admission`'s, made of its head and
/// kept by the server for the request: verified here, it is read, not
/// verified again, once the body has come.
pub(super) fn refuse_publisher_before_body(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    admission: &mut Admission,
) -> Option<Response> {
    let needs_token = request.method() == "POST"
        && (request.path() == "/tickets" || admission.endpoint() == Some(Endpoint::Publish));
    // Who a request without credentials is, the backend says: its body
    // is read first.
    let asks_connect = access.settings().backend_for(Hook::Connect).is_some()
        && access.presents_nothing(request, admission.ticket(), None);
    if !needs_token || asks_connect {
        return None;
    }
    let topic = admission.topic().cloned();
    let credential = admission.credential(access, request);
    access.check_publisher(stats, credential, topic.as_deref())
}

/// Whether subscribing to `topic` waits for the backend's word: its
/// namespace says `subscribe=hook`, the backend has not said it yet for
/// this request, and the request is not the publish token's.
fn asks_subscribe<'a>(
    access: &Access,
    topic: &str,
    presented: Option<&Presented>,
    credential: impl Fn() -> &'a Result<Credential, Refusal>,
) -> bool {
    access.settings().subscribe_hook(topic)
        && !presented.is_some_and(|p| p.subscribe_decided)
        && !matches!(credential(), Ok(Credential::Admin))
}

/// Why a `?format=raw` request cannot be served, if it cannot: raw is for
/// WebSocket subscribers, which never learn ids (so cannot resume) and get
/// no acknowledgements.
fn raw_refusal(wants: &Wants, endpoint: Endpoint) -> Option<Refusal> {
    if endpoint != Endpoint::WebSocket {
        return Some(Refusal::RawNotWebSocket);
    }
    if wants.last_event_id().is_some() {
        return Some(Refusal::RawResume);
    }
    if wants.envelope {
        return Some(Refusal::RawEnvelope);
    }
    None
}
