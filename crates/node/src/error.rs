//! The one error type of `tether-node`.

use std::fmt;
use std::io;

/// Why a [`HubNode`](crate::HubNode) could not be set up or stopped
/// serving. Each variant's message is complete; a command prints it after
/// its own name.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// The certificate or its key could not be loaded, or a TLS listener
    /// was asked for without a certificate.
    Tls(String),
    /// The on-disk log ([`Storage::Durable`](crate::Storage::Durable))
    /// could not be opened or recovered.
    Storage(String),
    /// A signal handler (SIGHUP for reloads) could not be installed.
    Signals(io::Error),
    /// The configuration does not hold together, or a part of it (the
    /// hooks, the bus, the demo's secret) could not be set up.
    Config(String),
    /// Binding the port, or serving on it, failed.
    Serve(io::Error),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Tls(e) => write!(f, "TLS: {e}"),
            NodeError::Storage(e) | NodeError::Config(e) => f.write_str(e),
            NodeError::Signals(e) => write!(f, "SIGHUP: {e}"),
            NodeError::Serve(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Signals(e) | NodeError::Serve(e) => Some(e),
            _ => None,
        }
    }
}
