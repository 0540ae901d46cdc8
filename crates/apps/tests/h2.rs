//! HTTP/2 end to end: h2c with prior knowledge and ALPN `h2` over TLS,
//! every kind of route on streams of one connection (pages, publishes,
//! long polls, event streams, RFC 8441 WebSockets with and without
//! permessage-deflate), the slow-consumer policy on a stream whose
//! window stays shut, graceful shutdown, and HTTP/1.1 with HTTP/2 off.
//! The client is tether-testkit's, made of tether-h2's frames and HPACK.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{HttpConn, TestServer, client_connection, config, tcp};
use tether_apps::{Demo, Echo, HubSettings, HubShared};
use tether_h2::ErrorCode;
use tether_server::deflate::{ClientOffer, DeflateConfig};
use tether_server::{Config, Handshake, Message, tls};
use tether_ws::{CloseCode, Connection, Event};

const TOKEN: &str = "h2-token";
const BEARER: &str = "Bearer h2-token";

fn hub_with(config: Config) -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.poll_timeout = Duration::from_secs(5);
    let shared = HubShared::new(settings, 1);
    let handshake = shared.settings().origin_policy(Handshake::new());
    TestServer::start_with(config, handshake, shared.app(0))
}

fn hub() -> TestServer {
    hub_with(config())
}

fn publish(client: &mut H2Client, topic: &str, body: &str) -> u32 {
    let path = format!("/topics/{topic}");
    client.request_with_body("POST", &path, &[("authorization", BEARER)], body.as_bytes())
}

/// Feeds what the server sent on a WebSocket stream to the client's
/// connection until it yields an event.
fn ws_event(client: &mut H2Client, stream: u32, ws: &mut Connection, pending: &mut Vec<u8>) -> Event {
    loop {
        pending.extend(client.take_data(stream));
        let mut out = Vec::new();
        let (used, event) = ws.receive(pending, Instant::now(), &mut out);
        pending.drain(..used);
        if !out.is_empty() {
            client.data(stream, &out, false);
        }
        if let Some(event) = event {
            return event;
        }
        assert!(client.read_frame(), "the connection ended");
        let state = &client.streams[&stream];
        assert!(state.reset.is_none(), "stream reset: {:?}", state.reset);
    }
}

fn ws_send(client: &mut H2Client, stream: u32, ws: &mut Connection, message: &Message) {
    let mut wire = Vec::new();
    ws.send(message, &mut wire).expect("encode");
    client.data(stream, &wire, false);
}

#[test]
fn an_error_answering_head_over_h2_has_no_data() {
    // 405 (HEAD on the demo's WebSocket route) and 413 (a HEAD announcing
    // a body over the limit): a head that ends the stream, no DATA.
    let server = TestServer::start(config(), Demo::new());
    let mut client = H2Client::connect(server.addr);
    let head = |path| {
        vec![
            (":method", "HEAD"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
        ]
    };
    let refused = client.open(&head("/echo"), true);
    let mut too_big = head("/");
    too_big.push(("content-length", "100000000"));
    let too_big = client.open(&too_big, false);
    for (stream, status) in [(refused, 405), (too_big, 413)] {
        let response = client.head(stream);
        assert_eq!(response.status(), Some(status));
        assert!(response.ended, "the head ends the stream");
        assert!(response.data.is_empty());
    }
    drop(client);
    server.shutdown();
}

#[test]
fn h2c_prior_knowledge_serves_healthz_and_http1_still_works() {
    let server = TestServer::start(config(), Demo::new());
    let mut client = H2Client::connect(server.addr);
    let stream = client.get("/healthz", &[]);
    let response = client.finish(stream);
    assert_eq!(response.status(), Some(200));
    assert_eq!(response.data, b"ok\n");
    assert_eq!(response.field("content-length").as_deref(), Some("3"));
    // No connection-specific field in an HTTP/2 response.
    for name in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
        assert_eq!(response.field(name), None, "{name}");
    }
    // The server's SETTINGS allow RFC 8441.
    assert!(
        client
            .settings
            .contains(&tether_h2::frame::Setting::EnableConnectProtocol(true))
    );
    // A second request on the same connection, and a 404.
    let missing = client.get("/no-such-page", &[]);
    assert_eq!(client.finish(missing).status(), Some(404));
    assert_eq!(server.stats().h2_connections, 1);
    assert_eq!(server.stats().h2_streams, 2);
    // HTTP/1.1 beside it, on the same port, even a request starting with
    // the preface's first letter.
    let mut http = HttpConn::connect(server.addr);
    http.request("GET", "/healthz", "");
    assert_eq!(http.response().status, 200);
    http.send(b"PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(http.response().status, 405);
    drop(client);
    server.shutdown();
}

#[test]
fn with_http2_off_the_preface_is_refused_and_http1_served() {
    let mut config = config();
    config.http2 = false;
    let server = TestServer::start(config, Demo::new());
    let mut stream = tcp(server.addr);
    stream.write_all(tether_h2::frame::PREFACE).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 505") || text.starts_with("HTTP/1.1 400"),
        "{text:?}"
    );
    let mut http = HttpConn::connect(server.addr);
    http.request("GET", "/healthz", "");
    assert_eq!(http.response().status, 200);
    assert_eq!(server.stats().h2_connections, 0);
    server.shutdown();
}

