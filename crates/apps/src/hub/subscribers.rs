//! Subscribers: who this loop delivers to (WebSocket, event stream, long
//! poll), when their tokens run out, and what they are sent: replays,
//! resumptions and each event, encoded once and shared.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use tether_hub::{Delivery, Event, EventId, Gap, Resumed, Transport};
use tether_server::{CloseCode, ConnId, Ctx, Encoded, Message, Request};

use super::cors::Cors;
use super::metrics::{HubStats, add, sub};
use super::poll::{next_id, poll_response};
use super::routes::{Format, Socket, format, parse_path, wants_presence};

/// Who holds a subscriber's credential: when it stops being good (Unix
/// seconds, the leeway included), its subject, and the token's id and
/// `iat` (by which it may be revoked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Holder {
    pub(super) deadline: Option<u64>,
    pub(super) subject: Option<String>,
    pub(super) token_id: Option<String>,
    pub(super) issued_at: Option<u64>,
}

/// A subscriber or long poll of this loop.
#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) topic: Arc<str>,
    pub(super) transport: Transport,
    /// The id it resumed from (`Last-Event-ID`, `lastEventId`, `since`).
    pub(super) requested: Option<String>,
    /// A WebSocket subscriber may publish to its topic.
    pub(super) may_publish: bool,
    /// The event type of what it publishes (`?event=`).
    pub(super) event_type: Option<String>,
    /// It publishes JSON envelopes (`?envelope=1`), each acknowledged.
    pub(super) envelope: bool,
    /// Bytes it published that the sequencer has not answered yet.
    pub(super) in_flight: usize,
    /// The Unix second its token stops being good (leeway included), when
    /// it came in with one: then it is closed (a WebSocket, with 1008) or
    /// ended (an event stream).
    pub(super) deadline: Option<u64>,
    /// The Unix second a WebSocket subscriber is told its token is about
    /// to expire (`{"type":"auth-expiring","in":SECONDS}`), or the
    /// backend is asked for a later expiry (`refreshed`).
    pub(super) warn_at: Option<u64>,
    /// It was let in by the backend's connect hook, and the backend's
    /// refresh hook is asked for a later expiry before it expires.
    pub(super) refreshed: bool,
    /// Its credential's subject, if it had one.
    pub(super) subject: Option<String>,
    /// Who it is present as (WebSocket and event-stream subscribers).
    pub(super) member: Option<Arc<str>>,
    /// It gets the topic's join and leave events (`?presence=1`).
    pub(super) watches: bool,
    /// Its publish rate's bucket, once it publishes under a rate.
    pub(super) bucket: Option<super::rate::Bucket>,
    /// Its token's `jti` and `iat`, by which it may be revoked.
    pub(super) token_id: Option<String>,
    pub(super) issued_at: Option<u64>,
    /// Its place among its subject's connections (WebSocket and event
    /// stream subscribers with a subject): given back when it is dropped.
    pub(super) slot: Option<super::connections::Slot>,
}

impl Subscriber {
    pub(super) fn new(topic: Arc<str>, transport: Transport, requested: Option<String>) -> Subscriber {
        Subscriber {
            topic,
            transport,
            requested,
            may_publish: false,
            event_type: None,
            envelope: false,
            in_flight: 0,
            deadline: None,
            refreshed: false,
            warn_at: None,
            subject: None,
            member: None,
            watches: false,
            bucket: None,
            token_id: None,
            issued_at: None,
            slot: None,
        }
    }

    /// Takes what its credential's holder is: deadline, subject, token
    /// id and `iat` (not the warning time, which is the caller's).
    pub(super) fn hold(&mut self, holder: Holder) {
        self.deadline = holder.deadline;
        self.subject = holder.subject;
        self.token_id = holder.token_id;
        self.issued_at = holder.issued_at;
    }
}

