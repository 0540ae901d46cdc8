//! Subscribers: who this loop delivers to (WebSocket, event stream, long
//! poll), when their tokens run out, and what they are sent: replays,
//! resumptions and each event, encoded once and shared.

use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::sync::Arc;

use tether_hub::{ConnectionMember, Delivery, Event, EventId, Gap, Member, Resumed, Transport};
use tether_server::{CloseCode, ConnId, Ctx, Encoded, Message};

use super::cors::Cors;
use super::metrics::{HubStats, add, sub};
use super::routes::{Format, Socket, Wants};

mod conn_map;
mod key;
mod poll;

use self::conn_map::{ConnMap, Slotted};
pub(crate) use self::key::SubKey;
pub(super) use self::poll::{next_id, poll_response, poll_timeout_response, wait as poll_wait};

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

/// A subscriber or long poll of this loop. There is one per connection,
/// so what every subscriber has is here and kept small (48 bytes); what
/// few have (a resume id, a publisher's state, a credential's deadline,
/// subject and ids) is in [`SubscriberExtras`], allocated only for those.
#[derive(Debug)]
pub(super) struct Subscriber {
    /// Shared with the hub's own name of the topic once it is subscribed
    /// (see `HubApp::subscribe`).
    pub(super) topic: Arc<str>,
    /// The connection it is present as, when it is present as its
    /// connection (most are), as the number [`ConnectionMember::to_bits`]
    /// gives; any other member is in its extras part. See
    /// [`Subscriber::member`].
    connection_member: Option<NonZeroU64>,
    extras: Option<Box<SubscriberExtras>>,
    pub(super) transport: Transport,
    /// A WebSocket subscriber may publish to its topic.
    pub(super) may_publish: bool,
    /// It publishes JSON envelopes (`?envelope=1`), each acknowledged.
    pub(super) envelope: bool,
    /// It gets the topic's join and leave events (`?presence=1`).
    pub(super) watches: bool,
    /// It was let in by the backend's connect hook, and the backend's
    /// refresh hook is asked for a later expiry before it expires.
    pub(super) refreshed: bool,
    /// A JSON WebSocket subscriber that asked for deltas (`?delta=1`).
    pub(super) delta: bool,
}

/// What few subscribers have: allocated for a subscriber the first time
/// one of these is set to something.
#[derive(Debug, Default)]
pub(super) struct SubscriberExtras {
    /// The id it resumed from (`Last-Event-ID`, `lastEventId`, `since`).
    requested: Option<String>,
    /// The event type of what it publishes (`?event=`).
    event_type: Option<String>,
    /// Bytes it published that the sequencer has not answered yet.
    in_flight: usize,
    /// The Unix second its token stops being good (leeway included), when
    /// it came in with one: then it is closed (a WebSocket, with 1008) or
    /// ended (an event stream).
    deadline: Option<u64>,
    /// The Unix second a WebSocket subscriber is told its token is about
    /// to expire (`{"type":"auth-expiring","in":SECONDS}`), or the
    /// backend is asked for a later expiry (`refreshed`).
    warn_at: Option<u64>,
    /// Its credential's subject, if it had one.
    subject: Option<String>,
    /// Its publish rate's bucket, once it publishes under a rate.
    pub(super) bucket: Option<super::rate::Bucket>,
    /// Its token's `jti` and `iat`, by which it may be revoked.
    token_id: Option<String>,
    issued_at: Option<u64>,
    /// Its place among its subject's connections (WebSocket and event
    /// stream subscribers with a subject): given back when it is dropped.
    pub(super) slot: Option<super::connections::Slot>,
    /// The member it is present as, when that is not its connection (a
    /// subject).
    member: Option<Member>,
    /// The Unix second it subscribed, kept for a subscriber with a subject
    /// (the admin page lists a subject's connections).
    since: Option<u64>,
    /// It is no member of its topic's presence (the admin page watching
    /// the topic).
    unlisted: bool,
}

