//! A panic below the application (in the loop's work for one connection:
//! its TLS session, its reads and writes, its timers, a broadcast queued
//! for it, its HTTP/3 handling) costs that connection alone. No real
//! input should panic there, so the panics are injected at those points
//! (`inject`, `h3::requests::inject`, compiled only for
//! these tests) for the connection from one client port, while
//! bystanders on the same loop are served throughout.

use std::thread;
use std::time::{Duration, Instant};

use tether_testkit::h3::H3Client;
use tether_testkit::tls::{TlsConn, self_signed};
use tether_testkit::{HttpConn, SseClient, expect_reset, tcp};

use super::inject::{self, Point};
use crate::app::{App, ConnId, Ctx, Encoded, Reply, Request, Response, Route};
use crate::config::{Config, Handshake};
use crate::loops::{Handle, StatsSnapshot};
use crate::server::Server;

/// A page, event streams fed by `/publish`, and nothing else.
#[derive(Default)]
struct Feed {
    subscribers: Vec<ConnId>,
}

impl App for Feed {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/events" => Route::EventStream(()),
            "/publish" => Route::Handler(()),
            _ => Route::Page {
                content_type: "text/plain",
                body: b"fine\n",
            },
        }
    }

    fn on_subscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: &Request<'_>, _: Option<&str>) {
        self.subscribers.push(conn);
    }

    fn on_unsubscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: crate::app::CloseReason) {
        self.subscribers.retain(|c| *c != conn);
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, _: ConnId, _: &mut (), _: &Request<'_>, _: &[u8]) -> Reply {
        let event = tether_sse::Event::new().data("news");
        let encoded = Encoded::sse(&event).unwrap();
        ctx.send_encoded(self.subscribers.iter().copied(), &encoded);
        Reply::Now(Response::text(200, "published\n"))
    }
}

/// One loop on its own thread, plain HTTP on the main port, TLS and
/// HTTP/3 beside it.
struct Running {
    addr: std::net::SocketAddr,
    tls_addr: std::net::SocketAddr,
    quic_addr: std::net::SocketAddr,
    tls_client: std::sync::Arc<rustls::ClientConfig>,
    quic_client: std::sync::Arc<rustls::ClientConfig>,
    handle: Handle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start() -> Running {
        let certs = self_signed(b"http/1.1");
        let mut config = Config::new("127.0.0.1:0".parse().unwrap());
        config.raise_fd_limit = false;
        config.linger = Duration::from_millis(200);
        config.handshake_timeout = Duration::from_secs(1);
        config.tls = Some(
            crate::tls::server_config_from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap(),
        );
        config.tls_addr = Some("127.0.0.1:0".parse().unwrap());
        config.http3 = true;
        let server = Server::bind(config, Handshake::new(), Feed::default()).unwrap();
        let mut quic_client = (*certs.client).clone();
        quic_client.alpn_protocols = vec![b"h3".to_vec()];
        Running {
            addr: server.local_addr(),
            tls_addr: server.tls_addr().unwrap(),
            quic_addr: server.quic_addr().unwrap(),
            tls_client: certs.client,
            quic_client: std::sync::Arc::new(quic_client),
            handle: server.handle(),
            thread: Some(thread::spawn(move || server.run())),
        }
    }

    fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// The counters once `done` says so (a reset reaches the client
    /// before the loop has finished its turn).
    fn stats_until(&self, done: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = self.stats();
            if done(&stats) || Instant::now() > deadline {
                return stats;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let outcome = thread.join();
            if !thread::panicking() {
                assert!(matches!(outcome, Ok(Ok(()))), "the loop ended badly: {outcome:?}");
            }
        }
    }
}

fn page(conn: &mut HttpConn) {
    conn.request("GET", "/page", "");
    let response = conn.response();
    assert_eq!((response.status, &response.body[..]), (200, &b"fine\n"[..]));
}

fn port(conn: &HttpConn) -> u16 {
    conn.stream.local_addr().unwrap().port()
}

