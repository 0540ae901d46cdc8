//! Receiving: bytes in, frames decoded, messages assembled (or lent
//! where they lie), control frames answered.

use std::mem;
use std::time::Instant;

use tether_frame::{CloseCode, FrameHeader, Item, OpCode, apply_mask, parse_close_payload};

use super::{Connection, CurrentFrame, Extras, Phase, broken_extension};
use crate::error::{Error, Limit};
use crate::event::{CloseFrame, ControlPayload, Event, Incoming, Message, MessageKind, MessageRef};
use crate::extension::Extension;

/// What one step of receiving found.
enum Step {
    Event(Event),
    /// A whole message's payload, still masked, from `start` up to the
    /// bytes used.
    InPlace {
        start: usize,
        kind: MessageKind,
    },
}

/// Bytes of a transformed (e.g. compressed) payload unmasked per step
/// before the extension decodes them; a stack buffer, so no allocation.
const EXTENSION_CHUNK: usize = 4096;

impl Connection {
    /// Feeds bytes read from the transport.
    ///
    /// Consumes `data` up to and including the next event and returns how
    /// many bytes it used, with the event. Without an event, all of `data`
    /// was used. Automatic replies (pong, close echo, the close frame of a
    /// failure) are appended to `out`. Once the connection is closed, input
    /// is consumed and ignored.
    ///
    /// Every message is copied out of `data` into one the connection owns;
    /// [`receive_in_place`](Self::receive_in_place) spares that copy.
    pub fn receive(&mut self, data: &[u8], now: Instant, out: &mut Vec<u8>) -> (usize, Option<Event>) {
        match self.step(data, false, now, out) {
            (used, Some(Step::Event(event))) => (used, Some(event)),
            // Only asked for in place.
            (used, Some(Step::InPlace { .. }) | None) => (used, None),
        }
    }

