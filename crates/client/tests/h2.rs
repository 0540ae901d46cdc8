//! The HTTP/2 client end to end against tether-server: event streams and
//! RFC 8441 WebSockets on streams of one connection, h2c with prior
//! knowledge and ALPN h2 over TLS.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use common::{HANG_GUARD, TestServer, config};
use tether_apps::Demo;
use tether_client::{CloseCode, Error, Event, H2Connection, H2EventStream, H2WebSocket, Message, WsOptions};

fn demo() -> TestServer {
    common::start_server(Demo::new())
}

fn connect(url: &str) -> H2Connection {
    H2Connection::builder(url)
        .connect_timeout(HANG_GUARD)
        .read_timeout(Some(HANG_GUARD))
        .connect()
        .expect("an HTTP/2 connection")
}

fn base(server: &TestServer) -> String {
    format!("http://127.0.0.1:{}", server.addr.port())
}

fn echo(ws: &mut H2WebSocket, message: Message) {
    ws.send(&message).expect("send");
    match ws.recv().expect("the echo") {
        Event::Message(got) => assert!(got == message, "the echo differs"),
        other => panic!("expected the echo, got {other:?}"),
    }
}

fn event_type(stream: &mut H2EventStream) -> String {
    let event = stream
        .next_event()
        .expect("the stream goes on")
        .expect("an event");
    event.event_type().to_owned()
}

#[test]
fn ten_event_streams_and_a_websocket_on_one_connection() {
    let server = demo();
    let h2 = connect(&base(&server));
    let mut streams: Vec<H2EventStream> = (0..10)
        .map(|_| h2.event_stream("/clock").expect("a stream"))
        .collect();
    let mut ws = h2
        .websocket_with(
            "/echo",
            &WsOptions {
                compression: false,
                ..WsOptions::default()
            },
        )
        .expect("a WebSocket");
    assert_eq!(h2.active_streams(), 11);
    let ids: Vec<u32> = streams.iter().map(H2EventStream::stream_id).collect();
    assert_eq!(ids, (0..10).map(|i| 1 + 2 * i).collect::<Vec<u32>>());
    assert_eq!(ws.stream_id(), 21);
    assert_eq!(ws.extensions(), None);

    echo(&mut ws, Message::text("hello over h2"));
    echo(&mut ws, Message::binary(vec![0, 1, 2, 255]));
    for stream in &mut streams {
        assert_eq!(event_type(stream), "welcome");
    }
    // Each stream goes on: a tick a second.
    for stream in &mut streams {
        assert_eq!(event_type(stream), "tick");
    }
    echo(&mut ws, Message::text("still here"));
    ws.ping(b"p").unwrap();
    assert!(matches!(ws.recv().unwrap(), Event::Pong(p) if p.as_slice() == b"p"));

    let frame = ws.close(CloseCode::NORMAL, "bye").expect("the close handshake");
    assert_eq!(frame.code, CloseCode::NORMAL);
    assert!(matches!(ws.send_text("late"), Err(Error::Closed)));
    drop(ws);
    drop(streams);
    // The streams are gone; the connection carries new ones.
    let mut again = h2.event_stream("/clock").unwrap();
    assert_eq!(event_type(&mut again), "welcome");
    assert_eq!(again.stream_id(), 23);
    h2.close();
    assert!(again.next_event().is_err());
    server.shutdown();
}

#[cfg(feature = "deflate")]
#[test]
fn large_messages_go_by_the_windows_with_and_without_deflate() {
    let handshake = tether_server::Handshake::new().negotiator(tether_server::deflate::DeflateConfig::new());
    let server = TestServer::start_with(config("127.0.0.1:0".parse().unwrap()), handshake, Demo::new());
    let h2 = connect(&base(&server));
    let mut plain = h2
        .websocket_with(
            "/echo",
            &WsOptions {
                compression: false,
                ..WsOptions::default()
            },
        )
        .unwrap();
    let mut deflated = h2.websocket("/echo").unwrap();
    assert!(
        deflated
            .extensions()
            .is_some_and(|e| e.contains("permessage-deflate")),
        "{:?}",
        deflated.extensions()
    );
    // Past the server's 65535-byte stream window and 1 MiB connection
    // window, both ways.
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    echo(&mut plain, Message::binary(noise.clone()));
    let text = "tether speaks HTTP/2 ".repeat(100_000);
    echo(&mut deflated, Message::text(text.clone()));
    echo(&mut deflated, Message::binary(noise));
    echo(&mut plain, Message::text(text));
    for ws in [&mut plain, &mut deflated] {
        assert_eq!(ws.close(CloseCode::NORMAL, "").unwrap().code, CloseCode::NORMAL);
    }
    server.shutdown();
}

