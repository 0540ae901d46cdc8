//! The few URLs a client needs: `ws://` and `http://` (and their secure
//! twins, recognised only to be refused clearly), parsed into what goes on
//! the wire.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::Error;

/// A URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ws:`, WebSocket over TCP (default port 80).
    Ws,
    /// `wss:`, WebSocket over TLS (default port 443). Parsed, but not
    /// supported by this crate's clients.
    Wss,
    /// `http:` (default port 80), for event streams.
    Http,
    /// `https:` (default port 443). Parsed, but not supported by this
    /// crate's clients.
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

    /// Whether the scheme needs TLS (which this crate does not do).
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
/// use tether_client::{Scheme, Url};
///
/// let url = Url::parse("ws://Example.com:9001/chat?room=1")?;
/// assert_eq!(url.scheme(), Scheme::Ws);
/// assert_eq!(url.host(), "example.com");
/// assert_eq!(url.port(), 9001);
/// assert_eq!(url.target(), "/chat?room=1");
/// assert_eq!(url.host_header(), "example.com:9001");
/// assert_eq!(Url::parse("http://[::1]/")?.host_header(), "[::1]");
/// # Ok::<(), tether_client::Error>(())
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

    /// Resolves `reference` (for example a redirect's `Location`) against
    /// this URL: absolute, scheme-relative (`//host/path`), absolute-path
    /// (`/path`), query-only (`?q`) or relative-path (`a/b`, with `.` and
    /// `..` segments) references. The fragment of this URL is not carried
    /// over.
    ///
    /// ```
    /// use tether_client::Url;
    /// let base = Url::parse("http://example.com/a/b?x=1")?;
    /// assert_eq!(base.join("/c")?.to_string(), "http://example.com/c");
    /// assert_eq!(base.join("c?y")?.to_string(), "http://example.com/a/c?y");
    /// assert_eq!(base.join("../d")?.to_string(), "http://example.com/d");
    /// assert_eq!(base.join("//other:81/e")?.to_string(), "http://other:81/e");
    /// assert_eq!(base.join("http://third/")?.to_string(), "http://third/");
    /// # Ok::<(), tether_client::Error>(())
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

    /// The addresses the host resolves to (a DNS lookup unless the host is
    /// an IP address), for connecting a socket yourself.
    pub fn socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port).to_socket_addrs().map(Iterator::collect)
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

