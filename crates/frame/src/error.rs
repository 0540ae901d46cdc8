//! The crate's error type.

use core::fmt;

use crate::close_code::CloseCode;

/// Everything that can go wrong in this crate.
///
/// Most variants mean the *peer* broke RFC 6455; [`Error::close_code`] gives
/// the status code to close the connection with. The few that mean the
/// *caller* misused the API (asking to encode something the protocol does not
/// allow) return `None` there, since there is nobody to blame on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The opcode nibble holds a reserved value (0x3-0x7 or 0xB-0xF).
    ReservedOpcode(u8),
    /// RSV bits are set that no negotiated extension owns. The value holds
    /// the offending bits in the positions of [`Rsv`](crate::header::Rsv).
    ReservedBits(u8),
    /// A control frame (close, ping, pong) arrived with FIN clear.
    FragmentedControlFrame,
    /// A control frame announced more than 125 payload bytes (reported as
    /// soon as the 7-bit length field shows it, before any extended length).
    ControlFrameTooLong,
    /// A 16- or 64-bit payload length was used for a length that fits in a
    /// shorter form (RFC 6455 section 5.2: "the minimal number of bytes MUST
    /// be used").
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set.
    LengthOverflow,
    /// A server received a frame without a mask.
    UnmaskedFrame,
    /// A client received a masked frame.
    MaskedFrame,
    /// A frame announced a payload larger than the configured maximum.
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// A close frame carried a status code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// A close frame with a one-byte payload (a code needs two).
    TruncatedClosePayload,
    /// Bytes that are not, and can no longer become, valid UTF-8 (a text
    /// message or a close reason).
    InvalidUtf8,
    /// Caller error: a control frame was to be encoded with more than 125
    /// payload bytes or without FIN.
    InvalidControlFrame,
    /// Caller error: a close reason longer than the 123 bytes a control
    /// frame leaves for it.
    CloseReasonTooLong(usize),
}

impl Error {
    /// The close code to send the peer for this error, or `None` when the
    /// error is the caller's own.
    ///
    /// ```
    /// use tether_frame::{CloseCode, Error};
    /// assert_eq!(Error::InvalidUtf8.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    /// assert_eq!(Error::ReservedOpcode(3).close_code(), Some(CloseCode::PROTOCOL_ERROR));
    /// ```
    pub const fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::ReservedOpcode(_)
            | Error::ReservedBits(_)
            | Error::FragmentedControlFrame
            | Error::ControlFrameTooLong
            | Error::NonMinimalLength
            | Error::LengthOverflow
            | Error::UnmaskedFrame
            | Error::MaskedFrame
            | Error::InvalidCloseCode(_)
            | Error::TruncatedClosePayload => Some(CloseCode::PROTOCOL_ERROR),
            Error::FrameTooLarge { .. } => Some(CloseCode::TOO_BIG),
            Error::InvalidUtf8 => Some(CloseCode::INVALID_PAYLOAD),
            Error::InvalidControlFrame | Error::CloseReasonTooLong(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Error::ReservedBits(bits) => {
                write!(f, "RSV bits {bits:#05b} set without an extension that owns them")
            }
            Error::FragmentedControlFrame => f.write_str("control frame with FIN clear"),
            Error::ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            Error::NonMinimalLength => f.write_str("payload length not in its minimal encoding"),
            Error::LengthOverflow => f.write_str("64-bit payload length with the top bit set"),
            Error::UnmaskedFrame => f.write_str("client frame without a mask"),
            Error::MaskedFrame => f.write_str("server frame with a mask"),
            Error::FrameTooLarge { len, max } => {
                write!(f, "frame payload of {len} bytes exceeds the limit of {max}")
            }
            Error::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent on the wire"),
            Error::TruncatedClosePayload => f.write_str("close payload of one byte"),
            Error::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Error::InvalidControlFrame => {
                f.write_str("control frames must have FIN set and at most 125 payload bytes")
            }
            Error::CloseReasonTooLong(len) => write!(f, "close reason of {len} bytes (at most 123)"),
        }
    }
}

impl core::error::Error for Error {}
