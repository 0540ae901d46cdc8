//! Consumers in one group against a real Kafka-protocol broker (tansu,
//! which coordinates groups): they share the partitions, each record
//! published once between them; one that stops commits and leaves the
//! group, and the other commits what it acknowledged, joins again, and
//! takes the partitions over from their committed offsets, nothing lost
//! and nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod support;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tether_ingest::{Event, Outcome};
use tether_kafka::{Consumer, KafkaConfig};
use tether_testkit::kafka::Kafka;

use support::Producer;

const PATIENCE: Duration = Duration::from_secs(40);

/// Which consumer published which key.
type Published = (&'static str, String);

fn member(name: &'static str, config: KafkaConfig, tx: mpsc::Sender<Published>) -> Consumer {
    Consumer::start(config, move |event: &Event<'_>| {
        let _ = tx.send((name, event.key.to_owned()));
        Outcome::Published
    })
    .unwrap()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Receives until `n` publishes came, then a little longer for any more
/// (a duplicate would come right behind).
fn receive(rx: &mpsc::Receiver<Published>, n: usize) -> Vec<Published> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(rx.recv_timeout(PATIENCE).expect("a publish"));
    }
    while let Ok(more) = rx.recv_timeout(Duration::from_millis(500)) {
        out.push(more);
    }
    out
}

/// Produces `per` records to each of `partitions` partitions: their keys.
/// One record a batch: tansu (0.6) lists a partition's end as its last
/// batch's first offset plus one, so that an offset committed after a
/// batch of several would look past the end to a consumer taking the
/// partition over, and be read again from the earliest.
fn produce(producer: &Producer, topic: &str, partitions: i32, label: &str, per: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for partition in 0..partitions {
        for i in 0..per {
            for offset in producer.produce_text(topic, partition, &[&format!("{label}{i}")]) {
                keys.push(format!("kafka:{topic}:{partition}:{offset}"));
            }
        }
    }
    keys.sort();
    keys
}

fn partition_of(key: &str) -> i32 {
    key.rsplit(':').nth(1).unwrap().parse().unwrap()
}

#[test]
fn two_consumers_share_the_partitions_and_one_takes_over_when_the_other_leaves() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("shared");
    producer.create_topic(&topic, 4);
    let mut config = KafkaConfig::new(vec![kafka.addr().to_owned()], vec![topic.clone()]);
    config.group = kafka.unique("group");
    config.fetch_wait = Duration::from_millis(100);
    config.session_timeout = Duration::from_secs(2);
    config.heartbeat_interval = Duration::from_millis(100);
    config.rebalance_timeout = Duration::from_secs(2);
    // No commits but those of a rebalance and of a stop: b, which keeps
    // its partitions through the rebalance, resumes them from what it
    // committed when the rebalance began.
    config.commit_interval = Duration::from_secs(3600);

    let (tx, rx) = mpsc::channel();
    let a = member("a", config.clone(), tx.clone());
    let b = member("b", config, tx);
    let (wa, wb) = (a.watch(), b.watch());
    wait_until("two partitions each", || {
        wa.stats().partitions == 2 && wb.stats().partitions == 2
    });

    let first = produce(&producer, &topic, 4, "first", 3);
    let seen = receive(&rx, first.len());
    let mut keys: Vec<String> = seen.iter().map(|(_, k)| k.clone()).collect();
    keys.sort();
    assert_eq!(keys, first, "each record published once between them");
    // Each consumer had partitions of its own.
    let mut owners: BTreeMap<i32, &str> = BTreeMap::new();
    for (name, key) in &seen {
        let owner = *owners.entry(partition_of(key)).or_insert(name);
        assert_eq!(owner, *name, "a partition read by both: {seen:?}");
    }
    assert_eq!(owners.values().filter(|n| **n == "a").count(), 2, "{owners:?}");

    // a leaves: b takes its partitions over where a's commits left them.
    a.stop();
    wait_until("b takes every partition", || wb.stats().partitions == 4);
    assert!(wb.stats().rebalances >= 1);
    assert!(
        wa.stats().commits >= 1 && wb.stats().commits >= 1,
        "a at its stop, b at the rebalance"
    );
    let second = produce(&producer, &topic, 4, "second", 2);
    let seen = receive(&rx, second.len());
    assert!(seen.iter().all(|(name, _)| *name == "b"), "{seen:?}");
    let mut keys: Vec<String> = seen.into_iter().map(|(_, k)| k).collect();
    keys.sort();
    assert_eq!(keys, second, "nothing lost, nothing of a's again");
    b.stop();
}

/// A stop while the group's coordinator holds the join (tansu holds a
/// first join for half the session timeout, as a rebalance waiting for
/// slow members would) ends the consumer at once, not when the join is
/// answered.
#[test]
fn a_stop_does_not_wait_for_a_held_join() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("held");
    producer.create_topic(&topic, 1);
    let mut config = KafkaConfig::new(vec![kafka.addr().to_owned()], vec![topic]);
    config.group = kafka.unique("group");
    config.session_timeout = Duration::from_secs(120);
    config.rebalance_timeout = Duration::from_secs(120);
    let (tx, _rx) = mpsc::channel();
    let consumer = member("a", config, tx);
    let watch = consumer.watch();
    // Well into its join, which the broker holds for a minute.
    std::thread::sleep(Duration::from_secs(1));
    let (stopped, done) = mpsc::channel();
    std::thread::spawn(move || {
        consumer.stop();
        let _ = stopped.send(());
    });
    done.recv_timeout(PATIENCE)
        .expect("stopped while the join was held");
    assert_eq!(watch.stats().partitions, 0, "it never joined");
}
