use core::fmt;

/// Everything that can go wrong in an opening handshake.
///
/// The variants fall in two groups, and [`Error::is_caller_error`] tells
/// them apart:
///
/// * the peer sent something RFC 6455 (or HTTP/1.1) does not allow: a server
///   answers these with the status [`Rejection`](crate::server::Rejection) picks, a
///   client fails the connection;
/// * the caller misused this API ([`Error::InvalidArgument`],
///   [`Error::IncompleteRequest`]): a bug on our side of the wire, never the
///   peer's fault.
///
/// Header names carried by the variants are the canonical spellings, e.g.
/// `"Sec-WebSocket-Key"`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP head is not valid HTTP/1.x syntax, or has more header lines
    /// than the configured maximum ([`httparse::Error::TooManyHeaders`]).
    Http(httparse::Error),
    /// The request method is not `GET`.
    Method,
    /// The HTTP version is below 1.1 (RFC 6455 requires HTTP/1.1 or later).
    HttpVersion,
    /// `Upgrade` does not list `websocket`, or `Connection` does not list
    /// `Upgrade`: this is not a WebSocket upgrade at all.
    NotUpgrade,
    /// `Sec-WebSocket-Version` is missing or is not `13`.
    UnsupportedVersion,
    /// A required header is missing.
    MissingHeader(&'static str),
    /// A header that may appear only once appears more than once.
    DuplicateHeader(&'static str),
    /// A header value is malformed: not UTF-8, not the grammar RFC 6455
    /// gives it, or (for `Sec-WebSocket-Key`) not 16 bytes once decoded.
    InvalidHeader(&'static str),
    /// The server answered with a status other than 101. Reported once the
    /// whole response head has arrived, so the caller can still read it
    /// (e.g. `Location` or `Sec-WebSocket-Version`).
    UnexpectedStatus(u16),
    /// `Sec-WebSocket-Accept` does not match the key the client sent.
    AcceptMismatch,
    /// The server selected a subprotocol the client did not offer (or sent
    /// one when none was offered).
    UnexpectedProtocol,
    /// The server accepted an extension the client did not offer.
    UnexpectedExtension,
    /// The caller passed a value this crate refuses to write, because it
    /// would make a malformed or ambiguous HTTP head (e.g. a header value
    /// with CR/LF, a subprotocol that is not a token, an extra header that
    /// this crate writes itself). The text says which.
    InvalidArgument(&'static str),
    /// An `httparse::Request` was handed over before it parsed completely
    /// (see [`RequestHead::from_httparse`](crate::server::RequestHead::from_httparse)).
    IncompleteRequest,
}

impl Error {
    /// Whether the caller misused the API, as opposed to the peer breaking
    /// the protocol.
    ///
    /// ```
    /// use tether_handshake::Error;
    /// assert!(Error::InvalidArgument("host").is_caller_error());
    /// assert!(!Error::UnsupportedVersion.is_caller_error());
    /// ```
    pub fn is_caller_error(&self) -> bool {
        matches!(self, Error::InvalidArgument(_) | Error::IncompleteRequest)
    }

    /// The HTTP status a server answers this error with: 400, 405, 426 or
    /// 431 for what a client can send wrong, 500 for the rest (caller
    /// misuse, or a client-side variant that a server never produces).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Http(httparse::Error::TooManyHeaders) => 431,
            Error::Http(_)
            | Error::HttpVersion
            | Error::MissingHeader(_)
            | Error::DuplicateHeader(_)
            | Error::InvalidHeader(_) => 400,
            Error::Method => 405,
            Error::NotUpgrade | Error::UnsupportedVersion => 426,
            Error::UnexpectedStatus(_)
            | Error::AcceptMismatch
            | Error::UnexpectedProtocol
            | Error::UnexpectedExtension
            | Error::InvalidArgument(_)
            | Error::IncompleteRequest => 500,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Http(e) => write!(f, "malformed HTTP head: {e}"),
            Error::Method => f.write_str("a WebSocket handshake must use GET"),
            Error::HttpVersion => f.write_str("a WebSocket handshake needs HTTP/1.1 or later"),
            Error::NotUpgrade => f.write_str("not a WebSocket upgrade request"),
            Error::UnsupportedVersion => f.write_str("unsupported WebSocket version (need 13)"),
            Error::MissingHeader(h) => write!(f, "missing {h} header"),
            Error::DuplicateHeader(h) => write!(f, "more than one {h} header"),
            Error::InvalidHeader(h) => write!(f, "invalid {h} header"),
            Error::UnexpectedStatus(s) => write!(f, "server answered {s} instead of 101"),
            Error::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match the key"),
            Error::UnexpectedProtocol => f.write_str("server selected a subprotocol not offered"),
            Error::UnexpectedExtension => f.write_str("server accepted an extension not offered"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::IncompleteRequest => f.write_str("the httparse request is not complete"),
        }
    }
}

impl core::error::Error for Error {}
