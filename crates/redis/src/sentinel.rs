//! Redis Sentinel: the master is not an address in the URL but the one
//! the sentinels name. Each connection (the writer's, the reader's, the
//! presence thread's) asks them anew, so a lost connection or a
//! `READONLY` answer (both make the bridge reconnect, with its backoff)
//! follows a failover.
//!
//! The discovery is the few steps of Redis's guidelines for Sentinel
//! clients, done over the `redis` crate's blocking connections (the
//! bridge holds one such connection per thread): the sentinels asked in
//! order, each within the connect timeout, `SENTINEL
//! get-master-addr-by-name`; the address named connected to, and kept
//! only if `ROLE` says it is a master (a sentinel that has not seen the
//! failover yet names the old master, which may be a replica by now:
//! writes must not go there).
//!
//! The sentinels are asked over plain TCP, or over TLS with the master's
//! files when they listen on a `tls-port` alone (`sentinel_tls`): the
//! URL's scheme says how the master is spoken to, not them, as Redis
//! configures the two apart (`tls-port` of the sentinel, `tls-replication`
//! towards the master).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use redis::{Connection, IntoConnectionInfo, RedisError, TlsCertificates, Value};

use crate::commands;
use crate::tls::Peer;

/// The schemes of a Sentinel URL: the data nodes over plain TCP, and over
/// TLS.
const SCHEMES: [(&str, bool); 2] = [("redis+sentinel://", false), ("rediss+sentinel://", true)];

/// What the URL's usage looks like, for the errors.
const USAGE: &str = "expected redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]";

/// A host name or address as a sentinel may give it, at most this long.
const MAX_HOST: usize = 255;

/// A `redis+sentinel://` (`rediss+sentinel://`) URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    /// The sentinels, `HOST:PORT` each, in the order they are asked.
    pub(crate) sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    pub(crate) master_name: String,
    /// The database on the master.
    pub(crate) db: u32,
    /// The URL's `USER:PASSWORD@` (as written, percent-encoding kept), or
    /// empty: the credentials of the master, not of the sentinels.
    userinfo: String,
    /// The master is spoken to over TLS (`rediss+sentinel://`).
    pub(crate) tls: bool,
}

/// The URL's parts if it is a Sentinel URL (`Ok(None)` for another
/// scheme). The reason when it is malformed never holds the URL (which
/// may hold a password).
pub(crate) fn parse_url(url: &str) -> Result<Option<SentinelUrl>, String> {
    let Some((rest, tls)) = SCHEMES
        .iter()
        .find_map(|(scheme, tls)| Some((url.strip_prefix(scheme)?, *tls)))
    else {
        return Ok(None);
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (
            authority.get(..=at).unwrap_or_default(),
            authority.get(at + 1..).unwrap_or_default(),
        ),
        None => ("", authority),
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() || host.contains(['@', '?', '#']) || !has_port(host) {
            return Err(format!("{USAGE} (each sentinel's port given)"));
        }
        sentinels.push(host.to_owned());
    }
    let (name, db) = path.split_once('/').unwrap_or((path, ""));
    if name.is_empty()
        || name
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b"?#@,".contains(&b))
    {
        return Err(format!("{USAGE} (the master's name missing or malformed)"));
    }
    let db = match db.trim_end_matches('/') {
        "" => 0,
        db => db
            .parse()
            .map_err(|_| format!("{USAGE} (the database is a number)"))?,
    };
    Ok(Some(SentinelUrl {
        sentinels,
        master_name: name.to_owned(),
        db,
        userinfo: userinfo.to_owned(),
        tls,
    }))
}

/// `HOST:PORT` (`[V6]:PORT`) with a port in range.
fn has_port(host: &str) -> bool {
    host.rsplit_once(':')
        .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The master's address in a reply to `SENTINEL get-master-addr-by-name`:
/// `Ok(None)` when the sentinel monitors no master of that name (a nil
/// reply). The reply is a peer's: the host is checked to be a host name
/// or an address (nothing that would change the URL it goes into), the
/// port a port.
pub(crate) fn parse_master_addr(value: &Value) -> Result<Option<(String, u16)>, String> {
    let parts = match value {
        Value::Nil => return Ok(None),
        Value::Array(parts) => parts,
        _ => return Err("not an address (host, port)".to_owned()),
    };
    let [host, port] = &parts[..] else {
        return Err("not an address (host, port)".to_owned());
    };
    let host = commands::text(host)
        .and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= MAX_HOST
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
        })
        .ok_or("not a host name or address")?;
    let port = commands::text(port)
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p > 0)
        .ok_or("not a port")?;
    Ok(Some((host.to_owned(), port)))
}

