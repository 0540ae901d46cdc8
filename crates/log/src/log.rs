//! The log: a directory of segment files, one writer.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::record::{
    Invalid, SEGMENT_HEADER_LEN, SEGMENT_VERSION, SEGMENT_VERSION_V1, SegmentHeader, decode_segment_header,
    encode_record, encode_segment_header, encode_segment_header_v1,
};
use crate::scan::{Scanner, Step};

/// When appended records are forced to stable storage (`fsync`).
///
/// Every append is written to the file at once (one `write`), so a
/// process that is killed loses nothing the log returned from
/// [`Log::append`]; the policy says what a power loss or a kernel crash
/// may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Each append is synced before [`Log::append`] returns: a power loss
    /// loses nothing that was acknowledged after it.
    Always,
    /// The log is synced at most this long after the first append not yet
    /// synced (the caller asks [`Log::sync_due`] or [`Log::poll_timeout`]
    /// and calls [`Log::sync`]): a power loss loses at most the appends of
    /// that window (plus the time the sync itself takes).
    Interval(Duration),
    /// Never synced by the log (only by [`Log::sync`] when the caller asks,
    /// and when the kernel writes back on its own, on Linux within about
    /// 30 s): a power loss may lose whatever the kernel had not yet
    /// written.
    Never,
}

/// How a log is laid out and synced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// A segment takes records until the next one would take it past this
    /// size (64 MiB); a record larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// The largest payload an append takes and recovery accepts (16 MiB):
    /// a length field above it is damage, never an allocation.
    pub max_record_bytes: u32,
    /// When appends are synced (every 10 ms).
    pub fsync: Fsync,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_bytes: 64 << 20,
            max_record_bytes: 16 << 20,
            fsync: Fsync::Interval(Duration::from_millis(10)),
        }
    }
}

impl Options {
    /// The default options with this fsync policy.
    pub fn with_fsync(mut self, fsync: Fsync) -> Options {
        self.fsync = fsync;
        self
    }

    /// The same options with this segment size.
    pub fn with_segment_bytes(mut self, segment_bytes: u64) -> Options {
        self.segment_bytes = segment_bytes;
        self
    }

    /// The same options with this record limit.
    pub fn with_max_record_bytes(mut self, max_record_bytes: u32) -> Options {
        self.max_record_bytes = max_record_bytes;
        self
    }
}

/// One record as read: its index in the log and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's index: one more than the record before it in the same
    /// segment; indices only grow across segments.
    pub index: u64,
    /// What was appended.
    pub payload: &'a [u8],
}

/// One segment file, as the log knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The index of its first record (also its file's name).
    pub base: u64,
    /// One past the index of its last record (`base` when empty).
    pub end: u64,
    /// Its size in bytes, header included.
    pub bytes: u64,
}

impl Segment {
    /// How many records it holds.
    pub fn records(&self) -> u64 {
        self.end.saturating_sub(self.base)
    }
}

/// What was wrong with a quarantined segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Its header is not a segment header, or names another base.
    BadHeader,
    /// Its records would come before those of the segment ahead of it.
    Overlap,
    /// The bytes at `offset` are not a record (bad checksum or length),
    /// and more follows them.
    BadRecord {
        /// Where the damage starts.
        offset: u64,
    },
    /// It ends inside a record at `offset`, and is not the last segment.
    Truncated {
        /// Where the incomplete record starts.
        offset: u64,
    },
}

/// A segment set aside by recovery: renamed to `path` (its name with
/// `.corrupt`), never read again by the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The file it now has.
    pub path: PathBuf,
    /// The base index of its name.
    pub base: u64,
    /// What was wrong.
    pub damage: Damage,
    /// The records before the damage, each whole and with its checksum
    /// right: they were handed to the visitor and stay in the log, in a
    /// segment of the old name that holds them alone (0 for a bad header
    /// or an overlap).
    pub kept_records: u64,
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Segments kept.
    pub segments: usize,
    /// Records kept, each handed to the visitor once, in order.
    pub records: u64,
    /// Torn tails cut off the last segment (0 or 1): an incomplete record
    /// at the end, or a last record whose checksum fails, or bytes that are
    /// all zero after the last good record; a last segment whose header
    /// was cut short counts too.
    pub torn_tails: u64,
    /// Bytes those cuts removed.
    pub truncated_bytes: u64,
    /// Segments set aside (version 1 segments only: damage in a version 2
    /// segment costs only the damaged bytes, see [`Recovery::damaged`]).
    pub quarantined: Vec<Quarantined>,
    /// Version 2 segments with damaged stretches, skipped: each segment
    /// keeps its place and serves its good records.
    pub damaged: Vec<Damaged>,
}