#[test]
fn refusals_come_back_as_errors() {
    let server = demo();
    let h2 = connect(&base(&server));
    match h2.event_stream("/no-such-page") {
        Err(Error::Refused { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    match h2.websocket("/clock") {
        Err(Error::Refused { status, .. }) => assert_ne!(status, 200),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match h2.event_stream("/") {
        Err(Error::ContentType(t)) => assert!(t.starts_with("text/html"), "{t}"),
        other => panic!("expected a content type error, got {other:?}"),
    }
    assert!(matches!(
        h2.event_stream("no-slash"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        h2.event_stream_with("/clock", &[("connection", "close")]),
        Err(Error::InvalidArgument(_))
    ));
    // The connection is still good.
    let mut clock = h2.event_stream_with("/clock", &[("Last-Event-ID", "0")]).unwrap();
    assert_eq!(event_type(&mut clock), "welcome");
    server.shutdown();
}

#[test]
fn a_server_without_http2_is_refused() {
    let mut config = config("127.0.0.1:0".parse().unwrap());
    config.http2 = false;
    let server = TestServer::start(config, Demo::new());
    match H2Connection::builder(base(&server))
        .connect_timeout(Duration::from_secs(3))
        .connect()
    {
        Err(e) => assert!(!e.is_caller_error(), "{e}"),
        Ok(_) => panic!("an HTTP/1.1-only server spoke HTTP/2"),
    }
    server.shutdown();
}

#[test]
fn streams_wait_for_a_free_slot_under_the_servers_limit() {
    let mut config = config("127.0.0.1:0".parse().unwrap());
    config.h2.max_concurrent_streams = 3;
    let server = TestServer::start(config, Demo::new());
    let h2 = H2Connection::builder(base(&server))
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Some(HANG_GUARD))
        .connect()
        .unwrap();
    let mut open: Vec<H2EventStream> = (0..3).map(|_| h2.event_stream("/clock").unwrap()).collect();
    match h2.event_stream("/clock") {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected to wait in vain for a slot, got {other:?}"),
    }
    // A stream reset by us frees its slot once the server has it.
    open.pop();
    let mut fourth = h2.event_stream("/clock").unwrap();
    assert_eq!(event_type(&mut fourth), "welcome");
    for stream in &mut open {
        assert_eq!(event_type(stream), "welcome");
    }
    server.shutdown();
}

#[cfg(feature = "tls")]
#[test]
fn alpn_h2_over_tls() {
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
    let server = TestServer::start_with(config, tether_server::Handshake::new(), Demo::new());
    let roots = tether_client::tls::roots_from_pem(cert.as_bytes()).expect("roots");
    let h2 = H2Connection::builder(format!("https://localhost:{}", server.addr.port()))
        .tls_config(roots)
        .connect_timeout(HANG_GUARD)
        .read_timeout(Some(HANG_GUARD))
        .connect()
        .expect("h2 over TLS");
    let mut streams: Vec<H2EventStream> = (0..3).map(|_| h2.event_stream("/clock").unwrap()).collect();
    let mut ws = h2.websocket("/echo").unwrap();
    echo(&mut ws, Message::text("é".repeat(100_000)));
    for stream in &mut streams {
        assert_eq!(event_type(stream), "welcome");
    }
    assert_eq!(ws.close(CloseCode::NORMAL, "").unwrap().code, CloseCode::NORMAL);
    server.shutdown();
}
