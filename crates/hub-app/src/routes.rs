//! The hub's routes: what a request is to the hub, paths, refusals, credentials.

use tether_hub::Error as HubError;

use tether_server::{Request, Response, Route};

/// What the hub made of a request in `route`: the route part of the
/// request's state, which the server hands to every later callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HubRoute {
    /// `POST /topics/NAME`.
    Publish,
    /// `GET /topics/NAME/events`.
    Events,
    /// `GET /topics/NAME/ws`, and what the socket may do.
    WebSocket(Socket),
    /// `GET /ws`: a multiplexed socket, its topics subscribed with its
    /// messages.
    Multiplexed,
    /// `GET /topics/NAME/poll`.
    Poll,
    /// `GET /events?topic=A&topic=B`: one event stream of several topics.
    MultiEvents,
    /// `GET /poll?topic=A&topic=B`: one long poll of several topics.
    MultiPoll,
    /// `GET /topics/NAME/presence`.
    Presence,
    /// `POST /tickets`.
    Tickets,
    /// `POST /rpc`: a call to the backend's rpc hook.
    Rpc,
    /// `GET /metrics`.
    Metrics,
    /// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`).
    Preflight,
    /// A path under `/api/`, any method (the server API answers its own
    /// refusals, in JSON).
    Api(ApiRoute),
    /// A request refused in `route`, answered in `on_request`.
    Refused(Refusal),
    /// `/admin` and below, on the admin listener.
    Admin(AdminRoute),
    /// A request held while the application's backend decides who it is
    /// or whether it may subscribe.
    Decide,
    /// A request the backend let go on, routed again as what it decided.
    Decided,
    /// An event stream or a topic's WebSocket from nowhere held until its
    /// topics' histories are on the loop (their heads are where it
    /// starts): it then goes on as what it [`Opens`].
    Heads(Opens),
    /// A WebSocket or an event stream that has opened: what its later
    /// callbacks are lent. The hub keeps what a session needs in its own
    /// tables, by connection, and lets the server keep nothing for it.
    Opened,
}

/// What a request held for its topics' heads ([`HubRoute::Heads`])
/// opens as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opens {
    /// `GET /topics/NAME/events`.
    Events,
    /// `GET /events?topic=…`.
    MultiEvents,
    /// A topic's WebSocket (`/topics/NAME/ws`), let in as this.
    WebSocket(Socket),
}

impl Opens {
    /// The route it goes on as.
    pub(super) fn route(self) -> HubRoute {
        match self {
            Opens::Events => HubRoute::Events,
            Opens::MultiEvents => HubRoute::MultiEvents,
            Opens::WebSocket(socket) => HubRoute::WebSocket(socket),
        }
    }
}

/// What a WebSocket subscriber was let in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Socket {
    /// It reads the topic.
    Subscriber,
    /// It reads the topic and may publish to it.
    Publisher,
    /// It presented no credential: its first message has to be its token.
    AuthFirst,
}

impl HubRoute {
    /// The server's route: an event stream, a WebSocket or a handler,
    /// with this as its state.
    pub(super) fn route(self) -> Route<HubRoute> {
        match self {
            HubRoute::Events
            | HubRoute::MultiEvents
            | HubRoute::Admin(AdminRoute::Events | AdminRoute::Watch) => Route::EventStream(self),
            HubRoute::WebSocket(_) | HubRoute::Multiplexed => Route::WebSocket(self),
            _ => Route::Handler(self),
        }
    }
}

/// Why `route` refused a request, answered in `on_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    BadTopic,
    BadEventType,
    NoCredentials,
    /// A token that does not verify, and why.
    BadCredentials(TokenFault),
    Origin,
    Ticket,
    OnlyPost,
    OnlyGet,
    /// A valid token that does not grant what was asked.
    NotGranted,
    /// A token past its expiry.
    ExpiredCredentials,
    /// `?format=` is neither `json` nor `raw`.
    BadFormat,
    /// `?format=raw` on an event stream or a long poll.
    RawNotWebSocket,
    /// `?format=raw` with an id to resume from: a raw subscriber never
    /// learns ids.
    RawResume,
    /// `?format=raw` with `?envelope=1`: a raw socket has no acknowledgements.
    RawEnvelope,
    /// `?format=raw` that would authenticate with its first message: on a
    /// raw socket, every message is data.
    RawFirstMessage,
    /// `?presence=1` on a long poll or a raw WebSocket: join and leave
    /// events go to event streams and JSON WebSockets.
    PresenceNotStream,
    /// A token from the cookie on a request from an origin that is neither
    /// the server's own nor a trusted one.
    CrossOriginCookie,
    /// A topic in no namespace, where those are refused.
    NoNamespace,
    /// A publish that the topic's namespace does not take from this
    /// credential (`publish=backend` or `nobody`).
    PublishClosed,
    /// The presence of a topic whose namespace keeps none.
    PresenceOff,
    /// `?presence=1` on a topic whose namespace tells no joins and leaves.
    JoinLeaveOff,
    /// A token that verifies, and was revoked.
    Revoked,
    /// A WebSocket or event stream of a subject that has as many open as
    /// it may.
    TooManyConnections,
    /// `?ticket=` on `GET /ws`: a ticket is for one subscription, in its
    /// subscribe message.
    MultiplexedTicket,
    /// `?ticket=` on `POST /rpc`: a ticket is for a subscription.
    RpcTicket,
    /// A multi-topic stream's or poll's list of topics that cannot be
    /// followed as it is.
    TopicList(crate::multiplex::listed::ListFault),
    /// `?presence=1` on a multi-topic stream.
    PresenceMulti,
}

