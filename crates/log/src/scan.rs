//! Reading a segment file's records in order, through one bounded buffer.

use std::fs::File;
use std::io::{self, Read};

use crate::record::{Decoded, Invalid, decode_record};

/// How much is read at once.
const CHUNK: usize = 256 * 1024;

/// One step of a scan.
pub(crate) enum Step<'a> {
    /// A whole record; `offset` is where it starts in the file.
    Record { offset: u64, payload: &'a [u8] },
    /// The file ends exactly after the last record.
    End { offset: u64 },
    /// The file ends inside a record that starts at `offset`.
    Incomplete { offset: u64 },
    /// The bytes at `offset` are not a record.
    Invalid { offset: u64, why: Invalid },
}

/// Reads the records of a file from the current position (just past the
/// segment header, `offset`). Memory: one chunk, or one record of at
/// most `max_payload` bytes when a record is larger; a length is checked
/// against `max_payload` before the buffer grows for it.
pub(crate) struct Scanner {
    file: File,
    max_payload: u32,
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    eof: bool,
}

impl Scanner {
    pub(crate) fn new(file: File, offset: u64, max_payload: u32) -> Scanner {
        Scanner {
            file,
            max_payload,
            buf: Vec::new(),
            start: 0,
            offset,
            eof: false,
        }
    }

    pub(crate) fn next_step(&mut self) -> io::Result<Step<'_>> {
        loop {
            let window = self.buf.get(self.start..).unwrap_or_default();
            match decode_record(window, self.max_payload) {
                Decoded::Record { used, .. } => {
                    let offset = self.offset;
                    let begin = self.start;
                    let end = begin.saturating_add(used);
                    self.start = end;
                    self.offset = self
                        .offset
                        .saturating_add(u64::try_from(used).unwrap_or(u64::MAX));
                    let payload = self
                        .buf
                        .get(begin.saturating_add(crate::RECORD_HEADER_LEN)..end)
                        .unwrap_or_default();
                    return Ok(Step::Record { offset, payload });
                }
                Decoded::Invalid(why) => {
                    return Ok(Step::Invalid {
                        offset: self.offset,
                        why,
                    });
                }
                Decoded::Incomplete { needed } => {
                    if self.eof {
                        return Ok(if window.is_empty() {
                            Step::End { offset: self.offset }
                        } else {
                            Step::Incomplete { offset: self.offset }
                        });
                    }
                    self.fill(needed)?;
                }
            }
        }
    }

    /// Reads until the unread part holds `needed` bytes or the file ends.
    fn fill(&mut self, needed: usize) -> io::Result<()> {
        self.buf.drain(..self.start.min(self.buf.len()));
        self.start = 0;
        let have = self.buf.len();
        let target = needed.max(CHUNK);
        self.buf.resize(target, 0);
        let mut filled = have;
        while filled < target {
            let Some(space) = self.buf.get_mut(filled..) else {
                break;
            };
            match self.file.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled = filled.saturating_add(n),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.buf.truncate(have);
                    return Err(error);
                }
            }
            if filled >= needed {
                break;
            }
        }
        self.buf.truncate(filled);
        Ok(())
    }

    /// Whether every byte from the current record to the end of the file
    /// is zero (what a file system may leave past the data it kept).
    pub(crate) fn rest_is_zero(&mut self) -> io::Result<bool> {
        if self
            .buf
            .get(self.start..)
            .unwrap_or_default()
            .iter()
            .any(|&b| b != 0)
        {
            return Ok(false);
        }
        let mut chunk = vec![0; CHUNK];
        loop {
            match self.file.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if chunk.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
                        return Ok(false);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}
