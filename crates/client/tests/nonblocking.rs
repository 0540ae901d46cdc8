//! The non-blocking client driven by a mio loop, against tether-server.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::{Duration, Instant};

use common::HANG_GUARD;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tether_apps::Echo;
use tether_client::{CloseCode, Error, Event, Message, NonBlockingClient, WebSocket};

/// Runs the mio loop until `client` is finished, handing every event to
/// `on_event`; returns them all.
fn run(
    poll: &mut Poll,
    client: &mut NonBlockingClient<TcpStream>,
    mut on_event: impl FnMut(&mut NonBlockingClient<TcpStream>, &Result<Event, Error>),
) -> Vec<Result<Event, Error>> {
    let guard = Instant::now() + HANG_GUARD;
    let mut events = Events::with_capacity(16);
    let mut seen = Vec::new();
    let mut writable = true;
    while !client.is_finished() {
        assert!(Instant::now() < guard, "the loop hung; events so far: {seen:?}");
        // Write interest only while output is pending, as the contract says.
        let wants = client.wants_write();
        if wants != writable {
            let interest = if wants {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            poll.registry()
                .reregister(client.get_mut(), Token(0), interest)
                .unwrap();
            writable = wants;
        }
        let timeout = client.poll_timeout().map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(Instant::now())
        });
        poll.poll(&mut events, Some(timeout)).unwrap();
        for event in events.iter() {
            if event.is_writable() {
                client.on_writable();
            }
            if event.is_readable() {
                client.on_readable(Instant::now());
            }
        }
        client.handle_timeout(Instant::now());
        while let Some(event) = client.poll_event() {
            on_event(client, &event);
            seen.push(event);
        }
    }
    seen
}

fn connect(poll: &Poll, url: &str) -> NonBlockingClient<TcpStream> {
    let builder = WebSocket::builder(url).close_linger(HANG_GUARD);
    let addr = builder.parse_url().unwrap().socket_addrs().unwrap()[0];
    let mut socket = TcpStream::connect(addr).unwrap();
    poll.registry()
        .register(&mut socket, Token(0), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    builder.nonblocking(socket, Instant::now()).unwrap()
}

#[test]
fn echo_over_a_mio_loop() {
    let server = common::start_server(Echo::everywhere());
    let mut poll = Poll::new().unwrap();
    let mut client = connect(&poll, &server.ws_url("/"));
    assert!(client.is_handshaking());
    assert!(matches!(client.send_text("too early"), Err(Error::NotOpen)));

    // Large enough that the socket pushes back and output stays queued.
    let big = vec![7u8; 4 << 20];
    let mut echoed = Vec::new();
    let events = run(&mut poll, &mut client, |client, event| match event {
        Ok(Event::Open) => {
            client.send_text("hello").unwrap();
            client.send_binary(&big).unwrap();
            client.ping(b"p").unwrap();
        }
        Ok(Event::Message(m)) => {
            echoed.push(m.clone());
            if echoed.len() == 2 {
                client.close(CloseCode::NORMAL, "bye", Instant::now()).unwrap();
            }
        }
        _ => {}
    });
    assert_eq!(echoed[0], Message::text("hello"));
    assert!(echoed[1].as_bytes() == big.as_slice());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ok(Event::Pong(p)) if p.as_slice() == b"p"))
    );
    match events.last() {
        Some(Ok(Event::Closed(frame))) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("expected the close last, got {other:?}"),
    }
    assert!(matches!(client.send_text("late"), Err(Error::Closed)));
    assert!(client.poll_timeout().is_none());
}

#[test]
fn a_refused_handshake_is_the_last_event() {
    let server = common::start_server(tether_apps::Demo::new());
    let mut poll = Poll::new().unwrap();
    let mut client = connect(&poll, &server.ws_url("/missing"));
    let events = run(&mut poll, &mut client, |_, _| {});
    match events.as_slice() {
        [Err(Error::Refused { status: 404, .. })] => {}
        other => panic!("expected a 404 alone, got {other:?}"),
    }
}

#[test]
fn a_silent_server_times_out_the_handshake() {
    // Accepts (the kernel does, from the backlog) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut poll = Poll::new().unwrap();
    let builder = WebSocket::builder(url.as_str()).handshake_timeout(Duration::from_millis(100));
    let mut socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    poll.registry()
        .register(&mut socket, Token(0), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut client = builder.nonblocking(socket, Instant::now()).unwrap();
    let events = run(&mut poll, &mut client, |_, _| {});
    match events.as_slice() {
        [Err(Error::Timeout("opening handshake"))] => {}
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
}