    /// As [`receive`](Self::receive), but a data message that lies whole in
    /// `data` (one frame, not compressed, all of it in this input) is
    /// unmasked where it lies and lent out as [`Incoming::Borrowed`]: no
    /// copy, no allocation, and text validated as UTF-8 in one pass. Any
    /// other message (fragmented, compressed, or split across inputs) is
    /// assembled and owned as with `receive`. The bytes of `data` before
    /// the returned count may have been changed (unmasked).
    ///
    /// ```
    /// use std::time::Instant;
    /// use tether_ws::{Config, Connection, Incoming, MessageRef, Role};
    ///
    /// let now = Instant::now();
    /// let mut conn = Connection::new(Role::Server, Config::default(), now);
    /// // A masked text frame saying "Hello" (RFC 6455, section 5.7).
    /// let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let mut out = Vec::new();
    /// let (used, incoming) = conn.receive_in_place(&mut input, now, &mut out);
    /// assert_eq!(used, 11);
    /// assert!(matches!(incoming, Some(Incoming::Borrowed(MessageRef::Text("Hello")))));
    /// assert_eq!(&input[6..], b"Hello");
    /// ```
    pub fn receive_in_place<'d>(
        &mut self,
        data: &'d mut [u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> (usize, Option<Incoming<'d>>) {
        let (start, end, kind, key) = match self.short_message(data) {
            Some(short) => {
                self.arrived(now);
                short
            }
            None => match self.step(data, true, now, out) {
                (used, None) => return (used, None),
                (used, Some(Step::Event(event))) => return (used, Some(Incoming::Event(event))),
                // The step reports a payload within the bytes it used:
                // `start` is at most `used`, and `used` at most `data.len()`.
                (used, Some(Step::InPlace { start, kind })) => (start, used, kind, self.frame.key),
            },
        };
        let len = data.len();
        let payload = data.get_mut(start..end).unwrap_or_default();
        // A zero key changes nothing.
        if key != [0; 4] {
            apply_mask(payload, key, 0);
        }
        let payload: &'d [u8] = payload;
        let message = match kind {
            MessageKind::Binary => MessageRef::Binary(payload),
            MessageKind::Text => match tether_frame::str_from_utf8(payload) {
                Some(text) => MessageRef::Text(text),
                None => {
                    let failed = self.fail(Error::Frame(tether_frame::Error::InvalidUtf8), out);
                    return (len, Some(Incoming::Event(failed)));
                }
            },
        };
        (end, Some(Incoming::Borrowed(message)))
    }

    /// The work of both `receive` forms. With `in_place`, a whole
    /// single-frame uncompressed message is not copied: its place in
    /// `data` is reported instead, still masked.
    fn step(
        &mut self,
        data: &[u8],
        in_place: bool,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> (usize, Option<Step>) {
        if self.phase == Phase::Closed {
            return (data.len(), None);
        }
        if !data.is_empty() {
            self.arrived(now);
        }
        let rules = self.rules();
        let mut pos = 0;
        while pos < data.len() {
            let rest = data.get(pos..).unwrap_or_default();
            let (used, item) = match self.reader.decode(rest, &rules) {
                Ok(step) => step,
                Err(e) => return (data.len(), Some(Step::Event(self.fail(e.into(), out)))),
            };
            let start = pos;
            pos += used;
            let step = match item {
                None => break,
                Some(Item::Header(header)) => {
                    // Room for a whole single-frame message, unless it
                    // can be lent from the input instead.
                    let whole_here = in_place && header.payload_len <= (data.len() - pos) as u64;
                    match self.on_header(header, !whole_here) {
                        Ok(()) if header.payload_len == 0 => {
                            if in_place && let Some(kind) = self.whole_message() {
                                return (pos, Some(self.lend(pos, kind)));
                            }
                            self.on_frame_end(&[], out)
                        }
                        other => other.map(|()| None),
                    }
                }
                Some(Item::Payload {
                    data: chunk,
                    offset,
                    last,
                }) => {
                    if in_place
                        && offset == 0
                        && last
                        && let Some(kind) = self.whole_message()
                    {
                        return (pos, Some(self.lend(start, kind)));
                    }
                    self.on_payload(chunk, offset, last, out)
                }
            };
            match step {
                Ok(None) => {}
                Ok(Some(event)) => {
                    let used = if self.phase == Phase::Closed {
                        data.len()
                    } else {
                        pos
                    };
                    return (used, Some(Step::Event(event)));
                }
                Err(e) => return (data.len(), Some(Step::Event(self.fail(e, out)))),
            }
        }
        (pos, None)
    }

    /// Input arrived at `now`: while open, the ping and idle timers count
    /// from it again.
    fn arrived(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Open | Phase::Pinged) {
            self.timer = self.shared.offset(now);
            self.phase = Phase::Open;
        }
    }

    /// The most common input of all, told from its first two bytes: a
    /// short data message in one frame (FIN, no RSV bit, at most 125
    /// bytes, masked as the role requires, within the limits) lying whole
    /// at the start of `data`, between messages of an open connection.
    /// Its payload's place, its kind and its masking key (zero for none);
    /// `None` for anything else, which takes the general path (that path
    /// would find the same). The header is checked here as
    /// [`tether_frame::decode_header`] checks it.
    #[inline]
    fn short_message(&self, data: &[u8]) -> Option<(usize, usize, MessageKind, [u8; 4])> {
        let (&[b0, b1], rest) = data.split_first_chunk::<2>()?;
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        if !matches!(self.phase, Phase::Open | Phase::Pinged)
            || self.message.is_some()
            || !self.reader.is_idle()
        {
            return None;
        }
        let len = b1 & 0x7F;
        if len > 125
            || u64::from(len) > self.shared.0.max_frame_size
            || usize::from(len) > self.shared.limits().max_message_size
        {
            return None;
        }
        let len = usize::from(len);
        let masked = b1 & 0x80 != 0;
        if masked == self.is_client() {
            return None;
        }
        if masked {
            let (&key, payload) = rest.split_first_chunk::<4>()?;
            (payload.len() >= len).then_some((6, 6 + len, kind, key))
        } else {
            (rest.len() >= len).then_some((2, 2 + len, kind, [0; 4]))
        }
    }

    /// Ends the whole message of `kind` whose payload starts at `start` in
    /// the input, to be lent from there.
    fn lend(&mut self, start: usize, kind: MessageKind) -> Step {
        self.message = None;
        self.fragments = 0;
        Step::InPlace { start, kind }
    }

    /// The kind of the frame being received if it is a whole message of its
    /// own: the first and final frame, not transformed by an extension.
    /// (Its header made it the message being received, of this kind.)
    fn whole_message(&self) -> Option<MessageKind> {
        let kind = match self.frame.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return None,
        };
        (self.frame.fin && !self.compressed()).then_some(kind)
    }

    /// A frame begins. `reserve` makes room for a whole single-frame
    /// message at once.
    fn on_header(&mut self, header: FrameHeader, reserve: bool) -> Result<(), Error> {
        match header.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if !header.rsv.is_empty() {
                    return Err(Error::MisplacedRsv);
                }
                self.take_control();
            }
            OpCode::Continuation => {
                if !header.rsv.is_empty() {
                    return Err(Error::MisplacedRsv);
                }
                if self.message.is_none() {
                    return Err(Error::UnexpectedContinuation);
                }
                self.fragments += 1;
                if self.fragments > self.shared.limits().max_fragments {
                    return Err(Error::Limit {
                        limit: Limit::Fragments,
                        max: self.shared.limits().max_fragments.into(),
                    });
                }
                if !self.compressed() {
                    self.check_message_size(self.buffer.len() as u64 + header.payload_len)?;
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(Error::ExpectedContinuation);
                }
                self.message = Some(if header.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                });
                self.set_compressed(!header.rsv.is_empty());
                self.fragments = 1;
                if !self.compressed() {
                    let len = self.check_message_size(header.payload_len)?;
                    if header.fin && reserve {
                        // The whole message is one frame of known size,
                        // within the limit.
                        self.buffer.reserve_exact(len);
                    }
                }
            }
        }
        self.frame = CurrentFrame {
            opcode: header.opcode,
            fin: header.fin,
            key: header.mask.unwrap_or([0; 4]),
        };
        Ok(())
    }

    /// `len`, as a `usize`, if it is within the message size limit.
    fn check_message_size(&self, len: u64) -> Result<usize, Error> {
        let max = self.shared.limits().max_message_size;
        match usize::try_from(len) {
            Ok(len) if len <= max => Ok(len),
            _ => Err(Error::Limit {
                limit: Limit::MessageSize,
                max: max as u64,
            }),
        }
    }

    fn on_payload(
        &mut self,
        chunk: &[u8],
        offset: u64,
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<Event>, Error> {
        if self.frame.opcode.is_control() {
            if self.control().is_none() && last && offset == 0 {
                // The whole payload is in this read: no buffering.
                return self.on_frame_end(chunk, out);
            }
            let control = self
                .extras
                .get_or_insert_with(Box::default)
                .control
                .get_or_insert_with(|| Box::new(ControlPayload::EMPTY));
            control.extend(chunk)?;
            if !last {
                return Ok(None);
            }
            let payload = **control;
            self.take_control();
            return self.on_frame_end(payload.as_slice(), out);
        }
        let text = self.message == Some(MessageKind::Text);
        let start = self.buffer.len();
        // Only the offset's remainder by 4 matters to the mask.
        let phase = (offset % 4) as usize;
        if self.compressed() {
            self.decode_transformed(chunk, phase)?;
        } else {
            self.buffer.extend_from_slice(chunk);
            if let Some(mask) = self.frame.mask() {
                // `start` was the length before the append.
                apply_mask(self.buffer.get_mut(start..).unwrap_or_default(), mask, phase);
            }
        }
        if text {
            // Only an extension that removed bytes before `start` could
            // have cut the buffer below it.
            let added = self
                .buffer
                .get(start..)
                .ok_or_else(|| broken_extension("output removed"))?;
            self.utf8.feed(added)?;
        }
        if last {
            self.on_frame_end(&[], out)
        } else {
            Ok(None)
        }
    }

    /// Decodes a piece of a transformed message's payload (masked, from
    /// `phase` in the mask) into the message buffer. Out of line: rare, and
    /// the extension's work dwarfs the call.
    #[inline(never)]
    fn decode_transformed(&mut self, chunk: &[u8], phase: usize) -> Result<(), Error> {
        let extension = decoder(&mut self.extras)?;
        let mut scratch = [0u8; EXTENSION_CHUNK];
        for (i, piece) in chunk.chunks(EXTENSION_CHUNK).enumerate() {
            // `chunks` gives pieces of at most the scratch's size.
            let plain = scratch
                .get_mut(..piece.len())
                .ok_or_else(|| broken_extension("piece over the scratch size"))?;
            plain.copy_from_slice(piece);
            if let Some(mask) = self.frame.mask() {
                apply_mask(plain, mask, phase.wrapping_add(i * EXTENSION_CHUNK));
            }
            extension
                .decode(
                    plain,
                    false,
                    &mut self.buffer,
                    self.shared.limits().max_message_size,
                )
                .map_err(Error::Extension)?;
        }
        Ok(())
    }

    /// A frame is complete. For control frames `payload` is the whole
    /// payload, still masked.
    fn on_frame_end(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<Option<Event>, Error> {
        match self.frame.opcode {
            OpCode::Ping | OpCode::Pong | OpCode::Close => {
                // The decoder limits control frames to 125 bytes.
                let mut control =
                    ControlPayload::new(payload).ok_or(tether_frame::Error::ControlFrameTooLong)?;
                if let Some(mask) = self.frame.mask() {
                    control.unmask(mask);
                }
                self.on_control(control, out).map(Some)
            }
            _ => self.on_data_frame_end(),
        }
    }

    fn on_control(&mut self, payload: ControlPayload, out: &mut Vec<u8>) -> Result<Event, Error> {
        match self.frame.opcode {
            OpCode::Ping => {
                if !self.sent_close() {
                    self.write_control(OpCode::Pong, &payload, out)?;
                }
                Ok(Event::Ping(payload))
            }
            OpCode::Pong => Ok(Event::Pong(payload)),
            _ => {
                let frame = match parse_close_payload(&payload)? {
                    None => CloseFrame {
                        code: CloseCode::NO_STATUS,
                        reason: String::new(),
                    },
                    Some((code, reason)) => CloseFrame {
                        code,
                        reason: reason.to_owned(),
                    },
                };
                if !self.sent_close() {
                    // Echo the code (not the reason), or nothing if the
                    // peer gave none.
                    let code = frame.code.0.to_be_bytes();
                    let echo = if frame.code == CloseCode::NO_STATUS {
                        &[][..]
                    } else {
                        code.as_slice()
                    };
                    self.write_control(OpCode::Close, echo, out)?;
                }
                self.finish_closed();
                Ok(Event::Close(frame))
            }
        }
    }

    fn on_data_frame_end(&mut self) -> Result<Option<Event>, Error> {
        if !self.frame.fin {
            return Ok(None);
        }
        // A data frame's header made it (part of) the message being
        // received: a continuation with no message is refused there.
        let Some(kind) = self.message else {
            return Err(Error::UnexpectedContinuation);
        };
        if self.compressed() {
            let start = self.buffer.len();
            let extension = decoder(&mut self.extras)?;
            extension
                .decode(&[], true, &mut self.buffer, self.shared.limits().max_message_size)
                .map_err(Error::Extension)?;
            if kind == MessageKind::Text {
                let added = self
                    .buffer
                    .get(start..)
                    .ok_or_else(|| broken_extension("output removed"))?;
                self.utf8.feed(added)?;
            }
        }
        if kind == MessageKind::Text {
            self.utf8.finish()?;
        }
        self.message = None;
        self.set_compressed(false);
        self.fragments = 0;
        Message::received(kind, mem::take(&mut self.buffer)).map(|message| Some(Event::Message(message)))
    }
}

/// The extension, to decode a transformed data message with: there is
/// one, since the decoder only lets through the RSV bits of a transformed
/// message when an extension owns them.
fn decoder(extras: &mut Option<Box<Extras>>) -> Result<&mut (dyn Extension + 'static), Error> {
    extras
        .as_mut()
        .and_then(|e| e.extension.as_deref_mut())
        .ok_or_else(|| broken_extension("no extension for a transformed message"))
}
