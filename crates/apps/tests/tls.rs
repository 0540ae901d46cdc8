//! TLS: `https://` and `wss://` on the same routes as plain TCP, with a
//! certificate made for the test and a rustls client that trusts it.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, TestServer, client_connection, config};
use rustls::pki_types::ServerName;
use tether_apps::Demo;
use tether_server::tls;
use tether_ws::{Event, Message};

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A server on TLS with a fresh self-signed certificate for `localhost`,
/// and a client configuration that trusts it.
fn tls_server() -> (TestServer, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let mut config = config();
    config.tls = Some(tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("TLS"));
    let server = TestServer::start(config, Demo::new());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    (server, Arc::new(client))
}

fn connect(addr: SocketAddr, client: &Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    let name = ServerName::try_from("localhost").expect("a name");
    let session = rustls::ClientConnection::new(client.clone(), name).expect("a client session");
    rustls::StreamOwned::new(session, tcp)
}

/// Reads until `buf` holds a complete response head; returns its length.
fn read_head(stream: &mut TlsStream, buf: &mut Vec<u8>) -> usize {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return end + 4;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).expect("read over TLS");
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn https_requests_on_one_kept_alive_connection() {
    let (server, client) = tls_server();
    let mut stream = connect(server.addr, &client);
    let mut buf = Vec::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("write over TLS");
        let head_len = read_head(&mut stream, &mut buf);
        let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        while buf.len() < head_len + 3 {
            let mut chunk = [0u8; 64];
            let n = stream.read(&mut chunk).expect("read the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&buf[head_len..head_len + 3], b"ok\n");
        buf.drain(..head_len + 3);
    }
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop(stream);
    server.shutdown();
}

#[test]
fn wss_echoes_small_and_large_messages() {
    let (server, client) = tls_server();
    let mut stream = connect(server.addr, &client);
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("the upgrade");
    let mut buf = Vec::new();
    let head_len = read_head(&mut stream, &mut buf);
    assert!(
        buf.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    buf.drain(..head_len);

    let mut ws = client_connection(7);
    // Short reads, so that one thread can both send and receive.
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let deadline = Instant::now() + Duration::from_secs(30);
    // 4 MiB: far more than TLS or the socket buffers take at once, so the
    // server's writes meet backpressure under TLS.
    let large: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    for message in [Message::text("hello over TLS"), Message::binary(large)] {
        let mut wire = Vec::new();
        ws.send(&message, &mut wire).expect("encode");
        // Written from the test while the server echoes: a large message
        // would otherwise fill both directions' buffers.
        let mut echoed = None;
        let mut written = 0;
        let mut out = Vec::new();
        while echoed.is_none() {
            if written < wire.len() {
                let end = (written + 64 * 1024).min(wire.len());
                stream.write_all(&wire[written..end]).expect("send");
                written = end;
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    assert!(Instant::now() < deadline, "no echo in time");
                }
                Err(e) => panic!("read: {e}"),
            }
            while !buf.is_empty() && echoed.is_none() {
                let (used, event) = ws.receive(&buf, Instant::now(), &mut out);
                buf.drain(..used);
                match event {
                    Some(Event::Message(m)) => echoed = Some(m),
                    Some(other) => panic!("expected the echo, got {other:?}"),
                    None if used == 0 => break,
                    None => {}
                }
            }
        }
        assert_eq!(echoed.as_ref().map(Message::as_bytes), Some(message.as_bytes()));
    }
    drop(stream);
    server.shutdown();
}

#[test]
fn an_event_stream_over_tls() {
    let (server, client) = tls_server();
    let mut stream = connect(server.addr, &client);
    stream
        .write_all(b"GET /clock HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .expect("the request");
    let mut buf = Vec::new();
    let head_len = read_head(&mut stream, &mut buf);
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    while !String::from_utf8_lossy(&buf).contains("event: welcome") {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("the stream");
        assert!(n > 0, "the stream ended: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    drop(stream);
    server.shutdown();
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_closed_and_others_go_on() {
    let (server, client) = tls_server();
    let mut plain = common::tcp(server.addr);
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    // A TLS alert at most, then the end: never an HTTP answer.
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(server.stats().tls_errors, 1, "counted");

    let mut stream = connect(server.addr, &client);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write over TLS");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    assert!(
        response.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    server.shutdown();
}

#[test]
fn a_replaced_certificate_is_presented_to_new_handshakes_only() {
    let made = |name: &str| rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("a certificate");
    let (first, second) = (made("localhost"), made("localhost"));
    let reloadable = tls::ReloadableCert::from_pem(
        first.cert.pem().as_bytes(),
        first.signing_key.serialize_pem().as_bytes(),
    )
    .expect("the first pair");
    let mut config = config();
    config.tls = Some(reloadable.server_config());
    let server = TestServer::start(config, Demo::new());
    let mut roots = rustls::RootCertStore::empty();
    for certified in [&first, &second] {
        roots.add(certified.cert.der().clone()).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A resumed session would show the certificate of the session it
    // resumes: every connection here makes a full handshake.
    client.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(client);
    let healthz = |stream: &mut TlsStream| {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("write over TLS");
        let mut buf = Vec::new();
        let head_len = read_head(stream, &mut buf);
        assert!(buf[..head_len].starts_with(b"HTTP/1.1 200 "));
    };
    let presented = |stream: &TlsStream| stream.conn.peer_certificates().expect("a certificate")[0].clone();

    let mut before = connect(server.addr, &client);
    healthz(&mut before);
    assert_eq!(presented(&before), *first.cert.der());

    // A pair that does not match is refused and changes nothing.
    assert!(
        reloadable
            .replace_pem(
                second.cert.pem().as_bytes(),
                first.signing_key.serialize_pem().as_bytes()
            )
            .is_err()
    );
    reloadable
        .replace_pem(
            second.cert.pem().as_bytes(),
            second.signing_key.serialize_pem().as_bytes(),
        )
        .expect("the second pair");
    let mut after = connect(server.addr, &client);
    healthz(&mut after);
    assert_eq!(presented(&after), *second.cert.der());
    // The connection made before goes on.
    healthz(&mut before);
    drop((before, after));
    server.shutdown();
}

#[test]
fn plain_and_tls_listeners_side_by_side() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let mut config = config();
    config.tls = Some(
        tls::server_config_from_pem(
            certified.cert.pem().as_bytes(),
            certified.signing_key.serialize_pem().as_bytes(),
        )
        .expect("TLS"),
    );
    config.tls_addr = Some("127.0.0.1:0".parse().expect("an address"));
    let cluster = tether_server::Cluster::bind(config, tether_server::Handshake::new(), 2, |_| Demo::new())
        .expect("bind");
    let (plain, secure) = (cluster.local_addr(), cluster.tls_addr().expect("a TLS listener"));
    assert_ne!(plain.port(), secure.port());
    let handle = cluster.handle();
    let running = std::thread::spawn(move || cluster.run());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("a root");
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    // Several connections of each kind, so that both loops serve some.
    for _ in 0..6 {
        assert_eq!(
            common::get(plain, "/healthz").status,
            200,
            "http:// on the main port"
        );
        let mut stream = connect(secure, &client);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("write over TLS");
        let mut buf = Vec::new();
        let head_len = read_head(&mut stream, &mut buf);
        assert!(buf.starts_with(b"HTTP/1.1 200 "), "https:// on the TLS port");
        assert!(head_len > 0);
    }
    // Each port speaks only its own: a TLS client on the plain port and a
    // plain request on the TLS port both fail.
    let mut wrong = connect(plain, &client);
    assert!(
        wrong
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .is_err()
            || {
                let mut byte = [0u8; 1];
                wrong.read(&mut byte).is_err()
            }
    );
    let mut raw = TcpStream::connect(secure).expect("connect");
    raw.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "no plain answer on the TLS port"
    );

    handle.shutdown();
    running.join().expect("the loops end").expect("a clean run");
}
