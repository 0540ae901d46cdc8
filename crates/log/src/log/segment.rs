//! Segment files and the records read from them: what the log knows of
//! a segment, its file's name, and its creation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::Error;
use crate::record::{SEGMENT_HEADER_LEN, encode_segment_header};

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

/// The file name of the segment based at `base`.
pub(super) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base index a segment file name gives, if it is one.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes the segment file based at `base`, its header written (and
/// synced, with the directory, when `durable`).
pub(super) fn create_segment(dir: &Path, base: u64, durable: bool) -> Result<(File, Segment), Error> {
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
