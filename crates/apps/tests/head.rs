//! `HEAD` is GET's head alone and leaves the connection's framing as it
//! was: a request pipelined behind it gets its own clean answer. Also a
//! 405, which refuses a request read whole, leaves the connection open.

use tether_testkit as common;

use std::time::Duration;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config};
use tether_apps::{Demo, HubApp, HubSettings};

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

/// Sends `first` and a `GET /healthz` behind it on one connection; returns
/// the answer to `first` (read as the answer to HEAD when `head_only`) and
/// checks that the second is `ok`.
fn pipelined(server: &TestServer, first: &str, head_only: bool) -> common::Response {
    let mut conn = HttpConn::connect(server.addr);
    conn.send(format!("{first}{HEALTHZ}").as_bytes());
    let answer = if head_only {
        conn.head_response()
    } else {
        conn.response()
    };
    assert!(!answer.closes(), "{first:?}: the answer closes the connection");
    let next = conn.response();
    assert_eq!((next.status, &next.body[..]), (200, &b"ok\n"[..]), "{first:?}");
    answer
}

#[test]
fn head_of_an_event_stream_is_its_head_and_the_connection_goes_on() {
    let server = TestServer::start(config(), Demo::new());
    for path in ["/topics/x/events", "/clock"] {
        let answer = pipelined(
            &server,
            &format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
            true,
        );
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), Some("text/event-stream"), "{path}");
    }
    // A HEAD asking to close still closes.
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"HEAD /clock HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let answer = conn.head_response();
    assert!(answer.closes());
    conn.expect_eof();
    server.shutdown();
}

#[test]
fn a_method_a_server_route_does_not_take_is_405_and_the_connection_goes_on() {
    let server = TestServer::start(config(), Demo::new());
    for (request, allow, head_only) in [
        ("HEAD /echo HTTP/1.1\r\nHost: test\r\n\r\n", "GET", true),
        (
            "PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc",
            "GET",
            false,
        ),
        (
            "POST /clock HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc",
            "GET, HEAD",
            false,
        ),
        (
            "DELETE /healthz HTTP/1.1\r\nHost: test\r\n\r\n",
            "GET, HEAD",
            false,
        ),
        ("BREW / HTTP/1.1\r\nHost: test\r\n\r\n", "GET, HEAD", false),
    ] {
        let answer = pipelined(&server, request, head_only);
        assert_eq!(answer.status, 405, "{request:?}");
        assert_eq!(answer.header("allow"), Some(allow), "{request:?}");
        assert_eq!(answer.header("content-length"), Some("23"), "{request:?}");
    }
    server.shutdown();
}

/// A hub whose long polls wait far longer than a client's read timeout
/// (`IO_TIMEOUT`): a poll it answers was not held for its wait.
fn hub_with_long_polls() -> TestServer {
    let mut settings = HubSettings::default();
    settings.poll_timeout = Duration::from_secs(3600);
    TestServer::start(config(), HubApp::new(settings))
}

#[test]
fn head_of_a_long_poll_is_answered_at_once_over_http1() {
    let server = hub_with_long_polls();
    let answer = pipelined(
        &server,
        "HEAD /topics/p/poll HTTP/1.1\r\nHost: test\r\n\r\n",
        true,
    );
    assert_eq!(answer.status, 200);
    // GET's length, had GET's wait ended with nothing new.
    let get = common::get(server.addr, "/topics/p/poll?timeout=0");
    assert_eq!(
        answer.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    server.shutdown();
}

#[test]
fn head_of_a_long_poll_is_answered_at_once_over_http2() {
    let server = hub_with_long_polls();
    let mut client = H2Client::connect(server.addr);
    let fields = [
        (":method", "HEAD"),
        (":scheme", "http"),
        (":path", "/topics/p/poll"),
        (":authority", "localhost"),
    ];
    let stream = client.open(&fields, true);
    let answer = client.finish(stream);
    assert_eq!(answer.status(), Some(200));
    assert!(answer.ended && answer.data.is_empty(), "{answer:?}");
    assert!(answer.field("content-length").is_some());
    drop(client);
    server.shutdown();
}
