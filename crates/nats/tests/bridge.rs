//! The bridge against a real `nats-server` (see `support`): several
//! "nodes" (bridges with two pretend event loops each) share topics
//! through one JetStream stream; follows get their backlog from it, with
//! the id before it exact; publish keys hold across nodes; a restarted
//! NATS loses and duplicates nothing, and a stream made again resyncs.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::sync::Arc;

use node::{Node, data};
use support::{NatsServer, PausableProxy, available};
use tether_hub::{Broker, BrokerState, ControlMessage, Error as HubError, HubMessage, UserAction};

#[test]
fn events_reach_every_node_in_the_streams_order() {
    if !available("events_reach_every_node_in_the_streams_order") {
        return;
    }
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    // Node b's loops follow; loop 1 publishes too, interleaved with a.
    b.get_interleaved_publishes_from(&mut a, "news");
    let status = b.bridge.status();
    assert_eq!(
        (status.events_added, status.events_read, status.followed_topics),
        (4, 8, 1)
    );
    assert!(b.metrics().contains("tether_nats_events_read_total 8\n"));

    // Unfollowed by both loops: nothing more reaches them.
    b.unfollow(0, "news");
    b.unfollow(1, "news");
    a.publish_ok(0, "news", "late");
    b.expect_quiet(0);
    b.expect_quiet(1);
    support::wait_until("the topic to be dropped", || {
        b.bridge.status().followed_topics == 0
    });
}

#[test]
fn a_node_reads_every_topic_it_follows_through_one_consumer() {
    if !available("a_node_reads_every_topic_it_follows_through_one_consumer") {
        return;
    }
    // Before, each node read each topic it followed through a consumer of
    // its own: the server's work grew with the topics followed, and
    // nats-server 2.15, which allows 1000 to a stream that names no limit,
    // stalled two nodes of 600 topics each. Now a node reads every topic
    // through one consumer, and a topic's backlog through one deleted once
    // read.
    const TOPICS: usize = 600;
    const STREAM: &str = "tether-test";
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    for n in 0..TOPICS {
        a.publish_ok(1, &format!("many{n}"), "early");
    }
    for node in [&mut a, &mut b] {
        for n in 0..TOPICS {
            node.follow(0, &format!("many{n}"));
        }
        for _ in 0..TOPICS {
            let (history, _) = node.ready(0);
            assert_eq!(data(&history), ["early"]);
        }
    }
    // Every one is read: an event to the last, from node a, reaches both.
    let id = a.publish_ok(1, "many599", "last");
    assert_eq!(a.deliver(0).id(), id);
    assert_eq!(b.deliver(0).id(), id);
    assert_eq!(b.bridge.status().followed_topics, TOPICS as u64);
    // And the stream has one consumer a node.
    support::wait_until("the backlogs' consumers to be deleted", || {
        nats.consumers_of(STREAM) == 2
    });
}

#[test]
fn a_reader_behind_the_streams_trimming_resyncs_and_leaves_no_hole() {
    if !available("a_reader_behind_the_streams_trimming_resyncs_and_leaves_no_hole") {
        return;
    }
    // The stream keeps five per subject. Node b reads through a proxy
    // held while node a publishes a burst: the server sends b what b's
    // pull asked for (200 messages), and trims the rest of the burst but
    // its last five before b asks again. b must not deliver those five
    // right after the 200 as if nothing were between: its topic checks,
    // finds the last event it read gone, and resynchronises.
    const BURST: usize = 2000;
    let nats = NatsServer::start();
    let proxy = PausableProxy::start(nats.port());
    let mut a = Node::start(&nats.url(), |c| c.history_events = 4);
    let mut b = Node::start(&proxy.url(), |c| c.history_events = 4);
    b.follow(0, "lagged");
    assert!(b.ready(0).0.is_empty());
    let first = a.publish_ok(0, "lagged", "e0");
    assert_eq!(b.deliver(0).id(), first);

    proxy.pause();
    let tokens: Vec<u64> = (1..=BURST)
        .map(|n| a.publish(0, "lagged", format!("e{n}")).unwrap())
        .collect();
    // Acknowledgements are awaited together: they come in any order.
    let mut answers = std::collections::HashMap::new();
    while answers.len() < BURST {
        match a.next(0) {
            HubMessage::Published { token, result } => answers.insert(token, result.unwrap()),
            other => panic!("unexpected {other:?}"),
        };
    }
    let ids: Vec<_> = tokens.iter().map(|token| answers[token]).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "published in order");
    proxy.resume();

    let mut delivered = 0;
    loop {
        match b.next(0) {
            HubMessage::Deliver(event) => {
                assert_eq!(event.id(), ids[delivered], "the burst in order, without a hole");
                delivered += 1;
            }
            HubMessage::Ready { history, dropped, .. } => {
                let last: Vec<String> = (BURST - 3..=BURST).map(|n| format!("e{n}")).collect();
                assert_eq!(data(&history), last);
                assert_eq!(dropped, Some(ids[BURST - 5]));
                break;
            }
            other => panic!("unexpected {other:?} after {delivered} of the burst"),
        }
    }
    assert!(
        delivered < BURST - 5,
        "{delivered}: the stream kept what b had not read"
    );
    assert_eq!(b.bridge.status().resyncs, 1);
    assert!(b.bridge.status().behind_checks >= 1);
    assert!(b.metrics().contains("tether_nats_behind_checks_total "));
}

