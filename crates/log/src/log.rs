//! The log: a directory of segment files, one writer.
//!
//! This file holds the log itself (open, append, sync, roll, retention,
//! reads); its options are in `options.rs`, the segment files in
//! `segment.rs`, the recovery of each segment at open in
//! `segment_recovery.rs`, and the report of what recovery did in
//! `recovery.rs`.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::Error;
use crate::record::{
    SEGMENT_HEADER_LEN, SEGMENT_VERSION, SEGMENT_VERSION_V1, SegmentHeader, decode_segment_header,
    encode_record,
};
use crate::scan::{Scanner, Step};

mod options;
mod recovery;
mod segment;
mod segment_recovery;

pub use self::options::{Fsync, Options};
pub use self::recovery::{Damage, Damaged, Quarantined, Recovery};
pub use self::segment::{Record, Segment};
use self::segment::{create_segment, parse_segment_name, segment_name, sync_dir};
use self::segment_recovery::{Scanned, quarantine, scan_segment};

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
/// base index, CRC32C) and then records (see [`encode_record`](crate::record::encode_record)); beside a
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
