//! HTTP/3 served by the event loop, through a real UDP socket: a
//! quinn-proto client (its own QUIC stack, driven here by hand) against a
//! server with `Config::http3` on. Pages, a POST body, an event stream fed
//! by a publish, a deferred answer, a 404, a WebSocket over an extended
//! CONNECT (RFC 9220) (its echo of a message past `max_output` sent as
//! the client reads it), a WebTransport session served as a WebSocket
//! (messages as lines on a server stream, client streams as messages, a
//! broadcast, the close both ways, an Origin refusal, broadcasts as
//! datagrams too with `?datagrams=1`, a session closed as a slow
//! consumer), and the slow-consumer policy on
//! one stream while the connection's others go on; a client whose
//! address changes over and over on a server of several loops (sharing
//! one UDP socket, or each with its own); a
//! certificate replaced while running (SIGHUP); `Alt-Svc` on every TCP
//! answer head (HTTP/1.1 and HTTP/2: pages, errors, event streams,
//! WebSocket upgrades); the refusal to start HTTP/3 without TLS; the
//! QUIC counters; and hostile peers: a client that never answers its
//! handshake gets at most 3x what it sent, a flood of extended CONNECTs
//! stops at the stream limit while others are served, garbage
//! datagrams from many ports create no connection, and a client retiring
//! connection IDs over and over is issued only their replacements.

// HTTP/3 runs over QUIC, which the server has only with its `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, Dir, Endpoint, EndpointConfig, StreamId, VarInt};
use rustls::pki_types::ServerName;
use tether_h2::hpack::Field;
use tether_h3::frame::{self, Frame};
use tether_h3::qpack::{self};
use tether_server::{
    App, CloseCode, CloseReason, Config, ConnId, Ctx, Handshake, MessageRef, Reply, Request, Response, Route,
    Server, tls,
};
use tether_testkit::{IO_TIMEOUT, TestServer, config};

#[path = "support/h3_client.rs"]
mod h3_client;
use h3_client::{Client, Ends, certs, contains, field, stats_until, status, trusting, websocket_connect};

/// Pages, a publish that feeds every event stream, a deferred answer, and
/// event streams that may start with a burst of large events.
struct Feed {
    subscribers: Vec<ConnId>,
    /// The WebSockets (and WebTransport sessions) open: a publish is
    /// sent to them as a text message too.
    sockets: Vec<ConnId>,
    ends: Ends,
}

impl App for Feed {
    type Post = ();
    type State = u32;

    fn route(&mut self, request: &Request<'_>) -> Route<u32> {
        match request.path() {
            "/page" => Route::Page {
                content_type: "text/plain",
                body: b"a page over h3\n",
            },
            "/events" => Route::EventStream(0),
            "/publish" => Route::Handler(1),
            "/later" => Route::Handler(2),
            "/ws" => Route::WebSocket(3),
            "/peer" => Route::Handler(4),
            _ => Route::NotFound,
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        _: &mut u32,
        request: &Request<'_>,
        _: Option<&str>,
    ) {
        self.subscribers.push(conn);
        let burst: usize = request
            .query_param("burst")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let data = "x".repeat(4096);
        for _ in 0..burst {
            ctx.send_event(conn, &tether_sse::Event::new().data(&data))
                .unwrap();
        }
    }

    fn on_unsubscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut u32, reason: CloseReason) {
        self.subscribers.retain(|c| *c != conn);
        self.ends.lock().unwrap().push(reason);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        _: ConnId,
        tag: &mut u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        if *tag == 2 {
            return Reply::Later(Duration::from_millis(100));
        }
        if *tag == 4 {
            let peer = request.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            return Reply::Now(Response::text(200, peer));
        }
        let text = String::from_utf8_lossy(body).into_owned();
        for &conn in &self.subscribers {
            ctx.send_event(conn, &tether_sse::Event::new().data(&text))
                .unwrap();
        }
        for &conn in &self.sockets {
            ctx.send(conn, MessageRef::Text(&text));
        }
        Reply::Now(Response::text(200, format!("published {} bytes\n", body.len())))
    }

    fn on_open(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut u32, _: &Request<'_>) {
        self.sockets.push(conn);
    }

    /// A session's tag is not read once it is open: every WebSocket,
    /// WebTransport session and event stream here goes on without a
    /// state of its own (its callbacks lent a default), as the hub's do.
    fn keeps_session_state(&self, _: &u32) -> bool {
        false
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut u32, message: MessageRef<'_>) {
        if let MessageRef::Text("close me") = message {
            ctx.close(conn, CloseCode(4001), "as asked");
            return;
        }
        ctx.send(conn, message);
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut u32, reason: CloseReason) {
        self.sockets.retain(|c| *c != conn);
        self.ends.lock().unwrap().push(reason);
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        // Its status is made 413 whatever it says.
        (request.path() == "/publish").then(|| Response::json(200, format!("{{\"limit\":{limit}}}")))
    }

    fn on_request_timeout(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut u32) -> Response {
        Response::text(200, "answered later\n")
    }
}

fn start(config: Config) -> (TestServer, Ends) {
    let ends = Ends::default();
    let app = Feed {
        subscribers: Vec::new(),
        sockets: Vec::new(),
        ends: ends.clone(),
    };
    (TestServer::start(config, app), ends)
}

