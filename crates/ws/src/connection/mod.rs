//! The connection state machine.
//!
//! The connection and its state live here; what it does is beside it:
//! `receive.rs` takes frames in, `send.rs` frames messages out, `close.rs`
//! runs the close handshake and failures, `timers.rs` the keepalive ping
//! and the idle and close timeouts, and `shared.rs` holds the
//! configuration connections share.

mod close;
mod receive;
mod send;
mod shared;
mod timers;

use std::mem;
use std::time::Instant;

use tether_frame::{
    CloseCode, DecodeRules, FrameHeader, FrameReader, MaskRule, OpCode, Rsv, Utf8Validator, encode_frame,
};

use crate::config::{Config, MaskSource, Role};
use crate::error::Error;
use crate::event::{ControlPayload, MessageKind};
use crate::extension::{Extension, ExtensionError};

pub use shared::SharedConfig;

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's. Incoming messages are
    /// still delivered; nothing but the handshake goes out.
    Closing,
    /// The close handshake is over, or the connection failed. Nothing more
    /// is read or written: the transport should be closed once the output
    /// written so far is flushed.
    Closed,
}

/// The frame being received: what it is and how to unmask it.
#[derive(Debug, Clone, Copy)]
struct CurrentFrame {
    opcode: OpCode,
    fin: bool,
    /// The masking key; all zero for none, since unmasking with a zero
    /// key changes nothing (a byte less than an `Option`).
    key: [u8; 4],
}

impl CurrentFrame {
    /// The key to unmask the payload with, if it changes anything.
    fn mask(&self) -> Option<[u8; 4]> {
        (self.key != [0; 4]).then_some(self.key)
    }
}

/// [`State`] with the keepalive ping folded in: one byte for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Open, and no ping sent since something last arrived.
    Open,
    /// Open, and a keepalive ping sent since something last arrived.
    Pinged,
    Closing,
    Closed,
}

/// The failure of a transformed message on this side's account: an
/// extension that broke [`Extension`]'s contract (it removed bytes it was
/// to leave alone), or a state a correct connection never reaches (no
/// extension to decode with). 1011, the endpoint's unexpected condition.
fn broken_extension(reason: &'static str) -> Error {
    Error::Extension(ExtensionError {
        code: CloseCode::INTERNAL_ERROR,
        reason,
    })
}

