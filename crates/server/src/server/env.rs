//! What the loop lends to the sessions it drives: a session's methods take
//! one [`Call`] by `&mut` (the connection's id, link and socket, the
//! application and the environment), so that they need not reach into the
//! loop ([`super::Server`]) for any of it.

use crate::server::hosted::Hosted;
use std::sync::Arc;
use std::time::Instant;

use super::guard::guarded;
use super::link::Link;
use crate::app::{Actions, App, ConnId, Ctx, Response};
use crate::config::{Config, Handshake};
use crate::loops::{Peers, Stats};
use crate::output::{OutQueue, Pool};
use crate::timers::Timers;
use crate::transport::Stream;

/// The loop's environment: buffers, deadlines, the other loops, the
/// configuration and the connections waiting for the loop's attention,
/// shared by every session of the loop.
pub(super) struct LoopEnv<P> {
    pub(super) timers: Timers,
    /// Buffers and output queues, reused across connections.
    pub(super) pool: Pool,
    /// What the application asked during a callback, applied after it.
    pub(super) actions: Actions,
    /// This loop's mailbox and counters, and the other loops'.
    pub(crate) peers: Peers<P>,
    pub(super) config: Config,
    /// `config.ws`, kept once for every WebSocket session of the loop.
    pub(super) ws_config: tether_ws::SharedConfig,
    pub(super) handshake: Arc<Handshake>,
    /// Connections with output to flush at the end of the turn.
    pub(super) dirty: Vec<ConnId>,
    /// Connections to read again at the end of the turn (out of turns, or
    /// reading resumed).
    pub(super) backlog: Vec<ConnId>,
    /// A graceful shutdown has begun: every answer closes its connection.
    pub(super) shutting_down: bool,
    /// Every loop has drained and sessions are closing.
    pub(super) closing_sessions: bool,
    /// The `Alt-Svc` value TCP answers carry while HTTP/3 is served
    /// (`h3=":PORT"`).
    pub(super) alt_svc: Option<Arc<str>>,
    /// Keys of request states ([`crate::App::State`]) whose requests
    /// ended where the application was not at hand (a stream forgotten
    /// while a broadcast was queued on it): released by the loop before
    /// the end of its turn.
    pub(super) released: Vec<u32>,
}

impl<P> LoopEnv<P> {
    /// This loop's counters.
    pub(super) fn stats(&self) -> &Stats {
        &self.peers.own().stats
    }

    /// Puts connection `id` (whose link is `link`) on the list to flush.
    pub(super) fn mark_dirty(&mut self, id: ConnId, link: &mut Link) {
        if !link.dirty {
            link.dirty = true;
            self.dirty.push(id.connection());
        }
    }
}

/// The loop's parts lent to one call on the HTTP/3 endpoint, whose
/// connections have no link or socket of their own to lend beside them
/// (see [`Call`]): the application, the loop's environment, and the time
/// the loop woke for the event.
#[cfg(feature = "tls")]
pub(super) struct Lent<'l, A: App> {
    pub(super) app: &'l mut Hosted<A>,
    pub(super) env: &'l mut LoopEnv<A::Post>,
    pub(super) now: Instant,
}

#[cfg(feature = "tls")]
impl<A: App> Lent<'_, A> {
    /// The application and a context that acts on no connection in
    /// particular.
    pub(super) fn detached(&mut self) -> (&mut Hosted<A>, Ctx<'_, A::Post>) {
        let LoopEnv {
            actions, pool, peers, ..
        } = &mut *self.env;
        (&mut *self.app, Ctx::new(self.now, actions, pool, peers))
    }
}

/// One call into a connection's session: which connection, its link, the
/// application and the loop's environment, and the connection's socket
/// (for a WebSocket echo written back from where it lies).
pub(super) struct Call<'c, 's, A: App> {
    pub(super) id: ConnId,
    pub(super) link: &'c mut Link,
    pub(super) app: &'c mut Hosted<A>,
    pub(super) env: &'c mut LoopEnv<A::Post>,
    pub(super) socket: &'c mut Stream<'s>,
}

impl<'s, A: App> Call<'_, 's, A> {
    /// The application and a context that acts on no connection in
    /// particular.
    pub(super) fn detached(&mut self, now: Instant) -> (&mut Hosted<A>, Ctx<'_, A::Post>) {
        let LoopEnv {
            actions, pool, peers, ..
        } = &mut *self.env;
        (&mut *self.app, Ctx::new(now, actions, pool, peers))
    }

    /// The application, a context that acts on no connection in
    /// particular, and the connection's link and socket, apart.
    pub(super) fn parts(
        &mut self,
        now: Instant,
    ) -> (&mut Hosted<A>, Ctx<'_, A::Post>, &mut Link, &mut Stream<'s>) {
        let LoopEnv {
            actions, pool, peers, ..
        } = &mut *self.env;
        (
            &mut *self.app,
            Ctx::new(now, actions, pool, peers),
            &mut *self.link,
            &mut *self.socket,
        )
    }

    /// Puts the connection on the list to flush.
    pub(super) fn mark_dirty(&mut self) {
        self.env.mark_dirty(self.id, self.link);
    }

    /// The connection's output queue, and the pool beside it.
    pub(super) fn out(&mut self) -> (&mut OutQueue, &mut Pool) {
        let pool = &mut self.env.pool;
        (self.link.queue(pool), pool)
    }

    /// The application's answer to a deferred request whose time is up (a
    /// 500 if the callback panicked).
    pub(super) fn timed_out(&mut self, id: ConnId, tag: u32, now: Instant) -> Response {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let response = guarded(&peers.own().stats, "on_request_timeout", || {
            app.on_request_timeout(&mut ctx, id, tag)
        })
        .unwrap_or_else(|| Response::text(500, "500 Internal Server Error\n"));
        if let Some(access) = &self.env.peers.own().access {
            access.deferred_answer(id, response.status, response.body.len());
        }
        response
    }

    /// The application's answer to a request still waiting as the
    /// sessions close, if it gives one now (a 500 if the callback
    /// panicked).
    pub(super) fn shutdown_answer(&mut self, id: ConnId, tag: u32, now: Instant) -> Option<Response> {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let response = guarded(&peers.own().stats, "on_request_shutdown", || {
            app.on_request_shutdown(&mut ctx, id, tag)
        })
        .unwrap_or_else(|| Some(Response::text(500, "500 Internal Server Error\n")));
        if let (Some(response), Some(access)) = (&response, &self.env.peers.own().access) {
            access.deferred_answer(id, response.status, response.body.len());
        }
        response
    }
}
