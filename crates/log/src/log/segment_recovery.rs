//! Recovery of one segment file at open: its header checked, its good
//! records visited, a torn tail found, damaged stretches of a version 2
//! segment skipped and copied aside, and a segment that cannot be kept
//! set aside (quarantined) under a `.corrupt` name.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::recovery::{Damage, Damaged};
use super::segment::{Record, Segment, sync_dir};
use crate::error::Error;
use crate::record::{
    Invalid, SEGMENT_HEADER_LEN, SEGMENT_VERSION, SEGMENT_VERSION_V1, decode_segment_header,
    encode_segment_header, encode_segment_header_v1,
};
use crate::scan::{Scanner, Step};

/// How one segment file turned out.
pub(super) enum Scanned {
    /// Whole, or whole up to a tail at `cut` (the last segment only) that
    /// is torn (`true`), or damaged and copied aside; `records` were
    /// visited (fewer than the segment's span if stretches were lost).
    Kept {
        segment: Segment,
        records: u64,
        cut: Option<(u64, bool)>,
        damaged: Option<Damaged>,
        version: u32,
    },
    /// The last segment's header was cut short: it holds nothing.
    TornHeader,
    /// To be set aside; its first `keep` bytes (header and whole records)
    /// hold `segment`'s records, if it has any.
    Damaged {
        damage: Damage,
        segment: Option<Segment>,
    },
}

