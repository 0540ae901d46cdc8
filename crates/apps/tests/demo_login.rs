//! The demo's sign-in, end to end: `POST /demo/login` gives a token for a
//! valid name, with the documented rights, in the answer and in an
//! `HttpOnly; SameSite=Lax` cookie (`Secure` when asked); the cookie then
//! opens the user's private topic and no one else's, and lets the user
//! write to another's.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{HttpConn, Response, SseClient, TestServer, config};
use serde_json::Value;
use tether_apps::{Demo, DemoLogin};
use tether_auth::{Keys, Validation, verify};

const SECRET: &[u8] = b"the demo test's secret, 32 bytes";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn demo(secure: bool) -> TestServer {
    let mut login = DemoLogin::with_secret(SECRET).unwrap();
    login.secure = secure;
    TestServer::start(config(), Demo::signed_in(login))
}

fn post(server: &TestServer, target: &str, headers: &str, body: &str) -> Response {
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "POST {target} HTTP/1.1\r\nHost: test\r\n{headers}\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    conn.response()
}

fn login(server: &TestServer, body: &str) -> Response {
    post(server, "/demo/login", "", body)
}

/// The cookie a sign-in set, as a browser sends it back.
fn cookie_of(response: &Response) -> String {
    let set = response.header("set-cookie").expect("a Set-Cookie");
    let pair = set.split(';').next().unwrap();
    format!("Cookie: {pair}\r\n")
}

#[test]
fn a_name_gets_a_token_with_the_documented_rights_and_cookie() {
    let server = demo(false);
    let response = login(&server, "name=alice");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["expires_in"], 600);
    let token = answer["token"].as_str().unwrap();

    let keys = Keys::from_secret(SECRET).unwrap();
    let who = verify(token, &keys, &Validation::new().leeway(0), now()).unwrap();
    assert_eq!(who.subject.as_deref(), Some("alice"));
    let exp = who.expires_at.unwrap();
    assert!((now() + 598..=now() + 600).contains(&exp), "{exp}");
    for topic in ["chat.lobby", "chat.x", "user.alice"] {
        assert!(who.rights.may_subscribe(topic), "sub {topic}");
    }
    for topic in ["user.bob", "user.alice.more", "clock", "news"] {
        assert!(!who.rights.may_subscribe(topic), "sub {topic}");
    }
    for topic in ["chat.lobby", "user.bob", "user.alice"] {
        assert!(who.rights.may_publish(topic), "pub {topic}");
    }
    for topic in ["clock", "news"] {
        assert!(!who.rights.may_publish(topic), "pub {topic}");
    }

    let set = response.header("set-cookie").unwrap();
    assert_eq!(
        set,
        format!("tether_token={token}; Path=/topics/user.alice; Max-Age=600; HttpOnly; SameSite=Lax")
    );

    // A shorter life may be asked for, not a longer one.
    let response = login(&server, "ttl=5&name=bob_2-B");
    assert_eq!(response.status, 200);
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(answer["expires_in"], 5);
    assert!(response.header("set-cookie").unwrap().contains("; Max-Age=5;"));
    for bad in ["name=a&ttl=0", "name=a&ttl=601", "name=a&ttl=x", "name=a&ttl=-1"] {
        assert_eq!(login(&server, bad).status, 400, "{bad}");
    }
}

#[test]
fn over_tls_the_cookie_is_secure() {
    let server = demo(true);
    let response = login(&server, "name=alice");
    assert_eq!(response.status, 200);
    let set = response.header("set-cookie").unwrap();
    assert!(set.ends_with("; HttpOnly; SameSite=Lax; Secure"), "{set}");
}

