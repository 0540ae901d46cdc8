//! The hub's registry (subscribe, poll, deliver, unsubscribe, ready,
//! forget), and a model of several loops and the in-process broker:
//! whatever the interleaving, every loop sees each topic's events in one
//! order, and a subscriber resuming on any loop gets backlog then live
//! with no gap and no duplicate.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tether_hub::{
    Broker, Config, Context, Error, Event, EventId, Hub, HubMessage, Left, LocalBroker, Polled, Publish,
    Replay, Subscribed, TopicLimits, Transport,
};

fn event(topic: &str, seq: u64) -> Arc<Event> {
    Event::new(
        Arc::from(topic),
        EventId::new(10, seq),
        "message",
        &format!("e{seq}"),
    )
    .unwrap()
}

fn live_ids(subscribed: Subscribed<'_>) -> (bool, Vec<u64>) {
    match subscribed {
        Subscribed::Live(Replay::Events(events)) => (false, events.map(|e| e.id().seq()).collect()),
        Subscribed::Live(Replay::Gap(_, events)) => (true, events.map(|e| e.id().seq()).collect()),
        Subscribed::Held { .. } => panic!("held"),
    }
}

#[test]
fn deliveries_reach_the_right_transports() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    assert!(matches!(
        hub.subscribe("a", 1, Transport::WebSocket, None),
        Ok(Subscribed::Live(_))
    ));
    hub.subscribe("a", 2, Transport::EventStream, None).unwrap();
    hub.subscribe("b", 3, Transport::EventStream, None).unwrap();
    assert!(matches!(hub.poll("a", 4, None), Ok(Polled::Wait)));
    assert_eq!(
        hub.subscribe("a", 1, Transport::EventStream, None).unwrap_err(),
        Error::AlreadySubscribed
    );
    assert_eq!(
        hub.subscribe("a b", 9, Transport::EventStream, None).unwrap_err(),
        Error::InvalidTopic
    );
    assert!(hub.subscribe("a", 9, Transport::Poll, None).is_err());

    let d = hub.deliver(event("a", 1)).unwrap();
    assert_eq!(
        (d.websocket, d.event_stream, &d.waiters[..]),
        (&[1][..], &[2][..], &[4][..])
    );
    // The poll was answered: it is gone.
    let d = hub.deliver(event("a", 2)).unwrap();
    assert!(d.waiters.is_empty());
    assert_eq!(hub.unsubscribe(4), None);
    assert_eq!(
        hub.subscription(2).map(|(t, tr)| (&**t, tr)),
        Some(("a", Transport::EventStream))
    );
    assert_eq!(
        hub.unsubscribe(2),
        Some(Left {
            topic: Arc::from("a"),
            transport: Transport::EventStream,
            unfollow: false
        })
    );
    let d = hub.deliver(event("a", 3)).unwrap();
    assert_eq!((d.websocket, d.event_stream), (&[1][..], &[][..]));
    assert_eq!(
        hub.deliver(event("a", 3)).unwrap_err(),
        Error::OutOfOrder {
            last: EventId::new(10, 3),
            got: EventId::new(10, 3)
        }
    );
    let info: HashMap<String, _> = hub.topics().map(|(t, i)| (t.to_string(), i)).collect();
    assert_eq!(
        (info["a"].events, info["a"].websocket, info["a"].head),
        (3, 1, EventId::new(10, 3))
    );
    assert_eq!(info["b"].event_stream, 1);
}

