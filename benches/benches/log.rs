//! tether-log: appends per fsync policy (100 B and 1 KiB records), and
//! recovery with replay of 100 000 records, each beside baselines in the
//! same run: a plain `File::write_all` of the same bytes (and the same
//! followed by `fdatasync`, for `Fsync::Always`), a plain read of the same
//! files, and redb, an embedded key-value store, holding the same records
//! (one transaction per append, durability `None` against `Never` and
//! `Immediate` against `Always`).
//!
//! `TETHER_LOG_BENCH_GIB=1` adds the recovery of a 1 GiB log (written
//! once, then opened and replayed whole; several seconds a sample).
//!
//! Run with `cargo bench -p tether-benches --bench log`. The files go
//! under the system's temporary directory (`TMPDIR`): the fsync figures
//! are those of the disk beneath it.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use tether_log::{Fsync, Log, Options, encode_record};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// A directory of the bench's own, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-bench-log-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Removes every scratch directory of this run.
fn cleanup() {
    let prefix = format!("tether-bench-log-{}-", std::process::id());
    for entry in fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix))
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn record(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    for size in [100usize, 1024] {
        let payload = record(size);
        let mut framed = Vec::new();
        encode_record(&payload, 0, &mut framed).expect("a small record");
        group.throughput(Throughput::Bytes(framed.len() as u64));
        group.measurement_time(Duration::from_secs(3));
        group.sample_size(20);

        let dir = scratch("write_all");
        let mut file = File::create(dir.join("plain")).expect("a file");
        group.bench_with_input(BenchmarkId::new("write_all", size), &framed, |b, bytes| {
            b.iter(|| file.write_all(black_box(bytes)).expect("write"));
        });
        drop(file);

        for (name, fsync) in [
            ("never", Fsync::Never),
            ("interval_10ms", Fsync::Interval(Duration::from_millis(10))),
        ] {
            let dir = scratch(name);
            let (mut log, _) = Log::open(&dir, Options::default().with_fsync(fsync)).expect("a log");
            group.bench_with_input(BenchmarkId::new(name, size), &payload, |b, payload| {
                b.iter(|| {
                    let now = Instant::now();
                    log.append(black_box(payload), now).expect("append");
                    if log.sync_due(now) {
                        log.sync().expect("sync");
                    }
                });
            });
        }

        let dir = scratch("redb_none");
        let db = Database::create(dir.join("db")).expect("a database");
        let mut key = 0u64;
        group.bench_with_input(BenchmarkId::new("redb_none", size), &payload, |b, payload| {
            b.iter(|| {
                let mut tx = db.begin_write().expect("tx");
                tx.set_durability(Durability::None);
                {
                    let mut table = tx.open_table(TABLE).expect("table");
                    table.insert(key, black_box(&payload[..])).expect("insert");
                }
                tx.commit().expect("commit");
                key += 1;
            });
        });
    }
    group.finish();

    // One fsync per append: a handful of samples, each a few appends.
    let mut group = c.benchmark_group("log_append_fsync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for size in [100usize, 1024] {
        let payload = record(size);
        let mut framed = Vec::new();
        encode_record(&payload, 0, &mut framed).expect("a small record");
        group.throughput(Throughput::Bytes(framed.len() as u64));

        let dir = scratch("write_all_fdatasync");
        let mut file = File::create(dir.join("plain")).expect("a file");
        group.bench_with_input(
            BenchmarkId::new("write_all_fdatasync", size),
            &framed,
            |b, bytes| {
                b.iter(|| {
                    file.write_all(black_box(bytes)).expect("write");
                    file.sync_data().expect("sync");
                });
            },
        );

        let dir = scratch("always");
        let (mut log, _) = Log::open(&dir, Options::default().with_fsync(Fsync::Always)).expect("a log");
        group.bench_with_input(BenchmarkId::new("always", size), &payload, |b, payload| {
            b.iter(|| log.append(black_box(payload), Instant::now()).expect("append"));
        });

        let dir = scratch("redb_immediate");
        let db = Database::create(dir.join("db")).expect("a database");
        let mut key = 0u64;
        group.bench_with_input(
            BenchmarkId::new("redb_immediate", size),
            &payload,
            |b, payload| {
                b.iter(|| {
                    let tx = db.begin_write().expect("tx");
                    {
                        let mut table = tx.open_table(TABLE).expect("table");
                        table.insert(key, black_box(&payload[..])).expect("insert");
                    }
                    tx.commit().expect("commit");
                    key += 1;
                });
            },
        );
    }
    group.finish();
    cleanup();
}

