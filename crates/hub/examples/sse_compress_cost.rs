//! What compressing event streams costs and saves, per delivered event:
//! the hub's work for one event sent to `S` event streams, uncompressed
//! (the event-stream bytes, shared, copied into each stream's output) and
//! compressed (the event compressed once into a piece, then per stream its
//! checksum combined and the piece copied), for realistic JSON events of
//! about 300 bytes and 2 KB, in the same run; and the bytes each way. Run
//! by hand (the figures are ratios of one run; see benches/results/):
//!
//! ```text
//! cargo run --release -p tether-hub --example sse_compress_cost
//! ```

// A measuring program: a failure is a panic, and the lengths it divides fit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::cast_possible_truncation, clippy::indexing_slicing)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A clock of this thread's CPU time where Linux gives it, else the wall
/// clock.
struct Clock(Option<u64>, Instant);

impl Clock {
    fn start() -> Clock {
        Clock(cpu_ns(), Instant::now())
    }

    fn elapsed(&self) -> Duration {
        match (self.0, cpu_ns()) {
            (Some(start), Some(now)) => Duration::from_nanos(now - start),
            _ => self.1.elapsed(),
        }
    }
}

/// The thread's time on a CPU so far, in nanoseconds.
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

use tether_deflate::{ContentCoding, StreamCoding};
use tether_hub::{Event, EventId};

/// Events per measurement.
const EVENTS: usize = 2000;
/// Rounds, alternating the two ways; the median is shown.
const ROUNDS: usize = 3;
/// Deliveries per measurement, at least: long enough for the CPU clock,
/// which moves at the scheduler's ticks.
const DELIVERIES: usize = 400_000;
/// The server's default floor.
const MIN_SIZE: usize = 128;

/// A quote feed's event of about `len` bytes of JSON, its figures
/// varying with `n` as a real feed's do.
fn data(n: usize, len: usize) -> String {
    let mut quotes = Vec::new();
    let mut i = 0usize;
    let mut x = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while quotes.iter().map(String::len).sum::<usize>() + quotes.len() + 2 < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bid = 100 + (x % 9000) as usize;
        quotes.push(format!(
            "{{\"symbol\":\"SYM{i}\",\"bid\":{bid}.{:02},\"ask\":{}.{:02},\"size\":{},\"venue\":\"XNAS\",\"ts\":{}}}",
            x % 100,
            bid + 1,
            (x >> 8) % 100,
            (x >> 16) % 5000,
            1_764_000_000_000u64 + n as u64 * 7
        ));
        i += 1;
    }
    format!("[{}]", quotes.join(","))
}

fn events(len: usize) -> Vec<(String, EventId)> {
    (0..EVENTS)
        .map(|n| (data(n, len), EventId::new(1_764_000_000_000, n as u64 + 1)))
        .collect()
}

/// One event to `streams` streams, plain: made, its bytes copied into
/// each stream's output. Time, and bytes on the wire per stream.
fn plain(events: &[(String, EventId)], streams: usize, out: &mut Vec<u8>) -> (Duration, usize) {
    let topic: Arc<str> = Arc::from("quotes");
    let mut wire = 0;
    let start = Clock::start();
    for (data, id) in passes(events, streams) {
        let event = Event::new(Arc::clone(&topic), *id, "message", data).unwrap();
        let bytes = event.sse();
        for _ in 0..streams {
            out.extend_from_slice(bytes);
            black_box(&out);
            out.clear();
        }
        wire += bytes.len();
    }
    (start.elapsed(), wire)
}

/// The same, compressed: the event compressed once, then per stream its
/// checksum combined and its piece copied. Each stream's header and
/// trailer are counted in its bytes.
fn compressed(events: &[(String, EventId)], streams: usize, out: &mut Vec<u8>) -> (Duration, usize) {
    let topic: Arc<str> = Arc::from("quotes");
    let mut codings = vec![StreamCoding::new(ContentCoding::Gzip); streams];
    let mut wire = codings[0].header().len();
    let start = Clock::start();
    for (data, id) in passes(events, streams) {
        let event = Event::new(Arc::clone(&topic), *id, "message", data).unwrap();
        let piece = event.sse_piece(MIN_SIZE);
        for coding in &mut codings {
            coding.add(piece);
            out.extend_from_slice(piece.bytes());
            black_box(&out);
            out.clear();
        }
        wire += piece.bytes().len();
    }
    let elapsed = start.elapsed();
    wire += codings[0].trailer().len();
    (elapsed, wire)
}

/// The events, as many times over as make [`DELIVERIES`] to `streams`.
fn passes(events: &[(String, EventId)], streams: usize) -> impl Iterator<Item = &(String, EventId)> {
    let times = DELIVERIES.div_ceil(events.len() * streams).max(1);
    std::iter::repeat_n(events, times).flatten()
}

/// Checks that a stream of these events, compressed, inflates to the
/// plain stream (a measurement of broken output would be worthless).
fn check(events: &[(String, EventId)]) {
    let topic: Arc<str> = Arc::from("quotes");
    let mut coding = StreamCoding::new(ContentCoding::Gzip);
    let mut body = coding.header().to_vec();
    let mut plain = Vec::new();
    for (data, id) in events.iter().take(200) {
        let event = Event::new(Arc::clone(&topic), *id, "message", data).unwrap();
        let piece = event.sse_piece(MIN_SIZE);
        coding.add(piece);
        body.extend_from_slice(piece.bytes());
        plain.extend_from_slice(event.sse());
    }
    body.extend_from_slice(&coding.trailer());
    let mut inflater = zlib_rs::Inflate::new(true, 31);
    let mut out = vec![0; plain.len() + 1];
    let status = inflater.decompress(&body, &mut out, zlib_rs::InflateFlush::Finish);
    assert!(matches!(status, Ok(zlib_rs::Status::StreamEnd)), "{status:?}");
    out.truncate(inflater.total_out() as usize);
    assert_eq!(out, plain);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    println!(
        "| event | streams | plain ns / delivered event | compressed ns / delivered event | × plain | bytes / event plain | compressed | × plain |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut out = Vec::with_capacity(64 * 1024);
    for len in [300, 2000] {
        let events = events(len);
        check(&events);
        for streams in [1, 10, 100] {
            let times = DELIVERIES.div_ceil(EVENTS * streams).max(1);
            let deliveries = (EVENTS * times * streams) as f64;
            let (mut plain_ns, mut compressed_ns) = (Vec::new(), Vec::new());
            let (mut plain_bytes, mut compressed_bytes) = (0, 0);
            for _ in 0..ROUNDS {
                let (time, bytes) = plain(&events, streams, &mut out);
                plain_ns.push(time.as_nanos() as f64 / deliveries);
                plain_bytes = bytes;
                let (time, bytes) = compressed(&events, streams, &mut out);
                compressed_ns.push(time.as_nanos() as f64 / deliveries);
                compressed_bytes = bytes;
            }
            let (plain_ns, compressed_ns) = (median(plain_ns), median(compressed_ns));
            let per_event = |bytes: usize| bytes as f64 / (EVENTS * times) as f64;
            println!(
                "| ~{len} B JSON | {streams} | {plain_ns:.0} | {compressed_ns:.0} | {:.2} | {:.0} | {:.0} | {:.3} |",
                compressed_ns / plain_ns,
                per_event(plain_bytes),
                per_event(compressed_bytes),
                compressed_bytes as f64 / plain_bytes as f64
            );
        }
    }
}
