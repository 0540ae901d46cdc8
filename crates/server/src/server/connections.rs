//! The connections of one loop and what is done with each: read, handed
//! to its protocol session with the application and the environment lent
//! beside it ([`Call`]), flushed, timed, and dropped with the application
//! told. The loop ([`super::Server`]) owns the poll, the listeners and the
//! shutdown's steps, and hands this every readiness event, accepted
//! socket and due timer.
//!
//! Calling contract: [`Connections::admit`] takes an accepted socket;
//! [`Connections::read_from`] and [`Connections::flush`] answer readiness;
//! [`Connections::fire_timers`] runs what is due;
//! [`Connections::apply_actions`] and [`Connections::flush_dirty`] end each
//! turn. What the application asks for other connections goes through the
//! sink.
//!
//! Each of these runs the work for one connection under a guard
//! ([`Connections::contained`]): a panic in it (in the TLS session, the
//! HTTP/1.1 or HTTP/2 session, the output queue) resets that connection
//! and the loop goes on. Why the tables stay consistent after such an
//! unwind is said in `super::guard`.

use std::io;
use std::mem;
use std::time::{Duration, Instant};

use log::{debug, error};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::conn::{Conn, State, live};
use super::env::{Call, LoopEnv};
use super::guard::{self, Named, Panic, guarded};
use super::h1::H1Conn;
use super::h2::H2Session;
#[cfg(feature = "tls")]
use super::h3::H3Endpoint;
use super::link::{Kind, Link, NextStep};
use super::listen::{alpn_is_h2, start_tls};
use super::sink::{self, Pushed};
use crate::app::{Action, App, CloseReason, ConnId, Ctx, Encoded, Queued};
use crate::loops::Stats;
use crate::timers::Scheduled;
use crate::transport::{Stream, TlsSession};

/// Reads per readiness event before the connection goes to the back of
/// the line, so one busy peer cannot starve the rest.
const READS_PER_EVENT: usize = 16;

/// The connections of one loop, the application they serve and the
/// environment lent to their sessions.
pub(super) struct Connections<A: App> {
    /// Where sockets are registered (the loop's poll).
    registry: Registry,
    conns: Slab<Conn>,
    next_generation: u32,
    read_buf: Vec<u8>,
    /// The TLS session of each connection, by slab index, kept beside
    /// the connections so that plain ones do not carry its room: empty
    /// unless the server serves TLS.
    tls: Vec<Option<Box<TlsSession>>>,
    pub(super) app: A,
    /// The pool, timers, peers, configuration and pending actions, lent
    /// to the sessions.
    pub(super) env: LoopEnv<A::Post>,
    /// A connection was dropped since the loop last looked: a descriptor
    /// was freed.
    pub(super) freed: bool,
    /// The loop's QUIC endpoint, with HTTP/3 on.
    #[cfg(feature = "tls")]
    pub(super) quic: Option<Box<H3Endpoint>>,
}

impl<A: App> Connections<A> {
    pub(super) fn new(registry: Registry, app: A, env: LoopEnv<A::Post>) -> Connections<A> {
        let read_buf = vec![0; env.config.read_buffer.max(1024)];
        Connections {
            registry,
            conns: Slab::new(),
            next_generation: 0,
            read_buf,
            tls: Vec::new(),
            app,
            env,
            freed: false,
            #[cfg(feature = "tls")]
            quic: None,
        }
    }

    /// Connections open.
    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Takes an accepted socket: registered, given a TLS session if `tls`,
    /// and timed for its first request head.
    pub(super) fn admit(
        &mut self,
        socket: TcpStream,
        peer: std::net::SocketAddr,
        tls: bool,
        admin: bool,
        now: Instant,
    ) {
        let index = self.conns.vacant_key();
        let admitted = guard::catch(None, || self.admit_now(socket, peer, tls, admin, now));
        if let Err(panic) = admitted {
            Stats::add(&self.env.stats().connection_panics, 1);
            error!("a panic admitting a connection from {peer} (it is dropped): {panic}");
            // Whatever of it got into the tables leaves them.
            if let Some(generation) = self.conns.get(index).map(|c| c.generation)
                && generation == self.next_generation
            {
                self.discard(ConnId::new(index, generation));
            } else if let Some(slot) = self.tls.get_mut(index) {
                *slot = None;
            }
        }
    }

