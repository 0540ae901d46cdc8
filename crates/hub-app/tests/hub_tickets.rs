//! Tickets issued for a holder: the subject and rights of the token that
//! asked for one (or of the holder the publish token names), exactly
//! those on the connection the ticket opens, until the token expires; and
//! long polls answered when their token expires. Tokens minted here as an
//! issuer would (HS256, jsonwebtoken).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::time::{Duration, Instant};

use common::{HttpConn, Response, SseClient, TestServer, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubApp, HubAuth, HubSettings};

use support::http::{bearer, request};
use support::jwt::{rights, unix_now};

const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
const ADMIN: &str = "admin-publish-token";

/// A token for `subject` good for `ttl` seconds from now.
fn jwt(subject: &str, subscribe: &[&str], publish: &[&str], ttl: u64) -> String {
    rights(SECRET, subject, subscribe, publish, ttl)
}

fn alice(ttl: u64) -> String {
    jwt("alice", &["user.{sub}.*", "room.7"], &["room.7"], ttl)
}

/// A hub whose `user.*` and `room.*` topics are private, with the admin
/// token, no leeway.
fn hub() -> TestServer {
    hub_tuned(|_| {})
}

/// [`hub`], its settings changed by `tune` first.
fn hub_tuned(tune: impl FnOnce(&mut HubSettings)) -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    auth.private = Private::new(["user.*", "room.*"]).unwrap();
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.auth = Some(auth);
    tune(&mut settings);
    TestServer::start(config(), HubApp::new(settings))
}

fn post(server: &TestServer, target: &str, headers: &str, body: &str) -> Response {
    request(server.addr, "POST", target, headers, body)
}

/// A ticket asked for with these headers and body: the ticket and the
/// whole answer.
fn ticket(server: &TestServer, query: &str, headers: &str, body: &str) -> (String, Value) {
    let response = post(server, &format!("/tickets{query}"), headers, body);
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    (answer["ticket"].as_str().unwrap().to_owned(), answer)
}

fn sse_status(server: &TestServer, topic: &str, ticket: &str) -> u16 {
    SseClient::connect(
        server.addr,
        &format!("/topics/{topic}/events?ticket={ticket}"),
        "",
    )
    .response
    .status
}

fn get(server: &TestServer, target: &str, headers: &str) -> Response {
    request(server.addr, "GET", target, headers, "")
}

/// The value of the `/metrics` series `series` (its name and labels).
fn metric(server: &TestServer, series: &str) -> u64 {
    let body = String::from_utf8(get(server, "/metrics", &bearer(ADMIN)).body).unwrap();
    let prefix = format!("{series} ");
    body.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {series} in {body}"))
        .parse()
        .unwrap()
}

/// `tether_auth_denied_total` for `reason`: `expired` counts tokens
/// refused on arrival, `session_expired` sessions (long polls among them)
/// ended by their token's expiry after they were let in.
fn denied(server: &TestServer, reason: &str) -> u64 {
    metric(
        server,
        &format!("tether_auth_denied_total{{reason=\"{reason}\"}}"),
    )
}

