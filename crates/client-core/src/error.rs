//! The crate's one error type.

use std::fmt;

/// Why the policy refuses: a URL that does not parse, or a redirect or
/// response the client does not go on with.
///
/// [`InvalidUrl`](Error::InvalidUrl) and
/// [`UnsupportedScheme`](Error::UnsupportedScheme) are the caller's
/// misuse when they concern the URL the caller gave; every other variant
/// (and those two, for a redirect's `Location`) is the peer's doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL's scheme is not one this kind of client speaks (an `http:`
    /// URL for a WebSocket, say).
    UnsupportedScheme {
        /// The URL.
        url: String,
        /// The schemes that would do, for the message (`"ws:// or wss://"`).
        expected: &'static str,
    },
    /// A redirect without a `Location` header.
    MissingLocation {
        /// The redirect's status.
        status: u16,
    },
    /// A redirect whose `Location` does not resolve to a URL.
    BadLocation {
        /// The `Location` as sent.
        location: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More redirects in one attempt than the limit.
    TooManyRedirects {
        /// The limit.
        limit: u32,
    },
    /// A redirect from `https` to `http`: the stream would leave TLS.
    Downgrade {
        /// Where it led.
        to: String,
    },
    /// A response that is neither the stream, a stop, nor a redirect: a
    /// status other than 200, 204 and the redirects.
    Refused {
        /// The status.
        status: u16,
    },
    /// A 200 response whose `Content-Type` is not `text/event-stream`.
    ContentType(
        /// The `Content-Type` as sent (empty without one).
        String,
    ),
    /// A response head longer than the limit
    /// ([`limits::MAX_RESPONSE_HEAD`](crate::limits::MAX_RESPONSE_HEAD) by
    /// default): fatal, since trying again would meet the same head.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Error::UnsupportedScheme { url, expected } => {
                write!(
                    f,
                    "{url}: this client cannot use its scheme (expected {expected})"
                )
            }
            Error::MissingLocation { status } => write!(f, "{status} without a Location header"),
            Error::BadLocation { location, reason } => write!(f, "Location {location:?}: {reason}"),
            Error::TooManyRedirects { limit } => write!(f, "more than {limit} redirects"),
            Error::Downgrade { to } => write!(
                f,
                "a redirect from https to http ({to}): the stream would leave TLS"
            ),
            Error::Refused { status } => write!(f, "the server answered {status}"),
            Error::ContentType(content_type) => {
                write!(f, "Content-Type {content_type:?} is not text/event-stream")
            }
            Error::HeadTooLarge { limit } => write!(f, "a response head over {limit} bytes"),
        }
    }
}

impl std::error::Error for Error {}