#[test]
fn subscribing_replays_then_goes_live() {
    let mut config = Config::default();
    config.max_backlog_events = 3;
    let mut hub: Hub<u32> = Hub::new(config, true);
    for seq in 1..=5 {
        hub.deliver(event("t", seq)).unwrap();
    }
    assert_eq!(
        live_ids(
            hub.subscribe("t", 1, Transport::EventStream, Some("10-3"))
                .unwrap()
        ),
        (false, vec![4, 5])
    );
    assert_eq!(
        live_ids(
            hub.subscribe("t", 2, Transport::EventStream, Some("10-2"))
                .unwrap()
        ),
        (false, vec![3, 4, 5])
    );
    assert_eq!(
        live_ids(hub.subscribe("t", 3, Transport::WebSocket, Some("10-1")).unwrap()),
        (true, vec![3, 4, 5])
    );
    assert_eq!(
        live_ids(hub.subscribe("t", 4, Transport::WebSocket, Some("junk")).unwrap()),
        (true, vec![3, 4, 5])
    );
    assert_eq!(
        live_ids(hub.subscribe("t", 5, Transport::WebSocket, None).unwrap()),
        (false, vec![])
    );
    assert_eq!(
        live_ids(
            hub.subscribe("new", 6, Transport::WebSocket, Some("0-0"))
                .unwrap()
        ),
        (false, vec![])
    );
    assert_eq!(
        live_ids(
            hub.subscribe("new2", 7, Transport::WebSocket, Some("1-x"))
                .unwrap()
        ),
        (true, vec![])
    );
    let d = hub.deliver(event("t", 6)).unwrap();
    let mut all: Vec<u32> = d.websocket.iter().chain(d.event_stream).copied().collect();
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3, 4, 5]);
}

#[test]
fn long_polls() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    // No topic yet: 0-0 waits, an unknown id is a gap at once.
    assert!(matches!(hub.poll("t", 1, Some("0-0")), Ok(Polled::Wait)));
    match hub.poll("t", 2, Some("10-x")) {
        Ok(Polled::Now {
            gap: Some(gap),
            events,
            unfollow: false,
        }) => {
            assert_eq!((gap.first, gap.resume, events.len()), (None, EventId::ZERO, 0));
        }
        other => panic!("{other:?}"),
    }
    let d = hub.deliver(event("t", 1)).unwrap();
    assert_eq!(d.waiters, [1]);
    hub.deliver(event("t", 2)).unwrap();
    match hub.poll("t", 1, Some("10-1")) {
        Ok(Polled::Now {
            gap: None,
            events,
            unfollow: false,
        }) => assert_eq!(events[0].id(), EventId::new(10, 2)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(hub.poll("t", 1, Some("10-2")), Ok(Polled::Wait)));
    assert!(matches!(hub.poll("t", 1, None), Err(Error::AlreadySubscribed)));
    assert_eq!(hub.unsubscribe(1).map(|l| l.transport), Some(Transport::Poll));
    assert_eq!(hub.head("t"), EventId::new(10, 2));
    assert_eq!(hub.head("none"), EventId::ZERO);
}

#[test]
fn an_id_not_seen_yet_is_held_until_it_arrives() {
    let mut config = Config::default();
    config.resume_wait = Duration::from_secs(1);
    let mut hub: Hub<u32> = Hub::new(config, true);
    hub.deliver(event("t", 1)).unwrap();
    // Clients that come from a loop that is ahead of this one.
    assert!(matches!(
        hub.subscribe("t", 1, Transport::WebSocket, Some("10-2")),
        Ok(Subscribed::Held { follow: false })
    ));
    assert!(matches!(
        hub.poll("t", 2, Some("10-2")),
        Ok(Polled::Held { follow: false })
    ));
    assert!(matches!(
        hub.subscribe("t", 3, Transport::EventStream, Some("10-3")),
        Ok(Subscribed::Held { .. })
    ));
    assert_eq!(hub.topics().next().unwrap().1.held, 3);
    // 10-2 arrives: 1 and 2 have it already; from now on they are live.
    let d = hub.deliver(event("t", 2)).unwrap();
    assert!(
        d.websocket.is_empty() && d.event_stream.is_empty() && d.waiters.is_empty() && d.resumed.is_empty()
    );
    let d = hub.deliver(event("t", 3)).unwrap();
    assert_eq!((d.websocket, &d.waiters[..]), (&[1][..], &[2][..]));
    assert!(d.event_stream.is_empty() && d.resumed.is_empty());
    let d = hub.deliver(event("t", 4)).unwrap();
    assert_eq!((d.websocket, d.event_stream), (&[1][..], &[3][..]));

    // An id the topic goes past without delivering (one the bus lost): a
    // gap from it, then only what is held after it, the event that went
    // past it first.
    hub.subscribe("t", 4, Transport::EventStream, Some("10-5"))
        .unwrap();
    let skip = Event::new(Arc::from("t"), EventId::new(10, 7), "message", "x").unwrap();
    let d = hub.deliver(skip).unwrap();
    assert_eq!(d.event_stream, [3], "not yet to 4");
    let [r] = &d.resumed[..] else {
        panic!("{:?}", d.resumed)
    };
    assert_eq!((r.sub, r.transport), (4, Transport::EventStream));
    assert_eq!(
        r.gap.map(|g| (g.first, g.resume)),
        Some((Some(EventId::new(10, 7)), EventId::new(10, 5)))
    );
    assert_eq!(
        r.events.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [EventId::new(10, 7)]
    );
    let d = hub.deliver(event("t", 8)).unwrap();
    assert_eq!(d.event_stream.len(), 2);

    // An id that never comes: a gap after the resume wait (here one
    // second: one to two ticks).
    hub.tick();
    hub.subscribe("t", 5, Transport::WebSocket, Some("10-99"))
        .unwrap();
    hub.poll("t", 6, Some("10-99")).unwrap();
    assert!(hub.tick().is_empty());
    let mut resumed = hub.tick();
    resumed.sort_by_key(|r| r.sub);
    assert_eq!(resumed.len(), 2);
    assert_eq!((resumed[0].sub, resumed[0].gap.is_some()), (5, true));
    assert_eq!((resumed[1].sub, resumed[1].transport), (6, Transport::Poll));
    assert_eq!(hub.unsubscribe(6), None, "an answered poll is gone");
    assert_eq!(hub.deliver(event("t", 9)).unwrap().websocket, [1, 5]);
    // Leaving while held.
    hub.subscribe("t", 7, Transport::WebSocket, Some("10-50"))
        .unwrap();
    assert!(hub.unsubscribe(7).is_some());
    assert!(hub.tick().is_empty() && hub.tick().is_empty());
}

