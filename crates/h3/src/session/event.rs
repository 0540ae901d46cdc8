//! What the client's streams said, as events for the caller.

use tether_h2::connection::Request;
use tether_h2::hpack::Field;

use super::Target;
use crate::error::ErrorCode;
use crate::head::Malformed;
use crate::settings::Settings;
use crate::webtransport::capsule::Close;

/// What the client's streams said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A request's head, checked (RFC 9114 §4.3.1); an extended CONNECT
    /// has `request.protocol`.
    Request {
        /// The request stream.
        stream_id: u64,
        /// The head.
        request: Request,
    },
    /// A piece of the request body.
    Data {
        /// The request stream.
        stream_id: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The request's trailers, checked.
    Trailers {
        /// The request stream.
        stream_id: u64,
        /// The fields.
        fields: Vec<Field>,
    },
    /// The request is complete (its body matched any content-length).
    End {
        /// The request stream.
        stream_id: u64,
    },
    /// The request stream broke a rule (a malformed head, a body that does
    /// not match content-length, an end before the head): reset it and stop
    /// reading it with this code (RFC 9114 §4.1.2). Nothing more comes for
    /// it and the session forgets it. Also a client bidirectional
    /// WebTransport stream to reset: one naming no session
    /// (WT_BUFFERED_STREAM_REJECTED), or one whose session ended
    /// (WT_SESSION_GONE).
    StreamError {
        /// The request stream.
        stream_id: u64,
        /// The code to reset it with.
        code: ErrorCode,
        /// Why, when the head or trailers were malformed.
        malformed: Option<Malformed>,
    },
    /// The head was larger than
    /// [`SessionConfig::max_field_section_size`]: answer 431 (or reset
    /// the stream) and stop reading it; nothing more comes for it.
    ///
    /// [`SessionConfig::max_field_section_size`]: crate::session::SessionConfig::max_field_section_size
    HeadTooLarge {
        /// The request stream.
        stream_id: u64,
    },
    /// The client reset a request stream or stopped reading its response:
    /// whatever serves it can stop. The session forgets the stream.
    Cancelled {
        /// The request stream.
        stream_id: u64,
        /// The client's code.
        code: u64,
    },
    /// A unidirectional stream of a type this server does not use: stop
    /// reading it with this code (RFC 9114 §6.2). Also a client
    /// unidirectional WebTransport stream naming no session
    /// (WT_BUFFERED_STREAM_REJECTED) or whose session ended
    /// (WT_SESSION_GONE).
    StopSending {
        /// The stream.
        stream_id: u64,
        /// H3_STREAM_CREATION_ERROR.
        code: ErrorCode,
    },
    /// The client's SETTINGS.
    Settings(Settings),
    /// The client's GOAWAY: it accepts no push ID from this one on.
    Goaway(u64),
    /// A client stream named a WebTransport session in its first bytes
    /// and belongs to it from now on.
    WebTransportStream {
        /// The QUIC stream.
        stream_id: u64,
        /// The session (its CONNECT stream's ID).
        session_id: u64,
        /// A bidirectional stream (the server may write on it with
        /// [`ServerSession::send_webtransport`]), or a unidirectional one.
        ///
        /// [`ServerSession::send_webtransport`]: crate::session::ServerSession::send_webtransport
        bidirectional: bool,
    },
    /// Raw bytes on a client WebTransport stream.
    WebTransportData {
        /// The QUIC stream.
        stream_id: u64,
        /// The bytes (may be empty when only `fin` is news).
        data: Vec<u8>,
        /// The stream ended after them.
        fin: bool,
    },
    /// The client reset one of its WebTransport streams.
    WebTransportReset {
        /// The QUIC stream.
        stream_id: u64,
        /// The client's code.
        code: u64,
    },
    /// The client stopped reading a WebTransport stream this server writes
    /// on; it is forgotten.
    WebTransportStopped {
        /// The stream.
        target: Target,
        /// The client's code.
        code: u64,
    },
    /// A WebTransport session ended from the client's side: its CONNECT
    /// stream ended or was reset (`close` is `None`), or carried
    /// CLOSE_WEBTRANSPORT_SESSION. Its streams are already reset or
    /// ended (the events say which), its CONNECT stream finished.
    WebTransportClosed {
        /// The session.
        session_id: u64,
        /// The client's code and reason, if it sent them.
        close: Option<Close>,
    },
    /// An HTTP datagram for a live WebTransport session.
    Datagram {
        /// The session.
        session_id: u64,
        /// The payload.
        data: Vec<u8>,
    },
}
