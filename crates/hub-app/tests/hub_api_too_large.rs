//! A server API request whose body is over the server's largest body is
//! answered 413 in the API's JSON (`{"error":{"code":"too_large",...}}`),
//! over HTTP/1.1 (announced by Content-Length, or chunked past it) and
//! HTTP/2 (announced, or DATA past it); other routes keep the plain 413.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config};
use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::Handshake;

use support::http::{bearer, request};

const ADMIN: &str = "admin-publish-token";
const LIMIT: usize = 1024;

fn hub() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    let shared = HubShared::new(settings, 1);
    let handshake = shared.settings().origin_policy(Handshake::new());
    let mut config = config();
    config.max_request_body = LIMIT;
    TestServer::start_with(config, handshake, shared.app(0))
}

fn assert_json_413(what: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    assert_eq!(status, 413, "{what}");
    assert_eq!(content_type, Some("application/json"), "{what}");
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(body)));
    assert_eq!(json["error"]["code"], "too_large", "{what}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("1024 bytes"), "{what}: {message}");
}

fn items(n: usize) -> String {
    format!(r#"{{"items":[{{"topic":"news","data":"{}"}}]}}"#, "x".repeat(n))
}

#[test]
fn an_api_body_over_the_bound_gets_json_413_over_http1() {
    let server = hub();
    let body = items(2 * LIMIT);
    // Announced by Content-Length.
    let answer = request(server.addr, "POST", "/api/publish", &bearer(ADMIN), &body);
    assert_json_413(
        "Content-Length",
        answer.status,
        answer.header("content-type"),
        &answer.body,
    );
    // Chunked, growing past it.
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let answer = conn.response();
    assert_json_413(
        "chunked",
        answer.status,
        answer.header("content-type"),
        &answer.body,
    );
    // Another route: the server's plain 413.
    let answer = request(server.addr, "POST", "/topics/news", &bearer(ADMIN), &body);
    assert_eq!(answer.status, 413);
    assert!(answer.header("content-type").unwrap().starts_with("text/plain"));
    server.shutdown();
}

#[test]
fn an_api_body_over_the_bound_gets_json_413_over_http2() {
    let server = hub();
    let body = items(2 * LIMIT);
    let mut client = H2Client::connect(server.addr);
    let bearer = format!("Bearer {ADMIN}");
    // Announced (request_with_body sends content-length).
    let announced = client.request_with_body(
        "POST",
        "/api/publish",
        &[("authorization", bearer.as_str())],
        body.as_bytes(),
    );
    let answer = client.finish(announced);
    assert_json_413(
        "announced",
        answer.status().unwrap_or(0),
        answer.field("content-type").as_deref(),
        &answer.data,
    );
    // Not announced: DATA past the bound.
    let stream = client.open(
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/api/publish"),
            (":authority", "localhost"),
            ("authorization", bearer.as_str()),
        ],
        false,
    );
    client.data(stream, body.as_bytes(), true);
    let answer = client.finish(stream);
    assert_json_413(
        "DATA",
        answer.status().unwrap_or(0),
        answer.field("content-type").as_deref(),
        &answer.data,
    );
    drop(client);
    server.shutdown();
}
