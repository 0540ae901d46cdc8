//! A WebSocket over HTTP/2 (RFC 8441) whose client never opens the
//! stream's window and floods it with PINGs: the PONGs the server owes
//! wait on the stream, and past the connection's output limit the
//! slow-consumer policy resets the stream with CANCEL instead of letting
//! the queue grow. The client is tether-testkit's.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use common::h2::H2Client;
use common::{TestServer, config, tcp};
use tether_apps::Echo;
use tether_h2::ErrorCode;
use tether_h2::frame::Setting;

/// 125 frames of a masked PING with 125 bytes of payload: 16 375 bytes,
/// one DATA frame, each PING owing a 127-byte PONG.
fn pings() -> Vec<u8> {
    let mut ping = vec![0x89u8, 0x80 | 125, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0x55u8, 125));
    ping.repeat(125)
}

#[test]
fn pongs_to_a_websocket_whose_window_stays_shut_are_cut_loose() {
    const FLOOD: usize = 8 << 20;
    let server = TestServer::start(config(), Echo::at("/echo"));
    let limit = config().max_output;
    // The server may send nothing on a stream until the client opens its
    // window, which it never does.
    let mut client = H2Client::start(tcp(server.addr), &[Setting::InitialWindowSize(0)]);
    let stream = client.websocket("/echo", &[]);
    client.held.insert(stream);
    assert_eq!(client.head(stream).status(), Some(200));
    let chunk = pings();
    let mut sent = 0;
    while sent < FLOOD && client.data_unless_reset(stream, &chunk) {
        sent += chunk.len();
    }
    let state = client.finish(stream);
    assert_eq!(
        state.reset,
        Some(ErrorCode::CANCEL),
        "after {sent} bytes of PINGs"
    );
    assert!(state.data.is_empty());
    // Cut once the PONGs passed the limit, not after the whole flood
    // (the client notices the reset a window or so late).
    assert!(
        sent < FLOOD / 2,
        "{sent} bytes of PINGs taken with the window shut"
    );
    assert!(sent > limit, "reset after only {sent} bytes");
    assert!(server.stats().slow_consumers >= 1);
    // The connection serves on.
    let health = client.get("/healthz", &[]);
    client.window_update(health, 1 << 16);
    assert_eq!(client.finish(health).status(), Some(200));
    assert_eq!(server.stats().open_websocket, 0);
    drop(client);
    server.shutdown();
}
