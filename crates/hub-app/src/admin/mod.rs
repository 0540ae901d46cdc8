//! The admin page: `/admin` on the admin listener (and nowhere else), a
//! live view of the counters `/metrics` reads, fed by `/admin/events`, an
//! event stream of one JSON snapshot a second.
//!
//! Every request on the admin listener, `/metrics` included, is first
//! checked for the `Host` it names ([`host`]): a name the listener does
//! not serve (a DNS-rebinding page's) is answered 421 before anything
//! else.
//!
//! Who may read it: anyone who reaches the admin listener when no metrics
//! token is set (the counters only: the page is then read-only, and its
//! actions are refused, 403, whoever asks), else a request with
//! `Authorization: Bearer TOKEN`, or a browser that signed in. A browser
//! cannot put a header on an `EventSource`, so signing in (`POST
//! /admin/login`, the token in a form body, never in a URL) opens a
//! session: a random id in a cookie that scripts cannot read
//! (`HttpOnly`), that no other site's request carries (`SameSite=Strict`)
//! and that goes nowhere but `/admin` (`Path=/admin`).
//! The page then needs no token of its own: its `EventSource` sends the
//! cookie. Sessions live in the loop that serves the admin listener (the
//! first one), end after [`SESSION_TTL`] or at `POST /admin/logout`, and
//! an event stream opened with a session ends with it. A new metrics
//! token (the settings reloaded) ends every session, and every stream let
//! in under the old one, bearer or session.
//!
//! What the page does (publish, disconnect, revoke...) is in [`actions`]:
//! the server API's endpoints under `/admin/api/`, each checked for a
//! session, the same origin and the session's CSRF token, and logged.
//! There is no action without the admin credential: with no metrics
//! token set, nobody may act, whatever the operator forgot.

mod actions;
mod form;
mod host;

pub(crate) use host::is_admin_host;

use form::form_field;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, json};
use tether_hub::secret_matches;
use tether_server::{ConnId, Ctx, Request, Response, Route, StatsSnapshot};

use super::metrics::{Denial, HubStats, Sources, denied, total};
pub(super) use super::routes::AdminRoute;
use super::routes::{HubRoute, bearer};

/// The page, with `{{NONCE}}` where each answer puts its CSP nonce,
/// `{{AUTH}}` where it says whether an admin credential is set (`on`:
/// the actions and a sign-out button; `off`: read-only) and `{{CSRF}}`
/// where its actions find their CSRF token.
const PAGE: &str = include_str!("../../static/admin.html");

/// The cookie that holds a session's id.
const COOKIE: &str = "tether_admin";

/// How long a session lasts after its sign-in.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions held at once; signing in past it ends the one
/// closest to its end.
const MAX_SESSIONS: usize = 64;

/// A signed-in browser's session.
#[derive(Debug)]
struct Session {
    /// When it ends.
    until: Instant,
    /// The token its page sends with every action (`X-CSRF-Token`), which
    /// another site's page cannot read.
    csrf: String,
}

/// One reading of the counters that rates are computed from.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    publishes: u64,
    deliveries: u64,
}

/// The admin page's state on one loop: the sessions, the open event
/// streams, and the last reading of the counters.
#[derive(Debug, Default)]
pub(super) struct Admin {
    /// Sessions by id.
    sessions: HashMap<String, Session>,
    /// The metrics token the sessions were opened with: when it changes
    /// (SIGHUP with `--config`), they end.
    opened_with: Option<String>,
    /// The open `/admin/events` streams.
    streams: Vec<Stream>,
    last: Option<Sample>,
    /// Publishes and deliveries per second between the last two readings.
    rates: (f64, f64),
    /// The open `/admin/watch` streams (hub subscribers of their topic).
    watches: Vec<Stream>,
}

/// An open `/admin/events` stream, and what let it in: it ends when
/// that no longer holds.
#[derive(Debug)]
struct Stream {
    conn: ConnId,
    /// The session it was opened with (`None`: a bearer token, or no
    /// token set, for a stream of counters).
    session: Option<String>,
    /// The metrics token when it was opened.
    token: Option<String>,
}

/// What a request presents to the admin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    /// No metrics token is set: the counters are anyone's who reaches
    /// the listener, the actions nobody's.
    NoTokenSet,
    /// The metrics token, in `Authorization`.
    Bearer,
    /// A live session's cookie.
    Session,
    /// `Authorization` with another token.
    WrongToken,
    /// Nothing that does.
    Nothing,
}

