//! The TLS session on the loop's lent buffers: records that arrive in
//! pieces (the start of a record kept by the connection until the rest
//! comes), TLS 1.2 beside 1.3 (whose records the server opens and seals
//! itself after the handshake: each suite, a key update the client asks
//! for, a record tampered with), large messages under backpressure, a
//! peer that sends `close_notify` and still reads the answer, the
//! server's own `close_notify` when it ends a connection, and when its
//! client's stream ends in the middle of a handshake message.

// The TLS session exists only with the server's `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tether_server::{App, CloseCode, ConnId, Ctx, MessageRef, Request, Route, tls, tls_harness};
use tether_testkit::{IO_TIMEOUT, TestServer, Upgrade, config};
use tether_ws::{Connection, Event, Message};

/// Echoes every message; "close" asks the server to close.
struct Echo;

impl App for Echo {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/page" => Route::Page {
                content_type: "text/plain",
                body: b"a page over TLS\n",
            },
            "/events" => Route::EventStream(()),
            _ => Route::WebSocket(()),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        if message.as_text() == Some("close") {
            ctx.close(conn, CloseCode::NORMAL, "asked to");
        } else {
            ctx.send(conn, message);
        }
    }
}

/// A TLS server with a fresh certificate for `localhost`, and a client
/// configuration that trusts it and speaks only `versions`.
fn tls_server(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (TestServer, Arc<rustls::ClientConfig>) {
    tls_server_with(versions, rustls::crypto::ring::default_provider())
}

/// [`tls_server`] with a client that offers what `provider` has (its
/// suites), and whose keys a test may take.
fn tls_server_with(
    versions: &[&'static rustls::SupportedProtocolVersion],
    provider: rustls::crypto::CryptoProvider,
) -> (TestServer, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut config = config();
    // Far past any wait of a test: a connection that ends, ends because
    // of what the test did, not because it was idle.
    config.keep_alive_timeout = Duration::from_secs(3600);
    config.tls = Some(tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).expect("TLS"));
    let server = TestServer::start(config, Echo);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("a root");
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.enable_secret_extraction = true;
    (server, Arc::new(client))
}

/// A rustls client session on its own socket, driven by hand so that the
/// test chooses how the records reach the server.
struct Client {
    tcp: TcpStream,
    tls: rustls::ClientConnection,
    /// Plaintext received, not consumed yet.
    plain: Vec<u8>,
    /// The server's `close_notify` arrived.
    eof: bool,
    /// The TCP stream ended.
    tcp_ended: bool,
    /// Bytes that came after the server's close_notify (rustls reads no
    /// more once it has one).
    after_close_notify: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Client {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
        tcp.set_nodelay(true).expect("nodelay");
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = rustls::ClientConnection::new(config.clone(), name).expect("a client session");
        Client {
            tcp,
            tls,
            plain: Vec::new(),
            eof: false,
            tcp_ended: false,
            after_close_notify: Vec::new(),
        }
    }

    /// Sends what the session has to send, `piece` bytes per write with a
    /// pause between (so that the server reads them apart).
    fn send_pending(&mut self, piece: usize) {
        let mut wire = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut wire).expect("encode");
        }
        for chunk in wire.chunks(piece.max(1)) {
            self.tcp.write_all(chunk).expect("send");
            if piece < wire.len() {
                thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Reads from the socket once (or times out), feeding the session.
    fn receive_some(&mut self) {
        let mut chunk = vec![0u8; 64 * 1024];
        match self.tcp.read(&mut chunk) {
            Ok(0) => self.tcp_ended = true,
            Ok(n) => {
                let mut bytes = &chunk[..n];
                let mut plain = vec![0u8; 64 * 1024];
                while !bytes.is_empty() {
                    if self.tls.read_tls(&mut bytes).expect("read TLS") == 0 {
                        self.after_close_notify.extend_from_slice(bytes);
                        break;
                    }
                    self.tls.process_new_packets().expect("valid TLS from the server");
                    loop {
                        match self.tls.reader().read(&mut plain) {
                            Ok(0) => {
                                self.eof = true;
                                break;
                            }
                            Ok(n) => self.plain.extend_from_slice(&plain[..n]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("read plaintext: {e}"),
                        }
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Writes plaintext, `piece` bytes of TLS per write; answers the
    /// server meanwhile (the handshake goes on as it sends).
    fn write(&mut self, plaintext: &[u8], piece: usize) {
        self.tls.writer().write_all(plaintext).expect("write plaintext");
        self.send_pending(piece);
    }

    /// Runs the handshake to its end.
    fn handshake(&mut self, piece: usize) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.tls.is_handshaking() {
            self.send_pending(piece);
            self.receive_some();
            assert!(Instant::now() < deadline, "no handshake in time");
        }
        self.send_pending(piece);
    }

    /// Reads until `done` says the plaintext received is complete (told
    /// whether the stream has ended, by `close_notify` or not).
    fn until(&mut self, mut done: impl FnMut(&[u8], bool) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.plain, self.eof || self.tcp_ended) {
            assert!(
                Instant::now() < deadline,
                "not in time: {} bytes, eof {}",
                self.plain.len(),
                self.eof
            );
            assert!(!self.tcp_ended, "TCP ended early, without close_notify");
            self.send_pending(usize::MAX);
            self.receive_some();
        }
    }

    /// Reads the socket to its end (a reset fails the test) and gives
    /// what arrived to the session: the error it met (the server's alert),
    /// if any.
    fn alert_before_the_end(&mut self) -> Option<rustls::Error> {
        let mut received = Vec::new();
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut chunk = [0u8; 4096];
        loop {
            match self.tcp.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
                Err(e) => panic!("read: {e} after {} bytes", received.len()),
            }
            assert!(Instant::now() < deadline, "the server did not end the connection");
        }
        let mut bytes = &received[..];
        while !bytes.is_empty() {
            self.tls.read_tls(&mut bytes).expect("read TLS");
            if let Err(e) = self.tls.process_new_packets() {
                return Some(e);
            }
        }
        None
    }

    /// Opens a WebSocket; returns the client side of it.
    fn upgrade(&mut self, addr: SocketAddr, piece: usize) -> Connection {
        let Upgrade { request, conn, .. } = Upgrade::new(addr, "/ws");
        self.write(&request, piece);
        self.until(|plain, _| plain.windows(4).any(|w| w == b"\r\n\r\n"));
        assert!(
            self.plain.starts_with(b"HTTP/1.1 101 "),
            "{:?}",
            String::from_utf8_lossy(&self.plain)
        );
        let end = self.plain.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        self.plain.drain(..end);
        conn
    }

    /// Sends a message and waits for the next event from the server.
    fn round_trip(&mut self, ws: &mut Connection, message: &Message, piece: usize) -> Event {
        let mut wire = Vec::new();
        ws.send(message, &mut wire).expect("encode");
        // Sent in slices while reading, so that a large message cannot
        // fill both directions' buffers.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        let mut written = 0;
        loop {
            if written < wire.len() {
                let end = (written + 64 * 1024).min(wire.len());
                self.write(&wire[written..end], piece);
                written = end;
            }
            self.receive_some();
            let (used, event) = ws.receive(&self.plain, Instant::now(), &mut out);
            self.plain.drain(..used);
            // What the connection answers by itself (the close frame's
            // echo).
            if !out.is_empty() {
                self.write(&out, piece);
                out.clear();
            }
            if let Some(event) = event {
                return event;
            }
            assert!(!self.eof && !self.tcp_ended, "the server closed");
            assert!(Instant::now() < deadline, "no answer in time");
        }
    }
}

fn echoes(versions: &[&'static rustls::SupportedProtocolVersion], piece: usize) {
    echoes_with(versions, rustls::crypto::ring::default_provider(), piece);
}

fn echoes_with(
    versions: &[&'static rustls::SupportedProtocolVersion],
    provider: rustls::crypto::CryptoProvider,
    piece: usize,
) {
    let (server, config) = tls_server_with(versions, provider);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(piece);
    let mut ws = client.upgrade(server.addr, piece);
    let large: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    for message in [
        Message::text("hello"),
        Message::binary(vec![7; 40_000]),
        Message::binary(large),
    ] {
        // Larger messages in larger pieces (still several per record), the
        // largest whole: byte by byte they would take minutes.
        let piece = match message.as_bytes().len() {
            0..1000 => piece,
            1000..100_000 => piece.saturating_mul(500),
            _ => usize::MAX,
        };
        match client.round_trip(&mut ws, &message, piece) {
            Event::Message(echoed) => assert_eq!(echoed.as_bytes(), message.as_bytes()),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    drop(client);
    server.shutdown();
}

#[test]
fn tls13_echoes_small_and_large_messages() {
    echoes(&[&rustls::version::TLS13], usize::MAX);
}

#[test]
fn tls12_echoes_small_and_large_messages() {
    echoes(&[&rustls::version::TLS12], usize::MAX);
}

#[test]
fn each_tls13_suite_echoes() {
    use rustls::crypto::ring::cipher_suite::*;
    for suite in [
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: vec![suite],
            ..rustls::crypto::ring::default_provider()
        };
        echoes_with(&[&rustls::version::TLS13], provider, usize::MAX);
    }
}

#[test]
fn a_key_update_the_client_asks_for_is_answered() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    let mut ws = client.upgrade(server.addr, usize::MAX);
    for round in 0..3 {
        client.tls.refresh_traffic_keys().expect("a key update");
        let message = Message::text(format!("after key update {round}"));
        match client.round_trip(&mut ws, &message, usize::MAX) {
            Event::Message(echoed) => assert_eq!(echoed.as_bytes(), message.as_bytes()),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    // The server's KeyUpdate came before the echo, which is the one
    // record the client has read under the server's new key; and the
    // server read the client's message under the client's new key.
    let Client { tcp, tls, .. } = client;
    drop(tcp);
    let secrets = tls.dangerous_extract_secrets().expect("the keys");
    assert_eq!(secrets.rx.0, 1, "records read since the server's key update");
    assert_eq!(secrets.tx.0, 1, "records sent since the client's key update");
    server.shutdown();
}

#[test]
fn a_record_tampered_with_is_answered_with_bad_record_mac() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    let mut ws = client.upgrade(server.addr, usize::MAX);
    match client.round_trip(&mut ws, &Message::text("intact"), usize::MAX) {
        Event::Message(echoed) => assert_eq!(echoed.as_bytes(), b"intact"),
        other => panic!("expected the echo, got {other:?}"),
    }
    let mut frame = Vec::new();
    ws.send(&Message::text("tampered"), &mut frame).expect("encode");
    client.tls.writer().write_all(&frame).expect("write plaintext");
    let mut wire = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut wire).expect("encode");
    }
    *wire.last_mut().expect("a record") ^= 1;
    client.tcp.write_all(&wire).expect("send");
    // The alert, then the end of the stream (no reset).
    assert_eq!(
        client.alert_before_the_end(),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac
        )),
        "the alert"
    );
    server.shutdown();
}

#[test]
fn records_that_arrive_a_few_bytes_at_a_time_are_put_together() {
    // The handshake, the upgrade and the messages in 7-byte writes: every
    // record (and the client's handshake flight) reaches the server in
    // many reads.
    echoes(&[&rustls::version::TLS13], 7);
    echoes(&[&rustls::version::TLS12], 7);
}

#[test]
fn a_peer_that_sent_close_notify_still_reads_the_answer() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.write(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n", usize::MAX);
    // Done sending: close_notify, and the TCP stream's end too.
    client.tls.send_close_notify();
    client.send_pending(usize::MAX);
    client.tcp.shutdown(std::net::Shutdown::Write).expect("shutdown");
    // The answer, then our close_notify (RFC 8446 §6.1), then the end.
    client.until(|_, ended| ended);
    let text = String::from_utf8_lossy(&client.plain).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.ends_with("a page over TLS\n"), "{text}");
    client.read_to_the_end();
    assert!(client.eof, "no close_notify");
    server.shutdown();
}

impl Client {
    /// Reads the socket to its end, feeding the session: a reset fails
    /// the test.
    fn read_to_the_end(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.tcp_ended {
            self.receive_some();
            assert!(Instant::now() < deadline, "the server did not end the connection");
        }
        assert!(
            self.after_close_notify.is_empty(),
            "{} bytes after close_notify",
            self.after_close_notify.len()
        );
    }

    /// `request`, then close_notify, in one write (and one TCP segment
    /// as far as the stack goes), the TCP stream left open.
    fn request_and_close_notify(&mut self, request: &[u8]) {
        self.tls.writer().write_all(request).expect("write plaintext");
        self.tls.send_close_notify();
        let mut wire = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut wire).expect("encode");
        }
        self.tcp.write_all(&wire).expect("send");
    }
}

/// A client that sends close_notify, keeps its TCP stream open and goes
/// on writing: it is answered with close_notify, and what it writes is
/// read (and dropped) until it ends its stream, so nothing resets.
fn close_notify_is_answered(versions: &[&'static rustls::SupportedProtocolVersion]) {
    let (server, config) = tls_server(versions);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.write(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n", usize::MAX);
    client.until(|plain, _| plain.ends_with(b"a page over TLS\n"));
    client.tls.send_close_notify();
    client.send_pending(usize::MAX);
    // Our close_notify comes while the TCP stream is still open.
    client.until(|_, ended| ended);
    assert!(client.eof, "no close_notify");
    // Records after close_notify do not count (and are not even opened);
    // every write goes through.
    let more = raw_record(23, &[0; 16 * 1024]);
    for _ in 0..64 {
        client
            .tcp
            .write_all(&more)
            .expect("the server reads on after close_notify, no reset");
    }
    client.tcp.shutdown(std::net::Shutdown::Write).expect("shutdown");
    client.read_to_the_end();
    still_serves(&server, &config);
    server.shutdown();
}

#[test]
fn tls13_close_notify_is_answered_with_close_notify_and_no_reset() {
    close_notify_is_answered(&[&rustls::version::TLS13]);
}

#[test]
fn tls12_close_notify_is_answered_with_close_notify_and_no_reset() {
    close_notify_is_answered(&[&rustls::version::TLS12]);
}

/// A request and close_notify in one read: the answer, then the end
/// (close_notify and TCP's), not a connection kept for the next request.
fn a_request_with_close_notify_is_answered_then_closed(
    versions: &[&'static rustls::SupportedProtocolVersion],
) {
    let (server, config) = tls_server(versions);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.request_and_close_notify(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client.until(|_, ended| ended);
    client.read_to_the_end();
    assert!(client.eof, "no close_notify");
    let text = String::from_utf8_lossy(&client.plain).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.ends_with("a page over TLS\n"), "{text}");
    server.shutdown();
}

#[test]
fn tls13_a_request_with_close_notify_in_one_read_is_answered_then_closed() {
    a_request_with_close_notify_is_answered_then_closed(&[&rustls::version::TLS13]);
}

#[test]
fn tls12_a_request_with_close_notify_in_one_read_is_answered_then_closed() {
    a_request_with_close_notify_is_answered_then_closed(&[&rustls::version::TLS12]);
}

#[test]
fn an_event_stream_whose_client_sent_close_notify_ends() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.request_and_close_notify(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The stream's head may go out or not (the client has closed); the
    // stream ends either way, with close_notify.
    client.until(|_, ended| ended);
    client.read_to_the_end();
    assert!(client.eof, "no close_notify");
    let text = String::from_utf8_lossy(&client.plain).into_owned();
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 200 "), "{text}");
    server.shutdown();
}

#[test]
fn the_server_ends_a_closed_websocket_with_close_notify() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    let mut ws = client.upgrade(server.addr, usize::MAX);
    match client.round_trip(&mut ws, &Message::text("close"), usize::MAX) {
        Event::Close(frame) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close frame, got {other:?}"),
    }
    // The close frame was answered (above); the server ends the stream
    // with close_notify.
    client.until(|_, ended| ended);
    assert!(client.eof, "no close_notify");
    // close_notify is the last record: nothing (no second alert, no data)
    // comes after it, and the server's side of the stream ends.
    let mut after = std::mem::take(&mut client.after_close_notify);
    let deadline = Instant::now() + IO_TIMEOUT;
    while !client.tcp_ended {
        let mut chunk = [0u8; 1024];
        match client.tcp.read(&mut chunk) {
            Ok(0) => client.tcp_ended = true,
            Ok(n) => after.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(Instant::now() < deadline, "the server's side did not end");
    }
    assert!(after.is_empty(), "{} bytes after close_notify", after.len());
    server.shutdown();
}

/// A record of `content` holding `body` as it is (no protection).
fn raw_record(content: u8, body: &[u8]) -> Vec<u8> {
    let mut record = vec![content, 3, 3];
    record.extend_from_slice(
        &u16::try_from(body.len())
            .expect("a record's length")
            .to_be_bytes(),
    );
    record.extend_from_slice(body);
    record
}

/// The server still answers a new client with a page.
fn still_serves(server: &TestServer, config: &Arc<rustls::ClientConfig>) {
    let mut client = Client::connect(server.addr, config);
    client.handshake(usize::MAX);
    client.write(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n", usize::MAX);
    client.until(|plain, _| plain.ends_with(b"a page over TLS\n"));
}

#[test]
fn records_that_claim_to_be_handshake_records_holding_garbage_cost_their_connection_only() {
    let (server, config) = tls_server(rustls::ALL_VERSIONS);
    let mut bystander = Client::connect(server.addr, &config);
    bystander.handshake(usize::MAX);
    let mut ws = bystander.upgrade(server.addr, usize::MAX);
    // What a hostile client sent (issue 43's probe), on two connections.
    for seed in 0..2u8 {
        let mut tcp = TcpStream::connect(server.addr).expect("connect");
        tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
        let mut state = u32::from(seed) + 1;
        for _ in 0..64 {
            let body: Vec<u8> = (0..16379)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    state.to_be_bytes()[0]
                })
                .collect();
            let mut record = vec![22, 3, 1, 0x3f, 0xfb];
            record.extend(body);
            if tcp.write_all(&record).is_err() {
                // Refused and closed: the rest is not read.
                break;
            }
        }
    }
    // A refused ClientHello (its only cipher suite is none rustls has)
    // with the header of another handshake message in its record.
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0x00, 0x01, 1, 0, 0, 0]);
    let mut handshake = vec![1, 0, 0, u8::try_from(hello.len()).expect("short")];
    handshake.extend(hello);
    handshake.extend_from_slice(&[1, 0, 0, 16]);
    let mut tcp = TcpStream::connect(server.addr).expect("connect");
    tcp.write_all(&raw_record(22, &handshake)).expect("send");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    let mut alert = [0u8; 7];
    tcp.read_exact(&mut alert).expect("an alert");
    assert_eq!(&alert[..2], &[21, 3], "{alert:?}");

    still_serves(&server, &config);
    match bystander.round_trip(&mut ws, &Message::text("still here"), usize::MAX) {
        Event::Message(echoed) => assert_eq!(echoed.as_bytes(), b"still here"),
        other => panic!("expected the echo, got {other:?}"),
    }
    assert!(server.stats().tls_errors >= 3);
    server.shutdown();
}

#[test]
fn a_graceful_shutdown_while_a_client_holds_half_of_its_hello() {
    let (server, config) = tls_server(rustls::ALL_VERSIONS);
    let name = ServerName::try_from("localhost").expect("a name");
    let mut tls = rustls::ClientConnection::new(config.clone(), name).expect("a client session");
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).expect("a hello");
    let body = &hello[5..];
    let mut tcp = TcpStream::connect(server.addr).expect("connect");
    tcp.write_all(&raw_record(22, &body[..body.len() / 2]))
        .expect("send");
    // The server has read the first record when the shutdown begins; it
    // returns (Ok), rather than fail or hang.
    still_serves(&server, &config);
    server.shutdown_within(IO_TIMEOUT);
}

