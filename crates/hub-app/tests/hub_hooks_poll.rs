//! A long poll the application's backend let in (the connect hook, the
//! subscribe hook) is answered as a long poll: its timeout, reached
//! empty, is the usual empty 200, over HTTP/1.1 and HTTP/2, every time;
//! not the 503 of a decision that never came.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::h2::H2Client;
use common::{TestServer, config, request};
use tether_hub::{Allowed, Decision};
use tether_hub_app::{AnswerTo, Backend, Busy, Hook, HubSettings, HubShared, Namespace, Question};
use tether_server::Handshake;

const TOKEN: &str = "hooks-poll-test-publish-token";

/// A backend that allows everything, answering on a thread of its own,
/// and keeps the questions it was asked.
#[derive(Debug, Default)]
struct AllowAll {
    asked: Arc<Mutex<Vec<Question>>>,
}

impl Backend for AllowAll {
    fn answers(&self, hook: Hook) -> bool {
        matches!(hook, Hook::Connect | Hook::Subscribe)
    }

    fn ask(&self, _loop_index: usize, question: Question, answer: AnswerTo) -> Result<(), Busy> {
        let allowed = match &question {
            Question::Connect { .. } => {
                Allowed::new().identity(Some("ann".into()), vec!["room.*".into()], vec![])
            }
            _ => Allowed::new(),
        };
        self.asked.lock().unwrap().push(question);
        std::thread::spawn(move || answer(Decision::Allow(allowed)));
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(2)
    }

    fn forwarded_headers(&self) -> &[String] {
        &[]
    }

    fn forwarded_cookies(&self) -> &[String] {
        static COOKIES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        COOKIES.get_or_init(|| vec!["session".into()])
    }
}

fn start() -> (TestServer, Arc<Mutex<Vec<Question>>>) {
    let backend = AllowAll::default();
    let asked = backend.asked.clone();
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
        .namespaces
        .push("room.* subscribe=hook".parse::<Namespace>().unwrap());
    settings.backend = Some(Arc::new(backend));
    let shared = HubShared::new(settings, 2);
    let server = TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i));
    (server, asked)
}

fn metric(server: &TestServer, line: &str) -> bool {
    let page = request(server.addr, "GET", "/metrics", "", b"");
    String::from_utf8_lossy(&page.body).contains(line)
}

#[test]
fn a_long_poll_the_backend_let_in_times_out_empty_with_200_over_http1_and_h2() {
    let (server, asked) = start();
    let cookie = "Cookie: session=good\r\n";
    // At once, and after a wait that runs out: each time the empty answer.
    for target in [
        "/topics/room.9/poll?timeout=0",
        "/topics/room.9/poll?timeout=0",
        "/topics/room.9/poll?timeout=0.2",
    ] {
        let answer = request(server.addr, "GET", target, cookie, b"");
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 200, "{target}: {body}");
        assert!(body.contains("\"events\":[]"), "{body}");
    }
    let mut h2 = H2Client::connect(server.addr);
    for target in ["/topics/room.9/poll?timeout=0", "/topics/room.9/poll?timeout=0.2"] {
        let poll = h2.get(target, &[("cookie", "session=good")]);
        let answer = h2.finish(poll);
        let body = String::from_utf8_lossy(&answer.data).into_owned();
        assert_eq!(answer.status(), Some(200), "{target}: {body}");
        assert!(body.contains("\"events\":[]"), "{body}");
    }
    // Each poll was decided once by each hook, as allowed.
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 10, "{asked:?}");
    assert!(
        asked.iter().any(|q| *q
            == Question::Subscribe {
                subject: Some("ann".into()),
                topic: "room.9".into(),
                transport: "poll",
            }),
        "{asked:?}"
    );
    for hook in ["connect", "subscribe"] {
        let line = format!("tether_hub_backend_decisions_total{{hook=\"{hook}\",outcome=\"allowed\"}} 5");
        assert!(metric(&server, &line), "{line}");
    }
    server.shutdown();
}

#[test]
fn a_long_poll_the_backend_let_in_gets_the_event_it_waited_for() {
    let (server, _asked) = start();
    let addr = server.addr;
    let waiting = std::thread::spawn(move || {
        request(
            addr,
            "GET",
            "/topics/room.5/poll?timeout=20",
            "Cookie: session=good\r\n",
            b"",
        )
    });
    // The event is published until the poll has it (a publish before the
    // poll is held would only be replayed if `since` asked for it).
    let mut published = 0;
    while !waiting.is_finished() {
        let answer = request(
            addr,
            "POST",
            "/topics/room.5",
            &format!("Authorization: Bearer {TOKEN}\r\n"),
            b"hello",
        );
        assert_eq!(answer.status, 200);
        published += 1;
        assert!(published < 2000, "the poll was never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answer = waiting.join().unwrap();
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 200, "{body}");
    assert!(body.contains("hello"), "{body}");
    server.shutdown();
}
