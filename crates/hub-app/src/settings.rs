//! The hub's settings: limits, access control, origins.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tether_hub::Config as HubConfig;

use tether_server::Handshake;

use super::auth::HubAuth;
use super::backend::{Backend, Hook};
use super::namespace::{Namespace, Publisher, UnknownNamespace, WhoSubscribes, governing, may_publish};
use super::origin::{Origins, is_trusted, names_host};
use super::rate::PublishRate;

/// The hub's settings: its limits, and access control.
///
/// Its `Debug` output never shows the publish token.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubSettings {
    /// Backlog bounds, event size, topic limit and idle-topic expiry.
    pub hub: HubConfig,
    /// The bearer token that publishing over HTTP (`POST /topics/NAME`) and
    /// issuing tickets (`POST /tickets`) require, unless a JSON Web Token
    /// grants them ([`HubSettings::auth`]). `None` and no `auth` (the
    /// default): both are refused with 403.
    pub publish_token: Option<String>,
    /// Subscribing (WebSocket, event stream, long poll) requires a ticket
    /// (`?ticket=`), the token (`Authorization: Bearer`) or a JSON Web
    /// Token that verifies ([`HubSettings::auth`]). Off by default.
    pub require_ticket: bool,
    /// How long a ticket is good for (30 s).
    pub ticket_ttl: Duration,
    /// Tickets outstanding at most (10 000); more get 503.
    pub max_tickets: usize,
    /// Tickets outstanding at most for one holder's subject (100), so
    /// that one token cannot take every ticket of the node: more for that
    /// subject get 429 with `Retry-After` (until its oldest expires),
    /// while other subjects still get theirs. Tickets without a subject
    /// (the publish token's own) are not counted.
    pub max_tickets_per_subject: usize,
    /// The origins trusted to use the hub from a browser, besides the
    /// server's own (exact origins such as `https://app.example.com`,
    /// compared case-insensitively; never `*`, which matches nothing). A
    /// page of a trusted origin may subscribe and publish (WebSocket
    /// upgrades, event streams, long polls, publishes, tickets), gets CORS
    /// answers with credentials (`Access-Control-Allow-Origin` naming it,
    /// `Access-Control-Allow-Credentials: true`, preflights answered 204),
    /// and its requests may carry the token cookie. When the list is not
    /// empty, requests from any other origin are refused (403). Empty (the
    /// default): any origin may use the hub without cookies, and no CORS
    /// header is sent.
    ///
    /// Whatever the list, a credential that came in a cookie counts only
    /// from the server's own origin (scheme, host and port of the request)
    /// or a trusted one: from any other, the request is refused (403)
    /// before the upgrade, the stream or the body. Requests without
    /// `Origin` (not from a browser's cross-origin request) keep their
    /// cookie, unless `Sec-Fetch-Site` says another site sent them.
    pub trusted_origins: Vec<String>,
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
    /// `/metrics` has a series per topic (its backlog's events and bytes).
    /// Off by default: topic names are labels without bound (a hazard for
    /// a Prometheus server) and name every topic, private ones too.
    pub metrics_topics: bool,
    /// `/metrics` requires `Authorization: Bearer` with this token (401
    /// otherwise), and so does the admin page, whose one credential it
    /// is. `None` (the default): no token; `/metrics` and the admin
    /// page's counters are then anyone's who reaches them, and the admin
    /// page is read-only (its actions are refused, 403).
    pub metrics_token: Option<String>,
    /// `/metrics` is served only on the server's admin listener
    /// ([`tether_server::Config::admin_addr`]): the main one answers 404. Off by
    /// default.
    pub metrics_on_admin_listener: bool,
    /// The names the admin listener serves besides its address and
    /// `localhost` (each [`HubSettings::is_admin_host`]: a name, with a
    /// port to match that port only): a request on the admin listener
    /// whose `Host` is none of them is answered 421 (Misdirected
    /// Request), so that a page on a DNS name made to point at the
    /// listener (DNS rebinding) reaches nothing there. Empty by default.
    pub admin_hosts: Vec<String>,
    /// JSON Web Tokens: the keys they are verified with, the topics that
    /// need one to be subscribed to, where they are read. `None` (the
    /// default): only the publish token and tickets identify anyone.
    pub auth: Option<HubAuth>,
    /// Rules by topic pattern (`chat.*`): who subscribes and publishes,
    /// whether presence is kept; the most specific pattern governs a
    /// topic, and what it leaves unsaid the settings above decide. Their
    /// backlogs and expiry are [`tether_hub::Config::namespaces`]. Empty
    /// by default.
    pub namespaces: Vec<Namespace>,
    /// What a topic outside every namespace gets ([`UnknownNamespace`]:
    /// the settings above by default, or refused).
    pub unknown_namespace: UnknownNamespace,
    /// How fast each WebSocket connection, and each credential subject
    /// (a token's `sub`, over all its connections and HTTP publishes),
    /// may publish; the publish token itself is the backend and is not
    /// limited over HTTP. A WebSocket over the rate is closed (1008, the
    /// reason given), an HTTP publish answered 429 with `Retry-After`, a
    /// server API item refused with `rate_limited`. `None` (the default):
    /// no limit.
    pub publish_rate: Option<PublishRate>,
    /// The application's backend, asked what the hub cannot decide alone:
    /// who a request without credentials is (the connect hook), and
    /// whether a subscription may go on in the namespaces that say
    /// `subscribe=hook`. A backend that does not answer in time is a 503,
    /// never an allow. `None` (the default): no one is asked.
    pub backend: Option<Arc<dyn Backend>>,
    /// The most WebSockets and event streams one credential subject (a
    /// token's `sub`, or a ticket holder's) may have open on this node,
    /// over every loop, and with a broker that shares the counts (Redis)
    /// over the cluster as last heard of. Over it, an upgrade or a stream
    /// is answered 429 with `Retry-After` before it starts, and a
    /// WebSocket that authenticates with its first message is closed
    /// (1008, `too many connections for this subject`). Long polls, and
    /// connections without a subject, are not counted. `None` (the
    /// default): no limit.
    pub max_connections_per_subject: Option<usize>,
    /// The most topics one multiplexed socket (`GET /ws`) follows at
    /// once, its subscribes waiting for the backend counted; one more is
    /// refused (`{"control":"refused","status":429,...}`), the socket
    /// left open. 128 by default.
    pub max_subscriptions: usize,
    /// How many subscribe and unsubscribe messages one multiplexed socket
    /// sends a second, on average, in bursts of up to
    /// [`HubSettings::max_subscriptions`] (so that a page subscribing
    /// all it may at once is never held back), or of a second's worth if
    /// that is more: each costs the hub a
    /// decision, perhaps a backend's question and a broker's follow, and
    /// an answer. One over it is answered (a subscribe `refused` with
    /// status 429, an unsubscribe an `error`) and not acted on; the
    /// socket and its other subscriptions go on. 50 by default (at least
    /// 1).
    pub max_subscribe_rate: u32,
    /// The most calls (`{"type":"rpc",...}`) one multiplexed socket has
    /// waiting for the backend's rpc hook at once; one more is answered
    /// `rpc-error` with code 429 and not asked. 16 by default (at least
    /// 1).
    pub max_rpc_in_flight: usize,
    /// How fast each multiplexed socket, and each credential subject over
    /// all its connections and `POST /rpc` requests, may call the rpc
    /// hook: one over it is answered with code 429 (and `Retry-After`
    /// over HTTP), not asked. `None`: no limit. 10 a second in bursts of
    /// 20 by default.
    pub rpc_rate: Option<PublishRate>,
    /// The program's version and the commit it was built from, shown on
    /// `/metrics` as `tether_build_info{version="…",commit="…"} 1`;
    /// `None` (the default): no such line.
    pub build_info: Option<(String, String)>,
}

