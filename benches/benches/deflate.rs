//! permessage-deflate: the library comparison behind tether-deflate's
//! choice, and the extension itself, each beside a `memcpy` of the same
//! bytes so that a figure reads as a ratio.
//!
//! - `lib_compress_chat`, `lib_decompress_chat`: 1000 JSON chat messages
//!   of 100 to 300 bytes, each compressed on its own (a sync flush, then a
//!   reset: the no-context-takeover case, where libraries differ most), by
//!   zlib-rs and miniz_oxide at levels 1 and 6. Decompression inflates the
//!   same zlib-rs level 6 output with each library.
//! - `lib_compress_64k`, `lib_decompress_64k`: one 64 KiB JSON payload.
//! - `ext_chat`, `ext_64k`: `tether_deflate::Deflate` through the
//!   `tether_ws::Extension` calls a connection makes (encode, and decode in
//!   4 KiB pieces), with and without context takeover; beside them
//!   `zlib-rs_L1_reset`, what encoding without context costs when done by
//!   a zlib-rs level-1 compressor reset after every message (as
//!   tether-deflate did for every size before its own encoder for
//!   messages up to 16 KiB).
//!
//! Before the groups run, the compressed sizes and the memory each
//! library's state holds (counted by a global allocator that tallies live
//! bytes) are printed to stderr.
//!
//! Run with `cargo bench -p tether-benches --bench deflate`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush};
use tether_deflate::{Deflate, Params, Role};
use tether_ws::{Extension, OpCode};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator with the same
// arguments; the tally is one atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes that `make` leaves behind in what it returns.
fn held<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.load(Ordering::Relaxed);
    let value = make();
    (value, LIVE.load(Ordering::Relaxed) - before)
}

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Deterministic JSON chat messages of 100 to 300 bytes.
fn chat_messages(n: usize) -> Vec<Vec<u8>> {
    let users = [
        "ada", "grace", "linus", "margaret", "dennis", "barbara", "ken", "frances",
    ];
    let rooms = ["general", "random", "deploys", "support", "design"];
    let words = [
        "the",
        "build",
        "is",
        "green",
        "again",
        "after",
        "we",
        "fixed",
        "flaky",
        "test",
        "in",
        "staging",
        "can",
        "someone",
        "review",
        "my",
        "pull",
        "request",
        "lunch",
        "at",
        "noon",
        "meeting",
        "moved",
        "to",
        "tomorrow",
        "dashboard",
        "looks",
        "fine",
        "latency",
        "dropped",
        "thanks",
        "everyone",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| {
            let target = 100 + (next() % 201) as usize;
            let mut text = String::new();
            let head = format!(
                r#"{{"type":"message","id":{},"room":"{}","user":"{}","ts":{},"text":""#,
                1_000_000 + i,
                rooms[(next() % 5) as usize],
                users[(next() % 8) as usize],
                1_718_000_000 + i * 3
            );
            while head.len() + text.len() + 2 < target {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(words[(next() % words.len() as u64) as usize]);
            }
            let mut m = format!("{head}{text}\"}}").into_bytes();
            m.truncate(target.max(100));
            m
        })
        .collect()
}

/// 64 KiB of chat JSON, as one payload (a history page, say).
fn payload_64k() -> Vec<u8> {
    let mut out = b"[".to_vec();
    for m in chat_messages(1000) {
        if out.len() + m.len() + 2 > 64 * 1024 {
            break;
        }
        out.extend_from_slice(&m);
        out.push(b',');
    }
    out.resize(64 * 1024 - 1, b' ');
    out.push(b']');
    out
}

/// One compressor of each candidate, compressing a whole message with a
/// sync flush into `out` and stripping the tail.
enum Compressor {
    ZlibRs(zlib_rs::Deflate),
    Miniz(Box<CompressorOxide>),
}

impl Compressor {
    fn zlib_rs(level: i32) -> Compressor {
        Compressor::ZlibRs(zlib_rs::Deflate::new(level, false, 15))
    }

    fn miniz(level: i32) -> Compressor {
        Compressor::Miniz(Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
            level, -15, 0,
        ))))
    }

    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.resize(input.len() + input.len() / 64 + 64, 0);
        let written = match self {
            Compressor::ZlibRs(c) => {
                let before = c.total_out();
                c.compress(input, out, zlib_rs::DeflateFlush::SyncFlush).unwrap();
                (c.total_out() - before) as usize
            }
            Compressor::Miniz(c) => {
                let (_, consumed, written) =
                    miniz_oxide::deflate::core::compress(c, input, out, TDEFLFlush::Sync);
                assert_eq!(consumed, input.len());
                written
            }
        };
        out.truncate(written);
        assert!(out.ends_with(&TAIL));
        out.truncate(written - 4);
    }

    fn reset(&mut self) {
        match self {
            Compressor::ZlibRs(c) => c.reset(),
            Compressor::Miniz(c) => c.reset(),
        }
    }
}

