//! The connection state machine.

use std::mem;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_frame::{
    CloseCode, DecodeRules, FrameHeader, FrameReader, Item, MAX_HEADER_LEN, MaskRule, OpCode, Rsv,
    Utf8Validator, apply_mask, encode_close_payload, encode_frame, parse_close_payload,
};

use crate::{
    CloseFrame, Config, ControlPayload, Error, Event, Extension, ExtensionError, Limit, MaskSource, Message,
    MessageKind, MessageRef, Role,
};

/// What [`Connection::receive_in_place`] found.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A data message that lay whole in the input, unmasked there and
    /// lent out.
    Borrowed(MessageRef<'a>),
    /// Any other event, an owned [`Event::Message`] included.
    Event(Event),
}

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

/// Below this size [`Connection::send_owned`] copies the payload after
/// its header: one buffer is cheaper to write than two slices.
const SEND_OWNED_MIN: usize = 4096;

/// Bytes of a transformed (e.g. compressed) payload unmasked per step
/// before the extension decodes them; a stack buffer, so no allocation.
const EXTENSION_CHUNK: usize = 4096;

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

/// A [`Config`] made ready once for many connections: each connection
/// made from it with [`Connection::with_shared`] holds a pointer to it
/// rather than its own copy of the limits (a server with thousands of
/// idle connections keeps them all small this way). Cloning it is cheap.
///
/// ```
/// use std::time::Instant;
/// use tether_ws::{Config, Connection, Role, SharedConfig};
///
/// let now = Instant::now();
/// let shared = SharedConfig::new(Config::default().max_fragments(10), now);
/// let a = Connection::with_shared(Role::Server, &shared, now);
/// let b = Connection::with_shared(Role::Server, &shared, now);
/// assert_eq!(a.config(), b.config());
/// assert_eq!(a.config().max_fragments, 10);
/// ```
#[derive(Debug, Clone)]
pub struct SharedConfig(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    limits: Limits,
    max_frame_size: u64,
    /// What connection timers count from. Any instant works, before or
    /// after it: the count is signed.
    epoch: Instant,
}

impl SharedConfig {
    /// `config`, ready to be shared. `epoch` is any instant near the
    /// times the connections will see (the time now, say): their timers
    /// are kept as nanoseconds from it, up to 292 years either way.
    pub fn new(config: Config, epoch: Instant) -> SharedConfig {
        SharedConfig(Arc::new(Shared {
            limits: Limits::new(&config),
            max_frame_size: config.max_frame_size,
            epoch,
        }))
    }

    /// The limits and timers (timers to the millisecond).
    pub fn config(&self) -> Config {
        let limits = &self.0.limits;
        Config::DEFAULT
            .max_frame_size(self.0.max_frame_size)
            .max_message_size(limits.max_message_size)
            .max_fragments(limits.max_fragments)
            .ping_interval(limits.ping_interval())
            .idle_timeout(limits.idle_timeout())
            .close_timeout(limits.close_timeout())
    }

    fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// `at` as signed nanoseconds from the epoch (saturating beyond 292
    /// years).
    fn offset(&self, at: Instant) -> i64 {
        let epoch = self.0.epoch;
        match at.checked_duration_since(epoch) {
            Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            None => i64::try_from(epoch.duration_since(at).as_nanos()).map_or(i64::MIN, |before| -before),
        }
    }

    /// The instant `offset` names (see [`SharedConfig::offset`]).
    fn instant(&self, offset: i64) -> Instant {
        let epoch = self.0.epoch;
        let span = Duration::from_nanos(offset.unsigned_abs());
        if offset >= 0 {
            epoch.checked_add(span)
        } else {
            epoch.checked_sub(span)
        }
        .unwrap_or(epoch)
    }
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

/// [`Config`] as connections share it: milliseconds in 32 bits (up to 49
/// days), 0 for "none", and the frame limit beside it.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_message_size: usize,
    max_fragments: u32,
    ping_ms: u32,
    idle_ms: u32,
    close_ms: u32,
}

