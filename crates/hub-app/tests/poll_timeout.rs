//! `?timeout=` on a long poll, through a real socket: a number of seconds
//! from 0 up (0 answers at once, more than the longest wait is the longest
//! wait); anything else is a 400 that says so, never a poll held for the
//! longest wait as if it had been asked for.
//!
//! No answer is timed from above: a hub whose longest wait outlasts the
//! client's read timeout (`IO_TIMEOUT`, 10 s) shows a poll that was not
//! held for it by answering at all, and a poll held for the longest wait
//! of a hub whose longest wait is short shows the clamp the same way.
//! Times are only bounded below (a wait is not cut short), which a slow
//! machine only makes easier to meet.

use tether_testkit as common;

use std::time::{Duration, Instant};

use common::{HttpConn, TestServer, config};
use tether_hub_app::{HubApp, HubSettings};

/// Longer than any client here waits for an answer.
const FOREVER: Duration = Duration::from_secs(3600);
/// Long enough that a poll held for it shows, short enough for a test.
const LONGEST: Duration = Duration::from_secs(2);

fn hub(longest: Duration) -> TestServer {
    let mut settings = HubSettings::default();
    settings.poll_timeout = longest;
    TestServer::start(config(), HubApp::new(settings))
}

/// A poll on a fresh connection: its answer and how long it took.
fn poll(server: &TestServer, timeout: &str) -> (common::Response, Duration) {
    let mut conn = HttpConn::connect(server.addr);
    let started = Instant::now();
    conn.request("GET", &format!("/topics/t/poll?timeout={timeout}"), "");
    (conn.response(), started.elapsed())
}

#[test]
fn a_timeout_that_is_not_a_wait_is_refused_at_once() {
    // Held for the longest wait, it would outlast the client's read.
    let server = hub(FOREVER);
    for odd in [
        "-1", "NaN", "nan", "inf", "-inf", "1e999", "", "soon", "1s", "%20",
    ] {
        let (answer, _) = poll(&server, odd);
        assert_eq!(answer.status, 400, "timeout={odd}");
        let text = String::from_utf8_lossy(&answer.body);
        assert!(
            text.contains("timeout is a number of seconds"),
            "timeout={odd}: {text}"
        );
    }
    server.shutdown();
}

#[test]
fn zero_answers_at_once_and_more_than_the_longest_is_the_longest() {
    // Answered at all, these polls were not held for the longest wait.
    let server = hub(FOREVER);
    let (answer, _) = poll(&server, "0");
    assert_eq!(answer.status, 200);
    let (answer, took) = poll(&server, "0.2");
    assert_eq!(answer.status, 200);
    assert!(took >= Duration::from_millis(200), "timeout=0.2 took {took:?}");
    server.shutdown();

    // Each asks for more than the client waits; answered, each was held
    // for the longest wait instead, and no less.
    let server = hub(LONGEST);
    for huge in ["3600", "1e20", "18446744073709551616"] {
        let (answer, took) = poll(&server, huge);
        assert_eq!(answer.status, 200, "timeout={huge}");
        assert!(
            took >= LONGEST,
            "timeout={huge} took {took:?}, the longest wait is {LONGEST:?}"
        );
    }
    server.shutdown();
}
