//! Connection IDs that say which of several servers holds their
//! connection, so that a datagram reaching another server's socket (the
//! kernel's `SO_REUSEPORT` hash after the client's address changed) can be
//! handed to the one that holds it before any server reads it.
//!
//! Every connection ID a [`QuicServer`](crate::server::QuicServer) with
//! [`QuicConfig::connection_id_prefix`](crate::config::QuicConfig::connection_id_prefix) issues is [`CID_LEN`] bytes:
//! that prefix, then random bytes. A client addresses every packet after
//! the handshake's first flight to one of them; [`issuer_of`] reads the
//! prefix back from a datagram. The prefix is the same for every
//! connection a server holds, so an observer can tell that two IDs belong
//! to the same server (not to the same connection): what QUIC-LB style
//! routing costs, and the reason it is opt-in.

use std::time::Duration;

use quinn_proto::{ConnectionId, ConnectionIdGenerator, RandomConnectionIdGenerator};

/// The length of the connection IDs a prefixed server issues.
pub const CID_LEN: usize = 8;

/// The long-header packet type of a Handshake packet in QUIC version 1
/// (RFC 9000 §17.2).
const HANDSHAKE: u8 = 0x2;

/// Connection IDs whose first byte is a fixed prefix.
pub(crate) struct PrefixedIds {
    prefix: u8,
    random: RandomConnectionIdGenerator,
}

impl PrefixedIds {
    pub(crate) fn new(prefix: u8) -> PrefixedIds {
        PrefixedIds {
            prefix,
            random: RandomConnectionIdGenerator::new(CID_LEN),
        }
    }
}

impl ConnectionIdGenerator for PrefixedIds {
    fn generate_cid(&mut self) -> ConnectionId {
        let random = self.random.generate_cid();
        let mut bytes = [0u8; CID_LEN];
        for (to, from) in bytes.iter_mut().zip(random.iter()) {
            *to = *from;
        }
        bytes[0] = self.prefix;
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// The prefix of the connection ID `datagram` is addressed to, when that
/// ID is one a server issued: a short-header packet, or a Handshake
/// packet (RFC 9000 §17). `None` for what a server answers wherever it
/// arrives: an Initial or 0-RTT packet (whose ID the client may have
/// chosen itself; the client's address cannot change during the
/// handshake, RFC 9000 §9), a version negotiation, anything else.
///
/// ```
/// use tether_quic::routing::issuer_of;
///
/// // A short header (form bit clear) to the ID 07 01 02 ...: prefix 7.
/// assert_eq!(issuer_of(&[0x40, 7, 1, 2, 3, 4, 5, 6, 7, 0xaa]), Some(7));
/// // An Initial (long header, type 0) is anyone's.
/// assert_eq!(issuer_of(&[0xc0, 0, 0, 0, 1, 8, 7, 1, 2, 3, 4, 5, 6, 7]), None);
/// ```
pub fn issuer_of(datagram: &[u8]) -> Option<u8> {
    let first = *datagram.first()?;
    if first & 0x80 == 0 {
        // A short header: the destination ID follows the first byte.
        return datagram.get(1).copied();
    }
    let version = datagram.get(1..5)?;
    if version == [0, 0, 0, 0] || (first >> 4) & 0x3 != HANDSHAKE {
        return None;
    }
    let id_len = usize::from(*datagram.get(5)?);
    (id_len == CID_LEN).then(|| datagram.get(6).copied()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_issued_carries_the_prefix_and_is_otherwise_random() {
        let mut ids = PrefixedIds::new(3);
        let a = ids.generate_cid();
        let b = ids.generate_cid();
        assert_eq!((a.len(), a.first()), (CID_LEN, Some(&3)));
        assert_eq!(b.first(), Some(&3));
        assert_ne!(a, b);
    }

    #[test]
    fn only_ids_a_server_issued_are_read() {
        let id = [9u8, 1, 2, 3, 4, 5, 6, 7];
        let short = [&[0x41][..], &id, b"payload"].concat();
        assert_eq!(issuer_of(&short), Some(9));
        let long = |first: u8| [&[first, 0, 0, 0, 1, 8][..], &id, &[0], b"payload"].concat();
        assert_eq!(issuer_of(&long(0xe0)), Some(9), "Handshake");
        assert_eq!(issuer_of(&long(0xc0)), None, "Initial");
        assert_eq!(issuer_of(&long(0xd0)), None, "0-RTT");
        let negotiation = [&[0x80, 0, 0, 0, 0, 8][..], &id].concat();
        assert_eq!(issuer_of(&negotiation), None);
        let other_length = [&[0xe0, 0, 0, 0, 1, 4][..], &id[..4]].concat();
        assert_eq!(issuer_of(&other_length), None);
        assert_eq!(issuer_of(&[]), None);
        assert_eq!(issuer_of(&[0xe0, 0, 0]), None);
    }
}
