//! `/readyz` as the application reports it: each check named in the
//! body; a failed check of the node's own answers 503 with `Retry-After`;
//! a failed shared check is reported and counts only with `?shared=1`; a
//! panic in the checks is a failed check, and the loop serves on.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tether_testkit as common;

use common::{HttpConn, TestServer, config, get};
use tether_server::{App, Readiness, Request, Route};

/// What the application's checks say, set by the test.
const WELL: u8 = 0;
const SHARED_FAILS: u8 = 1;
const OWN_FAILS: u8 = 2;
const PANICS: u8 = 3;

struct Checked(Arc<AtomicU8>);

impl App for Checked {
    type Post = ();
    type State = ();

    fn route(&mut self, _request: &Request<'_>) -> Route {
        Route::NotFound
    }

    fn readiness(&self, report: &mut Readiness) {
        match self.0.load(Ordering::SeqCst) {
            WELL => report.check("store", true, "open"),
            SHARED_FAILS => {
                report.check("store", true, "open");
                report.shared("upstream", false, "away");
            }
            OWN_FAILS => report.check("store", false, "closed\nfor repairs"),
            _ => panic!("the checks panic"),
        }
    }
}

fn readyz(server: &TestServer, target: &str) -> (u16, Option<String>, String) {
    let answer = get(server.addr, target);
    let retry = answer.header("Retry-After").map(str::to_owned);
    (answer.status, retry, String::from_utf8(answer.body).unwrap())
}

#[test]
fn readyz_names_each_check_and_counts_the_shared_ones_only_when_asked() {
    let state = Arc::new(AtomicU8::new(WELL));
    let server = TestServer::start(config(), Checked(state.clone()));
    let ready = "ready\n[+] draining: no\n[+] store: open\n";
    assert_eq!(readyz(&server, "/readyz"), (200, None, ready.to_owned()));

    state.store(SHARED_FAILS, Ordering::SeqCst);
    let reported = "ready\n[+] draining: no\n[+] store: open\n[~] upstream: away\n";
    assert_eq!(readyz(&server, "/readyz"), (200, None, reported.to_owned()));
    let counted = "not ready: upstream\n[+] draining: no\n[+] store: open\n[-] upstream: away\n";
    assert_eq!(
        readyz(&server, "/readyz?shared=1"),
        (503, Some("1".to_owned()), counted.to_owned())
    );

    state.store(OWN_FAILS, Ordering::SeqCst);
    // One line a check, whatever the application wrote.
    let own = "not ready: store\n[+] draining: no\n[-] store: closed for repairs\n";
    assert_eq!(
        readyz(&server, "/readyz"),
        (503, Some("1".to_owned()), own.to_owned())
    );
    // HEAD: the status and the head alone.
    let mut conn = HttpConn::connect(server.addr);
    conn.request("HEAD", "/readyz", "");
    let head = conn.head_response();
    assert_eq!((head.status, head.header("Retry-After")), (503, Some("1")));

    state.store(PANICS, Ordering::SeqCst);
    let panicked = "not ready: app\n[+] draining: no\n[-] app: its readiness checks panicked\n";
    assert_eq!(
        readyz(&server, "/readyz"),
        (503, Some("1".to_owned()), panicked.to_owned())
    );
    // The loop serves on.
    state.store(WELL, Ordering::SeqCst);
    assert_eq!(readyz(&server, "/readyz").0, 200);
    assert_eq!(get(server.addr, "/healthz").status, 200);
}
