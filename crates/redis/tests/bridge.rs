//! The bridge against a real `redis-server` (see `support`): several
//! "nodes" (bridges with two pretend event loops each) share topics
//! through Redis streams; follows get their backlog from Redis; lost
//! connections and a restarted Redis are survived, with a resync exactly
//! when continuity is lost.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::sync::Arc;
use std::time::Duration;

use node::{Node, PREFIX, data, stream_ids};
use support::{RedisServer, available, wait_until};
use tether_hub::{Broker, BrokerState, Error as HubError, Event, HubMessage};

#[test]
fn events_reach_every_node_in_the_streams_order() {
    if !available("events_reach_every_node_in_the_streams_order") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    // Node b's loops follow; loop 1 publishes too, interleaved with a.
    // The order both loops get is the stream's.
    let ids = b.get_interleaved_publishes_from(&mut a, "news");
    assert_eq!(ids, stream_ids(&redis, "news"));
    let status = b.bridge.status();
    assert_eq!((status.added, status.read, status.followed_topics), (4, 8, 1));
}

#[test]
fn a_follow_gets_the_backlog_from_redis() {
    if !available("a_follow_gets_the_backlog_from_redis") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    for n in 1..=10 {
        a.publish_ok(0, "hist", format!("e{n}"));
    }
    let ids = stream_ids(&redis, "hist");

    // Four kept for replay, then a byte bound that keeps two: the one
    // before them is known.
    Node::check_the_backlogs_of_ten(&redis.url(), "hist", &ids);

    // Trimmed in Redis: what is left, after a known id.
    let _: i64 = redis::cmd("XTRIM")
        .arg(format!("{PREFIX}hist"))
        .arg("MAXLEN")
        .arg(3)
        .query(&mut redis.client())
        .unwrap();
    let mut d = Node::start(&redis.url(), |_| {});
    d.follow(1, "hist");
    let (history, dropped) = d.ready(1);
    assert_eq!(data(&history), ["e8", "e9", "e10"]);
    // What stands for the trimmed events: an id after the last of them,
    // before the first held.
    assert!(dropped.is_some_and(|d| d >= ids[6] && d < ids[7]), "{dropped:?}");
    // Then the events after them, and only those.
    let id = a.publish_ok(1, "hist", "e11");
    assert_eq!(d.deliver(1).id(), id);
    d.expect_quiet(1);

    // Unfollowed: nothing comes; followed again: the backlog again.
    d.unfollow(1, "hist");
    wait_until("node d to unfollow", || d.bridge.status().followed_topics == 0);
    a.publish_ok(0, "hist", "e12");
    d.expect_quiet(1);
    d.follow(1, "hist");
    let (history, _) = d.ready(1);
    assert_eq!(data(&history).last().unwrap(), "e12");
}

#[test]
fn a_lost_connection_goes_on_where_it_stopped() {
    if !available("a_lost_connection_goes_on_where_it_stopped") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    // Slow to reconnect, so that events are published while it is away.
    let mut b = Node::start(&redis.url(), |c| {
        c.backoff_min = Duration::from_millis(600);
        c.backoff_max = Duration::from_millis(600);
    });
    b.follow(0, "cont");
    b.ready(0);
    for n in 1..=2 {
        a.publish_ok(0, "cont", format!("e{n}"));
    }
    assert_eq!(data(&[b.deliver(0), b.deliver(0)]), ["e1", "e2"]);

    assert!(
        redis.kill_clients("tether-redis-reader") >= 2,
        "both nodes' readers"
    );
    wait_until("node b to see its reader gone", || {
        !b.bridge.status().reader_connected
    });
    assert_eq!(b.brokers[1].state(), BrokerState::Connecting);
    for n in 3..=5 {
        a.publish_ok(0, "cont", format!("e{n}"));
    }
    let during: Vec<Arc<Event>> = (0..3).map(|_| b.deliver(0)).collect();
    assert_eq!(data(&during), ["e3", "e4", "e5"]);
    let status = b.bridge.status();
    assert_eq!(status.state, BrokerState::Up);
    assert_eq!((status.reconnects, status.resyncs), (1, 0));
    assert!(status.last_error_age.is_some());
    b.expect_quiet(0);
    let metrics = b.metrics();
    for line in [
        "tether_redis_connected{connection=\"reader\"} 1\n",
        "tether_redis_reconnects_total 1\n",
        "tether_redis_resyncs_total 0\n",
        "# TYPE tether_redis_last_error_age_seconds gauge\n",
    ] {
        assert!(metrics.contains(line), "{line:?} in {metrics}");
    }
}