impl Refusal {
    pub(super) fn route(self) -> Route<HubRoute> {
        HubRoute::Refused(self).route()
    }

    pub(super) fn response(self) -> Response {
        match self {
            Refusal::BadTopic => Response::text(400, format!("{}\n", HubError::InvalidTopic)),
            Refusal::BadEventType => Response::text(400, format!("{}\n", HubError::InvalidEventType)),
            Refusal::NoCredentials => unauthorized(Unauthorized::Missing),
            Refusal::BadCredentials(fault) => unauthorized(Unauthorized::Invalid(fault)),
            Refusal::ExpiredCredentials => unauthorized(Unauthorized::Invalid(TokenFault::Expired)),
            Refusal::Origin => Response::text(403, "origin not allowed\n"),
            Refusal::Ticket => Response::text(403, format!("{}\n", HubError::TicketRefused)),
            Refusal::OnlyPost => Response::text(405, "405 Method Not Allowed\n").header("Allow", "POST"),
            Refusal::OnlyGet => Response::text(405, "405 Method Not Allowed\n").header("Allow", "GET, HEAD"),
            Refusal::NotGranted => Response::text(403, "the token does not grant this topic\n").header(
                "WWW-Authenticate",
                "Bearer realm=\"tether\", error=\"insufficient_scope\"",
            ),
            Refusal::BadFormat => Response::text(400, "format is json or raw\n"),
            Refusal::RawNotWebSocket => {
                Response::text(400, "format=raw is for WebSocket subscribers (/topics/NAME/ws)\n")
            }
            Refusal::RawResume => Response::text(
                400,
                "format=raw carries no event ids, so it cannot resume: leave out lastEventId\n",
            ),
            Refusal::RawEnvelope => {
                Response::text(400, "format=raw has no acknowledgements: leave out envelope\n")
            }
            Refusal::RawFirstMessage => Response::text(
                400,
                "format=raw takes its credentials with the upgrade (a ticket, the token cookie or Authorization): every message on it is data\n",
            ),
            Refusal::PresenceNotStream => Response::text(
                400,
                "presence=1 is for event streams and JSON WebSockets (/topics/NAME/events, /topics/NAME/ws)\n",
            ),
            Refusal::CrossOriginCookie => Response::text(
                403,
                "the token cookie is not accepted from this origin: send the token in Authorization or as the WebSocket's first message, or trust the origin\n",
            ),
            Refusal::NoNamespace => Response::text(404, "no namespace holds this topic\n"),
            Refusal::PublishClosed => Response::text(
                403,
                "this topic's namespace does not take publishes from this credential\n",
            ),
            Refusal::PresenceOff => Response::text(404, "this topic's namespace keeps no presence\n"),
            Refusal::JoinLeaveOff => Response::text(
                400,
                "this topic's namespace tells no joins and leaves: leave out presence=1\n",
            ),
            Refusal::Revoked => unauthorized(Unauthorized::Invalid(TokenFault::Revoked)),
            Refusal::MultiplexedTicket => Response::text(
                400,
                "a multiplexed socket redeems each ticket in a subscribe message (\"ticket\"), not in its URL\n",
            ),
            Refusal::RpcTicket => Response::text(
                400,
                "a ticket is for a subscription: a call presents a token, a cookie or nothing\n",
            ),
            Refusal::TopicList(fault) => Response::text(400, fault.message()),
            Refusal::PresenceMulti => Response::text(
                400,
                "presence=1 is for one-topic streams and the multiplexed socket (/topics/NAME/events, /ws): leave it out\n",
            ),
            Refusal::TooManyConnections => super::replies::refuse(
                429,
                format!("{TOO_MANY_CONNECTIONS}\n"),
                Some(super::replies::SOON),
            ),
        }
    }
}