    fn admit_now(
        &mut self,
        mut socket: TcpStream,
        peer: std::net::SocketAddr,
        tls: bool,
        admin: bool,
        now: Instant,
    ) {
        let _ = socket.set_nodelay(true);
        let vacant = self.conns.vacant_entry();
        let index = vacant.key();
        if let Err(e) = start_tls(&self.env.config, &mut self.tls, index, tls) {
            log::warn!("{peer}: no TLS session: {e}");
            return;
        }
        if let Err(e) = self
            .registry
            .register(&mut socket, Token(index), Interest::READABLE)
        {
            log::warn!("{peer}: register failed: {e}");
            return;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let deadline = now + self.env.config.handshake_timeout;
        let conn = vacant.insert(Conn {
            socket,
            generation,
            state: State::H1(H1Conn::new(deadline)),
            link: Link::new(admin, tls),
            scheduled: Scheduled::default(),
            writable: false,
            peer_closed: false,
        });
        let stats = &self.env.peers.own().stats;
        Stats::add(&stats.accepted, 1);
        Stats::add(&stats.open_http, 1);
        let id = ConnId::new(index, generation);
        self.env.timers.schedule(id, deadline, &mut conn.scheduled);
    }

    /// The id of the connection in slot `index`, if there is one.
    pub(super) fn id_at(&self, index: usize) -> Option<ConnId> {
        self.conns
            .get(index)
            .map(|conn| ConnId::new(index, conn.generation))
    }

    /// Connection `id` (if it still exists) with its TLS session.
    fn conn_and_tls(&mut self, id: ConnId) -> Option<(&mut Conn, Option<&mut TlsSession>)> {
        let conn = live(&mut self.conns, id.connection())?;
        let tls = self.tls.get_mut(id.index()).and_then(|s| s.as_deref_mut());
        Some((conn, tls))
    }

    /// Runs `f` on the protocol state of the connection `id` names (if it
    /// still exists) and a call lent beside it: the connection's link and
    /// socket, the application and the environment.
    #[inline]
    fn call<R>(&mut self, id: ConnId, f: impl FnOnce(&mut State, &mut Call<'_, '_, A>) -> R) -> Option<R> {
        let Self {
            conns, tls, app, env, ..
        } = self;
        let conn = live(conns, id.connection())?;
        let tls = tls.get_mut(id.index()).and_then(|s| s.as_deref_mut());
        let Conn {
            socket, state, link, ..
        } = conn;
        let mut socket = Stream { socket, tls };
        let mut call = Call {
            id: id.connection(),
            link,
            app,
            env,
            socket: &mut socket,
        };
        Some(f(state, &mut call))
    }

    /// [`Connections::call`], then does what `f` returned.
    fn drive(&mut self, id: ConnId, f: impl FnOnce(&mut State, &mut Call<'_, '_, A>) -> NextStep) {
        if let Some(after) = self.call(id, f) {
            self.settle(id, after);
        }
    }

    /// Does what a session's call returned.
    pub(super) fn settle(&mut self, id: ConnId, after: NextStep) {
        match after {
            NextStep::Keep => {}
            NextStep::Flush => self.mark_dirty(id),
            NextStep::Drop => self.remove(id.connection(), CloseReason::Dropped),
        }
    }

    /// The application and a context that acts on no connection in
    /// particular.
    pub(super) fn detached(&mut self, now: Instant) -> (&mut A, Ctx<'_, A::Post>) {
        let LoopEnv {
            actions, pool, peers, ..
        } = &mut self.env;
        (&mut self.app, Ctx::new(now, actions, pool, peers))
    }

    /// Runs `work`, done for connection `id` alone, under a guard: a panic
    /// in it resets that connection ([`Connections::fault`]) and returns
    /// here, so that the loop goes on with the others. What `work` takes
    /// out of a shared place it must put back where an unwind cannot skip
    /// it (see `super::guard`).
    #[inline]
    fn contained(&mut self, id: ConnId, what: &str, work: impl FnOnce(&mut Self)) {
        if let Err(panic) = guard::catch(Some(id), || work(self)) {
            self.fault(id, what, &panic);
        }
    }

    /// After a panic in `what` for connection `id`: counted, logged once
    /// with the peer's address and the backtrace, and the connection
    /// dropped whole, with a reset (its TLS or HTTP state is not trusted to
    /// say anything more, not even an alert or a GOAWAY), the application
    /// told its session ended.
    #[cold]
    fn fault(&mut self, id: ConnId, what: &str, panic: &Panic) {
        let id = id.connection();
        Stats::add(&self.env.stats().connection_panics, 1);
        let peer = live(&mut self.conns, id).and_then(|conn| {
            // Closed with unread input or not, a reset.
            let _ = socket2::SockRef::from(&conn.socket).set_linger(Some(Duration::ZERO));
            conn.socket.peer_addr().ok()
        });
        match peer {
            Some(peer) => error!(
                "a panic in {what} for {} from {peer} (the connection is reset): {panic}",
                Named(id)
            ),
            None => error!("a panic in {what} for {}: {panic}", Named(id)),
        }
        self.discard(id);
    }

    pub(super) fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = live(&mut self.conns, id) {
            self.env.mark_dirty(id, &mut conn.link);
        }
    }

