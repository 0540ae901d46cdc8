//! The crate's one error type.

use std::fmt;
use std::io;

use tether_ws::CloseCode;

/// Everything that can go wrong in a WebSocket or event-stream client.
///
/// Three groups, told apart by [`Error::is_caller_error`] and
/// [`Error::is_peer_error`]:
///
/// - **the caller's misuse** ([`InvalidUrl`](Error::InvalidUrl),
///   [`UnsupportedScheme`](Error::UnsupportedScheme),
///   [`InvalidArgument`](Error::InvalidArgument),
///   [`NotOpen`](Error::NotOpen), [`Closed`](Error::Closed)): nothing was
///   sent, or the connection is unaffected;
/// - **the network** ([`Io`](Error::Io), [`Timeout`](Error::Timeout),
///   [`ConnectionLost`](Error::ConnectionLost)): the peer may be fine, a
///   later attempt may work;
/// - **the peer** refused or broke a protocol: everything else.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Caller: the URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Caller: the URL's scheme is one this client cannot speak: `wss:` and
    /// `https:` need TLS, which this crate does not do (put a TLS
    /// terminating proxy in front, or use a TLS-capable client); an `http:`
    /// URL was given to the WebSocket client or a `ws:` one to the event
    /// stream client.
    UnsupportedScheme(String),
    /// Caller: a value that cannot be sent: a header with CR/LF, a
    /// subprotocol that is not a token, a close code that may not be sent,
    /// a control payload over 125 bytes... The text says which.
    InvalidArgument(String),
    /// Caller: the non-blocking client was asked to send before its opening
    /// handshake completed.
    NotOpen,
    /// Caller: the connection is closing or closed; nothing more can be
    /// sent (or, for `recv`, received).
    Closed,
    /// Network: a socket operation failed (connection refused, reset,
    /// unreachable...). The text names the operation.
    Io {
        /// What was being done (e.g. `"connect to 127.0.0.1:9001"`).
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// Network: the peer did not answer within a configured time. The text
    /// names the step (`"connect"`, `"opening handshake"`, `"write"`...).
    Timeout(&'static str),
    /// Network: the server closed the TCP connection without a WebSocket
    /// close handshake (what browsers report as code 1006), or in the
    /// middle of an HTTP response head.
    ConnectionLost,
    /// Peer: the server answered the upgrade (or the event-stream request)
    /// with an HTTP status other than the one expected (101, or 200).
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The reason phrase the server gave, possibly empty.
        reason: String,
    },
    /// Peer: the server's response to the opening handshake breaks RFC
    /// 6455 (wrong `Sec-WebSocket-Accept`, a subprotocol or extension not
    /// offered, malformed HTTP...).
    Handshake(tether_handshake::Error),
    /// Peer: the server accepted permessage-deflate with parameters that do
    /// not fit the offer (RFC 7692 section 5 says to fail the connection).
    #[cfg(feature = "deflate")]
    Deflate(tether_deflate::Error),
    /// Peer: the server broke the WebSocket protocol or a configured limit.
    /// A close frame with [`Error::close_code`] was sent where one could
    /// be. (A server gone quiet past the idle timeout, or not answering our
    /// close frame, is [`Error::Timeout`].)
    Protocol(tether_ws::Error),
    /// Peer: an HTTP response the event-stream client cannot read
    /// (malformed head or chunked encoding, a head over the limit, 16 KiB
    /// by default). The text
    /// says what.
    Http(String),
    /// Peer: an event stream answered 200 with a `Content-Type` other than
    /// `text/event-stream` (the value, or empty when missing). Fatal: an
    /// `EventSource` does not reconnect after it.
    ContentType(String),
    /// Peer: more redirects than the configured limit (a loop, most
    /// likely).
    TooManyRedirects {
        /// The limit.
        limit: u32,
    },
    /// Peer: a redirect without a usable `Location` header.
    BadRedirect(String),
    /// Peer: an event stream went past the parser's limits (line or event
    /// size).
    Sse(tether_sse::Error),
    /// Peer: the server broke HTTP/2, or went past a limit; the connection
    /// ended with a GOAWAY carrying this error's code.
    H2(tether_h2::client::ConnectionError),
    /// Peer: the server reset the HTTP/2 stream (RST_STREAM, or a GOAWAY
    /// that left it unprocessed: REFUSED_STREAM) with this code.
    StreamReset(tether_h2::ErrorCode),
    /// Peer or network: the HTTP/3 connection ended (closed by the server,
    /// timed out, or closed here for the server's HTTP/3 error), or the
    /// server reset the stream; the text says which.
    H3(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the caller misused the API (nothing the network or the
    /// peer did).
    ///
    /// ```
    /// use tether_client::Error;
    /// assert!(Error::Closed.is_caller_error());
    /// assert!(!Error::ConnectionLost.is_caller_error());
    /// ```
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidUrl { .. }
                | Error::UnsupportedScheme(_)
                | Error::InvalidArgument(_)
                | Error::NotOpen
                | Error::Closed
        )
    }

    /// Whether the peer refused or broke a protocol (as opposed to the
    /// caller's misuse or a network failure).
    pub fn is_peer_error(&self) -> bool {
        !self.is_caller_error() && !self.is_network_error()
    }

    /// Whether the network failed (connect, read or write errors, time-outs,
    /// a dropped connection): the kind of failure worth a reconnection.
    pub fn is_network_error(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Timeout(_) | Error::ConnectionLost)
    }

    /// For a WebSocket protocol error, the close code sent to the server
    /// (1002 protocol error, 1007 invalid payload, 1009 too big...).
    ///
    /// ```
    /// use tether_client::{CloseCode, Error};
    /// let e = Error::Protocol(tether_ws::Error::ExpectedContinuation);
    /// assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => e.close_code(),
            _ => None,
        }
    }

    /// For an I/O error, its kind (e.g. `ConnectionRefused`).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Error::UnsupportedScheme(what) => f.write_str(what),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::NotOpen => f.write_str("the WebSocket opening handshake has not completed yet"),
            Error::Closed => f.write_str("the connection is closed"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Timeout(step) => write!(f, "timed out: {step}"),
            Error::ConnectionLost => {
                f.write_str("the server closed the connection without a close handshake (1006)")
            }
            Error::Refused { status, reason } if reason.is_empty() => {
                write!(f, "the server refused with HTTP status {status}")
            }
            Error::Refused { status, reason } => {
                write!(f, "the server refused with HTTP status {status} {reason}")
            }
            Error::Handshake(e) => write!(f, "WebSocket handshake failed: {e}"),
            #[cfg(feature = "deflate")]
            Error::Deflate(e) => write!(f, "permessage-deflate negotiation failed: {e}"),
            Error::Protocol(e) => match e.close_code() {
                Some(code) => write!(f, "WebSocket connection failed ({}): {e}", code.0),
                None => write!(f, "WebSocket connection failed: {e}"),
            },
            Error::Http(what) => write!(f, "malformed HTTP response: {what}"),
            Error::ContentType(got) if got.is_empty() => {
                f.write_str("the event stream has no Content-Type (expected text/event-stream)")
            }
            Error::ContentType(got) => {
                write!(
                    f,
                    "the event stream has Content-Type {got:?}, not text/event-stream"
                )
            }
            Error::TooManyRedirects { limit } => write!(f, "more than {limit} redirects"),
            Error::BadRedirect(what) => write!(f, "bad redirect: {what}"),
            Error::Sse(e) => write!(f, "event stream: {e}"),
            Error::H2(e) => write!(f, "{e}"),
            Error::StreamReset(code) => write!(f, "the server reset the HTTP/2 stream ({code})"),
            Error::H3(what) => write!(f, "HTTP/3: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Handshake(e) => Some(e),
            #[cfg(feature = "deflate")]
            Error::Deflate(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Sse(e) => Some(e),
            Error::H2(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tether_client_core::Error> for Error {
    fn from(e: tether_client_core::Error) -> Error {
        use tether_client_core::Error as Policy;
        match e {
            Policy::InvalidUrl { url, reason } => Error::InvalidUrl { url, reason },
            Policy::UnsupportedScheme { url, expected } => Error::UnsupportedScheme(format!(
                "{url}: this client cannot use its scheme (expected {expected})"
            )),
            Policy::TooManyRedirects { limit } => Error::TooManyRedirects { limit },
            Policy::Refused { status } => Error::Refused {
                status,
                reason: String::new(),
            },
            Policy::ContentType(content_type) => Error::ContentType(content_type),
            e @ (Policy::MissingLocation { .. } | Policy::BadLocation { .. } | Policy::Downgrade { .. }) => {
                Error::BadRedirect(e.to_string())
            }
            e => Error::Http(e.to_string()),
        }
    }
}

impl From<tether_handshake::Error> for Error {
    fn from(e: tether_handshake::Error) -> Error {
        match e {
            tether_handshake::Error::InvalidArgument(what) => Error::InvalidArgument(what.to_owned()),
            e => Error::Handshake(e),
        }
    }
}
