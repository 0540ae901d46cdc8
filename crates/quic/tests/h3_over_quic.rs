//! A quinn-proto client endpoint talking to a `QuicServer` over an
//! in-memory network (no sockets) on a virtual clock: HTTP/3 requests
//! answered through tether-h3's session, flow control, and the limits.

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

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint,
    EndpointConfig, Event, ReadError, StreamEvent, StreamId, TransportConfig, VarInt,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_h2::hpack::Field;
use tether_h3::frame::{self, Event as FrameEvent, Frame, FrameDecoder};
use tether_h3::qpack::{self, Decoder, Section};
use tether_h3::session::SessionEvent;
use tether_h3::settings::Settings;
use tether_quic::{QuicConfig, QuicServer, ServerEvent};

struct Certs {
    server: rustls::ServerConfig,
    client: Arc<rustls::ClientConfig>,
}

fn certs() -> Certs {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // As the TCP listener has it: TLS 1.2 and 1.3, ALPN for HTTP/2 and
    // HTTP/1.1, which the QUIC server replaces with h3.
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h3".to_vec()];
    Certs {
        server,
        client: Arc::new(client),
    }
}

/// One client connection and its HTTP/3 bits.
struct Client {
    addr: SocketAddr,
    endpoint: Endpoint,
    handle: ConnectionHandle,
    conn: Connection,
    connected: bool,
    lost: Option<ConnectionError>,
    /// What each stream from the server delivered, whether it ended, and
    /// its reset code.
    received: BTreeMap<StreamId, (Vec<u8>, bool, Option<u64>)>,
    /// Drop every datagram this client sends after the first `n`.
    blackhole_after: Option<usize>,
    sent: usize,
}

impl Client {
    fn new(
        certs: &Certs,
        addr: SocketAddr,
        server: SocketAddr,
        now: Instant,
        window: u32,
        uni_streams: Option<u32>,
    ) -> Client {
        let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
        let mut config = ClientConfig::new(Arc::new(
            QuicClientConfig::try_from(certs.client.clone()).unwrap(),
        ));
        let mut transport = TransportConfig::default();
        transport.stream_receive_window(VarInt::from_u32(window));
        if let Some(n) = uni_streams {
            transport.max_concurrent_uni_streams(VarInt::from_u32(n));
        }
        config.transport_config(Arc::new(transport));
        let (handle, conn) = endpoint.connect(now, config, server, "localhost").unwrap();
        Client {
            addr,
            endpoint,
            handle,
            conn,
            connected: false,
            lost: None,
            received: BTreeMap::new(),
            blackhole_after: None,
            sent: 0,
        }
    }

    fn poll(&mut self) {
        while let Some(event) = self.conn.poll_endpoint_events() {
            if let Some(event) = self.endpoint.handle_event(self.handle, event) {
                self.conn.handle_event(event);
            }
        }
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => self.connected = true,
                Event::ConnectionLost { reason } => self.lost = Some(reason),
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
        let entry = self.received.entry(id).or_default();
        let mut recv = self.conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => entry.0.extend_from_slice(&chunk.bytes),
                Ok(None) => {
                    entry.1 = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    entry.2 = Some(code.into_inner());
                    break;
                }
            }
        }
        let _ = chunks.finalize();
    }

    /// Opens the control stream with an empty SETTINGS.
    fn open_control(&mut self) {
        let id = self.conn.streams().open(Dir::Uni).unwrap();
        let mut wire = vec![0x00];
        Frame::Settings(Settings::default()).encode(&mut wire).unwrap();
        self.write_all(id, &wire, false);
    }

    fn write_all(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        let n = self.conn.send_stream(id).write(bytes).unwrap();
        assert_eq!(n, bytes.len(), "the test's writes fit the window");
        if fin {
            self.conn.send_stream(id).finish().unwrap();
        }
    }

    /// Sends a request with these fields (and body), ended.
    fn request(&mut self, fields: &[(&str, &str)], body: &[u8]) -> StreamId {
        let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
        let mut section = Vec::new();
        qpack::encode(&fields, &mut section);
        let mut wire = Vec::new();
        Frame::Headers(section).encode(&mut wire).unwrap();
        if !body.is_empty() {
            frame::encode_data(body, &mut wire).unwrap();
        }
        let id = self.conn.streams().open(Dir::Bi).unwrap();
        self.write_all(id, &wire, true);
        id
    }

    fn get(&mut self, path: &str) -> StreamId {
        self.request(
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "localhost"),
                (":path", path),
            ],
            b"",
        )
    }

    /// The response on `id`, once it ended: its heads and its body.
    fn response(&self, id: StreamId) -> Option<(Vec<Vec<Field>>, Vec<u8>)> {
        let (bytes, fin, _) = self.received.get(&id)?;
        if !fin {
            return None;
        }
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut qpack = Decoder::new(0, 0);
        let (mut heads, mut body) = (Vec::new(), Vec::new());
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest).unwrap();
            rest = &rest[used..];
            match event {
                Some(FrameEvent::Frame(Frame::Headers(section))) => {
                    let Section::Decoded(fields) = qpack.decode_section(u64::from(id), &section).unwrap()
                    else {
                        panic!("blocked")
                    };
                    heads.push(fields);
                }
                Some(FrameEvent::Data(d)) => body.extend_from_slice(d),
                _ => {}
            }
        }
        Some((heads, body))
    }

    /// The server's unidirectional stream of this type, if it came.
    fn server_uni(&self, stream_type: u8) -> Option<&[u8]> {
        self.received
            .iter()
            .find(|(id, (bytes, _, _))| id.dir() == Dir::Uni && bytes.first() == Some(&stream_type))
            .map(|(_, (bytes, _, _))| &bytes[1..])
    }
}

