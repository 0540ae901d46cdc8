//! Publish rate limits end to end, through sockets, on two event loops: a
//! WebSocket over its rate is closed with 1008 and the reason, an HTTP
//! publish over its subject's rate is answered 429 with `Retry-After`, a
//! subject's connections and requests share one rate across loops, a
//! server API item is refused with `rate_limited`, and the publish token
//! (the backend) is not limited over HTTP.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use common::{Response, SseClient, TestServer, WsClient, config, request};
use serde_json::{Value, json};
use tether_auth::Keys;
use tether_hub_app::{HubAuth, HubSettings, HubShared, PublishRate};
use tether_server::{CloseCode, Handshake};

use support::http::bearer;
use support::jwt::{sign, unix_now};
use support::{datas, history};

const SECRET: &[u8] = b"a rate limit test secret, 32 byt";
const TOKEN: &str = "rate-publish-token";

/// The hub on two loops: two events at once, then one every 100 s (so
/// that no token comes back during a test), `chat.*` open to WebSocket
/// publishers.
fn start() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.auth = Some(HubAuth::new(Keys::from_secret(SECRET).unwrap()));
    settings.ws_publish = vec!["chat.*".to_owned()];
    settings.publish_rate = Some(PublishRate::new(0.01, 2.0));
    let shared = HubShared::new(settings, 2);
    TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i))
}

fn jwt(subject: &str) -> String {
    let now = unix_now();
    sign(
        SECRET,
        &json!({ "sub": subject, "exp": now + 600, "tether": { "sub": ["*"], "pub": ["*"] } }),
    )
}

fn publish(server: &TestServer, topic: &str, token: &str) -> Response {
    request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &bearer(token),
        b"x",
    )
}

#[test]
fn a_websocket_over_its_rate_is_closed_with_the_reason() {
    let server = start();
    let mut reader = SseClient::connect(server.addr, "/topics/chat.lobby/events", "");
    assert_eq!(reader.response.status, 200);
    let mut ws = WsClient::connect(server.addr, "/topics/chat.lobby/ws");
    for text in ["one", "two", "three"] {
        ws.send_text(text);
    }
    assert_eq!(reader.next_event().data(), "one");
    assert_eq!(reader.next_event().data(), "two");
    // Its own events may come back to it before the close (it is a
    // subscriber too); the third is never published.
    let (texts, close) = ws.texts_then_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "publishing faster than the rate limit");
    assert!(texts.iter().all(|t| !t.contains("three")), "{texts:?}");
    let history = history(server.addr, "chat.lobby", TOKEN);
    assert_eq!(datas(&history), ["one", "two"], "{history}");
}

#[test]
fn a_subject_shares_one_rate_over_its_connections_loops_and_requests() {
    let server = start();
    let alice = jwt("alice");
    // Two sockets (on either loop) and HTTP: two publishes in all.
    let mut first = WsClient::connect_with(server.addr, "/topics/chat.a/ws", &bearer(&alice));
    let mut second = WsClient::connect_with(server.addr, "/topics/chat.b/ws", &bearer(&alice));
    first.send_text("1");
    assert!(first.recv_text().contains("\"data\":\"1\""));
    second.send_text("2");
    assert!(second.recv_text().contains("\"data\":\"2\""));
    let refused = publish(&server, "news", &alice);
    assert_eq!(refused.status, 429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=100).contains(&wait), "{wait}");
    // Another subject has a rate of its own; the publish token none.
    assert_eq!(publish(&server, "news", &jwt("bob")).status, 200);
    for _ in 0..5 {
        assert_eq!(publish(&server, "news", TOKEN).status, 200);
    }
    // The server API refuses the item, not the request.
    let body = json!({"items": [{"topic": "news", "data": "x"}]});
    let response = request(
        server.addr,
        "POST",
        "/api/publish",
        &bearer(&alice),
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200);
    let results: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        results["results"][0]["error"]["code"], "rate_limited",
        "{results}"
    );
    let metrics = request(server.addr, "GET", "/metrics", "", b"");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("tether_hub_rate_limited_total 2"), "{text}");
}
