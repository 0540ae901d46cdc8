//! What the admin page does, beside showing the counters: the server
//! API's endpoints under `/admin/api/` (`/admin/api/publish` is
//! `/api/publish`, and so on), answered as for the publish token, and
//! `/admin/watch?topic=NAME`, an event stream of a topic's events
//! whatever its subscribe rights.
//!
//! Who may: a session, or the metrics token as a bearer token. With no
//! metrics token set there is no admin credential, and nobody may: the
//! actions answer 403 saying how to set one (the page, read-only then,
//! shows the counters alone). Anyone reaching the listener is not a
//! credential: in a cluster, that is every pod. A browser's
//! request must also come from the page itself: its `Origin` (if any) is
//! this host's, its `Sec-Fetch-Site` (if any) is `same-origin` or `none`,
//! and anything but a read (`GET`, `HEAD`) carries the session's CSRF
//! token in `X-CSRF-Token`, which the page holds and another site's page
//! cannot read. A request with the bearer token needs neither: a browser
//! never adds that header to another site's request. Every action is
//! logged at info level: what, on which topic or subject, by whom
//! (`admin`: there is one admin credential, the metrics token) and from
//! which address; reads at debug level.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tether_hub::secret_matches;
use tether_server::{ConnId, Request, Response};

use super::{Admin, Presented, Stream, same_origin, session_cookie};
use crate::api::{ApiError, ApiRoute, as_json};
use crate::routes::{TokenFault, Unauthorized, bearer, unauthorized};

/// The header a state-changing request carries its CSRF token in.
const CSRF_HEADER: &str = "x-csrf-token";

/// The longest value a log line quotes of a request.
const MAX_LOGGED: usize = 120;

/// The most topics of one request a log line names.
const MAX_LOGGED_TOPICS: usize = 10;

/// Whether `path` is one of the page's actions (answered in JSON).
pub(super) fn is_action_path(path: &str) -> bool {
    path.starts_with("/admin/api/") || path == "/admin/watch"
}

/// The 403 of an action when no admin credential is set, in the API's
/// JSON: nobody may act, and the answer says how to change that.
pub(super) fn closed(request: &Request<'_>) -> Response {
    log::debug!(
        "admin: refused {} (no metrics token is set) from {}",
        clip(request.path()),
        peer(request)
    );
    ApiError::new(
        403,
        "no_admin_credential",
        "the admin page's actions need an admin credential, and none is set: start tether with \
         --metrics-token TOKEN (or TETHER_METRICS_TOKEN), then sign in at /admin or send \
         Authorization: Bearer TOKEN",
    )
    .response()
}

/// The 401 of an action without a credential that does, in the API's
/// JSON.
pub(super) fn refused(request: &Request<'_>) -> Response {
    let why = match bearer(request) {
        Some(_) => Unauthorized::Invalid(TokenFault::Unknown),
        None => Unauthorized::Missing,
    };
    as_json(unauthorized(why))
}

/// The peer's address, for a log line.
pub(super) fn peer(request: &Request<'_>) -> String {
    request
        .peer_addr()
        .map_or_else(|| "an unknown address".to_owned(), |addr| addr.to_string())
}

/// Whether a browser says the request comes from another site: an
/// `Origin` that is not this host's, or a `Sec-Fetch-Site` other than
/// `same-origin` or `none` (typed in, a bookmark).
pub(super) fn from_elsewhere(request: &Request<'_>) -> bool {
    let fetch_site = request.header("sec-fetch-site");
    !same_origin(request) || fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none"))
}

/// How a request to the admin routes is let in, for a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The metrics token in `Authorization`.
    Bearer,
    /// A session's cookie.
    Session,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Bearer => "bearer token",
            Via::Session => "session",
        }
    }
}

impl Admin {
    /// The CSRF token of the page served to this request: its session's,
    /// else none (a bearer token needs none, and with no metrics token
    /// set the page takes no action).
    pub(super) fn csrf_of(&mut self, request: &Request<'_>, token: Option<&str>) -> String {
        if token.is_none() || bearer(request).is_some() {
            return String::new();
        }
        session_cookie(request)
            .and_then(|id| self.sessions.get(id))
            .map(|session| session.csrf.clone())
            .unwrap_or_default()
    }

    /// How the request is let in to act, if it is (never when no
    /// metrics token is set).
    fn via(&mut self, request: &Request<'_>, token: Option<&str>) -> Option<Via> {
        match self.presented(request, token, Instant::now()) {
            Presented::Bearer => Some(Via::Bearer),
            Presented::Session => Some(Via::Session),
            Presented::NoTokenSet | Presented::WrongToken | Presented::Nothing => None,
        }
    }

