//! What a [`QuicServer`](crate::server::QuicServer) counts: datagrams and bytes each way,
//! handshakes, Retries and refusals, and why connections ended.

use quinn_proto::{ConnectionError, TransportErrorCode};
use tether_h3::ErrorCode;

/// A server's counters since it was made (each only grows), for a
/// metrics page: see [`QuicServer::stats`](crate::server::QuicServer::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuicStats {
    /// Datagrams handed to [`QuicServer::handle_datagram`](crate::server::QuicServer::handle_datagram).
    pub datagrams_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams given out by [`QuicServer::poll_transmit`](crate::server::QuicServer::poll_transmit).
    pub datagrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// New clients sent a Retry (address validation under load).
    pub retries: u64,
    /// New clients refused at [`QuicConfig::max_connections`](crate::config::QuicConfig::max_connections),
    /// [`QuicConfig::max_half_open_per_source`](crate::config::QuicConfig::max_half_open_per_source) or
    /// [`QuicConfig::max_half_open`](crate::config::QuicConfig::max_half_open).
    pub refused: u64,
    /// Connections dropped at the idle timeout.
    pub closed_idle: u64,
    /// Handshakes closed at [`QuicConfig::handshake_timeout`](crate::config::QuicConfig::handshake_timeout).
    pub closed_handshake_timeout: u64,
    /// Connections ended by an error, either side's (a protocol
    /// violation, a stateless reset, a close with an error code).
    pub closed_error: u64,
    /// Connections closed without an error (H3_NO_ERROR or NO_ERROR by
    /// either side, the server going away).
    pub closed_normally: u64,
    /// Of [`QuicStats::refused`], those refused because their source, or
    /// the server, had as many handshakes in progress as it may.
    pub refused_half_open: u64,
}

/// Why a connection ended, as [`QuicStats`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCause {
    IdleTimeout,
    HandshakeTimeout,
    Error,
    Normal,
}

impl CloseCause {
    /// The cause quinn-proto's reason for a lost connection names; `None`
    /// for the server's own close, whose cause was set when it closed.
    pub(crate) fn of(error: &ConnectionError) -> Option<CloseCause> {
        Some(match error {
            ConnectionError::TimedOut => CloseCause::IdleTimeout,
            ConnectionError::LocallyClosed => return None,
            ConnectionError::ApplicationClosed(close)
                if close.error_code.into_inner() == ErrorCode::H3_NO_ERROR.value() =>
            {
                CloseCause::Normal
            }
            ConnectionError::ConnectionClosed(close) if close.error_code == TransportErrorCode::NO_ERROR => {
                CloseCause::Normal
            }
            _ => CloseCause::Error,
        })
    }
}

impl QuicStats {
    /// Counts a connection's end.
    pub(crate) fn closed(&mut self, cause: CloseCause) {
        let counter = match cause {
            CloseCause::IdleTimeout => &mut self.closed_idle,
            CloseCause::HandshakeTimeout => &mut self.closed_handshake_timeout,
            CloseCause::Error => &mut self.closed_error,
            CloseCause::Normal => &mut self.closed_normally,
        };
        *counter += 1;
    }
}
