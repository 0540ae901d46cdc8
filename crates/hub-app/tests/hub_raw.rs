//! The hub's raw WebSocket format (`/topics/NAME/ws?format=raw`): each
//! event's data as one text message, no envelope; every message a raw
//! publisher sends is published as is; no ids, so no resume, and what would
//! be a control message closes the socket instead; the combinations that
//! cannot work are refused with 400.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::io::Write;
use std::net::SocketAddr;

use common::{HttpConn, Response, SseClient, TestServer, WsClient, config, tcp};
use serde_json::Value;
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubApp, HubAuth, HubSettings, HubShared};
use tether_server::{CloseCode, Cluster, Handshake, Message};

use support::http::{bearer, request};
use support::jwt::rights;
use support::running::Running;

const TOKEN: &str = "raw-publish-token";
const SECRET: &[u8] = b"a hub test secret, 32 bytes long";

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.ws_publish = vec!["room.*".to_owned()];
    settings
}

fn hub() -> TestServer {
    TestServer::start(config(), HubApp::new(settings()))
}

fn publish(addr: SocketAddr, topic: &str, body: &str) -> Response {
    request(addr, "POST", &format!("/topics/{topic}"), &bearer(TOKEN), body)
}

fn publish_ok(addr: SocketAddr, topic: &str, body: &str) -> String {
    let response = publish(addr, topic, body);
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    json(response.body.as_slice())["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))
}

/// The answer to a WebSocket upgrade for `target` with these header lines.
fn upgrade(addr: SocketAddr, target: &str, headers: &str) -> Response {
    let upgrade = common::Upgrade::new(addr, target);
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let mut conn = HttpConn::connect(addr);
    conn.send(text.replacen("\r\n", &format!("\r\n{headers}"), 1).as_bytes());
    conn.head_response()
}

/// A WebSocket opened with these header lines.
fn ws_with(addr: SocketAddr, target: &str, headers: &str) -> WsClient {
    let upgrade = common::Upgrade::new(addr, target);
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let mut stream = tcp(addr);
    stream
        .write_all(text.replacen("\r\n", &format!("\r\n{headers}"), 1).as_bytes())
        .unwrap();
    WsClient::finish(stream, upgrade)
}

/// Data that JSON and SSE would both have to escape or split.
const TRICKY: [&str; 5] = [
    "plain",
    "",
    "quote \" backslash \\ tab \t nul \0 crlf \r\n é ✓ \u{2028}",
    "{\"looks\":\"like an envelope\"}",
    "{\"type\":\"auth\",\"token\":\"not one\"}",
];

#[test]
fn a_raw_subscriber_gets_each_events_data_exactly_in_order() {
    let server = hub();
    let mut raw = WsClient::connect(server.addr, "/topics/news/ws?format=raw");
    let mut raw2 = WsClient::connect(server.addr, "/topics/news/ws?format=raw");
    let mut plain = WsClient::connect(server.addr, "/topics/news/ws");
    let mut explicit = WsClient::connect(server.addr, "/topics/news/ws?format=json");
    let mut events = SseClient::connect(server.addr, "/topics/news/events", "");
    assert_eq!(events.response.status, 200);
    let mut ids = Vec::new();
    for data in TRICKY {
        ids.push(publish_ok(server.addr, "news", data));
    }
    let big = "x".repeat(40_000);
    ids.push(publish_ok(server.addr, "news", &big));
    let all: Vec<&str> = TRICKY.iter().copied().chain([big.as_str()]).collect();
    for (data, id) in all.iter().zip(&ids) {
        // Raw: the data, as a text message, and nothing else.
        for client in [&mut raw, &mut raw2] {
            assert_eq!(client.recv(), Message::text(*data));
        }
        // JSON, asked for or by default: the envelope, with the id.
        for client in [&mut plain, &mut explicit] {
            let event = json(client.recv_text().as_bytes());
            assert_eq!(
                (event["id"].as_str(), event["data"].as_str()),
                (Some(id.as_str()), Some(*data))
            );
        }
        let event = events.next_event();
        assert_eq!(event.last_event_id(), id);
    }
    // Another topic's events are not sent to them.
    publish_ok(server.addr, "other", "elsewhere");
    publish_ok(server.addr, "news", "last");
    assert_eq!(raw.recv(), Message::text("last"));
}

#[test]
fn every_message_on_a_raw_publisher_is_published_as_is() {
    let server = hub();
    let mut publisher = WsClient::connect(server.addr, "/topics/room.1/ws?format=raw&event=chat");
    let mut reader = WsClient::connect(server.addr, "/topics/room.1/ws?format=raw");
    let mut plain = WsClient::connect(server.addr, "/topics/room.1/ws");
    for data in TRICKY {
        publisher.send_text(data);
    }
    for data in TRICKY {
        // The publisher is a subscriber too: it gets its own messages
        // back, and no acknowledgement.
        assert_eq!(publisher.recv(), Message::text(data));
        assert_eq!(reader.recv(), Message::text(data));
        let event = json(plain.recv_text().as_bytes());
        assert_eq!(event["data"].as_str(), Some(data));
        assert_eq!(event["event"].as_str(), Some("chat"));
    }
    // Over HTTP too.
    publish_ok(server.addr, "room.1", "from http");
    assert_eq!(publisher.recv(), Message::text("from http"));
    assert_eq!(reader.recv(), Message::text("from http"));
}

#[test]
fn what_a_raw_socket_cannot_be_told_closes_it() {
    let server = hub();
    // No right to publish: closed with 1008 and the reason, where a JSON
    // subscriber gets an error message and stays.
    let mut raw = WsClient::connect(server.addr, "/topics/news/ws?format=raw");
    raw.send_text("may I?");
    let close = raw.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(
        close.reason,
        "publishing to this topic over WebSocket is not allowed"
    );
    let mut plain = WsClient::connect(server.addr, "/topics/news/ws");
    plain.send_text("may I?");
    assert_eq!(
        json(plain.recv_text().as_bytes())["control"].as_str(),
        Some("error")
    );
    publish_ok(server.addr, "news", "still here");
    assert_eq!(
        json(plain.recv_text().as_bytes())["data"].as_str(),
        Some("still here")
    );

    // A binary message is a binary event (see binary.rs), not a refusal.

    // An event the hub refuses (too large): 1008 with the hub's reason.
    let mut publisher = WsClient::connect(server.addr, "/topics/room.3/ws?format=raw");
    let mut reader = WsClient::connect(server.addr, "/topics/room.3/ws?format=raw");
    publisher.send_text(&"y".repeat(64 * 1024 + 1));
    let close = publisher.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert!(close.reason.contains("exceeds the limit"), "{:?}", close.reason);
    // Nothing was published.
    publish_ok(server.addr, "room.3", "next");
    assert_eq!(reader.recv(), Message::text("next"));
}

#[test]
fn what_cannot_work_raw_is_refused_with_400() {
    let server = hub();
    let cases = [
        // A format that does not exist, on every subscribe route.
        ("/topics/news/ws?format=xml", "format is json or raw"),
        ("/topics/news/events?format=xml", "format is json or raw"),
        ("/topics/news/poll?format=xml", "format is json or raw"),
        // Raw is for WebSocket subscribers.
        ("/topics/news/events?format=raw", "for WebSocket subscribers"),
        (
            "/topics/news/poll?format=raw&timeout=0",
            "for WebSocket subscribers",
        ),
        // No ids: no resume; no acknowledgements: no envelope.
        ("/topics/news/ws?format=raw&lastEventId=1-1", "cannot resume"),
        ("/topics/room.1/ws?format=raw&envelope=1", "no acknowledgements"),
    ];
    for (target, why) in cases {
        let response = if target.contains("/ws") {
            upgrade(server.addr, target, "")
        } else {
            let mut conn = HttpConn::connect(server.addr);
            conn.request("GET", target, "Connection: close\r\n");
            conn.response()
        };
        assert_eq!(response.status, 400, "{target}");
        if !target.contains("/ws") {
            let body = String::from_utf8_lossy(&response.body);
            assert!(body.contains(why), "{target}: {body}");
        }
    }
    // The same with the body read, for the WebSocket refusals.
    for (target, why) in cases.iter().filter(|(t, _)| t.contains("/ws")) {
        let upgrade = common::Upgrade::new(server.addr, target);
        let mut conn = HttpConn::connect(server.addr);
        conn.send(&upgrade.request);
        let response = conn.response();
        assert_eq!(response.status, 400, "{target}");
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains(why), "{target}: {body}");
    }
    // An empty lastEventId is no id: accepted.
    let mut raw = WsClient::connect(server.addr, "/topics/news/ws?format=raw&lastEventId=");
    publish_ok(server.addr, "news", "ok");
    assert_eq!(raw.recv(), Message::text("ok"));
}

