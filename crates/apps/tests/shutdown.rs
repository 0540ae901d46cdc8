//! Graceful shutdown from another thread through the server's Handle.

use tether_testkit as common;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::Duration;

use common::{HttpConn, SseClient, TestServer, WsClient, config};
use tether_apps::Demo;
use tether_server::CloseCode;

/// How long a test waits for `run()` to return before it fails.
const PATIENCE: Duration = Duration::from_secs(30);
/// Far past `PATIENCE`: a wait this long never ends a test's shutdown, so
/// that one that returns within `PATIENCE` shows it did not need it.
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn shutdown_closes_every_session_and_refuses_new_connections() {
    let mut config = config();
    // Returning, run() shows that every session closed: the shutdown
    // timeout did not drop them.
    config.shutdown_timeout = FOREVER;
    let server = TestServer::start(config, Demo::new());
    let mut ws = WsClient::connect(server.addr, "/echo");
    ws.send_text("before");
    assert_eq!(ws.recv_text(), "before");
    let mut chat = WsClient::connect(server.addr, "/topics/s/ws");
    let mut clock = SseClient::connect(server.addr, "/clock", "");
    assert_eq!(clock.next_event().event_type(), "welcome");
    let mut idle = HttpConn::connect(server.addr);
    idle.request("GET", "/healthz", "");
    assert_eq!(idle.response().status, 200);

    server.begin_shutdown();

    // Each WebSocket is told the server is going away; answering lets the
    // server finish the handshake and close TCP.
    for client in [&mut ws, &mut chat] {
        let close = client.recv_close();
        assert_eq!(close.code, CloseCode::GOING_AWAY);
        client.expect_eof();
    }
    // The event stream ends (whatever ticks were still on their way).
    for event in clock.read_to_end() {
        assert_eq!(event.event_type(), "tick");
    }
    assert!(clock.is_ended());
    // The idle keep-alive connection is closed.
    idle.expect_eof();
    // The listener is gone: it closed before the first close frame went
    // out.
    match TcpStream::connect(server.addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Ok(_) => panic!("a connection was accepted during shutdown"),
    }

    drop((ws, chat, clock, idle));
    server.join_within(PATIENCE);
}

#[test]
fn shutdown_gives_up_on_peers_that_never_answer() {
    let mut config = config();
    config.shutdown_timeout = Duration::from_millis(300);
    // So long that only the shutdown timeout can end things within
    // PATIENCE.
    config.ws = config.ws.close_timeout(FOREVER);
    config.linger = FOREVER;
    let server = TestServer::start(config, Demo::new());
    let mut ws = WsClient::connect(server.addr, "/echo");
    ws.auto_reply = false;
    let mut events = SseClient::connect(server.addr, "/topics/z/events", "");
    assert_eq!(events.response.status, 200);

    server.begin_shutdown();
    assert_eq!(ws.recv_close().code, CloseCode::GOING_AWAY);
    // Neither client closes its socket; the server stops waiting anyway.
    server.join_within(PATIENCE);
    // Returning dropped the connections.
    ws.expect_eof();
    assert!(events.read_to_end().is_empty());
}

#[test]
fn shutdown_with_no_connections_is_immediate() {
    let mut config = config();
    // Returning, run() shows it did not wait for the shutdown timeout.
    config.shutdown_timeout = FOREVER;
    let server = TestServer::start(config, Demo::new());
    assert_eq!(common::get(server.addr, "/healthz").status, 200);
    server.shutdown_within(PATIENCE);
}