#[test]
fn pages_posts_event_streams_and_deferred_answers_over_http3() {
    let certs = certs(b"h3");
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);

    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page), (200, b"a page over h3\n".to_vec()));

    let events = client.request("GET", "/events", b"");
    client.until("the event stream's head", |c| !c.frames(events).0.is_empty());
    let (head, _) = client.frames(events);
    assert_eq!(status(&head), 200);
    assert_eq!(field(&head, "content-type"), Some(&b"text/event-stream"[..]));

    let publish = client.request("POST", "/publish", b"hello over h3");
    assert_eq!(client.response(publish), (200, b"published 13 bytes\n".to_vec()));
    client.until("the published event", |c| {
        contains(&c.frames(events).1, b"data: hello over h3\n\n")
    });

    let later = client.request("GET", "/later", b"");
    assert_eq!(client.response(later), (200, b"answered later\n".to_vec()));

    let missing = client.request("GET", "/nothing", b"");
    assert_eq!(client.response(missing).0, 404);
    // The event stream is still open through all of it.
    assert!(!client.received[&events].fin);
}

#[test]
fn a_quiet_event_stream_gets_heartbeats_and_its_websocket_neighbour_pings() {
    let mut certs = certs(b"h3");
    certs.server.sse_heartbeat = Duration::from_millis(50);
    certs.server.ws = certs.server.ws.ping_interval(Some(Duration::from_millis(50)));
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let events = client.request("GET", "/events", b"");
    let fields = websocket_connect("/ws");
    let ws = client.open(&fields, b"", false);
    // Three heartbeat comments after the retry hint, and a ping (opcode
    // 9) on the WebSocket, each from the loop's timers alone.
    client.until("three heartbeats", |c| {
        c.frames(events).1.windows(2).filter(|w| w == b":\n").count() >= 3
    });
    client.until("a ping", |c| c.frames(ws).1.first() == Some(&0x89));
}

#[test]
fn an_event_stream_whose_client_does_not_read_is_reset_and_its_connection_goes_on() {
    let mut certs = certs(b"h3");
    certs.server.max_output = 64 * 1024;
    let (server, ends) = start(certs.server);
    // An 8 KiB window that the client never reopens on the event stream:
    // 40 events of 4 KiB pile up on the server's side.
    let mut client = Client::connect(server.addr, &certs.client, 8 * 1024);
    let events = client.request("GET", "/events?burst=40", b"");
    client.unread = Some(events);
    client.until("the slow consumer's end", |_| !ends.lock().unwrap().is_empty());
    assert!(
        matches!(ends.lock().unwrap()[..], [CloseReason::SlowConsumer]),
        "{:?}",
        ends.lock().unwrap()
    );

    // The connection's other streams go on.
    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page), (200, b"a page over h3\n".to_vec()));

    // Read at last, the stream turns out reset with H3_REQUEST_CANCELLED.
    client.unread = None;
    client.until("the reset", |c| {
        c.read(events);
        c.received.get(&events).is_some_and(|r| r.reset.is_some())
    });
    assert_eq!(client.received[&events].reset, Some(0x10c));
    stats_until(&server, "the reset counted", |s| s.h3_slow_consumer_resets == 1);
}

#[test]
fn a_client_whose_address_changes_keeps_its_connection_whichever_loop_reads_its_datagrams() {
    // The loops read one UDP socket: most datagrams reach another loop
    // than the one holding their connection.
    address_changes(false);
}

#[test]
fn a_client_whose_address_changes_keeps_its_connection_whichever_loop_its_datagrams_reach() {
    // Each loop has a socket of its own (SO_REUSEPORT): the kernel's hash
    // of the client's address picks the socket.
    address_changes(true);
}

/// A client moving to a new port over and over, on a server of 4 loops
/// with `reuse_port` or without.
fn address_changes(reuse_port: bool) {
    let mut certs = certs(b"h3");
    certs.server.reuse_port = reuse_port;
    let server = TestServer::start_loops(certs.server, Handshake::new(), 4, |_| Feed {
        subscribers: Vec::new(),
        sockets: Vec::new(),
        ends: Ends::default(),
    });
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let events = client.request("GET", "/events", b"");
    client.until("the event stream's head", |c| !c.frames(events).0.is_empty());
    // Over 4 loops, the kernel's hash (or, on one socket, whichever loop
    // is free to read) sends 12 new ports all to the loop holding the
    // connection about once in 4^12 runs; every other run has datagrams
    // that reach another loop first.
    for round in 0..12 {
        client.rebind();
        let page = client.request("GET", "/page", b"");
        assert_eq!(
            client.response(page),
            (200, b"a page over h3\n".to_vec()),
            "after move {round}"
        );
    }
    // The application sees the address the client has now.
    let peer = client.request("GET", "/peer", b"");
    let here = client.socket.local_addr().unwrap().to_string();
    assert_eq!(client.response(peer), (200, here.into_bytes()));
    // The event stream opened before the moves is still the same one.
    let publish = client.request("POST", "/publish", b"still here");
    assert_eq!(client.response(publish).0, 200);
    client.until("the event after the moves", |c| {
        contains(&c.frames(events).1, b"data: still here\n")
    });
    // Some datagrams reached another loop first and were handed over.
    assert!(
        server.stats().quic_datagrams_forwarded > 0,
        "{:?}",
        server.stats()
    );
    // Connection IDs: the server issues no more than the client may hold
    // at once (quinn-proto's active_connection_id_limit, at most 8 with
    // the handshake's), one more for each the client retired, however
    // often the client moves.
    let frames = client.conn.stats().frame_rx.new_connection_id;
    let retired = client.conn.stats().frame_tx.retire_connection_id;
    println!("{frames} connection IDs issued, {retired} retired");
    assert!(frames <= 7 + retired, "{frames} issued, {retired} retired");
}