#[test]
fn lost_continuity_sends_the_backlog_again() {
    if !available("lost_continuity_sends_the_backlog_again") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |c| {
        c.backoff_min = Duration::from_millis(600);
        c.backoff_max = Duration::from_millis(600);
    });
    b.follow(0, "trim");
    b.ready(0);
    a.publish_ok(0, "trim", "e1");
    assert_eq!(data(&[b.deliver(0)]), ["e1"]);

    redis.kill_clients("tether-redis-reader");
    wait_until("node b to see its reader gone", || {
        !b.bridge.status().reader_connected
    });
    for n in 2..=6 {
        a.publish_ok(0, "trim", format!("e{n}"));
    }
    // What node b delivered last is trimmed away while it is gone.
    let _: i64 = redis::cmd("XTRIM")
        .arg(format!("{PREFIX}trim"))
        .arg("MAXLEN")
        .arg(2)
        .query(&mut redis.client())
        .unwrap();
    let ids = stream_ids(&redis, "trim");
    let (history, dropped) = b.ready(0);
    assert_eq!(data(&history), ["e5", "e6"]);
    assert_eq!(history[0].id(), ids[0]);
    assert!(dropped.is_some_and(|d| d < ids[0]));
    assert_eq!(b.bridge.status().resyncs, 1);
    let id = a.publish_ok(0, "trim", "e7");
    assert_eq!(b.deliver(0).id(), id);
    b.expect_quiet(0);
}

#[test]
fn a_restarted_redis_is_survived() {
    if !available("a_restarted_redis_is_survived") {
        return;
    }
    let mut redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    b.follow(0, "r");
    b.ready(0);
    a.publish_ok(0, "r", "before");
    assert_eq!(data(&[b.deliver(0)]), ["before"]);

    redis.stop();
    wait_until("node a to see its writer gone", || {
        !a.bridge.status().writer_connected
    });
    assert_eq!(a.brokers[0].state(), BrokerState::Connecting);
    assert_eq!(a.publish(0, "r", "lost"), Err(HubError::BrokerUnavailable));
    assert!(
        a.metrics()
            .contains("tether_redis_connected{connection=\"writer\"} 0\n")
    );

    redis.restart();
    a.wait_for_state(BrokerState::Up);
    b.wait_for_state(BrokerState::Up);
    // The new Redis has nothing: continuity is lost, node b's loop gets
    // the (empty) backlog again; then events flow.
    let (history, dropped) = b.ready(0);
    assert!(history.is_empty() && dropped.is_none());
    let id = a.publish_ok(0, "r", "after");
    let event = b.deliver(0);
    assert_eq!(data(std::slice::from_ref(&event)), ["after"]);
    assert_eq!(event.id(), id);
    b.expect_quiet(0);
    let (sa, sb) = (a.bridge.status(), b.bridge.status());
    assert_eq!(sa.reconnects, 2, "writer and reader");
    assert_eq!(sb.resyncs, 1);
    assert!(sa.refused >= 1);

    // Shut down: no threads left, publishes refused.
    a.bridge.shutdown();
    assert_eq!(a.brokers[0].state(), BrokerState::Down);
    assert_eq!(a.publish(0, "r", "late"), Err(HubError::BrokerUnavailable));
}

