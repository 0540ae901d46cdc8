//! Every route the servers have, asked with `HEAD`, `OPTIONS`, a method no
//! route takes (`BREW`) and a `GET` carrying a body, over HTTP/1.1 and
//! HTTP/2 (h2c with prior knowledge), each row checked against the status
//! RFC 9110 asks for and against the connection's framing afterwards:
//! over HTTP/1.1 a `GET /healthz` pipelined behind the case on the same
//! connection must come back `ok`, and over HTTP/2 the next stream on the
//! same connection must.
//!
//! The policy the table holds the server to:
//! - a method a route does not take is 405 with `Allow` naming those it
//!   does, whether or not the method is one RFC 9110 defines (the server
//!   keeps no list of methods: a handler route takes any), and the
//!   connection stays open;
//! - `OPTIONS` on a route is a method like any other: 405 unless the route
//!   takes it (a CORS preflight does, see
//!   `crates/hub-app/tests/hub_cors.rs`); `OPTIONS *` is 200 with `Allow`;
//! - `HEAD` is GET's head alone: the same status and, where GET's answer
//!   has a length, the same `Content-Length`, no body; an event stream's
//!   head ends there and the connection goes on; a long poll is answered
//!   at once, as if its wait were over;
//! - a body on a `GET` is read (it is framed by its `Content-Length`) and
//!   ignored; it never reaches the next request.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config, tcp};
use tether_apps::Demo;

/// What a row's answer leaves of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The connection goes on: the next request is answered.
    Next,
    /// An event stream starts: over HTTP/1.1 it holds the connection
    /// until it ends, so nothing can follow it there.
    Stream,
    /// The server closes the connection after the answer: a refused
    /// WebSocket upgrade over HTTP/1.1 (the client may not know yet
    /// whether what it sends next is HTTP or frames).
    Closes,
}

/// One case: a request and what must come back.
struct Row {
    path: &'static str,
    method: &'static str,
    /// A body sent with the request (a `GET` carrying one).
    body: Option<&'static str>,
    status: u16,
    /// The `Allow` field a 405 must have.
    allow: Option<&'static str>,
    /// Over HTTP/1.1; over HTTP/2 every row is `Next`, but for an event
    /// stream's `Stream` (the stream stays open beside the others).
    then: Then,
}

const BODY: &str = "hello";

const fn row(path: &'static str, method: &'static str, status: u16, allow: Option<&'static str>) -> Row {
    Row {
        path,
        method,
        body: None,
        status,
        allow,
        then: Then::Next,
    }
}

const fn with_body(path: &'static str, status: u16, allow: Option<&'static str>, then: Then) -> Row {
    Row {
        path,
        method: "GET",
        body: Some(BODY),
        status,
        allow,
        then,
    }
}

const GET_HEAD: Option<&str> = Some("GET, HEAD");
const GET: Option<&str> = Some("GET");
const POST: Option<&str> = Some("POST");

