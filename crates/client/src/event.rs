//! What a WebSocket client reports, whichever client it is.

use tether_ws::{CloseFrame, ControlPayload, Message};

/// What a WebSocket client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The opening handshake completed. The non-blocking client reports it
    /// once; the blocking client (whose `connect` returns only once open)
    /// reports it after each automatic reconnection.
    Open,
    /// A text or binary message.
    Message(Message),
    /// A ping from the server; the pong has already been sent.
    Ping(ControlPayload),
    /// A pong (the answer to our ping, or a one-way heartbeat).
    Pong(ControlPayload),
    /// The close handshake is over, whichever side started it: the
    /// server's close frame. The connection is closed.
    Closed(CloseFrame),
}
