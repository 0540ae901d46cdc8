//! The log against its files: round trips, recovery from every cut and
//! every flipped bit, foreign files, rolling and removal, fsync timing.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tether_log::{
    Damage, Error, Fsync, Log, Options, RECORD_HEADER_LEN_V1, SEGMENT_HEADER_LEN, encode_record,
    encode_record_v1, encode_segment_header, encode_segment_header_v1,
};

/// A directory of its own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tether-log-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn options() -> Options {
    Options::default().with_fsync(Fsync::Never)
}

fn payload(i: usize) -> Vec<u8> {
    format!("record {i} {}", "x".repeat(i % 7)).into_bytes()
}

/// Opens the log and collects what recovery hands out.
fn reopen(dir: &Path, options: Options) -> (Log, tether_log::Recovery, Vec<(u64, Vec<u8>)>) {
    let mut seen = Vec::new();
    let (log, recovery) = Log::open_with(dir, options, |record| {
        seen.push((record.index, record.payload.to_vec()))
    })
    .unwrap();
    (log, recovery, seen)
}

fn write(dir: &Path, options: Options, payloads: &[Vec<u8>]) -> Log {
    let (mut log, _) = Log::open(dir, options).unwrap();
    let now = Instant::now();
    for p in payloads {
        log.append(p, now).unwrap();
    }
    log
}

/// Writes `payloads` as a log of version 1 segments, as earlier releases
/// did (rolled the same way: a segment with records takes no record that
/// would take it past `segment_bytes`).
fn write_v1(dir: &Path, segment_bytes: u64, payloads: &[Vec<u8>]) {
    let mut files: Vec<(u64, Vec<u8>)> = vec![(0, encode_segment_header_v1(0).to_vec())];
    for (i, p) in payloads.iter().enumerate() {
        let (_, bytes) = files.last().unwrap();
        let size = (RECORD_HEADER_LEN_V1 + p.len()) as u64;
        if bytes.len() > SEGMENT_HEADER_LEN && bytes.len() as u64 + size > segment_bytes {
            files.push((i as u64, encode_segment_header_v1(i as u64).to_vec()));
        }
        encode_record_v1(p, &mut files.last_mut().unwrap().1).unwrap();
    }
    for (base, bytes) in files {
        fs::write(dir.join(format!("{base:020}.log")), bytes).unwrap();
    }
}

/// The bytes of record `index` as the log writes it.
fn record_len(payload: &[u8], index: u64) -> usize {
    let mut wire = Vec::new();
    encode_record(payload, index, &mut wire).unwrap();
    wire.len()
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

fn numbered(payloads: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64, p.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..40),
        segment_bytes in 32u64..1200,
        from in 0u64..45,
    ) {
        let dir = TempDir::new();
        let options = options().with_segment_bytes(segment_bytes);
        let log = write(dir.path(), options.clone(), &payloads);
        let mut read = Vec::new();
        log.read_from(from, |r| read.push((r.index, r.payload.to_vec()))).unwrap();
        let expected = numbered(&payloads);
        prop_assert_eq!(&read[..], &expected[expected.len().min(from as usize)..]);
        drop(log);

        let (mut log, recovery, seen) = reopen(dir.path(), options.clone());
        prop_assert!(recovery.is_clean());
        prop_assert_eq!(recovery.records, payloads.len() as u64);
        prop_assert_eq!(&seen, &expected);
        // Appends go on after the last record.
        prop_assert_eq!(log.append(b"more", Instant::now()).unwrap(), payloads.len() as u64);
        drop(log);
        let (_, _, seen) = reopen(dir.path(), options);
        prop_assert_eq!(seen.len(), payloads.len() + 1);
        prop_assert_eq!(seen.last().map(|(i, p)| (*i, &p[..])), Some((payloads.len() as u64, &b"more"[..])));
    }
}