#[test]
fn quic_counters_after_an_exchange_and_an_idle_timeout() {
    let mut certs = certs(b"h3");
    certs.server.quic.idle_timeout = Duration::from_millis(500);
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page).0, 200);
    let stats = stats_until(&server, "the handshake counted", |s| {
        s.quic_handshakes == 1 && s.open_h3 == 1
    });
    // The client's first datagram alone is padded to 1200 bytes.
    assert!(
        stats.quic_datagrams_in >= 2 && stats.quic_bytes_in >= 1200,
        "{stats:?}"
    );
    assert!(
        stats.quic_datagrams_out >= 2 && stats.quic_bytes_out > 1000,
        "{stats:?}"
    );
    assert_eq!(
        (
            stats.quic_closed_idle,
            stats.quic_closed_error,
            stats.quic_refused
        ),
        (0, 0, 0)
    );
    // The client goes silent: the server drops it at the idle timeout.
    let stats = stats_until(&server, "the idle timeout", |s| {
        s.open_h3 == 0 && s.quic_closed_idle + s.quic_closed_error + s.quic_closed_normally > 0
    });
    assert_eq!(
        (
            stats.quic_closed_idle,
            stats.quic_closed_error,
            stats.quic_closed_normally
        ),
        (1, 0, 0),
        "{stats:?}"
    );
}

/// A client's WebSocket frame (RFC 6455 §5.2), masked with a zero key,
/// which leaves the payload as it is.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = u8::try_from(payload.len()).unwrap();
    assert!(len < 126, "the test's frames are short");
    [&[0x80 | opcode, 0x80 | len, 0, 0, 0, 0][..], payload].concat()
}

#[test]
fn a_websocket_over_an_extended_connect_echoes_and_closes() {
    let certs = certs(b"h3");
    let (server, ends) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let ws = client.open_websocket("/ws");

    client.data(ws, &client_frame(0x1, b"hello over h3"), false);
    client.until("the echo", |c| c.frames(ws).1.len() >= 15);
    assert_eq!(client.frames(ws).1, [&[0x81, 13][..], b"hello over h3"].concat());

    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    client.data(ws, &client_frame(0x8, &close), true);
    client.until("the end of the stream", |c| {
        c.received.get(&ws).is_some_and(|r| r.fin)
    });
    let (_, body) = client.frames(ws);
    assert_eq!(
        &body[15..],
        &[0x88, 2, 0x03, 0xe8],
        "the server's close frame, 1000"
    );
    client.until_told(&ends, CloseReason::Closed(CloseCode::NORMAL));
}

#[test]
fn a_websocket_echo_larger_than_max_output_reaches_a_client_that_reads() {
    let certs = certs(b"h3");
    let limit = certs.server.max_output;
    let (server, ends) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let ws = client.open_websocket("/ws");

    // A 2 MiB binary message (masked with a zero key), in DATA frames of
    // 16 KiB: its echo is twice max_output, and goes out as it is read.
    let payload: Vec<u8> = (0..2usize << 20)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    assert!(payload.len() > limit);
    let len = u64::try_from(payload.len()).unwrap();
    let mut message = [&[0x82, 0x80 | 127][..], &len.to_be_bytes(), &[0, 0, 0, 0]].concat();
    message.extend_from_slice(&payload);
    for piece in message.chunks(16 * 1024) {
        let mut wire = Vec::new();
        frame::encode_data(piece, &mut wire).unwrap();
        assert!(client.write_all(ws, &wire), "the server stopped the stream");
    }
    let header = [&[0x82, 127][..], &len.to_be_bytes()].concat();
    let echo_len = header.len() + payload.len();
    client.until("the echo", |c| {
        c.frames(ws).1.len() >= echo_len || c.received.get(&ws).is_some_and(|r| r.reset.is_some())
    });
    assert_eq!(client.received[&ws].reset, None, "the stream was reset");
    let (_, body) = client.frames(ws);
    assert_eq!(body.len(), echo_len);
    assert!(body[..header.len()] == header[..]);
    assert!(body[header.len()..] == payload[..], "the echo differs");

    // The stream is read again: a short message is echoed too.
    client.data(ws, &client_frame(0x1, b"and after"), false);
    client.until("the second echo", |c| c.frames(ws).1.len() >= echo_len + 11);
    assert_eq!(
        client.frames(ws).1[echo_len..],
        [&[0x81, 9][..], b"and after"].concat()
    );
    assert!(ends.lock().unwrap().is_empty(), "{:?}", ends.lock().unwrap());
    let stats = server.stats();
    assert_eq!(stats.slow_consumers, 0);
    assert_eq!(stats.h3_slow_consumer_resets, 0);
}

