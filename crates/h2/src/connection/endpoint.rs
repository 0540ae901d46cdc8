//! What the server and the client connection do alike, written once: the
//! frame loop and the handling of every frame but what a side does with
//! DATA and header blocks, SETTINGS both ways, PING, WINDOW_UPDATE,
//! RST_STREAM and GOAWAY, sending DATA and releasing what was received,
//! the flood budgets and failing with GOAWAY. Each side implements
//! [`Side`] for what differs (its events, which streams are idle, what it
//! keeps per stream, how it resets one).

use std::collections::HashMap;

use super::shared::{self, Block, Budgets, ConnFlow, DEFAULT_WINDOW, Joiner, PingOutcome, StreamFlow};
use super::{ConnectionError, SendError};
use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::frame::{
    Continuation, DEFAULT_MAX_FRAME_SIZE, Data, Frame, FrameDecoder, GoAway, Headers, MAX_FRAME_SIZE_LIMIT,
    MAX_WINDOW_SIZE, Ping, RstStream, Setting, Settings, SettingsFrame, WindowUpdate, encode_settings_ack,
};
use crate::hpack::{self, Field};

/// The settings we announce that apply once the peer acknowledges them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    pub(crate) initial_window_size: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) header_table_size: u32,
    pub(crate) max_header_list_size: u32,
}

impl Local {
    /// Checks the values both sides' configurations share, with the
    /// connection's window: [`Misuse::InvalidValue`] when one is out of
    /// its range.
    pub(crate) fn check(&self, connection_window: u32) -> Result<(), Error> {
        let ok = self.initial_window_size <= MAX_WINDOW_SIZE
            && (DEFAULT_WINDOW..=MAX_WINDOW_SIZE).contains(&connection_window)
            && (DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&self.max_frame_size)
            && self.max_header_list_size > 0;
        if ok {
            Ok(())
        } else {
            Err(Error::Misuse(Misuse::InvalidValue))
        }
    }
}

/// The state of a connection besides its streams.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) local: Local,
    /// The peer's first frame (SETTINGS) has come.
    pub(crate) started: bool,
    pub(crate) frames: FrameDecoder,
    pub(crate) decoder: hpack::Decoder,
    pub(crate) encoder: hpack::Encoder,
    /// The peer's settings.
    pub(crate) peer: Settings,
    /// The peer acknowledged ours.
    pub(crate) settings_acked: bool,
    /// Our initial stream window as the peer applies it.
    pub(crate) local_initial_window: u32,
    pub(crate) joiner: Joiner,
    pub(crate) flow: ConnFlow,
    pub(crate) budgets: Budgets,
    pub(crate) goaway_sent: bool,
    pub(crate) goaway_received: bool,
    pub(crate) closed: bool,
    /// The data of the PING we sent and the peer has not answered.
    pub(crate) ping_sent: Option<[u8; 8]>,
}

impl Endpoint {
    pub(crate) fn new(local: Local, max_queued_acks: u32, max_empty_frames: u32, max_settings: u32) -> Self {
        Self {
            local,
            started: false,
            frames: FrameDecoder::new(),
            decoder: hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE)
                .with_max_header_list_size(local.max_header_list_size as usize),
            encoder: hpack::Encoder::new(),
            peer: Settings::DEFAULT,
            settings_acked: false,
            local_initial_window: DEFAULT_WINDOW,
            joiner: Joiner::default(),
            flow: ConnFlow::new(),
            budgets: Budgets::new(max_queued_acks, max_empty_frames, max_settings),
            goaway_sent: false,
            goaway_received: false,
            closed: false,
            ping_sent: None,
        }
    }

    /// Sends a PING unless one is unanswered or the connection is closed.
    pub(crate) fn ping(&mut self, data: [u8; 8], out: &mut Vec<u8>) -> bool {
        if self.closed || self.ping_sent.is_some() {
            return false;
        }
        Ping { ack: false, data }.encode(out);
        self.ping_sent = Some(data);
        true
    }

    pub(crate) fn write_goaway(&mut self, last_stream_id: u32, code: ErrorCode, out: &mut Vec<u8>) {
        let _ = GoAway {
            last_stream_id,
            code,
            debug_data: &[],
        }
        .encode(out, DEFAULT_MAX_FRAME_SIZE);
        self.goaway_sent = true;
    }

    /// Whether there is nothing more to do, given how many streams are
    /// left.
    pub(crate) fn is_finished(&self, streams: usize) -> bool {
        self.closed || ((self.goaway_sent || self.goaway_received) && streams == 0)
    }
}

