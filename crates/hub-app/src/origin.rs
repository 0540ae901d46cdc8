//! Which browser origins may use the hub, and when a credential that came
//! in a cookie counts.
//!
//! The threat is a page of another site that the user's browser visits:
//! the browser attaches the hub's cookies to the WebSocket upgrades,
//! event streams and form posts that page makes (cross-site WebSocket
//! hijacking and request forgery), and tells which page made them only in
//! `Origin`. So a cookie credential is honoured only from the server's own
//! origin or a trusted one; a request without `Origin` is not from a
//! browser's cross-origin request (browsers send it on every WebSocket
//! upgrade, every CORS request and every POST), and keeps its cookie,
//! unless `Sec-Fetch-Site` says another site made it.

use tether_server::{Request, Response};

/// An origin's parts: scheme, host (lower-cased; an IPv6 literal keeps
/// its brackets) and port (the scheme's default when none is written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
    https: bool,
    host: String,
    port: u16,
}

/// `scheme://host[:port]` as browsers write `Origin`; `None` for anything
/// else (`null`, a path, a port that is not a number).
fn parse_origin(origin: &str) -> Option<Parts> {
    let origin = origin.trim();
    let (https, authority) = if let Some(rest) = strip_prefix_ignore_case(origin, "https://") {
        (true, rest)
    } else {
        (false, strip_prefix_ignore_case(origin, "http://")?)
    };
    parse_authority(authority, https)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// `host[:port]` (a `Host` header, `:authority`, or an origin's tail).
fn parse_authority(authority: &str, https: bool) -> Option<Parts> {
    let authority = authority.trim();
    // An IPv6 literal keeps its brackets; the port is what follows it.
    let end = if authority.starts_with('[') {
        authority.find(']')?.checked_add(1)?
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, port) = authority.split_at_checked(end)?;
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let port = match port {
        "" => {
            if https {
                443
            } else {
                80
            }
        }
        port => {
            let digits = port.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    Some(Parts {
        https,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Whether the request's scheme is `https`: `X-Forwarded-Proto` where a
/// proxy that ends TLS says so, else the connection's own. A page cannot
/// make a browser send that header on a WebSocket, an `EventSource` or a
/// form post, so it cannot pass a foreign origin off as this one by it.
fn request_is_https(request: &Request<'_>) -> bool {
    match request.header("x-forwarded-proto") {
        Some(proto) => proto
            .split(',')
            .next()
            .is_some_and(|first| first.trim().eq_ignore_ascii_case("https")),
        None => request.is_secure(),
    }
}

/// Whether `origin` is the server's own as this request reached it: the
/// same scheme, host and port as the request (its `Host`, or HTTP/2's
/// `:authority`).
pub(crate) fn is_own_origin(request: &Request<'_>, origin: &str) -> bool {
    let Some(origin) = parse_origin(origin) else {
        return false;
    };
    let https = request_is_https(request);
    request
        .header("host")
        .and_then(|host| parse_authority(host, https))
        .is_some_and(|own| own == origin)
}

/// Whether `origin`'s host and port are those of `host` (a `Host`
/// header), the scheme taken from the origin: what an upgrade's policy,
/// which does not know the connection's scheme, can check.
pub(crate) fn names_host(origin: &str, host: &str) -> bool {
    parse_origin(origin)
        .is_some_and(|origin| parse_authority(host, origin.https).is_some_and(|own| own == origin))
}

/// The hub's origin policy, for the routes an embedding application
/// serves beside the hub (a sign-in, say): which origins it trusts, which
/// is the server's own, and the CORS fields an answer carries. From
/// [`HubSettings::origins`](crate::HubSettings::origins).
///
/// ```
/// use tether_hub_app::HubSettings;
///
/// let mut settings = HubSettings::default();
/// settings.trusted_origins = vec!["https://app.example.com".into()];
/// let origins = settings.origins();
/// assert!(origins.is_trusted("https://app.example.com"));
/// assert!(!origins.is_trusted("https://elsewhere.example"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Origins<'s> {
    trusted: &'s [String],
}

impl<'s> Origins<'s> {
    pub(crate) fn new(trusted: &'s [String]) -> Origins<'s> {
        Origins { trusted }
    }

    /// Whether `origin` is one of the trusted origins (a trailing `/` and
    /// the case do not matter; `*` is never one).
    pub fn is_trusted(&self, origin: &str) -> bool {
        is_trusted(self.trusted, origin)
    }

    /// Whether `request` comes from the server's own origin or a trusted
    /// one, or names none (not a browser's cross-origin request): what a
    /// route that acts for the user (a sign-in) lets in.
    pub fn allows(&self, request: &Request<'_>) -> bool {
        request
            .header("origin")
            .is_none_or(|origin| self.is_trusted(origin) || is_own_origin(request, origin))
    }

    /// The request's `Origin`, if it is a trusted one.
    pub fn trusted_origin<'r>(&self, request: &Request<'r>) -> Option<&'r str> {
        request.header("origin").filter(|origin| self.is_trusted(origin))
    }

    /// `response` with the CORS fields of an answer to `request`: `Vary:
    /// Origin` whenever an origin is trusted, and for a trusted one
    /// `Access-Control-Allow-Origin` and `-Allow-Credentials`.
    pub fn with_cors(&self, request: &Request<'_>, response: Response) -> Response {
        self.with_fields(response, self.trusted_origin(request))
    }

    /// `response` with the CORS fields for `origin` (a trusted one, or
    /// none).
    pub(crate) fn with_fields(&self, response: Response, origin: Option<&str>) -> Response {
        if self.trusted.is_empty() {
            return response;
        }
        let response = response.header("Vary", "Origin");
        match origin {
            Some(origin) => response
                .header("Access-Control-Allow-Origin", origin)
                .header("Access-Control-Allow-Credentials", "true"),
            None => response,
        }
    }
}

/// Whether a browser page of `origin` may use the hub: any when no origin
/// is trusted, else the server's own and the trusted ones.
pub(crate) fn origin_ok(trusted: &[String], request: &Request<'_>) -> bool {
    request.header("origin").is_none_or(|origin| {
        trusted.is_empty() || is_trusted(trusted, origin) || is_own_origin(request, origin)
    })
}

/// Whether `origin` is one of the `trusted` origins (as the settings
/// write them: a trailing `/` and the case do not matter; `*` is never
/// one).
pub(crate) fn is_trusted(trusted: &[String], origin: &str) -> bool {
    origin != "*"
        && trusted.iter().any(|allowed| {
            allowed != "*" && allowed.trim_end_matches('/').eq_ignore_ascii_case(origin.trim())
        })
}

/// Whether a credential read from a cookie may be used for this request:
/// its `Origin` is the server's own or a trusted one, or it has none and
/// `Sec-Fetch-Site` (when the browser sends it) does not name another
/// site. `Sec-Fetch-Site` is a second opinion, never the only one: a
/// request claiming this origin that the browser says another site made is
/// refused too.
pub(crate) fn cookie_ok(trusted: &[String], request: &Request<'_>) -> bool {
    let other_site = request
        .header("sec-fetch-site")
        .map(str::trim)
        .is_some_and(|site| {
            site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
        });
    match request.header("origin") {
        Some(origin) if is_own_origin(request, origin) => !other_site,
        Some(origin) => is_trusted(trusted, origin),
        None => !other_site,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn origins_parse_to_their_parts() {
        let parts = |https, host: &str, port| {
            Some(Parts {
                https,
                host: host.into(),
                port,
            })
        };
        assert_eq!(
            parse_origin("https://App.Example.com"),
            parts(true, "app.example.com", 443)
        );
        assert_eq!(parse_origin("http://a.b"), parts(false, "a.b", 80));
        assert_eq!(parse_origin("HTTP://a.b:8080"), parts(false, "a.b", 8080));
        assert_eq!(parse_origin("http://[::1]:9"), parts(false, "[::1]", 9));
        assert_eq!(parse_origin("https://[::1]"), parts(true, "[::1]", 443));
        for bad in [
            "null",
            "",
            "ftp://a.b",
            "https://",
            "https://a.b:",
            "https://a.b:x",
            "https://a.b:99999",
            "https://a.b/path",
            "https://u@a.b",
            "https://[::1",
            "https://a.b:+1",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Nothing panics on any text.
        #[test]
        fn any_text_is_judged(text in ".{0,40}") {
            let _ = parse_origin(&text);
            let _ = parse_authority(&text, true);
        }
    }
}
