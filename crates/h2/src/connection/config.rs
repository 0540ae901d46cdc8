//! What the server announces in its SETTINGS and the limits it keeps.

use crate::error::{Error, Misuse};
use crate::frame::{DEFAULT_MAX_FRAME_SIZE, MAX_STREAM_ID, Setting};

use super::endpoint::Local;
use super::shared::DEFAULT_WINDOW;

/// What the server announces and the limits it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; default 100.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window; at most
    /// 2^31-1; default 65535.
    pub initial_window_size: u32,
    /// The connection's receive window; at least 65535 (raised with a
    /// WINDOW_UPDATE at the start), at most 2^31-1; default 1 MiB.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE, 16384..=16777215; default 16384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, also the largest header block
    /// accepted before it is decoded; at least 1; default 16 KiB.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK decoder's table; default 4096.
    pub header_table_size: u32,
    /// The rapid-reset budget: see the module docs; at least 1; default
    /// 100.
    pub max_resets: u32,
    /// Acknowledgements (SETTINGS, PING) queued in an undrained output
    /// before the connection ends; default 64.
    pub max_queued_acks: u32,
    /// Empty frames (see the module docs) before the connection ends;
    /// default 100.
    pub max_empty_frames: u32,
    /// Parameters in one SETTINGS frame before the connection ends with
    /// ENHANCE_YOUR_CALM (each may cost a walk over the open streams);
    /// default 32, as nghttp2.
    pub max_settings_per_frame: u32,
    /// A stream opened with this identifier or above makes the server send
    /// a graceful GOAWAY; default 2^31-1 - 2048.
    pub goaway_stream_id: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            initial_window_size: DEFAULT_WINDOW,
            connection_window: 1 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 * 1024,
            header_table_size: 4096,
            max_resets: 100,
            max_queued_acks: 64,
            max_empty_frames: 100,
            max_settings_per_frame: 32,
            goaway_stream_id: MAX_STREAM_ID - 2048,
        }
    }
}

impl Config {
    pub(super) fn local(&self) -> Local {
        Local {
            initial_window_size: self.initial_window_size,
            max_frame_size: self.max_frame_size,
            header_table_size: self.header_table_size,
            max_header_list_size: self.max_header_list_size,
        }
    }

    pub(super) fn check(&self) -> Result<(), Error> {
        self.local().check(self.connection_window)?;
        if self.max_resets == 0 {
            return Err(Error::Misuse(Misuse::InvalidValue));
        }
        Ok(())
    }

    pub(super) fn settings(&self) -> [Setting; 7] {
        [
            Setting::MaxConcurrentStreams(self.max_concurrent_streams),
            Setting::InitialWindowSize(self.initial_window_size),
            Setting::MaxFrameSize(self.max_frame_size),
            Setting::MaxHeaderListSize(self.max_header_list_size),
            Setting::HeaderTableSize(self.header_table_size),
            Setting::EnablePush(false),
            Setting::EnableConnectProtocol(true),
        ]
    }
}