#[test]
fn a_key_that_is_not_a_stream_is_left_alone() {
    if !available("a_key_that_is_not_a_stream_is_left_alone") {
        return;
    }
    let redis = RedisServer::start();
    let _: () = redis::cmd("SET")
        .arg(format!("{PREFIX}wrong"))
        .arg("not a stream")
        .query(&mut redis.client())
        .unwrap();
    let mut a = Node::start(&redis.url(), |_| {});
    a.follow(0, "wrong");
    let (history, dropped) = a.ready(0);
    assert!(history.is_empty() && dropped.is_none());
    let token = a.publish(1, "wrong", "x").unwrap();
    assert_eq!(a.published(1, token), Err(HubError::BrokerUnavailable));
    // Other topics are not held up.
    a.follow(0, "fine");
    a.ready(0);
    let id = a.publish_ok(1, "fine", "y");
    assert_eq!(a.deliver(0).id(), id);

    // A followed stream replaced by something else: publishes to it are
    // refused, and once the reader next reads the followed streams
    // themselves (after its connection is made again) that topic gets an
    // empty backlog (its subscribers resume, and get nothing more); the
    // others go on.
    a.follow(0, "morph");
    a.ready(0);
    a.publish_ok(1, "morph", "z");
    a.deliver(0);
    let mut con = redis.client();
    let _: () = redis::cmd("DEL")
        .arg(format!("{PREFIX}morph"))
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{PREFIX}morph"))
        .arg("no longer a stream")
        .query(&mut con)
        .unwrap();
    let token = a.publish(1, "morph", "refused").unwrap();
    assert_eq!(a.published(1, token), Err(HubError::BrokerUnavailable));
    assert_eq!(redis.kill_clients("tether-redis-reader"), 1);
    let id = a.publish_ok(1, "fine", "w");
    let mut seen = [false, false];
    while seen != [true, true] {
        match a.next(0) {
            HubMessage::Ready {
                topic,
                history,
                dropped,
            } if &*topic == "morph" && !seen[0] => {
                assert!(history.is_empty() && dropped.is_none());
                seen[0] = true;
            }
            HubMessage::Deliver(event) if event.id() == id && !seen[1] => seen[1] = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    a.expect_quiet(0);
    a.wait_for_state(BrokerState::Up);
    assert_eq!(a.bridge.status().resyncs, 1);
}

#[test]
fn a_publish_key_holds_across_nodes() {
    if !available("a_publish_key_holds_across_nodes") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    b.follow(0, "keyed");
    b.ready(0);

    // Published on node a; the same key on node b publishes nothing and
    // names node a's event.
    let token = a.publish_keyed(0, "keyed", "one", Some("k1")).unwrap();
    let (id, duplicate) = a.outcome(0, token);
    assert!(!duplicate);
    let token = b.publish_keyed(1, "keyed", "one again", Some("k1")).unwrap();
    assert_eq!(b.outcome(1, token), (id, true));
    // A publisher that follows the topic gets the event, then the answer.
    let event = b.deliver(0);
    assert_eq!((event.id(), event.key()), (id, Some("k1")));
    assert!(event.json().ends_with(r#""key":"k1"}"#));
    let token = b.publish_keyed(0, "keyed", "one", Some("k1")).unwrap();
    assert_eq!(b.outcome(0, token), (id, true));

    // Both nodes at once: one event, both answers name it.
    let ta = a.publish_keyed(1, "keyed", "from a", Some("k2")).unwrap();
    let tb = b.publish_keyed(1, "keyed", "from b", Some("k2")).unwrap();
    let (oa, ob) = (a.outcome(1, ta), b.outcome(1, tb));
    assert_eq!(oa.0, ob.0);
    assert!(oa.1 != ob.1, "one published, one duplicate: {oa:?} {ob:?}");
    assert_eq!(b.deliver(0).id(), oa.0);
    // Without a key: never a duplicate.
    let plain = [a.publish_ok(0, "keyed", "x"), a.publish_ok(0, "keyed", "x")];
    assert!(plain[0] < plain[1]);
    assert_eq!([b.deliver(0).id(), b.deliver(0).id()], plain);
    b.expect_quiet(0);
    assert_eq!(stream_ids(&redis, "keyed"), [id, oa.0, plain[0], plain[1]]);

    // The events leave the stream: their keys are forgotten, and the
    // index keeps only what the stream holds.
    let mut con = redis.client();
    let _: i64 = redis::cmd("XTRIM")
        .arg(format!("{PREFIX}keyed"))
        .arg("MAXLEN")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let token = b.publish_keyed(1, "keyed", "one, later", Some("k1")).unwrap();
    let (later, duplicate) = b.outcome(1, token);
    assert!(!duplicate && later > plain[1]);
    let event = b.deliver(0);
    assert_eq!((event.id(), event.key()), (later, Some("k1")));
    let index: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{PREFIX}!pub:keyed"))
        .query(&mut con)
        .unwrap();
    assert_eq!(index, ["k1"], "k2 was trimmed away and forgotten");
    let by_ms: i64 = redis::cmd("ZCARD")
        .arg(format!("{PREFIX}!pub-ms:keyed"))
        .query(&mut con)
        .unwrap();
    assert_eq!(by_ms, 1);
    let token = a.publish_keyed(0, "keyed", "x", Some("k1")).unwrap();
    assert_eq!(a.outcome(0, token), (later, true));

    // The index expires with the stream.
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(format!("{PREFIX}keyed"))
        .arg(600_000)
        .query(&mut con)
        .unwrap();
    let token = a.publish_keyed(0, "keyed", "x", Some("k3")).unwrap();
    assert!(!a.outcome(0, token).1);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{PREFIX}!pub:keyed"))
        .query(&mut con)
        .unwrap();
    assert!(ttl > 0 && ttl <= 600_000, "{ttl}");

    // Whichever node won the race for k2 added it.
    let a_won = u64::from(!oa.1);
    let (sa, sb) = (a.bridge.status(), b.bridge.status());
    assert_eq!((sa.added, sa.duplicates), (4 + a_won, 2 - a_won));
    assert_eq!((sb.added, sb.duplicates), (2 - a_won, 2 + a_won));
    let line = format!("tether_redis_duplicates_total {}\n", 2 + a_won);
    assert!(b.metrics().contains(&line), "{line}");
}

#[test]
fn a_trimmed_key_of_the_first_entrys_millisecond_is_forgotten() {
    if !available("a_trimmed_key_of_the_first_entrys_millisecond_is_forgotten") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let token = a.publish_keyed(0, "edge", "old", Some("old")).unwrap();
    let (old, duplicate) = a.outcome(0, token);
    assert!(!duplicate);

    // An entry later in the same millisecond, then a trim to it: the
    // stream's first entry shares the trimmed key's millisecond.
    let mut con = redis.client();
    let stream = format!("{PREFIX}edge");
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg(format!("{}-{}", old.ms(), old.seq() + 1))
        .arg("data")
        .arg("same millisecond")
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("XTRIM")
        .arg(&stream)
        .arg("MAXLEN")
        .arg(1)
        .query(&mut con)
        .unwrap();

    let token = a.publish_keyed(0, "edge", "new", Some("new")).unwrap();
    assert!(!a.outcome(0, token).1);
    let index: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{PREFIX}!pub:edge"))
        .query(&mut con)
        .unwrap();
    assert_eq!(index, ["new"], "the trimmed key is forgotten");
    let by_ms: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{PREFIX}!pub-ms:edge"))
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(by_ms, ["new"]);
    let token = a.publish_keyed(0, "edge", "old again", Some("old")).unwrap();
    assert!(!a.outcome(0, token).1, "a forgotten key publishes again");
}

/// A user action one node's broker is given reaches the other nodes'
/// first loop (to post to all of theirs), once, and not its own node.
#[test]
fn user_actions_reach_the_other_nodes() {
    if !available("user_actions_reach_the_other_nodes") {
        return;
    }
    let redis = RedisServer::start();
    let fast = |config: &mut tether_redis::RedisConfig| config.presence_poll = Duration::from_millis(50);
    let mut a = Node::start(&redis.url(), fast);
    let mut b = Node::start(&redis.url(), fast);
    // Each has found where the control stream ends (right after its
    // presence connection is made): from then on it sees actions.
    wait_until("both presence connections", || {
        a.bridge.status().presence_connected && b.bridge.status().presence_connected
    });
    std::thread::sleep(Duration::from_millis(300));
    let action = tether_hub::UserAction::Disconnect {
        user: Arc::from("alice"),
        code: 4000,
        reason: "bye".to_owned(),
    };
    a.brokers[1].user_action(&action, &mut node::Cx(1));
    match b.next(0) {
        HubMessage::Control(tether_hub::ControlMessage::Relay(relayed)) => assert_eq!(relayed, action),
        other => panic!("expected the relayed action, got {other:?}"),
    }
    b.expect_quiet(0);
    b.expect_quiet(1);
    a.expect_quiet(0);
    a.expect_quiet(1);
    assert!(a.brokers[0].shares_user_actions());
    // A node that comes later does not get what was done before it.
    let mut c = Node::start(&redis.url(), fast);
    wait_until("c's presence connection", || c.bridge.status().presence_connected);
    std::thread::sleep(Duration::from_millis(300));
    c.expect_quiet(0);
}

#[test]
fn with_wait_replicas_a_server_without_replicas_refuses_publishes() {
    if !available("with_wait_replicas_a_server_without_replicas_refuses_publishes") {
        return;
    }
    // One Redis with no replica: an event cannot be acknowledged as held
    // by one, so the publish is answered 503 (though it is in the stream:
    // a 503's publish may have been made).
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |c| {
        c.wait_replicas = 1;
        c.wait_timeout = Duration::from_millis(100);
    });
    let token = a.publish(0, "t", "unreplicated").unwrap();
    match a.next(0) {
        HubMessage::Published { token: t, result } if t == token => {
            assert_eq!(result, Err(HubError::BrokerUnavailable));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(node::stream_ids(&redis, "t").len(), 1);
    assert_eq!(a.bridge.status().refused, 1);
}

#[test]
fn with_wait_replicas_the_replicas_online_are_counted_for_readiness() {
    if !available("with_wait_replicas_the_replicas_online_are_counted_for_readiness") {
        return;
    }
    use tether_bus::{ReplicaCount, Replicas};
    let primary = RedisServer::start();
    let a = Node::start(&primary.url(), |c| c.wait_replicas = 1);
    let watch = a.bridge.replicas().expect("a watch, with wait_replicas");
    let counted = |online: usize, seen: bool| Replicas {
        required: 1,
        online: ReplicaCount::Online(online),
        seen,
    };
    // None online since the bridge was made: not seen.
    wait_until("no replica counted", || watch() == counted(0, false));
    assert_eq!(a.bridge.status().replicas, Some(0));
    // A replica takes its first copy: counted, and seen from then on.
    let mut replica = RedisServer::replica_of(&primary);
    wait_until("the replica counted", || watch() == counted(1, true));
    // It goes: none online, but they were once.
    replica.stop();
    wait_until("the replica gone", || watch() == counted(0, true));
    assert!(!watch().enough());
    // A bridge that requires none counts nothing.
    let b = Node::start(&primary.url(), |_| {});
    assert!(b.bridge.replicas().is_none());
}

/// `tether_bus_round_trip_seconds_count` in what a node's broker shows.
fn round_trips(metrics: &str) -> u64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tether_bus_round_trip_seconds_count "))
        .unwrap_or_else(|| panic!("no round trip count in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_round_trips_to_redis_are_timed_publishes_and_pings() {
    if !available("the_round_trips_to_redis_are_timed_publishes_and_pings") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let before = round_trips(&a.round_trips());
    // Each publish answered before the next is sent: a batch of its own,
    // one round trip each.
    for n in 1..=3 {
        a.publish_ok(0, "timed", format!("e{n}"));
    }
    let published = round_trips(&a.round_trips());
    assert!(published >= before + 3, "{before} then {published}");
    // With nothing to publish, the writer's PING is timed.
    wait_until("a PING's round trip", || {
        round_trips(&a.round_trips()) > published
    });
    let metrics = a.round_trips();
    let count = round_trips(&metrics);
    assert!(
        metrics.contains(&format!(
            "tether_bus_round_trip_seconds_bucket{{le=\"+Inf\"}} {count}\n"
        )),
        "{metrics}"
    );
}

#[test]
fn binary_events_cross_the_bus_byte_for_byte() {
    if !available("binary_events_cross_the_bus_byte_for_byte") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
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
    let mut c = Node::start(&redis.url(), |_| {});
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
