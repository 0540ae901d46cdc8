//! The blocking WebSocket client end to end against tether-server.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{HANG_GUARD, TestServer};
use tether_apps::{Demo, Echo};
use tether_client::{Backoff, CloseCode, Error, Event, Message, State, WebSocket, WebSocketBuilder};
use tether_server::{App, ConnId, Ctx, Handshake, MessageRef, Request, Route};

fn builder(url: String) -> WebSocketBuilder {
    WebSocket::builder(url)
        .connect_timeout(HANG_GUARD)
        .handshake_timeout(HANG_GUARD)
        .close_linger(HANG_GUARD)
}

#[test]
fn echoes_messages_of_many_sizes() {
    let server = common::start_server(Echo::everywhere());
    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    assert_eq!(ws.state(), State::Open);
    for size in [0, 1, 125, 126, 127, 65_535, 65_536, 65_537, 1 << 20, 3 << 20] {
        let text: String = (0..size).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        ws.send_text(&text).unwrap();
        let echoed = ws.recv_message().unwrap().expect("an echo");
        assert_eq!(echoed.as_text().map(str::len), Some(size));
        assert!(echoed.as_text() == Some(text.as_str()), "text of {size} bytes");

        let binary: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        ws.send_binary(&binary).unwrap();
        let echoed = ws.recv_message().unwrap().expect("an echo");
        assert!(!echoed.is_text());
        assert!(echoed.as_bytes() == binary.as_slice(), "binary of {size} bytes");
    }
    ws.send(&Message::text("é🙂")).unwrap();
    assert_eq!(ws.recv_message().unwrap(), Some(Message::text("é🙂")));
}

