//! The one error type of the crate.

use std::fmt;
use std::io;

/// What can go wrong when setting up the bridge. Once it runs, Redis
/// going away is not an error to return: the bridge reconnects, says so
/// in the logs and the metrics, and refuses publishes meanwhile (the hub
/// answers them with 503).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be used (malformed, or a scheme the
    /// client does not support). Carries the reason, never the URL, which
    /// may hold a password.
    InvalidUrl(String),
    /// The TLS settings could not be used: a CA, certificate or key file
    /// that cannot be read or parsed, a key that is not the certificate's,
    /// or TLS files given with a URL without TLS. Carries the reason.
    Tls(String),
    /// A setting is out of range (e.g. `max_len` of 0, which would empty
    /// every stream).
    InvalidConfig(&'static str),
    /// [`crate::RedisBridge::start`] was called twice.
    AlreadyStarted,
    /// The bridge's threads could not be started.
    Spawn(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            Error::Tls(why) => write!(f, "Redis over TLS: {why}"),
            Error::InvalidConfig(what) => write!(f, "invalid Redis bridge setting: {what}"),
            Error::AlreadyStarted => f.write_str("the Redis bridge is already started"),
            Error::Spawn(e) => write!(f, "cannot start the Redis bridge's threads: {e}"),
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