/// Waits until `count` long polls are held.
fn wait_for_polls(server: &TestServer, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(server, "tether_hub_subscribers{transport=\"poll\"}") != count {
        assert!(Instant::now() < deadline, "never {count} long polls held");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_tokens_ticket_carries_its_subject_and_exactly_its_rights() {
    let server = hub();
    let token = alice(600);
    // No topic named: the ticket is good for whatever the token grants.
    let (first, answer) = ticket(&server, "", &bearer(&token), "");
    assert_eq!(answer["sub"], "alice");
    assert_eq!(sse_status(&server, "user.alice.inbox", &first), 200);
    let (other, _) = ticket(&server, "", &bearer(&token), "");
    assert_eq!(sse_status(&server, "user.bob.inbox", &other), 403);
    // Single use, refused or not.
    assert_eq!(sse_status(&server, "user.alice.inbox", &other), 403);
    let (open, _) = ticket(&server, "", &bearer(&token), "");
    assert_eq!(sse_status(&server, "news", &open), 200);
    // A long poll with one: the same rights.
    let (poll, _) = ticket(&server, "", &bearer(&token), "");
    let response = get(
        &server,
        &format!("/topics/user.bob.inbox/poll?timeout=0&ticket={poll}"),
        "",
    );
    assert_eq!(response.status, 403);

    // The token's own rights decide publishing, over the ticket's WebSocket.
    let mut events = SseClient::connect(server.addr, "/topics/room.7/events", &bearer(&token));
    assert_eq!(events.response.status, 200);
    let (room, _) = ticket(&server, "", &bearer(&token), "");
    let mut publisher = WsClient::connect(server.addr, &format!("/topics/room.7/ws?ticket={room}"));
    publisher.send_text("through a ticket");
    assert_eq!(events.next_event().data(), "through a ticket");
    let (inbox, _) = ticket(&server, "", &bearer(&token), "");
    let mut reader = WsClient::connect(
        server.addr,
        &format!("/topics/user.alice.inbox/ws?ticket={inbox}"),
    );
    reader.send_text("not allowed");
    let answer: Value = serde_json::from_str(&reader.recv_text()).unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("not allowed"),
        "{answer}"
    );

    // A token names its own holder: a body naming another is refused.
    let response = post(
        &server,
        "/tickets",
        &bearer(&token),
        r#"{"sub":"bob","tether":{"sub":["*"]}}"#,
    );
    assert_eq!(response.status, 400);
}

#[test]
fn the_publish_token_names_a_tickets_holder_in_the_body() {
    let server = hub();
    let carol = r#"{"sub":"carol","tether":{"sub":["user.{sub}.*"],"pub":["room.9"]}}"#;
    let (value, answer) = ticket(&server, "", &bearer(ADMIN), carol);
    assert_eq!(answer["sub"], "carol");
    assert_eq!(sse_status(&server, "user.alice.inbox", &value), 403);
    let (value, _) = ticket(&server, "", &bearer(ADMIN), carol);
    assert_eq!(sse_status(&server, "user.carol.inbox", &value), 200);
    // Naming a topic the holder may not read, or publish to, is refused.
    let response = post(&server, "/tickets?topic=user.alice.inbox", &bearer(ADMIN), carol);
    assert_eq!(response.status, 403);
    let response = post(
        &server,
        "/tickets?topic=user.carol.inbox&publish=1",
        &bearer(ADMIN),
        carol,
    );
    assert_eq!(response.status, 403);
    let (_, answer) = ticket(
        &server,
        "?topic=room.9&publish=1",
        &bearer(ADMIN),
        r#"{"sub":"carol","tether":{"sub":["room.9"],"pub":["room.9"]}}"#,
    );
    assert_eq!(answer["sub"], "carol");

    // Without a body, the publish token's ticket reaches every topic, as
    // the publish token does.
    let (value, answer) = ticket(&server, "", &bearer(ADMIN), "");
    assert!(answer.get("sub").is_none(), "{answer}");
    assert_eq!(sse_status(&server, "user.alice.inbox", &value), 200);

    for bad in [
        "not json",
        "[]",
        r#"{"sub":1}"#,
        r#"{"sub":"a.b","tether":{"sub":["user.{sub}"]}}"#,
        r#"{"tether":{"sub":["a*b"]}}"#,
        &format!(r#"{{"sub":"carol","exp":{}}}"#, unix_now() - 1),
    ] {
        let response = post(&server, "/tickets", &bearer(ADMIN), bad);
        assert_eq!(response.status, 400, "{bad}");
    }
    let long = format!(r#"{{"sub":"{}"}}"#, "a".repeat(9000));
    assert_eq!(post(&server, "/tickets", &bearer(ADMIN), &long).status, 400);
}

#[test]
fn a_tickets_connection_ends_when_its_holders_token_expires() {
    let server = hub();
    // A holder named with an exp two seconds away, and a token's.
    let exp = unix_now() + 2;
    let claims = format!(r#"{{"sub":"carol","exp":{exp},"tether":{{"sub":["user.{{sub}}.*"]}}}}"#);
    let (named, _) = ticket(&server, "", &bearer(ADMIN), &claims);
    let (from_token, _) = ticket(&server, "", &bearer(&alice(2)), "");
    let mut carol = SseClient::connect(
        server.addr,
        &format!("/topics/user.carol.inbox/events?ticket={named}"),
        "",
    );
    assert_eq!(carol.response.status, 200);
    let mut alice_ws = WsClient::connect(
        server.addr,
        &format!("/topics/user.alice.inbox/ws?ticket={from_token}"),
    );
    // Ended by the expiry (its event last, saying so), and not before it.
    let ended = carol.read_to_end();
    let last = ended.last().map(|e| (e.event_type(), e.data()));
    assert_eq!(last, Some(("auth-expired", "token expired")), "{ended:?}");
    assert!(unix_now() >= exp, "ended before its token expired");
    // Warned a second before (unless a loaded machine's tick came only at
    // the deadline), then closed for the expiry.
    let (texts, close) = alice_ws.texts_then_close();
    assert!(texts.iter().all(|t| t.contains("auth-expiring")), "{texts:?}");
    assert_eq!(
        (close.code, close.reason.as_str()),
        (tether_server::CloseCode::POLICY, "token expired")
    );
    // Both let in, both ended by the expiry: nothing refused on arrival.
    assert_eq!(
        (denied(&server, "session_expired"), denied(&server, "expired")),
        (2, 0)
    );

    // A ticket redeemed after its token expired is refused.
    let (late, _) = ticket(&server, "", &bearer(&alice(1)), "");
    std::thread::sleep(Duration::from_millis(2100));
    let response = get(
        &server,
        &format!("/topics/user.alice.inbox/events?ticket={late}"),
        "",
    );
    assert_eq!(response.status, 401);
}

#[test]
fn a_long_poll_is_answered_when_its_token_expires() {
    let server = hub();
    // Held up to 25 s, past the client's read timeout (10 s), so that no
    // answer here is the poll's own timeout (a 200 besides); the token is
    // good for 2.
    let response = get(
        &server,
        "/topics/user.alice.inbox/poll?timeout=25",
        &bearer(&alice(2)),
    );
    assert_eq!(response.status, 401);
    assert!(
        response
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token") && h.contains("token expired")),
        "{:?}",
        response.header("www-authenticate")
    );
    // Let in and held, then answered at the expiry: not refused on
    // arrival, as a token already expired is (with the same 401).
    assert_eq!(
        (denied(&server, "session_expired"), denied(&server, "expired")),
        (1, 0)
    );

    // Through a ticket minted with such a token, the same.
    let (value, _) = ticket(&server, "", &bearer(&alice(2)), "");
    let response = get(
        &server,
        &format!("/topics/user.alice.inbox/poll?timeout=25&ticket={value}"),
        "",
    );
    assert_eq!(response.status, 401);
    assert_eq!(
        (denied(&server, "session_expired"), denied(&server, "expired")),
        (2, 0)
    );

    // A long poll with a token good for longer than its wait gets its
    // usual empty answer; one without a token on an open topic too.
    let response = get(
        &server,
        "/topics/user.alice.inbox/poll?timeout=1",
        &bearer(&alice(600)),
    );
    assert_eq!(response.status, 200);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["events"], json!([]));
    assert_eq!(get(&server, "/topics/news/poll?timeout=1", "").status, 200);

    // The events still reach a long poll before its token expires: the
    // publish follows the poll's arrival (a publish before it would be
    // behind the poll's starting point, and the poll would end at the
    // expiry).
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/topics/user.alice.inbox/poll?timeout=25",
        &format!("{}Connection: close\r\n", bearer(&alice(3))),
    );
    wait_for_polls(&server, 1);
    let published = post(&server, "/topics/user.alice.inbox", &bearer(ADMIN), "in time");
    assert_eq!(published.status, 200);
    let response = conn.response();
    assert_eq!(response.status, 200);
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["events"][0]["data"], "in time");
}

#[test]
fn one_subject_cannot_take_every_ticket() {
    let server = hub_tuned(|settings| settings.max_tickets_per_subject = 3);
    let token = alice(600);
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(ticket(&server, "", &bearer(&token), "").0);
    }
    // Past its share: 429, told how long until its oldest expires.
    let refused = post(&server, "/tickets", &bearer(&token), "");
    assert_eq!(
        (refused.status, &refused.body[..]),
        (429, &b"too many tickets outstanding for this subject\n"[..])
    );
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Another subject still gets one, and so does the publish token.
    let bob = jwt("bob", &["user.{sub}.*"], &[], 600);
    ticket(&server, "", &bearer(&bob), "");
    ticket(&server, "", &bearer(ADMIN), "");
    // The backend naming alice counts against her share too.
    let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, unix_now() + 600);
    assert_eq!(post(&server, "/tickets", &bearer(ADMIN), &claims).status, 429);
    // One used makes room for one more.
    assert_eq!(sse_status(&server, "user.alice.inbox", &taken[0]), 200);
    ticket(&server, "", &bearer(&token), "");
    assert_eq!(post(&server, "/tickets", &bearer(&token), "").status, 429);
}