/// Why a subject's connection is refused or closed (1008).
pub(super) const TOO_MANY_CONNECTIONS: &str = "too many connections for this subject";

/// Why a token presented was not taken: what a 401 says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenFault {
    /// Neither a token that verifies nor the one expected (the publish
    /// token, the metrics token), when no more can be told.
    Unknown,
    /// Not three base64url parts, or not a bearer token at all.
    Malformed,
    /// Longer than tokens may be.
    TooLong,
    /// An algorithm that is not verified, or not the key's.
    Algorithm,
    /// A key id no key has, or several keys that fit.
    Key,
    /// A `crit` header parameter.
    CriticalHeader,
    /// The signature does not verify.
    BadSignature,
    /// Claims of the wrong shape, or a `tether` claim that does not parse.
    Claims,
    /// No `exp`.
    MissingExpiry,
    /// `exp` has passed.
    Expired,
    /// `nbf` has not come.
    NotYetValid,
    /// `iat` lies in the future.
    IssuedInFuture,
    /// `aud` is not this service's.
    Audience,
    /// `iss` is not an accepted issuer.
    Issuer,
    /// Revoked (by `jti`, or its subject's tokens issued before a time).
    Revoked,
}

impl TokenFault {
    /// Why `tether-auth` refused a token.
    pub(super) fn of(e: &tether_auth::Error) -> TokenFault {
        use tether_auth::Error;
        match e {
            Error::TokenTooLong => TokenFault::TooLong,
            Error::Malformed => TokenFault::Malformed,
            Error::UnsupportedAlgorithm | Error::AlgorithmMismatch => TokenFault::Algorithm,
            Error::UnknownKeyId | Error::AmbiguousKey => TokenFault::Key,
            Error::CriticalHeader => TokenFault::CriticalHeader,
            Error::BadSignature => TokenFault::BadSignature,
            Error::InvalidClaims | Error::Grant(_) => TokenFault::Claims,
            Error::MissingExpiry => TokenFault::MissingExpiry,
            Error::Expired => TokenFault::Expired,
            Error::NotYetValid => TokenFault::NotYetValid,
            Error::IssuedInFuture => TokenFault::IssuedInFuture,
            Error::Audience => TokenFault::Audience,
            Error::Issuer => TokenFault::Issuer,
            _ => TokenFault::Unknown,
        }
    }

    /// The `error_description` (RFC 6750 section 3): in the words of
    /// `tether-auth`'s errors, and of a WebSocket's close reason.
    pub(super) fn description(self) -> &'static str {
        match self {
            TokenFault::Unknown => "unknown token",
            TokenFault::Malformed => "malformed token",
            TokenFault::TooLong => "token too long",
            TokenFault::Algorithm => "algorithm not accepted",
            TokenFault::Key => "no key for this token",
            TokenFault::CriticalHeader => "critical header parameter not understood",
            TokenFault::BadSignature => "bad signature",
            TokenFault::Claims => "claims of the wrong shape",
            TokenFault::MissingExpiry => "no exp claim",
            TokenFault::Expired => "token expired",
            TokenFault::NotYetValid => "token not yet valid",
            TokenFault::IssuedInFuture => "token issued in the future",
            TokenFault::Audience => "audience not accepted",
            TokenFault::Issuer => "issuer not accepted",
            TokenFault::Revoked => "token revoked",
        }
    }
}

/// Why a request is answered 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unauthorized {
    /// It presented no credential.
    Missing,
    /// It presented one that is not taken.
    Invalid(TokenFault),
}

/// Every 401 of the hub (its routes, the server API in JSON, /metrics,
/// the admin page's stream): RFC 6750's `WWW-Authenticate: Bearer`, with
/// `error="invalid_token"` and why in `error_description` for a credential
/// that is not taken, and no error for none presented (section 3.1). The
/// body says the same; for a refused token, `invalid token: WHY`, as a
/// WebSocket's close reason does (`token expired` and `token revoked`
/// alone).
pub(super) fn unauthorized(why: Unauthorized) -> Response {
    match why {
        Unauthorized::Missing => Response::text(401, "a bearer token is required\n")
            .header("WWW-Authenticate", "Bearer realm=\"tether\""),
        Unauthorized::Invalid(fault) => {
            let description = fault.description();
            let body = match fault {
                TokenFault::Expired | TokenFault::Revoked => format!("{description}\n"),
                _ => format!("invalid token: {description}\n"),
            };
            Response::text(401, body).header(
                "WWW-Authenticate",
                &format!(
                    "Bearer realm=\"tether\", error=\"invalid_token\", error_description=\"{description}\""
                ),
            )
        }
    }
}