/// What a subscriber without its [`SubscriberExtras`] part reads.
static NO_RARE: SubscriberExtras = SubscriberExtras {
    requested: None,
    event_type: None,
    in_flight: 0,
    deadline: None,
    warn_at: None,
    subject: None,
    bucket: None,
    token_id: None,
    issued_at: None,
    slot: None,
    member: None,
    since: None,
    unlisted: false,
};

impl Subscriber {
    pub(super) fn new(topic: Arc<str>, transport: Transport, requested: Option<String>) -> Subscriber {
        let mut subscriber = Subscriber {
            topic,
            connection_member: None,
            extras: None,
            transport,
            may_publish: false,
            envelope: false,
            watches: false,
            refreshed: false,
            delta: false,
        };
        if requested.is_some() {
            subscriber.rare_mut().requested = requested;
        }
        subscriber
    }

    /// Who it is present as (WebSocket and event-stream subscribers of
    /// topics that keep presence).
    pub(super) fn member(&self) -> Option<Member> {
        match self.connection_member {
            Some(bits) => Some(Member::Connection(ConnectionMember::from_bits(bits.get()))),
            None => self.extras().member.clone(),
        }
    }

    /// Sets who it is present as: a connection in place, any other member
    /// in its extras part.
    pub(super) fn set_member(&mut self, member: Member) {
        match member {
            Member::Connection(connection) if let Some(bits) = NonZeroU64::new(connection.to_bits()) => {
                self.connection_member = Some(bits);
                if let Some(extras) = self.extras.as_deref_mut() {
                    extras.member = None;
                }
            }
            other => {
                // Replacing a connection member (a socket that named its
                // subject later): the other one goes.
                self.connection_member = None;
                self.rare_mut().member = Some(other);
            }
        }
    }

    fn extras(&self) -> &SubscriberExtras {
        self.extras.as_deref().unwrap_or(&NO_RARE)
    }

    /// Its extras part, allocated if it had none.
    pub(super) fn rare_mut(&mut self) -> &mut SubscriberExtras {
        self.extras.get_or_insert_default()
    }

    /// Sets one of its extras fields to `value`, allocating the extras part
    /// only for a value that is something.
    fn set_rare<T: Default + PartialEq>(
        &mut self,
        value: T,
        field: impl FnOnce(&mut SubscriberExtras) -> &mut T,
    ) {
        if value != T::default() || self.extras.is_some() {
            *field(self.rare_mut()) = value;
        }
    }

    /// Takes what its credential's holder is: deadline, subject, token
    /// id and `iat` (not the warning time, which is the caller's).
    pub(super) fn hold(&mut self, holder: Holder) {
        self.set_rare(holder.deadline, |r| &mut r.deadline);
        self.set_rare(holder.subject, |r| &mut r.subject);
        self.set_token(holder.token_id, holder.issued_at);
    }

    /// The subject of a socket that came in without one and names it
    /// later, by a token (see `Delivery::refresh`).
    pub(super) fn set_subject(&mut self, subject: Option<String>) {
        self.set_rare(subject, |r| &mut r.subject);
    }

    /// The id and `iat` of the token it holds now.
    pub(super) fn set_token(&mut self, token_id: Option<String>, issued_at: Option<u64>) {
        self.set_rare(token_id, |r| &mut r.token_id);
        self.set_rare(issued_at, |r| &mut r.issued_at);
    }

    /// The id it resumed from.
    pub(super) fn requested(&self) -> Option<&str> {
        self.extras().requested.as_deref()
    }

    /// The event type of what it publishes (`?event=`).
    pub(super) fn event_type(&self) -> Option<&str> {
        self.extras().event_type.as_deref()
    }

    /// Its credential's subject.
    pub(super) fn subject(&self) -> Option<&str> {
        self.extras().subject.as_deref()
    }

