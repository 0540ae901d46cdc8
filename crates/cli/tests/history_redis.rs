//! `GET /api/history` on a node over a real `redis-server`, and over a
//! real Redis Cluster (child processes on free loopback ports, see
//! `crates/redis/tests/support`), answers as on one node (the comparison
//! is in `tests/history`). Redis paused: 503 with `Retry-After`; resumed,
//! history answers again.
//!
//! Skipped (with a printed reason) when `redis-server` (or, for the
//! cluster, `redis-cli`) is not installed, unless `TETHER_REQUIRE_REDIS`
//! is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "redis")]

mod bus;
mod history;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use bus::{ScratchDir, TOPIC};
use history::{get, same_as_one_node, start_node, unavailable};
use support::cluster::{self, RedisCluster};
use support::{RedisServer, available, wait_until};

#[test]
fn history_on_redis_is_one_nodes() {
    if !available("history_on_redis_is_one_nodes") {
        return;
    }
    let dir = ScratchDir::new("history-redis");
    let redis = RedisServer::start();
    let node = start_node(
        &dir,
        "redis",
        &["--redis", &redis.url(), "--redis-prefix", "hist:"],
    );
    same_as_one_node("redis", &dir, &node);
    // Paused: the read waits for an answer that does not come.
    redis.pause();
    unavailable(&node);
    redis.resume();
    wait_until("history read again", || {
        get(&node, &format!("/api/history?topic={TOPIC}")).0 == 200
    });
}

#[test]
fn history_on_a_redis_cluster_is_one_nodes() {
    if !cluster::available("history_on_a_redis_cluster_is_one_nodes") {
        return;
    }
    let dir = ScratchDir::new("history-cluster");
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let node = start_node(&dir, "cluster", &["--redis", &url, "--redis-prefix", "hist:"]);
    same_as_one_node("redis cluster", &dir, &node);
}
