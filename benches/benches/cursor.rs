//! The cost of a multi-topic event stream's cursor (`tether_hub::Cursor`),
//! written once per event per stream: encoding 1, 10 and 100 topics'
//! positions into a reused buffer, beside a baseline on the same ids
//! (each written as decimal `ms-seq` text, comma-separated, into a reused
//! buffer, the cheapest text that would carry them), and decoding.
//!
//! Throughput is in topics (elements), not bytes: the cursor and the
//! decimal text of the same ids differ in length, and a stream pays per
//! topic.
//!
//! Before the timings, the bench prints the cursor's size per topic for
//! realistic ids (the table on the design page, `docs/src/design/
//! multiplexing.md`): one node's topics, whose ids are their creation
//! time and a count, made within seconds or hours of each other; and
//! Redis-stream-like ids, each topic's last event time with a sequence of
//! 0 (or 1 when two events share a millisecond).
//!
//! Run with `cargo bench -p tether-benches --bench cursor`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::io::Write as _;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tether_hub::{Cursor, EventId};

/// About when the ids below are from (Unix milliseconds).
const NOW: u64 = 1_718_000_000_000;

/// A fixed xorshift: the same ids in every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A kind of ids, and how to draw one (`None`: no position yet).
struct Scenario {
    name: &'static str,
    draw: fn(&mut Rng) -> Option<EventId>,
}

const SECOND: u64 = 1_000;
const HOUR: u64 = 3_600 * SECOND;

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "one node, topics made within 10 s, up to 1 000 events each",
        draw: |r| Some(EventId::new(NOW + r.below(10 * SECOND), 1 + r.below(1_000))),
    },
    Scenario {
        name: "one node, topics made within 3 h, up to 1 000 events each",
        draw: |r| Some(EventId::new(NOW + r.below(3 * HOUR), 1 + r.below(1_000))),
    },
    Scenario {
        name: "one node, topics made within 3 h, up to 1 000 000 events each",
        draw: |r| Some(EventId::new(NOW + r.below(3 * HOUR), 1 + r.below(1_000_000))),
    },
    Scenario {
        name: "one node, within 10 s, half the topics without an event yet",
        draw: |r| (r.below(2) == 0).then(|| EventId::new(NOW + r.below(10 * SECOND), 1 + r.below(1_000))),
    },
    Scenario {
        name: "Redis streams, last events within 1 s",
        draw: |r| Some(EventId::new(NOW + r.below(SECOND), u64::from(r.below(8) == 0))),
    },
    Scenario {
        name: "Redis streams, last events within 1 h",
        draw: |r| Some(EventId::new(NOW + r.below(HOUR), u64::from(r.below(8) == 0))),
    },
];

fn positions(scenario: &Scenario, n: usize, seed: u64) -> Vec<Option<EventId>> {
    let mut rng = Rng(seed | 1);
    (0..n).map(|_| (scenario.draw)(&mut rng)).collect()
}

fn cursor(positions: &[Option<EventId>]) -> Cursor {
    let mut cursor = Cursor::new((0..positions.len()).map(|i| format!("room.{i}")));
    cursor.positions_mut().copy_from_slice(positions);
    cursor
}

/// The baseline: each id as decimal text, comma-separated (`-` for none).
fn decimal(positions: &[Option<EventId>], out: &mut Vec<u8>) {
    for position in positions {
        match position {
            Some(id) => write!(out, "{}-{},", id.ms(), id.seq()).unwrap(),
            None => out.extend_from_slice(b"-,"),
        }
    }
}

/// Bytes per topic, the mean over 50 draws of each list, as a Markdown
/// table.
fn print_sizes() {
    println!("| ids | 1 topic | 10 topics | 100 topics | decimal text, 100 topics |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for scenario in SCENARIOS {
        let mut row = format!("| {} |", scenario.name);
        let mut text = Vec::new();
        for n in [1usize, 10, 100] {
            let mut total = 0;
            for seed in 0..50 {
                text.clear();
                total += cursor(&positions(scenario, n, seed)).encode(&mut text);
            }
            row += &format!(" {:.1} |", total as f64 / (50 * n) as f64);
        }
        let mut total = 0;
        for seed in 0..50 {
            text.clear();
            decimal(&positions(scenario, 100, seed), &mut text);
            total += text.len();
        }
        row += &format!(" {:.1} |", total as f64 / (50 * 100) as f64);
        println!("{row}");
    }
}

fn encode(c: &mut Criterion) {
    print_sizes();
    // One node's topics made within 3 hours: every topic has a position.
    let scenario = &SCENARIOS[1];
    let mut group = c.benchmark_group("cursor");
    let mut out = Vec::new();
    for n in [1usize, 10, 100] {
        let positions = positions(scenario, n, 7);
        let cursor = cursor(&positions);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("encode", n), |b| {
            b.iter(|| {
                out.clear();
                black_box(&cursor).encode(&mut out);
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("decimal", n), |b| {
            b.iter(|| {
                out.clear();
                decimal(black_box(&positions), &mut out);
                black_box(out.len())
            })
        });
        out.clear();
        cursor.encode(&mut out);
        let mut reader = cursor.clone();
        group.bench_function(BenchmarkId::new("decode", n), |b| {
            b.iter(|| {
                reader.decode(black_box(&out)).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = cursor_benches;
    // A shared two-core machine: short runs, enough samples for a ratio.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encode
}
criterion_main!(cursor_benches);
