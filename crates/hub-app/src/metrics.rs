//! The hub's counters (one set per loop, added up by `/metrics`) and
//! the `/metrics` page.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tether_hub::Transport;

use tether_hub::{Broker, Hub, secret_matches};
use tether_server::{Request, Response, StatsSnapshot};

use super::backend::Hook;
use super::latency::Latencies;
use super::routes::{Refusal, TokenFault, Unauthorized, bearer, unauthorized};

/// One loop's hub counters, read by `/metrics` on any loop.
#[derive(Debug, Default)]
pub(super) struct HubStats {
    pub(super) subscribers_websocket: AtomicU64,
    pub(super) subscribers_event_stream: AtomicU64,
    pub(super) subscribers_poll: AtomicU64,
    pub(super) published: AtomicU64,
    pub(super) publish_refused: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) sent_websocket: AtomicU64,
    pub(super) sent_event_stream: AtomicU64,
    pub(super) sent_poll: AtomicU64,
    /// Events sent as a delta (counted in their transport's too).
    pub(super) sent_deltas: AtomicU64,
    pub(super) gaps: AtomicU64,
    pub(super) slow_consumer_drops: AtomicU64,
    /// Publishes refused, and WebSockets closed, over the publish rate.
    pub(super) rate_limited: AtomicU64,
    /// WebSockets and event streams refused (or closed) over the most
    /// connections a subject may have.
    pub(super) connection_limited: AtomicU64,
    pub(super) refused_401: AtomicU64,
    pub(super) refused_403: AtomicU64,
    pub(super) tickets_issued: AtomicU64,
    /// Members present on the topics this loop sequences.
    pub(super) presence_members: AtomicU64,
    denied: [AtomicU64; Denial::ALL.len()],
    /// The backend's decisions, by hook ([`Hook::ALL`]) and outcome
    /// ([`Outcome::ALL`]).
    decisions: [[AtomicU64; Outcome::ALL.len()]; Hook::ALL.len()],
    /// The latency histograms.
    pub(super) latencies: Latencies,
}

/// What became of a question to the application's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Allowed,
    Denied,
    /// Timed out, down, malformed, or the queue full: answered 503.
    Unavailable,
}

impl Outcome {
    pub(super) const ALL: [Outcome; 3] = [Outcome::Allowed, Outcome::Denied, Outcome::Unavailable];

    /// What the backend's `decision` counts as.
    pub(super) fn of(decision: &tether_hub::Decision) -> Outcome {
        match decision {
            tether_hub::Decision::Allow(_) => Outcome::Allowed,
            tether_hub::Decision::Deny { .. } => Outcome::Denied,
            _ => Outcome::Unavailable,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Why a token was refused or a session ended for want of one, as
/// `tether_auth_denied_total{reason}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denial {
    /// No token where one is needed.
    Missing,
    /// A token that does not verify (bad signature, wrong audience, ...).
    Invalid,
    /// A token past its `exp` (and the leeway) when it was presented.
    Expired,
    /// A valid token that does not grant the topic or the publish.
    NotGranted,
    /// A WebSocket that sent no token within the auth timeout.
    AuthTimeout,
    /// A WebSocket whose first message was not its token.
    NotAuthMessage,
    /// A session whose token expired while it was open.
    SessionExpired,
    /// A token in the cookie on a request from another origin than the
    /// server's own or a trusted one.
    CrossOriginCookie,
    /// A revoked token presented, or a session ended when its token was
    /// revoked.
    Revoked,
}

impl Denial {
    pub(super) const ALL: [Denial; 9] = [
        Denial::Missing,
        Denial::Invalid,
        Denial::Expired,
        Denial::NotGranted,
        Denial::AuthTimeout,
        Denial::NotAuthMessage,
        Denial::SessionExpired,
        Denial::CrossOriginCookie,
        Denial::Revoked,
    ];

    fn label(self) -> &'static str {
        match self {
            Denial::Missing => "{reason=\"missing\"}",
            Denial::Invalid => "{reason=\"invalid\"}",
            Denial::Expired => "{reason=\"expired\"}",
            Denial::NotGranted => "{reason=\"not_granted\"}",
            Denial::AuthTimeout => "{reason=\"auth_timeout\"}",
            Denial::NotAuthMessage => "{reason=\"not_auth_message\"}",
            Denial::SessionExpired => "{reason=\"session_expired\"}",
            Denial::CrossOriginCookie => "{reason=\"cross_origin_cookie\"}",
            Denial::Revoked => "{reason=\"revoked\"}",
        }
    }

    /// The reason as the admin page's snapshots name it (the label's
    /// value).
    pub(super) fn name(self) -> &'static str {
        match self {
            Denial::Missing => "missing",
            Denial::Invalid => "invalid",
            Denial::Expired => "expired",
            Denial::NotGranted => "not_granted",
            Denial::AuthTimeout => "auth_timeout",
            Denial::NotAuthMessage => "not_auth_message",
            Denial::SessionExpired => "session_expired",
            Denial::CrossOriginCookie => "cross_origin_cookie",
            Denial::Revoked => "revoked",
        }
    }

