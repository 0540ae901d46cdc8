//! The bridge on a cluster of three `nats-server -js` (see `support`),
//! with a stream of three replicas: a node of the cluster is killed
//! mid-stream, the bridges move to the others, and every acknowledged
//! event reaches the follower once, in order.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use node::Node;
use support::{NatsCluster, available};
use tether_hub::HubMessage;

#[test]
fn a_cluster_losing_one_node_loses_and_duplicates_nothing() {
    if !available("a_cluster_losing_one_node_loses_and_duplicates_nothing") {
        return;
    }
    let mut cluster = NatsCluster::start();
    // Node a knows the first server only (it learns the others from the
    // cluster); node b knows all three.
    let first = cluster.nodes[0].url();
    let mut a = Node::start(&first, |c| c.replicas = 3);
    let mut b = Node::start(&cluster.url(), |c| c.replicas = 3);
    b.follow(0, "replicated");
    assert!(b.ready(0).0.is_empty());

    let mut acknowledged = Vec::new();
    for n in 0..40 {
        if n == 15 {
            // The server node a is connected to goes away (and with it,
            // maybe, the stream's leader: publishes then wait for an
            // election, and are retried with their keys).
            cluster.nodes[0].stop();
        }
        let (id, _) = a.publish_until_acknowledged(0, "replicated", &format!("m{n}"), &format!("k{n}"));
        acknowledged.push(id);
    }
    assert!(acknowledged.windows(2).all(|w| w[0] < w[1]), "{acknowledged:?}");

    let mut got = Vec::new();
    while got.len() < acknowledged.len() {
        match b.next(0) {
            HubMessage::Deliver(event) => got.push(event.id()),
            other => panic!("unexpected {other:?} after {} events", got.len()),
        }
    }
    assert_eq!(got, acknowledged, "every acknowledged event once, in order");
    b.expect_quiet(0);
    assert_eq!(b.bridge.status().resyncs, 0);
    assert!(a.bridge.status().reconnects >= 1, "{:?}", a.bridge.status());

    // A node that starts now gets the whole backlog from the two left.
    let mut c = Node::start(&cluster.url(), |c| c.replicas = 3);
    c.follow(1, "replicated");
    let (history, dropped) = c.ready(1);
    assert_eq!(history.iter().map(|e| e.id()).collect::<Vec<_>>(), acknowledged);
    assert_eq!(dropped, None);
}
