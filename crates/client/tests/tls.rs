//! wss:// and https:// against tether's server on TLS, with a certificate
//! made for the test that the client is told to trust.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use common::{TestServer, config};
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
