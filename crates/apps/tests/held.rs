//! Requests held for a decision made elsewhere (`Reply::Hold`): a
//! WebSocket upgrade or an event stream opens once the application lets
//! it go on (`Ctx::proceed`), or gets a real status when it is refused,
//! times out, or its client leaves first; over HTTP/1.1 and HTTP/2.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{HttpConn, SseClient, TestServer, WsClient, config};
use tether_server::{App, ConnId, Ctx, Message, Reply, Request, Response, Route};
use tether_ws::Event;

const HOLD_WS: u32 = 1;
const HOLD_SSE: u32 = 2;
const DECIDE: u32 = 3;
const COUNT: u32 = 4;
const LATER: u32 = 5;
const HOLD_TWICE: u32 = 6;
const REHOLD: u32 = 7;
const ECHO: u32 = 8;
const WS: u32 = 10;
const SSE: u32 = 11;

/// `/ws` and `/events` are held until `POST /decide` says `allow`,
/// `deny` (403) or `ok` (a 200 answer instead of the session); `/held`
/// counts the held requests; `/later` is deferred the usual way.
#[derive(Default)]
struct Gate {
    held: Vec<(ConnId, u32)>,
    /// The routes held requests were let go on as, for `on_proceed`.
    proceeding: Vec<(ConnId, u32)>,
    log: Arc<Mutex<Vec<String>>>,
}

impl App for Gate {
    type Post = ();
    type State = u32;

