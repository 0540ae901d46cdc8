//! The URLs a client takes: `ws://`, `wss://`, `http://` and `https://`,
//! parsed into what goes on the wire, and references (a redirect's
//! `Location`) resolved against them.

use std::fmt;

use crate::Error;

/// A URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ws:`, WebSocket over TCP (default port 80).
    Ws,
    /// `wss:`, WebSocket over TLS (default port 443).
    Wss,
    /// `http:` (default port 80), for event streams.
    Http,
    /// `https:` (default port 443), for event streams over TLS.
    Https,
}

impl Scheme {
    /// The scheme's name, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Ws | Scheme::Http => 80,
            Scheme::Wss | Scheme::Https => 443,
        }
    }

    /// Whether the scheme needs TLS.
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Wss | Scheme::Https)
    }

    fn parse(name: &str) -> Option<Scheme> {
        [Scheme::Ws, Scheme::Wss, Scheme::Http, Scheme::Https]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// A parsed `ws://`, `wss://`, `http://` or `https://` URL.
///
/// Parsing follows the parts of the WHATWG URL standard that matter for
/// these schemes: the scheme and host are case-insensitive (and
/// lowercased), the port defaults to the scheme's, an empty path is `/`,
/// bytes that may not appear in a request target (spaces, non-ASCII) are
/// percent-encoded, and `user:password@` is refused rather than silently
/// dropped. The fragment is kept apart: a WebSocket URL may not have one
/// (RFC 6455 section 3), an event-stream URL ignores it.
///
/// ```
/// use tether_client_core::url::{Scheme, Url};
///
/// let url = Url::parse("ws://Example.com:9001/chat?room=1")?;
/// assert_eq!(url.scheme(), Scheme::Ws);
/// assert_eq!(url.host(), "example.com");
/// assert_eq!(url.port(), 9001);
/// assert_eq!(url.target(), "/chat?room=1");
/// assert_eq!(url.host_header(), "example.com:9001");
/// assert_eq!(Url::parse("http://[::1]/")?.host_header(), "[::1]");
/// # Ok::<(), tether_client_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    /// Lowercased; an IPv6 address keeps its brackets.
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
    fragment: Option<String>,
}

