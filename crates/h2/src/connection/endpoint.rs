//! What the server and the client connection do alike, written once: the
//! frame loop, SETTINGS both ways, PING, WINDOW_UPDATE, sending DATA and
//! releasing what was received, the flood budgets and failing with
//! GOAWAY. Each side implements [`Side`] for what differs (its events, its
//! streams, which identifiers are idle, how it resets a stream).

use std::collections::HashMap;

use super::shared::{self, Block, Budgets, ConnFlow, DEFAULT_WINDOW, Joiner, PingOutcome, StreamFlow};
use super::{ConnectionError, SendError};
use crate::error::{Error, ErrorCode, Violation};
use crate::frame::{
    Continuation, DEFAULT_MAX_FRAME_SIZE, Data, Frame, FrameDecoder, GoAway, Headers, Ping, Setting,
    Settings, SettingsFrame, WindowUpdate, encode_settings_ack,
};
use crate::hpack;

/// The settings we announce that apply once the peer acknowledges them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    pub(crate) initial_window_size: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) header_table_size: u32,
    pub(crate) max_header_list_size: u32,
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
    pub(crate) fn new(local: Local, max_queued_acks: u32, max_empty_frames: u32) -> Self {
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
            budgets: Budgets::new(max_queued_acks, max_empty_frames),
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

/// A stream as the shared code sees it.
pub(crate) trait StreamState {
    fn flow(&self) -> &StreamFlow;
    fn flow_mut(&mut self) -> &mut StreamFlow;
    /// We may still send.
    fn local_open(&self) -> bool;
    /// The peer may still send.
    fn remote_open(&self) -> bool;
}

/// One end of a connection.
pub(crate) trait Side {
    type Event;
    type Stream: StreamState;

    fn parts(&mut self) -> (&mut Endpoint, &mut HashMap<u32, Self::Stream>);
    fn endpoint(&self) -> &Endpoint;
    fn on_frame(&mut self, frame: Frame<'_>, out: &mut Vec<u8>, events: &mut Vec<Self::Event>);
    /// Whether `stream` is one the peer may not use yet.
    fn is_idle(&self, stream: u32) -> bool;
    /// A stream error caused by the peer: RST_STREAM and whatever the side
    /// counts.
    fn reset_for_fault(
        &mut self,
        stream: u32,
        code: ErrorCode,
        out: &mut Vec<u8>,
        events: &mut Vec<Self::Event>,
    );
    /// We sent END_STREAM on `stream`.
    fn end_local(&mut self, stream: u32);
    /// The last stream a GOAWAY we send names.
    fn goaway_last_stream(&self) -> u32;
    fn connection_error(error: ConnectionError) -> Self::Event;
    fn window_opened(stream: u32) -> Self::Event;
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
        let (n, result) = side.parts().0.frames.decode(&input[used..]);
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
                side.on_frame(frame, out, events);
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
    let (ep, _) = side.parts();
    ep.write_goaway(last, error.code(), out);
    ep.closed = true;
    ep.joiner.clear();
    events.push(S::connection_error(error));
}

pub(crate) fn count_ack<S: Side>(side: &mut S, out: &mut Vec<u8>, events: &mut Vec<S::Event>) {
    if !side.parts().0.budgets.ack() {
        fail(side, ConnectionError::TooManyAcks, out, events);
    }
}

/// Counts an empty frame; false if the connection ended.
pub(crate) fn count_empty<S: Side>(side: &mut S, out: &mut Vec<u8>, events: &mut Vec<S::Event>) -> bool {
    if !side.parts().0.budgets.empty() {
        fail(side, ConnectionError::TooManyEmptyFrames, out, events);
        return false;
    }
    true
}

/// A PING: answered (and counted), or the answer to ours (returned).
pub(crate) fn on_ping<S: Side>(
    side: &mut S,
    p: Ping,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<[u8; 8]> {
    let ep = side.parts().0;
    match shared::on_ping(p, &mut ep.ping_sent, out) {
        PingOutcome::Answered => {
            count_ack(side, out, events);
            None
        }
        PingOutcome::Acked(data) => Some(data),
        PingOutcome::Ignored => None,
    }
}

/// The start of a HEADERS block: whole, or kept for its CONTINUATIONs.
pub(crate) fn join_headers<'a, S: Side>(
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
pub(crate) fn join_continuation<S: Side>(
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

/// Checks a DATA frame against the idle streams, the connection's window
/// and the empty-frame budget; returns its flow-controlled length when the
/// side is to go on with it.
pub(crate) fn data_prelude<S: Side>(
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

/// Applies the peer's SETTINGS (not an acknowledgement) and acknowledges
/// them; returns the streams whose send window grew, in order, or `None`
/// if the connection ended.
pub(crate) fn on_settings<S: Side>(
    side: &mut S,
    s: &SettingsFrame<'_>,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) -> Option<Vec<u32>> {
    let mut opened = Vec::new();
    for setting in s.iter() {
        let (ep, streams) = side.parts();
        match setting {
            Setting::InitialWindowSize(v) => {
                let old = ep.peer.initial_window_size;
                let mut flows: Vec<_> = streams.values_mut().map(StreamState::flow_mut).collect();
                if !shared::shift_send_windows(&mut flows, old, v) {
                    fail(side, ConnectionError::FlowControl, out, events);
                    return None;
                }
                if v > old {
                    opened.extend(
                        streams
                            .iter()
                            .filter(|(_, st)| st.local_open())
                            .map(|(&id, _)| id),
                    );
                }
            }
            Setting::HeaderTableSize(v) => ep.encoder.set_max_table_size(v as usize),
            _ => {}
        }
        ep.peer.apply(setting);
    }
    encode_settings_ack(out);
    opened.sort_unstable();
    opened.dedup();
    Some(opened)
}

/// The peer acknowledged our SETTINGS: true the first time, when they
/// start to apply.
pub(crate) fn on_settings_ack<S: Side>(side: &mut S) -> bool {
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
        s.flow_mut().recv_window += delta;
    }
    ep.local_initial_window = ep.local.initial_window_size;
    true
}

pub(crate) fn on_window_update<S: Side>(
    side: &mut S,
    w: WindowUpdate,
    out: &mut Vec<u8>,
    events: &mut Vec<S::Event>,
) {
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
    if !s.flow_mut().grow_send(w.increment) {
        return side.reset_for_fault(w.stream_id, ErrorCode::FLOW_CONTROL_ERROR, out, events);
    }
    if s.local_open() {
        events.push(S::window_opened(w.stream_id));
    }
}

/// The stream's windows if we may send on it.
pub(crate) fn writable<S: Side>(side: &mut S, stream: u32) -> Result<StreamFlow, SendError> {
    let (ep, streams) = side.parts();
    if ep.closed {
        return Err(SendError::ConnectionClosed);
    }
    streams
        .get(&stream)
        .filter(|s| s.local_open())
        .map(|s| *s.flow())
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
    shared::write_data(stream, &data[..take], ends, ep.peer.max_frame_size, out);
    ep.flow
        .sent(streams.get_mut(&stream).map(StreamState::flow_mut), take);
    if ends {
        side.end_local(stream);
    }
    Ok(take)
}

/// See the connections' `send_capacity`.
pub(crate) fn send_capacity<S: StreamState>(
    ep: &Endpoint,
    streams: &HashMap<u32, S>,
    stream: u32,
) -> Option<u64> {
    let s = streams.get(&stream).filter(|s| s.local_open())?;
    Some(ep.flow.room(s.flow()) as u64)
}

/// See the connections' `release`.
pub(crate) fn release<S: Side>(side: &mut S, stream: u32, n: usize, out: &mut Vec<u8>) {
    let (ep, streams) = side.parts();
    if ep.closed {
        return;
    }
    let s = streams.get_mut(&stream).map(|s| {
        let open = s.remote_open();
        (s.flow_mut(), open)
    });
    ep.flow.release(stream, s, n, out);
}