#[test]
fn a_node_behind_its_bus_holds_a_resuming_client_for_the_resume_wait() {
    // A client that had 10-3 from another node resumes on this one, which
    // is still catching up with its bus: held (by default ten seconds),
    // it goes live at 10-3 with nothing repeated and no gap signal, even
    // when the node takes several ticks to get there.
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    hub.deliver(event("t", 1)).unwrap();
    assert!(matches!(
        hub.subscribe("t", 1, Transport::EventStream, Some("10-3")),
        Ok(Subscribed::Held { follow: false })
    ));
    for tick in 0..9 {
        assert!(hub.tick().is_empty(), "resumed at tick {tick}");
    }
    let d = hub.deliver(event("t", 2)).unwrap();
    assert!(
        d.event_stream.is_empty() && d.resumed.is_empty(),
        "10-2: the client had it"
    );
    let d = hub.deliver(event("t", 3)).unwrap();
    assert!(
        d.event_stream.is_empty() && d.resumed.is_empty(),
        "10-3: the client had it"
    );
    assert_eq!(hub.deliver(event("t", 4)).unwrap().event_stream, [1]);
    // An id that never comes gets its gap signal after the wait: ten
    // seconds, so ten to eleven ticks.
    hub.subscribe("t", 2, Transport::WebSocket, Some("10-99"))
        .unwrap();
    for tick in 0..10 {
        assert!(hub.tick().is_empty(), "resumed at tick {tick}");
    }
    let resumed = hub.tick();
    assert_eq!(resumed.len(), 1);
    assert!(resumed[0].gap.is_some());
}

