//! What the presence end-to-end tests of `tether serve --app hub` over a
//! shared bus (Redis, NATS) have in common: who a node lists, tokens for
//! members, a topic's event stream as a watcher sees it, and the test
//! body, the same whichever bus carries the members. Each test file
//! brings its bus: how its server is started and the options that point
//! a node at it.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::serve::Node;
use super::support::{PATIENCE, wait_until};
use tether_sse::{Item, Parser};

/// A `tether serve --app hub --BUS URL` node (`--redis`, `--nats`) with
/// its keys under `prefix`, whose presence entries live `ttl` seconds and
/// whose members' tokens are checked with the `jwt.secret` file in `dir`.
pub(crate) fn start_node(dir: &Path, name: &str, ttl: &str, bus: &str, url: &str, prefix: &str) -> Node {
    let secret = dir.join("jwt.secret");
    let args = [
        format!("--{bus}"),
        url.to_owned(),
        format!("--{bus}-prefix"),
        prefix.to_owned(),
        format!("--{bus}-presence-ttl"),
        ttl.to_owned(),
        "--jwt-secret-file".to_owned(),
        secret.to_str().expect("a UTF-8 path").to_owned(),
    ];
    Node::start(dir, name, &args, &[])
}

/// The JWT secret the nodes of these tests verify members' tokens with.
pub(crate) const SECRET: &[u8] = b"a presence e2e secret, 32 bytes!";
/// The topic whose presence these tests watch.
pub(crate) const TOPIC: &str = "room";

/// Who `node` says is present.
pub(crate) fn members(node: &Node) -> Vec<String> {
    let (status, body) = node.request("GET", &format!("/topics/{TOPIC}/presence"), "", "");
    assert_eq!(status, 200, "{body}\n{}", node.log());
    let json: Value = serde_json::from_str(&body).unwrap();
    json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

/// A token for `subject`, signed with the nodes' secret, valid ten minutes.
pub(crate) fn token(subject: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": subject, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// An event stream of the topic.
pub(crate) struct Sse {
    stream: TcpStream,
    parser: Parser,
}

impl Sse {
    /// `GET /topics/room/events{query}`, with `token` as a bearer if any.
    pub(crate) fn open(node: &Node, query: &str, token: Option<&str>) -> Sse {
        let mut stream = TcpStream::connect(node.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "GET /topics/{TOPIC}/events{query} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{auth}\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        let deadline = Instant::now() + PATIENCE;
        while !head.ends_with(b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no response head");
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                Ok(_) => panic!("closed early"),
                Err(_) => {}
            }
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Sse {
            stream,
            parser: Parser::new(),
        }
    }

    /// The next `join` or `leave`: (type, member).
    pub(crate) fn change(&mut self) -> (String, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            while let Some(item) = self.parser.poll() {
                if let Item::Event(event) = item.expect("a well-formed stream") {
                    let data: Value = serde_json::from_str(event.data()).unwrap();
                    return (
                        event.event_type().to_owned(),
                        data["member"].as_str().unwrap().to_owned(),
                    );
                }
            }
            assert!(Instant::now() < deadline, "no presence event in time");
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the stream ended"),
                Ok(n) => self.parser.feed(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// The changes until `(kind, member)` comes.
    pub(crate) fn until(&mut self, kind: &str, member: &str) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        loop {
            let change = self.change();
            let done = change.0 == kind && change.1 == member;
            seen.push(change);
            if done {
                return seen;
            }
        }
    }
}

/// How a node answers for members that other nodes have, before it has
/// any of its own there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstAnswer {
    /// The first answer waits for what the other nodes have.
    Waits,
    /// The answer is what the other nodes have written so far (a node
    /// writes its members on its own thread: on a loaded machine, a
    /// moment after the watcher's join event).
    MayLag,
}

/// A member subscribed on one node is listed by the other and announced
/// to its watchers; one that leaves, leaves there too; when a node is
/// killed its members leave the other's list once their entries expire.
///
/// `start(dir, name, ttl)` starts a node on the bus in `dir` (which holds
/// the `jwt.secret` file) with presence entries living `ttl` seconds.
pub(crate) fn members_are_shared_and_a_killed_nodes_members_expire(
    dir: &Path,
    first_answer: FirstAnswer,
    start: impl Fn(&Path, &str, &str) -> Node,
) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("jwt.secret"), SECRET).unwrap();
    let mut a = start(dir, "a", "2");
    let b = start(dir, "b", "2");

    // A watcher on B (present itself, as a connection name).
    let mut watcher = Sse::open(&b, "?presence=1", None);
    let (kind, watcher_name) = watcher.change();
    assert_eq!(kind, "join");
    assert!(watcher_name.starts_with("conn-"), "{watcher_name}");

    // A has nobody there: its answers are what the other nodes have.
    match first_answer {
        FirstAnswer::Waits => assert_eq!(members(&a), std::slice::from_ref(&watcher_name)),
        FirstAnswer::MayLag => wait_until("A to list B's watcher", || {
            members(&a) == std::slice::from_ref(&watcher_name)
        }),
    }

    // Alice on A: B lists her and announces her.
    let alice = Sse::open(&a, "", Some(&token("alice")));
    assert_eq!(watcher.until("join", "alice"), [("join".into(), "alice".into())]);
    assert!(members(&b).contains(&"alice".to_owned()));
    // And A lists B's watcher: both ways.
    wait_until("A to list B's member", || {
        members(&a) == {
            let mut both = vec!["alice".to_owned(), watcher_name.clone()];
            both.sort();
            both
        }
    });

    // Bob comes to A and goes: B sees both.
    let bob = Sse::open(&a, "", Some(&token("bob")));
    watcher.until("join", "bob");
    drop(bob);
    assert_eq!(watcher.until("leave", "bob"), [("leave".into(), "bob".into())]);
    assert!(!members(&b).contains(&"bob".to_owned()));

    // A dies without a word: Alice leaves B's list once her entry expires
    // (2 s here; then the next read, every second).
    // Without expiry she would stay: `until` gives up after its patience.
    a.kill();
    assert_eq!(
        watcher.until("leave", "alice"),
        [("leave".into(), "alice".into())]
    );
    assert_eq!(members(&b), std::slice::from_ref(&watcher_name));
    drop(alice);
    drop(b);
    let _ = std::fs::remove_dir_all(dir);
}
