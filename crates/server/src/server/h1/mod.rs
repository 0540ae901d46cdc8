//! HTTP/1.1 connections (RFC 9112): requests answered now or later, and
//! the WebSocket session or event stream a request may turn the
//! connection into. [`H1Conn`] owns its methods; each takes one
//! [`Call`] by `&mut`: the connection's id, link and socket (for a
//! WebSocket echo written in place), the application and the loop's
//! environment.
//!
//! Calling contract: the loop passes the bytes it read
//! ([`H1Conn::input`]), calls [`H1Conn::on_timer`] when
//! [`H1Conn::next_deadline`] is due, and the sink
//! ([`crate::server::sink`]) pushes, closes, ends and answers through the
//! methods of those names; output goes to the link, which the loop
//! flushes. What a method cannot do itself (drop the connection) it
//! returns as an [`NextStep`].

use crate::server::hosted::Hosted;
use std::time::Instant;

use log::debug;
use tether_ws::{CloseCode, Event};

mod pending;
mod requests;
mod session;
mod state;

pub(in crate::server) use state::{H1Conn, Requests};

use crate::app::sse_coding;
use crate::app::{App, CloseReason, ConnId, Ctx};
use crate::server::env::Call;
use crate::server::guard::guarded;
use crate::server::link::{Link, NextStep};

impl H1Conn {
    /// Bytes from the client.
    pub(in crate::server) fn input<A: App>(
        &mut self,
        c: &mut Call<'_, '_, A>,
        data: &mut [u8],
        now: Instant,
    ) {
        match self {
            // After a response that closes the connection, later requests
            // are not answered.
            H1Conn::Requests(_) if c.link.closing => {}
            H1Conn::Requests(_) => self.requests_input(c, data, now),
            H1Conn::WebSocket(_) => self.ws_input(c, data, now),
            // Nothing is expected from an event-stream client, nor after
            // the end of a WebSocket session.
            H1Conn::ClosedWebSocket { .. } | H1Conn::EventStream { .. } => {}
        }
    }

    /// The client closed its side.
    pub(in crate::server) fn on_eof(&self, link: &mut Link) -> NextStep {
        match self {
            H1Conn::WebSocket(session) if !session.is_closed() => NextStep::Drop,
            H1Conn::EventStream { .. } => NextStep::Drop,
            // A plain HTTP client may half-close after its request: its
            // responses are still written before the connection closes.
            // So may a WebSocket client after its close frame: the answer
            // is still written, until the session's deadline at most.
            _ => {
                link.closing = true;
                NextStep::Flush
            }
        }
    }

