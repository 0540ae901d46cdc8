//! The consumer against a real PostgreSQL server (skipped, saying why,
//! where none is installed): rows published in order and deleted, a
//! rolled-back transaction publishing nothing, refused rows kept as
//! failed, publishes the publisher could not take tried again before
//! later rows, two consumers on one table publishing each row once and in
//! order, a crash between a publish and its row's deletion publishing the
//! row again under the same key, the trigger waking the consumer and the
//! poll standing in for it, and a database it cannot reach reported.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_backoff::Backoff;
use tether_outbox::{Consumer, Health, OutboxConfig, OutboxEvent, Outcome, TableName};
use tether_testkit::postgres::Postgres;

const PATIENCE: Duration = Duration::from_secs(20);

/// What a recording publisher was handed, in order.
type Log = Arc<Mutex<Vec<OutboxEvent>>>;

fn config(pg: &Postgres) -> OutboxConfig {
    let mut config = OutboxConfig::new(pg.url());
    // Only the trigger wakes it, unless a test says otherwise.
    config.poll_interval = Duration::from_secs(3600);
    config.backoff = Backoff::new()
        .initial(Duration::from_millis(20))
        .max(Duration::from_millis(200));
    config
}

/// A server with the outbox table made from the crate's schema.
fn database() -> Option<Postgres> {
    let pg = Postgres::start()?;
    pg.psql(&TableName::default().schema());
    Some(pg)
}

fn recorder(log: &Log) -> impl FnMut(&OutboxEvent) -> Outcome + Send + 'static {
    let log = log.clone();
    move |event: &OutboxEvent| {
        log.lock().unwrap().push(event.clone());
        Outcome::Published
    }
}

/// Waits until `done` holds of the log.
fn wait_for(log: &Log, what: &str, done: impl Fn(&[OutboxEvent]) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(&log.lock().unwrap()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn insert(topic: &str, data: &str) -> String {
    format!("INSERT INTO tether_outbox (topic, data) VALUES ('{topic}', '{data}');")
}

#[test]
fn committed_rows_are_published_in_order_and_deleted_rolled_back_ones_never() {
    let Some(pg) = database() else { return };
    let log = Log::default();
    let consumer = Consumer::start(config(&pg), recorder(&log)).unwrap();
    let watch = consumer.watch();
    wait_until("the consumer takes the table", || {
        watch.health() == Health::Active
    });
    pg.psql(&format!(
        "BEGIN; CREATE TABLE orders (id int); INSERT INTO orders VALUES (1); {} {} COMMIT;",
        insert("orders", "one"),
        insert("orders", "two")
    ));
    pg.psql(&format!("BEGIN; {} ROLLBACK;", insert("orders", "rolled back")));
    pg.psql(
        "BEGIN; INSERT INTO tether_outbox (topic, event_type, data, publish_key) \
         VALUES ('orders', 'created', 'three', 'order-3'); COMMIT;",
    );
    wait_for(&log, "three published", |log| log.len() >= 3);
    let log = log.lock().unwrap().clone();
    let data: Vec<&str> = log.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["one", "two", "three"]);
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(log[0].key, format!("outbox:tether_outbox:{}", log[0].id));
    assert_eq!(log[0].event_type, None);
    assert_eq!(log[2].event_type.as_deref(), Some("created"));
    assert_eq!(log[2].key, "order-3");
    wait_until("the rows are deleted", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "0\n"
    });
    wait_until("counted", || watch.stats().published == 3);
    let stats = watch.stats();
    assert!(stats.active);
    assert_eq!((stats.failed, stats.database_errors), (0, 0));
    let mut metrics = String::new();
    watch.write_metrics(&mut metrics);
    assert!(metrics.contains("tether_outbox_published_total{table=\"tether_outbox\"} 3\n"));
    assert!(metrics.contains("tether_outbox_active{table=\"tether_outbox\"} 1\n"));
    consumer.stop();
    assert_eq!(watch.health(), Health::Stopped);
    assert!(!watch.stats().active);
}

