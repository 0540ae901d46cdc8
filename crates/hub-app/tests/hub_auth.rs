//! The hub with JSON Web Tokens, end to end: tokens minted here as an
//! issuer would (HS256, jsonwebtoken), presented in `Authorization:
//! Bearer`, the cookie or `?token=`, to subscribe to private topics over
//! SSE, WebSocket and long poll, to publish over HTTP and WebSocket, to
//! get tickets; and connections ended when their token expires.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::io::Write;

use common::{HttpConn, Response, SseClient, TestServer, WsClient, config, tcp};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubApp, HubAuth, HubSettings};
use tether_server::CloseCode;

use support::http::{bearer, request};
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
const ADMIN: &str = "admin-publish-token";

fn mint(claims: &Value) -> String {
    sign(SECRET, claims)
}

/// A token for `subject` good for `ttl` seconds from now.
fn jwt(subject: &str, subscribe: &[&str], publish: &[&str], ttl: u64) -> String {
    mint(&json!({
        "sub": subject,
        "exp": unix_now() + ttl,
        "tether": { "sub": subscribe, "pub": publish },
    }))
}

fn alice() -> String {
    jwt("alice", &["user.{sub}.*", "room.7"], &["room.7"], 600)
}

/// A hub whose `user.*` topics are private, with the admin token.
fn hub(query: bool) -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    auth.private = Private::new(["user.*", "room.*"]).unwrap();
    auth.query = query;
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.auth = Some(auth);
    TestServer::start(config(), HubApp::new(settings))
}

fn cookie(token: &str) -> String {
    format!("Cookie: theme=dark; tether_token={token}\r\n")
}

/// The status of a request for `target` with these header lines.
fn status(server: &TestServer, method: &str, target: &str, headers: &str) -> u16 {
    let mut conn = HttpConn::connect(server.addr);
    conn.request(method, target, &format!("{headers}Connection: close\r\n"));
    conn.response().status
}

/// The answer to a GET for `target`, without credentials.
fn status_response(server: &TestServer, target: &str) -> Response {
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", target, "Connection: close\r\n");
    conn.response()
}

/// The answer to a WebSocket upgrade for `target` with these header lines.
fn upgrade(server: &TestServer, target: &str, headers: &str) -> Response {
    let upgrade = common::Upgrade::new(server.addr, target);
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(text.replacen("\r\n", &format!("\r\n{headers}"), 1).as_bytes());
    // A 101 has no body, and a refusal's is not needed.
    conn.head_response()
}

/// A WebSocket opened with these header lines.
fn ws(server: &TestServer, target: &str, headers: &str) -> WsClient {
    let upgrade = common::Upgrade::new(server.addr, target);
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let mut stream = tcp(server.addr);
    stream
        .write_all(text.replacen("\r\n", &format!("\r\n{headers}"), 1).as_bytes())
        .unwrap();
    WsClient::finish(stream, upgrade)
}

fn publish(server: &TestServer, topic: &str, headers: &str, body: &str) -> Response {
    request(server.addr, "POST", &format!("/topics/{topic}"), headers, body)
}

/// Every way to subscribe to `topic` answers `expected`.
fn subscribe_statuses(server: &TestServer, topic: &str, headers: &str, query: &str, expected: u16) {
    let events = SseClient::connect(server.addr, &format!("/topics/{topic}/events{query}"), headers);
    assert_eq!(
        events.response.status, expected,
        "SSE {topic} {headers:?} {query}"
    );
    let sep = if query.is_empty() { '?' } else { '&' };
    let poll = status(
        server,
        "GET",
        &format!("/topics/{topic}/poll{query}{sep}timeout=0"),
        headers,
    );
    let poll_expected = if expected == 200 {
        [200, 204]
    } else {
        [expected; 2]
    };
    assert!(poll_expected.contains(&poll), "poll {topic} {headers:?}: {poll}");
    // A WebSocket without any credential, where one is needed, is let in
    // to send its token as its first message; with one that is refused,
    // it is refused.
    let presented = headers.contains("Authorization:") || headers.contains("tether_token=");
    let later = expected == 401 && !presented;
    let ws_expected = if expected == 200 || later { 101 } else { expected };
    let response = upgrade(server, &format!("/topics/{topic}/ws{query}"), headers);
    assert_eq!(
        response.status, ws_expected,
        "WebSocket {topic} {headers:?} {query}"
    );
    if later {
        let mut client = ws(server, &format!("/topics/{topic}/ws{query}"), headers);
        client.send_text("hello");
        let close = client.recv_close();
        assert_eq!(close.code, CloseCode::POLICY);
        assert_eq!(close.reason, "authentication required");
    }
}

