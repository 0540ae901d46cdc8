//! The framing of a request stream as a server reads it (RFC 9114 §4.1).
//!
//! A request is one HEADERS frame, any number of DATA frames, and
//! optionally one more HEADERS frame holding trailers, after which the
//! stream ends. Frames of unknown and reserved types may come anywhere and
//! are skipped. Anything else — DATA before HEADERS, a frame after the
//! trailers, a control-stream frame, PUSH_PROMISE from a client — is an
//! H3_FRAME_UNEXPECTED.

use crate::frame::{self, Event, Frame, FrameDecoder};
use crate::{Error, ErrorCode, Violation};

/// What a request stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEvent<'a> {
    /// The request's encoded field section, for QPACK.
    Headers(Vec<u8>),
    /// A piece of the body, borrowed from the input.
    Data(&'a [u8]),
    /// The encoded trailer section, for QPACK.
    Trailers(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers,
    Body,
    Done,
}

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
    frames: FrameDecoder,
    phase: Phase,
}

impl RequestStream {
    /// A request stream whose HEADERS frames may be up to `max_payload`
    /// bytes.
    pub fn new(max_payload: usize) -> RequestStream {
        RequestStream {
            frames: FrameDecoder::new(max_payload),
            phase: Phase::Headers,
        }
    }

    /// Whether the request's HEADERS has arrived.
    pub fn has_headers(&self) -> bool {
        self.phase != Phase::Headers
    }

    /// Takes bytes from `src` up to the next event: how many it took and
    /// the event, if any. It returns with no event only when it took all of
    /// `src`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<(usize, Option<RequestEvent<'a>>), Error> {
        let mut used = 0;
        loop {
            let rest = src.get(used..).unwrap_or_default();
            if rest.is_empty() && self.frames.is_at_frame_boundary() {
                return Ok((used, None));
            }
            let (n, event) = self.frames.decode(rest)?;
            used += n;
            let Some(event) = event else {
                return Ok((used, None));
            };
            if let Some(event) = self.apply(event)? {
                return Ok((used, Some(event)));
            }
        }
    }

    fn apply<'a>(&mut self, event: Event<'a>) -> Result<Option<RequestEvent<'a>>, Error> {
        let unexpected = |ty| Error::new(ErrorCode::H3_FRAME_UNEXPECTED, Violation::UnexpectedFrame(ty));
        match event {
            Event::Skipped { .. } => Ok(None),
            Event::DataStart { .. } => match self.phase {
                Phase::Body => Ok(None),
                Phase::Headers | Phase::Done => Err(unexpected(frame::DATA)),
            },
            Event::Data(chunk) => Ok(Some(RequestEvent::Data(chunk))),
            Event::Frame(Frame::Headers(section)) => match self.phase {
                Phase::Headers => {
                    self.phase = Phase::Body;
                    Ok(Some(RequestEvent::Headers(section)))
                }
                Phase::Body => {
                    self.phase = Phase::Done;
                    Ok(Some(RequestEvent::Trailers(section)))
                }
                Phase::Done => Err(unexpected(frame::HEADERS)),
            },
            Event::Frame(other) => Err(unexpected(other.frame_type())),
        }
    }

    /// The client ended the stream: an H3_FRAME_ERROR if it ended inside a
    /// frame, an H3_REQUEST_INCOMPLETE (RFC 9114 §4.1.2) if before the
    /// request's HEADERS.
    pub fn finish(&self) -> Result<(), Error> {
        self.frames.finish()?;
        if self.phase == Phase::Headers {
            return Err(Error::new(
                ErrorCode::H3_REQUEST_INCOMPLETE,
                Violation::RequestWithoutHeaders,
            ));
        }
        Ok(())
    }
}
