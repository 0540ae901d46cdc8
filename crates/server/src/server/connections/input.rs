//! The read side of a connection: what a readiness event reads, handed
//! to the connection's session (the first bytes choosing HTTP/1.1 or
//! HTTP/2), the peer's end of stream, and a TLS alert's linger.

use std::io;
use std::mem;
use std::time::Instant;

use log::debug;

use super::Connections;
use crate::app::{App, CloseReason, ConnId};
use crate::loops::Stats;
use crate::server::conn::{State, live};
use crate::server::env::Call;
use crate::server::guard;
use crate::server::h1::H1Conn;
use crate::server::h2::H2Session;
#[cfg(all(test, feature = "tls"))]
use crate::server::inject;
use crate::server::link::{Kind, NextStep};
use crate::server::listen::alpn_is_h2;
use crate::transport::Stream;

/// Reads per readiness event before the connection goes to the back of
/// the line, so one busy peer cannot starve the rest.
const READS_PER_EVENT: usize = 16;

impl<A: App> Connections<A> {
    /// Reads and handles what the peer sent. `closed` says the peer may
    /// have closed its side already, so reading goes on until the socket
    /// says so or would block. `hangup` says the socket reported it: a
    /// connection waiting for the application's answer is read then too
    /// (only to learn that its client is gone), and otherwise not at all.
    pub(in crate::server) fn read_from(&mut self, id: ConnId, now: Instant, closed: bool, hangup: bool) {
        let mut buf = mem::take(&mut self.read_buf);
        let read = guard::catch(Some(id), || self.read_rounds(id, &mut buf, now, closed, hangup));
        // Back before anything else, whatever happened: without it every
        // later read would take 0 bytes, which says end of stream.
        self.read_buf = buf;
        if let Err(panic) = read {
            self.fault(id, "reading", &panic);
            return;
        }
        // Answer at once, with everything this read produced for this
        // connection in one write: waiting for the end of the loop turn
        // would hold every reply until all ready connections were read, and
        // a peer on another core would sit idle meanwhile. Output for other
        // connections (broadcasts) still goes out once per turn.
        self.flush_if_dirty(id, now);
    }

