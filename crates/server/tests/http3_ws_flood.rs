//! A WebSocket over HTTP/3 (RFC 9220) whose client never raises the
//! stream's credit for the server and floods it with PINGs: the PONGs the
//! server owes wait on the stream, and past `max_output` the
//! slow-consumer policy resets the stream with H3_REQUEST_CANCELLED
//! instead of letting them pile up. The client is quinn-proto driven by
//! hand, as in `http3.rs` (what is needed of it is copied here), with a
//! small stream receive window that it never reopens on the WebSocket's
//! stream: it stops reading that stream once the 200 is in.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event,
    ReadError, StreamEvent, StreamId, TransportConfig, VarInt, WriteError,
};
use tether_h2::hpack::Field;
use tether_h3::frame::{self, Frame};
use tether_h3::qpack;
use tether_h3::settings::Settings;
use tether_server::{App, CloseReason, Config, ConnId, Ctx, Route, tls};
use tether_testkit::{IO_TIMEOUT, TestServer, config};

/// How each WebSocket ended.
type Ends = Arc<Mutex<Vec<CloseReason>>>;

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

/// A configuration with TLS for `localhost` and HTTP/3 on, and a client
/// TLS configuration that trusts it and offers `h3`.
fn certs() -> (Config, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut server = config();
    server.tls = Some(tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    server.http3 = true;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let mut client =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    client.alpn_protocols = vec![b"h3".to_vec()];
    (server, Arc::new(client))
}

/// What a stream from the server delivered.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    reset: Option<u64>,
}

/// An HTTP/3 client connection on a UDP socket of its own.
struct Client {
    socket: UdpSocket,
    endpoint: Endpoint,
    handle: ConnectionHandle,
    conn: Connection,
    received: BTreeMap<StreamId, Received>,
    /// A stream this client does not read, so never gives credit for.
    unread: Option<StreamId>,
    connected: bool,
}

impl Client {
    fn connect(server: SocketAddr, tls: &Arc<rustls::ClientConfig>, stream_window: u32) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
        let mut config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls.clone()).unwrap()));
        let mut transport = TransportConfig::default();
        transport.stream_receive_window(VarInt::from_u32(stream_window));
        config.transport_config(Arc::new(transport));
        let (handle, conn) = endpoint
            .connect(Instant::now(), config, server, "localhost")
            .unwrap();
        let mut client = Client {
            socket,
            endpoint,
            handle,
            conn,
            received: BTreeMap::new(),
            unread: None,
            connected: false,
        };
        client.until("the handshake", |c| c.connected);
        // The control stream, with an empty SETTINGS (RFC 9114 §6.2.1).
        let control = client.conn.streams().open(Dir::Uni).unwrap();
        let mut wire = vec![0x00];
        Frame::Settings(Settings::default()).encode(&mut wire).unwrap();
        assert!(client.write_all(control, &wire));
        client
    }

    /// Writes all of `bytes` on `id` as the server's credit allows; false
    /// if the server stopped the stream first.
    fn write_all(&mut self, id: StreamId, mut bytes: &[u8]) -> bool {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !bytes.is_empty() {
            match self.conn.send_stream(id).write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(WriteError::Blocked) => {
                    assert!(Instant::now() < deadline, "timed out waiting for credit");
                    self.step();
                }
                Err(WriteError::Stopped(_) | WriteError::ClosedStream) => return false,
            }
        }
        true
    }

    /// One round: datagrams out, datagrams in (waiting a few
    /// milliseconds for them), timers, events.
    fn step(&mut self) {
        let now = Instant::now();
        let mut buf = Vec::new();
        while let Some(t) = self.conn.poll_transmit(now, 1, &mut buf) {
            self.socket.send_to(&buf[..t.size], t.destination).unwrap();
            buf.clear();
        }
        let mut datagram = vec![0u8; 65_536];
        loop {
            match self.socket.recv_from(&mut datagram) {
                Ok((n, from)) => {
                    let mut response = Vec::new();
                    let event = self.endpoint.handle(
                        Instant::now(),
                        from,
                        None,
                        None,
                        BytesMut::from(&datagram[..n]),
                        &mut response,
                    );
                    if let Some(DatagramEvent::ConnectionEvent(_, event)) = event {
                        self.conn.handle_event(event);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("UDP receive: {e}"),
            }
        }
        let now = Instant::now();
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
        }
        while let Some(event) = self.conn.poll_endpoint_events() {
            if let Some(event) = self.endpoint.handle_event(self.handle, event) {
                self.conn.handle_event(event);
            }
        }
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => self.connected = true,
                Event::ConnectionLost { reason } => panic!("connection lost: {reason}"),
                Event::Stream(StreamEvent::Opened { dir }) => {
                    while let Some(id) = self.conn.streams().accept(dir) {
                        self.read(id);
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read(id),
                _ => {}
            }
        }
    }

    fn read(&mut self, id: StreamId) {
        if self.unread == Some(id) {
            return;
        }
        let entry = self.received.entry(id).or_default();
        let mut recv = self.conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => entry.bytes.extend_from_slice(&chunk.bytes),
                Ok(None) | Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    entry.reset = Some(code.into_inner());
                    break;
                }
            }
        }
        let _ = chunks.finalize();
    }

    /// Steps until `done` says so (or fails the test after a generous
    /// timeout, which only catches a hang).
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Client) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.step();
        }
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
    let (server_config, tls) = certs();
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
