//! QUIC handshakes left half-open are bounded per source: a client that
//! starts more handshakes from one address than
//! `QuicConfig::max_half_open_per_source` and answers none of them has
//! the excess refused (CONNECTION_REFUSED, counted among the refusals),
//! while a well-behaved client from another address connects and is
//! served. (All 32 of 32 used to be held, and could complete seconds
//! later.) The client is the HTTP/3 tests' own, quinn-proto driven by
//! hand over a real UDP socket.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, Endpoint, EndpointConfig};
use tether_server::{App, Route};
use tether_testkit::TestServer;

#[path = "support/h3_client.rs"]
mod h3_client;
use h3_client::{Client, certs, stats_until};

/// A page at every path.
struct Page;

impl App for Page {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &tether_server::Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: b"served\n",
        }
    }
}

/// The first datagram of a new handshake to `server` (a quinn-proto
/// client's padded Initial), for a client that sends it and nothing more.
fn first_flight(server: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
    let config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls.clone()).unwrap()));
    let (_, mut conn) = endpoint
        .connect(Instant::now(), config, server, "localhost")
        .unwrap();
    let mut buf = Vec::new();
    let t = conn.poll_transmit(Instant::now(), 1, &mut buf).unwrap();
    buf.truncate(t.size);
    buf
}

#[test]
fn half_open_handshakes_past_the_bound_per_source_are_refused_and_others_connect() {
    let mut certs = certs(b"h3");
    certs.server.quic.max_half_open_per_source = 4;
    let server = TestServer::start(certs.server, Page);
    // 32 handshakes from one address (another loopback address than the
    // well-behaved client's), each from a port of its own, none answered.
    let sockets: Vec<UdpSocket> = (0..32)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.2:0").unwrap();
            socket
                .send_to(&first_flight(server.addr, &certs.client), server.addr)
                .unwrap();
            socket
        })
        .collect();
    let stats = stats_until(&server, "28 refusals", |s| s.quic_refused >= 28);
    assert_eq!(stats.quic_refused, 28, "{stats:?}");
    assert_eq!(stats.open_h3, 4, "{stats:?}");
    // A client from elsewhere connects and is served.
    let mut client = Client::connect(server.addr, &certs.client, 1 << 16);
    let stream = client.request("GET", "/", b"");
    let (status, body) = client.response(stream);
    assert_eq!((status, body.as_slice()), (200, &b"served\n"[..]));
    let stats = server.stats();
    assert_eq!((stats.quic_refused, stats.quic_handshakes), (28, 1), "{stats:?}");
    drop(sockets);
    server.shutdown();
}