#[test]
fn ping_pong_and_a_clean_close() {
    let server = common::start_server(Echo::everywhere());
    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    ws.ping(b"are you there").unwrap();
    match ws.recv().unwrap() {
        Event::Pong(payload) => assert_eq!(payload.as_slice(), b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert!(matches!(ws.ping(&[0; 126]), Err(Error::InvalidArgument(_))));
    let frame = ws.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(frame.code, CloseCode::NORMAL);
    assert_eq!(ws.state(), State::Closed);
    // The server closed TCP first; we saw it (the linger is the hang
    // guard, so a successful close means EOF arrived).
    assert!(matches!(ws.send_text("late"), Err(Error::Closed)));
    assert!(matches!(ws.recv(), Err(Error::Closed)));
}

/// Closes every session when it receives "bye", with code 4000.
struct Closer;

impl App for Closer {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        if message.as_text() == Some("bye") {
            ctx.close(conn, CloseCode(4000), "as you wish");
        } else {
            ctx.send(conn, message);
        }
    }
}

#[test]
fn the_server_closing_ends_recv_with_its_frame() {
    let server = common::start_server(Closer);
    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    ws.send_text("one").unwrap();
    ws.send_text("bye").unwrap();
    let messages: Vec<Message> = ws.messages().map(Result::unwrap).collect();
    assert_eq!(messages, [Message::text("one")]);
    assert_eq!(ws.state(), State::Closed);

    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    ws.send_text("bye").unwrap();
    match ws.recv().unwrap() {
        Event::Closed(frame) => {
            assert_eq!(frame.code, CloseCode(4000));
            assert_eq!(frame.reason, "as you wish");
        }
        other => panic!("expected the close, got {other:?}"),
    }
}

/// Header names and values (or `None`) of one upgrade request.
type Seen = Vec<(String, Option<String>)>;

/// Records the headers of every upgrade request it opens.
#[derive(Clone, Default)]
struct Inspector {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl App for Inspector {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_open(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), request: &Request<'_>) {
        let names = [
            "Authorization",
            "X-Trace",
            "Origin",
            "Sec-WebSocket-Protocol",
            "Host",
        ];
        let mut seen: Seen = names
            .iter()
            .map(|&n| (n.to_owned(), request.header(n).map(str::to_owned)))
            .collect();
        seen.push(("query".into(), request.query().map(str::to_owned)));
        self.seen.lock().unwrap().push(seen);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        ctx.send(conn, message);
    }
}

#[test]
fn subprotocols_and_extra_headers_reach_the_server() {
    let inspector = Inspector::default();
    let handshake = Handshake::new().protocols(["chat.v2", "chat.v1"]);
    let server = TestServer::start_with(
        common::config("127.0.0.1:0".parse().unwrap()),
        handshake,
        inspector.clone(),
    );
    let mut ws = builder(server.ws_url("/room?id=7"))
        .protocols(["chat.v1", "chat.v2"])
        .header("Authorization", "Bearer secret")
        .header("X-Trace", "abc-123")
        .origin("http://example.test")
        .connect()
        .unwrap();
    // The server's preference wins among what we offered.
    assert_eq!(ws.protocol(), Some("chat.v2"));
    ws.send_text("hi").unwrap();
    assert_eq!(ws.recv_message().unwrap(), Some(Message::text("hi")));
    let seen = inspector.seen.lock().unwrap().clone();
    let get = |name: &str| {
        seen[0]
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    assert_eq!(get("Authorization").as_deref(), Some("Bearer secret"));
    assert_eq!(get("X-Trace").as_deref(), Some("abc-123"));
    assert_eq!(get("Origin").as_deref(), Some("http://example.test"));
    assert_eq!(get("Sec-WebSocket-Protocol").as_deref(), Some("chat.v1, chat.v2"));
    assert_eq!(get("Host"), Some(server.addr.to_string()));
    assert_eq!(get("query").as_deref(), Some("id=7"));

    // Offering nothing the server speaks: it picks none, and says so.
    let ws = builder(server.ws_url("/")).protocol("other").connect().unwrap();
    assert_eq!(ws.protocol(), None);

    // Headers the handshake writes itself cannot be set.
    let err = builder(server.ws_url("/"))
        .header("Sec-WebSocket-Key", "x")
        .connect()
        .unwrap_err();
    assert!(err.is_caller_error(), "{err}");
    let err = builder(server.ws_url("/"))
        .header("X-Bad", "a\r\nb")
        .connect()
        .unwrap_err();
    assert!(err.is_caller_error(), "{err}");
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_is_negotiated_and_used() {
    let handshake = Handshake::new().negotiator(tether_server::deflate::DeflateConfig::new());
    let server = TestServer::start_with(
        common::config("127.0.0.1:0".parse().unwrap()),
        handshake,
        Echo::everywhere(),
    );
    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    let extensions = ws.extensions().expect("an extension was accepted");
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    let text = "compressible ".repeat(10_000);
    for _ in 0..3 {
        ws.send_text(&text).unwrap();
        assert_eq!(ws.recv_message().unwrap().unwrap().as_text(), Some(text.as_str()));
    }
    ws.send_binary(&[1, 2, 3]).unwrap();
    assert_eq!(ws.recv_message().unwrap().unwrap().as_bytes(), [1, 2, 3]);
    ws.close(CloseCode::NORMAL, "").unwrap();

    // Turned off, nothing is offered.
    let ws = builder(server.ws_url("/")).compression(false).connect().unwrap();
    assert_eq!(ws.extensions(), None);
}

#[test]
fn clear_errors() {
    // wss:// is taken (with the `tls` feature; tests/tls.rs connects).
    assert!(WebSocket::builder("wss://example.com/").parse_url().is_ok());
    let err = WebSocket::connect("http://example.com/").unwrap_err();
    assert!(matches!(err, Error::UnsupportedScheme(_)), "{err}");
    let err = WebSocket::connect("ws://example.com/#frag").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    let err = WebSocket::connect("not a url").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");

    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = WebSocket::connect(&format!("ws://{refused}/")).unwrap_err();
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{err}"
    );
    assert!(err.is_network_error());

    let server = common::start_server(Demo::new());
    let err = builder(server.ws_url("/nowhere")).connect().unwrap_err();
    match &err {
        Error::Refused { status: 404, reason } => assert_eq!(reason, "Not Found"),
        other => panic!("expected 404, got {other:?}"),
    }
    assert!(err.to_string().contains("404"), "{err}");
    assert!(err.is_peer_error());
}

/// Answers the upgrade like a server with a broken WebSocket stack.
#[test]
fn handshake_and_protocol_errors_from_the_peer() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        // 1: a wrong accept key.
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        )
        .unwrap();
        drop(s);
        // 2: a valid handshake, then a masked frame (servers must not mask).
        let (mut s, _) = listener.accept().unwrap();
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = tether_handshake::accept_key(key.as_bytes());
        let mut response =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: "
                .to_vec();
        response.extend_from_slice(&accept);
        response.extend_from_slice(b"\r\n\r\n\x81\x82\x00\x00\x00\x00hi");
        s.write_all(&response).unwrap();
        // The client's close frame (1002) arrives; then we close.
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..2], [0x88, 0x80 | (n as u8 - 6)]);
        drop(s);
    });
    let err = builder(format!("ws://{addr}/")).connect().unwrap_err();
    assert!(
        matches!(err, Error::Handshake(tether_handshake::Error::AcceptMismatch)),
        "{err}"
    );
    let mut ws = builder(format!("ws://{addr}/")).connect().unwrap();
    let err = ws.recv().unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR), "{err}");
    assert!(err.is_peer_error());
    peer.join().unwrap();
}

