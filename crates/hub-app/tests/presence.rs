//! Presence end to end, through sockets: subscribers present by their
//! token's subject (or a connection name), `GET /topics/NAME/presence`,
//! `join` and `leave` events to `?presence=1` subscribers over SSE and
//! WebSocket, across two event loops; and who may read it.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, SseClient, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{CloseCode, Cluster, Handshake};

use support::http::bearer;
use support::jwt::{sign, unix_now};
use support::running::Running;

const SECRET: &[u8] = b"a presence test secret, 32 bytes";

/// A token for `subject` that may subscribe to `subscribe`.
fn jwt(subject: &str, subscribe: &[&str]) -> String {
    sign(
        SECRET,
        &json!({ "sub": subject, "exp": unix_now() + 600, "tether": { "sub": subscribe } }),
    )
}

/// The hub on `loops` event loops, tokens verified, `room.*` private.
struct Server {
    addr: SocketAddr,
    _running: Running,
}

impl Server {
    fn start(loops: usize) -> Server {
        let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
        auth.private = Private::new(["room.*"]).unwrap();
        let mut settings = HubSettings::default();
        settings.auth = Some(auth);
        let shared = HubShared::new(settings, loops);
        let cluster = Cluster::bind(config(), Handshake::new(), loops, |i| shared.app(i)).expect("bind");
        let (addr, running) = Running::cluster(cluster);
        Server {
            addr,
            _running: running,
        }
    }

    /// `GET /topics/TOPIC/presence` with these header lines: the status
    /// and the JSON body (`null` if not JSON).
    fn presence(&self, topic: &str, headers: &str) -> (u16, Value) {
        let mut conn = HttpConn::connect(self.addr);
        conn.request(
            "GET",
            &format!("/topics/{topic}/presence"),
            &format!("{headers}Connection: close\r\n"),
        );
        let response = conn.response();
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    fn members(&self, topic: &str, headers: &str) -> Vec<String> {
        let (status, body) = self.presence(topic, headers);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["topic"], topic);
        let members: Vec<String> = body["members"]
            .as_array()
            .expect("a list of members")
            .iter()
            .map(|m| m.as_str().expect("a name").to_owned())
            .collect();
        assert_eq!(body["count"], members.len());
        members
    }

    fn status(&self, method: &str, target: &str, headers: &str) -> u16 {
        let mut conn = HttpConn::connect(self.addr);
        conn.request(method, target, &format!("{headers}Connection: close\r\n"));
        conn.response().status
    }
}

/// A topic named `PREFIX-N` that loop `owner` of `loops` sequences.
fn topic_on(prefix: &str, owner: usize, loops: usize) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|t| tether_hub::sequencer_of(t, loops) == owner)
        .unwrap()
}

/// The next join or leave from an SSE watcher: (type, member).
fn sse_change(watcher: &mut SseClient) -> (String, String) {
    let event = watcher.next_event();
    let data: Value = serde_json::from_str(event.data()).expect("JSON data");
    // No topic events were published: an id could only be its own.
    assert_eq!(event.last_event_id(), "", "presence events carry no id");
    (
        event.event_type().to_owned(),
        data["member"].as_str().unwrap().to_owned(),
    )
}

/// Waits until `check` holds (a guard against a hang, not a measure: half a minute).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn members_join_are_listed_and_leave_across_two_loops() {
    let server = Server::start(2);
    // One topic per sequencer; connections land on either loop, so over
    // the rounds subscribers, readers and sequencers are on different
    // loops as well as on the same.
    for owner in 0..2 {
        let topic = topic_on("lobby", owner, 2);
        let mut watcher = SseClient::connect(server.addr, &format!("/topics/{topic}/events?presence=1"), "");
        assert_eq!(watcher.response.status, 200);
        // The watcher is a member too (an anonymous one), and hears itself.
        let (kind, me) = sse_change(&mut watcher);
        assert_eq!(kind, "join");
        assert!(me.starts_with("conn-"), "{me}");
        assert_eq!(server.members(&topic, ""), std::slice::from_ref(&me));
        for round in 0..6 {
            let name = format!("user{round}");
            let token = jwt(&name, &[]);
            let sub = SseClient::connect(server.addr, &format!("/topics/{topic}/events"), &bearer(&token));
            assert_eq!(sub.response.status, 200);
            // Right after the subscribe returned, from any loop.
            let members = server.members(&topic, "");
            assert!(members.contains(&name), "round {round}: {members:?}");
            assert_eq!(sse_change(&mut watcher), ("join".to_owned(), name.clone()));
            drop(sub);
            assert_eq!(sse_change(&mut watcher), ("leave".to_owned(), name.clone()));
            assert_eq!(
                server.members(&topic, ""),
                std::slice::from_ref(&me),
                "round {round}"
            );
        }
    }
}

