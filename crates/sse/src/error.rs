use core::fmt;

/// Everything that can go wrong in this crate.
///
/// Two kinds, kept apart: the peer sent more than the [`Limits`](crate::parse::Limits)
/// allow ([`Error::is_peer_error`] is true), or the caller asked the encoder
/// for something the format cannot carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Peer: an `id`, `event` or `retry` line was longer than
    /// [`Limits::max_line_len`](crate::parse::Limits::max_line_len) bytes.
    LineTooLong {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// Peer: the data of one event (every `data` value plus one LF per
    /// `data` line) was larger than
    /// [`Limits::max_event_size`](crate::parse::Limits::max_event_size) bytes.
    EventTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// Caller: an event ID contained CR or LF, which would end the `id`
    /// line early and let the rest be read as other fields.
    IdContainsLineBreak,
    /// Caller: an event ID contained NUL, which every client ignores.
    IdContainsNul,
    /// Caller: an event type contained CR or LF, which would end the
    /// `event` line early and let the rest be read as other fields.
    EventTypeContainsLineBreak,
}

impl Error {
    /// Whether the peer caused this error (rather than the caller).
    ///
    /// ```
    /// use tether_sse::Error;
    /// assert!(Error::EventTooLarge { limit: 10 }.is_peer_error());
    /// assert!(!Error::IdContainsNul.is_peer_error());
    /// ```
    pub fn is_peer_error(&self) -> bool {
        matches!(self, Error::LineTooLong { .. } | Error::EventTooLarge { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LineTooLong { limit } => {
                write!(f, "event stream line longer than {limit} bytes")
            }
            Error::EventTooLarge { limit } => {
                write!(f, "event data larger than {limit} bytes")
            }
            Error::IdContainsLineBreak => f.write_str("event id contains CR or LF"),
            Error::IdContainsNul => f.write_str("event id contains NUL"),
            Error::EventTypeContainsLineBreak => f.write_str("event type contains CR or LF"),
        }
    }
}

impl core::error::Error for Error {}
