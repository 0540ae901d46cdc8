//! CONTINUATION (RFC 9113 §6.10).

use super::header::{FrameHeader, FrameKind, check_stream_id, flags, write_header};
use crate::error::Error;

/// A CONTINUATION frame: the next piece of a field block. Flags read:
/// END_HEADERS. That it follows a HEADERS or PUSH_PROMISE on the same
/// stream is checked by [`FrameDecoder`](super::FrameDecoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation<'a> {
    /// The stream (never 0).
    pub stream_id: u32,
    /// The field block fragment, borrowed from the input.
    pub fragment: &'a [u8],
    /// END_HEADERS: the field block ends here.
    pub end_headers: bool,
}

impl<'a> Continuation<'a> {
    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_stream()?;
        Ok(Self {
            stream_id: header.stream_id,
            fragment: payload,
            end_headers: header.has(flags::END_HEADERS),
        })
    }

    /// Appends the frame to `out`; the fragment must fit in
    /// `max_frame_size`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        let f = if self.end_headers { flags::END_HEADERS } else { 0 };
        let len = self.fragment.len();
        write_header(
            out,
            FrameKind::Continuation,
            f,
            self.stream_id,
            len,
            max_frame_size,
        )?;
        out.extend_from_slice(self.fragment);
        Ok(())
    }
}