#[test]
fn every_cut_of_the_last_record_is_a_torn_tail() {
    let payloads: Vec<Vec<u8>> = (0..5).map(payload).collect();
    let dir = TempDir::new();
    drop(write(dir.path(), options(), &payloads));
    let [file] = &segment_files(dir.path())[..] else {
        panic!("one segment")
    };
    let whole = fs::read(file).unwrap();
    let last_len = record_len(&payloads[4], 4);
    let last_start = whole.len() - last_len;
    for cut in last_start..whole.len() {
        fs::write(file, &whole[..cut]).unwrap();
        let (mut log, recovery, seen) = reopen(dir.path(), options());
        assert_eq!(seen, numbered(&payloads[..4]), "cut at {cut}");
        let torn = u64::from(cut > last_start);
        assert_eq!(recovery.torn_tails, torn, "cut at {cut}");
        assert_eq!(recovery.truncated_bytes, (cut - last_start) as u64);
        assert!(recovery.quarantined.is_empty());
        assert_eq!(fs::metadata(file).unwrap().len(), last_start as u64);
        // Appending right after the last good record.
        assert_eq!(log.append(b"again", Instant::now()).unwrap(), 4);
        drop(log);
        let (_, recovery, seen) = reopen(dir.path(), options());
        assert!(recovery.is_clean());
        assert_eq!(seen.last().unwrap(), &(4, b"again".to_vec()));
    }
}

#[test]
fn a_cut_short_header_of_the_last_segment_is_a_torn_tail() {
    let dir = TempDir::new();
    let options = options().with_segment_bytes(64);
    let payloads: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8; 30]).collect();
    drop(write(dir.path(), options.clone(), &payloads));
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 4);
    let last = files.last().unwrap();
    let whole = fs::read(last).unwrap();
    for cut in 0..SEGMENT_HEADER_LEN {
        fs::write(last, &whole[..cut]).unwrap();
        let (mut log, recovery, seen) = reopen(dir.path(), options.clone());
        assert_eq!(seen, numbered(&payloads[..3]), "cut at {cut}");
        assert_eq!((recovery.torn_tails, recovery.truncated_bytes), (1, cut as u64));
        assert!(recovery.quarantined.is_empty());
        assert!(!last.exists());
        // The segment before it takes appends again.
        assert_eq!(log.append(&[9; 30], Instant::now()).unwrap(), 3);
        drop(log);
        let (_, recovery, seen) = reopen(dir.path(), options.clone());
        assert!(recovery.is_clean());
        assert_eq!(seen.len(), 4);
        // Put the log back as it was for the next cut.
        for f in segment_files(dir.path()) {
            fs::remove_file(f).unwrap();
        }
        drop(write(dir.path(), options.clone(), &payloads));
    }
}

/// Flips each bit of a log of three segments in turn: recovery hands out
/// only records that were written, at their own indices, and every one
/// but the record the flip hit (all three of its segment for a flip in
/// the segment's header); the lost record is counted, and a second open
/// finds the same records.
#[test]
fn flipped_bits_anywhere() {
    let dir = TempDir::new();
    // Header 24 + three records of 10 + 20 = 114.
    let options = options().with_segment_bytes(114);
    let payloads: Vec<Vec<u8>> = (0..9).map(|i| vec![b'a' + i as u8; 20]).collect();
    drop(write(dir.path(), options.clone(), &payloads));
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3, "three records a segment");
    let originals: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let expected = numbered(&payloads);
    for (k, original) in originals.iter().enumerate() {
        for byte in 0..original.len() {
            for bit in [0, 3, 7] {
                for entry in fs::read_dir(dir.path()).unwrap() {
                    fs::remove_file(entry.unwrap().path()).unwrap();
                }
                for (file, bytes) in files.iter().zip(&originals) {
                    fs::write(file, bytes).unwrap();
                }
                let mut bad = original.clone();
                bad[byte] ^= 1 << bit;
                fs::write(&files[k], &bad).unwrap();

                let (log, recovery, seen) = reopen(dir.path(), options.clone());
                let what = format!("segment {k} byte {byte} bit {bit}: {recovery:?}");
                for (index, payload) in &seen {
                    assert_eq!(&expected[*index as usize].1, payload, "{what}");
                }
                let indices: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
                let lost: Vec<u64> = if byte < SEGMENT_HEADER_LEN {
                    (3 * k as u64..3 * k as u64 + 3).collect()
                } else {
                    vec![3 * k as u64 + ((byte - SEGMENT_HEADER_LEN) / 30) as u64]
                };
                let kept: Vec<u64> = (0..9).filter(|i| !lost.contains(i)).collect();
                assert_eq!(indices, kept, "{what}");
                assert!(!recovery.is_clean(), "{what}");
                if byte < SEGMENT_HEADER_LEN {
                    assert_eq!(recovery.quarantined.len(), 1, "{what}");
                } else if k == 2 && lost == [8] {
                    // The last record of the last segment: a torn tail.
                    assert_eq!(recovery.torn_tails, 1, "{what}");
                } else {
                    assert!(recovery.quarantined.is_empty(), "{what}");
                    assert_eq!(
                        (recovery.lost_records(), recovery.damaged.len()),
                        (1, 1),
                        "{what}"
                    );
                    assert_eq!(recovery.damaged[0].first_lost, Some(lost[0]), "{what}");
                    assert_eq!(recovery.damaged_bytes(), 30, "{what}");
                }
                drop(log);
                let (_, _, seen_again) = reopen(dir.path(), options.clone());
                assert_eq!(seen_again, seen, "{what}");
            }
        }
    }
}

