//! PRIORITY (RFC 9113 §6.3) and the priority fields of HEADERS.

use super::header::{FrameHeader, FrameKind, MAX_STREAM_ID, check_stream_id, write_header};
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// The deprecated priority fields (RFC 9113 §5.3.2, RFC 7540 §5.3): parsed
/// so that a frame carrying them is understood, and otherwise ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDependency {
    /// The E flag.
    pub exclusive: bool,
    /// The stream depended on (31 bits).
    pub stream_id: u32,
    /// The weight as sent: the weight less one.
    pub weight: u8,
}

impl StreamDependency {
    /// Length of the fields on the wire.
    pub const LEN: usize = 5;

    pub(crate) fn parse(fields: &[u8]) -> Option<Self> {
        let f: &[u8; Self::LEN] = fields.try_into().ok()?;
        let word = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
        Some(Self {
            exclusive: word & !MAX_STREAM_ID != 0,
            stream_id: word & MAX_STREAM_ID,
            weight: f[4],
        })
    }

    pub(crate) fn to_bytes(self) -> Result<[u8; Self::LEN], Error> {
        if self.stream_id > MAX_STREAM_ID {
            return Err(Error::Misuse(Misuse::InvalidStreamId));
        }
        let word = self.stream_id | if self.exclusive { 1 << 31 } else { 0 };
        let w = word.to_be_bytes();
        Ok([w[0], w[1], w[2], w[3], self.weight])
    }
}

/// A PRIORITY frame. No flags are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream (never 0).
    pub stream_id: u32,
    /// Its dependency.
    pub dependency: StreamDependency,
}

impl Priority {
    pub(crate) fn parse(header: &FrameHeader, payload: &[u8]) -> Result<Self, Error> {
        header.require_stream()?;
        let stream_error = |code, violation| Error::stream(header.stream_id, code, violation);
        let dependency = StreamDependency::parse(payload)
            .ok_or(stream_error(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength))?;
        // RFC 7540 §5.3.1, which RFC 9113 keeps for the fields it still
        // parses.
        if dependency.stream_id == header.stream_id {
            return Err(stream_error(ErrorCode::PROTOCOL_ERROR, Violation::SelfDependency));
        }
        Ok(Self {
            stream_id: header.stream_id,
            dependency,
        })
    }

    /// Appends the frame to `out`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        if self.dependency.stream_id == self.stream_id {
            return Err(Error::Misuse(Misuse::InvalidStreamId));
        }
        let fields = self.dependency.to_bytes()?;
        write_header(
            out,
            FrameKind::Priority,
            0,
            self.stream_id,
            fields.len(),
            u32::MAX,
        )?;
        out.extend_from_slice(&fields);
        Ok(())
    }
}