/// What a subscriber asked to receive (`?format=`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Each event as its JSON object (the default).
    #[default]
    Json,
    /// Each event's data alone, one WebSocket message each.
    Raw,
}

/// What a subscriber's query asks for: `?format=`, `?presence=`,
/// `?envelope=`, `?lastEventId=` and `?event=`, each read once, when the
/// request is routed, and kept in its admission for the callback that
/// opens the subscription.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Wants {
    pub(super) format: Format,
    /// Join and leave events (`?presence=1`).
    pub(super) presence: bool,
    /// Each event in an envelope that names its topic (`?envelope=1`).
    pub(super) envelope: bool,
    /// Deltas, where the topic's namespace sends them (`?delta=1`).
    pub(super) delta: bool,
    /// `?lastEventId=` and `?event=`, boxed: few requests name either,
    /// and an admission lives as long as its request.
    named: Option<Box<Named>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    last_event_id: Option<String>,
    event: Option<String>,
}

impl Wants {
    /// What a query that asks for nothing gets.
    pub(super) const DEFAULT: Wants = Wants {
        format: Format::Json,
        presence: false,
        envelope: false,
        delta: false,
        named: None,
    };

    /// What `request`'s query asks for; a `?format=` that is neither
    /// `json` nor `raw` is refused.
    pub(super) fn of(request: &Request<'_>) -> Result<Wants, Refusal> {
        let format = match param(request, "format").as_deref() {
            None | Some("json") => Format::Json,
            Some("raw") => Format::Raw,
            Some(_) => return Err(Refusal::BadFormat),
        };
        let last_event_id = param(request, "lastEventId").filter(|id| !id.is_empty());
        let event = param(request, "event");
        let named =
            (last_event_id.is_some() || event.is_some()).then(|| Box::new(Named { last_event_id, event }));
        Ok(Wants {
            format,
            presence: matches!(param(request, "presence").as_deref(), Some("1" | "true")),
            envelope: matches!(param(request, "envelope").as_deref(), Some("1" | "true")),
            delta: matches!(param(request, "delta").as_deref(), Some("1" | "true")),
            named,
        })
    }

    /// The id to resume after (`?lastEventId=`), if one is named.
    pub(super) fn last_event_id(&self) -> Option<&str> {
        self.named.as_deref().and_then(|n| n.last_event_id.as_deref())
    }

    /// The only event type to receive (`?event=`), if one is named.
    pub(super) fn event(&self) -> Option<&str> {
        self.named.as_deref().and_then(|n| n.event.as_deref())
    }
}

/// A parameter of `request`'s query, as [`Request::query_param`] reads
/// it; under test each read is recorded, so that a test can tell that a
/// request's query is read once.
pub(super) fn param(request: &Request<'_>, name: &'static str) -> Option<String> {
    #[cfg(test)]
    reads::record(request.query(), name);
    request.query_param(name)
}

/// The query parameters read, under test: `(query, name)` for each read.
#[cfg(test)]
pub(super) mod reads {
    use std::sync::Mutex;

    static READ: Mutex<Vec<(String, &'static str)>> = Mutex::new(Vec::new());

    pub(super) fn record(query: Option<&str>, name: &'static str) {
        if let Some(query) = query {
            READ.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((query.to_owned(), name));
        }
    }

    /// How many times `name` was read from a request whose query is
    /// `query`.
    pub(crate) fn count(query: &str, name: &str) -> usize {
        let read = READ.lock().unwrap_or_else(|e| e.into_inner());
        read.iter().filter(|(q, n)| q == query && *n == name).count()
    }
}

/// What a hub route addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Publish,
    Events,
    WebSocket,
    Poll,
    /// `/topics/NAME/presence`: who is present.
    Presence,
}

/// `/topics/NAME[/events|/ws|/wt|/poll]`: the topic and the endpoint.
/// `/wt`, the WebTransport endpoint, is the WebSocket endpoint under
/// another name: the server serves a WebTransport session as the
/// WebSocket its route names (and a WebSocket handshake on `/wt` is
/// served too).
pub(super) fn parse_path(path: &str) -> Option<(&str, Endpoint)> {
    let rest = path.strip_prefix("/topics/")?;
    Some(match rest.split_once('/') {
        None => (rest, Endpoint::Publish),
        Some((topic, "events")) => (topic, Endpoint::Events),
        Some((topic, "ws" | "wt")) => (topic, Endpoint::WebSocket),
        Some((topic, "poll")) => (topic, Endpoint::Poll),
        Some((topic, "presence")) => (topic, Endpoint::Presence),
        Some(_) => return None,
    })
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request
/// has that header (`Some("")` for another scheme).
pub(super) fn bearer<'a>(request: &Request<'a>) -> Option<&'a str> {
    let value = request.header("authorization")?.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => Some(""),
    }
}

