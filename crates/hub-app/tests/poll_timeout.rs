//! `?timeout=` on a long poll, through a real socket: a number of seconds
//! from 0 up (0 answers at once, more than the longest wait is the longest
//! wait); anything else is a 400 that says so, never a poll held for the
//! longest wait as if it had been asked for.

use tether_testkit as common;

use std::time::{Duration, Instant};

use common::{HttpConn, TestServer, config};
use tether_hub_app::{HubApp, HubSettings};

/// Long enough that a poll held for it shows, short enough for a test.
const LONGEST: Duration = Duration::from_secs(2);

fn hub() -> TestServer {
    let mut settings = HubSettings::default();
    settings.poll_timeout = LONGEST;
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
    let server = hub();
    for odd in [
        "-1", "NaN", "nan", "inf", "-inf", "1e999", "", "soon", "1s", "%20",
    ] {
        let (answer, took) = poll(&server, odd);
        assert_eq!(answer.status, 400, "timeout={odd}");
        let text = String::from_utf8_lossy(&answer.body);
        assert!(
            text.contains("timeout is a number of seconds"),
            "timeout={odd}: {text}"
        );
        assert!(took < LONGEST / 2, "timeout={odd} took {took:?}");
    }
    server.shutdown();
}

#[test]
fn zero_answers_at_once_and_more_than_the_longest_is_the_longest() {
    let server = hub();
    let (answer, took) = poll(&server, "0");
    assert_eq!(answer.status, 200);
    assert!(took < LONGEST / 2, "timeout=0 took {took:?}");
    let (answer, took) = poll(&server, "0.2");
    assert_eq!(answer.status, 200);
    assert!(
        took >= Duration::from_millis(200) && took < LONGEST,
        "timeout=0.2 took {took:?}"
    );
    for huge in ["3", "1e20", "18446744073709551616"] {
        let (answer, took) = poll(&server, huge);
        assert_eq!(answer.status, 200, "timeout={huge}");
        assert!(
            took >= LONGEST && took < LONGEST * 3,
            "timeout={huge} took {took:?}, the longest wait is {LONGEST:?}"
        );
    }
    server.shutdown();
}
