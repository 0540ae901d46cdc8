//! The plan of a run spread over processes (`loadgen plan`, what
//! `benches/scale.sh` asks before it starts anything): how many loopback
//! source addresses its connections need.
//!
//! Linux picks a connection's source port from `ip_local_port_range`
//! (32768–60999 by default: 28 232 ports), unique per pair of source and
//! server address. As a pair's ports fill up, `connect` searches longer for
//! a free one, and near the end it fails with `EADDRNOTAVAIL` (at about
//! nine in ten in use, a run of 40 000 connections per pair stopped there).
//! So a plan puts at most a third of the range on each pair, and takes as
//! many sources ([`super::sources`]) as that needs: the connections are
//! spread over the sources in turn, so a pair carries the connections over
//! the sources, rounded up (with two server addresses, a TLS listener
//! beside the plain one, a pair carries at most that).

use std::fmt;
use std::io;

use super::sources::MAX_SOURCES;

/// The share of the ephemeral port range one pair may use: one in this.
pub const PAIR_SHARE: u64 = 3;

/// A run's connections, processes and sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Connections in all (subscribers and the publisher).
    pub connections: u64,
    /// Server processes (on one port).
    pub servers: u64,
    /// Load generator processes.
    pub procs: u64,
    /// Loopback source addresses.
    pub sources: u64,
    /// The ephemeral port range, both ends included.
    pub ports: (u16, u16),
    /// Connections per (source, server address) pair, at most.
    pub per_pair: u64,
}

impl Plan {
    /// Ports in the range.
    pub fn range_size(&self) -> u64 {
        range_size(self.ports)
    }
}

fn range_size((low, high): (u16, u16)) -> u64 {
    u64::from(high) - u64::from(low) + 1
}

/// Plans `connections` over `servers` server and `procs` load generator
/// processes, with the ephemeral `ports` given (both ends): the fewest
/// sources that keep each pair under a third of the range, or `sources`
/// when given, if it does. An error says why a plan cannot be made.
pub fn plan(
    connections: u64,
    servers: u64,
    procs: u64,
    ports: (u16, u16),
    sources: Option<u64>,
) -> Result<Plan, String> {
    if connections == 0 || servers == 0 || procs == 0 {
        return Err("a plan needs connections, servers and processes (at least one of each)".into());
    }
    if ports.1 < ports.0 {
        return Err(format!(
            "the ephemeral port range {}-{} is empty",
            ports.0, ports.1
        ));
    }
    let size = range_size(ports);
    let budget = (size / PAIR_SHARE).max(1);
    let needed = connections.div_ceil(budget);
    let most = MAX_SOURCES as u64;
    if needed > most {
        return Err(format!(
            "{connections} connections need {needed} source addresses to keep each (source, server address) \
             pair under a third of the {size} ephemeral ports ({}-{}), more than the {most} there are: \
             widen net.ipv4.ip_local_port_range or make fewer connections",
            ports.0, ports.1
        ));
    }
    let sources = match sources {
        None => needed,
        Some(0) => return Err("--sources must be at least 1".into()),
        Some(s) if s > most => return Err(format!("--sources takes at most {most} loopback addresses")),
        Some(s) if s < needed => {
            return Err(format!(
                "--sources {s} puts {} connections on each (source, server address) pair, more than a third \
                 ({budget}) of the {size} ephemeral ports ({}-{}): connect would slow down and then fail with \
                 EADDRNOTAVAIL; give --sources {needed} or more, or leave it out to have it chosen",
                connections.div_ceil(s),
                ports.0,
                ports.1
            ));
        }
        Some(s) => s,
    };
    Ok(Plan {
        connections,
        servers,
        procs,
        sources,
        ports,
        per_pair: connections.div_ceil(sources),
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plan: {} connections over {} server processes (about {} each), from {} load generator processes \
             (about {} each) and {} source addresses: at most {} connections per (source, server address) pair, \
             {:.0} % of the {} ephemeral ports ({}-{})",
            self.connections,
            self.servers,
            self.connections.div_ceil(self.servers),
            self.procs,
            self.connections.div_ceil(self.procs),
            self.sources,
            self.per_pair,
            100.0 * self.per_pair as f64 / self.range_size() as f64,
            self.range_size(),
            self.ports.0,
            self.ports.1
        )
    }
}

