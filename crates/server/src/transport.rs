//! The transport: what carries a connection's bytes, plain TCP or TLS over
//! it, behind one interface to the loop. Everything above (HTTP/1.1,
//! WebSocket, event streams) reads plaintext into the loop's buffer and
//! writes plaintext through [`Stream`], whichever it is.
//!
//! TLS is rustls (feature `tls`, on by default): records are read from
//! the socket and decrypted into the caller's buffer; plaintext written is
//! encrypted into rustls' buffer and sent at once. rustls never holds more
//! than one write's worth: a write first sends what it holds, and while
//! the socket refuses that, the write says `WouldBlock`, so the output
//! queue above keeps the backpressure it has with plain TCP.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

/// A TLS session of a connection (uninhabited without the `tls` feature).
#[cfg(feature = "tls")]
pub(crate) type TlsSession = rustls::ServerConnection;
/// A TLS session of a connection (uninhabited without the `tls` feature).
#[cfg(not(feature = "tls"))]
pub(crate) enum TlsSession {}

/// Plaintext buffered inside rustls at most, per connection.
#[cfg(feature = "tls")]
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// Starts the server side of a TLS session.
#[cfg(feature = "tls")]
pub(crate) fn accept_tls(config: &std::sync::Arc<rustls::ServerConfig>) -> io::Result<Box<TlsSession>> {
    let mut session = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    session.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
    Ok(Box::new(session))
}

/// One connection's byte stream: its socket, and its TLS session if it
/// has one.
pub(crate) struct Stream<'a> {
    pub(crate) socket: &'a mut TcpStream,
    pub(crate) tls: Option<&'a mut TlsSession>,
}

impl Stream<'_> {
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

/// Fills `buf` as far as TLS and the socket allow: like a plain socket's
/// read, a read shorter than `buf` means the socket had no more (the loop
/// relies on it with edge-triggered readiness), never that rustls still
/// holds some.
#[cfg(feature = "tls")]
fn tls_read(socket: &mut TcpStream, tls: &mut TlsSession, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    let mut socket_ended = false;
    loop {
        // First what rustls has decrypted already.
        while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            match tls.reader().read(rest) {
                // close_notify: the end, after what was read.
                Ok(0) => return Ok(filled),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The peer closed TCP without close_notify: for HTTP, whose
                // messages carry their own length, that is just the end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
        if filled == buf.len() || socket_ended {
            return Ok(filled);
        }
        match tls.read_tls(socket) {
            Ok(0) => socket_ended = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let processed = tls.process_new_packets();
        // What the handshake answers (or the alert that says why not).
        let _ = tls_flush(socket, tls);
        if let Err(e) = processed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

#[cfg(feature = "tls")]
fn tls_flush(socket: &mut TcpStream, tls: &mut TlsSession) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(feature = "tls")]
fn tls_write(socket: &mut TcpStream, tls: &mut TlsSession, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // Take more plaintext only once what rustls holds is sent: this keeps
    // the backpressure of the socket.
    if !tls_flush(socket, tls)? {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let taken = tls.writer().write_vectored(bufs)?;
    if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
        // rustls' buffer is full (during the handshake, say): not an
        // error, the bytes just cannot go yet.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    match tls_flush(socket, tls) {
        Ok(_) => Ok(taken),
        // The plaintext is taken; the next write or flush sends it.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
        Err(e) => Err(e),
    }
}

#[cfg(feature = "tls")]
fn tls_close(socket: &mut TcpStream, tls: &mut TlsSession) {
    tls.send_close_notify();
    let _ = tls_flush(socket, tls);
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
