//! One connection's TLS session: rustls' unbuffered API for the
//! handshake (and for TLS 1.2 throughout), then, on TLS 1.3, the record
//! layer of [`crate::tls::records`] with the keys taken from rustls. While
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

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus, WriteTraffic};
use rustls::{CipherSuite, ProtocolVersion};

use crate::tls::records::{RecordError, Records};

mod buffers;
mod encode;

use buffers::{Held, SeenInput, Window, deliver, held, whole_records};
use encode::{encode_into, encrypt};

/// Plaintext taken by one write at most: what the session holds encrypted
/// while the socket pushes back stays below this plus the records'
/// overhead.
const WRITE_LIMIT: usize = 64 * 1024;

/// Room for the socket's bytes in one read.
const READ_SIZE: usize = 32 * 1024;

/// Bytes of records kept waiting for the rest of a record or of a
/// handshake message at most (rustls accepts handshake messages of up to
/// 64 KiB, each record up to 16 KiB and its overhead).
pub(crate) const INCOMING_LIMIT: usize = 64 * 1024 + 18 * 1024;

/// Reads of what a peer sends after a fatal alert, at most, per call:
/// the rest waits for the next readiness (or is cut at the linger
/// deadline).
const DROPPED_READS: usize = 64;

/// Steps of rustls between two records at most (each state it reports
/// consumes what it reports, so a few are always enough).
const RUSTLS_STEPS: usize = 16;

thread_local! {
    /// Records read from the socket, being decrypted.
    static RECEIVED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Records encrypted, on their way to the socket.
    static SEALED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The plaintext of a vectored write, joined to be encrypted at once.
    static JOINED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The server side of one TLS session.
///
/// Calling contract, as for a socket: [`TlsSession::read`] when the socket
/// is readable (it runs the handshake too), [`TlsSession::write`] to send,
/// [`TlsSession::flush`] when the socket is writable again,
/// [`TlsSession::close`] to end. An error from `read` means the peer broke
/// TLS: the alert that says so is sent (or held until the socket takes
/// it), and from then on `read` drops what the peer still sends, so that
/// the connection can drain before it is closed, rather than reset it
/// under the alert.
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
    /// The peer's TCP stream ended (a read of the socket gave 0).
    socket_ended: bool,
    /// A read said `Ok(0)` for the peer's end: later reads only drop
    /// what the peer still sends (RFC 8446 §6.1: nothing after
    /// `close_notify` counts), until its TCP stream ends.
    end_told: bool,
    /// This side's `close_notify` or a fatal alert went into the records
    /// (once the records are the session's own; rustls keeps its own
    /// account before): nothing more may follow.
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
    /// The session ended on an error: the peer broke TLS (the alert is
    /// sent), or rustls would not hand the keys over. What still arrives
    /// is read and dropped.
    Failed,
}

