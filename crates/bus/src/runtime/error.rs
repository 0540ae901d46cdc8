//! What can go wrong setting up a [`RuntimeBridge`](super::RuntimeBridge).

use std::fmt;
use std::io;

/// Why a bridge could not be made or started; it names its bus. Once it
/// runs, the bus going away is not an error to return: the bridge
/// reconnects, says so in the logs and the metrics, and refuses
/// publishes meanwhile (the hub answers them with 503).
#[derive(Debug)]
pub struct Error {
    bus: &'static str,
    kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is out of range; the reason.
    InvalidConfig(&'static str),
    /// The bridge's `start` was called twice.
    AlreadyStarted,
    /// The bridge's thread could not be started.
    Spawn(io::Error),
}

impl Error {
    pub(crate) fn new(bus: &'static str, kind: ErrorKind) -> Error {
        Error { bus, kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The bus (`nats`, `rabbitmq`).
    pub fn bus(&self) -> &'static str {
        self.bus
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bus = self.bus;
        match &self.kind {
            ErrorKind::InvalidConfig(why) => write!(f, "{bus}: {why}"),
            ErrorKind::AlreadyStarted => write!(f, "{bus}: the bridge is already started"),
            ErrorKind::Spawn(e) => write!(f, "{bus}: cannot start the bridge's thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_name_their_bus() {
        let error = Error::new(
            "nats",
            ErrorKind::InvalidConfig("the URL must be nats://HOST:PORT"),
        );
        assert_eq!(error.to_string(), "nats: the URL must be nats://HOST:PORT");
        assert_eq!(error.bus(), "nats");
        assert!(matches!(error.kind(), ErrorKind::InvalidConfig(_)));
        let error = Error::new("rabbitmq", ErrorKind::AlreadyStarted);
        assert_eq!(error.to_string(), "rabbitmq: the bridge is already started");
        assert!(error.source().is_none());
        let error = Error::new("nats", ErrorKind::Spawn(io::Error::other("no threads")));
        assert_eq!(
            error.to_string(),
            "nats: cannot start the bridge's thread: no threads"
        );
        assert!(error.source().is_some());
    }
}
