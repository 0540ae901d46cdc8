//! Application-handled HTTP routes: request bodies, answers now and later
//! (a long poll), timeouts, abandoned requests, and `100 Continue`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{HttpConn, TestServer, config};
use tether_server::{App, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

/// `POST /echo-body` answers with the body it got; `GET /wait` is held
/// until something is posted to `/wake` (or times out with 204, or with 504
/// on `/wait?slow`); `/log` lists what happened.
#[derive(Default)]
struct Board {
    waiting: Vec<ConnId>,
    log: Arc<Mutex<Vec<String>>>,
}

const ECHO_BODY: u32 = 1;
const WAIT: u32 = 2;
const WAKE: u32 = 3;
const WAIT_SLOW: u32 = 4;
const COUNT: u32 = 5;

impl App for Board {
    type Post = ();
    type State = u32;

    fn route(&mut self, request: &Request<'_>) -> Route<u32> {
        match (request.path(), request.query()) {
            ("/echo-body", _) => Route::Handler(ECHO_BODY),
            ("/wait", Some("slow")) => Route::Handler(WAIT_SLOW),
            ("/wait", _) => Route::Handler(WAIT),
            ("/wake", _) => Route::Handler(WAKE),
            ("/count", _) => Route::Handler(COUNT),
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut u32, _: MessageRef<'_>) {}

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        tag: &mut u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match *tag {
            ECHO_BODY => {
                if request.method() != "POST" {
                    return Reply::Now(Response::text(405, "POST only\n").header("Allow", "POST"));
                }
                Reply::Now(
                    Response::new(200, "application/octet-stream", body.to_vec()).header("X-Seen", "yes"),
                )
            }
            WAIT => {
                self.waiting.push(conn);
                Reply::Later(Duration::from_secs(5))
            }
            WAIT_SLOW => {
                self.waiting.push(conn);
                Reply::Later(Duration::from_millis(150))
            }
            COUNT => Reply::Now(Response::text(200, self.waiting.len().to_string())),
            _ => {
                let text = String::from_utf8_lossy(body).into_owned();
                let woken = self.waiting.len();
                for waiter in self.waiting.drain(..) {
                    ctx.respond(waiter, Response::json(200, format!("{{\"news\":\"{text}\"}}")));
                }
                Reply::Now(Response::text(200, format!("woke {woken}\n")))
            }
        }
    }

    fn on_request_timeout(&mut self, _: &mut Ctx<'_>, conn: ConnId, tag: &mut u32) -> Response {
        self.waiting.retain(|&c| c != conn);
        self.log.lock().unwrap().push(format!("timeout {tag}"));
        Response::text(504, "nothing new\n")
    }

    fn on_request_abandoned(&mut self, _: &mut Ctx<'_>, conn: ConnId, tag: &mut u32) {
        self.waiting.retain(|&c| c != conn);
        self.log.lock().unwrap().push(format!("abandoned {tag}"));
    }
}

fn board() -> (Board, Arc<Mutex<Vec<String>>>) {
    let board = Board::default();
    let log = board.log.clone();
    (board, log)
}

/// Waits until `n` requests are parked (requests on different
/// connections may be handled in any order).
fn wait_for_waiters(addr: std::net::SocketAddr, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if common::get(addr, "/count").body == n.to_string().as_bytes() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never {n} waiting");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn post(conn: &mut HttpConn, target: &str, body: &[u8]) {
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(head.as_bytes());
    conn.send(body);
}

#[test]
fn a_body_reaches_the_handler_whole_however_it_arrives() {
    let server = TestServer::start(config(), board().0);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut conn = HttpConn::connect(server.addr);
    post(&mut conn, "/echo-body", &body);
    let response = conn.response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-seen"), Some("yes"));
    assert!(response.body == body);
    // In small pieces, with a second request pipelined right behind it.
    let head = format!(
        "POST /echo-body HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        5
    );
    let mut wire = head.into_bytes();
    wire.extend_from_slice(b"hello");
    wire.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    for piece in wire.chunks(3) {
        conn.send(piece);
    }
    let response = conn.response();
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert_eq!(
        conn.response().status,
        200,
        "the pipelined request after the body"
    );
    // Any method reaches the handler; the application decides.
    conn.request("GET", "/echo-body", "");
    let response = conn.response();
    assert_eq!((response.status, response.header("allow")), (405, Some("POST")));
    server.shutdown();
}

#[test]
fn bodies_over_the_limit_or_badly_framed_are_refused() {
    let mut config = config();
    config.max_request_body = 1000;
    let server = TestServer::start(config, board().0);
    let refused = |request: &[u8], status: u16| {
        let mut conn = HttpConn::connect(server.addr);
        conn.send(request);
        let response = conn.response();
        assert_eq!(response.status, status, "{:?}", String::from_utf8_lossy(request));
        assert!(response.closes());
        conn.expect_eof();
    };
    // Too large, known from the head: answered before any of the body.
    refused(
        b"POST /echo-body HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n",
        413,
    );
    // Too large, found chunk by chunk.
    let mut chunked = b"POST /echo-body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"190\r\n");
        chunked.extend_from_slice(&[b'x'; 400]);
        chunked.extend_from_slice(b"\r\n");
    }
    refused(&chunked, 413);
    refused(
        b"POST /echo-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\n",
        400,
    );
    // Both framings: no guessing which one a proxy in front believed.
    refused(
        b"POST /echo-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    refused(
        b"POST /echo-body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
    server.shutdown();
}

#[test]
fn chunked_bodies_are_read_with_extensions_and_trailers() {
    let server = TestServer::start(config(), board().0);
    let mut conn = HttpConn::connect(server.addr);
    // In pieces, as a streaming client sends it, then a pipelined request.
    for piece in [
        &b"POST /echo-body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"3;note=first\r\nhel\r\n",
        b"2\r\nlo\r\n0\r\nX-Checksum: none\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        conn.send(piece);
        std::thread::sleep(Duration::from_millis(20));
    }
    let response = conn.response();
    assert_eq!((response.status, &response.body[..]), (200, &b"hello"[..]));
    assert_eq!(conn.response().status, 200, "the pipelined request");
    server.shutdown();
}

#[test]
fn request_targets_hosts_and_versions_as_rfc_9112_says() {
    let server = TestServer::start(config(), board().0);
    let answer = |request: &[u8]| {
        let mut conn = HttpConn::connect(server.addr);
        conn.send(request);
        conn.response()
    };
    // Exactly one Host on HTTP/1.1.
    assert_eq!(answer(b"GET /healthz HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(
        answer(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status,
        400
    );
    assert_eq!(answer(b"GET /healthz HTTP/1.0\r\n\r\n").status, 200);
    assert_eq!(answer(b"GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n").status, 505);
    // The absolute form addresses the same resource.
    let response = answer(b"GET http://t/healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((response.status, &response.body[..]), (200, &b"ok\n"[..]));
    // OPTIONS * asks about the server; * with anything else is malformed.
    let response = answer(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(response.header("allow").is_some_and(|a| a.contains("GET")));
    assert_eq!(answer(b"GET * HTTP/1.1\r\nHost: t\r\n\r\n").status, 400);
    // Not a proxy.
    assert_eq!(
        answer(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").status,
        501
    );
    server.shutdown();
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = TestServer::start(config(), board().0);
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"POST /echo-body HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = conn.head_response();
    assert_eq!(interim.status, 100);
    conn.send(b"data");
    let response = conn.response();
    assert_eq!((response.status, &response.body[..]), (200, &b"data"[..]));
    server.shutdown();
}

#[test]
fn a_deferred_request_is_answered_when_the_application_says() {
    let server = TestServer::start(config(), board().0);
    let mut waiters: Vec<HttpConn> = (0..3).map(|_| HttpConn::connect(server.addr)).collect();
    for w in &mut waiters {
        w.request("GET", "/wait", "");
    }
    wait_for_waiters(server.addr, 3);
    let mut waker = HttpConn::connect(server.addr);
    post(&mut waker, "/wake", b"hi");
    assert_eq!(waker.response().body, b"woke 3\n");
    for w in &mut waiters {
        let response = w.response();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.body, b"{\"news\":\"hi\"}");
        // The connection is kept alive for the next request.
        w.request("GET", "/healthz", "");
        assert_eq!(w.response().status, 200);
    }
    server.shutdown();
}

#[test]
fn a_request_pipelined_behind_a_deferred_one_waits_its_turn() {
    let server = TestServer::start(config(), board().0);
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for_waiters(server.addr, 1);
    let mut waker = HttpConn::connect(server.addr);
    post(&mut waker, "/wake", b"x");
    assert_eq!(waker.response().status, 200);
    assert_eq!(conn.response().body, b"{\"news\":\"x\"}");
    assert_eq!(
        conn.response().body,
        b"ok\n",
        "the second answer comes after the first"
    );
    server.shutdown();
}

#[test]
fn an_unanswered_request_gets_the_timeout_response() {
    let (board, log) = board();
    let server = TestServer::start(config(), board);
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/wait?slow", "");
    let response = conn.response();
    assert_eq!(
        (response.status, &response.body[..]),
        (504, &b"nothing new\n"[..])
    );
    assert_eq!(*log.lock().unwrap(), ["timeout 4"]);
    server.shutdown();
}

#[test]
fn a_client_that_leaves_while_waiting_is_forgotten() {
    let (board, log) = board();
    let server = TestServer::start(config(), board);
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/wait", "");
    wait_for_waiters(server.addr, 1);
    drop(conn);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while log.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never told");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*log.lock().unwrap(), ["abandoned 2"]);
    let mut waker = HttpConn::connect(server.addr);
    post(&mut waker, "/wake", b"late");
    assert_eq!(waker.response().body, b"woke 0\n");
    server.shutdown();
}

#[test]
fn head_on_an_event_stream_gets_its_head_and_no_stream() {
    let server = TestServer::start(config(), tether_apps::Demo::new());
    let mut conn = HttpConn::connect(server.addr);
    conn.request("HEAD", "/clock", "");
    conn.request("GET", "/healthz", "Connection: close\r\n");
    let response = conn.head_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    // No stream: the next request's answer follows the head.
    assert!(!response.closes());
    assert_eq!(conn.response().body, b"ok\n");
    conn.expect_eof();
    server.shutdown();
}
