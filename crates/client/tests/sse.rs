//! The event-stream client against the demo's `/clock` and against a
//! scripted server for the EventSource edge cases.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::{Duration, Instant};

use common::{HANG_GUARD, Reply, ScriptServer, TestServer};
use tether_client::{Error, EventSource, MessageEvent, ReadyState, SseEvent};

/// The next event of any kind, failing the test on the end.
fn next(source: &mut EventSource) -> SseEvent {
    source
        .next_event()
        .expect("the source is not stopped")
        .expect("no fatal error")
}

fn next_message(source: &mut EventSource) -> MessageEvent {
    loop {
        if let SseEvent::Message(event) = next(source) {
            return event;
        }
    }
}

fn fast(url: String) -> tether_client::EventSourceBuilder {
    EventSource::builder(url)
        .retry(Duration::from_millis(10))
        .connect_timeout(HANG_GUARD)
        .read_timeout(Some(HANG_GUARD))
}

#[test]
fn demo_clock_ticks_with_ids() {
    let server = common::start_server(tether_apps::Demo::new());
    let mut source = fast(server.http_url("/clock")).build().unwrap();
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    assert!(matches!(next(&mut source), SseEvent::Open));
    assert_eq!(source.ready_state(), ReadyState::Open);
    let welcome = next_message(&mut source);
    assert_eq!(welcome.event_type(), "welcome");
    assert_eq!(welcome.data(), r#"{"resumed_from":null}"#);
    assert_eq!(welcome.last_event_id(), "");
    // The server's `retry:` hint arrived before the welcome.
    assert_eq!(source.reconnection_time(), Duration::from_millis(50));
    let tick = next_message(&mut source);
    assert_eq!(tick.event_type(), "tick");
    assert_eq!(tick.last_event_id(), "1");
    assert!(tick.data().starts_with(r#"{"n":1,"#), "{}", tick.data());
    assert_eq!(source.last_event_id(), "1");
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
    assert!(source.next_event().is_none());
}

#[test]
fn demo_clock_resumes_from_the_last_event_id_after_a_restart() {
    let server = common::start_server(tether_apps::Demo::new());
    let addr = server.addr;
    let mut source = fast(server.http_url("/clock")).build().unwrap();
    let tick = loop {
        let event = next_message(&mut source);
        if event.event_type() == "tick" {
            break event;
        }
    };
    assert_eq!(tick.last_event_id(), "1");
    // The server goes away and comes back on the same port with its clock
    // at zero; the client reconnects and says where it was.
    server.shutdown();
    let restarted = TestServer::start_with(
        common::config(addr),
        tether_server::Handshake::new(),
        tether_apps::Demo::new(),
    );
    let welcome = loop {
        let event = next_message(&mut source);
        if event.event_type() == "welcome" {
            break event;
        }
    };
    assert_eq!(welcome.data(), r#"{"resumed_from":"1"}"#);
    assert_eq!(next_message(&mut source).last_event_id(), "2");
    drop(restarted);
}

#[test]
fn follows_a_redirect_chain() {
    let server = ScriptServer::start(|_, req| match req.target.as_str() {
        "/a" => {
            Reply::close("HTTP/1.1 301 Moved Permanently\r\nLocation: /dir/b\r\nContent-Length: 0\r\n\r\n")
        }
        "/dir/b" => Reply::close("HTTP/1.1 302 Found\r\nLocation: c?x=1\r\n\r\n"),
        "/dir/c?x=1" => Reply::close("HTTP/1.1 303 See Other\r\nLocation: ../d\r\n\r\n"),
        "/d" => Reply::close("HTTP/1.1 307 Temporary Redirect\r\nLocation: /e\r\n\r\n"),
        "/e" => Reply::close("HTTP/1.1 308 Permanent Redirect\r\nLocation: /stream\r\n\r\n"),
        "/stream" => Reply::stream("data: arrived\n\n"),
        other => panic!("unexpected request for {other}"),
    });
    let mut source = fast(server.url("/a")).build().unwrap();
    assert!(matches!(next(&mut source), SseEvent::Open));
    assert_eq!(next_message(&mut source).data(), "arrived");
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/a", "/dir/b", "/dir/c?x=1", "/d", "/e", "/stream"]);
    // Every request is an event-stream request.
    for req in server.requests() {
        assert_eq!(req.header("Accept"), Some("text/event-stream"));
        assert_eq!(req.header("Cache-Control"), Some("no-cache"));
    }
}

#[test]
fn credentials_stay_behind_on_a_redirect_to_another_origin() {
    let other = ScriptServer::start(|_, _| Reply::stream("data: elsewhere\n\n"));
    let location = other.url("/stream");
    let first = ScriptServer::start(move |_, req| match req.target.as_str() {
        "/a" => Reply::close("HTTP/1.1 307 Temporary Redirect\r\nLocation: /b\r\n\r\n"),
        "/b" => Reply::close(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\r\n"
        )),
        other => panic!("unexpected request for {other}"),
    });
    let mut source = fast(first.url("/a"))
        .header("Authorization", "Bearer secret")
        .header("cookie", "session=secret")
        .header("Proxy-Authorization", "Basic secret")
        .header("X-Trace", "kept")
        .build()
        .unwrap();
    assert_eq!(next_message(&mut source).data(), "elsewhere");
    // The same-origin hop kept them.
    let first_requests = first.requests();
    assert_eq!(first_requests.len(), 2);
    for req in &first_requests {
        assert_eq!(req.header("Authorization"), Some("Bearer secret"));
        assert_eq!(req.header("Cookie"), Some("session=secret"));
        assert_eq!(req.header("Proxy-Authorization"), Some("Basic secret"));
    }
    // The other origin (another port) got none of them.
    let elsewhere = other.requests();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0].header("Authorization"), None);
    assert_eq!(elsewhere[0].header("Cookie"), None);
    assert_eq!(elsewhere[0].header("Proxy-Authorization"), None);
    assert_eq!(elsewhere[0].header("X-Trace"), Some("kept"));
}

#[test]
fn a_redirect_loop_fails_at_the_limit_without_reconnecting() {
    let server = ScriptServer::start(|_, _| Reply::close("HTTP/1.1 302 Found\r\nLocation: /loop\r\n\r\n"));
    let mut source = fast(server.url("/loop")).max_redirects(4).build().unwrap();
    match source.next_event() {
        Some(Err(Error::TooManyRedirects { limit: 4 })) => {}
        other => panic!("expected too many redirects, got {other:?}"),
    }
    assert_eq!(source.ready_state(), ReadyState::Closed);
    assert!(source.next_event().is_none());
    // The first request and four redirects followed; the fifth refused.
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn no_content_stops_for_good() {
    let server = ScriptServer::start(|_, _| Reply::close("HTTP/1.1 204 No Content\r\n\r\n"));
    let mut source = fast(server.url("/")).build().unwrap();
    assert!(source.next_event().is_none());
    assert_eq!(source.ready_state(), ReadyState::Closed);
    assert!(source.next().is_none());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn other_statuses_fail_for_good() {
    for (status, reason) in [
        (500, "Internal Server Error"),
        (404, "Not Found"),
        (201, "Created"),
    ] {
        let server = ScriptServer::start(move |_, _| {
            Reply::close(format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n"))
        });
        let mut source = fast(server.url("/")).build().unwrap();
        match source.next() {
            Some(Err(Error::Refused {
                status: got,
                reason: r,
            })) => {
                assert_eq!((got, r.as_str()), (status, reason));
            }
            other => panic!("{status}: expected a refusal, got {other:?}"),
        }
        assert!(source.next().is_none());
        assert_eq!(server.requests().len(), 1, "{status}: no reconnection");
    }
}

#[test]
fn unavailable_answers_are_retried_when_asked() {
    // A load balancer between restarts: 503, then the stream, then 502
    // and 504 before the stream again, which resumes from the last id.
    let server = ScriptServer::start(|n, _| match n {
        0 => Reply::close("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"),
        1 => Reply::stream("id: 7\ndata: first\n\n"),
        2 => Reply::close("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
        3 => Reply::close("HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n"),
        _ => Reply::stream("id: 8\ndata: second\n\n"),
    });
    // Connections that delivered nothing wait the backoff too: kept short.
    let quick = tether_client::Backoff::new().initial(Duration::from_millis(1));
    let mut source = fast(server.url("/"))
        .backoff(quick)
        .retry_unavailable(true)
        .build()
        .unwrap();
    match next(&mut source) {
        SseEvent::Reconnecting {
            error: Some(Error::Refused { status: 503, .. }),
            ..
        } => {}
        other => panic!("expected a retried 503, got {other:?}"),
    }
    assert_eq!(next_message(&mut source).data(), "first");
    assert_eq!(next_message(&mut source).data(), "second");
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    for (n, request) in requests.iter().enumerate().skip(2) {
        assert_eq!(request.header("Last-Event-ID"), Some("7"), "request {n}");
    }
    // Still bounded by the retry limit: the last refusal is the error.
    let server = ScriptServer::start(|_, _| {
        Reply::close("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    });
    let mut source = fast(server.url("/"))
        .backoff(quick)
        .retry_unavailable(true)
        .max_retries(Some(2))
        .build()
        .unwrap();
    let mut retried = 0;
    loop {
        match source.next_event() {
            Some(Ok(SseEvent::Reconnecting { .. })) => retried += 1,
            Some(Err(Error::Refused { status: 503, .. })) => break,
            other => panic!("expected the retries, then the refusal; got {other:?}"),
        }
    }
    assert_eq!((retried, server.requests().len()), (2, 3));
    assert!(source.next_event().is_none());
}

#[test]
fn a_wrong_content_type_fails_for_good() {
    for content_type in [
        "Content-Type: text/plain\r\n",
        "",
        "Content-Type: text/event-streams\r\n",
    ] {
        let server = ScriptServer::start(move |_, _| {
            Reply::close(format!("HTTP/1.1 200 OK\r\n{content_type}\r\ndata: no\n\n"))
        });
        let mut source = fast(server.url("/")).build().unwrap();
        match source.next() {
            Some(Err(Error::ContentType(_))) => {}
            other => panic!("{content_type:?}: expected a content type error, got {other:?}"),
        }
        assert!(source.next().is_none());
        assert_eq!(server.requests().len(), 1);
    }
    // Parameters and case do not matter.
    let server = ScriptServer::start(|_, _| {
        Reply::close("HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n\r\ndata: yes\n\n")
    });
    let mut source = fast(server.url("/")).build().unwrap();
    assert_eq!(source.next().unwrap().unwrap().data(), "yes");
}

/// A stream whose response head is `size` bytes, padded with a header.
fn head_of(size: usize) -> String {
    let start = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = "p".repeat(size - start.len() - end.len());
    format!("{start}{pad}{end}")
}

#[test]
fn a_response_head_over_the_limit_fails_for_good() {
    let server = ScriptServer::start(|_, _| Reply::close(format!("{}data: big\n\n", head_of(17 * 1024))));
    let mut source = fast(server.url("/")).build().unwrap();
    match source.next() {
        Some(Err(Error::Http(message))) => {
            assert_eq!(message, "response head over 16384 bytes");
        }
        other => panic!("expected a refused head, got {other:?}"),
    }
    assert!(source.next().is_none());
    assert_eq!(server.requests().len(), 1, "no reconnection");
    // Within a limit of one's own, the same head is read.
    let mut source = fast(server.url("/"))
        .max_response_head(32 * 1024)
        .build()
        .unwrap();
    assert_eq!(source.next().unwrap().unwrap().data(), "big");
    // And a head just within the default.
    let server = ScriptServer::start(|_, _| Reply::close(format!("{}data: fits\n\n", head_of(16 * 1024))));
    let mut source = fast(server.url("/")).build().unwrap();
    assert_eq!(source.next().unwrap().unwrap().data(), "fits");
}

#[test]
fn retry_sets_the_reconnection_delay() {
    let server = ScriptServer::start(|n, _| match n {
        0 => Reply::stream("retry: 300\ndata: first\n\n"),
        _ => Reply::stream("data: second\n\n"),
    });
    // The stream's own delay replaces an hour: were it ignored, the test
    // would hang (and be ended by the runner) instead of going on.
    let mut source = EventSource::builder(server.url("/"))
        .retry(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(next_message(&mut source).data(), "first");
    let delay = match next(&mut source) {
        SseEvent::Reconnecting { delay, error: None } => delay,
        other => panic!("expected the end of the stream, got {other:?}"),
    };
    assert_eq!(delay, Duration::from_millis(300));
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    let start = Instant::now();
    assert!(matches!(next(&mut source), SseEvent::Open));
    // A sleep never ends early: at least the delay passed.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(next_message(&mut source).data(), "second");
}

#[test]
fn last_event_id_is_sent_only_when_not_empty() {
    let server = ScriptServer::start(|n, _| match n {
        0 => Reply::stream("data: no id yet\n\n"),
        1 => Reply::stream("id: 41\ndata: a\n\nid: 42\ndata: b\n\nid: 43\ndata: incomplete"),
        2 => Reply::stream("id\ndata: the id is reset\n\n"),
        _ => Reply::stream("data: last\n\n"),
    });
    let mut source = fast(server.url("/feed")).build().unwrap();
    let mut events = Vec::new();
    while events.len() < 5 {
        events.push(source.next().unwrap().unwrap());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.last_event_id()).collect();
    assert_eq!(ids, ["", "41", "42", "", ""]);
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("Last-Event-ID").map(str::to_owned))
        .collect();
    // The incomplete event's id (43) never became the last event id.
    assert_eq!(sent, [None, None, Some("42".to_owned()), None]);
}

#[test]
fn chunked_bodies_are_decoded() {
    let server = ScriptServer::start(|n, _| {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        match n {
            0 => Reply {
                pieces: vec![
                    head.to_vec(),
                    b"7\r\nid: 1\nd\r\n".to_vec(),
                    b"B;ext=x\r\nata: hello\n\r\n".to_vec(),
                    b"1\r\n\n\r\n".to_vec(),
                    b"0\r\n\r\n".to_vec(),
                ],
                // The final chunk ends the stream, not the connection.
                keep_open: true,
            },
            _ => Reply::stream("data: again\n\n"),
        }
    });
    let mut source = fast(server.url("/")).build().unwrap();
    let event = next_message(&mut source);
    assert_eq!((event.data(), event.last_event_id()), ("hello", "1"));
    assert!(matches!(
        next(&mut source),
        SseEvent::Reconnecting { error: None, .. }
    ));
    assert_eq!(next_message(&mut source).data(), "again");
    assert_eq!(server.requests()[1].header("Last-Event-ID"), Some("1"));
}

#[test]
fn content_length_bodies_end_the_stream() {
    let server = ScriptServer::start(|n, _| {
        let body = format!("id: {n}\ndata: body {n}\n\n");
        // Kept open: the length alone says where the stream ends.
        Reply::open(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    });
    let mut source = fast(server.url("/")).build().unwrap();
    assert_eq!(next_message(&mut source).data(), "body 0");
    assert_eq!(next_message(&mut source).data(), "body 1");
    assert_eq!(server.requests()[1].header("Last-Event-ID"), Some("0"));
}

#[test]
fn network_errors_reconnect_until_the_retry_limit() {
    // A port that refuses: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut source = fast(format!("http://{addr}/"))
        .max_retries(Some(2))
        .build()
        .unwrap();
    for _ in 0..2 {
        match next(&mut source) {
            SseEvent::Reconnecting { error: Some(e), .. } => {
                assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused), "{e}");
            }
            other => panic!("expected a reconnection, got {other:?}"),
        }
    }
    match source.next_event() {
        Some(Err(e)) => assert!(e.is_network_error(), "{e}"),
        other => panic!("expected the last error, got {other:?}"),
    }
    assert!(source.next_event().is_none());
}

#[test]
fn a_stop_handle_interrupts_a_blocked_read() {
    let server = ScriptServer::start(|_, _| {
        Reply::open("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: then silence\n\n")
    });
    // No read timeout: only the stop can end the read (were it ignored,
    // the test would hang and be ended by the runner).
    let mut source = fast(server.url("/")).read_timeout(None).build().unwrap();
    assert_eq!(next_message(&mut source).data(), "then silence");
    let stop = source.stop_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        stop.stop();
    });
    assert!(source.next_event().is_none());
    assert_eq!(source.ready_state(), ReadyState::Closed);
    stopper.join().unwrap();
}

#[test]
fn extra_headers_are_sent_and_bad_ones_refused() {
    let server = ScriptServer::start(|_, _| Reply::stream("data: x\n\n"));
    let mut source = fast(server.url("/"))
        .header("Authorization", "Bearer t")
        .build()
        .unwrap();
    source.next().unwrap().unwrap();
    assert_eq!(server.requests()[0].header("Authorization"), Some("Bearer t"));

    let bad = [
        ("Bad Name", "v"),
        ("X-Ok", "a\r\nInjected: 1"),
        ("Last-Event-ID", "1"),
    ];
    for (name, value) in bad {
        let err = EventSource::builder("http://127.0.0.1:1/")
            .header(name, value)
            .build()
            .unwrap_err();
        assert!(err.is_caller_error(), "{name}: {err}");
    }
    // https:// is taken (with the `tls` feature; tests/tls.rs connects).
    assert!(EventSource::connect("https://example.com/").is_ok());
    let err = EventSource::connect("ws://example.com/").unwrap_err();
    assert!(matches!(err, Error::UnsupportedScheme(_)), "{err}");
}

#[test]
fn a_trickled_response_head_times_out_as_a_whole() {
    // One header byte every 100 ms: never silent long enough for a
    // per-read timeout, and the head never ends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trickler = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = socket.read(&mut request);
        let started = Instant::now();
        let mut result = socket.write_all(b"HTTP/1.1 200 OK\r\nX:");
        while result.is_ok() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(100));
            result = socket.write_all(b"a");
        }
    });
    let mut source = EventSource::builder(format!("http://{addr}/"))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    // A timeout, not the end of the stream: a wait timed read by read
    // would still be waiting when the trickle stops and the socket closes.
    match next(&mut source) {
        SseEvent::Reconnecting {
            error: Some(Error::Timeout(_)),
            ..
        } => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    source.close();
    trickler.join().unwrap();
}

#[test]
fn streams_that_end_with_no_event_are_reconnected_with_a_growing_wait() {
    let server = ScriptServer::start(|_, _| Reply::stream("retry: 0\n\n"));
    let mut source = fast(server.url("/")).build().unwrap();
    let stop = source.stop_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        stop.stop();
    });
    let mut delays = Vec::new();
    while let Some(event) = source.next_event() {
        if let SseEvent::Reconnecting { delay, .. } = event.unwrap() {
            delays.push(delay);
        }
    }
    stopper.join().unwrap();
    let requests = server.requests().len();
    assert!(requests < 20, "{requests} requests in a second; waits {delays:?}");
    assert!(delays.windows(2).all(|w| w[1] >= w[0] / 2), "{delays:?}");
}

