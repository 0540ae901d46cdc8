//! Namespaces end to end, through sockets, on two event loops: each
//! namespace's rule for who publishes (subscribers, the backend alone,
//! nobody), who subscribes (a token), presence and join/leave events, its
//! own backlog, and topics outside every namespace refused.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use common::{SseClient, TestServer, WsClient, config, request};
use serde_json::{Value, json};
use tether_auth::Keys;
use tether_hub::TopicLimits;
use tether_hub_app::{HubAuth, HubSettings, HubShared, Namespace, UnknownNamespace};
use tether_server::Handshake;

use support::http::bearer;
use support::jwt::{sign, unix_now};
use support::{datas, history};

const SECRET: &[u8] = b"a namespace test secret, 32 byte";
const TOKEN: &str = "namespace-publish-token";

/// The hub with these namespaces (and `room.*` keeping 2 events), tokens
/// verified, topics outside every namespace refused.
fn start() -> TestServer {
    start_shared().0
}

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.auth = Some(HubAuth::new(Keys::from_secret(SECRET).unwrap()));
    for spec in [
        "chat.* publish=subscribers",
        "chat.quiet presence=off",
        "chat.calm join-leave=off",
        "feed.* publish=backend",
        "clock publish=nobody",
        "user.* private=true",
        "room.*",
    ] {
        settings.namespaces.push(spec.parse::<Namespace>().unwrap());
    }
    let mut room = TopicLimits::new("room.*", &settings.hub);
    room.max_backlog_events = 2;
    settings.hub.namespaces.push(room);
    settings.unknown_namespace = UnknownNamespace::Refuse;
    settings
}

/// The server, and what its loops share (to reload its settings).
fn start_shared() -> (TestServer, HubShared) {
    let shared = HubShared::new(settings(), 2);
    let server = TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i));
    (server, shared)
}

/// A token for `subject` with these `sub` and `pub` rights.
fn jwt(subject: &str, subscribe: &[&str], publish: &[&str]) -> String {
    sign(
        SECRET,
        &json!({ "sub": subject, "exp": unix_now() + 600, "tether": { "sub": subscribe, "pub": publish } }),
    )
}

/// `POST /topics/TOPIC` with this credential: the status.
fn publish(server: &TestServer, topic: &str, token: &str, data: &str) -> u16 {
    request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &bearer(token),
        data.as_bytes(),
    )
    .status
}

/// The next message is the hub's refusal of a publish.
fn assert_refused(ws: &mut WsClient) {
    let reply: Value = serde_json::from_str(&ws.recv_text()).unwrap();
    assert_eq!(reply["control"], "error", "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("not allowed"),
        "{reply}"
    );
}

/// The status of an event stream's response.
fn subscribe_status(server: &TestServer, target: &str, headers: &str) -> u16 {
    SseClient::connect(server.addr, target, &format!("{headers}Connection: close\r\n"))
        .response
        .status
}

#[test]
fn subscribers_publish_where_their_namespace_lets_them() {
    let server = start();
    let mut reader = SseClient::connect(server.addr, "/topics/chat.lobby/events", "");
    assert_eq!(reader.response.status, 200);
    // No credential at all: the namespace lets its subscribers publish.
    let mut ws = WsClient::connect(server.addr, "/topics/chat.lobby/ws");
    ws.send_text("hello from a subscriber");
    assert_eq!(reader.next_event().data(), "hello from a subscriber");
    // A more specific namespace without a publish rule keeps the hub's
    // (subscribers do not publish), while it inherits nothing from chat.*.
    let mut quiet = WsClient::connect(server.addr, "/topics/chat.quiet/ws");
    quiet.send_text("not allowed");
    assert_refused(&mut quiet);
}

#[test]
fn a_backend_namespace_takes_the_publish_token_and_no_token_rights() {
    let server = start();
    let writer = jwt("w", &[], &["feed.*", "chat.*"]);
    assert_eq!(publish(&server, "feed.prices", TOKEN, "1"), 200);
    assert_eq!(publish(&server, "feed.prices", &writer, "2"), 403);
    // The same token publishes where the namespace takes token rights.
    assert_eq!(publish(&server, "chat.lobby", &writer, "3"), 200);
    // The server API says it item by item.
    let body =
        json!({"items": [{"topic": "feed.prices", "data": "4"}, {"topic": "chat.lobby", "data": "5"}]});
    let response = request(
        server.addr,
        "POST",
        "/api/publish",
        &bearer(&writer),
        body.to_string().as_bytes(),
    );
    let results: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(results["results"][0]["error"]["code"], "forbidden", "{results}");
    assert!(results["results"][1]["id"].is_string(), "{results}");
    // A WebSocket with the token's publish right is not let publish.
    let mut ws = WsClient::connect_with(server.addr, "/topics/feed.prices/ws", &bearer(&writer));
    ws.send_text("6");
    assert_refused(&mut ws);
}

#[test]
fn nobody_publishes_to_a_closed_namespace() {
    let server = start();
    let response = request(server.addr, "POST", "/topics/clock", &bearer(TOKEN), b"tick");
    assert_eq!(response.status, 403);
    assert!(String::from_utf8_lossy(&response.body).contains("namespace"));
    let body = json!({"topics": ["clock", "chat.lobby"], "data": "x"});
    let response = request(
        server.addr,
        "POST",
        "/api/broadcast",
        &bearer(TOKEN),
        body.to_string().as_bytes(),
    );
    let results: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(results["results"][0]["error"]["code"], "forbidden", "{results}");
    assert!(results["results"][1]["id"].is_string(), "{results}");
}