#[test]
fn on_one_sequence_a_client_ahead_is_held_until_the_topic_reaches_it() {
    // On a bus the ids only grow: a client whose id this node has not
    // seen had every event up to it (the node is cut off from the bus and
    // behind, or the bus lost the id in a failover). However long that
    // lasts, it is sent nothing it had: no backlog after the resume wait.
    let mut config = Config::default();
    config.resume_wait = Duration::from_secs(1);
    let mut hub: Hub<u32> = Hub::new(config, true).with_one_sequence(true);
    for seq in 1..=2 {
        hub.deliver(event("t", seq)).unwrap();
    }
    hub.subscribe("t", 1, Transport::EventStream, Some("10-4"))
        .unwrap();
    hub.subscribe("t", 2, Transport::WebSocket, Some("10-6")).unwrap();
    for tick in 0..30 {
        assert!(hub.tick().is_empty(), "resumed at tick {tick}");
    }
    // The node catches up: 10-3 and 10-4 they had.
    for seq in 3..=4 {
        let d = hub.deliver(event("t", seq)).unwrap();
        assert!(d.event_stream.is_empty() && d.websocket.is_empty() && d.resumed.is_empty());
    }
    assert_eq!(
        hub.deliver(event("t", 5)).unwrap().event_stream,
        [1],
        "live after 10-4"
    );
    // 10-6 was lost in a failover: the topic goes on at 10-8. Sub 2 is
    // told of the gap from its id and gets only what follows it.
    let d = hub.deliver(event("t", 8)).unwrap();
    assert_eq!(d.event_stream, [1]);
    let [r] = &d.resumed[..] else {
        panic!("{:?}", d.resumed)
    };
    assert_eq!(r.sub, 2);
    assert_eq!(
        r.gap.map(|g| (g.first, g.resume)),
        Some((Some(EventId::new(10, 8)), EventId::new(10, 6)))
    );
    assert_eq!(
        r.events.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [EventId::new(10, 8)]
    );
    // Where ids are one node's, the same wait ends in the gap signal and
    // the backlog (the client's id may be of another history).
    let mut config = Config::default();
    config.resume_wait = Duration::from_secs(1);
    let mut own: Hub<u32> = Hub::new(config, true);
    own.deliver(event("t", 1)).unwrap();
    own.subscribe("t", 1, Transport::EventStream, Some("10-4"))
        .unwrap();
    let resumed: Vec<_> = (0..3).flat_map(|_| own.tick()).collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].events.len(), 1);
}

#[test]
fn removal_keeps_the_others_registered() {
    // Swap-removal moves the last subscriber into the hole: it must stay
    // reachable and removable.
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    for sub in 0..6 {
        hub.subscribe("t", sub, Transport::WebSocket, None).unwrap();
    }
    for sub in [0, 3, 5] {
        assert!(hub.unsubscribe(sub).is_some());
    }
    let d = hub.deliver(event("t", 1)).unwrap();
    let got: BTreeSet<u32> = d.websocket.iter().copied().collect();
    assert_eq!(got, BTreeSet::from([1, 2, 4]));
    for sub in [4, 1, 2] {
        assert!(hub.unsubscribe(sub).is_some());
    }
    assert!(hub.deliver(event("t", 2)).unwrap().websocket.is_empty());
}

#[test]
fn topics_without_events_or_subscribers_go() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    hub.subscribe("empty", 1, Transport::WebSocket, None).unwrap();
    hub.unsubscribe(1);
    assert_eq!(hub.topics().count(), 0);
    hub.deliver(event("kept", 1)).unwrap();
    hub.subscribe("kept", 1, Transport::WebSocket, None).unwrap();
    hub.unsubscribe(1);
    assert_eq!(hub.topics().count(), 1, "a topic with a backlog stays for replay");
    hub.forget("kept");
    assert_eq!(hub.topics().count(), 0);
}

#[test]
fn forgetting_starts_the_topic_over() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    hub.subscribe("t", 1, Transport::EventStream, None).unwrap();
    hub.deliver(event("t", 1)).unwrap();
    hub.forget("t");
    // The subscriber stays; the old id is unknown now; a new epoch follows.
    let later = Event::new(Arc::from("t"), EventId::new(20, 1), "message", "x").unwrap();
    assert_eq!(hub.deliver(later).unwrap().event_stream, [1]);
    assert_eq!(
        live_ids(
            hub.subscribe("t", 2, Transport::EventStream, Some("10-1"))
                .unwrap()
        ),
        (true, vec![1])
    );
}

