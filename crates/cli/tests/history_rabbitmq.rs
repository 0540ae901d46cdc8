//! `GET /api/history` on a node over a real RabbitMQ (streams, started by
//! the test: `tether_testkit::rabbitmq`) answers as on one node (the
//! comparison is in `tests/history`). RabbitMQ stopped: 503 with
//! `Retry-After`.
//!
//! Skipped (with a printed reason) when `rabbitmq-server` is not
//! installed, unless `TETHER_REQUIRE_RABBITMQ` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "rabbitmq")]

mod bus;
mod history;
mod serve;
#[path = "../../rabbitmq/tests/support/mod.rs"]
mod support;

use bus::ScratchDir;
use history::{same_as_one_node, start_node, unavailable};
use tether_testkit::rabbitmq::RabbitMq;

#[test]
fn history_on_rabbitmq_is_one_nodes() {
    let Some(mut rabbit) = RabbitMq::start() else {
        return;
    };
    let dir = ScratchDir::new("history-rabbitmq");
    let url = rabbit.url();
    let node = start_node(
        &dir,
        "rabbitmq",
        &["--rabbitmq-url", &url, "--rabbitmq-prefix", "hist"],
    );
    same_as_one_node("rabbitmq", &dir, &node);
    rabbit.stop();
    bus::wait_for_the_bus_gone(&[&node], "rabbitmq", "tether_rabbitmq_connected 0\n");
    unavailable(&node);
}