/// The server, its clients, and the virtual clock.
struct Net {
    now: Instant,
    server: QuicServer,
    server_addr: SocketAddr,
    clients: Vec<Client>,
    events: Vec<ServerEvent>,
    /// Answer each request with 200 and this body.
    answer: Option<Vec<u8>>,
    certs: Certs,
    /// Datagrams and bytes handed to the server, and taken from it.
    to_server: (u64, u64),
    from_server: (u64, u64),
}

impl Net {
    fn new(config: QuicConfig) -> Net {
        let certs = certs();
        let server = QuicServer::new(config, &certs.server).unwrap();
        Net {
            now: Instant::now(),
            server,
            server_addr: "127.0.0.1:4433".parse().unwrap(),
            clients: Vec::new(),
            events: Vec::new(),
            answer: Some(b"hello over h3".to_vec()),
            certs,
            to_server: (0, 0),
            from_server: (0, 0),
        }
    }

    fn connect(&mut self, window: u32) -> usize {
        self.connect_with(window, None)
    }

    /// A client that lets the server open `uni_streams` unidirectional
    /// streams (quinn's default without it).
    fn connect_with(&mut self, window: u32, uni_streams: Option<u32>) -> usize {
        let port = 50_000 + u16::try_from(self.clients.len()).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.clients.push(Client::new(
            &self.certs,
            addr,
            self.server_addr,
            self.now,
            window,
            uni_streams,
        ));
        self.clients.len() - 1
    }

