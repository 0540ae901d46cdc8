//! What a server's WebSocket connection costs per received message, copied
//! out of the read buffer (`Connection::receive`) or lent from it in place
//! (`Connection::receive_in_place`), beside a baseline that reads as a ratio.
//!
//! The copied path is given back its message buffer each time, as the
//! server does, so that neither path allocates. Every iteration first refills a read buffer from the masked frame, as a
//! socket read would (unmasking in place changes the buffer); `read_only`
//! is that refill alone, a `memcpy` of the frame. A message is text (UTF-8
//! checked; `text` has a two-byte character every 97 bytes, `ascii` none)
//! or binary, and
//! lies whole in the buffer, which is the case the in-place path serves.
//!
//! Run with `cargo bench -p tether-benches --bench receive`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tether_frame::{FrameHeader, OpCode, encode_frame};
use tether_ws::{Config, Connection, Event, Incoming, Role};

const KIB: usize = 1024;

/// A fixed, arbitrary masking key.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    let header = FrameHeader::new(true, opcode, 0).with_mask(MASK);
    encode_frame(&mut frame, header, payload).expect("a data frame always encodes");
    frame
}

/// Mostly ASCII text with a multibyte character now and then.
fn text(len: usize) -> Vec<u8> {
    let mut text = String::with_capacity(len + 4);
    while text.len() < len {
        text.push_str(if text.len().is_multiple_of(97) { "é" } else { "a" });
    }
    while text.len() > len {
        text.pop();
    }
    while text.len() < len {
        text.push('b');
    }
    text.into_bytes()
}

/// Builds a payload of the given length.
type MakePayload = fn(usize) -> Vec<u8>;

/// ASCII text only: the UTF-8 check's fastest case.
fn ascii(len: usize) -> Vec<u8> {
    b"The quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    let now = Instant::now();
    let config = Config::default()
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20);
    let kinds: [(&str, OpCode, MakePayload); 3] = [
        ("text", OpCode::Text, text),
        ("ascii", OpCode::Text, ascii),
        ("binary", OpCode::Binary, text),
    ];
    for (kind, opcode, make) in kinds {
        for size in [20, 16 * KIB, 64 * KIB] {
            let payload = make(size);
            let wire = frame(opcode, &payload);
            group.throughput(Throughput::Bytes(wire.len() as u64));
            let mut read_buf = wire.clone();
            let mut out = Vec::new();
            let mut conn = Connection::new(Role::Server, config, now);

            // Once, untimed: both paths really deliver the payload.
            let (_, event) = conn.receive(&read_buf, now, &mut out);
            assert!(matches!(&event, Some(Event::Message(m)) if m.as_bytes() == payload));
            let (_, incoming) = conn.receive_in_place(&mut read_buf, now, &mut out);
            assert!(matches!(incoming, Some(Incoming::Borrowed(m)) if m.as_bytes() == payload));

            // As a server does, the message buffer is lent to the
            // connection and taken back after each message: no allocation.
            let mut spare = Vec::with_capacity(size);
            group.bench_function(BenchmarkId::new(format!("{kind}_copied"), size), |b| {
                b.iter(|| {
                    read_buf.copy_from_slice(black_box(&wire));
                    if let Some(refused) = conn.lend_buffer(std::mem::take(&mut spare)) {
                        spare = refused;
                    }
                    let (used, event) = conn.receive(&read_buf, now, &mut out);
                    black_box(used);
                    if let Some(Event::Message(message)) = event {
                        spare = black_box(message).into_bytes();
                    }
                })
            });
            group.bench_function(BenchmarkId::new(format!("{kind}_in_place"), size), |b| {
                b.iter(|| {
                    read_buf.copy_from_slice(black_box(&wire));
                    let (used, incoming) = conn.receive_in_place(&mut read_buf, now, &mut out);
                    black_box(used);
                    if let Some(Incoming::Borrowed(message)) = incoming {
                        black_box(message.as_bytes());
                    }
                })
            });
            group.bench_function(BenchmarkId::new(format!("{kind}_read_only"), size), |b| {
                b.iter(|| {
                    read_buf.copy_from_slice(black_box(&wire));
                    black_box(&read_buf);
                })
            });
        }
    }
    group.finish();
}

/// Short runs: the benchmark machines are small and shared.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = receive
}
criterion_main!(benches);
