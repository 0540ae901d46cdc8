//! Sending: data messages framed into the caller's buffer (through the
//! extension where one is negotiated), in place, or header and payload
//! apart; pings and pongs.

use std::ops::Range;

use tether_frame::{FrameHeader, MAX_HEADER_LEN, OpCode, Rsv, apply_mask};

use super::{Connection, Extras, broken_extension, write_frame};
use crate::error::Error;
use crate::event::{Message, MessageKind, MessageRef};

/// Below this size [`Connection::send_owned`] copies the payload after
/// its header: one buffer is cheaper to write than two slices.
const SEND_OWNED_MIN: usize = 4096;

impl Connection {
    /// Whether a data message may still be sent (no close frame sent yet).
    pub fn can_send(&self) -> bool {
        !self.sent_close()
    }

    /// Sends a message (text or binary, as the message says): a
    /// [`&Message`](Message) or a [`MessageRef`], such as one just received.
    pub fn send<'m>(&mut self, message: impl Into<MessageRef<'m>>, out: &mut Vec<u8>) -> Result<(), Error> {
        let message = message.into();
        let opcode = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        self.send_data(opcode, message.as_bytes(), out)
    }

    /// Sends a message it may keep, without copying a large payload.
    ///
    /// The frame header is appended to `out`; the payload is returned (masked
    /// in place for a client) to be written right after `out`'s bytes, e.g.
    /// by a vectored write. A small payload, or one a negotiated extension
    /// transforms, goes into `out` whole instead, and `None` is returned.
    ///
    /// ```
    /// use std::time::Instant;
    /// use tether_ws::{Config, Connection, Message, Role};
    /// let mut conn = Connection::new(Role::Server, Config::default(), Instant::now());
    /// let mut out = Vec::new();
    /// let big = conn.send_owned(Message::binary(vec![7; 100_000]), &mut out)?;
    /// assert_eq!(out, [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x86, 0xa0]);
    /// assert_eq!(big.map(|p| p.len()), Some(100_000));
    /// # Ok::<(), tether_ws::Error>(())
    /// ```
    pub fn send_owned(&mut self, message: Message, out: &mut Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        let transformed = self.extras.as_ref().is_some_and(|e| e.extension.is_some());
        if transformed || message.as_bytes().len() < SEND_OWNED_MIN {
            self.send(&message, out)?;
            return Ok(None);
        }
        if self.sent_close() {
            return Err(Error::AlreadyClosing);
        }
        let opcode = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let mut payload = message.into_bytes();
        let mut header = FrameHeader::new(true, opcode, payload.len() as u64);
        if let Some(source) = self.masks() {
            let mask = source();
            header = header.with_mask(mask);
            apply_mask(&mut payload, mask, 0);
        }
        out.extend_from_slice(&header.to_bytes());
        Ok(Some(payload))
    }

    /// Frames a data message where its payload lies, to send it without a
    /// copy (an echo): `data[payload]` is the payload, e.g. a message
    /// [`receive_in_place`](Self::receive_in_place) lent out, and every
    /// byte of `data` before it is free to overwrite. A server's header
    /// fits in the masked header the message came with, but a client's
    /// masked header is 4 bytes longer than the server's unmasked one: it
    /// reaches into the frame before. A client that echoes several frames
    /// of one input in place must therefore pass a `data` that starts after
    /// the frames it has framed and not yet written. This
    /// side's header for one final frame goes right before the payload (a
    /// client also masks the payload where it lies), and the frame's start
    /// is returned: `data[start..payload.end]` is the whole frame, to be
    /// written as it is.
    ///
    /// `None`, with nothing changed, when the message cannot go out that
    /// way: the close handshake has begun, a negotiated extension would
    /// transform the payload, `payload` is not within `data`, or fewer
    /// bytes than the header lie before it (a message lent whose header
    /// came in an earlier input). [`send`](Self::send) then does
    /// what is right (sends it transformed, or refuses it).
    ///
    /// ```
    /// use std::time::Instant;
    /// use tether_ws::{Config, Connection, Incoming, MessageKind, Role};
    /// let now = Instant::now();
    /// let mut conn = Connection::new(Role::Server, Config::default(), now);
    /// // A client's masked "hi" (mask 0, so the payload reads as it is).
    /// let mut input = vec![0x81, 0x82, 0, 0, 0, 0, b'h', b'i'];
    /// let (used, incoming) = conn.receive_in_place(&mut input, now, &mut Vec::new());
    /// assert!(matches!(incoming, Some(Incoming::Borrowed(_))));
    /// let start = conn.frame_in_place(MessageKind::Text, &mut input, 6..used);
    /// assert_eq!(start, Some(4));
    /// assert_eq!(&input[4..], [0x81, 0x02, b'h', b'i']);
    /// ```
    pub fn frame_in_place(
        &mut self,
        kind: MessageKind,
        data: &mut [u8],
        payload: Range<usize>,
    ) -> Option<usize> {
        let transformed = self.extras.as_ref().is_some_and(|e| e.extension.is_some());
        if transformed || self.sent_close() || payload.start > payload.end || payload.end > data.len() {
            return None;
        }
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let len = payload.end - payload.start;
        let masked = self.masks().is_some();
        if !masked && len <= 125 {
            // The short header of an unmasked frame: two bytes, written
            // as they are.
            let start = payload.start.checked_sub(2)?;
            let [fin_opcode, short_len] = data.get_mut(start..payload.start)? else {
                return None;
            };
            *fin_opcode = 0x80 | opcode.as_u8();
            *short_len = u8::try_from(len).ok()?;
            return Some(start);
        }
        let mut header = FrameHeader::new(true, opcode, len as u64);
        let start = payload
            .start
            .checked_sub(header.encoded_len() + if masked { 4 } else { 0 })?;
        let mask = self.masks().map(|source| source());
        if let Some(mask) = mask {
            header = header.with_mask(mask);
        }
        data.get_mut(start..payload.start)?
            .copy_from_slice(&header.to_bytes());
        if let (Some(mask), Some(bytes)) = (mask, data.get_mut(payload)) {
            apply_mask(bytes, mask, 0);
        }
        Some(start)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_data(OpCode::Text, text.as_bytes(), out)
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_data(OpCode::Binary, data, out)
    }

    fn send_data(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.sent_close() {
            return Err(Error::AlreadyClosing);
        }
        if let Some(Extras {
            masks,
            extension: Some(extension),
            ..
        }) = self.extras.as_deref_mut()
        {
            // The extension appends its output after room for the longest
            // header; the real header then goes right before the payload and
            // the unused room is closed up, one move of the payload.
            let start = out.len();
            let body = start + MAX_HEADER_LEN;
            out.resize(body, 0);
            match extension.encode(opcode, payload, out) {
                Ok(Some(rsv)) => {
                    // The extension appends after the room; one that cut
                    // into it broke its contract.
                    let Some(len) = out.len().checked_sub(body) else {
                        out.truncate(start);
                        return Err(broken_extension("header room removed"));
                    };
                    let mut header = FrameHeader::new(true, opcode, len as u64).with_rsv(rsv);
                    if let Some(source) = masks.as_mut() {
                        header = header.with_mask(source());
                    }
                    let head = header.to_bytes();
                    let gap = MAX_HEADER_LEN - head.len();
                    // Within `out` (`body` is, as checked above), and
                    // `head.len()` long.
                    if let Some(room) = out.get_mut(start + gap..body) {
                        room.copy_from_slice(&head);
                    }
                    if let Some(mask) = header.mask {
                        apply_mask(out.get_mut(body..).unwrap_or_default(), mask, 0);
                    }
                    out.drain(start..start + gap);
                    return Ok(());
                }
                Ok(None) => out.truncate(start),
                Err(e) => {
                    out.truncate(start);
                    return Err(Error::Extension(e));
                }
            }
        }
        write_frame(self.masks(), out, opcode, Rsv::NONE, payload)?;
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload, out)
    }

    /// Sends an unsolicited pong (a one-way heartbeat).
    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload, out)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.sent_close() {
            return Err(Error::AlreadyClosing);
        }
        if payload.len() > 125 {
            return Err(Error::ControlPayloadTooLong(payload.len()));
        }
        self.write_control(opcode, payload, out)
    }
}
