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
//! This file holds the table of connections and what every part of their
//! work shares: admission, the lending of a call, the guard, the timers and
//! the removal. Reading is in `input.rs`, writing in `flush.rs`, the
//! application's actions for other connections in `actions.rs`, and the
//! loop's QUIC endpoint in `quic.rs`.
//!
//! Each of these runs the work for one connection under a guard
//! ([`Connections::contained`]): a panic in it (in the TLS session, the
//! HTTP/1.1 or HTTP/2 session, the output queue) resets that connection
//! and the loop goes on. Why the tables stay consistent after such an
//! unwind is said in `super::guard`.

use crate::server::hosted::Hosted;
use std::time::{Duration, Instant};

use log::error;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::conn::{Conn, State, live};
use super::env::{Call, LoopEnv};
use super::guard::{self, Named, Panic, guarded};
use super::h1::H1Conn;
#[cfg(feature = "tls")]
use super::h3::H3Endpoint;
#[cfg(all(test, feature = "tls"))]
use super::inject;
use super::link::{Kind, Link, NextStep};
use super::listen::start_tls;
use crate::app::{App, CloseReason, ConnId, Ctx};
use crate::loops::Stats;
use crate::timers::Scheduled;
use crate::transport::{Stream, TlsSession};

mod actions;
mod flush;
mod input;
#[cfg(feature = "tls")]
mod quic;

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
    pub(super) app: Hosted<A>,
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
            app: Hosted::new(app),
            env,
            freed: false,
            #[cfg(feature = "tls")]
            quic: None,
        }
    }

    /// Drops the states of the requests that ended this turn where the
    /// application was not at hand ([`LoopEnv::released`]).
    pub(super) fn release_ended(&mut self) {
        for key in self.env.released.drain(..) {
            self.app.release(key);
        }
        #[cfg(feature = "tls")]
        if let Some(quic) = self.quic.as_deref_mut() {
            for key in quic.released.drain(..) {
                self.app.release(key);
            }
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
    pub(super) fn detached(&mut self, now: Instant) -> (&mut Hosted<A>, Ctx<'_, A::Post>) {
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
                #[cfg(all(test, feature = "tls"))]
                if let Some(conn) = live(&mut this.conns, id) {
                    inject::check(inject::Point::Timer, &conn.socket);
                }
                this.drive(id, |state, c| match state {
                    State::H1(h1) => h1.on_timer(c, now),
                    State::H2(h2) => h2.on_timer(c, now),
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
