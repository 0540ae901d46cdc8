//! A request's state ([`App::State`]): made in `route`, handed to every
//! later callback of the same request (never another's), and dropped
//! exactly once when the request is over, for each kind of request
//! (a handler answered now, one answered by its timeout, one whose client
//! went away, a WebSocket, an event stream, the head of an event stream),
//! over HTTP/1.1 and HTTP/2; and a session's state that the application
//! lets go ([`App::keeps_session_state`]), dropped once the session is
//! open, its later callbacks each lent a fresh default.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tether_testkit as common;

use common::h2::H2Client;
use common::{HttpConn, SseClient, TestServer, WsClient, config};
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};
use tether_ws::{CloseCode, OpCode};

/// What one state saw before it was dropped: its request, and the
/// callbacks it was handed to, in order.
type Ended = Arc<Mutex<Vec<(String, Vec<&'static str>)>>>;

/// A request's state: the callbacks it reached, reported when dropped.
#[derive(Default)]
struct Tracked {
    what: String,
    seen: Vec<&'static str>,
    ended: Ended,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.ended
            .lock()
            .unwrap()
            .push((std::mem::take(&mut self.what), seen));
    }
}

struct Tracker {
    ended: Ended,
    /// States made by `route`.
    made: Arc<AtomicUsize>,
    /// Requests to `/abandon` that have reached `on_request`.
    waiting: Arc<AtomicUsize>,
    /// It lets a session's state go once the session is open.
    lets_go: bool,
    /// The session callbacks that were lent a default state, in order.
    lent: Lent,
}

type Lent = Arc<Mutex<Vec<&'static str>>>;

impl Tracker {
    /// Notes `callback` in `seen`, and in `lent` if `state` is a fresh
    /// default one (made by no `route`, handed to no callback before).
    fn reached(&self, state: &mut Tracked, callback: &'static str) {
        if state.what.is_empty() && state.seen.is_empty() {
            self.lent.lock().unwrap().push(callback);
        }
        state.seen.push(callback);
    }
}

impl App for Tracker {
    type Post = ();
    type State = Tracked;

    fn route(&mut self, request: &Request<'_>) -> Route<Tracked> {
        let route = match request.path() {
            "/body" | "/held" | "/abandon" => Route::Handler(()),
            "/ws" => Route::WebSocket(()),
            "/events" => Route::EventStream(()),
            _ => return Route::NotFound,
        };
        self.made.fetch_add(1, Ordering::SeqCst);
        let what = format!("{} {}", request.method(), request.path());
        route.map(|()| Tracked {
            what,
            seen: vec!["route"],
            ended: self.ended.clone(),
        })
    }

    fn on_request(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _conn: ConnId,
        state: &mut Tracked,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        state.seen.push("on_request");
        match request.path() {
            "/held" => Reply::Later(Duration::ZERO),
            "/abandon" => {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                Reply::Later(Duration::from_secs(3600))
            }
            _ => Reply::Now(Response::text(200, format!("{} bytes\n", body.len()))),
        }
    }

    fn on_request_timeout(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, state: &mut Tracked) -> Response {
        state.seen.push("on_request_timeout");
        Response::text(504, "too late\n")
    }

    fn on_request_abandoned(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, state: &mut Tracked) {
        state.seen.push("on_request_abandoned");
    }

    fn on_open(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, state: &mut Tracked, _request: &Request<'_>) {
        state.seen.push("on_open");
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, state: &mut Tracked, message: MessageRef<'_>) {
        self.reached(state, "on_message");
        ctx.send(conn, message);
    }

    fn on_close(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, state: &mut Tracked, _reason: CloseReason) {
        self.reached(state, "on_close");
    }

    fn event_stream_headers(&mut self, state: &mut Tracked, _request: &Request<'_>) -> Vec<(String, String)> {
        state.seen.push("event_stream_headers");
        Vec::new()
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        state: &mut Tracked,
        _request: &Request<'_>,
        _last_event_id: Option<&str>,
    ) {
        state.seen.push("on_subscribe");
        ctx.send_event(conn, &tether_sse::Event::new().data("hello"))
            .unwrap();
    }

    fn on_unsubscribe(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _conn: ConnId,
        state: &mut Tracked,
        _reason: CloseReason,
    ) {
        self.reached(state, "on_unsubscribe");
    }

    fn keeps_session_state(&self, _state: &Tracked) -> bool {
        !self.lets_go
    }
}

struct Running {
    server: TestServer,
    ended: Ended,
    made: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
    lent: Lent,
}

fn start() -> Running {
    start_letting_go(false)
}

fn start_letting_go(lets_go: bool) -> Running {
    let (ended, made, waiting, lent) = (Ended::default(), Arc::default(), Arc::default(), Lent::default());
    let app = Tracker {
        ended: Arc::clone(&ended),
        made: Arc::clone(&made),
        waiting: Arc::clone(&waiting),
        lets_go,
        lent: Arc::clone(&lent),
    };
    Running {
        server: TestServer::start(config(), app),
        ended,
        made,
        waiting,
        lent,
    }
}

