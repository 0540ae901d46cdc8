//! PUSH_PROMISE (RFC 9113 §6.6).

use super::header::{FrameHeader, FrameKind, MAX_STREAM_ID, check_stream_id, flags, write_header};
use super::padding;
use crate::error::{Error, ErrorCode, Misuse, Violation};

/// A PUSH_PROMISE frame: the server reserves a stream for a response it
/// will push. Flags read: END_HEADERS, PADDED.
///
/// Whether push is allowed at all (a server never receives one, a client
/// that disabled it refuses it) is the connection's rule, not the frame's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPromise<'a> {
    /// The stream the promise is made on (never 0).
    pub stream_id: u32,
    /// The stream reserved (never 0, reserved bit cleared).
    pub promised_stream_id: u32,
    /// The field block fragment of the promised request.
    pub fragment: &'a [u8],
    /// END_HEADERS: no CONTINUATION follows.
    pub end_headers: bool,
    /// The Pad Length when PADDED is set.
    pub padding: Option<u8>,
}

impl<'a> PushPromise<'a> {
    pub(crate) fn parse(header: &FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        header.require_stream()?;
        let split = padding::split(header.has(flags::PADDED), payload, 4)?;
        let f = split.fields;
        // `split` gave exactly the 4 bytes asked for.
        let promised_stream_id = <[u8; 4]>::try_from(f).map_or(0, u32::from_be_bytes) & MAX_STREAM_ID;
        if promised_stream_id == 0 {
            return Err(Error::connection(
                ErrorCode::PROTOCOL_ERROR,
                Violation::PromisedStreamIdZero,
            ));
        }
        Ok(Self {
            stream_id: header.stream_id,
            promised_stream_id,
            fragment: split.body,
            end_headers: header.has(flags::END_HEADERS),
            padding: split.padding,
        })
    }

    /// Appends the frame to `out`; the payload must fit in
    /// `max_frame_size`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        check_stream_id(self.stream_id, true)?;
        check_stream_id(self.promised_stream_id, true).map_err(|_| Error::Misuse(Misuse::InvalidStreamId))?;
        let mut f = padding::flag(self.padding);
        if self.end_headers {
            f |= flags::END_HEADERS;
        }
        let len = padding::payload_len(self.padding, 4, self.fragment.len());
        write_header(
            out,
            FrameKind::PushPromise,
            f,
            self.stream_id,
            len,
            max_frame_size,
        )?;
        let promised = self.promised_stream_id.to_be_bytes();
        padding::write(out, self.padding, &promised, self.fragment);
        Ok(())
    }
}
