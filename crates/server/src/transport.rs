//! The transport: what carries a connection's bytes, plain TCP or TLS over
//! it, behind one interface to the loop. Everything above (HTTP/1.1,
//! WebSocket, event streams) reads plaintext into the loop's buffer and
//! writes plaintext through [`Stream`], whichever it is.
//!
//! TLS is rustls (feature `tls`, on by default) through
//! the module `tls_session`: records are read from the socket and decrypted
//! into the caller's buffer; plaintext written is encrypted and sent at
//! once. A session never holds more than one write's worth: a write first
//! sends what it holds, and while the socket refuses that, the write says
//! `WouldBlock`, so the output queue above keeps the backpressure it has
//! with plain TCP.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

/// A TLS session of a connection (uninhabited without the `tls` feature).
#[cfg(feature = "tls")]
pub(crate) type TlsSession = crate::tls_session::TlsSession;
/// A TLS session of a connection (uninhabited without the `tls` feature).
#[cfg(not(feature = "tls"))]
pub(crate) enum TlsSession {}

/// Starts the server side of a TLS session.
#[cfg(feature = "tls")]
pub(crate) fn accept_tls(config: &std::sync::Arc<rustls::ServerConfig>) -> io::Result<Box<TlsSession>> {
    Ok(Box::new(TlsSession::new(config)?))
}

/// One connection's byte stream: its socket, and its TLS session if it
/// has one.
pub(crate) struct Stream<'a> {
    pub(crate) socket: &'a mut TcpStream,
    pub(crate) tls: Option<&'a mut TlsSession>,
}

impl Stream<'_> {
    /// The TCP peer's address (one `getpeername`), `None` once the
    /// connection has none.
    pub(crate) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.socket.peer_addr().ok()
    }

    /// Reads plaintext: `Ok(0)` at the end of the stream, `WouldBlock`
    /// when nothing more can be had now. With TLS this also runs the
    /// handshake and sends what it answers (see [`Stream::wants_write`]
    /// for what could not be sent yet).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => self.socket.read(buf),
            Some(tls) => tls_read(self.socket, tls, buf),
        }
    }

    /// Whether TLS holds bytes the socket has not taken yet (a handshake
    /// answer, say): the connection needs a flush.
    pub(crate) fn wants_write(&self) -> bool {
        match self.tls.as_deref() {
            None => false,
            #[cfg(feature = "tls")]
            Some(tls) => tls.wants_write(),
            #[cfg(not(feature = "tls"))]
            Some(tls) => match *tls {},
        }
    }

    /// Whether the peer ended its TLS session with `close_notify` and
    /// keeps its TCP stream open (as far as reads saw): the end of the
    /// input for what runs above, but the socket still has to be drained
    /// before it closes. `false` without TLS.
    pub(crate) fn tls_ended_socket_open(&self) -> bool {
        match self.tls.as_deref() {
            None => false,
            #[cfg(feature = "tls")]
            Some(tls) => tls.peer_closed() && !tls.socket_ended(),
            #[cfg(not(feature = "tls"))]
            Some(tls) => match *tls {},
        }
    }

    /// Whether the peer's TLS session has ended (its `close_notify`, or
    /// its TCP stream's end under it), so that a read will say so even
    /// after a short read. `false` without TLS.
    pub(crate) fn tls_peer_closed(&self) -> bool {
        match self.tls.as_deref() {
            None => false,
            #[cfg(feature = "tls")]
            Some(tls) => tls.peer_closed(),
            #[cfg(not(feature = "tls"))]
            Some(tls) => match *tls {},
        }
    }

    /// Sends what TLS holds encrypted: `Ok(true)` once nothing is left.
    pub(crate) fn flush_pending(&mut self) -> io::Result<bool> {
        match self.tls.as_deref_mut() {
            None => Ok(true),
            Some(tls) => tls_flush(self.socket, tls),
        }
    }

    /// Ends our side of the stream (a TLS `close_notify` first).
    pub(crate) fn shutdown_write(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls_close(self.socket, tls);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            // One buffer goes out with `send`, which skips the VFS layer
            // that `writev` passes through (`benches/profile.sh`: the
            // `writev` entry took 4.5 % of an echo server's CPU at 20 B,
            // `send`'s 1.2 %).
            None => self.socket.write(buf),
            Some(_) => self.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => self.socket.write_vectored(bufs),
            Some(tls) => tls_write(self.socket, tls, bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "tls")]
fn tls_read(socket: &mut TcpStream, tls: &mut TlsSession, buf: &mut [u8]) -> io::Result<usize> {
    tls.read(socket, buf)
}

#[cfg(feature = "tls")]
fn tls_flush(socket: &mut TcpStream, tls: &mut TlsSession) -> io::Result<bool> {
    tls.flush(socket)
}

#[cfg(feature = "tls")]
fn tls_write(socket: &mut TcpStream, tls: &mut TlsSession, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    tls.write(socket, bufs)
}

#[cfg(feature = "tls")]
fn tls_close(socket: &mut TcpStream, tls: &mut TlsSession) {
    tls.close(socket);
}

#[cfg(not(feature = "tls"))]
fn tls_read(_: &mut TcpStream, tls: &mut TlsSession, _: &mut [u8]) -> io::Result<usize> {
    match *tls {}
}

#[cfg(not(feature = "tls"))]
fn tls_flush(_: &mut TcpStream, tls: &mut TlsSession) -> io::Result<bool> {
    match *tls {}
}

#[cfg(not(feature = "tls"))]
fn tls_write(_: &mut TcpStream, tls: &mut TlsSession, _: &[IoSlice<'_>]) -> io::Result<usize> {
    match *tls {}
}

#[cfg(not(feature = "tls"))]
fn tls_close(_: &mut TcpStream, tls: &mut TlsSession) {
    match *tls {}
}
