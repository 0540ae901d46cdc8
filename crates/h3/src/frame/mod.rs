//! HTTP/3 frames (RFC 9114 §7).
//!
//! A frame is a type and a length, each a variable-length integer, then
//! the payload. [`FrameDecoder`] cuts the bytes of one stream into frames:
//! DATA payloads are handed out in pieces as they arrive, never buffered;
//! the payload of every other known frame is buffered up to a limit and
//! parsed into a [`Frame`]; frames of unknown and reserved types are
//! skipped without buffering them. [`Frame::encode`] and
//! [`encode_data_header`] write them.

mod decode;
mod encode;

pub use crate::frame_types::*;
pub use decode::{DEFAULT_MAX_PAYLOAD, Event, FrameDecoder};
pub use encode::{encode_data, encode_data_header, encode_unknown};

use crate::settings::Settings;

/// A frame other than DATA, with its payload parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// HEADERS: the encoded field section, for QPACK to decode.
    Headers(Vec<u8>),
    /// CANCEL_PUSH with its push ID.
    CancelPush(u64),
    /// SETTINGS.
    Settings(Settings),
    /// PUSH_PROMISE: a push ID and the encoded field section of the
    /// promised request.
    PushPromise {
        /// The push ID.
        push_id: u64,
        /// The encoded field section.
        field_section: Vec<u8>,
    },
    /// GOAWAY with a stream ID (from a server) or push ID (from a client).
    Goaway(u64),
    /// MAX_PUSH_ID with the largest push ID the client allows.
    MaxPushId(u64),
}

impl Frame {
    /// The frame's type on the wire.
    pub const fn frame_type(&self) -> u64 {
        match self {
            Frame::Headers(_) => HEADERS,
            Frame::CancelPush(_) => CANCEL_PUSH,
            Frame::Settings(_) => SETTINGS,
            Frame::PushPromise { .. } => PUSH_PROMISE,
            Frame::Goaway(_) => GOAWAY,
            Frame::MaxPushId(_) => MAX_PUSH_ID,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_http2_types() {
        for n in 0..5u64 {
            assert!(is_reserved_frame_type(0x1f * n + 0x21));
        }
        assert!(!is_reserved_frame_type(0x20));
        assert!(!is_reserved_frame_type(0x22));
        assert!(!is_reserved_frame_type(0x00));
        assert!(is_reserved_frame_type(0x1f * ((1u64 << 56) - 1) + 0x21));
        for t in [0x02, 0x06, 0x08, 0x09] {
            assert!(is_http2_frame_type(t));
            assert!(!is_known_frame_type(t));
        }
        assert!(!is_http2_frame_type(0x07));
    }
}
