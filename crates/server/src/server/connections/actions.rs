//! What the application asked for connections other than the one being
//! served, applied at the end of each piece of work: a fan-out's one
//! encoded message queued on every target through the sink, and each other
//! action carried out under its own connection's guard (a QUIC stream's by
//! the QUIC endpoint).

use std::mem;
use std::time::Instant;

use super::Connections;
use crate::app::{Action, App, CloseReason, ConnId, Encoded, Queued};
use crate::loops::Stats;
use crate::server::conn::live;
use crate::server::guard;
#[cfg(all(test, feature = "tls"))]
use crate::server::inject;
use crate::server::link::NextStep;
use crate::server::sink::{self, Pushed};

impl<A: App> Connections<A> {
    /// Applies what application callbacks asked for other connections,
    /// each connection's under its own guard: the batch taken here is
    /// never lost to an unwind.
    pub(in crate::server) fn apply_actions(&mut self, now: Instant) {
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
        #[cfg(all(test, feature = "tls"))]
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
        // A deferred answer, reported as it is given (any HTTP version).
        if let Action::Respond(_, response) = &action
            && let Some(access) = &self.env.peers.own().access
        {
            access.deferred_answer(id, response.status, response.body.len());
        }
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
}
