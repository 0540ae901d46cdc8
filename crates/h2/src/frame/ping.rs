//! PING (RFC 9113 §6.7).

use super::header::{FrameHeader, FrameKind, flags, write_header};
use crate::error::{Error, ErrorCode, Violation};

/// A PING frame, or its acknowledgement. Flags read: ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// ACK: this answers a PING.
    pub ack: bool,
    /// The opaque data, echoed in the answer.
    pub data: [u8; 8],
}

impl Ping {
    pub(crate) fn parse(header: &FrameHeader, payload: &[u8]) -> Result<Self, Error> {
        header.require_connection()?;
        let data = payload
            .try_into()
            .map_err(|_| Error::connection(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength))?;
        Ok(Self {
            ack: header.has(flags::ACK),
            data,
        })
    }

    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let f = if self.ack { flags::ACK } else { 0 };
        // Eight octets on stream 0 always fit.
        if write_header(out, FrameKind::Ping, f, 0, 8, u32::MAX).is_ok() {
            out.extend_from_slice(&self.data);
        }
    }
}
