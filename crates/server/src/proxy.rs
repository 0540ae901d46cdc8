//! Trusted proxies ([`Config::trusted_proxies`](crate::Config::trusted_proxies)):
//! when the TCP peer is a proxy the operator named, the client's address
//! is taken from what that proxy says, `Forwarded` (RFC 7239) or else
//! `X-Forwarded-For`; from any other peer those headers are ignored, as
//! anyone can send them.
//!
//! The headers are read from the right: each proxy appends the address it
//! saw, so the rightmost hop that is not itself a trusted proxy is the
//! first address no trusted party vouches beyond. A hop that is not an
//! address (`unknown`, an obfuscated `_name`, garbage), or too many hops,
//! and the TCP peer stands: a header that cannot be read gives nothing.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The most hops read from the right of a header before giving up (the
/// TCP peer then stands). More proxies than this in a row, all trusted,
/// is not a deployment but a forged header.
pub const MAX_HOPS: usize = 16;

/// A network: an address and a prefix length (`10.0.0.0/8`,
/// `fd00::/8`; a bare address is the network of that address alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A network that does not read (the text says why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError(format!("{s:?} is not an IP address or ADDRESS/PREFIX")))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(CidrError(format!("{s:?}: the prefix length must be 0 to {max}"))),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address
    /// counts as the IPv4 address it maps).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`: a dual-stack socket shows IPv4 peers so.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `Forwarded` and `X-Forwarded-For` headers are
