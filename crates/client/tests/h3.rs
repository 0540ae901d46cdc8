//! Event streams over HTTP/3 (`H3EventStream`) against tether's server with
//! HTTP/3 on, with a certificate made for the test that the client is told
//! to trust.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod common;

use common::{HANG_GUARD, TestServer, config};
use tether_apps::Demo;
use tether_client::{Error, H3EventStream, tls};
use tether_server::Handshake;

/// A demo server on TLS for 127.0.0.1 with HTTP/3 on the TLS port's
/// number, and the certificate's PEM.
fn h3_server() -> (TestServer, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
    let cert = made.cert.pem();
    let mut config = config("127.0.0.1:0".parse().expect("an address"));
    config.tls = Some(
        tether_server::tls::server_config_from_pem(
            cert.as_bytes(),
            made.signing_key.serialize_pem().as_bytes(),
        )
        .expect("TLS"),
    );
    config.http3 = true;
    (
        TestServer::start_with(config, Handshake::new(), Demo::new()),
        cert,
    )
}

fn open(server: &TestServer, cert: &str, path: &str) -> Result<H3EventStream, Error> {
    let url = format!("https://127.0.0.1:{}{path}", server.addr.port());
    H3EventStream::builder(url)
        .tls_config(tls::roots_from_pem(cert.as_bytes()).expect("roots"))
        .connect_timeout(HANG_GUARD)
        .read_timeout(Some(HANG_GUARD))
        .connect()
}

#[test]
fn an_event_stream_over_http3_delivers_the_servers_events() {
    let (server, cert) = h3_server();
    let mut clock = open(&server, &cert, "/clock").expect("an event stream over HTTP/3");
    for _ in 0..2 {
        let event = clock.next_event().expect("the stream goes on").expect("an event");
        assert!(!event.data().is_empty(), "{event:?}");
    }
}

#[test]
fn a_refusal_and_a_page_are_reported_as_over_http1() {
    let (server, cert) = h3_server();
    match open(&server, &cert, "/no-such-thing") {
        Err(Error::Refused { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
    match open(&server, &cert, "/") {
        Err(Error::ContentType(got)) => assert!(got.starts_with("text/html"), "{got}"),
        other => panic!("expected a page refused for its type, got {other:?}"),
    }
}

#[test]
fn a_certificate_not_trusted_is_refused() {
    let (server, _) = h3_server();
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
    match open(&server, &other.cert.pem(), "/clock") {
        Err(Error::H3(why)) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("expected the handshake to fail, got {other:?}"),
    }
}