    /// Why `error` refused a token.
    pub(super) fn of(error: &tether_auth::Error) -> Denial {
        match error {
            tether_auth::Error::Expired => Denial::Expired,
            _ => Denial::Invalid,
        }
    }
}

pub(super) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(super) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

impl HubStats {
    /// Counts a denial.
    /// Counts a decision of the backend's.
    pub(super) fn decided(&self, hook: Hook, outcome: Outcome) {
        let hook = Hook::ALL.iter().position(|&h| h == hook).unwrap_or(0);
        if let Some(counter) = self.decisions.get(hook).and_then(|by| by.get(outcome as usize)) {
            add(counter, 1);
        }
    }

    pub(super) fn deny(&self, denial: Denial) {
        if let Some(counter) = self.denied.get(denial as usize) {
            add(counter, 1);
        }
    }

    pub(super) fn subscribers(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::WebSocket | Transport::RawWebSocket => &self.subscribers_websocket,
            Transport::EventStream => &self.subscribers_event_stream,
            Transport::Poll => &self.subscribers_poll,
        }
    }

    pub(super) fn sent(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::WebSocket | Transport::RawWebSocket => &self.sent_websocket,
            Transport::EventStream => &self.sent_event_stream,
            Transport::Poll => &self.sent_poll,
        }
    }
}

/// `GET /metrics` (and HEAD): the page, or the 401 of a metrics token
/// that is wanted and not given, or the 405 of another method.
pub(super) fn answer(
    request: &Request<'_>,
    token: Option<&str>,
    server: impl FnOnce() -> StatsSnapshot,
    sources: &Sources<'_>,
    build: Option<&(String, String)>,
) -> Response {
    match request.method() {
        "GET" | "HEAD" => match check_token(request, token) {
            Some(refusal) => refusal,
            None => page(&server(), sources, build),
        },
        _ => Refusal::OnlyGet.response(),
    }
}

/// Checks the metrics token, if one is set: `None` if the request may
/// read the metrics, else the 401.
fn check_token(request: &Request<'_>, token: Option<&str>) -> Option<Response> {
    let token = token?;
    match bearer(request) {
        Some(given) if secret_matches(token, given) => None,
        Some(_) => Some(unauthorized(Unauthorized::Invalid(TokenFault::Unknown))),
        None => Some(unauthorized(Unauthorized::Missing)),
    }
}

/// A counter added up over every loop's hub counters.
pub(super) fn total(loops: &[Arc<HubStats>], f: fn(&HubStats) -> &AtomicU64) -> u64 {
    loops.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
}

/// The denials for one reason, added up over every loop.
pub(super) fn denied(loops: &[Arc<HubStats>], denial: Denial) -> u64 {
    loops
        .iter()
        .filter_map(|s| s.denied.get(denial as usize))
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
}

/// What the metrics page reads besides the server's counters: the hub's
/// counters of every loop, and this loop's replica and broker.
pub(super) struct Sources<'a> {
    pub(super) loops: &'a [Arc<HubStats>],
    pub(super) hub: &'a Hub<crate::subscribers::SubKey>,
    pub(super) broker: &'a dyn Broker,
    /// Label the backlog by topic ([`super::HubSettings::metrics_topics`]).
    pub(super) per_topic: bool,
    /// The node's own metrics ([`super::HubShared::add_metrics`]), on the
    /// `/metrics` page.
    pub(super) shared: Option<&'a super::HubShared>,
}

