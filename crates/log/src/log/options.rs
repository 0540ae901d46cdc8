//! How a log is laid out and synced: its options and fsync policy.

use std::time::Duration;

/// When appended records are forced to stable storage (`fsync`).
///
/// Every append is written to the file at once (one `write`), so a
/// process that is killed loses nothing the log returned from
/// [`Log::append`](crate::log::Log::append); the policy says what a power loss or a kernel crash
/// may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Each append is synced before [`Log::append`](crate::log::Log::append) returns: a power loss
    /// loses nothing that was acknowledged after it.
    Always,
    /// The log is synced at most this long after the first append not yet
    /// synced (the caller asks [`Log::sync_due`](crate::log::Log::sync_due) or [`Log::poll_timeout`](crate::log::Log::poll_timeout)
    /// and calls [`Log::sync`](crate::log::Log::sync)): a power loss loses at most the appends of
    /// that window (plus the time the sync itself takes).
    Interval(Duration),
    /// Never synced by the log (only by [`Log::sync`](crate::log::Log::sync) when the caller asks,
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
