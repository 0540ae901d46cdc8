//! A hook's URL: `http://host[:port]/path`, checked once at start.

use std::fmt;

use crate::error::ConfigError;

/// Where a hook is asked: a plain-HTTP authority and a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
    target: String,
    host_header: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path][?query]`. The host is a name, an
    /// IPv4 address or an IPv6 address in brackets; the port defaults to
    /// 80; the path to `/`. `https://` is refused (the backend link is
    /// plain HTTP, meant for a private network), and so are user
    /// information, fragments and bytes that are not visible ASCII.
    ///
    /// ```
    /// use tether_hooks::Endpoint;
    ///
    /// let e = Endpoint::parse("http://10.0.0.5:8080/tether/connect")?;
    /// assert_eq!((e.host(), e.port(), e.target()), ("10.0.0.5", 8080, "/tether/connect"));
    /// assert!(Endpoint::parse("https://auth.example/hook").is_err());
    /// # Ok::<(), tether_hooks::ConfigError>(())
    /// ```
    pub fn parse(url: &str) -> Result<Endpoint, ConfigError> {
        let bad = |why: &'static str| ConfigError::BadUrl {
            url: url.to_string(),
            why,
        };
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("only visible ASCII characters, no spaces"));
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(bad(
                "https is not supported: the backend is reached over plain http on a private network",
            ));
        }
        let Some(rest) = lower.starts_with("http://").then(|| url.get(7..)).flatten() else {
            return Err(bad("must start with http://"));
        };
        if rest.contains('#') {
            return Err(bad("a fragment (#) has no meaning here"));
        }
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        if authority.contains('@') {
            return Err(bad("user information (user@) is not supported"));
        }
        let (host, port) =
            split_port(authority).ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
        let inner = if bracketed {
            host.get(1..host.len() - 1).unwrap_or_default()
        } else {
            host
        };
        if inner.contains(['[', ']']) || (!bracketed && inner.contains(':')) {
            return Err(bad("an IPv6 address goes in brackets"));
        }
        let host_header = authority.to_string();
        let host = inner.to_string();
        Ok(Endpoint {
            host,
            port,
            target,
            host_header,
        })
    }

    /// The host: a name or an address (IPv6 without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: the path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header's value: the authority as written.
    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// The URL as a log may show it: the value of each query parameter
    /// (where a secret for the backend would be) replaced by `REDACTED`.
    /// (User information is refused by [`Endpoint::parse`].)
    ///
    /// ```
    /// use tether_hooks::Endpoint;
    ///
    /// let e = Endpoint::parse("http://10.0.0.5:8080/hook?key=s3cret&v")?;
    /// assert_eq!(e.redacted(), "http://10.0.0.5:8080/hook?key=REDACTED&v");
    /// # Ok::<(), tether_hooks::ConfigError>(())
    /// ```
    pub fn redacted(&self) -> String {
        let (path, query) = match self.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.target.as_str(), None),
        };
        let mut out = format!("http://{}{path}", self.host_header);
        if let Some(query) = query {
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) => {
                        out.push_str(name);
                        out.push_str("=REDACTED");
                    }
                    None => out.push_str(pair),
                }
            }
        }
        out
    }
}

/// `url` with any user information (`user:password@`) cut out, for an
/// error message about it.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{tail}"),
        None => url.to_owned(),
    }
}

/// `host` and `port` of an authority, 80 if it names none; `None` for a
/// port that is not 1 to 65535.
fn split_port(authority: &str) -> Option<(&str, u16)> {
    let port_at = match authority.rfind(':') {
        // A colon inside brackets belongs to an IPv6 address.
        Some(at) if !authority.get(at..).is_some_and(|tail| tail.contains(']')) => at,
        _ => return Some((authority, 80)),
    };
    let (host, port) = authority.split_at(port_at);
    let digits = port.get(1..)?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = digits.parse().ok()?;
    (port != 0).then_some((host, port))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let e = Endpoint::parse("http://backend/hook").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.target(), e.host_header()),
            ("backend", 80, "/hook", "backend")
        );
        let e = Endpoint::parse("HTTP://[::1]:9000").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.target(), e.host_header()),
            ("::1", 9000, "/", "[::1]:9000")
        );
        let e = Endpoint::parse("http://127.0.0.1:1?a=b").unwrap();
        assert_eq!(e.target(), "/?a=b");
        assert_eq!(e.to_string(), "http://127.0.0.1:1/?a=b");
        let e = Endpoint::parse("http://[::1]/x").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 80));
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("https://x/", "https is not supported"),
            ("ftp://x/", "must start with http://"),
            ("x:80/", "must start with http://"),
            ("http://x:0/", "port"),
            ("http://x:65536/", "port"),
            ("http://x:/", "port"),
            ("http://x:8a/", "port"),
            ("http:///path", "host is empty"),
            ("http://u@x/", "user information"),
            ("http://x/a#b", "fragment"),
            ("http://x/a b", "visible ASCII"),
            ("http://::1/", "brackets"),
            ("http://[::1/", "brackets"),
        ] {
            let err = Endpoint::parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn a_refused_url_is_shown_without_its_credentials() {
        let err = Endpoint::parse("http://admin:s3cret@backend:8080/hook")
            .unwrap_err()
            .to_string();
        assert!(err.contains("user information"), "{err}");
        assert!(err.contains("http://backend:8080/hook"), "{err}");
        assert!(!err.contains("s3cret") && !err.contains("admin"), "{err}");
        assert_eq!(without_userinfo("http://a@b@h/p@q"), "http://h/p@q");
        assert_eq!(without_userinfo("http://h/p?u=a@b"), "http://h/p?u=a@b");
        assert_eq!(without_userinfo("not a url"), "not a url");
    }

    #[test]
    fn a_shown_url_has_no_query_values() {
        let e = Endpoint::parse("http://[::1]:9000?token=abc&x=1&flag").unwrap();
        assert_eq!(e.redacted(), "http://[::1]:9000/?token=REDACTED&x=REDACTED&flag");
        let e = Endpoint::parse("http://backend/hook").unwrap();
        assert_eq!(e.redacted(), "http://backend/hook");
    }
}
