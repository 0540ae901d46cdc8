//! HTTP/2 streams that stall hold their connection no longer than
//! HTTP/1.1 would: a request body that never comes is reset with CANCEL at
//! the request deadline (the handshake timeout, as on HTTP/1.1), and an
//! answer the client's window never takes is reset with CANCEL once the
//! keep-alive timeout passes with no output moving. (A connection with any
//! open stream had no timer at all: one such stream held it for good.) A
//! quiet event stream is not a stall and stays open.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::time::Duration;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config, tcp};
use tether_apps::{HubSettings, HubShared};
use tether_h2::ErrorCode;
use tether_h2::frame::Setting;
use tether_server::Handshake;

const TOKEN: &str = "h2-token";
const BEARER: &str = "Bearer h2-token";

/// The hub, with short request and keep-alive timeouts.
fn hub() -> TestServer {
    let mut config = config();
    config.keep_alive_timeout = Duration::from_millis(500);
    config.handshake_timeout = Duration::from_millis(500);
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    let shared = HubShared::new(settings, 1);
    let handshake = shared.settings().origin_policy(Handshake::new());
    TestServer::start_with(config, handshake, shared.app(0))
}

/// A client that gives up reading after 5 s (a stall never answered).
fn client(addr: std::net::SocketAddr, settings: &[Setting]) -> H2Client {
    let socket = tcp(addr);
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    H2Client::start(socket, settings)
}

/// Waits until the server resets `stream` or ends the connection; a read
/// that waits 5 s for it fails the test (see `client`).
fn expect_cut(client: &mut H2Client, stream: u32) {
    while client.streams.get(&stream).and_then(|s| s.reset).is_none() && client.goaway.is_none() {
        if !client.read_frame() {
            break;
        }
    }
    let reset = client.streams.get(&stream).and_then(|s| s.reset);
    assert!(
        reset == Some(ErrorCode::CANCEL) || client.goaway.is_some() || client.eof,
        "stream {stream}: {reset:?}, goaway {:?}",
        client.goaway
    );
}

/// The server still answers a new connection.
fn still_serves(server: &TestServer) {
    let mut fresh = H2Client::connect(server.addr);
    let health = fresh.get("/healthz", &[]);
    assert_eq!(fresh.finish(health).status(), Some(200));
    let mut http = HttpConn::connect(server.addr);
    http.request("GET", "/healthz", "");
    assert_eq!(http.response().status, 200);
}

#[test]
fn an_answer_the_window_never_takes_is_reset_after_the_keep_alive_timeout() {
    let server = hub();
    let mut stalled = client(server.addr, &[Setting::InitialWindowSize(0)]);
    let stream = stalled.get("/healthz", &[]);
    let head = stalled.head(stream);
    assert_eq!(head.status(), Some(200));
    expect_cut(&mut stalled, stream);
    still_serves(&server);
    drop(stalled);
    server.shutdown();
}

#[test]
fn a_request_body_that_never_comes_is_reset_at_the_request_deadline() {
    let server = hub();
    let mut stalled = client(server.addr, &[]);
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/slow"),
        (":authority", "localhost"),
        ("authorization", BEARER),
        ("content-length", "10"),
    ];
    let stream = stalled.open(&head, false);
    stalled.data(stream, b"abc", false);
    expect_cut(&mut stalled, stream);
    still_serves(&server);
    drop(stalled);
    server.shutdown();
}

#[test]
fn a_quiet_event_stream_is_not_a_stall() {
    let server = hub();
    let mut quiet = client(server.addr, &[]);
    let events = quiet.get("/topics/quiet/events", &[]);
    quiet.data_contains(events, b"retry:");
    // Past the keep-alive timeout twice over, with nothing to send.
    std::thread::sleep(Duration::from_millis(1500));
    let mut publisher = H2Client::connect(server.addr);
    let published = publisher.request_with_body(
        "POST",
        "/topics/quiet",
        &[("authorization", BEARER)],
        b"still here",
    );
    assert!(publisher.finish(published).status().is_some_and(|s| s < 300));
    quiet.data_contains(events, b"data: still here\n");
    assert!(quiet.goaway.is_none());
    drop(quiet);
    drop(publisher);
    server.shutdown();
}

#[test]
fn a_slow_reader_whose_window_keeps_opening_is_not_a_stall() {
    let server = hub();
    let mut slow = client(server.addr, &[Setting::InitialWindowSize(0)]);
    // The first stream: its window is not opened on its own.
    slow.held.insert(1);
    let stream = slow.get("/healthz", &[]);
    assert_eq!(stream, 1);
    assert_eq!(slow.head(stream).status(), Some(200));
    // "ok\n" a byte at a time, one every 300 ms: 900 ms in all, more than
    // the keep-alive timeout, but the window never stays shut that long.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        slow.window_update(stream, 1);
    }
    let response = slow.finish(stream);
    assert_eq!(response.reset, None);
    assert_eq!(response.data, b"ok\n");
    drop(slow);
    server.shutdown();
}
