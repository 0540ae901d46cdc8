//! HTTP/2 error codes (RFC 9113 §7) and the error type of this crate.

use core::fmt;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
///
/// A newtype over the 32-bit wire value rather than an enum, so that a code
/// this crate does not know is kept as it came ("MUST NOT trigger any
/// special behavior", §7) and every value has exactly one representation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 0x0: graceful shutdown, or not an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// 0x1: a protocol error that no more specific code covers.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// 0x2: the endpoint failed on its own.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// 0x3: the peer broke flow control.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// 0x4: a SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// 0x5: a frame came on a half-closed stream.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// 0x6: a frame had a size it may not have.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// 0x7: the stream was refused before any processing.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// 0x8: the stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// 0x9: the field-block compression context cannot be kept.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// 0xa: the tunnel of a CONNECT request was reset or closed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// 0xb: the peer generates excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// 0xc: the transport does not meet the minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// 0xd: HTTP/1.1 is required instead.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// The code's name in RFC 9113 §7, or `None` for a code it does not
    /// define.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which rule of RFC 9113 the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A frame that belongs to a stream came with stream identifier 0.
    StreamIdZero,
    /// A connection-level frame (SETTINGS, PING, GOAWAY) came with a
    /// non-zero stream identifier.
    StreamIdNonZero,
    /// A frame's length exceeds the SETTINGS_MAX_FRAME_SIZE we advertised.
    FrameTooLarge,
    /// A frame's payload is shorter than its mandatory fields.
    PayloadTooShort,
    /// A fixed-size frame (PRIORITY, RST_STREAM, PING, WINDOW_UPDATE) has
    /// another length.
    WrongLength,
    /// A SETTINGS payload is not a multiple of 6 octets.
    SettingsLength,
    /// A SETTINGS frame with the ACK flag has a payload.
    SettingsAckWithPayload,
    /// A SETTINGS parameter has a value outside its range; the identifier
    /// is given.
    InvalidSetting(u16),
    /// The Pad Length is at least the length of the frame payload.
    PaddingTooLong,
    /// A PUSH_PROMISE promises stream 0.
    PromisedStreamIdZero,
    /// A WINDOW_UPDATE has an increment of 0.
    ZeroWindowIncrement,
    /// A PRIORITY frame makes a stream depend on itself.
    SelfDependency,
    /// A field block was interrupted by another frame, or continued on
    /// another stream (§4.3, §6.10); the stream that expected a
    /// CONTINUATION is given.
    ExpectedContinuation(u32),
    /// A CONTINUATION came where no field block was open.
    UnexpectedContinuation,
}

/// How the caller misused the API (not something the peer did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// The payload of a frame to encode is larger than the maximum frame
    /// size given (or than 2^24-1): the caller must split it.
    FrameTooLarge {
        /// The payload length the frame would have.
        len: usize,
        /// The largest payload allowed.
        max: u32,
    },
    /// A stream identifier is 0 where a stream is needed, non-zero where
    /// the frame belongs to the connection, or above 2^31-1.
    InvalidStreamId,
    /// A value has no encoding in this frame: a SETTINGS value out of its
    /// range, an `Unknown` setting with a known identifier, a window
    /// increment of 0 or above 2^31-1.
    InvalidValue,
    /// An unknown frame to encode has the type of a frame defined by RFC
    /// 9113.
    KnownFrameType,
    /// A maximum frame size outside 16384..=16777215.
    MaxFrameSizeOutOfRange,
    /// A payload given to `Frame::parse` does not have the header's length.
    LengthMismatch,
}

/// The error type of this crate.
///
/// [`Error::Connection`] and [`Error::Stream`] are the peer's fault and say
/// how to answer (GOAWAY or RST_STREAM with [`Error::code`]);
/// [`Error::NotHttp2`] is the client preface check failing;
/// [`Error::Misuse`] is the caller's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A connection error (RFC 9113 §5.4.1): send GOAWAY with `code` and
    /// close the connection.
    Connection {
        /// The code to send.
        code: ErrorCode,
        /// The rule that was broken.
        violation: Violation,
    },
    /// A stream error (RFC 9113 §5.4.2): send RST_STREAM with `code` on
    /// `stream`; the connection goes on.
    Stream {
        /// The stream in error (never 0).
        stream: u32,
        /// The code to send.
        code: ErrorCode,
        /// The rule that was broken.
        violation: Violation,
    },
    /// The bytes are not the HTTP/2 client connection preface: the byte at
    /// `offset` (counted from the start of the preface) differs. RFC 9113
    /// §3.4 makes this a connection error of type PROTOCOL_ERROR; a server
    /// may also take it as "this client does not speak HTTP/2".
    NotHttp2 {
        /// Where the first differing byte is.
        offset: usize,
    },
    /// The caller asked for something this API cannot do.
    Misuse(Misuse),
}

