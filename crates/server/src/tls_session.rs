//! One connection's TLS session: rustls' unbuffered API for the
//! handshake (and for TLS 1.2 throughout), then, on TLS 1.3, the record
//! layer of [`crate::tls_records`] with the keys taken from rustls. While
//! the connection is idle the session keeps its keys and what rustls
//! needs to update them, and nothing else.
//!
//! rustls' buffered `ServerConnection` keeps a receive buffer of at least
//! 4 KiB after its first read, and queues of its own, for the life of the
//! connection. Here the bytes in flight live in buffers of the loop's
//! thread instead (one for records read from the socket, one for records
//! encrypted to it, one to join the plaintext of a vectored write), lent
//! to whichever connection is being read or written. A connection owns a
//! buffer only while it has to: the part of a record that arrived without
//! the rest, decrypted plaintext the caller's buffer had no room for, and
//! encrypted bytes the socket has not taken yet. Each is released once
//! used up.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::mem;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{CipherSuite, ProtocolVersion};

use crate::tls_records::{RecordError, Records};

/// Plaintext taken by one write at most: what the session holds encrypted
/// while the socket pushes back stays below this plus the records'
/// overhead.
const WRITE_LIMIT: usize = 64 * 1024;

/// Room for the socket's bytes in one read.
const READ_SIZE: usize = 32 * 1024;

/// Bytes of records kept waiting for the rest of a record or of a
/// handshake message at most (rustls accepts handshake messages of up to
/// 64 KiB, each record up to 16 KiB and its overhead).
const INCOMING_LIMIT: usize = 64 * 1024 + 18 * 1024;

/// Records' overhead per 16 KiB of plaintext, a generous estimate (TLS 1.2
/// with AES-GCM needs 29 bytes: header, explicit nonce and tag); rustls
/// says how much it needs when this is short.
const OVERHEAD_PER_RECORD: usize = 64;

thread_local! {
    /// Records read from the socket, being decrypted.
    static RECEIVED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Records encrypted, on their way to the socket.
    static SEALED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The plaintext of a vectored write, joined to be encrypted at once.
    static JOINED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The server side of one TLS session.
pub(crate) struct TlsSession {
    engine: Engine,
    /// The protocol ALPN chose, kept from rustls when the records leave it.
    alpn: Option<Box<[u8]>>,
    /// Whether the configuration lets the keys be taken from rustls once
    /// the handshake is done.
    may_take_keys: bool,
    /// What the session holds between calls, boxed apart so that an idle
    /// session pays one pointer for it: `None` while nothing is held.
    held: Option<Box<Held>>,
    /// The peer's `close_notify` arrived (or its TCP stream ended).
    peer_closed: bool,
    /// This side's `close_notify` went into the records (once the records
    /// are the session's own; rustls keeps its own account before).
    sent_close: bool,
}

/// What opens and seals the session's records.
#[allow(
    clippy::large_enum_variant,
    reason = "the session is boxed already: the records in it make one allocation, not two"
)]
enum Engine {
    /// rustls: the handshake, and TLS 1.2 throughout.
    Rustls(Box<UnbufferedServerConnection>),
    /// TLS 1.3 after the handshake.
    Records(Records),
    /// rustls refused to hand the keys over (it never should once the
    /// handshake is done): the session cannot go on.
    Lost,
}

/// Bytes a session holds between calls, each only until used.
#[derive(Default)]
struct Held {
    /// Received bytes not processed yet: the start of a record (or of a
    /// handshake message) whose rest has not arrived.
    incoming: Vec<u8>,
    /// Decrypted plaintext the caller's buffer had no room for, and how
    /// much of it was read since.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Encrypted bytes the socket has not taken, and how many of them it
    /// took since.
    outgoing: Vec<u8>,
    outgoing_sent: usize,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.incoming.is_empty() && self.plaintext.is_empty() && self.outgoing.is_empty()
    }
}

/// The session's held bytes, made when first needed.
fn held(slot: &mut Option<Box<Held>>) -> &mut Held {
    slot.get_or_insert_with(Box::default)
}

