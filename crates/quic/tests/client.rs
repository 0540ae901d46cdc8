//! `QuicClient` (quinn-proto client + tether-h3's client session) against
//! a `QuicServer` over an in-memory network on a virtual clock: requests
//! answered with heads, bodies larger than the stream window, resets, and
//! the end of a connection, every event checked.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_h2::hpack::Field;
use tether_h3::ErrorCode;
use tether_h3::session::SessionEvent;
use tether_quic::{ClientEvent, QuicClient, QuicConfig, QuicServer, ServerEvent};

fn certs() -> (rustls::ServerConfig, rustls::ClientConfig) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    // As a TCP client has it (both versions, ALPN http/1.1): the QUIC
    // client keeps TLS 1.3 and puts h3 in its place.
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    (server, client)
}

/// What one response delivered.
#[derive(Debug, Default)]
struct Response {
    status: Option<u16>,
    content_type: Option<Vec<u8>>,
    body: Vec<u8>,
    finished: bool,
    reset: Option<u64>,
}

/// A server answering `GET /size/N` with N bytes in 1000-byte pieces,
/// `/reset` with a reset, and the client.
struct Net {
    now: Instant,
    server: QuicServer,
    server_addr: SocketAddr,
    client_addr: SocketAddr,
    client: QuicClient,
    responses: BTreeMap<u64, Response>,
    connected: bool,
    closed: Option<String>,
}

impl Net {
    fn new(window: u32) -> Net {
        let (server_tls, client_tls) = certs();
        let now = Instant::now();
        let server_addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        Net {
            now,
            server: QuicServer::new(QuicConfig::default(), &server_tls).unwrap(),
            server_addr,
            client_addr: "127.0.0.1:50000".parse().unwrap(),
            client: QuicClient::connect(&client_tls, server_addr, "localhost", window, now).unwrap(),
            responses: BTreeMap::new(),
            connected: false,
            closed: None,
        }
    }

    /// Moves datagrams both ways, runs due timers and both sides' events,
    /// until nothing moves; then lets the clock run to the next timer.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let mut buf = Vec::new();
            while let Some(t) = self.client.poll_transmit(self.now, 1, &mut buf) {
                assert_eq!(t.destination, self.server_addr);
                self.server
                    .handle_datagram(self.now, self.client_addr, None, &buf[..t.size]);
                moved = true;
            }
            self.serve();
            while let Some(t) = self.server.poll_transmit(self.now, 1, &mut buf) {
                self.client
                    .handle_datagram(self.now, self.server_addr, &buf[..t.size]);
                moved = true;
            }
            self.observe();
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    /// Settles, then runs the clock forward `by` in steps of 5 ms.
    fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        self.settle();
        while self.now < end {
            self.now += Duration::from_millis(5);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.settle();
        }
    }

    fn serve(&mut self) {
        while let Some(event) = self.server.poll_event() {
            let ServerEvent::Session {
                conn,
                event: SessionEvent::Request { stream_id, request },
            } = event
            else {
                continue;
            };
            let path = request.path.unwrap_or_default();
            if path == "/reset" {
                self.server
                    .reset(self.now, conn, stream_id, ErrorCode::H3_REQUEST_REJECTED);
                continue;
            }
            let size: usize = path.trim_start_matches("/size/").parse().unwrap();
            let fields = [Field::new("content-type", "application/octet-stream")];
            self.server
                .send_head(self.now, conn, stream_id, 200, &fields)
                .unwrap();
            let body = expected(size);
            for piece in body.chunks(1000) {
                self.server.send_data(self.now, conn, stream_id, piece).unwrap();
            }
            self.server.finish(self.now, conn, stream_id).unwrap();
        }
    }

    fn observe(&mut self) {
        let mut events = Vec::new();
        self.client.poll_events(self.now, &mut events);
        for event in events {
            match event {
                ClientEvent::Connected => self.connected = true,
                ClientEvent::Closed(why) => self.closed = Some(why),
                ClientEvent::Response {
                    stream,
                    status,
                    fields,
                } => {
                    let r = self.responses.entry(stream).or_default();
                    assert!(r.status.is_none(), "a second head on {stream}");
                    r.status = Some(status);
                    r.content_type = fields
                        .iter()
                        .find(|f| f.name == b"content-type")
                        .map(|f| f.value.clone());
                }
                ClientEvent::Data { stream, data } => {
                    let r = self.responses.entry(stream).or_default();
                    assert!(r.status.is_some() && !r.finished, "data out of place on {stream}");
                    r.body.extend_from_slice(&data);
                }
                ClientEvent::Finished { stream } => self.responses.entry(stream).or_default().finished = true,
                ClientEvent::Reset { stream, code } => {
                    self.responses.entry(stream).or_default().reset = Some(code)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn get(&mut self, path: &str) -> u64 {
        let fields = [
            Field::new(":method", "GET"),
            Field::new(":scheme", "https"),
            Field::new(":authority", "localhost"),
            Field::new(":path", path),
        ];
        self.client.request(&fields, b"", true).unwrap()
    }
}

fn expected(size: usize) -> Vec<u8> {
    (0..size).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

#[test]
fn requests_are_answered_in_full_past_the_stream_window() {
    let mut net = Net::new(16 * 1024);
    let fields = [Field::new(":method", "GET"), Field::new(":path", "/size/1")];
    assert!(
        net.client.request(&fields, b"", true).is_err(),
        "before the handshake"
    );
    net.run_for(Duration::from_millis(50));
    assert!(net.connected && net.client.is_connected());
    let sizes = [0, 1, 1000, 70_000, 300_000];
    let ids: Vec<u64> = sizes.iter().map(|n| net.get(&format!("/size/{n}"))).collect();
    assert_eq!(ids, [0, 4, 8, 12, 16]);
    net.run_for(Duration::from_millis(500));
    for (id, size) in ids.iter().zip(sizes) {
        let r = &net.responses[id];
        assert_eq!(r.status, Some(200), "{size}");
        assert_eq!(r.content_type.as_deref(), Some(&b"application/octet-stream"[..]));
        assert!(r.finished, "{size}");
        assert_eq!(r.body, expected(size), "{size}");
    }
    assert_eq!(net.closed, None);
}

#[test]
fn a_reset_response_is_reported_and_the_connection_goes_on() {
    let mut net = Net::new(64 * 1024);
    net.run_for(Duration::from_millis(50));
    let reset = net.get("/reset");
    let after = net.get("/size/10");
    net.run_for(Duration::from_millis(200));
    assert_eq!(
        net.responses[&reset].reset,
        Some(ErrorCode::H3_REQUEST_REJECTED.value())
    );
    assert!(!net.responses[&reset].finished);
    assert_eq!(net.responses[&after].body, expected(10));
    assert_eq!(net.closed, None);
}

#[test]
fn the_end_of_the_connection_is_reported() {
    let mut net = Net::new(64 * 1024);
    net.run_for(Duration::from_millis(50));
    net.server.close_all(net.now, ErrorCode::H3_NO_ERROR);
    net.run_for(Duration::from_millis(100));
    let why = net.closed.clone().expect("closed");
    assert!(why.contains("closed by peer"), "{why}");
    assert!(net.client.is_closed());
    assert!(
        net.client
            .request(&[Field::new(":method", "GET")], b"", true)
            .is_err()
    );
}