/// Waits (a bounded while) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

impl Running {
    /// Waits until the state of request `what` has been dropped, and
    /// checks that it was dropped once, having reached `seen`.
    fn dropped(&self, what: &str, seen: &[&str]) {
        wait_until(&format!("{what} dropped"), || {
            self.ended.lock().unwrap().iter().any(|(w, _)| w == what)
        });
        let ended = self.ended.lock().unwrap();
        let mine: Vec<_> = ended.iter().filter(|(w, _)| w == what).collect();
        assert_eq!(mine.len(), 1, "{what} dropped more than once: {ended:?}");
        assert_eq!(mine[0].1, seen, "{what}");
    }

    /// Every state made was dropped, each once.
    fn all_dropped(&self, expected: usize) {
        assert_eq!(self.made.load(Ordering::SeqCst), expected);
        assert_eq!(
            self.ended.lock().unwrap().len(),
            expected,
            "{:?}",
            self.ended.lock().unwrap()
        );
    }
}

/// Two messages echoed on `ws`, then its close handshake.
fn echo_twice_and_close(ws: &mut WsClient) {
    ws.send_text("one");
    assert_eq!(ws.recv_text(), "one");
    ws.send_text("two");
    assert_eq!(ws.recv_text(), "two");
    ws.close(CloseCode::NORMAL, "");
    let _ = ws.recv_close();
}

const ANSWERED: &[&str] = &["route", "on_request"];
const TIMED_OUT: &[&str] = &["route", "on_request", "on_request_timeout"];
const ABANDONED: &[&str] = &["route", "on_request", "on_request_abandoned"];
const STREAM_HEAD: &[&str] = &["route", "event_stream_headers"];
const STREAM: &[&str] = &["route", "event_stream_headers", "on_subscribe", "on_unsubscribe"];

#[test]
fn http1_states_reach_every_callback_of_their_request_and_drop_once() {
    let running = start();
    let addr = running.server.addr;

    let answer = common::request(addr, "POST", "/body", "", b"hello");
    assert_eq!((answer.status, &answer.body[..]), (200, &b"5 bytes\n"[..]));
    running.dropped("POST /body", ANSWERED);

    let mut conn = HttpConn::connect(addr);
    conn.request("GET", "/held", "");
    assert_eq!(conn.response().status, 504);
    running.dropped("GET /held", TIMED_OUT);
    // The head of an event stream opens none: its state goes at once.
    conn.request("HEAD", "/events", "");
    assert_eq!(conn.head_response().status, 200);
    running.dropped("HEAD /events", STREAM_HEAD);

    let mut gone = HttpConn::connect(addr);
    gone.request("GET", "/abandon", "");
    wait_until("/abandon waits", || running.waiting.load(Ordering::SeqCst) == 1);
    drop(gone);
    running.dropped("GET /abandon", ABANDONED);

    let mut ws = WsClient::connect(addr, "/ws");
    echo_twice_and_close(&mut ws);
    running.dropped(
        "GET /ws",
        &["route", "on_open", "on_message", "on_message", "on_close"],
    );

    let mut events = SseClient::connect(addr, "/events", "");
    assert_eq!(events.next_event().data(), "hello");
    drop(events);
    running.dropped("GET /events", STREAM);

    // A refused upgrade (no WebSocket handshake) opens nothing either.
    conn.request("GET", "/ws", "");
    assert_eq!(conn.response().status, 426);
    wait_until("the refused upgrade's state dropped", || {
        running
            .ended
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _)| w == "GET /ws")
            .count()
            == 2
    });
    running.all_dropped(7);
    running.server.shutdown();
}

#[test]
fn http2_states_reach_every_callback_of_their_stream_and_drop_once() {
    let running = start();
    let mut h2 = H2Client::connect(running.server.addr);

    let body = h2.request_with_body("POST", "/body", &[], b"hello");
    assert_eq!(h2.finish(body).status(), Some(200));
    running.dropped("POST /body", ANSWERED);

    let held = h2.get("/held", &[]);
    assert_eq!(h2.finish(held).status(), Some(504));
    running.dropped("GET /held", TIMED_OUT);

    let fields = [
        (":method", "HEAD"),
        (":scheme", "http"),
        (":path", "/events"),
        (":authority", "localhost"),
    ];
    let head = h2.open(&fields, true);
    assert_eq!(h2.head(head).status(), Some(200));
    running.dropped("HEAD /events", STREAM_HEAD);

    let abandoned = h2.get("/abandon", &[]);
    wait_until("/abandon waits", || running.waiting.load(Ordering::SeqCst) == 1);
    h2.reset(abandoned, tether_h2::ErrorCode::CANCEL);
    running.dropped("GET /abandon", ABANDONED);

    let ws = h2.websocket("/ws", &[]);
    assert_eq!(h2.head(ws).status(), Some(200));
    let mut frame = Vec::new();
    common::client_frame(&mut frame, true, OpCode::Text, b"one", [1, 2, 3, 4]);
    h2.data(ws, &frame, false);
    h2.data_contains(ws, b"one");
    h2.reset(ws, tether_h2::ErrorCode::CANCEL);
    running.dropped("GET /ws", &["route", "on_open", "on_message", "on_close"]);

    let events = h2.get("/events", &[]);
    h2.data_contains(events, b"data: hello\n");
    h2.reset(events, tether_h2::ErrorCode::CANCEL);
    running.dropped("GET /events", STREAM);

    running.all_dropped(6);
    drop(h2);
    running.server.shutdown();
}

