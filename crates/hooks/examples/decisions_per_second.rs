//! How many decisions a second the hooks get through against a fast
//! local backend (a Rust one in this process, a thread per keep-alive
//! connection, answering every connect allow with its request's id).
//!
//! ```text
//! cargo run --release -p tether-hooks --example decisions_per_second -- [ASKS] [WORKERS] [LOOPS]
//! ```
//!
//! Every answer is checked against its request's id; a mismatch panics.
// A measuring tool: it stops at the first thing that is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/drive.rs"]
mod drive;
#[path = "../tests/support/fast_backend.rs"]
mod fast_backend;

use std::time::Duration;

use tether_hooks::{Config, HookKind, Hooks};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let asks = args.next().unwrap_or(100_000);
    let workers = args.next().unwrap_or(16);
    let loops = args.next().unwrap_or(4).max(1);
    let backend = fast_backend::FastBackend::start();
    let config = Config::new()
        .workers(workers)
        .hook(
            HookKind::Connect,
            &backend.url("/connect"),
            Duration::from_secs(30),
        )
        .unwrap();
    let hooks = Hooks::start(config).unwrap();
    // Warm up: connections opened, threads running.
    drive::drive(&hooks, loops, 1000, 256);
    let per_loop = asks / loops;
    let took = drive::drive(&hooks, loops, per_loop, 256);
    let total = per_loop * loops;
    let stats = hooks.stats();
    println!(
        "{total} decisions in {:.3} s: {:.0} decisions/s ({workers} workers, {loops} loops of 256 outstanding)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    let bounds = tether_hooks::LATENCY_BOUNDS_MS.map(|ms| format!("<={ms}ms"));
    let mut buckets: Vec<String> = bounds
        .iter()
        .zip(stats.latency)
        .filter(|(_, n)| *n > 0)
        .map(|(b, n)| format!("{b}: {n}"))
        .collect();
    if let Some(&slower) = stats.latency.last().filter(|&&n| n > 0) {
        buckets.push(format!(">2500ms: {slower}"));
    }
    println!("latency from ask to answer: {}", buckets.join(", "));
}
