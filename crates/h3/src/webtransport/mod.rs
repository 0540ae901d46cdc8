//! WebTransport over HTTP/3 (draft-ietf-webtrans-http3) as browsers speak
//! it, and the HTTP datagrams it rides on (RFC 9297).
//!
//! A session is an extended CONNECT with `:protocol = webtransport`; its
//! stream's ID is the session ID. Streams of the session start with a
//! prefix naming it: a unidirectional stream with the type
//! [`UNI_STREAM_TYPE`] then the session ID, a bidirectional one with the
//! signal value [`BIDI_SIGNAL`] then the session ID; what follows is the
//! application's bytes, not HTTP/3 frames. The CONNECT stream itself
//! carries capsules ([`capsule`]); a datagram carries the quarter of the
//! session ID then its payload ([`datagram`]).
//!
//! The server side of all this is in [`crate::session::ServerSession`].

pub mod capsule;
pub mod datagram;

/// The type of a WebTransport unidirectional stream (draft §4.2).
pub const UNI_STREAM_TYPE: u64 = 0x54;

/// The signal value that starts a WebTransport bidirectional stream
/// (WEBTRANSPORT_STREAM, draft §4.3).
pub const BIDI_SIGNAL: u64 = 0x41;

/// The request field a draft-02 client (Chromium's) sends with its
/// CONNECT, valued `1`.
pub const DRAFT02_REQUEST_FIELD: &str = "sec-webtransport-http3-draft02";

/// The response field a draft-02 client checks in the 200 (with
/// [`DRAFT02_RESPONSE_VALUE`]).
pub const DRAFT02_RESPONSE_FIELD: &str = "sec-webtransport-http3-draft";

/// The value of [`DRAFT02_RESPONSE_FIELD`].
pub const DRAFT02_RESPONSE_VALUE: &str = "draft02";

/// The `:protocol` of a WebTransport extended CONNECT.
pub const PROTOCOL: &str = "webtransport";

/// The longest prefix a WebTransport stream starts with: a type or signal
/// and a session ID, each at most an 8-byte variable-length integer.
pub const MAX_PREFIX_LEN: usize = 16;

/// Encodes the prefix of a unidirectional stream of session `session_id`
/// (the server's own, opened by [`crate::session::ServerSession`]).
pub fn encode_uni_prefix(session_id: u64, dst: &mut Vec<u8>) -> Result<(), crate::error::Misuse> {
    crate::varint::encode(UNI_STREAM_TYPE, dst)?;
    crate::varint::encode(session_id, dst)
}
