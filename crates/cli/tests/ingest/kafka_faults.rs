//! The Kafka consumer under faults, each checked by the one checker
//! (every record produced delivered once, in order per partition): the
//! broker's connections cut while records are published and their
//! offsets not committed, and the broker unreachable for a while (a
//! proxy in the test closes both ends and refuses new connections; a
//! restart as the consumer sees it: tansu's memory storage keeps no
//! record across a real restart of the broker); and a node killed
//! (SIGKILL) before committing, started again on its data.
//!
//! A broker that stops answering (the proxy silent: connections open,
//! nothing crossing) is an error within the request timeout, reported
//! by `/readyz` meanwhile; then the records come as before.
//!
//! The commit window is held open for certain by `--kafka-commit-interval
//! 3600`: the node publishes and does not commit until the fault.

use super::checker::{Expected, Follower, assert_delivered_once};
use super::*;

use tether_testkit::proxy::Proxy;

/// Produces `LABEL-1` to `LABEL-N` to partition 0 of `topic`, a record a
/// batch (tansu reports a partition's end wrong after a batch of several
/// records); records them.
fn produce(producer: &Producer, expected: &mut Expected, topic: &str, label: &str, n: usize) {
    for i in 1..=n {
        let data = format!("{label}-{i}");
        producer.produce_text(topic, 0, &[&data]);
        expected.commit(topic, &data);
    }
}

/// Produces a last record and reads `follower` up to it.
fn fence(producer: &Producer, expected: &mut Expected, follower: &mut Follower) {
    produce(producer, expected, &follower.topic.clone(), "fence", 1);
    follower.read_until("fence-1");
}

/// A broker that advertises a proxy in front of it, a topic of one
/// partition on it and a group name; the test's producer reaches the
/// broker itself (but its partition's leader at the advertised address).
struct Proxied {
    proxy: Proxy,
    kafka: Kafka,
    producer: Producer,
    /// The proxy's address: the node's brokers.
    through: String,
    topic: String,
    group: String,
}

impl Proxied {
    fn start(name: &str) -> Option<Proxied> {
        let proxy = Proxy::bind();
        let kafka = Kafka::start_advertising(&proxy.addr().to_string())?;
        proxy.forward_to(kafka.addr());
        let producer = Producer::connect(kafka.addr());
        let topic = kafka.unique(name);
        producer.create_topic(&topic, 1);
        let group = kafka.unique("group");
        Some(Proxied {
            through: proxy.addr().to_string(),
            proxy,
            kafka,
            producer,
            topic,
            group,
        })
    }
}

#[test]
fn the_brokers_connections_cut_before_a_commit_every_record_delivered_once_in_order() {
    let Some(Proxied {
        proxy,
        kafka: _kafka,
        producer,
        through,
        topic,
        group,
    }) = Proxied::start("cut")
    else {
        return;
    };
    let dir = TempDir::new("kafka-cut");
    let node = Node::start(
        &through,
        &topic,
        &group,
        Some(&dir.0.join("data")),
        &["--kafka-commit-interval", "3600"],
    );
    let mut expected = Expected::default();
    let mut follower = Follower::new(&topic);
    follower.connect(node.addr);
    produce(&producer, &mut expected, &topic, "before", 10);
    follower.read(10);
    assert_eq!(node.metric("commits_total"), 0, "published, not committed");
    // Every connection closed, and the next ones too, until the consumer
    // has tried twice: then it reconnects, and reads from the committed
    // offset (none: the first record), publishing the ten again under
    // their keys.
    proxy.set_down(true);
    proxy.cut();
    wait_until("the consumer tries again", || proxy.refused() >= 2);
    proxy.set_down(false);
    wait_until("read again", || node.metric("consumed_total") >= 20);
    produce(&producer, &mut expected, &topic, "after", 10);
    fence(&producer, &mut expected, &mut follower);
    assert_delivered_once(&expected, &[&follower]);
}

