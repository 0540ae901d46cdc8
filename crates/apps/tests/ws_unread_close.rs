//! A WebSocket whose session is over while its client does not read what
//! is queued for it (the close frame among it): the connection is dropped
//! a linger after the end, not held for ever. And one that reads still
//! gets everything, the close frame, then the end of the stream.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, TestServer, Upgrade, WsClient, client_frame, config};
use socket2::{Domain, Socket, Type};
use tether_frame::OpCode;
use tether_server::{App, CloseCode, Config, ConnId, Ctx, Message, MessageRef, Request, Route};

/// What a `flood` message is answered with: more than the socket buffers
/// between server and client take.
const FLOOD: usize = 8 << 20;

/// A WebSocket at `/ws` that answers `flood` with [`FLOOD`] bytes and
/// echoes anything else; a page everywhere else.
struct Flood;

impl App for Flood {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/ws" => Route::WebSocket(()),
            _ => Route::Page {
                content_type: "text/plain",
                body: b"fine\n",
            },
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _state: &mut (), message: MessageRef<'_>) {
        if message.as_bytes() == b"flood" {
            ctx.send_owned(conn, Message::binary(vec![7u8; FLOOD]));
        } else {
            ctx.send(conn, message);
        }
    }
}

/// Small output limit, short WebSocket timers.
fn small_config() -> Config {
    let mut config = config();
    config.max_output = 16 * 1024;
    config.ws = config
        .ws
        .ping_interval(None)
        .idle_timeout(Some(Duration::from_millis(300)))
        .close_timeout(Duration::from_millis(300));
    config
}

/// A WebSocket to `/ws` from a socket with a 4 KiB receive buffer.
fn small_window_client(addr: SocketAddr) -> WsClient {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let upgrade = Upgrade::new(addr, "/ws");
    stream.write_all(&upgrade.request).unwrap();
    WsClient::finish(stream, upgrade)
}

/// Waits for the server to hold no WebSocket: its timeouts are 300 ms, so
/// half a minute is a guard against a socket held for good, not a measure.
fn expect_no_websocket_soon(server: &TestServer) {
    let start = Instant::now();
    while server.stats().open_websocket != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a WebSocket whose client does not read is still held after 30 s: {:?}",
            server.stats()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server is still serving.
fn expect_serving(server: &TestServer) {
    let response = common::get(server.addr, "/");
    assert_eq!(response.status, 200);
}

#[test]
fn a_client_that_sends_pings_and_never_reads_is_dropped_after_the_idle_close() {
    let server = TestServer::start(small_config(), Flood);
    let client = small_window_client(server.addr);
    assert_eq!(server.stats().open_websocket, 1);
    // Masked pings, whose pongs are never read, until the server stops
    // reading (its output past the limit): the writes block for a while.
    let mut ping = Vec::new();
    client_frame(&mut ping, true, OpCode::Ping, &[0; 125], [1, 2, 3, 4]);
    let batch = ping.repeat(64);
    let mut stream = &client.stream;
    stream.set_nonblocking(true).unwrap();
    let mut blocked_since: Option<Instant> = None;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server kept reading"
        );
        match stream.write(&batch) {
            Ok(_) => blocked_since = None,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    // The idle timeout queues a close frame behind the unread pongs and
    // ends the session; the connection goes a linger later.
    expect_no_websocket_soon(&server);
    expect_serving(&server);
    drop(client);
    server.shutdown();
}

/// The client asks for more than the socket buffers take, sends `then` in
/// the same write (so that the server reads it before it stops reading),
/// and never reads.
fn session_ends_behind_unread_output(then: &[u8]) {
    let server = TestServer::start(small_config(), Flood);
    let mut client = small_window_client(server.addr);
    assert_eq!(server.stats().open_websocket, 1);
    let mut wire = Vec::new();
    client_frame(&mut wire, true, OpCode::Text, b"flood", [1, 2, 3, 4]);
    wire.extend_from_slice(then);
    client.send_raw(&wire);
    expect_no_websocket_soon(&server);
    expect_serving(&server);
    drop(client);
    server.shutdown();
}

#[test]
fn a_close_answered_behind_unread_output_does_not_hold_the_connection() {
    let mut close = Vec::new();
    client_frame(
        &mut close,
        true,
        OpCode::Close,
        &1000u16.to_be_bytes(),
        [5, 6, 7, 8],
    );
    session_ends_behind_unread_output(&close);
}

#[test]
fn a_protocol_error_behind_unread_output_does_not_hold_the_connection() {
    // A frame with a reserved opcode: the session fails with 1002.
    session_ends_behind_unread_output(&[0x83, 0x80, 1, 2, 3, 4]);
}

#[test]
fn a_client_that_reads_gets_everything_then_the_close_then_the_end() {
    let mut config = small_config();
    config.linger = Duration::from_secs(3);
    let server = TestServer::start(config, Flood);
    let mut client = WsClient::connect(server.addr, "/ws");
    client.send_text("flood");
    client.close(CloseCode::NORMAL, "done");
    assert_eq!(client.recv().as_bytes().len(), FLOOD);
    assert_eq!(client.recv_close().code, CloseCode::NORMAL);
    client.expect_eof();
    drop(client);
    expect_no_websocket_soon(&server);
    server.shutdown();
}
