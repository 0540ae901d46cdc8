//! QUIC handshakes left half-open are bounded per source: a client that
//! starts more handshakes from one address than
//! `QuicConfig::max_half_open_per_source` and answers none of them has
//! the excess refused (CONNECTION_REFUSED, counted among the refusals),
//! while a well-behaved client from another address connects and is
//! served. (All 32 of 32 used to be held, and could complete seconds
//! later.) And in all: a flood from many addresses past
//! `QuicConfig::retry_above_handshakes` gets Retries, which a flood from
//! forged addresses cannot answer, and real clients are served; one that
//! answers them fills `QuicConfig::max_half_open` and no more, the rest
//! refused, until the handshakes time out. The client is the HTTP/3
//! tests' own, quinn-proto driven by hand over a real UDP socket.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, DatagramEvent, Endpoint, EndpointConfig};
use tether_server::{App, Route};
use tether_testkit::{IO_TIMEOUT, TestServer};

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

/// The first byte of a QUIC v1 Retry (RFC 9000 §17.2.5).
const RETRY: u8 = 0xf0;

/// A client on `ip` that sends its first flight to `server`, answers a
/// Retry if one comes and `answer_retry`, then reads nothing more: its
/// socket (held open, so that what the server sends finds it), and
/// whether a Retry came.
fn half_open_from(
    server: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    ip: Ipv4Addr,
    answer_retry: bool,
) -> (UdpSocket, bool) {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
    let config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls.clone()).unwrap()));
    let (_, mut conn) = endpoint
        .connect(Instant::now(), config, server, "localhost")
        .unwrap();
    let mut buf = Vec::new();
    let t = conn.poll_transmit(Instant::now(), 1, &mut buf).unwrap();
    socket.send_to(&buf[..t.size], server).unwrap();
    let mut reply = vec![0u8; 65_536];
    let (n, from) = socket.recv_from(&mut reply).unwrap();
    let retried = reply[0] & RETRY == RETRY;
    if retried && answer_retry {
        let mut response = Vec::new();
        let event = endpoint.handle(
            Instant::now(),
            from,
            None,
            None,
            BytesMut::from(&reply[..n]),
            &mut response,
        );
        let Some(DatagramEvent::ConnectionEvent(_, event)) = event else {
            panic!("the Retry was not the connection's");
        };
        conn.handle_event(event);
        buf.clear();
        let t = conn.poll_transmit(Instant::now(), 1, &mut buf).unwrap();
        socket.send_to(&buf[..t.size], server).unwrap();
    }
    (socket, retried)
}

/// The `i`th address of a flood (all of 127.0.0.0/8 is this host's).
fn flood_address(block: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, block, u8::try_from(i + 1).unwrap())
}

/// One GET answered 200 "served", over a connection of a client from
/// 127.0.0.1.
fn served(server: SocketAddr, tls: &Arc<rustls::ClientConfig>) {
    let mut client = Client::connect(server, tls, 1 << 16);
    let stream = client.request("GET", "/", b"");
    let (status, body) = client.response(stream);
    assert_eq!((status, body.as_slice()), (200, &b"served\n"[..]));
}

#[test]
fn a_flood_from_forged_addresses_gets_retries_and_real_clients_are_served() {
    let mut certs = certs(b"h3");
    certs.server.quic.retry_above_handshakes = 4;
    certs.server.quic.max_half_open = 16;
    let server = TestServer::start(certs.server, Page);
    // Forty clients, each from an address of its own, none answering what
    // the server sends (as when the addresses are forged): four handshakes
    // are held, the others are only sent a Retry, which holds nothing.
    let flood: Vec<(UdpSocket, bool)> = (0..40)
        .map(|i| half_open_from(server.addr, &certs.client, flood_address(2, i), false))
        .collect();
    assert_eq!(flood.iter().filter(|(_, retried)| *retried).count(), 36);
    let stats = stats_until(&server, "36 Retries", |s| s.quic_retries >= 36);
    assert_eq!((stats.quic_half_open, stats.quic_refused), (4, 0), "{stats:?}");
    // A real client answers its Retry and is served.
    served(server.addr, &certs.client);
    let stats = server.stats();
    assert_eq!((stats.quic_retries, stats.quic_handshakes), (37, 1), "{stats:?}");
    drop(flood);
    server.shutdown();
}

#[test]
fn a_flood_that_answers_retries_holds_the_bound_in_all_and_no_more_until_it_times_out() {
    let mut certs = certs(b"h3");
    certs.server.quic.retry_above_handshakes = 4;
    certs.server.quic.max_half_open = 12;
    certs.server.quic.handshake_timeout = std::time::Duration::from_secs(1);
    let server = TestServer::start(certs.server, Page);
    // Thirty clients from addresses of their own that answer the Retry
    // (real addresses): twelve handshakes are held, eighteen refused.
    let flood: Vec<(UdpSocket, bool)> = (0..30)
        .map(|i| half_open_from(server.addr, &certs.client, flood_address(3, i), true))
        .collect();
    let stats = stats_until(&server, "18 refusals", |s| s.quic_refused >= 18);
    assert_eq!(
        (
            stats.quic_half_open,
            stats.quic_refused_half_open,
            stats.quic_refused
        ),
        (12, 18, 18),
        "{stats:?}"
    );
    assert_eq!(stats.open_h3, 12, "{stats:?}");
    // At their timeout they are closed and forgotten, and a real client is
    // served (with no Retry: none are in progress).
    let stats = stats_until(&server, "the handshakes dropped", |s| s.open_h3 == 0);
    assert_eq!(
        (stats.quic_half_open, stats.quic_closed_handshake_timeout),
        (0, 12),
        "{stats:?}"
    );
    let retries = stats.quic_retries;
    served(server.addr, &certs.client);
    let stats = server.stats();
    assert_eq!(
        (stats.quic_retries, stats.quic_handshakes),
        (retries, 1),
        "{stats:?}"
    );
    drop(flood);
    server.shutdown();
}
