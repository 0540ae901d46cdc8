//! The write side of a connection: what is queued written out, and then
//! write interest registered or dropped, reading resumed, or the
//! connection's closing begun once everything is out.

use std::mem;
use std::time::Instant;

use log::debug;
use mio::{Interest, Token};

use super::Connections;
use crate::app::{App, CloseReason, ConnId};
use crate::loops::Stats;
use crate::server::conn::{State, live};
#[cfg(all(test, feature = "tls"))]
use crate::server::inject;
use crate::transport::Stream;

impl<A: App> Connections<A> {
    pub(in crate::server) fn flush_dirty(&mut self, now: Instant) {
        while !self.env.dirty.is_empty() {
            for id in mem::take(&mut self.env.dirty) {
                self.flush_if_dirty(id, now);
            }
            self.apply_actions(now);
        }
    }

    /// Flushes a connection marked dirty (and not flushed since).
    pub(in crate::server) fn flush_if_dirty(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = live(&mut self.conns, id)
            && conn.link.dirty
        {
            conn.link.dirty = false;
            self.flush(id, now);
        }
    }

    /// Writes what is queued; then registers write interest, resumes
    /// reading, or moves on to closing, as the result calls for.
    pub(in crate::server) fn flush(&mut self, id: ConnId, now: Instant) {
        self.contained(id, "writing", |this| this.flush_now(id, now));
    }

    fn flush_now(&mut self, id: ConnId, now: Instant) {
        let max_output = self.env.config.max_output;
        let Self {
            conns,
            registry,
            tls,
            env,
            ..
        } = self;
        let Some(conn) = live(conns, id) else {
            return;
        };
        #[cfg(all(test, feature = "tls"))]
        inject::check(inject::Point::Flush, &conn.socket);
        let mut stream = Stream {
            socket: &mut conn.socket,
            tls: tls.get_mut(id.index()).and_then(|s| s.as_deref_mut()),
        };
        let written = match conn.link.out.as_mut() {
            None => Ok(true),
            Some(out) => {
                let before = out.len();
                let result = out.flush(&mut stream, &mut env.pool);
                Stats::add(&env.peers.own().stats.bytes_out, (before - out.len()) as u64);
                if let Some(access) = &env.peers.own().access {
                    access.count(id, before - out.len(), 0);
                }
                result
            }
        };
        // What TLS still holds counts as queued too.
        let done = match written.and_then(|all| Ok(all && stream.flush_pending()?)) {
            Ok(done) => done,
            Err(e) => {
                debug!("write error: {e}");
                self.remove(id, CloseReason::Dropped);
                return;
            }
        };
        let link = &mut conn.link;
        if done {
            if let Some(out) = link.out.take() {
                env.pool.give_back_queue(out);
            }
            if conn.writable {
                conn.writable = false;
                let _ = registry.reregister(&mut conn.socket, Token(id.index()), Interest::READABLE);
            }
            if link.paused {
                link.paused = false;
                env.backlog.push(id);
            }
            if link.closing {
                self.finish_connection(id, now);
                return;
            }
        } else {
            if !conn.writable {
                conn.writable = true;
                let _ = registry.reregister(
                    &mut conn.socket,
                    Token(id.index()),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
            if link.paused && link.queued() <= max_output / 2 {
                link.paused = false;
                env.backlog.push(id);
            }
        }
        self.reschedule(id);
    }

    /// Everything is written and the connection is done: shut down our
    /// side and drain the peer's, or just drop it if the peer has closed.
    fn finish_connection(&mut self, id: ConnId, now: Instant) {
        let linger = self.env.config.linger;
        let Some((conn, tls)) = self.conn_and_tls(id) else {
            return;
        };
        let draining = matches!(conn.state, State::Draining { .. });
        if conn.peer_closed || draining {
            if !draining && tls.is_some() {
                // A TLS peer's close_notify is answered with ours before
                // the socket closes (RFC 8446 §6.1).
                Stream {
                    socket: &mut conn.socket,
                    tls,
                }
                .shutdown_write();
            }
            self.remove(id, CloseReason::Dropped);
            return;
        }
        Stream {
            socket: &mut conn.socket,
            tls,
        }
        .shutdown_write();
        conn.link.closing = false;
        let done = std::mem::replace(
            &mut conn.state,
            State::Draining {
                deadline: now + linger,
            },
        );
        // Its sessions were told they ended: their states go.
        done.release_states(&mut self.env.released);
        self.reschedule(id);
    }
}