#[test]
fn reconnects_with_backoff_after_the_server_restarts() {
    let server = common::start_server(Echo::everywhere());
    let addr = server.addr;
    let mut ws = builder(server.ws_url("/"))
        .reconnect(
            Backoff::new()
                .initial(Duration::from_millis(20))
                .max(Duration::from_millis(200))
                .jitter(0.5)
                .max_attempts(Some(200)),
        )
        .connect()
        .unwrap();
    ws.send_text("before").unwrap();
    assert_eq!(ws.recv_message().unwrap(), Some(Message::text("before")));

    // The server shuts down (closing with 1001 going away), and comes back
    // on the same port a little later, while the client retries.
    let restart = std::thread::spawn(move || {
        server.shutdown();
        std::thread::sleep(Duration::from_millis(150));
        TestServer::start_with(common::config(addr), Handshake::new(), Echo::everywhere())
    });
    assert_eq!(ws.recv().unwrap(), Event::Open);
    ws.send_text("after").unwrap();
    assert_eq!(ws.recv_message().unwrap(), Some(Message::text("after")));
    let restarted = restart.join().unwrap();

    // A close we start is final: no reconnection.
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(ws.recv(), Err(Error::Closed)));
    drop(restarted);
}

/// Lets every client in and closes it at once with 1013 (try again later).
struct Refuser {
    opened: Arc<Mutex<usize>>,
}

impl App for Refuser {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: &Request<'_>) {
        *self.opened.lock().unwrap() += 1;
        ctx.close(conn, CloseCode(1013), "try again later");
    }
}

