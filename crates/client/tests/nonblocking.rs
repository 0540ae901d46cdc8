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
        // The last read stopped at its budget: no readiness event comes
        // for what is left.
        if client.wants_read() {
            client.on_readable(Instant::now());
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
    let addr = tether_client::resolve(&builder.parse_url().unwrap()).unwrap()[0];
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

/// A server that answers the upgrade, then sends `pings` empty pings
/// (`89 00`), in reads of any size, and never reads a byte more.
struct PingFlood {
    request: Vec<u8>,
    response: Option<Vec<u8>>,
    pings: usize,
    /// Bytes of the pings sent so far.
    sent: usize,
}

impl PingFlood {
    /// Bytes of pings not read yet.
    fn unread(&self) -> usize {
        2 * self.pings - self.sent
    }
}

impl std::io::Write for PingFlood {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.request.ends_with(b"\r\n\r\n") {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        self.request.extend_from_slice(buf);
        let head = String::from_utf8_lossy(&self.request).into_owned();
        if let Some(key) = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")) {
            let mut response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Accept: "
                .to_vec();
            response.extend_from_slice(&tether_handshake::accept_key(key.trim().as_bytes()));
            response.extend_from_slice(b"\r\n\r\n");
            self.response = Some(response);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for PingFlood {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(response) = self.response.take() {
            buf[..response.len()].copy_from_slice(&response);
            return Ok(response.len());
        }
        let n = buf.len().min(self.unread());
        if n == 0 || !self.request.ends_with(b"\r\n\r\n") {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            *byte = if (self.sent + i).is_multiple_of(2) {
                0x89
            } else {
                0x00
            };
        }
        self.sent += n;
        Ok(n)
    }
}

/// Drives `client` over a [`PingFlood`] until the connection fails (1000
/// rounds at most): the most output it queued, and the failure.
fn flood(mut client: NonBlockingClient<PingFlood>) -> (usize, Option<Error>) {
    let mut most_queued = 0;
    for _ in 0..1000 {
        client.on_writable();
        client.on_readable(Instant::now());
        while let Some(event) = client.poll_event() {
            most_queued = most_queued.max(client.pending_output());
            if let Err(e) = event {
                return (most_queued, Some(e));
            }
        }
    }
    (most_queued, None)
}

fn ping_flood(pings: usize) -> PingFlood {
    PingFlood {
        request: Vec::new(),
        response: None,
        pings,
        sent: 0,
    }
}

#[test]
fn pongs_a_server_never_reads_fail_the_connection_at_the_output_bound() {
    let builder = WebSocket::builder("ws://127.0.0.1:9/").compression(false);
    // Each pong is 6 bytes (masked): far more than 1 MiB of them.
    let client = builder
        .nonblocking(ping_flood(1_000_000), Instant::now())
        .unwrap();
    let (most_queued, failure) = flood(client);
    assert!(
        most_queued <= (1 << 20) + 1024,
        "{most_queued} bytes queued for a server that does not read"
    );
    match failure {
        Some(e) => assert_eq!(e.close_code(), Some(CloseCode::POLICY), "{e}"),
        None => panic!("the connection did not fail; {most_queued} bytes queued"),
    }
}

#[test]
fn the_bound_on_unread_pongs_is_the_callers_to_set() {
    let builder = WebSocket::builder("ws://127.0.0.1:9/")
        .compression(false)
        .max_queued_answers(64 * 1024);
    // 60 000 pongs are 360 000 bytes: within the default bound, over this one.
    let client = builder.nonblocking(ping_flood(60_000), Instant::now()).unwrap();
    let (most_queued, failure) = flood(client);
    assert!(
        most_queued <= 64 * 1024 + 1024,
        "{most_queued} bytes queued for a server that does not read"
    );
    match failure {
        Some(e) => assert_eq!(e.close_code(), Some(CloseCode::POLICY), "{e}"),
        None => panic!("the connection did not fail; {most_queued} bytes queued"),
    }
    // The same server under the default bound: no failure.
    let builder = WebSocket::builder("ws://127.0.0.1:9/").compression(false);
    let client = builder.nonblocking(ping_flood(60_000), Instant::now()).unwrap();
    let (most_queued, failure) = flood(client);
    assert!(failure.is_none(), "{failure:?} with {most_queued} bytes queued");
}

#[test]
fn a_read_stops_at_its_budget_and_the_next_goes_on() {
    const BUDGET: usize = 4096;
    // 10 000 pings are 20 000 bytes: several budgets' worth.
    let builder = WebSocket::builder("ws://127.0.0.1:9/")
        .compression(false)
        .read_budget(BUDGET);
    let now = Instant::now();
    let mut client = builder.nonblocking(ping_flood(10_000), now).unwrap();
    client.on_writable();
    // The handshake's answer and pings, up to the budget.
    client.on_readable(now);
    assert!(client.wants_read(), "the budget ran out with pings still to read");
    assert_eq!(client.poll_timeout(), Some(now), "due at once while input waits");
    let mut left = client.get_mut().unread();
    assert!(left > 20_000 - BUDGET, "{left} bytes left");
    let expected_calls = left.div_ceil(BUDGET);
    let mut calls = 0;
    while client.wants_read() {
        client.on_readable(now);
        calls += 1;
        let read = left - client.get_mut().unread();
        left = client.get_mut().unread();
        // Each call reads its budget, the last the rest.
        if left > 0 {
            assert_eq!(read, BUDGET, "call {calls}");
        }
    }
    assert_eq!(calls, expected_calls, "the rest read in budget-sized calls");
    assert_eq!(left, 0, "every ping read");
    // The socket is drained: the poll waits for readiness again.
    client.on_readable(now);
    assert!(!client.wants_read());
    let mut pings = 0;
    while let Some(event) = client.poll_event() {
        match event.unwrap() {
            Event::Open => {}
            Event::Ping(_) => pings += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pings, 10_000);
}