    /// An `/admin/api/...` request: the server API's endpoint it names,
    /// once the request is let in (its credential, its origin, its CSRF
    /// token) and logged; else the refusal.
    pub(crate) fn action(
        &mut self,
        request: &Request<'_>,
        body: &[u8],
        token: Option<&str>,
    ) -> Result<ApiRoute, Response> {
        let path = request.path();
        let Some(route) = path.strip_prefix("/admin").and_then(ApiRoute::of) else {
            return Err(ApiError::new(404, "not_found", "no such admin endpoint").response());
        };
        // The settings may have lost their token since the request was
        // routed (a reload while its body came).
        if token.is_none() {
            return Err(closed(request));
        }
        let Some(via) = self.via(request, token) else {
            return Err(refused(request));
        };
        let name = path.strip_prefix("/admin/api/").unwrap_or(path);
        let read = matches!(request.method(), "GET" | "HEAD");
        if via != Via::Bearer {
            if from_elsewhere(request) {
                log::warn!(
                    "admin: refused {name} from another site ({:?}) from {}",
                    clip(request.header("origin").unwrap_or("no Origin")),
                    peer(request)
                );
                return Err(ApiError::new(
                    403,
                    "forbidden",
                    "the admin page's actions are taken from the admin page only",
                )
                .response());
            }
            if !read && !self.csrf_matches(request, via) {
                log::warn!(
                    "admin: refused {name} without its CSRF token from {}",
                    peer(request)
                );
                return Err(ApiError::new(
                    403,
                    "csrf",
                    "a missing or wrong X-CSRF-Token: reload the admin page",
                )
                .response());
            }
        }
        let what = summary(request, body);
        if read {
            log::debug!(
                "admin: {name}{what} by admin ({}) from {}",
                via.name(),
                peer(request)
            );
        } else {
            log::info!(
                "admin: {name}{what} by admin ({}) from {}",
                via.name(),
                peer(request)
            );
        }
        Ok(route)
    }

    /// Whether the request carries the CSRF token of what lets it in.
    fn csrf_matches(&self, request: &Request<'_>, via: Via) -> bool {
        let expected = match via {
            Via::Session => session_cookie(request)
                .and_then(|id| self.sessions.get(id))
                .map(|session| session.csrf.as_str()),
            Via::Bearer => return true,
        };
        match (expected, request.header(CSRF_HEADER)) {
            (Some(expected), Some(given)) => !expected.is_empty() && secret_matches(expected, given),
            _ => false,
        }
    }

    /// An `/admin/watch?topic=NAME` stream opened (its route let it in):
    /// the topic it subscribes to, and it ends with what let it in.
    pub(crate) fn watch(
        &mut self,
        conn: ConnId,
        request: &Request<'_>,
        token: Option<&str>,
    ) -> Option<Arc<str>> {
        let topic = request.query_param("topic")?;
        let via = self.via(request, token)?;
        let session = match via {
            Via::Session => session_cookie(request).map(str::to_owned),
            Via::Bearer => None,
        };
        self.watches.push(Stream {
            conn,
            session,
            token: token.map(str::to_owned),
        });
        log::info!(
            "admin: watch topic={:?} by admin ({}) from {}",
            clip(&topic),
            via.name(),
            peer(request)
        );
        Some(Arc::from(topic))
    }

    /// Whether `conn` is a watch stream; it is one no more.
    pub(crate) fn unwatch(&mut self, conn: ConnId) -> bool {
        let before = self.watches.len();
        self.watches.retain(|w| w.conn != conn);
        self.watches.len() != before
    }
}

/// What a request acts on, for its log line: ` topic="a" user="b"`...
/// from its query and its JSON body, each value quoted (escaped) and
/// clipped.
fn summary(request: &Request<'_>, body: &[u8]) -> String {
    let mut out = String::new();
    for key in ["topic", "user"] {
        if let Some(value) = request.query_param(key) {
            out.push_str(&format!(" {key}={:?}", clip(&value)));
        }
    }
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return out;
    };
    let mut topics: Vec<&str> = Vec::new();
    if let Some(Value::Array(items)) = root.get("items") {
        topics.extend(items.iter().filter_map(|item| item.get("topic")?.as_str()));
    }
    if let Some(Value::Array(list)) = root.get("topics") {
        topics.extend(list.iter().filter_map(Value::as_str));
    }
    if let Some(topic) = root.get("topic").and_then(Value::as_str) {
        topics.push(topic);
    }
    if !topics.is_empty() {
        let named: Vec<&str> = topics.iter().take(MAX_LOGGED_TOPICS).copied().map(clip).collect();
        out.push_str(&format!(" topics={named:?}"));
        if topics.len() > MAX_LOGGED_TOPICS {
            out.push_str(&format!(" (+{} more)", topics.len() - MAX_LOGGED_TOPICS));
        }
    }
    for key in ["user", "subject", "jti"] {
        if let Some(value) = root.get(key).and_then(Value::as_str) {
            out.push_str(&format!(" {key}={:?}", clip(value)));
        }
    }
    out
}

/// At most [`MAX_LOGGED`] bytes of `s`, cut at a character's boundary.
pub(super) fn clip(s: &str) -> &str {
    let mut end = s.len().min(MAX_LOGGED);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_at_a_character() {
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_LOGGED);
        assert!(clipped.chars().all(|c| c == 'é'));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn action_paths() {
        assert!(is_action_path("/admin/api/publish"));
        assert!(is_action_path("/admin/watch"));
        assert!(!is_action_path("/admin/events"));
        assert!(!is_action_path("/admin"));
    }
}
