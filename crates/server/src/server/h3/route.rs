//! Which loop of a server a QUIC datagram belongs to, whichever loop's
//! socket read it.
//!
//! The connection IDs a loop issues start with its index
//! ([`tether_quic::routing`]): a datagram addressed to one goes to that
//! loop. Until the client has one of them (its Initial and 0-RTT packets,
//! addressed to an ID it chose) a datagram carries nothing a loop issued:
//! with a socket of its own per loop (`SO_REUSEPORT`), the kernel's hash of
//! the addresses keeps every datagram of one client address on one
//! socket, so the loop that read it is the one; with one socket the loops
//! share, whichever loop is free reads it, so its sender's address names
//! the loop instead, the same for every datagram from that address.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::net::SocketAddr;

use tether_quic::routing::issuer_of;

/// The loop (of `loops`) that `datagram`, from `from`, belongs to; `None`
/// when any loop may answer it where it arrives (an ID no loop issued,
/// or, on sockets of their own, a client without the server's IDs yet).
/// `shared`: the loops read one socket.
pub(super) fn owner_of(datagram: &[u8], from: SocketAddr, shared: bool, loops: usize) -> Option<usize> {
    match issuer_of(datagram) {
        Some(issuer) => Some(usize::from(issuer)).filter(|&issuer| issuer < loops),
        None if shared && loops > 1 => Some(loop_of(from, loops)),
        None => None,
    }
}

/// The loop a client address names: a fixed hash of it (the same in every
/// loop), modulo the loops.
fn loop_of(from: SocketAddr, loops: usize) -> usize {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(from);
    let loops = u64::try_from(loops.max(1)).unwrap_or(u64::MAX);
    usize::try_from(hash % loops).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Initial packet (long header, type 0, version 1) to an ID the
    /// client chose, whose first byte is `first`.
    fn initial(first: u8) -> Vec<u8> {
        vec![0xc0, 0, 0, 0, 1, 8, first, 1, 2, 3, 4, 5, 6, 7, 0, 0]
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], port))
    }

    #[test]
    fn an_id_a_loop_issued_names_that_loop_whoever_reads_it() {
        let short = [0x40, 2, 9, 9, 9, 9, 9, 9, 9, 0xaa];
        assert_eq!(owner_of(&short, addr(1), true, 3), Some(2));
        assert_eq!(owner_of(&short, addr(1), false, 3), Some(2));
        // A prefix no loop has: answered where it arrives.
        assert_eq!(owner_of(&short, addr(1), true, 2), None);
    }

    #[test]
    fn on_a_shared_socket_a_client_without_an_id_goes_where_its_address_says() {
        let loops = 4;
        let mut seen = [false; 4];
        for port in 1000..1400 {
            // Whatever ID the client chose, its address decides, and every
            // datagram from it goes to the same loop.
            let owner = owner_of(&initial(0), addr(port), true, loops).unwrap();
            assert_eq!(owner_of(&initial(3), addr(port), true, loops), Some(owner));
            assert_eq!(owner, loop_of(addr(port), loops));
            seen[owner] = true;
        }
        assert_eq!(seen, [true; 4], "400 addresses reach every loop");
    }

    #[test]
    fn on_sockets_of_their_own_the_loop_that_read_it_answers() {
        assert_eq!(owner_of(&initial(1), addr(5), false, 4), None);
        // One loop: nowhere else to go.
        assert_eq!(owner_of(&initial(1), addr(5), true, 1), None);
    }
}
