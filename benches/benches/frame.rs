//! Throughput of the `tether-frame` hot paths, each beside a baseline that
//! touches the same bytes, so a figure reads as a ratio:
//!
//! - `mask`: `apply_mask` in place (phase 0 and an odd phase, and on a
//!   buffer that starts off 16-byte alignment) beside a `copy_from_slice` of
//!   the same length.
//! - `decode_text`: what a server does per text message: decode a masked
//!   frame, copy the payload into a reused message buffer, unmask it and
//!   validate it as UTF-8; from one slice, and fed in 4 KiB reads. Beside a
//!   copy of the frame's bytes.
//! - `utf8`: `Utf8Validator::feed` beside `core::str::from_utf8`.
//! - `encode`: `encode_frame` for a server (unmasked) and a client (masked)
//!   text frame into a reused buffer, beside a copy of the payload.
//!
//! Run with `cargo bench -p tether-benches --bench frame`; add a filter such
//! as `-- mask/` to run one group.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tether_frame::{
    DecodeRules, FrameDecoder, FrameHeader, Item, OpCode, Utf8Validator, apply_mask, encode_frame,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A fixed, arbitrary masking key.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What one read from a socket typically brings.
const READ_SIZE: usize = 4 * KIB;

/// Chat-like JSON: mostly ASCII, with two-, three- and four-byte characters
/// here and there (about one byte in ten belongs to a multibyte character).
const PHRASES: &[&str] = &[
    r#"{"room":"general","user":"alice","text":"Good morning, everyone! Standup in five minutes."}"#,
    r#"{"room":"général","user":"zoë","text":"Grüße aus Köln — the build is green again ✓"}"#,
    r#"{"room":"general","user":"bob","text":"Can someone review PR 4211 before lunch? It only touches the parser."}"#,
    r#"{"room":"東京","user":"hiro","text":"了解です。Deploying to staging now 🚀"}"#,
    r#"{"room":"general","user":"carol","text":"Latency p99 went from 41 ms to 12 ms after the fix, nice work."}"#,
    r#"{"room":"ops","user":"dmitri","text":"Перезапускаю воркеры, back in 2 minutes"}"#,
    r#"{"room":"general","user":"erin","text":"Reminder: the office is closed on Friday; tickets go to the on-call rota."}"#,
];

/// Exactly `len` bytes of valid text built from [`PHRASES`].
fn text(len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 128);
    for phrase in PHRASES.iter().cycle() {
        if s.len() >= len {
            break;
        }
        s.push_str(phrase);
        s.push('\n');
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < len {
        s.push(' ');
    }
    debug_assert!(std::str::from_utf8(s.as_bytes()).is_ok());
    s.into_bytes()
}

/// Exactly `len` bytes of ASCII text.
fn ascii(len: usize) -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog; 0123456789.\n";
    line.iter().copied().cycle().take(len).collect()
}

/// A masked text frame as a client sends it.
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    let header = FrameHeader::new(true, OpCode::Text, 0).with_mask(MASK);
    encode_frame(&mut frame, header, payload).expect("a data frame always encodes");
    frame
}

/// Receives one text message on the server side: decode every piece of
/// `reads`, copy each payload piece into `msg`, unmask it in place and
/// validate it. Returns the message length.
fn receive_text<'a>(
    reads: impl Iterator<Item = &'a [u8]>,
    msg: &mut Vec<u8>,
    utf8: &mut Utf8Validator,
) -> usize {
    let mut decoder = FrameDecoder::new(DecodeRules::server());
    let mut mask = [0; 4];
    msg.clear();
    for mut input in reads {
        while !input.is_empty() {
            let (used, item) = decoder.decode(input).expect("the frame is valid");
            input = &input[used..];
            match item {
                Some(Item::Header(h)) => mask = h.mask.expect("server rules require a mask"),
                Some(Item::Payload { data, offset, last }) => {
                    let start = msg.len();
                    msg.extend_from_slice(data);
                    let piece = &mut msg[start..];
                    apply_mask(piece, mask, offset as usize);
                    utf8.feed(piece).expect("the text is valid");
                    if last {
                        utf8.finish().expect("the text is complete");
                    }
                }
                None => {}
            }
        }
    }
    msg.len()
}

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [16, KIB, 64 * KIB, MIB] {
        group.throughput(Throughput::Bytes(size as u64));
        let src = text(size);
        let mut buf = src.clone();
        // `offset` is the key phase (the piece's position in the payload);
        // the buffer itself starts where the allocator put it.
        for offset in [0, 3] {
            group.bench_function(
                BenchmarkId::new(format!("apply_mask_offset{offset}"), size),
                |b| b.iter(|| apply_mask(black_box(&mut buf), black_box(MASK), black_box(offset))),
            );
        }
        // A payload unmasked in place in a read buffer starts after its
        // header (6 bytes for a short masked frame), off any vector
        // alignment.
        let mut read_buf = vec![0; size + 6];
        group.bench_function(BenchmarkId::new("apply_mask_at_byte6", size), |b| {
            b.iter(|| apply_mask(black_box(&mut read_buf[6..]), black_box(MASK), 0))
        });
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

fn decode_text(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_text");
    for size in [16, KIB, 64 * KIB, MIB] {
        let payload = text(size);
        let frame = client_text_frame(&payload);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        let mut msg = Vec::with_capacity(size);
        let mut utf8 = Utf8Validator::new();
        // Check once, outside the timing, that the loop really rebuilds the text.
        receive_text(std::iter::once(&frame[..]), &mut msg, &mut utf8);
        assert_eq!(msg, payload);
        group.bench_function(BenchmarkId::new("whole", size), |b| {
            b.iter(|| receive_text(std::iter::once(black_box(&frame[..])), &mut msg, &mut utf8))
        });
        if size >= 64 * KIB {
            receive_text(frame.chunks(READ_SIZE), &mut msg, &mut utf8);
            assert_eq!(msg, payload);
            group.bench_function(BenchmarkId::new("reads_4k", size), |b| {
                b.iter(|| receive_text(black_box(&frame[..]).chunks(READ_SIZE), &mut msg, &mut utf8))
            });
        }
        let mut copy = vec![0; frame.len()];
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| black_box(&mut copy).copy_from_slice(black_box(&frame)))
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for size in [KIB, 64 * KIB] {
        group.throughput(Throughput::Bytes(size as u64));
        for (kind, data) in [("ascii", ascii(size)), ("mixed", text(size))] {
            group.bench_function(BenchmarkId::new(format!("validator_{kind}"), size), |b| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    v.feed(black_box(&data)).expect("valid");
                    v.finish()
                })
            });
            group.bench_function(BenchmarkId::new(format!("std_from_utf8_{kind}"), size), |b| {
                b.iter(|| core::str::from_utf8(black_box(&data)).is_ok())
            });
        }
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [16, 64 * KIB] {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = text(size);
        let mut out = Vec::with_capacity(size + 14);
        let server = FrameHeader::new(true, OpCode::Text, 0);
        let client = server.with_mask(MASK);
        for (side, header) in [("server", server), ("client_masked", client)] {
            group.bench_function(BenchmarkId::new(side, size), |b| {
                b.iter(|| {
                    out.clear();
                    encode_frame(&mut out, black_box(header), black_box(&payload)).expect("valid");
                    out.len()
                })
            });
        }
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(&payload));
                out.len()
            })
        });
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
    targets = mask, decode_text, utf8, encode
}
criterion_main!(benches);