/// A connection that goes away with a WebSocket and an event stream open
/// over HTTP/2 drops both states, after their last callbacks.
#[test]
fn http2_states_drop_with_their_connection() {
    let running = start();
    let mut h2 = H2Client::connect(running.server.addr);
    let ws = h2.websocket("/ws", &[]);
    assert_eq!(h2.head(ws).status(), Some(200));
    let events = h2.get("/events", &[]);
    h2.data_contains(events, b"data: hello\n");
    drop(h2);
    running.dropped("GET /ws", &["route", "on_open", "on_close"]);
    running.dropped("GET /events", STREAM);
    running.all_dropped(2);
    running.server.shutdown();
}

/// Once a session has opened, a state the application lets go is dropped
/// at once, over HTTP/1.1 and HTTP/2, for a WebSocket and an event
/// stream: having seen its route and its opening only, while the session
/// goes on. Each later callback of the session is lent a fresh default
/// state (none sees what another wrote), and the session works as before.
#[test]
fn a_state_let_go_is_dropped_once_its_session_is_open() {
    const OPENED: &[&str] = &["route", "on_open"];
    const SUBSCRIBED: &[&str] = &["route", "event_stream_headers", "on_subscribe"];
    let running = start_letting_go(true);
    let addr = running.server.addr;
    let lent_now = || std::mem::take(&mut *running.lent.lock().unwrap());

    let mut ws = WsClient::connect(addr, "/ws");
    running.dropped("GET /ws", OPENED);
    echo_twice_and_close(&mut ws);
    wait_until("on_close", || running.lent.lock().unwrap().contains(&"on_close"));
    assert_eq!(lent_now(), ["on_message", "on_message", "on_close"]);

    let mut events = SseClient::connect(addr, "/events", "");
    assert_eq!(events.next_event().data(), "hello");
    running.dropped("GET /events", SUBSCRIBED);
    drop(events);
    wait_until("on_unsubscribe", || !running.lent.lock().unwrap().is_empty());
    assert_eq!(lent_now(), ["on_unsubscribe"]);
    // A handler's state is not a session's: kept until it is answered.
    let answer = common::request(addr, "POST", "/body", "", b"hello");
    assert_eq!(answer.status, 200);
    running.dropped("POST /body", ANSWERED);

    let mut h2 = H2Client::connect(addr);
    let h2_ws = h2.websocket("/ws", &[]);
    assert_eq!(h2.head(h2_ws).status(), Some(200));
    let mut frame = Vec::new();
    common::client_frame(&mut frame, true, OpCode::Text, b"three", [1, 2, 3, 4]);
    h2.data(h2_ws, &frame, false);
    h2.data_contains(h2_ws, b"three");
    let h2_events = h2.get("/events", &[]);
    h2.data_contains(h2_events, b"data: hello\n");
    let ended = || running.ended.lock().unwrap().len();
    wait_until("both HTTP/2 states dropped", || ended() == 5);
    // Both still open: neither session has ended.
    let lent = running.lent.lock().unwrap().clone();
    assert_eq!(lent, ["on_message"], "{lent:?}");
    h2.reset(h2_ws, tether_h2::ErrorCode::CANCEL);
    h2.reset(h2_events, tether_h2::ErrorCode::CANCEL);
    wait_until("both HTTP/2 sessions ended", || {
        running.lent.lock().unwrap().len() == 3
    });
    let mut lent = lent_now();
    lent.sort_unstable();
    assert_eq!(lent, ["on_close", "on_message", "on_unsubscribe"]);
    let ended = running.ended.lock().unwrap().clone();
    let h2_seen: Vec<_> = ended[3..]
        .iter()
        .map(|(what, seen)| (what.as_str(), seen.as_slice()))
        .collect();
    assert!(
        h2_seen.contains(&("GET /ws", OPENED)) && h2_seen.contains(&("GET /events", SUBSCRIBED)),
        "{ended:?}"
    );
    running.all_dropped(5);
    drop(h2);
    running.server.shutdown();
}