    /// Its token's `jti`.
    pub(super) fn token_id(&self) -> Option<&str> {
        self.extras().token_id.as_deref()
    }

    /// Its token's `iat`.
    pub(super) fn issued_at(&self) -> Option<u64> {
        self.extras().issued_at
    }

    /// The Unix second it subscribed (a subscriber with a subject).
    pub(super) fn since(&self) -> Option<u64> {
        self.extras().since
    }

    /// Whether it is left out of its topic's presence.
    pub(super) fn unlisted(&self) -> bool {
        self.extras().unlisted
    }

    /// Leaves it out of its topic's presence (before it subscribes).
    pub(super) fn set_unlisted(&mut self) {
        self.rare_mut().unlisted = true;
    }

    /// Sets when it subscribed.
    pub(super) fn set_since(&mut self, since: Option<u64>) {
        self.set_rare(since, |r| &mut r.since);
    }

    /// When its token stops being good (Unix seconds).
    pub(super) fn deadline(&self) -> Option<u64> {
        self.extras().deadline
    }

    /// When it is warned that its token is about to expire.
    pub(super) fn warn_at(&self) -> Option<u64> {
        self.extras().warn_at
    }

    /// Sets when it is warned: only before it is registered (then
    /// [`Subscribers::renew`] moves it).
    pub(super) fn set_warn_at(&mut self, warn_at: Option<u64>) {
        self.set_rare(warn_at, |r| &mut r.warn_at);
    }

    fn set_deadline(&mut self, deadline: Option<u64>) {
        self.set_rare(deadline, |r| &mut r.deadline);
    }

    /// Bytes it published that the sequencer has not answered yet.
    pub(super) fn in_flight(&self) -> usize {
        self.extras().in_flight
    }

    /// It published `len` bytes more.
    pub(super) fn add_in_flight(&mut self, len: usize) {
        let extras = self.rare_mut();
        extras.in_flight = extras.in_flight.saturating_add(len);
    }

    /// `len` of the bytes it published were answered (or refused).
    pub(super) fn settle_in_flight(&mut self, len: usize) {
        if let Some(extras) = self.extras.as_deref_mut() {
            extras.in_flight = extras.in_flight.saturating_sub(len);
        }
    }
}

impl Subscriber {
    /// A WebSocket subscriber of `topic` (the one its request's path
    /// names), let in as `socket`, with what its query asked for
    /// (`wants`, read when it was routed); the deadline and subject of
    /// its credential are not read here.
    pub(super) fn websocket(topic: Arc<str>, wants: &Wants, socket: Socket) -> Subscriber {
        // The route refused a raw subscriber with anything it cannot have.
        let transport = match wants.format {
            Format::Raw => Transport::RawWebSocket,
            Format::Json => Transport::WebSocket,
        };
        let mut subscriber = Subscriber::new(topic, transport, wants.last_event_id().map(str::to_owned));
        subscriber.may_publish = socket == Socket::Publisher;
        subscriber.set_rare(wants.event().map(str::to_owned), |r| &mut r.event_type);
        subscriber.envelope = wants.envelope;
        subscriber.watches = wants.presence;
        // A raw subscriber's frames have no room to say which is a delta.
        subscriber.delta = wants.delta && transport == Transport::WebSocket;
        subscriber
    }

    /// An event-stream subscriber of `topic` (the one its request's path
    /// names), resuming after `last_event_id`, with what its query asked
    /// for (`wants`).
    pub(super) fn event_stream(topic: Arc<str>, wants: &Wants, last_event_id: Option<&str>) -> Subscriber {
        let last_id = last_event_id.map(str::to_owned);
        let mut subscriber = Subscriber::new(topic, Transport::EventStream, last_id);
        subscriber.watches = wants.presence;
        subscriber
    }
}

