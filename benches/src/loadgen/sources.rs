//! Connections from several loopback source addresses (`--sources N`).
//!
//! Linux gives one source address about 28 000 ephemeral ports (the
//! default range 32768–60999) towards one server address, so 100 000
//! connections to one port cannot all come from 127.0.0.1. All of
//! 127.0.0.0/8 is loopback: with `--sources N` the connections are bound,
//! in turn, to 127.0.0.1 … 127.0.0.N before they connect, with
//! `IP_BIND_ADDRESS_NO_PORT` so that the port is still chosen at connect
//! time for the whole address pair rather than reserved by the bind.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd as _;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The most loopback sources `--sources` takes (127.0.0.1 … 127.0.0.254).
pub const MAX_SOURCES: usize = 254;

/// The first `count` loopback addresses, 127.0.0.1 onwards.
pub fn loopback(count: usize) -> Result<Vec<IpAddr>, String> {
    if count == 0 || count > MAX_SOURCES {
        return Err(format!(
            "--sources takes 1 to {MAX_SOURCES} loopback addresses, not {count}"
        ));
    }
    Ok((1..=count)
        .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(n).unwrap_or(u8::MAX))))
        .collect())
}

/// The source of the `index`-th connection: the sources in turn, or none
/// (the kernel's choice) when there are none.
pub fn source_of(sources: &[IpAddr], index: usize) -> Option<IpAddr> {
    sources.get(index.checked_rem(sources.len())?).copied()
}

/// Starts a non-blocking connect to `addr`, from `source` when given. The
/// connect completes (or fails) later, as with [`TcpStream::connect`].
pub fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr);
    };
    if source.is_ipv4() != addr.is_ipv4() {
        return Err(io::Error::other(format!(
            "source address {source} and server address {addr} are of different families"
        )));
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if source.is_ipv4() {
        bind_address_no_port(&socket)?;
    }
    socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(socket)))
}

/// `IP_BIND_ADDRESS_NO_PORT`: bind the address only; the port is picked by
/// `connect`, unique for the (source, destination) pair instead of for the
/// source alone.
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).map_err(io::Error::other)?;
    // SAFETY: the descriptor is an open socket owned by `socket`, and the
    // option value points to a live c_int of the length given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    // A test: a failed unwrap is the failure it reports.
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn loopback_sources_count_from_127_0_0_1() {
        let sources = loopback(3).unwrap();
        assert_eq!(
            sources,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|s| s.parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            loopback(MAX_SOURCES).unwrap().last(),
            Some(&"127.0.0.254".parse().unwrap())
        );
        assert!(loopback(0).is_err());
        assert!(loopback(MAX_SOURCES + 1).is_err());
    }

    #[test]
    fn connections_take_the_sources_in_turn() {
        let sources = loopback(2).unwrap();
        let picked: Vec<_> = (0..5).map(|i| source_of(&sources, i)).collect();
        assert_eq!(picked, [0, 1, 0, 1, 0].map(|n| Some(sources[n])).to_vec());
        assert_eq!(source_of(&[], 7), None);
    }

    #[test]
    fn a_connection_comes_from_its_source() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.3".parse().unwrap();
        let _stream = connect(addr, Some(source)).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), source);
    }
}