/// The QUIC and HTTP/3 counters (all zero while HTTP/3 is off).
fn quic_metrics(server: &StatsSnapshot, metric: &mut impl FnMut(&str, &str, &str, &[(&str, u64)])) {
    metric(
        "tether_quic_handshakes_total",
        "counter",
        "QUIC handshakes completed.",
        &[("", server.quic_handshakes)],
    );
    metric(
        "tether_quic_retries_total",
        "counter",
        "New QUIC clients sent a Retry to validate their address (many handshakes in progress).",
        &[("", server.quic_retries)],
    );
    metric(
        "tether_quic_refused_total",
        "counter",
        "New QUIC clients refused at the connection limit or a bound on half-open handshakes.",
        &[("", server.quic_refused)],
    );
    metric(
        "tether_quic_refused_half_open_total",
        "counter",
        "Of the refused QUIC clients, those refused because their source, or the loop, had as many handshakes in progress as it may.",
        &[("", server.quic_refused_half_open)],
    );
    metric(
        "tether_quic_half_open",
        "gauge",
        "QUIC handshakes in progress (half-open).",
        &[("", server.quic_half_open)],
    );
    metric(
        "tether_quic_datagrams_received_total",
        "counter",
        "UDP datagrams received by the QUIC endpoints.",
        &[("", server.quic_datagrams_in)],
    );
    metric(
        "tether_quic_datagrams_sent_total",
        "counter",
        "UDP datagrams sent by the QUIC endpoints.",
        &[("", server.quic_datagrams_out)],
    );
    metric(
        "tether_quic_bytes_received_total",
        "counter",
        "Bytes of the UDP datagrams received by the QUIC endpoints.",
        &[("", server.quic_bytes_in)],
    );
    metric(
        "tether_quic_bytes_sent_total",
        "counter",
        "Bytes of the UDP datagrams sent by the QUIC endpoints.",
        &[("", server.quic_bytes_out)],
    );
    metric(
        "tether_quic_connections_closed_total",
        "counter",
        "QUIC connections ended, by cause (idle timeout, handshake timeout, an error of either side, or closed without error).",
        &[
            ("{reason=\"idle_timeout\"}", server.quic_closed_idle),
            (
                "{reason=\"handshake_timeout\"}",
                server.quic_closed_handshake_timeout,
            ),
            ("{reason=\"error\"}", server.quic_closed_error),
            ("{reason=\"normal\"}", server.quic_closed_normally),
        ],
    );
    metric(
        "tether_h3_slow_consumer_resets_total",
        "counter",
        "HTTP/3 streams reset with H3_REQUEST_CANCELLED by the slow-consumer policy (counted in tether_slow_consumers_total too).",
        &[("", server.h3_slow_consumer_resets)],
    );
    metric(
        "tether_quic_datagrams_forwarded_total",
        "counter",
        "Datagrams a loop received for a QUIC connection another loop holds, handed to it (connection migration, NAT rebinding).",
        &[("", server.quic_datagrams_forwarded)],
    );
}

