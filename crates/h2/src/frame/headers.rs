//! HEADERS (RFC 9113 §6.2).

use super::header::{FrameHeader, FrameKind, check_stream_id, flags, write_header};
use super::padding;
use super::priority::StreamDependency;
use crate::error::Error;

/// A HEADERS frame: the first piece of a field block.
///
/// Flags read: END_STREAM, END_HEADERS, PADDED, PRIORITY.
///
/// A stream that depends on itself in `priority` is a stream error (RFC
/// 7540 §5.3.1); it is not refused here, because the field block must go
/// through the HPACK decoder anyway to keep its state in step: the
/// connection checks it once the block is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The stream (never 0).
    pub stream_id: u32,
    /// The field block fragment, borrowed from the input.
    pub fragment: &'a [u8],
    /// END_STREAM.
    pub end_stream: bool,
    /// END_HEADERS: no CONTINUATION follows.
    pub end_headers: bool,
    /// The priority fields when PRIORITY is set (deprecated, ignored).
    pub priority: Option<StreamDependency>,
    /// The Pad Length when PADDED is set.
    pub padding: Option<u8>,
}

impl<'a> Headers<'a> {
    /// A HEADERS frame with END_HEADERS, without END_STREAM, priority or
    /// padding.
    pub const fn new(stream_id: u32, fragment: &'a [u8]) -> Self {
        Self {
            stream_id,
            fragment,
            end_stream: false,
            end_headers: true,
            priority: None,
            padding: None,
        }
    }

    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_stream()?;
        let fixed = if header.has(flags::PRIORITY) {
            StreamDependency::LEN
        } else {
            0
        };
        let split = padding::split(header.has(flags::PADDED), payload, fixed)?;
        Ok(Self {
            stream_id: header.stream_id,
            fragment: split.body,
            end_stream: header.has(flags::END_STREAM),
            end_headers: header.has(flags::END_HEADERS),
            priority: StreamDependency::parse(split.fields),
            padding: split.padding,
        })
    }

    /// Appends the frame to `out`. The payload must fit in
    /// `max_frame_size`; the connection splits a larger field block into
    /// HEADERS and CONTINUATION frames. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        let fields = self.priority.map(StreamDependency::to_bytes).transpose()?;
        let fields: &[u8] = fields.as_ref().map_or(&[], |f| f);
        let mut f = padding::flag(self.padding);
        if self.end_stream {
            f |= flags::END_STREAM;
        }
        if self.end_headers {
            f |= flags::END_HEADERS;
        }
        if self.priority.is_some() {
            f |= flags::PRIORITY;
        }
        let len = padding::payload_len(self.padding, fields.len(), self.fragment.len());
        write_header(out, FrameKind::Headers, f, self.stream_id, len, max_frame_size)?;
        padding::write(out, self.padding, fields, self.fragment);
        Ok(())
    }
}