enum Inflater {
    ZlibRs(zlib_rs::Inflate),
    Miniz(Box<InflateState>),
}

impl Inflater {
    fn zlib_rs() -> Inflater {
        Inflater::ZlibRs(zlib_rs::Inflate::new(false, 15))
    }

    fn miniz() -> Inflater {
        Inflater::Miniz(InflateState::new_boxed(DataFormat::Raw))
    }

    /// Inflates one message (tail appended) into `out`, which is big enough.
    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let mut written = 0;
        for piece in [input, &TAIL[..]] {
            written += match self {
                Inflater::ZlibRs(d) => {
                    let before = d.total_out();
                    d.decompress(piece, &mut out[written..], zlib_rs::InflateFlush::SyncFlush)
                        .unwrap();
                    (d.total_out() - before) as usize
                }
                Inflater::Miniz(d) => {
                    let r = inflate(d, piece, &mut out[written..], MZFlush::Sync);
                    r.status.unwrap();
                    r.bytes_written
                }
            };
        }
        written
    }

    fn reset(&mut self) {
        match self {
            Inflater::ZlibRs(d) => d.reset(false),
            Inflater::Miniz(d) => d.reset(DataFormat::Raw),
        }
    }
}

type Candidate = (&'static str, fn() -> Compressor);

const COMPRESSORS: [Candidate; 7] = [
    ("zlib-rs_L1", || Compressor::zlib_rs(1)),
    ("zlib-rs_L2", || Compressor::zlib_rs(2)),
    ("zlib-rs_L3", || Compressor::zlib_rs(3)),
    ("zlib-rs_L4", || Compressor::zlib_rs(4)),
    ("zlib-rs_L6", || Compressor::zlib_rs(6)),
    ("miniz_oxide_L1", || Compressor::miniz(1)),
    ("miniz_oxide_L6", || Compressor::miniz(6)),
];

type InflaterCandidate = (&'static str, fn() -> Inflater);

const INFLATERS: [InflaterCandidate; 2] = [("zlib-rs", Inflater::zlib_rs), ("miniz_oxide", Inflater::miniz)];

fn total(messages: &[Vec<u8>]) -> u64 {
    messages.iter().map(|m| m.len() as u64).sum()
}

fn report(chat: &[Vec<u8>], big: &[u8]) {
    eprintln!(
        "deflate: compressed size, per message on its own (chat: {} bytes in {} messages; 64 KiB payload)",
        total(chat),
        chat.len()
    );
    let mut out = Vec::new();
    for (name, make) in COMPRESSORS {
        let mut c = make();
        let mut chat_out = 0;
        for m in chat {
            c.compress(m, &mut out);
            c.reset();
            chat_out += out.len();
        }
        c.compress(big, &mut out);
        c.reset();
        eprintln!(
            "  {name:16} chat {:5.1} %   64k {:5.1} %",
            100.0 * chat_out as f64 / total(chat) as f64,
            100.0 * out.len() as f64 / big.len() as f64
        );
    }
    let mut standalone = Deflate::new(
        Role::Server,
        Params {
            server_no_context_takeover: true,
            ..Params::default()
        },
    )
    .with_min_size(0);
    let mut sizes = [0, 0];
    for (size, messages) in sizes.iter_mut().zip([chat, &[big.to_vec()][..]]) {
        for m in messages {
            out.clear();
            standalone.encode(OpCode::Text, m, &mut out).unwrap();
            *size += out.len().min(m.len());
        }
    }
    eprintln!(
        "  {:16} chat {:5.1} %   64k {:5.1} %",
        "tether-deflate",
        100.0 * sizes[0] as f64 / total(chat) as f64,
        100.0 * sizes[1] as f64 / big.len() as f64
    );
    eprintln!("deflate: compressed size of the chat messages with context kept (sync flush, no reset)");
    for (name, make) in COMPRESSORS {
        let mut c = make();
        let chat_out: usize = chat
            .iter()
            .map(|m| {
                c.compress(m, &mut out);
                out.len()
            })
            .sum();
        eprintln!(
            "  {name:16} chat {:5.1} %",
            100.0 * chat_out as f64 / total(chat) as f64
        );
    }
    eprintln!("deflate: heap held by one state after compressing / inflating one chat message");
    let mut buf = vec![0u8; 64 * 1024];
    for (name, make) in COMPRESSORS {
        let (c, bytes) = held(|| {
            let mut c = make();
            let mut out = Vec::with_capacity(1024);
            c.compress(&chat[0], &mut out);
            drop(out);
            c
        });
        eprintln!("  compressor {name:16} {bytes:7} bytes");
        drop(c);
    }
    let mut c = Compressor::zlib_rs(6);
    c.compress(&chat[0], &mut out);
    for (name, make) in INFLATERS {
        let (d, bytes) = held(|| {
            let mut d = make();
            d.inflate(&out, &mut buf);
            d
        });
        eprintln!("  inflater   {name:16} {bytes:7} bytes");
        drop(d);
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str, bytes: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    g
}

fn memcpy_all(messages: &[Vec<u8>], out: &mut Vec<u8>) {
    for m in messages {
        out.clear();
        out.extend_from_slice(black_box(m));
        black_box(&out);
    }
}

fn library_comparison(c: &mut Criterion) {
    let chat = chat_messages(1000);
    let big = vec![payload_64k()];
    report(&chat, &big[0]);
    for (label, messages) in [("chat", &chat), ("64k", &big)] {
        let mut out = Vec::with_capacity(80 * 1024);
        let mut g = group(c, &format!("lib_compress_{label}"), total(messages));
        g.bench_function("memcpy", |b| b.iter(|| memcpy_all(messages, &mut out)));
        for (name, make) in COMPRESSORS {
            let mut comp = make();
            g.bench_function(name, |b| {
                b.iter(|| {
                    for m in messages.iter() {
                        comp.compress(black_box(m), &mut out);
                        comp.reset();
                    }
                })
            });
        }
        g.finish();

        let mut reference = Compressor::zlib_rs(6);
        let compressed: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| {
                reference.compress(m, &mut out);
                reference.reset();
                out.clone()
            })
            .collect();
        let mut plain = vec![0u8; 80 * 1024];
        let mut g = group(c, &format!("lib_decompress_{label}"), total(messages));
        g.bench_function("memcpy", |b| b.iter(|| memcpy_all(messages, &mut out)));
        for (name, make) in INFLATERS {
            let mut d = make();
            g.bench_function(name, |b| {
                b.iter(|| {
                    for m in &compressed {
                        black_box(d.inflate(black_box(m), &mut plain));
                        d.reset();
                    }
                })
            });
        }
        g.finish();
    }
}

fn extension(c: &mut Criterion) {
    let chat = chat_messages(1000);
    let big = vec![payload_64k()];
    let modes = [("no_context", true), ("context", false)];
    for (label, messages) in [("chat", &chat), ("64k", &big)] {
        let mut out = Vec::with_capacity(80 * 1024);
        let mut g = group(c, &format!("ext_{label}"), total(messages));
        g.bench_function("memcpy", |b| b.iter(|| memcpy_all(messages, &mut out)));
        let mut decode_groups = Vec::new();
        for (mode, no_context) in modes {
            let params = Params {
                server_no_context_takeover: no_context,
                client_no_context_takeover: no_context,
                ..Params::default()
            };
            let mut sender = Deflate::new(Role::Server, params).with_min_size(0);
            g.bench_function(format!("encode_{mode}"), |b| {
                b.iter(|| {
                    for m in messages.iter() {
                        out.clear();
                        black_box(sender.encode(OpCode::Text, black_box(m), &mut out).unwrap());
                    }
                })
            });
            decode_groups.push((mode, params));
        }
        // The same work as `encode_no_context`, by zlib-rs at level 1 and
        // memory level 1 (its symbol buffer unused at that level), reset
        // after every message.
        let mut zlib = Compressor::ZlibRs(zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
            level: 1,
            window_bits: -15,
            mem_level: 1,
            ..zlib_rs::DeflateConfig::default()
        }));
        g.bench_function("zlib-rs_L1_reset", |b| {
            b.iter(|| {
                for m in messages.iter() {
                    zlib.compress(black_box(m), &mut out);
                    zlib.reset();
                }
            })
        });
        g.finish();
        // Decoding sees only the messages that went out compressed (a
        // message that does not shrink without context goes out plain and
        // never reaches the decoder), so it gets its own group and
        // baseline.
        for (mode, params) in decode_groups {
            // One pass of the whole stream, so that a context decoder sees
            // messages in the order they were compressed.
            let mut encoder = Deflate::new(Role::Client, params).with_min_size(0);
            let mut plain = Vec::new();
            let wire: Vec<Vec<u8>> = messages
                .iter()
                .filter_map(|m| {
                    let mut w = Vec::new();
                    encoder.encode(OpCode::Text, m, &mut w).unwrap()?;
                    plain.push(m.clone());
                    Some(w)
                })
                .collect();
            let mut g = group(c, &format!("ext_{label}_decode_{mode}"), total(&plain));
            g.bench_function("memcpy", |b| b.iter(|| memcpy_all(&plain, &mut out)));
            g.bench_function("decode", |b| {
                b.iter_batched_ref(
                    || Deflate::new(Role::Server, params),
                    |receiver| {
                        for w in &wire {
                            out.clear();
                            for piece in w.chunks(4096) {
                                receiver.decode(piece, false, &mut out, usize::MAX).unwrap();
                            }
                            receiver.decode(&[], true, &mut out, usize::MAX).unwrap();
                            black_box(&out);
                        }
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
            g.finish();
        }
    }
}

criterion_group!(benches, library_comparison, extension);
criterion_main!(benches);
