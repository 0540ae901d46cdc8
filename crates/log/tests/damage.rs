//! Random damage to a log of thousands of small records (bit flips,
//! zeroed 4 KiB pages, files cut short): every record the damage did not
//! touch is handed out exactly once, in order, at its index; nothing else
//! but records that were written; the records lost between good ones are
//! counted; a second open finds the same; appends go on after the last.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use tether_log::{Decoded, Fsync, Log, Options, SEGMENT_HEADER_LEN, decode_record};

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tether-log-damage-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone)]
enum Hit {
    /// Flip bit `bit` of the byte at `at` (a fraction of the file).
    Flip { at: f64, bit: u8 },
    /// Zero the 4 KiB page that holds `at`.
    ZeroPage { at: f64 },
    /// Cut the file at `at`.
    Cut { at: f64 },
}

fn hit() -> impl Strategy<Value = (usize, Hit)> {
    let kind = prop_oneof![
        6 => (0.0..1.0f64, 0u8..8).prop_map(|(at, bit)| Hit::Flip { at, bit }),
        2 => (0.0..1.0f64).prop_map(|at| Hit::ZeroPage { at }),
        1 => (0.0..1.0f64).prop_map(|at| Hit::Cut { at }),
    ];
    (0usize..8, kind)
}

/// Payloads of 0 to 12 bytes drawn from an alphabet heavy in the bytes
/// of the framing (0xFF, 0x01, 0x00), so escapes and false markers are
/// everywhere.
fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![Just(0xFFu8), Just(0x01), Just(0x00), any::<u8>()];
    proptest::collection::vec(proptest::collection::vec(byte, 0..12), 1000..2500)
}

/// A record as it lies in its file: which file, where, its index.
struct Placed {
    file: usize,
    start: usize,
    end: usize,
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn damage_costs_only_the_records_it_touches(
        payloads in payloads(),
        hits in proptest::collection::vec(hit(), 1..6),
    ) {
        let dir = TempDir::new();
        let options = Options::default().with_fsync(Fsync::Never).with_segment_bytes(8 * 1024).with_max_record_bytes(64);
        let (mut log, _) = Log::open(&dir.0, options.clone()).unwrap();
        let now = Instant::now();
        for p in &payloads {
            log.append(p, now).unwrap();
        }
        drop(log);

        // Where every record lies, read back with the decoder.
        let files = segment_files(&dir.0);
        let mut contents: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
        let mut placed: Vec<Placed> = Vec::new();
        for (file, bytes) in contents.iter().enumerate() {
            let mut at = SEGMENT_HEADER_LEN;
            while at < bytes.len() {
                let mut rest = bytes[at..bytes.len().min(at + 256)].to_vec();
                let Decoded::Record { index, used, .. } = decode_record(&mut rest, 64) else {
                    panic!("a record where the writer put one")
                };
                prop_assert_eq!(index as usize, placed.len());
                placed.push(Placed { file, start: at, end: at + used });
                at += used;
            }
        }
        prop_assert_eq!(placed.len(), payloads.len());

        // The damage, and what it touched: a byte range per file (a cut
        // touches all that follows it; the header touches every record).
        let mut touched: Vec<Vec<(usize, usize)>> = vec![Vec::new(); files.len()];
        for (which, hit) in &hits {
            let file = which % files.len();
            let bytes = &mut contents[file];
            if bytes.is_empty() {
                continue;
            }
            let pos = |at: f64| ((at * bytes.len() as f64) as usize).min(bytes.len() - 1);
            let range = match *hit {
                Hit::Flip { at, bit } => {
                    let p = pos(at);
                    bytes[p] ^= 1 << bit;
                    (p, p + 1)
                }
                Hit::ZeroPage { at } => {
                    let page = pos(at) / 4096 * 4096;
                    let end = (page + 4096).min(bytes.len());
                    bytes[page..end].fill(0);
                    (page, end)
                }
                Hit::Cut { at } => {
                    let p = pos(at);
                    bytes.truncate(p);
                    (p, usize::MAX)
                }
            };
            touched[file].push(range);
        }
        for (file, bytes) in files.iter().zip(&contents) {
            fs::write(file, bytes).unwrap();
        }
        let untouched = |r: &Placed| {
            touched[r.file]
                .iter()
                .all(|&(a, b)| a >= SEGMENT_HEADER_LEN && (b <= r.start || a >= r.end))
        };

        let mut seen: Vec<(u64, Vec<u8>)> = Vec::new();
        let (mut log, recovery) =
            Log::open_with(&dir.0, options.clone(), |r| seen.push((r.index, r.payload.to_vec()))).unwrap();
        prop_assert_eq!(recovery.records, seen.len() as u64);
        for pair in seen.windows(2) {
            prop_assert!(pair[0].0 < pair[1].0, "in order, once each");
        }
        for (index, payload) in &seen {
            prop_assert_eq!(&payloads[*index as usize], payload, "a record as written");
        }
        let seen_indices: std::collections::HashSet<u64> = seen.iter().map(|(i, _)| *i).collect();
        for (index, record) in placed.iter().enumerate() {
            if untouched(record) {
                prop_assert!(seen_indices.contains(&(index as u64)), "record {} untouched, not seen: {:?}", index, recovery);
            }
        }
        // Every record missing between two good ones of a segment that
        // was not set aside is counted as lost.
        let quarantined: Vec<u64> = recovery.quarantined.iter().map(|q| q.base).collect();
        let mut missing_between = 0u64;
        for pair in seen.windows(2) {
            let (a, b) = (pair[0].0 as usize, pair[1].0 as usize);
            let same_file = placed[a].file == placed[b].file;
            let base = seen_base(&placed, &files, a);
            if same_file && !quarantined.contains(&base) {
                missing_between += (b - a - 1) as u64;
            }
        }
        prop_assert!(recovery.lost_records() >= missing_between, "{} < {}: {:?}", recovery.lost_records(), missing_between, recovery);

        let next = log.append(b"after", Instant::now()).unwrap();
        prop_assert!(seen.last().is_none_or(|(last, _)| next > *last));
        drop(log);
        let mut again: Vec<(u64, Vec<u8>)> = Vec::new();
        Log::open_with(&dir.0, options, |r| again.push((r.index, r.payload.to_vec()))).unwrap();
        seen.push((next, b"after".to_vec()));
        prop_assert_eq!(again, seen);
    }
}

/// The base index of the file that holds record `index`.
fn seen_base(placed: &[Placed], files: &[PathBuf], index: usize) -> u64 {
    let name = files[placed[index].file].file_stem().unwrap().to_str().unwrap();
    name.parse().unwrap()
}
