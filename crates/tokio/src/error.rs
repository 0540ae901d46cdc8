//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in this crate.
///
/// [`Error::Protocol`] and [`Error::Handshake`] mean the peer broke the
/// protocol (a close frame or refusal has been sent where one could be);
/// [`Error::Io`] and [`Error::Dropped`] mean the transport failed;
/// [`Error::Closed`] and [`Error::Usage`] are the caller's misuse.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The peer closed the transport without the close handshake.
    Dropped,
    /// The WebSocket connection failed: the peer broke RFC 6455 or a limit,
    /// or went quiet (idle timeout, close timeout). The close frame with
    /// [`tether_ws::Error::close_code`] has been sent where one could be.
    #[cfg(feature = "ws")]
    Protocol(tether_ws::Error),
    /// The opening handshake failed: the request or response broke RFC 6455
    /// (a server has answered with the refusal's status).
    #[cfg(feature = "ws")]
    Handshake(tether_handshake::Error),
    /// A server refused the upgrade with this HTTP status (client side), or
    /// an upgrade was refused with it (server side, [`fn@crate::accept`]).
    Status(u16),
    /// The connection is closed (or closing): nothing more can be sent.
    Closed,
    /// The caller passed something that cannot be sent or used (the text
    /// says what), e.g. a control payload over 125 bytes or a bad URL.
    Usage(String),
    /// TLS failed (certificate, handshake, configuration).
    Tls(String),
    /// A time limit of the caller's passed (connect, handshake).
    Timeout(&'static str),
    /// An event-stream server's answer that the clients' rules do not go
    /// on with (tether-client-core's, shared with tether-client): a
    /// redirect without a usable `Location`, one from `https` to `http`,
    /// too many redirects, a `Content-Type` other than
    /// `text/event-stream`, a response head over the limit.
    #[cfg(feature = "client")]
    Policy(tether_client_core::Error),
}

impl Error {
    #[cfg(feature = "ws")]
    pub(crate) fn from_ws(e: tether_ws::Error) -> Error {
        if matches!(e, tether_ws::Error::AlreadyClosing) {
            Error::Closed
        } else if e.is_usage_error() {
            Error::Usage(e.to_string())
        } else {
            Error::Protocol(e)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o: {e}"),
            Error::Dropped => f.write_str("the peer closed the connection without a close frame"),
            #[cfg(feature = "ws")]
            Error::Protocol(e) => write!(f, "websocket: {e}"),
            #[cfg(feature = "ws")]
            Error::Handshake(e) => write!(f, "handshake: {e}"),
            Error::Status(s) => write!(f, "upgrade refused with HTTP status {s}"),
            Error::Closed => f.write_str("the connection is closed"),
            Error::Usage(what) => write!(f, "invalid use: {what}"),
            Error::Tls(what) => write!(f, "tls: {what}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            #[cfg(feature = "client")]
            Error::Policy(e) => write!(f, "event stream: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            #[cfg(feature = "ws")]
            Error::Protocol(e) => Some(e),
            #[cfg(feature = "ws")]
            Error::Handshake(e) => Some(e),
            #[cfg(feature = "client")]
            Error::Policy(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "client")]
impl From<tether_client_core::Error> for Error {
    fn from(e: tether_client_core::Error) -> Error {
        match e {
            tether_client_core::Error::Refused { status } => Error::Status(status),
            e @ (tether_client_core::Error::InvalidUrl { .. }
            | tether_client_core::Error::UnsupportedScheme { .. }) => Error::Usage(e.to_string()),
            e => Error::Policy(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}