/// This loop's subscribers and long polls, with their token deadlines and
/// expiry warnings in order, soonest first: a deadline or a warning is
/// changed only here, so the orders never name a time a subscriber no
/// longer has.
#[derive(Debug)]
pub(super) struct Subscribers<C> {
    /// Not boxed: a subscriber is small (its extras part is boxed), and a
    /// box would cost as much as its own room in the map.
    conns: ConnMap<C, Subscriber>,
    deadlines: BTreeSet<(u64, C)>,
    warnings: BTreeSet<(u64, C)>,
}

impl<C> Default for Subscribers<C> {
    fn default() -> Subscribers<C> {
        Subscribers {
            conns: ConnMap::default(),
            deadlines: BTreeSet::new(),
            warnings: BTreeSet::new(),
        }
    }
}

impl<C: Slotted + Ord> Subscribers<C> {
    /// Registers `subscriber` (one already registered as `conn` is
    /// replaced).
    pub(super) fn insert(&mut self, conn: C, subscriber: Subscriber) {
        if let Some(deadline) = subscriber.deadline() {
            self.deadlines.insert((deadline, conn));
        }
        if let Some(warn_at) = subscriber.warn_at() {
            self.warnings.insert((warn_at, conn));
        }
        if let Some(old) = self.conns.insert(conn, subscriber) {
            self.unschedule(conn, &old);
        }
    }

    pub(super) fn remove(&mut self, conn: C) -> Option<Subscriber> {
        let subscriber = self.conns.remove(conn)?;
        self.unschedule(conn, &subscriber);
        Some(subscriber)
    }

    fn unschedule(&mut self, conn: C, subscriber: &Subscriber) {
        if let Some(deadline) = subscriber.deadline() {
            self.deadlines.remove(&(deadline, conn));
        }
        if let Some(warn_at) = subscriber.warn_at() {
            self.warnings.remove(&(warn_at, conn));
        }
    }

    pub(super) fn get(&self, conn: C) -> Option<&Subscriber> {
        self.conns.get(conn)
    }

    /// The subscriber, to change what it may do (not its deadline: see
    /// [`Subscribers::renew`]).
    pub(super) fn get_mut(&mut self, conn: C) -> Option<&mut Subscriber> {
        self.conns.get_mut(conn)
    }

    /// A new token's deadline and warning time for `conn`.
    pub(super) fn renew(
        &mut self,
        conn: C,
        deadline: Option<u64>,
        warn_at: Option<u64>,
    ) -> Option<&mut Subscriber> {
        let subscriber = self.conns.get_mut(conn)?;
        if let Some(old) = subscriber.deadline() {
            self.deadlines.remove(&(old, conn));
        }
        if let Some(old) = subscriber.warn_at() {
            self.warnings.remove(&(old, conn));
        }
        subscriber.set_deadline(deadline);
        subscriber.set_warn_at(warn_at);
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
            if let Some(subscriber) = self.conns.get_mut(conn) {
                subscriber.set_deadline(None);
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
            if let Some(subscriber) = self.conns.get_mut(conn) {
                subscriber.set_warn_at(None);
                return Some((conn, subscriber.deadline().map_or(0, |d| d.saturating_sub(now))));
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
            .filter(|(_, s)| (s.subject().is_some() || s.token_id().is_some()) && revoked(s))
            .map(|(conn, s)| (conn, s.transport))
            .collect()
    }

    /// The connections whose credential's subject is `user` (subscribed
    /// to `topic`, if one is given), with their transports. It looks at
    /// every subscriber of the loop: for the server API's user actions,
    /// which are rare.
    pub(super) fn of_user(&self, user: &str, topic: Option<&str>) -> Vec<(C, Transport)> {
        self.subscribers_of(user, topic)
            .map(|(conn, s)| (conn, s.transport))
            .collect()
    }

    /// The subscribers whose credential's subject is `user` (subscribed to
    /// `topic`, if one is given).
    pub(super) fn subscribers_of<'a>(
        &'a self,
        user: &'a str,
        topic: Option<&'a str>,
    ) -> impl Iterator<Item = (C, &'a Subscriber)> + 'a {
        self.conns
            .iter()
            .filter(move |(_, s)| s.subject() == Some(user))
            .filter(move |(_, s)| topic.is_none_or(|t| *s.topic == *t))
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
    delivery: &Delivery<'_, SubKey>,
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
        // A multi-topic stream's subscriptions are sent theirs by the
        // delivery, each with its stream's cursor.
        let mut sent = 0;
        let one_topic = rotated_keys(delivery.event_stream, event.id())
            .filter(|key| key.is_whole())
            .inspect(|_| sent += 1)
            .map(|key| key.conn);
        ctx.send_encoded(one_topic, &crate::sse_encoded::sse(event));
        add(&stats.sent_event_stream, sent);
    }
}

/// The connections of the subscriptions `to`, starting at a place that
/// moves with the event's id: the loop writes to them in the order they
/// were queued for, so a fixed order would make the same subscribers wait
/// for all the others' writes at every event (the last of 10 000 some tens
/// of milliseconds behind the first). A connection follows a topic once,
/// so it is sent each event once.
fn rotated(to: &[SubKey], id: EventId) -> impl Iterator<Item = ConnId> + '_ {
    rotated_keys(to, id).map(|key| key.conn)
}

fn rotated_keys<T: Copy>(to: &[T], id: EventId) -> impl Iterator<Item = T> + '_ {
    let start = usize::try_from(id.ms().wrapping_add(id.seq()) % to.len().max(1) as u64).unwrap_or(0);
    let (head, tail) = to.split_at_checked(start).unwrap_or((to, &[]));
    tail.iter().chain(head).copied()
}

