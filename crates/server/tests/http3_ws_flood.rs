//! A WebSocket over HTTP/3 (RFC 9220) whose client never raises the
//! stream's credit for the server and floods it with PINGs: the PONGs the
//! server owes wait on the stream, and past `max_output` the
//! slow-consumer policy resets the stream with H3_REQUEST_CANCELLED
//! instead of letting them pile up. The client is the HTTP/3 tests' own
//! (quinn-proto driven by hand), with a small stream receive window that
//! it never reopens on the WebSocket's stream: it stops reading that
//! stream once the 200 is in.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use quinn_proto::Dir;
use tether_h2::hpack::Field;
use tether_h3::frame::{self, Frame};
use tether_h3::qpack;
use tether_server::{App, CloseReason, ConnId, Ctx, Route};
use tether_testkit::{IO_TIMEOUT, TestServer};

#[path = "support/h3_client.rs"]
mod h3_client;
use h3_client::{Certs, Client, Ends, certs};

/// A WebSocket at `/ws` that sends nothing of its own: what the server
/// sends on it is the PONGs it owes.
struct Sockets {
    ends: Ends,
}

impl App for Sockets {
    type Post = ();

    fn route(&mut self, request: &tether_server::Request<'_>) -> Route {
        match request.path() {
            "/ws" => Route::WebSocket(0),
            _ => Route::NotFound,
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, _: ConnId, _: u32, reason: CloseReason) {
        self.ends.lock().unwrap().push(reason);
    }
}

/// 125 frames of a masked PING with 125 bytes of payload in one DATA
/// frame, each PING owing a 127-byte PONG.
fn pings() -> Vec<u8> {
    let mut ping = vec![0x89u8, 0x80 | 125, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0x55u8, 125));
    let mut wire = Vec::new();
    frame::encode_data(&ping.repeat(125), &mut wire).unwrap();
    wire
}

#[test]
fn pongs_to_a_websocket_whose_credit_stays_shut_are_cut_loose() {
    const FLOOD: usize = 8 << 20;
    let Certs {
        server: server_config,
        client: tls,
    } = certs(b"h3");
    let limit = server_config.max_output;
    let ends = Ends::default();
    let server = TestServer::start(server_config, Sockets { ends: ends.clone() });
    // 16 KiB of credit per stream from the server, never raised on the
    // WebSocket's stream once its 200 is in.
    let mut client = Client::connect(server.addr, &tls, 16 * 1024);
    let fields = [
        Field::new(":method", "CONNECT"),
        Field::new(":protocol", "websocket"),
        Field::new(":scheme", "https"),
        Field::new(":authority", "localhost"),
        Field::new(":path", "/ws"),
        Field::new("sec-websocket-version", "13"),
    ];
    let mut section = Vec::new();
    qpack::encode(&fields, &mut section);
    let mut head = Vec::new();
    Frame::Headers(section).encode(&mut head).unwrap();
    let ws = client.conn.streams().open(Dir::Bi).unwrap();
    assert!(client.write_all(ws, &head));
    client.until("the WebSocket's 200", |c| {
        c.received.get(&ws).is_some_and(|r| !r.bytes.is_empty())
    });
    client.unread = Some(ws);

    let chunk = pings();
    let mut sent = 0;
    while sent < FLOOD && client.write_all(ws, &chunk) {
        sent += chunk.len();
    }
    client.until("the application told", |_| !ends.lock().unwrap().is_empty());
    assert_eq!(ends.lock().unwrap()[..], [CloseReason::SlowConsumer]);
    // Cut once the PONGs passed the limit, not after the whole flood
    // (the client sees STOP_SENDING a little late).
    assert!(
        sent < FLOOD / 2,
        "{sent} bytes of PINGs taken with the credit shut"
    );
    assert!(sent > limit, "cut after only {sent} bytes");

    // Read at last, the stream turns out reset with H3_REQUEST_CANCELLED.
    client.unread = None;
    client.until("the reset", |c| {
        c.read(ws);
        c.received.get(&ws).is_some_and(|r| r.reset.is_some())
    });
    assert_eq!(client.received[&ws].reset, Some(0x10c));
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().h3_slow_consumer_resets == 0 {
        assert!(Instant::now() < deadline, "the reset was not counted");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(server.stats().slow_consumers >= 1);
}