/// Reads one segment file, visiting its good records.
pub(super) fn scan_segment(
    path: &Path,
    base: u64,
    last: bool,
    prev_end: Option<u64>,
    max_payload: u32,
    durable: bool,
    visit: &mut impl FnMut(Record<'_>),
) -> Result<Scanned, Error> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut header = [0; SEGMENT_HEADER_LEN];
    let mut got = 0;
    while got < SEGMENT_HEADER_LEN {
        let Some(space) = header.get_mut(got..) else { break };
        match file.read(space) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    let read = header.get(..got).unwrap_or_default();
    let version = match decode_segment_header(read) {
        Some(found) if found.base == base => found.version,
        Some(_) => {
            return Ok(Scanned::Damaged {
                damage: Damage::BadHeader,
                segment: None,
            });
        }
        None => {
            let torn = last
                && u64::try_from(got).is_ok_and(|got| got == file_len)
                && [encode_segment_header(base), encode_segment_header_v1(base)]
                    .iter()
                    .any(|expected| expected.get(..got) == Some(read));
            return Ok(if torn {
                Scanned::TornHeader
            } else {
                Scanned::Damaged {
                    damage: Damage::BadHeader,
                    segment: None,
                }
            });
        }
    };
    if prev_end.is_some_and(|end| end > base) {
        return Ok(Scanned::Damaged {
            damage: Damage::Overlap,
            segment: None,
        });
    }
    if version == SEGMENT_VERSION {
        return scan_records(path, file, base, last, max_payload, durable, visit);
    }
    let mut scanner = Scanner::new(file, SEGMENT_HEADER_LEN as u64, max_payload, SEGMENT_VERSION_V1);
    let mut segment = Segment {
        base,
        end: base,
        bytes: SEGMENT_HEADER_LEN as u64,
    };
    loop {
        let step = scanner.next_step()?;
        let damage = match step {
            Step::Record {
                offset,
                payload,
                used,
                ..
            } => {
                let Some(end) = segment.end.checked_add(1) else {
                    // Indices would wrap: take nothing more from this file.
                    break Ok(Scanned::Damaged {
                        damage: Damage::BadRecord { offset },
                        segment: Some(segment),
                    });
                };
                visit(Record {
                    index: segment.end,
                    payload,
                });
                segment.end = end;
                segment.bytes = offset.saturating_add(used);
                continue;
            }
            Step::End { .. } => {
                break Ok(Scanned::Kept {
                    segment,
                    records: segment.records(),
                    cut: None,
                    damaged: None,
                    version,
                });
            }
            Step::Incomplete { offset } => {
                if last {
                    break Ok(Scanned::Kept {
                        segment,
                        records: segment.records(),
                        cut: Some((offset, true)),
                        damaged: None,
                        version,
                    });
                }
                Damage::Truncated { offset }
            }
            Step::Invalid { offset, why } => {
                let ends_the_file = match why {
                    Invalid::Checksum { used } => {
                        u64::try_from(used).is_ok_and(|used| offset.checked_add(used) == Some(file_len))
                    }
                    _ => false,
                };
                if last && (ends_the_file || scanner.rest_is_zero()?) {
                    break Ok(Scanned::Kept {
                        segment,
                        records: segment.records(),
                        cut: Some((offset, true)),
                        damaged: None,
                        version,
                    });
                }
                Damage::BadRecord { offset }
            }
        };
        break Ok(Scanned::Damaged {
            damage,
            segment: Some(segment),
        });
    }
}

/// Reads the records of a version 2 segment, skipping damaged stretches:
/// at a record that does not hold, the scan goes on at the next record
/// marker whose record holds (see the format in `record.rs`), and the
/// bytes between are copied aside. At the end of the last segment, a
/// stretch that holds at most one record start is a torn tail (what an
/// append cut short leaves), cut off as in version 1; a longer one is
/// copied aside, then cut off.
fn scan_records(
    path: &Path,
    file: File,
    base: u64,
    last: bool,
    max_payload: u32,
    durable: bool,
    visit: &mut impl FnMut(Record<'_>),
) -> Result<Scanned, Error> {
    let mut scanner = Scanner::new(file, SEGMENT_HEADER_LEN as u64, max_payload, SEGMENT_VERSION);
    let mut segment = Segment {
        base,
        end: base,
        bytes: SEGMENT_HEADER_LEN as u64,
    };
    let mut records = 0u64;
    let mut aside = Aside::new(path);
    // The open stretch: where it starts, and the record starts in it that
    // failed (each a record lost, as far as can be told).
    let mut stretch: Option<(u64, u64)> = None;
    let mut cut = None;
    loop {
        let at_end = match scanner.next_step()? {
            Step::Record {
                offset,
                index,
                payload,
                used,
            } => {
                let index = index.unwrap_or(segment.end);
                let Some(end) = index.checked_add(1).filter(|_| index >= segment.end) else {
                    // Its checksum holds, but its index goes back (or
                    // would wrap): not a record of this place in the log.
                    let open = stretch.get_or_insert((offset, 0));
                    open.1 = open.1.saturating_add(1);
                    continue;
                };
                if let Some((start, _)) = stretch.take() {
                    aside.keep(
                        start,
                        offset.saturating_sub(start),
                        index.saturating_sub(segment.end),
                        segment.end,
                    )?;
                } else if index > segment.end {
                    // No damaged bytes, yet records missing: count them.
                    aside.lost(index.saturating_sub(segment.end), segment.end);
                }
                visit(Record { index, payload });
                records = records.saturating_add(1);
                segment.end = end;
                segment.bytes = offset.saturating_add(used);
                continue;
            }
            Step::End { offset } => offset,
            Step::Incomplete { offset } | Step::Invalid { offset, .. } => {
                let open = stretch.get_or_insert((offset, 0));
                open.1 = open.1.saturating_add(1);
                match scanner.resync()? {
                    Some(_) => continue,
                    None => scanner.offset(),
                }
            }
        };
        if let Some((start, starts)) = stretch {
            let len = at_end.saturating_sub(start);
            if !(last && starts <= 1) {
                aside.keep(start, len, starts, segment.end)?;
            }
            if last {
                cut = Some((start, starts <= 1));
            }
        }
        break;
    }
    let damaged = aside.finish(base, durable)?;
    Ok(Scanned::Kept {
        segment,
        records,
        cut,
        damaged,
        version: SEGMENT_VERSION,
    })
}

/// The damaged stretches of one segment, copied to a file beside it as
/// they are found.
struct Aside {
    segment: PathBuf,
    tmp: PathBuf,
    /// The segment opened again to copy from, and the copy.
    files: Option<(File, File)>,
    stretches: u64,
    bytes: u64,
    lost: u64,
    first_lost: Option<u64>,
}

impl Aside {
    fn new(segment: &Path) -> Aside {
        Aside {
            segment: segment.to_path_buf(),
            tmp: segment.with_extension("log.damaged.tmp"),
            files: None,
            stretches: 0,
            bytes: 0,
            lost: 0,
            first_lost: None,
        }
    }

    fn lost(&mut self, records: u64, first: u64) {
        self.lost = self.lost.saturating_add(records);
        if records > 0 {
            self.first_lost.get_or_insert(first);
        }
    }

    /// Copies `len` bytes at `offset` of the segment aside; they cost
    /// `records` records, the first of index `first`.
    fn keep(&mut self, offset: u64, len: u64, records: u64, first: u64) -> Result<(), Error> {
        self.lost(records, first);
        self.stretches = self.stretches.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len);
        let (src, dst) = match &mut self.files {
            Some(files) => files,
            None => {
                let src = File::open(&self.segment)?;
                let dst = File::create(&self.tmp)?;
                self.files.insert((src, dst))
            }
        };
        let mut head = [0u8; 16];
        let (at, size) = head.split_at_mut(8);
        at.copy_from_slice(&offset.to_le_bytes());
        size.copy_from_slice(&len.to_le_bytes());
        dst.write_all(&head)?;
        src.seek(SeekFrom::Start(offset))?;
        let copied = io::copy(&mut src.take(len), dst)?;
        if copied != len {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a segment shrank while its damaged bytes were copied",
            )));
        }
        Ok(())
    }

    /// Names the copy (`<segment>.log.damaged`, or `.damaged.N` beside an
    /// older copy that differs; none if an older copy holds the same
    /// bytes) and says what was found.
    fn finish(self, base: u64, durable: bool) -> Result<Option<Damaged>, Error> {
        if self.stretches == 0 && self.lost == 0 {
            return Ok(None);
        }
        let mut kept = self.segment.with_extension("log.damaged");
        if let Some((_, dst)) = self.files {
            if durable {
                dst.sync_all()?;
            }
            drop(dst);
            let mut n = 0u32;
            loop {
                if !kept.exists() {
                    fs::rename(&self.tmp, &kept)?;
                    if durable && let Some(dir) = kept.parent() {
                        sync_dir(dir)?;
                    }
                    break;
                }
                if same_contents(&kept, &self.tmp)? {
                    fs::remove_file(&self.tmp)?;
                    break;
                }
                n = n.saturating_add(1);
                if n > 1000 {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "too many copies of one segment's damaged bytes",
                    )));
                }
                kept = self.segment.with_extension(format!("log.damaged.{n}"));
            }
        }
        Ok(Some(Damaged {
            base,
            kept,
            stretches: self.stretches,
            bytes: self.bytes,
            lost_records: self.lost,
            first_lost: self.first_lost,
        }))
    }
}

