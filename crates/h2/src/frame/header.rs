//! The 9-octet frame header (RFC 9113 §4.1).

use crate::error::{Error, ErrorCode, Misuse, Violation};

/// Length of the frame header on the wire.
pub const FRAME_HEADER_LEN: usize = 9;
/// The largest stream identifier (31 bits).
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// The initial SETTINGS_MAX_FRAME_SIZE, and the smallest value it may take.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;
/// The largest SETTINGS_MAX_FRAME_SIZE, and the largest length the 24-bit
/// field can hold.
pub const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;

/// Flag bits that RFC 9113 defines; which ones a frame type reads is
/// documented on each type, and the others are ignored on receipt.
pub mod flags {
    /// DATA, HEADERS: the last frame the sender sends on this stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length octet and padding follow.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the (deprecated) priority fields are present.
    pub const PRIORITY: u8 = 0x20;
}

/// A frame type (RFC 9113 §6), with the types it does not define kept as
/// their number so that the connection can ignore them (§4.1, §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// DATA (0x0).
    Data,
    /// HEADERS (0x1).
    Headers,
    /// PRIORITY (0x2).
    Priority,
    /// RST_STREAM (0x3).
    RstStream,
    /// SETTINGS (0x4).
    Settings,
    /// PUSH_PROMISE (0x5).
    PushPromise,
    /// PING (0x6).
    Ping,
    /// GOAWAY (0x7).
    GoAway,
    /// WINDOW_UPDATE (0x8).
    WindowUpdate,
    /// CONTINUATION (0x9).
    Continuation,
    /// A type RFC 9113 does not define (0xa and above). `From<u8>` only
    /// makes this for such values.
    Unknown(u8),
}

impl From<u8> for FrameKind {
    fn from(value: u8) -> Self {
        match value {
            0x0 => Self::Data,
            0x1 => Self::Headers,
            0x2 => Self::Priority,
            0x3 => Self::RstStream,
            0x4 => Self::Settings,
            0x5 => Self::PushPromise,
            0x6 => Self::Ping,
            0x7 => Self::GoAway,
            0x8 => Self::WindowUpdate,
            0x9 => Self::Continuation,
            other => Self::Unknown(other),
        }
    }
}

impl From<FrameKind> for u8 {
    fn from(kind: FrameKind) -> Self {
        match kind {
            FrameKind::Data => 0x0,
            FrameKind::Headers => 0x1,
            FrameKind::Priority => 0x2,
            FrameKind::RstStream => 0x3,
            FrameKind::Settings => 0x4,
            FrameKind::PushPromise => 0x5,
            FrameKind::Ping => 0x6,
            FrameKind::GoAway => 0x7,
            FrameKind::WindowUpdate => 0x8,
            FrameKind::Continuation => 0x9,
            FrameKind::Unknown(other) => other,
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type.
    pub kind: FrameKind,
    /// Flags, all eight bits as received.
    pub flags: u8,
    /// Stream identifier, with the reserved bit cleared (it is ignored on
    /// receipt, §4.1).
    pub stream_id: u32,
}

impl FrameHeader {
    /// Decodes the header at the start of `bytes`, or `None` when fewer
    /// than [`FRAME_HEADER_LEN`] bytes are given.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let h: &[u8; FRAME_HEADER_LEN] = bytes.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: FrameKind::from(h[3]),
            flags: h[4],
            stream_id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_STREAM_ID,
        })
    }

    /// The header's wire form. Bits that do not fit (length above 24 bits,
    /// the stream identifier's top bit) are dropped: the frame encoders
    /// check their values before they get here.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let len = self.length.to_be_bytes();
        let id = (self.stream_id & MAX_STREAM_ID).to_be_bytes();
        [
            len[1],
            len[2],
            len[3],
            self.kind.into(),
            self.flags,
            id[0],
            id[1],
            id[2],
            id[3],
        ]
    }

    /// Whether `flag` is set.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Connection PROTOCOL_ERROR unless the frame names a stream.
    pub(crate) fn require_stream(&self) -> Result<(), Error> {
        if self.stream_id == 0 {
            return Err(Error::connection(
                ErrorCode::PROTOCOL_ERROR,
                Violation::StreamIdZero,
            ));
        }
        Ok(())
    }

    /// Connection PROTOCOL_ERROR unless the frame is on stream 0.
    pub(crate) fn require_connection(&self) -> Result<(), Error> {
        if self.stream_id != 0 {
            return Err(Error::connection(
                ErrorCode::PROTOCOL_ERROR,
                Violation::StreamIdNonZero,
            ));
        }
        Ok(())
    }
}

