//! Measures the bridge as a bus: two nodes (two bridges in this process,
//! one pretend event loop each) on one Redis or a Redis Cluster
//! (`--url redis+cluster://...` naming every primary, and `--partitions`,
//! the cluster's layout), each following `--topics`
//! topics, while node 0 publishes to `--hot` of them as fast as a window
//! of `--window` unanswered publishes allows, for `--seconds`. Prints one
//! line: deliveries per second (both nodes), publish to delivery p50 and
//! p99, Redis's CPU (from `INFO cpu`, summed over the servers the URL
//! names) and this process's CPU (both nodes together, from
//! `/proc/self/stat`), as shares of one core.
//!
//! ```sh
//! cargo run --release -p tether-redis --example bus_bench -- \
//!     --url redis://127.0.0.1:6379/ --topics 10000
//! ```
//!
//! Uses only the crate's public API, so that the same file measures
//! another version of the crate (`benches/bus.sh` runs it before and
//! after a change; the version needs `RedisConfig::cluster_partitions`).

// A benchmark, not part of the library: it stops at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tether_hub::{Broker, Context, HubMessage, Publish, ReplyTo};
use tether_redis::{RedisBridge, RedisBroker, RedisConfig};

static START: OnceLock<Instant> = OnceLock::new();

fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The pretend event loop's side of the broker calls.
struct Cx;

impl Context for Cx {
    fn loops(&self) -> usize {
        1
    }
    fn this_loop(&self) -> usize {
        0
    }
    fn post(&mut self, _: usize, _: HubMessage) {}
    fn unix_ms(&self) -> u64 {
        0
    }
}

struct Options {
    url: String,
    topics: usize,
    hot: usize,
    seconds: u64,
    window: usize,
    size: usize,
    partitions: usize,
}

fn options() -> Options {
    let mut o = Options {
        url: "redis://127.0.0.1:6379/".to_owned(),
        topics: 1000,
        hot: 100,
        seconds: 5,
        window: 2000,
        size: 100,
        partitions: 16,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            panic!("options come in pairs: --name value")
        };
        match name.as_str() {
            "--url" => o.url.clone_from(value),
            "--topics" => o.topics = value.parse().unwrap(),
            "--hot" => o.hot = value.parse().unwrap(),
            "--seconds" => o.seconds = value.parse().unwrap(),
            "--window" => o.window = value.parse().unwrap(),
            "--size" => o.size = value.parse().unwrap(),
            "--partitions" => o.partitions = value.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    o.hot = o.hot.clamp(1, o.topics);
    o
}

/// What a node's loop was posted, counted.
#[derive(Default)]
struct Seen {
    ready: AtomicU64,
    delivered: AtomicU64,
    /// Publish to delivery, in microseconds, of the events delivered
    /// while measuring.
    latencies: Mutex<Vec<u64>>,
}

/// Reads a node's posts: counts them, records latencies, hands
/// publishers' answers to `answers`.
fn consume(rx: Receiver<HubMessage>, seen: Arc<Seen>, answers: Option<Sender<()>>) {
    let mut latencies = Vec::new();
    for message in rx {
        match message {
            HubMessage::Ready { .. } => {
                seen.ready.fetch_add(1, Ordering::Relaxed);
            }
            HubMessage::Deliver(event) => {
                let json = event.json();
                let sent = json
                    .find("\"data\":\"")
                    .and_then(|at| json.get(at + 8..at + 28))
                    .and_then(|digits| digits.parse::<u64>().ok());
                if let Some(sent) = sent {
                    latencies.push(now_us().saturating_sub(sent));
                }
                seen.delivered.fetch_add(1, Ordering::Relaxed);
                if latencies.len() >= 4096 {
                    seen.latencies.lock().unwrap().append(&mut latencies);
                }
            }
            HubMessage::Published { .. } | HubMessage::Duplicate { .. } => {
                if let Some(answers) = &answers {
                    let _ = answers.send(());
                }
            }
            _ => {}
        }
    }
    seen.latencies.lock().unwrap().append(&mut latencies);
}

struct Node {
    bridge: RedisBridge,
    broker: RedisBroker,
    seen: Arc<Seen>,
}

fn node(o: &Options, prefix: &str, answers: Option<Sender<()>>) -> Node {
    let mut config = RedisConfig::new(o.url.as_str());
    config.prefix = prefix.to_owned();
    config.cluster_partitions = o.partitions;
    config.max_queued_publishes = 100_000;
    let bridge = RedisBridge::new(config).unwrap();
    let (tx, rx) = mpsc::channel();
    let seen = Arc::new(Seen::default());
    let consumer_seen = seen.clone();
    thread::spawn(move || consume(rx, consumer_seen, answers));
    bridge
        .start(move |_, message| {
            let _ = tx.send(message);
        })
        .unwrap();
    let broker = bridge.broker();
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.state() != tether_hub::BrokerState::Up {
        assert!(Instant::now() < deadline, "the bridge did not connect");
        thread::sleep(Duration::from_millis(10));
    }
    Node { bridge, broker, seen }
}

/// A connection to each Redis server `url` names (every node a
/// `redis+cluster://` URL lists).
fn servers(url: &str) -> Vec<redis::Connection> {
    let urls = match url.strip_prefix("redis+cluster://") {
        Some(hosts) => hosts
            .trim_end_matches('/')
            .split(',')
            .map(|host| format!("redis://{host}/"))
            .collect(),
        None => vec![url.to_owned()],
    };
    urls.iter()
        .map(|url| {
            redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap()
        })
        .collect()
}

/// The Redis servers' CPU seconds so far (system and user), summed.
fn redis_cpu(servers: &mut [redis::Connection]) -> f64 {
    let mut seconds = 0.0;
    for con in servers {
        let info: String = redis::cmd("INFO").arg("cpu").query(con).unwrap();
        seconds += info
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                ["used_cpu_sys", "used_cpu_user"]
                    .contains(&name)
                    .then(|| value.trim().parse::<f64>().ok())?
            })
            .sum::<f64>();
    }
    seconds
}