impl Limits {
    fn new(config: &Config) -> Limits {
        let ms =
            |d: Option<Duration>| d.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1));
        Limits {
            max_message_size: config.max_message_size,
            max_fragments: config.max_fragments,
            ping_ms: ms(config.ping_interval),
            idle_ms: ms(config.idle_timeout),
            close_ms: ms(Some(config.close_timeout)),
        }
    }

    fn ping_interval(&self) -> Option<Duration> {
        (self.ping_ms > 0).then(|| Duration::from_millis(self.ping_ms.into()))
    }

    fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_ms > 0).then(|| Duration::from_millis(self.idle_ms.into()))
    }

    fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_ms.into())
    }
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

    /// Fails the connection for a limit its caller keeps (such as
    /// [`Limit::SharedMessages`]) as [`receive`](Self::receive) does for
    /// its own: a close frame with 1009 and the limit as its reason is
    /// written to `out` unless a close frame was already sent, the message
    /// being received is dropped, and the connection is closed. Returns
    /// the event to hand on, [`Event::Failed`].
    pub fn fail_over_limit(&mut self, limit: Limit, max: u64, out: &mut Vec<u8>) -> Event {
        self.fail(Error::Limit { limit, max }, out)
    }

    /// Whether a data message may still be sent (no close frame sent yet).
    pub fn can_send(&self) -> bool {
        !self.sent_close()
    }

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
        let (used, step) = self.step(data, true, now, out);
        let (start, kind) = match step {
            None => return (used, None),
            Some(Step::Event(event)) => return (used, Some(Incoming::Event(event))),
            Some(Step::InPlace { start, kind }) => (start, kind),
        };
        let len = data.len();
        // The step reports a payload within the bytes it used: `start` is
        // at most `used`, and `used` at most `data.len()`.
        let payload = data.get_mut(start..used).unwrap_or_default();
        if let Some(mask) = self.frame.mask() {
            apply_mask(payload, mask, 0);
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
        (used, Some(Incoming::Borrowed(message)))
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
        if !data.is_empty() && matches!(self.phase, Phase::Open | Phase::Pinged) {
            self.timer = self.shared.offset(now);
            self.phase = Phase::Open;
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

    /// Fails the connection: writes a close frame with the error's code
    /// unless one was already sent, and closes.
    fn fail(&mut self, error: Error, out: &mut Vec<u8>) -> Event {
        if !self.sent_close()
            && let Some(code) = error.close_code()
        {
            let mut payload = Vec::with_capacity(125);
            let reason = error.to_string();
            let reason = truncate_utf8(&reason, tether_frame::MAX_CLOSE_REASON);
            // The reason fits, but an extension's own code may be one that
            // cannot be sent: the close frame then goes without a payload.
            if encode_close_payload(&mut payload, code, reason).is_err() {
                payload.clear();
            }
            // At most 125 bytes, which a control frame always takes; were
            // it refused, the connection would close all the same.
            let _refused = self.write_control(OpCode::Close, &payload, out);
        }
        self.finish_closed();
        Event::Failed(error)
    }

    fn finish_closed(&mut self) {
        self.phase = Phase::Closed;
        self.message = None;
        self.buffer = Vec::new();
        self.take_control();
    }

    /// Writes a control frame; refused (nothing written) if `payload` is
    /// over 125 bytes.
    fn write_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        write_frame(self.masks(), out, opcode, Rsv::NONE, payload)
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
    /// [`receive_in_place`](Self::receive_in_place) lent out, and the bytes
    /// before it are free to overwrite (there, the header it came with,
    /// which is always longer than this side's for the same payload, unless
    /// that header came in an earlier input). This
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
        let mut header = FrameHeader::new(true, opcode, (payload.end - payload.start) as u64);
        let masked = self.masks().is_some();
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

    /// Starts the close handshake: writes a close frame and waits (up to
    /// the close timeout from `now`) for the peer's.
    ///
    /// The code must be one that may be sent (1000-1003, 1007-1014,
    /// 3000-4999) and the reason at most 123 bytes.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.sent_close() {
            return Err(Error::AlreadyClosing);
        }
        let mut payload = Vec::with_capacity(2 + reason.len());
        encode_close_payload(&mut payload, code, reason).map_err(Error::InvalidClose)?;
        self.write_control(OpCode::Close, &payload, out)?;
        self.phase = Phase::Closing;
        // From here the timer is the close deadline.
        self.timer = self.shared.offset(now + self.shared.limits().close_timeout());
        Ok(())
    }

    /// The next moment [`handle_timeout`](Self::handle_timeout) has work
    /// to do: a keepalive ping, the idle timeout or the close timeout.
    /// `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline().map(|at| self.shared.instant(at))
    }

    /// [`poll_timeout`](Self::poll_timeout) as an offset from the shared
    /// epoch: worked out in integers, and turned into an `Instant` once.
    fn deadline(&self) -> Option<i64> {
        match self.phase {
            Phase::Closed => None,
            Phase::Closing => Some(self.timer),
            Phase::Open | Phase::Pinged => {
                let limits = self.shared.limits();
                let ping = match self.phase {
                    Phase::Open => after_ms(self.timer, limits.ping_ms),
                    _ => None,
                };
                match (ping, after_ms(self.timer, limits.idle_ms)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Acts on timers that are due at `now`: sends the keepalive ping
    /// (into `out`), or fails the connection on the idle or close timeout.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Event> {
        let now = self.shared.offset(now);
        let limits = *self.shared.limits();
        match self.phase {
            Phase::Closed => None,
            Phase::Closing if now >= self.timer => {
                self.finish_closed();
                Some(Event::Failed(Error::CloseTimeout))
            }
            Phase::Closing => None,
            Phase::Open | Phase::Pinged => {
                if after_ms(self.timer, limits.idle_ms).is_some_and(|idle| now >= idle) {
                    return Some(self.fail(Error::IdleTimeout, out));
                }
                if self.phase == Phase::Open
                    && after_ms(self.timer, limits.ping_ms).is_some_and(|ping| now >= ping)
                {
                    if let Err(e) = self.write_control(OpCode::Ping, &[], out) {
                        return Some(self.fail(e, out));
                    }
                    self.phase = Phase::Pinged;
                }
                None
            }
        }
    }
}

/// The offset `ms` milliseconds after `timer` (both as
/// [`SharedConfig::offset`] counts them), or `None` for a timer that is
/// off (0).
fn after_ms(timer: i64, ms: u32) -> Option<i64> {
    (ms > 0).then(|| timer.saturating_add(i64::from(ms) * 1_000_000))
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

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    // `get` refuses an end inside a character; one of the four ends at or
    // below `max` is a boundary (0 is one).
    (0..=s.len().min(max))
        .rev()
        .find_map(|end| s.get(..end))
        .unwrap_or_default()
}
