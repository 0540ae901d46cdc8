//! Pretend event loops for the tests of a bus bridge (tether-redis,
//! tether-nats): the brokers of two loops, what the bridge posted to each
//! loop in order, and the steps of a test on them (publish, follow, wait
//! for what comes). Each bridge's tests include this file with
//! `#[path = "..."] mod` from their own `node` module, which starts the
//! bridge; the test crate has a `support` module with its `PATIENCE`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use crate::support::PATIENCE;
use tether_hub::{
    Broker, Context, Error as HubError, Event, EventId, HubMessage, Payload, PresenceMessage, Publish,
    ReplyTo,
};

/// How many pretend loops a node has.
pub const LOOPS: usize = 2;

/// The context a loop gives its broker; the bus brokers post from their
/// own threads, never through it.
pub struct Cx(pub usize);

impl Context for Cx {
    fn loops(&self) -> usize {
        LOOPS
    }
    fn this_loop(&self) -> usize {
        self.0
    }
    fn post(&mut self, _: usize, message: HubMessage) {
        panic!("the broker posted {message:?} from a loop")
    }
    fn unix_ms(&self) -> u64 {
        0
    }
}

/// The brokers of the pretend loops, and what the bridge posted to each
/// loop, in order.
pub struct Loops<B: Broker> {
    pub brokers: Vec<B>,
    posted: Receiver<(usize, HubMessage)>,
    inbox: Vec<VecDeque<HubMessage>>,
    next_token: u64,
}

impl<B: Broker> Loops<B> {
    /// [`LOOPS`] brokers made by `broker`, and the sender the bridge is to
    /// post through (`(loop index, message)`).
    pub fn new(broker: impl FnMut() -> B) -> (Loops<B>, Sender<(usize, HubMessage)>) {
        let (tx, posted) = mpsc::channel();
        let loops = Loops {
            brokers: std::iter::repeat_with(broker).take(LOOPS).collect(),
            posted,
            inbox: (0..LOOPS).map(|_| VecDeque::new()).collect(),
            next_token: 0,
        };
        (loops, tx)
    }

    /// Every loop follows `topic`, which nobody has published to: each is
    /// ready with no history and nothing dropped.
    pub fn follow_a_new_topic(&mut self, topic: &str) {
        for l in 0..LOOPS {
            self.follow(l, topic);
            let (history, dropped) = self.ready(l);
            assert!(
                history.is_empty() && dropped.is_none(),
                "a topic nobody published to"
            );
        }
    }

