//! Two `tether serve --app hub --redis redis+cluster://...` processes
//! against a real Redis Cluster of three primaries and three replicas
//! (child processes on free loopback ports, see
//! `crates/redis/tests/support/cluster.rs`): events published on one node
//! to topics served by every primary reach event-stream subscribers on
//! the other, in order, with the ids the publishers got; a publish key
//! holds across the nodes; a subscriber that moves to the other node with
//! its last id gets exactly the rest; no command spans two slots.
//!
//! Skipped (with a printed reason) when `redis-server` or `redis-cli` is
//! not installed, unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "redis")]

mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use serve::Node;
use support::cluster::{self, RedisCluster};
use support::{PATIENCE, wait_until};
use tether_sse::{Item as SseItem, Parser};

const TOKEN: &str = "e2e-token";
const PREFIX: &str = "e2e-cluster:";

/// A `tether serve --app hub --redis redis+cluster://...` node.
fn start_node(cluster: &RedisCluster, dir: &Path, name: &str) -> Node {
    let url = cluster.url();
    let args = ["--redis", url.as_str(), "--redis-prefix", PREFIX];
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

/// Publishes over HTTP (with a publish key, if any): the answer's JSON.
fn publish(node: &Node, topic: &str, data: &str, key: Option<&str>) -> serde_json::Value {
    let mut headers = format!("Authorization: Bearer {TOKEN}\r\n");
    if let Some(key) = key {
        headers.push_str(&format!("Tether-Publish-Id: {key}\r\n"));
    }
    let (status, body) = node.request("POST", &format!("/topics/{topic}"), &headers, data);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// An event-stream subscriber of one topic.
struct Subscriber {
    stream: TcpStream,
    parser: Parser,
}

impl Subscriber {
    fn new(node: &Node, topic: &str, last_id: Option<&str>) -> Subscriber {
        let mut stream = TcpStream::connect(node.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let last = last_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let request = format!(
            "GET /topics/{topic}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{last}\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                stream.read(&mut byte).expect("a response head"),
                1,
                "closed early"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Subscriber {
            stream,
            parser: Parser::new(),
        }
    }

    /// The next event: its id and data.
    fn next(&mut self) -> (String, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.parser.poll() {
                Some(Ok(SseItem::Event(event))) => {
                    assert_ne!(event.event_type(), "gap", "no gap expected");
                    return (event.last_event_id().to_owned(), event.data().to_owned());
                }
                Some(Ok(SseItem::Retry(_))) => continue,
                Some(Err(e)) => panic!("a malformed event stream: {e:?}"),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within {PATIENCE:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the event stream ended"),
                Ok(n) => self.parser.feed(&buf[..n]),
                Err(e) => panic!("reading the event stream: {e}"),
            }
        }
    }
}

/// The key of `topic`'s stream, as the nodes name it (16 partitions, the
/// default).
fn stream_key(topic: &str) -> String {
    let mut config = tether_redis::RedisConfig::new("redis+cluster://127.0.0.1:1");
    config.prefix = PREFIX.to_owned();
    tether_redis::RedisBridge::new(config).unwrap().stream_key(topic)
}

/// One topic served by each primary.
fn topic_per_primary(cluster: &RedisCluster) -> Vec<String> {
    let mut by_primary: HashMap<u16, String> = HashMap::new();
    for n in 0..1000 {
        let topic = format!("news{n}");
        let primary = cluster.primary_of(cluster.slot(&stream_key(&topic)));
        by_primary.entry(primary).or_insert(topic);
        if by_primary.len() == 3 {
            break;
        }
    }
    let mut topics: Vec<String> = by_primary.into_values().collect();
    topics.sort();
    assert_eq!(topics.len(), 3);
    topics
}

#[test]
fn two_nodes_share_topics_through_a_redis_cluster() {
    if !cluster::available("two_nodes_share_topics_through_a_redis_cluster") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tether-e2e-redis-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = RedisCluster::start();
    let topics = topic_per_primary(&cluster);
    let a = start_node(&cluster, &dir, "a");
    let b = start_node(&cluster, &dir, "b");

    let mut subscribers: Vec<Subscriber> = topics.iter().map(|t| Subscriber::new(&b, t, None)).collect();
    wait_until("node b to follow the topics", || {
        b.request("GET", "/metrics", "", "")
            .1
            .contains("tether_redis_followed_topics 3\n")
    });
    let mut published: Vec<Vec<(String, String)>> = vec![Vec::new(); topics.len()];
    for n in 1..=4 {
        for (i, topic) in topics.iter().enumerate() {
            let data = format!("{topic} {n}");
            let answer = publish(&a, topic, &data, None);
            published[i].push((answer["id"].as_str().unwrap().to_owned(), data));
        }
    }
    for (i, subscriber) in subscribers.iter_mut().enumerate() {
        let seen: Vec<(String, String)> = (0..4).map(|_| subscriber.next()).collect();
        assert_eq!(seen, published[i], "{}", topics[i]);
    }

    // A publish key holds across the nodes.
    let first = publish(&a, &topics[1], "paid", Some("order-42"));
    let again = publish(&b, &topics[1], "paid", Some("order-42"));
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    assert_eq!(subscribers[1].next().0, first["id"].as_str().unwrap());

    // A subscriber moves to node a (which never followed the topic) with
    // its last id: the rest comes from the stream, then new events.
    let mut moved = Subscriber::new(&a, &topics[2], Some(&published[2][1].0));
    assert_eq!(moved.next(), published[2][2]);
    assert_eq!(moved.next(), published[2][3]);
    let answer = publish(&b, &topics[2], "after the move", None);
    assert_eq!(
        moved.next(),
        (
            answer["id"].as_str().unwrap().to_owned(),
            "after the move".to_owned()
        )
    );

    // Presence across the cluster: node a lists node b's subscriber of
    // each topic (one topic per primary), by its connection name.
    for topic in &topics[..2] {
        wait_until(&format!("node a to list node b's member of {topic}"), || {
            let (status, body) = a.request("GET", &format!("/topics/{topic}/presence"), "", "");
            assert_eq!(status, 200, "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            let members = json["members"].as_array().unwrap();
            members.len() == 1 && members[0].as_str().unwrap().starts_with("conn-")
        });
    }

    assert_eq!(
        cluster.error_counts().get("CROSSSLOT"),
        None,
        "no command spans two slots"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
