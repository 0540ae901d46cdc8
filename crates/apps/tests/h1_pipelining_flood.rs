//! Requests pipelined in one read are answered only while the answers fit
//! the output limit: a client that sends many at once and reads none gets
//! a bounded number answered (the rest wait, unparsed), not every answer
//! queued; once it reads, every one arrives, in order.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{HttpConn, TestServer, config};
use tether_server::{App, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

const PAGE: usize = 64 * 1024;

/// `GET /page?N` answers a page of `PAGE` bytes that starts with `N`, and
/// counts the requests it answered.
struct Pages(Arc<AtomicUsize>);

impl App for Pages {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Handler(())
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: MessageRef<'_>) {}

    fn on_request(
        &mut self,
        _: &mut Ctx<'_>,
        _: ConnId,
        _: &mut (),
        request: &Request<'_>,
        _: &[u8],
    ) -> Reply {
        self.0.fetch_add(1, Ordering::SeqCst);
        let mut page = format!("{}\n", request.query().unwrap_or_default()).into_bytes();
        page.resize(PAGE, b'.');
        Reply::Now(Response::new(200, "text/plain", page))
    }
}

#[test]
fn pipelined_requests_in_one_read_wait_while_their_answers_are_not_read() {
    const REQUESTS: usize = 1000;
    let mut config = config();
    config.max_output = 64 * 1024;
    let answered = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(config, Pages(answered.clone()));
    let mut conn = HttpConn::connect(server.addr);
    // About 40 KB: the server reads it in one go; answered all at once,
    // that would be 64 MB of output queued for a client that reads none.
    let pipeline: Vec<u8> = (0..REQUESTS)
        .flat_map(|n| format!("GET /page?{n} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes())
        .collect();
    conn.send(&pipeline);
    thread::sleep(Duration::from_millis(500));
    // What the socket buffers take (a few MB on loopback) and the output
    // limit, and no more.
    let before_reading = answered.load(Ordering::SeqCst);
    assert!(
        before_reading < REQUESTS / 2,
        "{before_reading} of {REQUESTS} answered for a client that reads nothing"
    );
    for n in 0..REQUESTS {
        let response = conn.response();
        assert_eq!(response.status, 200, "request {n}");
        let number = response.body.split(|&b| b == b'\n').next().expect("a first line");
        assert_eq!(number, n.to_string().as_bytes(), "answers in request order");
        assert_eq!(response.body.len(), PAGE);
    }
    assert_eq!(answered.load(Ordering::SeqCst), REQUESTS);
    server.shutdown();
}