impl Recovery {
    /// Whether the log was found as it was left by a clean close.
    pub fn is_clean(&self) -> bool {
        self.torn_tails == 0 && self.quarantined.is_empty() && self.damaged.is_empty()
    }

    /// Records lost to damaged stretches, in all segments.
    pub fn lost_records(&self) -> u64 {
        self.damaged
            .iter()
            .fold(0u64, |sum, d| sum.saturating_add(d.lost_records))
    }

    /// Bytes of damaged stretches, in all segments.
    pub fn damaged_bytes(&self) -> u64 {
        self.damaged
            .iter()
            .fold(0u64, |sum, d| sum.saturating_add(d.bytes))
    }
}

/// A version 2 segment in which recovery skipped damaged stretches: bytes
/// that hold no record whose checksum holds, from a record that failed to
/// the next one that holds (or the end of the file).
///
/// The damaged bytes are copied to `kept` (never deleted by recovery:
/// each stretch as its offset in the segment and its length, both `u64`
/// LE, then its bytes). A stretch between good records stays in the
/// segment too, and is found again at the next open; one at the end of
/// the last segment is cut off once copied, so that appends go on after
/// the last good record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damaged {
    /// The segment's base index.
    pub base: u64,
    /// Where its damaged bytes were copied.
    pub kept: PathBuf,
    /// Damaged stretches.
    pub stretches: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Records lost: the gap in indices across each stretch that a good
    /// record follows, and for a stretch that reaches the end of the
    /// segment the record starts it holds (a lower bound, as a record
    /// whose marker the damage hit is not counted).
    pub lost_records: u64,
    /// The first index lost, if the stretches lost any.
    pub first_lost: Option<u64>,
}

/// An append-only log of records in a directory, split in segment files.
///
/// One writer owns it ([`Log::append`] takes `&mut self`). The files are
/// its I/O; otherwise it follows the contract of the sans-IO crates, in
/// the words every tether crate uses: bytes in ([`Log::append`]), events
/// out (the records, to [`Log::open_with`]'s callback on recovery), time
/// passed in (`now` to [`Log::append`] and [`Log::sync_due`]), the next
/// deadline out ([`Log::poll_timeout`], with [`Fsync::Interval`]; call
/// [`Log::sync`] when [`Log::sync_due`] says so). It reads no clock and
/// starts no thread.
///
/// Files: `DIR/NNNNNNNNNNNNNNNNNNNN.log`, named by the zero-padded index of
/// their first record, each a 24-byte header (magic `tetherlg`, version,
/// base index, CRC32C) and then records (see [`crate::encode_record`]); beside a
/// damaged one, `.log.damaged` holds what recovery skipped.
/// Other files in the directory are left alone.
///
/// Retention is the caller's: [`Log::remove_before`] deletes the oldest
/// segments whose records all come before an index.
///
/// ```
/// use std::time::Instant;
/// use tether_log::{Fsync, Log, Options};
///
/// let dir = std::env::temp_dir().join(format!("tether-log-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let options = Options::default().with_fsync(Fsync::Never);
/// let (mut log, recovery) = Log::open(&dir, options.clone())?;
/// assert!(recovery.is_clean());
/// assert_eq!(log.append(b"first", Instant::now())?, 0);
/// assert_eq!(log.append(b"second", Instant::now())?, 1);
/// drop(log);
///
/// let mut seen = Vec::new();
/// let (mut log, recovery) = Log::open_with(&dir, options, |record| seen.push(record.payload.to_vec()))?;
/// assert_eq!((recovery.records, seen.len()), (2, 2));
/// assert_eq!(log.append(b"third", Instant::now())?, 2);
/// # drop(log);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    options: Options,
    /// Oldest first; the last is the one appended to. Never empty.
    segments: VecDeque<Segment>,
    file: File,
    /// When the first append not yet synced was made.
    dirty_since: Option<Instant>,
    /// A write or sync failed and left the file in a state not known.
    failed: bool,
    scratch: Vec<u8>,
    syncs: u64,
}

/// The file name of the segment based at `base`.
fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base index a segment file name gives, if it is one.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// How one segment file turned out.
enum Scanned {
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

impl Log {
    /// Opens (creating it if need be) the log in `dir`, recovering it; see
    /// [`Log::open_with`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory or a file cannot be read, written,
    /// renamed or created.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Log, Recovery), Error> {
        Log::open_with(dir, options, |_| {})
    }

