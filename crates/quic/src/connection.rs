//! One QUIC connection and its HTTP/3 session: quinn-proto's stream events
//! turned into the session's input, and the session's output written to
//! quinn-proto's streams, keeping what a stream cannot take yet.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use quinn_proto::{
    Connection, ConnectionHandle, Dir, Event, ReadError, StreamEvent, StreamId, VarInt, WriteError,
};
use tether_h3::session::{LocalStream, ServerSession, SessionEvent, Target};
use tether_h3::{Error, ErrorCode};

use crate::config::QuicConfig;
use crate::event::ServerEvent;
use crate::stats::CloseCause;

/// Bytes a stream has not taken yet, and whether it ends after them.
#[derive(Debug, Default)]
struct Unsent {
    bytes: VecDeque<u8>,
    fin: bool,
}

/// A connection being served.
pub(crate) struct Conn {
    pub(crate) quic: Connection,
    pub(crate) h3: ServerSession,
    pub(crate) accepted_at: Instant,
    /// The server's own unidirectional streams, once opened.
    local: BTreeMap<LocalStream, StreamId>,
    unsent: BTreeMap<Target, Unsent>,
    /// Request streams left unread ([`Conn::pause_reading`]), each with
    /// the unsent bytes at or below which it is read again.
    paused: BTreeMap<u64, usize>,
    /// This server closed the connection: nothing more to read.
    failed: bool,
    /// Why this server closed it, until reported.
    close_reason: Option<String>,
    /// [`ServerEvent::Closed`] was sent.
    reported_closed: bool,
    /// [`QuicConfig::max_control_backlog`](crate::config::QuicConfig::max_control_backlog).
    max_control_backlog: usize,
    /// [`QuicConfig::max_concurrent_bidi_streams`](crate::config::QuicConfig::max_concurrent_bidi_streams),
    /// granted once the handshake is complete.
    bidi_streams: u32,
    /// Why the connection ended, as first known (the server's own close
    /// sets it before quinn-proto reports the loss).
    pub(crate) cause: Option<CloseCause>,
}

fn quic_stream(id: u64) -> Option<StreamId> {
    VarInt::from_u64(id).ok().map(StreamId::from)
}

fn code(code: ErrorCode) -> VarInt {
    VarInt::from_u64(code.value()).unwrap_or(VarInt::from_u32(0x102))
}

impl Conn {
    pub(crate) fn new(quic: Connection, config: &QuicConfig, now: Instant) -> Conn {
        Conn {
            quic,
            h3: ServerSession::new(config.session.clone()),
            accepted_at: now,
            local: BTreeMap::new(),
            unsent: BTreeMap::new(),
            paused: BTreeMap::new(),
            failed: false,
            close_reason: None,
            reported_closed: false,
            max_control_backlog: config.max_control_backlog,
            bidi_streams: config.max_concurrent_bidi_streams,
            cause: None,
        }
    }

    /// Bytes queued for `target` that its stream has not taken yet.
    pub(crate) fn unsent_bytes(&self, target: Target) -> usize {
        self.unsent.get(&target).map_or(0, |u| u.bytes.len())
    }

    /// Stops reading request stream `stream_id` until no more than
    /// `resume_at` bytes are unsent on it: what the client sends stays in
    /// quinn-proto, whose credit for the stream is not given back, so the
    /// client can send at most one stream window more. Reading starts
    /// again, with what was left, as soon as the stream has taken enough,
    /// whether or not more arrives.
    pub(crate) fn pause_reading(&mut self, stream_id: u64, resume_at: usize) {
        self.paused.insert(stream_id, resume_at);
    }

    /// Reads again the paused streams whose unsent bytes are down to their
    /// mark.
    fn resume_drained(&mut self, now: Instant) {
        if self.paused.is_empty() {
            return;
        }
        let drained: Vec<u64> = self
            .paused
            .iter()
            .filter(|&(&stream_id, &resume_at)| self.unsent_bytes(Target::Request(stream_id)) <= resume_at)
            .map(|(&stream_id, _)| stream_id)
            .collect();
        for stream_id in drained {
            self.paused.remove(&stream_id);
            if let Some(id) = quic_stream(stream_id)
                && let Err(error) = self.read(id)
            {
                self.fail(now, error);
            }
        }
    }