#[test]
fn a_follow_gets_the_backlog_with_the_id_before_it() {
    if !available("a_follow_gets_the_backlog_with_the_id_before_it") {
        return;
    }
    let nats = NatsServer::start();
    // The stream keeps five per subject (the backlog, four, and one).
    let mut a = Node::start(&nats.url(), |c| c.history_events = 4);
    let mut ids = Vec::new();
    for n in 1..=10 {
        ids.push(a.publish_ok(0, "hist", format!("e{n}")));
        // Another topic between them: the stream's sequence is shared.
        a.publish_ok(0, "other", format!("o{n}"));
    }

    // Four kept for replay, then a byte bound that keeps two.
    Node::check_the_backlogs_of_ten(&nats.url(), "hist", &ids);

    // A topic with fewer events than the backlog: all of them, nothing
    // before.
    let mut d = Node::start(&nats.url(), |c| c.history_events = 4);
    a.publish_ok(0, "short", "s1");
    a.publish_ok(0, "short", "s2");
    d.follow(1, "short");
    let (history, dropped) = d.ready(1);
    assert_eq!(data(&history), ["s1", "s2"]);
    assert_eq!(dropped, None);

    // A second loop of the same node gets the same backlog, from the node.
    d.follow(0, "short");
    let (again, dropped) = d.ready(0);
    assert_eq!(data(&again), ["s1", "s2"]);
    assert_eq!(dropped, None);
    let id = a.publish_ok(0, "short", "s3");
    assert_eq!(d.deliver(0).id(), id);
    assert_eq!(d.deliver(1).id(), id);
}

#[test]
fn a_repeated_follow_gets_the_backlog_again() {
    if !available("a_repeated_follow_gets_the_backlog_again") {
        return;
    }
    // A loop that dropped a topic without unfollowing it and made it anew
    // follows it again: it is owed a `Ready` like any follow (the broker's
    // contract), or its new subscribers wait for ever. The Redis bridge
    // answers the same (crates/redis/tests/bridge.rs).
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    a.publish_ok(0, "again", "r1");
    let mut d = Node::start(&nats.url(), |_| {});
    d.follow(0, "again");
    assert_eq!(data(&d.ready(0).0), ["r1"]);
    a.publish_ok(0, "again", "r2");
    assert_eq!(data(&[d.deliver(0)]), ["r2"]);
    d.follow(0, "again");
    assert_eq!(data(&d.ready(0).0), ["r1", "r2"]);
    // Then the events after it, once.
    let id = a.publish_ok(0, "again", "r3");
    assert_eq!(d.deliver(0).id(), id);
    d.expect_quiet(0);
}