#[test]
fn alpn_h2_over_tls() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut config = config();
    config.tls = Some(tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("TLS"));
    let server = TestServer::start(config, Demo::new());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("the root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = |alpn: &[&[u8]]| {
        let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    };
    let connect = |config: Arc<rustls::ClientConfig>| {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let session = rustls::ClientConnection::new(config, name).expect("a session");
        rustls::StreamOwned::new(session, tcp(server.addr))
    };
    let mut client = H2Client::start(connect(client_config(&[b"h2", b"http/1.1"])), &[]);
    let stream = client.get("/healthz", &[]);
    let response = client.finish(stream);
    assert_eq!(client.stream.conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!((response.status(), &response.data[..]), (Some(200), &b"ok\n"[..]));
    // A client that offers only http/1.1 gets HTTP/1.1.
    let mut old = connect(client_config(&[b"http/1.1"]));
    old.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    let _ = old.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(old.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop(client);
    server.shutdown();
}

#[test]
fn a_publish_reaches_an_event_stream_on_the_same_connection() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let events = client.get("/topics/news/events", &[]);
    let head = client.head(events);
    assert_eq!(head.status(), Some(200));
    assert_eq!(head.field("content-type").as_deref(), Some("text/event-stream"));
    client.data_contains(events, b"retry:");
    let published = publish(&mut client, "news", "hello over h2");
    let answer = client.finish(published);
    assert_eq!(
        answer.status(),
        Some(200),
        "{:?}",
        String::from_utf8_lossy(&answer.data)
    );
    client.data_contains(events, b"data: hello over h2\n");
    // A publish without the token is refused before its body is read.
    let refused = client.request_with_body("POST", "/topics/news", &[], b"nope");
    assert_eq!(client.finish(refused).status(), Some(401));
    // A body over the limit is refused with 413.
    let big = vec![b'x'; (1 << 20) + 1];
    let length = big.len().to_string();
    let too_big = client.open(
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/topics/news"),
            (":authority", "localhost"),
            ("authorization", BEARER),
            ("content-length", &length),
        ],
        false,
    );
    assert_eq!(client.head(too_big).status(), Some(413));
    // The event stream lives on.
    let again = publish(&mut client, "news", "still here");
    assert_eq!(client.finish(again).status(), Some(200));
    client.data_contains(events, b"data: still here\n");
    drop(client);
    server.shutdown();
}

/// A POST without the token, its body still to come.
fn open_unauthorized_publish(client: &mut H2Client, length: Option<&str>) -> u32 {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/news"),
        (":authority", "localhost"),
    ];
    fields.extend(length.map(|l| ("content-length", l)));
    client.open(&fields, false)
}