/// Where a replay goes: the connection, how it takes events, and the
/// subscription's topic and the id it resumed from (for the gap signal).
#[derive(Debug, Clone, Copy)]
pub(super) struct Replaying<'a> {
    pub(super) conn: ConnId,
    pub(super) transport: Transport,
    pub(super) topic: &'a str,
    pub(super) requested: Option<&'a str>,
}

impl Subscriber {
    /// Where its replay goes, on `conn`.
    pub(super) fn replaying(&self, conn: ConnId) -> Replaying<'_> {
        Replaying {
            conn,
            transport: self.transport,
            topic: &self.topic,
            requested: self.requested(),
        }
    }
}

/// Sends a gap signal (if any) and replayed events to a WebSocket or
/// event-stream subscription.
pub(super) fn send_replay<'e, P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    to: Replaying<'_>,
    gap: Option<Gap>,
    events: impl Iterator<Item = &'e Arc<Event>>,
) {
    let Replaying { conn, transport, .. } = to;
    // A raw subscriber never resumes from an id (the route refuses it), so
    // it has no gap to be told of, and no message to tell it with.
    if let Some(gap) = gap.filter(|_| transport != Transport::RawWebSocket) {
        add(&stats.gaps, 1);
        let (topic, requested) = (to.topic, to.requested.unwrap_or_default());
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
        let encoded = match transport {
            Transport::WebSocket => Encoded::from(event.ws_frame().clone()),
            Transport::RawWebSocket => Encoded::from(event.ws_raw_frame().clone()),
            _ => crate::sse_encoded::sse(event),
        };
        ctx.send_encoded([conn], &encoded);
        sent += 1;
    }
    add(stats.sent(transport), sent);
}