impl Admin {
    /// The route of a request that came through the admin listener, if
    /// its path is one of the admin page's or its `Host` is not served
    /// there (`None`: not ours). `hosts` are the names it serves besides
    /// its address and `localhost`.
    pub(super) fn route(
        &mut self,
        request: &Request<'_>,
        token: Option<&str>,
        hosts: &[String],
    ) -> Option<Route<HubRoute>> {
        if misdirected(request, hosts).is_some() {
            return Some(HubRoute::Admin(AdminRoute::Misdirected).route());
        }
        let route = match request.path() {
            "/admin" | "/admin/" | "/admin/events" => {
                let events = request.path() == "/admin/events";
                match self.presented(request, token, Instant::now()) {
                    Presented::NoTokenSet | Presented::Bearer | Presented::Session if events => {
                        AdminRoute::Events
                    }
                    Presented::NoTokenSet | Presented::Bearer | Presented::Session => AdminRoute::Page,
                    Presented::WrongToken | Presented::Nothing => AdminRoute::Denied,
                }
            }
            "/admin/watch" => match self.presented(request, token, Instant::now()) {
                Presented::NoTokenSet => AdminRoute::Closed,
                Presented::Bearer | Presented::Session
                    if bearer(request).is_none() && actions::from_elsewhere(request) =>
                {
                    return Some(super::routes::Refusal::Origin.route());
                }
                Presented::Bearer | Presented::Session => match request.query_param("topic") {
                    Some(topic) if tether_hub::is_valid_topic(&topic) => AdminRoute::Watch,
                    _ => return Some(super::routes::Refusal::BadTopic.route()),
                },
                Presented::WrongToken | Presented::Nothing => AdminRoute::Denied,
            },
            path if path.starts_with("/admin/api/") => match self.presented(request, token, Instant::now()) {
                Presented::NoTokenSet => AdminRoute::Closed,
                Presented::Bearer | Presented::Session => AdminRoute::Api,
                Presented::WrongToken | Presented::Nothing => AdminRoute::Denied,
            },
            "/admin/login" => AdminRoute::Login,
            "/admin/logout" => AdminRoute::Logout,
            path if path.starts_with("/admin/") => return Some(Route::NotFound),
            _ => return None,
        };
        Some(HubRoute::Admin(route).route())
    }

    /// Who the request is, to the admin routes.
    fn presented(&mut self, request: &Request<'_>, token: Option<&str>, now: Instant) -> Presented {
        let Some(token) = token else {
            return Presented::NoTokenSet;
        };
        if let Some(given) = bearer(request) {
            return if secret_matches(token, given) {
                Presented::Bearer
            } else {
                Presented::WrongToken
            };
        }
        self.forget_stale(Some(token), now);
        match session_cookie(request) {
            Some(id) if self.sessions.contains_key(id) => Presented::Session,
            _ => Presented::Nothing,
        }
    }

    /// The answer to a handler route under `/admin`.
    pub(super) fn answer(
        &mut self,
        route: AdminRoute,
        request: &Request<'_>,
        body: &[u8],
        token: Option<&str>,
    ) -> Response {
        let read_only = matches!(request.method(), "GET" | "HEAD");
        match route {
            AdminRoute::Misdirected => host::misdirected(),
            AdminRoute::Closed => actions::closed(request),
            AdminRoute::Denied if actions::is_action_path(request.path()) => actions::refused(request),
            AdminRoute::Page if read_only => {
                let csrf = self.csrf_of(request, token);
                page(token.is_some(), &csrf)
            }
            AdminRoute::Denied if read_only => {
                use super::routes::{TokenFault, Unauthorized, unauthorized};
                let invalid = bearer(request).is_some();
                let refused = unauthorized(match invalid {
                    true => Unauthorized::Invalid(TokenFault::Unknown),
                    false => Unauthorized::Missing,
                });
                if request.path() == "/admin/events" {
                    refused
                } else {
                    // The sign-in page, with the 401's own fields.
                    let mut page = login_page(401, if invalid { "That token is not the one." } else { "" });
                    page.headers.extend(refused.headers);
                    page
                }
            }
            AdminRoute::Page | AdminRoute::Denied | AdminRoute::Events | AdminRoute::Watch => {
                Response::text(405, "405 Method Not Allowed\n").header("Allow", "GET, HEAD")
            }
            AdminRoute::Login | AdminRoute::Logout if request.method() != "POST" => {
                Response::text(405, "405 Method Not Allowed\n").header("Allow", "POST")
            }
            _ if !same_origin(request) => Response::text(403, "origin not allowed\n"),
            // Served by the server API, after `Admin::action`.
            AdminRoute::Api => {
                crate::api::ApiError::new(500, "internal", "not an admin page route").response()
            }
            AdminRoute::Login => self.login(request, body, token),
            AdminRoute::Logout => {
                if let Some(id) = session_cookie(request) {
                    self.sessions.remove(id);
                }
                see_other("/admin").header(
                    "Set-Cookie",
                    &format!("{COOKIE}=; Max-Age=0; Path=/admin; HttpOnly; SameSite=Strict"),
                )
            }
        }
    }