/// Flips each bit of a log of three version 1 segments in turn: recovery hands out
/// only records that were written, at their own indices; every record of
/// the other segments, and those before the damage; and a second open
/// finds the log as the first left it.
#[test]
fn flipped_bits_anywhere_in_version_1() {
    let dir = TempDir::new();
    let options = options().with_segment_bytes(108);
    let payloads: Vec<Vec<u8>> = (0..9).map(|i| vec![b'a' + i as u8; 20]).collect();
    write_v1(dir.path(), 108, &payloads);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3, "three records a segment");
    let originals: Vec<Vec<u8>> = files.iter().map(|f| fs::read(f).unwrap()).collect();
    let expected = numbered(&payloads);
    for (k, original) in originals.iter().enumerate() {
        for byte in 0..original.len() {
            for bit in [3] {
                for entry in fs::read_dir(dir.path()).unwrap() {
                    fs::remove_file(entry.unwrap().path()).unwrap();
                }
                for (file, bytes) in files.iter().zip(&originals) {
                    fs::write(file, bytes).unwrap();
                }
                let mut bad = original.clone();
                bad[byte] ^= 1 << bit;
                fs::write(&files[k], &bad).unwrap();

                let (log, recovery, seen) = reopen(dir.path(), options.clone());
                let what = format!("segment {k} byte {byte} bit {bit}: {recovery:?}");
                for (index, payload) in &seen {
                    assert_eq!(&expected[*index as usize].1, payload, "{what}");
                }
                let indices: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
                let damaged = (3 * k as u64)..(3 * k as u64 + 3);
                let others: Vec<u64> = (0..9).filter(|i| !damaged.contains(i)).collect();
                let kept_of_damaged: Vec<u64> =
                    indices.iter().copied().filter(|i| damaged.contains(i)).collect();
                assert_eq!(
                    indices
                        .iter()
                        .copied()
                        .filter(|i| !damaged.contains(i))
                        .collect::<Vec<_>>(),
                    others,
                    "{what}"
                );
                // What is kept of the damaged segment is a prefix of it.
                assert!(
                    kept_of_damaged
                        .iter()
                        .copied()
                        .eq(damaged.start..damaged.start + kept_of_damaged.len() as u64),
                    "{what}"
                );
                assert!(kept_of_damaged.len() < 3, "a flipped bit is always found: {what}");
                assert!(!recovery.is_clean(), "{what}");
                if k == 2 && byte >= SEGMENT_HEADER_LEN + 2 * (RECORD_HEADER_LEN_V1 + 20) {
                    // The last record of the last segment: a torn tail,
                    // unless its length grew past the file (also torn) or
                    // shrank (then bytes follow it: damage).
                    assert!(
                        recovery.torn_tails == 1 || !recovery.quarantined.is_empty(),
                        "{what}"
                    );
                }
                drop(log);
                // The log goes on in a segment of version 2.
                for file in segment_files(dir.path()).iter().filter(|f| !files.contains(f)) {
                    fs::remove_file(file).unwrap();
                }
                let (_, again, seen_again) = reopen(dir.path(), options.clone());
                assert!(again.is_clean(), "second open of {what}: {again:?}");
                assert_eq!(seen_again, seen, "{what}");
            }
        }
    }
}