#[test]
fn each_token_source_opens_a_private_topic() {
    let server = hub(false);
    let token = alice();
    subscribe_statuses(&server, "user.alice.inbox", &bearer(&token), "", 200);
    subscribe_statuses(&server, "user.alice.inbox", &cookie(&token), "", 200);
    // The query is not read unless allowed.
    subscribe_statuses(&server, "user.alice.inbox", "", &format!("?token={token}"), 401);

    let server = hub(true);
    subscribe_statuses(&server, "user.alice.inbox", "", &format!("?token={token}"), 200);
    // The header comes first: a bad one is not saved by a good cookie.
    let both = format!("{}{}", bearer("x.y.z"), cookie(&token));
    subscribe_statuses(&server, "user.alice.inbox", &both, "", 401);
    // Another cookie's name is not read.
    let other = format!("Cookie: token={token}\r\n");
    subscribe_statuses(&server, "user.alice.inbox", &other, "", 401);
}

#[test]
fn private_topics_need_a_token_that_grants_them() {
    let server = hub(false);
    subscribe_statuses(&server, "user.alice.inbox", "", "", 401);
    let response = status_response(&server, "/topics/user.alice.inbox/events");
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"tether\"")
    );

    // {sub} is alice: bob's topics are not hers.
    let token = alice();
    subscribe_statuses(&server, "user.bob.inbox", &bearer(&token), "", 403);
    subscribe_statuses(&server, "user.alice", &bearer(&token), "", 403);
    let response = upgrade(&server, "/topics/user.bob.inbox/ws", &bearer(&token));
    assert!(
        response
            .header("www-authenticate")
            .is_some_and(|h| h.contains("insufficient_scope"))
    );
    let bob = jwt("bob", &["user.{sub}.*"], &[], 600);
    subscribe_statuses(&server, "user.bob.inbox", &bearer(&bob), "", 200);
    subscribe_statuses(&server, "user.alice.inbox", &bearer(&bob), "", 403);
    // A token without a tether claim grants nothing.
    let bare = mint(&json!({ "sub": "alice", "exp": unix_now() + 600 }));
    subscribe_statuses(&server, "user.alice.inbox", &bearer(&bare), "", 403);
    // The admin token opens everything.
    subscribe_statuses(&server, "user.alice.inbox", &bearer(ADMIN), "", 200);
}

#[test]
fn bad_and_expired_tokens_are_refused_on_every_topic() {
    let server = hub(false);
    let expired = mint(&json!({
        "sub": "alice",
        "exp": unix_now() - 10,
        "tether": { "sub": ["user.{sub}.*"] },
    }));
    let forged = {
        let claims = json!({ "sub": "alice", "exp": unix_now() + 600, "tether": { "sub": ["*"] } });
        sign(b"another secret of thirty-two bytes", &claims)
    };
    let no_exp = mint(&json!({ "sub": "alice", "tether": { "sub": ["*"] } }));
    for bad in [expired.as_str(), forged.as_str(), no_exp.as_str(), "garbage"] {
        subscribe_statuses(&server, "user.alice.inbox", &bearer(bad), "", 401);
        subscribe_statuses(&server, "user.alice.inbox", &cookie(bad), "", 401);
        // An open topic is open without a token, not with a bad one.
        subscribe_statuses(&server, "news", &bearer(bad), "", 401);
        subscribe_statuses(&server, "news", &cookie(bad), "", 401);
        let response = publish(&server, "room.7", &bearer(bad), "x");
        assert_eq!(response.status, 401);
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token"))
        );
    }
    subscribe_statuses(&server, "news", "", "", 200);
    subscribe_statuses(&server, "news", &bearer(&alice()), "", 200);
    // Another scheme in Authorization is a bad token too.
    subscribe_statuses(&server, "news", "Authorization: Basic YTpi\r\n", "", 401);
}