/// The role a `ROLE` reply names (`master`, `slave`, `sentinel`).
pub(crate) fn parse_role(value: &Value) -> Option<String> {
    let Value::Array(parts) = value else {
        return None;
    };
    let role = commands::text(parts.first()?)?;
    Some(String::from_utf8_lossy(role).into_owned())
}

/// `host:port`, an IPv6 address in brackets.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The sentinels of one master, and the master they last named.
pub(crate) struct Sentinel {
    url: SentinelUrl,
    /// The sentinels' own password (`requirepass` in their
    /// configuration), if they ask for one.
    password: Option<String>,
    /// The certificates to check the master's with (`rediss+sentinel://`)
    /// and the sentinels' (with `sentinel_tls`).
    tls: Option<TlsCertificates>,
    /// The sentinels are asked over TLS.
    sentinel_tls: bool,
    /// The master's address as last connected to, for the logs and
    /// `/readyz`. A lock: taken at each connection and by a probe only.
    master: Mutex<Option<String>>,
}

impl Sentinel {
    /// The sentinels of `url`, asked with `password`, over TLS if
    /// `sentinel_tls`; `tls`: the certificates, for the master (with a
    /// `rediss+sentinel://` URL) and the sentinels (with `sentinel_tls`).
    pub(crate) fn new(
        url: SentinelUrl,
        password: Option<String>,
        tls: Option<TlsCertificates>,
        sentinel_tls: bool,
    ) -> Sentinel {
        Sentinel {
            url,
            password,
            tls,
            sentinel_tls,
            master: Mutex::new(None),
        }
    }

    /// The master's name and, once connected, where it was last found:
    /// `Sentinel master mymaster at 10.0.0.5:6379`.
    pub(crate) fn describe(&self) -> String {
        let name = &self.url.master_name;
        match self.master.lock().ok().and_then(|m| m.clone()) {
            Some(at) => format!("Sentinel master {name} at {at}"),
            None => format!("Sentinel master {name}, not found yet"),
        }
    }

    /// The name the sentinels know the master by.
    pub(crate) fn master_name(&self) -> &str {
        &self.url.master_name
    }

    /// The sentinels' addresses, as the URL gives them.
    pub(crate) fn sentinels(&self) -> String {
        self.url.sentinels.join(",")
    }