#[test]
fn damage_inside_a_version_1_segment_keeps_the_records_before_it() {
    let dir = TempDir::new();
    let payloads: Vec<Vec<u8>> = (0..6).map(payload).collect();
    write_v1(dir.path(), u64::MAX, &payloads);
    let [file] = &segment_files(dir.path())[..] else {
        panic!("one segment")
    };
    let mut bytes = fs::read(file).unwrap();
    // The third record's payload.
    let third = SEGMENT_HEADER_LEN
        + payloads[..2]
            .iter()
            .map(|p| RECORD_HEADER_LEN_V1 + p.len())
            .sum::<usize>()
        + RECORD_HEADER_LEN_V1;
    bytes[third] ^= 0x40;
    fs::write(file, &bytes).unwrap();

    let (mut log, recovery, seen) = reopen(dir.path(), options());
    assert_eq!(seen, numbered(&payloads[..2]));
    let [quarantined] = &recovery.quarantined[..] else {
        panic!("{recovery:?}")
    };
    assert_eq!(quarantined.kept_records, 2);
    assert_eq!(
        quarantined.damage,
        Damage::BadRecord {
            offset: (third - RECORD_HEADER_LEN_V1) as u64
        }
    );
    assert_eq!(
        fs::read(&quarantined.path).unwrap(),
        bytes,
        "the damaged file is kept as it was"
    );
    assert!(quarantined.path.to_str().unwrap().ends_with(".log.corrupt"));
    // Appends continue after the kept records (in a new segment, of
    // version 2).
    assert_eq!(log.append(b"after", Instant::now()).unwrap(), 2);
    assert_eq!(log.segments().map(|s| s.base).collect::<Vec<_>>(), [0, 2]);
    drop(log);
    let (_, recovery, seen) = reopen(dir.path(), options());
    assert!(recovery.is_clean());
    assert_eq!(seen.len(), 3);
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = TempDir::new();
    let payloads: Vec<Vec<u8>> = (0..3).map(payload).collect();
    drop(write(dir.path(), options(), &payloads));
    let [file] = &segment_files(dir.path())[..] else {
        panic!("one segment")
    };
    let len = fs::metadata(file).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(file)
        .unwrap()
        .set_len(len + 4096)
        .unwrap();
    let (_, recovery, seen) = reopen(dir.path(), options());
    assert_eq!(seen, numbered(&payloads));
    assert_eq!((recovery.torn_tails, recovery.truncated_bytes), (1, 4096));
    assert_eq!(fs::metadata(file).unwrap().len(), len);
}