#[test]
fn bad_names_are_refused() {
    let server = demo(false);
    let long = format!("name={}", "a".repeat(33));
    for bad in [
        "",
        "name=",
        "nom=alice",
        "name=a b",
        "name=a+b",
        "name=a.b",
        "name=a*",
        "name=%C3%A9",
        "name=user.x",
        long.as_str(),
    ] {
        let response = login(&server, bad);
        assert_eq!(response.status, 400, "{bad:?}");
        assert!(response.header("set-cookie").is_none());
    }
    assert_eq!(login(&server, &format!("name={}", "a".repeat(32))).status, 200);
    // Only POST.
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/demo/login", "Connection: close\r\n");
    assert_eq!(conn.response().status, 405);
    // Another site may not sign a visitor in; the page's own origin may.
    let evil = post(
        &server,
        "/demo/login",
        "Origin: https://evil.example\r\n",
        "name=alice",
    );
    assert_eq!(evil.status, 403);
    let own = post(&server, "/demo/login", "Origin: http://test\r\n", "name=alice");
    assert_eq!(own.status, 200);
}

#[test]
fn the_cookie_opens_the_users_own_topic_and_writes_to_others() {
    let server = demo(false);
    let signed_in = login(&server, "name=alice");
    let alice = cookie_of(&signed_in);
    let answer: Value = serde_json::from_slice(&signed_in.body).unwrap();
    let alice_token = format!("Authorization: Bearer {}\r\n", answer["token"].as_str().unwrap());
    let bob = cookie_of(&login(&server, "name=bob"));

    let mut bob_inbox = SseClient::connect(server.addr, "/topics/user.bob/events", &bob);
    assert_eq!(bob_inbox.response.status, 200);
    // user.* is private: no one else's, and not without a token.
    let status =
        |target: &str, headers: &str| SseClient::connect(server.addr, target, headers).response.status;
    assert_eq!(status("/topics/user.bob/events", &alice), 403);
    assert_eq!(status("/topics/user.bob/events", ""), 401);
    // Public rooms stay open to all.
    assert_eq!(status("/topics/chat.lobby/events", ""), 200);

    // The cookie's path is alice's own topic: she writes to bob with the
    // token in Authorization (a client that sends the cookie anyway may).
    let sent = post(
        &server,
        "/topics/user.bob",
        &alice_token,
        r#"{"from":"alice","text":"hi bob"}"#,
    );
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    assert_eq!(
        bob_inbox.next_event().data(),
        r#"{"from":"alice","text":"hi bob"}"#
    );
    assert_eq!(post(&server, "/topics/user.bob", &alice, "by cookie").status, 200);
    assert_eq!(bob_inbox.next_event().data(), "by cookie");
    // Not the clock, and not without a token.
    assert_eq!(post(&server, "/topics/clock", &alice_token, "x").status, 403);
    assert_eq!(post(&server, "/topics/user.bob", "", "x").status, 401);

    // Signing out clears the cookie.
    let out = post(&server, "/demo/logout", &alice, "name=alice");
    assert_eq!(out.status, 204);
    assert_eq!(
        out.header("set-cookie"),
        Some("tether_token=; Path=/topics/user.alice; Max-Age=0; HttpOnly; SameSite=Lax")
    );
    assert_eq!(post(&server, "/demo/logout", "", "name=a.b").status, 400);
}

#[test]
fn a_secret_ending_in_a_line_break_signs_and_verifies_with_all_its_bytes() {
    // A random secret ends in 0x0A one time in 256: it is a secret's byte,
    // not the end of a line of a key file.
    let mut secret = SECRET.to_vec();
    *secret.last_mut().unwrap() = b'\n';
    let sign_in = DemoLogin::with_secret(&secret).unwrap();
    let keys = sign_in.keys().unwrap();
    let server = TestServer::start(config(), Demo::signed_in(sign_in));
    let response = login(&server, "name=alice");
    assert_eq!(response.status, 200);
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    let token = answer["token"].as_str().unwrap();
    let who = verify(token, &keys, &Validation::new().leeway(0), now()).unwrap();
    assert_eq!(who.subject.as_deref(), Some("alice"));
}

#[test]
fn without_a_sign_in_the_route_is_off() {
    let server = TestServer::start(config(), Demo::new());
    assert_eq!(login(&server, "name=alice").status, 404);
    let login = DemoLogin::with_secret(SECRET).unwrap();
    assert!(!format!("{login:?}").contains("32 bytes"));
    assert!(DemoLogin::with_secret(&SECRET[..31]).is_err());
    let generated = DemoLogin::generate().unwrap();
    assert_eq!(generated.ttl.as_secs(), 600);
    assert!(generated.keys().is_ok());
}
