//! A fault costs one connection at most; a loop that dies anyway (a
//! panic in the loop's own code, outside the work for any one connection)
//! stops the other loops of its cluster, whose `run` returns the error.
//!
//! The panics below the application (in the TLS session, the sessions,
//! the QUIC endpoint) cannot be asked for from outside: the unit tests
//! inject them (`src/server/fault_tests.rs`).
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::cell::Cell;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tether_server::{App, Cluster, Handshake, Request, Route};
use tether_testkit::config;

/// An application whose `tick_interval`, which the loop reads outside
/// any guard, panics on loop 1 the second time it is read: a panic in
/// the loop's own code.
struct Doomed {
    index: usize,
    asked: Cell<u32>,
}

impl App for Doomed {
    type Post = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: b"fine\n",
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.asked.set(self.asked.get() + 1);
        if self.index == 1 && self.asked.get() > 1 {
            panic!("loop 1 dies on purpose");
        }
        Some(Duration::from_millis(50))
    }
}

#[test]
fn a_loop_that_dies_stops_the_others_and_the_cluster_returns_its_error() {
    let mut config = config();
    config.shutdown_timeout = Duration::from_secs(30);
    let cluster = Cluster::bind(config, Handshake::new(), 2, |index| Doomed {
        index,
        asked: Cell::new(0),
    })
    .unwrap();
    let addr = cluster.local_addr();
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(cluster.run()));
    // Well within the shutdown timeout: the dead loop says it has
    // drained, so the others do not wait for it.
    let outcome = result
        .recv_timeout(Duration::from_secs(10))
        .expect("the cluster's run returns");
    let error = outcome.expect_err("a loop died");
    let message = error.to_string();
    assert!(message.contains("event loop 1 panicked"), "{message}");
    assert!(message.contains("loop 1 dies on purpose"), "{message}");
    // Every loop has stopped: nothing listens on the port any more.
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}