#[test]
fn a_warmed_topic_stays_followed_until_its_last_warm_is_let_go_of() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), false);
    assert_eq!(hub.warm("no spaces"), Err(Error::InvalidTopic));
    // The first warm of a topic nobody follows has the broker follow it;
    // a second does not.
    assert!(hub.awaits_history("t"));
    assert_eq!(hub.warm("t"), Ok(true));
    assert_eq!(hub.warm("t"), Ok(false));
    assert!(!hub.is_ready("t"));
    hub.ready("t", vec![event("t", 2)], None).unwrap();
    assert!(hub.is_ready("t"));
    assert!(!hub.awaits_history("t"));
    assert_eq!(hub.head("t"), EventId::new(10, 2));
    // A subscriber placed from the head, then the warms let go of: the
    // topic stays while the subscriber does.
    assert!(matches!(
        hub.subscribe("t", 1, Transport::EventStream, Some("10-2")),
        Ok(Subscribed::Live(_))
    ));
    assert!(!hub.cool("t"));
    assert!(!hub.cool("t"));
    assert!(hub.unsubscribe(1).is_some_and(|left| left.unfollow));
    // Warms alone keep it: the last one let go of unfollows it.
    assert_eq!(hub.warm("u"), Ok(true));
    assert_eq!(
        hub.topics()
            .find(|(name, _)| &***name == "u")
            .map(|(_, info)| info.held),
        Some(1)
    );
    assert!(hub.cool("u"));
    assert!(!hub.is_ready("u"));
    assert!(!hub.cool("u"), "nothing is left to let go of");
    // With a broker that delivers everything, a topic is ready at once.
    let mut complete: Hub<u32> = Hub::new(Config::default(), true);
    assert!(!complete.awaits_history("t"));
    assert_eq!(complete.warm("t"), Ok(false));
    assert!(complete.is_ready("t"));
    assert!(!complete.cool("t"));
}

#[test]
fn topics_followed_on_demand_wait_for_their_backlog() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), false);
    assert!(matches!(
        hub.subscribe("t", 1, Transport::WebSocket, Some("10-1")),
        Ok(Subscribed::Held { follow: true })
    ));
    assert!(matches!(
        hub.subscribe("t", 2, Transport::EventStream, None),
        Ok(Subscribed::Held { follow: false })
    ));
    assert!(matches!(
        hub.poll("t", 3, Some("10-2")),
        Ok(Polled::Held { follow: false })
    ));
    assert!(matches!(
        hub.poll("t", 4, Some("10-3")),
        Ok(Polled::Held { follow: false })
    ));
    // Deliveries before the backlog are refused: the topic is not ready.
    assert_eq!(hub.deliver(event("t", 4)).unwrap_err(), Error::NotFollowed);
    let readied = hub
        .ready("t", vec![event("t", 2), event("t", 3)], Some(EventId::new(10, 1)))
        .unwrap();
    assert!(readied.resync.is_empty());
    let resumed: HashMap<u32, (Transport, bool, Vec<u64>)> = readied
        .resumed
        .into_iter()
        .map(|r| {
            (
                r.sub,
                (
                    r.transport,
                    r.gap.is_some(),
                    r.events.iter().map(|e| e.id().seq()).collect(),
                ),
            )
        })
        .collect();
    assert_eq!(resumed[&1], (Transport::WebSocket, false, vec![2, 3]));
    assert_eq!(resumed[&2], (Transport::EventStream, false, vec![]));
    assert_eq!(resumed[&3], (Transport::Poll, false, vec![3]));
    assert!(!resumed.contains_key(&4), "poll 4 is up to date: it waits");
    let d = hub.deliver(event("t", 4)).unwrap();
    assert_eq!(
        (d.websocket, d.event_stream, &d.waiters[..]),
        (&[1][..], &[2][..], &[4][..])
    );
    // A second backlog means the broker lost continuity: resync everyone.
    let readied = hub
        .ready("t", vec![event("t", 9)], Some(EventId::new(10, 8)))
        .unwrap();
    let mut resync = readied.resync;
    resync.sort_by_key(|(s, _)| *s);
    assert_eq!(resync, [(1, Transport::WebSocket), (2, Transport::EventStream)]);
    // The last subscriber to leave unfollows, and the replica goes.
    assert!(!hub.unsubscribe(1).unwrap().unfollow);
    assert!(hub.unsubscribe(2).unwrap().unfollow);
    assert!(hub.backlog("t").is_none());
    assert_eq!(hub.deliver(event("t", 10)).unwrap_err(), Error::NotFollowed);
    assert_eq!(hub.ready("t", vec![], None).unwrap_err(), Error::NotFollowed);
}

// --- Several loops and the in-process broker -------------------------------

/// Posts of one loop, collected; the test moves them into the receivers'
/// queues.
struct Outbox {
    loops: usize,
    index: usize,
    now: u64,
    posts: Vec<(usize, HubMessage)>,
}

