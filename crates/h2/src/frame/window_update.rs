//! WINDOW_UPDATE (RFC 9113 §6.9).

use super::header::{FrameHeader, FrameKind, MAX_STREAM_ID, write_header};
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// The largest flow-control window and window increment (2^31-1).
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// A WINDOW_UPDATE frame, for one stream or (stream 0) the connection. No
/// flags are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or 0 for the connection's window.
    pub stream_id: u32,
    /// The increment, 1..=2^31-1 (reserved bit cleared).
    pub increment: u32,
}

impl WindowUpdate {
    pub(crate) fn parse(header: &FrameHeader, payload: &[u8]) -> Result<Self, Error> {
        let word: [u8; 4] = payload
            .try_into()
            .map_err(|_| Error::connection(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength))?;
        let increment = u32::from_be_bytes(word) & MAX_WINDOW_SIZE;
        if increment == 0 {
            let (code, violation) = (ErrorCode::PROTOCOL_ERROR, Violation::ZeroWindowIncrement);
            return Err(match header.stream_id {
                0 => Error::connection(code, violation),
                stream => Error::stream(stream, code, violation),
            });
        }
        Ok(Self {
            stream_id: header.stream_id,
            increment,
        })
    }

    /// Appends the frame to `out`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.stream_id > MAX_STREAM_ID {
            return Err(Error::Misuse(Misuse::InvalidStreamId));
        }
        if !(1..=MAX_WINDOW_SIZE).contains(&self.increment) {
            return Err(Error::Misuse(Misuse::InvalidValue));
        }
        write_header(out, FrameKind::WindowUpdate, 0, self.stream_id, 4, u32::MAX)?;
        out.extend_from_slice(&self.increment.to_be_bytes());
        Ok(())
    }
}
