//! GOAWAY (RFC 9113 §6.8).

use super::header::{FrameHeader, FrameKind, MAX_STREAM_ID, write_header};
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// A GOAWAY frame: the connection is ending. No flags are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAway<'a> {
    /// The last stream the sender may have processed (reserved bit
    /// cleared).
    pub last_stream_id: u32,
    /// Why.
    pub code: ErrorCode,
    /// Opaque diagnostic data, borrowed from the input.
    pub debug_data: &'a [u8],
}

impl<'a> GoAway<'a> {
    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_connection()?;
        let (Some(last), Some(code)) = (payload.get(..4), payload.get(4..8)) else {
            return Err(Error::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                Violation::PayloadTooShort,
            ));
        };
        let word = |b: &[u8]| <[u8; 4]>::try_from(b).map_or(0, u32::from_be_bytes);
        Ok(Self {
            last_stream_id: word(last) & MAX_STREAM_ID,
            code: ErrorCode(word(code)),
            debug_data: payload.get(8..).unwrap_or_default(),
        })
    }

    /// Appends the frame to `out`; the debug data must fit in
    /// `max_frame_size` with the 8 octets before it. Nothing is appended
    /// on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        if self.last_stream_id > MAX_STREAM_ID {
            return Err(Error::Misuse(Misuse::InvalidStreamId));
        }
        let len = self.debug_data.len().saturating_add(8);
        write_header(out, FrameKind::GoAway, 0, 0, len, max_frame_size)?;
        out.extend_from_slice(&self.last_stream_id.to_be_bytes());
        out.extend_from_slice(&self.code.0.to_be_bytes());
        out.extend_from_slice(self.debug_data);
        Ok(())
    }
}
