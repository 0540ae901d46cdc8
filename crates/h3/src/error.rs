//! HTTP/3 and QPACK error codes (RFC 9114 §8.1, RFC 9204 §6) and the error
//! type of this crate.

use core::fmt;

/// An HTTP/3 or QPACK application error code, as carried by QUIC's
/// CONNECTION_CLOSE, RESET_STREAM and STOP_SENDING frames.
///
/// The codes this crate sends or recognises; a code received from a peer
/// that is not one of them (such as a reserved `0x1f * N + 0x21` code)
/// has no variant and [`ErrorCode::from_value`] gives `None`: RFC 9114 §9
/// says such a code triggers no special behavior, so the caller keeps the
/// raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
// The names the RFCs give, so that logs and the RFC text read alike.
#[allow(non_camel_case_types)]
pub enum ErrorCode {
    /// 0x100: no error; a graceful close.
    H3_NO_ERROR,
    /// 0x101: a protocol error that no more specific code covers.
    H3_GENERAL_PROTOCOL_ERROR,
    /// 0x102: the endpoint failed on its own.
    H3_INTERNAL_ERROR,
    /// 0x103: the peer created a stream it may not create.
    H3_STREAM_CREATION_ERROR,
    /// 0x104: a stream the connection needs was closed or reset.
    H3_CLOSED_CRITICAL_STREAM,
    /// 0x105: a frame not allowed in the current state or on this stream.
    H3_FRAME_UNEXPECTED,
    /// 0x106: a frame whose layout or size is wrong.
    H3_FRAME_ERROR,
    /// 0x107: the peer generates excessive load.
    H3_EXCESSIVE_LOAD,
    /// 0x108: a stream or push ID used wrongly.
    H3_ID_ERROR,
    /// 0x109: a SETTINGS payload that breaks its rules.
    H3_SETTINGS_ERROR,
    /// 0x10a: the control stream did not start with SETTINGS.
    H3_MISSING_SETTINGS,
    /// 0x10b: the request was refused before any processing.
    H3_REQUEST_REJECTED,
    /// 0x10c: the request or its response is no longer needed.
    H3_REQUEST_CANCELLED,
    /// 0x10d: the stream ended before the request was complete.
    H3_REQUEST_INCOMPLETE,
    /// 0x10e: a malformed HTTP message.
    H3_MESSAGE_ERROR,
    /// 0x10f: the tunnel of a CONNECT request was reset or closed.
    H3_CONNECT_ERROR,
    /// 0x110: the request must be retried over HTTP/1.1.
    H3_VERSION_FALLBACK,
    /// 0x200: a field section could not be decoded.
    QPACK_DECOMPRESSION_FAILED,
    /// 0x201: an encoder-stream instruction could not be applied.
    QPACK_ENCODER_STREAM_ERROR,
    /// 0x202: a decoder-stream instruction could not be applied.
    QPACK_DECODER_STREAM_ERROR,
    /// 0x33: an HTTP datagram that cannot be parsed (RFC 9297 §2.1).
    H3_DATAGRAM_ERROR,
    /// 0x3994bd84: a WebTransport stream whose session is not (or no
    /// longer) there (draft-ietf-webtrans-http3 §4.6).
    WT_BUFFERED_STREAM_REJECTED,
    /// 0x170d7b68: a WebTransport stream reset because its session ended
    /// (draft-ietf-webtrans-http3 §6).
    WT_SESSION_GONE,
}

/// Every code with its wire value, in order.
const CODES: [(ErrorCode, u64); 23] = [
    (ErrorCode::H3_NO_ERROR, 0x100),
    (ErrorCode::H3_GENERAL_PROTOCOL_ERROR, 0x101),
    (ErrorCode::H3_INTERNAL_ERROR, 0x102),
    (ErrorCode::H3_STREAM_CREATION_ERROR, 0x103),
    (ErrorCode::H3_CLOSED_CRITICAL_STREAM, 0x104),
    (ErrorCode::H3_FRAME_UNEXPECTED, 0x105),
    (ErrorCode::H3_FRAME_ERROR, 0x106),
    (ErrorCode::H3_EXCESSIVE_LOAD, 0x107),
    (ErrorCode::H3_ID_ERROR, 0x108),
    (ErrorCode::H3_SETTINGS_ERROR, 0x109),
    (ErrorCode::H3_MISSING_SETTINGS, 0x10a),
    (ErrorCode::H3_REQUEST_REJECTED, 0x10b),
    (ErrorCode::H3_REQUEST_CANCELLED, 0x10c),
    (ErrorCode::H3_REQUEST_INCOMPLETE, 0x10d),
    (ErrorCode::H3_MESSAGE_ERROR, 0x10e),
    (ErrorCode::H3_CONNECT_ERROR, 0x10f),
    (ErrorCode::H3_VERSION_FALLBACK, 0x110),
    (ErrorCode::QPACK_DECOMPRESSION_FAILED, 0x200),
    (ErrorCode::QPACK_ENCODER_STREAM_ERROR, 0x201),
    (ErrorCode::QPACK_DECODER_STREAM_ERROR, 0x202),
    (ErrorCode::H3_DATAGRAM_ERROR, 0x33),
    (ErrorCode::WT_BUFFERED_STREAM_REJECTED, 0x3994_bd84),
    (ErrorCode::WT_SESSION_GONE, 0x170d_7b68),
];

