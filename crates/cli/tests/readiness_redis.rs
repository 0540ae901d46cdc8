//! Readiness that means what it says, against a real `redis-server`
//! (and a second one as its replica, `--replicaof`):
//!
//! - a node whose bus goes away (Redis paused: its connections get no
//!   answer) stays ready (`/readyz` 200, the bus reported as away, 503
//!   only when a probe asks `?shared=1`): its subscribers keep their
//!   streams, a new one resumes from the node's backlog, publishes are
//!   answered 503 with `Retry-After`; Redis back, the same streams get
//!   what is published next;
//! - a node that has not reached its bus since it started is not ready;
//! - with `--redis-wait-replicas 1`, `/readyz` answers 503 (naming the
//!   replicas) while the primary has had no replica online since the node
//!   started, 200 once one has its copy; when it goes, every node on the
//!   primary lacks it at once, so it is reported as shared (503 with
//!   `?shared=1`), while a node started then is not ready; a node on the
//!   same Redis that requires none stays ready throughout.
//!
//! Every wait is for a state, bounded by a patience that only catches a
//! hang. Skipped (with a printed reason) when `redis-server` is not
//! installed, unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "redis")]

mod bus;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bus::{ScratchDir, Seen, Subscriber, TOKEN, TOPIC, publish, publish_next};
use serve::Node;
use serve::process::serve as serve_process;
use support::{RedisServer, available};

/// How long a state may take to come: a paused Redis is noticed after
/// the bridge's command timeout (5 s) and reconnected to with a backoff
/// of up to 5 s; this only catches a hang.
const PATIENCE: Duration = Duration::from_secs(40);

