//! The handshakes in progress, counted per source, so that one source
//! cannot hold more than its share of the server's half-open state.

use std::collections::BTreeMap;
use std::net::IpAddr;

use quinn_proto::ConnectionHandle;

/// Where handshakes come from, as far as the bound per source goes: an
/// IPv4 address, or an IPv6 address's /64 (the block one host or one
/// subscriber is usually given, so that hopping among its addresses
/// buys nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Source(u128);

impl Source {
    pub(super) fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(u128::from(u32::from(v4))),
                None => Source(u128::from(v6) & !u128::from(u64::MAX) | 1 << 32),
            },
        }
    }
}

/// The connections whose handshake is in progress, each with its source,
/// and how many each source has.
#[derive(Debug, Default)]
pub(super) struct HalfOpen {
    by_conn: BTreeMap<ConnectionHandle, Source>,
    by_source: BTreeMap<Source, usize>,
}

impl HalfOpen {
    /// Handshakes in progress.
    pub(super) fn len(&self) -> usize {
        self.by_conn.len()
    }

    /// Handshakes in progress from `source`.
    pub(super) fn from(&self, source: Source) -> usize {
        self.by_source.get(&source).copied().unwrap_or(0)
    }

    /// `conn`, from `source`, is handshaking (again: counted once).
    pub(super) fn insert(&mut self, conn: ConnectionHandle, source: Source) {
        if self.by_conn.insert(conn, source).is_none() {
            *self.by_source.entry(source).or_insert(0) += 1;
        }
    }

    /// `conn` is no longer handshaking (or is gone).
    pub(super) fn remove(&mut self, conn: &ConnectionHandle) {
        let Some(source) = self.by_conn.remove(conn) else {
            return;
        };
        if let Some(n) = self.by_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_source_and_forgets_a_source_with_none() {
        let a = Source::of("192.0.2.1".parse().unwrap());
        let b = Source::of("192.0.2.2".parse().unwrap());
        let mut half_open = HalfOpen::default();
        half_open.insert(ConnectionHandle(1), a);
        half_open.insert(ConnectionHandle(1), a);
        half_open.insert(ConnectionHandle(2), a);
        half_open.insert(ConnectionHandle(3), b);
        assert_eq!((half_open.len(), half_open.from(a), half_open.from(b)), (3, 2, 1));
        half_open.remove(&ConnectionHandle(1));
        half_open.remove(&ConnectionHandle(1));
        half_open.remove(&ConnectionHandle(3));
        assert_eq!((half_open.len(), half_open.from(a), half_open.from(b)), (1, 1, 0));
        assert_eq!(half_open.by_source.len(), 1);
    }

    #[test]
    fn an_ipv6_source_is_its_64_and_a_mapped_ipv4_is_the_ipv4() {
        let one = Source::of("2001:db8:1:2::1".parse().unwrap());
        let other = Source::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let next = Source::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(one, other);
        assert_ne!(one, next);
        let v4 = Source::of("192.0.2.1".parse().unwrap());
        assert_eq!(Source::of("::ffff:192.0.2.1".parse().unwrap()), v4);
        // An IPv6 /64 never equals an IPv4 address.
        assert_ne!(
            Source::of("::".parse().unwrap()),
            Source::of("0.0.0.0".parse().unwrap())
        );
    }
}