#[test]
fn a_peer_that_goes_on_writing_after_a_bad_record_reads_the_alert() {
    let (server, config) = tls_server(&[&rustls::version::TLS13]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.write(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n", usize::MAX);
    client.until(|plain, _| plain.ends_with(b"a page over TLS\n"));
    client
        .tls
        .writer()
        .write_all(b"tampered")
        .expect("write plaintext");
    let mut wire = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut wire).expect("encode");
    }
    *wire.last_mut().expect("a record") ^= 1;
    client.tcp.write_all(&wire).expect("send");
    // The peer goes on as if nothing happened: a megabyte more. Every
    // write must go through (no reset), then the alert and the end come.
    let more = raw_record(23, &[0; 16 * 1024]);
    for _ in 0..64 {
        client
            .tcp
            .write_all(&more)
            .expect("the server reads on after its alert, no reset");
    }
    let _ = client.tcp.shutdown(std::net::Shutdown::Write);
    let error = client.alert_before_the_end();
    assert_eq!(
        error,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac
        ))
    );
    still_serves(&server, &config);
    server.shutdown();
}

/// A client whose ALPN offers nothing the server has is refused with
/// no_application_protocol (RFC 7301 §3.2). Under TLS 1.3 the refusal
/// comes after the ServerHello has been queued: both go out, the alert
/// under the handshake keys.
fn no_common_alpn_is_refused(versions: &[&'static rustls::SupportedProtocolVersion]) {
    let (server, config) = tls_server(versions);
    let mut other = (*config).clone();
    other.alpn_protocols = vec![b"not-http".to_vec()];
    let mut client = Client::connect(server.addr, &Arc::new(other));
    client.send_pending(usize::MAX);
    assert_eq!(
        client.alert_before_the_end(),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol
        ))
    );
    still_serves(&server, &config);
    server.shutdown();
}

