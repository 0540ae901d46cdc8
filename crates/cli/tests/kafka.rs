//! `tether serve --kafka-brokers ... --kafka-topics ...` against a real
//! Kafka-protocol broker (tansu, started for each test, or the broker of
//! TETHER_TEST_KAFKA; skipped, saying why, where neither is to be had):
//! records reach an event-stream subscriber in order per partition,
//! routed by header, mapping or name; a record with a bad topic or a
//! value not UTF-8 is skipped and counted; /metrics and /readyz report
//! the consumer; a node that cannot reach Kafka is not ready; the
//! options from a file are checked. The faults (the broker's connections cut, a node killed
//! before committing) are in `ingest/kafka_faults.rs`, checked by
//! `ingest/checker.rs`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "ingest/checker.rs"]
mod checker;
#[path = "ingest/kafka_faults.rs"]
mod faults;
#[path = "serve/process.rs"]
mod process;
#[path = "../../kafka/tests/support/mod.rs"]
mod producer;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tether_testkit::SseClient;
use tether_testkit::kafka::Kafka;

use process::{Process, address};
use producer::Producer;
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(30);

/// A `tether serve --app hub` node consuming Kafka topics.
struct Node {
    process: Process,
    addr: SocketAddr,
    group: String,
}

impl Node {
    /// Consuming `topics` of the broker at `brokers` in `group`, its
    /// events kept in `data`, or in memory only.
    fn start(brokers: &str, topics: &str, group: &str, data: Option<&Path>, args: &[&str]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
        command
            .args(["serve", "--app", "hub", "--port", "0", "--threads", "2"])
            .args(["--kafka-brokers", brokers, "--kafka-topics", topics])
            .args(["--kafka-group", group, "--kafka-fetch-wait", "0.1"])
            // Short, so that joins are quick (tansu holds a first join for
            // half the session timeout, and a node killed stays in the
            // group until its session ends).
            .args([
                "--kafka-session-timeout",
                "2",
                "--kafka-heartbeat-interval",
                "0.2",
            ])
            .args(["--kafka-rebalance-timeout", "2"]);
        match data {
            Some(data) => command.arg("--data-dir").arg(data),
            None => command.arg("--memory"),
        };
        command.args(args).stderr(std::process::Stdio::null());
        let (process, line) = Process::start(&mut command);
        let addr = address(&line).unwrap_or_else(|| panic!("did not start: {line:?}"));
        Node {
            process,
            addr,
            group: group.to_owned(),
        }
    }

    /// The value of `tether_kafka_NAME{group="..."}`.
    fn metric(&self, name: &str) -> u64 {
        let page = tether_testkit::scrape_metrics(self.addr);
        let series = format!("tether_kafka_{name}{{group=\"{}\"}}", self.group);
        tether_testkit::metric_sample(&page, &series)
            .trim()
            .parse()
            .unwrap()
    }

    fn subscribe(&self, topic: &str, last_id: Option<&str>) -> SseClient {
        let headers = last_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let client = SseClient::connect(self.addr, &format!("/topics/{topic}/events"), &headers);
        assert_eq!(client.response.status, 200);
        client
    }