#[test]
fn empty_zero_length_and_garbage_files() {
    // An empty directory, and one that does not exist yet.
    let dir = TempDir::new();
    let (log, recovery) = Log::open(dir.path().join("new"), options()).unwrap();
    assert!(recovery.is_clean());
    assert_eq!((log.next_index(), log.segments().len()), (0, 1));

    // A lone zero-length segment: a header never written.
    let dir = TempDir::new();
    fs::write(dir.path().join(format!("{:020}.log", 0)), b"").unwrap();
    let (mut log, recovery, seen) = reopen(dir.path(), options());
    assert!(seen.is_empty());
    assert_eq!(recovery.torn_tails, 1);
    assert_eq!(log.append(b"x", Instant::now()).unwrap(), 0);

    // A zero-length segment ahead of another: quarantined, the other kept.
    let dir = TempDir::new();
    let options = options().with_segment_bytes(40);
    drop(write(dir.path(), options.clone(), &[vec![1; 10], vec![2; 10]]));
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    fs::write(&files[0], b"").unwrap();
    let (_, recovery, seen) = reopen(dir.path(), options.clone());
    assert_eq!(seen, vec![(1, vec![2; 10])]);
    assert_eq!(recovery.quarantined.len(), 1);
    assert_eq!(recovery.quarantined[0].damage, Damage::BadHeader);

    // Garbage under a segment's name, as the only file: quarantined, and a
    // new segment begun.
    let dir = TempDir::new();
    let name = dir.path().join(format!("{:020}.log", 7));
    fs::write(&name, b"this is not a log at all, not even close").unwrap();
    let (mut log, recovery, seen) = reopen(dir.path(), options.clone());
    assert!(seen.is_empty());
    assert_eq!(recovery.quarantined[0].damage, Damage::BadHeader);
    assert_eq!(log.append(b"y", Instant::now()).unwrap(), 7);

    // A header of another base; files that are not segments are ignored.
    let dir = TempDir::new();
    fs::write(
        dir.path().join(format!("{:020}.log", 3)),
        encode_segment_header(4),
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    fs::write(dir.path().join("123.log"), b"short name").unwrap();
    let (_, recovery, _) = reopen(dir.path(), options.clone());
    assert_eq!(recovery.quarantined.len(), 1);
    assert_eq!(recovery.quarantined[0].damage, Damage::BadHeader);
    assert_eq!(fs::read(dir.path().join("notes.txt")).unwrap(), b"hello");
    assert!(dir.path().join("123.log").exists());

    // A length field far above the limit is damage, not an allocation.
    let dir = TempDir::new();
    let mut bytes = encode_segment_header_v1(0).to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0xff; 12]);
    fs::write(dir.path().join(format!("{:020}.log", 0)), &bytes).unwrap();
    let (_, recovery, seen) = reopen(dir.path(), options.with_max_record_bytes(1024));
    assert!(seen.is_empty());
    assert_eq!(
        recovery.quarantined[0].damage,
        Damage::BadRecord {
            offset: SEGMENT_HEADER_LEN as u64
        }
    );
}

#[test]
fn overlapping_segment_is_quarantined() {
    let dir = TempDir::new();
    let payloads: Vec<Vec<u8>> = (0..5).map(payload).collect();
    drop(write(dir.path(), options(), &payloads));
    let mut bytes = encode_segment_header(3).to_vec();
    encode_record(b"intruder", 3, &mut bytes).unwrap();
    fs::write(dir.path().join(format!("{:020}.log", 3)), &bytes).unwrap();
    let (mut log, recovery, seen) = reopen(dir.path(), options());
    assert_eq!(seen, numbered(&payloads));
    assert_eq!(recovery.quarantined[0].damage, Damage::Overlap);
    assert_eq!(log.append(b"next", Instant::now()).unwrap(), 5);
}

#[test]
fn a_middle_version_1_segment_cut_short_is_quarantined_with_its_good_records() {
    let dir = TempDir::new();
    let options = options();
    let payloads: Vec<Vec<u8>> = (0..9).map(|i| vec![i as u8; 20]).collect();
    write_v1(dir.path(), 108, &payloads);
    let files = segment_files(dir.path());
    let middle = fs::read(&files[1]).unwrap();
    fs::write(&files[1], &middle[..middle.len() - 5]).unwrap();
    let (_, recovery, seen) = reopen(dir.path(), options.clone());
    let indices: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 6, 7, 8]);
    assert_eq!(recovery.quarantined[0].kept_records, 2);
    assert!(matches!(recovery.quarantined[0].damage, Damage::Truncated { .. }));
    let (_, again, seen_again) = reopen(dir.path(), options);
    assert!(again.is_clean());
    assert_eq!(seen_again, seen);
}

