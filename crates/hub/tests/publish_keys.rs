//! Publish keys with the in-process broker: a publish whose key the topic
//! remembers is answered with the first event's id and publishes nothing;
//! keys are remembered exactly while their events are in the backlog,
//! per topic; publishes without a key are never deduplicated; and two
//! loops publishing the same key at once make one event.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tether_hub::{
    Broker, Config, Context, Error, Event, EventId, Hub, HubMessage, LocalBroker, Publish, ReplyTo,
    is_valid_publish_key,
};

/// Several loops, each with its broker and a queue of what was posted to
/// it.
struct Cluster {
    config: Config,
    brokers: Vec<LocalBroker>,
    inboxes: Vec<VecDeque<HubMessage>>,
    now: u64,
    next_token: u64,
}

/// One loop's context: posts go to the cluster's queues.
struct Cx<'a> {
    index: usize,
    now: u64,
    inboxes: &'a mut Vec<VecDeque<HubMessage>>,
}

impl Context for Cx<'_> {
    fn loops(&self) -> usize {
        self.inboxes.len()
    }
    fn this_loop(&self) -> usize {
        self.index
    }
    fn post(&mut self, to: usize, message: HubMessage) {
        self.inboxes[to].push_back(message);
    }
    fn unix_ms(&self) -> u64 {
        self.now
    }
}

/// What one loop got: the events delivered to it, and the outcomes of
/// its publishes (with their tokens).
type Got = (Vec<Arc<Event>>, Vec<(u64, Outcome)>);

/// What a loop learns about one of its publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Published(EventId),
    Duplicate(EventId),
    Refused(Error),
}

impl Cluster {
    fn new(loops: usize, config: Config) -> Cluster {
        let first = LocalBroker::new(config.clone());
        Cluster {
            brokers: (0..loops).map(|_| first.sibling()).collect(),
            inboxes: (0..loops).map(|_| VecDeque::new()).collect(),
            config,
            now: 1_000,
            next_token: 0,
        }
    }

    /// Hands a publish to loop `l`'s broker; the token of its answer.
    fn publish(&mut self, l: usize, topic: &str, data: &str, key: Option<&str>) -> u64 {
        self.next_token += 1;
        let mut publish = Publish::new(topic, None, data, &self.config).unwrap();
        if let Some(key) = key {
            publish = publish.with_key(key).unwrap();
        }
        let publish = publish.reply_to(ReplyTo {
            loop_index: l,
            token: self.next_token,
        });
        let mut cx = Cx {
            index: l,
            now: self.now,
            inboxes: &mut self.inboxes,
        };
        self.brokers[l].publish(publish, &mut cx).unwrap();
        self.next_token
    }

