//! Arbitrary bytes as the segment files of a log, opened: recovery never
//! panics; every record it hands out passes its checksum, re-encodes to
//! bytes that decode to the same payload, and is one of the records the
//! files held at that index; indices only grow; a second open finds the
//! log clean with the same records; an append after recovery is read back.
//! The record decoder is run over the same bytes directly too.
//!
//! Input layout: byte 0, low two bits: how many segment files (1 to 3);
//! bits 2 to 4: whether each file gets a valid header (bit clear: the
//! bytes alone, a header only by chance). Byte 1: the record limit (times
//! 4, plus 4). Then each file but the last: a length byte and up to that
//! many bytes of records; the last takes the rest. File `i` is named (and
//! headed) with base index `3 * i`, so records may overlap.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tether_log::{Decoded, Fsync, Log, Options, decode_record, encode_record, encode_segment_header};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("tether-fuzz-log-{}", std::process::id()))
    })
}

/// The whole records at the start of `bytes`, as the decoder sees them.
fn records(mut bytes: &[u8], max: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Decoded::Record { payload, used } = decode_record(bytes, max) {
        let mut again = Vec::new();
        encode_record(payload, &mut again).unwrap();
        assert_eq!(again, bytes[..used], "a decoded record re-encodes to its bytes");
        out.push(payload.to_vec());
        bytes = &bytes[used..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [flags, limit, rest @ ..] = data else { return };
    let count = usize::from(flags & 3).clamp(1, 3);
    let max = u32::from(*limit) * 4 + 4;
    let options = Options::default()
        .with_fsync(Fsync::Never)
        .with_max_record_bytes(max);

    let dir = dir();
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    let mut input = rest;
    // What each file could give: (index, payload).
    let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
    for i in 0..count {
        let body = if i + 1 == count {
            std::mem::take(&mut input)
        } else {
            let Some((&len, tail)) = input.split_first() else {
                break;
            };
            let (body, tail) = tail.split_at(usize::from(len).min(tail.len()));
            input = tail;
            body
        };
        let base = 3 * i as u64;
        let mut file = Vec::new();
        if flags & (4 << i) != 0 {
            file.extend_from_slice(&encode_segment_header(base));
            for (k, payload) in records(body, max).into_iter().enumerate() {
                held.push((base + k as u64, payload));
            }
        } else if let Some(records_area) = body.get(tether_log::SEGMENT_HEADER_LEN..) {
            if tether_log::decode_segment_header(body) == Some(base) {
                for (k, payload) in records(records_area, max).into_iter().enumerate() {
                    held.push((base + k as u64, payload));
                }
            }
        }
        file.extend_from_slice(body);
        fs::write(dir.join(format!("{base:020}.log")), &file).unwrap();
    }

    let mut seen: Vec<(u64, Vec<u8>)> = Vec::new();
    let (mut log, recovery) =
        Log::open_with(dir, options.clone(), |r| seen.push((r.index, r.payload.to_vec()))).unwrap();
    assert_eq!(recovery.records, seen.len() as u64);
    for pair in seen.windows(2) {
        assert!(pair[0].0 < pair[1].0, "indices grow");
    }
    for record in &seen {
        assert!(record.1.len() <= max as usize);
        assert!(held.contains(record), "a record the files held at its index");
    }
    let next = log.append(b"z", Instant::now()).unwrap();
    assert!(seen.last().is_none_or(|(last, _)| next > *last));
    drop(log);

    let mut again: Vec<(u64, Vec<u8>)> = Vec::new();
    let (_, second) = Log::open_with(dir, options, |r| again.push((r.index, r.payload.to_vec()))).unwrap();
    assert!(second.is_clean(), "{second:?}");
    seen.push((next, b"z".to_vec()));
    assert_eq!(again, seen);
});
