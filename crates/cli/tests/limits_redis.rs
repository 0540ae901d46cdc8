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

#[test]
fn values_of_the_release_before_are_read() {
    if !available("values_of_the_release_before_are_read") {
        return;
    }
    let redis = RedisServer::start();
    let mut con = redis.client();
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // What a node of the release before writes: its counts as bare
    // `COUNT LEN SUBJECT` text, a revocation as the member `UNTIL:ENTRY`.
    redis::cmd("SET")
        .arg("limits-test:!conns!old")
        .arg("2 5 alice")
        .arg("PX")
        .arg(600_000)
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("ZADD")
        .arg("limits-test:!conns")
        .arg(now_ms + 600_000)
        .arg("old")
        .query::<()>(&mut con)
        .unwrap();
    let until = now_ms / 1000 + 600;
    redis::cmd("ZADD")
        .arg("limits-test:!revoked")
        .arg(until)
        .arg(format!("{until}:jti:d-1"))
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("INCR")
        .arg("limits-test:!revoked!gen")
        .query::<()>(&mut con)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tether-e2e-skew-{}", std::process::id()));
    limits::values_of_the_release_before_are_read(&dir, |dir, name| {
        limits::start_node(dir, name, "redis", &redis.url(), "limits-test:")
    });
}