/// This machine's ephemeral port range, from
/// `/proc/sys/net/ipv4/ip_local_port_range`.
pub fn local_port_range() -> io::Result<(u16, u16)> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(path)?;
    parse_port_range(&text).ok_or_else(|| io::Error::other(format!("{path}: expected two port numbers")))
}

/// Two port numbers, low then high, separated by white space.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut words = text.split_ascii_whitespace();
    let low = words.next()?.parse().ok()?;
    let high = words.next()?.parse().ok()?;
    words.next().is_none().then_some((low, high))
}

#[cfg(test)]
mod tests {
    // A test: a failed unwrap is the failure it reports.
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DEFAULT: (u16, u16) = (32768, 60999);

    #[test]
    fn sources_keep_each_pair_under_a_third_of_the_range() {
        // 28 232 ports: a third is 9 410 a pair.
        let p = plan(1_000_001, 56, 56, DEFAULT, None).unwrap();
        assert_eq!(p.range_size(), 28_232);
        assert_eq!(p.sources, 107);
        assert_eq!(p.per_pair, 9_346);
        assert!(p.per_pair * 3 <= p.range_size());
        // One source fewer would put more than a third on a pair.
        assert!(1_000_001u64.div_ceil(106) * 3 > 28_232);
        // Small runs need one; exactly a third still fits in one.
        assert_eq!(plan(3_001, 2, 2, DEFAULT, None).unwrap().sources, 1);
        assert_eq!(plan(9_410, 1, 1, DEFAULT, None).unwrap().sources, 1);
        assert_eq!(plan(9_411, 1, 1, DEFAULT, None).unwrap().sources, 2);
        // The case that failed: 100 001 connections from 8 sources is
        // 12 501 a pair, 44 % of the range.
        assert_eq!(plan(100_001, 7, 7, DEFAULT, None).unwrap().sources, 11);
    }

    #[test]
    fn sources_given_are_taken_or_refused() {
        assert_eq!(
            plan(1_000_001, 56, 56, DEFAULT, Some(140)).unwrap().per_pair,
            7_143
        );
        let refused = plan(1_000_001, 56, 56, DEFAULT, Some(40)).unwrap_err();
        assert!(
            refused.contains("--sources 40 puts 25001 connections"),
            "{refused}"
        );
        assert!(refused.contains("--sources 107 or more"), "{refused}");
        assert!(plan(10, 1, 1, DEFAULT, Some(0)).is_err());
        assert!(plan(10, 1, 1, DEFAULT, Some(255)).is_err());
    }

    #[test]
    fn plans_that_cannot_be_made() {
        // 254 sources of a third of the default range: 2 390 140.
        assert_eq!(plan(2_390_140, 100, 100, DEFAULT, None).unwrap().sources, 254);
        let too_many = plan(2_390_141, 100, 100, DEFAULT, None).unwrap_err();
        assert!(too_many.contains("more than the 254"), "{too_many}");
        // A narrow range: 300 ports, 100 a pair.
        assert_eq!(plan(1_000, 1, 1, (1000, 1299), None).unwrap().sources, 10);
        assert!(plan(1, 1, 1, (2000, 1000), None).is_err());
        assert!(plan(0, 1, 1, DEFAULT, None).is_err());
    }

    #[test]
    fn the_plan_says_what_it_chose() {
        let text = plan(1_000_001, 56, 56, DEFAULT, None).unwrap().to_string();
        assert!(
            text.contains("1000001 connections over 56 server processes"),
            "{text}"
        );
        assert!(text.contains("107 source addresses"), "{text}");
        assert!(
            text.contains("at most 9346 connections per (source, server address) pair, 33 %"),
            "{text}"
        );
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(DEFAULT));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_port_range("1024"), None);
        assert_eq!(parse_port_range("1024 65536"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        local_port_range().unwrap();
    }
}