#[test]
fn publishing_needs_the_pub_right_or_the_admin_token() {
    let server = hub(false);
    let token = alice();
    let mut events = SseClient::connect(server.addr, "/topics/room.7/events", &bearer(&token));
    assert_eq!(events.response.status, 200);

    let response = publish(&server, "room.7", &bearer(&token), "by alice");
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(events.next_event().data(), "by alice");
    let response = publish(&server, "room.7", &cookie(&token), "by cookie");
    assert_eq!(response.status, 200);
    assert_eq!(events.next_event().data(), "by cookie");
    assert_eq!(publish(&server, "room.7", &bearer(ADMIN), "by admin").status, 200);
    assert_eq!(events.next_event().data(), "by admin");

    // Subscribing to a topic does not grant publishing to it.
    assert_eq!(
        publish(&server, "user.alice.inbox", &bearer(&token), "x").status,
        403
    );
    assert_eq!(publish(&server, "news", &bearer(&token), "x").status, 403);
    assert_eq!(publish(&server, "room.7", "", "x").status, 401);

    // Over WebSocket: the pub right lets the subscriber publish.
    let mut publisher = ws(&server, "/topics/room.7/ws", &bearer(&token));
    publisher.send_text("over ws");
    assert_eq!(events.next_event().data(), "over ws");
    let reader = jwt("reader", &["room.7"], &[], 600);
    let mut reader = ws(&server, "/topics/room.7/ws", &bearer(&reader));
    reader.send_text("not mine");
    let answer: Value = serde_json::from_str(&reader.recv_text()).unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );
}

#[test]
fn tickets_minted_by_a_token_carry_its_rights() {
    let server = hub(false);
    let token = alice();
    let ticket = |query: &str, headers: &str| {
        let mut conn = HttpConn::connect(server.addr);
        conn.request(
            "POST",
            &format!("/tickets{query}"),
            &format!("{headers}Content-Length: 0\r\nConnection: close\r\n"),
        );
        conn.response()
    };
    let response = ticket("?topic=user.alice.inbox", &bearer(&token));
    assert_eq!(response.status, 200);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    let value = body["ticket"].as_str().unwrap().to_owned();
    let events = SseClient::connect(
        server.addr,
        &format!("/topics/user.alice.inbox/events?ticket={value}"),
        "",
    );
    assert_eq!(events.response.status, 200);

    assert_eq!(ticket("?topic=user.bob.inbox", &bearer(&token)).status, 403);
    // Without a topic, a ticket with the token's rights (tests/hub_tickets.rs).
    assert_eq!(ticket("", &bearer(&token)).status, 200);
    assert_eq!(
        ticket("?topic=user.alice.inbox&publish=1", &bearer(&token)).status,
        403
    );
    assert_eq!(ticket("?topic=room.7&publish=1", &bearer(&token)).status, 200);
    assert_eq!(ticket("?topic=news", "").status, 401);
    assert_eq!(ticket("?topic=news", &bearer("x.y.z")).status, 401);
}

/// A token good for two more seconds.
fn short_token() -> String {
    jwt("alice", &["user.{sub}.*"], &[], 2)
}

/// `tether_auth_denied_total{reason="session_expired"}`: sessions let in
/// and then ended by their token's expiry (a token refused on arrival
/// counts as `expired` instead).
fn sessions_expired(server: &TestServer) -> u64 {
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/metrics",
        &format!("{}Connection: close\r\n", bearer(ADMIN)),
    );
    let body = String::from_utf8(conn.response().body).unwrap();
    let prefix = "tether_auth_denied_total{reason=\"session_expired\"} ";
    let line = body.lines().find_map(|l| l.strip_prefix(prefix));
    line.unwrap_or_else(|| panic!("no {prefix} in {body}"))
        .parse()
        .unwrap()
}

