//! RST_STREAM (RFC 9113 §6.4).

use super::header::{FrameHeader, FrameKind, check_stream_id, write_header};
use crate::error::{Error, ErrorCode, Violation};

/// A RST_STREAM frame: the stream ends at once. No flags are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStream {
    /// The stream (never 0).
    pub stream_id: u32,
    /// Why.
    pub code: ErrorCode,
}

impl RstStream {
    pub(crate) fn parse(header: &FrameHeader, payload: &[u8]) -> Result<Self, Error> {
        header.require_stream()?;
        let code: [u8; 4] = payload
            .try_into()
            .map_err(|_| Error::connection(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength))?;
        Ok(Self {
            stream_id: header.stream_id,
            code: ErrorCode(u32::from_be_bytes(code)),
        })
    }

    /// Appends the frame to `out`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        write_header(out, FrameKind::RstStream, 0, self.stream_id, 4, u32::MAX)?;
        out.extend_from_slice(&self.code.0.to_be_bytes());
        Ok(())
    }
}