#[test]
fn a_refused_row_is_kept_as_failed_and_the_rows_after_it_go_on() {
    let Some(pg) = database() else { return };
    let log = Log::default();
    let recorded = log.clone();
    let publisher = move |event: &OutboxEvent| {
        if event.topic == "bad topic" {
            return Outcome::Refused("invalid topic name".to_owned());
        }
        recorded.lock().unwrap().push(event.clone());
        Outcome::Published
    };
    let consumer = Consumer::start(config(&pg), publisher).unwrap();
    // Data over the limit is refused without being read.
    pg.psql(&format!(
        "{} {} {} INSERT INTO tether_outbox (topic, data) VALUES ('a', repeat('x', 2000000)); {}",
        insert("a", "1"),
        insert("bad topic", "2"),
        insert("a", "3"),
        insert("a", "4")
    ));
    wait_for(&log, "the rows around the refused ones", |log| log.len() == 3);
    let data: Vec<String> = log.lock().unwrap().iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, ["1", "3", "4"]);
    wait_until("two rows left", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "2\n"
    });
    assert_eq!(
        pg.psql("SELECT topic, left(data, 3), failed_at IS NOT NULL, failure FROM tether_outbox ORDER BY id"),
        "bad topic|2|t|invalid topic name\n\
         a|xxx|t|its data of 2000000 bytes is over the limit of 1048576\n"
    );
    pg.psql("DELETE FROM tether_outbox WHERE topic = 'a'");
    let watch = consumer.watch();
    wait_until("counted", || watch.stats().failed == 2);
    // Set pending again (by the operator, after fixing it), it is tried
    // again.
    pg.psql("UPDATE tether_outbox SET failed_at = NULL, failure = NULL, topic = 'a'");
    pg.psql("NOTIFY tether_outbox");
    wait_for(&log, "the fixed row", |log| log.len() == 4);
    consumer.stop();
}

#[test]
fn a_publish_the_publisher_cannot_take_is_tried_again_before_later_rows() {
    let Some(pg) = database() else { return };
    let log = Log::default();
    let recorded = log.clone();
    let mut refusals = 3;
    let publisher = move |event: &OutboxEvent| {
        if event.data == "first" && refusals > 0 {
            refusals -= 1;
            return Outcome::Unavailable("shutting down".to_owned());
        }
        recorded.lock().unwrap().push(event.clone());
        Outcome::Published
    };
    let consumer = Consumer::start(config(&pg), publisher).unwrap();
    pg.psql(&format!(
        "BEGIN; {} {} {} COMMIT;",
        insert("t", "first"),
        insert("t", "second"),
        insert("u", "third")
    ));
    wait_for(&log, "all three", |log| log.len() == 3);
    let data: Vec<String> = log.lock().unwrap().iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, ["first", "second", "third"]);
    let watch = consumer.watch();
    wait_until("counted", || watch.stats().published == 3);
    assert_eq!(watch.stats().retries, 3);
    consumer.stop();
}

#[test]
fn two_consumers_publish_every_row_once_and_in_order_per_topic() {
    let Some(pg) = database() else { return };
    let log = Log::default();
    let mut small = config(&pg);
    small.batch = 7;
    let first = Consumer::start(small.clone(), recorder(&log)).unwrap();
    let second = Consumer::start(small, recorder(&log)).unwrap();
    let (one, two) = (first.watch(), second.watch());
    wait_until("one active, one standing by", || {
        let healths = [one.health(), two.health()];
        healths.contains(&Health::Active) && healths.contains(&Health::Standby)
    });
    let topics = ["a", "b", "c"];
    let mut statements = String::new();
    for i in 0..60 {
        let topic = topics[i % topics.len()];
        statements.push_str(&insert(topic, &i.to_string()));
    }
    pg.psql(&format!("BEGIN; {statements} COMMIT;"));
    wait_for(&log, "the first sixty", |log| log.len() >= 60);
    // The active one stops; the other takes over for the rest.
    let (active, standby) = match one.health() {
        Health::Active => (first, second),
        _ => (second, first),
    };
    active.stop();
    for i in 60..120 {
        let topic = topics[i % topics.len()];
        pg.psql(&insert(topic, &i.to_string()));
    }
    let watch = standby.watch();
    wait_until("the standby takes over", || watch.health() == Health::Active);
    wait_for(&log, "all of them", |log| log.len() >= 120);
    std::thread::sleep(Duration::from_millis(200));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 120, "each row once");
    let mut per_topic: HashMap<&str, Vec<i64>> = HashMap::new();
    for event in &log {
        per_topic
            .entry(&event.topic)
            .or_default()
            .push(event.data.parse().unwrap());
    }
    for (topic, numbers) in per_topic {
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{topic}: {numbers:?}");
        assert_eq!(numbers.len(), 40);
    }
    standby.stop();
}

