//! What both ends of a connection do alike: flow-control windows and
//! their WINDOW_UPDATEs, header blocks joined from HEADERS and
//! CONTINUATION, fields and data cut into frames, PING answers, and the
//! budgets against floods of acknowledgements and empty frames.

use std::borrow::Cow;

use crate::frame::{
    Continuation, Data, FrameHeader, FrameKind, Headers, MAX_WINDOW_SIZE, Ping, WindowUpdate, flags,
};
use crate::hpack::{self, Field};

/// The flow-control window every stream and the connection start with
/// (§6.9.2).
pub(crate) const DEFAULT_WINDOW: u32 = 65_535;

/// One stream's windows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamFlow {
    /// What we may send.
    pub(crate) send_window: i64,
    /// What the peer may send.
    pub(crate) recv_window: i64,
    /// Delivered in events and not yet released.
    pub(crate) unreleased: u64,
}

impl StreamFlow {
    pub(crate) fn new(send: u32, recv: u32) -> Self {
        Self {
            send_window: i64::from(send),
            recv_window: i64::from(recv),
            unreleased: 0,
        }
    }

    /// A WINDOW_UPDATE for the stream; false if it would pass 2^31-1 (a
    /// stream error, FLOW_CONTROL_ERROR).
    pub(crate) fn grow_send(&mut self, increment: u32) -> bool {
        let grown = self.send_window + i64::from(increment);
        if grown > i64::from(MAX_WINDOW_SIZE) {
            return false;
        }
        self.send_window = grown;
        true
    }
}

/// Moves every stream's send window by the change of the peer's
/// SETTINGS_INITIAL_WINDOW_SIZE from `old` to `new` (§6.9.2: windows may
/// go negative). False, changing nothing, if one would pass 2^31-1 (a
/// connection error) at `highest`, the largest value on the way.
pub(crate) fn shift_send_windows(streams: &mut [&mut StreamFlow], old: u32, highest: u32, new: u32) -> bool {
    let max = i64::from(MAX_WINDOW_SIZE);
    let peak = i64::from(highest) - i64::from(old);
    if streams.iter().any(|s| s.send_window + peak > max) {
        return false;
    }
    let delta = i64::from(new) - i64::from(old);
    for s in streams {
        s.send_window += delta;
    }
    true
}

/// The connection's windows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnFlow {
    /// What the peer may send.
    pub(crate) recv_window: i64,
    /// Delivered in events and not yet released.
    pub(crate) unreleased: u64,
    /// What we may send.
    pub(crate) send_window: i64,
}

impl ConnFlow {
    pub(crate) fn new() -> Self {
        Self {
            recv_window: i64::from(DEFAULT_WINDOW),
            unreleased: 0,
            send_window: i64::from(DEFAULT_WINDOW),
        }
    }

    /// Raises our receive window from 65535 to `window` with a
    /// WINDOW_UPDATE (sent at the start).
    pub(crate) fn open_to(&mut self, window: u32, out: &mut Vec<u8>) {
        self.give_back(i64::from(window) - i64::from(DEFAULT_WINDOW), out);
    }

    /// What may be sent now on `stream`: the smaller window, never
    /// negative.
    pub(crate) fn room(&self, stream: &StreamFlow) -> usize {
        let room = stream.send_window.min(self.send_window).max(0);
        usize::try_from(room).unwrap_or(usize::MAX)
    }

    /// Counts `n` bytes sent (at most [`ConnFlow::room`]) on both windows.
    pub(crate) fn sent(&mut self, stream: Option<&mut StreamFlow>, n: usize) {
        // At most the room, itself at most 2^31-1.
        let n = n as i64;
        self.send_window -= n;
        if let Some(s) = stream {
            s.send_window -= n;
        }
    }

    /// A WINDOW_UPDATE for the connection; false if it would pass 2^31-1
    /// (a connection error, FLOW_CONTROL_ERROR).
    pub(crate) fn grow_send(&mut self, increment: u32) -> bool {
        let grown = self.send_window + i64::from(increment);
        if grown > i64::from(MAX_WINDOW_SIZE) {
            return false;
        }
        self.send_window = grown;
        true
    }

    /// Takes a DATA frame's flow-controlled length off the connection's
    /// window; false if it does not fit (a connection error).
    pub(crate) fn receive(&mut self, len: i64) -> bool {
        if len > self.recv_window {
            return false;
        }
        self.recv_window -= len;
        true
    }