#[test]
fn a_request_refused_before_its_body_is_answered_and_its_body_read_to_the_end() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    // More than a stream's first window: the client needs the server's
    // WINDOW_UPDATEs to finish it, after the answer.
    let refused = open_unauthorized_publish(&mut client, Some("200000"));
    let head = client.finish(refused);
    assert_eq!(head.status(), Some(401));
    assert!(!head.data.is_empty(), "the answer's body arrives whole");
    client.data(refused, &vec![b'x'; 200_000], true);
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    // Not reset: a client still sending when a reset came would lose the
    // answer (curl 7.88 does).
    assert_eq!(client.streams[&refused].reset, None);

    // A body past what is dropped after an early answer is stopped with
    // RST_STREAM(NO_ERROR) (RFC 9113 §8.1)...
    let endless = open_unauthorized_publish(&mut client, None);
    assert_eq!(client.finish(endless).status(), Some(401));
    client.data(endless, &vec![b'y'; (1 << 20) + 1], false);
    client.until(|c| c.streams[&endless].reset.is_some());
    assert_eq!(client.streams[&endless].reset, Some(ErrorCode::NO_ERROR));
    // ... and so is one announced past it, at once.
    let announced = open_unauthorized_publish(&mut client, Some("2000000"));
    client.until(|c| c.streams.get(&announced).is_some_and(|s| s.reset.is_some()));
    assert_eq!(client.streams[&announced].status(), Some(413));
    // The connection goes on.
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    drop(client);
    server.shutdown();
}

#[test]
fn ten_event_streams_on_one_connection_all_get_a_broadcast() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let streams: Vec<u32> = (0..10).map(|_| client.get("/topics/fan/events", &[])).collect();
    for &s in &streams {
        client.data_contains(s, b"retry:");
    }
    assert_eq!(server.stats().open_event_stream, 10);
    // Published over HTTP/1.1, to all ten streams.
    let mut http = HttpConn::connect(server.addr);
    http.send(
        format!(
            "POST /topics/fan HTTP/1.1\r\nHost: x\r\nAuthorization: {BEARER}\r\nContent-Length: 9\r\n\r\nbroadcast"
        )
        .as_bytes(),
    );
    assert_eq!(http.response().status, 200);
    for &s in &streams {
        client.data_contains(s, b"data: broadcast\n");
    }
    drop(client);
    // The streams are gone with their connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().open_event_stream != 0 {
        assert!(Instant::now() < deadline, "event streams still counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.shutdown();
}

#[test]
fn a_long_poll_waits_on_its_stream_while_others_go_on() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let poll = client.get("/topics/polled/poll", &[]);
    // Other requests on the connection are answered meanwhile.
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    assert!(!client.streams[&poll].is_closed());
    let published = publish(&mut client, "polled", "for the poll");
    assert_eq!(client.finish(published).status(), Some(200));
    let answer = client.finish(poll);
    assert_eq!(answer.status(), Some(200));
    let body = String::from_utf8_lossy(&answer.data);
    assert!(body.contains("for the poll"), "{body}");
    drop(client);
    server.shutdown();
}

#[test]
fn a_websocket_over_an_extended_connect_echoes() {
    let server = TestServer::start(config(), Echo::at("/echo"));
    let mut client = H2Client::connect(server.addr);
    let stream = client.websocket("/echo", &[]);
    let head = client.head(stream);
    assert_eq!(head.status(), Some(200));
    assert_eq!(head.field("sec-websocket-accept"), None);
    assert_eq!(head.field("sec-websocket-extensions"), None);
    assert_eq!(server.stats().open_websocket, 1);
    let mut ws = client_connection(3);
    let mut pending = Vec::new();
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for message in [Message::text("hello over h2"), Message::binary(large)] {
        ws_send(&mut client, stream, &mut ws, &message);
        match ws_event(&mut client, stream, &mut ws, &mut pending) {
            Event::Message(echoed) => assert_eq!(echoed.as_bytes(), message.as_bytes()),
            other => panic!("{other:?}"),
        }
    }
    // The client closes: the server answers its close frame and ends the
    // stream.
    let mut wire = Vec::new();
    ws.close(CloseCode::NORMAL, "bye", Instant::now(), &mut wire)
        .expect("close");
    client.data(stream, &wire, false);
    match ws_event(&mut client, stream, &mut ws, &mut pending) {
        Event::Close(frame) => assert_eq!(frame.code, CloseCode::NORMAL),
        other => panic!("{other:?}"),
    }
    let state = client.finish(stream);
    assert!(state.ended && state.reset.is_none());
    // The connection serves on.
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    drop(client);
    server.shutdown();
}

