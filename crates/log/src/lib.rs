//! An append-only segment log in a directory, for tether's durable
//! backlog.
//!
//! - Records are opaque payloads, each framed by its length and a CRC32C
//!   (Castagnoli, from the `crc32c` crate, which uses the CPU's
//!   instruction where there is one) of the length and the payload
//!   ([`encode_record`], [`decode_record`]).
//! - Records go into segment files, rolled at a size
//!   ([`Options::segment_bytes`]); the caller deletes whole segments by its
//!   own retention rules ([`Log::remove_before`]).
//! - Syncing follows a policy ([`Fsync`]): always, at most an interval
//!   after an append, or never. No clock is read here: the caller passes
//!   `now`, and asks [`Log::poll_timeout`] when the next sync is due, as an
//!   event loop drives the sans-IO protocol crates.
//! - Opening recovers ([`Log::open_with`]): every record is read and its
//!   checksum checked; a torn tail is truncated, any other damage
//!   quarantines its segment (renamed `.corrupt`, its good records
//!   kept), and the [`Recovery`] report says what happened. Nothing
//!   panics on any file content, and no record that fails its checksum is
//!   ever handed out.
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
pub use log::{Damage, Fsync, Log, Options, Quarantined, Record, Recovery, Segment};
pub use record::{
    Decoded, Invalid, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, crc32c, decode_record, decode_segment_header,
    encode_record, encode_segment_header,
};