    /// Moves datagrams both ways until none is left; true if any moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        let mut buf = Vec::new();
        for client in &mut self.clients {
            client.poll();
            buf.clear();
            while let Some(t) = client.conn.poll_transmit(self.now, 1, &mut buf) {
                moved = true;
                client.sent += 1;
                if client.blackhole_after.is_none_or(|n| client.sent <= n) {
                    self.to_server.0 += 1;
                    self.to_server.1 += t.size as u64;
                    self.server
                        .handle_datagram(self.now, client.addr, None, &buf[..t.size]);
                }
                buf.clear();
            }
        }
        self.serve();
        while let Some(t) = self.server.poll_transmit(self.now, 1, &mut buf) {
            moved = true;
            self.from_server.0 += 1;
            self.from_server.1 += t.size as u64;
            let Some(client) = self.clients.iter_mut().find(|c| c.addr == t.destination) else {
                continue;
            };
            let mut response = Vec::new();
            match client.endpoint.handle(
                self.now,
                self.server_addr,
                None,
                None,
                BytesMut::from(&buf[..t.size]),
                &mut response,
            ) {
                Some(DatagramEvent::ConnectionEvent(_, event)) => client.conn.handle_event(event),
                Some(DatagramEvent::Response(r)) => {
                    self.to_server.0 += 1;
                    self.to_server.1 += r.size as u64;
                    self.server
                        .handle_datagram(self.now, client.addr, None, &response[..r.size]);
                }
                _ => {}
            }
            client.poll();
        }
        self.serve();
        moved
    }

    /// The server's application: answers requests, records every event.
    fn serve(&mut self) {
        while let Some(event) = self.server.poll_event() {
            if let (
                ServerEvent::Session {
                    conn,
                    event: SessionEvent::Request { stream_id, .. },
                },
                Some(body),
            ) = (&event, &self.answer)
            {
                let (conn, stream_id, body) = (*conn, *stream_id, body.clone());
                let fields = [Field::new("content-type", "text/plain")];
                self.server
                    .send_head(self.now, conn, stream_id, 200, &fields)
                    .unwrap();
                self.server.send_data(self.now, conn, stream_id, &body).unwrap();
                self.server.finish(self.now, conn, stream_id).unwrap();
            }
            self.events.push(event);
        }
    }

    /// Moves datagrams, and when none moves advances the clock to the next
    /// timer, until `done` or for at most `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        for _ in 0..100_000 {
            if done(self) {
                return true;
            }
            if self.step() {
                continue;
            }
            let mut next = self.server.next_timeout();
            for client in &mut self.clients {
                next = match (next, client.conn.poll_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let Some(next) = next else {
                return done(self);
            };
            if next > end {
                return done(self);
            }
            self.now = self.now.max(next);
            self.server.handle_timeout(self.now);
            self.serve();
            for client in &mut self.clients {
                if client.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    client.conn.handle_timeout(self.now);
                }
            }
        }
        done(self)
    }

    fn connected(&mut self, client: usize) {
        assert!(
            self.run_until(Duration::from_secs(5), |net| net.clients[client].connected),
            "handshake"
        );
        self.clients[client].open_control();
    }
}

#[test]
fn a_get_is_answered_through_the_h3_session() {
    let mut net = Net::new(QuicConfig::default());
    let c = net.connect(1 << 20);
    net.connected(c);
    let id = net.clients[c].get("/events");
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].response(id).is_some()
    }));
    let (heads, body) = net.clients[c].response(id).unwrap();
    assert_eq!(
        heads,
        [vec![
            Field::new(":status", "200"),
            Field::new("content-type", "text/plain")
        ]]
    );
    assert_eq!(body, b"hello over h3");

    // The server saw the handshake, the client's SETTINGS, the request and
    // its end.
    assert!(matches!(net.events[0], ServerEvent::Connected { .. }));
    let session: Vec<&SessionEvent> = net
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Session { event, .. } => Some(event),
            _ => None,
        })
        .collect();
    assert!(session.contains(&&SessionEvent::Settings(Settings::default())));
    let request = session
        .iter()
        .find_map(|e| match e {
            SessionEvent::Request { request, .. } => Some(request),
            _ => None,
        })
        .unwrap();
    assert_eq!(request.path.as_deref(), Some("/events"));
    assert!(session.contains(&&SessionEvent::End {
        stream_id: u64::from(id)
    }));
    // The server's control stream carried its SETTINGS.
    let control = net.clients[c].server_uni(0x00).unwrap();
    let (_, event) = FrameDecoder::new(1024).decode(control).unwrap();
    let Some(FrameEvent::Frame(Frame::Settings(settings))) = event else {
        panic!("{event:?}")
    };
    assert_eq!(settings.max_field_section_size, Some(16 * 1024));

    // Counted: every datagram each way, with its bytes, and one
    // handshake; nothing closed yet.
    let stats = net.server.stats();
    assert_eq!((stats.datagrams_in, stats.bytes_in), net.to_server, "{stats:?}");
    assert_eq!((stats.datagrams_out, stats.bytes_out), net.from_server);
    assert!(stats.datagrams_in >= 2 && stats.bytes_in >= 1200, "{stats:?}");
    assert_eq!(stats.handshakes, 1);
    assert_eq!(
        (stats.closed_idle, stats.closed_error, stats.closed_normally),
        (0, 0, 0)
    );
}