#[test]
fn a_replaced_certificate_is_the_one_new_quic_handshakes_present() {
    let first = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let second = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let reloadable = tls::ReloadableCert::from_pem(
        first.cert.pem().as_bytes(),
        first.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let mut config = config();
    config.tls = Some(reloadable.server_config());
    config.http3 = true;
    let (server, _) = start(config);
    let mut before = Client::connect(server.addr, &trusting(&first.cert, b"h3"), 1 << 20);
    let page = before.request("GET", "/page", b"");
    assert_eq!(before.response(page).0, 200);

    // What SIGHUP does in `tether serve`: a client that trusts only the
    // new certificate completes its handshake (Client::connect fails the
    // test if the server presented the old one).
    reloadable
        .replace_pem(
            second.cert.pem().as_bytes(),
            second.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
    let mut after = Client::connect(server.addr, &trusting(&second.cert, b"h3"), 1 << 20);
    let page = after.request("GET", "/page", b"");
    assert_eq!(after.response(page).0, 200);
    // The connection made before goes on.
    let page = before.request("GET", "/page", b"");
    assert_eq!(before.response(page).0, 200);
}

#[test]
fn a_server_that_shuts_down_closes_its_quic_connections() {
    let certs = certs(b"h3");
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let events = client.request("GET", "/events", b"");
    client.until("the event stream's head", |c| !c.frames(events).0.is_empty());
    client.may_be_closed = true;
    server.shutdown();
    // Told at once (CONNECTION_CLOSE with H3_NO_ERROR), not at the idle
    // timeout (30 s, beyond the hang guard).
    client.until("the server's close", |c| c.closed.is_some());
    let reason = client.closed.clone().unwrap_or_default();
    // The application's CONNECTION_CLOSE, H3_NO_ERROR (0x100).
    assert!(reason.starts_with("closed by peer: 256"), "{reason}");
    // The event stream was ended first (its FIN before the close).
    assert!(client.received[&events].fin, "{reason}");
}

/// A TLS connection to `server` offering `alpn`, over which `request`
/// is sent; what comes back up to the end of the response head.
fn tls_head(server: SocketAddr, tls: &Arc<rustls::ClientConfig>, request: &str) -> String {
    let conn =
        rustls::ClientConnection::new(tls.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(server).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn every_tcp_answer_head_advertises_http3_on_the_same_port() {
    let certs = certs(b"http/1.1");
    let mut h2_tls = (*certs.client).clone();
    h2_tls.alpn_protocols = vec![b"h2".to_vec()];
    let (server, _) = start(certs.server);
    let expected = format!("Alt-Svc: h3=\":{}\"\r\n", server.addr.port());

    // HTTP/1.1: a page, an error, an event stream, a WebSocket's 101 and
    // a refused one's 426.
    for (what, request) in [
        ("a page", "GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ("a 404", "GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        (
            "an event stream",
            "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
        (
            "a WebSocket upgrade",
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
        (
            "a WebSocket upgrade refused (426)",
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        ),
    ] {
        let head = tls_head(server.addr, &certs.client, request);
        assert!(head.contains(&expected), "{what}: {head}");
    }

    // HTTP/2: a page, an event stream, a WebSocket's 200 (RFC 8441).
    let conn =
        rustls::ClientConnection::new(Arc::new(h2_tls), ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut h2 = tether_testkit::h2::H2Client::start(rustls::StreamOwned::new(conn, tcp), &[]);
    let expected = format!("h3=\":{}\"", server.addr.port());
    let page = h2.get("/page", &[]);
    let events = h2.get("/events", &[]);
    let ws = h2.websocket("/ws", &[]);
    for (what, stream) in [("a page", page), ("an event stream", events), ("a WebSocket", ws)] {
        let head = h2.head(stream);
        assert_eq!(head.status(), Some(200), "{what}");
        assert_eq!(
            head.field("alt-svc").as_deref(),
            Some(expected.as_str()),
            "{what}"
        );
    }
}

#[test]
fn http3_without_tls_is_refused_at_bind() {
    let mut config = config();
    config.http3 = true;
    let app = Feed {
        subscribers: Vec::new(),
        sockets: Vec::new(),
        ends: Ends::default(),
    };
    let Err(error) = Server::bind(config, Handshake::new(), app) else {
        panic!("bound HTTP/3 without TLS");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("HTTP/3 needs TLS"), "{error}");
}

/// The first datagram of a handshake to `server` from a quinn-proto
/// client (its Initial, padded to 1200 bytes), for a client that sends it
/// and nothing more.
fn first_flight(server: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
    let config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls.clone()).unwrap()));
    let (_, mut conn) = endpoint
        .connect(Instant::now(), config, server, "localhost")
        .unwrap();
    let mut buf = Vec::new();
    let t = conn.poll_transmit(Instant::now(), 1, &mut buf).unwrap();
    buf.truncate(t.size);
    buf
}

#[test]
fn a_client_that_never_answers_gets_at_most_three_times_what_it_sent() {
    let mut certs = certs(b"h3");
    certs.server.quic.handshake_timeout = Duration::from_secs(3);
    let (server, _) = start(certs.server);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let initial = first_flight(server.addr, &certs.client);
    socket.send_to(&initial, server.addr).unwrap();
    // Everything the server sends this address until it has given up on
    // the handshake (its first flight, then retransmissions as its
    // probe timer fires, at about 1 s and 3 s, with no acknowledgement
    // ever coming), and a little after.
    let mut received = 0;
    let mut datagram = vec![0u8; 65_536];
    let mut gone_since = None;
    let deadline = Instant::now() + IO_TIMEOUT;
    while gone_since.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(300)) {
        assert!(Instant::now() < deadline, "the handshake was never given up");
        match socket.recv_from(&mut datagram) {
            Ok((n, _)) => received += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("UDP receive: {e}"),
        }
        // Closed at its handshake deadline, then drained and forgotten
        // (the loop publishes its counters together at the end of its
        // turn; one closed means the connection had been open).
        let stats = server.stats();
        if gone_since.is_none()
            && stats.quic_closed_error + stats.quic_closed_handshake_timeout > 0
            && stats.open_h3 == 0
        {
            gone_since = Some(Instant::now());
        }
    }
    // RFC 9000 §8.1: before the client's address is validated, at most
    // three times the bytes received from it.
    println!(
        "{received} bytes sent to a silent client for its {} bytes",
        initial.len()
    );
    assert!(received > 0, "the server answered");
    assert!(
        received <= 3 * initial.len(),
        "{received} bytes sent for {} received",
        initial.len()
    );
    let stats = server.stats();
    assert_eq!(
        (stats.quic_closed_handshake_timeout, stats.quic_handshakes),
        (1, 0),
        "{stats:?}"
    );
}

#[test]
fn a_flood_of_extended_connects_is_bounded_by_the_stream_limit_and_others_are_served() {
    let mut certs = certs(b"h3");
    certs.server.quic.max_concurrent_bidi_streams = 20;
    let (server, _) = start(certs.server);
    let mut flood = Client::connect(server.addr, &certs.client, 1 << 20);
    let fields = websocket_connect("/ws");
    // As many WebSockets at once as the client is let open, and then
    // more asked for.
    let mut sockets = Vec::new();
    let mut section = Vec::new();
    qpack::encode(&fields, &mut section);
    let mut wire = Vec::new();
    Frame::Headers(section).encode(&mut wire).unwrap();
    // (Some come when the server grants the streams it held back until the
    // handshake was complete.)
    flood.until("the stream limit", |c| {
        while let Some(id) = c.conn.streams().open(Dir::Bi) {
            c.write(id, &wire, false);
            sockets.push(id);
            assert!(sockets.len() <= 20, "more streams than the limit");
        }
        sockets.len() == 20
    });
    flood.until("every WebSocket's 200", |c| {
        sockets.iter().all(|id| !c.frames(*id).0.is_empty())
    });
    assert_eq!(server.stats().open_websocket, 20);
    // The peer cannot open a 21st while the 20 are open.
    for _ in 0..20 {
        flood.step();
    }
    assert_eq!(flood.conn.streams().open(Dir::Bi), None);
    // Another client is served meanwhile.
    let mut other = Client::connect(server.addr, &certs.client, 1 << 20);
    let page = other.request("GET", "/page", b"");
    assert_eq!(other.response(page), (200, b"a page over h3\n".to_vec()));
    assert_eq!(server.stats().open_websocket, 20);
}

#[test]
fn a_flood_of_garbage_datagrams_from_many_ports_creates_no_connection() {
    let certs = certs(b"h3");
    let (server, _) = start(certs.server);
    let initial = first_flight(server.addr, &certs.client);
    let mut sent = 0u64;
    let mut bytes = 0u64;
    for port in 0..100u8 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Too short for anything; a short header to an unknown ID (a
        // stateless reset's cue, if large enough); an Initial whose
        // protection does not verify (the real one with one byte of its
        // payload changed); a long header of an unknown version; noise.
        let mut forged = initial.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x55;
        let short: Vec<u8> = (0..60u8)
            .map(|i| i.wrapping_mul(31).wrapping_add(port) | 0x40)
            .collect();
        let unknown_version = [&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8][..], &[port; 8], &[0; 1200]].concat();
        for datagram in [
            vec![port],
            vec![0x40, port, 1, 2],
            short,
            forged,
            unknown_version,
            vec![0xff; 1500],
        ] {
            socket.send_to(&datagram, server.addr).unwrap();
            sent += 1;
            bytes += datagram.len() as u64;
        }
        // A few at a time, so that the kernel's socket buffer drops none.
        stats_until(&server, "the datagrams read", |s| s.quic_datagrams_in == sent);
    }
    let stats = stats_until(&server, "their bytes counted", |s| s.quic_bytes_in == bytes);
    assert_eq!((stats.open_h3, stats.quic_handshakes), (0, 0), "{stats:?}");
    // What it answered (version negotiation, stateless resets) is no
    // more than what it was sent.
    assert!(stats.quic_bytes_out <= stats.quic_bytes_in, "{stats:?}");
    // And a real client is served.
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page).0, 200);
}

#[test]
fn a_client_retiring_connection_ids_over_and_over_is_issued_only_replacements() {
    let certs = certs(b"h3");
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    // Each round the client moves to a connection ID it has not used and
    // retires the one before (what a client does when its address
    // changes), then makes a request.
    for round in 0..40 {
        client.conn.local_address_changed();
        let page = client.request("GET", "/page", b"");
        assert_eq!(client.response(page).0, 200, "round {round}");
    }
    let stats = client.conn.stats();
    let (issued, retired) = (
        stats.frame_rx.new_connection_id,
        stats.frame_tx.retire_connection_id,
    );
    println!("{issued} connection IDs issued, {retired} retired");
    assert!(retired >= 20, "the client retired {retired}");
    // However many it retires, the IDs it holds unretired stay within its
    // active_connection_id_limit: one new ID for each retired.
    assert!(issued <= 7 + retired, "{issued} issued, {retired} retired");
}

/// The fields of a WebTransport CONNECT to `path`, as a draft-02 client
/// (Chromium) sends them, from `origin`.
fn webtransport_connect(path: &str, origin: &str) -> [Field; 7] {
    [
        Field::new(":method", "CONNECT"),
        Field::new(":protocol", "webtransport"),
        Field::new(":scheme", "https"),
        Field::new(":authority", "localhost"),
        Field::new(":path", path),
        Field::new("origin", origin),
        Field::new("sec-webtransport-http3-draft02", "1"),
    ]
}

/// The varints of a WebTransport stream's prefix (type or signal, session).
fn wt_prefix(kind: u64, session: StreamId) -> Vec<u8> {
    let mut wire = Vec::new();
    tether_h3::varint::encode(kind, &mut wire).unwrap();
    tether_h3::varint::encode(u64::from(session), &mut wire).unwrap();
    wire
}

impl Client {
    /// Opens a WebTransport session to `path` from `origin`, and waits for
    /// its 200; the session's CONNECT stream.
    fn wt_open(&mut self, path: &str, origin: &str) -> StreamId {
        let session = self.open(&webtransport_connect(path, origin), b"", false);
        self.until("the session's answer", |c| !c.frames(session).0.is_empty());
        assert_eq!(status(&self.frames(session).0), 200);
        session
    }

    /// The server's WebTransport stream of `session`: the first server
    /// unidirectional stream whose bytes start with its prefix; its bytes
    /// after the prefix.
    fn wt_events(&self, session: StreamId) -> Option<(StreamId, Vec<u8>, bool)> {
        let prefix = wt_prefix(0x54, session);
        self.received.iter().find_map(|(id, r)| {
            (id.dir() == Dir::Uni && r.bytes.starts_with(&prefix))
                .then(|| (*id, r.bytes[prefix.len()..].to_vec(), r.fin))
        })
    }

    /// Sends one message on a new WebTransport unidirectional stream.
    fn wt_send(&mut self, session: StreamId, message: &[u8]) {
        let id = self.conn.streams().open(Dir::Uni).unwrap();
        let mut wire = wt_prefix(0x54, session);
        wire.extend_from_slice(message);
        self.write(id, &wire, true);
    }
}

#[test]
fn a_webtransport_session_is_served_as_a_websocket_both_ways() {
    let certs = certs(b"h3");
    let (server, ends) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let session = client.wt_open("/ws", "https://localhost");
    let (head, _) = client.frames(session);
    assert_eq!(
        field(&head, "sec-webtransport-http3-draft"),
        Some(&b"draft02"[..])
    );

    // A message on a client stream is echoed as a line on the server's.
    client.wt_send(session, b"hello over webtransport");
    client.until("the echo", |c| {
        c.wt_events(session)
            .is_some_and(|(_, bytes, _)| bytes.ends_with(b"\n"))
    });
    assert_eq!(client.wt_events(session).unwrap().1, b"hello over webtransport\n");

    // A broadcast reaches it on the same stream.
    let publish = client.request("POST", "/publish", b"news for all");
    assert_eq!(client.response(publish).0, 200);
    client.until("the broadcast", |c| {
        c.wt_events(session)
            .is_some_and(|(_, bytes, _)| contains(&bytes, b"news for all\n"))
    });

    // A bidirectional stream of the session is refused.
    let bidi = client.conn.streams().open(Dir::Bi).unwrap();
    client.write(bidi, &wt_prefix(0x41, session), false);
    client.until("the refusal", |c| {
        c.received.get(&bidi).is_some_and(|r| r.reset.is_some())
    });
    assert_eq!(client.received[&bidi].reset, Some(0x3994_bd84));

    // The client closes with CLOSE_WEBTRANSPORT_SESSION: the server ends
    // the CONNECT stream and its own, and the application is told the code.
    let mut capsule = Vec::new();
    tether_h3::webtransport::capsule::encode_close(
        &tether_h3::webtransport::capsule::Close {
            code: 4000,
            reason: "bye".into(),
        },
        &mut capsule,
    )
    .unwrap();
    client.data(session, &capsule, true);
    client.until("the end of the session", |c| {
        c.received.get(&session).is_some_and(|r| r.fin) && c.wt_events(session).is_some_and(|e| e.2)
    });
    client.until_told(&ends, CloseReason::Closed(CloseCode(4000)));
    // The connection goes on: a new session opens on it.
    client.wt_open("/ws", "https://localhost");
}

#[test]
fn an_application_close_is_sent_as_close_webtransport_session() {
    let certs = certs(b"h3");
    let (server, ends) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let session = client.wt_open("/ws", "https://localhost");
    client.wt_send(session, b"close me");
    client.until("the CONNECT stream's end", |c| {
        c.received.get(&session).is_some_and(|r| r.fin)
    });
    let (_, body) = client.frames(session);
    let mut reader = tether_h3::webtransport::capsule::CapsuleReader::new();
    let mut capsules = Vec::new();
    reader.feed(&body, &mut capsules).unwrap();
    assert_eq!(
        capsules,
        [tether_h3::webtransport::capsule::Capsule::Close(
            tether_h3::webtransport::capsule::Close {
                code: 4001,
                reason: "as asked".into()
            }
        )]
    );
    client.until_told(&ends, CloseReason::Closed(CloseCode(4001)));
}

#[test]
fn a_webtransport_session_from_a_refused_origin_is_answered_403() {
    let certs = certs(b"h3");
    let handshake = Handshake::new().policy(|req: &tether_handshake::UpgradeRequest<'_>| {
        if req.origin() == Some("https://localhost") {
            Ok(())
        } else {
            Err(tether_handshake::Rejection::forbidden("origin not allowed"))
        }
    });
    let server = TestServer::start_with(
        certs.server,
        handshake,
        Feed {
            subscribers: Vec::new(),
            sockets: Vec::new(),
            ends: Ends::default(),
        },
    );
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let refused = client.open(&webtransport_connect("/ws", "https://evil.example"), b"", false);
    assert_eq!(client.response(refused).0, 403);
    // Its stream named a session that is not there: refused too.
    let late = client.conn.streams().open(Dir::Uni).unwrap();
    let mut wire = wt_prefix(0x54, refused);
    wire.extend_from_slice(b"sneaky");
    client.write(late, &wire, true);
    // The connection goes on: an allowed session opens on it (answered 200).
    client.wt_open("/ws", "https://localhost");
}