#[test]
fn a_private_namespace_needs_a_token_that_grants_the_topic() {
    let server = start();
    assert_eq!(subscribe_status(&server, "/topics/user.ann/events", ""), 401);
    let other = jwt("bob", &["user.bob"], &[]);
    assert_eq!(
        subscribe_status(&server, "/topics/user.ann/events", &bearer(&other)),
        403
    );
    let ann = jwt("ann", &["user.ann"], &[]);
    assert_eq!(
        subscribe_status(&server, "/topics/user.ann/events", &bearer(&ann)),
        200
    );
    // Other namespaces stay open to anyone.
    assert_eq!(subscribe_status(&server, "/topics/chat.lobby/events", ""), 200);
}

#[test]
fn presence_and_join_leave_follow_the_namespace() {
    let server = start();
    let _member = SseClient::connect(server.addr, "/topics/chat.quiet/events", "");
    let presence = |topic: &str| request(server.addr, "GET", &format!("/topics/{topic}/presence"), "", b"");
    assert_eq!(presence("chat.quiet").status, 404);
    assert_eq!(
        subscribe_status(&server, "/topics/chat.quiet/events?presence=1", ""),
        400
    );
    // Join and leave events off, members still kept.
    assert_eq!(
        subscribe_status(&server, "/topics/chat.calm/events?presence=1", ""),
        400
    );
    let _calm = SseClient::connect(server.addr, "/topics/chat.calm/events", "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body: Value = serde_json::from_slice(&presence("chat.calm").body).unwrap();
        if body["count"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        subscribe_status(&server, "/topics/chat.lobby/events?presence=1", ""),
        200
    );
}

#[test]
fn a_namespace_keeps_its_own_backlog() {
    let server = start();
    for data in ["1", "2", "3", "4"] {
        assert_eq!(publish(&server, "room.a", TOKEN, data), 200);
    }
    let history = history(server.addr, "room.a", TOKEN);
    assert_eq!(datas(&history), ["3", "4"], "{history}");
}

#[test]
fn topics_outside_every_namespace_are_refused() {
    let server = start();
    assert_eq!(subscribe_status(&server, "/topics/news/events", ""), 404);
    assert_eq!(publish(&server, "news", TOKEN, "x"), 404);
    let body = json!({"items": [{"topic": "news", "data": "x"}]});
    let response = request(
        server.addr,
        "POST",
        "/api/publish",
        &bearer(TOKEN),
        body.to_string().as_bytes(),
    );
    let results: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        results["results"][0]["error"]["code"], "no_namespace",
        "{results}"
    );
}

#[test]
fn a_reload_changes_the_rules_on_every_loop_and_keeps_what_needs_a_restart() {
    let (server, shared) = start_shared();
    assert_eq!(publish(&server, "clock", TOKEN, "1"), 403);
    assert_eq!(subscribe_status(&server, "/topics/news/events", ""), 404);
    let mut subscriber = WsClient::connect(server.addr, "/topics/chat.lobby/ws");
    let mut new = settings();
    new.namespaces
        .retain(|n| n.pattern != "clock" && n.pattern != "chat.*");
    new.namespaces.push("chat.* publish=token".parse().unwrap());
    new.unknown_namespace = UnknownNamespace::Default;
    new.publish_token = Some("a new token".to_owned());
    new.trusted_origins = vec!["https://app.example".to_owned()];
    new.hub.max_backlog_events = 1;
    new.ticket_ttl = std::time::Duration::from_secs(7);
    let kept = shared.reload(new);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().any(|k| k.contains("backlog")), "{kept:?}");
    assert!(kept.contains(&"trusted-origin"), "{kept:?}");
    // Every request from now on, on either loop, sees the new rules.
    for _ in 0..4 {
        assert_eq!(
            publish(&server, "clock", TOKEN, "x"),
            401,
            "the old token is gone"
        );
        assert_eq!(publish(&server, "clock", "a new token", "x"), 200);
        assert_eq!(subscribe_status(&server, "/topics/news/events", ""), 200);
    }
    let ticket = request(server.addr, "POST", "/tickets", &bearer("a new token"), b"");
    let ticket: Value = serde_json::from_slice(&ticket.body).unwrap();
    assert_eq!(ticket["expires_in"], 7.0, "{ticket}");
    // A socket opened before keeps what it was granted; a new one gets
    // the new rule (chat.* takes publishes from tokens only).
    subscriber.send_text("still mine");
    assert!(subscriber.recv_text().contains("still mine"));
    let mut late = WsClient::connect(server.addr, "/topics/chat.lobby/ws");
    late.send_text("no longer");
    assert_refused(&mut late);
    // Kept: the trusted origins (no origin list, so any origin still comes in)
    // and the backlog (room.* still keeps two).
    let elsewhere = "Origin: https://elsewhere.example\r\n";
    assert_eq!(subscribe_status(&server, "/topics/news/events", elsewhere), 200);
    assert_eq!(
        shared.current_settings().hub.max_backlog_events,
        settings().hub.max_backlog_events
    );
}