    /// The reads of one readiness event (see [`Connections::read_from`]),
    /// into the loop's read buffer, lent as `buf`.
    fn read_rounds(&mut self, id: ConnId, buf: &mut [u8], now: Instant, closed: bool, hangup: bool) {
        for round in 0..READS_PER_EVENT {
            let Some((conn, tls)) = self.conn_and_tls(id) else {
                break;
            };
            // A request waiting for its answer holds back the ones
            // pipelined behind it in the socket (TCP backpressure) instead
            // of their piling up here; the answer resumes reading.
            if conn.link.paused || conn.peer_closed || (conn.awaits_answer() && !hangup) {
                break;
            }
            // Requests read before the output went over its limit come
            // before anything more is read.
            if conn.stalled() {
                self.drive(id, |state, c| {
                    if let State::H1(h1) = state {
                        h1.resume(c, now);
                    }
                    NextStep::Keep
                });
                self.apply_actions(now);
                continue;
            }
            let mut stream = Stream {
                socket: &mut conn.socket,
                tls,
            };
            let read = stream.read(buf);
            #[cfg(all(test, feature = "tls"))]
            inject::check(inject::Point::Read, stream.socket);
            let tls_ended = stream.tls_peer_closed();
            let tls_open = stream.tls_ended_socket_open();
            if stream.wants_write() {
                // A TLS handshake answer the socket did not take at once.
                self.mark_dirty(id);
            }
            match read {
                Ok(0) => {
                    self.on_eof(id, now, tls_open);
                    // After a close_notify alone, reading goes on (what
                    // arrives is dropped) to learn that the TCP stream
                    // ended too: no new event may come for an end that
                    // arrived with the alert.
                    if !tls_open {
                        break;
                    }
                }
                Ok(n) => {
                    Stats::add(&self.env.stats().bytes_in, n as u64);
                    if let Some(access) = &self.env.peers.own().access {
                        access.count(id, 0, n);
                    }
                    self.on_input(id, buf.get_mut(..n).unwrap_or_default(), now);
                    self.apply_actions(now);
                    // A short read drained the socket: with edge-triggered
                    // readiness, data arriving later raises a new event,
                    // so a read that would only say WouldBlock is skipped.
                    // Not so an end of stream that had already arrived with
                    // the data: it raises no new event, and only another
                    // read sees it. Nor a TLS close_notify read with the
                    // data: the session has it, and the next read says so.
                    if n < buf.len() && !closed && !tls_ended {
                        break;
                    }
                    if round == READS_PER_EVENT - 1 {
                        self.env.backlog.push(id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("read error: {e}");
                    if e.kind() == io::ErrorKind::InvalidData {
                        // TLS refused what the peer sent (not TLS at all,
                        // say), and said so in an alert.
                        Stats::add(&self.env.stats().tls_errors, 1);
                        self.drain(id, now);
                    } else {
                        self.remove(id, CloseReason::Dropped);
                    }
                    self.apply_actions(now);
                    break;
                }
            }
        }
    }

    fn on_input(&mut self, id: ConnId, data: &mut [u8], now: Instant) {
        let http2 = self.env.config.http2;
        self.drive(id, |state, c| {
            match state {
                State::H1(H1Conn::Requests(requests)) if http2 && requests.fresh && !c.link.closing => {
                    return first_input(state, c, data, now);
                }
                State::H1(h1) => h1.input(c, data, now),
                State::H2(h2) => h2.input(c, data, now),
                // A draining connection's input is discarded.
                State::Draining { .. } => {}
            }
            NextStep::Keep
        });
    }

    /// The end of the peer's input. `tls_open` says it was a TLS
    /// `close_notify` over a TCP stream still open: what was asked is
    /// answered as after a half-close, and our side ends with our own
    /// `close_notify` and FIN (RFC 8446 §6.1); the socket is drained until
    /// its end, for closing it with the peer still writing would reset
    /// the connection.
    fn on_eof(&mut self, id: ConnId, now: Instant, tls_open: bool) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        conn.peer_closed = !tls_open;
        let after = match &conn.state {
            State::H1(h1) => h1.on_eof(&mut conn.link),
            // Our close_notify went first: the TCP stream's end follows.
            State::Draining { .. } if tls_open => NextStep::Keep,
            State::Draining { .. } | State::H2(_) => NextStep::Drop,
        };
        if tls_open && matches!(after, NextStep::Drop) {
            self.drain(id, now);
        } else {
            self.settle(id, after);
        }
        self.apply_actions(now);
    }

    /// The peer broke TLS and was sent the alert that says so, or ended
    /// its TLS session with close_notify and nothing more is to be sent to
    /// it: the application is told the session ended, what was queued for
    /// it is dropped, our side is shut down after the alert (or our own
    /// close_notify), and what the peer still sends is read and dropped
    /// until it closes or the linger time ends. Closing at once, with its
    /// input unread, would reset the connection, and a peer still writing
    /// would often never read the alert.
    fn drain(&mut self, id: ConnId, now: Instant) {
        let linger = self.env.config.linger;
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        if conn.peer_closed {
            self.remove(id, CloseReason::Dropped);
            return;
        }
        let ended = mem::replace(
            &mut conn.state,
            State::Draining {
                deadline: now + linger,
            },
        );
        let closing = mem::replace(&mut conn.link.closing, false);
        if let Some(out) = conn.link.out.take() {
            self.env.pool.give_back_queue(out);
        }
        self.notify_ended(ended, id, CloseReason::Dropped, closing, now);
        if let Some((conn, tls)) = self.conn_and_tls(id) {
            Stream {
                socket: &mut conn.socket,
                tls,
            }
            .shutdown_write();
        }
        self.reschedule(id);
    }
}

/// The first bytes of a connection, with HTTP/2 on: a TLS connection whose
/// ALPN chose `h2`, or a plain one that starts with the client preface,
/// becomes an HTTP/2 session; any other is HTTP/1.1 from its first byte
/// that differs from the preface (so a request is never held back, and one
/// starting `P` waits for at most 23 bytes).
fn first_input<A: App>(
    state: &mut State,
    c: &mut Call<'_, '_, A>,
    data: &mut [u8],
    now: Instant,
) -> NextStep {
    let State::H1(h1) = state else {
        return NextStep::Keep;
    };
    let H1Conn::Requests(requests) = &mut *h1 else {
        return NextStep::Keep;
    };
    let preface: &[u8] = tether_h2::frame::PREFACE;
    let h2 = match c.socket.tls.as_deref().map(alpn_is_h2) {
        Some(h2) => h2,
        None => {
            let seen = requests.partial.len() + data.len();
            let mut bytes = requests.partial.iter().chain(data.iter());
            let same = preface.iter().zip(&mut bytes).all(|(a, b)| a == b);
            if same && seen < preface.len() {
                // Could still be either: wait for more (within the
                // handshake timeout that runs already).
                requests.partial.extend_from_slice(data);
                return NextStep::Keep;
            }
            same
        }
    };
    requests.fresh = false;
    if !h2 {
        h1.input(c, data, now);
        return NextStep::Keep;
    }
    let mut buffered = mem::take(&mut requests.partial);
    buffered.extend_from_slice(data);
    let config = &c.env.config;
    let mut h2_config = config.h2;
    let head_limit = u32::try_from(config.max_request_head).unwrap_or(u32::MAX);
    h2_config.max_header_list_size = h2_config.max_header_list_size.min(head_limit).max(1);
    let Some(session) = H2Session::new(h2_config, now + config.keep_alive_timeout) else {
        return NextStep::Drop;
    };
    let stats = c.env.stats();
    Stats::add(&stats.h2_connections, 1);
    Stats::sub(&stats.open_http, 1);
    Stats::add(&stats.open_h2, 1);
    c.link.kind = Kind::H2;
    debug!("HTTP/2 session");
    *state = State::H2(Box::new(session));
    if let State::H2(h2) = state {
        h2.input(c, &buffered, now);
    }
    NextStep::Keep
}
