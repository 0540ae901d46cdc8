//! The incremental parser: what a client reads.

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::mem;

use crate::error::Error;
use crate::scan::split_eol;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// `Parser::bom` once the start of the stream has been decided.
const BOM_DONE: u8 = u8::MAX;
/// Event data up to this size is copied out so the buffer keeps its
/// capacity for the next event; larger data is handed over without a copy.
const COPY_OUT_MAX: usize = 4 * 1024;
/// After an error the data buffer is dropped if it grew past this, so that
/// one rejected event does not pin its memory.
const KEEP_CAPACITY_MAX: usize = 64 * 1024;

/// Limits on what a peer can make the [`Parser`] hold in memory.
///
/// ```
/// use tether_sse::Limits;
/// let limits = Limits::new().with_max_event_size(1 << 20);
/// assert_eq!(limits.max_event_size(), 1 << 20);
/// assert_eq!(limits.max_line_len(), Limits::DEFAULT_MAX_LINE_LEN);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_line_len: usize,
    max_event_size: usize,
}

impl Limits {
    /// Default for [`Limits::max_line_len`]: 64 KiB.
    pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;
    /// Default for [`Limits::max_event_size`]: 16 MiB.
    pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

    /// The default limits.
    pub const fn new() -> Self {
        Limits {
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            max_event_size: Self::DEFAULT_MAX_EVENT_SIZE,
        }
    }

    /// Sets [`Limits::max_line_len`].
    pub const fn with_max_line_len(mut self, bytes: usize) -> Self {
        self.max_line_len = bytes;
        self
    }

    /// Sets [`Limits::max_event_size`].
    pub const fn with_max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// The longest `id`, `event` or `retry` line accepted, in bytes, from
    /// the first byte of the field name to the last byte before the line
    /// end. These are the only lines the parser has to hold whole. `data`
    /// lines go straight into the event's data and count against
    /// [`Limits::max_event_size`] instead; comments and unknown fields are
    /// skipped as they arrive and cost no memory, so they are not limited.
    pub const fn max_line_len(&self) -> usize {
        self.max_line_len
    }

    /// The largest event data accepted, in bytes: every `data` value of one
    /// event plus one LF per `data` line (the size of the data buffer the
    /// spec describes, before its final LF is removed).
    pub const fn max_event_size(&self) -> usize {
        self.max_event_size
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

/// One dispatched event, as the WHATWG algorithm hands it to a
/// `MessageEvent`: its type, its data and the last event ID at dispatch.
#[derive(Clone)]
pub struct MessageEvent {
    /// `None` is the default type, "message". Shared with the parser, which
    /// reuses it while the type stays the same.
    event_type: Option<Arc<str>>,
    data: String,
    /// Shared with the parser and every event since the ID last changed.
    last_event_id: Arc<str>,
}

impl MessageEvent {
    /// An event as the parser would dispatch it (an empty `event_type` means
    /// `"message"`); handy for comparisons in tests.
    ///
    /// ```
    /// use tether_sse::MessageEvent;
    /// let event = MessageEvent::new("", "hi", "7");
    /// assert_eq!(event.event_type(), "message");
    /// assert_eq!(event, MessageEvent::new("message", String::from("hi"), "7"));
    /// ```
    pub fn new(event_type: &str, data: impl Into<String>, last_event_id: &str) -> Self {
        MessageEvent {
            event_type: (!event_type.is_empty()).then(|| event_type.into()),
            data: data.into(),
            last_event_id: last_event_id.into(),
        }
    }

    /// The event type: the last `event` field of the event, or `"message"`
    /// if there was none or it was empty.
    pub fn event_type(&self) -> &str {
        self.event_type.as_deref().unwrap_or("message")
    }

    /// The data: the `data` values joined with LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The data, without a copy.
    pub fn into_data(self) -> String {
        self.data
    }

    /// The last event ID string when the event was dispatched (its ID, or
    /// the one of an earlier event: the ID persists until changed).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }
}

impl PartialEq for MessageEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_type() == other.event_type()
            && self.data == other.data
            && self.last_event_id == other.last_event_id
    }
}

