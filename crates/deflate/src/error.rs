//! The crate's error type.

use std::fmt;

/// Why a negotiation step failed, or how the API was misused.
///
/// The negotiation variants are what a **client** gets from checking the
/// server's response ([`ClientOffer::accept`](crate::negotiate::ClientOffer::accept)):
/// RFC 7692 section 5 says the client must then _Fail the WebSocket
/// Connection_. A server never fails on a bad offer: it declines it.
///
/// Errors in compressed data met while a message is received are not this
/// type: they go through `tether_ws::ExtensionError`, with the close code
/// (1002 for a corrupt stream, 1009 for a message that inflates past the
/// limit).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke RFC 7692: a parameter the RFC does not define.
    UnknownParameter(String),
    /// The peer broke RFC 7692: the same parameter twice in one element.
    DuplicateParameter(&'static str),
    /// The peer broke RFC 7692: a value where none is allowed, no value
    /// where one is required, or a window size that is not a decimal
    /// integer from 8 to 15 without leading zeros.
    InvalidValue(&'static str),
    /// The server's response carries a parameter the client's offer did not
    /// allow it to (`client_max_window_bits` when the offer had none).
    NotOffered(&'static str),
    /// The server's response lacks a parameter it must echo to accept the
    /// offer (`server_no_context_takeover`, `server_max_window_bits`).
    Missing(&'static str),
    /// The server's response sets a window larger than the offer allowed.
    WindowTooLarge(&'static str),
    /// The server's response names `permessage-deflate` more than once.
    DuplicateExtension,
    /// The caller misused the API: a window size outside 8..=15 or a
    /// compression level above 9.
    InvalidArgument(&'static str),
}

impl Error {
    /// Whether this is the caller's mistake rather than the peer's.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, Error::InvalidArgument(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownParameter(name) => write!(f, "permessage-deflate: unknown parameter {name:?}"),
            Error::DuplicateParameter(name) => write!(f, "permessage-deflate: {name} given twice"),
            Error::InvalidValue(name) => write!(f, "permessage-deflate: invalid value for {name}"),
            Error::NotOffered(name) => write!(
                f,
                "permessage-deflate: {name} in the response but not in the offer"
            ),
            Error::Missing(name) => write!(
                f,
                "permessage-deflate: the response lacks {name}, which the offer asked for"
            ),
            Error::WindowTooLarge(name) => write!(f, "permessage-deflate: {name} larger than offered"),
            Error::DuplicateExtension => f.write_str("permessage-deflate accepted more than once"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for Error {}
