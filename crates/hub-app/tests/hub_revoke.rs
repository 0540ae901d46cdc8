//! Token revocation end to end, through sockets, on two event loops:
//! `POST /api/revoke` by `jti` and by "subject before `iat`", a revoked
//! token refused (401 `token revoked`) on every path that verifies one,
//! the WebSockets, event streams and long polls open with it ended within
//! a tick, a newer token of the subject still good, and the list read
//! back with `GET /api/revoked`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod support;

use tether_testkit as common;

use common::{HttpConn, Response, SseClient, TestServer, WsClient, config, request};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{CloseCode, Handshake};

use support::http::bearer;
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a revocation test secret, 32 byt";
const TOKEN: &str = "revoke-publish-token";

/// The hub on two loops: the publish token, tokens verified (no leeway),
/// `room.*` private.
fn start() -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.private = Private::new(["room.*"]).unwrap();
    auth.validation = Validation::new().leeway(0);
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.auth = Some(auth);
    let shared = HubShared::new(settings, 2);
    TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i))
}

/// A token of `subject` with id `jti`, issued at `iat`, granting every
/// topic to subscribe to and publish on.
fn jwt(subject: &str, jti: &str, iat: u64) -> String {
    sign(
        SECRET,
        &json!({ "sub": subject, "jti": jti, "iat": iat, "exp": unix_now() + 600,
                 "tether": { "sub": ["*"], "pub": ["*"] } }),
    )
}

fn body(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("JSON ({e}): {:?}", String::from_utf8_lossy(&response.body)))
}

fn revoke(server: &TestServer, what: &Value) -> Response {
    request(
        server.addr,
        "POST",
        "/api/revoke",
        &bearer(TOKEN),
        what.to_string().as_bytes(),
    )
}

fn publish(server: &TestServer, token: &str) -> Response {
    request(server.addr, "POST", "/topics/news", &bearer(token), b"x")
}

fn stream(server: &TestServer, topic: &str, token: &str) -> SseClient {
    SseClient::connect(server.addr, &format!("/topics/{topic}/events"), &bearer(token))
}