/// The table: for each route, HEAD, OPTIONS, BREW and a GET with a body.
const ROWS: &[Row] = &[
    // The demo's page and the server's own health check.
    row("/", "HEAD", 200, None),
    row("/", "OPTIONS", 405, GET_HEAD),
    row("/", "BREW", 405, GET_HEAD),
    with_body("/", 200, None, Then::Next),
    row("/tether-client.js", "HEAD", 200, None),
    row("/tether-client.js", "OPTIONS", 405, GET_HEAD),
    row("/tether-client.js", "BREW", 405, GET_HEAD),
    with_body("/tether-client.js", 200, None, Then::Next),
    row("/healthz", "HEAD", 200, None),
    row("/healthz", "OPTIONS", 405, GET_HEAD),
    row("/healthz", "BREW", 405, GET_HEAD),
    with_body("/healthz", 200, None, Then::Next),
    // The demo's clock, an event stream of its own.
    row("/clock", "HEAD", 200, None),
    row("/clock", "OPTIONS", 405, GET_HEAD),
    row("/clock", "BREW", 405, GET_HEAD),
    with_body("/clock", 200, None, Then::Stream),
    // The demo's echo WebSocket: a GET without an upgrade is 426.
    row("/echo", "HEAD", 405, GET),
    row("/echo", "OPTIONS", 405, GET),
    row("/echo", "BREW", 405, GET),
    with_body("/echo", 426, None, Then::Closes),
    // The demo's sign-in takes POST (and a CORS preflight).
    row("/demo/login", "HEAD", 405, POST),
    row("/demo/login", "OPTIONS", 405, POST),
    row("/demo/login", "BREW", 405, POST),
    with_body("/demo/login", 405, POST, Then::Next),
    // The hub: publish.
    row("/topics/x", "HEAD", 405, POST),
    row("/topics/x", "OPTIONS", 405, POST),
    row("/topics/x", "BREW", 405, POST),
    with_body("/topics/x", 405, POST, Then::Next),
    // The hub: event stream.
    row("/topics/x/events", "HEAD", 200, None),
    row("/topics/x/events", "OPTIONS", 405, GET_HEAD),
    row("/topics/x/events", "BREW", 405, GET_HEAD),
    with_body("/topics/x/events", 200, None, Then::Stream),
    // The hub: WebSocket.
    row("/topics/x/ws", "HEAD", 405, GET),
    row("/topics/x/ws", "OPTIONS", 405, GET),
    row("/topics/x/ws", "BREW", 405, GET),
    with_body("/topics/x/ws", 426, None, Then::Closes),
    // The hub: long poll. Without `since` a GET waits for an event (the
    // default wait is 25 s); HEAD must not.
    row("/topics/x/poll", "HEAD", 200, None),
    row("/topics/x/poll", "OPTIONS", 405, GET_HEAD),
    row("/topics/x/poll", "BREW", 405, GET_HEAD),
    with_body("/topics/x/poll?timeout=0", 200, None, Then::Next),
    // The hub: presence.
    row("/topics/x/presence", "HEAD", 200, None),
    row("/topics/x/presence", "OPTIONS", 405, GET_HEAD),
    row("/topics/x/presence", "BREW", 405, GET_HEAD),
    with_body("/topics/x/presence", 200, None, Then::Next),
    // The hub: tickets (POST) and metrics.
    row("/tickets", "HEAD", 405, POST),
    row("/tickets", "OPTIONS", 405, POST),
    row("/tickets", "BREW", 405, POST),
    with_body("/tickets", 405, POST, Then::Next),
    row("/metrics", "HEAD", 200, None),
    row("/metrics", "OPTIONS", 405, GET_HEAD),
    row("/metrics", "BREW", 405, GET_HEAD),
    with_body("/metrics", 200, None, Then::Next),
];

