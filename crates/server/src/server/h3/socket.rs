//! The UDP socket under a loop's QUIC endpoint: bound on the TLS port's
//! number (`SO_REUSEPORT` in a cluster), read until it would block, and
//! written until it would block, keeping the one datagram it refused and
//! asking for write readiness only while that one waits.
//!
//! Calling contract: [`QuicSocket::receive`] hands each datagram read to
//! the caller's closure, [`QuicSocket::send`] takes datagrams from the
//! caller's source until it has none or the socket pushes back; nothing
//! here knows QUIC.

use std::io;
use std::net::SocketAddr;

use log::debug;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

/// Datagrams read per readiness event before the rest waits for the next
/// turn, so that a flood on UDP cannot starve the TCP connections.
const DATAGRAMS_PER_TURN: usize = 256;

/// The largest UDP payload (QUIC datagrams are far smaller; a larger one
/// is not QUIC and is dropped by quinn-proto).
const MAX_DATAGRAM: usize = 65_535;

/// A loop's UDP socket for QUIC.
pub(super) struct QuicSocket {
    socket: UdpSocket,
    token: Token,
    /// The datagram the socket refused last, to send first.
    pending: Option<(SocketAddr, Vec<u8>)>,
    /// Write interest is registered.
    writable: bool,
    /// The last read stopped at [`DATAGRAMS_PER_TURN`]: read again next
    /// turn, since edge-triggered readiness says nothing new.
    pub(super) more_to_read: bool,
    buf: Vec<u8>,
    /// Where the next datagram to send is written.
    out: Vec<u8>,
}

impl QuicSocket {
    /// Binds `addr` (with `SO_REUSEPORT` if `reuse_port`) and registers it
    /// for reading under `token`.
    pub(super) fn bind(
        addr: SocketAddr,
        reuse_port: bool,
        registry: &Registry,
        token: Token,
    ) -> io::Result<QuicSocket> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(socket.into());
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(QuicSocket {
            socket,
            token,
            pending: None,
            writable: false,
            more_to_read: false,
            buf: vec![0; MAX_DATAGRAM],
            out: Vec::new(),
        })
    }

    /// The address bound.
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads datagrams until the socket would block (or this turn's share
    /// is read), handing each to `each` with its sender.
    pub(super) fn receive(&mut self, mut each: impl FnMut(SocketAddr, &[u8])) {
        self.more_to_read = false;
        for _ in 0..DATAGRAMS_PER_TURN {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => each(from, self.buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported for an earlier send, say: the
                // socket itself goes on.
                Err(e) => debug!("UDP receive: {e}"),
            }
        }
        self.more_to_read = true;
    }

    /// Sends the datagram held back, then what `next` gives (each written
    /// into the buffer it is lent, with its destination and length),
    /// until it gives none or the socket would block; write interest is
    /// registered only while a datagram waits.
    pub(super) fn send(
        &mut self,
        registry: &Registry,
        mut next: impl FnMut(&mut Vec<u8>) -> Option<(SocketAddr, usize)>,
    ) {
        loop {
            let held = self.pending.take();
            let (to, datagram) = match &held {
                Some((to, datagram)) => (*to, datagram.as_slice()),
                None => {
                    let Some((to, len)) = next(&mut self.out) else {
                        break;
                    };
                    (to, self.out.get(..len).unwrap_or_default())
                }
            };
            match self.socket.send_to(datagram, to) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    let blocked = e.kind() == io::ErrorKind::WouldBlock;
                    let datagram = datagram.to_vec();
                    self.pending = Some((to, datagram));
                    if blocked {
                        break;
                    }
                }
                // QUIC recovers a lost datagram; one the kernel refuses
                // (an unreachable address) is as good as lost.
                Err(e) => debug!("UDP send to {to}: {e}"),
            }
        }
        let want = self.pending.is_some();
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match registry.reregister(&mut self.socket, self.token, interest) {
                Ok(()) => self.writable = want,
                Err(e) => debug!("UDP socket reregister: {e}"),
            }
        }
    }
}