impl Subscriber {
    /// A WebSocket subscriber of the topic `request` names, let in as
    /// `socket`, with what it asked for (`?lastEventId=`, `?format=raw`,
    /// `?event=`, `?envelope=1`, `?presence=1`); the deadline and subject
    /// of its credential are not read here.
    pub(super) fn websocket(request: &Request<'_>, socket: Socket) -> Option<Subscriber> {
        let (topic, _) = parse_path(request.path())?;
        let last_id = request.query_param("lastEventId").filter(|id| !id.is_empty());
        // The route refused a raw subscriber with anything it cannot have.
        let transport = match format(request) {
            Ok(Format::Raw) => Transport::RawWebSocket,
            _ => Transport::WebSocket,
        };
        let mut subscriber = Subscriber::new(Arc::from(topic), transport, last_id);
        subscriber.may_publish = socket == Socket::Publisher;
        subscriber.event_type = request.query_param("event");
        subscriber.envelope = matches!(request.query_param("envelope").as_deref(), Some("1" | "true"));
        subscriber.watches = wants_presence(request);
        Some(subscriber)
    }

    /// An event-stream subscriber of the topic `request` names, resuming
    /// after `last_event_id`.
    pub(super) fn event_stream(request: &Request<'_>, last_event_id: Option<&str>) -> Option<Subscriber> {
        let (topic, _) = parse_path(request.path())?;
        let last_id = last_event_id.map(str::to_owned);
        let mut subscriber = Subscriber::new(Arc::from(topic), Transport::EventStream, last_id);
        subscriber.watches = wants_presence(request);
        Some(subscriber)
    }
}

/// This loop's subscribers and long polls, with their token deadlines and
/// expiry warnings in order, soonest first: a deadline or a warning is
/// changed only here, so the orders never name a time a subscriber no
/// longer has.
#[derive(Debug)]
pub(super) struct Subscribers<C> {
    /// Boxed: a map keeps room for up to twice its entries, and a
    /// subscriber is a few hundred bytes; the room for a box is a pointer.
    conns: HashMap<C, Box<Subscriber>>,
    deadlines: BTreeSet<(u64, C)>,
    warnings: BTreeSet<(u64, C)>,
}

impl<C> Default for Subscribers<C> {
    fn default() -> Subscribers<C> {
        Subscribers {
            conns: HashMap::new(),
            deadlines: BTreeSet::new(),
            warnings: BTreeSet::new(),
        }
    }
}

impl<C: Copy + Ord + Hash> Subscribers<C> {
    /// Registers `subscriber` (one already registered as `conn` is
    /// replaced).
    pub(super) fn insert(&mut self, conn: C, subscriber: Subscriber) {
        if let Some(deadline) = subscriber.deadline {
            self.deadlines.insert((deadline, conn));
        }
        if let Some(warn_at) = subscriber.warn_at {
            self.warnings.insert((warn_at, conn));
        }
        if let Some(old) = self.conns.insert(conn, Box::new(subscriber)) {
            self.unschedule(conn, &old);
        }
    }

    pub(super) fn remove(&mut self, conn: C) -> Option<Subscriber> {
        let subscriber = self.conns.remove(&conn)?;
        self.unschedule(conn, &subscriber);
        Some(*subscriber)
    }

    fn unschedule(&mut self, conn: C, subscriber: &Subscriber) {
        if let Some(deadline) = subscriber.deadline {
            self.deadlines.remove(&(deadline, conn));
        }
        if let Some(warn_at) = subscriber.warn_at {
            self.warnings.remove(&(warn_at, conn));
        }
    }

    pub(super) fn get(&self, conn: C) -> Option<&Subscriber> {
        self.conns.get(&conn).map(|s| &**s)
    }

    /// The subscriber, to change what it may do (not its deadline: see
    /// [`Subscribers::renew`]).
    pub(super) fn get_mut(&mut self, conn: C) -> Option<&mut Subscriber> {
        self.conns.get_mut(&conn).map(|s| &mut **s)
    }