/// A stream: whether each side may still send, its windows, and what the
/// side keeps besides.
#[derive(Debug, Clone)]
pub(crate) struct Stream<X> {
    /// The peer may still send (no END_STREAM from it yet).
    pub(crate) remote_open: bool,
    /// We may still send.
    pub(crate) local_open: bool,
    pub(crate) flow: StreamFlow,
    pub(crate) extra: X,
}

/// One end of a connection: what differs between the server and the
/// client.
pub(crate) trait Side {
    type Event;
    /// What the side keeps per stream besides [`Stream`]'s fields.
    type Extra;

    fn parts(&mut self) -> (&mut Endpoint, &mut HashMap<u32, Stream<Self::Extra>>);
    fn endpoint(&self) -> &Endpoint;
    /// DATA on a stream that is not idle, already counted against the
    /// connection's window: `len` is its flow-controlled length.
    fn on_data(&mut self, d: &Data<'_>, len: i64, out: &mut Vec<u8>, events: &mut Vec<Self::Event>);
    /// A whole header block, on a stream HEADERS may come on.
    fn on_block(&mut self, block: Block<'_>, out: &mut Vec<u8>, events: &mut Vec<Self::Event>);
    /// Whether `stream` is one the peer may not use yet.
    fn is_idle(&self, stream: u32) -> bool;
    /// Whether the peer may send HEADERS on `stream` (to open it, or on
    /// one open).
    fn headers_allowed(&self, stream: u32) -> bool;
    /// After the event of the peer's GOAWAY.
    fn after_goaway(&mut self, last_stream_id: u32, events: &mut Vec<Self::Event>);
    /// The peer's SETTINGS were applied; before the events of the streams
    /// whose window they opened.
    fn settings_applied(&mut self, events: &mut Vec<Self::Event>);
    /// The last stream a GOAWAY we send names.
    fn goaway_last_stream(&self) -> u32;
    fn connection_error(error: ConnectionError) -> Self::Event;
    fn window_opened(stream: u32) -> Self::Event;
    fn settings_acked() -> Self::Event;
    fn ping_acked(data: [u8; 8]) -> Self::Event;
    fn goaway(last_stream_id: u32, code: ErrorCode, debug_data: Vec<u8>) -> Self::Event;
    fn reset_event(stream: u32, code: ErrorCode, by_peer: bool) -> Self::Event;
    fn data_event(stream: u32, data: Vec<u8>, end_stream: bool) -> Self::Event;

    /// A stream we reset: the server remembers it, to ignore what the
    /// client sent before it knew.
    fn remember_reset(&mut self, _stream: u32) {}
    /// A stream was reset because of the peer, or by the peer: what the
    /// side counts (the server's rapid-reset budget).
    fn charge_reset(&mut self, _out: &mut Vec<u8>, _events: &mut Vec<Self::Event>) {}
    /// A stream ended both ways was forgotten.
    fn stream_finished(&mut self) {}
    /// A stream that was open has closed (ended both ways, or reset by
    /// the peer): the server remembers it, so that a HEADERS on it is
    /// STREAM_CLOSED rather than an unused identifier.
    fn remember_closed(&mut self, _stream: u32) {}

    /// Writes RST_STREAM and forgets the stream; whether the caller knew
    /// it.
    fn write_reset(&mut self, stream: u32, code: ErrorCode, out: &mut Vec<u8>) -> bool {
        let _ = RstStream {
            stream_id: stream,
            code,
        }
        .encode(out);
        self.remember_reset(stream);
        self.parts().1.remove(&stream).is_some()
    }

    /// A stream error caused by the peer: RST_STREAM, an event if the
    /// caller knew the stream, and what the side counts.
    fn reset_for_fault(
        &mut self,
        stream: u32,
        code: ErrorCode,
        out: &mut Vec<u8>,
        events: &mut Vec<Self::Event>,
    ) {
        if self.write_reset(stream, code, out) {
            events.push(Self::reset_event(stream, code, false));
        }
        self.charge_reset(out, events);
    }

    /// The peer reset a stream the caller knew (already forgotten).
    fn reset_by_peer(
        &mut self,
        stream: u32,
        code: ErrorCode,
        out: &mut Vec<u8>,
        events: &mut Vec<Self::Event>,
    ) {
        events.push(Self::reset_event(stream, code, true));
        self.charge_reset(out, events);
    }

    /// Forgets `stream` if both sides have ended it.
    fn maybe_remove(&mut self, stream: u32) {
        let streams = self.parts().1;
        if streams
            .get(&stream)
            .is_some_and(|s| !s.remote_open && !s.local_open)
        {
            streams.remove(&stream);
            self.stream_finished();
            self.remember_closed(stream);
        }
    }

    /// We sent END_STREAM on `stream`.
    fn end_local(&mut self, stream: u32) {
        if let Some(s) = self.parts().1.get_mut(&stream) {
            s.local_open = false;
        }
        self.maybe_remove(stream);
    }
}

/// Decodes and handles frames from `input[used..]` until it runs out or
/// the connection ends; returns how many bytes were taken in all.
pub(crate) fn receive_frames<S: Side>(
    side: &mut S,
    input: &[u8],
    mut used: usize,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> usize {
    while !side.endpoint().closed {
        let (n, result) = side
            .parts()
            .0
            .frames
            .decode(input.get(used..).unwrap_or_default());
        let started = side.endpoint().started;
        match result {
            Ok(None) => break,
            Ok(Some(frame)) => {
                used += n;
                if !started && !matches!(frame, Frame::Settings(s) if !s.is_ack()) {
                    fail(side, ConnectionError::SettingsExpected, out, events);
                    break;
                }
                side.parts().0.started = true;
                on_frame(side, frame, out, events);
            }
            Err(Error::Stream {
                stream,
                code,
                violation,
            }) => {
                used += n;
                if !started {
                    fail(side, ConnectionError::SettingsExpected, out, events);
                } else if !side.is_idle(stream) {
                    side.reset_for_fault(stream, code, out, events);
                } else if violation == Violation::ZeroWindowIncrement {
                    // WINDOW_UPDATE on an idle stream, whatever its
                    // increment.
                    fail(side, ConnectionError::IdleStream(stream), out, events);
                }
                // Otherwise a PRIORITY, allowed on an idle stream: its
                // error needs no RST_STREAM, which may not be sent on an
                // idle stream.
            }
            Err(e) => fail(side, ConnectionError::Frame(e), out, events),
        }
    }
    used
}

fn on_frame<S: Side>(side: &mut S, frame: Frame<'_>, out: &mut Vec<u8>, events: &mut Vec<S::Event>) {
    match frame {
        Frame::Data(d) => {
            if let Some(len) = data_prelude(side, &d, out, events) {
                side.on_data(&d, len, out, events);
            }
        }
        Frame::Headers(h) => {
            if !side.headers_allowed(h.stream_id) {
                return fail(side, ConnectionError::StreamId(h.stream_id), out, events);
            }
            if let Some(block) = join_headers(side, &h, out, events) {
                side.on_block(block, out, events);
            }
        }
        Frame::Continuation(c) => {
            // The frame decoder lets a CONTINUATION through only after a
            // HEADERS without END_HEADERS on the same stream.
            if let Some(block) = join_continuation(side, &c, out, events) {
                side.on_block(block, out, events);
            }
        }
        // Priorities are parsed and ignored (§5.3.2), unknown types too.
        Frame::Priority(_) | Frame::Unknown(_) => {}
        Frame::RstStream(r) => {
            if side.is_idle(r.stream_id) {
                return fail(side, ConnectionError::IdleStream(r.stream_id), out, events);
            }
            if side.parts().1.remove(&r.stream_id).is_some() {
                side.remember_closed(r.stream_id);
                side.reset_by_peer(r.stream_id, r.code, out, events);
            }
        }
        Frame::Settings(s) if s.is_ack() => {
            if on_settings_ack(side) {
                events.push(S::settings_acked());
            }
        }
        Frame::Settings(s) => {
            if let Some(opened) = on_settings(side, &s, out, events) {
                side.settings_applied(events);
                events.extend(opened.into_iter().map(S::window_opened));
                count_ack(side, out, events);
            }
        }
        // A client may not push, and a server may not push to a client
        // that turned push off, as ours does.
        Frame::PushPromise(_) => fail(side, ConnectionError::PushPromise, out, events),
        Frame::Ping(p) => {
            let ep = side.parts().0;
            match shared::on_ping(p, &mut ep.ping_sent, out) {
                PingOutcome::Answered => count_ack(side, out, events),
                PingOutcome::Acked(data) => events.push(S::ping_acked(data)),
                PingOutcome::Ignored => {}
            }
        }
        Frame::GoAway(g) => {
            side.parts().0.goaway_received = true;
            events.push(S::goaway(g.last_stream_id, g.code, g.debug_data.to_vec()));
            side.after_goaway(g.last_stream_id, events);
        }
        Frame::WindowUpdate(w) => on_window_update(side, w, out, events),
    }
}

/// Ends the connection with GOAWAY and the error's code.
pub(crate) fn fail<S: Side>(
    side: &mut S,
    error: ConnectionError,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) {
    if side.endpoint().closed {
        return;
    }
    let last = side.goaway_last_stream();
    let ep = side.parts().0;
    ep.write_goaway(last, error.code(), out);
    ep.closed = true;
    ep.joiner.clear();
    events.push(S::connection_error(error));
}

fn count_ack<S: Side>(side: &mut S, out: &mut Vec<u8>, events: &mut Vec<S::Event>) {
    if !side.parts().0.budgets.ack() {
        fail(side, ConnectionError::TooManyAcks, out, events);
    }
}

/// Counts an empty frame; false if the connection ended.
fn count_empty<S: Side>(side: &mut S, out: &mut Vec<u8>, events: &mut Vec<S::Event>) -> bool {
    if !side.parts().0.budgets.empty() {
        fail(side, ConnectionError::TooManyEmptyFrames, out, events);
        return false;
    }
    true
}

/// The start of a field block: whole, or kept for its CONTINUATIONs.
fn join_headers<'a, S: Side>(
    side: &mut S,
    h: &Headers<'a>,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<Block<'a>> {
    let ep = side.parts().0;
    let max = ep.local.max_header_list_size as usize;
    match ep.joiner.headers(h, max) {
        Ok(block) => block,
        Err(_) => {
            fail(side, ConnectionError::HeaderBlockTooLarge, out, events);
            None
        }
    }
}

/// A CONTINUATION: the whole block once it ends.
fn join_continuation<S: Side>(
    side: &mut S,
    c: &Continuation<'_>,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<Block<'static>> {
    if c.fragment.is_empty() && !c.end_headers && !count_empty(side, out, events) {
        return None;
    }
    let ep = side.parts().0;
    let max = ep.local.max_header_list_size as usize;
    match ep.joiner.continuation(c, max) {
        Ok(block) => block,
        Err(_) => {
            fail(side, ConnectionError::HeaderBlockTooLarge, out, events);
            None
        }
    }
}

/// Checks DATA against the idle streams, the connection's window and the
/// empty-frame budget; its flow-controlled length when the side is to go
/// on with it.
fn data_prelude<S: Side>(
    side: &mut S,
    d: &Data<'_>,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<i64> {
    if side.is_idle(d.stream_id) {
        fail(side, ConnectionError::IdleStream(d.stream_id), out, events);
        return None;
    }
    // At most 2^24-1 + 256.
    let len = d.flow_controlled_len() as i64;
    if !side.parts().0.flow.receive(len) {
        fail(side, ConnectionError::FlowControl, out, events);
        return None;
    }
    if d.data.is_empty() {
        if !d.end_stream && !count_empty(side, out, events) {
            return None;
        }
    } else {
        side.parts().0.budgets.not_empty();
    }
    Some(len)
}

/// Applies the peer's SETTINGS and acknowledges them; returns the streams
/// whose send window grew, in order, or `None` if the connection ended.
///
/// A frame with more parameters than the budget allows ends the
/// connection (each one may cost a walk over the streams otherwise). The
/// parameters are applied in order (§6.5.3), but the streams' windows are
/// moved once, by the frame's net change of SETTINGS_INITIAL_WINDOW_SIZE:
/// a window pushed past 2^31-1 by any value on the way is still an error.
fn on_settings<S: Side>(
    side: &mut S,
    s: &SettingsFrame<'_>,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<Vec<u32>> {
    if !side.parts().0.budgets.settings(s.len()) {
        fail(side, ConnectionError::TooManySettings, out, events);
        return None;
    }
    let (ep, streams) = side.parts();
    let old = ep.peer.initial_window_size;
    let mut highest = old;
    for setting in s.iter() {
        match setting {
            Setting::InitialWindowSize(v) => highest = highest.max(v),
            Setting::HeaderTableSize(v) => ep.encoder.set_max_table_size(v as usize),
            _ => {}
        }
        ep.peer.apply(setting);
    }
    let new = ep.peer.initial_window_size;
    let mut opened = Vec::new();
    if new != old || highest != old {
        let mut flows: Vec<_> = streams.values_mut().map(|st| &mut st.flow).collect();
        // The highest value checks every window on the way; the last one moves them.
        if !shared::shift_send_windows(&mut flows, old, highest, new) {
            fail(side, ConnectionError::FlowControl, out, events);
            return None;
        }
        if new > old {
            opened.extend(streams.iter().filter(|(_, st)| st.local_open).map(|(&id, _)| id));
        }
    }
    encode_settings_ack(out);
    opened.sort_unstable();
    Some(opened)
}

/// The peer acknowledged our SETTINGS: true the first time, when they
/// start to apply.
fn on_settings_ack<S: Side>(side: &mut S) -> bool {
    let (ep, streams) = side.parts();
    if ep.settings_acked {
        return false;
    }
    ep.settings_acked = true;
    // In range: checked with the configuration.
    let _ = ep.frames.set_max_frame_size(ep.local.max_frame_size);
    ep.decoder.set_max_table_size(ep.local.header_table_size as usize);
    let delta = i64::from(ep.local.initial_window_size) - i64::from(ep.local_initial_window);
    for s in streams.values_mut() {
        s.flow.recv_window += delta;
    }
    ep.local_initial_window = ep.local.initial_window_size;
    true
}

fn on_window_update<S: Side>(side: &mut S, w: WindowUpdate, out: &mut Vec<u8>, events: &mut Vec<S::Event>) {
    if w.stream_id == 0 {
        if !side.parts().0.flow.grow_send(w.increment) {
            return fail(side, ConnectionError::FlowControl, out, events);
        }
        events.push(S::window_opened(0));
        return;
    }
    if side.is_idle(w.stream_id) {
        return fail(side, ConnectionError::IdleStream(w.stream_id), out, events);
    }
    let Some(s) = side.parts().1.get_mut(&w.stream_id) else {
        return;
    };
    if !s.flow.grow_send(w.increment) {
        return side.reset_for_fault(w.stream_id, ErrorCode::FLOW_CONTROL_ERROR, out, events);
    }
    if s.local_open {
        events.push(S::window_opened(w.stream_id));
    }
}

/// Hands DATA that passed the side's checks to the caller, counting it
/// against the stream's window.
pub(crate) fn deliver<S: Side>(
    side: &mut S,
    d: &Data<'_>,
    len: i64,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) {
    let (ep, streams) = side.parts();
    if let Some(s) = streams.get_mut(&d.stream_id) {
        if d.end_stream {
            s.remote_open = false;
        }
        let open = s.remote_open;
        ep.flow
            .accept(d.stream_id, &mut s.flow, len, d.data.len(), open, out);
    }
    events.push(S::data_event(d.stream_id, d.data.to_vec(), d.end_stream));
    if d.end_stream {
        side.maybe_remove(d.stream_id);
    }
}

/// Decodes a whole field block, whatever becomes of its stream, to keep
/// HPACK in step; a block that does not decode ends the connection.
pub(crate) fn decode_block<S: Side>(
    side: &mut S,
    block: &[u8],
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<Vec<Field>> {
    match side.parts().0.decoder.decode(block) {
        Ok(fields) => Some(fields),
        Err(e) => {
            fail(side, ConnectionError::Compression(e), out, events);
            None
        }
    }
}

/// See the connections' `reset`.
pub(crate) fn reset<S: Side>(
    side: &mut S,
    stream: u32,
    code: ErrorCode,
    out: &mut Vec<u8>,
) -> Result<(), SendError> {
    let (ep, streams) = side.parts();
    if ep.closed {
        return Err(SendError::ConnectionClosed);
    }
    if !streams.contains_key(&stream) {
        return Err(SendError::StreamNotOpen(stream));
    }
    side.write_reset(stream, code, out);
    Ok(())
}

/// The stream's windows if we may send on it.
pub(crate) fn writable<S: Side>(side: &mut S, stream: u32) -> Result<StreamFlow, SendError> {
    let (ep, streams) = side.parts();
    if ep.closed {
        return Err(SendError::ConnectionClosed);
    }
    streams
        .get(&stream)
        .filter(|s| s.local_open)
        .map(|s| s.flow)
        .ok_or(SendError::StreamNotOpen(stream))
}

/// See the connections' `send_data`.
pub(crate) fn send_data<S: Side>(
    side: &mut S,
    stream: u32,
    data: &[u8],
    end_stream: bool,
    out: &mut Vec<u8>,
) -> Result<usize, SendError> {
    let flow = writable(side, stream)?;
    let (ep, streams) = side.parts();
    let take = data.len().min(ep.flow.room(&flow));
    let ends = end_stream && take == data.len();
    if take == 0 && !ends {
        return Ok(0);
    }
    shared::write_data(
        stream,
        data.get(..take).unwrap_or_default(),
        ends,
        ep.peer.max_frame_size,
        out,
    );
    ep.flow.sent(streams.get_mut(&stream).map(|s| &mut s.flow), take);
    if ends {
        side.end_local(stream);
    }
    Ok(take)
}

/// See the connections' `send_capacity`.
pub(crate) fn send_capacity<X>(ep: &Endpoint, streams: &HashMap<u32, Stream<X>>, stream: u32) -> Option<u64> {
    let s = streams.get(&stream).filter(|s| s.local_open)?;
    Some(ep.flow.room(&s.flow) as u64)
}

/// See the connections' `release`.
pub(crate) fn release<S: Side>(side: &mut S, stream: u32, n: usize, out: &mut Vec<u8>) {
    let (ep, streams) = side.parts();
    if ep.closed {
        return;
    }
    let s = streams.get_mut(&stream).map(|s| (&mut s.flow, s.remote_open));
    ep.flow.release(stream, s, n, out);
}

/// See the connections' `release_connection`.
pub(crate) fn release_connection<S: Side>(side: &mut S, n: usize, out: &mut Vec<u8>) {
    let (ep, _) = side.parts();
    if ep.closed {
        return;
    }
    ep.flow.release_connection(n, out);
}

/// See the connections' `release_stream`.
pub(crate) fn release_stream<S: Side>(side: &mut S, stream: u32, n: usize, out: &mut Vec<u8>) {
    let (ep, streams) = side.parts();
    if ep.closed {
        return;
    }
    if let Some(s) = streams.get_mut(&stream) {
        shared::release_stream(stream, (&mut s.flow, s.remote_open), n as u64, out);
    }
}
