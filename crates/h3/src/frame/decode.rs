//! Cutting one stream's bytes into frames.

use super::{
    CANCEL_PUSH, DATA, Frame, GOAWAY, HEADERS, MAX_PUSH_ID, PUSH_PROMISE, SETTINGS, is_http2_frame_type,
    is_known_frame_type,
};
use crate::error::{Error, ErrorCode, Violation};
use crate::settings::Settings;
use crate::varint::{self, VarintReader};

/// The largest payload a [`FrameDecoder`] buffers by default for a frame
/// other than DATA: 16 KiB, the field-section limit tether's other HTTP
/// versions use, which a HEADERS frame's encoded section does not exceed.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024;

/// What [`FrameDecoder::decode`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole frame other than DATA.
    Frame(Frame),
    /// The header of a DATA frame: `len` payload bytes follow, handed out
    /// as [`Event::Data`] pieces (none when `len` is 0).
    DataStart {
        /// The payload length.
        len: u64,
    },
    /// A piece of the current DATA frame's payload, borrowed from the
    /// input.
    Data(&'a [u8]),
    /// The header of a frame of an unknown or reserved type, whose payload
    /// is skipped without being buffered.
    Skipped {
        /// The frame type.
        frame_type: u64,
        /// The payload length.
        len: u64,
    },
}

#[derive(Debug, Clone)]
enum State {
    Type,
    Length { frame_type: u64 },
    Data { remaining: u64 },
    Skip { remaining: u64 },
    Buffer { frame_type: u64, len: usize },
}