#[test]
fn a_panic_reading_writing_or_timing_one_connection_resets_it_alone() {
    let server = Running::start();
    let mut bystander = HttpConn::connect(server.addr);
    page(&mut bystander);
    let mut tls_bystander = TlsConn::connect(server.tls_addr, &server.tls_client);
    tls_bystander.request("GET", "/page");
    assert_eq!(tls_bystander.response().status, 200);

    // A read: as rustls panicking inside the TLS session's read would.
    let mut victim = HttpConn::connect(server.addr);
    inject::arm(Point::Read, port(&victim));
    victim.request("GET", "/page", "");
    victim.expect_reset();
    // The read buffer the panic was lent is back: were it left empty,
    // this read would take 0 bytes, an end of stream, and close it.
    page(&mut bystander);

    // The same over TLS.
    let mut tls_victim = TlsConn::connect(server.tls_addr, &server.tls_client);
    // A request first, so that the handshake is all read: the panic
    // comes inside the session's read of the next request.
    tls_victim.request("GET", "/page");
    assert_eq!(tls_victim.response().status, 200);
    inject::arm(Point::Read, tls_victim.local_addr().port());
    tls_victim.request("GET", "/page");
    tls_victim.expect_reset();
    tls_bystander.request("GET", "/page");
    assert_eq!(tls_bystander.response().status, 200);

    // A write.
    let mut victim = HttpConn::connect(server.addr);
    inject::arm(Point::Flush, port(&victim));
    victim.request("GET", "/page", "");
    victim.expect_reset();
    page(&mut bystander);

    // A timer (the first request head's deadline).
    let mut victim = tcp(server.addr);
    inject::arm(Point::Timer, victim.local_addr().unwrap().port());
    let stats = server.stats_until(|s| s.connection_panics == 4);
    assert_eq!(stats.connection_panics, 4, "{stats:?}");
    let _ = victim.set_read_timeout(Some(Duration::from_secs(10)));
    expect_reset(&mut victim, &mut Vec::new());

    page(&mut bystander);
    tls_bystander.request("GET", "/page");
    assert_eq!(tls_bystander.response().status, 200);
    let stats = server.stats();
    assert_eq!(stats.app_panics, 0);
    assert_eq!(stats.tls_errors, 0);
    assert_eq!(stats.open_http, 2, "the two bystanders");
}

#[test]
fn a_panic_queueing_a_broadcast_for_one_subscriber_costs_it_alone() {
    let server = Running::start();
    let mut subscribers: Vec<SseClient> = (0..4)
        .map(|_| SseClient::connect(server.addr, "/events", ""))
        .collect();
    for subscriber in &subscribers {
        assert_eq!(subscriber.response.status, 200);
    }
    let victim = subscribers.remove(1);
    inject::arm(Point::Push, victim.stream.local_addr().unwrap().port());
    let mut publisher = HttpConn::connect(server.addr);
    publisher.request("POST", "/publish", "Content-Length: 0\r\n");
    assert_eq!(publisher.response().status, 200);
    // The fan-out went on past the one that panicked: the others (before
    // it and after it) have the event.
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.next_event().data(), "news");
    }
    let mut victim = victim;
    expect_reset(&mut victim.stream, &mut Vec::new());
    let stats = server.stats_until(|s| s.connection_panics == 1);
    assert_eq!(stats.connection_panics, 1);
    assert_eq!(stats.open_event_stream, 3);
    // And the next broadcast reaches them too.
    publisher.request("POST", "/publish", "Content-Length: 0\r\n");
    assert_eq!(publisher.response().status, 200);
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.next_event().data(), "news");
    }
}

#[test]
fn a_panic_in_one_quic_connections_http3_handling_closes_it_alone() {
    let server = Running::start();
    let mut bystander = H3Client::connect(server.quic_addr, &server.quic_client);
    let mut victim = H3Client::connect(server.quic_addr, &server.quic_client);
    // Requests first, so that the control streams' news is in.
    for client in [&mut bystander, &mut victim] {
        let stream = client.get("/page");
        assert_eq!(client.response(stream), (200, b"fine\n".to_vec()));
    }
    // An event stream on the victim, which the application must be told
    // is gone.
    let events = victim.get("/events");
    victim.until("the event stream's head", |c| c.responses.contains_key(&events));
    assert_eq!(
        server.stats_until(|s| s.open_event_stream == 1).open_event_stream,
        1
    );
    inject::arm_h3(victim.local_addr().port());
    let _ = victim.get("/page");
    let why = victim.until_closed();
    // H3_INTERNAL_ERROR (0x102), the code the loop closed it with.
    assert!(why.ends_with(": 258"), "{why}");
    let stats = server.stats_until(|s| s.quic_panics == 1 && s.open_event_stream == 0);
    assert_eq!(stats.quic_panics, 1);
    assert_eq!(stats.open_event_stream, 0, "the event stream was ended");
    let stream = bystander.get("/page");
    assert_eq!(bystander.response(stream), (200, b"fine\n".to_vec()));
    assert_eq!(server.stats().connection_panics, 0);
    assert_eq!(server.stats().app_panics, 0);
}