#[test]
fn a_follow_given_up_before_its_backlog_came_is_not_answered_late() {
    if !available("a_follow_given_up_before_its_backlog_came_is_not_answered_late") {
        return;
    }
    // A loop follows a topic, drops it and follows it again before the
    // first backlog came (NATS is away meanwhile). The first follow's
    // task lives on until it has read its commands; it must not answer
    // then: its backlog, loaded before the second task's, would replace
    // the newer one in the loop, and the events between be lost to the
    // loop's subscribers (a network fault run lost three so).
    let mut nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    a.publish_ok(0, "late", "l1");
    let mut d = Node::start(&nats.url(), |_| {});
    nats.stop();
    d.follow(0, "late");
    d.unfollow(0, "late");
    d.follow(0, "late");
    nats.restart();
    assert_eq!(data(&d.ready(0).0), ["l1"]);
    d.expect_quiet(0);
}

#[test]
fn publish_keys_make_one_event_across_nodes() {
    if !available("publish_keys_make_one_event_across_nodes") {
        return;
    }
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    b.follow(1, "orders");
    assert!(b.ready(1).0.is_empty());

    let first = a.publish_keyed(0, "orders", "paid", Some("order-42")).unwrap();
    let (id, duplicate) = a.outcome(0, first);
    assert!(!duplicate);
    let again = b.publish_keyed(0, "orders", "paid", Some("order-42")).unwrap();
    assert_eq!(b.outcome(0, again), (id, true), "the same key on another node");
    // The same key on another topic is another event.
    let other = a.publish_keyed(0, "invoices", "paid", Some("order-42")).unwrap();
    let (other_id, duplicate) = a.outcome(0, other);
    assert!(!duplicate && other_id != id);

    // One event reached the follower, with its key.
    let event = b.deliver(1);
    assert_eq!(event.id(), id);
    assert_eq!(event.key(), Some("order-42"));
    b.expect_quiet(1);
    assert_eq!(b.bridge.status().duplicates, 1);

    // Event types go through too.
    let publish =
        tether_hub::Publish::new("orders", Some("refund"), "x", &tether_hub::Config::default()).unwrap();
    a.brokers[0].publish(publish, &mut node::Cx(0)).unwrap();
    let event = b.deliver(1);
    let json: serde_json::Value = serde_json::from_str(event.json()).unwrap();
    assert_eq!(json["event"], "refund", "{json}");
}

#[test]
fn a_nats_restart_mid_stream_loses_and_duplicates_nothing() {
    if !available("a_nats_restart_mid_stream_loses_and_duplicates_nothing") {
        return;
    }
    let mut nats = Some(NatsServer::start());
    let url = nats.as_ref().unwrap().url();
    let mut a = Node::start(&url, |_| {});
    let mut b = Node::start(&url, |_| {});
    b.follow(0, "live");
    assert!(b.ready(0).0.is_empty());

    let mut acknowledged = Vec::new();
    let mut restarted = None;
    for n in 0..60 {
        if n == 20 {
            nats.as_mut().unwrap().stop();
            a.wait_for_state(BrokerState::Connecting);
            // Refused while NATS is away, never queued blind.
            assert_eq!(a.publish(0, "live", "x"), Err(HubError::BrokerUnavailable));
            // Back in a moment, with its store, while the publisher
            // retries.
            let mut server = nats.take().unwrap();
            restarted = Some(std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(500));
                server.restart();
                server
            }));
        }
        let (id, _) = a.publish_until_acknowledged(0, "live", &format!("m{n}"), &format!("k{n}"));
        acknowledged.push(id);
    }
    assert!(acknowledged.windows(2).all(|w| w[0] < w[1]), "{acknowledged:?}");
    let _nats = restarted.unwrap().join().unwrap();

    // Node b got every acknowledged event once, in order, without a
    // resync (the stream kept them; it is the same stream).
    let mut got = Vec::new();
    while got.len() < acknowledged.len() {
        match b.next(0) {
            HubMessage::Deliver(event) => got.push(event.id()),
            other => panic!("unexpected {other:?} after {} events", got.len()),
        }
    }
    assert_eq!(got, acknowledged);
    b.expect_quiet(0);
    let status = b.bridge.status();
    assert_eq!(status.resyncs, 0);
    assert!(status.reconnects >= 1, "{status:?}");
}

