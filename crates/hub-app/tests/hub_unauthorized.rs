//! A refused token says why: every route of the hub that takes a token
//! answers 401 with RFC 6750's `WWW-Authenticate: Bearer
//! error="invalid_token", error_description="..."` (bad signature,
//! expired, not yet valid, wrong audience, malformed, revoked...), over
//! HTTP/1.1 and HTTP/2, the server API in its JSON shape; none presented
//! gets no error code (RFC 6750 section 3.1).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::Handshake;

use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
const ADMIN: &str = "admin-publish-token";
const METRICS: &str = "metrics-token";

fn mint(claims: &Value, secret: &[u8]) -> String {
    sign(secret, claims)
}

fn claims(extra: &Value) -> Value {
    let mut claims = json!({
        "sub": "alice",
        "aud": "tether",
        "exp": unix_now() + 600,
        "tether": { "sub": ["user.{sub}.*"], "pub": ["user.{sub}.*"] },
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn hub() -> TestServer {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0).audience(["tether"]);
    auth.private = Private::new(["user.*"]).unwrap();
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.metrics_token = Some(METRICS.into());
    settings.auth = Some(auth);
    let shared = HubShared::new(settings, 1);
    let handshake = shared.settings().origin_policy(Handshake::new());
    TestServer::start_with(config(), handshake, shared.app(0))
}

/// The tokens refused, and the description each must give.
fn refused_tokens() -> Vec<(String, &'static str)> {
    vec![
        (
            mint(&claims(&json!({})), b"another secret, also of 32 bytes"),
            "bad signature",
        ),
        (
            mint(&claims(&json!({"exp": unix_now() - 100})), SECRET),
            "token expired",
        ),
        (
            mint(&claims(&json!({"nbf": unix_now() + 3600})), SECRET),
            "token not yet valid",
        ),
        (
            mint(&claims(&json!({"aud": "elsewhere"})), SECRET),
            "audience not accepted",
        ),
        ("abc.def.ghi".to_owned(), "malformed token"),
        (
            mint(&claims(&json!({"iat": unix_now() + 3600})), SECRET),
            "token issued in the future",
        ),
    ]
}

/// Every route that takes a token: method, target, body.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/topics/user.alice.inbox/events", ""),
    ("GET", "/topics/news/events", ""),
    ("GET", "/topics/user.alice.inbox/poll", ""),
    ("GET", "/topics/user.alice.inbox/presence", ""),
    ("POST", "/topics/user.alice.inbox", "hello"),
    ("POST", "/tickets", ""),
    ("GET", "/api/history?topic=news", ""),
    (
        "POST",
        "/api/publish",
        r#"{"items":[{"topic":"news","data":"x"}]}"#,
    ),
];

fn expected_header(description: &str) -> String {
    format!("Bearer realm=\"tether\", error=\"invalid_token\", error_description=\"{description}\"")
}

fn check(route: &str, status: u16, header: Option<&str>, body: &[u8], description: &str) {
    assert_eq!(status, 401, "{route}: {description}");
    assert_eq!(
        header,
        Some(expected_header(description).as_str()),
        "{route}: {description}"
    );
    let body = String::from_utf8_lossy(body);
    if route.contains("/api/") {
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "unauthorized", "{route}: {body}");
        assert!(
            json["error"]["message"].as_str().unwrap().contains(description),
            "{route}: {body}"
        );
    } else {
        assert!(body.contains(description), "{route}: {body}");
    }
}

#[test]
fn every_route_says_why_a_token_is_refused_over_http1() {
    let server = hub();
    for (token, description) in refused_tokens() {
        for (method, target, body) in ROUTES {
            let mut conn = HttpConn::connect(server.addr);
            conn.send(
                format!(
                    "{method} {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let answer = conn.response();
            let route = format!("HTTP/1.1 {method} {target}");
            check(
                &route,
                answer.status,
                answer.header("www-authenticate"),
                &answer.body,
                description,
            );
        }
        // A WebSocket upgrade, refused before it opens.
        let upgrade = common::Upgrade::new(server.addr, "/topics/user.alice.inbox/ws");
        let text = String::from_utf8(upgrade.request.clone()).unwrap();
        let mut conn = HttpConn::connect(server.addr);
        conn.send(
            text.replacen("\r\n", &format!("\r\nAuthorization: Bearer {token}\r\n"), 1)
                .as_bytes(),
        );
        let answer = conn.head_response();
        assert_eq!(answer.status, 401, "{description}");
        assert_eq!(
            answer.header("www-authenticate"),
            Some(expected_header(description).as_str())
        );
    }
    // The metrics token: not the one.
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/metrics",
        "Authorization: Bearer nope\r\nConnection: close\r\n",
    );
    let answer = conn.response();
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(expected_header("unknown token").as_str())
    );
    server.shutdown();
}

#[test]
fn every_route_says_why_a_token_is_refused_over_http2() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    for (token, description) in refused_tokens() {
        let bearer = format!("Bearer {token}");
        for (method, target, body) in ROUTES {
            let stream = client.request_with_body(
                method,
                target,
                &[("authorization", bearer.as_str())],
                body.as_bytes(),
            );
            let answer = client.finish(stream);
            let route = format!("HTTP/2 {method} {target}");
            check(
                &route,
                answer.status().unwrap_or(0),
                answer.field("www-authenticate").as_deref(),
                &answer.data,
                description,
            );
        }
        let ws = client.websocket(
            "/topics/user.alice.inbox/ws",
            &[("authorization", bearer.as_str())],
        );
        let answer = client.finish(ws);
        assert_eq!(answer.status(), Some(401), "{description}");
        assert_eq!(
            answer.field("www-authenticate"),
            Some(expected_header(description))
        );
    }
    drop(client);
    server.shutdown();
}

#[test]
fn no_credential_gets_no_error_code_and_a_revoked_token_says_so() {
    let server = hub();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/topics/user.alice.inbox/events", "Connection: close\r\n");
    let answer = conn.response();
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer realm=\"tether\""));

    let token = mint(&claims(&json!({"jti": "t-1"})), SECRET);
    let revoke = r#"{"jti":"t-1"}"#;
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "POST /api/revoke HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{revoke}",
            revoke.len()
        )
        .as_bytes(),
    );
    assert_eq!(conn.response().status, 200);
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/topics/user.alice.inbox/events",
        &format!("Authorization: Bearer {token}\r\nConnection: close\r\n"),
    );
    let answer = conn.response();
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(expected_header("token revoked").as_str())
    );
    server.shutdown();
}
