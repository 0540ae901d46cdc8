//! The crate's error.

use std::fmt;
use std::io;

/// What went wrong with a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file system refused: the directory cannot be read or created,
    /// a write or an fsync failed.
    Io(io::Error),
    /// The caller's mistake: a payload above the log's
    /// [`Options::max_record_bytes`](crate::log::Options::max_record_bytes) (or above `u32::MAX`).
    RecordTooLarge {
        /// The payload's length.
        len: usize,
        /// The largest allowed.
        max: u32,
    },
    /// An earlier write or fsync failed, and what it left on disk is not
    /// known: the log takes no more appends. Open it again (recovery then
    /// truncates what was half written).
    Failed,
    /// A record read back does not hold (it changed on disk after the
    /// log was opened): `segment` is the base index of its segment,
    /// `offset` its byte offset there.
    Corrupt {
        /// The segment's base index.
        segment: u64,
        /// The byte offset of the record in the segment file.
        offset: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "log i/o: {error}"),
            Error::RecordTooLarge { len, max } => write!(f, "record of {len} bytes, above {max}"),
            Error::Failed => f.write_str("an earlier write failed: the log must be opened again"),
            Error::Corrupt { segment, offset } => {
                write!(f, "record at offset {offset} of segment {segment} is damaged")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::Io(error)
    }
}