/// An id that a header cannot carry exactly (a control character, white
/// space at an end) is not sent as `Last-Event-ID`: the server starts the
/// stream as for a new client. Once, it went out as it was, and a server
/// that refuses a control character in a header failed every attempt.
#[test]
fn an_id_a_header_cannot_carry_is_not_sent() {
    let server = ScriptServer::start(|n, _| match n {
        0 => Reply::stream("id: a\u{1}b\ndata: control\n\n"),
        1 => Reply::stream("id: 7 \ndata: trailing space\n\n"),
        2 => Reply::stream("id: 8\ndata: plain\n\n"),
        _ => Reply::stream("data: last\n\n"),
    });
    let mut source = fast(server.url("/feed")).build().unwrap();
    let ids: Vec<String> = (0..4)
        .map(|_| source.next().unwrap().unwrap().last_event_id().to_owned())
        .collect();
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("Last-Event-ID").map(str::to_owned))
        .collect();
    assert_eq!(sent, [None, None, None, Some("8".to_owned())], "{ids:?}");
    assert_eq!(ids[..3], ["a\u{1}b", "7 ", "8"]);
}

/// `retry:` is bounded: a server cannot park the client for days with
/// one line (the longest wait is 10 minutes by default, and a knob).
#[test]
fn retry_is_bounded_by_the_longest_reconnection_time() {
    let server = ScriptServer::start(|_, _| Reply::stream("retry: 99999999999\ndata: x\n\n"));
    let mut source = fast(server.url("/feed")).build().unwrap();
    source.next().unwrap().unwrap();
    assert_eq!(source.reconnection_time(), Duration::from_secs(600));
    let mut source = fast(server.url("/feed"))
        .max_reconnection_time(Duration::from_secs(5))
        .build()
        .unwrap();
    source.next().unwrap().unwrap();
    assert_eq!(source.reconnection_time(), Duration::from_secs(5));
}
