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

/// A hand-written HTTP/2 server that takes one extended CONNECT (stream
/// 1), answers 200, sends `ping_bytes` of empty WebSocket pings (`89 00`)
/// in DATA, and then reads nothing: it never opens its flow-control
/// window. Held until the returned sender is dropped.
fn unreading_h2_server(ping_bytes: usize) -> (String, std::sync::mpsc::Sender<()>) {
    use std::io::{Read, Write};
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (hold, held) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        // SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, and an ACK of the client's.
        s.write_all(&frame(4, 0, 0, &[0, 8, 0, 0, 0, 1])).unwrap();
        s.write_all(&frame(4, 1, 0, &[])).unwrap();
        let mut preface = [0u8; 24];
        s.read_exact(&mut preface).unwrap();
        loop {
            let mut head = [0u8; 9];
            s.read_exact(&mut head).unwrap();
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).unwrap();
            if head[3] == 1 {
                break;
            }
        }
        // :status 200 (HPACK static index 8).
        s.write_all(&frame(1, 4, 1, &[0x88])).unwrap();
        let pings = [0x89u8, 0x00].repeat(8192);
        let mut left = ping_bytes;
        while left > 0 {
            let n = left.min(pings.len());
            s.write_all(&frame(0, 0, 1, &pings[..n])).unwrap();
            left -= n;
        }
        let _ = held.recv_timeout(HANG_GUARD);
    });
    (url, hold)
}

fn plain_ws_options() -> WsOptions {
    WsOptions {
        compression: false,
        ..WsOptions::default()
    }
}

#[test]
fn pongs_the_server_never_reads_fail_the_websocket_with_1008() {
    // 1 MiB of pings (the stream's receive window): 3 MiB of pongs.
    let (url, _hold) = unreading_h2_server(1 << 20);
    let h2 = connect(&url);
    let mut ws = h2.websocket_with("/", &plain_ws_options()).expect("a WebSocket");
    let mut pings = 0;
    let failure = loop {
        match ws.recv() {
            Ok(Event::Ping(_)) => pings += 1,
            Ok(other) => panic!("expected pings, got {other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(failure.close_code(), Some(CloseCode::POLICY), "{failure}");
    // 64 KiB went out in the server's window; the rest, 6 bytes a pong,
    // stopped at the bound.
    assert!(pings < (65_535 + (1 << 20)) / 6 + 2, "{pings} pongs queued");
}

#[test]
fn a_send_past_the_bound_fails_when_the_server_never_opens_its_window() {
    let (url, _hold) = unreading_h2_server(0);
    let h2 = H2Connection::builder(&url)
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Some(HANG_GUARD))
        .connect()
        .expect("an HTTP/2 connection");
    let mut ws = h2.websocket_with("/", &plain_ws_options()).expect("a WebSocket");
    let chunk = vec![7u8; 512 * 1024];
    let mut sent = 0;
    let failure = loop {
        match ws.send_binary(&chunk) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(
            sent < 10,
            "10 sends of 512 KiB queued for a server that reads none"
        );
    };
    assert!(matches!(failure, Error::Timeout(_)), "{failure}");
}