    /// `POST /admin/login` with the form field `token`: a session, or the
    /// form again.
    fn login(&mut self, request: &Request<'_>, body: &[u8], token: Option<&str>) -> Response {
        let Some(token) = token else {
            // Nothing to sign in to.
            return see_other("/admin");
        };
        let given = form_field(body, "token");
        if !given.as_deref().is_some_and(|given| secret_matches(token, given)) {
            return login_page(401, "That token is not the one.");
        }
        let (Some(id), Some(csrf)) = (random_hex::<16>(), random_hex::<16>()) else {
            return Response::text(500, "no randomness for a session id\n");
        };
        let now = Instant::now();
        self.forget_stale(Some(token), now);
        self.opened_with = Some(token.to_owned());
        while self.sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, session)| session.until)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.sessions.remove(&oldest);
        }
        let until = now + SESSION_TTL;
        self.sessions.insert(id.clone(), Session { until, csrf });
        log::info!("admin: signed in: admin from {}", actions::peer(request));
        let secure = if request.is_secure() { "; Secure" } else { "" };
        see_other("/admin").header(
            "Set-Cookie",
            &format!(
                "{COOKIE}={id}; Max-Age={}; Path=/admin; HttpOnly; SameSite=Strict{secure}",
                SESSION_TTL.as_secs()
            ),
        )
    }

    /// An `/admin/events` stream opened: it gets a snapshot at once, then
    /// one a second.
    pub(super) fn subscribe<P>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        conn: ConnId,
        request: &Request<'_>,
        sources: &Sources<'_>,
        token: Option<&str>,
    ) {
        let session = session_cookie(request)
            .filter(|_| bearer(request).is_none())
            .filter(|id| self.sessions.contains_key(*id))
            .map(str::to_owned);
        if self.last.is_none() {
            self.last = Some(sample(Instant::now(), sources.loops));
        }
        self.streams.push(Stream {
            conn,
            session,
            token: token.map(str::to_owned),
        });
        let snapshot = snapshot(&ctx.stats(), sources, self.rates);
        send(ctx, conn, &snapshot);
    }

    /// An `/admin/events` stream ended.
    pub(super) fn unsubscribe(&mut self, conn: ConnId) {
        self.streams.retain(|s| s.conn != conn);
        if self.streams.is_empty() {
            self.last = None;
        }
    }

    /// Once a second: streams whose session ended are ended, the others
    /// get a snapshot.
    pub(super) fn tick<P>(&mut self, ctx: &mut Ctx<'_, P>, sources: &Sources<'_>, token: Option<&str>) {
        if self.streams.is_empty() && self.watches.is_empty() {
            return;
        }
        let now = Instant::now();
        self.forget_stale(token, now);
        let sessions = &self.sessions;
        let mut still_let_in = |stream: &Stream| {
            let session_ended = stream
                .session
                .as_ref()
                .is_some_and(|id| !sessions.contains_key(id));
            if session_ended || stream.token.as_deref() != token {
                ctx.end_stream(stream.conn);
                false
            } else {
                true
            }
        };
        self.streams.retain(&mut still_let_in);
        // A watch ended here leaves the topic in `on_unsubscribe`.
        self.watches.retain(&mut still_let_in);
        if self.streams.is_empty() {
            return;
        }
        let current = sample(now, sources.loops);
        if let Some(last) = self.last {
            let seconds = current.at.duration_since(last.at).as_secs_f64();
            if seconds > 0.0 {
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
                self.rates = (
                    rate(current.publishes, last.publishes),
                    rate(current.deliveries, last.deliveries),
                );
            }
        }
        self.last = Some(current);
        if self.streams.is_empty() {
            return;
        }
        let snapshot = snapshot(&ctx.stats(), sources, self.rates);
        for stream in &self.streams {
            send(ctx, stream.conn, &snapshot);
        }
    }

    /// Ends the sessions past their time, and all of them if the metrics
    /// token is no longer the one they were opened with.
    fn forget_stale(&mut self, token: Option<&str>, now: Instant) {
        if self.opened_with.as_deref() != token {
            self.sessions.clear();
            self.opened_with = None;
        }
        self.sessions.retain(|_, session| session.until > now);
    }

    /// Whether `conn` is one of the admin page's streams.
    pub(super) fn is_stream(&self, conn: ConnId) -> bool {
        self.streams.iter().any(|s| s.conn == conn)
    }
}