#[test]
fn a_websocket_over_h2_with_permessage_deflate() {
    let handshake = Handshake::new().negotiator(DeflateConfig::new().min_size(0));
    let server = TestServer::start_with(config(), handshake, Echo::at("/echo"));
    let mut client = H2Client::connect(server.addr);
    let offer = ClientOffer::new();
    let stream = client.websocket("/echo", &[("sec-websocket-extensions", &offer.element())]);
    let head = client.head(stream);
    assert_eq!(head.status(), Some(200));
    let agreed = head
        .field("sec-websocket-extensions")
        .expect("deflate negotiated");
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    let parsed = tether_handshake::parse_extensions(&agreed).expect("a valid header");
    let params = offer.accept(&parsed[0]).expect("acceptable parameters");
    let mut ws = client_connection(5).with_extension(Box::new(offer.extension(params)));
    let text = "compress me ".repeat(500);
    ws_send(&mut client, stream, &mut ws, &Message::text(text.clone()));
    // The echo comes compressed: RSV1 on its first frame.
    client.until(|c| !c.streams[&stream].data.is_empty());
    let first = client.streams[&stream].data[0];
    assert_eq!(first & 0x40, 0x40, "RSV1 set: {first:#x}");
    let mut pending = Vec::new();
    match ws_event(&mut client, stream, &mut ws, &mut pending) {
        Event::Message(echoed) => assert_eq!(echoed.as_bytes(), text.as_bytes()),
        other => panic!("{other:?}"),
    }
    drop(client);
    server.shutdown();
}

