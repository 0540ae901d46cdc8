//! Throughput of tether-h2's HPACK (RFC 7541), each case beside a `memcpy`
//! of the same bytes into a reused buffer, so that a figure reads as a
//! ratio to what memory bandwidth allows.
//!
//! - `encode_requests` / `decode_requests`: 1000 browser-like requests
//!   (pseudo-headers, user agent, cookies, paths that change), through one
//!   encoder and one decoder as on a connection, so the dynamic table
//!   does its work; the throughput is the encoded block's size.
//! - `encode_responses` / `decode_responses`: 1000 event-stream and
//!   WebSocket responses (`:status`, content type, a date that changes).
//! - `decode_cold`: the same request blocks, each decoded by a fresh
//!   decoder as the first block of a connection (literals, Huffman
//!   decoding, no table hits).
//!
//! The memcpy copies the encoded blocks for decoding and for encoding
//! alike. Run with `cargo bench -p tether-benches --bench hpack`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_h2::hpack::{Decoder, Encoder, Field};

fn requests() -> Vec<Vec<Field>> {
    (0..1000)
        .map(|i| {
            vec![
                Field::new(":method", if i % 5 == 0 { "POST" } else { "GET" }),
                Field::new(":scheme", "https"),
                Field::new(":authority", "push.example.com"),
                Field::new(":path", format!("/topics/room-{}/events?lastEventId={}", i % 37, i * 13)),
                Field::new(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                ),
                Field::new("accept", "text/event-stream"),
                Field::new("accept-language", "en-GB,en;q=0.9,fr;q=0.8"),
                Field::new("cookie", format!("session={:016x}; theme=dark", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                Field::sensitive("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"),
            ]
        })
        .collect()
}

fn responses() -> Vec<Vec<Field>> {
    (0..1000)
        .map(|i| {
            let mut r = vec![
                Field::new(":status", "200"),
                Field::new(
                    "date",
                    format!("Mon, 23 Nov 2026 12:{:02}:{:02} GMT", i / 60 % 60, i % 60),
                ),
                Field::new("cache-control", "no-cache"),
            ];
            if i % 2 == 0 {
                r.push(Field::new("content-type", "text/event-stream"));
            } else {
                r.push(Field::new(
                    "sec-websocket-extensions",
                    "permessage-deflate; server_no_context_takeover",
                ));
            }
            r
        })
        .collect()
}

/// The blocks one encoder makes of `lists`, in order.
fn blocks(lists: &[Vec<Field>]) -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new();
    lists
        .iter()
        .map(|l| {
            let mut b = Vec::new();
            encoder.encode(l, &mut b);
            b
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for (name, lists) in [("requests", requests()), ("responses", responses())] {
        let encoded = blocks(&lists);
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        let joined: Vec<u8> = encoded.concat();
        let mut copy = Vec::with_capacity(bytes);

        let mut g = c.benchmark_group(format!("encode_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("tether-h2", |b| {
            let mut out = Vec::with_capacity(bytes);
            b.iter(|| {
                let mut encoder = Encoder::new();
                out.clear();
                for l in &lists {
                    encoder.encode(black_box(l), &mut out);
                }
                black_box(out.len())
            })
        });
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(&joined));
                black_box(copy.len())
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("tether-h2", |b| {
            b.iter(|| {
                let mut decoder = Decoder::new(4096);
                let mut n = 0;
                for block in &encoded {
                    n += decoder.decode(black_box(block)).expect("a valid block").len();
                }
                black_box(n)
            })
        });
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(&joined));
                black_box(copy.len())
            })
        });
        g.finish();
    }

    // Each block the first of its connection: a fresh encoder and decoder.
    let cold: Vec<Vec<u8>> = requests()
        .iter()
        .map(|l| {
            let mut b = Vec::new();
            Encoder::new().encode(l, &mut b);
            b
        })
        .collect();
    let bytes: usize = cold.iter().map(Vec::len).sum();
    let joined = cold.concat();
    let mut copy = Vec::with_capacity(bytes);
    let mut g = c.benchmark_group("decode_cold");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("tether-h2", |b| {
        b.iter(|| {
            let mut n = 0;
            for block in &cold {
                n += Decoder::new(4096)
                    .decode(black_box(block))
                    .expect("a valid block")
                    .len();
            }
            black_box(n)
        })
    });
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.clear();
            copy.extend_from_slice(black_box(&joined));
            black_box(copy.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
