//! The framing a request and a response share on a request stream (RFC
//! 9114 §4.1): one HEADERS frame (a response may send informational ones
//! first), any number of DATA frames, and optionally one more HEADERS
//! frame holding trailers, after which the stream ends. Frames of unknown
//! and reserved types may come anywhere and are skipped; anything else —
//! DATA before the head, a frame after the trailers, a control-stream
//! frame, a PUSH_PROMISE — is an H3_FRAME_UNEXPECTED.
//!
//! [`crate::request::RequestStream`] and
//! [`crate::response::ResponseStream`] are this, read by a server and by
//! a client.

use crate::error::{Error, ErrorCode};
use crate::frame::{self, Event, Frame, FrameDecoder};

/// What a request or response stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageEvent<'a> {
    /// A head's encoded field section, for QPACK.
    Headers(Vec<u8>),
    /// A piece of the body, borrowed from the input.
    Data(&'a [u8]),
    /// The encoded trailer section, for QPACK.
    Trailers(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Done,
}

/// The reader of one message's frames.
#[derive(Debug, Clone)]
pub(crate) struct MessageFraming {
    frames: FrameDecoder,
    phase: Phase,
}

impl MessageFraming {
    /// A message whose HEADERS frames may be up to `max_payload` bytes.
    pub(crate) fn new(max_payload: usize) -> MessageFraming {
        MessageFraming {
            frames: FrameDecoder::new(max_payload),
            phase: Phase::Head,
        }
    }

    /// Whether the (final) head has arrived.
    pub(crate) fn has_head(&self) -> bool {
        self.phase != Phase::Head
    }

    /// The head just handed out was informational: another head follows,
    /// not the body.
    pub(crate) fn informational(&mut self) {
        if self.phase == Phase::Body {
            self.phase = Phase::Head;
        }
    }

    /// Takes bytes from `src` up to the next event: how many it took and
    /// the event, if any. It returns with no event only when it took all of
    /// `src`.
    pub(crate) fn decode<'a>(&mut self, src: &'a [u8]) -> Result<(usize, Option<MessageEvent<'a>>), Error> {
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

    fn apply<'a>(&mut self, event: Event<'a>) -> Result<Option<MessageEvent<'a>>, Error> {
        let unexpected = |ty| {
            Error::new(
                ErrorCode::H3_FRAME_UNEXPECTED,
                crate::error::Violation::UnexpectedFrame(ty),
            )
        };
        match event {
            Event::Skipped { .. } => Ok(None),
            Event::DataStart { .. } => match self.phase {
                Phase::Body => Ok(None),
                Phase::Head | Phase::Done => Err(unexpected(frame::DATA)),
            },
            Event::Data(chunk) => Ok(Some(MessageEvent::Data(chunk))),
            Event::Frame(Frame::Headers(section)) => match self.phase {
                Phase::Head => {
                    self.phase = Phase::Body;
                    Ok(Some(MessageEvent::Headers(section)))
                }
                Phase::Body => {
                    self.phase = Phase::Done;
                    Ok(Some(MessageEvent::Trailers(section)))
                }
                Phase::Done => Err(unexpected(frame::HEADERS)),
            },
            Event::Frame(other) => Err(unexpected(other.frame_type())),
        }
    }

    /// The stream ended: an H3_FRAME_ERROR if inside a frame, else
    /// `headless` if before the head.
    pub(crate) fn finish(&self, headless: impl FnOnce() -> Error) -> Result<(), Error> {
        self.frames.finish()?;
        if self.phase == Phase::Head {
            return Err(headless());
        }
        Ok(())
    }
}
