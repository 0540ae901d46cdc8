//! What goes wrong: the alert this side sends when the peer's records
//! break the protocol, or the fatal alert the peer sent.

/// An alert this side sends before it gives up on the connection (its
/// value is the `AlertDescription` of RFC 8446 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alert {
    UnexpectedMessage = 10,
    BadRecordMac = 20,
    RecordOverflow = 22,
    IllegalParameter = 47,
    DecodeError = 50,
    InternalError = 80,
}

/// Why the records cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// The peer broke the protocol: this alert tells it so.
    Send(Alert),
    /// The peer ended the connection with this fatal alert.
    Received(u8),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Send(alert) => write!(f, "TLS: the peer's records are bad ({alert:?})"),
            RecordError::Received(code) => write!(f, "TLS: the peer sent the fatal alert {code}"),
        }
    }
}

impl From<RecordError> for std::io::Error {
    fn from(e: RecordError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    }
}

impl From<Alert> for RecordError {
    fn from(alert: Alert) -> RecordError {
        RecordError::Send(alert)
    }
}
