//! wss:// and https:// against tether's server on TLS, with a certificate
//! made for the test that the client is told to trust.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use common::{Reply, ScriptServer, TestServer, config};
use tether_apps::Demo;
use tether_client::{Error, Event, EventSource, SseEvent, WebSocket, tls};
use tether_server::Handshake;

/// A demo server on TLS for `localhost`, and the certificate's PEM.
fn tls_server() -> (TestServer, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert = made.cert.pem();
    let mut config = config("127.0.0.1:0".parse().expect("an address"));
    config.tls = Some(
        tether_server::tls::server_config_from_pem(
            cert.as_bytes(),
            made.signing_key.serialize_pem().as_bytes(),
        )
        .expect("TLS"),
    );
    (
        TestServer::start_with(config, Handshake::new(), Demo::new()),
        cert,
    )
}

#[test]
fn a_websocket_over_wss_echoes() {
    let (server, cert) = tls_server();
    let url = format!("wss://localhost:{}/echo", server.addr.port());
    let roots = tls::roots_from_pem(cert.as_bytes()).expect("roots");
    let mut ws = WebSocket::builder(&url)
        .tls_config(roots)
        .connect()
        .expect("connect over TLS");
    let large = "é".repeat(100_000);
    for text in ["hello over wss", large.as_str()] {
        ws.send_text(text).expect("send");
        match ws.recv().expect("the echo") {
            Event::Message(message) => assert_eq!(message.as_text(), Some(text)),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    ws.close(tether_client::CloseCode::NORMAL, "bye").expect("close");
    server.shutdown();
}

#[test]
fn an_event_source_over_https() {
    let (server, cert) = tls_server();
    let url = format!("https://localhost:{}/clock", server.addr.port());
    let roots = tls::roots_from_pem(cert.as_bytes()).expect("roots");
    let mut source = EventSource::builder(&url)
        .tls_config(roots)
        .build()
        .expect("an event source");
    let mut welcome = None;
    while welcome.is_none() {
        match source
            .next_event()
            .expect("the stream goes on")
            .expect("an event")
        {
            SseEvent::Message(event) => welcome = Some(event.event_type().to_owned()),
            SseEvent::Open => {}
            other => panic!("expected the welcome event, got {other:?}"),
        }
    }
    assert_eq!(welcome.as_deref(), Some("welcome"));
    source.close();
    server.shutdown();
}

#[test]
fn a_certificate_nobody_vouches_for_is_refused() {
    let (server, _) = tls_server();
    // Roots of another certificate: the server's is not among them.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let roots = tls::roots_from_pem(other.cert.pem().as_bytes()).expect("roots");
    let url = format!("wss://localhost:{}/echo", server.addr.port());
    match WebSocket::builder(&url).tls_config(roots).connect() {
        Err(Error::Io { .. }) => {}
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    server.shutdown();
}

/// A one-connection HTTPS server for `localhost` that answers the first
/// request with `response`; and the certificate's PEM.
fn https_once(response: String) -> (u16, String, std::thread::JoinHandle<()>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let cert = made.cert.pem();
    let server_config = tether_server::tls::server_config_from_pem(
        cert.as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .expect("TLS");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let thread = std::thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(common::HANG_GUARD))
            .expect("timeout");
        let session = tls::rustls::ServerConnection::new(Arc::clone(&server_config)).expect("session");
        let mut stream = tls::rustls::StreamOwned::new(session, socket);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
        stream.conn.send_close_notify();
        let _ = stream.conn.complete_io(&mut stream.sock);
    });
    (port, cert, thread)
}

#[test]
fn an_event_source_refuses_a_redirect_from_https_to_http() {
    let plain = ScriptServer::start(|_, _| Reply::stream("data: in the clear\n\n"));
    let (port, cert, thread) = https_once(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
        plain.url("/stream")
    ));
    let roots = tls::roots_from_pem(cert.as_bytes()).expect("roots");
    let mut source = EventSource::builder(format!("https://localhost:{port}/stream"))
        .tls_config(roots)
        .header("Authorization", "Bearer secret")
        .build()
        .expect("an event source");
    match source.next_event() {
        Some(Err(Error::BadRedirect(why))) => assert!(why.contains("https to http"), "{why}"),
        other => panic!("expected the redirect refused, got {other:?}"),
    }
    // Fatal: no reconnection, and nothing reached the plain server.
    assert!(source.next_event().is_none());
    assert!(plain.requests().is_empty());
    thread.join().expect("the server thread");
}

#[test]
fn a_wss_server_silent_after_accepting_fails_connect_at_the_handshake_timeout() {
    // Accepts TCP, then never sends its ServerHello.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let held = listener.accept().map(|(socket, _)| socket);
        let _ = released.recv_timeout(std::time::Duration::from_secs(5));
        drop(held);
    });
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let roots = tls::roots_from_pem(other.cert.pem().as_bytes()).expect("roots");
    let (done, outcome) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        let result = WebSocket::builder(format!("wss://localhost:{port}/echo"))
            .tls_config(roots)
            .handshake_timeout(std::time::Duration::from_millis(500))
            .connect();
        let _ = done.send(result.map(|_| ()));
    });
    match outcome.recv_timeout(std::time::Duration::from_secs(3)) {
        Ok(Err(Error::Timeout(_))) => {}
        Ok(other) => panic!("expected a timeout, got {other:?}"),
        Err(_) => panic!("connect still blocked after {:?}", started.elapsed()),
    }
    let _ = release.send(());
    holder.join().expect("the holder");
}