/// A WebSocket connection without I/O (RFC 6455), for either role.
///
/// # Calling contract
///
/// Sans-IO, in the words every tether crate uses: bytes in
/// ([`receive`](Self::receive)), events and bytes out (the [`Event`] it
/// returns; frames into the caller's `out`), time passed in (`now`), the
/// next deadline out ([`poll_timeout`](Self::poll_timeout)).
///
/// [`Event`]: crate::event::Event
///
/// The connection never touches a socket or a clock. The caller:
///
/// 1. feeds every byte read from the transport to [`receive`](Self::receive),
///    in order, in any split, together with the current time. Each call
///    consumes bytes up to and including the next complete event and returns
///    how many it used along with the event, so the caller loops until the
///    input is used up;
/// 2. appends outgoing data with [`send`](Self::send),
///    [`send_text`](Self::send_text), [`send_binary`](Self::send_binary),
///    [`ping`](Self::ping) and [`close`](Self::close). Every method that can
///    produce bytes writes them to an output buffer the caller owns and
///    passes in (`out`), including the automatic pong to a ping and the
///    echo of a close frame written during `receive`; the caller writes that
///    buffer to the transport;
/// 3. asks [`poll_timeout`](Self::poll_timeout) for the next deadline (ping,
///    idle or close timeout) and calls [`handle_timeout`](Self::handle_timeout)
///    when it has passed;
/// 4. closes the transport when [`state`](Self::state) is
///    [`State::Closed`] and the output is flushed. A server closes TCP first
///    (RFC 6455 section 7.1.1), so it does so at once; a client should give
///    the server a moment to do it before closing itself.
///
/// Protocol violations and exceeded limits are reported as
/// [`Event::Failed`], after the close frame with the matching code (1002,
/// 1007, 1009) has been written; the connection is then closed and ignores
/// further input.
///
/// [`Event::Failed`]: crate::event::Event::Failed
///
/// # Example
///
/// A server-side echo of the RFC's masked "Hello":
///
/// ```
/// use std::time::Instant;
/// use tether_ws::{Config, Connection, Event, Role};
///
/// let now = Instant::now();
/// let mut conn = Connection::new(Role::Server, Config::default(), now);
/// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut out = Vec::new();
/// let mut input = &wire[..];
/// while !input.is_empty() {
///     let (used, event) = conn.receive(input, now, &mut out);
///     input = &input[used..];
///     if let Some(Event::Message(msg)) = event {
///         assert_eq!(msg.as_text(), Some("Hello"));
///         conn.send(&msg, &mut out)?;
///     }
/// }
/// assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// # Ok::<(), tether_ws::Error>(())
/// ```
pub struct Connection {
    /// The limits and timers, shared with the other connections made from
    /// the same [`SharedConfig`].
    shared: SharedConfig,
    /// The client's mask source, any negotiated extension and a control
    /// frame split across reads: rare, so kept out of line to keep every
    /// connection small.
    extras: Option<Box<Extras>>,
    /// The frame decoder, under [`Connection::rules`].
    reader: FrameReader,
    /// Where the close handshake stands (a close frame has been sent
    /// once it is past `Open`), and whether a keepalive ping is out.
    phase: Phase,
    frame: CurrentFrame,
    /// The data message being received, if any.
    message: Option<MessageKind>,
    fragments: u32,
    utf8: Utf8Validator,
    buffer: Vec<u8>,
    /// In the Open state, when something last arrived (the ping and idle
    /// timers count from it); in the Closing state, the close deadline. As
    /// nanoseconds from the shared epoch ([`SharedConfig::offset`]): 8
    /// bytes where an `Instant` takes 16.
    timer: i64,
}

