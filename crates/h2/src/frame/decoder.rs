//! Frame boundaries in a byte stream, and the client connection preface.

use super::Frame;
use super::header::{DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, FrameHeader, FrameKind, MAX_FRAME_SIZE_LIMIT};
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// Cuts a byte stream into frames, one whole frame per call.
///
/// The caller keeps the bytes received so far in one buffer and calls
/// [`FrameDecoder::decode`] on it; each frame borrows its payload from that
/// buffer. A frame longer than our SETTINGS_MAX_FRAME_SIZE is refused as
/// soon as its 9-octet header is there, so no one buffers it.
///
/// Beyond each frame type's own rules, the decoder checks what needs the
/// frames in order: a field block (HEADERS or PUSH_PROMISE without
/// END_HEADERS, then CONTINUATION frames) is not interrupted by any other
/// frame, unknown types included, nor continued on another stream, and no
/// CONTINUATION comes outside one (§4.3, §6.10).
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: u32,
    /// The stream whose field block awaits a CONTINUATION.
    field_block: Option<u32>,
    /// The connection error that ended decoding.
    failed: Option<Error>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder for a connection whose SETTINGS_MAX_FRAME_SIZE is the
    /// default, 16384.
    pub const fn new() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            field_block: None,
            failed: None,
        }
    }

    /// Sets the largest frame payload accepted: the SETTINGS_MAX_FRAME_SIZE
    /// we advertised, once the peer has acknowledged it. Must be within
    /// 16384..=16777215.
    pub fn set_max_frame_size(&mut self, max: u32) -> Result<(), Error> {
        if !(DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&max) {
            return Err(Error::Misuse(Misuse::MaxFrameSizeOutOfRange));
        }
        self.max_frame_size = max;
        Ok(())
    }

    /// The largest frame payload accepted.
    pub const fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// The stream whose field block is still open (a CONTINUATION on it
    /// must come next), if any.
    pub const fn open_field_block(&self) -> Option<u32> {
        self.field_block
    }

    /// Decodes the frame at the start of `input`.
    ///
    /// Returns how many bytes the caller may drop from the front of its
    /// buffer, and:
    /// - `Ok(Some(frame))`: a whole frame, which took the bytes returned;
    /// - `Ok(None)`: the frame is not all there yet (0 bytes taken): call
    ///   again with the same bytes and more;
    /// - `Err(e)` with a stream error ([`Error::Stream`]): the frame's
    ///   bytes are taken, the stream is to be reset, and decoding goes on;
    /// - `Err(e)` with a connection error: decoding is over (0 bytes
    ///   taken), and every later call returns the same error.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> (usize, Result<Option<Frame<'a>>, Error>) {
        if let Some(error) = self.failed {
            return (0, Err(error));
        }
        let Some(header) = FrameHeader::decode(input) else {
            return (0, Ok(None));
        };
        if let Err(error) = self.check_header(&header) {
            self.failed = Some(error);
            return (0, Err(error));
        }
        // At most 9 + 2^24-1: no overflow even with a 32-bit usize.
        let total = FRAME_HEADER_LEN + header.length as usize;
        let Some(payload) = input.get(FRAME_HEADER_LEN..total) else {
            return (0, Ok(None));
        };
        match Frame::parse(header, payload) {
            Ok(frame) => {
                match frame {
                    Frame::Headers(h) if !h.end_headers => self.field_block = Some(h.stream_id),
                    Frame::PushPromise(p) if !p.end_headers => self.field_block = Some(p.stream_id),
                    Frame::Continuation(c) if c.end_headers => self.field_block = None,
                    _ => {}
                }
                (total, Ok(Some(frame)))
            }
            Err(error @ Error::Stream { .. }) => (total, Err(error)),
            Err(error) => {
                self.failed = Some(error);
                (0, Err(error))
            }
        }
    }

    /// The checks that need only the header, done before waiting for the
    /// payload.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Error> {
        if header.length > self.max_frame_size {
            return Err(Error::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                Violation::FrameTooLarge,
            ));
        }
        let is_continuation = header.kind == FrameKind::Continuation;
        match self.field_block {
            Some(stream) if !is_continuation || header.stream_id != stream => Err(Error::connection(
                ErrorCode::PROTOCOL_ERROR,
                Violation::ExpectedContinuation(stream),
            )),
            None if is_continuation => Err(Error::connection(
                ErrorCode::PROTOCOL_ERROR,
                Violation::UnexpectedContinuation,
            )),
            _ => Ok(()),
        }
    }
}

/// The client connection preface (RFC 9113 §3.4), which a client sends
/// before its first frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Checks the client connection preface as its bytes arrive, and says "not
/// HTTP/2" at the first byte that differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefaceMatcher {
    matched: usize,
    failed: Option<usize>,
}

impl PrefaceMatcher {
    /// A matcher that has seen nothing yet.
    pub const fn new() -> Self {
        Self {
            matched: 0,
            failed: None,
        }
    }

    /// Checks the next bytes of the stream. Returns `Ok(None)` when all of
    /// `input` matched and more of the preface is due, `Ok(Some(n))` when
    /// the preface ended after `n` bytes of `input` (the rest is frames),
    /// and [`Error::NotHttp2`] at the first wrong byte (then again on every
    /// later call).
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<usize>, Error> {
        if let Some(offset) = self.failed {
            return Err(Error::NotHttp2 { offset });
        }
        let want = PREFACE.get(self.matched..).unwrap_or_default();
        let n = want.len().min(input.len());
        if let Some(i) = input.iter().zip(want).position(|(a, b)| a != b) {
            let offset = self.matched + i;
            self.failed = Some(offset);
            return Err(Error::NotHttp2 { offset });
        }
        self.matched += n;
        Ok(self.is_complete().then_some(n))
    }

    /// Whether the whole preface has been seen.
    pub const fn is_complete(&self) -> bool {
        self.matched == PREFACE.len()
    }
}
