//! Server-Sent Events end to end: the response head, the retry hint,
//! heartbeats, and the clock feed with Last-Event-ID resumption.

use tether_testkit as common;

use std::thread;
use std::time::Duration;

use common::{SseClient, TestServer, config};
use tether_apps::{Clock, Demo};
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Request, Route};
use tether_sse::{Item, MessageEvent};

/// `apps::Clock` on `/clock`, ticking fast enough for a test.
struct FastClock(Clock);

impl App for FastClock {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/clock" => Route::EventStream(()),
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: MessageRef<'_>) {}

    fn event_stream_headers(&mut self, _: &mut (), _: &Request<'_>) -> Vec<(String, String)> {
        vec![
            ("X-Clock".into(), "fast".into()),
            // Neither may split the head.
            ("X-Split".into(), "a\r\nInjected: yes".into()),
            ("Bad Name".into(), "x".into()),
        ]
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        _: &mut (),
        _: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        self.0.subscribe(ctx, conn, last_event_id);
    }

    fn on_unsubscribe(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: CloseReason) {
        self.0.unsubscribe(conn);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.0.tick(ctx);
    }
}

fn assert_tick(event: &MessageEvent, n: u64) {
    assert_eq!(event.event_type(), "tick", "{event:?}");
    assert_eq!(event.last_event_id(), n.to_string(), "{event:?}");
    assert!(
        event.data().starts_with(&format!("{{\"n\":{n},\"unix_ms\":")),
        "{event:?}"
    );
}

#[test]
fn an_event_stream_has_the_right_head_and_starts_with_retry() {
    let mut config = config();
    config.sse_retry = Duration::from_millis(1500);
    let server = TestServer::start(config, Demo::new());
    let mut stream = SseClient::connect(server.addr, "/topics/x/events", "");
    let head = &stream.response;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("x-accel-buffering"), Some("no"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(stream.next_item(), Some(Item::Retry(1500)));
    assert!(stream.raw.starts_with(b"retry: 1500\n"));
    drop(stream);
    server.shutdown();
}

#[test]
fn a_silent_stream_gets_heartbeat_comments() {
    let mut config = config();
    config.sse_heartbeat = Duration::from_millis(50);
    let server = TestServer::start(config, Demo::new());
    let mut stream = SseClient::connect(server.addr, "/topics/quiet/events", "");
    let start = b"retry: 3000\n";
    stream.read_raw_until(start.len() + 4);
    // Nothing happens in the room: the stream is the retry hint, then
    // bare comment lines; no blank line, which would dispatch and so
    // reset a resuming client's last event id to the stream's empty one.
    assert_eq!(&stream.raw[..start.len()], start);
    assert_eq!(&stream.raw[start.len()..start.len() + 4], b":\n:\n");
    assert_eq!(stream.next_item(), Some(Item::Retry(3000)));
    drop(stream);
    server.shutdown();
}

#[test]
fn clock_ticks_have_increasing_ids() {
    let server = TestServer::start(config(), FastClock(Clock::new()));
    let mut stream = SseClient::connect(server.addr, "/clock", "");
    assert_eq!(stream.response.status, 200);
    let welcome = stream.next_event();
    assert_eq!(welcome.event_type(), "welcome");
    assert_eq!(welcome.data(), "{\"resumed_from\":null}");
    for n in 1..=5 {
        assert_tick(&stream.next_event(), n);
    }
    drop(stream);
    server.shutdown();
}

#[test]
fn clock_resumes_from_last_event_id_in_header_or_query() {
    for (target, header) in [("/clock", "Last-Event-ID: 41\r\n"), ("/clock?lastEventId=41", "")] {
        let server = TestServer::start(config(), FastClock(Clock::new()));
        let mut stream = SseClient::connect(server.addr, target, header);
        let welcome = stream.next_event();
        assert_eq!(welcome.event_type(), "welcome");
        assert_eq!(welcome.data(), "{\"resumed_from\":\"41\"}");
        // The welcome carries no id: the client's last id is untouched.
        assert_eq!(welcome.last_event_id(), "");
        assert_tick(&stream.next_event(), 42);
        assert_tick(&stream.next_event(), 43);
        drop(stream);
        server.shutdown();
    }
}

/// The count took the largest id a client can send, and the next tick
/// overflowed it (a panic in a debug build, ids back at 0 in a release one).
#[test]
fn clock_resumed_from_the_largest_id_stops_there() {
    let server = TestServer::start(config(), FastClock(Clock::new()));
    let mut stream = SseClient::connect(server.addr, "/clock", "Last-Event-ID: 18446744073709551615\r\n");
    assert_eq!(stream.next_event().event_type(), "welcome");
    assert_tick(&stream.next_event(), u64::MAX);
    assert_tick(&stream.next_event(), u64::MAX);
    assert_eq!(server.stats().app_panics, 0);
    drop(stream);
    server.shutdown();
}

#[test]
fn the_demo_clock_resumes_from_last_event_id() {
    // The demo ticks once a second; run both ways at once, each on its own
    // server so that each clock starts from zero.
    let cases = [("/clock", "Last-Event-ID: 41\r\n"), ("/clock?lastEventId=41", "")];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(target, header)| {
            thread::spawn(move || {
                let server = TestServer::start(config(), Demo::new());
                let mut stream = SseClient::connect(server.addr, target, header);
                let welcome = stream.next_event();
                assert_eq!(welcome.event_type(), "welcome");
                assert_eq!(welcome.data(), "{\"resumed_from\":\"41\"}");
                assert_tick(&stream.next_event(), 42);
                drop(stream);
                server.shutdown();
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("the case passed");
    }
}

#[test]
fn an_empty_last_event_id_is_no_resumption() {
    let server = TestServer::start(config(), FastClock(Clock::new()));
    let mut stream = SseClient::connect(server.addr, "/clock", "Last-Event-ID: \r\n");
    assert_eq!(stream.next_event().data(), "{\"resumed_from\":null}");
    assert_tick(&stream.next_event(), 1);
    drop(stream);
    server.shutdown();
}

#[test]
fn the_app_adds_fields_to_the_head_and_none_can_split_it() {
    let server = TestServer::start(config(), FastClock(Clock::new()));
    let stream = SseClient::connect(server.addr, "/clock", "");
    assert_eq!(stream.response.status, 200);
    assert_eq!(stream.response.header("x-clock"), Some("fast"));
    assert_eq!(stream.response.header("x-split"), None);
    assert_eq!(stream.response.header("injected"), None);
    assert_eq!(stream.response.header("bad name"), None);
    assert_eq!(stream.response.header("content-type"), Some("text/event-stream"));
}
