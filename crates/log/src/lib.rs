//! An append-only segment log in a directory, for tether's durable
//! backlog.
//!
//! - Records are opaque payloads, each framed so that a reader can find
//!   the next record after a damaged one ([`encode_record`],
//!   [`decode_record`]): a two-byte marker (`0xFF 0x01`), a CRC32C
//!   (Castagnoli, from the `crc32c` crate, which uses the CPU's instruction
//!   where there is one) of all that follows, the widths of the next two
//!   fields, the payload's length and the record's index in the log (the
//!   header fields written seven bits to a byte), then the payload with
//!   each `0xFF` written `0xFF 0x00`. The marker therefore appears on disk only where
//!   a record starts, whatever the payloads hold (they are the publishers'
//!   data: an event may hold the bytes of an encoded record), and text
//!   payloads (no `0xFF` in UTF-8) cost nothing more. A length prefix alone
//!   cannot be resynchronised: once a length is damaged, any payload bytes
//!   may pass for the next header. Segments of version 1 (length, CRC,
//!   payload), as earlier releases wrote them, are still read.
//! - Records go into segment files, rolled at a size
//!   ([`Options::segment_bytes`]); the caller deletes whole segments by its
//!   own retention rules ([`Log::remove_before`]).
//! - Syncing follows a policy ([`Fsync`]): always, at most an interval
//!   after an append, or never. No clock is read here: the caller passes
//!   `now`, and asks [`Log::poll_timeout`] when the next sync is due, as an
//!   event loop drives the sans-IO protocol crates.
//! - Opening recovers ([`Log::open_with`]): every record is read and its
//!   checksum checked. A damaged record costs only itself: the scan goes
//!   on at the next marker whose record holds, the damaged bytes are
//!   copied beside the segment (`NNN.log.damaged`, never deleted by
//!   recovery), the segment keeps serving its good records, and the
//!   records lost are counted from the gap in the indices the records
//!   carry ([`Recovery::damaged`], [`Recovery::lost_records`]). A torn
//!   tail is truncated. A version 1 segment with damage is quarantined as
//!   before (renamed `.corrupt`, its good records before the damage
//!   kept). Nothing panics on any file content, no record that fails its
//!   checksum is ever handed out, and memory stays one read chunk or one
//!   record as it lies on disk (at most twice the record limit, escaped).
//!
//! One log has one writer: tether's hub gives each event loop a log of
//! its own.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tether_log::{Fsync, Log, Options};
//!
//! let dir = std::env::temp_dir().join(format!("tether-log-crate-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let options = Options::default().with_fsync(Fsync::Interval(Duration::from_millis(10)));
//! let (mut log, _) = Log::open(&dir, options.clone())?;
//! let start = Instant::now();
//! log.append(b"one", start)?;
//! log.append(b"two", start + Duration::from_millis(4))?;
//! // The first unsynced append sets the deadline.
//! assert_eq!(log.poll_timeout(), Some(start + Duration::from_millis(10)));
//! assert!(!log.sync_due(start + Duration::from_millis(9)));
//! assert!(log.sync_due(start + Duration::from_millis(10)));
//! log.sync()?;
//! assert_eq!(log.poll_timeout(), None);
//! drop(log);
//!
//! let mut payloads = Vec::new();
//! let (_, recovery) = Log::open_with(&dir, options, |record| payloads.push(record.payload.to_vec()))?;
//! assert!(recovery.is_clean());
//! assert_eq!(payloads, [b"one".to_vec(), b"two".to_vec()]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Recovery reads files that may hold anything: nothing may panic on them.
mod error;
mod log;
mod record;
mod scan;

pub use error::Error;
pub use log::{Damage, Damaged, Fsync, Log, Options, Quarantined, Record, Recovery, Segment};
pub use record::{
    Decoded, Invalid, MAX_RECORD_HEADER_LEN, RECORD_HEADER_LEN_V1, RECORD_MARKER, SEGMENT_HEADER_LEN,
    SEGMENT_VERSION, SEGMENT_VERSION_V1, SegmentHeader, crc32c, decode_record, decode_segment_header,
    encode_record, encode_record_v1, encode_segment_header, encode_segment_header_v1,
};