#[test]
fn the_control_stream_goes_out_when_the_client_hello_spans_two_datagrams() {
    // Chromium's ClientHello (a post-quantum key share) is larger than one
    // datagram: the connection exists before the client's transport
    // parameters do, so the server cannot open its control stream at
    // once; it must once the handshake is done. Long ALPN names make this
    // client's ClientHello as large.
    let mut net = Net::new(QuicConfig::default());
    let mut client = (*net.certs.client).clone();
    client.alpn_protocols = (0..8u8)
        .map(|i| vec![b'a' + i; 200])
        .chain([b"h3".to_vec()])
        .collect();
    net.certs.client = Arc::new(client);
    let c = net.connect(1 << 20);
    assert!(net.run_until(Duration::from_secs(5), |net| net.clients[c].connected));
    assert!(
        net.run_until(Duration::from_secs(5), |net| net.clients[c]
            .server_uni(0x00)
            .is_some()),
        "no control stream from the server"
    );
    let control = net.clients[c].server_uni(0x00).unwrap();
    let (_, event) = FrameDecoder::new(1024).decode(control).unwrap();
    assert!(
        matches!(event, Some(FrameEvent::Frame(Frame::Settings(_)))),
        "{event:?}"
    );
}

#[test]
fn a_response_larger_than_the_window_waits_and_arrives_whole() {
    let mut net = Net::new(QuicConfig::default());
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    net.answer = Some(body.clone());
    // The client lets 16 KiB per stream be in flight.
    let c = net.connect(16 * 1024);
    net.connected(c);
    let id = net.clients[c].get("/big");
    // Until the request arrives and is answered.
    assert!(
        net.run_until(Duration::from_secs(5), |net| net.events.iter().any(|e| matches!(
            e,
            ServerEvent::Session {
                event: SessionEvent::End { .. },
                ..
            }
        )))
    );
    let conn = match net.events[0] {
        ServerEvent::Connected { conn, .. } => conn,
        ref other => panic!("{other:?}"),
    };
    assert!(
        net.server.unsent_bytes(conn, u64::from(id)) > 200_000,
        "the stream's window holds the rest back"
    );
    assert!(net.run_until(Duration::from_secs(30), |net| {
        net.clients[c].response(id).is_some()
    }));
    assert_eq!(net.clients[c].response(id).unwrap().1, body);
    assert_eq!(net.server.unsent_bytes(conn, u64::from(id)), 0);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Writable { stream_id, .. } if *stream_id == u64::from(id)))
    );
}

#[test]
fn a_malformed_request_resets_its_stream_and_the_connection_goes_on() {
    let mut net = Net::new(QuicConfig::default());
    let c = net.connect(1 << 20);
    net.connected(c);
    let bad = net.clients[c].request(
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/"),
            ("Upper-Case", "x"),
        ],
        b"",
    );
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].received.get(&bad).is_some_and(|r| r.2.is_some())
    }));
    assert_eq!(net.clients[c].received[&bad].2, Some(0x10e), "H3_MESSAGE_ERROR");
    let good = net.clients[c].get("/");
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].response(good).is_some()
    }));
}

#[test]
fn a_connection_error_closes_with_its_http3_code() {
    let mut net = Net::new(QuicConfig::default());
    let c = net.connect(1 << 20);
    net.connected(c);
    // A second control stream (connected() opened the first).
    let id = net.clients[c].conn.streams().open(Dir::Uni).unwrap();
    let mut wire = vec![0x00];
    Frame::Settings(Settings::default()).encode(&mut wire).unwrap();
    net.clients[c].write_all(id, &wire, false);
    assert!(net.run_until(Duration::from_secs(5), |net| net.clients[c].lost.is_some()));
    match net.clients[c].lost.as_ref().unwrap() {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 0x103, "H3_STREAM_CREATION_ERROR")
        }
        other => panic!("{other:?}"),
    }
    let stats = net.server.stats();
    assert_eq!((stats.closed_error, stats.closed_normally), (1, 0), "{stats:?}");
    assert!(
        net.events.iter().any(|e| matches!(e, ServerEvent::Closed { .. })),
        "{:?}",
        net.events
    );
}

#[test]
fn streams_past_the_limit_cannot_be_opened() {
    let mut net = Net::new(QuicConfig {
        max_concurrent_bidi_streams: 2,
        ..QuicConfig::default()
    });
    net.answer = None;
    let c = net.connect(1 << 20);
    net.connected(c);
    net.clients[c].get("/1");
    net.clients[c].get("/2");
    assert_eq!(net.clients[c].conn.streams().open(Dir::Bi), None);
    // Once the server has read them and answers none, still none.
    assert!(!net.run_until(Duration::from_secs(1), |net| {
        net.clients[c].conn.streams().open(Dir::Bi).is_some()
    }));
}

