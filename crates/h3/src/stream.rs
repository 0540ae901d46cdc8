//! Unidirectional streams (RFC 9114 §6.2) and the control stream.
//!
//! Each unidirectional stream starts with its type, a variable-length
//! integer: [`StreamTypeReader`] reads it. A connection has one control
//! stream, one QPACK encoder stream and one QPACK decoder stream in each
//! direction; [`UniStreams`] refuses a second one and the closing of any
//! of them. [`ControlStream`] applies the control stream's rules: SETTINGS
//! first and once, no DATA or HEADERS, GOAWAY and MAX_PUSH_ID IDs that
//! never move the wrong way.

use crate::error::{Error, ErrorCode, Violation};
use crate::frame::{self, Event, Frame, FrameDecoder};
use crate::settings::Settings;
use crate::varint::VarintReader;

/// Which end of the connection this endpoint is. The rules differ: only a
/// server pushes, only a client sends MAX_PUSH_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The endpoint that accepted the connection.
    Server,
    /// The endpoint that opened it.
    Client,
}

/// The type of a unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// 0x00: the control stream.
    Control,
    /// 0x01: a push stream (server to client).
    Push,
    /// 0x02: the QPACK encoder stream.
    QpackEncoder,
    /// 0x03: the QPACK decoder stream.
    QpackDecoder,
    /// 0x54: a WebTransport unidirectional stream
    /// (draft-ietf-webtrans-http3 §4.2); its session ID follows.
    WebTransport,
    /// Any other type, reserved for greasing or unknown: the receiver
    /// reads no further and may ask the peer to stop sending
    /// (STOP_SENDING with H3_STREAM_CREATION_ERROR, RFC 9114 §6.2).
    Unknown(u64),
}

impl StreamType {
    /// The type for a value on the wire.
    pub const fn from_value(value: u64) -> StreamType {
        match value {
            0x00 => StreamType::Control,
            0x01 => StreamType::Push,
            0x02 => StreamType::QpackEncoder,
            0x03 => StreamType::QpackDecoder,
            crate::webtransport::UNI_STREAM_TYPE => StreamType::WebTransport,
            other => StreamType::Unknown(other),
        }
    }

    /// The value on the wire.
    pub const fn value(self) -> u64 {
        match self {
            StreamType::Control => 0x00,
            StreamType::Push => 0x01,
            StreamType::QpackEncoder => 0x02,
            StreamType::QpackDecoder => 0x03,
            StreamType::WebTransport => crate::webtransport::UNI_STREAM_TYPE,
            StreamType::Unknown(other) => other,
        }
    }

    /// Whether the connection cannot go on without this stream (control
    /// and QPACK streams, RFC 9114 §6.2.1 and RFC 9204 §4.2).
    pub const fn is_critical(self) -> bool {
        matches!(
            self,
            StreamType::Control | StreamType::QpackEncoder | StreamType::QpackDecoder
        )
    }
}

/// Reads the type at the start of a unidirectional stream.
#[derive(Debug, Clone, Default)]
pub struct StreamTypeReader {
    varint: VarintReader,
}

impl StreamTypeReader {
    /// A reader at the start of a stream.
    pub const fn new() -> StreamTypeReader {
        StreamTypeReader {
            varint: VarintReader::new(),
        }
    }

    /// Takes bytes from `src` until the type is complete: how many it took
    /// and the type once known. The bytes after it belong to the stream's
    /// body.
    pub fn feed(&mut self, src: &[u8]) -> (usize, Option<StreamType>) {
        let (used, value) = self.varint.feed(src);
        (used, value.map(StreamType::from_value))
    }

    /// Whether part of the type has been read but not all of it. A stream
    /// that ends so may simply be ignored (RFC 9114 §6.2 lets a receiver
    /// discard a stream whose type it never learns).
    pub fn is_partial(&self) -> bool {
        !self.varint.is_empty()
    }
}

/// The peer's critical unidirectional streams, to refuse a second one and
/// the closing of any.
#[derive(Debug, Clone)]
pub struct UniStreams {
    role: Role,
    control: bool,
    encoder: bool,
    decoder: bool,
}

impl UniStreams {
    /// No stream opened yet, on an endpoint of `role`.
    pub const fn new(role: Role) -> UniStreams {
        UniStreams {
            role,
            control: false,
            encoder: false,
            decoder: false,
        }
    }

    /// The peer opened a stream of type `ty`: an H3_STREAM_CREATION_ERROR
    /// if it is a second control, encoder or decoder stream, or a push
    /// stream from a client.
    pub fn opened(&mut self, ty: StreamType) -> Result<(), Error> {
        let creation = |violation| Error::new(ErrorCode::H3_STREAM_CREATION_ERROR, violation);
        let seen = match ty {
            StreamType::Control => &mut self.control,
            StreamType::QpackEncoder => &mut self.encoder,
            StreamType::QpackDecoder => &mut self.decoder,
            StreamType::Push if self.role == Role::Server => {
                return Err(creation(Violation::PushStreamFromClient));
            }
            StreamType::Push | StreamType::WebTransport | StreamType::Unknown(_) => return Ok(()),
        };
        if *seen {
            return Err(creation(Violation::DuplicateStream(ty.value())));
        }
        *seen = true;
        Ok(())
    }

