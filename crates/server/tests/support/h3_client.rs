//! The HTTP/3 tests' client: quinn-proto's QUIC driven by hand over a UDP
//! socket of its own, with a server configuration (TLS for `localhost`,
//! HTTP/3 on) and a client TLS configuration that trusts it. Shared by
//! the test files that speak HTTP/3 (`#[path]`-included, so each uses
//! what it needs of it).
#![allow(dead_code)]

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
use tether_h3::frame::{self, Event as FrameEvent, Frame, FrameDecoder};
use tether_h3::qpack::{self, Decoder, Section};
use tether_h3::settings::Settings;
use tether_server::{CloseReason, Config, StatsSnapshot, tls};
use tether_testkit::{IO_TIMEOUT, TestServer, config};

/// What the application saw end, by reason.
pub(crate) type Ends = Arc<Mutex<Vec<CloseReason>>>;

pub(crate) struct Certs {
    pub server: Config,
    pub client: Arc<rustls::ClientConfig>,
}

/// A configuration with TLS for `localhost` and HTTP/3 on, and a client
/// TLS configuration that trusts it and offers `alpn`.
pub(crate) fn certs(alpn: &[u8]) -> Certs {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut server = config();
    server.tls = Some(tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    server.http3 = true;
    Certs {
        server,
        client: trusting(&made.cert, alpn),
    }
}

/// A client TLS configuration that trusts `cert` alone and offers `alpn`.
pub(crate) fn trusting(cert: &rcgen::Certificate, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let mut client =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(client)
}

/// What a stream from the server delivered: its bytes, whether it ended,
/// and its reset code.
#[derive(Default)]
pub(crate) struct Received {
    pub bytes: Vec<u8>,
    pub fin: bool,
    pub reset: Option<u64>,
}

/// An HTTP/3 client connection on a UDP socket of its own.
pub(crate) struct Client {
    pub socket: UdpSocket,
    pub endpoint: Endpoint,
    pub handle: ConnectionHandle,
    pub conn: Connection,
    pub received: BTreeMap<StreamId, Received>,
    /// A stream this client does not read (a slow consumer).
    pub unread: Option<StreamId>,
    pub connected: bool,
    /// The test expects the server to close the connection.
    pub may_be_closed: bool,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
}

impl Client {
    pub(crate) fn connect(server: SocketAddr, tls: &Arc<rustls::ClientConfig>, stream_window: u32) -> Client {
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
            may_be_closed: false,
            closed: None,
        };
        client.until("the handshake", |c| c.connected);
        // The control stream, with an empty SETTINGS (RFC 9114 §6.2.1).
        let control = client.conn.streams().open(Dir::Uni).unwrap();
        let mut wire = vec![0x00];
        Frame::Settings(Settings::default()).encode(&mut wire).unwrap();
        client.write(control, &wire, false);
        client
    }

    /// Moves to a new local port, as a client whose address changed (a
    /// NAT rebinding, another network): QUIC connection migration.
    pub(crate) fn rebind(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        self.socket = socket;
    }

    /// Writes all of `bytes` on `id` as the server's credit allows, waiting
    /// for more; false if the server stopped the stream first.
    pub(crate) fn write_all(&mut self, id: StreamId, mut bytes: &[u8]) -> bool {
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

    pub(crate) fn write(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        let n = self.conn.send_stream(id).write(bytes).unwrap();
        assert_eq!(n, bytes.len(), "the test's writes fit the window");
        if fin {
            self.conn.send_stream(id).finish().unwrap();
        }
    }

    /// Sends a request with this method, path and body, ended.
    pub(crate) fn request(&mut self, method: &str, path: &str, body: &[u8]) -> StreamId {
        let fields = [
            Field::new(":method", method),
            Field::new(":scheme", "https"),
            Field::new(":authority", "localhost"),
            Field::new(":path", path),
        ];
        self.open(&fields, body, true)
    }

    /// Opens a request stream with these fields and body, ended if `fin`.
    pub(crate) fn open(&mut self, fields: &[Field], body: &[u8], fin: bool) -> StreamId {
        let mut section = Vec::new();
        qpack::encode(fields, &mut section);
        let mut wire = Vec::new();
        Frame::Headers(section).encode(&mut wire).unwrap();
        if !body.is_empty() {
            frame::encode_data(body, &mut wire).unwrap();
        }
        let id = self.conn.streams().open(Dir::Bi).unwrap();
        self.write(id, &wire, fin);
        id
    }

    /// Opens a WebSocket over an extended CONNECT (RFC 9220) to `path` and
    /// waits for its 200.
    pub(crate) fn open_websocket(&mut self, path: &str) -> StreamId {
        let ws = self.open(&websocket_connect(path), b"", false);
        self.until("the WebSocket's 200", |c| !c.frames(ws).0.is_empty());
        assert_eq!(status(&self.frames(ws).0), 200);
        ws
    }

    /// Sends `bytes` as one DATA frame on `id`, ending it if `fin`.
    pub(crate) fn data(&mut self, id: StreamId, bytes: &[u8], fin: bool) {
        let mut wire = Vec::new();
        frame::encode_data(bytes, &mut wire).unwrap();
        self.write(id, &wire, fin);
    }

    /// One round: datagrams out, datagrams in (waiting a few
    /// milliseconds for them), timers, events.
    pub(crate) fn step(&mut self) {
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
                Event::ConnectionLost { reason } => {
                    assert!(self.may_be_closed, "connection lost: {reason}");
                    self.closed = Some(reason.to_string());
                }
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

    pub(crate) fn read(&mut self, id: StreamId) {
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
                Ok(None) => {
                    entry.fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    entry.reset = Some(code.into_inner());
                    break;
                }
            }
        }
        let _ = chunks.finalize();
    }

    /// Steps until the application has been told how a socket ended, and
    /// checks that it was told once: `expected`.
    pub(crate) fn until_told(&mut self, ends: &Ends, expected: CloseReason) {
        self.until("the application told", |_| !ends.lock().unwrap().is_empty());
        assert_eq!(ends.lock().unwrap()[..], [expected]);
    }

    /// Steps until `done` says so (or fails the test after a generous
    /// timeout, which only catches a hang).
    pub(crate) fn until(&mut self, what: &str, mut done: impl FnMut(&mut Client) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.step();
        }
    }

    /// The response on `id` once it ended: its status and body.
    pub(crate) fn response(&mut self, id: StreamId) -> (u16, Vec<u8>) {
        self.until("a response", |c| c.received.get(&id).is_some_and(|r| r.fin));
        let (fields, body) = self.frames(id);
        (status(&fields), body)
    }

    /// The first head and the DATA so far on `id`.
    pub(crate) fn frames(&self, id: StreamId) -> (Vec<Field>, Vec<u8>) {
        let bytes = self
            .received
            .get(&id)
            .map(|r| r.bytes.as_slice())
            .unwrap_or_default();
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut qpack = Decoder::new(0, 0);
        let (mut head, mut body) = (Vec::new(), Vec::new());
        let mut rest = bytes;
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest).unwrap();
            rest = &rest[used..];
            match event {
                Some(FrameEvent::Frame(Frame::Headers(section))) if head.is_empty() => {
                    let Section::Decoded(fields) = qpack.decode_section(u64::from(id), &section).unwrap()
                    else {
                        panic!("a blocked section with no dynamic table")
                    };
                    head = fields;
                }
                Some(FrameEvent::Data(d)) => body.extend_from_slice(d),
                _ => {}
            }
        }
        (head, body)
    }
}

/// The fields of an extended CONNECT for a WebSocket (RFC 9220) to `path`.
pub(crate) fn websocket_connect(path: &str) -> [Field; 6] {
    [
        Field::new(":method", "CONNECT"),
        Field::new(":protocol", "websocket"),
        Field::new(":scheme", "https"),
        Field::new(":authority", "localhost"),
        Field::new(":path", path),
        Field::new("sec-websocket-version", "13"),
    ]
}

pub(crate) fn status(fields: &[Field]) -> u16 {
    let field = fields.iter().find(|f| f.name == b":status").expect("a status");
    std::str::from_utf8(&field.value).unwrap().parse().unwrap()
}

pub(crate) fn field<'f>(fields: &'f [Field], name: &str) -> Option<&'f [u8]> {
    fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| f.value.as_slice())
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The server's counters once `done` says so (each loop publishes its
/// QUIC endpoint's at the end of its turn), failing the test after a
/// generous timeout, which only catches a hang.
pub(crate) fn stats_until(
    server: &TestServer,
    what: &str,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
