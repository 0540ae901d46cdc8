//! The context through which a callback acts on connections: on the one
//! being handled, written to directly, and on others through actions the
//! loop applies once the callback returns.

use std::time::Instant;

use tether_ws::{CloseCode, Message, MessageRef};

use crate::loops::{Peers, Stats};
use crate::output::{OutQueue, Pool};

use super::encoded::Encoded;
use crate::request::{ConnId, Response};

/// Something to do to a connection other than the one being handled,
/// applied by the loop as soon as the callback returns.
#[derive(Debug)]
pub(crate) enum Action {
    /// Encoded bytes for a WebSocket session or an event stream.
    Send(ConnId, Encoded),
    /// Start the close handshake.
    Close(ConnId, CloseCode, String),
    /// End an event stream.
    EndStream(ConnId),
    /// Answer a deferred request.
    Respond(ConnId, Response),
    /// Let a held request go on as this route.
    Proceed(ConnId, crate::app::Route),
}

impl Action {
    /// The id the action is for.
    pub(crate) fn id(&self) -> ConnId {
        match self {
            Action::Send(id, _)
            | Action::Close(id, ..)
            | Action::EndStream(id)
            | Action::Respond(id, _)
            | Action::Proceed(id, _) => *id,
        }
    }
}

/// An entry of [`Actions`]: one action, or one fan-out.
#[derive(Debug)]
pub(crate) enum Queued {
    /// One action for one connection.
    One(Action),
    /// The same encoded bytes for each connection of a range of
    /// [`Actions::targets`]: a fan-out costs the loop one connection id
    /// per recipient (12 bytes), not one action (96).
    SendMany(std::ops::Range<u32>, Encoded),
}

/// What callbacks asked for other connections, in order, and the
/// recipients of their fan-outs. Both lists keep their room between
/// turns.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub(crate) list: Vec<Queued>,
    pub(crate) targets: Vec<ConnId>,
}

