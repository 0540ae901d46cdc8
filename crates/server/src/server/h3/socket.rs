//! The UDP socket under a loop's QUIC endpoint (on the TLS port's number:
//! the server's one socket, or with `reuse_port` one of the loop's own, as
//! `server::sockets` binds them), read until it would block, and
//! written until it would block, keeping the one send it refused and
//! asking for write readiness only while that one waits.
//!
//! It reads and writes through `quinn-udp`, which uses what the kernel
//! offers: several datagrams per `recvmmsg`, the datagrams the kernel
//! coalesced (GRO) split by their stride, the address each datagram was
//! sent to (so that answers leave from it on a host with several), and
//! one `sendmsg` for a run of same-sized datagrams to one peer (GSO, as
//! many as the kernel takes; turned off by quinn-udp if the kernel or the
//! device refuses it).
//!
//! Calling contract: [`QuicSocket::receive`] hands each datagram read to
//! the caller's closure, [`QuicSocket::send`] takes sends from the
//! caller's source until it has none or the socket pushes back; nothing
//! here knows QUIC.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use log::debug;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

/// Datagrams read per readiness event before the rest waits for the next
/// turn, so that a flood on UDP cannot starve the TCP connections.
const DATAGRAMS_PER_TURN: usize = 256;

/// The largest UDP payload, and the room for one receive (a datagram, or
/// the run of datagrams GRO coalesced, which the kernel caps at this).
const MAX_DATAGRAM: usize = 65_535;

/// Receives per `recvmmsg`.
const RECEIVE_BATCH: usize = 8;

/// One send: a datagram, or with `segment_size` a run of datagrams of
/// that size (the last may be shorter) to the same peer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outgoing {
    /// The peer.
    pub(super) to: SocketAddr,
    /// Bytes in the buffer.
    pub(super) len: usize,
    /// The datagrams' size when the buffer holds several.
    pub(super) segment_size: Option<usize>,
    /// The local address to send from (where the peer's datagrams came
    /// to), when known.
    pub(super) from: Option<IpAddr>,
}

/// A loop's UDP socket for QUIC.
pub(super) struct QuicSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    token: Token,
    /// The send the socket refused last, to send first.
    pending: Option<(Outgoing, Vec<u8>)>,
    /// Write interest is registered.
    writable: bool,
    /// The last read stopped at [`DATAGRAMS_PER_TURN`]: read again next
    /// turn, since edge-triggered readiness says nothing new.
    pub(super) more_to_read: bool,
    /// [`RECEIVE_BATCH`] receive buffers of [`MAX_DATAGRAM`] bytes.
    buf: Vec<u8>,
    /// Where the next send is written.
    out: Vec<u8>,
}

impl QuicSocket {
    /// Takes `socket` (bound and non-blocking) and registers it for
    /// reading under `token`.
    pub(super) fn new(
        socket: std::net::UdpSocket,
        registry: &Registry,
        token: Token,
    ) -> io::Result<QuicSocket> {
        let addr = socket.local_addr()?;
        let mut socket = UdpSocket::from_std(socket);
        let state = UdpSocketState::new((&socket).into())?;
        debug!(
            "UDP {addr}: up to {} datagrams a send (GSO), {} a receive (GRO)",
            state.max_gso_segments(),
            state.gro_segments()
        );
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(QuicSocket {
            socket,
            state,
            token,
            pending: None,
            writable: false,
            more_to_read: false,
            buf: vec![0; MAX_DATAGRAM * RECEIVE_BATCH],
            out: Vec::new(),
        })
    }

    /// The address bound.
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads datagrams until the socket would block (or this turn's share
    /// is read), handing each to `each` with its sender and the local
    /// address it was sent to, when the kernel says.
    pub(super) fn receive(&mut self, mut each: impl FnMut(SocketAddr, Option<IpAddr>, &[u8])) {
        self.more_to_read = false;
        let mut read = 0;
        while read < DATAGRAMS_PER_TURN {
            let mut chunks = self.buf.chunks_mut(MAX_DATAGRAM);
            let mut slices: [IoSliceMut<'_>; RECEIVE_BATCH] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            let mut metas = [RecvMeta::default(); RECEIVE_BATCH];
            match self.state.recv((&self.socket).into(), &mut slices, &mut metas) {
                Ok(received) => {
                    for (meta, slice) in metas.iter().zip(slices.iter()).take(received) {
                        let data = slice.get(..meta.len).unwrap_or_default();
                        // GRO hands a run of datagrams of `stride` bytes
                        // each (the last may be shorter) as one.
                        for datagram in data.chunks(meta.stride.max(1)) {
                            each(meta.addr, meta.dst_ip, datagram);
                            read += 1;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported for an earlier send, say: the
                // socket itself goes on.
                Err(e) => debug!("UDP receive: {e}"),
            }
        }
        self.more_to_read = true;
    }

    /// Sends what was held back, then what `next` gives (each written into
    /// the buffer it is lent, given the most datagrams one send may
    /// carry), until it gives none or the socket would block; write
    /// interest is registered only while a send waits.
    pub(super) fn send(
        &mut self,
        registry: &Registry,
        mut next: impl FnMut(&mut Vec<u8>, usize) -> Option<Outgoing>,
    ) {
        loop {
            let held = self.pending.take();
            let (outgoing, bytes) = match &held {
                Some((outgoing, bytes)) => (*outgoing, bytes.as_slice()),
                None => {
                    let Some(outgoing) = next(&mut self.out, self.state.max_gso_segments()) else {
                        break;
                    };
                    (outgoing, self.out.get(..outgoing.len).unwrap_or_default())
                }
            };
            let transmit = Transmit {
                destination: outgoing.to,
                ecn: None,
                contents: bytes,
                segment_size: outgoing.segment_size,
                src_ip: outgoing.from,
            };
            match self.state.try_send((&self.socket).into(), &transmit) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending = Some((outgoing, bytes.to_vec()));
                    break;
                }
                // QUIC recovers a lost datagram; one the kernel refuses
                // (an unreachable address, a path MTU probe too large, a
                // GSO send the device refused, after which quinn-udp
                // sends one datagram at a time) is as good as lost.
                Err(e) => debug!("UDP send to {}: {e}", outgoing.to),
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
