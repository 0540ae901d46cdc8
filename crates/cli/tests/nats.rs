//! Two `tether serve --app hub --nats ...` processes against a real
//! `nats-server` (a child process with JetStream on a free loopback port,
//! see `crates/nats/tests/support`): events published on one node reach
//! subscribers on the other over SSE and WebSocket, in order; a client
//! whose node is killed resumes on the other node with its last id and
//! gets every event exactly once; NATS restarted mid-stream (with its
//! store) is shown in `/metrics`, publishes are refused meanwhile, and the
//! subscriptions go on with nothing lost or twice; a publish key holds
//! across nodes; a latest-value topic new to a node starts its
//! subscribers from nowhere at its latest event, read from JetStream.
//!
//! The helpers and the test bodies both buses share are in `tests/bus`.
//!
//! Skipped (with a printed reason) when `nats-server` is not installed,
//! unless `TETHER_REQUIRE_NATS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "nats")]

mod bus;
mod serve;
#[path = "../../nats/tests/support/mod.rs"]
mod support;

use std::path::Path;

use bus::{Resumed, ScratchDir, TOKEN, events, publish, publish_next};
use serve::Node;
use support::{NatsServer, available};

/// A `tether serve --app hub --nats URL` node of these tests.
fn start_node(url: &str, dir: &Path, name: &str) -> Node {
    start_node_with(url, dir, name, &[])
}

/// [`start_node`], with `more` options.
fn start_node_with(url: &str, dir: &Path, name: &str, more: &[&str]) -> Node {
    let mut args = vec!["--nats", url, "--nats-prefix", "e2e-test"];
    args.extend_from_slice(more);
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

#[test]
fn two_nodes_share_topics_through_nats() {
    if !available("two_nodes_share_topics_through_nats") {
        return;
    }
    let dir = ScratchDir::new("nats");
    let mut nats = NatsServer::start();
    let a = start_node(&nats.url(), &dir, "a");
    let mut b = start_node(&nats.url(), &dir, "b");
    let Resumed {
        mut subscribers,
        mut seen,
        mut published,
    } = bus::events_cross_nodes_and_survive_a_killed_node(&a, &mut b);

    // NATS restarts mid-stream (with its store): the nodes say so and
    // refuse publishes meanwhile; back, the subscriptions go on, nothing
    // lost or twice, no resync.
    let c = start_node(&nats.url(), &dir, "c");
    nats.stop();
    bus::wait_for_the_bus_gone(&[&a, &c], "nats", "tether_nats_connected 0\n");
    assert_eq!(publish(&c, "refused"), Err(503));
    nats.restart();
    for (log, metrics) in bus::wait_for_the_bus_back(&[&a, &c]) {
        assert!(log.contains("connection to"), "{log}");
        // At least once: a server still starting may take a connection
        // and drop it, and the node then connects once more.
        let reconnects = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tether_nats_reconnects_total "))
            .and_then(|v| v.parse::<u64>().ok());
        assert!(reconnects.is_some_and(|n| n >= 1), "{metrics}");
    }
    for n in 23..=25 {
        publish_next(&c, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        while seen.len() < published.len() {
            seen.push(subscriber.next());
        }
        assert_eq!(*seen, events(&published), "delivery went on");
    }
    assert!(a.metrics().contains("tether_nats_resyncs_total 0\n"));
    drop(subscribers);
    drop((a, b, c));
}

#[test]
fn a_publish_key_holds_across_nodes() {
    if !available("a_publish_key_holds_across_nodes") {
        return;
    }
    let dir = ScratchDir::new("nats-keys");
    let nats = NatsServer::start();
    let a = start_node(&nats.url(), &dir, "a");
    // Node b has its bus from the environment (TETHER_NATS) and a
    // configuration file (nats-prefix), as a deployment would.
    let config = dir.join("b.toml");
    std::fs::write(&config, "nats-prefix = \"e2e-test\"\n").unwrap();
    let url = nats.url();
    let config_arg = config.to_str().unwrap();
    let b = Node::start(
        &dir,
        "b",
        &["--config", config_arg],
        &[("TETHER_PUBLISH_TOKEN", TOKEN), ("TETHER_NATS", url.as_str())],
    );
    bus::a_publish_key_holds_across_nodes(&a, &b, "nats");
    drop((a, b));
}

#[test]
fn a_client_ahead_of_its_node_is_held_until_the_topic_reaches_its_id() {
    if !available("a_client_ahead_of_its_node_is_held_until_the_topic_reaches_its_id") {
        return;
    }
    let dir = ScratchDir::new("nats-ahead");
    let nats = NatsServer::start();
    let a = start_node_with(&nats.url(), &dir, "a", &["--resume-wait", "1"]);
    bus::a_client_ahead_is_held_until_the_topic_reaches_its_id(&a);
    drop(a);
}

#[test]
fn a_latest_value_topic_new_to_a_node_starts_from_nowhere_at_its_latest_event() {
    if !available("a_latest_value_topic_new_to_a_node_starts_from_nowhere_at_its_latest_event") {
        return;
    }
    let dir = ScratchDir::new("nats-latest");
    let nats = NatsServer::start();
    let latest = ["--namespace", bus::LATEST_NAMESPACE];
    let a = start_node_with(&nats.url(), &dir, "a", &latest);
    let b = start_node_with(&nats.url(), &dir, "b", &latest);
    bus::a_latest_value_topic_new_to_a_node_starts_at_its_latest_event(&a, &b);
    drop((a, b));
}
