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
    // The test's topic and others of its name.
    let namespace = format!("{}* latest=on", bus::TOPIC);
    let args = [
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "e2e-test:",
        "--namespace",
        namespace.as_str(),
    ];
    let envs = [("TETHER_PUBLISH_TOKEN", TOKEN)];
    let a = Node::start(&dir, "a", &args, &envs);
    let b = Node::start(&dir, "b", &args, &envs);
    let first = publish(&a, "1-0").unwrap();
    let latest = publish(&a, "2-1").unwrap();
    // No one on b follows the topic: each of these waits for its history
    // from Redis, then starts at its latest event.
    let (status, body) = b.request("GET", &format!("/topics/{}/poll?timeout=20", bus::TOPIC), "", "");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"][0]["data"], "2-1", "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "{body}");
    let mut late = [Subscriber::sse_from_nowhere(&b), Subscriber::ws_from_nowhere(&b)];
    let mut resumed = Subscriber::sse(&b, &first);
    let then = |data: &str, id: &str| Seen::Event {
        id: id.to_owned(),
        data: data.to_owned(),
    };
    for subscriber in &mut late {
        assert_eq!(subscriber.next(), then("2-1", &latest));
    }
    let next = publish(&a, "3-1").unwrap();
    for subscriber in &mut late {
        assert_eq!(subscriber.next(), then("3-1", &next));
    }
    // Resuming from an id: exactly what follows it.
    assert_eq!(resumed.next(), then("2-1", &latest));
    assert_eq!(resumed.next(), then("3-1", &next));
    // Topics b has never followed, on a multiplexed socket and on a
    // multi-topic event stream: each subscribe from nowhere waits for
    // its topic's history, then starts at its latest event.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for topic in ["e2e.mux", "e2e.multi"] {
        for data in ["old", "current"] {
            let (status, _) = a.request("POST", &format!("/topics/{topic}"), &auth, data);
            assert_eq!(status, 200);
        }
    }
    let mut mux = tether_client::WebSocket::builder(format!("ws://{}/ws", b.addr))
        .ping_interval(None)
        .idle_timeout(Some(support::PATIENCE))
        .connect()
        .unwrap();
    mux.send_text(r#"{"type":"subscribe","topic":"e2e.mux"}"#)
        .unwrap();
    let mut next_json = || -> serde_json::Value {
        loop {
            if let tether_client::Event::Message(m) = mux.recv().unwrap() {
                return serde_json::from_str(m.as_text().unwrap()).unwrap();
            }
        }
    };
    assert_eq!(next_json()["control"], "subscribed");
    let event = next_json();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("e2e.mux"), Some("current")),
        "{event}"
    );
    let mut multi = Subscriber::sse_at(&b, "/events?topic=e2e.multi", "");
    let Seen::Event { id: cursor, data } = multi.next() else {
        panic!("not an event")
    };
    let event: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("e2e.multi"), Some("current")),
        "{event}"
    );
    assert!(cursor.starts_with('~'), "a cursor: {cursor}");
    drop((late, resumed));
    drop((a, b));
}