#[test]
fn a_websocket_and_an_event_stream_share_a_connection() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let events = client.get("/topics/both/events", &[]);
    client.data_contains(events, b"retry:");
    let socket = client.websocket("/topics/both/ws", &[]);
    assert_eq!(client.head(socket).status(), Some(200));
    let mut ws = client_connection(9);
    let mut pending = Vec::new();
    let published = publish(&mut client, "both", "to everyone");
    assert_eq!(client.finish(published).status(), Some(200));
    client.data_contains(events, b"data: to everyone\n");
    loop {
        match ws_event(&mut client, socket, &mut ws, &mut pending) {
            Event::Message(message) => {
                let text = String::from_utf8_lossy(message.as_bytes()).into_owned();
                if text.contains("to everyone") {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    drop(client);
    server.shutdown();
}

#[test]
fn a_stream_that_never_opens_its_window_is_cut_loose_alone() {
    let mut config = config();
    config.max_output = 64 * 1024;
    let server = hub_with(config);
    let mut client = H2Client::connect(server.addr);
    let stalled = client.get("/topics/flood/events", &[]);
    client.held.insert(stalled);
    let healthy = client.get("/topics/flood/events", &[]);
    client.data_contains(stalled, b"retry:");
    client.data_contains(healthy, b"retry:");
    let mut http = HttpConn::connect(server.addr);
    let payload = "y".repeat(4000);
    for i in 0..80 {
        let body = format!("{i:03}{payload}");
        http.send(
            format!(
                "POST /topics/flood HTTP/1.1\r\nHost: x\r\nAuthorization: {BEARER}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(http.response().status, 200);
        // The healthy stream reads everything as it comes.
        client.data_contains(healthy, format!("data: {i:03}").as_bytes());
        client.take_data(healthy);
    }
    let state = client.finish(stalled);
    assert_eq!(state.reset, Some(ErrorCode::CANCEL));
    assert!(server.stats().slow_consumers >= 1);
    assert!(client.streams[&healthy].reset.is_none() && !client.streams[&healthy].ended);
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    drop(client);
    server.shutdown();
}

#[test]
fn graceful_shutdown_sends_goaway_then_1001_and_ends_event_streams() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let events = client.get("/topics/bye/events", &[]);
    client.data_contains(events, b"retry:");
    let socket = client.websocket("/topics/bye/ws", &[]);
    assert_eq!(client.head(socket).status(), Some(200));
    server.begin_shutdown();
    client.until(|c| c.goaway.is_some());
    let (last, code) = client.goaway.expect("GOAWAY");
    assert_eq!((last, code), (socket, ErrorCode::NO_ERROR));
    let mut ws = client_connection(11);
    let mut pending = Vec::new();
    let close = loop {
        match ws_event(&mut client, socket, &mut ws, &mut pending) {
            Event::Close(frame) => break frame,
            Event::Message(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::GOING_AWAY);
    let ended = client.finish(events);
    assert!(ended.ended && ended.reset.is_none());
    let socket_state = client.finish(socket);
    assert!(socket_state.ended);
    client.read_to_end();
    server.join();
}

/// Polls the server's counters until `done` holds (they are written by
/// the loop, a moment after the client saw the result).
fn wait_for_stats(server: &TestServer, what: &str, done: impl Fn(&tether_server::StatsSnapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(&server.stats()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn request_bodies_that_never_end_hold_at_most_the_connections_budget() {
    const BUDGET: usize = 512 * 1024;
    let mut config = config();
    config.max_request_body = 128 * 1024;
    config.request_bodies_per_connection = BUDGET;
    let server = hub_with(config);
    let mut client = H2Client::connect(server.addr);
    // Twenty publishes whose bodies stop one byte short: 1.2 MB that the
    // windows let through, as they reopen while the bodies are read.
    let part = vec![b'b'; 60_000];
    let length = (part.len() + 1).to_string();
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/big"),
        (":authority", "localhost"),
        ("authorization", BEARER),
        ("content-length", length.as_str()),
    ];
    let streams: Vec<u32> = (0..20)
        .map(|_| {
            let s = client.open(&head, false);
            client.data(s, &part, false);
            s
        })
        .collect();
    // Answered after everything before it was read.
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    let refused: Vec<u32> = streams
        .iter()
        .copied()
        .filter(|s| client.streams[s].reset == Some(ErrorCode::REFUSED_STREAM))
        .collect();
    let held: Vec<u32> = streams
        .iter()
        .copied()
        .filter(|s| !client.streams[s].is_closed())
        .collect();
    assert_eq!(refused.len() + held.len(), streams.len(), "{:?}", client.streams);
    assert!(
        !refused.is_empty() && !held.is_empty(),
        "refused {refused:?}, held {held:?}"
    );
    wait_for_stats(&server, "the gauge counts the held bodies", |s| {
        s.h2_refused_bodies == refused.len() as u64
            && s.h2_request_body_bytes >= (held.len() * part.len()) as u64
    });
    let stats = server.stats();
    assert!(stats.h2_request_body_bytes <= BUDGET as u64, "{stats:?}");
    // Another connection is not held up.
    let mut other = H2Client::connect(server.addr);
    let published = publish(&mut other, "big", "from elsewhere");
    assert_eq!(other.finish(published).status(), Some(200));
    // A body that ends is handed on, and its memory is free again: a new
    // body as large, in two parts, fits on the same connection.
    let first = held[0];
    client.data(first, b"!", true);
    assert_eq!(client.finish(first).status(), Some(200));
    let again = client.open(&head, false);
    client.data(again, &part, false);
    client.data(again, b"!", true);
    let answer = client.finish(again);
    assert_eq!(answer.status(), Some(200), "{answer:?}");
    wait_for_stats(&server, "one body fewer", |s| {
        s.h2_request_body_bytes < stats.h2_request_body_bytes
    });
    // The rest go with their connection.
    drop(client);
    wait_for_stats(&server, "no body held", |s| s.h2_request_body_bytes == 0);
    drop(other);
    server.shutdown();
}

/// Reads until the server's GOAWAY and the end of the connection; returns
/// the GOAWAY's code.
fn goaway_and_close(client: &mut H2Client) -> ErrorCode {
    client.read_to_end();
    client.goaway.expect("a GOAWAY before the close").1
}

/// After an attack: the server still serves a new connection.
fn still_serving(server: &TestServer) {
    let mut client = H2Client::connect(server.addr);
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
}

#[test]
fn rapid_reset_ends_the_connection_with_enhance_your_calm() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    // Streams that would stay open (event streams), each reset at once
    // (CVE-2023-44487): past the budget of 100, GOAWAY.
    for _ in 0..150 {
        let stream = client.get("/topics/reset/events", &[]);
        client.reset(stream, ErrorCode::CANCEL);
    }
    assert_eq!(goaway_and_close(&mut client), ErrorCode::ENHANCE_YOUR_CALM);
    let (last, _) = client.goaway.expect("GOAWAY");
    assert!(last < 150 * 2, "the GOAWAY came before the last stream: {last}");
    // Every stream the application saw is gone with the connection.
    wait_for_stats(&server, "no event stream left", |s| s.open_event_stream == 0);
    still_serving(&server);
    server.shutdown();
}

#[test]
fn streams_the_server_resets_for_their_bodies_spend_the_reset_budget() {
    let mut config = config();
    config.h2.max_resets = 5;
    let server = hub_with(config);
    let mut client = H2Client::connect(server.addr);
    // Each announces a body over the limit: answered 413 and reset at once,
    // which costs the server a stream as a client's reset does.
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/big"),
        (":authority", "localhost"),
        ("authorization", BEARER),
        ("content-length", "100000000"),
    ];
    for refused in 1..=5 {
        let s = client.open(&head, false);
        client.until(|c| c.goaway.is_some() || c.streams[&s].reset.is_some());
        assert_eq!(client.streams[&s].status(), Some(413));
        if client.goaway.is_some() {
            assert_eq!(refused, 5, "the budget ended the connection early");
        }
    }
    assert_eq!(goaway_and_close(&mut client), ErrorCode::ENHANCE_YOUR_CALM);
    still_serving(&server);
    server.shutdown();
}

#[test]
fn streams_that_end_normally_do_not_spend_the_reset_budget() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    // Two hundred requests answered, with a reset between each pair:
    // each finished stream gives back what a reset took.
    for _ in 0..200 {
        let stream = client.get("/healthz", &[]);
        assert_eq!(client.finish(stream).status(), Some(200));
        let events = client.get("/topics/calm/events", &[]);
        client.data_contains(events, b"retry:");
        client.reset(events, ErrorCode::CANCEL);
    }
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    assert_eq!(client.goaway, None);
    drop(client);
    server.shutdown();
}

#[test]
fn a_continuation_flood_ends_at_the_header_limit() {
    let mut config = config();
    config.max_request_head = 8 * 1024;
    let server = hub_with(config);
    let mut client = H2Client::connect(server.addr);
    // A HEADERS without END_HEADERS, then CONTINUATIONs of 1 KiB that
    // never end the block: the server stops at 8 KiB of it.
    let stream = client.next_stream_id();
    let block = client.block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/healthz"),
        (":authority", "localhost"),
    ]);
    let mut wire = Vec::new();
    let mut headers = tether_h2::frame::Headers::new(stream, &block);
    headers.end_stream = true;
    headers.end_headers = false;
    headers.encode(&mut wire, 16_384).expect("HEADERS");
    // A literal field without indexing, repeated: valid HPACK, never
    // decoded.
    let fragment = [&[0x00, 0x01, b'x', 0x7f, 0x80, 0x07][..], &[b'v'; 1018]].concat();
    for _ in 0..64 {
        tether_h2::frame::Continuation {
            stream_id: stream,
            fragment: &fragment,
            end_headers: false,
        }
        .encode(&mut wire, 16_384)
        .expect("CONTINUATION");
    }
    // The server may close before it has read all of it.
    let _ = client.stream.write_all(&wire);
    assert_eq!(goaway_and_close(&mut client), ErrorCode::ENHANCE_YOUR_CALM);
    assert!(!client.streams.contains_key(&stream), "no answer");

    // Empty CONTINUATIONs, which add nothing to the block, are counted
    // as empty frames.
    let mut client = H2Client::connect(server.addr);
    let stream = client.next_stream_id();
    let mut wire = Vec::new();
    let mut headers = tether_h2::frame::Headers::new(stream, &block);
    headers.end_headers = false;
    headers.encode(&mut wire, 16_384).expect("HEADERS");
    for _ in 0..200 {
        tether_h2::frame::Continuation {
            stream_id: stream,
            fragment: &[],
            end_headers: false,
        }
        .encode(&mut wire, 16_384)
        .expect("CONTINUATION");
    }
    let _ = client.stream.write_all(&wire);
    assert_eq!(goaway_and_close(&mut client), ErrorCode::ENHANCE_YOUR_CALM);
    still_serving(&server);
    server.shutdown();
}

#[test]
fn an_hpack_bomb_ends_the_connection_without_expanding() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    // One 4000-byte entry in the dynamic table, then 1000 one-byte
    // references to it: 4 MB of fields from a 5 KB block, past the
    // 16 KiB header list limit after four references.
    let stream = client.next_stream_id();
    let mut block = client.block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/healthz"),
        (":authority", "localhost"),
    ]);
    // Literal with incremental indexing, new name "x", a 4000-byte value
    // (length 4000 = 127 + 3873: 0x7f, then 3873 in 7-bit groups).
    block.extend_from_slice(&[0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e]);
    block.extend_from_slice(&[b'a'; 4000]);
    // Index 62: the newest dynamic entry.
    block.extend(std::iter::repeat_n(0x80 | 62, 1000));
    let mut wire = Vec::new();
    let mut headers = tether_h2::frame::Headers::new(stream, &block);
    headers.end_stream = true;
    headers.encode(&mut wire, 16_384).expect("HEADERS");
    let _ = client.stream.write_all(&wire);
    let code = goaway_and_close(&mut client);
    assert_eq!(code, ErrorCode::COMPRESSION_ERROR);
    assert!(!client.streams.contains_key(&stream), "no answer");
    still_serving(&server);
    server.shutdown();
}