#[test]
fn a_session_that_asks_for_datagrams_gets_broadcasts_as_datagrams_too() {
    let certs = certs(b"h3");
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let session = client.wt_open("/ws?datagrams=1", "https://localhost");
    let publish = client.request("POST", "/publish", b"latest value");
    assert_eq!(client.response(publish).0, 200);
    client.until("the broadcast on the stream", |c| {
        c.wt_events(session)
            .is_some_and(|(_, bytes, _)| bytes == b"latest value\n")
    });
    // The datagram: the session's quarter stream ID, then the message.
    let mut expected = Vec::new();
    tether_h3::webtransport::datagram::encode(u64::from(session), b"latest value", &mut expected).unwrap();
    let mut got = None;
    client.until("the datagram", |c| {
        got = got.take().or_else(|| c.conn.datagrams().recv());
        got.is_some()
    });
    assert_eq!(got.unwrap()[..], expected[..]);
    // A datagram from the client is taken and dropped: the session goes on.
    let mut from_client = Vec::new();
    tether_h3::webtransport::datagram::encode(u64::from(session), b"ignored", &mut from_client).unwrap();
    client
        .conn
        .datagrams()
        .send(bytes::Bytes::from(from_client), false)
        .unwrap();
    client.wt_send(session, b"still here");
    client.until("the echo", |c| {
        c.wt_events(session)
            .is_some_and(|(_, bytes, _)| bytes.ends_with(b"still here\n"))
    });
}