impl Error {
    pub(crate) const fn connection(code: ErrorCode, violation: Violation) -> Self {
        Self::Connection { code, violation }
    }

    pub(crate) const fn stream(stream: u32, code: ErrorCode, violation: Violation) -> Self {
        Self::Stream {
            stream,
            code,
            violation,
        }
    }

    /// The error code to send the peer, or `None` for a misuse.
    pub const fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Connection { code, .. } | Self::Stream { code, .. } => Some(*code),
            Self::NotHttp2 { .. } => Some(ErrorCode::PROTOCOL_ERROR),
            Self::Misuse(_) => None,
        }
    }

    /// Whether the whole connection must end (a connection error or a bad
    /// preface).
    pub const fn is_connection_error(&self) -> bool {
        matches!(self, Self::Connection { .. } | Self::NotHttp2 { .. })
    }

    /// The stream to reset, for a stream error.
    pub const fn stream_id(&self) -> Option<u32> {
        match self {
            Self::Stream { stream, .. } => Some(*stream),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection { code, violation } => {
                write!(f, "connection error {code}: {violation:?}")
            }
            Self::Stream {
                stream,
                code,
                violation,
            } => write!(f, "stream error {code} on stream {stream}: {violation:?}"),
            Self::NotHttp2 { offset } => {
                write!(f, "not the HTTP/2 client preface (byte {offset} differs)")
            }
            Self::Misuse(misuse) => write!(f, "misuse: {misuse:?}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_rfc_values_and_names() {
        let all = [
            (ErrorCode::NO_ERROR, 0x0, "NO_ERROR"),
            (ErrorCode::PROTOCOL_ERROR, 0x1, "PROTOCOL_ERROR"),
            (ErrorCode::INTERNAL_ERROR, 0x2, "INTERNAL_ERROR"),
            (ErrorCode::FLOW_CONTROL_ERROR, 0x3, "FLOW_CONTROL_ERROR"),
            (ErrorCode::SETTINGS_TIMEOUT, 0x4, "SETTINGS_TIMEOUT"),
            (ErrorCode::STREAM_CLOSED, 0x5, "STREAM_CLOSED"),
            (ErrorCode::FRAME_SIZE_ERROR, 0x6, "FRAME_SIZE_ERROR"),
            (ErrorCode::REFUSED_STREAM, 0x7, "REFUSED_STREAM"),
            (ErrorCode::CANCEL, 0x8, "CANCEL"),
            (ErrorCode::COMPRESSION_ERROR, 0x9, "COMPRESSION_ERROR"),
            (ErrorCode::CONNECT_ERROR, 0xa, "CONNECT_ERROR"),
            (ErrorCode::ENHANCE_YOUR_CALM, 0xb, "ENHANCE_YOUR_CALM"),
            (ErrorCode::INADEQUATE_SECURITY, 0xc, "INADEQUATE_SECURITY"),
            (ErrorCode::HTTP_1_1_REQUIRED, 0xd, "HTTP_1_1_REQUIRED"),
        ];
        for (code, value, name) in all {
            assert_eq!(u32::from(code), value);
            assert_eq!(ErrorCode::from(value), code);
            assert_eq!(code.name(), Some(name));
            assert_eq!(format!("{code:?}"), name);
        }
        assert_eq!(ErrorCode(0xe).name(), None);
        assert_eq!(format!("{:?}", ErrorCode(0xdead)), "ErrorCode(0xdead)");
    }

    #[test]
    fn scope_and_code_accessors() {
        let c = Error::connection(ErrorCode::FRAME_SIZE_ERROR, Violation::FrameTooLarge);
        assert!(c.is_connection_error());
        assert_eq!(c.code(), Some(ErrorCode::FRAME_SIZE_ERROR));
        assert_eq!(c.stream_id(), None);
        let s = Error::stream(3, ErrorCode::PROTOCOL_ERROR, Violation::SelfDependency);
        assert!(!s.is_connection_error());
        assert_eq!(s.stream_id(), Some(3));
        let p = Error::NotHttp2 { offset: 2 };
        assert!(p.is_connection_error());
        assert_eq!(p.code(), Some(ErrorCode::PROTOCOL_ERROR));
        let m = Error::Misuse(Misuse::InvalidStreamId);
        assert_eq!(m.code(), None);
        assert!(!m.is_connection_error());
        for e in [c, s, p, m] {
            assert!(!e.to_string().is_empty());
        }
    }
}
