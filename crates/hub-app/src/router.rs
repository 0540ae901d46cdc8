//! Routing: what the hub makes of a request, before its body, from the
//! path, the method, the origin and the credentials.

use std::cell::OnceCell;
use std::time::Instant;

use tether_hub::{Grant, is_valid_event_type, is_valid_topic};
use tether_server::{Request, Response, Route};

use super::access::{Access, Credential};
use super::api::ApiRoute;
use super::backend::Hook;
use super::metrics::HubStats;
use super::metrics::count_refusal;
use super::routes::{Endpoint, Format, HubRoute, Refusal, Socket, format, parse_path, wants_presence};

/// What the hub makes of a request: refusals decided here whatever the
/// body (a bad topic, a credential that does not do, an origin that may
/// not come in) are counted and answered in `on_request`.
pub(super) fn route(access: &Access, stats: &HubStats, request: &Request<'_>) -> Route<u32> {
    let settings = access.settings();
    // The admin listener serves the metrics and nothing else.
    if request.via_admin_listener() {
        return match request.path() {
            "/metrics" => HubRoute::Metrics.route(),
            _ => Route::NotFound,
        };
    }
    let api = ApiRoute::of(request.path());
    let is_hub_path = request.path() == "/tickets" || parse_path(request.path()).is_some() || api.is_some();
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
        _ => {}
    }
    let Some((topic, endpoint)) = parse_path(request.path()) else {
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
    let asks_connect = settings.backend_for(Hook::Connect).is_some() && access.presents_nothing(request);
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
    let raw = match format(request) {
        Ok(format) => format == Format::Raw,
        Err(refusal) => return refusal.route(),
    };
    if raw && let Some(refusal) = raw_refusal(request, endpoint) {
        return refusal.route();
    }
    if wants_presence(request) && (raw || endpoint == Endpoint::Poll) {
        return Refusal::PresenceNotStream.route();
    }
    if wants_presence(request) && !settings.tells_join_leave(topic) {
        return Refusal::JoinLeaveOff.route();
    }
    if endpoint == Endpoint::Presence && !settings.keeps_presence(topic) {
        return Refusal::PresenceOff.route();
    }
    if asks_connect {
        return HubRoute::Decide.route();
    }
    let first_message = endpoint == Endpoint::WebSocket && access.may_authenticate_later(request);
    // The request's credential, verified once, when a step first needs
    // it (a ticket may make it needless), and kept for the callback that
    // starts the stream, socket or long poll.
    let verified = OnceCell::new();
    let credential = || verified.get_or_init(|| access.credential(request, access.unix_secs(Instant::now())));
    let route = subscribe_route(
        access,
        stats,
        request,
        topic,
        endpoint,
        raw,
        first_message,
        credential,
    );
    if matches!(endpoint, Endpoint::Events | Endpoint::WebSocket | Endpoint::Poll)
        && let Some(
            HubRoute::Events
            | HubRoute::Poll
            | HubRoute::Decide
            | HubRoute::WebSocket(Socket::Publisher | Socket::Subscriber),
        ) = route_of(&route)
        && let Some(Ok(credential)) = verified.get()
    {
        access.keep_for_next_callback(request, credential);
    }
    route
}

/// The hub's route a [`Route`] stands for, if it is one of the hub's.
fn route_of(route: &Route<u32>) -> Option<HubRoute> {
    match *route {
        Route::Handler(tag) | Route::EventStream(tag) | Route::WebSocket(tag) => HubRoute::decode(tag),
        _ => None,
    }
}

/// The route of a subscriber's request (an event stream, a WebSocket, a
/// long poll, a presence question) to a topic that may be subscribed
/// to, by who it is: its `credential`, verified at the first call.
#[allow(
    clippy::too_many_arguments,
    reason = "the request's parts, parsed once by the caller"
)]
fn subscribe_route<'a>(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
    topic: &str,
    endpoint: Endpoint,
    raw: bool,
    first_message: bool,
    credential: impl Fn() -> &'a Result<Credential, Refusal> + Copy,
) -> Route<u32> {
    let settings = access.settings();
    // A request that waits for the backend uses its ticket when the
    // backend is asked: once, the decision carrying what it grants.
    let asks = asks_subscribe(access, topic, credential);
    let grant = match access.authorize_subscriber(request, topic, credential, !asks) {
        Err(Refusal::NoCredentials) if first_message => Grant::default(),
        Ok(grant) => grant,
        Err(refusal) => {
            count_refusal(stats, refusal);
            return refusal.route();
        }
    };
    if matches!(endpoint, Endpoint::Events | Endpoint::WebSocket)
        && let Some(max) = settings.max_connections_per_subject
        && let Some(subject) = access
            .subject_of(request, credential)
            .filter(|subject| access.connections.is_full(subject, max))
    {
        log::debug!(subject = &*subject; "hub: refused: the subject has {max} connections open");
        count_refusal(stats, Refusal::TooManyConnections);
        return Refusal::TooManyConnections.route();
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
            if request
                .query_param("event")
                .is_some_and(|e| !is_valid_event_type(&e))
            {
                return Refusal::BadEventType.route();
            }
            if auth_first {
                if raw {
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
/// (no credential, a connect hook) is read first. When it may go on, its
/// verified credential is kept for the body's callback.
pub(super) fn refuse_publisher_before_body(
    access: &Access,
    stats: &HubStats,
    request: &Request<'_>,
) -> Option<Response> {
    let target = parse_path(request.path());
    let needs_token = request.method() == "POST"
        && (request.path() == "/tickets" || matches!(target, Some((_, Endpoint::Publish))));
    // Who a request without credentials is, the backend says: its body
    // is read first.
    let asks_connect =
        access.settings().backend_for(Hook::Connect).is_some() && access.presents_nothing(request);
    if !needs_token || asks_connect {
        return None;
    }
    let admission = access.admit_to(request, target);
    let topic = admission.target.map(|(topic, _)| topic);
    let refusal = access.check_publisher(stats, &admission, topic);
    if refusal.is_none()
        && let Ok(credential) = &admission.credential
    {
        // The body's callback reads this verification.
        access.keep_for_next_callback(request, credential);
    }
    refusal
}

/// Whether subscribing to `topic` waits for the backend's word: its
/// namespace says `subscribe=hook`, the backend has not said it yet for
/// this request, and the request is not the publish token's.
fn asks_subscribe<'a>(
    access: &Access,
    topic: &str,
    credential: impl Fn() -> &'a Result<Credential, Refusal>,
) -> bool {
    access.settings().subscribe_hook(topic)
        && !access.presented().is_some_and(|p| p.subscribe_decided)
        && !matches!(credential(), Ok(Credential::Admin))
}

/// Why a `?format=raw` request cannot be served, if it cannot: raw is for
/// WebSocket subscribers, which never learn ids (so cannot resume) and get
/// no acknowledgements.
fn raw_refusal(request: &Request<'_>, endpoint: Endpoint) -> Option<Refusal> {
    if endpoint != Endpoint::WebSocket {
        return Some(Refusal::RawNotWebSocket);
    }
    if request
        .query_param("lastEventId")
        .is_some_and(|id| !id.is_empty())
    {
        return Some(Refusal::RawResume);
    }
    if matches!(request.query_param("envelope").as_deref(), Some("1" | "true")) {
        return Some(Refusal::RawEnvelope);
    }
    None
}
