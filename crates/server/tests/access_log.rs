//! The access log ([`Config::access_log`]): one entry per answered
//! request, from the one dispatch every HTTP version goes through, with
//! what was answered (status, body bytes), the HTTP version and the
//! transport; a deferred answer reported when it is given (here, at its
//! timeout), a WebSocket and an event stream as they open.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_testkit as common;

use common::h2::H2Client;
use common::{HttpConn, SseClient, TestServer, WsClient, config};
use tether_server::{AccessLog, App, ConnId, Ctx, Opened, Reply, Request, Response, Route};

struct Answers;

const HANDLER: u32 = 1;
const LATER: u32 = 2;

impl App for Answers {
    type Post = ();
    type State = u32;

    fn route(&mut self, request: &Request<'_>) -> Route<u32> {
        match request.path() {
            "/ws" => Route::WebSocket(0),
            "/events" => Route::EventStream(0),
            "/later" => Route::Handler(LATER),
            "/missing" => Route::NotFound,
            _ => Route::Handler(HANDLER),
        }
    }

    fn on_request(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _conn: ConnId,
        tag: &mut u32,
        _request: &Request<'_>,
        _body: &[u8],
    ) -> Reply {
        match *tag {
            // Due at once: answered by its timeout on the loop's next turn.
            LATER => Reply::Later(Duration::ZERO),
            _ => Reply::Now(Response::text(201, "fine\n")),
        }
    }

    fn on_request_timeout(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, _tag: &mut u32) -> Response {
        Response::text(504, "too late\n")
    }
}

/// What the tests look at in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    line: String,
    status: u16,
    bytes: u64,
    version: &'static str,
    transport: &'static str,
    opened: Opened,
}

fn start() -> (TestServer, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = config();
    let log = seen.clone();
    config.access_log = Some(AccessLog::new(move |entry| {
        let query = entry.query.map(|q| format!("?{q}")).unwrap_or_default();
        log.lock().unwrap().push(Seen {
            line: format!("{} {}{query}", entry.method, entry.path),
            status: entry.status,
            bytes: entry.bytes,
            version: entry.version.as_str(),
            transport: entry.transport.as_str(),
            opened: entry.opened,
        });
    }));
    (TestServer::start(config, Answers), seen)
}

fn seen(line: &str, status: u16, bytes: usize, version: &'static str, opened: Opened) -> Seen {
    Seen {
        line: line.to_owned(),
        status,
        bytes: bytes as u64,
        version,
        transport: "tcp",
        opened,
    }
}

#[test]
fn http1_requests_are_reported_once_answered() {
    let (server, log) = start();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/now?a=1", "");
    assert_eq!(conn.response().status, 201);
    conn.request("HEAD", "/now", "");
    assert_eq!(conn.head_response().status, 201);
    conn.request("GET", "/missing", "");
    assert_eq!(conn.response().status, 404);
    conn.request("GET", "/later", "");
    assert_eq!(conn.response().status, 504);
    let _ws = WsClient::connect(server.addr, "/ws");
    let _events = SseClient::connect(server.addr, "/events", "");

    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            seen("GET /now?a=1", 201, 5, "1.1", Opened::Nothing),
            seen("HEAD /now", 201, 0, "1.1", Opened::Nothing),
            seen(
                "GET /missing",
                404,
                "404 Not Found\n".len(),
                "1.1",
                Opened::Nothing
            ),
            seen("GET /later", 504, 9, "1.1", Opened::Nothing),
            seen("GET /ws", 101, 0, "1.1", Opened::WebSocket),
            seen("GET /events", 200, 0, "1.1", Opened::EventStream),
        ]
    );
}

#[test]
fn http2_streams_are_reported_with_their_version() {
    let (server, log) = start();
    let mut h2 = H2Client::connect(server.addr);
    let now = h2.get("/now", &[]);
    assert_eq!(h2.finish(now).status(), Some(201));
    let later = h2.get("/later", &[]);
    assert_eq!(h2.finish(later).status(), Some(504));
    let events = h2.get("/events", &[]);
    h2.until(|c| c.streams.get(&events).is_some_and(|s| !s.heads.is_empty()));
    // Not an extended CONNECT: 426, as the HTTP/2 session answers it.
    let ws = h2.get("/ws", &[]);
    assert_eq!(h2.finish(ws).status(), Some(426));

    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            seen("GET /now", 201, 5, "2", Opened::Nothing),
            seen("GET /later", 504, 9, "2", Opened::Nothing),
            seen("GET /events", 200, 0, "2", Opened::EventStream),
            seen(
                "GET /ws",
                426,
                "426 Upgrade Required\n".len(),
                "2",
                Opened::Nothing
            ),
        ]
    );
}

/// Over TLS the transport is `tls`; over QUIC, `quic` and HTTP/3, a
/// deferred answer included (given at its timeout by the QUIC endpoint).
#[cfg(feature = "tls")]
#[test]
fn tls_and_http3_are_reported_with_their_transport() {
    use tether_server::{Handshake, Server, tls};
    use tether_testkit::h3::H3Client;
    use tether_testkit::tls::{TlsConn, self_signed};

    let certs = self_signed(b"http/1.1");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = config();
    let log = seen.clone();
    config.access_log = Some(AccessLog::new(move |entry| {
        log.lock().unwrap().push((
            entry.path.to_owned(),
            entry.status,
            entry.transport.as_str(),
            entry.version.as_str(),
        ));
    }));
    config.tls =
        Some(tls::server_config_from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap());
    config.tls_addr = Some("127.0.0.1:0".parse().unwrap());
    config.http3 = true;
    let server = Server::bind(config, Handshake::new(), Answers).unwrap();
    let (tls_addr, quic_addr) = (server.tls_addr().unwrap(), server.quic_addr().unwrap());
    let handle = server.handle();
    let running = std::thread::spawn(move || server.run());
    let mut quic_tls = (*certs.client).clone();
    quic_tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic_tls = Arc::new(quic_tls);

    let mut https = TlsConn::connect(tls_addr, &certs.client);
    https.request("GET", "/now");
    assert_eq!(https.response().status, 201);
    let mut h3 = H3Client::connect(quic_addr, &quic_tls);
    let now = h3.get("/now");
    assert_eq!(h3.response(now), (201, b"fine\n".to_vec()));
    let later = h3.get("/later");
    assert_eq!(h3.response(later).0, 504);

    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("/now".to_owned(), 201, "tls", "1.1"),
            ("/now".to_owned(), 201, "quic", "3"),
            ("/later".to_owned(), 504, "quic", "3"),
        ]
    );
    handle.shutdown();
    running.join().unwrap().unwrap();
}
