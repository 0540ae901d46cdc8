//! The server API's presence, topics and user actions end to end, through
//! sockets, on two event loops: `GET /api/presence`, `POST
//! /api/presence/counts`, `GET /api/topics` and `/api/topics/info`, and
//! `POST /api/disconnect`, `/api/unsubscribe` and `/api/refresh` reaching
//! a user's WebSockets, event streams and long polls on both loops.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{SseClient, TestServer, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::Handshake;

use support::announcing::Announcing;
use support::http::{Api, bearer, json, request};
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a users API test secret, 32 byte";
const TOKEN: &str = "users-publish-token";
const LOOPS: u64 = 2;

struct Server {
    addr: SocketAddr,
    _running: TestServer,
}

impl Server {
    /// The hub on two loops: the publish token, tokens verified (in the
    /// query too; no leeway), `room.*` private.
    fn start() -> Server {
        let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
        auth.private = Private::new(["room.*"]).unwrap();
        auth.query = true;
        auth.validation = Validation::new().leeway(0);
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.auth = Some(auth);
        let shared = HubShared::new(settings, LOOPS as usize);
        let running = TestServer::start_loops(config(), Handshake::new(), LOOPS as usize, |i| {
            Announcing(shared.app(i))
        });
        Server {
            addr: running.addr,
            _running: running,
        }
    }

    fn publish(&self, topic: &str, data: &str) {
        let response = self.request(
            "POST",
            &format!("/topics/{topic}"),
            &bearer(TOKEN),
            data.as_bytes(),
        );
        assert_eq!(response.status, 200);
    }

    /// A WebSocket subscriber of `topic` with `token`, and its loop.
    fn ws(&self, topic: &str, token: &str) -> (WsClient, u64) {
        let mut client = WsClient::connect(self.addr, &format!("/topics/{topic}/ws?token={token}"));
        let hello = serde_json::from_str::<Value>(&client.recv_text()).unwrap();
        (client, hello["loop"].as_u64().expect("the loop announcement"))
    }

    /// An event-stream subscriber of `topic` with `token`, and its loop.
    fn sse(&self, topic: &str, token: &str) -> (SseClient, u64) {
        let mut client = SseClient::connect(self.addr, &format!("/topics/{topic}/events"), &bearer(token));
        assert_eq!(client.response.status, 200);
        let hello = client.next_event();
        assert_eq!(hello.event_type(), "loop");
        (client, hello.data().parse().unwrap())
    }
}

impl Api for Server {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn token(&self) -> &str {
        TOKEN
    }
}

/// A token for `sub`, expiring at `exp`, granting these topics to
/// subscribe to and publish on.
fn jwt_until(sub: &str, exp: u64, subscribe: &[&str], publish: &[&str]) -> String {
    sign(
        SECRET,
        &json!({ "sub": sub, "exp": exp, "tether": { "sub": subscribe, "pub": publish } }),
    )
}

fn jwt(sub: &str, subscribe: &[&str]) -> String {
    jwt_until(sub, unix_now() + 600, subscribe, &[])
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {body}"))
}

/// Connects until there is one of `connect`'s clients on every loop; all
/// are kept (so that none is closing while the test counts them).
fn on_every_loop<C>(mut connect: impl FnMut() -> (C, u64)) -> Vec<(C, u64)> {
    let mut kept: Vec<(C, u64)> = Vec::new();
    for _ in 0..200 {
        if (0..LOOPS).all(|l| kept.iter().any(|(_, i)| *i == l)) {
            return kept;
        }
        kept.push(connect());
    }
    panic!("200 connections did not reach every loop");
}

/// The next WebSocket message as JSON, skipping the loop announcement.
fn ws_json(client: &mut WsClient) -> Value {
    serde_json::from_str(&client.recv_text()).unwrap()
}

