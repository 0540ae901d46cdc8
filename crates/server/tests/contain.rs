//! A fault costs one connection at most. A route that panics on purpose,
//! asked for over HTTP/1.1, HTTP/2 (h2c), HTTP/3, TLS and as a WebSocket
//! message, costs that one request or WebSocket: the loop (one loop, so
//! that every bystander shares it) goes on, bystanders of every kind see
//! nothing, and `tether_panics_total{where="app"}` counts each. And a
//! loop that dies anyway (a panic in the loop's own code, outside the
//! work for any one connection) stops the other loops of its cluster,
//! whose `run` returns the error.
//!
//! The panics below the application (in the TLS session, the sessions,
//! the QUIC endpoint) cannot be asked for from outside: the unit tests
//! inject them (`src/server/fault_tests.rs`).
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::cell::Cell;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tether_server::{
    App, CloseCode, Cluster, ConnId, Ctx, Encoded, Handshake, MessageRef, Reply, Request, Response, Route,
    Server, tls,
};
use tether_testkit::h2::H2Client;
use tether_testkit::h3::H3Client;
use tether_testkit::tls::{TlsConn, self_signed};
use tether_testkit::{HttpConn, SseClient, WsClient, config};

/// Pages, a route that panics, a WebSocket echo that panics on "panic",
/// and event streams fed by `/publish`.
#[derive(Default)]
struct Fragile {
    subscribers: Vec<ConnId>,
}

impl App for Fragile {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/panic" => panic!("a route that panics on purpose"),
            "/ws" => Route::WebSocket(()),
            "/events" => Route::EventStream(()),
            "/publish" => Route::Handler(()),
            _ => Route::Page {
                content_type: "text/plain",
                body: b"fine\n",
            },
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        if message.as_text() == Some("panic") {
            panic!("a WebSocket message that panics on purpose");
        }
        ctx.send(conn, message);
    }

    fn on_subscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: &Request<'_>, _: Option<&str>) {
        self.subscribers.push(conn);
    }

    fn on_unsubscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: tether_server::CloseReason) {
        self.subscribers.retain(|c| *c != conn);
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, _: ConnId, _: &mut (), _: &Request<'_>, _: &[u8]) -> Reply {
        let encoded = Encoded::sse(&tether_sse::Event::new().data("news")).unwrap();
        ctx.send_encoded(self.subscribers.iter().copied(), &encoded);
        Reply::Now(Response::text(200, "published\n"))
    }
}

fn page(conn: &mut HttpConn) {
    conn.request("GET", "/page", "");
    let response = conn.response();
    assert_eq!((response.status, &response.body[..]), (200, &b"fine\n"[..]));
}

fn h2_page(client: &mut H2Client) {
    let stream = client.get("/page", &[]);
    let state = client.finish(stream);
    assert_eq!((state.status(), &state.data[..]), (Some(200), &b"fine\n"[..]));
}

