//! Multiplexed sockets (`GET /ws`): one WebSocket, many subscriptions.
//! What belongs to the connection (its credential's deadline, subject,
//! revocation, its place among the subject's connections, its output)
//! is its [`Subscriber`](crate::subscribers::Subscriber) entry, as for
//! any connection; what belongs to a topic is one [`Subscription`]
//! here, registered with the loop's replica under its own
//! [`SubKey`]: its position, rights, hook decision, gap signal and
//! presence are its own, and a refusal is an answer to it, never a close.
//!
//! The wire contract is the book's "Many topics on one connection" page;
//! the messages are read in [`message`] and answered with [`answer`].

pub(crate) mod answer;
pub(crate) mod listed;
pub(crate) mod message;
pub(crate) mod stream;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tether_hub::Member;
use tether_server::ConnId;

use crate::access::Credential;
use crate::rate::{Bucket, PublishRate};
use crate::settings::HubSettings;
use crate::subscribers::SubKey;

use self::stream::StreamCursor;

/// Who asked for a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribedBy {
    /// The client, with a message.
    Client,
    /// The server (`POST /api/subscribe`): its word stands for the rights
    /// and the hook, and a token sent later does not end it.
    Server,
    /// The token's `join` claim, as the socket opened: decided as if the
    /// client had asked, and told as the server's doing.
    Join,
}

/// What belongs to one topic followed on a multiplexed socket.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) topic: Arc<str>,
    /// Its number on the socket ([`SubKey::number`]).
    pub(crate) number: u16,
    /// The id it resumed from (`since`), for its gap signal.
    pub(crate) requested: Option<String>,
    /// Who it is present as on its topic, if the topic keeps presence.
    pub(crate) member: Option<Member>,
    /// It gets the topic's join and leave events.
    pub(crate) watches: bool,
    /// Its ticket granted it publishing to its topic.
    pub(crate) may_publish: bool,
    /// A ticket let it in: what it may do is the ticket's, which a token
    /// sent later does not change.
    pub(crate) by_ticket: bool,
    /// Who asked for it.
    pub(crate) by: SubscribedBy,
    /// The backend's subscribe hook is deciding about it (its question):
    /// it is answered, and placed, when the decision comes.
    pub(crate) deciding: Option<u64>,
    /// When the ticket that let it in stops being good (its holder's
    /// token's deadline), Unix seconds.
    pub(crate) deadline: Option<u64>,
    /// It asked for deltas, and its topic's namespace sends them.
    pub(crate) delta: bool,
}

impl Subscription {
    /// A subscription of `topic` numbered `number`, not yet placed.
    pub(crate) fn new(topic: Arc<str>, number: u16) -> Subscription {
        Subscription {
            topic,
            number,
            requested: None,
            member: None,
            watches: false,
            may_publish: false,
            by_ticket: false,
            by: SubscribedBy::Client,
            deciding: None,
            deadline: None,
            delta: false,
        }
    }

    /// Whether it is in place (registered with the replica), not waiting
    /// for the backend.
    pub(crate) fn placed(&self) -> bool {
        self.deciding.is_none()
    }
}

/// One multiplexed connection's subscriptions, and what its credential
/// grants (read at each subscribe): a socket (`GET /ws`), or a
/// multi-topic event stream (`GET /events`) with its cursor.
#[derive(Debug)]
pub(crate) struct Multiplexed {
    /// What the socket came in with, or the last token it sent.
    pub(crate) credential: Credential,
    /// A handful per socket, at most `max_subscriptions`: looked through.
    subscriptions: Vec<Subscription>,
    /// The number the last subscription was given.
    last: u16,
    /// An event stream's list of topics and cursor; `None` for a socket.
    stream: Option<Box<StreamCursor>>,
    /// A socket's subscribes and unsubscribes, under
    /// [`HubSettings::max_subscribe_rate`]: made at the first.
    churn: Option<Bucket>,
}

impl Multiplexed {
    pub(crate) fn new(credential: Credential) -> Multiplexed {
        Multiplexed {
            credential,
            subscriptions: Vec::new(),
            last: 0,
            stream: None,
            churn: None,
        }
    }

    /// A multi-topic event stream of `cursor`'s topics.
    pub(crate) fn stream(credential: Credential, cursor: StreamCursor) -> Multiplexed {
        Multiplexed {
            stream: Some(Box::new(cursor)),
            ..Multiplexed::new(credential)
        }
    }