impl ErrorCode {
    /// The code's value on the wire.
    pub fn value(self) -> u64 {
        CODES
            .iter()
            .find(|(code, _)| *code == self)
            .map_or(0x102, |&(_, value)| value)
    }

    /// The code with this wire value, or `None` for a value this crate does
    /// not define (RFC 9114 §9: an unknown code triggers no special
    /// behavior).
    pub fn from_value(value: u64) -> Option<ErrorCode> {
        CODES.iter().find(|(_, v)| *v == value).map(|&(code, _)| code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which rule the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A frame type that HTTP/2 defines and HTTP/3 reserves (0x02, 0x06,
    /// 0x08, 0x09; RFC 9114 §7.2.8).
    Http2FrameType(u64),
    /// A frame of this type where it is not allowed: on this stream, or in
    /// this state of it.
    UnexpectedFrame(u64),
    /// A frame whose payload is larger than this decoder buffers.
    FrameTooLarge {
        /// The frame type.
        frame_type: u64,
        /// The announced payload length.
        len: u64,
    },
    /// A frame whose payload does not hold exactly its fields.
    FrameLayout(u64),
    /// The stream ended inside a frame, or inside a stream type.
    TruncatedFrame,
    /// The control stream's first frame is not SETTINGS.
    MissingSettings,
    /// A setting identifier that appears twice in one SETTINGS frame.
    DuplicateSetting(u64),
    /// A setting identifier that HTTP/2 defines and HTTP/3 reserves (0x00,
    /// 0x02 to 0x05; RFC 9114 §7.2.4.1).
    Http2Setting(u64),
    /// A setting with a value outside its range (the identifier is given).
    InvalidSettingValue(u64),
    /// A second control, QPACK encoder or QPACK decoder stream; the stream
    /// type is given.
    DuplicateStream(u64),
    /// A push stream opened by a client (only servers push).
    PushStreamFromClient,
    /// A control or QPACK stream was closed or reset; the stream type is
    /// given.
    CriticalStreamClosed(u64),
    /// A GOAWAY identifier above an earlier one, or a stream ID that is not
    /// a client-initiated bidirectional stream.
    InvalidGoawayId(u64),
    /// A MAX_PUSH_ID below an earlier one.
    MaxPushIdDecreased(u64),
    /// A request stream ended before its HEADERS frame.
    RequestWithoutHeaders,
    /// A QPACK representation or instruction ends before its last field.
    QpackTruncated,
    /// A QPACK integer larger than this decoder accepts (`u32::MAX`).
    QpackIntegerOverflow,
    /// A static table index past its 99 entries.
    InvalidStaticIndex(u64),
    /// A dynamic table reference to an entry that does not exist: not yet
    /// inserted, evicted, or at or past the Required Insert Count.
    InvalidDynamicIndex(u64),
    /// A Required Insert Count that no conformant encoder produces, or one
    /// that the field section's references do not need exactly.
    InvalidRequiredInsertCount(u64),
    /// A negative Base (RFC 9204 §4.5.1.2).
    InvalidBase,
    /// More streams blocked on the dynamic table than we allow
    /// (SETTINGS_QPACK_BLOCKED_STREAMS).
    TooManyBlockedStreams,
    /// A decoded field section larger than our limit (name + value + 32 per
    /// field line, as SETTINGS_MAX_FIELD_SECTION_SIZE counts).
    FieldSectionTooLarge,
    /// A string literal longer, before Huffman decoding, than this decoder
    /// accepts.
    StringTooLong(u64),
    /// A Huffman-coded string containing EOS.
    HuffmanEos,
    /// A Huffman-coded string whose padding is longer than 7 bits or not
    /// all ones.
    HuffmanPadding,
    /// A dynamic table capacity above the one we advertised.
    TableCapacityTooLarge {
        /// The capacity asked for.
        capacity: u64,
        /// SETTINGS_QPACK_MAX_TABLE_CAPACITY as we sent it.
        max: u64,
    },
    /// An entry larger than the table's capacity.
    EntryTooLarge(u64),
    /// A decoder-stream instruction about a dynamic table our encoder does
    /// not use, or an increment of 0.
    InvalidDecoderInstruction,
    /// A second field section for a stream whose first one is still
    /// blocked (the caller's order, reported so it cannot go unnoticed).
    StreamAlreadyBlocked(u64),
    /// Bytes on a stream ID that only this server may open (a
    /// server-initiated one): the QUIC layer should have refused it.
    ServerStreamFromPeer(u64),
    /// An HTTP datagram without a whole quarter stream ID, or with one
    /// past the largest client bidirectional stream ID (RFC 9297 §2.1).
    MalformedDatagram,
    /// A WebTransport capsule on a session's CONNECT stream that breaks
    /// its layout (a CLOSE_WEBTRANSPORT_SESSION shorter than its code or
    /// with a reason past 1024 bytes or not UTF-8), or a stream that ends
    /// inside one.
    MalformedCapsule,
    /// A response stream ended before its final HEADERS frame.
    ResponseWithoutHeaders,
    /// A response head without a valid `:status` (three digits), or with a
    /// request pseudo-header (RFC 9114 §4.3.2).
    MalformedResponse,
    /// A bidirectional stream opened by a server (RFC 9114 §6.1: only
    /// clients open them); the stream ID is given.
    BidiStreamFromServer(u64),
}

/// How the caller misused an encoder (not something the peer did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// A value above 2^62-1 has no variable-length encoding.
    VarintTooLarge(u64),
    /// A frame type that HTTP/3 defines (or HTTP/2 reserves) given as an
    /// unknown frame to encode.
    KnownFrameType(u64),
    /// An unknown setting whose identifier is a known or reserved one.
    KnownSetting(u64),
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "misuse: {self:?}")
    }
}