    /// A new token's deadline and warning time for `conn`.
    pub(super) fn renew(
        &mut self,
        conn: C,
        deadline: Option<u64>,
        warn_at: Option<u64>,
    ) -> Option<&mut Subscriber> {
        let subscriber = self.conns.get_mut(&conn)?;
        if let Some(old) = subscriber.deadline.take() {
            self.deadlines.remove(&(old, conn));
        }
        if let Some(old) = subscriber.warn_at.take() {
            self.warnings.remove(&(old, conn));
        }
        subscriber.deadline = deadline;
        subscriber.warn_at = warn_at;
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, conn));
        }
        if let Some(warn_at) = warn_at {
            self.warnings.insert((warn_at, conn));
        }
        Some(subscriber)
    }

    /// A subscriber whose token has expired by `now` (Unix seconds), and
    /// its transport; `None` when there is none left.
    pub(super) fn next_expired(&mut self, now: u64) -> Option<(C, Transport)> {
        while let Some(&(deadline, conn)) = self.deadlines.first() {
            if deadline > now {
                return None;
            }
            self.deadlines.pop_first();
            if let Some(subscriber) = self.conns.get_mut(&conn) {
                subscriber.deadline = None;
                return Some((conn, subscriber.transport));
            }
        }
        None
    }

    /// A subscriber to warn by `now` (Unix seconds), and the seconds its
    /// token has left; `None` when there is none left.
    pub(super) fn next_warning(&mut self, now: u64) -> Option<(C, u64)> {
        while let Some(&(warn_at, conn)) = self.warnings.first() {
            if warn_at > now {
                return None;
            }
            self.warnings.pop_first();
            if let Some(subscriber) = self.conns.get_mut(&conn) {
                subscriber.warn_at = None;
                return Some((conn, subscriber.deadline.map_or(0, |d| d.saturating_sub(now))));
            }
        }
        None
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    /// The connections whose credential `revoked` says is revoked, with
    /// their transports. It looks at every subscriber of the loop: for
    /// revocations, which are rare.
    pub(super) fn revoked(&self, revoked: impl Fn(&Subscriber) -> bool) -> Vec<(C, Transport)> {
        self.conns
            .iter()
            .filter(|(_, s)| (s.subject.is_some() || s.token_id.is_some()) && revoked(s))
            .map(|(conn, s)| (*conn, s.transport))
            .collect()
    }

    /// The connections whose credential's subject is `user` (subscribed
    /// to `topic`, if one is given), with their transports. It looks at
    /// every subscriber of the loop: for the server API's user actions,
    /// which are rare.
    pub(super) fn of_user(&self, user: &str, topic: Option<&str>) -> Vec<(C, Transport)> {
        self.conns
            .iter()
            .filter(|(_, s)| s.subject.as_deref() == Some(user))
            .filter(|(_, s)| topic.is_none_or(|t| *s.topic == *t))
            .map(|(conn, s)| (*conn, s.transport))
            .collect()
    }
}

/// Ends a WebSocket (1008) or an event stream (after an `auth-expired`
/// event) whose token expired; a long poll's answer is the caller's.
pub(super) fn close_expired<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, transport: Transport) {
    end_session(ctx, conn, transport, "auth-expired", "token expired");
}

/// Ends a WebSocket (1008) or an event stream (after an `auth-revoked`
/// event) whose token was revoked; a long poll's answer is the caller's.
pub(super) fn close_revoked<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, transport: Transport) {
    end_session(ctx, conn, transport, "auth-revoked", "token revoked");
}

/// Closes a WebSocket (1008, `why`) or ends an event stream after an
/// event of type `event` that says `why`.
fn end_session<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, transport: Transport, event: &str, why: &str) {
    match transport {
        Transport::WebSocket | Transport::RawWebSocket => ctx.close(conn, CloseCode::POLICY, why),
        Transport::EventStream => {
            let event = tether_sse::Event::new().event(event).data(why);
            if let Err(e) = ctx.send_event(conn, &event) {
                log::debug!("hub: {why}: event not sent: {e}");
            }
            ctx.end_stream(conn);
        }
        Transport::Poll => {}
    }
}