    /// Accepts DATA on a stream whose window was checked: `len` counted
    /// (padding included), `data_len` delivered to the caller, to be
    /// released. The padding is given back at once, to the stream only if
    /// the peer may still send on it.
    pub(crate) fn accept(
        &mut self,
        stream_id: u32,
        s: &mut StreamFlow,
        len: i64,
        data_len: usize,
        still_open: bool,
        out: &mut Vec<u8>,
    ) {
        let data_len = data_len as u64;
        let padding = len - data_len as i64;
        s.recv_window -= len;
        s.unreleased += data_len;
        if padding > 0 && still_open {
            s.recv_window += padding;
            write_window_update(stream_id, padding, out);
        }
        self.unreleased += data_len;
        self.give_back(padding, out);
    }

    /// Gives back to the connection window what no one will release.
    pub(crate) fn give_back(&mut self, n: i64, out: &mut Vec<u8>) {
        if n > 0 {
            self.recv_window += n;
            write_window_update(0, n, out);
        }
    }

    /// The caller consumed `n` bytes delivered on `stream_id` (see the
    /// connections' `release`).
    pub(crate) fn release(
        &mut self,
        stream_id: u32,
        stream: Option<(&mut StreamFlow, bool)>,
        n: usize,
        out: &mut Vec<u8>,
    ) {
        let n = self.release_connection(n, out);
        if let Some(s) = stream {
            release_stream(stream_id, s, n, out);
        }
    }

    /// Gives back up to `n` delivered bytes to the connection's window
    /// only; returns how many it did.
    pub(crate) fn release_connection(&mut self, n: usize, out: &mut Vec<u8>) -> u64 {
        let n = (n as u64).min(self.unreleased);
        if n == 0 {
            return 0;
        }
        self.unreleased -= n;
        // At most the connection window, itself at most 2^31-1.
        self.recv_window += n as i64;
        write_window_update(0, n as i64, out);
        n
    }
}

/// Gives back up to `n` bytes delivered on `stream_id` to its window (if
/// the peer may still send on it), without the connection's.
pub(crate) fn release_stream(
    stream_id: u32,
    (s, remote_open): (&mut StreamFlow, bool),
    n: u64,
    out: &mut Vec<u8>,
) {
    let m = n.min(s.unreleased);
    s.unreleased -= m;
    if remote_open && m > 0 {
        // At most the stream's window, itself at most 2^31-1.
        s.recv_window += m as i64;
        write_window_update(stream_id, m as i64, out);
    }
}

/// `n` is within 1..=2^31-1 wherever this is called.
fn write_window_update(stream_id: u32, n: i64, out: &mut Vec<u8>) {
    if let Ok(increment) = u32::try_from(n) {
        let _ = WindowUpdate { stream_id, increment }.encode(out);
    }
}

/// A whole field block, with the flags of its HEADERS.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub(crate) stream: u32,
    pub(crate) end_stream: bool,
    pub(crate) self_dependent: bool,
    pub(crate) bytes: Cow<'a, [u8]>,
}

/// A field block larger than the limit.
#[derive(Debug)]
pub(crate) struct TooLarge;

/// Joins a HEADERS and its CONTINUATIONs (the frame decoder has checked
/// that nothing comes between them), refusing a block past `max` bytes as
/// soon as the frame that passes it comes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Joiner {
    pending: Option<(u32, bool, bool, Vec<u8>)>,
}

impl Joiner {
    pub(crate) fn headers<'a>(&mut self, h: &Headers<'a>, max: usize) -> Result<Option<Block<'a>>, TooLarge> {
        if h.fragment.len() > max {
            return Err(TooLarge);
        }
        let self_dependent = h.priority.is_some_and(|p| p.stream_id == h.stream_id);
        if h.end_headers {
            return Ok(Some(Block {
                stream: h.stream_id,
                end_stream: h.end_stream,
                self_dependent,
                bytes: Cow::Borrowed(h.fragment),
            }));
        }
        self.pending = Some((h.stream_id, h.end_stream, self_dependent, h.fragment.to_vec()));
        Ok(None)
    }

    pub(crate) fn continuation(
        &mut self,
        c: &Continuation<'_>,
        max: usize,
    ) -> Result<Option<Block<'static>>, TooLarge> {
        let Some((stream, end_stream, self_dependent, mut bytes)) = self.pending.take() else {
            return Ok(None);
        };
        if bytes.len().saturating_add(c.fragment.len()) > max {
            return Err(TooLarge);
        }
        bytes.extend_from_slice(c.fragment);
        if !c.end_headers {
            self.pending = Some((stream, end_stream, self_dependent, bytes));
            return Ok(None);
        }
        Ok(Some(Block {
            stream,
            end_stream,
            self_dependent,
            bytes: Cow::Owned(bytes),
        }))
    }

    pub(crate) fn clear(&mut self) {
        self.pending = None;
    }
}

