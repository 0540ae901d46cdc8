//! The consumer against a real Kafka-protocol broker (tansu, started for
//! each test; or the broker of TETHER_TEST_KAFKA): records reach the
//! publisher in order per partition, keyed by topic, partition and
//! offset; offsets are committed only for acknowledged publishes, and a
//! new consumer in the group resumes there; records that cannot be
//! published are skipped and counted; a consumer without brokers says
//! so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tether_ingest::{Event, Outcome};
use tether_kafka::{Consumer, Health, KafkaConfig};
use tether_testkit::kafka::Kafka;

use support::Producer;

const PATIENCE: Duration = Duration::from_secs(30);

/// What a publisher saw: topic, event type, data, key.
type Seen = (String, Option<String>, String, String);

/// A consumer whose publisher sends what it sees (and publishes it).
fn consumer(config: KafkaConfig) -> (Consumer, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let consumer = Consumer::start(config, move |event: &Event<'_>| {
        let _ = tx.send(seen(event));
        Outcome::Published
    })
    .unwrap();
    (consumer, rx)
}

fn seen(event: &Event<'_>) -> Seen {
    (
        event.topic.to_owned(),
        event.event_type.map(str::to_owned),
        event.data.to_owned(),
        event.key.to_owned(),
    )
}

fn config(kafka: &Kafka, topics: &[&str]) -> KafkaConfig {
    let mut config = KafkaConfig::new(
        vec![kafka.addr().to_owned()],
        topics.iter().map(|t| (*t).to_owned()).collect(),
    );
    config.group = kafka.unique("group");
    config.fetch_wait = Duration::from_millis(100);
    // Short, so that joins are quick (tansu holds a first join for half
    // the session timeout).
    config.session_timeout = Duration::from_secs(2);
    config.heartbeat_interval = Duration::from_millis(200);
    config.rebalance_timeout = Duration::from_secs(2);
    config
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(PATIENCE).expect("a publish")
}

#[test]
fn records_are_published_in_order_per_partition_with_their_keys() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("orders");
    producer.create_topic(&topic, 2);
    let headers: &[(&str, &str)] = &[("tether-topic", "shop.paid"), ("tether-event", "paid")];
    producer.produce(&topic, 0, &[(b"a0", &[]), (b"a1", headers), (b"a2", &[])]);
    producer.produce_text(&topic, 1, &["b0", "b1"]);
    let mut config = config(&kafka, &[&topic]);
    config.mapping.push((topic.clone(), "mapped".to_owned()));
    let (consumer, rx) = consumer(config);
    let seen: Vec<Seen> = (0..5).map(|_| next(&rx)).collect();
    let of = |p: i32| -> Vec<&Seen> {
        seen.iter()
            .filter(|s| s.3.starts_with(&format!("kafka:{topic}:{p}:")))
            .collect()
    };
    let zero = of(0);
    assert_eq!(zero.len(), 3, "{seen:?}");
    assert_eq!(
        *zero[0],
        ("mapped".into(), None, "a0".into(), format!("kafka:{topic}:0:0"))
    );
    assert_eq!(
        *zero[1],
        (
            "shop.paid".into(),
            Some("paid".into()),
            "a1".into(),
            format!("kafka:{topic}:0:1")
        )
    );
    assert_eq!(zero[2].2, "a2");
    let one: Vec<&str> = of(1).iter().map(|s| s.2.as_str()).collect();
    assert_eq!(one, ["b0", "b1"]);
    let watch = consumer.watch();
    assert_eq!(watch.health(), Health::Consuming);
    wait_until("the offsets committed", || watch.stats().commits >= 1);
    let stats = watch.stats();
    assert_eq!((stats.published, stats.failed), (5, 0));
    let mut metrics = String::new();
    watch.write_metrics(&mut metrics);
    assert!(
        metrics.contains("tether_kafka_published_total{group=\""),
        "{metrics}"
    );
    consumer.stop();
}