impl Default for HubSettings {
    fn default() -> HubSettings {
        HubSettings {
            hub: HubConfig::default(),
            publish_token: None,
            require_ticket: false,
            ticket_ttl: Duration::from_secs(30),
            max_tickets: 10_000,
            max_tickets_per_subject: 100,
            trusted_origins: Vec::new(),
            ws_publish: Vec::new(),
            poll_timeout: Duration::from_secs(25),
            publish_timeout: Duration::from_secs(10),
            max_publish_in_flight: 1 << 20,
            metrics_topics: false,
            metrics_token: None,
            metrics_on_admin_listener: false,
            admin_hosts: Vec::new(),
            auth: None,
            namespaces: Vec::new(),
            unknown_namespace: UnknownNamespace::Default,
            publish_rate: None,
            backend: None,
            max_connections_per_subject: None,
            max_subscriptions: 128,
            max_subscribe_rate: 50,
            max_rpc_in_flight: 16,
            rpc_rate: Some(PublishRate::new(10.0, 20.0)),
            build_info: None,
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
            .field("max_tickets_per_subject", &self.max_tickets_per_subject)
            .field("trusted_origins", &self.trusted_origins)
            .field("ws_publish", &self.ws_publish)
            .field("poll_timeout", &self.poll_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("max_publish_in_flight", &self.max_publish_in_flight)
            .field("metrics_topics", &self.metrics_topics)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("metrics_on_admin_listener", &self.metrics_on_admin_listener)
            .field("admin_hosts", &self.admin_hosts)
            .field("auth", &self.auth)
            .field("namespaces", &self.namespaces)
            .field("unknown_namespace", &self.unknown_namespace)
            .field("publish_rate", &self.publish_rate)
            .field("backend", &self.backend)
            .field("max_connections_per_subject", &self.max_connections_per_subject)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_subscribe_rate", &self.max_subscribe_rate)
            .field("max_rpc_in_flight", &self.max_rpc_in_flight)
            .field("rpc_rate", &self.rpc_rate)
            .field("build_info", &self.build_info)
            .finish()
    }
}

impl HubSettings {
    /// Whether `origin` is one of [`HubSettings::trusted_origins`].
    pub fn is_trusted(&self, origin: &str) -> bool {
        is_trusted(&self.trusted_origins, origin)
    }

    /// The origin policy of these settings, for an embedding
    /// application's own routes beside the hub.
    pub fn origins(&self) -> Origins<'_> {
        Origins::new(&self.trusted_origins)
    }

    /// Whether `text` is an origin as a browser sends it and
    /// [`HubSettings::trusted_origins`] takes it: `http://` or `https://`, a
    /// host, an optional port, nothing else (no path, no `*`).
    ///
    /// ```
    /// use tether_hub_app::HubSettings;
    ///
    /// assert!(HubSettings::is_origin("https://app.example.com"));
    /// assert!(HubSettings::is_origin("http://localhost:8080"));
    /// assert!(!HubSettings::is_origin("*"));
    /// assert!(!HubSettings::is_origin("https://example.com/path"));
    /// ```
    pub fn is_origin(text: &str) -> bool {
        let Some(rest) = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
        else {
            return false;
        };
        // An IPv6 literal in brackets, or a name or IPv4 address.
        let (host_ok, after) = match rest.strip_prefix('[') {
            Some(literal) => match literal.split_once(']') {
                Some((address, after)) => (
                    !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                    after,
                ),
                None => (false, ""),
            },
            None => {
                let end = rest.find(':').unwrap_or(rest.len());
                let host = &rest[..end];
                let ok = !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
                (ok, &rest[end..])
            }
        };
        let port = match after {
            "" => None,
            after => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        let port_ok = port.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        });
        host_ok && port_ok
    }

