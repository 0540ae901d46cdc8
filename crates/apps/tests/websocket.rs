//! WebSocket sessions end to end: echo of every size and shape, control
//! frames, the close handshake, protocol violations, limits and keepalive.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::Write;
use std::time::Duration;

use common::{TestServer, Upgrade, WsClient, client_frame, config, fragmented, tcp};
use tether_apps::{Demo, Echo};
use tether_frame::OpCode;
use tether_server::{CloseCode, Message};
use tether_ws::Event;

const SIZES: &[usize] = &[
    0,
    1,
    125,
    126,
    127,
    1000,
    65_535,
    65_536,
    65_537,
    300_000,
    1 << 20,
];

fn echo_server() -> TestServer {
    TestServer::start(config(), Echo::everywhere())
}

/// Text of exactly `len` bytes, with multi-byte characters in it.
fn text_of(len: usize) -> String {
    let mut s = String::with_capacity(len);
    let pieces = ["tether ", "é", "✓", "🦀", "0123456789"];
    let mut i = 0;
    while s.len() < len {
        let piece = pieces[i % pieces.len()];
        if s.len() + piece.len() <= len {
            s.push_str(piece);
        } else {
            s.push('x');
        }
        i += 1;
    }
    s
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn text_and_binary_messages_of_every_size_come_back_intact() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    for &size in SIZES {
        let text = text_of(size);
        client.send_text(&text);
        let back = client.recv();
        assert!(back.is_text());
        assert!(back.as_bytes() == text.as_bytes(), "text of {size} bytes differs");

        let data = bytes_of(size, size as u8);
        client.send_binary(&data);
        let back = client.recv();
        assert!(!back.is_text());
        assert!(back.as_bytes() == data, "binary of {size} bytes differs");
    }
    client.close(CloseCode::NORMAL, "");
    assert_eq!(client.recv_close().code, CloseCode::NORMAL);
    client.expect_eof();
    drop(client);
    server.shutdown();
}

#[test]
fn the_demo_echo_route_echoes() {
    let server = TestServer::start(config(), Demo::new());
    let mut client = WsClient::connect(server.addr, "/echo");
    client.send_text("hello demo");
    assert_eq!(client.recv_text(), "hello demo");
    drop(client);
    server.shutdown();
}

#[test]
fn fragmented_messages_are_reassembled() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    let cases: &[(usize, &[usize])] = &[
        (10, &[0, 0]),
        (10, &[1, 2, 3]),
        (1000, &[1, 999]),
        (100_000, &[10, 0, 65_536, 1]),
        (1 << 20, &[300_000, 300_000, 300_000]),
    ];
    for (i, &(size, sizes)) in cases.iter().enumerate() {
        let text = Message::text(text_of(size));
        // Fragments cut multi-byte characters anywhere: UTF-8 validation
        // must carry across frames.
        client.send_raw(&fragmented(&text, sizes, i as u32));
        assert!(client.recv() == text, "text case {i}");
        let binary = Message::binary(bytes_of(size, i as u8));
        client.send_raw(&fragmented(&binary, sizes, 100 + i as u32));
        assert!(client.recv() == binary, "binary case {i}");
    }
    drop(client);
    server.shutdown();
}

