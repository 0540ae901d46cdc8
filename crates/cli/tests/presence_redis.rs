//! Presence across two `tether serve --app hub --redis ...` processes on
//! one real `redis-server`: a member subscribed on one node is listed by
//! the other's `GET /topics/NAME/presence` and announced to its
//! `?presence=1` watchers; one that leaves, leaves there too; and when a
//! node is killed (`kill -9`, no goodbye to Redis) its members leave the
//! other node's list once their entries expire.
//!
//! The helpers and the test body both buses share are in `tests/presence`.
//!
//! Skipped (with a printed reason) when `redis-server` is not installed,
//! unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "redis")]

mod presence;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use presence::FirstAnswer;
use support::{RedisServer, available};

#[test]
fn members_are_shared_by_nodes_and_a_killed_nodes_members_expire() {
    if !available("members_are_shared_by_nodes_and_a_killed_nodes_members_expire") {
        return;
    }
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tether-e2e-presence-{}", std::process::id()));
    presence::members_are_shared_and_a_killed_nodes_members_expire(
        &dir,
        FirstAnswer::MayLag,
        |dir, name, ttl| presence::start_node(dir, name, ttl, "redis", &redis.url(), "presence-test:"),
    );
}