    /// Whether `text` may be one of [`HubSettings::admin_hosts`]: a host
    /// name or address as a `Host` field carries it, and an optional port.
    ///
    /// ```
    /// use tether_hub_app::HubSettings;
    ///
    /// assert!(HubSettings::is_admin_host("admin.example.com"));
    /// assert!(HubSettings::is_admin_host("admin.example.com:8443"));
    /// assert!(!HubSettings::is_admin_host("*.example.com"));
    /// assert!(!HubSettings::is_admin_host("https://admin.example.com"));
    /// ```
    pub fn is_admin_host(text: &str) -> bool {
        crate::admin::is_admin_host(text)
    }

    /// Whether any WebSocket subscriber of `topic` may publish to it: its
    /// namespace says `subscribers`, or (where its namespace has no
    /// publish rule) [`HubSettings::ws_publish`] names it (the patterns of
    /// [`tether_auth::TopicPattern`]; one that does not parse opens
    /// nothing).
    pub fn ws_publish_open(&self, topic: &str) -> bool {
        self.may_publish(topic, Publisher::Subscriber)
    }

    /// The namespace that governs `topic`, if any.
    pub fn namespace_of(&self, topic: &str) -> Option<&Namespace> {
        governing(&self.namespaces, topic)
    }

    /// Whether `topic` is refused for being in no namespace
    /// ([`UnknownNamespace::Refuse`]).
    pub fn refuses_topic(&self, topic: &str) -> bool {
        self.unknown_namespace == UnknownNamespace::Refuse
            && !self.namespaces.is_empty()
            && self.namespace_of(topic).is_none()
    }