#[test]
fn a_webtransport_session_whose_events_stream_is_not_read_is_closed_as_a_slow_consumer() {
    let mut certs = certs(b"h3");
    certs.server.max_output = 64 * 1024;
    let (server, ends) = start(certs.server);
    // An 8 KiB window that the client never reopens on the server's
    // streams: its control stream (3) is read, the session's events
    // stream (the server's next unidirectional stream, 7) is not.
    let mut client = Client::connect(server.addr, &certs.client, 8 * 1024);
    client.unread = Some(StreamId::from(VarInt::from_u32(7)));
    let session = client.wt_open("/ws", "https://localhost");
    let big = vec![b'x'; 4096];
    for _ in 0..40 {
        let publish = client.request("POST", "/publish", &big);
        assert_eq!(client.response(publish).0, 200);
        if !ends.lock().unwrap().is_empty() {
            break;
        }
    }
    client.until("the slow consumer's end", |_| !ends.lock().unwrap().is_empty());
    assert!(
        matches!(ends.lock().unwrap()[..], [CloseReason::SlowConsumer]),
        "{:?}",
        ends.lock().unwrap()
    );
    // The session's CONNECT stream carries the close and ends; the
    // connection goes on.
    client.until("the CONNECT stream's end", |c| {
        c.received.get(&session).is_some_and(|r| r.fin)
    });
    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page), (200, b"a page over h3\n".to_vec()));
}

