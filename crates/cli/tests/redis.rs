//! Two `tether serve --app hub --redis ...` processes against a real
//! `redis-server` (a child process on a free loopback port, see
//! `crates/redis/tests/support`): events published on one node reach
//! subscribers on the other over SSE and WebSocket, in order; a client
//! whose node is killed resumes on the other node with its last id and
//! gets every event exactly once; Redis stopped and restarted mid-stream
//! is logged, shown in `/metrics`, and delivery resumes; a latest-value
//! topic new to a node starts its subscribers from nowhere at the latest
//! event, read from Redis.
//!
//! The helpers and the test bodies both buses share are in `tests/bus`.
//!
//! Skipped (with a printed reason) when `redis-server` is not installed,
//! unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "redis")]

mod bus;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::path::Path;

use bus::{Resumed, ScratchDir, Seen, Subscriber, TOKEN, events, publish, publish_next};
use serve::Node;
use support::{RedisServer, available};
use tether_client::CloseCode;

/// A `tether serve --app hub --redis URL` node of these tests.
fn start_node(redis: &RedisServer, dir: &Path, name: &str) -> Node {
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--redis-prefix", "e2e-test:"];
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

#[test]
fn two_nodes_share_topics_through_redis() {
    if !available("two_nodes_share_topics_through_redis") {
        return;
    }
    let dir = ScratchDir::new("redis");
    let mut redis = RedisServer::start();
    let a = start_node(&redis, &dir, "a");
    let mut b = start_node(&redis, &dir, "b");
    let Resumed {
        mut subscribers,
        mut published,
        ..
    } = bus::events_cross_nodes_and_survive_a_killed_node(&a, &mut b);

    // Redis goes away mid-stream: both nodes say so, refuse publishes,
    // and reconnect when it is back.
    let c = start_node(&redis, &dir, "c");
    redis.stop();
    let gone = "tether_redis_connected{connection=\"writer\"} 0\n";
    for metrics in bus::wait_for_the_bus_gone(&[&a, &c], "redis", gone) {
        assert!(
            metrics.contains("tether_redis_last_error_age_seconds "),
            "{metrics}"
        );
    }
    assert_eq!(publish(&c, "refused"), Err(503));
    redis.restart();
    for (log, metrics) in bus::wait_for_the_bus_back(&[&a, &c]) {
        assert!(log.contains("writer lost its connection"), "{log}");
        assert!(log.contains("writer reconnected"), "{log}");
        assert!(log.contains("reader reconnected"), "{log}");
        assert!(metrics.contains("tether_redis_reconnects_total 2\n"), "{metrics}");
    }
    // The new Redis has none of the old events: continuity is lost, so
    // node a ends its subscriptions (WebSocket: 1012) for clients to
    // resume, and they learn that events may be gone (a gap signal).
    let (rest, end) = subscribers[0].rest();
    assert_eq!((rest, end), (vec![], Seen::End(None)));
    let (rest, end) = subscribers[1].rest();
    assert_eq!(
        (rest, end),
        (vec![], Seen::End(Some(u16::from(CloseCode::SERVICE_RESTART))))
    );
    assert!(a.metrics().contains("tether_redis_resyncs_total 1\n"));
    let last = published.last().unwrap().0.clone();
    let mut subscribers = [Subscriber::sse(&a, &last), Subscriber::ws(&a, &last)];
    let before = published.len();
    for n in 23..=25 {
        publish_next(&c, &mut published, n);
    }
    for subscriber in &mut subscribers {
        assert_eq!(
            subscriber.next(),
            Seen::Gap {
                resume: "0-0".to_owned()
            }
        );
        let after: Vec<Seen> = (before..published.len()).map(|_| subscriber.next()).collect();
        assert_eq!(after, events(&published[before..]), "delivery resumed");
    }
    drop(subscribers);
    drop((a, b, c));
}

/// The count of the unlabelled histogram `name` on a metrics page.
fn histogram_count(metrics: &str, name: &str) -> u64 {
    let prefix = format!("{name}_count ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name}_count in\n{metrics}"))
        .parse()
        .unwrap()
}

#[test]
fn events_from_redis_are_timed_from_their_publish() {
    if !available("events_from_redis_are_timed_from_their_publish") {
        return;
    }
    let dir = ScratchDir::new("redis-lag");
    let redis = RedisServer::start();
    let a = start_node(&redis, &dir, "a");
    let b = start_node(&redis, &dir, "b");
    let lag = "tether_hub_delivery_lag_seconds";
    assert_eq!(histogram_count(&b.metrics(), lag), 0);
    // From the topic's beginning: the first event may reach b as
    // history, read when b follows the topic; once it is seen, b follows
    // it, and the second comes live.
    let mut subscriber = Subscriber::sse(&b, "0-0");
    for data in ["first", "second"] {
        let id = publish(&a, data).expect("published");
        assert_eq!(
            subscriber.next(),
            Seen::Event {
                id,
                data: data.into()
            }
        );
    }
    // The live event reached b's loop from Redis, its id the time Redis
    // took it: its lag is counted there (and each publish's round trip
    // on a).
    let metrics = b.metrics();
    assert!(histogram_count(&metrics, lag) >= 1, "{metrics}");
    let metrics = a.metrics();
    assert_eq!(
        histogram_count(&metrics, "tether_hub_publish_seconds"),
        2,
        "{metrics}"
    );
    drop((a, b));
}

#[test]
fn a_publish_key_holds_across_nodes() {
    if !available("a_publish_key_holds_across_nodes") {
        return;
    }
    let dir = ScratchDir::new("redis-keys");
    let redis = RedisServer::start();
    let a = start_node(&redis, &dir, "a");
    let b = start_node(&redis, &dir, "b");
    bus::a_publish_key_holds_across_nodes(&a, &b, "redis");
    drop((a, b));
}

#[test]
fn a_client_ahead_of_its_node_is_held_until_the_topic_reaches_its_id() {
    if !available("a_client_ahead_of_its_node_is_held_until_the_topic_reaches_its_id") {
        return;
    }
    let dir = ScratchDir::new("redis-ahead");
    let redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "e2e-test:",
        "--resume-wait",
        "1",
    ];
    let a = Node::start(&dir, "a", &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)]);
    bus::a_client_ahead_is_held_until_the_topic_reaches_its_id(&a);
    drop(a);
}

#[test]
fn a_latest_value_topic_new_to_a_node_starts_from_nowhere_at_its_latest_event() {
    if !available("a_latest_value_topic_new_to_a_node_starts_from_nowhere_at_its_latest_event") {
        return;
    }
    let dir = ScratchDir::new("redis-latest");
    let redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "e2e-test:",
        "--namespace",
        bus::LATEST_NAMESPACE,
    ];
    let envs = [("TETHER_PUBLISH_TOKEN", TOKEN)];
    let a = Node::start(&dir, "a", &args, &envs);
    let b = Node::start(&dir, "b", &args, &envs);
    bus::a_latest_value_topic_new_to_a_node_starts_at_its_latest_event(&a, &b);
    drop((a, b));
}
