//! The crate's one error type.

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (no broker, no topic, a bad
    /// mapping): the caller's mistake, found before connecting.
    Config(String),
    /// The Kafka client failed: a broker unreachable, a request refused.
    Kafka(rskafka::client::error::Error),
    /// A connection to the group's coordinator failed, or it timed out.
    Io(std::io::Error),
    /// A broker answered with something this crate cannot read.
    Protocol(String),
    /// A broker refused a group request with this Kafka error code.
    Broker {
        /// What was asked (`FindCoordinator`, `OffsetCommit`...).
        request: &'static str,
        /// The Kafka error code.
        code: i16,
    },
    /// A broker refused this consumer's SASL credentials, or does not
    /// offer its mechanism.
    Authentication(String),
    /// A broker did not answer a request in time (the connection open,
    /// nothing coming back: a partition, or a host gone without a reset).
    Timeout {
        /// What was asked (`Fetch`, `ListOffsets`...).
        request: &'static str,
        /// How long it was given.
        after: std::time::Duration,
    },
    /// A topic to consume is not on the brokers.
    UnknownTopic(String),
    /// The consumer's thread could not start.
    Thread(std::io::Error),
}

impl Error {
    /// Whether the coordinator said the group is rebalancing, or that
    /// this member's generation or id is no longer the group's: the
    /// member joins again.
    pub(crate) fn rebalancing(&self) -> bool {
        matches!(
            self,
            Error::Broker {
                code: ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS,
                ..
            }
        )
    }

    /// Whether the coordinator no longer knows this member's id.
    pub(crate) fn unknown_member(&self) -> bool {
        matches!(
            self,
            Error::Broker {
                code: UNKNOWN_MEMBER_ID,
                ..
            }
        )
    }
}

/// Kafka's codes for a generation that is over.
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(why) => write!(f, "Kafka configuration: {why}"),
            Error::Kafka(e) => write!(f, "Kafka: {e}"),
            Error::Io(e) => write!(f, "Kafka group coordinator: {e}"),
            Error::Protocol(why) => write!(f, "Kafka: {why}"),
            Error::Broker { request, code } => {
                write!(f, "Kafka: {request} refused with error code {code}")
            }
            Error::Authentication(why) => write!(f, "Kafka SASL authentication: {why}"),
            Error::Timeout { request, after } => {
                write!(
                    f,
                    "Kafka: no answer to {request} within {} s",
                    after.as_secs_f64()
                )
            }
            Error::UnknownTopic(topic) => write!(f, "Kafka: no topic {topic} on the brokers"),
            Error::Thread(e) => write!(f, "the Kafka consumer's thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Kafka(e) => Some(e),
            Error::Io(e) | Error::Thread(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rskafka::client::error::Error> for Error {
    fn from(e: rskafka::client::error::Error) -> Error {
        Error::Kafka(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}