#[test]
fn request_streams_held_back_during_the_handshake_are_granted_once_it_completes() {
    let mut net = Net::new(QuicConfig {
        max_concurrent_bidi_streams: 6,
        handshake_bidi_streams: 2,
        ..QuicConfig::default()
    });
    net.answer = None;
    let c = net.connect(1 << 20);
    net.connected(c);
    // The client learnt 2 from the handshake; the server grants the other
    // 4 (MAX_STREAMS) once it is complete, and no more.
    let mut opened = 0;
    assert!(net.run_until(Duration::from_secs(1), |net| {
        while net.clients[c].conn.streams().open(Dir::Bi).is_some() {
            opened += 1;
        }
        opened == 6
    }));
    net.run_until(Duration::from_millis(500), |_| false);
    assert_eq!(net.clients[c].conn.streams().open(Dir::Bi), None);
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mut net = Net::new(QuicConfig {
        idle_timeout: Duration::from_secs(3),
        ..QuicConfig::default()
    });
    let c = net.connect(1 << 20);
    net.connected(c);
    let start = net.now;
    assert_eq!(net.server.connections(), 1);
    assert!(net.run_until(Duration::from_secs(60), |net| net.server.connections() == 0));
    let waited = net.now - start;
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    let stats = net.server.stats();
    assert_eq!((stats.closed_idle, stats.closed_error), (1, 0), "{stats:?}");
    assert!(
        net.events.iter().any(|e| matches!(e, ServerEvent::Closed { .. })),
        "{:?}",
        net.events
    );
}

#[test]
fn a_handshake_that_does_not_complete_is_closed_at_its_deadline() {
    let mut net = Net::new(QuicConfig {
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(60),
        ..QuicConfig::default()
    });
    let c = net.connect(1 << 20);
    // Only the client's first flight arrives.
    net.clients[c].blackhole_after = Some(1);
    let start = net.now;
    assert!(net.run_until(Duration::from_secs(1), |net| net.server.connections() == 1));
    assert!(net.run_until(Duration::from_secs(30), |net| net.server.connections() == 0));
    let waited = net.now - start;
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(
        waited < Duration::from_secs(60),
        "before the idle timeout: {waited:?}"
    );
    let stats = net.server.stats();
    assert_eq!(
        (
            stats.closed_handshake_timeout,
            stats.closed_idle,
            stats.handshakes
        ),
        (1, 0, 0),
        "{stats:?}"
    );
    // The client may think itself connected (it sent its Finished); the
    // server never saw it.
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Connected { .. }))
    );
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Closed { reason, .. } if reason.contains("handshake timeout"))),
        "{:?}",
        net.events
    );
}

#[test]
fn with_retry_on_every_handshake_a_client_still_connects() {
    let mut net = Net::new(QuicConfig {
        retry_above_handshakes: 0,
        ..QuicConfig::default()
    });
    let c = net.connect(1 << 20);
    // The first flight gets a Retry: no connection is held for it.
    let mut buf = Vec::new();
    let t = net.clients[c].conn.poll_transmit(net.now, 1, &mut buf).unwrap();
    let addr = net.clients[c].addr;
    net.server.handle_datagram(net.now, addr, None, &buf[..t.size]);
    assert_eq!(net.server.connections(), 0);
    assert_eq!(net.server.stats().retries, 1);
    net.connected(c);
    let id = net.clients[c].get("/");
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].response(id).is_some()
    }));
    assert_eq!(net.server.connections(), 1);
}

#[test]
fn connections_past_the_limit_are_refused() {
    let mut net = Net::new(QuicConfig {
        max_connections: 1,
        ..QuicConfig::default()
    });
    let first = net.connect(1 << 20);
    net.connected(first);
    let second = net.connect(1 << 20);
    assert!(net.run_until(Duration::from_secs(5), |net| net.clients[second].lost.is_some()));
    assert!(!net.clients[second].connected);
    assert_eq!(
        net.clients[second].lost,
        Some(ConnectionError::ConnectionClosed(quinn_proto::ConnectionClose {
            error_code: quinn_proto::TransportErrorCode::CONNECTION_REFUSED,
            frame_type: None,
            reason: bytes::Bytes::new(),
        }))
    );
    assert_eq!(net.server.connections(), 1);
    assert_eq!(net.server.stats().refused, 1);
}