#[test]
fn settings_and_ping_floods_end_the_connection() {
    let server = hub();
    for flood in ["PING", "SETTINGS"] {
        let mut client = H2Client::connect(server.addr);
        // Answered while the client takes its answers: no flood.
        let health = client.get("/healthz", &[]);
        assert_eq!(client.finish(health).status(), Some(200));
        // 1000 in one write, not reading the acknowledgements: past 64
        // queued, GOAWAY.
        let mut wire = Vec::new();
        for i in 0..1000u32 {
            match flood {
                "PING" => tether_h2::frame::Ping {
                    ack: false,
                    data: [0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8],
                }
                .encode(&mut wire),
                _ => tether_h2::frame::encode_settings(&mut wire, &[], 16_384).expect("SETTINGS"),
            }
        }
        let _ = client.stream.write_all(&wire);
        assert_eq!(
            goaway_and_close(&mut client),
            ErrorCode::ENHANCE_YOUR_CALM,
            "{flood}"
        );
    }
    still_serving(&server);
    server.shutdown();
}

#[test]
fn near_the_last_stream_identifier_the_server_sends_goaway_and_finishes() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let before = client.get("/healthz", &[]);
    assert_eq!(client.finish(before).status(), Some(200));
    // A stream within 2048 of 2^31-1: the request is answered, and a
    // graceful GOAWAY tells the client to go on over a new connection.
    let last = tether_h2::frame::MAX_STREAM_ID - 1000;
    client.skip_to(last);
    let stream = client.get("/healthz", &[]);
    assert_eq!(stream, last);
    assert_eq!(client.finish(stream).status(), Some(200));
    client.until(|c| c.goaway.is_some());
    assert_eq!(client.goaway, Some((last, ErrorCode::NO_ERROR)));
    // Nothing above it is served; the connection ends once the streams
    // are done.
    let above = client.get("/healthz", &[]);
    client.read_to_end();
    assert!(client.streams[&above].heads.is_empty());
    still_serving(&server);
    server.shutdown();
}