/// What few connections have.
#[derive(Default)]
struct Extras {
    masks: Option<MaskSource>,
    extension: Option<Box<dyn Extension>>,
    /// A control frame's payload when it arrives split across reads
    /// (rare; `None` otherwise).
    control: Option<Box<ControlPayload>>,
    /// The data message being received is transformed by the extension.
    compressed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &if self.is_client() { "client" } else { "server" })
            .field("state", &self.state())
            .field("message", &self.message)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection whose opening handshake has just completed at `now`.
    ///
    /// It keeps `config` in an allocation of its own; many connections
    /// with the same configuration share one with
    /// [`with_shared`](Self::with_shared) instead.
    pub fn new(role: Role, config: Config, now: Instant) -> Connection {
        Connection::with_shared(role, &SharedConfig::new(config, now), now)
    }

    /// As [`new`](Self::new), with the configuration `shared` with other
    /// connections.
    pub fn with_shared(role: Role, shared: &SharedConfig, now: Instant) -> Connection {
        let extras = match role {
            Role::Server => None,
            Role::Client(source) => Some(Box::new(Extras {
                masks: Some(source),
                ..Extras::default()
            })),
        };
        Connection {
            shared: shared.clone(),
            extras,
            reader: FrameReader::new(),
            phase: Phase::Open,
            frame: CurrentFrame {
                opcode: OpCode::Continuation,
                fin: true,
                key: [0; 4],
            },
            message: None,
            fragments: 0,
            utf8: Utf8Validator::new(),
            buffer: Vec::new(),
            timer: shared.offset(now),
        }
    }

    /// Installs a negotiated extension; its RSV bits become legal on data
    /// frames.
    pub fn with_extension(mut self, extension: Box<dyn Extension>) -> Connection {
        self.extras.get_or_insert_with(Box::default).extension = Some(extension);
        self
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Open | Phase::Pinged => State::Open,
            Phase::Closing => State::Closing,
            Phase::Closed => State::Closed,
        }
    }

    /// Whether our close frame has gone out (or the connection failed).
    fn sent_close(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Closed)
    }

    /// Whether the data message being received is transformed by the
    /// extension (kept beside the extension, out of line).
    fn compressed(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| e.compressed)
    }

    fn set_compressed(&mut self, compressed: bool) {
        if compressed {
            self.extras.get_or_insert_with(Box::default).compressed = true;
        } else if let Some(extras) = self.extras.as_mut() {
            extras.compressed = false;
        }
    }

    /// The limits and timers in force (timers to the millisecond).
    pub fn config(&self) -> Config {
        self.shared.config()
    }

    /// Whether this is the client end.
    pub fn is_client(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| e.masks.is_some())
    }

    /// What the frame decoder enforces: the role's masking, the
    /// extension's RSV bits and the shared frame size limit.
    fn rules(&self) -> DecodeRules {
        DecodeRules {
            mask: if self.is_client() {
                MaskRule::Forbidden
            } else {
                MaskRule::Required
            },
            allowed_rsv: self
                .extras
                .as_ref()
                .and_then(|e| e.extension.as_ref())
                .map_or(Rsv::NONE, |extension| extension.rsv()),
            max_payload: self.shared.0.max_frame_size,
        }
    }

    /// The control payload being gathered, if any.
    fn control(&self) -> Option<&ControlPayload> {
        self.extras.as_ref().and_then(|e| e.control.as_deref())
    }

    /// Drops the control payload being gathered, and the out-of-line room
    /// with it when nothing else is there.
    fn take_control(&mut self) -> Option<Box<ControlPayload>> {
        let extras = self.extras.as_mut()?;
        let control = extras.control.take();
        if extras.masks.is_none() && extras.extension.is_none() {
            self.extras = None;
        }
        control
    }

    fn masks(&mut self) -> Option<&mut MaskSource> {
        self.extras.as_mut().and_then(|e| e.masks.as_mut())
    }

    /// Lends the connection an empty buffer to receive the next message
    /// into, so that a caller with a pool of recycled buffers spares an
    /// allocation per message. Ignored (dropped) while a message is being
    /// received or a buffer is already lent, when the buffer is handed
    /// straight back. Take a lent buffer back with
    /// [`reclaim_buffer`](Self::reclaim_buffer) if no message used it, so
    /// that an idle connection holds none.
    pub fn lend_buffer(&mut self, mut buffer: Vec<u8>) -> Option<Vec<u8>> {
        if self.message.is_some() || self.buffer.capacity() > 0 || buffer.capacity() == 0 {
            return Some(buffer);
        }
        buffer.clear();
        self.buffer = buffer;
        None
    }

    /// Gives back a lent buffer that no message has started to use.
    pub fn reclaim_buffer(&mut self) -> Option<Vec<u8>> {
        (self.message.is_none() && self.buffer.capacity() > 0).then(|| mem::take(&mut self.buffer))
    }

    /// The bytes held of the data message being received (decompressed
    /// where an extension transforms it): 0 between messages, and for a
    /// message whole in one read (handed on where it lies).
    pub fn receiving_len(&self) -> usize {
        if self.message.is_some() {
            self.buffer.len()
        } else {
            0
        }
    }

    /// Writes a control frame; refused (nothing written) if `payload` is
    /// over 125 bytes.
    fn write_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        write_frame(self.masks(), out, opcode, Rsv::NONE, payload)
    }
}

/// Writes one whole frame, masked with a fresh key in the client role.
fn write_frame(
    masks: Option<&mut MaskSource>,
    out: &mut Vec<u8>,
    opcode: OpCode,
    rsv: Rsv,
    payload: &[u8],
) -> Result<(), Error> {
    let mut header = FrameHeader::new(true, opcode, 0).with_rsv(rsv);
    if let Some(source) = masks {
        header = header.with_mask(source());
    }
    encode_frame(out, header, payload)?;
    Ok(())
}