#[test]
fn a_crash_between_the_publish_and_the_delete_publishes_again_under_the_same_key() {
    let Some(pg) = database() else { return };
    let log = Log::default();
    let recorded = log.clone();
    let url = pg.url();
    let mut crashed = false;
    // After the first publish of "crash", the consumer's connection is
    // ended by the server (as if the node died) before it can delete the
    // row.
    let publisher = move |event: &OutboxEvent| {
        recorded.lock().unwrap().push(event.clone());
        if event.data == "crash" && !crashed {
            crashed = true;
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = 'tether-outbox'",
                    &[],
                )
                .unwrap();
        }
        Outcome::Published
    };
    let consumer = Consumer::start(config(&pg), publisher).unwrap();
    pg.psql(&format!(
        "BEGIN; {} {} {} COMMIT;",
        insert("t", "before"),
        insert("t", "crash"),
        insert("t", "after")
    ));
    wait_until("the table empties", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "0\n"
    });
    let log = log.lock().unwrap().clone();
    let data: Vec<&str> = log.iter().map(|e| e.data.as_str()).collect();
    // The batch's deletion was lost with the connection: its rows come
    // again, in order, with the keys they had.
    assert_eq!(data, ["before", "crash", "after", "before", "crash", "after"]);
    for i in 0..3 {
        assert_eq!(log[i].key, log[i + 3].key);
        assert_eq!(log[i].id, log[i + 3].id);
    }
    let watch = consumer.watch();
    assert!(watch.stats().database_errors >= 1);
    assert_eq!(watch.stats().retries, 3, "the three rows of the lost commit");
    consumer.stop();
}

#[test]
fn the_poll_stands_in_for_a_missing_trigger() {
    let Some(pg) = database() else { return };
    pg.psql("DROP TRIGGER tether_outbox_notify ON tether_outbox");
    let log = Log::default();
    let mut polling = config(&pg);
    polling.poll_interval = Duration::from_millis(100);
    let consumer = Consumer::start(polling, recorder(&log)).unwrap();
    pg.psql(&insert("t", "polled"));
    wait_for(&log, "the polled row", |log| log.len() == 1);
    consumer.stop();
}

#[test]
fn a_database_it_cannot_reach_or_a_missing_table_is_reported() {
    let Some(pg) = Postgres::start() else { return };
    let consumer = Consumer::start(config(&pg), |_: &OutboxEvent| Outcome::Published).unwrap();
    let watch = consumer.watch();
    wait_until(
        "the missing table reported",
        || matches!(watch.health(), Health::Failing { ref error, reached: false } if error.contains("tether_outbox does not exist")),
    );
    assert!(!watch.health().ok());
    // Made, the table is found on a later attempt.
    pg.psql(&TableName::default().schema());
    wait_until("connected", || watch.health() == Health::Active);
    let port = pg.port;
    drop(pg);
    wait_until("the lost database reported", || {
        matches!(watch.health(), Health::Failing { reached: true, .. })
    });
    let errors = watch.stats().database_errors;
    wait_until("retried", || watch.stats().database_errors > errors);
    consumer.stop();
    let nowhere = OutboxConfig::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    assert!(
        Consumer::start(OutboxConfig::new("postgres://[::1"), |_: &OutboxEvent| {
            Outcome::Published
        })
        .is_err()
    );
    let mut zero = nowhere;
    zero.batch = 0;
    assert!(Consumer::start(zero, |_: &OutboxEvent| Outcome::Published).is_err());
}