#[test]
fn te_trailers_is_accepted_and_any_other_te_is_malformed() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    // RFC 9113 §8.2.2: TE may be present, with "trailers" only.
    let path = "/topics/te";
    let ok = client.request_with_body(
        "POST",
        path,
        &[("authorization", BEARER), ("te", "trailers")],
        b"x",
    );
    assert_eq!(client.finish(ok).status(), Some(200));
    let bad = client.get(path, &[("te", "gzip")]);
    assert_eq!(client.finish(bad).reset, Some(ErrorCode::PROTOCOL_ERROR));
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    drop(client);
    server.shutdown();
}

#[test]
fn the_clients_goaway_leaves_the_connection_open() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    // With an unknown code, which must change nothing (RFC 9113 §7): it
    // refuses streams the server would open, and the server opens none.
    let mut wire = Vec::new();
    tether_h2::frame::GoAway {
        last_stream_id: 0,
        code: ErrorCode(0xff),
        debug_data: b"",
    }
    .encode(&mut wire, 16_384)
    .expect("GOAWAY");
    client.send(&wire);
    // Still served a moment later, by when a close would have come.
    std::thread::sleep(Duration::from_millis(200));
    let again = client.get("/healthz", &[]);
    assert_eq!(client.finish(again).status(), Some(200));
    assert!(!client.eof && client.goaway.is_none());
    drop(client);
    server.shutdown();
}