/// Whether two files hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(true);
        }
        let (Some(x), Some(y)) = (x.get(..n), y.get_mut(..n)) else {
            return Ok(false);
        };
        b.read_exact(y)?;
        if x != y {
            return Ok(false);
        }
    }
}

/// Renames `path` to a free `.corrupt` name and, if `keep` > 0, writes its
/// first `keep` bytes back under `path` (synced when `durable`).
pub(super) fn quarantine(dir: &Path, path: &Path, keep: u64, durable: bool) -> Result<PathBuf, Error> {
    let mut corrupt = path.with_extension("log.corrupt");
    let mut n = 0u32;
    while corrupt.exists() {
        n = n.saturating_add(1);
        if n > 1000 {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "too many quarantined copies of one segment",
            )));
        }
        corrupt = path.with_extension(format!("log.corrupt.{n}"));
    }
    fs::rename(path, &corrupt)?;
    if keep > 0 {
        let tmp = path.with_extension("log.tmp");
        let mut dst = File::create(&tmp)?;
        let copied = io::copy(&mut File::open(&corrupt)?.take(keep), &mut dst)?;
        if copied != keep {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a quarantined segment shrank while its good records were copied",
            )));
        }
        if durable {
            dst.sync_all()?;
        }
        fs::rename(&tmp, path)?;
    }
    if durable {
        sync_dir(dir)?;
    }
    Ok(corrupt)
}