#[test]
fn a_stream_made_again_resyncs_its_topics() {
    if !available("a_stream_made_again_resyncs_its_topics") {
        return;
    }
    let mut nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    b.follow(0, "gone");
    assert!(b.ready(0).0.is_empty());
    let before = a.publish_ok(0, "gone", "old");
    assert_eq!(b.deliver(0).id(), before);

    // NATS back without its store: the stream is made again, its
    // sequence starts over, the events are gone.
    nats.stop();
    nats.restart_empty();
    b.wait_for_state(BrokerState::Up);
    let (history, dropped) = b.ready(0);
    assert!(history.is_empty() && dropped.is_none(), "{history:?} {dropped:?}");
    assert_eq!(b.bridge.status().resyncs, 1);

    // New ids are of another epoch: the old id is never taken for one.
    a.wait_for_state(BrokerState::Up);
    let after = a.publish_until_acknowledged(0, "gone", "new", "k-new").0;
    assert_ne!(after.ms(), before.ms());
    assert_eq!(b.deliver(0).id(), after);
}

#[test]
fn presence_is_shared_across_nodes() {
    if !available("presence_is_shared_across_nodes") {
        return;
    }
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    assert!(b.brokers[0].shares_presence());
    b.watch_presence(0, "room", true);
    b.wait_for_remote(0, "room", &[]);

    // Members of node a are heard on node b (not node b's own).
    a.presence(1, "room", "alice", true);
    a.presence(1, "room", "bob", true);
    b.presence(0, "room", "carol", true);
    b.wait_for_remote(0, "room", &["alice", "bob"]);
    a.presence(1, "room", "alice", false);
    b.wait_for_remote(0, "room", &["bob"]);
    // And node b's members on node a, once it watches.
    a.watch_presence(1, "room", true);
    a.wait_for_remote(1, "room", &["carol"]);

    // A node that shuts down takes its members away.
    drop(a);
    b.wait_for_remote(0, "room", &[]);
}

#[test]
fn user_actions_reach_the_other_nodes() {
    if !available("user_actions_reach_the_other_nodes") {
        return;
    }
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    assert!(a.brokers[0].shares_user_actions());
    let action = UserAction::Disconnect {
        user: Arc::from("alice"),
        code: 4001,
        reason: "banned".to_owned(),
    };
    // The subscription may still be on its way to the server: the action
    // is taken again until node b hears it (it is idempotent).
    let deadline = std::time::Instant::now() + support::PATIENCE;
    loop {
        assert!(std::time::Instant::now() < deadline, "never relayed");
        a.brokers[1].user_action(&action, &mut node::Cx(1));
        match b.next_within(0, std::time::Duration::from_millis(500)) {
            Some(HubMessage::Control(ControlMessage::Relay(relayed))) => {
                assert_eq!(relayed, action);
                break;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    // Node a's own action is not relayed back to it.
    a.expect_quiet(0);
    a.expect_quiet(1);
}

#[test]
fn binary_events_cross_the_bus_byte_for_byte() {
    if !available("binary_events_cross_the_bus_byte_for_byte") {
        return;
    }
    let nats = NatsServer::start();
    let mut a = Node::start(&nats.url(), |_| {});
    let mut b = Node::start(&nats.url(), |_| {});
    b.follow(0, "pix");
    b.ready(0);
    let mut all: Vec<u8> = (0..=255).collect();
    all.extend_from_slice(b"\xff\xfe\xc3\x28");
    a.publish_ok(0, "pix", "text before");
    let id = a.publish_ok(0, "pix", tether_hub::Payload::Binary(all.clone()));
    assert_eq!(b.deliver(0).data_text(), Some("text before"));
    let event = b.deliver(0);
    assert_eq!(
        (event.id(), event.is_binary(), event.data_bytes()),
        (id, true, &all[..])
    );
    // From the bus's backlog too, to a node that follows later.
    let mut c = Node::start(&nats.url(), |_| {});
    c.follow(1, "pix");
    let (history, _) = c.ready(1);
    let got: Vec<_> = history.iter().map(|e| e.payload()).collect();
    assert_eq!(
        got,
        [
            tether_hub::Payload::from("text before"),
            tether_hub::Payload::Binary(all)
        ]
    );
}
