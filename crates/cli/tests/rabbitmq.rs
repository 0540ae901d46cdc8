//! `tether serve --app hub --rabbitmq-url ...` processes against a real
//! RabbitMQ started by the test (`tether_testkit::rabbitmq`): events
//! published on one node reach subscribers on the other over SSE and
//! WebSocket, in order; a client whose node is killed resumes on the
//! other node with its last id and gets every event exactly once;
//! RabbitMQ restarted mid-stream (with its data) is shown in `/metrics`,
//! publishes are refused meanwhile, and the subscriptions go on with
//! nothing lost or twice; a publish key holds across nodes, one of them
//! configured by the environment and a configuration file; a
//! latest-value topic new to a node starts its subscribers from nowhere
//! at its latest event, read from RabbitMQ. One broker serves the whole
//! test (it starts in seconds).
//!
//! Skipped (with a printed reason) when `rabbitmq-server` is not
//! installed, unless `TETHER_REQUIRE_RABBITMQ` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "rabbitmq")]

mod bus;
mod serve;
#[path = "../../rabbitmq/tests/support/mod.rs"]
mod support;

use std::path::Path;

use bus::{Resumed, ScratchDir, TOKEN, events, publish, publish_next};
use serve::Node;
use tether_testkit::rabbitmq::RabbitMq;

/// A `tether serve --app hub --rabbitmq-url URL` node of these tests.
fn start_node(url: &str, dir: &Path, name: &str, prefix: &str) -> Node {
    let args = ["--rabbitmq-url", url, "--rabbitmq-prefix", prefix];
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

#[test]
fn nodes_share_topics_through_rabbitmq() {
    let Some(mut rabbit) = RabbitMq::start() else {
        return;
    };
    let url = rabbit.url();
    let dir = ScratchDir::new("rabbitmq");
    let a = start_node(&url, &dir, "a", "e2e");
    let mut b = start_node(&url, &dir, "b", "e2e");
    let Resumed {
        mut subscribers,
        mut seen,
        mut published,
    } = bus::events_cross_nodes_and_survive_a_killed_node(&a, &mut b);

    // RabbitMQ restarts mid-stream (with its data): the nodes say so and
    // refuse publishes meanwhile; back, the subscriptions go on, nothing
    // lost or twice, no resync.
    let c = start_node(&url, &dir, "c", "e2e");
    rabbit.stop();
    bus::wait_for_the_bus_gone(&[&a, &c], "rabbitmq", "tether_rabbitmq_connected 0\n");
    assert_eq!(publish(&c, "refused"), Err(503));
    rabbit.start_again();
    for (log, metrics) in bus::wait_for_the_bus_back(&[&a, &c]) {
        assert!(log.contains("connection to"), "{log}");
        let reconnects = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tether_rabbitmq_reconnects_total "))
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
    assert!(a.metrics().contains("tether_rabbitmq_resyncs_total 0\n"));
    drop(subscribers);
    drop((a, b, c));

    // A publish key across nodes; node e has its bus from the
    // environment (TETHER_RABBITMQ_URL) and a configuration file
    // (rabbitmq-prefix), as a deployment would.
    let d = start_node(&url, &dir, "d", "e2e-keys");
    let config = dir.join("e.toml");
    std::fs::write(&config, "rabbitmq-prefix = \"e2e-keys\"\n").unwrap();
    let e = Node::start(
        &dir,
        "e",
        &["--config", config.to_str().unwrap()],
        &[
            ("TETHER_PUBLISH_TOKEN", TOKEN),
            ("TETHER_RABBITMQ_URL", url.as_str()),
        ],
    );
    bus::a_publish_key_holds_across_nodes(&d, &e, "rabbitmq");
    drop((d, e));

    // A latest-value topic new to a node: its latest event read from the
    // topic's stream.
    let args = [
        "--rabbitmq-url",
        url.as_str(),
        "--rabbitmq-prefix",
        "e2e-latest",
        "--namespace",
        bus::LATEST_NAMESPACE,
    ];
    let f = Node::start(&dir, "f", &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)]);
    let g = Node::start(&dir, "g", &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)]);
    bus::a_latest_value_topic_new_to_a_node_starts_at_its_latest_event(&f, &g);
    drop((f, g));
}
