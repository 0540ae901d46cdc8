//! The most connections per subject end to end, through sockets, on two
//! event loops: a subject's WebSockets and event streams are counted over
//! both loops, one over the limit is answered 429 with `Retry-After`
//! before it starts (an upgrade or a stream), a WebSocket that
//! authenticates with its first message is closed with 1008 and the
//! reason, long polls and other subjects are not counted, and a place
//! comes back however a connection ends (closed, dropped, disconnected by
//! the server API, shut down).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use tether_testkit as common;

use std::time::{Duration, Instant};

use common::{HttpConn, Response, SseClient, TestServer, Upgrade, WsClient, config, request};
use serde_json::json;
use tether_auth::{Keys, Private};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{CloseCode, Handshake};

use support::http::bearer;
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a connection limit test secret!!";
const TOKEN: &str = "limit-publish-token";

/// The hub on two loops, each subject with at most `max` connections,
/// `room.*` private (its WebSockets may authenticate with their first
/// message).
fn start(max: usize) -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.private = Private::new(["room.*"]).unwrap();
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.auth = Some(auth);
    settings.max_connections_per_subject = Some(max);
    let shared = HubShared::new(settings, 2);
    TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i))
}

fn jwt(subject: &str) -> String {
    let now = unix_now();
    sign(
        SECRET,
        &json!({ "sub": subject, "exp": now + 600, "tether": { "sub": ["*"], "pub": [] } }),
    )
}

/// The answer to a WebSocket upgrade of `target` with these header lines
/// (the 101's head, or a refusal).
fn upgrade(server: &TestServer, target: &str, headers: &str) -> Response {
    let mut upgrade = Upgrade::new(server.addr, target);
    let end = upgrade.request.len().saturating_sub(2);
    upgrade.request.splice(end..end, headers.bytes());
    let mut conn = HttpConn::connect(server.addr);
    conn.send(&upgrade.request);
    conn.response()
}

fn assert_too_many(response: &Response) {
    assert_eq!(
        response.status,
        429,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "too many connections for this subject\n"
    );
}

fn stream(server: &TestServer, topic: &str, token: &str) -> SseClient {
    SseClient::connect(server.addr, &format!("/topics/{topic}/events"), &bearer(token))
}

/// Tries `open` until it is let in (a place freed by a connection that
/// ended is given back when the server has seen it end).
fn until_let_in(mut open: impl FnMut() -> u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = open();
        if status != 429 {
            assert!(matches!(status, 101 | 200), "{status}");
            return;
        }
        assert!(Instant::now() < deadline, "the place never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(server: &TestServer, line_start: &str) -> String {
    let metrics = request(server.addr, "GET", "/metrics", "", b"");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
        .to_owned()
}

#[test]
fn a_subject_over_its_limit_is_refused_before_the_connection_starts() {
    let server = start(2);
    let alice = jwt("alice");
    // Two connections, of both kinds (on either loop): the most.
    let _ws = WsClient::connect_with(server.addr, "/topics/news/ws", &bearer(&alice));
    let first = stream(&server, "news", &alice);
    assert_eq!(first.response.status, 200);
    // A third, of either kind, on any topic: refused before it starts.
    assert_too_many(&upgrade(&server, "/topics/other/ws", &bearer(&alice)));
    let third = stream(&server, "other", &alice);
    assert_eq!(third.response.status, 429);
    assert_eq!(third.response.header("retry-after"), Some("1"));
    // Another subject, anonymous readers and long polls are not counted.
    let bob = stream(&server, "news", &jwt("bob"));
    assert_eq!(bob.response.status, 200);
    let anonymous = SseClient::connect(server.addr, "/topics/news/events", "");
    assert_eq!(anonymous.response.status, 200);
    let poll = request(
        server.addr,
        "GET",
        "/topics/news/poll?timeout=0",
        &bearer(&alice),
        b"",
    );
    assert_ne!(poll.status, 429);
    assert_eq!(
        metric(&server, "tether_hub_connection_limited_total"),
        "tether_hub_connection_limited_total 2"
    );
}

#[test]
fn a_websocket_that_authenticates_by_message_is_closed_over_the_limit() {
    let server = start(1);
    let alice = jwt("alice");
    let _open = stream(&server, "room.1", &alice);
    // No credential with the upgrade: it is let in to send its token,
    // which names a subject with no place left.
    let mut ws = WsClient::connect(server.addr, "/topics/room.1/ws");
    ws.send_text(&json!({"type": "auth", "token": alice}).to_string());
    let (_, close) = ws.texts_then_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "too many connections for this subject");
    // Bob's token is taken.
    let mut ws = WsClient::connect(server.addr, "/topics/room.1/ws");
    ws.send_text(&json!({"type": "auth", "token": jwt("bob")}).to_string());
    assert!(ws.recv_text().contains("auth-ok"));
}