    /// Handles loop `l`'s next message; the events delivered to it and
    /// the outcomes it got.
    fn step(
        &mut self,
        l: usize,
        delivered: &mut Vec<Arc<Event>>,
        outcomes: &mut Vec<(u64, Outcome)>,
    ) -> bool {
        let Some(message) = self.inboxes[l].pop_front() else {
            return false;
        };
        match message {
            HubMessage::Deliver(event) => delivered.push(event),
            HubMessage::Published { token, result } => outcomes.push((
                token,
                match result {
                    Ok(id) => Outcome::Published(id),
                    Err(e) => Outcome::Refused(e),
                },
            )),
            HubMessage::Duplicate { token, id } => outcomes.push((token, Outcome::Duplicate(id))),
            HubMessage::Broker(m) => {
                let mut cx = Cx {
                    index: l,
                    now: self.now,
                    inboxes: &mut self.inboxes,
                };
                self.brokers[l].receive(m, &mut cx);
            }
            HubMessage::Forget(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        true
    }

    /// Runs every loop until nothing is left; per loop, what it got.
    fn settle(&mut self) -> Vec<Got> {
        let mut got: Vec<Got> = (0..self.brokers.len())
            .map(|_| (Vec::new(), Vec::new()))
            .collect();
        loop {
            let mut any = false;
            for (l, (delivered, outcomes)) in got.iter_mut().enumerate() {
                any |= self.step(l, delivered, outcomes);
            }
            if !any {
                return got;
            }
        }
    }

    /// Publishes from loop 0 and settles: the outcome, and how many
    /// events reached loop 0.
    fn publish_one(&mut self, topic: &str, data: &str, key: Option<&str>) -> (Outcome, usize) {
        let token = self.publish(0, topic, data, key);
        let mut got = self.settle();
        let (delivered, outcomes) = got.swap_remove(0);
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert_eq!(outcomes[0].0, token);
        (outcomes[0].1.clone(), delivered.len())
    }
}

fn published(outcome: (Outcome, usize)) -> EventId {
    match outcome {
        (Outcome::Published(id), 1) => id,
        other => panic!("expected one event published, got {other:?}"),
    }
}

fn duplicate(outcome: (Outcome, usize)) -> EventId {
    match outcome {
        (Outcome::Duplicate(id), 0) => id,
        other => panic!("expected a duplicate and no event, got {other:?}"),
    }
}

#[test]
fn a_remembered_key_publishes_nothing_and_answers_the_first_id() {
    let mut cluster = Cluster::new(1, Config::default());
    let id = published(cluster.publish_one("news", "first", Some("k1")));
    assert_eq!(duplicate(cluster.publish_one("news", "first", Some("k1"))), id);
    // The data does not matter: the key does.
    assert_eq!(
        duplicate(cluster.publish_one("news", "other data", Some("k1"))),
        id
    );
    // Another key, and no key, publish.
    let second = published(cluster.publish_one("news", "first", Some("k2")));
    assert!(second > id);
    let third = published(cluster.publish_one("news", "first", None));
    let fourth = published(cluster.publish_one("news", "first", None));
    assert!(third > second && fourth > third, "no key, no deduplication");
    assert_eq!(duplicate(cluster.publish_one("news", "x", Some("k2"))), second);
}

#[test]
fn keys_are_per_topic() {
    let mut cluster = Cluster::new(1, Config::default());
    let a = published(cluster.publish_one("a", "x", Some("same")));
    let b = published(cluster.publish_one("b", "x", Some("same")));
    assert_eq!(duplicate(cluster.publish_one("a", "x", Some("same"))), a);
    assert_eq!(duplicate(cluster.publish_one("b", "x", Some("same"))), b);
}

#[test]
fn events_carry_their_key() {
    let mut cluster = Cluster::new(1, Config::default());
    cluster.publish(0, "news", "hi", Some("order-7"));
    let mut got = cluster.settle();
    let (delivered, _) = got.swap_remove(0);
    assert_eq!(delivered[0].key(), Some("order-7"));
    assert!(delivered[0].json().ends_with(r#","data":"hi","key":"order-7"}"#));
    assert!(!String::from_utf8_lossy(delivered[0].sse()).contains("order-7"));
}

#[test]
fn a_key_is_forgotten_when_its_event_leaves_the_backlog() {
    // By count: three events held.
    let mut config = Config::default();
    config.max_backlog_events = 3;
    let mut cluster = Cluster::new(1, config);
    let first = published(cluster.publish_one("t", "x", Some("k")));
    published(cluster.publish_one("t", "x", None));
    published(cluster.publish_one("t", "x", Some("other")));
    assert_eq!(
        duplicate(cluster.publish_one("t", "x", Some("k"))),
        first,
        "still the oldest of three"
    );
    published(cluster.publish_one("t", "x", None));
    // The backlog dropped the first event: its key goes with it.
    let again = published(cluster.publish_one("t", "x", Some("k")));
    assert!(again > first);
    assert_eq!(duplicate(cluster.publish_one("t", "x", Some("k"))), again);

    // By bytes: a hub with the same bounds holds exactly the events whose
    // keys are remembered.
    let sample = Event::new(
        Arc::from("t"),
        EventId::new(1_000, 1),
        "message",
        &"d".repeat(100),
    )
    .unwrap();
    let mut config = Config::default();
    config.max_backlog_bytes = 2 * sample.cost() + sample.cost() / 2;
    let mut cluster = Cluster::new(1, config.clone());
    let mut hub: Hub<u32> = Hub::new(config, true);
    let data = "d".repeat(100);
    let publish = |cluster: &mut Cluster, hub: &mut Hub<u32>, key: Option<&str>| {
        let token = cluster.publish(0, "t", &data, key);
        let mut got = cluster.settle();
        let (delivered, outcomes) = got.swap_remove(0);
        for event in delivered {
            hub.deliver(event).unwrap();
        }
        assert_eq!(outcomes[0].0, token);
        outcomes[0].1.clone()
    };
    let Outcome::Published(first) = publish(&mut cluster, &mut hub, Some("k")) else {
        panic!()
    };
    publish(&mut cluster, &mut hub, None);
    assert_eq!(
        publish(&mut cluster, &mut hub, Some("k")),
        Outcome::Duplicate(first)
    );
    assert_eq!(hub.backlog("t").unwrap().first_id(), Some(first));
    publish(&mut cluster, &mut hub, None);
    assert_ne!(hub.backlog("t").unwrap().first_id(), Some(first));
    assert!(matches!(publish(&mut cluster, &mut hub, Some("k")), Outcome::Published(id) if id > first));
}

#[test]
fn a_forgotten_topic_forgets_its_keys() {
    let mut config = Config::default();
    config.topic_ttl = Some(Duration::from_secs(10));
    let mut cluster = Cluster::new(1, config);
    let first = published(cluster.publish_one("t", "x", Some("k")));
    cluster.now += 10_000;
    let mut cx = Cx {
        index: 0,
        now: cluster.now,
        inboxes: &mut cluster.inboxes,
    };
    cluster.brokers[0].tick(&mut cx);
    cluster.settle();
    let again = published(cluster.publish_one("t", "x", Some("k")));
    assert_ne!(again, first, "a new epoch, the key published again");
}

#[test]
fn invalid_keys_are_refused() {
    let config = Config::default();
    let publish = || Publish::new("t", None, "x", &config).unwrap();
    for bad in ["", "a b", " k", "k\n", "tab\there", "é", "\u{7f}"] {
        assert_eq!(publish().with_key(bad), Err(Error::InvalidPublishKey), "{bad:?}");
        assert!(!is_valid_publish_key(bad));
    }
    assert_eq!(
        publish().with_key(&"k".repeat(129)),
        Err(Error::InvalidPublishKey)
    );
    assert!(publish().with_key(&"k".repeat(128)).is_ok());
    assert_eq!(Error::InvalidPublishKey.http_status(), 400);
    assert!(Error::InvalidPublishKey.is_client_error());
}

#[test]
fn loops_publishing_the_same_key_at_once_make_one_event() {
    let mut cluster = Cluster::new(4, Config::default());
    // Every loop publishes before any message is handled: the ones not on
    // the topic's sequencer forward theirs.
    let tokens: Vec<u64> = (0..4)
        .map(|l| cluster.publish(l, "race", &format!("from {l}"), Some("once")))
        .collect();
    let got = cluster.settle();
    let mut first = None;
    let mut duplicates = 0;
    for (l, (delivered, outcomes)) in got.iter().enumerate() {
        assert_eq!(delivered.len(), 1, "loop {l} got one event");
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].0, tokens[l]);
        match outcomes[0].1 {
            Outcome::Published(id) => {
                assert!(first.replace(id).is_none(), "published twice");
            }
            Outcome::Duplicate(_) => duplicates += 1,
            Outcome::Refused(ref e) => panic!("refused: {e}"),
        }
    }
    assert_eq!(duplicates, 3);
    let id = first.expect("published once");
    for (delivered, outcomes) in &got {
        assert_eq!(delivered[0].id(), id);
        assert!(matches!(outcomes[0].1, Outcome::Published(x) | Outcome::Duplicate(x) if x == id));
    }
}

proptest! {
    /// Whatever the interleaving of loops, keys and topics: one event per
    /// (topic, key) while remembered (the backlog is large enough here),
    /// and every answer to a key names that event.
    #[test]
    fn one_event_per_key_whatever_the_interleaving(
        publishes in proptest::collection::vec((0usize..3, 0usize..2, proptest::option::of(0u8..3)), 1..30),
        schedule in proptest::collection::vec(0usize..3, 0..200),
    ) {
        let mut cluster = Cluster::new(3, Config::default());
        let mut delivered: Vec<Vec<Arc<Event>>> = vec![Vec::new(); 3];
        let mut outcomes: Vec<Vec<(u64, Outcome)>> = vec![Vec::new(); 3];
        let mut asked = Vec::new();
        let mut schedule = schedule.into_iter();
        for (l, topic, key) in publishes {
            let topic = ["a", "b"][topic];
            let key = key.map(|k| format!("k{k}"));
            let token = cluster.publish(l, topic, "x", key.as_deref());
            asked.push((token, topic, key));
            // Some messages handled between publishes, in any order.
            for _ in 0..2 {
                if let Some(l) = schedule.next() {
                    cluster.step(l, &mut delivered[l], &mut outcomes[l]);
                }
            }
        }
        for (l, (d, o)) in cluster.settle().into_iter().enumerate() {
            delivered[l].extend(d);
            outcomes[l].extend(o);
        }
        // Every loop saw the same events.
        let ids = |events: &Vec<Arc<Event>>| events.iter().map(|e| (e.topic().to_string(), e.id())).collect::<Vec<_>>();
        prop_assert_eq!(ids(&delivered[0]), ids(&delivered[1]));
        prop_assert_eq!(ids(&delivered[0]), ids(&delivered[2]));
        let all: Vec<(u64, Outcome)> = outcomes.into_iter().flatten().collect();
        prop_assert_eq!(all.len(), asked.len());
        for (token, topic, key) in &asked {
            let outcome = &all.iter().find(|(t, _)| t == token).unwrap().1;
            let id = match outcome {
                Outcome::Published(id) | Outcome::Duplicate(id) => *id,
                Outcome::Refused(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            let event = delivered[0].iter().find(|e| &**e.topic() == *topic && e.id() == id);
            prop_assert!(event.is_some(), "the answer names a delivered event");
            prop_assert_eq!(event.unwrap().key(), key.as_deref());
            if key.is_none() {
                prop_assert!(matches!(outcome, Outcome::Published(_)));
            }
        }
        // One event per (topic, key).
        let mut keyed: Vec<(String, &str)> = delivered[0]
            .iter()
            .filter_map(|e| e.key().map(|k| (e.topic().to_string(), k)))
            .collect();
        let before = keyed.len();
        keyed.sort();
        keyed.dedup();
        prop_assert_eq!(keyed.len(), before);
    }
}
