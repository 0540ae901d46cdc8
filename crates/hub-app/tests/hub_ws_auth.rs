//! WebSockets that authenticate with their first message
//! (`{"type":"auth","token":"..."}`, what a browser can do: it cannot set
//! headers on a WebSocket), are warned before their token expires, and
//! refresh it in place; event streams told `auth-expired` before they end.
//! Tokens minted here as an issuer would (HS256, jsonwebtoken).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{HttpConn, Response, SseClient, TestServer, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubApp, HubAuth, HubSettings};
use tether_server::CloseCode;

use support::http::{bearer, request};
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
const ADMIN: &str = "admin-publish-token";

fn mint_with(secret: &[u8], claims: &Value) -> String {
    sign(secret, claims)
}

/// A token for `subject` good for `ttl` seconds from now.
fn jwt(subject: &str, subscribe: &[&str], publish: &[&str], ttl: u64) -> String {
    mint_with(
        SECRET,
        &json!({
            "sub": subject,
            "exp": unix_now() + ttl,
            "tether": { "sub": subscribe, "pub": publish },
        }),
    )
}

fn alice(ttl: u64) -> String {
    jwt("alice", &["user.{sub}.*"], &["news"], ttl)
}

/// A hub whose `user.*` topics are private, with the admin token, that
/// waits `auth_timeout` for a first message.
fn hub(auth_timeout: Duration) -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    auth.private = Private::new(["user.*"]).unwrap();
    auth.auth_timeout = auth_timeout;
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.auth = Some(auth);
    TestServer::start(config(), HubApp::new(settings))
}

fn publish(server: &TestServer, topic: &str, body: &str) -> Response {
    let response = request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &bearer(ADMIN),
        body,
    );
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    response
}

fn published_id(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// `tether_auth_denied_total` for `reason`, from `/metrics`.
fn denied(server: &TestServer, reason: &str) -> u64 {
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/metrics",
        &format!("Authorization: Bearer {ADMIN}\r\nConnection: close\r\n"),
    );
    let body = String::from_utf8(conn.response().body).unwrap();
    let prefix = format!("tether_auth_denied_total{{reason=\"{reason}\"}} ");
    let line = body.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
    line.unwrap_or_else(|| panic!("no {prefix} in {body}"))
        .parse()
        .unwrap()
}

fn auth_message(token: &str) -> String {
    json!({ "type": "auth", "token": token }).to_string()
}