impl Context for Outbox {
    fn loops(&self) -> usize {
        self.loops
    }
    fn this_loop(&self) -> usize {
        self.index
    }
    fn post(&mut self, to_loop: usize, message: HubMessage) {
        self.posts.push((to_loop, message));
    }
    fn unix_ms(&self) -> u64 {
        self.now
    }
}

struct Loop {
    hub: Hub<u32>,
    broker: LocalBroker,
    /// What each subscriber of this loop received, in order.
    received: HashMap<u32, Vec<EventId>>,
    /// Delivery order per topic, as this loop saw it.
    seen: HashMap<String, Vec<EventId>>,
    inbox: VecDeque<HubMessage>,
}

#[derive(Debug, Clone)]
enum Step {
    /// Loop publishes to topic.
    Publish(usize, usize),
    /// Loop handles its next message.
    Handle(usize),
    /// A new subscriber on a loop resumes from the last id another
    /// subscriber received (or from nothing).
    Subscribe(usize, usize, usize),
    Unsubscribe(usize),
}

fn step(loops: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..loops, 0..3usize).prop_map(|(l, t)| Step::Publish(l, t)),
        5 => (0..loops).prop_map(Step::Handle),
        1 => (0..loops, 0..3usize, any::<usize>()).prop_map(|(l, t, from)| Step::Subscribe(l, t, from)),
        1 => any::<usize>().prop_map(Step::Unsubscribe),
    ]
}

const TOPICS: [&str; 3] = ["a", "b", "c"];

