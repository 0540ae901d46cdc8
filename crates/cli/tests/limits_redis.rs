//! Limits per user across `tether serve --app hub --redis ...` processes
//! on one real `redis-server`: `--max-connections-per-subject` counts a
//! subject's connections on every node (each node's counts as last
//! shared, every half second), and a token revoked on one node ends its
//! connections on another, and is refused by a node started after the
//! revocation.
//!
//! Skipped (with a printed reason) when `redis-server` is not installed,
//! unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "redis")]

mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use serve::Node;
use support::{PATIENCE, RedisServer, available, wait_until};

const SECRET: &[u8] = b"a limits e2e test secret, 32 by!";
const TOKEN: &str = "limits-e2e-publish-token";

fn start_node(redis: &RedisServer, dir: &Path, name: &str) -> Node {
    let secret = dir.join("jwt.secret");
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "limits-test:",
        "--jwt-secret-file",
        secret.to_str().expect("a UTF-8 path"),
        "--publish-token",
        TOKEN,
        "--max-connections-per-subject",
        "2",
    ];
    Node::start(dir, name, &args, &[])
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(subject: &str, jti: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": subject, "jti": jti, "iat": unix_now(), "exp": unix_now() + 600,
                 "tether": { "sub": ["*"], "pub": ["news"] } }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// An event stream of `news` with `token`, and the status of its answer.
struct Sse {
    stream: TcpStream,
    status: u16,
    body: Vec<u8>,
}

impl Sse {
    fn open(node: &Node, token: &str) -> Sse {
        let mut stream = TcpStream::connect(node.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let request = format!(
            "GET /topics/news/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).expect("the response head in time");
            assert_eq!(n, 1, "closed early: {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
        Sse {
            stream,
            status,
            body: Vec::new(),
        }
    }

    /// Reads to the end of the stream (a read timing out fails the test).
    fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "the stream did not end");
            match self.stream.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&self.body).into_owned(),
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(e) => panic!("the stream did not end: {e}"),
            }
        }
    }
}

#[test]
fn a_subjects_connections_are_counted_over_the_cluster() {
    if !available("a_subjects_connections_are_counted_over_the_cluster") {
        return;
    }
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tether-e2e-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwt.secret"), SECRET).unwrap();
    let a = start_node(&redis, &dir, "a");
    let b = start_node(&redis, &dir, "b");
    let alice = token("alice", "a-1");
    // Alice has her two on B.
    let on_b: Vec<Sse> = (0..2).map(|_| Sse::open(&b, &alice)).collect();
    assert!(on_b.iter().all(|s| s.status == 200));
    // Once A has heard of them, it refuses her a third (one it let in
    // before that is closed again at once).
    wait_until("A to count alice's connections on B", || {
        Sse::open(&a, &alice).status == 429
    });
    // Bob is let in on A.
    assert_eq!(Sse::open(&a, &token("bob", "b-1")).status, 200);
    // Her connections on B end: A lets her in again.
    drop(on_b);
    wait_until("A to hear that alice's connections on B ended", || {
        Sse::open(&a, &alice).status == 200
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_revocation_reaches_every_node_and_nodes_started_after_it() {
    if !available("a_revocation_reaches_every_node_and_nodes_started_after_it") {
        return;
    }
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tether-e2e-revoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwt.secret"), SECRET).unwrap();
    let a = start_node(&redis, &dir, "a");
    let b = start_node(&redis, &dir, "b");
    let revoked = token("carol", "c-1");
    let kept = token("carol", "c-2");
    let mut on_b = Sse::open(&b, &revoked);
    assert_eq!(on_b.status, 200);
    let mut other = Sse::open(&b, &kept);
    assert_eq!(other.status, 200);

    let (status, body) = a.request(
        "POST",
        "/api/revoke",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        &json!({"jti": "c-1"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    // B ends the stream open with it, and refuses it from then on.
    let rest = on_b.read_to_end();
    assert!(rest.contains("event: auth-revoked"), "{rest}\n{}", b.log());
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    assert_eq!(b.request("POST", "/topics/news", &bearer(&revoked), "x").0, 401);
    // The subject's other token is still good there.
    assert_eq!(b.request("POST", "/topics/news", &bearer(&kept), "x").0, 200);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: x") {
        let n = other.stream.read(&mut buf).expect("the event in time");
        assert!(n > 0, "the stream ended: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }

    // A node started after the revocation reads it from Redis.
    let c = start_node(&redis, &dir, "c");
    wait_until("C to read the revocations", || {
        c.request("POST", "/topics/news", &bearer(&revoked), "x").0 == 401
    });
    assert_eq!(c.request("POST", "/topics/news", &bearer(&kept), "x").0, 200);
    let (status, body) = c.request("GET", "/api/revoked", &bearer(TOKEN), "");
    assert_eq!(status, 200);
    assert!(body.contains("\"jti\":\"c-1\""), "{body}");
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}
