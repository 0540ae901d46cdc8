//! Segment files built from a script of records and raw bytes, opened:
//! recovery never panics; every record it hands out passes its checksum
//! (it is one that lies whole in the files at that index); indices only
//! grow; every record the script wrote whole into a segment that is read
//! (version 2, its header valid) is handed out, whatever raw bytes (damage)
//! lie around it, unless the raw bytes themselves make a record; records
//! alone, whatever their payloads, make no other record anywhere; a second
//! open finds the same records; an append after recovery is read back.
//!
//! Input layout: byte 0, low two bits: how many segment files (1 to 3);
//! bits 2 to 4: whether each file gets a valid header (bit clear: the
//! bytes alone, a header only by chance); bits 5 to 7: whether it is of
//! version 1 (bit set) or 2. Byte 1: the record limit (times 4, plus 4).
//! Then each file but the last: a length byte and up to that many bytes of
//! script; the last takes the rest. A script is steps of a tag byte, a
//! length byte and that many bytes: an even tag writes them as a record
//! (of the file's version; with bit 1 set, an index is skipped first, as
//! a record lost), an odd tag writes them raw. File `i` is named (and
//! headed) with base index `1000 * i`.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tether_log::{
    Decoded, Fsync, Log, Options, SEGMENT_HEADER_LEN, crc32c, decode_record, decode_segment_header,
    encode_record, encode_record_v1, encode_segment_header, encode_segment_header_v1,
};

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

/// Every record that lies whole anywhere in a version 2 segment's bytes.
fn anywhere_v2(records: &[u8], max: u32) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for at in 0..records.len() {
        let mut rest = records[at..].to_vec();
        if let Decoded::Record { index, payload, .. } = decode_record(&mut rest, max) {
            let mut again = Vec::new();
            encode_record(payload, index, &mut again).unwrap();
            let mut copy = again.clone();
            assert!(
                matches!(decode_record(&mut copy, max), Decoded::Record { index: i, payload: p, used }
                    if i == index && p == payload && used == again.len()),
                "a decoded record re-encodes to one that decodes the same"
            );
            out.push((index, payload.to_vec()));
        }
    }
    out
}

/// The version 1 records at the start of `records`, one after another.
fn sequential_v1(mut records: &[u8], base: u64, max: u32) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((head, rest)) = records.split_first_chunk::<8>() {
        let len = u32::from_le_bytes(head[..4].try_into().unwrap());
        if len > max || rest.len() < len as usize {
            break;
        }
        let payload = &rest[..len as usize];
        let mut checked = head[..4].to_vec();
        checked.extend_from_slice(payload);
        if crc32c(&checked).to_le_bytes() != head[4..] {
            break;
        }
        out.push((base + out.len() as u64, payload.to_vec()));
        records = &rest[len as usize..];
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
    // What the files could give: (index, payload).
    let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
    // What they must give: records written whole in a readable version 2
    // segment, within the limit.
    let mut must: Vec<(u64, Vec<u8>)> = Vec::new();
    // Whether raw bytes hold a record whose checksum holds (a fuzzer can
    // make one): it may take an index ahead of the script's.
    let mut fakes = false;
    for i in 0..count {
        let script = if i + 1 == count {
            std::mem::take(&mut input)
        } else {
            let Some((&len, tail)) = input.split_first() else {
                break;
            };
            let (body, tail) = tail.split_at(usize::from(len).min(tail.len()));
            input = tail;
            body
        };
        let base = 1000 * i as u64;
        let v1 = flags & (32 << i) != 0;
        let headed = flags & (4 << i) != 0;
        let mut file = Vec::new();
        if headed {
            file.extend_from_slice(&if v1 {
                encode_segment_header_v1(base)
            } else {
                encode_segment_header(base)
            });
        }
        let mut index = base;
        let mut written = Vec::new();
        let mut raw = false;
        let mut steps = script;
        while let [tag, len, tail @ ..] = steps {
            let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
            steps = tail;
            if tag & 1 == 1 {
                raw = true;
                file.extend_from_slice(bytes);
            } else if v1 {
                encode_record_v1(bytes, &mut file).unwrap();
            } else {
                index += u64::from(tag >> 1 & 1);
                encode_record(bytes, index, &mut file).unwrap();
                if bytes.len() <= max as usize {
                    written.push((index, bytes.to_vec()));
                }
                index += 1;
            }
        }
        match decode_segment_header(&file) {
            Some(header) if header.base == base && header.version == 2 => {
                let found = anywhere_v2(&file[SEGMENT_HEADER_LEN..], max);
                if !raw {
                    // Records alone: whatever their payloads hold, no
                    // record can be found but those written.
                    assert_eq!(found, written, "only the records written are records");
                }
                fakes |= found.len() != written.len();
                held.extend(found);
                must.extend(written);
            }
            Some(header) if header.base == base => {
                held.extend(sequential_v1(&file[SEGMENT_HEADER_LEN..], base, max));
            }
            _ => {}
        }
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
        assert!(
            held.contains(record),
            "a record the files held at its index: {record:?} not in {held:?}; {recovery:?}"
        );
    }
    // Short of a record made in raw bytes, every record written whole is
    // found, whatever raw bytes (damage) lie around it.
    if !fakes {
        for record in &must {
            assert!(
                seen.contains(record),
                "record {} written whole is found: {recovery:?}",
                record.0
            );
        }
    }
    let next = log.append(b"z", Instant::now()).unwrap();
    assert!(seen.last().is_none_or(|(last, _)| next > *last));
    drop(log);

    let mut again: Vec<(u64, Vec<u8>)> = Vec::new();
    let (_, _) = Log::open_with(dir, options, |r| again.push((r.index, r.payload.to_vec()))).unwrap();
    seen.push((next, b"z".to_vec()));
    assert_eq!(again, seen);
});