fn session_events(net: &Net) -> Vec<&SessionEvent> {
    net.events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Session { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

#[test]
fn a_cancelled_request_is_reported_and_goaway_refuses_later_ones() {
    let mut net = Net::new(QuicConfig::default());
    net.answer = None;
    let c = net.connect(1 << 20);
    net.connected(c);
    let first = net.clients[c].get("/events");
    assert!(net.run_until(Duration::from_secs(5), |net| {
        session_events(net)
            .iter()
            .any(|e| matches!(e, SessionEvent::End { .. }))
    }));
    // The client stops reading the response it never got.
    net.clients[c]
        .conn
        .recv_stream(first)
        .stop(VarInt::from_u32(0x10c))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |net| {
        session_events(net)
            .iter()
            .any(|e| matches!(e, SessionEvent::Cancelled { code: 0x10c, .. }))
    }));

    net.server.goaway(net.now);
    let second = net.clients[c].get("/late");
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c]
            .received
            .get(&second)
            .is_some_and(|r| r.2.is_some())
    }));
    assert_eq!(
        net.clients[c].received[&second].2,
        Some(0x10b),
        "H3_REQUEST_REJECTED"
    );
    // The control stream: SETTINGS, then GOAWAY naming the refused stream.
    let control = net.clients[c].server_uni(0x00).unwrap().to_vec();
    let mut decoder = FrameDecoder::new(1024);
    let mut rest = &control[..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (used, event) = decoder.decode(rest).unwrap();
        rest = &rest[used..];
        frames.extend(event.map(|e| format!("{e:?}")));
    }
    assert_eq!(
        frames.last().unwrap(),
        &format!("{:?}", FrameEvent::Frame(Frame::Goaway(4)))
    );
}

#[test]
fn a_request_using_the_dynamic_table_is_acknowledged_on_the_decoder_stream() {
    let mut net = Net::new(QuicConfig::default());
    let c = net.connect(1 << 20);
    net.connected(c);
    // RFC 9204 B.2's section: Required Insert Count 2, :authority and
    // :path from the dynamic table, :method GET and :scheme https static.
    let mut wire = Vec::new();
    Frame::Headers(b"\x03\x81\x10\x11\xd1\xd7".to_vec())
        .encode(&mut wire)
        .unwrap();
    let request = net.clients[c].conn.streams().open(Dir::Bi).unwrap();
    net.clients[c].write_all(request, &wire, true);
    // The inserts come later, on the encoder stream.
    assert!(!net.run_until(Duration::from_millis(200), |net| {
        net.clients[c].response(request).is_some()
    }));
    let encoder = net.clients[c].conn.streams().open(Dir::Uni).unwrap();
    net.clients[c].write_all(
        encoder,
        b"\x02\x3f\xbd\x01\xc0\x0fwww.example.com\xc1\x0c/sample/path",
        false,
    );
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].response(request).is_some()
    }));
    let seen = session_events(&net)
        .into_iter()
        .find_map(|e| match e {
            SessionEvent::Request { request, .. } => Some(request.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(seen.authority.as_deref(), Some("www.example.com"));
    assert_eq!(seen.path.as_deref(), Some("/sample/path"));
    // Section Acknowledgment for stream 0 on the server's decoder stream.
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients[c].server_uni(0x03).is_some()
    }));
    assert_eq!(net.clients[c].server_uni(0x03).unwrap(), [0x80]);
}