/// The API's endpoints (what `/api/...` a request names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ApiRoute {
    /// `POST /api/publish`.
    Publish,
    /// `POST /api/broadcast`.
    Broadcast,
    /// `GET /api/history`.
    History,
    /// `GET /api/presence`.
    Presence,
    /// `POST /api/presence/counts`.
    PresenceCounts,
    /// `GET /api/topics`.
    Topics,
    /// `GET /api/topics/info`.
    TopicInfo,
    /// `POST /api/disconnect`.
    Disconnect,
    /// `POST /api/unsubscribe`.
    Unsubscribe,
    /// `POST /api/subscribe`.
    Subscribe,
    /// `POST /api/refresh`.
    Refresh,
    /// `POST /api/revoke`.
    Revoke,
    /// `GET /api/revoked`.
    Revoked,
    /// Any other path under `/api/`: a JSON 404.
    Unknown,
    /// `GET /api/connections`.
    Connections,
}

impl ApiRoute {
    /// The endpoint of a path under `/api/`; `None` for any other path.
    pub(super) fn of(path: &str) -> Option<ApiRoute> {
        Some(match path.strip_prefix("/api/")? {
            "publish" => ApiRoute::Publish,
            "broadcast" => ApiRoute::Broadcast,
            "history" => ApiRoute::History,
            "presence" => ApiRoute::Presence,
            "presence/counts" => ApiRoute::PresenceCounts,
            "topics" => ApiRoute::Topics,
            "topics/info" => ApiRoute::TopicInfo,
            "disconnect" => ApiRoute::Disconnect,
            "unsubscribe" => ApiRoute::Unsubscribe,
            "subscribe" => ApiRoute::Subscribe,
            "refresh" => ApiRoute::Refresh,
            "revoke" => ApiRoute::Revoke,
            "revoked" => ApiRoute::Revoked,
            "connections" => ApiRoute::Connections,
            _ => ApiRoute::Unknown,
        })
    }

    /// Whether it takes a body (`POST`), or is read (`GET`, `HEAD`).
    pub(super) fn is_post(self) -> bool {
        matches!(
            self,
            ApiRoute::Publish
                | ApiRoute::Broadcast
                | ApiRoute::PresenceCounts
                | ApiRoute::Disconnect
                | ApiRoute::Unsubscribe
                | ApiRoute::Subscribe
                | ApiRoute::Refresh
                | ApiRoute::Revoke
        )
    }
}

/// The paths under `/admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AdminRoute {
    /// `GET /admin`: the page.
    Page = 0,
    /// `GET /admin/events`: the snapshots.
    Events,
    /// `POST /admin/login`: a token in, a session cookie out.
    Login,
    /// `POST /admin/logout`: the session ends.
    Logout,
    /// `/admin` or `/admin/events` without a credential that does.
    Denied,
    /// `/admin/api/...`: the server API's endpoint of the same name, as
    /// the publish token, for a signed-in admin.
    Api,
    /// `GET /admin/watch?topic=NAME`: the topic's events, as they come.
    Watch,
    /// An action (`/admin/api/...`, `/admin/watch`) when no metrics
    /// token is set: nobody may act (403).
    Closed,
    /// Any request on the admin listener naming a `Host` it does not
    /// serve (421).
    Misdirected,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/topics/a"), Some(("a", Endpoint::Publish)));
        assert_eq!(parse_path("/topics/a/events"), Some(("a", Endpoint::Events)));
        assert_eq!(parse_path("/topics/a/ws"), Some(("a", Endpoint::WebSocket)));
        assert_eq!(parse_path("/topics/a/wt"), Some(("a", Endpoint::WebSocket)));
        assert_eq!(parse_path("/topics/a/poll"), Some(("a", Endpoint::Poll)));
        assert_eq!(parse_path("/topics/a/presence"), Some(("a", Endpoint::Presence)));
        assert_eq!(parse_path("/topics/"), Some(("", Endpoint::Publish)));
        assert_eq!(parse_path("/topics/a/other"), None);
        assert_eq!(parse_path("/topic/a"), None);
    }
}