impl TlsSession {
    /// A session about to receive a client's hello.
    pub(crate) fn new(config: &Arc<rustls::ServerConfig>) -> io::Result<TlsSession> {
        Ok(TlsSession {
            engine: Engine::Rustls(Box::new(
                UnbufferedServerConnection::new(config.clone()).map_err(io::Error::other)?,
            )),
            alpn: None,
            may_take_keys: config.enable_secret_extraction,
            held: None,
            peer_closed: false,
            sent_close: false,
        })
    }

    /// The protocol ALPN chose, once the handshake has.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.engine {
            Engine::Rustls(conn) => conn.alpn_protocol(),
            Engine::Records(_) | Engine::Lost => self.alpn.as_deref(),
        }
    }

    /// Whether encrypted bytes wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.held
            .as_deref()
            .is_some_and(|h| h.outgoing_sent < h.outgoing.len())
    }

    /// Fills `buf` with plaintext as far as the session and the socket
    /// allow: like a plain socket's read, a read shorter than `buf` means
    /// the socket had no more (the loop relies on it with edge-triggered
    /// readiness), never that the session still holds some. `Ok(0)` at
    /// the end (the peer's `close_notify`, or its TCP stream ending: HTTP
    /// messages carry their own length). Runs the handshake on the way
    /// and sends what it answers.
    pub(crate) fn read(&mut self, socket: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = self.take_plaintext(buf);
        if filled == buf.len() || self.peer_closed {
            return Ok(filled);
        }
        RECEIVED.with_borrow_mut(|received| {
            // `received[start..end]` holds the bytes not processed yet;
            // the buffer keeps its length (zeroed once) and only grows.
            let incoming = self
                .held
                .as_deref_mut()
                .map(|h| mem::take(&mut h.incoming))
                .unwrap_or_default();
            let mut end = incoming.len();
            if received.len() < end + READ_SIZE {
                received.resize(end + READ_SIZE, 0);
            }
            if let Some(to) = received.get_mut(..end) {
                to.copy_from_slice(&incoming);
            }
            let mut start = 0;
            let mut socket_ended = false;
            let result = loop {
                match self.process(
                    socket,
                    received.get_mut(start..end).unwrap_or_default(),
                    buf,
                    &mut filled,
                ) {
                    Ok(used) => start += used,
                    Err(e) => break Err(e),
                }
                if filled == buf.len() || self.peer_closed {
                    break Ok(filled);
                }
                if socket_ended {
                    self.peer_closed = true;
                    break Ok(filled);
                }
                received.copy_within(start..end, 0);
                end -= start;
                start = 0;
                if end >= INCOMING_LIMIT {
                    break Err(io::Error::new(io::ErrorKind::InvalidData, "TLS message too long"));
                }
                if received.len() < end + READ_SIZE {
                    received.resize(end + READ_SIZE, 0);
                }
                match socket.read(received.get_mut(end..).unwrap_or_default()) {
                    Ok(0) => socket_ended = true,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => break Ok(filled),
                    Err(e) => break Err(e),
                }
            };
            // What the next read goes on from: kept by the session (and
            // only then allocated).
            if let Some(rest) = received.get(start..end).filter(|rest| !rest.is_empty()) {
                held(&mut self.held).incoming = rest.to_vec();
            }
            self.release();
            result
        })
    }

    /// Processes the records in `received` as far as they go: decrypted
    /// plaintext into `buf` after `filled` (the rest into the session),
    /// handshake answers sent (or kept for the socket). Returns how many
    /// bytes of `received` are done with.
    fn process(
        &mut self,
        socket: &mut TcpStream,
        received: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<usize> {
        match self.engine {
            Engine::Records(_) => self.open_records(socket, received, buf, filled),
            Engine::Rustls(_) => {
                let used = self.process_rustls(socket, received, buf, filled)?;
                if !self.take_records() {
                    return Ok(used);
                }
                let rest = received.get_mut(used..).unwrap_or_default();
                Ok(used + self.open_records(socket, rest, buf, filled)?)
            }
            Engine::Lost => Err(lost()),
        }
    }

    /// [`TlsSession::process`] while rustls has the records.
    fn process_rustls(
        &mut self,
        socket: &mut TcpStream,
        received: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<usize> {
        let mut used = 0;
        loop {
            let Engine::Rustls(conn) = &mut self.engine else {
                return Err(lost());
            };
            let mut record_discard = 0;
            let UnbufferedStatus { discard, state } =
                conn.process_tls_records(received.get_mut(used..).unwrap_or_default());
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    // rustls queued the alert that says why: send it.
                    self.send_queued(socket);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        record_discard += record.discard;
                        deliver(record.payload, buf, filled, &mut self.held);
                    }
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out))?;
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // The bytes are the session's now; sent as far as the
                    // socket takes them, the rest when it is writable.
                    transmit.done();
                    self.flush(socket)?;
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    return Ok(used + discard);
                }
                // Nothing more without more bytes from the peer (early
                // data is not enabled, so never offered).
                _ => return Ok(used + discard),
            }
            used += discard + record_discard;
        }
    }

    /// Takes the keys out of rustls once a TLS 1.3 handshake is done and
    /// rustls has nothing left to say: whether the session's records are
    /// its own now.
    fn take_records(&mut self) -> bool {
        let Engine::Rustls(conn) = &self.engine else {
            return matches!(self.engine, Engine::Records(_));
        };
        let known_suite = conn.negotiated_cipher_suite().is_some_and(|suite| {
            matches!(
                suite.suite(),
                CipherSuite::TLS13_AES_128_GCM_SHA256
                    | CipherSuite::TLS13_AES_256_GCM_SHA384
                    | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            )
        });
        if !self.may_take_keys
            || conn.is_handshaking()
            || conn.protocol_version() != Some(ProtocolVersion::TLSv1_3)
            || !known_suite
            || self.peer_closed
        {
            return false;
        }
        let alpn = conn.alpn_protocol().map(Box::from);
        let Engine::Rustls(conn) = mem::replace(&mut self.engine, Engine::Lost) else {
            return false;
        };
        match conn.dangerous_into_kernel_connection() {
            Ok((secrets, kernel)) => match Records::new(secrets, kernel) {
                Some(records) => {
                    self.engine = Engine::Records(records);
                    self.alpn = alpn;
                    true
                }
                None => {
                    log::warn!("TLS: the keys rustls handed over are of a suite this server does not know");
                    false
                }
            },
            Err(e) => {
                log::warn!("TLS: rustls would not hand the keys over after the handshake: {e}");
                false
            }
        }
    }

    /// [`TlsSession::process`] once the records are the session's own.
    fn open_records(
        &mut self,
        socket: &mut TcpStream,
        received: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<usize> {
        let Engine::Records(records) = &mut self.engine else {
            return Err(lost());
        };
        let held_slot = &mut self.held;
        let opened = records.open(received, |plaintext| deliver(plaintext, buf, filled, held_slot));
        let answer = match &opened {
            Ok(opened) if opened.update_requested => {
                records.seal_key_update(&mut held(&mut self.held).outgoing)
            }
            Ok(_) => Ok(()),
            Err(RecordError::Send(alert)) => {
                let _ = records.seal_alert(*alert, &mut held(&mut self.held).outgoing);
                Ok(())
            }
            Err(RecordError::Received(_)) => Ok(()),
        };
        let flushed = self.flush(socket);
        let opened = opened?;
        answer?;
        flushed?;
        if opened.closed {
            self.peer_closed = true;
        }
        Ok(opened.used)
    }

    /// Lets go of the held bytes' box once nothing is in it.
    fn release(&mut self) {
        if self.held.as_deref().is_some_and(Held::is_empty) {
            self.held = None;
        }
    }

    /// Moves plaintext kept from an earlier read into `buf`.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let Some(h) = self.held.as_deref_mut() else {
            return 0;
        };
        let kept = h.plaintext.get(h.plaintext_read..).unwrap_or_default();
        let n = kept.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), kept.get(..n)) {
            to.copy_from_slice(from);
        }
        h.plaintext_read += n;
        if h.plaintext_read >= h.plaintext.len() {
            h.plaintext = Vec::new();
            h.plaintext_read = 0;
        }
        self.release();
        n
    }

    /// Sends what the session holds encrypted: `Ok(true)` once nothing is
    /// left (and the buffer is released).
    pub(crate) fn flush(&mut self, socket: &mut TcpStream) -> io::Result<bool> {
        let Some(h) = self.held.as_deref_mut() else {
            return Ok(true);
        };
        while let Some(pending) = h.outgoing.get(h.outgoing_sent..).filter(|p| !p.is_empty()) {
            match socket.write(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => h.outgoing_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        h.outgoing = Vec::new();
        h.outgoing_sent = 0;
        self.release();
        Ok(true)
    }

    /// Encrypts and sends plaintext: how much of it was taken (at most
    /// [`WRITE_LIMIT`]). It takes more only once what it holds is sent,
    /// and says `WouldBlock` meanwhile (and during the handshake): the
    /// output queue above keeps the backpressure it has with plain TCP.
    pub(crate) fn write(&mut self, socket: &mut TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.flush(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let total = bufs.iter().map(|b| b.len()).sum::<usize>().min(WRITE_LIMIT);
        if total == 0 {
            return Ok(0);
        }
        SEALED.with_borrow_mut(|sealed| {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            let len = match first.get(..total) {
                Some(whole) => self.seal(socket, whole, sealed)?,
                None => JOINED.with_borrow_mut(|joined| {
                    joined.clear();
                    for b in bufs {
                        let room = total - joined.len();
                        joined.extend_from_slice(b.get(..room.min(b.len())).unwrap_or_default());
                    }
                    self.seal(socket, joined, sealed)
                })?,
            };
            self.send(socket, sealed.get(..len).unwrap_or_default())?;
            Ok(total)
        })
    }

    /// Encrypts `plaintext` into `sealed`, once the session may send
    /// application data.
    /// Returns how many bytes of `sealed` it wrote; `sealed` only grows.
    fn seal(&mut self, socket: &mut TcpStream, plaintext: &[u8], sealed: &mut Vec<u8>) -> io::Result<usize> {
        // The records are taken from rustls by the read that ends the
        // handshake (when rustls has nothing left to send); until then,
        // and on TLS 1.2, rustls seals.
        if let Engine::Records(records) = &mut self.engine {
            // Nothing goes after close_notify.
            if self.sent_close {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            sealed.clear();
            records.seal(plaintext, sealed)?;
            return Ok(sealed.len());
        }
        loop {
            let Engine::Rustls(conn) = &mut self.engine else {
                return Err(lost());
            };
            let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
            let state = state.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            match state {
                ConnectionState::WriteTraffic(mut traffic) => {
                    let records = plaintext.len() / (16 * 1024) + 1;
                    let mut room = plaintext.len() + records * OVERHEAD_PER_RECORD;
                    for _ in 0..2 {
                        if sealed.len() < room {
                            sealed.resize(room, 0);
                        }
                        match traffic.encrypt(plaintext, sealed) {
                            Ok(n) => return Ok(n),
                            Err(EncryptError::InsufficientSize(size)) => room = size.required_size,
                            Err(e) => return Err(io::Error::other(e.to_string())),
                        }
                    }
                    return Err(io::Error::other("TLS records larger than rustls said"));
                }
                ConnectionState::EncodeTlsData(mut data) => {
                    encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out))?;
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    if !self.flush(socket)? {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                }
                ConnectionState::ReadTraffic(mut traffic) => {
                    // Not left behind by a read, which takes all; kept
                    // for the next read if it ever is.
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        held(&mut self.held).plaintext.extend_from_slice(record.payload);
                    }
                }
                ConnectionState::PeerClosed => self.peer_closed = true,
                ConnectionState::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
                // The handshake is not done: the bytes cannot go yet.
                _ => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    /// Sends `sealed` as far as the socket takes it; the session keeps
    /// the rest.
    fn send(&mut self, socket: &mut TcpStream, sealed: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        while let Some(rest) = sealed.get(sent..).filter(|r| !r.is_empty()) {
            match socket.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(rest) = sealed.get(sent..).filter(|rest| !rest.is_empty()) {
            held(&mut self.held).outgoing.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Sends `close_notify` (when the handshake is done) and what is
    /// still held, as far as the socket takes it.
    pub(crate) fn close(&mut self, socket: &mut TcpStream) {
        if let Engine::Records(records) = &mut self.engine
            && !self.sent_close
        {
            self.sent_close = true;
            let _ = records.seal_close_notify(&mut held(&mut self.held).outgoing);
        }
        // A few steps at most: what rustls still has to say first, then
        // the alert.
        for _ in 0..4 {
            let Engine::Rustls(conn) = &mut self.engine else {
                break;
            };
            let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let _ = encode_into(&mut held(&mut self.held).outgoing, |out| {
                        traffic.queue_close_notify(out)
                    });
                    break;
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    if encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out)).is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::PeerClosed) => self.peer_closed = true,
                _ => break,
            }
        }
        let _ = self.flush(socket);
    }

    /// Encodes what rustls queued (the alert after an error) and sends it
    /// as far as the socket takes it.
    fn send_queued(&mut self, socket: &mut TcpStream) {
        for _ in 0..4 {
            let Engine::Rustls(conn) = &mut self.engine else {
                break;
            };
            let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    if encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out)).is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => break,
            }
        }
        let _ = self.flush(socket);
    }
}