/// The request's bytes over HTTP/1.1.
fn http1_request(row: &Row) -> Vec<u8> {
    let mut request = format!("{} {} HTTP/1.1\r\nHost: test\r\n", row.method, row.path);
    if let Some(body) = row.body {
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("\r\n");
    }
    request.into_bytes()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

/// Whether a path's GET answer has a fixed length, the same from one
/// request to the next, for a HEAD's `Content-Length` to be compared with.
fn stable_length(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/topics/x/presence")
}

#[test]
fn every_route_over_http1_answers_each_method_and_keeps_its_framing() {
    let server = TestServer::start(config(), Demo::new());
    let mut failures = Vec::new();
    for row in ROWS {
        let name = format!("HTTP/1.1 {} {}", row.method, row.path);
        // A row that hangs or gets a malformed answer fails in the
        // testkit's reader; it is reported with the others.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| http1_case(&server, row)))
            .unwrap_or_else(|_| Err("the answer did not come, or was malformed (see above)".into()));
        if let Err(e) = outcome {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.shutdown();
}

fn http1_case(server: &TestServer, row: &Row) -> Result<(), String> {
    if row.then == Then::Stream {
        return http1_stream_case(server, row);
    }
    let mut conn = HttpConn::connect(server.addr);
    let mut wire = http1_request(row);
    wire.extend_from_slice(HEALTHZ);
    conn.send(&wire);
    let head_only = row.method == "HEAD";
    let response = if head_only {
        conn.head_response()
    } else {
        conn.response()
    };
    if response.status != row.status {
        return Err(format!("status {} instead of {}", response.status, row.status));
    }
    if response.header("allow") != row.allow {
        return Err(format!(
            "Allow {:?} instead of {:?}",
            response.header("allow"),
            row.allow
        ));
    }
    if head_only && response.header("content-type") != Some("text/event-stream") {
        let Some(length) = response.header("content-length") else {
            return Err("a HEAD answer without GET's Content-Length".into());
        };
        if stable_length(row.path) {
            let get = common::get(server.addr, row.path);
            if length != get.body.len().to_string() {
                return Err(format!(
                    "Content-Length {length}, GET's body has {}",
                    get.body.len()
                ));
            }
        }
    }
    match row.then {
        Then::Closes => {
            if !response.closes() {
                return Err("no Connection: close on an answer that closes".into());
            }
            conn.expect_eof();
        }
        _ => {
            if response.closes() {
                return Err("the answer closes the connection".into());
            }
            let next = conn.response();
            if (next.status, &next.body[..]) != (200, &b"ok\n"[..]) {
                return Err(format!(
                    "the pipelined GET /healthz got {} {:?}",
                    next.status,
                    String::from_utf8_lossy(&next.body)
                ));
            }
        }
    }
    Ok(())
}

/// A GET with a body on an event stream: the stream starts, and its first
/// bytes are the stream's own, not the request's body.
fn http1_stream_case(server: &TestServer, row: &Row) -> Result<(), String> {
    let mut stream = tcp(server.addr);
    stream.write_all(&http1_request(row)).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(7).any(|w| w == b"retry: ") {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("closed: {:?}", String::from_utf8_lossy(&got)));
        }
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    if !text.starts_with(&format!("HTTP/1.1 {} ", row.status)) || !text.contains("text/event-stream") {
        return Err(format!("not an event stream: {text:?}"));
    }
    if text.contains(BODY) {
        return Err(format!("the request's body came back: {text:?}"));
    }
    Ok(())
}

#[test]
fn every_route_over_http2_answers_each_method_and_keeps_the_connection() {
    let server = TestServer::start(config(), Demo::new());
    // One connection for the whole table: each row must leave it usable.
    let mut client = H2Client::connect(server.addr);
    let mut failures = Vec::new();
    for row in ROWS {
        let name = format!("HTTP/2 {} {}", row.method, row.path);
        if let Err(e) = h2_case(&mut client, row) {
            failures.push(format!("{name}: {e}"));
        }
        let healthz = client.get("/healthz", &[]);
        let next = client.finish(healthz);
        assert_eq!(
            (next.status(), &next.data[..]),
            (Some(200), &b"ok\n"[..]),
            "{name}: the next stream"
        );
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(client);
    server.shutdown();
}

fn h2_case(client: &mut H2Client, row: &Row) -> Result<(), String> {
    let stream = match row.body {
        Some(body) => client.request_with_body(row.method, row.path, &[], body.as_bytes()),
        None => {
            let fields = [
                (":method", row.method),
                (":scheme", "http"),
                (":path", row.path),
                (":authority", "localhost"),
            ];
            client.open(&fields, true)
        }
    };
    let response = if row.then == Then::Stream {
        client.data_contains(stream, b"retry: ");
        let state = client.streams.get(&stream).cloned().unwrap_or_default();
        // The stream stays open; the client leaves it.
        client.reset(stream, tether_h2::ErrorCode::CANCEL);
        if state.field("content-type").as_deref() != Some("text/event-stream") {
            return Err(format!("not an event stream: {:?}", state.heads));
        }
        if state.data.windows(BODY.len()).any(|w| w == BODY.as_bytes()) {
            return Err("the request's body came back".into());
        }
        state
    } else {
        client.finish(stream)
    };
    if response.status() != Some(row.status) {
        return Err(format!(
            "status {:?} instead of {}",
            response.status(),
            row.status
        ));
    }
    if response.field("allow").as_deref() != row.allow {
        return Err(format!(
            "allow {:?} instead of {:?}",
            response.field("allow"),
            row.allow
        ));
    }
    if row.method == "HEAD" {
        if response.reset.is_some() || !response.ended || !response.data.is_empty() {
            return Err(format!(
                "a HEAD answer must be HEADERS with END_STREAM alone: {response:?}"
            ));
        }
        let event_stream = response.field("content-type").as_deref() == Some("text/event-stream");
        if !event_stream && response.field("content-length").is_none() {
            return Err("a HEAD answer without GET's content-length".into());
        }
    }
    Ok(())
}

#[test]
fn options_asterisk_is_about_the_server() {
    let server = TestServer::start(config(), Demo::new());
    let mut conn = HttpConn::connect(server.addr);
    let mut wire = b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n".to_vec();
    wire.extend_from_slice(HEALTHZ);
    conn.send(&wire);
    let response = conn.response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(conn.response().body, b"ok\n");
    server.shutdown();
}