    /// Reads and handles what the peer sent. `closed` says the peer may
    /// have closed its side already, so reading goes on until the socket
    /// says so or would block. `hangup` says the socket reported it: a
    /// connection waiting for the application's answer is read then too
    /// (only to learn that its client is gone), and otherwise not at all.
    pub(super) fn read_from(&mut self, id: ConnId, now: Instant, closed: bool, hangup: bool) {
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
            let mut stream = Stream {
                socket: &mut conn.socket,
                tls,
            };
            let read = stream.read(buf);
            #[cfg(test)]
            inject::check(inject::Point::Read, stream.socket);
            if stream.wants_write() {
                // A TLS handshake answer the socket did not take at once.
                self.mark_dirty(id);
            }
            match read {
                Ok(0) => {
                    self.on_eof(id, now);
                    break;
                }
                Ok(n) => {
                    Stats::add(&self.env.stats().bytes_in, n as u64);
                    self.on_input(id, buf.get_mut(..n).unwrap_or_default(), now);
                    self.apply_actions(now);
                    // A short read drained the socket: with edge-triggered
                    // readiness, data arriving later raises a new event,
                    // so a read that would only say WouldBlock is skipped.
                    // Not so an end of stream that had already arrived with
                    // the data: it raises no new event, and only another
                    // read sees it.
                    if n < buf.len() && !closed {
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
                        self.drain_after_alert(id, now);
                    } else {
                        self.remove(id, CloseReason::Dropped);
                    }
                    self.apply_actions(now);
                    break;
                }
            }
        }
    }

    pub(super) fn on_input(&mut self, id: ConnId, data: &mut [u8], now: Instant) {
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

    pub(super) fn on_eof(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        conn.peer_closed = true;
        let after = match &conn.state {
            State::H1(h1) => h1.on_eof(&mut conn.link),
            State::Draining { .. } | State::H2(_) => NextStep::Drop,
        };
        self.settle(id, after);
        self.apply_actions(now);
    }

    /// Applies what application callbacks asked for other connections,
    /// each connection's under its own guard: the batch taken here is
    /// never lost to an unwind.
    pub(super) fn apply_actions(&mut self, now: Instant) {
        while !self.env.actions.is_empty() {
            let mut batch = mem::take(&mut self.env.actions);
            for action in batch.list.drain(..) {
                match action {
                    Queued::SendMany(range, encoded) => {
                        let ids = usize::try_from(range.start).unwrap_or(usize::MAX)
                            ..usize::try_from(range.end).unwrap_or(usize::MAX);
                        let targets = batch.targets.get(ids).unwrap_or_default();
                        self.send_many(targets, &encoded, now);
                    }
                    Queued::One(action) => self.apply(action, now),
                }
            }
            batch.targets.clear();
            if self.env.actions.is_empty() {
                self.env.actions = batch;
            }
        }
    }

    /// The hot loop of a fan-out: the one `Encoded` lent to every target,
    /// and the messages counted once. One guard for the whole fan-out
    /// (none per target): a panic for one target drops that connection,
    /// and the fan-out resumes with the next.
    fn send_many(&mut self, targets: &[ConnId], encoded: &Encoded, now: Instant) {
        let mut done = 0;
        let mut sent = 0;
        while let Some(rest) = targets.get(done..).filter(|rest| !rest.is_empty()) {
            let fanned = guard::catch(None, || {
                for &id in rest {
                    // Counted before the send: after a panic, `done` is
                    // one past the target that panicked.
                    done += 1;
                    sent += u64::from(self.send(id, encoded, now));
                }
            });
            if let Err(panic) = fanned
                && let Some(&id) = done.checked_sub(1).and_then(|last| targets.get(last))
            {
                self.fault(id, "a broadcast", &panic);
            }
        }
        Stats::add(&self.env.stats().messages_out, sent);
    }

    /// Queues `encoded` for `id` (a WebSocket or an event stream of a TCP
    /// connection or a QUIC one); whether it was, for the caller to count.
    fn send(&mut self, id: ConnId, encoded: &Encoded, now: Instant) -> bool {
        #[cfg(feature = "tls")]
        if id.is_quic() {
            if let Some(quic) = self.quic.as_deref_mut() {
                quic.apply(
                    &mut self.app,
                    &mut self.env,
                    Action::Send(id, encoded.clone()),
                    now,
                );
            }
            // Counted where the QUIC connection queues it.
            return false;
        }
        let Some(conn) = live(&mut self.conns, id.connection()) else {
            return false;
        };
        #[cfg(test)]
        inject::check(inject::Point::Push, &conn.socket);
        match sink::push(conn, &mut self.tls, &mut self.env, id, encoded, now) {
            Pushed::Nothing => return false,
            Pushed::Queued => {}
            Pushed::Failed => self.remove(id.connection(), CloseReason::Dropped),
            Pushed::Slow => self.drive(id, |state, c| {
                sink::cut_loose(state, c, id, now);
                NextStep::Keep
            }),
        }
        true
    }

    /// Applies one action for one connection, under a guard (a QUIC
    /// connection's, the endpoint's).
    fn apply(&mut self, action: Action, now: Instant) {
        let id = action.id();
        #[cfg(feature = "tls")]
        if id.is_quic() {
            if let Some(quic) = self.quic.as_deref_mut() {
                quic.apply(&mut self.app, &mut self.env, action, now);
            }
            return;
        }
        self.contained(id, "an action", |this| this.apply_tcp(action, now));
    }

    /// Applies one action for one TCP connection.
    fn apply_tcp(&mut self, action: Action, now: Instant) {
        match action {
            Action::Send(id, encoded) => {
                if self.send(id, &encoded, now) {
                    Stats::add(&self.env.stats().messages_out, 1);
                }
            }
            Action::Close(id, code, reason) => self.drive(id, |state, c| {
                sink::close_ws(state, c, id, code, &reason, now);
                NextStep::Keep
            }),
            Action::EndStream(id) => self.drive(id, |state, c| {
                sink::end_stream(state, c, id, CloseReason::Ended, now);
                NextStep::Keep
            }),
            Action::Respond(id, response) => self.drive(id, |state, c| {
                sink::respond_later(state, c, id, &response, now);
                NextStep::Keep
            }),
            Action::Proceed(id, route) => self.drive(id, |state, c| {
                sink::proceed(state, c, id, route, now);
                NextStep::Keep
            }),
        }
    }

    pub(super) fn flush_dirty(&mut self, now: Instant) {
        while !self.env.dirty.is_empty() {
            for id in mem::take(&mut self.env.dirty) {
                self.flush_if_dirty(id, now);
            }
            self.apply_actions(now);
        }
    }

    /// Flushes a connection marked dirty (and not flushed since).
    pub(super) fn flush_if_dirty(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = live(&mut self.conns, id)
            && conn.link.dirty
        {
            conn.link.dirty = false;
            self.flush(id, now);
        }
    }

    /// Writes what is queued; then registers write interest, resumes
    /// reading, or moves on to closing, as the result calls for.
    pub(super) fn flush(&mut self, id: ConnId, now: Instant) {
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
        #[cfg(test)]
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
    pub(super) fn finish_connection(&mut self, id: ConnId, now: Instant) {
        let linger = self.env.config.linger;
        let Some((conn, tls)) = self.conn_and_tls(id) else {
            return;
        };
        if conn.peer_closed || matches!(conn.state, State::Draining { .. }) {
            self.remove(id, CloseReason::Dropped);
            return;
        }
        Stream {
            socket: &mut conn.socket,
            tls,
        }
        .shutdown_write();
        conn.link.closing = false;
        conn.state = State::Draining {
            deadline: now + linger,
        };
        self.reschedule(id);
    }

    /// The peer broke TLS and was sent the alert that says so: the
    /// application is told the session ended, what was queued for it is
    /// dropped, our side is shut down after the alert, and what the peer
    /// still sends is read and dropped until it closes or the linger time
    /// ends. Closing at once, with its input unread, would reset the
    /// connection, and a peer still writing would often never read the
    /// alert.
    fn drain_after_alert(&mut self, id: ConnId, now: Instant) {
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

    #[inline]
    pub(super) fn reschedule(&mut self, id: ConnId) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        if let Some(at) = conn.next_deadline() {
            self.env.timers.schedule(id, at, &mut conn.scheduled);
        }
    }

    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some((entry, slot)) = self.env.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if !self.env.timers.take_if_current(entry, &mut conn.scheduled) {
                continue;
            }
            let id = ConnId::new(slot, conn.generation);
            self.contained(id, "a timer", |this| {
                #[cfg(test)]
                if let Some(conn) = live(&mut this.conns, id) {
                    inject::check(inject::Point::Timer, &conn.socket);
                }
                this.drive(id, |state, c| match state {
                    State::H1(h1) => h1.on_timer(c, now),
                    State::H2(h2) => {
                        h2.on_timer(c, now);
                        NextStep::Keep
                    }
                    State::Draining { deadline } if now >= *deadline => NextStep::Drop,
                    State::Draining { .. } => NextStep::Keep,
                });
                this.apply_actions(now);
                this.reschedule(id);
            });
        }
    }

    /// Drops a connection now, telling the application if it had not been
    /// told its session ended.
    pub(super) fn remove(&mut self, id: ConnId, reason: CloseReason) {
        self.take_out(id, reason, true);
    }

    /// Drops a connection after a panic in its work: as
    /// [`Connections::remove`], but its output queue, which the unwind may
    /// have left half-updated, is not given back to the pool.
    fn discard(&mut self, id: ConnId) {
        self.take_out(id, CloseReason::Dropped, false);
    }

    /// Takes connection `id` out of every table first, then tells the
    /// application, so that a panic in the telling leaves no trace of it.
    fn take_out(&mut self, id: ConnId, reason: CloseReason, recycle: bool) {
        if live(&mut self.conns, id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index());
        if let Some(slot) = self.tls.get_mut(id.index()) {
            *slot = None;
        }
        let _ = self.registry.deregister(&mut conn.socket);
        // A descriptor is freed (when `conn` goes out of scope).
        self.freed = true;
        if let Some(out) = conn.link.out.take()
            && recycle
        {
            self.env.pool.give_back_queue(out);
        }
        let stats = &self.env.peers.own().stats;
        Stats::sub(
            match conn.link.kind {
                Kind::Http => &stats.open_http,
                Kind::WebSocket => &stats.open_websocket,
                Kind::EventStream => &stats.open_event_stream,
                Kind::H2 => &stats.open_h2,
            },
            1,
        );
        self.notify_ended(conn.state, id, reason, conn.link.closing, Instant::now());
    }

    /// Tells the application that the sessions of a connection's `state`
    /// ended (nothing for one that drains: it was told before).
    fn notify_ended(&mut self, state: State, id: ConnId, reason: CloseReason, closing: bool, now: Instant) {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        // The session's own part of the telling (which streams to tell
        // about) is guarded too: after a panic in its work, its state is
        // not trusted.
        let told = guard::catch(Some(id), || {
            guarded(&peers.own().stats, "the end of a connection", || match state {
                State::H1(h1) => h1.notify_removed(app, &mut ctx, id, reason, closing),
                State::H2(session) => session.notify_removed(app, &mut ctx, id, reason),
                State::Draining { .. } => {}
            })
        });
        if let Err(panic) = told {
            Stats::add(&peers.own().stats.connection_panics, 1);
            error!(
                "a panic in the end of {} (the application may not have been told): {panic}",
                Named(id)
            );
        }
    }

    pub(super) fn conn_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .map(|(index, conn)| ConnId::new(index, conn.generation))
            .collect()
    }

    /// Binds the loop's QUIC endpoint (HTTP/3) on `addr`'s UDP port,
    /// registered under `token`; its address.
    #[cfg(feature = "tls")]
    pub(super) fn bind_quic(
        &mut self,
        tls: &rustls::ServerConfig,
        addr: std::net::SocketAddr,
        reuse_port: bool,
        token: Token,
    ) -> io::Result<std::net::SocketAddr> {
        let endpoint = H3Endpoint::bind(&self.env, tls, addr, reuse_port, &self.registry, token)?;
        let addr = endpoint.local_addr()?;
        self.quic = Some(Box::new(endpoint));
        Ok(addr)
    }

    /// The QUIC socket is readable (and, with `writable`, takes datagrams
    /// again).
    #[cfg(feature = "tls")]
    pub(super) fn quic_ready(&mut self, readable: bool, writable: bool, now: Instant) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        if writable {
            quic.writable(&mut self.app, &mut self.env, &self.registry, now);
        }
        if readable {
            quic.readable(&mut self.app, &mut self.env, now);
            self.apply_actions(now);
        }
    }

    /// A QUIC datagram another loop received for a connection of this
    /// one.
    #[cfg(feature = "tls")]
    pub(super) fn quic_forwarded(&mut self, from: std::net::SocketAddr, datagram: &[u8], now: Instant) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        quic.forwarded(&mut self.app, &mut self.env, from, datagram, now);
        self.apply_actions(now);
    }

    /// The end of a loop turn for the QUIC endpoint: its timers, and what
    /// it has to send.
    #[cfg(feature = "tls")]
    pub(super) fn quic_turn(&mut self, now: Instant) {
        let Some(quic) = self.quic.as_deref_mut() else {
            return;
        };
        quic.turn(&mut self.app, &mut self.env, &self.registry, now);
        self.apply_actions(now);
        if let Some(quic) = self.quic.as_deref_mut() {
            // What the actions queued goes out this turn too.
            quic.writable(&mut self.app, &mut self.env, &self.registry, now);
        }
    }

    /// The loop is exiting: QUIC connections are closed, so that their
    /// clients learn it now rather than at their idle timeout.
    #[cfg(feature = "tls")]
    pub(super) fn quic_close(&mut self, now: Instant) {
        if let Some(quic) = self.quic.as_deref_mut() {
            quic.close_all(&mut self.app, &mut self.env, &self.registry, now);
        }
    }

    /// When the QUIC endpoint next has something to do (now, if it left
    /// datagrams unread).
    #[cfg(feature = "tls")]
    pub(super) fn quic_deadline(&mut self, now: Instant) -> Option<Instant> {
        let quic = self.quic.as_deref_mut()?;
        if quic.busy() {
            return Some(now);
        }
        quic.next_deadline()
    }

    /// The first step of a graceful shutdown for the connections: idle
    /// keep-alive ones close, HTTP/2 sessions send GOAWAY, and a request
    /// under way gets its answer, which closes its connection.
    pub(super) fn begin_shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(quic) = self.quic.as_deref_mut() {
            quic.begin_shutdown(&mut self.app, &mut self.env, Instant::now());
        }
        for id in self.conn_ids() {
            self.contained(id, "the shutdown", |this| {
                this.drive(id, |state, c| match state {
                    State::H1(h1) => h1.begin_shutdown(c.link),
                    State::H2(h2) => {
                        h2.begin_shutdown(c);
                        NextStep::Keep
                    }
                    State::Draining { .. } => NextStep::Keep,
                });
            });
        }
    }

    /// The second step, once every loop has drained: waiting requests get
    /// their answer, WebSockets close with 1001, event streams end.
    pub(super) fn close_sessions(&mut self, now: Instant) {
        #[cfg(feature = "tls")]
        if let Some(quic) = self.quic.as_deref_mut() {
            quic.close_sessions(&mut self.app, &mut self.env, now);
        }
        for id in self.conn_ids() {
            self.contained(id, "the shutdown", |this| {
                this.drive(id, |state, c| {
                    match state {
                        State::H1(h1) => h1.close_sessions(c, now),
                        State::H2(h2) => h2.close_sessions(c, now),
                        State::Draining { .. } => {}
                    }
                    NextStep::Keep
                });
            });
        }
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
    let Some(session) = H2Session::new(h2_config, now + config.handshake_timeout) else {
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

/// Faults injected by the unit tests (`super::fault_tests`): a panic at
/// one point of the loop's work for the connection from one port, as a
/// bug in rustls or a session would raise there. Compiled only for them.
#[cfg(test)]
pub(super) mod inject {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use mio::net::TcpStream;

    /// Where the loop panics.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Point {
        /// Just after a read from the socket (inside TLS, say).
        Read,
        /// At the start of a flush.
        Flush,
        /// When a timer fires.
        Timer,
        /// When a broadcast is queued for it.
        Push,
    }

    static ARMED: Mutex<Vec<(Point, u16)>> = Mutex::new(Vec::new());
    static ANY: AtomicBool = AtomicBool::new(false);
    static ARMED_H3: Mutex<Vec<u16>> = Mutex::new(Vec::new());

    /// The next session event of the QUIC connection from port `port`
    /// panics in its HTTP/3 handling (in the loop, not in the endpoint).
    pub(crate) fn arm_h3(port: u16) {
        ARMED_H3.lock().unwrap().push(port);
    }

    pub(crate) fn check_h3(peer: Option<std::net::SocketAddr>) {
        let Some(peer) = peer else { return };
        let hit = {
            let mut armed = ARMED_H3.lock().unwrap();
            let found = armed.iter().position(|&port| port == peer.port());
            found.map(|at| armed.remove(at))
        };
        if hit.is_some() {
            panic!("injected in an HTTP/3 event of {peer}");
        }
    }

    /// The next time the loop does `point`'s work for the connection
    /// whose peer is on port `port` (the client's own port), it panics.
    pub(crate) fn arm(point: Point, port: u16) {
        ARMED.lock().unwrap().push((point, port));
        ANY.store(true, Ordering::SeqCst);
    }

    pub(crate) fn check(point: Point, socket: &TcpStream) {
        if !ANY.load(Ordering::SeqCst) {
            return;
        }
        let Ok(peer) = socket.peer_addr() else {
            return;
        };
        let hit = {
            let mut armed = ARMED.lock().unwrap();
            let found = armed.iter().position(|&armed| armed == (point, peer.port()));
            found.map(|at| armed.remove(at))
        };
        if hit.is_some() {
            panic!("injected at {point:?} for {peer}");
        }
    }
}
