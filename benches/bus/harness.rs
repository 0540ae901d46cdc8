//! The bus benchmark's harness, shared by the Redis, NATS and RabbitMQ
//! bridges' `redis_bus_bench`, `nats_bus_bench` and `rabbitmq_bus_bench`
//! examples (each includes this file with `#[path]`): two
//! nodes (two bridges in one process, one pretend event loop each), each
//! following `--topics` topics, while node 0 publishes `--size`-byte
//! events to `--hot` of them as fast as a window of `--window` unanswered
//! publishes allows, for `--seconds`. Prints one line: deliveries per
//! second (both nodes), publish to delivery p50 and p99, the servers' CPU
//! (as the example reads it) and this process's CPU (both nodes
//! together, from `/proc/self/stat`), as shares of one core.
//!
//! Uses only the bridges' public API, so that the same files measure
//! another version of a crate (`benches/bus.sh`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tether_hub::{Broker, BrokerState, Context, HubMessage, Publish, ReplyTo};

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

/// The options every bridge's benchmark takes; `--url` and the bridge's
/// own options are the example's.
pub(crate) struct Options {
    pub(crate) topics: usize,
    pub(crate) hot: usize,
    pub(crate) seconds: u64,
    pub(crate) window: usize,
    pub(crate) size: usize,
}

/// Reads the command line: the harness's options, and each other
/// `--name value` pair handed to `other` (which panics at one it does
/// not know).
pub(crate) fn options(mut other: impl FnMut(&str, &str)) -> Options {
    let mut o = Options {
        topics: 1000,
        hot: 100,
        seconds: 5,
        window: 2000,
        size: 100,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            panic!("options come in pairs: --name value")
        };
        match name.as_str() {
            "--topics" => o.topics = value.parse().unwrap(),
            "--hot" => o.hot = value.parse().unwrap(),
            "--seconds" => o.seconds = value.parse().unwrap(),
            "--window" => o.window = value.parse().unwrap(),
            "--size" => o.size = value.parse().unwrap(),
            name => other(name, value),
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

/// What the harness needs of a bridge: start it with a way to post to
/// its loop, a broker for that loop, and shut it down.
pub(crate) trait Bridge {
    type Broker: Broker;
    fn start(&self, post: Box<dyn Fn(usize, HubMessage) + Send + Sync>);
    fn broker(&self) -> Self::Broker;
    fn shutdown(&self);
}

/// Implements [`Bridge`] for a bridge type with inherent `start` (a
/// `Result`), `broker` and `shutdown` of the usual shapes.
macro_rules! impl_bridge {
    ($bridge:ty, $broker:ty) => {
        impl $crate::harness::Bridge for $bridge {
            type Broker = $broker;
            fn start(&self, post: Box<dyn Fn(usize, tether_hub::HubMessage) + Send + Sync>) {
                <$bridge>::start(self, post).unwrap();
            }
            fn broker(&self) -> $broker {
                <$bridge>::broker(self)
            }
            fn shutdown(&self) {
                <$bridge>::shutdown(self);
            }
        }
    };
}
pub(crate) use impl_bridge;

struct Node<B: Bridge> {
    bridge: B,
    broker: B::Broker,
    seen: Arc<Seen>,
}

fn node<B: Bridge>(bridge: B, answers: Option<Sender<()>>) -> Node<B> {
    let (tx, rx) = mpsc::channel();
    let seen = Arc::new(Seen::default());
    let consumer_seen = seen.clone();
    thread::spawn(move || consume(rx, consumer_seen, answers));
    bridge.start(Box::new(move |_, message| {
        let _ = tx.send(message);
    }));
    let broker = bridge.broker();
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.state() != BrokerState::Up {
        assert!(Instant::now() < deadline, "the bridge did not connect");
        thread::sleep(Duration::from_millis(10));
    }
    Node { bridge, broker, seen }
}

/// This process's CPU seconds so far (user and system; Linux ticks are
/// 1/100 s).
fn own_cpu() -> f64 {
    process_cpu("self")
}

/// A process's CPU seconds so far (`pid`, or `self`).
pub(crate) fn process_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
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

/// Runs the benchmark on two nodes made by `make` and prints its line,
/// which starts with `label`; `server_cpu` reads the servers' CPU seconds
/// so far.
pub(crate) fn run<B: Bridge>(
    o: &Options,
    label: &str,
    make: impl Fn() -> B,
    mut server_cpu: impl FnMut() -> f64,
) {
    now_us();
    let (answers_tx, answers) = mpsc::channel();
    let mut nodes = [node(make(), Some(answers_tx)), node(make(), None)];
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

    let hot: Vec<Arc<str>> = (0..o.hot)
        .map(|n| topics[n * (o.topics / o.hot)].clone())
        .collect();
    let padding = "x".repeat(o.size.saturating_sub(20));
    let delivered_now = |nodes: &[Node<B>]| {
        nodes
            .iter()
            .map(|n| n.seen.delivered.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let (cpu0, server0, delivered0) = (own_cpu(), server_cpu(), delivered_now(&nodes));
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
    let delivered = delivered_now(&nodes) - delivered0;
    let (cpu, server) = (own_cpu() - cpu0, server_cpu() - server0);
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
        "{label} topics={} hot={} size={} seconds={:.1} published={} refused={} deliveries_per_s={:.0} \
         p50_ms={:.2} p99_ms={:.2} server_cpu={:.0}% nodes_cpu={:.0}% follow_s={:.1} complete={}",
        o.topics,
        o.hot,
        o.size,
        wall,
        published,
        refused,
        delivered as f64 / wall,
        percentile(&latencies, 0.50) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        100.0 * server / wall,
        100.0 * cpu / wall,
        follow_time.as_secs_f64(),
        complete,
    );
}