/// `/metrics`: the server's counters and the hub's, in the Prometheus
/// text format.
fn page(server: &StatsSnapshot, sources: &Sources<'_>, build: Option<&(String, String)>) -> Response {
    let total = |f: fn(&HubStats) -> &AtomicU64| total(sources.loops, f);
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
        "Open connections by transport (an HTTP/2 connection counts as h2, a QUIC connection as h3; their WebSocket and event-stream streams count as websocket and sse).",
        &[
            ("{transport=\"http\"}", server.open_http),
            ("{transport=\"websocket\"}", server.open_websocket),
            ("{transport=\"sse\"}", server.open_event_stream),
            ("{transport=\"h2\"}", server.open_h2),
            ("{transport=\"h3\"}", server.open_h3),
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
        "Connections refused with 503: at the connection limit, or shed while out of descriptors.",
        &[("", server.refused_busy)],
    );
    metric(
        "tether_http_requests_total",
        "counter",
        "HTTP requests answered.",
        &[("", server.http_requests)],
    );
    metric(
        "tether_app_panics_total",
        "counter",
        "Panics caught at the application boundary (each closed its connection with 500 or 1011); the same as tether_panics_total{where=\"app\"}.",
        &[("", server.app_panics)],
    );
    metric(
        "tether_panics_total",
        "counter",
        "Panics caught, each costing one connection at most, by where: app (an application callback: 500 or 1011), connection (a TCP connection's TLS, HTTP/1.1 or HTTP/2 work: reset), quic (the QUIC endpoint or HTTP/3 work: that QUIC connection closed).",
        &[
            ("{where=\"app\"}", server.app_panics),
            ("{where=\"connection\"}", server.connection_panics),
            ("{where=\"quic\"}", server.quic_panics),
        ],
    );
    metric(
        "tether_tls_errors_total",
        "counter",
        "TLS connections closed for what the peer sent (not TLS, a failed handshake).",
        &[("", server.tls_errors)],
    );
    metric(
        "tether_h2_connections_total",
        "counter",
        "Connections that became HTTP/2 sessions (h2c prior knowledge or ALPN h2).",
        &[("", server.h2_connections)],
    );
    metric(
        "tether_h2_streams_total",
        "counter",
        "HTTP/2 streams opened by clients (requests, event streams, WebSockets).",
        &[("", server.h2_streams)],
    );
    metric(
        "tether_h2_request_body_bytes",
        "gauge",
        "Bytes held for HTTP/2 request bodies still arriving.",
        &[("", server.h2_request_body_bytes)],
    );
    metric(
        "tether_h2_refused_bodies_total",
        "counter",
        "HTTP/2 streams refused because their connection's request bodies were at the limit.",
        &[("", server.h2_refused_bodies)],
    );
    metric(
        "tether_h3_refused_bodies_total",
        "counter",
        "HTTP/3 request streams refused because their connection's request bodies were at the limit.",
        &[("", server.h3_refused_bodies)],
    );
    quic_metrics(server, &mut metric);
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
        "tether_ws_deflated_sent_total",
        "counter",
        "WebSocket messages sent as a shared compressed frame (permessage-deflate without server context takeover).",
        &[("", server.deflated_out)],
    );
    metric(
        "tether_ws_shared_compressions_total",
        "counter",
        "Messages compressed once to be shared by every subscriber that takes them (at most one per event and form).",
        &[("", tether_hub::shared_compressions())],
    );
    metric(
        "tether_sse_shared_compressions_total",
        "counter",
        "Events compressed once for every compressed event stream that takes them (at most one per event and form).",
        &[("", tether_hub::shared_sse_compressions())],
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
        "Publishes by outcome (sequenced, refused by the broker, or a duplicate: a publish key the topic remembered).",
        &[
            ("{result=\"ok\"}", total(|s| &s.published)),
            ("{result=\"refused\"}", total(|s| &s.publish_refused)),
            ("{result=\"duplicate\"}", total(|s| &s.duplicates)),
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
        "tether_hub_deltas_sent_total",
        "counter",
        "Events sent as a delta against the subscriber's previous event on the topic (counted in tether_hub_events_sent_total too).",
        &[("", total(|s| &s.sent_deltas))],
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
        "tether_hub_rate_limited_total",
        "counter",
        "Publishes refused (and WebSockets closed) over the publish rate.",
        &[("", total(|s| &s.rate_limited))],
    );
    let decisions: Vec<(String, u64)> = Hook::ALL
        .iter()
        .enumerate()
        .flat_map(|(h, hook)| {
            Outcome::ALL.iter().map(move |&outcome| {
                let count = sources
                    .loops
                    .iter()
                    .filter_map(|s| s.decisions.get(h).and_then(|by| by.get(outcome as usize)))
                    .map(|c| c.load(Ordering::Relaxed))
                    .sum();
                (
                    format!("{{hook=\"{}\",outcome=\"{}\"}}", hook.name(), outcome.name()),
                    count,
                )
            })
        })
        .collect();
    let decisions: Vec<(&str, u64)> = decisions.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "tether_hub_backend_decisions_total",
        "counter",
        "Questions to the application's backend (the proxy hooks), by hook and outcome (unavailable: slow, down, malformed or busy, answered 503).",
        &decisions,
    );
    metric(
        "tether_hub_connection_limited_total",
        "counter",
        "WebSockets and event streams refused (or closed) over the most connections per subject.",
        &[("", total(|s| &s.connection_limited))],
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
    metric(
        "tether_hub_presence_members",
        "gauge",
        "Members present, added over topics (a member of two topics counts twice; with Redis, other nodes' members of the topics followed here too).",
        &[("", total(|s| &s.presence_members))],
    );
    let denied: Vec<(&str, u64)> = Denial::ALL
        .iter()
        .map(|&denial| (denial.label(), denied(sources.loops, denial)))
        .collect();
    metric(
        "tether_auth_denied_total",
        "counter",
        "Tokens refused, and sessions ended for want of a valid one, by reason.",
        &denied,
    );
    let (mut topics, mut events, mut bytes) = (0u64, 0u64, 0u64);
    let mut per_topic: Vec<(&Arc<str>, tether_hub::TopicInfo)> = sources.hub.topics().collect();
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
    // Per topic only when asked for: the names are labels without
    // bound, and they name every topic, private ones too.
    if sources.per_topic {
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
    }
    let state = sources.broker.state();
    metric(
        "tether_broker_up",
        "gauge",
        "Whether the broker takes publishes and delivers (1) or not (0).",
        &[("", u64::from(state == tether_hub::BrokerState::Up))],
    );
    let kind = sources.broker.kind();
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
    super::latency::write(&mut out, sources.loops, sources.broker.round_trip());
    sources.broker.write_metrics(&mut out);
    if let Some(shared) = sources.shared {
        shared.write_metrics(&mut out);
    }
    if let Some((version, commit)) = build {
        build_info(&mut out, version, commit);
    }
    super::process::ProcessSample::read().write(&mut out);
    Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out).header("Cache-Control", "no-cache")
}