    /// The peer closed or reset a stream of type `ty`: an
    /// H3_CLOSED_CRITICAL_STREAM if it is a control or QPACK stream.
    pub fn closed(&self, ty: StreamType) -> Result<(), Error> {
        if ty.is_critical() {
            return Err(Error::new(
                ErrorCode::H3_CLOSED_CRITICAL_STREAM,
                Violation::CriticalStreamClosed(ty.value()),
            ));
        }
        Ok(())
    }
}

/// What the peer's control stream said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEvent {
    /// The peer's SETTINGS (exactly once, first).
    Settings(Settings),
    /// GOAWAY: from a server, the first request stream it will not
    /// process; from a client, the first push ID it will not accept.
    Goaway(u64),
    /// MAX_PUSH_ID (from a client).
    MaxPushId(u64),
    /// CANCEL_PUSH.
    CancelPush(u64),
}

/// The peer's control stream, after its type byte.
///
/// ```
/// use tether_h3::stream::{ControlEvent, ControlStream, Role};
/// use tether_h3::{ErrorCode, settings::Settings};
///
/// let mut control = ControlStream::new(Role::Server, 1024);
/// let mut events = Vec::new();
/// // SETTINGS with nothing in it, then GOAWAY 8.
/// control.receive(&[0x04, 0x00, 0x07, 0x01, 0x08], &mut events)?;
/// assert_eq!(events, [ControlEvent::Settings(Settings::default()), ControlEvent::Goaway(8)]);
///
/// // The stream may not end.
/// assert_eq!(control.finish().code, ErrorCode::H3_CLOSED_CRITICAL_STREAM);
/// # Ok::<(), tether_h3::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ControlStream {
    role: Role,
    frames: FrameDecoder,
    settings: bool,
    goaway: Option<u64>,
    max_push_id: Option<u64>,
}

impl ControlStream {
    /// The peer's control stream as seen by an endpoint of `role`,
    /// buffering frames of at most `max_payload` bytes.
    pub fn new(role: Role, max_payload: usize) -> ControlStream {
        ControlStream {
            role,
            frames: FrameDecoder::new(max_payload),
            settings: false,
            goaway: None,
            max_push_id: None,
        }
    }

    /// Whether the peer's SETTINGS has arrived.
    pub const fn has_settings(&self) -> bool {
        self.settings
    }

    /// Reads all of `src`, appending what it says to `out`. After an error
    /// the connection must be closed with the error's code.
    pub fn receive(&mut self, src: &[u8], out: &mut Vec<ControlEvent>) -> Result<(), Error> {
        let mut input = src;
        while !input.is_empty() {
            let (used, event) = self.frames.decode(input)?;
            input = input.get(used..).unwrap_or_default();
            if let Some(event) = event
                && let Some(event) = self.apply(event)?
            {
                out.push(event);
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Event<'_>) -> Result<Option<ControlEvent>, Error> {
        let unexpected = |ty| Error::new(ErrorCode::H3_FRAME_UNEXPECTED, Violation::UnexpectedFrame(ty));
        let frame_type = match &event {
            Event::Frame(frame) => frame.frame_type(),
            Event::DataStart { .. } | Event::Data(_) => frame::DATA,
            Event::Skipped { frame_type, .. } => *frame_type,
        };
        let first = !self.settings;
        if first && frame_type != frame::SETTINGS {
            return Err(Error::new(
                ErrorCode::H3_MISSING_SETTINGS,
                Violation::MissingSettings,
            ));
        }
        let Event::Frame(frame) = event else {
            return match frame_type {
                frame::DATA => Err(unexpected(frame::DATA)),
                _ => Ok(None),
            };
        };
        Ok(Some(match frame {
            Frame::Settings(s) => {
                if !first {
                    return Err(unexpected(frame::SETTINGS));
                }
                self.settings = true;
                ControlEvent::Settings(s)
            }
            Frame::Headers(_) | Frame::PushPromise { .. } => {
                return Err(unexpected(frame.frame_type()));
            }
            Frame::MaxPushId(id) => {
                if self.role == Role::Client {
                    return Err(unexpected(frame::MAX_PUSH_ID));
                }
                if self.max_push_id.is_some_and(|old| id < old) {
                    return Err(Error::new(
                        ErrorCode::H3_ID_ERROR,
                        Violation::MaxPushIdDecreased(id),
                    ));
                }
                self.max_push_id = Some(id);
                ControlEvent::MaxPushId(id)
            }
            Frame::Goaway(id) => {
                let bad = Error::new(ErrorCode::H3_ID_ERROR, Violation::InvalidGoawayId(id));
                // From a server the ID is a client-initiated bidirectional
                // stream's (RFC 9114 §5.2).
                if self.role == Role::Client && !id.is_multiple_of(4) {
                    return Err(bad);
                }
                if self.goaway.is_some_and(|old| id > old) {
                    return Err(bad);
                }
                self.goaway = Some(id);
                ControlEvent::Goaway(id)
            }
            Frame::CancelPush(id) => ControlEvent::CancelPush(id),
        }))
    }

    /// The stream ended or was reset: always an H3_CLOSED_CRITICAL_STREAM.
    pub fn finish(&self) -> Error {
        Error::new(
            ErrorCode::H3_CLOSED_CRITICAL_STREAM,
            Violation::CriticalStreamClosed(StreamType::Control.value()),
        )
    }
}