/// This process's CPU seconds so far (user and system; Linux ticks are
/// 1/100 s).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = options();
    now_us();
    let prefix = format!("bench-{}:", std::process::id());
    let (answers_tx, answers) = mpsc::channel();
    let mut nodes = [node(&o, &prefix, Some(answers_tx)), node(&o, &prefix, None)];
    let topics: Vec<Arc<str>> = (0..o.topics).map(|n| Arc::from(format!("t{n}"))).collect();
    let follow_start = Instant::now();
    for node in &mut nodes {
        for topic in &topics {
            node.broker.follow(topic, &mut Cx);
        }
    }
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(600);
        while node.seen.ready.load(Ordering::Relaxed) < o.topics as u64 {
            assert!(Instant::now() < deadline, "follows not answered");
            thread::sleep(Duration::from_millis(20));
        }
    }
    let follow_time = follow_start.elapsed();

    let mut redis_con = servers(&o.url);
    let hot: Vec<Arc<str>> = (0..o.hot)
        .map(|n| topics[n * (o.topics / o.hot)].clone())
        .collect();
    let padding = "x".repeat(o.size.saturating_sub(20));
    let (cpu0, redis0, delivered0) = (
        own_cpu(),
        redis_cpu(&mut redis_con),
        nodes
            .iter()
            .map(|n| n.seen.delivered.load(Ordering::Relaxed))
            .sum::<u64>(),
    );
    for node in &nodes {
        node.seen.latencies.lock().unwrap().clear();
    }
    let started = Instant::now();
    let mut publisher = nodes[0].bridge.broker();
    let (mut published, mut in_flight, mut refused) = (0_u64, 0_usize, 0_u64);
    while started.elapsed() < Duration::from_secs(o.seconds) {
        while answers.try_recv().is_ok() {
            in_flight -= 1;
        }
        if in_flight >= o.window {
            if answers.recv_timeout(Duration::from_millis(100)).is_ok() {
                in_flight -= 1;
            }
            continue;
        }
        let topic = &hot[published as usize % hot.len()];
        let data = format!("{:020}{padding}", now_us());
        let publish = Publish::new(topic, None, &data, &tether_hub::Config::default())
            .unwrap()
            .reply_to(ReplyTo {
                loop_index: 0,
                token: published,
            });
        match publisher.publish(publish, &mut Cx) {
            Ok(()) => {
                published += 1;
                in_flight += 1;
            }
            Err(_) => {
                refused += 1;
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let delivered = nodes
        .iter()
        .map(|n| n.seen.delivered.load(Ordering::Relaxed))
        .sum::<u64>()
        - delivered0;
    let (cpu, redis) = (own_cpu() - cpu0, redis_cpu(&mut redis_con) - redis0);
    // Let the rest arrive, so that the latencies are complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes
        .iter()
        .any(|n| n.seen.delivered.load(Ordering::Relaxed) < published)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
    let complete = nodes
        .iter()
        .all(|n| n.seen.delivered.load(Ordering::Relaxed) >= published);
    for node in &nodes {
        node.bridge.shutdown();
    }
    thread::sleep(Duration::from_millis(100));
    let mut latencies: Vec<u64> = nodes
        .iter()
        .flat_map(|n| std::mem::take(&mut *n.seen.latencies.lock().unwrap()))
        .collect();
    latencies.sort_unstable();
    println!(
        "topics={} partitions={} hot={} size={} seconds={:.1} published={} refused={} deliveries_per_s={:.0} \
         p50_ms={:.2} p99_ms={:.2} redis_cpu={:.0}% nodes_cpu={:.0}% follow_s={:.1} complete={}",
        o.topics,
        if o.url.starts_with("redis+cluster://") {
            o.partitions.to_string()
        } else {
            "-".to_owned()
        },
        o.hot,
        o.size,
        wall,
        published,
        refused,
        delivered as f64 / wall,
        percentile(&latencies, 0.50) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        100.0 * redis / wall,
        100.0 * cpu / wall,
        follow_time.as_secs_f64(),
        complete,
    );
}
