//! A WebSocket over HTTP/2 (RFC 8441) whose client never opens the
//! stream's window and floods it with PINGs: the PONGs the server owes
//! wait on the stream, and once more than the output limit waits, the
//! server holds back the stream's window for the input it handles, so
//! the client's flood stops for lack of window (as HTTP/1.1 stops reading
//! a client that does not read its answers). The stream is then reset by
//! the stall deadline; the connection serves on. The client is
//! tether-testkit's.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use tether_testkit as common;

use common::h2::H2Client;
use common::{TestServer, config, tcp};
use tether_apps::Echo;
use tether_h2::ErrorCode;
use tether_h2::frame::Setting;

/// A masked PING with 125 bytes of payload: 131 bytes, each owing a
/// 127-byte PONG.
const PING: usize = 131;
const PONG: usize = 127;

/// 125 PINGs: 16 375 bytes, one DATA frame.
fn pings() -> Vec<u8> {
    let mut ping = vec![0x89u8, 0x80 | 125, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0x55u8, 125));
    assert_eq!(ping.len(), PING);
    ping.repeat(125)
}

#[test]
fn a_websocket_whose_window_stays_shut_gets_no_window_for_more_pings() {
    const FLOOD: usize = 8 << 20;
    let keep_alive = Duration::from_secs(3);
    let mut config = config();
    config.keep_alive_timeout = keep_alive;
    let limit = config.max_output;
    let stream_window = config.h2.initial_window_size as usize;
    let server = TestServer::start(config, Echo::at("/echo"));
    // The server may send nothing on a stream until the client opens its
    // window, which it never does.
    let mut client = H2Client::start(tcp(server.addr), &[Setting::InitialWindowSize(0)]);
    let stream = client.websocket("/echo", &[]);
    client.held.insert(stream);
    assert_eq!(client.head(stream).status(), Some(200));
    let opened = Instant::now();
    let chunk = pings();
    let mut sent = 0;
    while sent < FLOOD {
        let n = client.data_while_open(stream, &chunk, Duration::from_millis(500));
        sent += n;
        if n < chunk.len() {
            break;
        }
    }
    assert!(
        client.streams.get(&stream).is_some_and(|s| s.reset.is_none()),
        "the flood ended by a reset, not for lack of window, after {sent} bytes"
    );
    // Once the PONGs queued passed the limit, the window for the PINGs
    // handled was not given back: at most one stream window (and the
    // frame that passed the limit) more went, so what the server holds
    // for the stream stays bounded.
    let bound = (limit + chunk.len()) * PING / PONG + stream_window;
    assert!(sent <= bound, "{sent} bytes of PINGs taken (bound {bound})");
    assert!(sent * PONG / PING > limit, "held back after only {sent} bytes");
    // The PONGs never go: the stall deadline resets the stream.
    let state = client.finish(stream);
    assert_eq!(state.reset, Some(ErrorCode::CANCEL));
    assert!(state.data.is_empty());
    assert_eq!(server.stats().slow_consumers, 0, "not the slow-consumer policy");
    assert!(
        opened.elapsed() >= keep_alive,
        "reset after {:?}, before the stall deadline",
        opened.elapsed()
    );
    // The connection serves on.
    let health = client.get("/healthz", &[]);
    client.window_update(health, 1 << 16);
    assert_eq!(client.finish(health).status(), Some(200));
    assert_eq!(server.stats().open_websocket, 0);
    drop(client);
    server.shutdown();
}