/// What one step of rustls came to.
enum Step {
    /// Go on: it has more to say, or may.
    Go,
    /// It can go no further with what it was given.
    Blocked,
    /// The peer ended the session.
    Closed,
    /// The peer broke TLS: rustls queued the alert that says why.
    Failed(rustls::Error),
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
            socket_ended: false,
            end_told: false,
            sent_close: false,
        })
    }

    /// The protocol ALPN chose, once the handshake has.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.engine {
            Engine::Rustls(conn) => conn.alpn_protocol(),
            Engine::Records(_) | Engine::Failed => self.alpn.as_deref(),
        }
    }

    /// Whether encrypted bytes wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.held
            .as_deref()
            .is_some_and(|h| h.outgoing_sent < h.outgoing.len())
    }

    /// Whether the peer ended the session (its `close_notify`, or its TCP
    /// stream's end).
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether the peer's TCP stream has ended (as far as reads saw): a
    /// peer that sent `close_notify` may keep it open, and write on.
    pub(crate) fn socket_ended(&self) -> bool {
        self.socket_ended
    }

    /// Bytes the session holds for its connection (received, decrypted or
    /// encrypted), besides its own state.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held.as_deref().map_or(0, |h| {
            h.incoming.capacity() + h.plaintext.capacity() + h.outgoing.capacity()
        })
    }

    /// Fills `buf` with plaintext as far as the session and the socket
    /// allow: like a plain socket's read, a read shorter than `buf` means
    /// the socket had no more (the loop relies on it with edge-triggered
    /// readiness), never that the session still holds some. `Ok(0)` at
    /// the end (the peer's `close_notify`, or its TCP stream ending: HTTP
    /// messages carry their own length), once; after that a read drops
    /// what the peer still sends (`WouldBlock`) and says `Ok(0)` again
    /// only once its TCP stream ends too, so that the connection can
    /// drain instead of closing on unread input (a reset). Runs the
    /// handshake on the way and sends what it answers.
    pub(crate) fn read<S: Read + Write>(&mut self, socket: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        if matches!(self.engine, Engine::Failed) {
            return drop_input(socket);
        }
        let mut filled = self.take_plaintext(buf);
        if filled == buf.len() {
            return Ok(filled);
        }
        if self.peer_closed {
            return self.read_after_end(socket, filled);
        }
        RECEIVED.with_borrow_mut(|received| {
            // `received[start..end]` holds the bytes not processed yet;
            // the buffer keeps its length (zeroed once) and only grows.
            let (incoming, seen) = self
                .held
                .as_deref_mut()
                .map(|h| (mem::take(&mut h.incoming), mem::take(&mut h.incoming_seen)))
                .unwrap_or_default();
            let mut w = Window {
                start: 0,
                seen: seen.min(incoming.len()),
                end: incoming.len(),
            };
            if received.len() < w.end + READ_SIZE {
                received.resize(w.end + READ_SIZE, 0);
            }
            if let Some(to) = received.get_mut(..w.end) {
                to.copy_from_slice(&incoming);
            }
            drop(incoming);
            let mut socket_ended = false;
            let result = loop {
                if let Err(e) = self.process(socket, received, &mut w, buf, &mut filled) {
                    break Err(e);
                }
                if filled == buf.len() || self.peer_closed {
                    break Ok(filled);
                }
                if socket_ended {
                    self.peer_closed = true;
                    self.socket_ended = true;
                    break Ok(filled);
                }
                received.copy_within(w.start..w.end, 0);
                w = Window {
                    start: 0,
                    seen: w.seen - w.start,
                    end: w.end - w.start,
                };
                if w.end >= INCOMING_LIMIT {
                    break Err(io::Error::new(io::ErrorKind::InvalidData, "TLS message too long"));
                }
                if received.len() < w.end + READ_SIZE {
                    received.resize(w.end + READ_SIZE, 0);
                }
                match socket.read(received.get_mut(w.end..).unwrap_or_default()) {
                    Ok(0) => socket_ended = true,
                    Ok(n) => w.end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => break Ok(filled),
                    Err(e) => break Err(e),
                }
            };
            // An error of the socket or of the peer's records ends the
            // session (a read again only drops what arrives).
            if result
                .as_ref()
                .is_err_and(|e| e.kind() != io::ErrorKind::WouldBlock)
            {
                self.engine = Engine::Failed;
            }
            // What the next read goes on from: kept by the session (and
            // only then allocated), unless the session is over or the peer
            // ended it (what follows its close_notify does not count).
            if !matches!(self.engine, Engine::Failed)
                && !self.peer_closed
                && let Some(rest) = received.get(w.start..w.end).filter(|rest| !rest.is_empty())
            {
                let h = held(&mut self.held);
                h.incoming = rest.to_vec();
                h.incoming_seen = w.seen - w.start;
            }
            self.release();
            if self.peer_closed && matches!(result, Ok(0)) {
                self.end_told = true;
            }
            result
        })
    }

    /// A read once the peer has ended the session: plaintext that came
    /// before its end (`filled` bytes of it in the caller's buffer
    /// already), then `Ok(0)` once; then what still arrives is dropped.
    fn read_after_end<S: Read>(&mut self, socket: &mut S, filled: usize) -> io::Result<usize> {
        if filled > 0 {
            return Ok(filled);
        }
        if !self.end_told || self.socket_ended {
            self.end_told = true;
            return Ok(0);
        }
        let dropped = drop_input(socket);
        if matches!(dropped, Ok(0)) {
            self.socket_ended = true;
        }
        dropped
    }

    /// Processes the records in `received[w.start..w.end]` as far as they
    /// go: decrypted plaintext into `buf` after `filled` (the rest into
    /// the session), handshake answers sent (or kept for the socket).
    fn process<S: Read + Write>(
        &mut self,
        socket: &mut S,
        received: &mut [u8],
        w: &mut Window,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<()> {
        match self.engine {
            Engine::Records(_) => {}
            Engine::Rustls(_) => {
                self.process_rustls(socket, received, w, buf, filled)?;
                if !self.take_records(w)? {
                    return Ok(());
                }
            }
            Engine::Failed => return Err(failed()),
        }
        let rest = received.get_mut(w.start..w.end).unwrap_or_default();
        let used = self.open_records(socket, rest, buf, filled)?;
        w.discard(used);
        w.seen = w.start;
        Ok(())
    }

    /// [`TlsSession::process`] while rustls has the records.
    ///
    /// rustls refers to the bytes it was given by position (it joins a
    /// handshake message's fragments in place): each call gives it what
    /// it kept of the last, then whole records. While the handshake runs,
    /// one record at a time, so that it never reads past the client's
    /// Finished: the records after it are the record layer's, and a
    /// KeyUpdate rustls took would be answered by rustls, after the keys
    /// had left it. The start of a record whose rest has not come is given
    /// too, but never counted as seen, so that rustls can refuse a header
    /// at once.
    fn process_rustls<S: Write>(
        &mut self,
        socket: &mut S,
        received: &mut [u8],
        w: &mut Window,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<()> {
        let mut limit = w.seen;
        loop {
            let Engine::Rustls(conn) = &mut self.engine else {
                return Err(failed());
            };
            let mut record_discard = 0;
            let UnbufferedStatus { discard, state } =
                conn.process_tls_records(received.get_mut(w.start..limit).unwrap_or_default());
            let step = match state {
                Err(e) => Step::Failed(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut step = Step::Go;
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                record_discard += record.discard;
                                deliver(record.payload, buf, filled, &mut self.held);
                            }
                            Err(e) => {
                                step = Step::Failed(e);
                                break;
                            }
                        }
                    }
                    step
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out))?;
                    Step::Go
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // The bytes are the session's now; sent as far as the
                    // socket takes them, the rest when it is writable.
                    transmit.done();
                    self.flush(socket)?;
                    Step::Go
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => Step::Closed,
                // Nothing more from what it was given (early data is not
                // enabled, so never offered).
                Ok(_) => Step::Blocked,
            };
            w.discard(discard + record_discard);
            limit = limit.max(w.start);
            match step {
                Step::Go => continue,
                Step::Closed => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Step::Failed(e) => {
                    let given = received.get_mut(w.start..limit).unwrap_or_default();
                    self.fail_with_rustls_alert(socket, given);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Step::Blocked => {}
            }
            if self.may_take_records() {
                return Ok(());
            }
            let one = matches!(&self.engine, Engine::Rustls(conn) if conn.is_handshaking());
            let whole = received.get(..w.end).unwrap_or_default();
            match whole_records(whole, w.seen, one) {
                Some(next) => {
                    w.seen = next;
                    limit = next;
                }
                None if limit < w.end => limit = w.end,
                None => return Ok(()),
            }
        }
    }

    /// Whether a TLS 1.3 handshake is done, so that the keys may be taken
    /// out of rustls.
    fn may_take_records(&self) -> bool {
        let Engine::Rustls(conn) = &self.engine else {
            return false;
        };
        let known_suite = conn.negotiated_cipher_suite().is_some_and(|suite| {
            matches!(
                suite.suite(),
                CipherSuite::TLS13_AES_128_GCM_SHA256
                    | CipherSuite::TLS13_AES_256_GCM_SHA384
                    | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            )
        });
        self.may_take_keys
            && !self.peer_closed
            && !conn.is_handshaking()
            && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
            && known_suite
    }

    /// Takes the keys out of rustls once a TLS 1.3 handshake is done and
    /// rustls has nothing left to say: whether the session's records are
    /// its own now.
    fn take_records(&mut self, w: &Window) -> io::Result<bool> {
        if !self.may_take_records() {
            return Ok(false);
        }
        if w.start != w.seen {
            // rustls keeps part of a message that would span the change
            // of keys; it refuses that itself, so this never happens.
            self.engine = Engine::Failed;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS: a handshake message spans the end of the handshake",
            ));
        }
        let Engine::Rustls(conn) = mem::replace(&mut self.engine, Engine::Failed) else {
            return Ok(false);
        };
        let alpn = conn.alpn_protocol().map(Box::from);
        let taken = conn
            .dangerous_into_kernel_connection()
            .map_err(|e| io::Error::other(format!("TLS: rustls would not hand the keys over: {e}")))?;
        let records = Records::new(taken.0, taken.1)
            .ok_or_else(|| io::Error::other("TLS: the keys rustls handed over are of an unknown suite"))?;
        self.engine = Engine::Records(records);
        self.alpn = alpn;
        Ok(true)
    }

    /// [`TlsSession::process`] once the records are the session's own.
    fn open_records<S: Write>(
        &mut self,
        socket: &mut S,
        received: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
    ) -> io::Result<usize> {
        let Engine::Records(records) = &mut self.engine else {
            return Err(failed());
        };
        let held_slot = &mut self.held;
        let opened = records.open(received, |plaintext| deliver(plaintext, buf, filled, held_slot));
        let answer = match &opened {
            // Nothing follows this side's close_notify, a KeyUpdate
            // neither.
            Ok(opened) if opened.update_requested && !self.sent_close => records
                .seal_key_update(&mut held(&mut self.held).outgoing)
                .map_err(io::Error::from),
            Ok(_) => Ok(()),
            Err(RecordError::Send(alert)) => {
                if !self.sent_close {
                    let _ = records.seal_alert(*alert, &mut held(&mut self.held).outgoing);
                }
                Ok(())
            }
            Err(RecordError::Received(_)) => Ok(()),
        };
        if opened.is_err() || answer.is_err() {
            self.sent_close = true;
            self.engine = Engine::Failed;
        }
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
    pub(crate) fn flush<S: Write>(&mut self, socket: &mut S) -> io::Result<bool> {
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
    pub(crate) fn write<S: Write>(&mut self, socket: &mut S, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
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
    fn seal<S: Write>(
        &mut self,
        socket: &mut S,
        plaintext: &[u8],
        sealed: &mut Vec<u8>,
    ) -> io::Result<usize> {
        match &mut self.engine {
            // The records are taken from rustls by the read that ends the
            // handshake; until then, and on TLS 1.2, rustls seals.
            Engine::Records(records) => {
                // Nothing goes after close_notify.
                if self.sent_close {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                sealed.clear();
                records.seal(plaintext, sealed)?;
                Ok(sealed.len())
            }
            Engine::Rustls(_) => {
                let written = self.with_seen_input(|session, input| {
                    session.settle_rustls(socket, input, |mut traffic, _| {
                        encrypt(&mut traffic, plaintext, sealed)
                    })
                })?;
                // The handshake is not done: the bytes cannot go yet.
                written.ok_or_else(|| io::ErrorKind::WouldBlock.into())
            }
            Engine::Failed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Sends `sealed` as far as the socket takes it, after what the
    /// session holds; the session keeps the rest.
    fn send<S: Write>(&mut self, socket: &mut S, sealed: &[u8]) -> io::Result<()> {
        if self.wants_write() {
            held(&mut self.held).outgoing.extend_from_slice(sealed);
            self.flush(socket)?;
            return Ok(());
        }
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
    pub(crate) fn close<S: Write>(&mut self, socket: &mut S) {
        match &mut self.engine {
            Engine::Records(records) => {
                if !self.sent_close {
                    self.sent_close = true;
                    let _ = records.seal_close_notify(&mut held(&mut self.held).outgoing);
                }
            }
            Engine::Rustls(_) => {
                // What rustls still has to say first, then the alert.
                let _ = self.with_seen_input(|session, input| {
                    session.settle_rustls(socket, input, |mut traffic, held_slot| {
                        encode_into(&mut held(held_slot).outgoing, |out| {
                            traffic.queue_close_notify(out)
                        })
                    })
                });
            }
            Engine::Failed => {}
        }
        let _ = self.flush(socket);
    }

    /// Runs `f` with the received bytes held between reads, as
    /// [`SeenInput`]; what rustls is done with of them goes.
    fn with_seen_input<R>(&mut self, f: impl FnOnce(&mut Self, &mut SeenInput) -> R) -> R {
        let mut input = match self.held.as_deref_mut() {
            Some(h) => SeenInput {
                bytes: mem::take(&mut h.incoming),
                seen: mem::take(&mut h.incoming_seen),
            },
            None => SeenInput {
                bytes: Vec::new(),
                seen: 0,
            },
        };
        let result = f(self, &mut input);
        if !input.bytes.is_empty() && !matches!(self.engine, Engine::Failed) {
            let h = held(&mut self.held);
            h.incoming = input.bytes;
            h.incoming_seen = input.seen;
        }
        self.release();
        result
    }

    /// Steps rustls, outside a read, on what it was given before (nothing
    /// new) until it may send application data, then hands that state to
    /// `write`: `Ok(None)` if it cannot yet (the handshake is not done).
    /// What it has to say on the way is encoded and sent as far as the
    /// socket takes it; plaintext it still had is kept for the next read.
    fn settle_rustls<S: Write, R>(
        &mut self,
        socket: &mut S,
        input: &mut SeenInput,
        write: impl FnOnce(WriteTraffic<'_, ServerConnectionData>, &mut Option<Box<Held>>) -> io::Result<R>,
    ) -> io::Result<Option<R>> {
        let mut write = Some(write);
        for _ in 0..RUSTLS_STEPS {
            let Engine::Rustls(conn) = &mut self.engine else {
                return Err(failed());
            };
            let mut record_discard = 0;
            let mut written = None;
            let UnbufferedStatus { discard, state } = conn.process_tls_records(input.given());
            let step = match state {
                Err(e) => Step::Failed(e),
                Ok(ConnectionState::WriteTraffic(traffic)) => {
                    if let Some(write) = write.take() {
                        written = Some(write(traffic, &mut self.held));
                    }
                    Step::Blocked
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out))?;
                    Step::Go
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    self.flush(socket)?;
                    Step::Go
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    // Not left behind by a read, which takes all; kept
                    // for the next read if it ever is.
                    let mut step = Step::Go;
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                record_discard += record.discard;
                                held(&mut self.held).plaintext.extend_from_slice(record.payload);
                            }
                            Err(e) => {
                                step = Step::Failed(e);
                                break;
                            }
                        }
                    }
                    step
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Step::Go
                }
                Ok(ConnectionState::Closed) => Step::Closed,
                Ok(_) => Step::Blocked,
            };
            input.discard(discard + record_discard);
            match step {
                Step::Go => {}
                Step::Blocked => return written.transpose(),
                Step::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
                Step::Failed(e) => {
                    self.fail_with_rustls_alert(socket, input.given());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
        Err(io::Error::other("TLS: rustls did not settle"))
    }

    /// rustls refused what the peer sent: encodes the alert it queued
    /// (after what it queued before it, as a ServerHello that went out
    /// before the refusal of the hello's ALPN, RFC 7301 §3.2), sends it as
    /// far as the socket takes it, and ends the session. `given` is what
    /// rustls was given last, less what it discarded.
    ///
    /// rustls hands out what it queued, one piece a step, before it reads
    /// on; it is stepped only while it has such a piece: reading on, it
    /// would meet the refused record again (rustls does not keep the error
    /// of a record it could not take apart), refuse it again and queue a
    /// second alert (which its debug builds assert against).
    fn fail_with_rustls_alert<S: Write>(&mut self, socket: &mut S, given: &mut [u8]) {
        let mut start = 0;
        for _ in 0..RUSTLS_STEPS {
            let Engine::Rustls(conn) = &mut self.engine else {
                break;
            };
            if !conn.wants_write() {
                break;
            }
            let UnbufferedStatus { discard, state } =
                conn.process_tls_records(given.get_mut(start..).unwrap_or_default());
            let Ok(ConnectionState::EncodeTlsData(mut data)) = state else {
                break;
            };
            if encode_into(&mut held(&mut self.held).outgoing, |out| data.encode(out)).is_err() {
                break;
            }
            start += discard;
        }
        self.engine = Engine::Failed;
        self.sent_close = true;
        let _ = self.flush(socket);
    }
}

/// After the session failed: reads what the peer still sends and drops
/// it (a bounded number of reads per call), so that the alert it was sent
/// is not lost to a reset when the socket closes with input unread.
/// `Ok(0)` at the end of the peer's stream, `WouldBlock` otherwise.
fn drop_input<S: Read>(socket: &mut S) -> io::Result<usize> {
    RECEIVED.with_borrow_mut(|received| {
        if received.len() < READ_SIZE {
            received.resize(READ_SIZE, 0);
        }
        for _ in 0..DROPPED_READS {
            match socket.read(received) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    })
}

/// The error of a session that failed before.
fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the TLS session has failed")
}

#[cfg(test)]
mod tests;