    /// Publishes `a1`..`a4` from loop 0 of this node and `b1`..`b4` from
    /// loop 1 of `other` to `topic`, interleaved; this node's loop does
    /// not follow the topic, so it is answered as soon as each is added:
    /// the ids of its four events, which ascend.
    pub fn publish_interleaved_with(&mut self, other: &mut Loops<B>, topic: &str) -> Vec<EventId> {
        let mut tokens = Vec::new();
        for n in 1..=4 {
            tokens.push(self.publish(0, topic, format!("a{n}")).unwrap());
            other.publish(1, topic, format!("b{n}")).unwrap();
        }
        let ids: Vec<EventId> = tokens
            .into_iter()
            .map(|token| self.published(0, token).unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        ids
    }

    /// The first scenario of every bus: this node's loops follow `topic`,
    /// new; `publisher` and this node's loop 1 publish four events each,
    /// interleaved ([`Loops::publish_interleaved_with`]); both loops of
    /// this node get all eight, in one ascending order (the bus's), and
    /// loop 1's answers come after their events. The ids in that order.
    pub fn get_interleaved_publishes_from(&mut self, publisher: &mut Loops<B>, topic: &str) -> Vec<EventId> {
        self.follow_a_new_topic(topic);
        let publisher_ids = publisher.publish_interleaved_with(self, topic);
        let loop0: Vec<Arc<Event>> = (0..8).map(|_| self.deliver(0)).collect();
        let ids: Vec<EventId> = loop0.iter().map(|e| e.id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let mut seen = data(&loop0);
        seen.sort();
        assert_eq!(seen, ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]);
        for id in &publisher_ids {
            assert!(ids.contains(id), "{id} is a delivered id");
        }
        assert_eq!(self.deliveries_before_answers(1, 8, 4), ids);
        self.expect_quiet(0);
        self.expect_quiet(1);
        ids
    }

    /// What `loop_index`, a follower of a topic it also published to, is
    /// posted until `events` events came and `answers` of its publishes
    /// were answered, each answer after its event: the delivered ids.
    pub fn deliveries_before_answers(
        &mut self,
        loop_index: usize,
        events: usize,
        answers: usize,
    ) -> Vec<EventId> {
        let mut delivered = Vec::new();
        let mut answered = Vec::new();
        while delivered.len() < events || answered.len() < answers {
            match self.next(loop_index) {
                HubMessage::Deliver(event) => delivered.push(event.id()),
                HubMessage::Published { result, .. } => {
                    let id = result.unwrap();
                    assert!(delivered.contains(&id), "answered {id} before delivering it");
                    answered.push(id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        delivered
    }

    /// Publishes from `loop_index`; the token that its answer will carry.
    pub fn publish(
        &mut self,
        loop_index: usize,
        topic: &str,
        data: impl Into<Payload>,
    ) -> Result<u64, HubError> {
        self.publish_keyed(loop_index, topic, data, None)
    }

    /// Publishes with a publish key, if any.
    pub fn publish_keyed(
        &mut self,
        loop_index: usize,
        topic: &str,
        data: impl Into<Payload>,
        key: Option<&str>,
    ) -> Result<u64, HubError> {
        self.next_token += 1;
        let token = self.next_token;
        let mut publish = Publish::new(topic, None, data, &tether_hub::Config::default())?;
        if let Some(key) = key {
            publish = publish.with_key(key)?;
        }
        let publish = publish.reply_to(ReplyTo { loop_index, token });
        self.brokers[loop_index].publish(publish, &mut Cx(loop_index))?;
        Ok(token)
    }

    /// Publishes from a loop that does not follow `topic` (so the answer
    /// is the next thing posted to it); the event's id.
    pub fn publish_ok(&mut self, loop_index: usize, topic: &str, data: impl Into<Payload>) -> EventId {
        let token = self.publish(loop_index, topic, data).unwrap();
        self.published(loop_index, token).unwrap()
    }

    pub fn follow(&mut self, loop_index: usize, topic: &str) {
        self.brokers[loop_index].follow(&Arc::from(topic), &mut Cx(loop_index));
    }

    pub fn unfollow(&mut self, loop_index: usize, topic: &str) {
        self.brokers[loop_index].unfollow(&Arc::from(topic), &mut Cx(loop_index));
    }

    /// The next message posted to `loop_index` (a hang guard fails the
    /// test if none comes).
    pub fn next(&mut self, loop_index: usize) -> HubMessage {
        self.next_within(loop_index, PATIENCE)
            .unwrap_or_else(|| panic!("nothing posted to loop {loop_index}"))
    }

    /// The next message posted to `loop_index`, if one comes within `wait`.
    pub fn next_within(&mut self, loop_index: usize, wait: Duration) -> Option<HubMessage> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(message) = self.inbox[loop_index].pop_front() {
                return Some(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.posted.recv_timeout(left) {
                Ok((to, message)) => self.inbox[to].push_back(message),
                Err(_) => return None,
            }
        }
    }

    /// Nothing more is posted to `loop_index` for a while.
    pub fn expect_quiet(&mut self, loop_index: usize) {
        let until = Instant::now() + Duration::from_millis(300);
        while let Ok((to, message)) = self
            .posted
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.inbox[to].push_back(message);
        }
        assert!(
            self.inbox[loop_index].is_empty(),
            "unexpected: {:?}",
            self.inbox[loop_index]
        );
    }

    pub fn ready(&mut self, loop_index: usize) -> (Vec<Arc<Event>>, Option<EventId>) {
        match self.next(loop_index) {
            HubMessage::Ready { history, dropped, .. } => (history, dropped),
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    pub fn deliver(&mut self, loop_index: usize) -> Arc<Event> {
        match self.next(loop_index) {
            HubMessage::Deliver(event) => event,
            other => panic!("expected Deliver, got {other:?}"),
        }
    }

    pub fn published(&mut self, loop_index: usize, token: u64) -> Result<EventId, HubError> {
        match self.next(loop_index) {
            HubMessage::Published { token: t, result } if t == token => result,
            other => panic!("expected Published {{ token: {token} }}, got {other:?}"),
        }
    }

    /// The answer to a publish: its event's id, and whether it was a
    /// duplicate.
    pub fn outcome(&mut self, loop_index: usize, token: u64) -> (EventId, bool) {
        match self.next(loop_index) {
            HubMessage::Published {
                token: t,
                result: Ok(id),
            } if t == token => (id, false),
            HubMessage::Duplicate { token: t, id } if t == token => (id, true),
            other => panic!("expected the outcome of {token}, got {other:?}"),
        }
    }

    /// Publishes with `key` from a loop that does not follow the topic
    /// until it is acknowledged (refusals while the bus is away are retried
    /// after a short pause); the event's id and whether it was a
    /// duplicate.
    pub fn publish_until_acknowledged(
        &mut self,
        loop_index: usize,
        topic: &str,
        data: &str,
        key: &str,
    ) -> (EventId, bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "{key} never acknowledged");
            match self.publish_keyed(loop_index, topic, data, Some(key)) {
                Err(HubError::BrokerUnavailable) => {}
                Err(e) => panic!("{key}: {e:?}"),
                Ok(token) => match self.next(loop_index) {
                    HubMessage::Published {
                        token: t,
                        result: Ok(id),
                    } if t == token => return (id, false),
                    HubMessage::Duplicate { token: t, id } if t == token => return (id, true),
                    HubMessage::Published {
                        token: t,
                        result: Err(HubError::BrokerUnavailable),
                    } if t == token => {}
                    other => panic!("expected the outcome of {token}, got {other:?}"),
                },
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `member`'s first connection to `topic` on this node arrived
    /// (`present`), or its last left, as the topic's sequencer loop says.
    pub fn presence(&mut self, loop_index: usize, topic: &str, member: &str, present: bool) {
        self.brokers[loop_index].presence(
            &Arc::from(topic),
            &Arc::from(member),
            present,
            &mut Cx(loop_index),
        );
    }

    /// Starts or stops hearing the other nodes' members of `topic` on
    /// `loop_index`.
    pub fn watch_presence(&mut self, loop_index: usize, topic: &str, watch: bool) {
        self.brokers[loop_index].watch_presence(&Arc::from(topic), watch, &mut Cx(loop_index));
    }

    /// Waits until `loop_index` hears that the other nodes' members of
    /// `topic` are `members` (sorted); other messages are skipped.
    pub fn wait_for_remote(&mut self, loop_index: usize, topic: &str, members: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        let mut last = None;
        while Instant::now() < deadline {
            let Some(message) = self.next_within(loop_index, Duration::from_millis(200)) else {
                continue;
            };
            if let HubMessage::Presence(PresenceMessage::Remote {
                topic: t,
                members: heard,
                ..
            }) = message
                && &*t == topic
            {
                let mut heard: Vec<String> = heard.iter().map(|m| m.to_string()).collect();
                heard.sort();
                if heard == members {
                    return;
                }
                last = Some(heard);
            }
        }
        panic!("loop {loop_index} never heard {members:?} of {topic} (last: {last:?})");
    }

    /// The bus's round trips (loop 0's broker's), as `/metrics` shows
    /// them, named `tether_bus_round_trip_seconds`; empty without a bus.
    pub fn round_trips(&self) -> String {
        let mut out = String::new();
        if let Some(histogram) = self.brokers[0].round_trip() {
            let name = "tether_bus_round_trip_seconds";
            tether_hub::histogram::write_series(&mut out, name, "", std::iter::once(histogram));
        }
        out
    }

    pub fn metrics(&self) -> String {
        let mut out = String::new();
        self.brokers[0].write_metrics(&mut out);
        out
    }
}

/// The `data` of each event, in order.
pub fn data(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let json: serde_json::Value = serde_json::from_str(e.json()).unwrap();
            json["data"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Defines `Node`, a bridge (`$bridge`, made from a `$config` whose
/// prefix is the caller's `PREFIX`) with the brokers (`$broker`) of the
/// pretend loops, started and waited for until up; it dereferences to
/// its [`Loops`]. The bridges have no trait in common, so each bridge's
/// `node` module names its types; `Loops`, `BrokerState`, `Deref`,
/// `DerefMut` and `wait_until` must be in scope there.
macro_rules! bridge_node {
    ($bridge:ident, $broker:ident, $config:ident) => {
        /// A bridge with the brokers of two pretend loops, and what the
        /// bridge posted to each loop, in order (the steps of a test on
        /// them are [`Loops`]'s).
        pub struct Node {
            pub bridge: $bridge,
            loops: Loops<$broker>,
        }

        impl Node {
            pub fn start(url: &str, tweak: impl FnOnce(&mut $config)) -> Node {
                let mut config = $config::new(url);
                config.prefix = PREFIX.to_owned();
                tweak(&mut config);
                let bridge = $bridge::new(config).expect("a valid configuration");
                let (loops, posted) = Loops::new(|| bridge.broker());
                bridge
                    .start(move |to, message| {
                        let _ = posted.send((to, message));
                    })
                    .expect("the bridge starts");
                let node = Node { bridge, loops };
                node.wait_for_state(BrokerState::Up);
                node
            }

            /// The backlog scenario of every bus: `ids` are those of the
            /// events `e1`..`e10` of `topic`, published. A node that keeps
            /// four for replay gets `e7`..`e10` and the id before them,
            /// exactly; one whose byte bound holds two, `e9`, `e10` and
            /// the id before them.
            pub fn check_the_backlogs_of_ten(url: &str, topic: &str, ids: &[tether_hub::EventId]) {
                let mut b = Node::start(url, |c| c.history_events = 4);
                b.follow(0, topic);
                let (history, dropped) = b.ready(0);
                assert_eq!(data(&history), ["e7", "e8", "e9", "e10"]);
                assert_eq!(history.iter().map(|e| e.id()).collect::<Vec<_>>(), ids[6..]);
                assert_eq!(dropped, Some(ids[5]), "the id before the backlog, exactly");

                let two_events = history[2].cost() + history[3].cost();
                let mut c = Node::start(url, |c| {
                    c.history_events = 4;
                    c.history_bytes = two_events;
                });
                c.follow(0, topic);
                let (history, dropped) = c.ready(0);
                assert_eq!(data(&history), ["e9", "e10"]);
                assert_eq!(dropped, Some(ids[7]));
            }

            pub fn wait_for_state(&self, state: BrokerState) {
                wait_until(&format!("the bridge to be {state:?}"), || {
                    self.bridge.status().state == state
                });
            }
        }

        impl Deref for Node {
            type Target = Loops<$broker>;

            fn deref(&self) -> &Self::Target {
                &self.loops
            }
        }

        impl DerefMut for Node {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.loops
            }
        }
    };
}
pub(crate) use bridge_node;
