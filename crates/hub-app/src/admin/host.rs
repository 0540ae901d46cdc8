//! The `Host` the admin listener serves: its own address, `localhost`,
//! and the names the operator gives ([`HubSettings::admin_hosts`]).
//!
//! A page on another site cannot read the admin listener's answers, but
//! it can make the browser's name for itself point there (DNS
//! rebinding): then the page and the admin listener share an origin in
//! the browser's eyes, and `Origin` matches `Host`. What gives it away is
//! the `Host`: the attacker's name. So every request on the admin
//! listener, `/metrics` included, is answered 421 unless its `Host`
//! names an IP address (v4, or v6 in brackets: a literal address is
//! never resolved, so never rebound), `localhost` (which browsers resolve
//! to the loopback themselves), or one of the configured names.
//!
//! The port is not checked for an address or `localhost`: a rebinding
//! page chooses its name, not the listener's port, and a port-forward
//! (`kubectl port-forward 19090:9090`) changes the port a browser names.
//! A configured name with a port (`admin.example.com:443`) matches that
//! port only; one without, any port.
//!
//! [`HubSettings::admin_hosts`]: crate::HubSettings::admin_hosts

use std::net::{Ipv4Addr, Ipv6Addr};

use tether_server::{Request, Response};

/// Whether the admin listener serves `request`'s `Host` (over HTTP/2,
/// its `:authority`); a request without one is not served.
pub(super) fn served(request: &Request<'_>, configured: &[String]) -> bool {
    request
        .header("host")
        .or_else(|| request.header(":authority"))
        .is_some_and(|host| serves(host, configured))
}

/// Whether `host` (a `Host` field's value) is one the admin listener
/// serves, given the configured names.
fn serves(host: &str, configured: &[String]) -> bool {
    let Some((name, port)) = split(host) else {
        return false;
    };
    if is_address(name) || name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    configured.iter().any(|entry| {
        split(entry).is_some_and(|(allowed, allowed_port)| {
            allowed.eq_ignore_ascii_case(name) && allowed_port.is_none_or(|p| Some(p) == port)
        })
    })
}

/// Whether `name` is an IP address: dotted IPv4, or IPv6 in brackets.
fn is_address(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => name.parse::<Ipv4Addr>().is_ok(),
    }
}

/// `NAME[:PORT]` or `[V6][:PORT]`, split; `None` if it is neither (an
/// empty name, a bad port, a bracket left open or holding no IPv6
/// address, a character no host name has).
fn split(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<Ipv6Addr>().ok()?;
            let name = host.get(..v6.len() + 2)?;
            match after {
                "" => (name, None),
                after => (name, Some(after.strip_prefix(':')?)),
            }
        }
        None => {
            let (name, port) = match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            let name_ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
            if !name_ok {
                return None;
            }
            (name, port)
        }
    };
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((name, port))
}

/// Whether `text` may be configured as a name the admin listener serves:
/// a host name or address as a `Host` field carries it, with an optional
/// port (`admin.example.com`, `admin.example.com:8443`).
pub(crate) fn is_admin_host(text: &str) -> bool {
    split(text).is_some()
}

/// The answer to a request whose `Host` the admin listener does not
/// serve: 421 Misdirected Request, which says the request reached a
/// server that does not answer for that name. It names no setting the
/// caller could use (the caller may be a hostile page).
pub(super) fn misdirected() -> Response {
    Response::text(
        421,
        "421 Misdirected Request: this listener does not serve that host name\n",
    )
    .header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_are_served_whatever_the_port() {
        for host in [
            "127.0.0.1:9090",
            "127.0.0.1",
            "10.1.2.3:9090",
            "localhost:9090",
            "LOCALHOST:19090",
            "localhost",
            "[::1]:9090",
            "[::1]",
            "[fe80::1]:80",
        ] {
            assert!(serves(host, &[]), "{host}");
        }
    }

    #[test]
    fn other_names_are_not_unless_configured() {
        for host in [
            "evil.example:9090",
            "evil.example",
            "127.0.0.1.nip.io:9090",
            "localhost.:9090",
            "sub.localhost:9090",
            "",
            ":9090",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:90a",
            "[::1",
            "[::1]x",
            "[not-v6]:80",
            "[::1]:80:80",
            "a b:80",
            "name@127.0.0.1",
            "2130706433",
        ] {
            assert!(!serves(host, &[]), "{host}");
        }
        let configured = ["Admin.Example.com".to_owned(), "ops.example:8443".to_owned()];
        assert!(serves("admin.example.com", &configured));
        assert!(serves("admin.example.com:9090", &configured));
        assert!(serves("ops.example:8443", &configured));
        assert!(!serves("ops.example:9090", &configured));
        assert!(!serves("ops.example", &configured));
        assert!(!serves("example.com:9090", &configured));
        assert!(!serves("evil.example:9090", &configured));
    }

    #[test]
    fn what_may_be_configured() {
        for good in [
            "admin.example.com",
            "admin.example.com:8443",
            "localhost",
            "[::1]:80",
        ] {
            assert!(is_admin_host(good), "{good}");
        }
        for bad in [
            "",
            "*",
            "*.example.com",
            "https://admin.example.com",
            "a/b",
            "a:",
            "a:x",
            "[::1",
            "[name]",
        ] {
            assert!(!is_admin_host(bad), "{bad}");
        }
    }
}