impl Eq for MessageEvent {}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event_type", &self.event_type())
            .field("data", &self.data)
            .field("last_event_id", &&*self.last_event_id)
            .finish()
    }
}

/// What the parser reports, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An event was dispatched.
    Event(MessageEvent),
    /// A `retry` field with a valid value set the reconnection time, in
    /// milliseconds (values too large for a `u64` saturate).
    Retry(u64),
}

/// Where the parser is inside the current line, when that line started in
/// an earlier chunk (or earlier in this one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// `buf` holds a prefix of a known field name, no colon yet.
    Name,
    /// `buf` holds the start of an `id`, `event` or `retry` line.
    Field,
    /// After `data:`, before the first value byte (which may be the one
    /// space to strip).
    DataSpace,
    /// Inside a `data` value, which goes straight into `data`.
    Data,
    /// The rest of the line means nothing (comment, unknown field, or an
    /// event being skipped after an error).
    Skip,
}

/// The incremental event-stream parser: the WHATWG "parse an event stream"
/// and "interpret an event stream" algorithms, fed any chunks.
///
/// # Calling contract
///
/// Sans-IO, in the words every tether crate uses: bytes in
/// ([`feed`](Parser::feed)), events out ([`poll`](Parser::poll)); a parser
/// writes no bytes and keeps no time, so it has no output buffer, takes no
/// `now` and has no deadline (the caller's reconnection timer uses the
/// `retry` values it yields).
///
/// Sans-IO: the parser never reads, sleeps or allocates more than the
/// [`Limits`] allow; the caller moves the bytes.
///
/// 1. [`feed`](Parser::feed) the bytes of the response body in order, in
///    chunks of any size (a chunk may end anywhere, even inside a CRLF, a
///    UTF-8 character or the BOM). Incomplete input is never an error.
/// 2. After each `feed`, call [`poll`](Parser::poll) until it returns
///    `None`. Items come out in stream order: events, `retry` values exactly
///    where the field was, and errors. The parser queues the items of what
///    it was fed, so not polling only costs memory.
/// 3. When the body ends (connection closed), call
///    [`finish`](Parser::finish): the incomplete event, if any, is discarded
///    (its `id` never becomes the last event ID) and the parser is ready for
///    the next stream, a reconnection, keeping the last event ID and the
///    reconnection time the way `EventSource` does.
///
/// # Errors and what happens after them
///
/// The only errors are the peer going past the [`Limits`]
/// ([`Error::LineTooLong`], [`Error::EventTooLarge`]), reported the moment
/// the limit is crossed, without buffering the excess. The parser then drops
/// the event in progress (its data, type and `id` field) and skips input up
/// to the blank line that ends it; after that it parses normally again. The
/// last event ID is the one committed before the dropped event. A caller
/// that prefers to give up can simply stop feeding, or [`finish`] and
/// reconnect.
///
/// [`finish`]: Parser::finish
///
/// # Example
///
/// ```
/// use tether_sse::{Item, MessageEvent, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"retry: 3000\nid: 1\nevent: tick\ndata: first\ndata: sec");
/// parser.feed(b"ond\n\n: heartbeat\r\ndata: incomplete");
/// parser.finish();
///
/// assert_eq!(parser.poll(), Some(Ok(Item::Retry(3000))));
/// assert_eq!(
///     parser.poll(),
///     Some(Ok(Item::Event(MessageEvent::new("tick", "first\nsecond", "1"))))
/// );
/// assert_eq!(parser.poll(), None);
/// assert_eq!(parser.last_event_id(), "1");
/// assert_eq!(parser.retry(), Some(3000));
/// ```
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    /// BOM bytes matched at the start of the stream, or `BOM_DONE`.
    bom: u8,
    /// The previous chunk ended with a CR: a LF first in the next chunk
    /// belongs to that line end.
    after_cr: bool,
    line: Line,
    /// The start of the current line, in states `Name` and `Field`.
    buf: Vec<u8>,
    /// After an error: ignore lines up to the next blank line.
    skip_event: bool,
    /// No event dispatched yet in this stream, so the last event ID buffer
    /// started empty rather than equal to the last event ID.
    fresh_stream: bool,
    data: Vec<u8>,
    event_type: Vec<u8>,
    id_buffer: Vec<u8>,
    last_event_id: Arc<str>,
    /// The type of the last event dispatched with a non-default type, kept
    /// to share it with the next event of the same type.
    last_type: Option<Arc<str>>,
    retry: Option<u64>,
    out: VecDeque<Result<Item, Error>>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::new())
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Parser {
            limits,
            bom: 0,
            after_cr: false,
            line: Line::Start,
            buf: Vec::new(),
            skip_event: false,
            fresh_stream: true,
            data: Vec::new(),
            event_type: Vec::new(),
            id_buffer: Vec::new(),
            last_event_id: Arc::from(""),
            last_type: None,
            retry: None,
            out: VecDeque::new(),
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last event ID string: what a reconnecting client sends as
    /// `Last-Event-ID`. It changes only when an event is dispatched.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time the stream asked for, in milliseconds, if any
    /// valid `retry` field arrived.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Takes the next item, in stream order; `None` when the parser needs
    /// more input.
    pub fn poll(&mut self) -> Option<Result<Item, Error>> {
        self.out.pop_front()
    }

    /// Parses the next bytes of the stream. Queues what they complete for
    /// [`Parser::poll`].
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut chunk = chunk;
        if self.bom != BOM_DONE {
            let matched = usize::from(self.bom);
            let n = chunk
                .iter()
                .zip(BOM.iter().skip(matched))
                .take_while(|(a, b)| a == b)
                .count();
            let (bom, rest) = BOM.split_at_checked(matched + n).unwrap_or((&BOM, &[]));
            if rest.is_empty() {
                self.bom = BOM_DONE;
            } else if n == chunk.len() {
                // Still a BOM prefix: wait for the bytes that decide (fewer
                // than the BOM's three, so the narrowing is exact).
                self.bom = u8::try_from(bom.len()).unwrap_or(BOM_DONE);
                return;
            } else {
                // Not a BOM after all: the bytes held back are stream data.
                self.bom = BOM_DONE;
                self.body(bom);
            }
            chunk = chunk.get(n..).unwrap_or_default();
        }
        self.body(chunk);
    }

    /// Ends the stream: discards the incomplete line and event, and resets
    /// the per-stream state (the BOM check, the event type and last event ID
    /// buffers) for a new stream. Keeps the last event ID, the reconnection
    /// time and any items not yet polled.
    pub fn finish(&mut self) {
        self.bom = 0;
        self.after_cr = false;
        self.line = Line::Start;
        self.buf.clear();
        self.skip_event = false;
        self.fresh_stream = true;
        self.discard_data();
        self.event_type.clear();
        self.id_buffer.clear();
    }

    fn body(&mut self, mut chunk: &[u8]) {
        if self.after_cr {
            let Some((&first, rest)) = chunk.split_first() else {
                return;
            };
            self.after_cr = false;
            if first == b'\n' {
                chunk = rest;
            }
        }
        if self.line != Line::Start {
            match split_eol(chunk) {
                None => {
                    self.continue_line(chunk);
                    return;
                }
                Some((line, eol)) => {
                    self.continue_line(line);
                    self.end_line();
                    chunk = self.after_eol(eol);
                }
            }
        }
        // The fast path: whole lines straight from the chunk, no copy.
        while let Some((line, eol)) = split_eol(chunk) {
            self.process_line(line);
            chunk = self.after_eol(eol);
        }
        if !chunk.is_empty() {
            self.begin_line(chunk);
        }
    }

    /// What follows the line end `eol` starts with, which is CR, LF or
    /// CRLF; a CR that ends the chunk is a complete line end, and a LF
    /// starting the next chunk is then skipped.
    #[inline]
    fn after_eol<'c>(&mut self, eol: &'c [u8]) -> &'c [u8] {
        match eol {
            [b'\r', b'\n', rest @ ..] => rest,
            [b'\r'] => {
                self.after_cr = true;
                &[]
            }
            [_, rest @ ..] => rest,
            [] => eol,
        }
    }

    /// A complete line, CR and LF excluded: the spec's line processing.
    fn process_line(&mut self, line: &[u8]) {
        if self.skip_event {
            self.skip_event = !line.is_empty();
            return;
        }
        let Some(&first) = line.first() else {
            self.dispatch();
            return;
        };
        if first == b':' {
            return;
        }
        // Every name acted on is at most five bytes, so a colon further in
        // (or none) means an unknown field: no need to scan a long line.
        let head = line.get(..6).unwrap_or(line);
        let (name, value) = match head
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| line.split_at_checked(colon))
        {
            Some((name, colon_value)) => {
                let value = colon_value.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None if line.len() < 6 => (line, &[][..]),
            None => return,
        };
        match name {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limits.max_event_size {
                    self.fail(Error::EventTooLarge {
                        limit: self.limits.max_event_size,
                    });
                } else {
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                }
            }
            b"event" | b"id" | b"retry" if line.len() > self.limits.max_line_len => {
                self.fail(Error::LineTooLong {
                    limit: self.limits.max_line_len,
                });
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.extend_from_slice(value);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().fold(0u64, |ms, d| {
                    ms.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry = Some(ms);
                self.out.push_back(Ok(Item::Retry(ms)));
            }
            // Unknown fields, and `id` with NUL or `retry` with anything but
            // digits, which the spec ignores.
            _ => {}
        }
    }

    /// The spec's "dispatch the event", on a blank line.
    fn dispatch(&mut self) {
        self.fresh_stream = false;
        // Bytes equal to the decoded string mean the same string (invalid
        // UTF-8 never compares equal, and just costs a new allocation).
        if self.id_buffer != self.last_event_id.as_bytes() {
            self.last_event_id = Arc::from(decode(&self.id_buffer));
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // Every data line appended a LF; the spec removes the last one.
        self.data.pop();
        let data = if self.data.len() <= COPY_OUT_MAX {
            let data = decode(&self.data).into_owned();
            self.data.clear();
            data
        } else {
            let bytes = mem::take(&mut self.data);
            String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let event_type = if self.event_type.is_empty() {
            None
        } else {
            match &self.last_type {
                Some(last) if *last.as_bytes() == *self.event_type => {}
                _ => self.last_type = Some(Arc::from(decode(&self.event_type))),
            }
            self.last_type.clone()
        };
        self.event_type.clear();
        self.out.push_back(Ok(Item::Event(MessageEvent {
            event_type,
            data,
            last_event_id: Arc::clone(&self.last_event_id),
        })));
    }

    /// Reports a limit error and drops the event in progress.
    fn fail(&mut self, error: Error) {
        self.out.push_back(Err(error));
        self.discard_data();
        self.event_type.clear();
        // Back to what the last event ID buffer held when this event began.
        self.id_buffer.clear();
        if !self.fresh_stream {
            self.id_buffer.extend_from_slice(self.last_event_id.as_bytes());
        }
        self.skip_event = true;
    }

    fn discard_data(&mut self) {
        if self.data.capacity() > KEEP_CAPACITY_MAX {
            self.data = Vec::new();
        } else {
            self.data.clear();
        }
    }

    /// The first bytes of a line that does not end in this chunk.
    fn begin_line(&mut self, part: &[u8]) {
        if self.skip_event || part.first() == Some(&b':') {
            self.line = Line::Skip;
            return;
        }
        // As in `process_line`, only a colon in the first six bytes counts.
        let head = part.get(..6).unwrap_or(part);
        match head
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| part.split_at_checked(colon))
        {
            Some((name, colon_value)) => match name {
                b"data" => {
                    self.line = Line::DataSpace;
                    self.continue_line(colon_value.get(1..).unwrap_or_default());
                }
                b"event" | b"id" | b"retry" => {
                    self.line = Line::Field;
                    self.continue_line(part);
                }
                _ => self.line = Line::Skip,
            },
            None if is_name_prefix(part) => {
                self.line = Line::Name;
                self.buf.extend_from_slice(part);
            }
            None => self.line = Line::Skip,
        }
    }

    /// More bytes of the current line, which began earlier; `part` holds no
    /// line end and may be empty.
    fn continue_line(&mut self, mut part: &[u8]) {
        if self.line == Line::Name {
            part = self.resume_name(part);
        }
        match self.line {
            Line::Start | Line::Name | Line::Skip => {}
            Line::Field => {
                if self.buf.len() + part.len() > self.limits.max_line_len {
                    self.buf.clear();
                    self.fail(Error::LineTooLong {
                        limit: self.limits.max_line_len,
                    });
                    self.line = Line::Skip;
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            Line::DataSpace | Line::Data => {
                if self.line == Line::DataSpace {
                    let Some((&first, rest)) = part.split_first() else {
                        return;
                    };
                    self.line = Line::Data;
                    if first == b' ' {
                        part = rest;
                    }
                }
                if self.data.len() + part.len() + 1 > self.limits.max_event_size {
                    self.fail(Error::EventTooLarge {
                        limit: self.limits.max_event_size,
                    });
                    self.line = Line::Skip;
                } else {
                    self.data.extend_from_slice(part);
                }
            }
        }
    }

    /// Moves bytes into `buf` until the field name is decided, and returns
    /// the bytes after the ones it took. Only a handful of bytes: every
    /// known name is five bytes or less.
    fn resume_name<'c>(&mut self, part: &'c [u8]) -> &'c [u8] {
        let mut rest = part;
        while let Some((&b, tail)) = rest.split_first() {
            rest = tail;
            if b == b':' {
                self.line = match &self.buf[..] {
                    b"data" => Line::DataSpace,
                    b"event" | b"id" | b"retry" => Line::Field,
                    _ => Line::Skip,
                };
                if self.line == Line::Field {
                    self.buf.push(b);
                } else {
                    self.buf.clear();
                }
                return rest;
            }
            self.buf.push(b);
            if !is_name_prefix(&self.buf) {
                self.buf.clear();
                self.line = Line::Skip;
                return rest;
            }
        }
        rest
    }

    /// The end of a line that began in an earlier chunk.
    fn end_line(&mut self) {
        match mem::replace(&mut self.line, Line::Start) {
            Line::Start | Line::Skip => {}
            Line::Name | Line::Field => {
                let line = mem::take(&mut self.buf);
                self.process_line(&line);
                self.buf = line;
                self.buf.clear();
            }
            Line::DataSpace | Line::Data => {
                if self.data.len() + 1 > self.limits.max_event_size {
                    self.fail(Error::EventTooLarge {
                        limit: self.limits.max_event_size,
                    });
                } else {
                    self.data.push(b'\n');
                }
            }
        }
    }
}

/// UTF-8 decoding with U+FFFD for invalid input, the validating fast path
/// first (the lossy decoder is several times slower on valid text).
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match core::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Whether `head` could still grow into a field name the parser acts on.
fn is_name_prefix(head: &[u8]) -> bool {
    [&b"data"[..], b"event", b"id", b"retry"]
        .iter()
        .any(|name| name.starts_with(head))
}