#[test]
fn pings_between_fragments_are_answered_at_once() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    let mut wire = Vec::new();
    client_frame(&mut wire, false, OpCode::Text, b"frag", [1, 2, 3, 4]);
    client_frame(&mut wire, true, OpCode::Ping, b"in between", [5, 6, 7, 8]);
    client_frame(&mut wire, true, OpCode::Continuation, b"mented", [9, 10, 11, 12]);
    client.send_raw(&wire);
    match client.next_event() {
        Some(Event::Pong(payload)) => assert_eq!(&*payload, b"in between"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    assert_eq!(client.recv_text(), "fragmented");
    drop(client);
    server.shutdown();
}

#[test]
fn the_upgrade_and_the_first_frames_in_one_write() {
    let server = echo_server();
    let mut upgrade = Upgrade::new(server.addr, "/");
    upgrade.conn.send_text("first", &mut upgrade.request).unwrap();
    upgrade
        .conn
        .send_binary(&[0, 1, 2], &mut upgrade.request)
        .unwrap();
    let big = text_of(200_000);
    upgrade.conn.send_text(&big, &mut upgrade.request).unwrap();
    upgrade.conn.ping(b"p", &mut upgrade.request).unwrap();
    let mut stream = tcp(server.addr);
    stream.write_all(&upgrade.request).unwrap();
    let mut client = WsClient::finish(stream, upgrade);
    assert_eq!(client.recv_text(), "first");
    assert_eq!(client.recv().as_bytes(), [0, 1, 2]);
    assert!(client.recv_text() == big);
    match client.next_event() {
        Some(Event::Pong(payload)) => assert_eq!(&*payload, b"p"),
        other => panic!("expected a pong, got {other:?}"),
    }
    drop(client);
    server.shutdown();
}

#[test]
fn the_upgrade_and_frames_one_byte_per_write() {
    let server = echo_server();
    let mut upgrade = Upgrade::new(server.addr, "/");
    upgrade
        .conn
        .send_text("byte by byte", &mut upgrade.request)
        .unwrap();
    let big = bytes_of(300, 7);
    upgrade.conn.send_binary(&big, &mut upgrade.request).unwrap();
    let mut stream = tcp(server.addr);
    for byte in upgrade.request.chunks(1) {
        stream.write_all(byte).unwrap();
    }
    let mut client = WsClient::finish(stream, upgrade);
    assert_eq!(client.recv_text(), "byte by byte");
    assert_eq!(client.recv().as_bytes(), big);
    drop(client);
    server.shutdown();
}

#[test]
fn ping_gets_pong() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    for payload in [&b""[..], b"hello", &[0xAB; 125]] {
        client.ping(payload);
        match client.next_event() {
            Some(Event::Pong(pong)) => assert_eq!(&*pong, payload),
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    drop(client);
    server.shutdown();
}

#[test]
fn close_handshake_ends_with_the_server_closing_tcp() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    client.send_text("last words");
    client.close(CloseCode::NORMAL, "goodbye");
    // The echo of the message still arrives before the close.
    assert_eq!(client.recv_text(), "last words");
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::NORMAL);
    // The server closes first: we have not closed, yet the stream ends.
    client.expect_eof();
    drop(client);
    server.shutdown();
}

#[test]
fn a_close_without_a_code_is_answered_without_one() {
    let server = echo_server();
    let mut client = WsClient::connect(server.addr, "/");
    let mut wire = Vec::new();
    client_frame(&mut wire, true, OpCode::Close, b"", [1, 2, 3, 4]);
    client.send_raw(&wire);
    assert_eq!(client.recv_close().code, CloseCode::NO_STATUS);
    client.expect_eof();
    drop(client);
    server.shutdown();
}

/// Sends `wire` and expects the server to fail the connection with `code`,
/// then close TCP.
fn expect_failure(server: &TestServer, wire: &[u8], code: CloseCode) {
    let mut client = WsClient::connect(server.addr, "/");
    client.send_text("fine so far");
    assert_eq!(client.recv_text(), "fine so far");
    client.send_raw(wire);
    let close = client.recv_close();
    assert_eq!(close.code, code, "reason: {:?}", close.reason);
    client.expect_eof();
}

#[test]
fn protocol_violations_get_1002_then_tcp_close() {
    let server = echo_server();
    // An unmasked frame from a client.
    expect_failure(&server, &[0x81, 0x02, b'h', b'i'], CloseCode::PROTOCOL_ERROR);
    // A reserved opcode.
    let mut wire = Vec::new();
    let mut header = tether_frame::FrameHeader::new(true, OpCode::Text, 0).with_mask([1, 2, 3, 4]);
    tether_frame::encode_frame(&mut wire, header, b"").unwrap();
    wire[0] = 0x83;
    expect_failure(&server, &wire, CloseCode::PROTOCOL_ERROR);
    // RSV bits with no extension negotiated.
    wire.clear();
    header = header.with_rsv(tether_frame::Rsv::RSV1);
    tether_frame::encode_frame(&mut wire, header, b"").unwrap();
    expect_failure(&server, &wire, CloseCode::PROTOCOL_ERROR);
    // A continuation with no message started.
    wire.clear();
    client_frame(&mut wire, true, OpCode::Continuation, b"x", [1, 2, 3, 4]);
    expect_failure(&server, &wire, CloseCode::PROTOCOL_ERROR);
    // A fragmented ping.
    wire.clear();
    let ping = tether_frame::FrameHeader::new(false, OpCode::Ping, 1).with_mask([1, 2, 3, 4]);
    wire.extend_from_slice(ping.to_bytes().as_slice());
    wire.push(b'x' ^ 1);
    expect_failure(&server, &wire, CloseCode::PROTOCOL_ERROR);
    server.shutdown();
}