/// `tether_build_info`: which build answers, as labels (the usual way
/// of a Prometheus info metric), so that a dashboard can tell the nodes
/// of a rolling upgrade apart.
fn build_info(out: &mut String, version: &str, commit: &str) {
    let _ = writeln!(
        out,
        "# HELP tether_build_info The version and the commit of the running build.\n\
         # TYPE tether_build_info gauge\n\
         tether_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        label_value(version),
        label_value(commit)
    );
}

/// A label value escaped as the text format wants: backslash, double
/// quote and line feed.
fn label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Counts a refusal by status, and by reason where it is about a
/// token.
pub(super) fn count_refusal(stats: &HubStats, refusal: Refusal) {
    let (status, denial) = match refusal {
        Refusal::NoCredentials => (&stats.refused_401, Some(Denial::Missing)),
        Refusal::BadCredentials(_) => (&stats.refused_401, Some(Denial::Invalid)),
        Refusal::ExpiredCredentials => (&stats.refused_401, Some(Denial::Expired)),
        Refusal::NotGranted => (&stats.refused_403, Some(Denial::NotGranted)),
        Refusal::CrossOriginCookie => (&stats.refused_403, Some(Denial::CrossOriginCookie)),
        Refusal::Revoked => (&stats.refused_401, Some(Denial::Revoked)),
        Refusal::TooManyConnections => (&stats.connection_limited, None),
        _ => (&stats.refused_403, None),
    };
    add(status, 1);
    if let Some(denial) = denial {
        stats.deny(denial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_status_and_reason() {
        let stats = HubStats::default();
        count_refusal(&stats, Refusal::CrossOriginCookie);
        count_refusal(&stats, Refusal::ExpiredCredentials);
        count_refusal(&stats, Refusal::BadTopic);
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(load(&stats.refused_403), 2);
        assert_eq!(load(&stats.refused_401), 1);
    }
}

#[cfg(test)]
mod build_info_tests {
    use super::build_info;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        build_info(&mut out, "1.0", "a\"b\\c\nd");
        assert!(
            out.ends_with("tether_build_info{version=\"1.0\",commit=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3);
    }
}
