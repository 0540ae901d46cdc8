#![doc = include_str!("../README.md")]
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