/// A held one-topic subscriber is live (or a held long poll answered); a
/// multiplexed socket's subscription is the delivery's.
pub(super) fn send_resumed<P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    subscribers: &mut Subscribers<ConnId>,
    cors: &mut Cors,
    resumed: Resumed<SubKey>,
    head: impl FnOnce(&str) -> EventId,
) {
    let conn = resumed.sub.conn;
    if resumed.transport == Transport::Poll {
        let Some(poll) = subscribers.remove(conn) else {
            return;
        };
        sub(&stats.subscribers_poll, 1);
        add(&stats.sent_poll, resumed.events.len() as u64);
        if resumed.gap.is_some() {
            add(&stats.gaps, 1);
        }
        let since = poll.requested();
        // Its topic is ready now: where it is, for a poll that asked from
        // nowhere.
        let next = next_id(&resumed.events, resumed.gap, since, || head(&poll.topic));
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
    send_replay(
        ctx,
        stats,
        subscriber.replaying(conn),
        resumed.gap,
        resumed.events.iter(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(deadline: Option<u64>, warn_at: Option<u64>) -> Subscriber {
        let mut subscriber = Subscriber::new(Arc::from("t"), Transport::WebSocket, None);
        subscriber.set_deadline(deadline);
        subscriber.set_warn_at(warn_at);
        subscriber
    }

    #[test]
    fn each_event_starts_its_fan_out_at_another_subscriber_and_misses_none() {
        let to: Vec<u32> = (10..15).collect();
        let mut firsts = BTreeSet::new();
        for ms in 0..5 {
            let order: Vec<u32> = rotated_keys(&to, EventId::new(1000 + ms, 0)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, to, "every subscriber once");
            firsts.insert(order[0]);
        }
        assert_eq!(firsts.len(), 5, "each starts the fan-out once");
        assert_eq!(rotated_keys::<u32>(&[], EventId::new(7, 7)).count(), 0);
    }

    #[test]
    fn a_member_that_is_not_its_connection_is_kept_in_the_rare_part() {
        let mut named = subscriber(None, None);
        assert_eq!(named.member(), None);
        named.set_member(Member::from("ann"));
        assert_eq!(named.member(), Some(Member::from("ann")));
        assert!(named.connection_member.is_none() && named.extras.is_some());
        // The one connection whose number is 0 as bits.
        let mut zero = subscriber(None, None);
        let connection = Member::Connection(ConnectionMember::new(0, 0));
        zero.set_member(connection.clone());
        assert_eq!(zero.member(), Some(connection));
    }

    #[test]
    fn a_subscriber_is_small_and_its_rare_part_comes_only_when_used() {
        // The figures behind benches/README's memory breakdown of fan-out.
        let (size, extras) = (
            std::mem::size_of::<Subscriber>(),
            std::mem::size_of::<SubscriberExtras>(),
        );
        let slot = std::mem::size_of::<(ConnId, Subscriber)>();
        eprintln!(
            "Subscriber: {size} bytes (a map slot with its id: {slot}); its extras part: {extras} bytes"
        );
        assert!(size <= 40, "{size}");
        let mut plain = subscriber(None, None);
        // Present as its connection: kept in place.
        let connection = Member::Connection(ConnectionMember::new(3, 41));
        plain.set_member(connection.clone());
        assert_eq!(plain.member(), Some(connection));
        plain.hold(Holder::default());
        plain.set_warn_at(None);
        plain.settle_in_flight(5);
        assert!(plain.extras.is_none(), "nothing extras was set");
        assert_eq!(
            (plain.requested(), plain.subject(), plain.in_flight()),
            (None, None, 0)
        );
        let resumed = Subscriber::new(Arc::from("t"), Transport::EventStream, Some("5-0".to_owned()));
        assert_eq!(resumed.requested(), Some("5-0"));
        let mut held = subscriber(None, None);
        held.hold(Holder {
            deadline: Some(9),
            subject: Some("ann".to_owned()),
            token_id: Some("j".to_owned()),
            issued_at: Some(1),
        });
        assert_eq!(
            (held.deadline(), held.subject(), held.token_id(), held.issued_at()),
            (Some(9), Some("ann"), Some("j"), Some(1))
        );
        held.add_in_flight(7);
        held.settle_in_flight(10);
        assert_eq!(held.in_flight(), 0);
        let mut subs = Subscribers::default();
        subs.insert(1u32, plain);
        assert!(subs.get(1).is_some_and(|s| s.deadline().is_none()));
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