#[test]
fn tls13_no_common_alpn_gets_no_application_protocol() {
    no_common_alpn_is_refused(&[&rustls::version::TLS13]);
}

#[test]
fn tls12_no_common_alpn_gets_no_application_protocol() {
    no_common_alpn_is_refused(&[&rustls::version::TLS12]);
}

/// A refusal rustls makes while it reads the records (a record longer than
/// any may be, RFC 8446 §5.1; rustls answers decode_error): its one alert
/// goes out, and rustls is not asked
/// to read the refused record again (which would make it refuse it twice,
/// and its debug builds panic on a second fatal alert).
#[test]
fn a_record_too_long_in_the_handshake_gets_one_alert_and_no_panic() {
    let (server, config) = tls_server(rustls::ALL_VERSIONS);
    let mut tcp = TcpStream::connect(server.addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    let mut header = vec![22, 3, 1, 0xff, 0xff];
    header.extend_from_slice(&[0; 64]);
    tcp.write_all(&header).expect("send");
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)
        .expect("the alert and the end, no reset");
    assert_eq!(answer, [21, 3, 3, 0, 2, 2, 50], "one decode_error alert");
    still_serves(&server, &config);
    assert_eq!(server.stats().connection_panics, 0);
    server.shutdown();
}

/// Issue 72: TLS 1.2, a request answered, then one record under the
/// session's keys holding only the start of a handshake message (a
/// ClientHello's header announcing 100 bytes, and 10 of them), and the
/// client shuts its side. rustls keeps that start in the bytes it was
/// given; the close gave it none and rustls panicked (caught: the
/// connection was reset). The end of the client's stream is an end like
/// any other: close_notify, then the end of the server's stream, no
/// reset, no panic.
#[test]
fn a_tls12_handshake_message_cut_short_by_the_clients_end_is_closed_cleanly() {
    let (server, config) = tls_server(&[&rustls::version::TLS12]);
    let mut client = Client::connect(server.addr, &config);
    client.handshake(usize::MAX);
    client.write(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n", usize::MAX);
    client.until(|plain, _| plain.ends_with(b"a page over TLS\n"));
    let Client { mut tcp, tls, .. } = client;
    let secrets = tls.dangerous_extract_secrets().expect("the client's keys");
    let mut peer = tls_harness::tls12::Peer::new(secrets).expect("an AEAD suite");
    let hello_start = [&[1, 0, 0, 100][..], &[0; 10]].concat();
    tcp.write_all(&peer.seal(22, &hello_start).expect("a record"))
        .expect("send");
    tcp.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut answer = Vec::new();
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut chunk = [0u8; 4096];
    loop {
        match tcp.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e} after {} bytes", answer.len()),
        }
        assert!(Instant::now() < deadline, "the server did not end the connection");
    }
    assert_eq!(
        peer.open(&answer),
        Some(vec![(21, vec![1, 0])]),
        "close_notify, then the end"
    );
    still_serves(&server, &config);
    assert_eq!(server.stats().connection_panics, 0);
    server.shutdown();
}