/// The 421 of a request on the admin listener whose `Host` it does not
/// serve (logged), or `None`: `hosts` are the names it serves besides
/// its address and `localhost`.
pub(super) fn misdirected(request: &Request<'_>, hosts: &[String]) -> Option<Response> {
    if host::served(request, hosts) {
        return None;
    }
    let named = request
        .header("host")
        .or_else(|| request.header(":authority"))
        .unwrap_or("");
    log::warn!(
        "admin: refused {} {} for the host {:?}, which the admin listener does not serve \
         (--admin-host names more) from {}",
        request.method(),
        actions::clip(request.path()),
        actions::clip(named),
        actions::peer(request)
    );
    Some(host::misdirected())
}

fn send<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, snapshot: &str) {
    let event = tether_sse::Event::new().event("snapshot").data(snapshot);
    if let Err(e) = ctx.send_event(conn, &event) {
        log::debug!("admin: a snapshot was not sent: {e}");
    }
}

/// The events published (sequenced) and delivered so far, over every loop.
fn sample(at: Instant, loops: &[Arc<HubStats>]) -> Sample {
    Sample {
        at,
        publishes: total(loops, |s| &s.published),
        deliveries: total(loops, |s| &s.sent_websocket)
            + total(loops, |s| &s.sent_event_stream)
            + total(loops, |s| &s.sent_poll),
    }
}

/// One snapshot, as JSON: the counters `/metrics` reads, at this moment,
/// and the rates between the last two readings.
fn snapshot(server: &StatsSnapshot, sources: &Sources<'_>, (publishes, deliveries): (f64, f64)) -> String {
    let loops = sources.loops;
    let (mut topics, mut backlog_events, mut backlog_bytes) = (0u64, 0u64, 0u64);
    for (_, info) in sources.hub.topics() {
        topics += 1;
        backlog_events += info.events as u64;
        backlog_bytes += info.bytes as u64;
    }
    let mut reasons = Map::new();
    let mut denials = 0;
    for denial in Denial::ALL {
        let count = denied(loops, denial);
        denials += count;
        reasons.insert(denial.name().to_owned(), json!(count));
    }
    let sent_ws = total(loops, |s| &s.sent_websocket);
    let sent_sse = total(loops, |s| &s.sent_event_stream);
    let sent_poll = total(loops, |s| &s.sent_poll);
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let round = |rate: f64| (rate * 100.0).round() / 100.0;
    json!({
        "time": unix_ms,
        "connections": {
            "websocket": server.open_websocket,
            "sse": server.open_event_stream,
            "long_poll": total(loops, |s| &s.subscribers_poll),
            "http2": server.open_h2,
            "http": server.open_http,
        },
        "subscribers": {
            "websocket": total(loops, |s| &s.subscribers_websocket),
            "sse": total(loops, |s| &s.subscribers_event_stream),
            "long_poll": total(loops, |s| &s.subscribers_poll),
        },
        "topics": topics,
        "backlog": { "events": backlog_events, "bytes": backlog_bytes },
        "publishes": {
            "ok": total(loops, |s| &s.published),
            "refused": total(loops, |s| &s.publish_refused),
            "duplicate": total(loops, |s| &s.duplicates),
            "per_second": round(publishes),
        },
        "deliveries": {
            "total": sent_ws + sent_sse + sent_poll,
            "websocket": sent_ws,
            "sse": sent_sse,
            "long_poll": sent_poll,
            "per_second": round(deliveries),
        },
        "slow_consumer_cuts": {
            "connections": server.slow_consumers,
            "hub_subscribers": total(loops, |s| &s.slow_consumer_drops),
        },
        "auth_denials": {
            "total": denials,
            "by_reason": reasons,
            "refused_401": total(loops, |s| &s.refused_401),
            "refused_403": total(loops, |s| &s.refused_403),
        },
        "broker": { "kind": sources.broker.kind(), "state": sources.broker.state().as_str() },
        "loops": loops.len(),
    })
    .to_string()
}

