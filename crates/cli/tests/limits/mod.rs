//! What the end-to-end tests of limits per user across
//! `tether serve --app hub` processes on a shared bus (Redis, NATS) have
//! in common: the nodes' options, the tokens, event streams opened with
//! them, and the test bodies, the same whichever bus the nodes share.
//! Each test file brings its bus: how its server is started and the
//! options that point a node at it.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::serve::Node;
use super::support::{PATIENCE, wait_until};

/// The JWT secret the nodes verify tokens with.
pub(crate) const SECRET: &[u8] = b"a limits e2e test secret, 32 by!";
/// The publish token the nodes are started with (it may revoke).
pub(crate) const TOKEN: &str = "limits-e2e-publish-token";

/// A node on `bus` (`redis` or `nats`) at `url` with `prefix`, letting
/// each subject have two connections.
pub(crate) fn start_node(dir: &Path, name: &str, bus: &str, url: &str, prefix: &str) -> Node {
    let secret = dir.join("jwt.secret");
    let args = [
        format!("--{bus}"),
        url.to_owned(),
        format!("--{bus}-prefix"),
        prefix.to_owned(),
        "--jwt-secret-file".to_owned(),
        secret.to_str().expect("a UTF-8 path").to_owned(),
        "--publish-token".to_owned(),
        TOKEN.to_owned(),
        "--max-connections-per-subject".to_owned(),
        "2".to_owned(),
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

/// A fresh directory for a test's nodes, with the JWT secret in it.
fn test_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("jwt.secret"), SECRET).unwrap();
}

/// `--max-connections-per-subject` counts a subject's connections on
/// every node (each node's counts as last shared, every half second):
/// node A refuses alice a third connection while she has two on B, and
/// lets her in again once they ended, or once B was killed (`kill -9`)
/// and its counts expired. Nodes are started by `start(dir, name)`.
pub(crate) fn a_subjects_connections_are_counted_over_the_cluster(
    dir: &Path,
    start: impl Fn(&Path, &str) -> Node,
) {
    test_dir(dir);
    let a = start(dir, "a");
    let mut b = start(dir, "b");
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

    // Two on B again (once B no longer counts those A let in above),
    // and B dies with them: its counts expire.
    let mut on_b: Vec<Sse> = Vec::new();
    wait_until("B to let alice have two again", || {
        on_b = (0..2).map(|_| Sse::open(&b, &alice)).collect();
        on_b.iter().all(|s| s.status == 200)
    });
    wait_until("A to count alice's connections on B again", || {
        Sse::open(&a, &alice).status == 429
    });
    b.kill();
    wait_until("A to forget the connections of B, killed", || {
        Sse::open(&a, &alice).status == 200
    });
    drop(on_b);
    let _ = std::fs::remove_dir_all(dir);
}

/// A token revoked on node A ends its connections on node B and is
/// refused there, the subject's other token still good; a node started
/// after the revocation reads it from the bus.
pub(crate) fn a_revocation_reaches_every_node_and_nodes_started_after_it(
    dir: &Path,
    start: impl Fn(&Path, &str) -> Node,
) {
    test_dir(dir);
    let a = start(dir, "a");
    let b = start(dir, "b");
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

    // A node started after the revocation reads it from the bus.
    let c = start(dir, "c");
    wait_until("C to read the revocations", || {
        c.request("POST", "/topics/news", &bearer(&revoked), "x").0 == 401
    });
    assert_eq!(c.request("POST", "/topics/news", &bearer(&kept), "x").0, 200);
    let (status, body) = c.request("GET", "/api/revoked", &bearer(TOKEN), "");
    assert_eq!(status, 200);
    assert!(body.contains("\"jti\":\"c-1\""), "{body}");
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(dir);
}

/// A node reads the values that nodes of the release before wrote to the
/// bus (a rolling upgrade): the caller wrote, in that release's form,
/// that another node holds two connections of `alice`, and that the
/// token `d-1` is revoked. The node refuses alice a connection and the
/// token, and lets bob and another token in.
pub(crate) fn values_of_the_release_before_are_read(dir: &Path, start: impl Fn(&Path, &str) -> Node) {
    test_dir(dir);
    let a = start(dir, "a");
    wait_until("A to count alice's connections on the old node", || {
        Sse::open(&a, &token("alice", "a-1")).status == 429
    });
    assert_eq!(Sse::open(&a, &token("bob", "b-1")).status, 200);
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    wait_until("A to read the old node's revocation", || {
        a.request("POST", "/topics/news", &bearer(&token("dave", "d-1")), "x")
            .0
            == 401
    });
    assert_eq!(
        a.request("POST", "/topics/news", &bearer(&token("dave", "d-2")), "x")
            .0,
        200
    );
    drop(a);
    let _ = std::fs::remove_dir_all(dir);
}
