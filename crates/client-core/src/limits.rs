//! The defaults of the clients' limits. Each has a knob on both clients'
//! builders.

use std::time::Duration;

/// The largest response head a client reads (status line and header
/// fields together), for the WebSocket handshake's answer and an event
/// stream's response: 16 KiB, the size of the largest request head a
/// tether server reads.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Redirects followed in one connection attempt of an event stream.
pub const MAX_REDIRECTS: u32 = 20;

/// The EventSource's reconnection time until the stream sets one with
/// `retry:`.
pub const RECONNECTION_TIME: Duration = Duration::from_secs(3);

/// The longest reconnection time a stream's `retry:` may set: a larger
/// value is taken as this one, so that a server cannot park its clients
/// for days with one line.
pub const MAX_RECONNECTION_TIME: Duration = Duration::from_secs(600);

/// How long connecting (TCP, TLS, the request and the response head) may
/// take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