fn recv_json(client: &mut WsClient) -> Value {
    let text = client.recv_text();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The next message is `{"type":"auth-ok",...}`; its `expires_in`.
fn expect_auth_ok(client: &mut WsClient) -> u64 {
    let message = recv_json(client);
    assert_eq!(message["type"], "auth-ok", "{message}");
    message["expires_in"].as_u64().unwrap()
}

#[test]
fn a_first_message_token_subscribes_and_events_flow() {
    let server = hub(Duration::from_secs(5));
    let first = published_id(&publish(&server, "user.alice.inbox", "one"));
    publish(&server, "user.alice.inbox", "two");

    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    // Not subscribed yet: what is published now is not sent to it.
    publish(&server, "user.alice.inbox", "while waiting");
    client.send_text(&auth_message(&alice(600)));
    let expires_in = expect_auth_ok(&mut client);
    assert!((598..=600).contains(&expires_in), "{expires_in}");
    publish(&server, "user.alice.inbox", "after");
    assert_eq!(recv_json(&mut client)["data"], "after");

    // Resuming works as with a token in the upgrade.
    let mut resumed = WsClient::connect(
        server.addr,
        &format!("/topics/user.alice.inbox/ws?lastEventId={first}"),
    );
    resumed.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut resumed);
    let replayed: Vec<Value> = (0..3).map(|_| recv_json(&mut resumed)).collect();
    let data: Vec<&str> = replayed.iter().map(|e| e["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["two", "while waiting", "after"]);
}

#[test]
fn a_first_message_token_may_grant_publishing_on_an_open_topic() {
    let server = hub(Duration::from_secs(5));
    let mut events = SseClient::connect(server.addr, "/topics/news/events", "");
    assert_eq!(events.response.status, 200);

    // Without ?auth=1 an open topic is subscribed at once, and its
    // anonymous subscriber may not publish.
    let mut anonymous = WsClient::connect(server.addr, "/topics/news/ws");
    anonymous.send_text("hello");
    let answer = recv_json(&mut anonymous);
    assert!(
        answer["error"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );

    let mut publisher = WsClient::connect(server.addr, "/topics/news/ws?auth=1");
    publisher.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut publisher);
    publisher.send_text("from alice");
    assert_eq!(events.next_event().data(), "from alice");

    // A token without the pub right subscribes, and may not publish.
    let mut reader = WsClient::connect(server.addr, "/topics/news/ws?auth=1");
    reader.send_text(&auth_message(&jwt("bob", &[], &[], 600)));
    expect_auth_ok(&mut reader);
    reader.send_text("from bob");
    let answer = recv_json(&mut reader);
    assert!(
        answer["error"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );
}

#[test]
fn any_other_first_message_closes_with_1008() {
    let server = hub(Duration::from_secs(5));
    let others = [
        "hello",
        r#"{"type":"auth"}"#,
        r#"{"type":"subscribe","token":"a.b.c"}"#,
        r#"{"type":"auth","token":"a.b.c","extra":1}"#,
    ];
    for other in others {
        let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
        client.send_text(other);
        let close = client.recv_close();
        assert_eq!(close.code, CloseCode::POLICY, "{other}");
        assert_eq!(close.reason, "authentication required", "{other}");
    }
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    client.send_binary(auth_message(&alice(600)).as_bytes());
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "authentication required");
    assert_eq!(denied(&server, "not_auth_message"), 5);
}

#[test]
fn a_bad_first_message_token_closes_with_1008_and_a_reason() {
    let server = hub(Duration::from_secs(5));
    let expired = mint_with(
        SECRET,
        &json!({ "sub": "alice", "exp": unix_now() - 10, "tether": { "sub": ["user.{sub}.*"] } }),
    );
    let forged = mint_with(
        b"another secret of thirty-two bytes",
        &json!({ "sub": "alice", "exp": unix_now() + 600, "tether": { "sub": ["*"] } }),
    );
    let cases = [
        (expired.as_str(), "invalid token: token expired"),
        (forged.as_str(), "invalid token: bad signature"),
        ("abc.def.ghi", "invalid token: malformed token"),
    ];
    for (token, reason) in cases {
        let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
        client.send_text(&auth_message(token));
        let close = client.recv_close();
        assert_eq!(close.code, CloseCode::POLICY);
        assert_eq!(close.reason, reason);
        assert!(!close.reason.contains(token));
    }
    // A good token that does not grant the topic.
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    client.send_text(&auth_message(&jwt("bob", &["user.{sub}.*"], &[], 600)));
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "the token does not grant this topic");
    assert_eq!(denied(&server, "expired"), 1);
    assert_eq!(denied(&server, "invalid"), 2);
    assert_eq!(denied(&server, "not_granted"), 1);
}

#[test]
fn no_first_message_in_time_closes_with_1008() {
    let server = hub(Duration::from_secs(1));
    let start = Instant::now();
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    let close = client.recv_close();
    let took = start.elapsed();
    // Closed for the timeout (its reason, its count), and not before it:
    // a bound below, which a slow machine only makes easier to meet.
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "authentication timeout");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(denied(&server, "auth_timeout"), 1);

    // One that authenticates in time stays past the timeout.
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    client.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut client);
    sleep(Duration::from_millis(2500));
    publish(&server, "user.alice.inbox", "still here");
    assert_eq!(recv_json(&mut client)["data"], "still here");
}

