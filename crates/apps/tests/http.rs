//! Plain HTTP over real sockets: pages, errors, keep-alive, pipelining and
//! connection closing.

use tether_testkit as common;

use common::{HttpConn, TestServer, config, get};
use tether_apps::Demo;

const PAGE: &[u8] = include_bytes!("../static/index.html");
const CLIENT: &[u8] = include_bytes!("../../hub-app/static/tether-client.js");

fn demo() -> TestServer {
    TestServer::start(config(), Demo::new())
}

#[test]
fn healthz_is_ok() {
    let server = demo();
    let response = get(server.addr, "/healthz");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok\n");
    assert!(response.header("content-type").unwrap().starts_with("text/plain"));
    server.shutdown();
}

#[test]
fn index_is_the_html_page() {
    let server = demo();
    let response = get(server.addr, "/");
    assert_eq!(response.status, 200);
    assert!(response.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(response.body, PAGE);
    server.shutdown();
}

#[test]
fn the_browser_client_the_page_imports_is_served_as_javascript() {
    let server = demo();
    let response = get(server.addr, "/tether-client.js");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(response.body, CLIENT);
    let page = std::str::from_utf8(PAGE).unwrap();
    assert!(
        page.contains(r#"import { Tether } from "/tether-client.js";"#),
        "the page imports it"
    );
    server.shutdown();
}

#[test]
fn head_gets_the_headers_and_no_body() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("HEAD", "/", "");
    let head = conn.head_response();
    assert_eq!(head.status, 200);
    assert!(head.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(
        head.header("content-length"),
        Some(PAGE.len().to_string().as_str())
    );
    // Had any body bytes followed the head, this response would not parse.
    conn.request("GET", "/healthz", "Connection: close\r\n");
    let next = conn.response();
    assert_eq!((next.status, next.body.as_slice()), (200, &b"ok\n"[..]));
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn an_error_answering_head_has_no_body_either() {
    // The demo's /echo is a WebSocket: HEAD there is 405, and a HEAD whose
    // chunked body does not parse is 400; both answers are a head alone.
    // The 405 refuses a request read whole, and the connection goes on;
    // after the 400 the request's end is unknown, and it closes.
    let server = demo();
    let requests: [(&[u8], u16, bool); 2] = [
        (b"HEAD /echo HTTP/1.1\r\nHost: test\r\n\r\n", 405, false),
        (
            b"HEAD / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            true,
        ),
    ];
    for (request, status, closes) in requests {
        let mut conn = HttpConn::connect(server.addr);
        conn.send(request);
        let head = conn.head_response();
        assert_eq!(head.status, status);
        assert_eq!(head.closes(), closes);
        if !closes {
            conn.request("GET", "/healthz", "Connection: close\r\n");
            assert_eq!(conn.response().body, b"ok\n");
        }
        conn.expect_eof();
    }
    server.shutdown();
}

#[test]
fn unknown_path_is_404() {
    let server = demo();
    let response = get(server.addr, "/no/such/thing?x=1");
    assert_eq!(response.status, 404);
    server.shutdown();
}

#[test]
fn post_to_a_page_is_405_with_allow() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello");
    let response = conn.response();
    assert_eq!(response.status, 405);
    let allow = response.header("allow").expect("an Allow header");
    assert!(allow.contains("GET"), "Allow: {allow}");
    // The body was read with the request: the connection goes on.
    assert!(!response.closes());
    conn.request("GET", "/healthz", "Connection: close\r\n");
    assert_eq!(conn.response().body, b"ok\n");
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn post_to_an_event_stream_is_405() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("POST", "/clock", "Content-Length: 0\r\n");
    let response = conn.response();
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    drop(conn);
    server.shutdown();
}

#[test]
fn oversized_request_head_is_431() {
    let mut config = config();
    config.max_request_head = 1024;
    let server = TestServer::start(config, Demo::new());
    let filler = "a".repeat(2000);

    // The whole head in one write.
    let mut whole = HttpConn::connect(server.addr);
    whole.request("GET", "/healthz", &format!("X-Filler: {filler}\r\n"));
    assert_eq!(whole.response().status, 431);
    whole.expect_eof();
    drop(whole);

    // A head that never ends.
    let mut endless = HttpConn::connect(server.addr);
    endless.send(format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Filler: {filler}").as_bytes());
    assert_eq!(endless.response().status, 431);
    endless.expect_eof();
    drop(endless);

    // Just under the limit is fine.
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/healthz", &format!("X-Filler: {}\r\n", &filler[..900]));
    assert_eq!(conn.response().status, 200);
    drop(conn);
    server.shutdown();
}

#[test]
fn too_many_header_lines_is_431() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    let headers: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    conn.request("GET", "/healthz", &headers);
    assert_eq!(conn.response().status, 431);
    drop(conn);
    server.shutdown();
}

#[test]
fn garbage_is_400() {
    let server = demo();
    for (garbage, status) in [
        (&b"\x00\x01\x02 binary junk\r\n\r\n"[..], 400),
        // Well-formed, but a version this server does not speak.
        (b"GET / HTTP/9.9\r\n\r\n", 505),
        (b"GET /\r\n\r\n", 400),
    ] {
        let mut conn = HttpConn::connect(server.addr);
        conn.send(garbage);
        let response = conn.response();
        assert_eq!(response.status, status, "for {garbage:?}");
        assert!(response.closes());
        conn.expect_eof();
    }
    server.shutdown();
}

#[test]
fn plain_get_on_a_websocket_route_is_426() {
    let server = demo();
    let response = get(server.addr, "/echo");
    assert_eq!(response.status, 426);
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    assert!(
        response
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    );
    server.shutdown();
}

#[test]
fn keep_alive_serves_requests_in_turn() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    for _ in 0..3 {
        conn.request("GET", "/healthz", "");
        let response = conn.response();
        assert_eq!((response.status, response.body.as_slice()), (200, &b"ok\n"[..]));
        assert!(!response.closes());
    }
    conn.request("GET", "/missing", "");
    assert_eq!(conn.response().status, 404);
    conn.request("GET", "/", "");
    assert_eq!(conn.response().body, PAGE);
    drop(conn);
    server.shutdown();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n\
          GET /missing HTTP/1.1\r\nHost: test\r\n\r\n\
          HEAD / HTTP/1.1\r\nHost: test\r\n\r\n\
          GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    let first = conn.response();
    assert_eq!((first.status, first.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(conn.response().status, 404);
    let head = conn.head_response();
    assert_eq!(head.status, 200);
    let last = conn.response();
    assert_eq!((last.status, last.body.as_slice()), (200, PAGE));
    assert!(last.closes());
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn a_request_split_across_writes_is_assembled() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    for byte in request.chunks(1) {
        conn.send(byte);
    }
    assert_eq!(conn.response().body, b"ok\n");
    drop(conn);
    server.shutdown();
}

#[test]
fn connection_close_is_honoured() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/healthz", "Connection: close\r\n");
    let response = conn.response();
    assert_eq!(response.status, 200);
    assert!(response.closes());
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn http_1_0_closes_after_the_response() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let response = conn.response();
    assert_eq!((response.status, response.body.as_slice()), (200, &b"ok\n"[..]));
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn a_client_that_half_closes_still_gets_its_response() {
    let server = demo();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/healthz", "");
    common::shutdown_write(&conn.stream);
    assert_eq!(conn.response().body, b"ok\n");
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}
