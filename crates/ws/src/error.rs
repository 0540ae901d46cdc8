//! The crate's error type.

use std::fmt;

use tether_frame::CloseCode;

/// A configured limit (see [`Config`](crate::config::Config)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`Config::max_frame_size`](crate::config::Config::max_frame_size).
    FrameSize,
    /// [`Config::max_message_size`](crate::config::Config::max_message_size).
    MessageSize,
    /// [`Config::max_fragments`](crate::config::Config::max_fragments).
    Fragments,
    /// Not this connection's own: the bytes that the sessions sharing one
    /// transport connection (WebSockets over the streams of an HTTP/2 or
    /// HTTP/3 connection) hold together of the messages they are
    /// receiving. Kept by the carrier, which fails the session that took
    /// the total past it with
    /// [`Connection::fail_over_limit`](crate::connection::Connection::fail_over_limit).
    SharedMessages,
    /// Not a [`Config`](crate::config::Config) setting: the bytes of answers (pongs) that
    /// the connection's driver let queue for a peer that sends control
    /// frames but does not read what they are answered with. Kept by the
    /// driver, which fails the connection with
    /// [`Connection::fail_over_limit`](crate::connection::Connection::fail_over_limit)
    /// (close code 1008) when they pass it.
    UnreadAnswers,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::FrameSize => "frame size",
            Limit::MessageSize => "message size",
            Limit::Fragments => "fragment count",
            Limit::SharedMessages => "messages in progress on the connection",
            Limit::UnreadAnswers => "answers the peer does not read",
        }
    }
}

/// Everything that can go wrong on a connection.
///
/// The first group means the peer broke the protocol or a limit: the
/// connection has failed, a close frame with [`Error::close_code`] has been
/// written (where one can be), and the transport should be closed. The
/// second group means the peer went quiet. The last group is the caller's
/// misuse of the API; the connection is unaffected by those.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A frame-level violation: bad header, mask, close payload or UTF-8.
    Frame(tether_frame::Error),
    /// A continuation frame arrived with no fragmented message to continue.
    UnexpectedContinuation,
    /// A new text or binary frame arrived in the middle of a fragmented
    /// message.
    ExpectedContinuation,
    /// An extension's RSV bit on a frame that may not carry it (a control
    /// frame, or a continuation).
    MisplacedRsv,
    /// A configured limit was exceeded.
    Limit {
        /// Which limit.
        limit: Limit,
        /// Its configured value.
        max: u64,
    },
    /// A negotiated extension refused the data.
    Extension(crate::extension::ExtensionError),
    /// Nothing arrived within the idle timeout (pings included).
    IdleTimeout,
    /// The peer did not answer our close frame within the close timeout.
    CloseTimeout,
    /// Caller error: a data frame, ping or close after our close frame.
    AlreadyClosing,
    /// Caller error: a ping or pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// Caller error: a close code that may not be sent, or a reason over
    /// 123 bytes.
    InvalidClose(tether_frame::Error),
}

impl Error {
    /// The close code sent to the peer for this error, or `None` for the
    /// caller's own errors and for a close timeout (nothing is sent then).
    ///
    /// ```
    /// use tether_ws::{Error, Limit};
    /// let e = Error::Limit { limit: Limit::MessageSize, max: 10 };
    /// assert_eq!(e.close_code().map(|c| c.0), Some(1009));
    /// assert_eq!(Error::ExpectedContinuation.close_code().map(|c| c.0), Some(1002));
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Frame(e) => e.close_code(),
            Error::UnexpectedContinuation | Error::ExpectedContinuation | Error::MisplacedRsv => {
                Some(CloseCode::PROTOCOL_ERROR)
            }
            Error::Limit {
                limit: Limit::UnreadAnswers,
                ..
            } => Some(CloseCode::POLICY),
            Error::Limit { .. } => Some(CloseCode::TOO_BIG),
            Error::Extension(e) => Some(e.code),
            Error::IdleTimeout => Some(CloseCode::GOING_AWAY),
            Error::CloseTimeout
            | Error::AlreadyClosing
            | Error::ControlPayloadTooLong(_)
            | Error::InvalidClose(_) => None,
        }
    }

    /// Whether this is the caller's misuse rather than something the peer
    /// did.
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            Error::AlreadyClosing | Error::ControlPayloadTooLong(_) | Error::InvalidClose(_)
        )
    }
}

impl From<tether_frame::Error> for Error {
    fn from(e: tether_frame::Error) -> Error {
        Error::Frame(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Frame(e) => e.fmt(f),
            Error::UnexpectedContinuation => f.write_str("continuation frame with no message to continue"),
            Error::ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            Error::MisplacedRsv => f.write_str("extension bit on a control or continuation frame"),
            Error::Limit { limit, max } => write!(f, "{} limit of {max} exceeded", limit.name()),
            Error::Extension(e) => e.fmt(f),
            Error::IdleTimeout => f.write_str("idle timeout"),
            Error::CloseTimeout => f.write_str("no close frame from the peer in time"),
            Error::AlreadyClosing => f.write_str("the connection is closing"),
            Error::ControlPayloadTooLong(len) => write!(f, "control payload of {len} bytes (at most 125)"),
            Error::InvalidClose(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