/// An incremental frame decoder for one stream.
///
/// Feed it the stream's bytes in any pieces; each call to
/// [`FrameDecoder::decode`] takes bytes up to the next event and says how
/// many it took, so the caller loops until the input is used up. It keeps
/// at most one frame's payload (of at most `max_payload` bytes), and then
/// only for frames other than DATA.
///
/// ```
/// use tether_h3::frame::{Event, Frame, FrameDecoder};
///
/// // A HEADERS frame with a 2-byte section, then DATA "hi".
/// let wire = [0x01, 0x02, 0x00, 0x00, 0x00, 0x02, b'h', b'i'];
/// let mut decoder = FrameDecoder::new(1024);
/// let mut events = Vec::new();
/// let mut input = &wire[..];
/// while !input.is_empty() {
///     let (used, event) = decoder.decode(input)?;
///     input = &input[used..];
///     events.extend(event);
/// }
/// assert_eq!(
///     events,
///     [
///         Event::Frame(Frame::Headers(vec![0, 0])),
///         Event::DataStart { len: 2 },
///         Event::Data(b"hi"),
///     ]
/// );
/// assert!(decoder.finish().is_ok());
/// # Ok::<(), tether_h3::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: usize,
    state: State,
    varint: VarintReader,
    buf: Vec<u8>,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl FrameDecoder {
    /// A decoder at the start of a stream that buffers at most
    /// `max_payload` bytes of a frame other than DATA: a longer one is an
    /// H3_EXCESSIVE_LOAD.
    pub fn new(max_payload: usize) -> FrameDecoder {
        FrameDecoder {
            max_payload,
            state: State::Type,
            varint: VarintReader::new(),
            buf: Vec::new(),
        }
    }

    /// Takes bytes from `src` up to the next event: how many it took, and
    /// the event, if one is complete. It returns with no event only when it
    /// took all of `src`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        let mut used = 0;
        loop {
            let rest = src.get(used..).unwrap_or_default();
            match self.state {
                State::Type | State::Length { .. } => {
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let (n, value) = self.varint.feed(rest);
                    used += n;
                    let Some(value) = value else {
                        continue;
                    };
                    if let Some(event) = self.header_field(value)? {
                        return Ok((used, Some(event)));
                    }
                }
                State::Data { remaining } => {
                    if remaining == 0 {
                        self.state = State::Type;
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let (take, left) = split(remaining, rest.len());
                    self.state = State::Data { remaining: left };
                    let chunk = src.get(used..used + take).unwrap_or_default();
                    used += take;
                    if left == 0 {
                        self.state = State::Type;
                    }
                    return Ok((used, Some(Event::Data(chunk))));
                }
                State::Skip { remaining } => {
                    if remaining == 0 {
                        self.state = State::Type;
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok((used, None));
                    }
                    let (take, left) = split(remaining, rest.len());
                    used += take;
                    self.state = State::Skip { remaining: left };
                }
                State::Buffer { frame_type, len } => {
                    let want = len - self.buf.len();
                    let take = want.min(rest.len());
                    self.buf.extend_from_slice(rest.get(..take).unwrap_or_default());
                    used += take;
                    if self.buf.len() < len {
                        return Ok((used, None));
                    }
                    self.state = State::Type;
                    let payload = std::mem::take(&mut self.buf);
                    return Ok((used, Some(Event::Frame(parse(frame_type, payload)?))));
                }
            }
        }
    }

    /// Handles a completed frame type or length.
    fn header_field(&mut self, value: u64) -> Result<Option<Event<'static>>, Error> {
        match self.state {
            State::Type => {
                if is_http2_frame_type(value) {
                    return Err(Error::new(
                        ErrorCode::H3_FRAME_UNEXPECTED,
                        Violation::Http2FrameType(value),
                    ));
                }
                self.state = State::Length { frame_type: value };
                Ok(None)
            }
            State::Length { frame_type } => {
                let len = value;
                if frame_type == DATA {
                    self.state = State::Data { remaining: len };
                    return Ok(Some(Event::DataStart { len }));
                }
                if !is_known_frame_type(frame_type) {
                    self.state = State::Skip { remaining: len };
                    return Ok(Some(Event::Skipped { frame_type, len }));
                }
                let too_large = Error::new(
                    ErrorCode::H3_EXCESSIVE_LOAD,
                    Violation::FrameTooLarge { frame_type, len },
                );
                let len = usize::try_from(len).map_err(|_| too_large)?;
                if len > self.max_payload {
                    return Err(too_large);
                }
                self.buf = Vec::with_capacity(len);
                if len == 0 {
                    self.state = State::Type;
                    return Ok(Some(Event::Frame(parse(frame_type, Vec::new())?)));
                }
                self.state = State::Buffer { frame_type, len };
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Whether the decoder is between frames (or past the header of a
    /// DATA or skipped frame whose payload is complete).
    pub fn is_at_frame_boundary(&self) -> bool {
        match self.state {
            State::Type => self.varint.is_empty(),
            State::Data { remaining } | State::Skip { remaining } => remaining == 0,
            State::Length { .. } | State::Buffer { .. } => false,
        }
    }

    /// The stream ended: an error (H3_FRAME_ERROR, RFC 9114 §7.1) unless
    /// it ended between frames.
    pub fn finish(&self) -> Result<(), Error> {
        if self.is_at_frame_boundary() {
            Ok(())
        } else {
            Err(Error::new(ErrorCode::H3_FRAME_ERROR, Violation::TruncatedFrame))
        }
    }
}

/// How much of `remaining` payload bytes `available` input bytes cover,
/// and what is left.
fn split(remaining: u64, available: usize) -> (usize, u64) {
    let available_u64 = u64::try_from(available).unwrap_or(u64::MAX);
    if remaining <= available_u64 {
        // Fits in usize: it is at most `available`.
        (usize::try_from(remaining).unwrap_or(available), 0)
    } else {
        (available, remaining - available_u64)
    }
}

/// Parses a complete payload of a known type other than DATA.
fn parse(frame_type: u64, payload: Vec<u8>) -> Result<Frame, Error> {
    let layout = Error::new(ErrorCode::H3_FRAME_ERROR, Violation::FrameLayout(frame_type));
    let single = |payload: &[u8]| match varint::decode(payload) {
        Some((value, n)) if n == payload.len() => Ok(value),
        _ => Err(layout),
    };
    Ok(match frame_type {
        HEADERS => Frame::Headers(payload),
        CANCEL_PUSH => Frame::CancelPush(single(&payload)?),
        GOAWAY => Frame::Goaway(single(&payload)?),
        MAX_PUSH_ID => Frame::MaxPushId(single(&payload)?),
        SETTINGS => Frame::Settings(Settings::parse(&payload)?),
        PUSH_PROMISE => {
            let (push_id, n) = varint::decode(&payload).ok_or(layout)?;
            Frame::PushPromise {
                push_id,
                field_section: payload.get(n..).unwrap_or_default().to_vec(),
            }
        }
        _ => {
            return Err(Error::new(
                ErrorCode::H3_FRAME_UNEXPECTED,
                Violation::UnexpectedFrame(frame_type),
            ));
        }
    })
}
