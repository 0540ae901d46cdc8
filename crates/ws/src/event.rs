//! What a connection reports: messages, control frames, closure.

use std::fmt;

use tether_frame::CloseCode;

use crate::error::Error;

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
/// another connection. A text message holds a `String`: its bytes were
/// validated as UTF-8 as they arrived, and the type keeps that promise.
/// [`MessageRef`] is the borrowed form.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Text(String),
    Binary(Vec<u8>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Message {
        Message {
            repr: Repr::Text(text.into()),
        }
    }

    /// A binary message.
    pub fn binary(data: impl Into<Vec<u8>>) -> Message {
        Message {
            repr: Repr::Binary(data.into()),
        }
    }

    /// A message of `kind` from received bytes; text that is not UTF-8 is
    /// an error (the bytes are checked again here, once, since the crate
    /// has no `unsafe` to trust the check made as they arrived).
    pub(crate) fn received(kind: MessageKind, data: Vec<u8>) -> Result<Message, Error> {
        match kind {
            MessageKind::Text => String::from_utf8(data)
                .map(Message::text)
                .map_err(|_| Error::Frame(tether_frame::Error::InvalidUtf8)),
            MessageKind::Binary => Ok(Message::binary(data)),
        }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.as_ref().kind()
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self.repr, Repr::Text(_))
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_ref().as_bytes()
    }

    /// The payload.
    pub fn into_bytes(self) -> Vec<u8> {
        match self.repr {
            Repr::Text(text) => text.into_bytes(),
            Repr::Binary(data) => data,
        }
    }

    /// The text of a text message; `None` for a binary one.
    pub fn as_text(&self) -> Option<&str> {
        self.as_ref().as_text()
    }

    /// The text of a text message; a binary message is handed back.
    pub fn into_text(self) -> Result<String, Message> {
        match self.repr {
            Repr::Text(text) => Ok(text),
            Repr::Binary(_) => Err(self),
        }
    }

    /// The message borrowed.
    pub fn as_ref(&self) -> MessageRef<'_> {
        match &self.repr {
            Repr::Text(text) => MessageRef::Text(text),
            Repr::Binary(data) => MessageRef::Binary(data),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_ref(), f)
    }
}

/// A complete data message, borrowed: from an owned [`Message`], or
/// straight from the bytes a connection received, unmasked where they lay
/// (see [`Connection::receive_in_place`](crate::connection::Connection::receive_in_place)).
/// Text is a `&str`, validated once.
///
/// ```
/// use tether_ws::{Message, MessageKind, MessageRef};
///
/// let owned = Message::text("hi");
/// let borrowed: MessageRef<'_> = owned.as_ref();
/// assert_eq!(borrowed.as_text(), Some("hi"));
/// assert_eq!(borrowed.kind(), MessageKind::Text);
/// assert_eq!(borrowed.to_owned(), owned);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> MessageRef<'a> {
    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match self {
            MessageRef::Text(_) => MessageKind::Text,
            MessageRef::Binary(_) => MessageKind::Binary,
        }
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, MessageRef::Text(_))
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            MessageRef::Text(text) => text.as_bytes(),
            MessageRef::Binary(data) => data,
        }
    }

    /// The text of a text message; `None` for a binary one.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            MessageRef::Text(text) => Some(text),
            MessageRef::Binary(_) => None,
        }
    }

    /// An owned copy, to keep beyond the borrow.
    pub fn to_owned(&self) -> Message {
        match *self {
            MessageRef::Text(text) => Message::text(text),
            MessageRef::Binary(data) => Message::binary(data),
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> MessageRef<'a> {
        message.as_ref()
    }
}

/// Text, so that a `&str` can be sent as it is.
///
/// ```
/// use tether_ws::MessageRef;
/// assert_eq!(MessageRef::from("hi"), MessageRef::Text("hi"));
/// assert_eq!(MessageRef::from(&b"hi"[..]), MessageRef::Binary(b"hi"));
/// ```
impl<'a> From<&'a str> for MessageRef<'a> {
    fn from(text: &'a str) -> MessageRef<'a> {
        MessageRef::Text(text)
    }
}

/// Binary, so that a `&[u8]` can be sent as it is.
impl<'a> From<&'a [u8]> for MessageRef<'a> {
    fn from(data: &'a [u8]) -> MessageRef<'a> {
        MessageRef::Binary(data)
    }
}

impl<'a> From<&MessageRef<'a>> for MessageRef<'a> {
    fn from(message: &MessageRef<'a>) -> MessageRef<'a> {
        *message
    }
}

impl fmt::Debug for MessageRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MessageRef::Text(text) if text.len() <= 64 => write!(f, "Text({text:?})"),
            MessageRef::Text(text) => write!(f, "Text({} bytes)", text.len()),
            MessageRef::Binary(data) if data.len() <= 32 => write!(f, "Binary({data:02x?})"),
            MessageRef::Binary(data) => write!(f, "Binary({} bytes)", data.len()),
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
        payload.len = u8::try_from(data.len()).ok()?;
        Some(payload)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // `len` is at most 125: every constructor checks it.
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Appends bytes, or refuses (changing nothing) when the total would
    /// be over 125; the frame decoder's limit keeps it within.
    pub(crate) fn extend(&mut self, data: &[u8]) -> Result<(), tether_frame::Error> {
        let start = usize::from(self.len);
        let end = start + data.len();
        match (self.bytes.get_mut(start..end), u8::try_from(end)) {
            (Some(room), Ok(len)) => {
                room.copy_from_slice(data);
                self.len = len;
                Ok(())
            }
            _ => Err(tether_frame::Error::ControlFrameTooLong),
        }
    }

    pub(crate) fn unmask(&mut self, mask: [u8; 4]) {
        // `len` is at most 125, as in `as_slice`.
        let bytes = self.bytes.get_mut(..usize::from(self.len)).unwrap_or_default();
        tether_frame::apply_mask(bytes, mask, 0);
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
/// [`Connection::receive`](crate::connection::Connection::receive) and [`Connection::handle_timeout`](crate::connection::Connection::handle_timeout).
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
    /// connection is [`State::Closed`](crate::connection::State::Closed).
    Close(CloseFrame),
    /// The connection failed: the peer broke the protocol or a limit, or
    /// went quiet. A close frame was written where one could be (see
    /// [`Error::close_code`]). The connection is [`State::Closed`](crate::connection::State::Closed).
    Failed(Error),
}

/// What [`Connection::receive_in_place`](crate::connection::Connection::receive_in_place) found.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A data message that lay whole in the input, unmasked there and
    /// lent out.
    Borrowed(MessageRef<'a>),
    /// Any other event, an owned [`Event::Message`] included.
    Event(Event),
}
