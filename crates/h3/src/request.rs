//! The framing of a request stream as a server reads it (RFC 9114 §4.1).
//!
//! A request is one HEADERS frame, any number of DATA frames, and
//! optionally one more HEADERS frame holding trailers, after which the
//! stream ends. Frames of unknown and reserved types may come anywhere and
//! are skipped. Anything else — DATA before HEADERS, a frame after the
//! trailers, a control-stream frame, PUSH_PROMISE from a client — is an
//! H3_FRAME_UNEXPECTED.

use crate::error::{Error, ErrorCode, Violation};
use crate::message::{MessageEvent, MessageFraming};

/// What a request stream carries: the request's encoded field section,
/// pieces of its body, its encoded trailer section.
pub type RequestEvent<'a> = MessageEvent<'a>;

/// The server's reader of one request stream.
///
/// ```
/// use tether_h3::request::{RequestEvent, RequestStream};
/// use tether_h3::ErrorCode;
///
/// let mut stream = RequestStream::new(1024);
/// // DATA first is refused.
/// let err = stream.decode(&[0x00, 0x01, b'x']).unwrap_err();
/// assert_eq!(err.code, ErrorCode::H3_FRAME_UNEXPECTED);
///
/// let mut stream = RequestStream::new(1024);
/// let (used, event) = stream.decode(&[0x01, 0x02, 0x00, 0x00])?;
/// assert_eq!((used, event), (4, Some(RequestEvent::Headers(vec![0, 0]))));
/// stream.finish()?;
/// # Ok::<(), tether_h3::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestStream {
    framing: MessageFraming,
}

impl RequestStream {
    /// A request stream whose HEADERS frames may be up to `max_payload`
    /// bytes.
    pub fn new(max_payload: usize) -> RequestStream {
        RequestStream {
            framing: MessageFraming::new(max_payload),
        }
    }

    /// Whether the request's HEADERS has arrived.
    pub fn has_headers(&self) -> bool {
        self.framing.has_head()
    }

    /// Takes bytes from `src` up to the next event: how many it took and
    /// the event, if any. It returns with no event only when it took all of
    /// `src`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<(usize, Option<RequestEvent<'a>>), Error> {
        self.framing.decode(src)
    }

    /// The client ended the stream: an H3_FRAME_ERROR if it ended inside a
    /// frame, an H3_REQUEST_INCOMPLETE (RFC 9114 §4.1.2) if before the
    /// request's HEADERS.
    pub fn finish(&self) -> Result<(), Error> {
        self.framing
            .finish(|| Error::new(ErrorCode::H3_REQUEST_INCOMPLETE, Violation::RequestWithoutHeaders))
    }
}