/// Checks an outgoing stream identifier: 1..=2^31-1 for a stream frame,
/// exactly 0 for a connection frame.
pub(crate) fn check_stream_id(stream_id: u32, on_stream: bool) -> Result<(), Error> {
    let ok = if on_stream {
        (1..=MAX_STREAM_ID).contains(&stream_id)
    } else {
        stream_id == 0
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Misuse(Misuse::InvalidStreamId))
    }
}

/// Checks an outgoing payload length against the caller's maximum frame
/// size and the 24-bit field, and appends the header. Nothing is appended
/// on error.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    kind: FrameKind,
    flags: u8,
    stream_id: u32,
    payload_len: usize,
    max_frame_size: u32,
) -> Result<(), Error> {
    let max = max_frame_size.min(MAX_FRAME_SIZE_LIMIT);
    let length = u32::try_from(payload_len)
        .ok()
        .filter(|&len| len <= max)
        .ok_or(Error::Misuse(Misuse::FrameTooLarge {
            len: payload_len,
            max,
        }))?;
    let header = FrameHeader {
        length,
        kind,
        flags,
        stream_id,
    };
    out.reserve(FRAME_HEADER_LEN + payload_len);
    out.extend_from_slice(&header.to_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_field() {
        let bytes = [0x12, 0x34, 0x56, 0x01, 0x25, 0x00, 0x00, 0x00, 0x07, 0xff];
        let h = FrameHeader::decode(&bytes).unwrap();
        assert_eq!(h.length, 0x123456);
        assert_eq!(h.kind, FrameKind::Headers);
        assert_eq!(h.flags, 0x25);
        assert_eq!(h.stream_id, 7);
        assert!(h.has(flags::END_STREAM) && h.has(flags::END_HEADERS) && h.has(flags::PRIORITY));
        assert!(!h.has(flags::PADDED));
        assert_eq!(h.to_bytes(), bytes[..9]);
    }

    #[test]
    fn reserved_bit_is_ignored_on_receipt() {
        let h = FrameHeader::decode(&[0, 0, 0, 0, 0, 0x80, 0, 0, 5]).unwrap();
        assert_eq!(h.stream_id, 5);
        assert_eq!(h.to_bytes(), [0, 0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn short_input_is_not_a_header() {
        for n in 0..9 {
            assert_eq!(FrameHeader::decode(&[0; 9][..n]), None);
        }
    }

    #[test]
    fn every_type_byte_maps_back() {
        for b in 0..=255u8 {
            let kind = FrameKind::from(b);
            assert_eq!(u8::from(kind), b);
            assert_eq!(matches!(kind, FrameKind::Unknown(_)), b >= 10);
        }
    }

    #[test]
    fn write_header_refuses_oversized_payloads_without_writing() {
        let mut out = vec![1];
        let e = write_header(&mut out, FrameKind::Data, 0, 1, 16_385, 16_384).unwrap_err();
        assert_eq!(
            e,
            Error::Misuse(Misuse::FrameTooLarge {
                len: 16_385,
                max: 16_384
            })
        );
        // The 24-bit field caps even a larger caller maximum.
        let e = write_header(&mut out, FrameKind::Data, 0, 1, 1 << 24, u32::MAX).unwrap_err();
        assert!(matches!(
            e,
            Error::Misuse(Misuse::FrameTooLarge {
                max: MAX_FRAME_SIZE_LIMIT,
                ..
            })
        ));
        assert_eq!(out, [1]);
        write_header(&mut out, FrameKind::Data, 0, 1, 16_384, 16_384).unwrap();
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn outgoing_stream_ids_are_checked() {
        assert!(check_stream_id(1, true).is_ok());
        assert!(check_stream_id(MAX_STREAM_ID, true).is_ok());
        assert!(check_stream_id(0, true).is_err());
        assert!(check_stream_id(MAX_STREAM_ID + 1, true).is_err());
        assert!(check_stream_id(0, false).is_ok());
        assert!(check_stream_id(1, false).is_err());
    }
}