#[test]
fn a_place_comes_back_however_the_connection_ends() {
    let server = start(1);
    let alice = jwt("alice");
    let mut held: Option<SseClient> = None;
    // An event stream of alice's, kept in `held` when let in.
    let open_held = |held: &mut Option<SseClient>| {
        let client = stream(&server, "news", &alice);
        let status = client.response.status;
        if status == 200 {
            *held = Some(client);
        }
        status
    };

    // Closed by the client.
    let mut ws = WsClient::connect_with(server.addr, "/topics/news/ws", &bearer(&alice));
    assert_eq!(stream(&server, "news", &alice).response.status, 429);
    ws.close(CloseCode::NORMAL, "");
    let _ = ws.recv_close();
    drop(ws);
    until_let_in(|| open_held(&mut held));
    // Dropped: the TCP connection gone, no word said.
    assert_too_many(&upgrade(&server, "/topics/news/ws", &bearer(&alice)));
    held = None;
    until_let_in(|| open_held(&mut held));
    // Disconnected through the server API.
    let disconnect = request(
        server.addr,
        "POST",
        "/api/disconnect",
        &bearer(TOKEN),
        json!({"user": "alice"}).to_string().as_bytes(),
    );
    assert_eq!(
        disconnect.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&disconnect.body)
    );
    until_let_in(|| open_held(&mut held));
    assert!(held.is_some());
}

/// Over HTTP/2, each event stream is a connection of the subject: two
/// streams on one HTTP/2 connection take two places, and a third is
/// answered 429 on its own stream.
#[test]
fn event_streams_over_http2_are_counted_one_by_one() {
    let server = start(2);
    let alice = format!("Bearer {}", jwt("alice"));
    let fields = [("authorization", alice.as_str())];
    let mut client = common::h2::H2Client::connect(server.addr);
    for _ in 0..2 {
        let events = client.get("/topics/news/events", &fields);
        assert_eq!(client.head(events).status(), Some(200));
    }
    let third = client.get("/topics/news/events", &fields);
    let refused = client.finish(third);
    assert_eq!(refused.status(), Some(429));
    assert_eq!(refused.field("retry-after").as_deref(), Some("1"));
    // Over HTTP/1.1 too, the same two count.
    let over = stream(&server, "news", &jwt("alice"));
    assert_eq!(over.response.status, 429);
}

#[test]
fn an_anonymous_websocket_that_sends_a_token_later_takes_its_subjects_place() {
    let server = start(1);
    let alice = jwt("alice");
    // An open topic: let in without a credential, subscribed at once; a
    // token sent later names its subject, who has one place.
    let mut first = WsClient::connect(server.addr, "/topics/news/ws");
    first.send_text(&json!({"type": "auth", "token": alice}).to_string());
    assert!(first.recv_text().contains("auth-ok"));
    // Counted: another of hers is refused before it starts...
    assert_too_many(&upgrade(&server, "/topics/other/ws", &bearer(&alice)));
    // ...or closed when it names her later.
    let mut second = WsClient::connect(server.addr, "/topics/news/ws");
    second.send_text(&json!({"type": "auth", "token": alice}).to_string());
    let (texts, close) = second.texts_then_close();
    assert!(texts.iter().all(|t| !t.contains("auth-ok")), "{texts:?}");
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "too many connections for this subject");
    // A connection stays one subject's: a token of another is refused.
    first.send_text(&json!({"type": "auth", "token": jwt("bob")}).to_string());
    let (_, close) = first.texts_then_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert_eq!(close.reason, "the token names another subject");
}
