//! How a subscriber receives events.

/// How a subscriber receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A WebSocket session: [`Event::ws_frame`](crate::Event::ws_frame).
    WebSocket,
    /// A WebSocket session that gets each event's data alone:
    /// [`Event::ws_raw_frame`](crate::Event::ws_raw_frame).
    RawWebSocket,
    /// A Server-Sent Events stream: [`Event::sse`](crate::Event::sse).
    EventStream,
    /// A long poll: answered once, with [`Event::json`](crate::Event::json).
    Poll,
}