    /// The backend, if it answers questions of this kind.
    pub(super) fn backend_for(&self, hook: Hook) -> Option<&Arc<dyn Backend>> {
        self.backend.as_ref().filter(|backend| backend.answers(hook))
    }

    /// Whether publishing to `topic` (but by the publish token) is asked
    /// of the backend (its namespace says `publish=hook`).
    pub(super) fn publish_hook(&self, topic: &str) -> bool {
        self.namespace_of(topic)
            .is_some_and(|n| n.publish == Some(super::namespace::WhoPublishes::Hook))
    }

    /// Whether subscribing to `topic` is asked of the backend (its
    /// namespace says `subscribe=hook`).
    pub(super) fn subscribe_hook(&self, topic: &str) -> bool {
        self.namespace_of(topic)
            .is_some_and(|n| n.subscribe == Some(WhoSubscribes::Hook))
    }

    /// Whether `who` may publish to `topic`, as its namespace's rule says.
    pub(super) fn may_publish(&self, topic: &str, who: Publisher) -> bool {
        let rule = self.namespace_of(topic).and_then(|n| n.publish);
        let listed = || {
            self.ws_publish
                .iter()
                .any(|pattern| tether_auth::pattern_matches(pattern, topic))
        };
        may_publish(
            rule,
            who,
            who == Publisher::Subscriber && rule.is_none() && listed(),
        )
    }

    /// Whether `topic`'s subscribers are its members (presence kept).
    pub fn keeps_presence(&self, topic: &str) -> bool {
        self.namespace_of(topic).is_none_or(|n| n.presence)
    }

    /// Whether `topic`'s subscribers may ask for join and leave events.
    pub fn tells_join_leave(&self, topic: &str) -> bool {
        self.namespace_of(topic)
            .is_none_or(|n| n.presence && n.join_leave)
    }

    /// Whether a subscriber of `topic` from nowhere starts at the topic's
    /// latest event (its namespace says `latest=on`).
    pub fn replays_latest(&self, topic: &str) -> bool {
        self.namespace_of(topic).is_some_and(|n| n.latest)
    }

    /// Whether event streams of `topic` may be sent compressed (its
    /// namespace does not say `compress=off`).
    pub fn compresses(&self, topic: &str) -> bool {
        self.namespace_of(topic).is_none_or(|n| n.compress)
    }