    /// Whether it is an event stream (a socket otherwise).
    pub(crate) fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// An event stream's cursor.
    pub(crate) fn cursor_mut(&mut self) -> Option<&mut StreamCursor> {
        self.stream.as_deref_mut()
    }

    /// The number a new subscription to `topic` takes: on an event stream,
    /// the topic's place in its list (none for a topic not listed); on a
    /// socket, the next free one.
    pub(crate) fn number_for(&mut self, topic: &str) -> Option<u16> {
        match &self.stream {
            Some(stream) => stream.number_of(topic),
            None => self.number(),
        }
    }

    /// Takes one subscribe or unsubscribe at `now` under the socket's
    /// rate: whether it may be acted on.
    pub(crate) fn take_churn(&mut self, settings: &HubSettings, now: Instant) -> bool {
        let rate = churn_rate(settings);
        self.churn
            .get_or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
            .is_ok()
    }

    /// Its subscriptions, in place or deciding.
    pub(crate) fn len(&self) -> usize {
        self.subscriptions.len()
    }

    pub(crate) fn get(&self, topic: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| *s.topic == *topic)
    }

    pub(crate) fn by_number(&self, number: u16) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.number == number)
    }

    /// The subscription waiting for the backend's decision `question`.
    pub(crate) fn by_question(&self, question: u64) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.deciding == Some(question))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Subscription> {
        self.subscriptions.iter_mut()
    }

    /// A number no subscription of the socket has (never 0, the number
    /// of a one-topic connection's subscription); `None` when all are
    /// taken. Numbers go round, so that one just given back is not given
    /// again at once.
    pub(crate) fn number(&mut self) -> Option<u16> {
        if self.subscriptions.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.last = self.last.checked_add(1).unwrap_or(1);
            if self.by_number(self.last).is_none() {
                return Some(self.last);
            }
        }
    }

    pub(crate) fn insert(&mut self, subscription: Subscription) {
        // Doubled from one, not from the four a vector starts with: a
        // socket that follows one topic keeps one subscription's bytes,
        // not four's (benches/README, bytes per subscription).
        let len = self.subscriptions.len();
        if len == self.subscriptions.capacity() {
            self.subscriptions.reserve_exact(len.max(1));
        }
        self.subscriptions.push(subscription);
    }

    pub(crate) fn remove(&mut self, topic: &str) -> Option<Subscription> {
        let index = self.subscriptions.iter().position(|s| *s.topic == *topic)?;
        Some(self.subscriptions.swap_remove(index))
    }

    /// Every subscription, taken out.
    pub(crate) fn drain(&mut self) -> Vec<Subscription> {
        std::mem::take(&mut self.subscriptions)
    }
}

/// The subscribe and unsubscribe rate of one socket: bursts as large as
/// the subscriptions it may hold, and at least a second's worth.
fn churn_rate(settings: &HubSettings) -> PublishRate {
    let per_second = settings.max_subscribe_rate.max(1);
    let burst = u32::try_from(settings.max_subscriptions)
        .unwrap_or(u32::MAX)
        .max(per_second);
    PublishRate::new(f64::from(per_second), f64::from(burst))
}

/// This loop's multiplexed sockets, and the deadlines of the
/// subscriptions tickets let in, soonest first.
#[derive(Debug, Default)]
pub(crate) struct Muxes {
    sockets: HashMap<ConnId, Multiplexed>,
    deadlines: BTreeSet<(u64, SubKey)>,
    /// How many of them are event streams: a delivery looks for theirs
    /// only when there are some.
    streams: usize,
}

impl Muxes {
    pub(crate) fn open(&mut self, conn: ConnId, socket: Multiplexed) {
        self.streams += usize::from(socket.is_stream());
        if let Some(old) = self.sockets.insert(conn, socket) {
            self.streams -= usize::from(old.is_stream());
        }
    }