/// believed. Empty (the default), none is: the client is the TCP peer.
///
/// ```
/// use tether_server::{Config, TrustedProxies};
///
/// let mut config = Config::new("127.0.0.1:0".parse().unwrap());
/// config.trusted_proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse()?, "fd00::/8".parse()?]);
/// # Ok::<(), tether_server::CidrError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// The proxies in these networks.
    pub fn new(networks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks.
    pub fn networks(&self) -> &[Cidr] {
        &self.0
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client a request from `peer` with `headers` comes from: `peer`
    /// unless it is a trusted proxy; then the rightmost hop of its
    /// `Forwarded` header (or, without one, of `X-Forwarded-For`) that is
    /// not a trusted proxy, with the port the header gives (0 if none).
    /// Anything unreadable on the way, and it is `peer`.
    pub(crate) fn client(
        &self,
        peer: Option<SocketAddr>,
        headers: &[httparse::Header<'_>],
    ) -> Option<SocketAddr> {
        let Some(tcp) = peer else {
            return peer;
        };
        if !self.trusts(tcp.ip()) {
            return peer;
        }
        let hops = match joined(headers, "forwarded") {
            Some(value) => forwarded_hops(&value),
            None => match joined(headers, "x-forwarded-for") {
                Some(value) => Some(xff_hops(&value)),
                None => return peer,
            },
        };
        let Some(Hops { rightmost, total }) = hops else {
            return peer;
        };
        let mut last = None;
        for hop in rightmost {
            let Some(addr) = hop else {
                return peer;
            };
            if !self.trusts(addr.ip()) {
                return Some(addr);
            }
            last = Some(addr);
        }
        // Every hop read is a trusted proxy: the leftmost, if that was
        // the header's start.
        match last {
            Some(addr) if total <= MAX_HOPS => Some(addr),
            _ => peer,
        }
    }
}

/// Every line of the header `name`, joined with commas as one list (RFC
/// 9110 section 5.3); `None` without one, or if one is not UTF-8.
fn joined(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        let value = std::str::from_utf8(header.value).ok()?;
        match &mut out {
            Some(out) => {
                out.push(',');
                out.push_str(value);
            }
            None => out = Some(value.to_owned()),
        }
    }
    out
}

/// The hops of a header, each an address or `None` when it is not one.
struct Hops {
    /// The rightmost [`MAX_HOPS`] at most, from the right.
    rightmost: Vec<Option<SocketAddr>>,
    /// How many the header has.
    total: usize,
}

/// The hops of `X-Forwarded-For`: addresses separated by commas, maybe
/// with a port, maybe an IPv6 one in brackets.
fn xff_hops(value: &str) -> Hops {
    Hops {
        rightmost: value
            .rsplit(',')
            .take(MAX_HOPS)
            .map(|hop| node(hop.trim()))
            .collect(),
        total: value.split(',').count(),
    }
}

/// The `for=` of each element of `Forwarded` (RFC 7239 section 4):
/// elements separated by commas, pairs by semicolons, a value a token or
/// a quoted string; an element without `for` is a hop that is not known.
/// `None` if the header does not parse.
fn forwarded_hops(value: &str) -> Option<Hops> {
    let (elements, total) = split_outside_quotes(value, b',', MAX_HOPS)?;
    let mut rightmost = Vec::with_capacity(elements.len());
    for element in elements.into_iter().rev() {
        let mut hop = None;
        let (pairs, _) = split_outside_quotes(element, b';', usize::MAX)?;
        for pair in pairs {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("for") {
                hop = node(&unquoted(value.trim())?);
            }
        }
        rightmost.push(hop);
    }
    Some(Hops { rightmost, total })
}

/// The last `keep` parts of `s` cut at each `sep` outside a quoted
/// string (in order), and how many parts there are; `None` if a quote is
/// left open. Only the kept parts are held, however long `s` is.
fn split_outside_quotes(s: &str, sep: u8, keep: usize) -> Option<(VecDeque<&str>, usize)> {
    let mut parts = VecDeque::new();
    let mut total = 0;
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in s.as_bytes().iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b if b == sep && !quoted => {
                keep_last(&mut parts, s.get(start..i)?, keep);
                total += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    keep_last(&mut parts, s.get(start..)?, keep);
    Some((parts, total + 1))
}

/// Pushes `part`, dropping the oldest past `keep`.
fn keep_last<'s>(parts: &mut VecDeque<&'s str>, part: &'s str, keep: usize) {
    if parts.len() == keep {
        parts.pop_front();
    }
    parts.push_back(part);
}

/// A token as it is, a quoted string without its quotes and escapes.
fn unquoted(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// A node (RFC 7239 section 6): `1.2.3.4`, `1.2.3.4:80`, `[::1]`,
/// `[::1]:80`, or a bare IPv6 address as `X-Forwarded-For` writes it.
/// `unknown`, an obfuscated name or port (`_x`), and anything else: `None`.
fn node(s: &str) -> Option<SocketAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        let port = match after {
            "" => 0,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some(SocketAddr::new(canonical(IpAddr::V6(ip)), port));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(canonical(ip), 0));
    }
    let (ip, port) = s.rsplit_once(':')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(ip), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn client(p: &TrustedProxies, peer: &str, headers: &[(&str, &str)]) -> String {
        let headers: Vec<httparse::Header<'_>> = headers
            .iter()
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        p.client(Some(peer.parse().unwrap()), &headers)
            .unwrap()
            .to_string()
    }

    #[test]
    fn networks_read_and_contain() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/+8",
            "",
            "/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_never_replaced() {
        let p = proxies(&["10.0.0.0/8"]);
        let headers = [
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=198.51.100.1"),
        ];
        assert_eq!(client(&p, "192.0.2.1:4000", &headers), "192.0.2.1:4000");
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "10.0.0.1:4000", &headers), "10.0.0.1:4000");
    }

    #[test]
    fn x_forwarded_for_gives_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.0/8"]);
        let peer = "127.0.0.1:4000";
        let xff = |v| client(&p, peer, &[("x-forwarded-for", v)]);
        assert_eq!(xff("203.0.113.9"), "203.0.113.9:0");
        // A client that sends its own header: what it wrote is left of
        // what the proxy appended, and not believed.
        assert_eq!(xff("6.6.6.6, 203.0.113.9, 10.0.0.2"), "203.0.113.9:0");
        assert_eq!(xff(" 2001:db8::1 "), "[2001:db8::1]:0");
        assert_eq!(xff("[2001:db8::1]:8443"), "[2001:db8::1]:8443");
        assert_eq!(xff("203.0.113.9:51000"), "203.0.113.9:51000");
        // Two header lines are one list.
        assert_eq!(
            client(
                &p,
                peer,
                &[
                    ("X-Forwarded-For", "203.0.113.9"),
                    ("X-Forwarded-For", "10.0.0.3")
                ]
            ),
            "203.0.113.9:0"
        );
        // Every hop trusted: the leftmost.
        assert_eq!(xff("10.0.0.9, 10.0.0.3"), "10.0.0.9:0");
        // Unreadable on the way: the TCP peer.
        for bad in [
            "",
            "unknown",
            "203.0.113.9, garbage",
            "300.1.1.1",
            "[::1",
            "1.2.3.4:99999",
            "::ffff:zz",
        ] {
            assert_eq!(xff(bad), peer, "{bad:?}");
        }
        // Garbage left of the hop that decides is never read.
        assert_eq!(xff("garbage, 203.0.113.9"), "203.0.113.9:0");
    }

    #[test]
    fn forwarded_gives_the_for_of_the_rightmost_untrusted_element() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = "10.9.9.9:1";
        let fwd = |v| client(&p, peer, &[("Forwarded", v)]);
        // RFC 7239's own examples.
        assert_eq!(fwd("for=\"_gazonk\""), peer);
        assert_eq!(
            fwd("For=\"[2001:db8:cafe::17]:4711\""),
            "[2001:db8:cafe::17]:4711"
        );
        assert_eq!(fwd("for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60:0");
        assert_eq!(fwd("for=192.0.2.43, for=198.51.100.17"), "198.51.100.17:0");
        assert_eq!(
            fwd("for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.0.0.2"),
            "198.51.100.17:0"
        );
        assert_eq!(fwd("for=unknown"), peer);
        assert_eq!(fwd("for=\"192.0.2.43:_port\""), peer);
        // Forwarded wins over X-Forwarded-For.
        assert_eq!(
            client(
                &p,
                peer,
                &[("X-Forwarded-For", "6.6.6.6"), ("forwarded", "for=192.0.2.1")]
            ),
            "192.0.2.1:0"
        );
        // A comma or semicolon inside quotes is not a separator.
        assert_eq!(fwd("for=\"192.0.2.1\";x=\"a,b;c\""), "192.0.2.1:0");
        assert_eq!(fwd("for=\"192.0.\\2.1\""), "192.0.2.1:0");
        for bad in [
            "for=\"192.0.2.1",
            "for",
            "by=10.0.0.1",
            "for=192.0.2.1;;for",
            "for=\"[2001:db8::1]:80\"x",
        ] {
            assert_eq!(fwd(bad), peer, "{bad:?}");
        }
    }

    #[test]
    fn many_hops_are_read_bounded() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = "10.0.0.1:1";
        let trusted = vec!["10.0.0.5"; MAX_HOPS].join(", ");
        // More trusted hops than are read: the header is not believed.
        let long = format!("203.0.113.9, {trusted}");
        assert_eq!(client(&p, peer, &[("X-Forwarded-For", &long)]), peer);
        // Exactly as many as are read, all trusted: the leftmost.
        assert_eq!(client(&p, peer, &[("X-Forwarded-For", &trusted)]), "10.0.0.5:0");
        // A huge header whose rightmost hop decides.
        let huge = format!("{}203.0.113.9", "1.1.1.1, ".repeat(2000));
        assert_eq!(client(&p, peer, &[("X-Forwarded-For", &huge)]), "203.0.113.9:0");
        let not_utf8 = [httparse::Header {
            name: "X-Forwarded-For",
            value: b"\xff\xfe",
        }];
        assert_eq!(p.client(peer.parse().ok(), &not_utf8), peer.parse().ok());
    }
}