fn assert_revoked(response: &Response) {
    assert_eq!(
        response.status,
        401,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(String::from_utf8_lossy(&response.body), "token revoked\n");
}

#[test]
fn a_revoked_token_is_refused_and_its_open_connections_end() {
    let server = start();
    let now = unix_now();
    let token = jwt("alice", "t-1", now);
    let other = jwt("alice", "t-2", now);
    // Open with it: WebSockets and event streams (several, to land on
    // both loops), and a long poll held.
    let mut sockets: Vec<WsClient> = (0..4)
        .map(|i| WsClient::connect_with(server.addr, &format!("/topics/room.{i}/ws"), &bearer(&token)))
        .collect();
    let mut streams: Vec<SseClient> = (0..4)
        .map(|i| stream(&server, &format!("room.{i}"), &token))
        .collect();
    for s in &streams {
        assert_eq!(s.response.status, 200);
    }
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/room.0/poll?timeout=60", &bearer(&token));
    let mut kept = WsClient::connect_with(server.addr, "/topics/news/ws", &bearer(&other));

    let answer = revoke(&server, &json!({"jti": "t-1"}));
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
    assert_eq!(body(&answer), json!({"revoked": 1}));

    // Ended within a tick (the reads time out long after).
    for ws in &mut sockets {
        let (_, close) = ws.texts_then_close();
        assert_eq!(
            (close.code, close.reason.as_str()),
            (CloseCode::POLICY, "token revoked")
        );
    }
    for s in &mut streams {
        let events = s.read_to_end();
        let last = events.last().expect("the auth-revoked event");
        assert_eq!(
            (last.event_type(), last.data()),
            ("auth-revoked", "token revoked")
        );
    }
    assert_revoked(&poll.response());
    // Refused from now on, wherever it is presented.
    assert_revoked(&publish(&server, &token));
    assert_eq!(stream(&server, "news", &token).response.status, 401);
    let api = request(
        server.addr,
        "GET",
        "/api/history?topic=news",
        &bearer(&token),
        b"",
    );
    assert_eq!(api.status, 401);
    assert_eq!(body(&api)["error"]["code"], "revoked");
    let ticket = request(server.addr, "POST", "/tickets", &bearer(&token), b"");
    assert_revoked(&ticket);
    // The subject's other token is good, its socket still open.
    assert_eq!(publish(&server, &other).status, 200);
    let event = kept.recv_text();
    assert!(event.contains("\"data\":\"x\""), "{event}");
    let metrics = request(server.addr, "GET", "/metrics", "", b"");
    let text = String::from_utf8_lossy(&metrics.body);
    let denied = text
        .lines()
        .find(|l| l.starts_with("tether_auth_denied_total{reason=\"revoked\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    let count: u64 = denied.rsplit(' ').next().unwrap().parse().unwrap();
    // Four sockets, four streams, a poll; a publish, a stream, the API
    // and a ticket refused.
    assert_eq!(count, 13, "{denied}");
}

#[test]
fn a_subjects_tokens_issued_before_a_time_are_revoked_and_newer_ones_kept() {
    let server = start();
    let now = unix_now();
    let old = jwt("bob", "old", now - 100);
    let mut open = WsClient::connect_with(server.addr, "/topics/room.1/ws", &bearer(&old));
    let answer = revoke(&server, &json!({"subject": "bob", "before": now - 10}));
    assert_eq!(answer.status, 200);
    let (_, close) = open.texts_then_close();
    assert_eq!(close.reason, "token revoked");
    assert_revoked(&publish(&server, &old));
    // Issued at `before` or later: good; another subject: good.
    assert_eq!(publish(&server, &jwt("bob", "new", now - 10)).status, 200);
    assert_eq!(publish(&server, &jwt("carol", "old", now - 100)).status, 200);
    // "before" left out: every token of the subject issued until now.
    let answer = revoke(&server, &json!({"subject": "carol"}));
    assert_eq!(answer.status, 200);
    assert_revoked(&publish(&server, &jwt("carol", "x", now - 1)));

    let listed = request(server.addr, "GET", "/api/revoked", &bearer(TOKEN), b"");
    assert_eq!(listed.status, 200);
    let entries = body(&listed)["revoked"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let bob = entries.iter().find(|e| e["subject"] == "bob").unwrap();
    assert_eq!(bob["before"], now - 10);
    // A day by default.
    let until = bob["until"].as_u64().unwrap();
    assert!((now + 86_000..=now + 86_500).contains(&until), "{until}");
}

#[test]
fn a_revoked_token_sent_over_a_websocket_closes_it() {
    let server = start();
    let now = unix_now();
    let revoked = jwt("dave", "gone", now);
    assert_eq!(revoke(&server, &json!({"jti": "gone"})).status, 200);
    // As the first message of a socket that authenticates by message.
    let mut ws = WsClient::connect(server.addr, "/topics/room.1/ws");
    ws.send_text(&json!({"type": "auth", "token": revoked}).to_string());
    let (_, close) = ws.texts_then_close();
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::POLICY, "token revoked")
    );
    // As a renewal on an open socket.
    let good = jwt("dave", "good", now);
    let mut ws = WsClient::connect_with(server.addr, "/topics/room.1/ws", &bearer(&good));
    ws.send_text(&json!({"type": "auth", "token": revoked}).to_string());
    let (_, close) = ws.texts_then_close();
    assert_eq!(close.reason, "token revoked");
}

#[test]
fn a_ticket_of_a_token_revoked_since_is_refused() {
    let server = start();
    let token = jwt("erin", "t-erin", unix_now());
    let ticket = request(server.addr, "POST", "/tickets?topic=room.1", &bearer(&token), b"");
    assert_eq!(ticket.status, 200);
    let ticket = body(&ticket)["ticket"].as_str().unwrap().to_owned();
    assert_eq!(revoke(&server, &json!({"jti": "t-erin"})).status, 200);
    let redeemed = SseClient::connect(server.addr, &format!("/topics/room.1/events?ticket={ticket}"), "");
    assert_eq!(redeemed.response.status, 401);
}

#[test]
fn revocations_need_the_publish_token_and_a_good_body() {
    let server = start();
    let token = jwt("frank", "t-frank", unix_now());
    let refused = request(
        server.addr,
        "POST",
        "/api/revoke",
        &bearer(&token),
        br#"{"jti":"t-frank"}"#,
    );
    assert_eq!(refused.status, 403);
    assert_eq!(body(&refused)["error"]["code"], "forbidden");
    for bad in [
        json!({}),
        json!({"jti": 7}),
        json!({"jti": "x", "until": 1}),
        json!({"subject": "frank", "before": "yesterday"}),
        json!({"jti": "x", "other": true}),
    ] {
        let answer = revoke(&server, &bad);
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(body(&answer)["error"]["code"], "bad_request", "{bad}");
    }
    let get = request(server.addr, "GET", "/api/revoke", &bearer(TOKEN), b"");
    assert_eq!(get.status, 405);
    // Nothing was revoked.
    assert_eq!(publish(&server, &token).status, 200);
}

#[test]
fn a_websocket_that_names_its_subject_later_is_ended_when_the_subject_is_revoked() {
    let server = start();
    let now = unix_now();
    // An open topic, no credential with the upgrade; the token comes
    // later, over the socket.
    let mut ws = WsClient::connect(server.addr, "/topics/news/ws");
    ws.send_text(&json!({"type": "auth", "token": jwt("erin", "e-1", now - 5)}).to_string());
    assert!(ws.recv_text().contains("auth-ok"));
    let answer = revoke(&server, &json!({"subject": "erin"}));
    assert_eq!(answer.status, 200);
    // Closed for the revocation, which the reason names: the token itself
    // is good for ten more minutes.
    let (_, close) = ws.texts_then_close();
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::POLICY, "token revoked")
    );
}
