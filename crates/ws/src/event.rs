//! What a connection reports: messages, control frames, closure.

use std::fmt;

use tether_frame::CloseCode;

use crate::Error;

/// The two kinds of data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// A complete data message.
///
/// The payload is owned, so a message can be kept, queued or moved to
/// another connection. A text message's bytes were validated as UTF-8 as
/// they arrived; the type keeps that promise (it can only be built from a
/// `String` or from validated input).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    kind: MessageKind,
    data: Vec<u8>,
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Message {
        Message {
            kind: MessageKind::Text,
            data: text.into().into_bytes(),
        }
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Message {
        Message {
            kind: MessageKind::Binary,
            data: data.into(),
        }
    }

    /// Only for bytes already known to be valid UTF-8 when `kind` is text.
    pub(crate) fn validated(kind: MessageKind, data: Vec<u8>) -> Message {
        debug_assert!(kind == MessageKind::Binary || std::str::from_utf8(&data).is_ok());
        Message { kind, data }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        self.kind == MessageKind::Text
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The payload.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// The text of a text message; `None` for a binary one.
    ///
    /// This re-runs the (fast, word-at-a-time) standard UTF-8 check rather
    /// than trusting the earlier one with `unsafe`, since the crate has
    /// none.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => std::str::from_utf8(&self.data).ok(),
            MessageKind::Binary => None,
        }
    }

    /// The text of a text message; a binary message is handed back.
    pub fn into_text(self) -> Result<String, Message> {
        match self.kind {
            MessageKind::Text => String::from_utf8(self.data).map_err(|e| Message::binary(e.into_bytes())),
            MessageKind::Binary => Err(self),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(text) if text.len() <= 64 => write!(f, "Text({text:?})"),
            Some(_) => write!(f, "Text({} bytes)", self.data.len()),
            None if self.data.len() <= 32 => write!(f, "Binary({:02x?})", self.data),
            None => write!(f, "Binary({} bytes)", self.data.len()),
        }
    }
}

/// The payload of a ping or pong: at most 125 bytes, held inline so that
/// control frames never allocate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    len: u8,
    bytes: [u8; 125],
}

impl ControlPayload {
    /// An empty payload.
    pub const EMPTY: ControlPayload = ControlPayload {
        len: 0,
        bytes: [0; 125],
    };

    /// Copies `data`, or `None` when it is over 125 bytes.
    pub fn new(data: &[u8]) -> Option<ControlPayload> {
        let mut payload = ControlPayload::EMPTY;
        payload.bytes.get_mut(..data.len())?.copy_from_slice(data);
        payload.len = data.len() as u8;
        Some(payload)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Appends bytes; the caller (the frame decoder's limit) keeps the
    /// total within 125.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        let start = self.len as usize;
        self.bytes[start..start + data.len()].copy_from_slice(data);
        self.len += data.len() as u8;
    }

    pub(crate) fn unmask(&mut self, mask: [u8; 4]) {
        tether_frame::apply_mask(&mut self.bytes[..self.len as usize], mask, 0);
    }
}

impl std::ops::Deref for ControlPayload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", self.as_slice())
    }
}

/// What the peer's close frame said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; [`CloseCode::NO_STATUS`] (1005) when the frame had
    /// none.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: String,
}

/// Something that happened on the connection, returned by
/// [`crate::Connection::receive`] and [`crate::Connection::handle_timeout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text or binary message.
    Message(Message),
    /// A ping. The pong has already been written.
    Ping(ControlPayload),
    /// A pong (solicited or not).
    Pong(ControlPayload),
    /// The peer's close frame. If we had not sent ours, the echo has been
    /// written; either way the close handshake is complete and the
    /// connection is [`crate::State::Closed`].
    Close(CloseFrame),
    /// The connection failed: the peer broke the protocol or a limit, or
    /// went quiet. A close frame was written where one could be (see
    /// [`Error::close_code`]). The connection is [`crate::State::Closed`].
    Failed(Error),
}
