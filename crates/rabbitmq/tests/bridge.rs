//! The bridge against a real RabbitMQ 3.10 started by the test (see
//! `tether_testkit::rabbitmq`): several "nodes" (bridges with two
//! pretend event loops each) share topics through a stream each. One
//! broker serves every scenario, in turn, each under a prefix of its
//! own (a broker starts in seconds: once, not per scenario). A broker
//! restarted under subscribers is the command line's test
//! (`crates/cli/tests/rabbitmq.rs`), with real clients.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use node::{Node, data};
use support::wait_until;
use tether_hub::{
    Broker, ControlMessage, HistoryAnswer, HistoryQuery, HubMessage, NodeLimits, ReplyTo, UserAction,
};
use tether_testkit::rabbitmq::RabbitMq;

#[test]
fn nodes_share_topics_through_rabbitmq_streams() {
    let Some(rabbit) = RabbitMq::start() else {
        return;
    };
    let url = rabbit.url();
    events_reach_every_node_in_the_streams_order(&url);
    a_follow_gets_the_backlog_with_the_id_before_it(&url);
    history_is_answered_from_the_stream(&url);
    a_stream_truncated_by_retention_gives_the_gap(&url);
    presence_actions_counts_and_revocations_cross_nodes(&url);
    a_topic_whose_stream_cannot_be_opened_refuses_its_publishes(&url);
}

/// A node of the scenario `prefix`.
fn start(url: &str, prefix: &str, tweak: impl FnOnce(&mut tether_rabbitmq::RabbitConfig)) -> Node {
    Node::start(url, |c| {
        c.prefix = prefix.to_owned();
        tweak(c);
    })
}

fn events_reach_every_node_in_the_streams_order(url: &str) {
    let mut a = start(url, "order", |_| {});
    let mut b = start(url, "order", |_| {});
    // Node b's loops follow; its loop 1 publishes too, interleaved with a.
    let ids = b.get_interleaved_publishes_from(&mut a, "news");
    // Ids are the stream's offsets: the same on every node.
    a.follow(0, "news");
    let (history, dropped) = a.ready(0);
    assert_eq!(history.iter().map(|e| e.id()).collect::<Vec<_>>(), ids);
    assert_eq!(dropped, None);
    let status = b.bridge.status();
    assert_eq!((status.events_added, status.events_read), (4, 8));
    assert!(b.metrics().contains("tether_rabbitmq_events_read_total 8\n"));
}

fn a_follow_gets_the_backlog_with_the_id_before_it(url: &str) {
    // The macro's backlog scenario runs under its own prefix.
    let mut a = Node::start(url, |c| c.history_events = 4);
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(a.publish_ok(0, "hist", format!("e{n}")));
    }
    Node::check_the_backlogs_of_ten(url, "hist", &ids);
    // A keyed publish repeated within the backlog is a duplicate, on any
    // node, with the first one's id.
    let token = a.publish_keyed(0, "hist", "k1", Some("key-1")).unwrap();
    let (first, duplicate) = a.outcome(0, token);
    assert!(!duplicate);
    let mut b = Node::start(url, |c| c.history_events = 4);
    let token = b.publish_keyed(1, "hist", "k1 again", Some("key-1")).unwrap();
    assert_eq!(b.outcome(1, token), (first, true));
}

fn history_is_answered_from_the_stream(url: &str) {
    let mut a = start(url, "history", |_| {});
    let one = a.publish_ok(0, "past", "h1");
    let two = a.publish_ok(0, "past", "h2");
    let mut b = start(url, "history", |_| {});
    let query = HistoryQuery {
        topic: Arc::from("past"),
        since: Some(one),
        limit: 10,
        reverse: false,
    };
    let reply = ReplyTo {
        loop_index: 1,
        token: 5,
    };
    assert!(b.brokers[1].history(&query, reply, &mut node::Cx(1)));
    match b.next(1) {
        HubMessage::Control(ControlMessage::HistoryOf {
            token: 5,
            answer: HistoryAnswer::Page(page),
        }) => {
            assert!(page.contains("\"h2\"") && !page.contains("\"h1\""), "{page}");
            assert!(page.contains(&two.to_string()), "{page}");
        }
        other => panic!("expected the history, got {other:?}"),
    }
}

fn a_stream_truncated_by_retention_gives_the_gap(url: &str) {
    // Segments of 2 KB, at most 6 KB kept: a burst truncates the stream.
    let small = |c: &mut tether_rabbitmq::RabbitConfig| {
        c.segment_bytes = 2000;
        c.stream_max_bytes = 6000;
        c.history_events = 4;
    };
    let mut a = start(url, "gap", small);
    let first = a.publish_ok(0, "burst", "first");
    for n in 0..300 {
        a.publish_ok(0, "burst", format!("{n:03}-{}", "x".repeat(60)));
    }
    let mut b = start(url, "gap", small);
    b.follow(0, "burst");
    let (history, dropped) = b.ready(0);
    assert_eq!(data(&history).last().unwrap(), &format!("299-{}", "x".repeat(60)));
    let dropped = dropped.expect("events before the backlog");
    assert!(
        dropped > first,
        "a subscriber at {first} has a gap before {dropped}"
    );
    // The stream no longer holds the first event: reading from its offset
    // starts later, and the backlog says so (the hub's gap signal).
    assert!(history.iter().all(|e| e.id() > first));
}