/// A client's WebSocket frame of any length, final or not, masked with a
/// zero key.
fn client_frame_of(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let opcode = tether_frame::OpCode::from_u8(opcode).unwrap();
    let mut header = tether_frame::FrameHeader::new(fin, opcode, 0);
    header.mask = Some([0; 4]);
    let mut wire = Vec::new();
    tether_frame::encode_frame(&mut wire, header, payload).unwrap();
    wire
}

/// A server whose WebSocket messages are at most `limit` bytes, and a
/// client connected to it.
fn start_with_message_limit(limit: usize) -> (TestServer, Ends, Client) {
    let certs = certs(b"h3");
    let mut config = certs.server;
    config.ws = config.ws.max_message_size(limit);
    let (server, ends) = start(config);
    let client = Client::connect(server.addr, &certs.client, 1 << 20);
    (server, ends, client)
}

#[test]
fn websocket_messages_in_progress_on_one_connection_share_one_message_limit() {
    let (_server, ends, mut client) = start_with_message_limit(64 * 1024);
    let fields = websocket_connect("/ws");
    let sockets: Vec<StreamId> = (0..3).map(|_| client.open(&fields, b"", false)).collect();
    for &ws in &sockets {
        client.until("the WebSocket's 200", |c| !c.frames(ws).0.is_empty());
        assert_eq!(status(&client.frames(ws).0), 200);
    }
    // Each sends the first 25 000 bytes of a message of two frames: each
    // within the limit, the third takes the three past it.
    for (i, &ws) in (0u8..).zip(&sockets) {
        client.data(ws, &client_frame_of(0x2, false, &vec![i; 25_000]), false);
        client.step();
    }
    let third = sockets[2];
    client.until("the third one's close", |c| {
        c.received.get(&third).is_some_and(|r| r.fin)
    });
    let (_, body) = client.frames(third);
    assert_eq!(
        &body[..4],
        &[0x88, body[1], 0x03, 0xf1],
        "a close frame with 1009"
    );
    assert!(contains(&body, b"messages in progress on the connection"));
    client.until_told(&ends, CloseReason::Failed(CloseCode::TOO_BIG));
    // The other two end their messages and get them back whole.
    for (i, &ws) in (0u8..).zip(&sockets[..2]) {
        client.data(ws, &client_frame_of(0x0, true, &[i; 100]), false);
        client.until("the echo", |c| c.frames(ws).1.len() >= 25_104);
        let (_, echo) = client.frames(ws);
        assert_eq!(
            &echo[..4],
            &[0x82, 126, 0x62, 0x0c],
            "a binary message of 25 100 bytes"
        );
        assert!(echo[4..].iter().all(|&b| b == i));
    }
}