fn jwt(subject: &str, subscribe: &[&str], publish: &[&str], ttl: u64) -> String {
    rights(SECRET, subject, subscribe, publish, ttl)
}

fn hub_with_tokens() -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    auth.private = Private::new(["user.*"]).unwrap();
    let mut settings = settings();
    settings.auth = Some(auth);
    TestServer::start(config(), HubApp::new(settings))
}

#[test]
fn a_raw_socket_takes_its_token_with_the_upgrade_and_every_message_is_data() {
    let server = hub_with_tokens();
    // Without a credential, a private topic would take a first-message
    // token: raw cannot (every message is data).
    let response = upgrade(server.addr, "/topics/user.alice.inbox/ws?format=raw", "");
    assert_eq!(response.status, 400);
    let response = upgrade(server.addr, "/topics/news/ws?format=raw&auth=1", "");
    assert_eq!(response.status, 400);
    // With a token in the upgrade: subscribed, and a message that looks
    // like a token is published as data, not taken as one.
    let token = jwt("alice", &["user.{sub}.*"], &["user.{sub}.*"], 600);
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let mut raw = ws_with(server.addr, "/topics/user.alice.inbox/ws?format=raw", &bearer);
    let auth_message = format!("{{\"type\":\"auth\",\"token\":\"{token}\"}}");
    raw.send_text(&auth_message);
    assert_eq!(raw.recv(), Message::text(auth_message.as_str()));
    // A token that does not grant the private topic is refused as before.
    let bob = format!(
        "Authorization: Bearer {}\r\n",
        jwt("bob", &["user.{sub}.*"], &[], 600)
    );
    assert_eq!(
        upgrade(server.addr, "/topics/user.alice.inbox/ws?format=raw", &bob).status,
        403
    );
}