/// The message for a scheme the client cannot use.
pub(crate) fn unsupported_scheme(url: &Url, client: &str) -> Error {
    let what = match (url.scheme(), client) {
        (Scheme::Wss | Scheme::Https, _) if !cfg!(feature = "tls") => format!(
            "{}: URLs need TLS: build tether-client with its `tls` feature, or connect to a \
             ws:// or http:// endpoint",
            url.scheme().as_str()
        ),
        (scheme, client) => format!(
            "the {client} client cannot use {}: URLs (expected {})",
            scheme.as_str(),
            if client == "WebSocket" {
                "ws:// or wss://"
            } else {
                "http:// or https://"
            }
        ),
    };
    Error::UnsupportedScheme(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (Scheme, String, u16, String) {
        let u = Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (u.scheme, u.host, u.port, u.target)
    }

    #[test]
    fn parses_the_usual_forms() {
        let cases: &[(&str, Scheme, &str, u16, &str)] = &[
            (
                "ws://host:9001/path?query",
                Scheme::Ws,
                "host",
                9001,
                "/path?query",
            ),
            ("ws://host", Scheme::Ws, "host", 80, "/"),
            ("ws://host/", Scheme::Ws, "host", 80, "/"),
            ("ws://host?x=1", Scheme::Ws, "host", 80, "/?x=1"),
            ("ws://host:/a", Scheme::Ws, "host", 80, "/a"),
            (
                "WS://HoSt.Example:8080/A/b",
                Scheme::Ws,
                "host.example",
                8080,
                "/A/b",
            ),
            ("wss://secure.example/x", Scheme::Wss, "secure.example", 443, "/x"),
            (
                "http://127.0.0.1:3000/clock",
                Scheme::Http,
                "127.0.0.1",
                3000,
                "/clock",
            ),
            ("https://h/", Scheme::Https, "h", 443, "/"),
            ("ws://[::1]:9001/", Scheme::Ws, "[::1]", 9001, "/"),
            ("ws://[FE80::1]/", Scheme::Ws, "[fe80::1]", 80, "/"),
            ("  ws://h/trimmed \n", Scheme::Ws, "h", 80, "/trimmed"),
            ("ws://h/a b/é", Scheme::Ws, "h", 80, "/a%20b/%C3%A9"),
            (
                "ws://h/already%20encoded",
                Scheme::Ws,
                "h",
                80,
                "/already%20encoded",
            ),
            ("http://h/p?q=1#frag", Scheme::Http, "h", 80, "/p?q=1"),
        ];
        for &(url, scheme, host, port, target) in cases {
            assert_eq!(
                parts(url),
                (scheme, host.to_owned(), port, target.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn host_header_names_the_port_only_when_not_default() {
        let cases = [
            ("ws://h/", "h"),
            ("ws://h:80/", "h"),
            ("ws://h:81/", "h:81"),
            ("wss://h:443/", "h"),
            ("http://[::1]:8080/", "[::1]:8080"),
        ];
        for (url, want) in cases {
            assert_eq!(Url::parse(url).unwrap().host_header(), want, "{url}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let cases = [
            ("", "no scheme"),
            ("example.com/chat", "no scheme"),
            ("ftp://h/", "unknown scheme"),
            ("ws:h/", "expected //"),
            ("ws:///path", "no host"),
            ("ws://:9001/", "no host"),
            ("ws://user:pw@h/", "credentials"),
            ("ws://h:99999/", "from 1 to 65535"),
            ("ws://h:0/", "from 1 to 65535"),
            ("ws://h:12a/", "not a number"),
            ("ws://[::1/", "unclosed"),
            ("ws://[nope]/", "invalid IPv6"),
            ("ws://[::1]x/", "junk after"),
            ("ws://h st/", "cannot have"),
        ];
        for (url, want) in cases {
            match Url::parse(url) {
                Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains(want), "{url}: {reason}"),
                other => panic!("{url}: expected an invalid URL error, got {other:?}"),
            }
        }
    }

    #[test]
    fn keeps_the_fragment_apart() {
        let url = Url::parse("ws://h/p#top").unwrap();
        assert_eq!(url.fragment(), Some("top"));
        assert_eq!(url.target(), "/p");
        assert_eq!(url.to_string(), "ws://h/p#top");
    }

    #[test]
    fn joins_references() {
        let base = Url::parse("http://h:8080/a/b/c?q#f").unwrap();
        let cases = [
            ("https://other/x", "https://other/x"),
            ("//other/x", "http://other/x"),
            ("/x?y", "http://h:8080/x?y"),
            ("?z", "http://h:8080/a/b/c?z"),
            ("d", "http://h:8080/a/b/d"),
            ("./d", "http://h:8080/a/b/d"),
            ("../d", "http://h:8080/a/d"),
            ("../../../../d", "http://h:8080/d"),
            (".", "http://h:8080/a/b/"),
            ("..", "http://h:8080/a/"),
            ("", "http://h:8080/a/b/c?q"),
            ("d#frag", "http://h:8080/a/b/d"),
        ];
        for (reference, want) in cases {
            assert_eq!(base.join(reference).unwrap().to_string(), want, "{reference}");
        }
    }

    #[test]
    fn resolves_ip_literals() {
        let v4 = Url::parse("ws://127.0.0.1:9/").unwrap().socket_addrs().unwrap();
        assert_eq!(v4, vec!["127.0.0.1:9".parse().unwrap()]);
        let v6 = Url::parse("ws://[::1]:9/").unwrap().socket_addrs().unwrap();
        assert_eq!(v6, vec!["[::1]:9".parse().unwrap()]);
    }
}