    /// Whether subscribers of `topic` that ask for deltas get them (its
    /// namespace says `delta=on`).
    pub fn sends_deltas(&self, topic: &str) -> bool {
        self.namespace_of(topic).is_some_and(|n| n.delta)
    }

    /// `handshake` with a policy that refuses WebSocket upgrades (403) from
    /// origins other than the trusted ones and the server's own (its
    /// `Host`), on every route, when [`HubSettings::trusted_origins`] is
    /// not empty (the hub's own routes check it too, for every transport,
    /// with the scheme).
    pub fn origin_policy(&self, handshake: Handshake) -> Handshake {
        if self.trusted_origins.is_empty() {
            return handshake;
        }
        let settings = self.clone();
        handshake.policy(
            move |request: &tether_handshake::UpgradeRequest<'_>| match request.origin() {
                Some(origin) if !settings.is_trusted(origin) && !names_host(origin, request.host()) => {
                    Err(tether_handshake::Rejection::forbidden("origin not allowed"))
                }
                _ => Ok(()),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text is judged without a panic; an origin taken has no
        /// path, query, user, wildcard or space, and names itself.
        #[test]
        fn origins_are_judged_safely(text in ".{0,40}", host in "[a-z0-9.-]{1,20}", port in proptest::option::of(any::<u16>())) {
            if HubSettings::is_origin(&text) {
                let rest = text.split_once("://").map_or("", |(_, rest)| rest);
                prop_assert!(!rest.contains(['/', '?', '#', '@', '*', ' ']), "{}", text);
            }
            let origin = match port {
                Some(port) => format!("https://{host}:{port}"),
                None => format!("http://{host}"),
            };
            prop_assert!(HubSettings::is_origin(&origin), "{}", origin);
            let s = HubSettings {
                trusted_origins: vec![origin.clone()],
                ..HubSettings::default()
            };
            prop_assert!(s.is_trusted(&origin.to_ascii_uppercase()));
        }
    }

    #[test]
    fn settings() {
        let mut s = HubSettings::default();
        assert!(!s.is_trusted("https://anything"));
        s.trusted_origins = vec![
            "https://Example.com/".into(),
            "https://app.example.com".into(),
            "*".into(),
        ];
        assert!(s.is_trusted("https://example.com"));
        assert!(s.is_trusted("https://APP.example.com"));
        assert!(!s.is_trusted("https://example.com.evil"));
        assert!(!s.is_trusted("http://example.com"));
        assert!(!s.is_trusted("https://other.example"));
        // `*` never matches, not even itself.
        assert!(!s.is_trusted("*"));
        assert!(names_host("http://a.b:8080", "A.b:8080"));
        assert!(!names_host("http://a.b:8080", "a.b"));
        for good in [
            "https://a.b",
            "http://localhost:8080",
            "https://[::1]:443",
            "http://[::1]",
        ] {
            assert!(HubSettings::is_origin(good), "{good}");
        }
        for bad in [
            "*",
            "null",
            "https://",
            "ftp://a.b",
            "https://a.b/",
            "https://a.b/path",
            "https://a.b:",
            "https://a.b:99999",
            "https://a b",
            "https://user@a.b",
            "https://a.b?x",
            "https://a.b:+80",
            "https://[::1",
            "https://[]",
            "https://[::1]x",
        ] {
            assert!(!HubSettings::is_origin(bad), "{bad}");
        }
        s.ws_publish = vec!["chat.*".into(), "exact".into()];
        assert!(s.ws_publish_open("chat.lobby"));
        assert!(s.ws_publish_open("exact"));
        assert!(!s.ws_publish_open("exactly"));
        assert!(!s.ws_publish_open("news"));
        s.ws_publish = vec!["chat/*".into(), "a*b".into()];
        assert!(!s.ws_publish_open("chat/x"));
        assert!(!s.ws_publish_open("a*b"));
        s.publish_token = Some("hunter2".into());
        s.metrics_token = Some("swordfish".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("swordfish"));
    }
}
