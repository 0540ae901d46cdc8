//! What recovery found and did when a log was opened: the report
//! [`Log::open_with`](crate::log::Log::open_with) returns, and the damage it
//! describes.

use std::path::PathBuf;

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
