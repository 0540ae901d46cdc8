//! DATA (RFC 9113 §6.1).

use super::header::{FrameHeader, FrameKind, check_stream_id, flags, write_header};
use super::padding;
use crate::error::Error;

/// A DATA frame: a piece of a stream's content.
///
/// Flags read: END_STREAM, PADDED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// The stream (never 0).
    pub stream_id: u32,
    /// The content, borrowed from the input, padding excluded.
    pub data: &'a [u8],
    /// END_STREAM.
    pub end_stream: bool,
    /// The Pad Length when PADDED is set. Padding octets are zero when
    /// encoded and not checked when decoded.
    pub padding: Option<u8>,
}

impl<'a> Data<'a> {
    /// An unpadded DATA frame without END_STREAM.
    pub const fn new(stream_id: u32, data: &'a [u8]) -> Self {
        Self {
            stream_id,
            data,
            end_stream: false,
            padding: None,
        }
    }

    /// The frame's whole payload length, padding included: what it counts
    /// against the flow-control windows (§6.9.1).
    pub fn flow_controlled_len(&self) -> usize {
        padding::payload_len(self.padding, 0, self.data.len())
    }

    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_stream()?;
        let split = padding::split(header.has(flags::PADDED), payload, 0)?;
        Ok(Self {
            stream_id: header.stream_id,
            data: split.body,
            end_stream: header.has(flags::END_STREAM),
            padding: split.padding,
        })
    }

    /// Appends the frame to `out`. The payload must fit in
    /// `max_frame_size` (the peer's SETTINGS_MAX_FRAME_SIZE): splitting is
    /// the caller's job. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        let mut f = padding::flag(self.padding);
        if self.end_stream {
            f |= flags::END_STREAM;
        }
        let len = self.flow_controlled_len();
        write_header(out, FrameKind::Data, f, self.stream_id, len, max_frame_size)?;
        padding::write(out, self.padding, &[], self.data);
        Ok(())
    }
}
