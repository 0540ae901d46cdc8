//! Why a connection ended, and why a method that sends could not.

use std::fmt;

use crate::error::{Error, ErrorCode};
use crate::hpack;

/// Why the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The bytes are not the client preface: not HTTP/2. Nothing was
    /// written.
    NotHttp2 {
        /// The first byte that differs.
        offset: usize,
    },
    /// A frame broke a rule of its type or of framing
    /// ([`Error::Connection`] from the frame decoder).
    Frame(Error),
    /// The peer's first frame (after the client preface) was not
    /// SETTINGS.
    SettingsExpected,
    /// A header block could not be decoded (COMPRESSION_ERROR).
    Compression(hpack::Error),
    /// A HEADERS on an even stream, or on a stream below one already
    /// opened that was never used (PROTOCOL_ERROR).
    StreamId(u32),
    /// A HEADERS on a stream that was open and has closed: ended both
    /// ways, or reset by the client (STREAM_CLOSED, §5.1; a stream
    /// closed long ago, beyond the last 128, is [`ConnectionError::StreamId`]).
    StreamClosed(u32),
    /// DATA, RST_STREAM or WINDOW_UPDATE on a stream not yet opened
    /// (PROTOCOL_ERROR).
    IdleStream(u32),
    /// A client sent PUSH_PROMISE, or a server did although push is off
    /// (PROTOCOL_ERROR).
    PushPromise,
    /// DATA beyond the connection's window, a window pushed past 2^31-1
    /// (FLOW_CONTROL_ERROR).
    FlowControl,
    /// A header block larger than the header list limit
    /// (ENHANCE_YOUR_CALM).
    HeaderBlockTooLarge,
    /// The rapid-reset budget is spent (ENHANCE_YOUR_CALM).
    TooManyResets,
    /// Too many acknowledgements queued (ENHANCE_YOUR_CALM).
    TooManyAcks,
    /// Too many empty frames (ENHANCE_YOUR_CALM).
    TooManyEmptyFrames,
    /// A SETTINGS frame with more parameters than the limit
    /// (ENHANCE_YOUR_CALM).
    TooManySettings,
}

impl ConnectionError {
    /// The code sent in the GOAWAY.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Frame(e) => e.code().unwrap_or(ErrorCode::PROTOCOL_ERROR),
            Self::NotHttp2 { .. }
            | Self::SettingsExpected
            | Self::StreamId(_)
            | Self::IdleStream(_)
            | Self::PushPromise => ErrorCode::PROTOCOL_ERROR,
            Self::Compression(_) => ErrorCode::COMPRESSION_ERROR,
            Self::StreamClosed(_) => ErrorCode::STREAM_CLOSED,
            Self::FlowControl => ErrorCode::FLOW_CONTROL_ERROR,
            Self::HeaderBlockTooLarge
            | Self::TooManyResets
            | Self::TooManyAcks
            | Self::TooManyEmptyFrames
            | Self::TooManySettings => ErrorCode::ENHANCE_YOUR_CALM,
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/2 connection error {}: {self:?}", self.code())
    }
}

impl std::error::Error for ConnectionError {}

/// Why a method that sends could not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection has ended (an error, or a GOAWAY with an error code).
    ConnectionClosed,
    /// The stream is not open for sending: unknown, reset, or ended with
    /// END_STREAM.
    StreamNotOpen(u32),
    /// A client cannot open a stream: the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS streams are open.
    StreamLimit,
    /// A client cannot open a stream: a GOAWAY went one way or the other.
    GoingAway,
    /// A client cannot open a stream: every identifier has been used.
    StreamIdsExhausted,
    /// A client cannot send an extended CONNECT: the server has not
    /// announced SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
    ExtendedConnectDisabled,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionClosed => f.write_str("the HTTP/2 connection is closed"),
            Self::StreamNotOpen(s) => write!(f, "HTTP/2 stream {s} is not open for sending"),
            Self::StreamLimit => f.write_str("the HTTP/2 server's limit of concurrent streams is reached"),
            Self::GoingAway => f.write_str("the HTTP/2 connection is going away: no new stream"),
            Self::StreamIdsExhausted => f.write_str("the HTTP/2 connection has used every stream identifier"),
            Self::ExtendedConnectDisabled => {
                f.write_str("the HTTP/2 server has not enabled the extended CONNECT (RFC 8441)")
            }
        }
    }
}

impl std::error::Error for SendError {}