    /// What is due: a deferred answer's time, the request head's
    /// deadline, a heartbeat, the WebSocket's timers.
    pub(in crate::server) fn on_timer<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) -> NextStep {
        let id = c.id;
        match self {
            H1Conn::Requests(Requests {
                deadline,
                waiting: Some(deferred),
                ..
            }) => {
                if now >= *deadline {
                    let tag = deferred.tag;
                    self.request_timed_out(c, tag, now);
                }
                NextStep::Keep
            }
            H1Conn::Requests(Requests { deadline, .. }) if now >= *deadline => {
                debug!("request head not complete in time; dropping");
                NextStep::Drop
            }
            H1Conn::Requests(_) => NextStep::Keep,
            H1Conn::EventStream { heartbeat_at, .. } if now >= *heartbeat_at && c.link.closing => {
                debug!("event stream could not flush its end in time; dropping");
                NextStep::Drop
            }
            H1Conn::EventStream {
                heartbeat_at, coding, ..
            } => {
                if now >= *heartbeat_at {
                    *heartbeat_at = now + c.env.config.sse_heartbeat;
                    let pool = &mut c.env.pool;
                    let out = c.link.queue(pool);
                    match coding {
                        Some(coding) => out.push_shared(sse_coding::heartbeat(coding)),
                        None => out.write_with(pool, tether_sse::heartbeat),
                    }
                    return NextStep::Flush;
                }
                NextStep::Keep
            }
            H1Conn::ClosedWebSocket { deadline, .. } if now >= *deadline => {
                debug!("websocket could not flush its close in time; dropping");
                NextStep::Drop
            }
            H1Conn::ClosedWebSocket { .. } => NextStep::Keep,
            H1Conn::WebSocket(session) => {
                let linger = c.env.config.linger;
                let (app, mut ctx, link, _) = c.parts(now);
                let out = link.out.get_or_insert_with(|| ctx.pool.queue());
                let event = out.write_with(ctx.pool, |out| session.ws.handle_timeout(now, out));
                if let Some(Event::Failed(error)) = event {
                    debug!("websocket timer: {error}");
                    if !session.notified {
                        session.notified = true;
                        let reason = match error {
                            tether_ws::Error::IdleTimeout => CloseReason::Failed(CloseCode::GOING_AWAY),
                            _ => CloseReason::Dropped,
                        };
                        let (tag, peers) = (session.tag, ctx.peers);
                        guarded(&peers.own().stats, "on_close", || {
                            app.on_close(&mut ctx, id, tag, reason)
                        });
                    }
                    if matches!(error, tether_ws::Error::CloseTimeout) {
                        return NextStep::Drop;
                    }
                }
                self.end_if_closed(link, now + linger);
                NextStep::Flush
            }
        }
    }

    /// The first step of a graceful shutdown: a request under way gets its
    /// answer, which closes the connection; an idle one closes now.
    pub(in crate::server) fn begin_shutdown(&mut self, link: &mut Link) -> NextStep {
        let idle = match self {
            H1Conn::Requests(Requests {
                waiting: Some(deferred),
                ..
            }) => {
                deferred.close = true;
                false
            }
            H1Conn::Requests(Requests { partial, .. }) => partial.is_empty(),
            H1Conn::WebSocket(_) | H1Conn::ClosedWebSocket { .. } | H1Conn::EventStream { .. } => false,
        };
        if idle {
            link.closing = true;
            return NextStep::Flush;
        }
        NextStep::Keep
    }

    /// The second step, once every loop has drained: a waiting request
    /// gets its answer, a WebSocket closes with 1001, an event stream ends.
    pub(in crate::server) fn close_sessions<A: App>(&mut self, c: &mut Call<'_, '_, A>, now: Instant) {
        let id = c.id;
        match self {
            H1Conn::Requests(Requests {
                waiting: Some(deferred),
                ..
            }) => {
                let tag = deferred.tag;
                if let Some(response) = c.shutdown_answer(id, tag, now) {
                    self.respond_later(c, &response, now);
                }
            }
            H1Conn::Requests(Requests { partial, .. }) => {
                if partial.is_empty() {
                    c.link.closing = true;
                    c.mark_dirty();
                }
            }
            H1Conn::WebSocket(_) => {
                self.close_ws(c, CloseCode::GOING_AWAY, "server shutting down", now);
            }
            H1Conn::EventStream { .. } => self.end_stream(c, CloseReason::Shutdown, now),
            // Already closing, by its deadline.
            H1Conn::ClosedWebSocket { .. } => {}
        }
    }

    /// Tells the application that the connection's session has ended, if
    /// it was not told yet: it is being dropped (`closing`: an event stream
    /// that was already ending).
    pub(in crate::server) fn notify_removed<A: App>(
        self,
        app: &mut Hosted<A>,
        ctx: &mut Ctx<'_, A::Post>,
        id: ConnId,
        reason: CloseReason,
        closing: bool,
    ) {
        // Each state the connection holds is dropped here, after its
        // session's last callback if that is still owed.
        match self {
            H1Conn::WebSocket(session) if !session.notified => app.close_final(ctx, id, session.tag, reason),
            H1Conn::WebSocket(session) => app.release(session.tag),
            H1Conn::ClosedWebSocket {
                tag, notified: false, ..
            } => app.close_final(ctx, id, tag, reason),
            H1Conn::ClosedWebSocket { tag, .. } => app.release(tag),
            H1Conn::EventStream { tag, .. } if !closing => app.unsubscribe_final(ctx, id, tag, reason),
            H1Conn::EventStream { tag, .. } => app.release(tag),
            H1Conn::Requests(Requests {
                waiting: Some(deferred),
                ..
            }) => app.abandoned_final(ctx, id, deferred.tag),
            // A state made of a head whose body never came: no callback
            // is owed.
            H1Conn::Requests(Requests { kept: Some(key), .. }) => app.release(key),
            H1Conn::Requests(_) => {}
        }
    }
}