    /// Opens (creating it if need be) the log in `dir`, and hands every
    /// record it keeps to `visit`, oldest first, as recovery reads it:
    ///
    /// - Every segment is read whole and every record's checksum checked.
    /// - A torn tail of the last segment (see [`Recovery::torn_tails`]) is
    ///   truncated, so that appends continue right after the last good
    ///   record.
    /// - A damaged record (its checksum, length or marker wrong) costs only
    ///   its own bytes: the scan goes on at the next record marker whose
    ///   record holds, every good record after it is visited, the damaged
    ///   bytes are copied beside the segment and the records lost counted
    ///   ([`Damaged`]). A damaged stretch at the end of the last segment
    ///   that holds more than one record start is copied aside too, then
    ///   cut off.
    /// - A bad segment header, or a segment overlapping the one before,
    ///   quarantines the segment (renamed with `.corrupt` appended), as
    ///   does any damage in a segment of version 1: there the records
    ///   before the damage (each whole, its checksum right, already
    ///   visited) are written to a new file of the old name, so the next
    ///   open finds the same records.
    /// - A version 1 segment left last is closed: appends go to a new
    ///   segment of version 2.
    /// - No record is visited that does not pass its checksum, and none
    ///   twice; nothing here panics on any content of the directory.
    /// - What recovery changes is synced (files and directory) unless the
    ///   policy is [`Fsync::Never`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory or a file cannot be read, written,
    /// renamed or created.
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: Options,
        mut visit: impl FnMut(Record<'_>),
    ) -> Result<(Log, Recovery), Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(base) = parse_segment_name(name) {
                bases.push(base);
            } else if name.ends_with(".log.tmp") || name.ends_with(".log.damaged.tmp") {
                // Left by a quarantine that did not finish (its segment is
                // still under its `.corrupt` name), or by a copy of damaged
                // bytes that did not (they are still in their segment).
                fs::remove_file(entry.path())?;
            }
        }
        bases.sort_unstable();

        let mut recovery = Recovery::default();
        let mut segments: VecDeque<Segment> = VecDeque::new();
        let count = bases.len();
        let mut next_base = 0u64;
        let durable = options.fsync != Fsync::Never;
        let mut last_version = SEGMENT_VERSION;
        for (i, &base) in bases.iter().enumerate() {
            let last = i.saturating_add(1) == count;
            next_base = next_base.max(base);
            let path = dir.join(segment_name(base));
            let prev_end = segments.back().map(|s| s.end);
            let scanned = scan_segment(
                &path,
                base,
                last,
                prev_end,
                options.max_record_bytes,
                durable,
                &mut visit,
            )?;
            match scanned {
                Scanned::Kept {
                    segment,
                    records,
                    cut,
                    damaged,
                    version,
                } => {
                    if let Some((cut, torn)) = cut {
                        let file = OpenOptions::new().write(true).open(&path)?;
                        let len = file.metadata()?.len();
                        file.set_len(cut)?;
                        if durable {
                            file.sync_all()?;
                        }
                        if torn {
                            recovery.torn_tails = recovery.torn_tails.saturating_add(1);
                            recovery.truncated_bytes =
                                recovery.truncated_bytes.saturating_add(len.saturating_sub(cut));
                        }
                    }
                    recovery.records = recovery.records.saturating_add(records);
                    recovery.damaged.extend(damaged);
                    last_version = version;
                    segments.push_back(segment);
                }
                Scanned::TornHeader => {
                    let len = fs::metadata(&path)?.len();
                    fs::remove_file(&path)?;
                    if durable {
                        sync_dir(&dir)?;
                    }
                    recovery.torn_tails = recovery.torn_tails.saturating_add(1);
                    recovery.truncated_bytes = recovery.truncated_bytes.saturating_add(len);
                }
                Scanned::Damaged { damage, segment } => {
                    let kept = segment.filter(|s| s.records() > 0);
                    let corrupt = quarantine(&dir, &path, kept.map_or(0, |s| s.bytes), durable)?;
                    recovery.quarantined.push(Quarantined {
                        path: corrupt,
                        base,
                        damage,
                        kept_records: kept.map_or(0, |s| s.records()),
                    });
                    if let Some(segment) = kept {
                        recovery.records = recovery.records.saturating_add(segment.records());
                        // Only version 1 segments are set aside with records.
                        last_version = SEGMENT_VERSION_V1;
                        segments.push_back(segment);
                    }
                }
            }
        }

        // Appends go to a segment of the format written: a version 1 one
        // left last is closed (or, empty, replaced).
        if last_version == SEGMENT_VERSION_V1
            && let Some(old) = segments.back().copied()
        {
            if old.records() == 0 {
                fs::remove_file(dir.join(segment_name(old.base)))?;
                segments.pop_back();
            } else {
                next_base = next_base.max(old.end);
            }
            let (_, segment) = create_segment(&dir, old.end, durable)?;
            segments.push_back(segment);
        }
        let file = match segments.back() {
            Some(active) => OpenOptions::new()
                .append(true)
                .open(dir.join(segment_name(active.base)))?,
            None => {
                let (file, segment) = create_segment(&dir, next_base, durable)?;
                segments.push_back(segment);
                file
            }
        };
        recovery.segments = segments.len();
        let log = Log {
            dir,
            options,
            segments,
            file,
            dirty_since: None,
            failed: false,
            scratch: Vec::new(),
            syncs: 0,
        };
        Ok((log, recovery))
    }

    /// Appends a record and returns its index. The bytes are written to
    /// the file before this returns; with [`Fsync::Always`] they are synced
    /// too. A segment that the record would take past
    /// [`Options::segment_bytes`] is closed (synced, unless
    /// [`Fsync::Never`]) and a new one begun.
    ///
    /// # Errors
    ///
    /// [`Error::RecordTooLarge`] (nothing written); [`Error::Io`] if the
    /// write or sync failed (a write is undone if it can be; otherwise,
    /// and after any failed sync, the log takes no more appends);
    /// [`Error::Failed`] after that.
    pub fn append(&mut self, payload: &[u8], now: Instant) -> Result<u64, Error> {
        if self.failed {
            return Err(Error::Failed);
        }
        let max = self.options.max_record_bytes;
        if u32::try_from(payload.len()).map_or(true, |len| len > max) {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max,
            });
        }
        // A roll keeps the index: the new segment begins where this one ends.
        let index = self.active().end;
        self.scratch.clear();
        encode_record(payload, index, &mut self.scratch)?;
        let size = u64::try_from(self.scratch.len()).unwrap_or(u64::MAX);
        let active = self.active();
        if active.records() > 0 && active.bytes.saturating_add(size) > self.options.segment_bytes {
            self.roll()?;
        }
        let before = self.active().bytes;
        if let Err(error) = self.file.write_all(&self.scratch) {
            // A short write leaves part of a record: cut it off, or stop.
            if self.file.set_len(before).is_err() {
                self.failed = true;
            }
            return Err(error.into());
        }
        if let Some(active) = self.segments.back_mut() {
            active.end = active.end.saturating_add(1);
            active.bytes = active.bytes.saturating_add(size);
        }
        match self.options.fsync {
            Fsync::Always => self.sync_file()?,
            Fsync::Interval(_) | Fsync::Never => {
                self.dirty_since.get_or_insert(now);
            }
        }
        Ok(index)
    }

    /// Whether a sync is due at `now` ([`Fsync::Interval`] only: appends
    /// wait unsynced, and the first of them has waited the interval).
    pub fn sync_due(&self, now: Instant) -> bool {
        self.poll_timeout().is_some_and(|deadline| now >= deadline)
    }

    /// When the next sync is due, if one will be ([`Fsync::Interval`] with
    /// appends not yet synced).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.options.fsync {
            Fsync::Interval(interval) => self
                .dirty_since
                .map(|since| since.checked_add(interval).unwrap_or(since)),
            Fsync::Always | Fsync::Never => None,
        }
    }

    /// Syncs what was appended and not yet synced (whatever the policy:
    /// with [`Fsync::Never`], this is the only sync).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the sync failed: the log takes no more appends
    /// (what reached the disk is not known); [`Error::Failed`] after that.
    pub fn sync(&mut self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Failed);
        }
        if self.dirty_since.is_some() {
            self.sync_file()?;
        }
        Ok(())
    }

    fn sync_file(&mut self) -> Result<(), Error> {
        if let Err(error) = self.file.sync_data() {
            self.failed = true;
            return Err(error.into());
        }
        self.dirty_since = None;
        self.syncs = self.syncs.saturating_add(1);
        Ok(())
    }

    /// Whether appends wait unsynced.
    pub fn is_dirty(&self) -> bool {
        self.dirty_since.is_some()
    }

    /// How many syncs of appended records the log made (for metrics).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Closes the segment being appended to and begins a new one, unless
    /// it is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the sync or the new file failed.
    pub fn roll(&mut self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Failed);
        }
        let active = self.active();
        if active.records() == 0 {
            return Ok(());
        }
        let durable = self.options.fsync != Fsync::Never;
        if durable {
            self.sync_file()?;
        }
        let (file, segment) = create_segment(&self.dir, active.end, durable)?;
        self.file = file;
        self.segments.push_back(segment);
        Ok(())
    }

    /// Deletes the oldest segments whose records all have indices below
    /// `first_needed`, never the one being appended to; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a file could not be removed (those before it were).
    pub fn remove_before(&mut self, first_needed: u64) -> Result<usize, Error> {
        let mut removed = 0usize;
        while self.segments.len() > 1 {
            let Some(oldest) = self.segments.front().copied() else {
                break;
            };
            if oldest.end > first_needed {
                break;
            }
            fs::remove_file(self.dir.join(segment_name(oldest.base)))?;
            self.segments.pop_front();
            removed = removed.saturating_add(1);
        }
        if removed > 0 && self.options.fsync != Fsync::Never {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The segments, oldest first; the last is the one appended to.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment> + '_ {
        self.segments.iter().copied()
    }

    /// Another handle on the file being appended to, so that another
    /// thread can sync it (`sync_data` on it syncs the same file); after
    /// [`Log::roll`] (which syncs the segment it closes unless the policy
    /// is [`Fsync::Never`]) appends go to a new file: see
    /// [`Log::active_base`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the descriptor cannot be duplicated.
    pub fn try_clone_active(&self) -> Result<File, Error> {
        Ok(self.file.try_clone()?)
    }

    /// The base index of the segment being appended to.
    pub fn active_base(&self) -> u64 {
        self.active().base
    }

    /// The index the next append gets.
    pub fn next_index(&self) -> u64 {
        self.active().end
    }

    /// The bytes of all segments.
    pub fn bytes(&self) -> u64 {
        self.segments
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.bytes))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Reads every record with an index of at least `from` back from the
    /// files, oldest first, checking each one's checksum.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if a record no longer holds (the files changed
    /// under the log), [`Error::Io`] if one cannot be read.
    pub fn read_from(&self, from: u64, mut visit: impl FnMut(Record<'_>)) -> Result<(), Error> {
        for segment in &self.segments {
            if segment.end <= from {
                continue;
            }
            let mut file = File::open(self.dir.join(segment_name(segment.base)))?;
            let mut header = [0; SEGMENT_HEADER_LEN];
            file.read_exact(&mut header)?;
            let corrupt = |offset| Error::Corrupt {
                segment: segment.base,
                offset,
            };
            let Some(SegmentHeader { version, .. }) =
                decode_segment_header(&header).filter(|h| h.base == segment.base)
            else {
                return Err(corrupt(0));
            };
            let mut scanner = Scanner::new(
                file,
                SEGMENT_HEADER_LEN as u64,
                self.options.max_record_bytes,
                version,
            );
            let mut index = segment.base;
            while index < segment.end {
                match scanner.next_step()? {
                    Step::Record {
                        offset,
                        index: own,
                        payload,
                        ..
                    } => {
                        // Version 1 records are counted; version 2 ones
                        // carry their index, past any stretch skipped.
                        let at = own.unwrap_or(index);
                        if at < index {
                            return Err(corrupt(offset));
                        }
                        if at >= from {
                            visit(Record { index: at, payload });
                        }
                        index = at.saturating_add(1);
                    }
                    Step::Invalid { offset, .. } | Step::Incomplete { offset }
                        if version != SEGMENT_VERSION_V1 =>
                    {
                        // A damaged stretch recovery found and left in
                        // place: a good record follows it, or the segment
                        // changed under the log.
                        if scanner.resync()?.is_none() {
                            return Err(corrupt(offset));
                        }
                    }
                    Step::End { offset } | Step::Incomplete { offset } | Step::Invalid { offset, .. } => {
                        return Err(corrupt(offset));
                    }
                }
            }
        }
        Ok(())
    }

    fn active(&self) -> Segment {
        // Never empty: open makes a segment when it keeps none.
        self.segments.back().copied().unwrap_or(Segment {
            base: 0,
            end: 0,
            bytes: 0,
        })
    }
}

/// Makes the segment file based at `base`, its header written (and
/// synced, with the directory, when `durable`).
fn create_segment(dir: &Path, base: u64, durable: bool) -> Result<(File, Segment), Error> {
    let path = dir.join(segment_name(base));
    let mut file = OpenOptions::new().append(true).create_new(true).open(&path)?;
    file.write_all(&encode_segment_header(base))?;
    if durable {
        file.sync_data()?;
        sync_dir(dir)?;
    }
    let segment = Segment {
        base,
        end: base,
        bytes: SEGMENT_HEADER_LEN as u64,
    };
    Ok((file, segment))
}

/// Reads one segment file, visiting its good records.
fn scan_segment(
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
fn quarantine(dir: &Path, path: &Path, keep: u64, durable: bool) -> Result<PathBuf, Error> {
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
