//! Connection-level limits: the handshake timeout and the connection cap.

use tether_testkit as common;

use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, TestServer, config};
use tether_apps::Demo;

#[test]
fn half_a_request_head_is_dropped_after_the_handshake_timeout() {
    let mut config = config();
    config.handshake_timeout = Duration::from_millis(200);
    let server = TestServer::start(config, Demo::new());

    let start = Instant::now();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: te");
    // No response, just the end of the connection.
    conn.expect_eof();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "dropped before the timeout, after {:?}",
        start.elapsed()
    );

    // A connection that sends nothing at all is dropped too.
    let mut silent = HttpConn::connect(server.addr);
    silent.expect_eof();

    // Others are unaffected.
    assert_eq!(common::get(server.addr, "/healthz").status, 200);
    drop(conn);
    server.shutdown();
}

#[test]
fn a_later_keep_alive_request_also_has_the_handshake_timeout() {
    // A client that completes one request cannot then hold its slot for
    // the whole keep-alive timeout by dripping the next head slowly.
    let mut config = config();
    config.handshake_timeout = Duration::from_millis(200);
    // An hour: held for it, the connection would outlast the client's
    // read timeout and the test would fail on that, not on a clock.
    config.keep_alive_timeout = Duration::from_secs(3600);
    let server = TestServer::start(config, Demo::new());
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/healthz", "");
    assert_eq!(conn.response().status, 200);
    let start = Instant::now();
    conn.send(b"GET /healthz HTTP/1.1\r\nHo");
    conn.expect_eof();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "dropped early, after {waited:?}"
    );
    drop(conn);
    server.shutdown();
}

#[test]
fn the_handshake_timeout_covers_a_websocket_upgrade_too() {
    let mut config = config();
    config.handshake_timeout = Duration::from_millis(200);
    let server = TestServer::start(config, Demo::new());
    let upgrade = common::Upgrade::new(server.addr, "/echo");
    let mut conn = HttpConn::connect(server.addr);
    // All but the final CRLF.
    conn.send(&upgrade.request[..upgrade.request.len() - 2]);
    conn.expect_eof();
    drop(conn);
    server.shutdown();
}

#[test]
fn connections_over_the_limit_get_503_and_the_others_keep_working() {
    const N: usize = 3;
    let mut config = config();
    config.max_connections = Some(N);
    let server = TestServer::start(config, Demo::new());

    // A WebSocket session counts like any other connection.
    let mut ws = common::WsClient::connect(server.addr, "/echo");
    let mut admitted: Vec<HttpConn> = (1..N).map(|_| HttpConn::connect(server.addr)).collect();
    let mut refused = HttpConn::connect(server.addr);
    let busy = refused.response();
    assert_eq!(busy.status, 503);
    let retry_after: u64 = busy
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry_after > 0);
    refused.expect_eof();

    for conn in &mut admitted {
        conn.request("GET", "/healthz", "");
        assert_eq!(conn.response().status, 200);
    }
    ws.send_text("still served");
    assert_eq!(ws.recv_text(), "still served");

    // Once one of them leaves, its place is free again. The server learns
    // of the departure asynchronously, so retry for a while.
    let mut leaving = admitted.pop().expect("N > 0");
    leaving.request("GET", "/healthz", "Connection: close\r\n");
    assert_eq!(leaving.response().status, 200);
    leaving.expect_eof();
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = common::get(server.addr, "/healthz");
        if response.status == 200 {
            break;
        }
        assert_eq!(response.status, 503);
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        thread::sleep(Duration::from_millis(10));
    }
    drop(admitted);
    drop(ws);
    server.shutdown();
}
