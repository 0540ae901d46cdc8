//! HTTP/2 frames (RFC 9113 §4 and §6): the frame header, one typed frame per
//! frame type with its parser and encoder, SETTINGS values (with RFC 8441's
//! SETTINGS_ENABLE_CONNECT_PROTOCOL), and an incremental [`FrameDecoder`]
//! with the client preface check.
//!
//! Decoded frames borrow their payload from the input. Each parser enforces
//! its frame type's rules and reports a breach as [`Error::Connection`] or
//! [`Error::Stream`] with the code to send. Encoders append to a `Vec<u8>`,
//! split nothing, and refuse (appending nothing) a frame larger than the
//! maximum frame size they are given.
//!
//! ```
//! use tether_h2::frame::{Frame, FrameDecoder, Headers, Setting, encode_settings};
//!
//! let mut wire = Vec::new();
//! let settings = [Setting::EnableConnectProtocol(true), Setting::MaxConcurrentStreams(100)];
//! encode_settings(&mut wire, &settings, 16_384)?;
//! let mut headers = Headers::new(1, b"\x82\x84\x86"); // an HPACK field block
//! headers.end_stream = true;
//! headers.encode(&mut wire, 16_384)?;
//!
//! let mut decoder = FrameDecoder::new();
//! let (used, frame) = decoder.decode(&wire);
//! let Some(Frame::Settings(s)) = frame? else { unreachable!() };
//! assert_eq!(s.iter().collect::<Vec<_>>(), settings);
//! let (rest, frame) = decoder.decode(&wire[used..]);
//! assert_eq!(frame?, Some(Frame::Headers(headers)));
//! assert_eq!(used + rest, wire.len());
//! // Nothing left: the decoder asks for more.
//! assert_eq!(decoder.decode(&[]), (0, Ok(None)));
//! # Ok::<(), tether_h2::Error>(())
//! ```

mod continuation;
mod data;
mod decoder;
mod goaway;
mod header;
mod headers;
mod padding;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use decoder::{FrameDecoder, PREFACE, PrefaceMatcher};
pub use goaway::GoAway;
pub use header::{
    DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, FrameHeader, FrameKind, MAX_FRAME_SIZE_LIMIT, MAX_STREAM_ID,
    flags,
};
pub use headers::Headers;
pub use ping::Ping;
pub use priority::{Priority, StreamDependency};
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{Setting, Settings, SettingsFrame, encode_settings, encode_settings_ack};
pub use window_update::{MAX_WINDOW_SIZE, WindowUpdate};

use crate::error::{Error, Misuse};
use header::write_header;

/// A frame of a type RFC 9113 does not define, kept whole so that the
/// connection can ignore it (§4.1, §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFrame<'a> {
    /// The type, 0xa or above.
    pub kind: u8,
    /// The flags as received.
    pub flags: u8,
    /// The stream identifier (reserved bit cleared).
    pub stream_id: u32,
    /// The payload, borrowed from the input.
    pub payload: &'a [u8],
}