#[test]
fn a_panicking_route_costs_one_request_over_every_transport() {
    let certs = self_signed(b"http/1.1");
    let mut config = config();
    config.tls =
        Some(tls::server_config_from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap());
    config.tls_addr = Some("127.0.0.1:0".parse().unwrap());
    config.http3 = true;
    let server = Server::bind(config, Handshake::new(), Fragile::default()).unwrap();
    let (addr, tls_addr, quic_addr) = (
        server.local_addr(),
        server.tls_addr().unwrap(),
        server.quic_addr().unwrap(),
    );
    let handle = server.handle();
    let running = thread::spawn(move || server.run());
    let mut quic_tls = (*certs.client).clone();
    quic_tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic_tls = std::sync::Arc::new(quic_tls);

    // Bystanders of every kind, on the one loop.
    let mut http = HttpConn::connect(addr);
    page(&mut http);
    let mut ws = WsClient::connect(addr, "/ws");
    let mut events = SseClient::connect(addr, "/events", "");
    assert_eq!(events.response.status, 200);
    let mut h2 = H2Client::connect(addr);
    h2_page(&mut h2);
    let mut h3 = H3Client::connect(quic_addr, &quic_tls);
    let stream = h3.get("/page");
    assert_eq!(h3.response(stream), (200, b"fine\n".to_vec()));
    let mut https = TlsConn::connect(tls_addr, &certs.client);
    https.request("GET", "/page");
    assert_eq!(https.response().status, 200);

    // HTTP/1.1: a 500, and the connection closes.
    let mut victim = HttpConn::connect(addr);
    victim.request("GET", "/panic", "");
    let response = victim.response();
    assert_eq!(response.status, 500);
    assert!(response.closes());
    victim.expect_eof();

    // HTTP/2: a 500 on the stream; the connection's other streams go on.
    let mut victim = H2Client::connect(addr);
    let stream = victim.get("/panic", &[]);
    assert_eq!(victim.finish(stream).status(), Some(500));
    h2_page(&mut victim);

    // HTTP/3: the same.
    let mut victim = H3Client::connect(quic_addr, &quic_tls);
    let stream = victim.get("/panic");
    assert_eq!(victim.response(stream).0, 500);
    let stream = victim.get("/page");
    assert_eq!(victim.response(stream), (200, b"fine\n".to_vec()));

    // TLS: a 500.
    let mut victim = TlsConn::connect(tls_addr, &certs.client);
    victim.request("GET", "/panic");
    assert_eq!(victim.response().status, 500);

    // A WebSocket: closed with 1011.
    let mut victim = WsClient::connect(addr, "/ws");
    victim.send_text("panic");
    assert_eq!(victim.recv_close().code, CloseCode::INTERNAL_ERROR);

    // Every bystander is served as before, and was sent nothing else.
    page(&mut http);
    ws.send_text("still here");
    assert_eq!(ws.recv_text(), "still here");
    h2_page(&mut h2);
    let stream = h3.get("/page");
    assert_eq!(h3.response(stream), (200, b"fine\n".to_vec()));
    assert!(h3.closed.is_none());
    https.request("GET", "/page");
    assert_eq!(https.response().status, 200);
    http.request("POST", "/publish", "Content-Length: 0\r\n");
    assert_eq!(http.response().status, 200);
    assert_eq!(events.next_event().data(), "news");

    // The WebSocket victim is gone once its client has gone too.
    drop(victim);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handle.stats().open_websocket > 1 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    let stats = handle.stats();
    assert_eq!(stats.app_panics, 5, "{stats:?}");
    assert_eq!(stats.connection_panics, 0);
    assert_eq!(stats.quic_panics, 0);
    assert_eq!(stats.open_websocket, 1, "the bystander's");
    assert_eq!(stats.open_event_stream, 1, "the bystander's");

    drop((http, ws, events, h2, h3, https));
    handle.shutdown();
    running.join().unwrap().unwrap();
}

/// An application whose `tick_interval`, which the loop reads outside
/// any guard, panics on loop 1 the second time it is read: a panic in
/// the loop's own code.
struct Doomed {
    index: usize,
    asked: Cell<u32>,
}

impl App for Doomed {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: b"fine\n",
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.asked.set(self.asked.get() + 1);
        if self.index == 1 && self.asked.get() > 1 {
            panic!("loop 1 dies on purpose");
        }
        Some(Duration::from_millis(50))
    }
}

#[test]
fn a_loop_that_dies_stops_the_others_and_the_cluster_returns_its_error() {
    let mut config = config();
    config.shutdown_timeout = Duration::from_secs(30);
    let cluster = Cluster::bind(config, Handshake::new(), 2, |index| Doomed {
        index,
        asked: Cell::new(0),
    })
    .unwrap();
    let addr = cluster.local_addr();
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(cluster.run()));
    // Well within the shutdown timeout: the dead loop says it has
    // drained, so the others do not wait for it.
    let outcome = result
        .recv_timeout(Duration::from_secs(10))
        .expect("the cluster's run returns");
    let error = outcome.expect_err("a loop died");
    let message = error.to_string();
    assert!(message.contains("event loop 1 panicked"), "{message}");
    assert!(message.contains("loop 1 dies on purpose"), "{message}");
    // Every loop has stopped: nothing listens on the port any more.
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}
