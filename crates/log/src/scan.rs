//! Reading a segment file's records in order, through one bounded buffer.

use std::fs::File;
use std::io::{self, Read};

use crate::record::{
    DecodedV1, Invalid, RECORD_HEADER_LEN_V1, Raw, SEGMENT_VERSION_V1, decode_raw, decode_record_v1,
    find_marker, unescape_record,
};

/// How much is read at once.
const CHUNK: usize = 256 * 1024;

/// One step of a scan.
pub(crate) enum Step<'a> {
    /// A whole record; `offset` is where it starts in the file, `used`
    /// its bytes there; `index` its own index (version 2 records carry
    /// it; version 1 records do not).
    Record {
        offset: u64,
        index: Option<u64>,
        payload: &'a [u8],
        used: u64,
    },
    /// The file ends exactly after the last record.
    End { offset: u64 },
    /// The file ends inside a record that starts at `offset`.
    Incomplete { offset: u64 },
    /// The bytes at `offset` are not a record.
    Invalid { offset: u64, why: Invalid },
}

/// Reads the records of a file from the current position (just past the
/// segment header, `offset`). Memory: one chunk, or one record as it lies
/// on disk when that is larger (at most `max_payload` bytes for version
/// 1, twice that plus its header for version 2, escaped); a length is
/// checked against the limit before the buffer grows for it.
pub(crate) struct Scanner {
    file: File,
    version: u32,
    max_payload: u32,
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    eof: bool,
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Scanner {
    pub(crate) fn new(file: File, offset: u64, max_payload: u32, version: u32) -> Scanner {
        Scanner {
            file,
            version,
            max_payload,
            buf: Vec::new(),
            start: 0,
            offset,
            eof: false,
        }
    }

    /// Where the next step starts in the file.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn next_step(&mut self) -> io::Result<Step<'_>> {
        loop {
            let window = self.buf.get(self.start..).unwrap_or_default();
            let found = if self.version == SEGMENT_VERSION_V1 {
                match decode_record_v1(window, self.max_payload) {
                    DecodedV1::Record { used } => Raw::Record {
                        index: u64::MAX,
                        body: RECORD_HEADER_LEN_V1..used,
                        used,
                    },
                    DecodedV1::Incomplete { needed } => Raw::Incomplete { needed },
                    DecodedV1::Invalid(why) => Raw::Invalid(why),
                }
            } else {
                decode_raw(window, self.max_payload)
            };
            match found {
                Raw::Record { index, body, used } => {
                    let offset = self.offset;
                    let begin = self.start;
                    let body = begin.saturating_add(body.start)..begin.saturating_add(body.end);
                    let payload = if self.version == SEGMENT_VERSION_V1 {
                        body
                    } else {
                        match unescape_record(&mut self.buf, body, used, self.max_payload) {
                            Ok(payload) => payload,
                            Err(why) => return Ok(Step::Invalid { offset, why }),
                        }
                    };
                    self.start = begin.saturating_add(used);
                    self.offset = self.offset.saturating_add(to_u64(used));
                    let index = (self.version != SEGMENT_VERSION_V1).then_some(index);
                    return Ok(Step::Record {
                        offset,
                        index,
                        payload: self.buf.get(payload).unwrap_or_default(),
                        used: to_u64(used),
                    });
                }
                Raw::Invalid(why) => {
                    return Ok(Step::Invalid {
                        offset: self.offset,
                        why,
                    });
                }
                Raw::Incomplete { needed } => {
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

    /// Moves past the record at the current position (damaged or cut
    /// short) to the next record marker after its first byte, and returns
    /// its offset, or `None` (everything to the end consumed) if no marker
    /// follows. Version 2 only: in version 1 nothing marks a record start.
    /// Memory stays one chunk: bytes searched are dropped, but for a last
    /// `0xFF` that may be half of a marker split between two reads.
    pub(crate) fn resync(&mut self) -> io::Result<Option<u64>> {
        let mut skip = 1usize;
        loop {
            let window = self.buf.get(self.start..).unwrap_or_default();
            let searched = window.get(skip..).unwrap_or_default();
            if let Some(at) = find_marker(searched) {
                let moved = skip.saturating_add(at);
                self.start = self.start.saturating_add(moved);
                self.offset = self.offset.saturating_add(to_u64(moved));
                return Ok(Some(self.offset));
            }
            let len = window.len();
            if self.eof {
                self.start = self.buf.len();
                self.offset = self.offset.saturating_add(to_u64(len));
                return Ok(None);
            }
            // Keep the last byte: it may be the first half of a marker.
            let keep_from = len.saturating_sub(1).max(skip.min(len));
            self.start = self.start.saturating_add(keep_from);
            self.offset = self.offset.saturating_add(to_u64(keep_from));
            skip = 0;
            let have = self.buf.len().saturating_sub(self.start);
            self.fill(have.saturating_add(CHUNK))?;
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
