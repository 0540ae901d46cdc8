//! A handler's state made of the head of a request whose body is still
//! to come ([`App::before_body`], [`BeforeBody::Handler`]): kept by the
//! server while the body arrives, handed to `on_request` with it (no
//! `route` for that request), and dropped once, also when the client
//! goes away before its body is whole; over HTTP/1.1 and HTTP/2.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tether_testkit as common;

use common::h2::H2Client;
use common::{HttpConn, TestServer, config};
use tether_server::{App, BeforeBody, ConnId, Ctx, Reply, Request, Response, Route};

/// The callbacks each state reached, reported when it is dropped.
type Ended = Arc<Mutex<Vec<Vec<&'static str>>>>;

#[derive(Default)]
struct Kept {
    seen: Vec<&'static str>,
    ended: Ended,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.ended.lock().unwrap().push(seen);
    }
}

struct Keeper {
    ended: Ended,
    /// How many times `route` was asked.
    routed: Arc<AtomicUsize>,
    /// How many heads `before_body` saw.
    heads: Arc<AtomicUsize>,
}

impl App for Keeper {
    type Post = ();
    type State = Kept;

    fn route(&mut self, _request: &Request<'_>) -> Route<Kept> {
        self.routed.fetch_add(1, Ordering::SeqCst);
        Route::Handler(Kept {
            seen: vec!["route"],
            ended: Arc::clone(&self.ended),
        })
    }

    fn before_body(&mut self, _ctx: &mut Ctx<'_>, request: &Request<'_>) -> BeforeBody<Kept> {
        self.heads.fetch_add(1, Ordering::SeqCst);
        match request.path() {
            // The server's own paths among them: its answers must win.
            "/kept" | "/healthz" => BeforeBody::Handler(Kept {
                seen: vec!["before_body"],
                ended: Arc::clone(&self.ended),
            }),
            "/refused" | "/readyz" => BeforeBody::Refuse(Response::text(403, "no\n")),
            _ => BeforeBody::Read,
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        _conn: ConnId,
        state: &mut Kept,
        _request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        state.seen.push("on_request");
        // The server's count of requests so far, this one included: a
        // request whose route was made before its body is counted too.
        let requests = ctx.stats().http_requests;
        Reply::Now(Response::text(
            200,
            format!("{} bytes, request {requests}\n", body.len()),
        ))
    }
}

struct Running {
    server: TestServer,
    ended: Ended,
    routed: Arc<AtomicUsize>,
    heads: Arc<AtomicUsize>,
}

fn start() -> Running {
    let (ended, routed, heads) = (Ended::default(), Arc::default(), Arc::default());
    let app = Keeper {
        ended: Arc::clone(&ended),
        routed: Arc::clone(&routed),
        heads: Arc::clone(&heads),
    };
    Running {
        server: TestServer::start(config(), app),
        ended,
        routed,
        heads,
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
    /// Waits until `count` states have been dropped; they are `ended`.
    fn ended(&self, count: usize) -> Vec<Vec<&'static str>> {
        wait_until(&format!("{count} states dropped"), || {
            self.ended.lock().unwrap().len() >= count
        });
        self.ended.lock().unwrap().clone()
    }

    /// Waits until `before_body` has seen `count` heads.
    fn heads(&self, count: usize) {
        wait_until(&format!("{count} heads seen"), || {
            self.heads.load(Ordering::SeqCst) >= count
        });
    }
}

const KEPT: &[&str] = &["before_body", "on_request"];

#[test]
fn http1_a_state_made_of_the_head_reaches_on_request_and_drops_once() {
    let running = start();
    let addr = running.server.addr;

    // The head first, the body in a later write: the state made of the
    // head is the one `on_request` gets, and `route` is not asked.
    let mut conn = HttpConn::connect(addr);
    conn.send(b"POST /kept HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\n");
    running.heads(1);
    conn.send(b"hello");
    let answer = conn.response();
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"5 bytes, request 1\n"[..])
    );
    assert_eq!(running.ended(1), vec![KEPT.to_vec()]);
    assert_eq!(running.routed.load(Ordering::SeqCst), 0);

    // The next request on the connection, its body whole with its head,
    // is routed as usual: nothing of the last one is left over.
    conn.send(b"POST /kept HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi");
    let answer = conn.response();
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"2 bytes, request 2\n"[..])
    );
    assert_eq!(running.ended(2)[1], vec!["route", "on_request"]);
    assert_eq!(running.routed.load(Ordering::SeqCst), 1);

    // A client that goes away before its body: the state is dropped,
    // no callback owed.
    let mut gone = TcpStream::connect(addr).unwrap();
    gone.write_all(b"POST /kept HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhe")
        .unwrap();
    running.heads(2);
    drop(gone);
    assert_eq!(running.ended(3)[2], vec!["before_body"]);

    // A refusal made of the head: answered, the body unread, and no
    // state made.
    let mut refused = HttpConn::connect(addr);
    refused.send(b"POST /refused HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(refused.response().status, 403);
    running.server.shutdown();
    assert_eq!(running.ended.lock().unwrap().len(), 3);
    assert_eq!(running.routed.load(Ordering::SeqCst), 1);
}