#[test]
fn a_member_with_two_connections_joins_once_and_leaves_with_the_last() {
    let server = Server::start(2);
    let topic = "chat.two-tabs";
    let mut watcher = WsClient::connect(server.addr, &format!("/topics/{topic}/ws?presence=1"));
    let own: Value = serde_json::from_str(&watcher.recv_text()).unwrap();
    assert_eq!(own["event"], "join");
    assert_eq!(own["topic"], topic);
    assert!(own.get("id").is_none(), "{own}");
    let me = own["member"].as_str().unwrap().to_owned();
    let token = jwt("alice", &[]);
    let first = SseClient::connect(server.addr, &format!("/topics/{topic}/events"), &bearer(&token));
    let joined: Value = serde_json::from_str(&watcher.recv_text()).unwrap();
    assert_eq!(
        joined,
        json!({"topic": topic, "event": "join", "member": "alice"})
    );
    // Her second tab, over WebSocket, with her token as its first
    // message: no second join, listed once.
    let mut second = WsClient::connect(server.addr, &format!("/topics/{topic}/ws?auth=1"));
    second.send_text(&format!("{{\"type\":\"auth\",\"token\":\"{token}\"}}"));
    let ok: Value = serde_json::from_str(&second.recv_text()).unwrap();
    assert_eq!(ok["type"], "auth-ok");
    drop(
        WsClient::connect(server.addr, &format!("/topics/{topic}/ws")), // someone passing by
    );
    let mut sorted = vec!["alice".to_owned(), me.clone()];
    sorted.sort();
    eventually("alice listed once beside the watcher", || {
        server.members(topic, "") == sorted
    });
    second.close(CloseCode::NORMAL, "");
    drop(second);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(server.members(topic, ""), sorted, "one tab is still open");
    drop(first);
    // The passer-by's join and leave, then Alice's leave; nothing else.
    let mut seen = Vec::new();
    loop {
        let change: Value = serde_json::from_str(&watcher.recv_text()).unwrap();
        let entry = (
            change["event"].as_str().unwrap().to_owned(),
            change["member"].as_str().unwrap().to_owned(),
        );
        let done = entry == ("leave".to_owned(), "alice".to_owned());
        seen.push(entry);
        if done {
            break;
        }
    }
    assert_eq!(seen.iter().filter(|(_, m)| m == "alice").count(), 1, "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(server.members(topic, ""), [me]);
}

#[test]
fn reading_presence_needs_the_topics_read_right() {
    let server = Server::start(1);
    let topic = "room.7";
    let alice = jwt("alice", &["room.7"]);
    let mallory = jwt("mallory", &["room.8"]);
    let sub = SseClient::connect(server.addr, &format!("/topics/{topic}/events"), &bearer(&alice));
    assert_eq!(sub.response.status, 200);
    assert_eq!(server.presence(topic, "").0, 401);
    assert_eq!(server.presence(topic, &bearer(&mallory)).0, 403);
    assert_eq!(server.presence(topic, &bearer("not.a.token")).0, 401);
    eventually("alice is listed to whoever may read the topic", || {
        server.members(topic, &bearer(&alice)) == ["alice"]
    });
    // Nor may anyone else watch its joins and leaves.
    let refused = SseClient::connect(
        server.addr,
        &format!("/topics/{topic}/events?presence=1"),
        &bearer(&mallory),
    );
    assert_eq!(refused.response.status, 403);
    // Open topics: anyone.
    assert_eq!(server.presence("chat.open", "").0, 200);
    // Only GET and HEAD; join and leave events only on streams that can
    // carry them.
    assert_eq!(server.status("POST", "/topics/chat.open/presence", ""), 405);
    assert_eq!(
        server.status("GET", "/topics/chat.open/poll?presence=1&timeout=0", ""),
        400
    );
    assert_eq!(
        server.status("GET", "/topics/chat.open/ws?presence=1&format=raw", ""),
        400
    );
}

#[test]
fn an_anonymous_subscriber_is_present_by_a_connection_name() {
    let server = Server::start(2);
    let topic = "chat.anonymous";
    let a = SseClient::connect(server.addr, &format!("/topics/{topic}/events"), "");
    let b = WsClient::connect(server.addr, &format!("/topics/{topic}/ws"));
    let mut members = Vec::new();
    eventually("two anonymous members", || {
        members = server.members(topic, "");
        members.len() == 2
    });
    assert!(members.iter().all(|m| m.starts_with("conn-")), "{members:?}");
    assert_ne!(members[0], members[1]);
    drop((a, b));
    eventually("nobody left", || server.members(topic, "").is_empty());
}