#[test]
fn among_many_connections_each_idle_timeout_and_handshake_deadline_fires_at_its_own_time() {
    let mut net = Net::new(QuicConfig {
        idle_timeout: Duration::from_secs(3),
        handshake_timeout: Duration::from_secs(2),
        ..QuicConfig::default()
    });
    // When each connection (by client address) connected and closed, on
    // the virtual clock.
    let mut connected_at = BTreeMap::new();
    let mut closed_at = BTreeMap::new();
    let mut remotes = BTreeMap::new();
    let stamp = |net: &Net,
                 remotes: &mut BTreeMap<ConnectionHandle, SocketAddr>,
                 connected_at: &mut BTreeMap<SocketAddr, Instant>,
                 closed_at: &mut BTreeMap<SocketAddr, (Instant, String)>| {
        for event in &net.events {
            match event {
                ServerEvent::Connected { conn, remote } => {
                    remotes.insert(*conn, *remote);
                    connected_at.entry(*remote).or_insert(net.now);
                }
                ServerEvent::Closed { conn, reason } => {
                    let remote = remotes
                        .get(conn)
                        .copied()
                        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                    closed_at.entry(remote).or_insert((net.now, reason.clone()));
                }
                _ => {}
            }
        }
    };
    // 40 connections, one every 50 ms; the 20th's client goes silent
    // after its first flight, so that its handshake never completes.
    let mut silent = None;
    for i in 0..40 {
        let c = net.connect(1 << 20);
        if i == 20 {
            net.clients[c].blackhole_after = Some(1);
            silent = Some((net.clients[c].addr, net.now));
            net.step();
        } else {
            net.connected(c);
        }
        stamp(&net, &mut remotes, &mut connected_at, &mut closed_at);
        // 50 ms pass, every timer in them handled.
        let later = net.now + Duration::from_millis(50);
        net.run_until(Duration::from_millis(50), |net| net.now >= later);
        net.now = later;
    }
    assert_eq!(net.server.connections(), 40);
    assert!(net.run_until(Duration::from_secs(30), |net| {
        stamp(net, &mut remotes, &mut connected_at, &mut closed_at);
        net.server.connections() == 0
    }));
    stamp(&net, &mut remotes, &mut connected_at, &mut closed_at);
    assert_eq!(connected_at.len(), 39);
    for (remote, at) in &connected_at {
        let (closed, reason) = &closed_at[remote];
        let after = *closed - *at;
        assert!(
            after >= Duration::from_millis(2900) && after <= Duration::from_secs(4),
            "{remote} closed {after:?} after connecting: {reason}"
        );
    }
    // The silent one never connected; it was closed at its handshake
    // deadline, before any idle timeout could have.
    let (silent, started) = silent.unwrap();
    assert!(!connected_at.contains_key(&silent));
    let handshake_closes: Vec<_> = closed_at
        .values()
        .filter(|(_, r)| r.contains("handshake timeout"))
        .map(|(at, _)| *at - started)
        .collect();
    assert_eq!(handshake_closes.len(), 1, "{closed_at:?}");
    assert!(
        handshake_closes[0] >= Duration::from_secs(2) && handshake_closes[0] < Duration::from_secs(3),
        "{handshake_closes:?}"
    );
}

#[test]
fn a_retry_comes_only_once_enough_handshakes_are_in_progress() {
    let mut net = Net::new(QuicConfig {
        retry_above_handshakes: 2,
        ..QuicConfig::default()
    });
    // Three first flights, none answered: the third client is sent a
    // Retry instead of a connection.
    for expected in [(1, 0), (2, 0), (2, 1)] {
        let c = net.connect(1 << 20);
        let mut buf = Vec::new();
        let t = net.clients[c].conn.poll_transmit(net.now, 1, &mut buf).unwrap();
        let addr = net.clients[c].addr;
        net.server.handle_datagram(net.now, addr, None, &buf[..t.size]);
        assert_eq!((net.server.connections(), net.server.stats().retries), expected);
    }
    // Once the handshakes in progress complete, a new client is accepted
    // at once.
    assert!(net.run_until(Duration::from_secs(5), |net| {
        net.clients.iter().all(|c| c.connected)
    }));
    let c = net.connect(1 << 20);
    let mut buf = Vec::new();
    let t = net.clients[c].conn.poll_transmit(net.now, 1, &mut buf).unwrap();
    let addr = net.clients[c].addr;
    net.server.handle_datagram(net.now, addr, None, &buf[..t.size]);
    assert_eq!((net.server.connections(), net.server.stats().retries), (4, 1));
}

