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
use std::io::{self, Read, Write};
use std::mem;
use std::sync::Arc;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus, WriteTraffic};

use crate::tls::records::Records;

mod buffers;
mod encode;
#[doc(hidden)]
pub mod harness;
mod reading;
mod writing;

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
