//! Limits per user across `tether serve --app hub --redis ...` processes
//! on one real `redis-server`: `--max-connections-per-subject` counts a
//! subject's connections on every node (each node's counts as last
//! shared, every half second; a killed node's once they expired), and a
//! token revoked on one node ends its connections on another, and is
//! refused by a node started after the revocation.
//!
//! The test bodies both buses share are in `tests/limits`.
//!
//! Skipped (with a printed reason) when `redis-server` is not installed,
//! unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "redis")]

mod limits;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use support::{RedisServer, available};

#[test]
fn a_subjects_connections_are_counted_over_the_cluster() {
    if !available("a_subjects_connections_are_counted_over_the_cluster") {
        return;
    }
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tether-e2e-limits-{}", std::process::id()));
    limits::a_subjects_connections_are_counted_over_the_cluster(&dir, |dir, name| {
        limits::start_node(dir, name, "redis", &redis.url(), "limits-test:")
    });
}

#[test]
fn a_revocation_reaches_every_node_and_nodes_started_after_it() {
    if !available("a_revocation_reaches_every_node_and_nodes_started_after_it") {
        return;
    }
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tether-e2e-revoke-{}", std::process::id()));
    limits::a_revocation_reaches_every_node_and_nodes_started_after_it(&dir, |dir, name| {
        limits::start_node(dir, name, "redis", &redis.url(), "limits-test:")
    });
}
