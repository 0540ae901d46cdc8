//! The frame types (RFC 9114 §7.2, §11.2.1), and which are known,
//! HTTP/2's, or reserved.

/// DATA: a piece of a message's content.
pub const DATA: u64 = 0x00;
/// HEADERS: a QPACK-encoded field section.
pub const HEADERS: u64 = 0x01;
/// CANCEL_PUSH: a push is cancelled.
pub const CANCEL_PUSH: u64 = 0x03;
/// SETTINGS: the sender's configuration, first on its control stream.
pub const SETTINGS: u64 = 0x04;
/// PUSH_PROMISE: a server push is announced on a request stream.
pub const PUSH_PROMISE: u64 = 0x05;
/// GOAWAY: graceful shutdown.
pub const GOAWAY: u64 = 0x07;
/// MAX_PUSH_ID: how many pushes the client allows.
pub const MAX_PUSH_ID: u64 = 0x0d;

/// Whether `frame_type` is one HTTP/2 defines and HTTP/3 reserves (0x02
/// PRIORITY, 0x06 PING, 0x08 WINDOW_UPDATE, 0x09 CONTINUATION): receiving
/// one is an H3_FRAME_UNEXPECTED.
pub const fn is_http2_frame_type(frame_type: u64) -> bool {
    matches!(frame_type, 0x02 | 0x06 | 0x08 | 0x09)
}

/// Whether `frame_type` is reserved for greasing (`0x1f * N + 0x21`, RFC
/// 9114 §7.2.8): such frames carry no meaning and are skipped.
pub const fn is_reserved_frame_type(frame_type: u64) -> bool {
    frame_type >= 0x21 && (frame_type - 0x21).is_multiple_of(0x1f)
}

/// Whether `frame_type` is one this crate parses (all but DATA are
/// buffered).
pub const fn is_known_frame_type(frame_type: u64) -> bool {
    matches!(
        frame_type,
        DATA | HEADERS | CANCEL_PUSH | SETTINGS | PUSH_PROMISE | GOAWAY | MAX_PUSH_ID
    )
}