/// Waits until `topic` has `count` members (joins reach the sequencer
/// through the loops' mailboxes).
fn wait_for_members(server: &Server, topic: &str, count: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = server.get(&format!("/api/presence?topic={topic}"));
        assert_eq!(status, 200, "{body}");
        if body["count"] == count || Instant::now() > deadline {
            return body;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn disconnect_closes_the_users_connections_on_every_loop() {
    let server = Server::start();
    let alice = jwt("alice", &["room.*"]);
    let bob = jwt("bob", &["room.*"]);
    let mut sockets = on_every_loop(|| server.ws("room.1", &alice));
    let mut streams = on_every_loop(|| server.sse("room.2", &alice));
    let (mut bystander, _) = server.ws("room.1", &bob);
    wait_for_members(&server, "room.1", 2);
    let expected = sockets.len() + streams.len();

    let (status, body) = server.post(
        "/api/disconnect",
        &json!({ "user": "alice", "code": 4001, "reason": "banned" }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed"], expected as u64, "{body}");
    for (socket, index) in &mut sockets {
        let close = socket.recv_close();
        assert_eq!(close.code.0, 4001, "loop {index}");
        assert_eq!(close.reason, "banned", "loop {index}");
    }
    for (stream, index) in &mut streams {
        let rest = stream.read_to_end();
        assert!(stream.is_ended(), "loop {index}");
        let last = rest.last().expect("a disconnect event");
        assert_eq!((last.event_type(), last.data()), ("disconnect", "banned"));
    }
    // Bob is still there, and alice is no longer present.
    server.publish("room.1", "still here");
    assert_eq!(ws_json(&mut bystander)["data"], "still here");
    let members = wait_for_members(&server, "room.1", 1);
    assert_eq!(members["members"], json!(["bob"]));
    // Nobody left to close.
    let (_, body) = server.post("/api/disconnect", &json!({ "user": "alice" }));
    assert_eq!(body["closed"], 0);
}

#[test]
fn disconnect_answers_a_long_poll() {
    let server = Server::start();
    let alice = jwt("alice", &["room.*"]);
    let addr = server.addr;
    // Held for the longest wait (25 s), past the client's read timeout
    // (10 s): whatever answers this poll is not its own timeout, which
    // would be a 200 anyway.
    let poll = thread::spawn(move || request(addr, "GET", "/topics/room.3/poll", &bearer(&alice), ""));
    // The poll is waiting once a disconnect finds it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = server.post("/api/disconnect", &json!({ "user": "alice", "reason": "go" }));
        if body["closed"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the poll never waited");
        thread::sleep(Duration::from_millis(20));
    }
    let response = poll.join().unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(code(&json(&response)), "disconnected");
}

#[test]
fn unsubscribe_ends_only_that_topic() {
    let server = Server::start();
    let alice = jwt("alice", &["room.*"]);
    let mut on_a = on_every_loop(|| server.ws("room.a", &alice));
    let (mut on_b, _) = server.ws("room.b", &alice);
    wait_for_members(&server, "room.b", 1);

    let (status, body) = server.post(
        "/api/unsubscribe",
        &json!({ "user": "alice", "topic": "room.a", "code": 4002, "reason": "left the room" }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed"], on_a.len() as u64);
    for (socket, _) in &mut on_a {
        let close = socket.recv_close();
        assert_eq!((close.code.0, close.reason.as_str()), (4002, "left the room"));
    }
    server.publish("room.b", "b goes on");
    assert_eq!(ws_json(&mut on_b)["data"], "b goes on");
    // The default close: 1008.
    let (_, body) = server.post("/api/unsubscribe", &json!({ "user": "alice", "topic": "room.b" }));
    assert_eq!(body["closed"], 1);
    let close = on_b.recv_close();
    assert_eq!(
        (close.code.0, close.reason.as_str()),
        (1008, "unsubscribed by the server")
    );
}

#[test]
fn refresh_shortens_and_extends_the_expiry() {
    let server = Server::start();
    let alice = jwt("alice", &["room.*"]);
    let mut sockets = on_every_loop(|| server.ws("room.r", &alice));
    // Bob's token is about to expire; the refresh outlives it.
    let bob = jwt_until("bob", unix_now() + 2, &["room.*"], &[]);
    let (mut stream, _) = server.sse("room.r", &bob);
    wait_for_members(&server, "room.r", 2);

    let soon = unix_now() + 5;
    let (status, body) = server.post("/api/refresh", &json!({ "user": "alice", "expires_at": soon }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshed"], sockets.len() as u64);
    let (_, body) = server.post(
        "/api/refresh",
        &json!({ "user": "bob", "expires_at": unix_now() + 600 }),
    );
    assert_eq!(body["refreshed"], 1);

    // Alice's sockets, each warned, are closed as when a token expires,
    // ten minutes before the token's own expiry.
    for (socket, index) in &mut sockets {
        let warning = ws_json(socket);
        assert_eq!(warning["type"], "auth-expiring", "loop {index}: {warning}");
        let close = socket.recv_close();
        assert_eq!((close.code.0, close.reason.as_str()), (1008, "token expired"));
        assert!(unix_now() >= soon, "closed before the new expiry");
    }
    // Bob's stream is open after its token's expiry.
    while unix_now() <= soon + 1 {
        thread::sleep(Duration::from_millis(100));
    }
    server.publish("room.r", "bob stays");
    let event = stream.next_event();
    assert_eq!(event.data(), "bob stays");
}

#[test]
fn presence_and_counts() {
    let server = Server::start();
    let (_alice, _) = server.ws("room.p", &jwt("alice", &["room.*"]));
    let (_bob, _) = server.sse("room.p", &jwt("bob", &["room.*"]));
    let body = wait_for_members(&server, "room.p", 2);
    assert_eq!(
        body,
        json!({ "topic": "room.p", "members": ["alice", "bob"], "count": 2, "truncated": false })
    );
    let (status, body) = server.post(
        "/api/presence/counts",
        &json!({ "topics": ["room.p", "empty", "room.p"] }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "counts": { "room.p": 2, "empty": 0 } }));
    // A token reads the topics it may subscribe to, or that are open.
    let reader = jwt("carol", &["room.p"]);
    let response = server.request("GET", "/api/presence?topic=room.p", &bearer(&reader), b"");
    assert_eq!(
        (response.status, json(&response)["count"].as_u64()),
        (200, Some(2))
    );
    let response = server.request("GET", "/api/presence?topic=open", &bearer(&reader), b"");
    assert_eq!(response.status, 200);
    let response = server.request("GET", "/api/presence?topic=room.q", &bearer(&reader), b"");
    assert_eq!((response.status, code(&json(&response))), (403, "forbidden"));
    let body = br#"{"topics":["room.p","room.q"]}"#;
    let response = server.request("POST", "/api/presence/counts", &bearer(&reader), body);
    assert_eq!((response.status, code(&json(&response))), (403, "forbidden"));
}

#[test]
fn topics_are_listed_with_their_numbers() {
    let server = Server::start();
    for topic in ["t1", "t2", "t3", "room.x"] {
        server.publish(topic, "hello");
    }
    server.publish("t1", "again");
    let sockets = on_every_loop(|| server.ws("t1", &jwt("dave", &[])));
    let (status, body) = server.get("/api/topics");
    assert_eq!(status, 200, "{body}");
    let topics = body["topics"].as_array().unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t["topic"].as_str().unwrap()).collect();
    assert_eq!(names, ["room.x", "t1", "t2", "t3"]);
    assert_eq!(body["next"], Value::Null);
    let t1 = &topics[1];
    assert_eq!(t1["subscribers"], sockets.len() as u64, "{t1}");
    assert_eq!(t1["websocket"], sockets.len() as u64, "{t1}");
    assert_eq!(t1["backlog_events"], 2);
    assert!(t1["backlog_bytes"].as_u64().unwrap() > 0);
    let (_, history) = server.get("/api/history?topic=t1");
    assert_eq!(t1["last_id"], history["next"]);

    // Page by page.
    let (_, first) = server.get("/api/topics?limit=2");
    assert_eq!(first["topics"].as_array().unwrap().len(), 2);
    assert_eq!(first["next"], "t1");
    let (_, second) = server.get("/api/topics?limit=2&after=t1");
    let names: Vec<&str> = second["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!((names, &second["next"]), (vec!["t2", "t3"], &Value::Null));

    // One topic.
    let (status, info) = server.get("/api/topics/info?topic=t1");
    assert_eq!(status, 200);
    assert_eq!(&info, t1);
    let (status, body) = server.get("/api/topics/info?topic=nothing");
    assert_eq!((status, code(&body)), (404, "unknown_topic"));

    // A token lists only what it may read: not the private room.x.
    let response = server.request("GET", "/api/topics", &bearer(&jwt("erin", &[])), b"");
    assert_eq!(response.status, 200);
    let listed = json(&response);
    let names: Vec<&str> = listed["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t1", "t2", "t3"]);
    let response = server.request(
        "GET",
        "/api/topics/info?topic=room.x",
        &bearer(&jwt("erin", &[])),
        b"",
    );
    assert_eq!(response.status, 403);
}

#[test]
fn the_new_endpoints_refuse_in_json() {
    let server = Server::start();
    let token = jwt("frank", &["room.*"]);
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    for (method, target, headers, body, status, code_) in [
        (
            "GET",
            "/api/presence",
            bearer(TOKEN),
            String::new(),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/presence?topic=a%20b",
            bearer(TOKEN),
            String::new(),
            400,
            "invalid_topic",
        ),
        (
            "GET",
            "/api/presence?topic=a",
            String::new(),
            String::new(),
            401,
            "unauthorized",
        ),
        (
            "GET",
            "/api/presence?topic=a",
            bearer("nope"),
            String::new(),
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/api/presence/counts",
            bearer(TOKEN),
            "{".to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/presence/counts",
            bearer(TOKEN),
            r#"{"topics":["a"],"more":1}"#.to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/presence/counts",
            bearer(TOKEN),
            json!({ "topics": many }).to_string(),
            413,
            "too_many_items",
        ),
        (
            "GET",
            "/api/topics?limit=0",
            bearer(TOKEN),
            String::new(),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/topics/info",
            bearer(TOKEN),
            String::new(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/disconnect",
            bearer(TOKEN),
            "[]".to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/disconnect",
            bearer(TOKEN),
            r#"{"user":"a","code":1001}"#.to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/disconnect",
            bearer(&token),
            r#"{"user":"a"}"#.to_owned(),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/api/disconnect",
            String::new(),
            r#"{"user":"a"}"#.to_owned(),
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/api/unsubscribe",
            bearer(TOKEN),
            r#"{"user":"a"}"#.to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/unsubscribe",
            bearer(&token),
            r#"{"user":"a","topic":"b"}"#.to_owned(),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/api/refresh",
            bearer(TOKEN),
            r#"{"user":"a","expires_at":"soon"}"#.to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/refresh",
            bearer(&token),
            r#"{"user":"a","expires_at":1}"#.to_owned(),
            403,
            "forbidden",
        ),
    ] {
        let response = server.request(method, target, &headers, body.as_bytes());
        let label = format!("{method} {target} {body:.60}");
        assert_eq!(response.status, status, "{label}");
        assert_eq!(code(&json(&response)), code_, "{label}");
    }
    for (method, target, allow) in [
        ("POST", "/api/presence?topic=a", "GET, HEAD"),
        ("GET", "/api/presence/counts", "POST"),
        ("DELETE", "/api/topics", "GET, HEAD"),
        ("POST", "/api/topics/info?topic=a", "GET, HEAD"),
        ("GET", "/api/disconnect", "POST"),
        ("PUT", "/api/unsubscribe", "POST"),
        ("GET", "/api/refresh", "POST"),
    ] {
        let response = server.request(method, target, &bearer(TOKEN), b"");
        assert_eq!(response.status, 405, "{method} {target}");
        assert_eq!(response.header("allow"), Some(allow), "{method} {target}");
        assert_eq!(code(&json(&response)), "method_not_allowed");
    }
}

/// Over HTTP/2, the answers that wait for every loop (the topics, a
/// disconnect) and for a sequencer (presence), three at once on one
/// connection, each on its own stream.
#[test]
fn answers_that_wait_for_the_loops_over_http2() {
    let server = Server::start();
    let (mut socket, _) = server.ws("room.h2", &jwt("gina", &["room.*"]));
    wait_for_members(&server, "room.h2", 1);
    let mut client = common::h2::H2Client::connect(server.addr);
    let bearer = format!("Bearer {TOKEN}");
    let fields = [("authorization", bearer.as_str())];
    let topics = client.get("/api/topics", &fields);
    let presence = client.get("/api/presence?topic=room.h2", &fields);
    let disconnect = client.request_with_body("POST", "/api/disconnect", &fields, br#"{"user":"gina"}"#);
    let answer = |client: &mut common::h2::H2Client<std::net::TcpStream>, stream| {
        let state = client.finish(stream);
        assert_eq!(state.status(), Some(200));
        serde_json::from_slice::<Value>(&state.data).unwrap()
    };
    let listed = answer(&mut client, topics);
    assert_eq!(listed["topics"][0]["topic"], "room.h2", "{listed}");
    assert_eq!(answer(&mut client, presence)["members"], json!(["gina"]));
    assert_eq!(answer(&mut client, disconnect), json!({ "closed": 1 }));
    let close = socket.recv_close();
    assert_eq!(
        (close.code.0, close.reason.as_str()),
        (1008, "disconnected by the server")
    );
}
