//! An echo goes back from where the message lies in the read buffer: the
//! frame header is written over the bytes before the payload and the
//! socket takes the frame from there. What the wire shows must not change:
//! every byte, in order, whatever the application sends after the echo,
//! however many messages one read holds, and when the socket pushes back.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::io::Write;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tether_testkit as common;

use common::{TestServer, WsClient, config};
use tether_server::{App, CloseCode, ConnId, Ctx, Message, MessageRef, Request, Route};

/// Echoes every message; a text message may ask for more after the echo.
struct EchoAndMore;

impl App for EchoAndMore {
    type Post = ();
    type State = ();

    fn route(&mut self, _request: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _state: &mut (), message: MessageRef<'_>) {
        ctx.send(conn, message);
        match message.as_text() {
            Some("then another") => ctx.send(conn, &Message::text("another")),
            Some("twice") => ctx.send(conn, message),
            Some("then as binary") => ctx.send(conn, MessageRef::Binary(message.as_bytes())),
            Some("then an owned one") => ctx.send_owned(conn, Message::binary(vec![9; 2000])),
            Some("then close") => ctx.close(conn, CloseCode::NORMAL, "asked to"),
            _ => {}
        }
    }
}

#[test]
fn what_the_application_sends_after_an_echo_comes_after_it() {
    let server = TestServer::start(config(), EchoAndMore);
    let mut client = WsClient::connect(server.addr, "/");
    client.send_text("plain");
    assert_eq!(client.recv_text(), "plain");
    client.send_text("then another");
    assert_eq!(client.recv_text(), "then another");
    assert_eq!(client.recv_text(), "another");
    client.send_text("twice");
    assert_eq!(client.recv_text(), "twice");
    assert_eq!(client.recv_text(), "twice");
    client.send_text("then as binary");
    assert_eq!(client.recv_text(), "then as binary");
    assert_eq!(client.recv(), Message::binary(b"then as binary".to_vec()));
    client.send_text("then an owned one");
    assert_eq!(client.recv_text(), "then an owned one");
    assert_eq!(client.recv(), Message::binary(vec![9; 2000]));
    client.send_binary(&[1, 2, 3]);
    assert_eq!(client.recv(), Message::binary(vec![1, 2, 3]));
    client.send_text("then close");
    assert_eq!(client.recv_text(), "then close");
    match client.next_event() {
        Some(tether_ws::Event::Close(frame)) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close frame, got {other:?}"),
    }
    // Gone, so that the graceful shutdown need not wait for its close.
    drop(client);
    server.shutdown();
}

#[test]
fn several_messages_in_one_read_are_echoed_in_order() {
    let server = TestServer::start(config(), EchoAndMore);
    let mut client = WsClient::connect(server.addr, "/");
    let mut burst = Vec::new();
    let sizes = [0, 1, 125, 126, 300, 65_535, 65_536, 20];
    for (i, &size) in sizes.iter().enumerate() {
        client
            .conn
            .send(&Message::binary(vec![i as u8; size]), &mut burst)
            .expect("frame a message");
    }
    client.send_raw(&burst);
    for (i, &size) in sizes.iter().enumerate() {
        assert_eq!(client.recv(), Message::binary(vec![i as u8; size]), "message {i}");
    }
    // Gone, so that the graceful shutdown need not wait for its close.
    drop(client);
    server.shutdown();
}

#[test]
fn a_message_whose_header_came_in_an_earlier_read_is_echoed_by_copy() {
    // The payload lies whole in the second read, with no room before it
    // for the echo's header: it goes back the usual way.
    let server = TestServer::start(config(), EchoAndMore);
    let mut client = WsClient::connect(server.addr, "/");
    for message in [Message::text("héllo, later"), Message::binary(vec![5; 300])] {
        let mut frame = Vec::new();
        client.conn.send(&message, &mut frame).expect("frame a message");
        let header_len = frame.len() - message.as_bytes().len();
        let before = server.stats().bytes_in;
        client.send_raw(&frame[..header_len]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().bytes_in < before + header_len as u64 {
            assert!(Instant::now() < deadline, "the server never read the header");
            thread::sleep(Duration::from_millis(1));
        }
        client.send_raw(&frame[header_len..]);
        assert_eq!(client.recv(), message);
    }
    // Gone, so that the graceful shutdown need not wait for its close.
    drop(client);
    server.shutdown();
}

#[test]
fn an_echo_the_socket_does_not_take_at_once_arrives_whole_and_in_order() {
    // Each message is written once the server has read the one before, so
    // that every read holds one whole message (echoed in place), and
    // nothing is read back until the server stops reading: its socket
    // buffer fills, a write in place comes up short, and the rest of that
    // frame and everything after it is queued.
    let server = TestServer::start(config(), EchoAndMore);
    let client = WsClient::connect(server.addr, "/");
    let count = 300;
    let size = 30_000;
    let message = move |i: usize| Message::binary((0..size).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>());
    let mut frames = Vec::new();
    let mut framing = common::client_connection(7);
    for i in 0..count {
        let mut frame = Vec::new();
        framing.send(&message(i), &mut frame).expect("frame a message");
        frames.push(frame);
    }
    let before = server.stats();
    let mut writer = client.stream.try_clone().expect("a second handle");
    let (go, start_reading) = mpsc::channel();
    let reading = thread::spawn(move || {
        let mut client = client;
        let _ = start_reading.recv();
        for i in 0..count {
            assert!(client.recv() == message(i), "message {i} came back changed");
        }
    });
    let mut stalled = false;
    for (i, frame) in frames.iter().enumerate() {
        writer.write_all(frame).expect("write a message");
        let deadline = Instant::now() + Duration::from_millis(500);
        while !stalled && server.stats().messages_in - before.messages_in <= i as u64 {
            if Instant::now() > deadline {
                // The server's queue is past its limit: it reads no more
                // until the client reads.
                stalled = true;
                let _ = go.send(());
            }
            thread::sleep(Duration::from_micros(200));
        }
    }
    assert!(
        stalled,
        "the server never stopped reading: the socket took everything"
    );
    reading.join().expect("every echo, whole and in order");
    let after = server.stats();
    assert_eq!(after.messages_out - before.messages_out, count as u64);
    // Every frame's bytes counted once, whether written in place or queued
    // (a 4-byte header each at this size).
    assert_eq!(after.bytes_out - before.bytes_out, (count * (4 + size)) as u64);
    server.shutdown();
}
