//! Reading: records from the socket, through rustls during the handshake
//! (and on TLS 1.2) or the record layer after it, into the caller's
//! buffer as plaintext.

use std::io::{self, Read, Write};
use std::mem;

use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use rustls::{CipherSuite, ProtocolVersion};

use crate::tls::records::{RecordError, Records};

use super::{
    Engine, Held, INCOMING_LIMIT, READ_SIZE, RECEIVED, Step, TlsSession, Window, deliver, drop_input,
    encode_into, failed, held, whole_records,
};

impl TlsSession {
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
            // only then allocated), unless the session is over. Once the
            // peer ended it, what follows its end does not count, but
            // what rustls was given and keeps (the start of a handshake
            // message cut short by the end) is still kept: rustls refers
            // to it by position, and a write or the close after the end
            // gives it to rustls again.
            let keep = if self.peer_closed { w.seen } else { w.end };
            if !matches!(self.engine, Engine::Failed)
                && let Some(rest) = received.get(w.start..keep).filter(|rest| !rest.is_empty())
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
    pub(super) fn release(&mut self) {
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
}