#[test]
fn the_hubs_metrics_count_http2_connections_and_streams() {
    let server = hub();
    let mut client = H2Client::connect(server.addr);
    let healthz = client.get("/healthz", &[]);
    assert_eq!(client.finish(healthz).status(), Some(200));
    // The metrics request is the connection's second stream.
    let metrics = client.get("/metrics", &[]);
    let response = client.finish(metrics);
    assert_eq!(response.status(), Some(200));
    let text = String::from_utf8(response.data).unwrap();
    for line in [
        "tether_h2_connections_total 1\n",
        "tether_h2_streams_total 2\n",
        "tether_h2_request_body_bytes 0\n",
        "tether_h2_refused_bodies_total 0\n",
        // HTTP/3 is off: its series are there, at zero.
        "tether_connections{transport=\"h3\"} 0\n",
        "tether_quic_handshakes_total 0\n",
        "tether_quic_datagrams_received_total 0\n",
        "tether_quic_connections_closed_total{reason=\"idle_timeout\"} 0\n",
        "tether_h3_slow_consumer_resets_total 0\n",
        "tether_h3_refused_bodies_total 0\n",
        "tether_quic_datagrams_forwarded_total 0\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    drop(client);
    server.shutdown();
}

#[test]
fn websocket_messages_in_progress_share_one_message_limit_per_connection() {
    const LIMIT: usize = 64 * 1024;
    let mut config = config();
    config.ws = config.ws.max_message_size(LIMIT);
    let server = TestServer::start(config, Echo::at("/echo"));
    let mut client = H2Client::connect(server.addr);
    let streams: Vec<u32> = (0..3).map(|_| client.websocket("/echo", &[])).collect();
    for &s in &streams {
        assert_eq!(client.head(s).status(), Some(200));
    }
    let mut sockets: Vec<Connection> = (0..3).map(|i| client_connection(i + 7)).collect();
    // Each stream sends all but the last 5 000 bytes of a 30 000-byte
    // message: each is within the limit, the third takes the three past it.
    let messages: Vec<Message> = (0..3u8).map(|i| Message::binary(vec![i; 30_000])).collect();
    let wires: Vec<Vec<u8>> = messages
        .iter()
        .zip(&mut sockets)
        .map(|(m, ws)| {
            let mut wire = Vec::new();
            ws.send(m, &mut wire).unwrap();
            wire
        })
        .collect();
    for (&s, wire) in streams.iter().zip(&wires) {
        client.data(s, &wire[..wire.len() - 5_000], false);
    }
    let third = streams[2];
    let mut pending = Vec::new();
    match ws_event(&mut client, third, &mut sockets[2], &mut pending) {
        Event::Close(frame) => {
            assert_eq!(frame.code, CloseCode::TOO_BIG);
            assert!(
                frame.reason.contains("messages in progress on the connection"),
                "{frame:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(client.finish(third).ended);
    // The first two end their messages and get them back whole.
    for i in 0..2 {
        let wire = &wires[i];
        client.data(streams[i], &wire[wire.len() - 5_000..], false);
        let mut pending = Vec::new();
        match ws_event(&mut client, streams[i], &mut sockets[i], &mut pending) {
            Event::Message(echoed) => assert_eq!(echoed.as_bytes(), messages[i].as_bytes()),
            other => panic!("{other:?}"),
        }
    }
    // One message of the whole limit still fits on the connection.
    let big = Message::binary(vec![9; LIMIT]);
    ws_send(&mut client, streams[0], &mut sockets[0], &big);
    let mut pending = Vec::new();
    match ws_event(&mut client, streams[0], &mut sockets[0], &mut pending) {
        Event::Message(echoed) => assert_eq!(echoed.as_bytes(), big.as_bytes()),
        other => panic!("{other:?}"),
    }
    drop(client);
    server.shutdown();
}