impl Actions {
    pub(crate) fn push(&mut self, action: Action) {
        self.list.push(Queued::One(action));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends `encoded` to the connections added to `targets` since
    /// `start`, if any: one for one recipient, a range for more.
    fn send_to_added(&mut self, start: usize, encoded: &Encoded) {
        match self.targets.len() - start {
            0 => {}
            1 => {
                if let Some(id) = self.targets.pop() {
                    self.push(Action::Send(id, encoded.clone()));
                }
            }
            _ => {
                // Past u32::MAX recipients in one turn the ids would not
                // fit a range: send them one by one instead.
                match (u32::try_from(start), u32::try_from(self.targets.len())) {
                    (Ok(from), Ok(to)) => self.list.push(Queued::SendMany(from..to, encoded.clone())),
                    _ => {
                        let ids: Vec<ConnId> = self.targets.drain(start..).collect();
                        for id in ids {
                            self.push(Action::Send(id, encoded.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// The connection whose event is being handled, written to directly.
pub(crate) struct Current<'a> {
    pub(crate) id: ConnId,
    pub(crate) ws: Option<&'a mut tether_ws::Connection>,
    /// What [`Encoded::for_session`] is given for this session.
    pub(crate) deflate_window: u8,
    /// An event stream's content coding, if it is compressed, and the
    /// size below which its bytes go stored.
    pub(crate) sse: Option<(&'a mut super::sse_coding::Coding, usize)>,
    pub(crate) out: &'a mut OutQueue,
    pub(crate) closing: &'a mut bool,
    /// The message being handled, when it can be echoed where it lies.
    pub(crate) in_place: InPlace<'a>,
}

/// A received message that lies whole, unmasked, at the end of the bytes
/// just read (at `at` in them), and what the application did with it. Sent
/// back unchanged to its sender ahead of anything else, it is not copied:
/// the driver writes the frame header over the bytes before the payload
/// and the socket takes the frame from the read buffer
/// ([`tether_ws::Connection::frame_in_place`]); only what the socket does
/// not take is queued.
#[derive(Clone, Copy)]
pub(crate) enum InPlace<'a> {
    /// No message, or one that cannot go back in place.
    No,
    /// Lent to the application.
    Lent(MessageRef<'a>, usize),
    /// Sent back to its sender: the driver frames and writes it.
    Echoed(MessageRef<'a>, usize),
}

impl Current<'_> {
    /// Takes a message sent to this connection as an echo in place, when
    /// it is the one lent and nothing is queued ahead of it.
    fn echo_in_place(&mut self, message: MessageRef<'_>) -> bool {
        let InPlace::Lent(lent, at) = self.in_place else {
            return false;
        };
        let same = lent.kind() == message.kind()
            && std::ptr::eq(lent.as_bytes(), message.as_bytes())
            && self.out.is_empty()
            && self.ws.as_deref().is_some_and(|ws| ws.can_send());
        if same {
            self.in_place = InPlace::Echoed(lent, at);
        }
        same
    }

    /// Queues an echo taken in place, before anything else is written to
    /// this connection: from then on it is sent as any message.
    fn settle(&mut self, pool: &mut Pool) {
        if let (InPlace::Echoed(message, _), Some(ws)) = (self.in_place, self.ws.as_deref_mut()) {
            let _ = self.out.write_with(pool, |out| ws.send(message, out));
        }
        self.in_place = InPlace::No;
    }

    /// Where the payload of the message echoed in place lies in the bytes
    /// read, and its kind.
    pub(crate) fn echoed(&self) -> Option<(std::ops::Range<usize>, tether_ws::MessageKind)> {
        match self.in_place {
            InPlace::Echoed(message, at) => Some((at..at + message.as_bytes().len(), message.kind())),
            _ => None,
        }
    }
}

/// What an application callback can do. `P` is the application's
/// [`App::Post`](crate::App::Post).
pub struct Ctx<'a, P = ()> {
    pub(crate) now: Instant,
    pub(crate) current: Option<Current<'a>>,
    pub(crate) actions: &'a mut Actions,
    pub(crate) pool: &'a mut Pool,
    pub(crate) peers: &'a Peers<P>,
}

impl<'a, P> Ctx<'a, P> {
    /// A context that acts on no connection in particular.
    pub(crate) fn new(
        now: Instant,
        actions: &'a mut Actions,
        pool: &'a mut Pool,
        peers: &'a Peers<P>,
    ) -> Ctx<'a, P> {
        Ctx {
            now,
            current: None,
            actions,
            pool,
            peers,
        }
    }

    /// The same context, acting on `current` for a while.
    pub(crate) fn with_current<'b>(&'b mut self, current: Current<'b>) -> Ctx<'b, P> {
        Ctx {
            now: self.now,
            current: Some(current),
            actions: &mut *self.actions,
            pool: &mut *self.pool,
            peers: self.peers,
        }
    }

    /// The time the loop woke up for this event.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Sends a message to a WebSocket session: a [`&Message`](Message),
    /// or a [`MessageRef`] such as the one [`App::on_message`](crate::App::on_message) was given.
    ///
    /// The message [`App::on_message`](crate::App::on_message) was given, sent back unchanged to
    /// its sender before anything else, is not copied when it lay whole
    /// at the end of what was read: its frame is made where it lies and
    /// written from there (an echo costs one write and no copy).
    pub fn send<'m>(&mut self, to: ConnId, message: impl Into<MessageRef<'m>>) {
        let message = message.into();
        match self.current.as_mut() {
            Some(current) if current.id == to => {
                if current.echo_in_place(message) {
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                    return;
                }
                current.settle(self.pool);
                if let Some(ws) = current.ws.as_deref_mut()
                    && current
                        .out
                        .write_with(self.pool, |out| ws.send(message, out))
                        .is_ok()
                {
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                }
            }
            _ => self.actions.push(Action::Send(to, Encoded::ws(message))),
        }
    }

    /// Sends a message it may keep: to the connection being handled, a
    /// large payload is queued as it is, not copied (what an echo wants);
    /// to any other, it is encoded as [`Ctx::send`](crate::Ctx::send) would.
    pub fn send_owned(&mut self, to: ConnId, message: Message) {
        match self.current.as_mut() {
            Some(current) if current.id == to => {
                current.settle(self.pool);
                if let Some(ws) = current.ws.as_deref_mut()
                    && let Ok(payload) = current
                        .out
                        .write_with(self.pool, |out| ws.send_owned(message, out))
                {
                    if let Some(payload) = payload {
                        current.out.push_payload(payload);
                    }
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                }
            }
            _ => self.actions.push(Action::Send(to, Encoded::ws(&message))),
        }
    }

    /// Sends already encoded bytes (from [`Encoded::ws`] for a WebSocket
    /// session, [`Encoded::sse`] for an event stream) to each connection.
    pub fn send_encoded(&mut self, to: impl IntoIterator<Item = ConnId>, encoded: &Encoded) {
        let start = self.actions.targets.len();
        for id in to {
            match self.current.as_mut() {
                Some(current) if current.id == id => {
                    current.settle(self.pool);
                    let open = current.ws.as_deref().is_none_or(|ws| ws.can_send());
                    if open && !*current.closing {
                        let stats = &self.peers.own().stats;
                        let bytes = if current.ws.is_some() {
                            let (bytes, deflated) = encoded.for_session(current.deflate_window);
                            if deflated {
                                Stats::add(&stats.deflated_out, 1);
                            }
                            bytes.clone()
                        } else if let Some((coding, min_size)) = current.sse.as_mut() {
                            super::sse_coding::shared(coding, encoded, *min_size)
                        } else {
                            encoded.bytes.clone()
                        };
                        current.out.push_shared(bytes);
                        Stats::add(&stats.messages_out, 1);
                    }
                }
                _ => self.actions.targets.push(id),
            }
        }
        self.actions.send_to_added(start, encoded);
    }

    /// Sends an SSE event to one event stream.
    pub fn send_event(&mut self, to: ConnId, event: &tether_sse::Event<'_>) -> Result<(), tether_sse::Error> {
        let encoded = Encoded::sse(event)?;
        self.send_encoded([to], &encoded);
        Ok(())
    }

    /// Starts the close handshake of a WebSocket session.
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        match self.current.as_mut() {
            Some(current) if current.id == conn && current.ws.is_some() => {
                current.settle(self.pool);
                let now = self.now;
                if let Some(ws) = current.ws.as_deref_mut() {
                    let _ = current
                        .out
                        .write_with(self.pool, |out| ws.close(code, reason, now, out));
                }
            }
            _ => self.actions.push(Action::Close(conn, code, reason.to_owned())),
        }
    }

    /// Answers a request the application deferred with [`Reply::Later`](crate::Reply::Later).
    /// Nothing happens if it was answered (or timed out) already.
    pub fn respond(&mut self, conn: ConnId, response: Response) {
        self.actions.push(Action::Respond(conn, response));
    }

    /// Lets a request held with [`Reply::Hold`](crate::Reply::Hold) go on
    /// as `route`, as if [`App::route`](crate::App::route) had chosen it: a
    /// [`Route::WebSocket`](crate::Route::WebSocket) upgrades (if the
    /// request is one), a [`Route::EventStream`](crate::Route::EventStream)
    /// starts, a page or [`Route::NotFound`](crate::Route::NotFound) is
    /// answered, and a [`Route::Handler`](crate::Route::Handler) is given
    /// to [`App::on_request`](crate::App::on_request) again, with the same
    /// request and body (which may hold it again, or proceed with it from
    /// there to an upgrade). The request keeps the state
    /// ([`App::State`](crate::App::State)) it was held with: `route`
    /// names only what it goes on as (`Route::WebSocket(())`, say), and a
    /// page or a 404 drops the state. Nothing happens if the request was
    /// answered (or timed out) already, or was not held.
    pub fn proceed(&mut self, conn: ConnId, route: crate::app::Route) {
        self.actions.push(Action::Proceed(conn, route));
    }

    /// The server's counters, added up over all its loops (for a metrics
    /// page).
    pub fn stats(&self) -> crate::loops::StatsSnapshot {
        self.peers.stats()
    }

    /// The index of this event loop among the server's loops, and how many
    /// there are.
    pub fn loop_index(&self) -> (usize, usize) {
        (self.peers.index, self.peers.len())
    }

    /// Posts a message to another loop of the same server (by index; to
    /// this loop too, delivered after the current callback), where
    /// [`App::on_post`](crate::App::on_post) receives it. Messages from one loop to another
    /// arrive in the order they were posted.
    pub fn post(&mut self, to_loop: usize, message: P) {
        self.peers.post(to_loop, message);
    }

    /// A [`Poster`](crate::Poster) to this server's loops, for a thread of
    /// the application's own to post back with (the answer to a question
    /// the loop must not wait for, say): what it posts reaches
    /// [`App::on_post`](crate::App::on_post) on the loop it names.
    pub fn poster(&self) -> crate::loops::Poster<P> {
        self.peers.poster()
    }

    /// Ends an event stream (the client will reconnect after its retry
    /// delay, with its last event id).
    pub fn end_stream(&mut self, conn: ConnId) {
        match self.current.as_mut() {
            Some(current) if current.id == conn && current.ws.is_none() => *current.closing = true,
            _ => self.actions.push(Action::EndStream(conn)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ids(queued: &Queued, targets: &[ConnId]) -> Vec<ConnId> {
        match queued {
            Queued::One(Action::Send(id, _)) => vec![*id],
            Queued::SendMany(range, _) => targets[range.start as usize..range.end as usize].to_vec(),
            other => panic!("not a send: {other:?}"),
        }
    }

    #[test]
    fn a_fan_out_is_one_entry_naming_its_recipients_in_order() {
        let encoded = Encoded::from(Arc::<[u8]>::from(&b"x"[..]));
        let mut actions = Actions::default();
        let a = ConnId::new(1, 0);
        let b = ConnId::new(2, 0);
        let c = ConnId::new(3, 0);
        // Nobody: nothing queued.
        actions.send_to_added(actions.targets.len(), &encoded);
        assert!(actions.is_empty());
        // One: a plain send, and no target kept.
        actions.targets.push(a);
        actions.send_to_added(0, &encoded);
        assert_eq!(actions.list.len(), 1);
        assert!(actions.targets.is_empty());
        // Between two fan-outs, another action keeps its place.
        actions.push(Action::EndStream(a));
        let start = actions.targets.len();
        actions.targets.extend([c, a, b]);
        actions.send_to_added(start, &encoded);
        actions.push(Action::EndStream(b));
        let start = actions.targets.len();
        actions.targets.extend([b, c]);
        actions.send_to_added(start, &encoded);
        assert_eq!(actions.list.len(), 5);
        assert_eq!(ids(&actions.list[0], &actions.targets), [a]);
        assert!(matches!(actions.list[1], Queued::One(Action::EndStream(id)) if id == a));
        assert_eq!(ids(&actions.list[2], &actions.targets), [c, a, b]);
        assert!(matches!(actions.list[3], Queued::One(Action::EndStream(id)) if id == b));
        assert_eq!(ids(&actions.list[4], &actions.targets), [b, c]);
        // A fan-out holds one id per recipient, not one action.
        assert!(std::mem::size_of::<ConnId>() * 4 <= std::mem::size_of::<Action>());
    }
}
