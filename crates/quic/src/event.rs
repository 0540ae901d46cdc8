//! What the server tells its caller about its connections.

use std::net::SocketAddr;

use quinn_proto::ConnectionHandle;
use tether_h3::session::SessionEvent;

/// What happened on the server's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A handshake completed.
    Connected {
        /// The connection.
        conn: ConnectionHandle,
        /// The client's address.
        remote: SocketAddr,
    },
    /// The connection's HTTP/3 session said something: a request, a piece
    /// of body, an end, a stream error (the stream is already reset), a
    /// cancellation (the response is already reset).
    Session {
        /// The connection.
        conn: ConnectionHandle,
        /// What the session said.
        event: SessionEvent,
    },
    /// A response stream that had bytes waiting has taken them all: more
    /// may be sent.
    Writable {
        /// The connection.
        conn: ConnectionHandle,
        /// The request stream.
        stream_id: u64,
    },
    /// The connection is closed (by either side, or timed out); its
    /// streams are gone.
    Closed {
        /// The connection.
        conn: ConnectionHandle,
        /// Why, for the log.
        reason: String,
    },
}

impl ServerEvent {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnectionHandle {
        match self {
            ServerEvent::Connected { conn, .. }
            | ServerEvent::Session { conn, .. }
            | ServerEvent::Writable { conn, .. }
            | ServerEvent::Closed { conn, .. } => *conn,
        }
    }
}
