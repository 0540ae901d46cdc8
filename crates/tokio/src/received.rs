//! A message lent by [`WebSocket::recv_ref`](crate::WebSocket::recv_ref):
//! read where it lies in the read buffer, echoed from there without a
//! copy, or answered.

use std::ops::Range;

use tether_ws::{Connection, Message, MessageKind, MessageRef};

use crate::error::Error;
use crate::queue::Queue;

/// A received message, lent by
/// [`WebSocket::recv_ref`](crate::WebSocket::recv_ref), with the means to
/// answer it.
pub struct Received<'a> {
    pub(crate) message: Lent<'a>,
    pub(crate) conn: &'a mut Connection,
    pub(crate) queue: &'a mut Queue,
}

/// Where the lent message lies: in the read buffer, or assembled.
pub(crate) enum Lent<'a> {
    InPlace {
        kind: MessageKind,
        range: Range<usize>,
        buffer: &'a mut Vec<u8>,
    },
    Owned(Message),
}

impl std::fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("kind", &self.kind())
            .field("len", &self.as_bytes().len())
            .finish()
    }
}

impl Received<'_> {
    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match &self.message {
            Lent::InPlace { kind, .. } => *kind,
            Lent::Owned(message) => message.kind(),
        }
    }

    /// The payload, unmasked.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.message {
            Lent::InPlace { range, buffer, .. } => buffer.get(range.clone()).unwrap_or_default(),
            Lent::Owned(message) => message.as_bytes(),
        }
    }

    /// The text of a text message (`None` for binary). The bytes were
    /// validated as they arrived; this checks them once more.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind() {
            MessageKind::Text => tether_frame::str_from_utf8(self.as_bytes()),
            MessageKind::Binary => None,
        }
    }

    /// The message, borrowed.
    pub fn as_message(&self) -> MessageRef<'_> {
        match self.as_text() {
            Some(text) => MessageRef::Text(text),
            None => MessageRef::Binary(self.as_bytes()),
        }
    }

    /// An owned copy (or the message itself, when it was assembled).
    pub fn into_message(self) -> Message {
        match self.message {
            Lent::Owned(message) => message,
            Lent::InPlace { .. } => self.as_message().to_owned(),
        }
    }

    /// Queues this message back to the peer (an echo). Where it lies
    /// whole in the read buffer, this side's header is written right before
    /// it there and the frame goes out from the read buffer: no copy.
    pub fn echo(self) -> Result<(), Error> {
        match self.message {
            Lent::InPlace { kind, range, buffer } => {
                // The header goes before the payload, but not below what
                // queued echoes still use: below that, a copy.
                let floor = self.queue.read_floor().min(range.start);
                let framed = match buffer.get_mut(floor..) {
                    Some(free) => {
                        self.conn
                            .frame_in_place(kind, free, range.start - floor..range.end - floor)
                    }
                    None => None,
                };
                if let Some(start) = framed {
                    self.queue.push_read(floor + start..range.end);
                    return Ok(());
                }
                let bytes = buffer.get(range).unwrap_or_default();
                let message = match kind {
                    MessageKind::Binary => MessageRef::Binary(bytes),
                    MessageKind::Text => {
                        MessageRef::Text(tether_frame::str_from_utf8(bytes).unwrap_or_default())
                    }
                };
                self.conn
                    .send(message, &mut self.queue.out)
                    .map_err(Error::from_ws)
            }
            Lent::Owned(message) => self
                .conn
                .send(&message, &mut self.queue.out)
                .map_err(Error::from_ws),
        }
    }

    /// Queues another message to the peer.
    pub fn reply<'m>(&mut self, message: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        self.conn
            .send(message, &mut self.queue.out)
            .map_err(Error::from_ws)
    }
}
