//! A panic that escapes an application callback closes that one
//! connection (500, or close code 1011), is counted, and leaves the loop
//! and every other connection serving.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use common::{HttpConn, SseClient, TestServer, WsClient, config, get};
use tether_server::{App, CloseCode, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

/// Panics wherever a request or message asks it to.
struct Fragile;

impl App for Fragile {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/route-panics" => panic!("route: {}", request.path()),
            "/ws" | "/ws-open-panics" => Route::WebSocket(()),
            "/events" => Route::EventStream(()),
            _ => Route::Handler(()),
        }
    }

    fn on_open(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId, _state: &mut (), request: &Request<'_>) {
        if request.path() == "/ws-open-panics" {
            panic!("on_open");
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _state: &mut (), message: MessageRef<'_>) {
        if message.as_text() == Some("panic") {
            let empty: Vec<u8> = Vec::new();
            // An out-of-bounds index, as a careless handler might.
            let _ = empty[message.as_bytes().len()];
        }
        ctx.send(conn, message);
    }

    fn on_subscribe(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _conn: ConnId,
        _state: &mut (),
        request: &Request<'_>,
        _last_event_id: Option<&str>,
    ) {
        if request.query() == Some("panic") {
            panic!("on_subscribe");
        }
    }

    fn on_request(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _conn: ConnId,
        _state: &mut (),
        request: &Request<'_>,
        _body: &[u8],
    ) -> Reply {
        if request.path() == "/handler-panics" {
            // What the long poll's `?timeout=1e20` used to do.
            let _ = std::time::Duration::from_secs_f64(1e20);
        }
        Reply::Now(Response::text(200, "fine\n"))
    }
}

#[test]
fn a_panic_in_a_callback_closes_only_its_connection() {
    let server = TestServer::start(config(), Fragile);
    let mut bystander = WsClient::connect(server.addr, "/ws");
    let mut stream = SseClient::connect(server.addr, "/events", "");
    assert_eq!(stream.response.status, 200);

    for path in ["/route-panics", "/handler-panics"] {
        let mut conn = HttpConn::connect(server.addr);
        conn.request("GET", path, "");
        let response = conn.response();
        assert_eq!(response.status, 500, "{path}");
        assert!(response.closes());
        conn.expect_eof();
    }

    // To HEAD, the 500 is a head alone (RFC 9110 section 9.3.2).
    for path in ["/route-panics", "/handler-panics"] {
        let mut conn = HttpConn::connect(server.addr);
        conn.request("HEAD", path, "");
        let response = conn.head_response();
        assert_eq!(response.status, 500, "HEAD {path}");
        assert!(response.closes());
        conn.expect_eof();
    }

    let mut victim = WsClient::connect(server.addr, "/ws");
    victim.send_text("panic");
    assert_eq!(victim.recv_close().code, CloseCode::INTERNAL_ERROR);

    let mut opened = WsClient::connect(server.addr, "/ws-open-panics");
    assert_eq!(opened.recv_close().code, CloseCode::INTERNAL_ERROR);

    let mut broken_stream = SseClient::connect(server.addr, "/events?panic", "");
    assert_eq!(broken_stream.response.status, 200);
    assert!(broken_stream.read_to_end().is_empty());

    // Everyone else is still served.
    bystander.send_text("still here");
    assert_eq!(bystander.recv_text(), "still here");
    assert_eq!(get(server.addr, "/fine").status, 200);
    let stats = server.stats();
    assert_eq!(stats.app_panics, 7);
    drop((bystander, victim, opened, broken_stream));
    server.begin_shutdown();
    // The other stream was open all along: it ends only now.
    assert!(stream.read_to_end().is_empty());
    assert!(stream.is_ended());
    server.join();
}