fn a_topic_whose_stream_cannot_be_opened_refuses_its_publishes(url: &str) {
    // A classic queue holds the name of the topic's stream: the stream
    // cannot be made, nor read as one (its deliveries have no offsets).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let options = lapin::options::QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare("refuse.topic.blocked".into(), options, Default::default())
            .await
            .unwrap();
        connection.close(200, "done".into()).await.unwrap();
    });
    let mut a = start(url, "refuse", |c| {
        c.request_timeout = std::time::Duration::from_secs(1)
    });
    // Answered, and refused, within the request timeout: the publish is
    // not held while the topic is tried again.
    let token = a.publish(0, "blocked", "never").unwrap();
    assert_eq!(a.published(0, token), Err(tether_hub::Error::BrokerUnavailable));
    let status = a.bridge.status();
    assert!(status.publishes_refused >= 1 && status.errors >= 1, "{status:?}");
    // Other topics are not held back by it.
    let id = a.publish_ok(1, "open", "fine");
    a.follow(0, "open");
    assert_eq!(a.ready(0).0.iter().map(|e| e.id()).collect::<Vec<_>>(), [id]);
}

/// A pretend hub: its own counts as set by the test, and what the bridge
/// told it.
#[derive(Default)]
struct Limits {
    here: Mutex<Vec<(Arc<str>, usize)>>,
    elsewhere: Mutex<HashMap<Arc<str>, usize>>,
    revoked: Mutex<HashMap<String, u64>>,
}

impl NodeLimits for Limits {
    fn connections_here(&self) -> Vec<(Arc<str>, usize)> {
        self.here.lock().unwrap().clone()
    }
    fn set_connections_elsewhere(&self, counts: HashMap<Arc<str>, usize>) {
        *self.elsewhere.lock().unwrap() = counts;
    }
    fn revoked(&self, entries: Vec<(String, u64)>) {
        self.revoked.lock().unwrap().extend(entries);
    }
}

fn presence_actions_counts_and_revocations_cross_nodes(url: &str) {
    let mut a = start(url, "control", |_| {});
    let mut b = start(url, "control", |_| {});
    let on_a = Arc::new(Limits::default());
    let on_b = Arc::new(Limits::default());
    let revoker = a.bridge.share_limits(on_a.clone());
    b.bridge.share_limits(on_b.clone());

    // Presence: a's member is heard on b's sequencer loop, then leaves.
    b.watch_presence(1, "room", true);
    a.presence(0, "room", "alice", true);
    b.wait_for_remote(1, "room", &["alice"]);
    a.presence(0, "room", "alice", false);
    b.wait_for_remote(1, "room", &[]);

    // A user action taken on a reaches b's loops (and not a's).
    let action = UserAction::Disconnect {
        user: Arc::from("mallory"),
        code: 4001,
        reason: "banned".into(),
    };
    a.brokers[0].user_action(&action, &mut node::Cx(0));
    loop {
        match b.next(0) {
            HubMessage::Control(ControlMessage::Relay(relayed)) => {
                assert_eq!(relayed, action);
                break;
            }
            HubMessage::Presence(_) => {}
            other => panic!("expected the action, got {other:?}"),
        }
    }

    // Counts: b hears a's; a revocation made on a reaches both.
    *on_a.here.lock().unwrap() = vec![(Arc::from("alice"), 2)];
    wait_until("b to hear a's counts", || {
        on_b.elsewhere.lock().unwrap().get("alice") == Some(&2)
    });
    let until = tether_bus::unix_ms() / 1000 + 3600;
    revoker.revoke(vec![("jti:abc".to_owned(), until)]);
    for hub in [&on_a, &on_b] {
        wait_until("the revocation", || {
            hub.revoked.lock().unwrap().get("jti:abc") == Some(&until)
        });
    }
    // A node started later reads it from the stream.
    let c = start(url, "control", |_| {});
    let on_c = Arc::new(Limits::default());
    c.bridge.share_limits(on_c.clone());
    wait_until("c to read the revocation", || {
        on_c.revoked.lock().unwrap().get("jti:abc") == Some(&until)
    });
    // a shuts down: its counts leave b's view.
    drop(a);
    wait_until("b to forget a's counts", || {
        on_b.elsewhere.lock().unwrap().is_empty()
    });
}
