//! [`ConfigError`]: what is wrong with a configuration, for
//! [`Config`](crate::config::Config) and [`Endpoint`](crate::endpoint::Endpoint) alike.

use std::fmt;
use std::time::Duration;

use crate::protocol::HookKind;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A hook URL that is not `http://host[:port][/path]`.
    BadUrl {
        /// The URL as given (shown without its user information).
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A timeout of zero or over an hour.
    BadTimeout {
        /// The hook.
        kind: HookKind,
        /// The timeout given.
        timeout: Duration,
    },
    /// A pool size, queue bound or body limit out of range; the text says
    /// which.
    BadSize(&'static str),
    /// A worker thread could not be started.
    Spawn(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadUrl { url, why } => {
                // Never the password of a URL that gives one.
                let url = crate::endpoint::without_userinfo(url);
                write!(f, "hook URL {url:?}: {why}")
            }
            ConfigError::BadTimeout { kind, timeout } => write!(
                f,
                "{} hook timeout {timeout:?}: must be more than zero and at most an hour",
                kind.name()
            ),
            ConfigError::BadSize(why) => f.write_str(why),
            ConfigError::Spawn(why) => write!(f, "cannot start a hook worker thread: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}