#[test]
fn webtransport_messages_in_progress_count_against_the_connections_limit() {
    let (_server, ends, mut client) = start_with_message_limit(64 * 1024);
    let session = client.wt_open("/ws", "https://localhost");
    // Three client streams, none ended, 25 000 bytes each.
    for i in 0..3u8 {
        let id = client.conn.streams().open(Dir::Uni).unwrap();
        let mut wire = wt_prefix(0x54, session);
        wire.extend_from_slice(&vec![b'a' + i; 25_000]);
        client.write(id, &wire, false);
        client.step();
    }
    client.until("the CONNECT stream's end", |c| {
        c.received.get(&session).is_some_and(|r| r.fin)
    });
    let (_, body) = client.frames(session);
    let mut reader = tether_h3::webtransport::capsule::CapsuleReader::new();
    let mut capsules = Vec::new();
    reader.feed(&body, &mut capsules).unwrap();
    match &capsules[..] {
        [tether_h3::webtransport::capsule::Capsule::Close(close)] => {
            assert_eq!(close.code, 1009);
            assert!(
                close.reason.contains("messages in progress on the connection"),
                "{close:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    client.until_told(&ends, CloseReason::Failed(CloseCode::TOO_BIG));
    // The connection goes on: a new session opens on it.
    client.wt_open("/ws", "https://localhost");
}

#[test]
fn request_bodies_that_never_end_hold_at_most_the_connections_budget() {
    const BUDGET: usize = 512 * 1024;
    let certs = certs(b"h3");
    let mut config = certs.server;
    config.max_request_body = 128 * 1024;
    config.request_bodies_per_connection = BUDGET;
    let (server, _) = start(config);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    // Twenty publishes whose bodies stop one byte short: 1.2 MB that the
    // QUIC windows let through, as the server reads the bodies.
    let part = vec![b'b'; 60_000];
    let length = (part.len() + 1).to_string();
    let fields = [
        Field::new(":method", "POST"),
        Field::new(":scheme", "https"),
        Field::new(":authority", "localhost"),
        Field::new(":path", "/publish"),
        Field::new("content-length", length.as_str()),
    ];
    let streams: Vec<StreamId> = (0..20)
        .map(|_| {
            let id = client.open(&fields, &part, false);
            client.step();
            id
        })
        .collect();
    let page = client.request("GET", "/page", b"");
    assert_eq!(client.response(page).0, 200);
    // Each body holds at least its 60 000 bytes and at most the largest
    // body's 128 KiB (buffers grow by doubling as the pieces come): at
    // most eight fit in the budget, and at least four.
    let stats = stats_until(&server, "the refusals", |s| s.h3_refused_bodies >= 12);
    let refused = usize::try_from(stats.h3_refused_bodies).unwrap();
    assert!(refused <= 16, "{stats:?}");
    client.until("the refused streams reset", |c| {
        streams
            .iter()
            .filter(|id| c.received.get(id).is_some_and(|r| r.reset.is_some()))
            .count()
            == refused
    });
    let held: Vec<StreamId> = streams
        .iter()
        .copied()
        .filter(|id| client.received.get(id).is_none_or(|r| r.reset.is_none()))
        .collect();
    assert_eq!(held.len(), 20 - refused);
    for id in &streams {
        if let Some(code) = client.received.get(id).and_then(|r| r.reset) {
            assert_eq!(code, 0x10b, "H3_REQUEST_REJECTED");
        }
    }
    // A body that ends is handed on, and its memory is free again: a new
    // body as large fits on the same connection.
    client.data(held[0], b"!", true);
    let (status, body) = client.response(held[0]);
    assert_eq!((status, body), (200, b"published 60001 bytes\n".to_vec()));
    let again = client.open(&fields, &part, false);
    client.data(again, b"!", true);
    assert_eq!(client.response(again).0, 200);
    assert_eq!(
        usize::try_from(server.stats().h3_refused_bodies).unwrap(),
        refused
    );
}

#[test]
fn a_body_over_the_bound_is_answered_413_in_the_applications_shape() {
    let mut certs = certs(b"h3");
    certs.server.max_request_body = 100;
    let (server, _) = start(certs.server);
    let mut client = Client::connect(server.addr, &certs.client, 1 << 20);
    let body = [b'x'; 200];
    let fields = |path: &'static str, length: Option<&'static str>| {
        let mut fields = vec![
            Field::new(":method", "POST"),
            Field::new(":scheme", "https"),
            Field::new(":authority", "localhost"),
            Field::new(":path", path),
        ];
        fields.extend(length.map(|l| Field::new("content-length", l)));
        fields
    };
    // Announced, then grown past the bound without announcing it.
    for length in [Some("200"), None] {
        let stream = client.open(&fields("/publish", length), &body, true);
        let (head, data) = {
            client.response(stream);
            client.frames(stream)
        };
        assert_eq!(status(&head), 413, "{length:?}");
        assert_eq!(field(&head, "content-type"), Some(&b"application/json"[..]));
        assert_eq!(data, b"{\"limit\":100}", "{length:?}");
    }
    // Where the application says nothing, the server's plain 413.
    let stream = client.open(&fields("/other", Some("200")), &body, true);
    let (code, data) = client.response(stream);
    assert_eq!(code, 413);
    assert!(contains(&data, b"413"), "{}", String::from_utf8_lossy(&data));
}