#[test]
fn a_new_consumer_in_the_group_resumes_after_the_acknowledged_publishes() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("resume");
    producer.create_topic(&topic, 1);
    producer.produce_text(&topic, 0, &["1", "2", "3"]);
    let config = config(&kafka, &[&topic]);

    // The publisher takes "1" and cannot take "2": the consumer, stopped
    // while it tries again, commits past "1" only.
    let (tx, rx) = mpsc::channel();
    let first = Consumer::start(config.clone(), move |event: &Event<'_>| {
        let _ = tx.send(seen(event));
        if event.data == "1" {
            Outcome::Published
        } else {
            Outcome::Unavailable("not now".to_owned())
        }
    })
    .unwrap();
    assert_eq!(next(&rx).2, "1");
    assert_eq!(next(&rx).2, "2");
    let watch = first.watch();
    wait_until("a publish tried again", || watch.stats().retries >= 1);
    first.stop();
    assert_eq!(watch.health(), Health::Stopped);
    assert_eq!(watch.stats().published, 1);

    let (second, rx) = consumer(config.clone());
    assert_eq!(
        next(&rx).2,
        "2",
        "nothing acknowledged comes again, nothing else is missed"
    );
    assert_eq!(next(&rx).2, "3");
    let watch = second.watch();
    wait_until("the offsets committed", || watch.stats().commits >= 1);
    second.stop();

    // All acknowledged and committed: a third consumer gets only what
    // is new.
    producer.produce_text(&topic, 0, &["4"]);
    let (third, rx) = consumer(config);
    assert_eq!(next(&rx).2, "4");
    third.stop();
}

#[test]
fn records_that_cannot_be_published_are_skipped_and_counted() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("bad");
    producer.create_topic(&topic, 1);
    producer.produce(
        &topic,
        0,
        &[
            (b"ok1", &[]),
            (&[0xff, 0xfe], &[]),
            (b"refused", &[]),
            (b"ok2", &[]),
        ],
    );
    let (tx, rx) = mpsc::channel();
    let consumer = Consumer::start(config(&kafka, &[&topic]), move |event: &Event<'_>| {
        let _ = tx.send(seen(event));
        if event.data == "refused" {
            Outcome::Refused("a bad topic".to_owned())
        } else {
            Outcome::Published
        }
    })
    .unwrap();
    let data: Vec<String> = (0..3).map(|_| next(&rx).2).collect();
    assert_eq!(
        data,
        ["ok1", "refused", "ok2"],
        "the value not UTF-8 never reaches the publisher"
    );
    let watch = consumer.watch();
    wait_until("the offsets committed past them", || watch.stats().commits >= 1);
    let stats = watch.stats();
    assert_eq!((stats.published, stats.failed, stats.consumed), (2, 2, 4));
    consumer.stop();
}

#[test]
fn a_consumer_without_brokers_is_failing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = KafkaConfig::new(vec![addr.to_string()], vec!["orders".to_owned()]);
    config.request_timeout = Duration::from_secs(1);
    let (consumer, _rx) = consumer(config);
    let watch = consumer.watch();
    wait_until("failing", || matches!(watch.health(), Health::Failing { .. }));
    let Health::Failing { reached, error } = watch.health() else {
        unreachable!()
    };
    assert!(!reached, "{error}");
    assert!(watch.stats().kafka_errors >= 1);
    consumer.stop();
}

#[test]
fn a_topic_not_on_the_brokers_is_failing() {
    let Some(kafka) = Kafka::start() else { return };
    let topic = kafka.unique("absent");
    let (consumer, _rx) = consumer(config(&kafka, &[&topic]));
    let watch = consumer.watch();
    wait_until("failing", || matches!(watch.health(), Health::Failing { .. }));
    assert!(
        watch.health().describe().contains(&topic),
        "{}",
        watch.health().describe()
    );
    consumer.stop();
}