impl Url {
    /// Parses an absolute URL.
    pub fn parse(input: &str) -> Result<Url, Error> {
        let bad = |reason: &'static str| Error::InvalidUrl {
            url: input.to_owned(),
            reason,
        };
        let trimmed = input.trim_matches(|c: char| c <= ' ');
        let (scheme, rest) = trimmed
            .split_once(':')
            .ok_or_else(|| bad("no scheme (expected ws://, http:// ...)"))?;
        let scheme =
            Scheme::parse(scheme).ok_or_else(|| bad("unknown scheme (expected ws, wss, http or https)"))?;
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| bad("expected // after the scheme"))?;
        let (rest, fragment) = match rest.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (rest, None),
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p,
        };
        let mut target = String::with_capacity(path_and_query.len() + 1);
        if !path_and_query.starts_with('/') {
            target.push('/');
        }
        percent_encode_into(path_and_query, &mut target);
        Ok(Url {
            scheme,
            host,
            port,
            target,
            fragment: fragment.map(|f| {
                let mut out = String::new();
                percent_encode_into(f, &mut out);
                out
            }),
        })
    }

    /// Parses a WebSocket URL: `ws:` or `wss:`, and no fragment (RFC 6455
    /// section 3 forbids one).
    pub fn parse_websocket(input: &str) -> Result<Url, Error> {
        let url = Url::parse(input)?.require(&[Scheme::Ws, Scheme::Wss], "ws:// or wss://")?;
        if url.fragment.is_some() {
            return Err(Error::InvalidUrl {
                url: input.to_owned(),
                reason: "a WebSocket URL may not have a fragment (RFC 6455 section 3)",
            });
        }
        Ok(url)
    }

    /// Parses an event-stream URL: `http:` or `https:` (a fragment is kept
    /// apart and not sent).
    pub fn parse_event_stream(input: &str) -> Result<Url, Error> {
        Url::parse(input)?.require(&[Scheme::Http, Scheme::Https], "http:// or https://")
    }

    /// Resolves `reference` (for example a redirect's `Location`) against
    /// this URL: absolute, scheme-relative (`//host/path`), absolute-path
    /// (`/path`), query-only (`?q`) or relative-path (`a/b`, with `.` and
    /// `..` segments) references. The fragment of this URL is not carried
    /// over.
    ///
    /// ```
    /// use tether_client_core::url::Url;
    /// let base = Url::parse("http://example.com/a/b?x=1")?;
    /// assert_eq!(base.join("/c")?.to_string(), "http://example.com/c");
    /// assert_eq!(base.join("c?y")?.to_string(), "http://example.com/a/c?y");
    /// assert_eq!(base.join("../d")?.to_string(), "http://example.com/d");
    /// assert_eq!(base.join("//other:81/e")?.to_string(), "http://other:81/e");
    /// assert_eq!(base.join("http://third/")?.to_string(), "http://third/");
    /// # Ok::<(), tether_client_core::Error>(())
    /// ```
    pub fn join(&self, reference: &str) -> Result<Url, Error> {
        let reference = reference.trim_matches(|c: char| c <= ' ');
        if let Some((scheme, _)) = reference.split_once(':') {
            let is_scheme = !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme {
                return Url::parse(reference);
            }
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme.as_str()));
        }
        let origin = format!("{}://{}", self.scheme.as_str(), self.host_header());
        let reference = reference.split('#').next().unwrap_or_default();
        if reference.starts_with('/') {
            return Url::parse(&format!("{origin}{reference}"));
        }
        let base_path = self.path();
        if reference.is_empty() {
            return Url::parse(&format!("{origin}{}", self.target));
        }
        if reference.starts_with('?') {
            return Url::parse(&format!("{origin}{base_path}{reference}"));
        }
        let (ref_path, query) = match reference.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (reference, None),
        };
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        let merged = format!("{dir}{ref_path}");
        let mut segments: Vec<&str> = Vec::new();
        let parts: Vec<&str> = merged.split('/').skip(1).collect();
        for (i, segment) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match *segment {
                "." => {
                    if last {
                        segments.push("");
                    }
                }
                ".." => {
                    segments.pop();
                    if last {
                        segments.push("");
                    }
                }
                s => segments.push(s),
            }
        }
        let mut path = String::from("/");
        path.push_str(&segments.join("/"));
        if let Some(q) = query {
            path.push('?');
            path.push_str(q);
        }
        Url::parse(&format!("{origin}{path}"))
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, lowercased; an IPv6 address is in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query, starting with `/`,
    /// percent-encoded where needed.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path alone (the target without its query).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The query, without the `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The fragment, without the `#`, if there is one.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// The `Host` header's value: the host, with the port when it is not
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host as a socket address or a TLS server name takes it: an
    /// IPv6 address without its brackets.
    pub fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Whether `other` has the same origin: scheme, host and port.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// This URL if its scheme is one of `schemes`; else
    /// [`Error::UnsupportedScheme`], naming what would do (`expected`, for
    /// the message: `"ws:// or wss://"`).
    pub fn require(self, schemes: &[Scheme], expected: &'static str) -> Result<Url, Error> {
        if schemes.contains(&self.scheme) {
            Ok(self)
        } else {
            Err(Error::UnsupportedScheme {
                url: self.to_string(),
                expected,
            })
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.host_header(),
            self.target
        )?;
        if let Some(fragment) = &self.fragment {
            write!(f, "#{fragment}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Url {
    type Err = Error;
    fn from_str(s: &str) -> Result<Url, Error> {
        Url::parse(s)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed [ in the host")?;
        let address = &rest[..end];
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address");
        }
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
        };
        (format!("[{}]", address.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("the host has characters a host name cannot have");
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => {
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the port is not a number");
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err("the port must be from 1 to 65535"),
                Ok(n) => Some(n),
            }
        }
    };
    Ok((host, port))
}

/// Appends `s`, percent-encoding every byte that is not visible ASCII (and
/// keeping existing `%XX` escapes as they are).
fn percent_encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