/// Writes `count` records of `size` bytes to a log in `dir`, synced.
fn fill(dir: &Path, count: u64, size: usize) -> u64 {
    let (mut log, _) = Log::open(dir, Options::default().with_fsync(Fsync::Never)).expect("a log");
    let payload = record(size);
    let now = Instant::now();
    for _ in 0..count {
        log.append(&payload, now).expect("append");
    }
    log.sync().expect("sync");
    log.bytes()
}

fn read_files(dir: &Path) -> u64 {
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0u64;
    for entry in fs::read_dir(dir).expect("dir") {
        let mut file = File::open(entry.expect("entry").path()).expect("file");
        loop {
            let n = file.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}

fn replay(c: &mut Criterion) {
    const COUNT: u64 = 100_000;
    let mut group = c.benchmark_group("log_replay_100k");
    group.sample_size(20);
    let dir = scratch("replay");
    let bytes = fill(&dir, COUNT, 100);
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("read_files", |b| b.iter(|| black_box(read_files(&dir))));
    group.bench_function("open_and_replay", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            let (_, recovery) = Log::open_with(&dir, Options::default().with_fsync(Fsync::Never), |r| {
                sum += r.payload.len()
            })
            .expect("open");
            assert_eq!(recovery.records, COUNT);
            black_box(sum)
        });
    });

    let redb_dir = scratch("replay_redb");
    let db = Database::create(redb_dir.join("db")).expect("a database");
    let payload = record(100);
    let tx = db.begin_write().expect("tx");
    {
        let mut table = tx.open_table(TABLE).expect("table");
        for key in 0..COUNT {
            table.insert(key, &payload[..]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    drop(db);
    group.bench_function("redb_open_and_iterate", |b| {
        b.iter(|| {
            let db = Database::create(redb_dir.join("db")).expect("a database");
            let tx = db.begin_read().expect("tx");
            let table = tx.open_table(TABLE).expect("table");
            let mut sum = 0usize;
            for entry in table.iter().expect("iter") {
                let (_, value) = entry.expect("entry");
                sum += value.value().len();
            }
            black_box(sum)
        });
    });
    group.finish();
    let _ = fs::remove_dir_all(&redb_dir);
    let _ = fs::remove_dir_all(&dir);
}

fn recover_gib(c: &mut Criterion) {
    if std::env::var_os("TETHER_LOG_BENCH_GIB").is_none() {
        eprintln!("log_recover_1gib: skipped (set TETHER_LOG_BENCH_GIB=1; it writes 1 GiB)");
        return;
    }
    let dir = scratch("gib");
    // 1 KiB records: about a million.
    let bytes = fill(&dir, (1u64 << 30) / (1024 + 8), 1024);
    let mut group = c.benchmark_group("log_recover_1gib");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("read_files", |b| b.iter(|| black_box(read_files(&dir))));
    group.bench_function("open_and_replay", |b| {
        b.iter(|| {
            let mut count = 0u64;
            Log::open_with(&dir, Options::default().with_fsync(Fsync::Never), |_| count += 1).expect("open");
            black_box(count)
        });
    });
    // A torn tail to cut: the time of a recovery after a crash.
    group.bench_function("open_torn_tail", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let last = fs::read_dir(&dir)
                    .expect("dir")
                    .map(|e| e.expect("entry").path())
                    .max()
                    .expect("a segment");
                let mut file = OpenOptions::new().append(true).open(&last).expect("segment");
                file.write_all(&[1, 0, 0, 0, 9]).expect("a torn record");
                drop(file);
                let start = Instant::now();
                let (_, recovery) =
                    Log::open(&dir, Options::default().with_fsync(Fsync::Never)).expect("open");
                total += start.elapsed();
                assert_eq!(recovery.torn_tails, 1);
            }
            total
        });
    });
    group.finish();
    let _ = fs::remove_dir_all(&dir);
}

criterion_group!(benches, appends, replay, recover_gib);
criterion_main!(benches);