#[test]
fn a_webtransport_session_gets_a_server_stream_and_datagrams_both_ways() {
    let mut config = QuicConfig::default();
    config.session.enable_connect_protocol = true;
    config.session.max_webtransport_sessions = 1;
    let mut net = Net::new(config);
    net.answer = None;
    let c = net.connect(1 << 20);
    net.connected(c);
    // The CONNECT, not ended: the session lives on its stream.
    let fields: Vec<Field> = [
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", "/wt"),
    ]
    .iter()
    .map(|(n, v)| Field::new(*n, *v))
    .collect();
    let mut section = Vec::new();
    qpack::encode(&fields, &mut section);
    let mut wire = Vec::new();
    Frame::Headers(section).encode(&mut wire).unwrap();
    let session = net.clients[c].conn.streams().open(Dir::Bi).unwrap();
    net.clients[c].write_all(session, &wire, false);
    assert!(net.run_until(Duration::from_secs(5), |net| {
        session_events(net)
            .iter()
            .any(|e| matches!(e, SessionEvent::Request { .. }))
    }));
    let conn = net
        .events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Session { conn, .. } => Some(*conn),
            _ => None,
        })
        .unwrap();
    let session_id = u64::from(session);
    let now = net.now;
    net.server.send_head(now, conn, session_id, 200, &[]).unwrap();
    let events = net
        .server
        .open_webtransport_stream(now, conn, session_id)
        .unwrap();
    net.server
        .send_webtransport(
            now,
            conn,
            tether_h3::session::Target::Local(events),
            b"line\n",
            false,
        )
        .unwrap();
    assert!(
        net.server
            .max_datagram_payload(conn, session_id)
            .is_some_and(|n| n > 1000)
    );
    net.server
        .send_datagram(now, conn, session_id, b"to the client")
        .unwrap();
    // The client sends one (quarter stream ID 0, then the payload).
    net.clients[c]
        .conn
        .datagrams()
        .send(bytes::Bytes::from_static(b"\x00from the client"), false)
        .unwrap();
    let prefix = [0x40, 0x54, 0x00];
    assert!(net.run_until(Duration::from_secs(5), |net| {
        let got_stream = net.clients[c]
            .received
            .values()
            .any(|(bytes, _, _)| bytes.starts_with(&prefix) && bytes.ends_with(b"line\n"));
        let got_datagram = session_events(net).iter().any(|e| {
            **e == SessionEvent::Datagram {
                session_id,
                data: b"from the client".to_vec(),
            }
        });
        got_stream && got_datagram
    }));
    let datagram = net.clients[c].conn.datagrams().recv().unwrap();
    assert_eq!(&datagram[..], b"\x00to the client");
    // A datagram for no session is refused at the send.
    assert_eq!(
        net.server.send_datagram(now, conn, 4, b"x"),
        Err(tether_quic::SendError::Session(
            tether_h3::session::SendError::UnknownSession(4)
        ))
    );
}

#[test]
fn cancellations_the_client_never_takes_end_the_connection_with_excessive_load() {
    let mut net = Net::new(QuicConfig::default());
    net.answer = None;
    // No unidirectional stream for the server: its control and QPACK
    // decoder streams cannot open, and what it writes to them waits.
    let c = net.connect_with(1 << 20, Some(0));
    net.connected(c);
    let mut opened = 0u64;
    while net.clients[c].lost.is_none() {
        assert!(
            opened < 200_000,
            "{opened} streams cancelled and the connection still open"
        );
        // Each request stream gets the first byte of a HEADERS frame,
        // then is reset: the server owes a Stream Cancellation for it.
        let mut streams = Vec::new();
        while let Some(id) = net.clients[c].conn.streams().open(Dir::Bi) {
            net.clients[c].write_all(id, &[0x01], false);
            streams.push(id);
        }
        net.step();
        for &id in &streams {
            let _ = net.clients[c].conn.send_stream(id).reset(VarInt::from_u32(0x10c));
        }
        opened += streams.len() as u64;
        net.run_until(Duration::from_millis(50), |net| net.clients[c].lost.is_some());
    }
    match net.clients[c].lost.as_ref().unwrap() {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 0x107, "H3_EXCESSIVE_LOAD")
        }
        other => panic!("{other:?}"),
    }
    // About 64 KiB of cancellations, a few bytes each.
    assert!(opened > 10_000, "closed after only {opened} streams");
    let stats = net.server.stats();
    assert_eq!(stats.closed_error, 1, "{stats:?}");
}