    fn readyz(&self, query: &str) -> (u16, String) {
        let ready = tether_testkit::get(self.addr, &format!("/readyz{query}"));
        (ready.status, String::from_utf8_lossy(&ready.body).into_owned())
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn records_reach_a_subscriber_in_order_per_partition_and_bad_ones_are_skipped() {
    let Some(kafka) = Kafka::start() else { return };
    let producer = Producer::connect(kafka.addr());
    let topic = kafka.unique("orders");
    producer.create_topic(&topic, 2);
    let group = kafka.unique("group");
    let mapping = format!("{topic}=shop.orders");
    let node = Node::start(kafka.addr(), &topic, &group, None, &["--kafka-topic", &mapping]);
    wait_until("consuming", || node.readyz("").1.contains("[+] kafka: consuming"));
    let mut orders = node.subscribe("shop.orders", None);
    let mut paid = node.subscribe("shop.paid", None);

    let paid_headers: &[(&str, &str)] = &[("tether-topic", "shop.paid"), ("tether-event", "paid")];
    let bad_topic: &[(&str, &str)] = &[("tether-topic", "shop/paid")];
    producer.produce(
        &topic,
        0,
        &[
            (b"a1", &[]),
            (b"misrouted", bad_topic),
            (&[0xff, 0xfe], &[]),
            (b"p1", paid_headers),
            (b"a2", &[]),
        ],
    );
    producer.produce_text(&topic, 1, &["b1", "b2", "b3"]);

    let mut zero = Vec::new();
    let mut one = Vec::new();
    for _ in 0..5 {
        let event = orders.next_event();
        assert_eq!(event.event_type(), "message");
        match event.data() {
            d if d.starts_with('a') => zero.push(d.to_owned()),
            d => one.push(d.to_owned()),
        }
    }
    assert_eq!(zero, ["a1", "a2"], "partition 0 in its order");
    assert_eq!(one, ["b1", "b2", "b3"], "partition 1 in its order");
    let event = paid.next_event();
    assert_eq!((event.event_type(), event.data()), ("paid", "p1"));

    wait_until("counted and committed", || {
        node.metric("published_total") == 6 && node.metric("commits_total") >= 1
    });
    assert_eq!(
        node.metric("failed_total"),
        2,
        "the bad topic and the value not UTF-8"
    );
    assert_eq!(node.metric("consumed_total"), 8);
    let (status, body) = node.readyz("");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_node_that_cannot_reach_kafka_is_not_ready() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args(["serve", "--app", "hub", "--port", "0", "--memory"])
        .args(["--kafka-brokers", &addr, "--kafka-topics", "orders"])
        .stderr(std::process::Stdio::null());
    let (_process, line) = Process::start(&mut command);
    let node = address(&line).unwrap_or_else(|| panic!("did not start: {line:?}"));
    wait_until("reported", || {
        let ready = tether_testkit::get(node, "/readyz");
        ready.status == 503 && String::from_utf8_lossy(&ready.body).contains("[-] kafka: cannot reach Kafka")
    });
}

#[test]
fn the_options_from_a_configuration_file_are_checked() {
    let dir = TempDir::new("kafka-config");
    let good = dir.write(
        "good.toml",
        b"app = \"hub\"\nkafka-brokers = [\"k1:9092\", \"k2:9092\"]\nkafka-topics = [\"orders\"]\n\
          kafka-group = \"shop\"\nkafka-topic = [\"orders=shop.orders\"]\nkafka-commit-interval = 1\n",
    );
    let out = process::output(&["check-config", &good], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // SASL, its password from a file.
    let secret = dir.write("kafka-password", b"s3cret-from-file\n");
    let sasl = "app = \"hub\"\nkafka-brokers = [\"k1:9093\"]\nkafka-topics = [\"orders\"]\nkafka-tls = true\n\
                kafka-sasl-mechanism = \"SCRAM-SHA-512\"\nkafka-sasl-username = \"tether\"\n";
    let with_file = dir.write(
        "sasl-file.toml",
        format!("{sasl}kafka-sasl-password-file = \"{secret}\"\n").as_bytes(),
    );
    let out = process::output(&["check-config", &with_file], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // In the file itself (check-config reads no environment, where
    // TETHER_KAFKA_SASL_PASSWORD sets the same option).
    let in_file = dir.write(
        "sasl-in-file.toml",
        format!("{sasl}kafka-sasl-password = \"s3cret-in-file\"\n").as_bytes(),
    );
    let out = process::output(&["check-config", &in_file], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let without = dir.write("sasl-without.toml", sasl.as_bytes());
    let out = process::output(&["check-config", &without], &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("needs a password"), "{said}");
    for (bad, said) in [
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-topic = [\"orders\"]\n",
            "--kafka-topic",
        ),
        ("kafka-topics = [\"orders\"]\n", "needs --kafka-brokers"),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-session-timeout = 3\nkafka-heartbeat-interval = 3\n",
            "under the session timeout",
        ),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-sasl-mechanism = \"SCRAM-SHA-512\"\n",
            "needs --kafka-sasl-username",
        ),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-sasl-mechanism = \"GSSAPI\"\nkafka-sasl-username = \"u\"\n",
            "not a SASL mechanism",
        ),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-sasl-mechanism = \"PLAIN\"\nkafka-sasl-username = \"u\"\n",
            "needs a password",
        ),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-ca-file = \"ca.pem\"\n",
            "not asked for",
        ),
        (
            "kafka-brokers = [\"k1:9092\"]\nkafka-topics = [\"orders\"]\nkafka-tls = true\nkafka-ca-file = \"absent.pem\"\n",
            "absent.pem",
        ),
        ("kafka-brokers = [\"k1:9092\"]\n", "no topic"),
        (
            "kafka-brokers = [\"k1\"]\nkafka-topics = [\"orders\"]\n",
            "HOST:PORT",
        ),
    ] {
        let path = dir.write("bad.toml", bad.as_bytes());
        let out = process::output(&["check-config", &path], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(stderr.contains(said), "{bad}: {stderr}");
    }
}