/// The security fields of every HTML answer: scripts and styles only
/// those carrying this answer's nonce, connections to this origin only,
/// no image but the empty `data:` icon (which spares the browser a
/// request for `/favicon.ico`), nothing else loaded, forms posted here
/// only, never framed. `Referrer-Policy: same-origin` keeps the page's
/// address from other sites and lets its own form posts carry their
/// `Origin` (with `no-referrer` they would say `null`).
fn secure_html(status: u16, html: String, nonce: &str) -> Response {
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    Response::new(status, "text/html; charset=utf-8", html)
        .header("Content-Security-Policy", &policy)
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "same-origin")
}

/// The page, with a fresh nonce and the CSRF token its actions send;
/// read-only (no action shown) without an admin credential.
fn page(credential_set: bool, csrf: &str) -> Response {
    let Some(nonce) = random_hex::<16>() else {
        return Response::text(500, "no randomness for the page's nonce\n");
    };
    let html = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{AUTH}}", if credential_set { "on" } else { "off" })
        .replace("{{CSRF}}", csrf);
    secure_html(200, html, &nonce)
}

/// The sign-in form (no script), with `message` above it.
fn login_page(status: u16, message: &str) -> Response {
    let Some(nonce) = random_hex::<16>() else {
        return Response::text(500, "no randomness for the page's nonce\n");
    };
    let note = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\">{message}</p>")
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>tether admin: sign in</title><link rel=\"icon\" href=\"data:,\">\
         <style nonce=\"{nonce}\">body{{font:15px system-ui,sans-serif;margin:3em auto;max-width:26em;\
         color:#1d2330}}input{{font:inherit;padding:.4em;width:100%;box-sizing:border-box}}\
         button{{font:inherit;margin-top:.8em;padding:.4em 1.2em}}.error{{color:#b3261e}}</style></head>\
         <body><h1>tether admin</h1>{note}\
         <form method=\"post\" action=\"/admin/login\"><label for=\"token\">Metrics token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>\
         <p>The token is the server's <code>--metrics-token</code>. Signing in sets a session cookie \
         for <code>/admin</code> only.</p></body></html>\n"
    );
    secure_html(status, html, &nonce)
}

fn see_other(location: &str) -> Response {
    Response::empty(303)
        .header("Location", location)
        .header("Cache-Control", "no-store")
}

/// A request from another site's page (its `Origin` is not this host's)
/// may not sign in or out; a request without `Origin` (not a browser's
/// cross-site form) may. An opaque `Origin: null` counts only with
/// `Sec-Fetch-Site: same-origin`, which pages cannot forge.
fn same_origin(request: &Request<'_>) -> bool {
    let Some(origin) = request.header("origin") else {
        return true;
    };
    if origin == "null" {
        return request.header("sec-fetch-site") == Some("same-origin");
    }
    let Some(host) = request.header("host").or_else(|| request.header(":authority")) else {
        return false;
    };
    let scheme = if request.is_secure() { "https" } else { "http" };
    origin.strip_prefix(scheme).and_then(|o| o.strip_prefix("://")) == Some(host)
}

/// The session id in the request's cookie, if there is exactly one.
fn session_cookie<'a>(request: &Request<'a>) -> Option<&'a str> {
    let cookie = request.header("cookie")?;
    let mut found = None;
    for pair in cookie.split(';') {
        if let Some((name, value)) = pair.split_once('=')
            && name.trim() == COOKIE
        {
            if found.is_some() {
                return None;
            }
            found = Some(value.trim());
        }
    }
    found.filter(|id| !id.is_empty())
}

/// `N` random bytes in hex, or `None` without randomness.
fn random_hex<const N: usize>() -> Option<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).ok()?;
    let mut hex = String::with_capacity(2 * N);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    Some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_its_placeholders_and_no_outside_assets() {
        assert!(PAGE.contains("nonce=\"{{NONCE}}\""));
        assert!(PAGE.contains("{{AUTH}}"));
        assert!(PAGE.contains("{{CSRF}}"));
        for outside in ["http://", "https://", "//cdn", "@import", "src=\""] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
    }
}
