//! A WebSocket over HTTP/3 (RFC 9220) whose client never raises the
//! stream's credit for the server and floods it with PINGs: the PONGs the
//! server owes wait on the stream, and past `max_output` the server stops
//! reading the stream, so that the client's credit for its PINGs runs out
//! instead of the PONGs piling up; once the client reads, every PING it
//! sent is answered and the stream goes on. The client is the HTTP/3
//! tests' own (quinn-proto driven by hand), with a small stream receive
//! window that it does not reopen on the WebSocket's stream while it
//! leaves that stream unread.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use quinn_proto::WriteError;
use tether_h3::frame::{self};
use tether_server::{App, CloseReason, ConnId, Ctx, Route};
use tether_testkit::TestServer;

#[path = "support/h3_client.rs"]
mod h3_client;
use h3_client::{Certs, Client, Ends, certs, stats_until};

/// A WebSocket at `/ws` that sends nothing of its own: what the server
/// sends on it is the PONGs it owes.
struct Sockets {
    ends: Ends,
}

impl App for Sockets {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &tether_server::Request<'_>) -> Route {
        match request.path() {
            "/ws" => Route::WebSocket(()),
            _ => Route::NotFound,
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), reason: CloseReason) {
        self.ends.lock().unwrap().push(reason);
    }
}

/// PINGs in one chunk of [`pings`].
const PINGS: usize = 125;
/// The PONG each PING owes: 2 bytes of header, 125 of payload.
const PONG: usize = 127;

/// 125 frames of a masked PING with 125 bytes of payload in one DATA
/// frame, each PING owing a 127-byte PONG.
fn pings() -> Vec<u8> {
    let mut ping = vec![0x89u8, 0x80 | 125, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0x55u8, 125));
    let mut wire = Vec::new();
    frame::encode_data(&ping.repeat(PINGS), &mut wire).unwrap();
    wire
}

#[test]
fn a_websocket_whose_credit_stays_shut_is_not_read_past_max_output() {
    const FLOOD: usize = 8 << 20;
    // The client's writes count as stalled after this long without credit.
    const STALL: Duration = Duration::from_secs(1);
    let Certs {
        server: server_config,
        client: tls,
    } = certs(b"h3");
    let limit = server_config.max_output;
    let ends = Ends::default();
    let server = TestServer::start(server_config, Sockets { ends: ends.clone() });
    // 16 KiB of credit per stream from the server, not raised on the
    // WebSocket's stream while it is left unread.
    let mut client = Client::connect(server.addr, &tls, 16 * 1024);
    let ws = client.open_websocket("/ws");
    client.unread = Some(ws);

    // PINGs, as fast as the server's credit allows, until it gives none.
    let chunk = pings();
    let (mut chunks, mut offset) = (0, 0);
    let mut progress = Instant::now();
    while chunks * chunk.len() < FLOOD {
        match client.conn.send_stream(ws).write(&chunk[offset..]) {
            Ok(n) => {
                progress = Instant::now();
                offset += n;
                if offset == chunk.len() {
                    chunks += 1;
                    offset = 0;
                }
            }
            Err(WriteError::Blocked) if progress.elapsed() < STALL => client.step(),
            Err(WriteError::Blocked) => break,
            Err(e) => panic!("the WebSocket's stream: {e:?}"),
        }
    }
    let sent = chunks * chunk.len() + offset;
    // Stopped once the PONGs passed the limit, with one stream window
    // more (and what was read with the last PINGs), not after the flood.
    assert!(
        sent < limit + limit / 2,
        "{sent} bytes of PINGs taken with the credit shut"
    );
    assert!(sent > limit, "stopped after only {sent} bytes");
    assert!(ends.lock().unwrap().is_empty(), "{:?}", ends.lock().unwrap());

    // Read at last: the server reads the stream again, and every PING is
    // answered, those of the chunk in progress too.
    client.unread = None;
    client.read(ws);
    assert!(client.write_all(ws, &chunk[offset..]));
    let pongs = (chunks + 1) * PINGS;
    client.until("every PONG", |c| c.frames(ws).1.len() >= pongs * PONG);
    let (_, body) = client.frames(ws);
    assert_eq!(body.len(), pongs * PONG);
    assert!(body.chunks(PONG).all(|pong| pong[..2] == [0x8a, 125]));
    assert_eq!(client.received[&ws].reset, None);
    assert!(ends.lock().unwrap().is_empty(), "{:?}", ends.lock().unwrap());
    let stats = stats_until(&server, "the WebSocket counted open", |s| s.open_websocket == 1);
    assert_eq!(stats.slow_consumers, 0);
    assert_eq!(stats.h3_slow_consumer_resets, 0);
}