#[test]
fn a_middle_segment_cut_short_loses_its_last_record_only() {
    let dir = TempDir::new();
    let options = options().with_segment_bytes(114);
    let payloads: Vec<Vec<u8>> = (0..9).map(|i| vec![i as u8; 20]).collect();
    drop(write(dir.path(), options.clone(), &payloads));
    let files = segment_files(dir.path());
    let middle = fs::read(&files[1]).unwrap();
    fs::write(&files[1], &middle[..middle.len() - 5]).unwrap();
    let (_, recovery, seen) = reopen(dir.path(), options.clone());
    let indices: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 6, 7, 8]);
    assert!(recovery.quarantined.is_empty());
    let [damaged] = &recovery.damaged[..] else {
        panic!("{recovery:?}")
    };
    assert_eq!((damaged.base, damaged.lost_records, damaged.bytes), (3, 1, 25));
    // The damaged bytes are kept beside the segment: offset, length, bytes.
    let kept = fs::read(&damaged.kept).unwrap();
    assert_eq!(&kept[..8], &(24u64 + 60).to_le_bytes());
    assert_eq!(&kept[8..16], &25u64.to_le_bytes());
    assert_eq!(&kept[16..], &middle[84..109]);
    // The segment still serves its records, and is found the same again,
    // its copy not made twice.
    let (_, again, seen_again) = reopen(dir.path(), options);
    assert_eq!(seen_again, seen);
    assert_eq!(again.damaged, recovery.damaged);
    let copies = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .contains(".damaged")
        })
        .count();
    assert_eq!(copies, 1);
}

#[test]
fn segments_roll_at_their_size_and_are_removed_whole() {
    let dir = TempDir::new();
    // Header 24 + three records of 10 + 20 = 114.
    let options = options().with_segment_bytes(114);
    let payloads: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 20]).collect();
    let mut log = write(dir.path(), options.clone(), &payloads);
    let segments: Vec<(u64, u64)> = log.segments().map(|s| (s.base, s.end)).collect();
    assert_eq!(segments, [(0, 3), (3, 6), (6, 9), (9, 10)]);
    assert!(log.segments().all(|s| s.bytes <= 114));
    assert_eq!(segment_files(dir.path()).len(), 4);

    // Records 0 to 3 are no longer needed: only the first segment is all
    // below 4.
    assert_eq!(log.remove_before(4).unwrap(), 1);
    assert_eq!(log.segments().next().unwrap().base, 3);
    // Nothing needed at all: every segment but the one appended to goes.
    assert_eq!(log.remove_before(u64::MAX).unwrap(), 2);
    assert_eq!(log.segments().map(|s| s.base).collect::<Vec<_>>(), [9]);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(log.append(b"go on", Instant::now()).unwrap(), 10);
    drop(log);
    let (_, recovery, seen) = reopen(dir.path(), options.clone());
    assert!(recovery.is_clean());
    assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [9, 10]);

    // A record larger than a segment gets one of its own.
    let dir = TempDir::new();
    let mut log = write(dir.path(), options, &[vec![1; 10], vec![2; 500], vec![3; 10]]);
    let segments: Vec<(u64, u64)> = log.segments().map(|s| (s.base, s.end)).collect();
    assert_eq!(segments, [(0, 1), (1, 2), (2, 3)]);
    log.roll().unwrap();
    log.roll().unwrap();
    assert_eq!(log.segments().len(), 4, "an empty segment is not rolled");
}

#[test]
fn too_large_records_are_refused() {
    let dir = TempDir::new();
    let (mut log, _) = Log::open(dir.path(), options().with_max_record_bytes(16)).unwrap();
    assert!(matches!(
        log.append(&[0; 17], Instant::now()),
        Err(Error::RecordTooLarge { len: 17, max: 16 })
    ));
    assert_eq!(log.append(&[0; 16], Instant::now()).unwrap(), 0);
}

