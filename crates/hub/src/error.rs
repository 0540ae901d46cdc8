//! The one error type of the crate.

use core::fmt;
use core::str::FromStr;

use crate::id::EventId;

/// What can go wrong in the hub.
///
/// Three kinds: the client sent something unacceptable (a bad topic name,
/// an oversized event, a bad ticket: [`Error::is_client_error`]); a limit
/// was reached ([`Error::TopicLimit`], [`Error::TooManyTickets`]); or a
/// broker or the embedding code broke the contract
/// ([`Error::OutOfOrder`], [`Error::NotFollowed`],
/// [`Error::AlreadySubscribed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The topic name is empty, too long, has characters outside
    /// `[A-Za-z0-9._:-]`, or is `.` or `..`.
    InvalidTopic,
    /// The event type is empty, too long, has characters outside
    /// `[A-Za-z0-9._:-]`, or is the reserved `gap`.
    InvalidEventType,
    /// Text that is not a canonical `ms-seq` event id.
    InvalidId,
    /// A publish key that is empty, too long or has characters other than
    /// visible ASCII (see [`crate::is_valid_publish_key`]).
    InvalidPublishKey,
    /// The event's data is larger than [`crate::Config::max_event_size`].
    EventTooLarge {
        /// The data's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Publishing would create a topic beyond [`crate::Config::max_topics`].
    TopicLimit {
        /// The limit.
        max: usize,
    },
    /// A ticket is unknown, used already, expired, or for another topic.
    TicketRefused,
    /// Too many tickets are outstanding to issue another.
    TooManyTickets,
    /// The broker cannot take publishes now (it lost its connection).
    BrokerUnavailable,
    /// The server is shutting down: the publish was not made, and may be
    /// made again later (or on another node).
    ShuttingDown,
    /// A broker delivered an event whose id is not greater than the topic's
    /// last (a broken broker contract); the event was dropped.
    OutOfOrder {
        /// The topic's last id.
        last: EventId,
        /// The id delivered.
        got: EventId,
    },
    /// A broker delivered an event, or a backlog, for a topic that this
    /// hub does not follow (it was unfollowed meanwhile, or the broker
    /// broke its contract); it was dropped.
    NotFollowed,
    /// The caller subscribed a subscriber that is subscribed already.
    AlreadySubscribed,
    /// The caller asked for something the API does not do (e.g. subscribe
    /// a long poll with [`crate::Hub::subscribe`] instead of
    /// [`crate::Hub::poll`]).
    InvalidArgument(&'static str),
    /// A client's cursor (the `Last-Event-ID` of a multi-topic stream, a
    /// multi-topic poll's `since`) could not be read for this stream's
    /// topics: see [`crate::Cursor::decode`].
    InvalidCursor(BadCursor),
}

/// What is wrong with a cursor that [`crate::Cursor::decode`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadCursor {
    /// It does not start with `~`: a plain event id, or anything else.
    NotACursor,
    /// After the `~`: a character outside unpadded base64url, a length
    /// base64 never has (one character past a multiple of four), or bits
    /// left over after the last byte that are not zero.
    Base64,
    /// The first byte is a version this hub does not read (it writes 1).
    Version(u8),
    /// It ends before the last topic's position.
    Truncated,
    /// Bytes follow the last topic's position.
    TrailingBytes,
    /// A varint over its field's range (64 bits, 65 for a topic's `h`) or
    /// longer than 10 bytes.
    VarintOverflow,
    /// A varint longer than its value needs (a last byte of 0).
    OverlongVarint,
    /// It was made for a list of another number of topics.
    TopicCount {
        /// This stream's number of topics.
        expected: usize,
        /// The cursor's.
        found: u64,
    },
    /// It was made for another list of as many topics (or the same topics
    /// in another order).
    Fingerprint {
        /// This stream's topics' fingerprint.
        expected: u32,
        /// The cursor's.
        found: u32,
    },
    /// Longer than [`crate::MAX_CURSOR_LEN`]; not read.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for BadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadCursor::NotACursor => f.write_str("not a cursor (it starts with ~)"),
            BadCursor::Base64 => f.write_str("not unpadded base64url after the ~"),
            BadCursor::Version(version) => write!(f, "cursor version {version} (this hub reads 1)"),
            BadCursor::Truncated => f.write_str("cut short"),
            BadCursor::TrailingBytes => f.write_str("bytes after the last topic's position"),
            BadCursor::VarintOverflow => f.write_str("a number too large"),
            BadCursor::OverlongVarint => f.write_str("a number longer than it needs to be"),
            BadCursor::TopicCount { expected, found } => {
                write!(f, "made for {found} topics, not these {expected}")
            }
            BadCursor::Fingerprint { .. } => f.write_str("made for another list of topics"),
            BadCursor::TooLong { len } => {
                write!(f, "{len} bytes, over the limit of {}", crate::MAX_CURSOR_LEN)
            }
        }
    }
}

impl Error {
    /// Whether the client (a publisher or subscriber) caused it.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidTopic
                | Error::InvalidEventType
                | Error::InvalidId
                | Error::InvalidPublishKey
                | Error::EventTooLarge { .. }
                | Error::TicketRefused
                | Error::InvalidCursor(_)
        )
    }

    /// The HTTP status that answers a request that failed this way.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidTopic
            | Error::InvalidEventType
            | Error::InvalidId
            | Error::InvalidPublishKey
            | Error::InvalidCursor(_) => 400,
            Error::EventTooLarge { .. } => 413,
            Error::TicketRefused => 403,
            Error::TopicLimit { .. }
            | Error::TooManyTickets
            | Error::BrokerUnavailable
            | Error::ShuttingDown => 503,
            _ => 500,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidTopic => {
                f.write_str("invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -, not . or ..)")
            }
            Error::InvalidEventType => {
                f.write_str("invalid event type (1-64 bytes of A-Z a-z 0-9 . _ : -, not \"gap\")")
            }
            Error::InvalidId => f.write_str("not an event id (ms-seq)"),
            Error::InvalidPublishKey => f.write_str("invalid publish id (1-128 visible ASCII characters)"),
            Error::EventTooLarge { size, max } => {
                write!(f, "event data of {size} bytes exceeds the limit of {max}")
            }
            Error::TopicLimit { max } => write!(f, "topic limit of {max} reached"),
            Error::TicketRefused => f.write_str("ticket unknown, used, expired or for another topic"),
            Error::TooManyTickets => f.write_str("too many tickets outstanding"),
            Error::BrokerUnavailable => f.write_str("the broker is unavailable"),
            Error::ShuttingDown => f.write_str("the server is shutting down; publish again later"),
            Error::OutOfOrder { last, got } => write!(f, "event {got} delivered after {last}"),
            Error::NotFollowed => f.write_str("delivery for a topic this hub does not follow"),
            Error::AlreadySubscribed => f.write_str("already subscribed"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::InvalidCursor(why) => write!(f, "invalid cursor: {why}"),
        }
    }
}

impl std::error::Error for Error {}

// An id is parsed with the error it fails with; it stands here so that
// ids, which errors carry, know nothing of errors.
impl FromStr for EventId {
    type Err = Error;

    fn from_str(text: &str) -> Result<EventId, Error> {
        EventId::parse(text).ok_or(Error::InvalidId)
    }
}