/// One request on its own connection: the status, the head (lower
/// case) and the body.
fn ask(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// `GET /readyz` (with `query`): the status, the head and the body.
fn readyz(addr: SocketAddr, query: &str) -> (u16, String, String) {
    ask(addr, "GET", &format!("/readyz{query}"), "", "")
}

/// Asks `/readyz` until its body holds `line` (a state to reach, not a
/// time to measure): the status and body then.
fn wait_for_readyz_line(addr: SocketAddr, line: &str) -> (u16, String, String) {
    let start = Instant::now();
    loop {
        let answer = readyz(addr, "");
        if answer.2.lines().any(|l| l == line) {
            return answer;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "/readyz never said {line:?}; last: {} {}",
            answer.0,
            answer.2
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node of these tests on `redis`, with `more` options.
fn start_node(dir: &ScratchDir, name: &str, redis: &RedisServer, more: &[&str]) -> Node {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str(), "--redis-prefix", "readiness-test:"];
    args.extend_from_slice(more);
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

const BUS_UP: &str = "[+] bus: up (redis)";

#[test]
fn a_node_whose_bus_is_away_stays_ready_for_its_subscribers() {
    if !available("a_node_whose_bus_is_away_stays_ready_for_its_subscribers") {
        return;
    }
    let dir = ScratchDir::new("readiness-away");
    let redis = RedisServer::start();
    // One event loop, which follows the topic from the first subscriber
    // on: a subscriber resuming on it is served from that loop's backlog.
    // (On a loop that does not follow the topic yet, a resuming
    // subscriber is held until the bus is back, then gets what it
    // missed.)
    let node = start_node(&dir, "a", &redis, &["--threads", "1"]);
    let (status, _, body) = wait_for_readyz_line(node.addr, BUS_UP);
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready\n[+] draining: no\n"), "{body}");

    let mut streaming = Subscriber::sse(&node, "0-0");
    let mut published = Vec::new();
    for n in 1..=2 {
        publish_next(&node, &mut published, n);
    }
    for (id, data) in &published {
        let expected = Seen::Event {
            id: id.clone(),
            data: data.clone(),
        };
        assert_eq!(streaming.next(), expected);
    }

    // Redis paused: no answer on any of the node's connections, which
    // the node notices by its timeouts. Then it is away, and the node
    // stays in rotation: 200, the bus named as away (not counted).
    redis.pause();
    let away = wait_for_away(node.addr);
    assert_eq!(away.0, 200, "{}", away.2);
    assert!(away.2.starts_with("ready\n"), "{}", away.2);
    // A load balancer that has somewhere else to go asks for the shared
    // conditions to count.
    let (status, head, body) = readyz(node.addr, "?shared=1");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: bus\n"), "{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    // Publishes are refused, with when to ask again.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, head, body) = ask(node.addr, "POST", &format!("/topics/{TOPIC}"), &auth, "refused");
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("\r\nretry-after: "), "{head}");
    // A subscriber resuming here is served from the node's backlog.
    let mut resumed = Subscriber::sse(&node, &published[0].0);
    assert_eq!(
        resumed.next(),
        Seen::Event {
            id: published[1].0.clone(),
            data: published[1].1.clone(),
        }
    );
    assert_eq!(ask(node.addr, "GET", "/healthz", "", "").0, 200);

    // Redis back, with what it held: the node reconnects, and both
    // streams (the one kept open through the outage and the resumed
    // one) get what is published next, nothing missed or repeated.
    redis.resume();
    let (status, _, body) = wait_for_readyz_line(node.addr, BUS_UP);
    assert_eq!(status, 200, "{body}");
    let next = publish_until_taken(&node, "after");
    let expected = Seen::Event {
        id: next,
        data: "after".to_owned(),
    };
    assert_eq!(streaming.next(), expected);
    assert_eq!(resumed.next(), expected);
}

/// Asks `/readyz` until it reports the bus away: the answer then.
fn wait_for_away(addr: SocketAddr) -> (u16, String, String) {
    let start = Instant::now();
    loop {
        let answer = readyz(addr, "");
        if answer.2.lines().any(|l| l.starts_with("[~] bus: away (redis)")) {
            return answer;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the bus never reported away; last: {} {}",
            answer.0,
            answer.2
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Publishes `data` until it is taken (the writer may still be
/// reconnecting when the reader is back): its id.
fn publish_until_taken(node: &Node, data: &str) -> String {
    let start = Instant::now();
    loop {
        match publish(node, data) {
            Ok(id) => return id,
            Err(503) if start.elapsed() < PATIENCE => std::thread::sleep(Duration::from_millis(100)),
            Err(status) => panic!("publish: {status}"),
        }
    }
}

#[test]
fn a_node_that_has_not_reached_its_bus_is_not_ready() {
    if !available("a_node_that_has_not_reached_its_bus_is_not_ready") {
        return;
    }
    let mut redis = RedisServer::start();
    redis.stop();
    let url = redis.url();
    let args = [
        "--app",
        "hub",
        "--port",
        "0",
        "--publish-token",
        TOKEN,
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "readiness-test:",
    ];
    let (_node, addr, _) = serve_process(&args, &[], None);
    let (status, head, body) = readyz(addr, "");
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    assert!(body.starts_with("not ready: bus\n"), "{body}");
    // With what the last attempt said, once one has failed.
    assert!(
        body.lines().any(
            |l| l == "[-] bus: connecting (redis): not reached since this node started"
                || (l.starts_with(
                    "[-] bus: connecting (redis): not reached since this node started; last error: "
                ) && l.contains(" cannot connect to redis://127.0.0.1:"))
        ),
        "{body}"
    );
    assert_eq!(ask(addr, "GET", "/healthz", "", "").0, 200, "alive all the same");
    redis.restart();
    let (status, _, body) = wait_for_readyz_line(addr, BUS_UP);
    assert_eq!(status, 200, "{body}");
}

const NEVER_REPLICATED: &str = "[-] replicas: 0 online, 1 required: publishes are refused (503) until they are (not online since this node started)";

#[test]
fn readiness_requires_the_replicas_the_node_waits_for() {
    if !available("readiness_requires_the_replicas_the_node_waits_for") {
        return;
    }
    let dir = ScratchDir::new("readiness-replicas");
    let primary = RedisServer::start();
    let wait_for_one = ["--redis-wait-replicas", "1"];
    let node = start_node(&dir, "a", &primary, &wait_for_one);
    // The bus is up, the replica this node requires is not, and has not
    // been since it started: 503, and why.
    let (status, head, body) = wait_for_readyz_line(node.addr, NEVER_REPLICATED);
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    assert!(body.starts_with("not ready: replicas\n"), "{body}");
    assert!(body.contains(&format!("\n{BUS_UP}\n")), "{body}");
    assert!(
        node.log().contains(
            "redis: 0 replicas online, 1 required (--redis-wait-replicas): \
             publishes are refused (503), and /readyz answers 503 until they are"
        ),
        "{}",
        node.log()
    );
    // The same Redis serves a node that requires no replica: that one is
    // ready, since what keeps the first out is its own configuration.
    let other = start_node(&dir, "b", &primary, &[]);
    let (status, _, body) = wait_for_readyz_line(other.addr, BUS_UP);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("replicas"), "{body}");

    // A replica takes its copy: ready, and publishes are acknowledged.
    let mut replica = RedisServer::replica_of(&primary);
    let (status, _, body) = wait_for_readyz_line(node.addr, "[+] replicas: 1 online, 1 required");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(publish(&node, "replicated").is_ok());
    assert!(node.metrics().contains("\ntether_redis_replicas 1\n"));

    // The replica goes: every node on this Redis lacks it at once, as
    // when the bus goes away. The node the replica was online for stays
    // in rotation (reported, not counted), and a probe that asks for the
    // shared conditions gets 503.
    replica.stop();
    let lost = "[~] replicas: 0 online, 1 required: publishes are refused (503) until they are";
    let (status, _, body) = wait_for_readyz_line(node.addr, lost);
    assert_eq!(status, 200, "{body}");
    let (status, head, body) = readyz(node.addr, "?shared=1");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: replicas\n"), "{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    assert_eq!(publish(&node, "unreplicated"), Err(503));
    // A node that starts now has never had its replica: not ready, while
    // the first is.
    let late = start_node(&dir, "c", &primary, &wait_for_one);
    let (status, _, body) = wait_for_readyz_line(late.addr, NEVER_REPLICATED);
    assert_eq!(status, 503, "{body}");
    assert_eq!(readyz(node.addr, "").0, 200);
}