/// The end of an event stream let in with a token that expired: its
/// last event says so.
fn expect_expired_end(events: &mut SseClient) {
    let ended = events.read_to_end();
    assert!(events.is_ended());
    let last = ended.last().map(|e| (e.event_type(), e.data()));
    assert_eq!(last, Some(("auth-expired", "token expired")), "{ended:?}");
}

#[test]
fn an_event_stream_ends_when_its_token_expires() {
    let server = hub(false);
    let mut events = SseClient::connect(
        server.addr,
        "/topics/user.alice.inbox/events",
        &bearer(&short_token()),
    );
    assert_eq!(events.response.status, 200);
    // A stream without a token, on an open topic, stays.
    let mut open = SseClient::connect(server.addr, "/topics/news/events", "");
    // Let in (200 above), then ended by the expiry.
    expect_expired_end(&mut events);
    assert_eq!(sessions_expired(&server), 1);
    assert_eq!(publish(&server, "news", &bearer(ADMIN), "still here").status, 200);
    assert_eq!(open.next_event().data(), "still here");
}

#[test]
fn a_websocket_is_closed_with_1008_when_its_token_expires() {
    let server = hub(false);
    let mut client = ws(&server, "/topics/user.alice.inbox/ws", &cookie(&short_token()));
    // Warned a second before (unless a loaded machine's tick came only at
    // the deadline), then closed for the expiry.
    let (texts, close) = client.texts_then_close();
    assert!(texts.iter().all(|t| t.contains("auth-expiring")), "{texts:?}");
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::POLICY, "token expired")
    );
    assert_eq!(sessions_expired(&server), 1);
}

#[test]
fn a_ticket_lives_no_longer_than_the_token_that_minted_it() {
    let server = hub(false);
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "POST",
        "/tickets?topic=user.alice.inbox",
        &format!(
            "{}Content-Length: 0\r\nConnection: close\r\n",
            bearer(&short_token())
        ),
    );
    let body: Value = serde_json::from_slice(&conn.response().body).unwrap();
    let value = body["ticket"].as_str().unwrap().to_owned();
    let mut events = SseClient::connect(
        server.addr,
        &format!("/topics/user.alice.inbox/events?ticket={value}"),
        "",
    );
    assert_eq!(events.response.status, 200);
    // Ended by the minting token's expiry, which the ticket carried.
    expect_expired_end(&mut events);
    assert_eq!(sessions_expired(&server), 1);
}

#[test]
fn denials_are_counted_by_reason_in_metrics() {
    let server = hub(false);
    let expired = mint(&json!({
        "sub": "alice",
        "exp": unix_now() - 60,
        "tether": { "sub": ["user.{sub}.*"] },
    }));
    assert_eq!(
        status(&server, "GET", "/topics/user.alice/poll?timeout=0", ""),
        401
    );
    assert_eq!(
        status(
            &server,
            "GET",
            "/topics/user.alice/poll?timeout=0",
            &bearer("not.a.token")
        ),
        401
    );
    let response = {
        let mut conn = HttpConn::connect(server.addr);
        conn.request(
            "GET",
            "/topics/user.alice/poll?timeout=0",
            &format!("{}Connection: close\r\n", bearer(&expired)),
        );
        conn.response()
    };
    assert_eq!(response.status, 401);
    assert!(
        response
            .header("www-authenticate")
            .is_some_and(|v| v.contains("error=\"invalid_token\"") && v.contains("token expired")),
        "{:?}",
        response.header("www-authenticate")
    );
    assert_eq!(
        status(
            &server,
            "GET",
            "/topics/user.bob/poll?timeout=0",
            &bearer(&alice())
        ),
        403
    );
    assert_eq!(status(&server, "POST", "/topics/room.8", &bearer(&alice())), 403);

    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/metrics",
        &format!("{}Connection: close\r\n", bearer(ADMIN)),
    );
    let metrics = conn.response();
    let text = String::from_utf8_lossy(&metrics.body);
    for (reason, count) in [("missing", 1), ("invalid", 1), ("expired", 1), ("not_granted", 2)] {
        let line = format!("tether_auth_denied_total{{reason=\"{reason}\"}} {count}");
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
    assert!(text.contains("tether_auth_denied_total{reason=\"session_expired\"} 0"));
}