impl std::error::Error for Misuse {}

/// A rule the peer broke, with the code to close the connection with.
///
/// Every error in this crate is a connection error (RFC 9114 §8): send
/// CONNECTION_CLOSE with [`Error::code`] and stop using the connection's
/// state, whose QPACK tables can no longer be trusted to match the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The code to close the connection with.
    pub code: ErrorCode,
    /// The rule that was broken.
    pub violation: Violation,
}

impl Error {
    pub(crate) const fn new(code: ErrorCode, violation: Violation) -> Error {
        Error { code, violation }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection error {}: {:?}", self.code, self.violation)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_rfc_values() {
        assert_eq!(ErrorCode::H3_NO_ERROR.value(), 0x100);
        assert_eq!(ErrorCode::H3_FRAME_UNEXPECTED.value(), 0x105);
        assert_eq!(ErrorCode::H3_MISSING_SETTINGS.value(), 0x10a);
        assert_eq!(ErrorCode::H3_VERSION_FALLBACK.value(), 0x110);
        assert_eq!(ErrorCode::QPACK_DECOMPRESSION_FAILED.value(), 0x200);
        assert_eq!(ErrorCode::QPACK_DECODER_STREAM_ERROR.value(), 0x202);
        // 0x100..=0x110 are contiguous and each maps back.
        for value in (0x100..=0x110).chain(0x200..=0x202) {
            let code = ErrorCode::from_value(value).unwrap();
            assert_eq!(code.value(), value);
        }
        assert_eq!(ErrorCode::from_value(0x111), None);
        assert_eq!(ErrorCode::H3_DATAGRAM_ERROR.value(), 0x33);
        assert_eq!(ErrorCode::WT_SESSION_GONE.value(), 0x170d_7b68);
        assert_eq!(
            ErrorCode::from_value(0x3994_bd84),
            Some(ErrorCode::WT_BUFFERED_STREAM_REJECTED)
        );
        assert_eq!(ErrorCode::from_value(0x21), None);
        let e = Error::new(ErrorCode::H3_FRAME_ERROR, Violation::TruncatedFrame);
        assert!(e.to_string().contains("H3_FRAME_ERROR"));
    }
}
