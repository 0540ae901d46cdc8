//! Throughput of `tether-sse`, each case beside a baseline on the same
//! bytes, so a figure reads as a ratio. The baseline is a plain scan:
//! counting LF with `iter().filter(|&&b| b == b'\n').count()`, which LLVM
//! vectorises, so it costs about one read of the bytes.
//!
//! - `parse_small`: many small events (`id`, `event` and one JSON `data`
//!   line, about 100 bytes each), fed in 16 KiB reads.
//! - `parse_1mib`: events with 1 MiB of data on one line, fed in 64 KiB
//!   reads.
//! - `parse_lines`: events with 64 `data` lines of about 40 bytes each.
//! - `encode_small`, `encode_1mib`, `encode_lines`: encoding the same
//!   events into a reused buffer; there the baseline scans the encoded
//!   output.
//!
//! Every group also shows a `memcpy` of the same bytes into a reused
//! buffer: the LF count runs at about 1 GB/s (LLVM widens each compare to a
//! `usize` lane), so the copy is the better yardstick for what memory
//! bandwidth allows.
//!
//! Run with `cargo bench -p tether-benches --bench sse`; add a filter such
//! as `-- parse_` to run some groups.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_sse::{Event, Item, Parser};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Owned fields of one event, to build `Event`s from.
struct Spec {
    id: String,
    event: &'static str,
    data: String,
}

impl Spec {
    fn event(&self) -> Event<'_> {
        Event::new().id(&self.id).event(self.event).data(&self.data)
    }
}

fn small_events() -> Vec<Spec> {
    (0..10_000)
        .map(|i| Spec {
            id: (1_000_000 + i).to_string(),
            event: "tick",
            data: format!(
                r#"{{"symbol":"EURUSD","bid":1.{:04},"ask":1.{:04},"seq":{i}}}"#,
                i % 9973,
                i % 9967
            ),
        })
        .collect()
}

/// Printable ASCII with no line breaks, `len` bytes.
fn filler(len: usize, salt: usize) -> String {
    (0..len)
        .map(|i| char::from(b' ' + ((i * 7 + salt) % 94) as u8))
        .collect()
}

fn large_events() -> Vec<Spec> {
    (0..4)
        .map(|i| Spec {
            id: i.to_string(),
            event: "snapshot",
            data: filler(MIB, i),
        })
        .collect()
}

fn multi_line_events() -> Vec<Spec> {
    (0..400)
        .map(|i| Spec {
            id: i.to_string(),
            event: "log",
            data: (0..64).map(|j| filler(40, i + j)).collect::<Vec<_>>().join("\n"),
        })
        .collect()
}

fn encode_all(specs: &[Spec], out: &mut Vec<u8>) {
    for spec in specs {
        spec.event().encode(out).unwrap();
    }
}

fn count_lf(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Parses `stream` in `read`-sized chunks and returns how many events and
/// data bytes came out (so nothing can be optimised away).
fn parse(stream: &[u8], read: usize) -> (usize, usize) {
    let mut parser = Parser::new();
    let (mut events, mut bytes) = (0, 0);
    for chunk in stream.chunks(read) {
        parser.feed(chunk);
        while let Some(item) = parser.poll() {
            if let Ok(Item::Event(event)) = item {
                events += 1;
                bytes += event.data().len();
            }
        }
    }
    parser.finish();
    (events, bytes)
}

fn parse_group(c: &mut Criterion, name: &str, specs: &[Spec], read: usize) {
    let mut stream = Vec::new();
    encode_all(specs, &mut stream);
    // Make sure the bench measures what it claims.
    assert_eq!(parse(&stream, read).0, specs.len());
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("baseline_count_lf", |b| b.iter(|| count_lf(black_box(&stream))));
    let mut copy = Vec::with_capacity(stream.len());
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.clear();
            copy.extend_from_slice(black_box(&stream));
            copy.len()
        })
    });
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&stream), read)));
    group.finish();
}

fn encode_group(c: &mut Criterion, name: &str, specs: &[Spec]) {
    let mut encoded = Vec::new();
    encode_all(specs, &mut encoded);
    let mut out = Vec::with_capacity(encoded.len());
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("baseline_count_lf", |b| b.iter(|| count_lf(black_box(&encoded))));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&encoded));
            out.len()
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_all(black_box(specs), &mut out);
            out.len()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let small = small_events();
    let large = large_events();
    let lines = multi_line_events();
    parse_group(c, "parse_small", &small, 16 * KIB);
    parse_group(c, "parse_1mib", &large, 64 * KIB);
    parse_group(c, "parse_lines", &lines, 16 * KIB);
    encode_group(c, "encode_small", &small);
    encode_group(c, "encode_1mib", &large);
    encode_group(c, "encode_lines", &lines);
}

criterion_group! {
    name = sse;
    // A shared two-core machine: short runs, enough samples for a ratio.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(sse);