/// Copies decrypted `plaintext` into `buf` after `filled`, and what does
/// not fit into the session's held plaintext.
fn deliver(plaintext: &[u8], buf: &mut [u8], filled: &mut usize, slot: &mut Option<Box<Held>>) {
    let room = buf.get_mut(*filled..).unwrap_or_default();
    let now = room.len().min(plaintext.len());
    if let (Some(to), Some(from)) = (room.get_mut(..now), plaintext.get(..now)) {
        to.copy_from_slice(from);
    }
    *filled += now;
    if let Some(rest) = plaintext.get(now..).filter(|rest| !rest.is_empty()) {
        held(slot).plaintext.extend_from_slice(rest);
    }
}

/// The error of a session whose keys were lost.
fn lost() -> io::Error {
    io::Error::other("TLS session lost its keys")
}

/// Why an encoding into a buffer did not happen.
enum SizeOrError {
    /// The buffer was too short: it needs this much.
    Size(InsufficientSizeError),
    Error(io::Error),
}

impl From<EncodeError> for SizeOrError {
    fn from(e: EncodeError) -> SizeOrError {
        match e {
            EncodeError::InsufficientSize(size) => SizeOrError::Size(size),
            other => SizeOrError::Error(io::Error::other(other.to_string())),
        }
    }
}

impl From<EncryptError> for SizeOrError {
    fn from(e: EncryptError) -> SizeOrError {
        match e {
            EncryptError::InsufficientSize(size) => SizeOrError::Size(size),
            other => SizeOrError::Error(io::Error::other(other.to_string())),
        }
    }
}

/// Appends what `encode` writes to `out`, growing it to the size rustls
/// asks for when short.
fn encode_into<E: Into<SizeOrError>>(
    out: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<usize> {
    let held = out.len();
    let mut room = 4 * 1024;
    for _ in 0..2 {
        out.resize(held + room, 0);
        match encode(out.get_mut(held..).unwrap_or_default()).map_err(Into::into) {
            Ok(n) => {
                out.truncate(held + n);
                return Ok(n);
            }
            Err(SizeOrError::Size(size)) => room = size.required_size,
            Err(SizeOrError::Error(e)) => {
                out.truncate(held);
                return Err(e);
            }
        }
    }
    out.truncate(held);
    Err(io::Error::other("TLS record larger than rustls said"))
}