#[test]
fn fsync_interval_deadline_follows_the_first_unsynced_append() {
    let dir = TempDir::new();
    let ms = Duration::from_millis;
    let (mut log, _) = Log::open(dir.path(), Options::default().with_fsync(Fsync::Interval(ms(10)))).unwrap();
    let t0 = Instant::now();
    assert_eq!(log.poll_timeout(), None);
    assert!(!log.sync_due(t0 + ms(1000)));
    log.append(b"a", t0).unwrap();
    log.append(b"b", t0 + ms(7)).unwrap();
    assert_eq!(log.poll_timeout(), Some(t0 + ms(10)));
    assert!(!log.sync_due(t0 + ms(9)));
    assert!(log.sync_due(t0 + ms(10)));
    log.sync().unwrap();
    assert_eq!((log.poll_timeout(), log.syncs()), (None, 1));
    // The next window starts with the next append, not with the sync.
    log.append(b"c", t0 + ms(30)).unwrap();
    assert_eq!(log.poll_timeout(), Some(t0 + ms(40)));
    assert!(!log.sync_due(t0 + ms(39)));
    log.sync().unwrap();
    log.sync().unwrap();
    assert_eq!(log.syncs(), 2, "nothing to sync, no sync");
}

#[test]
fn fsync_always_syncs_each_append_and_never_never_does() {
    let dir = TempDir::new();
    let (mut log, _) = Log::open(dir.path(), Options::default().with_fsync(Fsync::Always)).unwrap();
    let now = Instant::now();
    for n in 1..=3 {
        log.append(b"a", now).unwrap();
        assert_eq!(
            (log.syncs(), log.is_dirty(), log.poll_timeout()),
            (n, false, None)
        );
    }
    let dir = TempDir::new();
    let (mut log, _) = Log::open(dir.path(), Options::default().with_fsync(Fsync::Never)).unwrap();
    log.append(b"a", now).unwrap();
    assert!(log.is_dirty());
    assert_eq!(log.poll_timeout(), None);
    assert!(!log.sync_due(now + Duration::from_secs(3600)));
    log.sync().unwrap();
    assert_eq!((log.syncs(), log.is_dirty()), (1, false));
}

#[test]
fn a_version_1_log_upgrades_losing_nothing() {
    let dir = TempDir::new();
    let payloads: Vec<Vec<u8>> = (0..9).map(|i| vec![i as u8; 20]).collect();
    write_v1(dir.path(), 108, &payloads);
    assert_eq!(segment_files(dir.path()).len(), 3);
    let (mut log, recovery, seen) = reopen(dir.path(), options());
    assert!(recovery.is_clean(), "{recovery:?}");
    assert_eq!(seen, numbered(&payloads));
    // Appends go to a new segment, of version 2, after the old records.
    assert_eq!(log.append(b"new", Instant::now()).unwrap(), 9);
    assert_eq!(log.active_base(), 9);
    let mut read = Vec::new();
    log.read_from(0, |r| read.push(r.index)).unwrap();
    assert_eq!(read, (0..10).collect::<Vec<u64>>());
    drop(log);
    let newest = segment_files(dir.path()).pop().unwrap();
    assert_eq!(
        tether_log::decode_segment_header(&fs::read(&newest).unwrap()).map(|h| h.version),
        Some(tether_log::SEGMENT_VERSION)
    );
    let (_, recovery, seen) = reopen(dir.path(), options());
    assert!(recovery.is_clean());
    assert_eq!(seen.len(), 10);

    // An empty version 1 segment left last gives way to a version 2 one
    // of the same base.
    let dir = TempDir::new();
    write_v1(dir.path(), 108, &payloads[..3]);
    fs::write(
        dir.path().join(format!("{:020}.log", 3)),
        encode_segment_header_v1(3),
    )
    .unwrap();
    let (mut log, recovery, seen) = reopen(dir.path(), options());
    assert!(recovery.is_clean());
    assert_eq!(seen.len(), 3);
    assert_eq!(log.append(b"next", Instant::now()).unwrap(), 3);
    assert_eq!(log.segments().map(|s| s.base).collect::<Vec<_>>(), [0, 3]);
    drop(log);
    let (_, _, seen) = reopen(dir.path(), options());
    assert_eq!(seen.last().unwrap(), &(3, b"next".to_vec()));
}