#[test]
fn a_raw_subscriber_is_closed_when_its_token_expires_with_no_warning_before() {
    let server = hub_with_tokens();
    let bearer = format!(
        "Authorization: Bearer {}\r\n",
        jwt("alice", &["user.{sub}.*"], &[], 4)
    );
    let mut raw = ws_with(server.addr, "/topics/user.alice.inbox/ws?format=raw", &bearer);
    publish_ok(server.addr, "user.alice.inbox", "before");
    assert_eq!(raw.recv(), Message::text("before"));
    // Nothing (no auth-expiring message, which a JSON subscriber would
    // get a second before) until the close, which names the expiry.
    let close = raw.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "token expired");
}

/// A hub on `loops` event loops, stopped when dropped.
struct ClusterServer {
    addr: SocketAddr,
    _running: Running,
}

impl ClusterServer {
    fn start(loops: usize) -> ClusterServer {
        let shared = HubShared::new(settings(), loops);
        let cluster = Cluster::bind(config(), Handshake::new(), loops, |i| shared.app(i)).expect("bind");
        let (addr, running) = Running::cluster(cluster);
        ClusterServer {
            addr,
            _running: running,
        }
    }
}

#[test]
fn raw_subscribers_on_every_loop_get_one_publishers_messages_in_order() {
    let server = ClusterServer::start(3);
    let mut readers: Vec<WsClient> = (0..8)
        .map(|_| WsClient::connect(server.addr, "/topics/room.fan/ws?format=raw"))
        .collect();
    let mut plain = WsClient::connect(server.addr, "/topics/room.fan/ws");
    let mut publisher = WsClient::connect(server.addr, "/topics/room.fan/ws?format=raw");
    let count = 300;
    for seq in 0..count {
        publisher.send_text(&format!("{seq:08} payload"));
    }
    for reader in readers.iter_mut().chain([&mut publisher]) {
        for seq in 0..count {
            assert_eq!(reader.recv(), Message::text(format!("{seq:08} payload")));
        }
    }
    for seq in 0..count {
        let event = json(plain.recv_text().as_bytes());
        assert_eq!(event["data"].as_str(), Some(format!("{seq:08} payload").as_str()));
    }
}
