//! `tether serve --outbox-url URL` against a real PostgreSQL server
//! (skipped, saying why, where none is installed): the book's outbox page
//! run as written (its SQL taken from the page): an order's transaction
//! reaches an event-stream subscriber, a rolled-back one publishes
//! nothing, a refused row is kept as failed and published once fixed,
//! /metrics and /readyz report the consumer; the options from a file
//! checked. The faults (the database restarted, the connection cut, a
//! node killed, two nodes on one table) are in `ingest/outbox_faults.rs`,
//! checked by `ingest/checker.rs`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "ingest/checker.rs"]
mod checker;
#[path = "ingest/outbox_faults.rs"]
mod faults;
#[path = "serve/process.rs"]
mod process;
#[cfg(feature = "redis")]
#[path = "../../redis/tests/support/mod.rs"]
mod support;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tether_testkit::SseClient;
use tether_testkit::postgres::Postgres;

use process::{Process, address};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(20);

/// The book's page on the outbox.
const PAGE: &str = include_str!("../../../docs/src/guide/outbox.md");

/// The page's SQL blocks, in order.
fn page_sql() -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in PAGE.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```sql" => current = Some(String::new()),
            Some(block) if trimmed == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(trimmed);
                block.push('\n');
            }
            None => {}
        }
    }
    assert_eq!(blocks.len(), 3, "the schema, the order, the fix");
    blocks
}

/// A `tether serve --app hub` node with the outbox of `url`.
struct Node {
    process: Process,
    addr: SocketAddr,
}

impl Node {
    /// Its events kept in `data`, or in memory only; the URL from
    /// TETHER_OUTBOX_URL.
    fn start(url: &str, data: Option<&Path>) -> Node {
        Node::start_with(data, &[], &[("TETHER_OUTBOX_URL", url)])
    }

    fn start_with(data: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
        command
            .args(["serve", "--app", "hub", "--port", "0", "--threads", "2"])
            .args(["--outbox-poll-interval", "0.1"]);
        match data {
            Some(data) => command.arg("--data-dir").arg(data),
            None => command.arg("--memory"),
        };
        command
            .args(args)
            .envs(envs.iter().copied())
            .stderr(std::process::Stdio::null());
        let (process, line) = Process::start(&mut command);
        let addr = address(&line).unwrap_or_else(|| panic!("did not start: {line:?}"));
        Node { process, addr }
    }

    fn metric(&self, series: &str) -> u64 {
        let page = tether_testkit::scrape_metrics(self.addr);
        tether_testkit::metric_sample(&page, series)
            .trim()
            .parse()
            .unwrap()
    }

    fn active(&self) -> bool {
        self.metric("tether_outbox_active{table=\"tether_outbox\"}") == 1
    }

    fn subscribe(&self, topic: &str, last_id: Option<&str>) -> SseClient {
        let headers = last_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let client = SseClient::connect(self.addr, &format!("/topics/{topic}/events"), &headers);
        assert_eq!(client.response.status, 200);
        client
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn insert(topic: &str, data: &str) -> String {
    format!("INSERT INTO tether_outbox (topic, data) VALUES ('{topic}', '{data}');")
}

#[test]
fn the_pages_example_from_an_order_to_a_subscriber() {
    let Some(pg) = Postgres::start() else { return };
    let sql = page_sql();
    pg.psql(&sql[0]);
    pg.psql("CREATE TABLE orders (id int PRIMARY KEY, total int)");
    let dir = TempDir::new("page");
    let node = Node::start(&pg.url(), Some(&dir.0.join("data")));
    wait_until("the node publishes the table", || node.active());
    let mut subscriber = node.subscribe("orders", None);
    // Rolled back: nothing to publish; the page's order comes first.
    pg.psql(&format!(
        "BEGIN; INSERT INTO orders VALUES (41, 1); {} ROLLBACK;",
        insert("orders", "rolled back")
    ));
    pg.psql(&sql[1]);
    let event = subscriber.next_event();
    assert_eq!(event.event_type(), "created");
    assert_eq!(event.data(), r#"{"order":42,"total":1999}"#);
    assert_eq!(pg.psql("SELECT count(*) FROM orders"), "1\n");
    wait_until("the row deleted", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "0\n"
    });

    // A row the hub refuses is kept, marked; the next goes on; fixed as
    // the page says, it is published.
    let mut eu = node.subscribe("orders.eu", None);
    pg.psql(&format!(
        "{} {}",
        insert("orders/eu", "misrouted"),
        insert("orders", "next")
    ));
    assert_eq!(subscriber.next_event().data(), "next");
    assert_eq!(
        pg.psql("SELECT topic, failed_at IS NOT NULL, failure FROM tether_outbox"),
        "orders/eu|t|invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -, not . or ..)\n"
    );
    pg.psql(&sql[2]);
    assert_eq!(eu.next_event().data(), "misrouted");
    wait_until("the fixed row deleted", || {
        pg.psql("SELECT count(*) FROM tether_outbox") == "0\n"
    });

    wait_until("counted", || {
        node.metric("tether_outbox_published_total{table=\"tether_outbox\"}") == 3
    });
    assert_eq!(
        node.metric("tether_outbox_failed_total{table=\"tether_outbox\"}"),
        1
    );
    assert_eq!(
        node.metric("tether_outbox_pending_rows{table=\"tether_outbox\"}"),
        0
    );
    let ready = tether_testkit::get(node.addr, "/readyz");
    assert_eq!(ready.status, 200);
    assert!(
        String::from_utf8_lossy(&ready.body).contains("[+] outbox: publishing the table"),
        "{}",
        String::from_utf8_lossy(&ready.body)
    );

    // The database gone for good since: a shared condition, counted only
    // when asked for.
    drop(pg);
    wait_until("the lost database reported", || {
        tether_testkit::get(node.addr, "/readyz?shared=1").status == 503
    });
    let ready = tether_testkit::get(node.addr, "/readyz");
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.body));
    assert!(
        String::from_utf8_lossy(&ready.body).contains("[~] outbox: cannot reach the database"),
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
}

#[test]
fn a_node_that_cannot_reach_its_database_is_not_ready() {
    let Some(pg) = Postgres::start() else { return };
    // No table: the node's own configuration is at fault.
    let dir = TempDir::new("unready");
    let node = Node::start(&pg.url(), Some(&dir.0.join("data")));
    wait_until("reported", || {
        let ready = tether_testkit::get(node.addr, "/readyz");
        ready.status == 503
            && String::from_utf8_lossy(&ready.body).contains("[-] outbox: cannot reach the database")
    });
    assert!(node.metric("tether_outbox_database_errors_total{table=\"tether_outbox\"}") >= 1);
}

#[test]
fn the_options_from_a_configuration_file_are_checked() {
    let dir = TempDir::new("config");
    let good = dir.write(
        "good.toml",
        b"app = \"hub\"\noutbox-url-file = \"/run/secrets/outbox-url\"\n\
          outbox-table = \"shop.outbox\"\noutbox-batch = 50\noutbox-poll-interval = 0.5\n",
    );
    let out = process::output(&["check-config", &good], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (bad, said) in [
        ("outbox-table = \"Outbox\"\n", "is not a table name"),
        ("outbox-batch = 0\n", "--outbox-batch"),
        (
            "outbox-url = \"postgres://a@b/c\"\noutbox-url-file = \"/x\"\n",
            "cannot be used with",
        ),
    ] {
        let path = dir.write("bad.toml", bad.as_bytes());
        let out = process::output(&["check-config", &path], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}");
        assert!(stderr.contains(said), "{bad}: {stderr}");
    }
}
