//! `GET /api/history` on a node over a real `nats-server` with JetStream
//! (a child process on a free loopback port, see
//! `crates/nats/tests/support`) answers as on one node (the comparison is
//! in `tests/history`). NATS stopped: 503 with `Retry-After`.
//!
//! Skipped (with a printed reason) when `nats-server` is not installed,
//! unless `TETHER_REQUIRE_NATS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "nats")]

mod bus;
mod history;
mod serve;
#[path = "../../nats/tests/support/mod.rs"]
mod support;

use bus::ScratchDir;
use history::{same_as_one_node, start_node, unavailable};
use support::{NatsServer, available};

#[test]
fn history_on_nats_is_one_nodes() {
    if !available("history_on_nats_is_one_nodes") {
        return;
    }
    let dir = ScratchDir::new("history-nats");
    let mut nats = NatsServer::start();
    let node = start_node(&dir, "nats", &["--nats", &nats.url(), "--nats-prefix", "hist"]);
    same_as_one_node("nats", &dir, &node);
    nats.stop();
    bus::wait_for_the_bus_gone(&[&node], "nats", "tether_nats_connected 0\n");
    unavailable(&node);
}