/// An event's WebSocket frame in one form, and its compressed twin.
type Frames = (fn(&Event) -> &Arc<[u8]>, fn(&Event) -> Option<&Arc<[u8]>>);

/// The forms of a JSON WebSocket subscriber's frames and a raw one's.
const WS_FORMS: [Frames; 2] = [
    (Event::ws_frame, Event::ws_frame_deflated),
    (Event::ws_raw_frame, Event::ws_raw_frame_deflated),
];

/// Sends an event to this loop's live subscribers of its topic: one
/// shared encoding per wire format, whatever their number.
pub(super) fn fan_out<P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    event: &Arc<Event>,
    delivery: &Delivery<'_, ConnId>,
) {
    let sockets = [delivery.websocket, delivery.raw_websocket];
    for (to, (frame, deflated)) in sockets.into_iter().zip(WS_FORMS) {
        if to.is_empty() {
            continue;
        }
        add(&stats.sent_websocket, to.len() as u64);
        // Compressed once per event, by the first loop with a subscriber
        // that takes it (see `Encoded`).
        let lazy = Arc::clone(event);
        ctx.send_encoded(
            rotated(to, event.id()),
            &Encoded::from(frame(event).clone()).with_deflated_lazy(move || deflated(&lazy).cloned()),
        );
    }
    if !delivery.event_stream.is_empty() {
        add(&stats.sent_event_stream, delivery.event_stream.len() as u64);
        ctx.send_encoded(
            rotated(delivery.event_stream, event.id()),
            &Encoded::from(event.sse().clone()),
        );
    }
}

/// The subscribers `to`, starting at a place that moves with the event's
/// id: the loop writes to them in the order they were queued for, so a
/// fixed order would make the same subscribers wait for all the others'
/// writes at every event (the last of 10 000 some tens of milliseconds
/// behind the first).
fn rotated<T: Copy>(to: &[T], id: EventId) -> impl Iterator<Item = T> + '_ {
    let start = usize::try_from(id.ms().wrapping_add(id.seq()) % to.len().max(1) as u64).unwrap_or(0);
    let (head, tail) = to.split_at_checked(start).unwrap_or((to, &[]));
    tail.iter().chain(head).copied()
}

/// Sends a gap signal (if any) and replayed events to a WebSocket or
/// event-stream subscriber.
pub(super) fn send_replay<'e, P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    conn: ConnId,
    subscriber: &Subscriber,
    gap: Option<Gap>,
    events: impl Iterator<Item = &'e Arc<Event>>,
) {
    let transport = subscriber.transport;
    // A raw subscriber never resumes from an id (the route refuses it), so
    // it has no gap to be told of, and no message to tell it with.
    if let Some(gap) = gap.filter(|_| transport != Transport::RawWebSocket) {
        add(&stats.gaps, 1);
        let (topic, requested) = (
            &subscriber.topic,
            subscriber.requested.as_deref().unwrap_or_default(),
        );
        match transport {
            Transport::WebSocket => ctx.send(conn, &Message::text(gap.ws_json(topic, requested))),
            _ => ctx.send_encoded(
                [conn],
                &Encoded::from(Arc::<[u8]>::from(gap.sse(topic, requested))),
            ),
        }
    }
    let mut sent = 0;
    for event in events {
        let bytes = match transport {
            Transport::WebSocket => event.ws_frame(),
            Transport::RawWebSocket => event.ws_raw_frame(),
            _ => event.sse(),
        };
        ctx.send_encoded([conn], &Encoded::from(bytes.clone()));
        sent += 1;
    }
    add(stats.sent(transport), sent);
}