    /// Bytes waiting on the server's control and QPACK decoder streams.
    fn local_backlog(&self) -> usize {
        [LocalStream::Control, LocalStream::QpackDecoder]
            .into_iter()
            .map(|local| self.unsent_bytes(Target::Local(local)))
            .fold(0, usize::saturating_add)
    }

    /// Handles everything quinn-proto and the session have to say, and
    /// writes what the session produced.
    pub(crate) fn drive(&mut self, handle: ConnectionHandle, now: Instant, out: &mut VecDeque<ServerEvent>) {
        while let Some(event) = self.quic.poll() {
            let result = match event {
                Event::Connected => {
                    // The request streams held back while the handshake
                    // was in progress (QuicConfig::handshake_bidi_streams).
                    self.quic
                        .set_max_concurrent_streams(Dir::Bi, VarInt::from_u32(self.bidi_streams));
                    // A ClientHello larger than one datagram (Chromium's)
                    // made the connection before the client's transport
                    // parameters allowed any stream of ours: the control
                    // stream opens now.
                    self.flush_local_streams();
                    out.push_back(ServerEvent::Connected {
                        conn: handle,
                        remote: self.quic.remote_address(),
                    });
                    Ok(())
                }
                Event::ConnectionLost { reason } => {
                    self.cause = self.cause.or(CloseCause::of(&reason));
                    self.report_closed(handle, reason.to_string(), out);
                    Ok(())
                }
                Event::Stream(StreamEvent::Opened { dir }) => self.accept_streams(dir),
                Event::Stream(StreamEvent::Readable { id }) => self.read(id),
                Event::Stream(StreamEvent::Writable { id }) => {
                    let target = self.target_of(id);
                    let waiting = self.unsent_bytes(target) > 0;
                    self.flush(target);
                    if let Target::Request(stream_id) = target
                        && waiting
                        && self.unsent_bytes(target) == 0
                    {
                        out.push_back(ServerEvent::Writable {
                            conn: handle,
                            stream_id,
                        });
                    }
                    Ok(())
                }
                Event::Stream(StreamEvent::Stopped { id, error_code }) => {
                    let target = self.target_of(id);
                    // Nothing more is sent on it: a paused stream is read
                    // again (below).
                    self.unsent.remove(&target);
                    self.h3.stopped_by_peer(target, error_code.into_inner())
                }
                Event::Stream(StreamEvent::Available { .. }) => {
                    self.flush_local_streams();
                    Ok(())
                }
                Event::DatagramReceived => self.read_datagrams(),
                Event::Stream(StreamEvent::Finished { .. })
                | Event::HandshakeDataReady
                | Event::DatagramsUnblocked => Ok(()),
            };
            if let Err(error) = result {
                self.fail(now, error);
            }
        }
        self.resume_drained(now);
        self.session_events(handle, out);
        self.write_session_output();
        if !self.failed && self.local_backlog() > self.max_control_backlog {
            self.cause.get_or_insert(CloseCause::Error);
            self.close(
                now,
                ErrorCode::H3_EXCESSIVE_LOAD,
                "the client takes nothing on the server's control and decoder streams",
            );
            self.unsent.clear();
        }
        if let Some(reason) = self.close_reason.take() {
            self.report_closed(handle, reason, out);
        }
    }

    /// [`ServerEvent::Closed`], once.
    pub(crate) fn report_closed(
        &mut self,
        handle: ConnectionHandle,
        reason: String,
        out: &mut VecDeque<ServerEvent>,
    ) {
        if !self.reported_closed {
            self.reported_closed = true;
            out.push_back(ServerEvent::Closed { conn: handle, reason });
        }
    }