    /// A connection to the master: each sentinel asked in turn until one
    /// names an address that connects and says it is a master. Each step
    /// waits `timeout` at most, so a round with every sentinel down takes
    /// about the number of sentinels times it at most. The error says what
    /// each sentinel answered.
    pub(crate) fn connect(&self, timeout: Duration) -> Result<Connection, RedisError> {
        let name = &self.url.master_name;
        let mut why = String::new();
        for sentinel in &self.url.sentinels {
            let (host, port) = match self.ask(sentinel, timeout) {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    let _ = write!(why, "; {sentinel}: no master named {name}");
                    continue;
                }
                Err(e) => {
                    let _ = write!(why, "; {sentinel}: {e}");
                    continue;
                }
            };
            let at = address(&host, port);
            match self.master(&host, port, timeout) {
                Ok(con) => {
                    if let Ok(mut master) = self.master.lock() {
                        *master = Some(at);
                    }
                    return Ok(con);
                }
                Err(e) => {
                    let e = crate::tls::explain(&e, self.url.tls);
                    let _ = write!(why, "; {sentinel} named {at}: {e}");
                }
            }
        }
        Err(RedisError::from(std::io::Error::other(format!(
            "no sentinel gave a master {name} that answers as one{why}"
        ))))
    }

    /// `SENTINEL get-master-addr-by-name` of one sentinel. A failure to
    /// reach it is explained as a sentinel's (its TLS above all).
    fn ask(&self, sentinel: &str, timeout: Duration) -> Result<Option<(String, u16)>, String> {
        let reply = self
            .query_sentinel(sentinel, timeout)
            .map_err(|e| crate::tls::explain_to(&e, self.sentinel_tls, Peer::Sentinel))?;
        parse_master_addr(&reply)
    }

    /// The reply of one sentinel to `SENTINEL get-master-addr-by-name`.
    fn query_sentinel(&self, sentinel: &str, timeout: Duration) -> Result<Value, RedisError> {
        let scheme = if self.sentinel_tls { "rediss" } else { "redis" };
        let mut info = format!("{scheme}://{sentinel}/").into_connection_info()?;
        if let Some(password) = &self.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = match (&self.tls, self.sentinel_tls) {
            (Some(certificates), true) => redis::Client::build_with_tls(info, certificates.clone())?,
            _ => redis::Client::open(info)?,
        };
        let mut con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.url.master_name)
            .query(&mut con)
    }

    /// A connection to `host:port` with the URL's credentials, database
    /// and TLS, if `ROLE` there says master.
    fn master(&self, host: &str, port: u16, timeout: Duration) -> Result<Connection, RedisError> {
        let scheme = if self.url.tls { "rediss" } else { "redis" };
        let url = format!(
            "{scheme}://{}{}/{}",
            self.url.userinfo,
            address(host, port),
            self.url.db
        );
        let client = match (&self.tls, self.url.tls) {
            (Some(certificates), true) => redis::Client::build_with_tls(url, certificates.clone())?,
            _ => redis::Client::open(url)?,
        };
        let mut con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        let reply: Value = redis::cmd("ROLE").query(&mut con)?;
        match parse_role(&reply).as_deref() {
            Some("master") => Ok(con),
            role => Err(RedisError::from(std::io::Error::other(format!(
                "it is not a master (ROLE: {}): the sentinel's answer is stale",
                role.unwrap_or("unreadable")
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::bulk;

    #[test]
    fn sentinel_urls() {
        assert_eq!(parse_url("redis://h:1/"), Ok(None));
        assert_eq!(parse_url("redis+cluster://h:1/"), Ok(None));
        let url = parse_url("redis+sentinel://a:26379,[::1]:26380/mymaster")
            .unwrap()
            .unwrap();
        assert_eq!(url.sentinels, ["a:26379", "[::1]:26380"]);
        assert_eq!(
            (url.master_name.as_str(), url.db, url.tls),
            ("mymaster", 0, false)
        );
        let url = parse_url("rediss+sentinel://me:pw@a:1/m/3").unwrap().unwrap();
        assert_eq!((url.userinfo.as_str(), url.db, url.tls), ("me:pw@", 3, true));
        assert_eq!(parse_url("redis+sentinel://a:1/m/").unwrap().unwrap().db, 0);
        for bad in [
            "redis+sentinel://",
            "redis+sentinel://a:1",
            "redis+sentinel://a:1/",
            "redis+sentinel://a/m",
            "redis+sentinel://a:0/m",
            "redis+sentinel://a:1,,b:2/m",
            "redis+sentinel://:pw@a:1/m/x",
            "redis+sentinel://:pw@a:1/m?x=y",
            "redis+sentinel://:pw@a:1/m/1/2",
        ] {
            let why = parse_url(bad).unwrap_err();
            assert!(!why.contains("pw"), "{why}");
        }
    }

    #[test]
    fn master_addresses_from_a_sentinel_are_checked() {
        let reply = |host: &str, port: &str| Value::Array(vec![bulk(host), bulk(port)]);
        assert_eq!(
            parse_master_addr(&reply("10.0.0.5", "6379")),
            Ok(Some(("10.0.0.5".to_owned(), 6379)))
        );
        assert_eq!(
            parse_master_addr(&reply("redis-0.redis.svc", "6380")),
            Ok(Some(("redis-0.redis.svc".to_owned(), 6380)))
        );
        assert_eq!(parse_master_addr(&Value::Nil), Ok(None));
        for bad in [
            reply("evil@host", "1"),
            reply("a/b", "1"),
            reply("", "1"),
            reply(&"a".repeat(256), "1"),
            reply("h", "0"),
            reply("h", "70000"),
            reply("h", "x"),
            Value::Array(vec![bulk("h")]),
            Value::Int(3),
        ] {
            assert!(parse_master_addr(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(address("::1", 7), "[::1]:7");
    }

    #[test]
    fn roles() {
        let master = Value::Array(vec![bulk("master"), Value::Int(10), Value::Array(vec![])]);
        assert_eq!(parse_role(&master).as_deref(), Some("master"));
        let replica = Value::Array(vec![bulk("slave"), bulk("10.0.0.1"), Value::Int(6379)]);
        assert_eq!(parse_role(&replica).as_deref(), Some("slave"));
        assert_eq!(parse_role(&Value::Nil), None);
        assert_eq!(parse_role(&Value::Array(vec![])), None);
    }
}