fn run(loops: usize, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let config = Config::default();
    let first = LocalBroker::new(config.clone());
    let mut nodes: Vec<Loop> = (0..loops)
        .map(|_| Loop {
            hub: Hub::new(config.clone(), true),
            broker: first.sibling(),
            received: HashMap::new(),
            seen: HashMap::new(),
            inbox: VecDeque::new(),
        })
        .collect();
    // Subscriber -> (loop, topic).
    let mut subscribers: Vec<(u32, usize, usize)> = Vec::new();
    let mut next_sub = 0u32;
    let mut published = 0usize;
    let drain = |nodes: &mut Vec<Loop>, out: Outbox| {
        for (to, message) in out.posts {
            nodes[to].inbox.push_back(message);
        }
    };
    let handle = |nodes: &mut Vec<Loop>, l: usize| -> Result<(), TestCaseError> {
        let Some(message) = nodes[l].inbox.pop_front() else {
            return Ok(());
        };
        let mut out = Outbox {
            loops,
            index: l,
            now: 5,
            posts: Vec::new(),
        };
        let node = &mut nodes[l];
        match message {
            HubMessage::Deliver(event) => {
                node.seen
                    .entry(event.topic().to_string())
                    .or_default()
                    .push(event.id());
                let d = node
                    .hub
                    .deliver(event.clone())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for sub in d.websocket.iter().chain(d.event_stream) {
                    node.received.entry(*sub).or_default().push(event.id());
                }
                if !d.resumed.is_empty() {
                    return Err(TestCaseError::fail(format!("gaps on delivery: {:?}", d.resumed)));
                }
            }
            HubMessage::Broker(m) => node.broker.receive(m, &mut out),
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
        drain(nodes, out);
        Ok(())
    };
    for s in steps {
        match s {
            Step::Publish(l, t) => {
                published += 1;
                let mut out = Outbox {
                    loops,
                    index: l,
                    now: 5,
                    posts: Vec::new(),
                };
                let p = Publish::new(TOPICS[t], None, format!("p{published}"), &config).unwrap();
                nodes[l].broker.publish(p, &mut out).unwrap();
                drain(&mut nodes, out);
            }
            Step::Handle(l) => handle(&mut nodes, l)?,
            Step::Subscribe(l, t, from) => {
                let sub = next_sub;
                next_sub += 1;
                // Resume from where some earlier subscriber of the topic is.
                let peers: Vec<u32> = subscribers.iter().filter(|s| s.2 == t).map(|s| s.0).collect();
                let mut history = Vec::new();
                let last = if peers.is_empty() {
                    None
                } else {
                    let peer = peers[from % peers.len()];
                    let peer_loop = subscribers.iter().find(|s| s.0 == peer).unwrap().1;
                    history = nodes[peer_loop].received.get(&peer).cloned().unwrap_or_default();
                    history.last().map(|id| id.to_string())
                };
                let node = &mut nodes[l];
                match node
                    .hub
                    .subscribe(TOPICS[t], sub, Transport::EventStream, last.as_deref())
                    .unwrap()
                {
                    Subscribed::Live(Replay::Events(events)) => {
                        let replayed: Vec<EventId> = events.map(|e| e.id()).collect();
                        history.extend(replayed);
                        node.received.insert(sub, history);
                    }
                    // Its last event is still on its way to this loop.
                    Subscribed::Held { follow: false } => {
                        node.received.insert(sub, history);
                    }
                    other => return Err(TestCaseError::fail(format!("resume of {last:?} gave {other:?}"))),
                }
                subscribers.push((sub, l, t));
            }
            Step::Unsubscribe(n) => {
                if !subscribers.is_empty() {
                    let (sub, l, _) = subscribers.remove(n % subscribers.len());
                    nodes[l].hub.unsubscribe(sub);
                    nodes[l].received.remove(&sub);
                }
            }
        }
    }
    // Everything in flight arrives.
    while nodes.iter().any(|n| !n.inbox.is_empty()) {
        for l in 0..loops {
            handle(&mut nodes, l)?;
        }
    }
    for topic in TOPICS {
        let orders: Vec<Vec<EventId>> = nodes
            .iter()
            .map(|n| n.seen.get(topic).cloned().unwrap_or_default())
            .collect();
        for order in &orders {
            prop_assert_eq!(order, &orders[0], "loops disagree on {}", topic);
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "ids not increasing");
        }
    }
    for &(sub, l, t) in &subscribers {
        let got = &nodes[l].received[&sub];
        let all = nodes[l].seen.get(TOPICS[t]).cloned().unwrap_or_default();
        // A contiguous run of the topic's events, ending with the last:
        // no gap, no duplicate, nothing missed once subscribed.
        prop_assert!(
            all.ends_with(got),
            "subscriber {} got {:?} of {:?}",
            sub,
            got,
            all
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_loop_sees_one_order_and_resumes_are_exact(
        loops in 1usize..5,
        steps in proptest::collection::vec(step(4), 0..120),
    ) {
        let steps = steps
            .into_iter()
            .map(|s| match s {
                Step::Publish(l, t) => Step::Publish(l % loops, t),
                Step::Handle(l) => Step::Handle(l % loops),
                Step::Subscribe(l, t, f) => Step::Subscribe(l % loops, t, f),
                other => other,
            })
            .collect();
        run(loops, steps)?;
    }
}

#[test]
fn the_topic_limit_is_shared_and_idle_topics_are_forgotten() {
    let mut config = Config::default();
    config.max_topics = 2;
    config.topic_ttl = Some(std::time::Duration::from_secs(10));
    let mut a = LocalBroker::new(config.clone());
    let mut b = a.sibling();
    let mut out = Outbox {
        loops: 1,
        index: 0,
        now: 1_000,
        posts: Vec::new(),
    };
    let publish = |topic: &str| {
        Publish::new(topic, None, "x", &config)
            .unwrap()
            .reply_to(tether_hub::ReplyTo {
                loop_index: 0,
                token: 7,
            })
    };
    a.publish(publish("one"), &mut out).unwrap();
    b.publish(publish("two"), &mut out).unwrap();
    b.publish(publish("three"), &mut out).unwrap();
    let results: Vec<Result<EventId, Error>> = out
        .posts
        .drain(..)
        .filter_map(|(_, m)| match m {
            HubMessage::Published { token: 7, result } => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(results[0], Ok(EventId::new(1_000, 1)));
    // Another loop's broker: its own epochs.
    assert_eq!(results[1], Ok(EventId::new(1_000, 1)));
    assert_eq!(results[2], Err(Error::TopicLimit { max: 2 }));
    assert_eq!(a.topic_count(), 2);
    // Ten seconds later "one" is forgotten, and its name can start over.
    out.now = 11_000;
    a.tick(&mut out);
    assert!(matches!(&out.posts[..], [(0, HubMessage::Forget(t))] if &**t == "one"));
    out.posts.clear();
    assert_eq!(b.topic_count(), 1);
    b.publish(publish("three"), &mut out).unwrap();
    a.publish(publish("one"), &mut out).unwrap();
    let results: Vec<Result<EventId, Error>> = out
        .posts
        .iter()
        .filter_map(|(_, m)| match m {
            HubMessage::Published { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [Ok(EventId::new(11_000, 1)), Err(Error::TopicLimit { max: 2 })]
    );
}

#[test]
fn a_namespace_has_its_own_backlog_and_time_to_live() {
    let mut config = Config::default();
    config.max_backlog_events = 3;
    config.topic_ttl = Some(std::time::Duration::from_secs(100));
    let mut chat = TopicLimits::new("chat.*", &config);
    chat.max_backlog_events = 1;
    chat.topic_ttl = Some(std::time::Duration::from_secs(10));
    let mut vip = TopicLimits::new("chat.vip.*", &config);
    vip.max_backlog_events = 5;
    vip.topic_ttl = None;
    config.namespaces = vec![chat, vip];
    // Each loop's replica keeps what the topic's namespace says.
    let mut hub: Hub<u32> = Hub::new(config.clone(), true);
    for topic in ["news", "chat.lobby", "chat.vip.bar"] {
        for seq in 1..=6 {
            hub.deliver(event(topic, seq)).unwrap();
        }
    }
    let replay = |hub: &mut Hub<u32>, topic: &str, conn: u32| {
        live_ids(
            hub.subscribe(topic, conn, Transport::WebSocket, Some("10-0"))
                .unwrap(),
        )
    };
    assert_eq!(replay(&mut hub, "news", 1), (true, vec![4, 5, 6]));
    assert_eq!(replay(&mut hub, "chat.lobby", 2), (true, vec![6]));
    assert_eq!(replay(&mut hub, "chat.vip.bar", 3), (true, vec![2, 3, 4, 5, 6]));
    // The sequencer forgets each after its own idle time, or never.
    let mut broker = LocalBroker::new(config.clone());
    let mut out = Outbox {
        loops: 1,
        index: 0,
        now: 1_000,
        posts: Vec::new(),
    };
    for topic in ["news", "chat.lobby", "chat.vip.bar"] {
        broker
            .publish(Publish::new(topic, None, "x", &config).unwrap(), &mut out)
            .unwrap();
    }
    let forgotten = |out: &mut Outbox| -> Vec<String> {
        out.posts
            .drain(..)
            .filter_map(|(_, m)| match m {
                HubMessage::Forget(topic) => Some(topic.to_string()),
                _ => None,
            })
            .collect()
    };
    out.posts.clear();
    out.now = 11_000;
    broker.tick(&mut out);
    assert_eq!(forgotten(&mut out), ["chat.lobby"]);
    out.now = 101_000;
    broker.tick(&mut out);
    assert_eq!(forgotten(&mut out), ["news"]);
    out.now = 10_000_000;
    broker.tick(&mut out);
    assert!(forgotten(&mut out).is_empty());
    assert_eq!(broker.topic_count(), 1);
}

#[test]
fn raw_websocket_subscribers_have_a_list_of_their_own() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    hub.subscribe("a", 1, Transport::WebSocket, None).unwrap();
    hub.subscribe("a", 2, Transport::RawWebSocket, None).unwrap();
    hub.subscribe("a", 3, Transport::RawWebSocket, None).unwrap();
    let d = hub.deliver(event("a", 1)).unwrap();
    assert_eq!(
        (d.websocket, d.raw_websocket, d.event_stream),
        (&[1][..], &[2, 3][..], &[][..])
    );
    let info: HashMap<String, _> = hub.topics().map(|(t, i)| (t.to_string(), i)).collect();
    assert_eq!(info["a"].websocket, 3);
    assert_eq!(
        hub.unsubscribe(2).map(|l| l.transport),
        Some(Transport::RawWebSocket)
    );
    let d = hub.deliver(event("a", 2)).unwrap();
    assert_eq!((d.websocket, d.raw_websocket), (&[1][..], &[3][..]));
    // A resynchronisation ends raw subscriptions too.
    let mut resync = hub
        .ready("a", vec![event("a", 9)], Some(EventId::new(10, 8)))
        .unwrap()
        .resync;
    resync.sort_by_key(|(s, _)| *s);
    assert_eq!(resync, [(1, Transport::WebSocket), (3, Transport::RawWebSocket)]);
}