    /// A connection error: CONNECTION_CLOSE with the error's code.
    fn fail(&mut self, now: Instant, error: Error) {
        if !self.failed {
            self.failed = true;
            self.cause.get_or_insert(CloseCause::Error);
            self.close_reason = Some(format!("closed by the server: {error}"));
            let reason = Bytes::from(format!("{:?}", error.violation));
            self.quic.close(now, code(error.code), reason);
        }
    }

    /// Closes the connection with `code` (H3_NO_ERROR after GOAWAY).
    pub(crate) fn close(&mut self, now: Instant, error: ErrorCode, why: &str) {
        self.failed = true;
        self.close_reason = Some(format!("closed by the server ({error}): {why}"));
        self.quic.close(now, code(error), Bytes::new());
    }

    fn target_of(&self, id: StreamId) -> Target {
        self.local
            .iter()
            .find(|(_, s)| **s == id)
            .map_or(Target::Request(u64::from(id)), |(l, _)| Target::Local(*l))
    }

    fn accept_streams(&mut self, dir: Dir) -> Result<(), Error> {
        while let Some(id) = self.quic.streams().accept(dir) {
            self.read(id)?;
        }
        Ok(())
    }

    /// Hands everything readable on `id` to the session, unless the
    /// stream is paused (its bytes wait in quinn-proto).
    fn read(&mut self, id: StreamId) -> Result<(), Error> {
        if self.failed || self.paused.contains_key(&u64::from(id)) {
            return Ok(());
        }
        let mut recv = self.quic.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return Ok(());
        };
        let mut pieces = Vec::new();
        let mut fin = false;
        let mut reset = None;
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => pieces.push(chunk.bytes),
                Ok(None) => {
                    fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    reset = Some(code);
                    break;
                }
            }
        }
        // Flow control credit is queued here and sent by poll_transmit.
        let _ = chunks.finalize();
        let raw = u64::from(id);
        for piece in pieces {
            self.h3.receive(raw, &piece, false)?;
        }
        if fin {
            self.h3.receive(raw, &[], true)?;
        }
        if let Some(code) = reset {
            self.h3.reset_by_peer(raw, code.into_inner())?;
        }
        Ok(())
    }

    /// Hands every QUIC datagram received to the session (HTTP datagrams,
    /// RFC 9297). quinn-proto keeps at most the configured receive buffer
    /// of them, dropping the oldest past it.
    fn read_datagrams(&mut self) -> Result<(), Error> {
        while let Some(datagram) = self.quic.datagrams().recv() {
            if self.failed {
                continue;
            }
            self.h3.receive_datagram(&datagram)?;
        }
        Ok(())
    }

    /// Acts on the session's events that concern the transport, and hands
    /// them all on.
    fn session_events(&mut self, handle: ConnectionHandle, out: &mut VecDeque<ServerEvent>) {
        while let Some(event) = self.h3.poll_event() {
            match &event {
                SessionEvent::StreamError {
                    stream_id, code: c, ..
                } => {
                    if let Some(id) = quic_stream(*stream_id) {
                        let _ = self.quic.send_stream(id).reset(code(*c));
                        let _ = self.quic.recv_stream(id).stop(code(*c));
                    }
                    self.unsent.remove(&Target::Request(*stream_id));
                    self.paused.remove(stream_id);
                }
                SessionEvent::StopSending { stream_id, code: c } => {
                    if let Some(id) = quic_stream(*stream_id) {
                        let _ = self.quic.recv_stream(id).stop(code(*c));
                    }
                }
                SessionEvent::HeadTooLarge { stream_id } => {
                    // RFC 9114 §4.1.1: the response may come before the
                    // request is read; the rest of it is not wanted.
                    if let Some(id) = quic_stream(*stream_id) {
                        let _ = self.quic.recv_stream(id).stop(code(ErrorCode::H3_NO_ERROR));
                    }
                }
                SessionEvent::WebTransportStopped { target, .. } => {
                    self.unsent.remove(target);
                    if let Target::Local(local @ LocalStream::WebTransport(_)) = target {
                        self.local.remove(local);
                    }
                }
                SessionEvent::Cancelled { stream_id, .. } => {
                    if let Some(id) = quic_stream(*stream_id) {
                        let _ = self
                            .quic
                            .send_stream(id)
                            .reset(code(ErrorCode::H3_REQUEST_CANCELLED));
                    }
                    self.unsent.remove(&Target::Request(*stream_id));
                    self.paused.remove(stream_id);
                }
                _ => {}
            }
            out.push_back(ServerEvent::Session { conn: handle, event });
        }
    }

    /// The server resets a response and stops reading its request.
    pub(crate) fn reset(&mut self, stream_id: u64, error: ErrorCode) {
        self.h3.abandon(stream_id);
        self.unsent.remove(&Target::Request(stream_id));
        self.paused.remove(&stream_id);
        if let Some(id) = quic_stream(stream_id) {
            let _ = self.quic.send_stream(id).reset(code(error));
            let _ = self.quic.recv_stream(id).stop(code(error));
        }
    }

    /// Queues what the session wrote and gives each stream what it takes.
    pub(crate) fn write_session_output(&mut self) {
        for write in self.h3.take_writes() {
            let unsent = self.unsent.entry(write.target).or_default();
            unsent.bytes.extend(write.bytes);
            unsent.fin |= write.fin;
            self.flush(write.target);
        }
    }

    /// Gives the server's own unidirectional streams (control, QPACK
    /// decoder) what they have waiting, opening them if they could not be.
    fn flush_local_streams(&mut self) {
        // The server's own streams waiting for the client to allow one
        // more (WebTransport streams among them).
        let waiting: Vec<Target> = self
            .unsent
            .keys()
            .filter(|t| matches!(t, Target::Local(_)))
            .copied()
            .collect();
        for target in waiting {
            self.flush(target);
        }
    }

    /// Writes as much of `target`'s unsent bytes as its stream takes, and
    /// ends it once they are all taken if asked to.
    fn flush(&mut self, target: Target) {
        // Nothing waiting: no stream of ours is opened for it.
        if !self.unsent.contains_key(&target) {
            return;
        }
        let Some(id) = self.stream_for(target) else {
            return;
        };
        let Some(unsent) = self.unsent.get_mut(&target) else {
            return;
        };
        let mut send = self.quic.send_stream(id);
        while !unsent.bytes.is_empty() {
            let (front, _) = unsent.bytes.as_slices();
            match send.write(front) {
                Ok(n) => {
                    unsent.bytes.drain(..n);
                }
                Err(WriteError::Blocked) => return,
                Err(WriteError::Stopped(_) | WriteError::ClosedStream) => {
                    self.unsent.remove(&target);
                    return;
                }
            }
        }
        if unsent.fin {
            let _ = send.finish();
            if let Target::Local(local @ LocalStream::WebTransport(_)) = target {
                // Finished: its stream ID is no longer this target's.
                self.local.remove(&local);
            }
        }
        self.unsent.remove(&target);
    }

    /// Sends an HTTP datagram (the session's bytes for it) as a QUIC
    /// DATAGRAM frame; when the send buffer is full the oldest queued one
    /// is dropped, as datagrams are lossy anyway.
    pub(crate) fn send_datagram(&mut self, bytes: Vec<u8>) -> Result<(), quinn_proto::SendDatagramError> {
        self.quic.datagrams().send(Bytes::from(bytes), true)
    }

    /// The largest HTTP datagram payload that fits in one QUIC datagram
    /// now (none when the client takes no datagrams).
    pub(crate) fn max_datagram_size(&mut self) -> Option<usize> {
        self.quic.datagrams().max_size()
    }

    /// The QUIC stream of `target`, opening the server's unidirectional
    /// streams the first time (none if the client allows no more yet).
    fn stream_for(&mut self, target: Target) -> Option<StreamId> {
        match target {
            Target::Request(id) => quic_stream(id),
            Target::Local(local) => {
                if let Some(id) = self.local.get(&local) {
                    return Some(*id);
                }
                let id = self.quic.streams().open(Dir::Uni)?;
                self.local.insert(local, id);
                Some(id)
            }
        }
    }
}
