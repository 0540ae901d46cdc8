//! The bridge on a RabbitMQ cluster of three nodes (see
//! `tether_testkit::rabbitmq_cluster`), streams of three replicas: the
//! stream's writer is killed mid-publish, the publishing bridge moves to
//! another node of its URL, and every acknowledged event reaches a
//! follower connected to the other nodes once, in order, under the ids
//! a node that starts afterwards reads too; a bridge connected to a
//! surviving node, publishing as the writer dies, goes on being
//! acknowledged; and with a single replica left, nothing is confirmed.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use node::{Node, PREFIX};
use tether_hub::HubMessage;
use tether_testkit::rabbitmq_cluster::RabbitCluster;

#[test]
fn a_cluster_losing_the_streams_writer_loses_and_duplicates_nothing() {
    let Some(mut cluster) = RabbitCluster::start(3) else {
        return;
    };
    // Node a lists every RabbitMQ node, the writer's first (a stream's
    // writer is on the node that declared it); node b only the others.
    let mut a = Node::start(&cluster.url_of(&[0, 1, 2]), |c| c.replicas = 3);
    let mut b = Node::start(&cluster.url_of(&[1, 2]), |c| c.replicas = 3);
    let stream = format!("{PREFIX}.topic.replicated");
    let first = a.publish_until_acknowledged(0, "replicated", "m0", "k0").0;
    assert_eq!(cluster.leader_of(1, &stream), Some(0), "the writer is on node 0");
    b.follow(0, "replicated");
    let (history, dropped) = b.ready(0);
    assert_eq!(history.iter().map(|e| e.id()).collect::<Vec<_>>(), [first]);
    assert_eq!(dropped, None);

    // Node b publishes to a stream written on node 0 as well, from its
    // connection to a node that survives.
    b.publish_until_acknowledged(1, "survivor", "s", "s");
    let mut acknowledged = vec![first];
    let mut in_flight = Vec::new();
    for n in 1..40 {
        if n == 15 {
            // Node b's publishes in flight as the writer dies. (RabbitMQ
            // 3.10 has been seen to leave such a channel confirming
            // publishes its stream never got, for as long as it lived; the
            // chaos test meets that in about half its runs, this one has
            // not in the runs made: its timing is not forced here.)
            for i in 0..5 {
                let key = format!("s{i}");
                in_flight.push(b.publish_keyed(1, "survivor", &key, Some(&key)));
            }
            // The writer goes, with node a's connection: publishes wait
            // for a replica to take over, and are retried with their keys
            // (a retried one the broker had is a duplicate, of the same id).
            cluster.nodes[0].kill();
        }
        let (id, _) = a.publish_until_acknowledged(0, "replicated", &format!("m{n}"), &format!("k{n}"));
        acknowledged.push(id);
    }
    assert!(acknowledged.windows(2).all(|w| w[0] < w[1]), "{acknowledged:?}");
    // Each of b's is answered (acknowledged, or refused while the stream
    // moved), and b's publishes are acknowledged again: within the request
    // timeout, a stalled link is made again.
    for token in in_flight.into_iter().flatten() {
        match b.next(1) {
            HubMessage::Published { token: t, .. } | HubMessage::Duplicate { token: t, .. } => {
                assert_eq!(t, token);
            }
            other => panic!("expected the answer to {token}, got {other:?}"),
        }
    }
    b.publish_until_acknowledged(1, "survivor", "after", "s-after");
    assert_ne!(cluster.leader_of(1, &stream), Some(0), "a replica took over");

    let mut got = Vec::new();
    while got.len() < acknowledged.len() - 1 {
        match b.next(0) {
            HubMessage::Deliver(event) => got.push(event.id()),
            other => panic!("unexpected {other:?} after {} events", got.len()),
        }
    }
    assert_eq!(got, acknowledged[1..], "every acknowledged event once, in order");
    b.expect_quiet(0);
    assert_eq!(b.bridge.status().resyncs, 0);
    assert!(a.bridge.status().reconnects >= 1, "{:?}", a.bridge.status());

    // A node that starts now gets the whole backlog from the two left,
    // under the same ids (what a Last-Event-ID resumes from, on any node).
    let mut c = Node::start(&cluster.url_of(&[2, 1]), |c| c.replicas = 3);
    c.follow(1, "replicated");
    let (history, dropped) = c.ready(1);
    assert_eq!(history.iter().map(|e| e.id()).collect::<Vec<_>>(), acknowledged);
    assert_eq!(dropped, None);

    // The broker confirms a publish once a majority of the stream's
    // replicas hold it: a stream written on node 1, whose replica on
    // node 2 then goes, confirms nothing more, and the publish is
    // refused (node d's stream stays open on the writer's node).
    let mut d = Node::start(&cluster.url_of(&[1]), |c| {
        c.replicas = 3;
        c.request_timeout = std::time::Duration::from_secs(2);
    });
    d.publish_until_acknowledged(0, "quorum", "both", "q0");
    assert_eq!(cluster.leader_of(1, &format!("{PREFIX}.topic.quorum")), Some(1));
    cluster.nodes[2].kill();
    let token = d.publish(0, "quorum", "alone").unwrap();
    assert_eq!(
        d.published(0, token),
        Err(tether_hub::Error::BrokerUnavailable),
        "no majority, no confirmation"
    );
}