    fn route(&mut self, request: &Request<'_>) -> Route<u32> {
        match request.path() {
            "/ws" => Route::Handler(HOLD_WS),
            "/events" => Route::Handler(HOLD_SSE),
            "/decide" => Route::Handler(DECIDE),
            "/held" => Route::Handler(COUNT),
            "/later" => Route::Handler(LATER),
            "/twice" => Route::Handler(HOLD_TWICE),
            _ => Route::NotFound,
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        tag: &mut u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        match *tag {
            REHOLD => {
                // Asked again, now with what it needs: on to the upgrade.
                self.go_on(ctx, conn, Route::WebSocket(WS));
                Reply::Hold(Duration::from_secs(1))
            }
            ECHO => Reply::Now(Response::text(
                200,
                format!("{} {}", request.method(), String::from_utf8_lossy(body)),
            )),
            HOLD_WS | HOLD_SSE | HOLD_TWICE => {
                self.held.push((conn, *tag));
                let wait = if request.query_param("short").is_some() {
                    200
                } else {
                    10_000
                };
                Reply::Hold(Duration::from_millis(wait))
            }
            LATER => {
                // Not held: proceeding with it does nothing.
                self.go_on(ctx, conn, Route::EventStream(SSE));
                Reply::Later(Duration::from_millis(200))
            }
            COUNT => Reply::Now(Response::text(200, self.held.len().to_string())),
            _ => {
                let verdict = String::from_utf8_lossy(body).into_owned();
                for (held, tag) in std::mem::take(&mut self.held) {
                    match (verdict.as_str(), tag) {
                        ("allow", HOLD_WS) => self.go_on(ctx, held, Route::WebSocket(WS)),
                        ("allow", HOLD_TWICE) => self.go_on(ctx, held, Route::Handler(REHOLD)),
                        ("echo", _) => self.go_on(ctx, held, Route::Handler(ECHO)),
                        ("allow", _) => self.go_on(ctx, held, Route::EventStream(SSE)),
                        ("ok", _) => ctx.respond(held, Response::text(200, "fine\n")),
                        _ => ctx.respond(held, Response::text(403, "no\n")),
                    }
                    // A second word on the same request changes nothing
                    // (unless it was held again on the way, as /twice is).
                    if tag != HOLD_TWICE {
                        ctx.respond(held, Response::text(500, "too late\n"));
                    }
                }
                Reply::Now(Response::text(200, verdict))
            }
        }
    }

    fn on_proceed(&mut self, conn: ConnId, tag: &mut u32, _: &Route) {
        if let Some(at) = self.proceeding.iter().position(|&(c, _)| c == conn) {
            *tag = self.proceeding.swap_remove(at).1;
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut u32, request: &Request<'_>) {
        let name = request.query_param("name").unwrap_or_default();
        ctx.send(conn, &Message::text(format!("welcome {name}")));
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        _: &mut u32,
        _: &Request<'_>,
        last: Option<&str>,
    ) {
        let data = format!("hello {}", last.unwrap_or("-"));
        ctx.send_event(conn, &tether_sse::Event::new().data(&data))
            .unwrap();
    }

    fn on_request_timeout(&mut self, _: &mut Ctx<'_>, conn: ConnId, tag: &mut u32) -> Response {
        self.held.retain(|&(held, _)| held != conn);
        self.log.lock().unwrap().push(format!("timeout {tag}"));
        Response::text(503, "undecided\n").header("Retry-After", "1")
    }

    fn on_request_abandoned(&mut self, _: &mut Ctx<'_>, conn: ConnId, tag: &mut u32) {
        self.held.retain(|&(held, _)| held != conn);
        self.log.lock().unwrap().push(format!("abandoned {tag}"));
    }
}

impl Gate {
    /// Lets the held request `conn` go on as `route`, whose tag becomes
    /// its state.
    fn go_on(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, route: Route<u32>) {
        if let Route::Handler(tag) | Route::WebSocket(tag) | Route::EventStream(tag) = route {
            self.proceeding.push((conn, tag));
        }
        ctx.proceed(conn, route.map(|_| ()));
    }
}

fn gate() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let gate = Gate::default();
    let log = gate.log.clone();
    (TestServer::start(config(), gate), log)
}

fn held(server: &TestServer) -> usize {
    String::from_utf8_lossy(&common::get(server.addr, "/held").body)
        .parse()
        .unwrap()
}

fn wait_held(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while held(server) != n {
        assert!(Instant::now() < deadline, "never {n} held");
        thread::sleep(Duration::from_millis(5));
    }
}

fn decide(server: &TestServer, verdict: &str) {
    let answer = common::request(server.addr, "POST", "/decide", "", verdict.as_bytes());
    assert_eq!(answer.status, 200);
}

fn wait_log(log: &Mutex<Vec<String>>, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.lock().unwrap().iter().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "never logged {line}: {:?}",
            log.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_held_upgrade_opens_once_allowed() {
    let (server, _) = gate();
    let addr = server.addr;
    let client = thread::spawn(move || WsClient::connect(addr, "/ws?name=ann"));
    wait_held(&server, 1);
    assert!(!client.is_finished(), "no answer while held");
    decide(&server, "allow");
    let mut client = client.join().unwrap();
    match client.next_event() {
        Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("welcome ann")),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.stats().open_websocket, 1);
    server.shutdown();
}

#[test]
fn a_held_event_stream_starts_from_its_last_event_id_once_allowed() {
    let (server, _) = gate();
    let addr = server.addr;
    let client = thread::spawn(move || SseClient::connect(addr, "/events", "Last-Event-ID: 7\r\n"));
    wait_held(&server, 1);
    decide(&server, "allow");
    let mut client = client.join().unwrap();
    assert_eq!(client.next_event().data(), "hello 7");
    server.shutdown();
}

#[test]
fn a_refused_held_request_gets_its_status_and_the_connection_goes_on() {
    let (server, _) = gate();
    let mut conn = HttpConn::connect(server.addr);
    // Another request pipelined behind the held one waits its turn.
    conn.send(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\nGET /held HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_held(&server, 1);
    decide(&server, "deny");
    let refused = conn.response();
    assert_eq!((refused.status, &refused.body[..]), (403, &b"no\n"[..]));
    assert!(!refused.closes());
    let next = conn.response();
    assert_eq!((next.status, &next.body[..]), (200, &b"0"[..]));
    // And the connection takes a held upgrade in turn.
    conn.send(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_held(&server, 1);
    decide(&server, "ok");
    let answered = conn.response();
    assert_eq!((answered.status, &answered.body[..]), (200, &b"fine\n"[..]));
    server.shutdown();
}

#[test]
fn a_held_request_left_undecided_gets_the_applications_timeout_answer() {
    let (server, log) = gate();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/events?short", "");
    let answer = conn.response();
    assert_eq!((answer.status, answer.header("retry-after")), (503, Some("1")));
    wait_log(&log, &format!("timeout {HOLD_SSE}"));
    // Deciding afterwards reaches nothing.
    decide(&server, "allow");
    conn.request("GET", "/held", "");
    assert_eq!(conn.response().body, b"0");
    server.shutdown();
}

#[test]
fn a_client_gone_while_held_is_abandoned() {
    let (server, log) = gate();
    let conn = HttpConn::connect(server.addr);
    let mut conn = conn;
    conn.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    wait_held(&server, 1);
    drop(conn);
    wait_log(&log, &format!("abandoned {HOLD_WS}"));
    assert_eq!(held(&server), 0);
    server.shutdown();
}

#[test]
fn a_request_deferred_without_hold_does_not_proceed() {
    let (server, _) = gate();
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/later", "");
    // The application's proceed is ignored: the request times out as a
    // deferred one does, with its answer.
    assert_eq!(conn.response().status, 503);
    server.shutdown();
}

#[test]
fn held_streams_over_http2_open_or_are_refused() {
    let (server, _) = gate();
    let mut client = H2Client::connect(server.addr);
    let socket = client.websocket("/ws?name=bo", &[]);
    let events = client.get("/events", &[("last-event-id", "3")]);
    wait_held(&server, 2);
    assert!(client.streams.get(&socket).is_none_or(|s| s.heads.is_empty()));
    decide(&server, "allow");
    assert_eq!(client.head(socket).status(), Some(200));
    client.data_contains(socket, b"welcome bo");
    assert_eq!(client.head(events).status(), Some(200));
    client.data_contains(events, b"data: hello 3\n");
    // Refused: the status. A 200 for a WebSocket that does not open is
    // made a 400, as a 2xx would tell the client it is open.
    let refused = client.get("/events", &[]);
    let not_opened = client.websocket("/ws", &[]);
    wait_held(&server, 2);
    decide(&server, "ok");
    assert_eq!(client.finish(refused).status(), Some(200));
    assert_eq!(client.finish(not_opened).status(), Some(400));
    let denied = client.websocket("/ws", &[]);
    wait_held(&server, 1);
    decide(&server, "deny");
    assert_eq!(client.finish(denied).status(), Some(403));
    server.shutdown();
}

#[test]
fn a_held_request_goes_on_to_a_handler_with_its_body_or_from_there_to_an_upgrade() {
    let (server, _) = gate();
    let mut conn = HttpConn::connect(server.addr);
    conn.send(b"POST /twice HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    wait_held(&server, 1);
    decide(&server, "echo");
    let echoed = conn.response();
    assert_eq!((echoed.status, &echoed.body[..]), (200, &b"POST hello"[..]));
    let addr = server.addr;
    let client = thread::spawn(move || WsClient::connect(addr, "/twice?name=cy"));
    wait_held(&server, 1);
    decide(&server, "allow");
    let mut client = client.join().unwrap();
    match client.next_event() {
        Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("welcome cy")),
        other => panic!("{other:?}"),
    }
    // Over HTTP/2: the body kept with the stream, and the upgrade.
    let mut h2 = H2Client::connect(server.addr);
    let posted = h2.request_with_body("POST", "/twice", &[], b"over h2");
    wait_held(&server, 1);
    decide(&server, "echo");
    let answer = h2.finish(posted);
    assert_eq!(
        (answer.status(), &answer.data[..]),
        (Some(200), &b"POST over h2"[..])
    );
    let socket = h2.websocket("/twice?name=di", &[]);
    wait_held(&server, 1);
    decide(&server, "allow");
    assert_eq!(h2.head(socket).status(), Some(200));
    h2.data_contains(socket, b"welcome di");
    server.shutdown();
}
