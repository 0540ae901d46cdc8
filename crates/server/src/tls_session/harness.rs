//! One TLS session driven over bytes in memory, as the loop drives it
//! over a socket: the rustls handshake, the handover of the keys, and the
//! session's own record layer after it. For tests and the fuzz target
//! (`fuzz/fuzz_targets/tls_session.rs`); not part of the server's API.
//!
//! The client's bytes are given with [`Harness::receive`]; the session
//! reads them when the test calls [`Harness::read`], as the loop does when
//! the socket is readable; what the session sends collects until
//! [`Harness::take_sent`]. [`Harness::set_write_room`] makes the "socket"
//! push back. [`tls12::Peer`] seals a TLS 1.2 client's records by hand
//! (rustls' client has no way to send a record it would not make).

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use super::{INCOMING_LIMIT, TlsSession};

pub mod records;
pub mod tls12;

/// The server's side of one TLS session over bytes in memory.
pub struct Harness {
    session: TlsSession,
    wire: Wire,
}

/// The in-memory socket.
#[derive(Default)]
struct Wire {
    inbound: Vec<u8>,
    read_at: usize,
    ended: bool,
    outbound: Vec<u8>,
    /// Bytes the socket takes before it pushes back; `None`: any.
    room: Option<usize>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.inbound.get(self.read_at..).unwrap_or_default();
        if rest.is_empty() {
            return if self.ended {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        self.read_at += n;
        if self.read_at == self.inbound.len() {
            self.inbound.clear();
            self.read_at = 0;
        }
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.room.map_or(buf.len(), |room| room.min(buf.len()));
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(room) = self.room.as_mut() {
            *room -= n;
        }
        self.outbound.extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Harness {
    /// A session about to receive a client's hello, with `config` as the
    /// server would use it (the keys are taken from rustls after a TLS
    /// 1.3 handshake when `config.enable_secret_extraction` is set, as the
    /// server sets it).
    ///
    /// # Errors
    ///
    /// What rustls says of the configuration.
    pub fn new(config: &Arc<rustls::ServerConfig>) -> io::Result<Harness> {
        Ok(Harness {
            session: TlsSession::new(config)?,
            wire: Wire::default(),
        })
    }

    /// Bytes from the client arrive on the socket.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.wire.inbound.extend_from_slice(bytes);
    }

    /// The client's stream ends (after what was received).
    pub fn end_input(&mut self) {
        self.wire.ended = true;
    }

    /// Reads plaintext, as the loop does on readiness: `WouldBlock` when
    /// nothing more can be had now, `Ok(0)` at the end.
    ///
    /// # Errors
    ///
    /// What the session says: `InvalidData` when the peer broke TLS.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.session.read(&mut self.wire, buf)
    }

    /// Reads until the session has no more: the plaintext, and the error
    /// that ended it (`WouldBlock` included) unless the stream ended.
    pub fn read_all(&mut self) -> (Vec<u8>, Option<io::Error>) {
        let mut plaintext = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return (plaintext, None),
                Ok(n) => plaintext.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (plaintext, Some(e)),
            }
        }
    }

    /// Encrypts and sends plaintext: how much was taken.
    ///
    /// # Errors
    ///
    /// `WouldBlock` during the handshake or while what the session holds
    /// is not sent; `BrokenPipe` after the session ended.
    pub fn write(&mut self, plaintext: &[u8]) -> io::Result<usize> {
        self.session.write(&mut self.wire, &[IoSlice::new(plaintext)])
    }

    /// Sends what the session holds: whether all of it went.
    ///
    /// # Errors
    ///
    /// What the socket says.
    pub fn flush(&mut self) -> io::Result<bool> {
        self.session.flush(&mut self.wire)
    }

    /// Ends the session: `close_notify` once the handshake is done.
    pub fn close(&mut self) {
        self.session.close(&mut self.wire);
    }

    /// What the session sent since the last call.
    pub fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.wire.outbound)
    }

    /// How many more bytes the socket takes before it pushes back
    /// (`None`: any number).
    pub fn set_write_room(&mut self, room: Option<usize>) {
        self.wire.room = room;
    }

    /// Whether the session holds encrypted bytes the socket has not taken.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// The protocol ALPN chose, once the handshake has.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// Bytes the session holds between calls (received, decrypted and
    /// encrypted), which must stay bounded whatever the peer sends.
    pub fn held_bytes(&self) -> usize {
        self.session.held_bytes()
    }

    /// The bound on what the session keeps of a record or handshake
    /// message not complete yet.
    pub const INCOMING_LIMIT: usize = INCOMING_LIMIT;
}