/// A held subscriber is live (or a held long poll answered).
pub(super) fn send_resumed<P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    subscribers: &mut Subscribers<ConnId>,
    cors: &mut Cors,
    resumed: Resumed<ConnId>,
) {
    let conn = resumed.sub;
    if resumed.transport == Transport::Poll {
        let Some(poll) = subscribers.remove(conn) else {
            return;
        };
        sub(&stats.subscribers_poll, 1);
        add(&stats.sent_poll, resumed.events.len() as u64);
        if resumed.gap.is_some() {
            add(&stats.gaps, 1);
        }
        let since = poll.requested.as_deref();
        let next = next_id(&resumed.events, resumed.gap, since, || EventId::ZERO);
        cors.respond(
            ctx,
            conn,
            poll_response(&poll.topic, &resumed.events, resumed.gap, since, next),
        );
        return;
    }
    let Some(subscriber) = subscribers.get(conn) else {
        return;
    };
    send_replay(ctx, stats, conn, subscriber, resumed.gap, resumed.events.iter());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(deadline: Option<u64>, warn_at: Option<u64>) -> Subscriber {
        let mut subscriber = Subscriber::new(Arc::from("t"), Transport::WebSocket, None);
        subscriber.deadline = deadline;
        subscriber.warn_at = warn_at;
        subscriber
    }

    #[test]
    fn each_event_starts_its_fan_out_at_another_subscriber_and_misses_none() {
        let to: Vec<u32> = (10..15).collect();
        let mut firsts = BTreeSet::new();
        for ms in 0..5 {
            let order: Vec<u32> = rotated(&to, EventId::new(1000 + ms, 0)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, to, "every subscriber once");
            firsts.insert(order[0]);
        }
        assert_eq!(firsts.len(), 5, "each starts the fan-out once");
        assert_eq!(rotated::<u32>(&[], EventId::new(7, 7)).count(), 0);
    }

    #[test]
    fn a_subscriber_is_stored_boxed_and_its_size_is_shown() {
        // The figure behind benches/README's memory breakdown of fan-out.
        let size = std::mem::size_of::<Subscriber>();
        eprintln!("Subscriber: {size} bytes");
        let mut subs = Subscribers::default();
        subs.insert(1u32, subscriber(None, None));
        assert!(subs.get(1).is_some_and(|s| s.deadline.is_none()));
        assert!(subs.get_mut(1).is_some());
        assert!(subs.remove(1).is_some_and(|s| *s.topic == *"t"));
        assert_eq!(subs.len(), 0);
    }

    #[test]
    fn deadlines_and_warnings_come_in_order_and_follow_their_subscriber() {
        let mut subs = Subscribers::default();
        subs.insert(1u32, subscriber(Some(100), Some(70)));
        subs.insert(2, subscriber(Some(50), Some(40)));
        subs.insert(3, subscriber(None, None));
        assert_eq!(subs.next_warning(39), None);
        assert_eq!(subs.next_warning(45), Some((2, 5)));
        assert_eq!(subs.next_warning(45), None);
        assert_eq!(subs.next_warning(80), Some((1, 20)));
        assert_eq!(subs.next_warning(80), None);
        // A new token moves the deadline; the old one is forgotten.
        assert!(subs.renew(2, Some(200), None).is_some());
        assert_eq!(subs.next_expired(150), Some((1, Transport::WebSocket)));
        assert_eq!(subs.next_expired(150), None);
        // One that leaves takes its deadline along.
        assert!(subs.remove(2).is_some());
        assert_eq!(subs.next_expired(u64::MAX), None);
        assert_eq!(subs.len(), 2);
        // Replaced, it keeps only the new one's.
        subs.insert(3, subscriber(Some(10), None));
        subs.insert(3, subscriber(Some(20), None));
        assert_eq!(subs.next_expired(15), None);
        assert_eq!(subs.next_expired(20), Some((3, Transport::WebSocket)));
    }
}