#[test]
fn http2_a_state_made_of_the_head_reaches_on_request_and_drops_once() {
    let running = start();
    let mut h2 = H2Client::connect(running.server.addr);
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "test"),
        (":path", "/kept"),
    ];

    // HEADERS without END_STREAM, then the body.
    let stream = h2.open(&fields, false);
    running.heads(1);
    h2.data(stream, b"hello", true);
    let answer = h2.finish(stream);
    assert_eq!(
        (answer.status(), &answer.data[..]),
        (Some(200), &b"5 bytes, request 1\n"[..])
    );
    assert_eq!(running.ended(1), vec![KEPT.to_vec()]);
    assert_eq!(running.routed.load(Ordering::SeqCst), 0);

    // A stream reset before its body is whole.
    let stream = h2.open(&fields, false);
    h2.data(stream, b"he", false);
    h2.reset(stream, tether_h2::ErrorCode::CANCEL);
    assert_eq!(running.ended(2)[1], vec!["before_body"]);

    // A connection gone with a body under way.
    let stream = h2.open(&fields, false);
    h2.data(stream, b"he", false);
    drop(h2);
    assert_eq!(running.ended(3)[2], vec!["before_body"]);
    assert_eq!(running.routed.load(Ordering::SeqCst), 0);
    running.server.shutdown();
}

/// `/healthz` and `/readyz` are the server's to answer, over HTTP/1.1 and
/// HTTP/2, even for an application that would keep or refuse every such
/// head: it is asked nothing of them, and no state is made.
#[test]
fn the_servers_own_paths_are_answered_whatever_before_body_would_say() {
    let running = start();
    let mut conn = HttpConn::connect(running.server.addr);
    for (path, body) in [
        ("/healthz", &b"ok\n"[..]),
        ("/readyz", b"ready\n[+] draining: no\n[+] app: ready\n"),
    ] {
        // The head alone, which waits for `100 Continue` before its body:
        // the head is seen with the body still to come.
        conn.request("GET", path, "Content-Length: 2\r\nExpect: 100-continue\r\n");
        assert_eq!(conn.head_response().status, 100, "{path}");
        conn.send(b"hi");
        let answer = conn.response();
        assert_eq!((answer.status, &answer.body[..]), (200, body), "{path}");
    }

    let mut h2 = H2Client::connect(running.server.addr);
    for (path, body) in [
        ("/healthz", &b"ok\n"[..]),
        ("/readyz", b"ready\n[+] draining: no\n[+] app: ready\n"),
    ] {
        let fields = [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "test"),
            (":path", path),
        ];
        let stream = h2.open(&fields, false);
        h2.data(stream, b"hi", true);
        let answer = h2.finish(stream);
        assert_eq!((answer.status(), &answer.data[..]), (Some(200), body));
    }
    running.server.shutdown();
    assert_eq!(running.heads.load(Ordering::SeqCst), 0);
    assert_eq!(running.routed.load(Ordering::SeqCst), 0);
    assert!(running.ended.lock().unwrap().is_empty());
}