    /// Whether any of them is an event stream.
    pub(crate) fn has_streams(&self) -> bool {
        self.streams > 0
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Multiplexed> {
        self.sockets.get(&conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Multiplexed> {
        self.sockets.get_mut(&conn)
    }

    pub(crate) fn contains(&self, conn: ConnId) -> bool {
        self.sockets.contains_key(&conn)
    }

    /// The socket, gone: its subscriptions' deadlines forgotten.
    pub(crate) fn close(&mut self, conn: ConnId) -> Option<Multiplexed> {
        let socket = self.sockets.remove(&conn)?;
        self.streams -= usize::from(socket.is_stream());
        for subscription in socket.iter() {
            self.forget_deadline(conn, subscription);
        }
        Some(socket)
    }

    /// Keeps `subscription`'s deadline, if it has one.
    pub(crate) fn schedule(&mut self, conn: ConnId, subscription: &Subscription) {
        if let Some(deadline) = subscription.deadline {
            let key = SubKey::multiplexed(conn, subscription.number);
            self.deadlines.insert((deadline, key));
        }
    }

    /// Forgets `subscription`'s deadline (it ended).
    pub(crate) fn forget_deadline(&mut self, conn: ConnId, subscription: &Subscription) {
        if let Some(deadline) = subscription.deadline {
            let key = SubKey::multiplexed(conn, subscription.number);
            self.deadlines.remove(&(deadline, key));
        }
    }

    /// A subscription whose ticket's deadline has passed by `now` (Unix
    /// seconds), and its topic; `None` when there is none left.
    pub(crate) fn next_expired(&mut self, now: u64) -> Option<(ConnId, Arc<str>)> {
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now {
                return None;
            }
            self.deadlines.pop_first();
            let (conn, number) = (key.conn, key.number);
            if let Some(subscription) = self.sockets.get(&conn).and_then(|s| s.by_number(number)) {
                return Some((conn, Arc::clone(&subscription.topic)));
            }
        }
        None
    }

    /// The sockets, to act on some (the server API's user actions).
    pub(crate) fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.sockets.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_is_small_and_its_size_is_shown() {
        // One per topic a socket follows, in its vector: benches/README's
        // bytes per extra subscription count it.
        let size = std::mem::size_of::<Subscription>();
        eprintln!("Subscription: {size} bytes");
        assert!(size <= 104, "{size}");
    }

    #[test]
    fn the_subscriptions_take_room_for_what_they_hold_doubled_from_one() {
        let mut socket = Multiplexed::new(Credential::None);
        let mut capacities = Vec::new();
        for n in 0..9u16 {
            socket.insert(Subscription::new(Arc::from(format!("t{n}").as_str()), n + 1));
            capacities.push(socket.subscriptions.capacity());
        }
        assert_eq!(capacities, [1, 2, 4, 4, 8, 8, 8, 8, 16]);
        // Room given back is taken again before the vector grows.
        assert!(socket.remove("t0").is_some());
        socket.insert(Subscription::new(Arc::from("again"), 99));
        assert_eq!(socket.subscriptions.capacity(), 16);
    }

    #[test]
    fn numbers_are_never_zero_nor_taken_and_go_round() {
        let mut socket = Multiplexed::new(Credential::None);
        let first = socket.number().unwrap();
        assert_eq!(first, 1);
        socket.insert(Subscription::new(Arc::from("a"), first));
        let second = socket.number().unwrap();
        assert_eq!(second, 2);
        socket.insert(Subscription::new(Arc::from("b"), second));
        assert!(socket.remove("a").is_some());
        // Not given again at once.
        assert_eq!(socket.number(), Some(3));
        socket.last = u16::MAX - 1;
        assert_eq!(socket.number(), Some(u16::MAX));
        // Round past 0, and past 2, which "b" holds.
        socket.last = u16::MAX;
        assert_eq!(socket.number(), Some(1));
        socket.last = 1;
        assert_eq!(socket.number(), Some(3));
        assert_eq!((socket.len(), socket.get("b").map(|s| s.number)), (1, Some(2)));
    }

    #[test]
    fn subscribes_come_in_bursts_of_the_subscriptions_allowed_or_a_second_s_worth_then_at_the_rate() {
        let settings = HubSettings {
            max_subscriptions: 4,
            max_subscribe_rate: 2,
            ..HubSettings::default()
        };
        let mut socket = Multiplexed::new(Credential::None);
        let start = Instant::now();
        for _ in 0..4 {
            assert!(socket.take_churn(&settings, start));
        }
        assert!(!socket.take_churn(&settings, start));
        // Half a second gives one more.
        let later = start + std::time::Duration::from_millis(500);
        assert!(socket.take_churn(&settings, later));
        assert!(!socket.take_churn(&settings, later));
        // Fewer subscriptions than the rate: a second's worth at once.
        let settings = HubSettings {
            max_subscriptions: 1,
            max_subscribe_rate: 3,
            ..HubSettings::default()
        };
        let mut socket = Multiplexed::new(Credential::None);
        for _ in 0..3 {
            assert!(socket.take_churn(&settings, start));
        }
        assert!(!socket.take_churn(&settings, start));
    }
}