/// A server that lets the client in and closes at once: the reconnections
/// in a row count against the backoff's limit (a new connection that
/// brings no message does not start them over), so the client ends with
/// the server's close frame instead of reconnecting for ever.
#[test]
fn reconnections_to_a_server_that_closes_at_once_run_out() {
    let opened = Arc::new(Mutex::new(0));
    let server = common::start_server(Refuser {
        opened: Arc::clone(&opened),
    });
    let mut ws = builder(server.ws_url("/"))
        .reconnect(
            Backoff::new()
                .initial(Duration::from_millis(10))
                .jitter(0.0)
                .max_attempts(Some(2)),
        )
        .connect()
        .unwrap();
    let mut opens = 0;
    let frame = loop {
        match ws.recv().unwrap() {
            Event::Open => {
                opens += 1;
                assert!(opens <= 2, "reconnected {opens} times");
            }
            Event::Closed(frame) => break frame,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(frame.code, CloseCode(1013));
    assert_eq!(opens, 2);
    assert_eq!(*opened.lock().unwrap(), 3);
}

#[test]
fn without_reconnect_a_lost_server_is_an_error() {
    let server = common::start_server(Echo::everywhere());
    let mut ws = builder(server.ws_url("/")).connect().unwrap();
    server.shutdown();
    match ws.recv() {
        Ok(Event::Closed(frame)) => assert_eq!(frame.code, CloseCode::GOING_AWAY),
        other => panic!("expected going away, got {other:?}"),
    }
    assert!(matches!(ws.recv(), Err(Error::Closed)));
}

/// A hand-written server: accepts one connection, completes the opening
/// handshake, and hands the socket to `script`.
fn raw_peer(
    script: impl FnOnce(std::net::TcpStream) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).unwrap(), 1, "the request head ended early");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let mut response =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: "
                .to_vec();
        response.extend_from_slice(&tether_handshake::accept_key(key.as_bytes()));
        response.extend_from_slice(b"\r\n\r\n");
        s.write_all(&response).unwrap();
        script(s);
    });
    (url, peer)
}

/// Reads one masked client frame: (first byte, unmasked payload).
fn read_client_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0x80, "client frames are masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    s.read_exact(&mut mask).unwrap();
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).unwrap();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    (head[0], payload)
}

#[test]
fn an_answer_goes_out_before_the_close_of_a_later_failure() {
    use std::io::Write;
    let (url, peer) = raw_peer(|mut s| {
        // A ping, a text message, then a frame with RSV2 set (no extension
        // was negotiated: a protocol error), all in one write.
        s.write_all(b"\x89\x01x\x81\x01a\xa1\x00").unwrap();
        assert_eq!(read_client_frame(&mut s), (0x8a, b"x".to_vec()), "the pong");
        assert_eq!(read_client_frame(&mut s), (0x81, b"a".to_vec()), "the echo");
        let (first, payload) = read_client_frame(&mut s);
        assert_eq!(first, 0x88, "then the close frame");
        assert_eq!(payload[..2], 1002u16.to_be_bytes());
        // We close TCP first, as a server should; the client saw its
        // failure and waited for this.
        s.write_all(b"\x88\x02\x03\xea").unwrap();
        drop(s);
    });
    let mut ws = builder(url).connect().unwrap();
    assert!(matches!(ws.recv().unwrap(), Event::Ping(p) if p.as_slice() == b"x"));
    let message = ws.recv_message().unwrap().unwrap();
    ws.send(&message).unwrap();
    let err = ws.recv().unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR), "{err}");
    assert!(matches!(ws.recv(), Err(Error::Closed)));
    peer.join().unwrap();
}

#[test]
fn keepalive_pings_a_silent_server() {
    let (url, peer) = raw_peer(|mut s| {
        use std::io::Write;
        let (first, _) = read_client_frame(&mut s);
        assert_eq!(first, 0x89, "a ping after the interval of silence");
        s.write_all(b"\x8a\x00\x88\x02\x03\xe8").unwrap();
        let (first, payload) = read_client_frame(&mut s);
        assert_eq!(
            (first, payload),
            (0x88, 1000u16.to_be_bytes().to_vec()),
            "the close echo"
        );
    });
    let mut ws = builder(url)
        .ping_interval(Some(Duration::from_millis(30)))
        .connect()
        .unwrap();
    assert!(matches!(ws.recv().unwrap(), Event::Pong(_)));
    assert!(matches!(ws.recv().unwrap(), Event::Closed(f) if f.code == CloseCode::NORMAL));
    peer.join().unwrap();
}
