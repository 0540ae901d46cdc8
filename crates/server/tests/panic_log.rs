//! A panic caught by the server is logged once, at error level, with
//! where it happened, which connection, its location and its backtrace;
//! the panic hook found in place when the server started (here, the
//! test's own) does not see it. A panic outside the server's guards
//! still reaches that hook. (A binary of its own: a panic hook and a
//! logger are process-wide.)

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};
use tether_server::{App, Request, Route};
use tether_testkit::{HttpConn, TestServer, config};

/// Every error logged.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The panics the test's own hook saw.
static HOOKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

struct Recorder;

impl Log for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Error
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() == Level::Error {
            ERRORS.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

struct Fragile;

impl App for Fragile {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        if request.path() == "/panic" {
            panic!("deliberate 7f3a");
        }
        Route::Page {
            content_type: "text/plain",
            body: b"fine\n",
        }
    }
}

#[test]
fn a_caught_panic_is_logged_once_with_its_backtrace_and_the_hook_before_still_sees_the_others() {
    log::set_logger(&Recorder).unwrap();
    log::set_max_level(LevelFilter::Error);
    std::panic::set_hook(Box::new(|info| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        HOOKED.lock().unwrap().push(message);
    }));

    let server = TestServer::start(config(), Fragile);
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/panic", "");
    assert_eq!(conn.response().status, 500);
    assert_eq!(server.stats().app_panics, 1);

    let errors: Vec<String> = ERRORS
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.contains("deliberate 7f3a"))
        .cloned()
        .collect();
    assert_eq!(errors.len(), 1, "logged once: {errors:#?}");
    let error = &errors[0];
    assert!(
        error.contains("in route for connection "),
        "where and which: {error}"
    );
    assert!(error.contains("panic_log.rs:"), "its location: {error}");
    assert!(error.contains("backtrace:"), "its backtrace: {error}");
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "{:?}",
        HOOKED.lock().unwrap()
    );

    // Outside the server's guards, the hook that was there runs as before.
    let outside = std::thread::spawn(|| panic!("outside 7f3a")).join();
    assert!(outside.is_err());
    assert_eq!(*HOOKED.lock().unwrap(), ["outside 7f3a"]);
    assert_eq!(
        ERRORS
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.contains("outside 7f3a"))
            .count(),
        0
    );
    server.shutdown();
}