#[test]
fn invalid_utf8_gets_1007_then_tcp_close() {
    let server = echo_server();
    let mut wire = Vec::new();
    client_frame(
        &mut wire,
        true,
        OpCode::Text,
        &[b'o', b'k', 0xFF, 0xFE],
        [9, 8, 7, 6],
    );
    expect_failure(&server, &wire, CloseCode::INVALID_PAYLOAD);
    // A character cut off by the end of the message.
    wire.clear();
    client_frame(&mut wire, false, OpCode::Text, "é".as_bytes(), [1, 1, 1, 1]);
    client_frame(
        &mut wire,
        true,
        OpCode::Continuation,
        &"✓".as_bytes()[..2],
        [2, 2, 2, 2],
    );
    expect_failure(&server, &wire, CloseCode::INVALID_PAYLOAD);
    server.shutdown();
}

#[test]
fn a_message_over_the_limit_gets_1009() {
    let mut config = config();
    config.ws = config.ws.max_message_size(4096);
    let server = TestServer::start(config, Echo::everywhere());
    let mut client = WsClient::connect(server.addr, "/");
    let at_limit = bytes_of(4096, 1);
    client.send_binary(&at_limit);
    assert_eq!(client.recv().as_bytes(), at_limit);
    client.send_binary(&bytes_of(4097, 2));
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::TOO_BIG, "reason: {:?}", close.reason);
    client.expect_eof();

    // Over the limit only once reassembled.
    let mut client = WsClient::connect(server.addr, "/");
    client.send_raw(&fragmented(&Message::binary(bytes_of(5000, 3)), &[3000], 5));
    assert_eq!(client.recv_close().code, CloseCode::TOO_BIG);
    client.expect_eof();
    drop(client);
    server.shutdown();
}

#[test]
fn an_idle_client_is_pinged_and_stays_open_while_it_answers() {
    let mut config = config();
    config.ws = config
        .ws
        .ping_interval(Some(Duration::from_millis(50)))
        .idle_timeout(Some(Duration::from_secs(5)));
    let server = TestServer::start(config, Echo::everywhere());
    let mut client = WsClient::connect(server.addr, "/");
    for _ in 0..3 {
        // The client's connection answers each ping with a pong.
        match client.next_event() {
            Some(Event::Ping(_)) => {}
            other => panic!("expected a keepalive ping, got {other:?}"),
        }
    }
    client.send_text("still here");
    assert_eq!(client.recv_text(), "still here");
    drop(client);
    server.shutdown();
}

#[test]
fn a_client_that_never_answers_is_closed_after_the_idle_timeout() {
    let mut config = config();
    config.ws = config
        .ws
        .ping_interval(Some(Duration::from_millis(50)))
        .idle_timeout(Some(Duration::from_millis(300)));
    let server = TestServer::start(config, Echo::everywhere());
    let mut client = WsClient::connect(server.addr, "/");
    client.auto_reply = false;
    match client.next_event() {
        Some(Event::Ping(_)) => {}
        other => panic!("expected a keepalive ping, got {other:?}"),
    }
    let close = client.recv_close();
    assert_eq!(close.code, CloseCode::GOING_AWAY, "reason: {:?}", close.reason);
    client.expect_eof();
    drop(client);
    server.shutdown();
}

mod random {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// A message and where the client cuts it into frames.
    fn message() -> impl Strategy<Value = (Message, Vec<usize>)> {
        let text = ".{0,300}".prop_map(Message::text);
        let binary = proptest::collection::vec(any::<u8>(), 0..3000).prop_map(Message::binary);
        (
            prop_oneof![text, binary],
            proptest::collection::vec(0usize..700, 0..4),
        )
    }

    #[test]
    fn any_messages_in_any_frames_and_writes_echo_intact() {
        let server = echo_server();
        let strategy = (
            proptest::collection::vec(message(), 1..8),
            proptest::collection::vec(1usize..1500, 1..6),
        );
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |(messages, writes)| {
                let mut client = WsClient::connect(server.addr, "/");
                let mut wire = Vec::new();
                for (i, (message, cuts)) in messages.iter().enumerate() {
                    wire.extend(fragmented(message, cuts, i as u32));
                }
                // The byte stream goes out in writes of the chosen sizes,
                // whatever frame boundaries they cross.
                let mut rest = &wire[..];
                for &size in writes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (now, later) = rest.split_at(size.min(rest.len()));
                    client.send_raw(now);
                    rest = later;
                }
                for (message, _) in &messages {
                    prop_assert_eq!(&client.recv(), message);
                }
                client.close(CloseCode::NORMAL, "");
                prop_assert_eq!(client.recv_close().code, CloseCode::NORMAL);
                client.expect_eof();
                Ok(())
            })
            .unwrap();
        server.shutdown();
    }
}
