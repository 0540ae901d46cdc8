//! What can go wrong setting up the bridge.

use std::fmt;

/// Why the bridge could not be made or started.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting is out of range; the reason.
    InvalidConfig(&'static str),
    /// [`crate::RabbitBridge::start`] was called twice.
    AlreadyStarted,
    /// The bridge's thread could not be started.
    Spawn(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(why) => write!(f, "rabbitmq: {why}"),
            Error::AlreadyStarted => f.write_str("rabbitmq: the bridge is already started"),
            Error::Spawn(e) => write!(f, "rabbitmq: cannot start the bridge's thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(e),
            _ => None,
        }
    }
}