impl UnknownFrame<'_> {
    /// Appends the frame to `out` (an extension frame to send); the type
    /// must be one RFC 9113 does not define and the payload must fit in
    /// `max_frame_size`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        let FrameKind::Unknown(kind) = FrameKind::from(self.kind) else {
            return Err(Error::Misuse(Misuse::KnownFrameType));
        };
        if self.stream_id > MAX_STREAM_ID {
            return Err(Error::Misuse(Misuse::InvalidStreamId));
        }
        let len = self.payload.len();
        write_header(
            out,
            FrameKind::Unknown(kind),
            self.flags,
            self.stream_id,
            len,
            max_frame_size,
        )?;
        out.extend_from_slice(self.payload);
        Ok(())
    }
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA.
    Data(Data<'a>),
    /// HEADERS.
    Headers(Headers<'a>),
    /// PRIORITY.
    Priority(Priority),
    /// RST_STREAM.
    RstStream(RstStream),
    /// SETTINGS.
    Settings(SettingsFrame<'a>),
    /// PUSH_PROMISE.
    PushPromise(PushPromise<'a>),
    /// PING.
    Ping(Ping),
    /// GOAWAY.
    GoAway(GoAway<'a>),
    /// WINDOW_UPDATE.
    WindowUpdate(WindowUpdate),
    /// CONTINUATION.
    Continuation(Continuation<'a>),
    /// A type this crate does not know, to be ignored.
    Unknown(UnknownFrame<'a>),
}

impl<'a> Frame<'a> {
    /// Parses one frame from its header and its payload (which must be
    /// `header.length` bytes), applying the rules of its type. Rules that
    /// need the frames before it are [`FrameDecoder`]'s.
    pub fn parse(header: FrameHeader, payload: &'a [u8]) -> Result<Self, Error> {
        if usize::try_from(header.length) != Ok(payload.len()) {
            return Err(Error::Misuse(Misuse::LengthMismatch));
        }
        let h = &header;
        Ok(match header.kind {
            FrameKind::Data => Self::Data(Data::parse(h, payload)?),
            FrameKind::Headers => Self::Headers(Headers::parse(h, payload)?),
            FrameKind::Priority => Self::Priority(Priority::parse(h, payload)?),
            FrameKind::RstStream => Self::RstStream(RstStream::parse(h, payload)?),
            FrameKind::Settings => Self::Settings(SettingsFrame::parse(h, payload)?),
            FrameKind::PushPromise => Self::PushPromise(PushPromise::parse(h, payload)?),
            FrameKind::Ping => Self::Ping(Ping::parse(h, payload)?),
            FrameKind::GoAway => Self::GoAway(GoAway::parse(h, payload)?),
            FrameKind::WindowUpdate => Self::WindowUpdate(WindowUpdate::parse(h, payload)?),
            FrameKind::Continuation => Self::Continuation(Continuation::parse(h, payload)?),
            FrameKind::Unknown(kind) => Self::Unknown(UnknownFrame {
                kind,
                flags: header.flags,
                stream_id: header.stream_id,
                payload,
            }),
        })
    }

    /// The frame's type.
    pub fn kind(&self) -> FrameKind {
        match self {
            Self::Data(_) => FrameKind::Data,
            Self::Headers(_) => FrameKind::Headers,
            Self::Priority(_) => FrameKind::Priority,
            Self::RstStream(_) => FrameKind::RstStream,
            Self::Settings(_) => FrameKind::Settings,
            Self::PushPromise(_) => FrameKind::PushPromise,
            Self::Ping(_) => FrameKind::Ping,
            Self::GoAway(_) => FrameKind::GoAway,
            Self::WindowUpdate(_) => FrameKind::WindowUpdate,
            Self::Continuation(_) => FrameKind::Continuation,
            Self::Unknown(u) => FrameKind::from(u.kind),
        }
    }

    /// The stream the frame is on (0 for the connection).
    pub fn stream_id(&self) -> u32 {
        match self {
            Self::Data(f) => f.stream_id,
            Self::Headers(f) => f.stream_id,
            Self::Priority(f) => f.stream_id,
            Self::RstStream(f) => f.stream_id,
            Self::Settings(_) | Self::Ping(_) | Self::GoAway(_) => 0,
            Self::PushPromise(f) => f.stream_id,
            Self::WindowUpdate(f) => f.stream_id,
            Self::Continuation(f) => f.stream_id,
            Self::Unknown(f) => f.stream_id,
        }
    }

    /// Appends the frame to `out`, refusing a payload larger than
    /// `max_frame_size`. Nothing is appended on error.
    pub fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> Result<(), Error> {
        match self {
            Self::Data(f) => f.encode(out, max_frame_size),
            Self::Headers(f) => f.encode(out, max_frame_size),
            Self::Priority(f) => f.encode(out),
            Self::RstStream(f) => f.encode(out),
            Self::Settings(f) => f.encode(out, max_frame_size),
            Self::PushPromise(f) => f.encode(out, max_frame_size),
            Self::Ping(f) => {
                f.encode(out);
                Ok(())
            }
            Self::GoAway(f) => f.encode(out, max_frame_size),
            Self::WindowUpdate(f) => f.encode(out),
            Self::Continuation(f) => f.encode(out, max_frame_size),
            Self::Unknown(f) => f.encode(out, max_frame_size),
        }
    }
}
