//! The limits and features of a session.

use crate::{frame, qpack};

/// The limits and features of a [`ServerSession`].
///
/// [`ServerSession`]: crate::session::ServerSession
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The largest request head or trailer section (name + value + 32 per
    /// field), sent as SETTINGS_MAX_FIELD_SECTION_SIZE; a larger one is
    /// [`SessionEvent::HeadTooLarge`].
    ///
    /// [`SessionEvent::HeadTooLarge`]: crate::session::SessionEvent::HeadTooLarge
    pub max_field_section_size: usize,
    /// The largest frame other than DATA that is buffered (a HEADERS
    /// frame's encoded section, a control frame); a larger one is a
    /// connection error H3_EXCESSIVE_LOAD.
    pub max_frame_payload: usize,
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY: the dynamic table the client's
    /// encoder may use.
    pub qpack_max_table_capacity: u64,
    /// SETTINGS_QPACK_BLOCKED_STREAMS.
    pub qpack_blocked_streams: u64,
    /// The bytes kept for one request stream while its field section
    /// waits for the encoder stream; past it the stream is reset with
    /// H3_EXCESSIVE_LOAD.
    pub max_blocked_bytes: usize,
    /// Send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and accept extended
    /// CONNECT (RFC 9220) requests.
    pub enable_connect_protocol: bool,
    /// WebTransport sessions a client may hold at once on the connection
    /// (pending an answer or live); a CONNECT for one more is reset with
    /// H3_REQUEST_REJECTED. 0 (the default) serves no WebTransport; above
    /// 0, with `enable_connect_protocol`, SETTINGS also carry
    /// SETTINGS_H3_DATAGRAM = 1, SETTINGS_ENABLE_WEBTRANSPORT = 1 and
    /// this count under both codepoints of the session count.
    pub max_webtransport_sessions: u64,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            max_field_section_size: qpack::DEFAULT_MAX_FIELD_SECTION_SIZE,
            max_frame_payload: frame::DEFAULT_MAX_PAYLOAD,
            qpack_max_table_capacity: 4096,
            qpack_blocked_streams: 16,
            max_blocked_bytes: 64 * 1024,
            enable_connect_protocol: false,
            max_webtransport_sessions: 0,
        }
    }
}