#[test]
fn a_websocket_is_warned_before_its_token_expires_and_refreshes_in_place() {
    let server = hub(Duration::from_secs(5));
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    // Six seconds left: warned two seconds before (a third of that).
    let exp = unix_now() + 6;
    let short = mint_with(
        SECRET,
        &json!({ "sub": "alice", "exp": exp, "tether": { "sub": ["user.{sub}.*"] } }),
    );
    client.send_text(&auth_message(&short));
    expect_auth_ok(&mut client);
    let warning = recv_json(&mut client);
    assert_eq!(warning["type"], "auth-expiring", "{warning}");
    let warned_at = unix_now();
    let left = warning["in"].as_u64().unwrap();
    assert!((1..=2).contains(&left), "{warning}");
    assert!(warned_at + 3 >= exp && warned_at < exp, "{warned_at} {exp}");

    client.send_text(&auth_message(&alice(600)));
    let expires_in = expect_auth_ok(&mut client);
    assert!(expires_in >= 598, "{expires_in}");
    // Past the first token's expiry, the connection is still there.
    while unix_now() <= exp + 1 {
        sleep(Duration::from_millis(200));
    }
    publish(&server, "user.alice.inbox", "refreshed");
    assert_eq!(recv_json(&mut client)["data"], "refreshed");
}

#[test]
fn a_websocket_whose_token_expires_is_closed_with_token_expired() {
    let server = hub(Duration::from_secs(5));
    let mut client = WsClient::connect(server.addr, "/topics/user.alice.inbox/ws");
    client.send_text(&auth_message(&alice(2)));
    expect_auth_ok(&mut client);
    loop {
        match client.next_event() {
            Some(tether_ws::Event::Close(close)) => {
                assert_eq!(close.code, CloseCode::POLICY);
                assert_eq!(close.reason, "token expired");
                assert_eq!(denied(&server, "session_expired"), 1);
                break;
            }
            Some(tether_ws::Event::Message(message)) => {
                let text = message.into_text().unwrap();
                assert!(text.contains("auth-expiring"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_refresh_that_no_longer_grants_the_topic_closes() {
    let server = hub(Duration::from_secs(5));
    // The token came with the upgrade; the refresh comes as a message.
    let upgrade = "/topics/user.alice.inbox/ws";
    let mut client = WsClient::connect(server.addr, upgrade);
    client.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut client);
    client.send_text(&auth_message(&jwt("alice", &["room.*"], &[], 600)));
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "topic no longer granted");

    // A refresh that does not verify closes too.
    let mut client = WsClient::connect(server.addr, upgrade);
    client.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut client);
    let forged = mint_with(
        b"another secret of thirty-two bytes",
        &json!({ "sub": "alice", "exp": unix_now() + 600, "tether": { "sub": ["*"] } }),
    );
    client.send_text(&auth_message(&forged));
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "invalid token: bad signature");
}

#[test]
fn a_refresh_may_grant_publishing() {
    let server = hub(Duration::from_secs(5));
    let mut events = SseClient::connect(server.addr, "/topics/news/events", "");
    // Subscribed without a token; a token sent later grants publishing.
    let mut client = WsClient::connect(server.addr, "/topics/news/ws");
    client.send_text(&auth_message(&alice(600)));
    expect_auth_ok(&mut client);
    client.send_text("now allowed");
    assert_eq!(events.next_event().data(), "now allowed");
}

#[test]
fn an_event_stream_is_told_auth_expired_before_it_ends() {
    let server = hub(Duration::from_secs(5));
    let mut events = SseClient::connect(
        server.addr,
        "/topics/user.alice.inbox/events",
        &format!("Authorization: Bearer {}\r\n", alice(2)),
    );
    assert_eq!(events.response.status, 200);
    let rest = events.read_to_end();
    let last = rest.last().expect("an auth-expired event");
    assert_eq!(last.event_type(), "auth-expired");
    assert_eq!(last.data(), "token expired");
}

#[test]
fn with_tickets_required_any_topic_takes_a_first_message_token() {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.require_ticket = true;
    settings.auth = Some(auth);
    let server = TestServer::start(config(), HubApp::new(settings));
    let mut client = WsClient::connect(server.addr, "/topics/news/ws");
    client.send_text(&auth_message(&jwt("bob", &[], &[], 600)));
    expect_auth_ok(&mut client);
    publish(&server, "news", "for bob");
    assert_eq!(recv_json(&mut client)["data"], "for bob");
    let mut client = WsClient::connect(server.addr, "/topics/news/ws");
    client.send_text("hello");
    assert_eq!(client.recv_close().reason, "authentication required");
}