#[test]
fn a_broker_that_stops_answering_is_an_error_reported_by_readyz_until_it_answers() {
    let Some(Proxied {
        proxy,
        kafka: _kafka,
        producer,
        through,
        topic,
        group,
    }) = Proxied::start("silent")
    else {
        return;
    };
    let node = Node::start(
        &through,
        &topic,
        &group,
        None,
        // Commits far apart: the request in flight when the silence
        // starts is almost surely a fetch (a heartbeat now and then).
        &["--kafka-request-timeout", "1", "--kafka-commit-interval", "3600"],
    );
    let mut expected = Expected::default();
    let mut follower = Follower::new(&topic);
    follower.connect(node.addr);
    produce(&producer, &mut expected, &topic, "before", 5);
    follower.read(5);
    assert_eq!(node.metric("errors_total"), 0);
    // Silent: no end of stream, no error, no answer. Without a bound on
    // each request the consumer would wait on its fetch for good, still
    // "consuming" and ready.
    proxy.set_silent(true);
    wait_until("the silence counted as an error", || {
        node.metric("errors_total") >= 1
    });
    // Kafka away is every node's condition: reported, and counted by a
    // balancer that asks for shared conditions.
    let (status, body) = node.readyz("");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[~] kafka: cannot reach Kafka"), "{body}");
    assert!(body.contains("no answer"), "{body}");
    let (status, body) = node.readyz("?shared=1");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("[-] kafka: cannot reach Kafka"), "{body}");
    // (The test's producer reaches the broker at the address it
    // advertises, the proxy's, too: it produces once the silence is over.)
    proxy.set_silent(false);
    proxy.cut();
    produce(&producer, &mut expected, &topic, "after", 5);
    wait_until("consuming again", || {
        node.readyz("").1.contains("[+] kafka: consuming")
    });
    fence(&producer, &mut expected, &mut follower);
    assert_delivered_once(&expected, &[&follower]);
}

#[test]
fn a_node_killed_after_publishing_and_before_committing_publishes_nothing_twice() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("killed");
    producer.create_topic(&topic, 1);
    let group = kafka.unique("group");
    let dir = TempDir::new("kafka-killed");
    let data = dir.0.join("data");
    let mut node = Node::start(
        kafka.addr(),
        &topic,
        &group,
        Some(&data),
        &["--kafka-commit-interval", "3600"],
    );
    let mut expected = Expected::default();
    let mut follower = Follower::new(&topic);
    follower.connect(node.addr);
    produce(&producer, &mut expected, &topic, "before", 3);
    follower.read(3);
    // Counted once the publish is acknowledged, which may be after the
    // subscriber has the event.
    wait_until("three published", || node.metric("published_total") == 3);
    assert_eq!(node.metric("commits_total"), 0, "published, not committed");
    node.process.kill();

    // Restarted, it reads the records again from the group's offset (none
    // committed: the first) and publishes them under their keys: the hub
    // (its log read back) knows them and makes no event of them.
    let node = Node::start(kafka.addr(), &topic, &group, Some(&data), &[]);
    follower.connect(node.addr);
    wait_until("published again and committed", || {
        node.metric("published_total") == 3 && node.metric("commits_total") >= 1
    });
    produce(&producer, &mut expected, &topic, "after", 3);
    fence(&producer, &mut expected, &mut follower);

    // Stopped (SIGTERM), it commits what the hub acknowledged: a node
    // started after it reads nothing again.
    let mut node = node;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &node.process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    node.process.child.wait().unwrap();
    drop(node);
    let node = Node::start(kafka.addr(), &topic, &group, Some(&data), &[]);
    follower.connect(node.addr);
    produce(&producer, &mut expected, &topic, "last", 1);
    follower.read_until("last-1");
    assert_eq!(
        node.metric("consumed_total"),
        1,
        "resumed after the committed offset"
    );
    assert_delivered_once(&expected, &[&follower]);
}