/// Encodes `fields` and appends them as HEADERS and CONTINUATION frames no
/// larger than `max_frame_size`.
pub(crate) fn write_fields(
    encoder: &mut hpack::Encoder,
    stream: u32,
    fields: &[Field],
    end_stream: bool,
    max_frame_size: u32,
    out: &mut Vec<u8>,
) {
    let mut block = Vec::new();
    encoder.encode(fields, &mut block);
    let mut chunks = block.chunks(max_frame_size as usize);
    let first = chunks.next().unwrap_or(&[]);
    let rest: Vec<&[u8]> = chunks.collect();
    let mut headers = Headers::new(stream, first);
    headers.end_stream = end_stream;
    headers.end_headers = rest.is_empty();
    // Each piece fits the frame size; the stream was checked by the caller.
    let _ = headers.encode(out, max_frame_size);
    for (i, fragment) in rest.iter().enumerate() {
        let c = Continuation {
            stream_id: stream,
            fragment,
            end_headers: i + 1 == rest.len(),
        };
        let _ = c.encode(out, max_frame_size);
    }
}

/// Appends `data` (already cut to the room the windows leave) as DATA
/// frames no larger than `max_frame_size`, END_STREAM on the last if
/// `ends`; an empty `data` that `ends` is one empty frame.
pub(crate) fn write_data(stream: u32, data: &[u8], ends: bool, max_frame_size: u32, out: &mut Vec<u8>) {
    if data.is_empty() {
        let mut frame = Data::new(stream, &[]);
        frame.end_stream = ends;
        let _ = frame.encode(out, max_frame_size);
        return;
    }
    let mut chunks = data.chunks(max_frame_size as usize).peekable();
    while let Some(chunk) = chunks.next() {
        let mut frame = Data::new(stream, chunk);
        frame.end_stream = ends && chunks.peek().is_none();
        let _ = frame.encode(out, max_frame_size);
    }
}

/// Appends the 9-byte header of a DATA frame of `len` bytes (at most the
/// frame size), for the caller to follow with the payload.
pub(crate) fn write_data_head(stream: u32, len: usize, ends: bool, out: &mut Vec<u8>) {
    let header = FrameHeader {
        // At most the frame size, itself at most 2^24-1: never saturates.
        length: u32::try_from(len).unwrap_or(u32::MAX),
        kind: FrameKind::Data,
        flags: if ends { flags::END_STREAM } else { 0 },
        stream_id: stream,
    };
    out.extend_from_slice(&header.to_bytes());
}

/// What a PING asks of the receiver.
pub(crate) enum PingOutcome {
    /// A PING the peer sent: the acknowledgement is in the output (count
    /// it).
    Answered,
    /// The answer to ours.
    Acked([u8; 8]),
    /// An acknowledgement of nothing we sent: ignored.
    Ignored,
}

pub(crate) fn on_ping(p: Ping, ping_sent: &mut Option<[u8; 8]>, out: &mut Vec<u8>) -> PingOutcome {
    if !p.ack {
        Ping {
            ack: true,
            data: p.data,
        }
        .encode(out);
        PingOutcome::Answered
    } else if *ping_sent == Some(p.data) {
        *ping_sent = None;
        PingOutcome::Acked(p.data)
    } else {
        PingOutcome::Ignored
    }
}

/// Acknowledgements queued in an undrained output, and empty frames: the
/// counts behind ENHANCE_YOUR_CALM.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budgets {
    queued_acks: u32,
    empty_frames: u32,
    max_acks: u32,
    max_empty: u32,
    max_settings: u32,
}

impl Budgets {
    pub(crate) fn new(max_acks: u32, max_empty: u32, max_settings: u32) -> Self {
        Self {
            queued_acks: 0,
            empty_frames: 0,
            max_acks,
            max_empty,
            max_settings,
        }
    }

    /// Whether a SETTINGS frame with this many parameters is within the
    /// limit.
    pub(crate) fn settings(&self, parameters: usize) -> bool {
        u32::try_from(parameters).is_ok_and(|n| n <= self.max_settings)
    }

    /// The output was drained: queued acknowledgements start again.
    pub(crate) fn drained(&mut self) {
        self.queued_acks = 0;
    }

    /// One more acknowledgement queued; false past the limit.
    pub(crate) fn ack(&mut self) -> bool {
        self.queued_acks = self.queued_acks.saturating_add(1);
        self.queued_acks <= self.max_acks
    }

    /// One more empty frame; false past the limit.
    pub(crate) fn empty(&mut self) -> bool {
        self.empty_frames = self.empty_frames.saturating_add(1);
        self.empty_frames <= self.max_empty
    }

    /// A DATA frame with data takes one empty frame off the count.
    pub(crate) fn not_empty(&mut self) {
        self.empty_frames = self.empty_frames.saturating_sub(1);
    }
}
