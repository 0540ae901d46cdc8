//! WebTransport over HTTP/3: a `:protocol = webtransport` extended CONNECT
//! served to the application as the WebSocket its route names (the same
//! handshake policy: Origin, and whatever the application checks in
//! `on_open` and in the first message).
//!
//! Framing, for the application's messages: what it sends the session
//! (text, one message per line) goes on ONE unidirectional stream the
//! server opens when the session is accepted, each message followed by
//! `\n`; each unidirectional stream the client opens carries one
//! message, ended by its FIN, handed to the application as a text
//! message. The client's bidirectional streams are refused (reset with
//! WT_BUFFERED_STREAM_REJECTED); its datagrams are counted by the session
//! and dropped. A session whose CONNECT asked `?datagrams=1` also gets
//! each broadcast that fits in one QUIC datagram as an HTTP datagram
//! (lossy: one may be lost, or dropped when the send buffer is full; the
//! stream still carries every one).
//!
//! Under it the application's session is a `tether_ws` connection with no
//! ping and no idle timer (QUIC keeps the connection alive and times it
//! out): its outgoing frames are unwrapped into lines here, and each
//! incoming message is handed to it as the masked text frame a WebSocket
//! client would have sent. Its close frame becomes
//! CLOSE_WEBTRANSPORT_SESSION with the same code and reason.

use std::collections::BTreeMap;
use std::time::Instant;

use log::debug;
use tether_frame::{DecodeRules, FrameHeader, MaskRule, OpCode, Rsv, Status, decode_header, encode_frame};
use tether_h2::connection::Request as FieldRequest;
use tether_h3::ErrorCode;
use tether_h3::session::{LocalStream, Target};
use tether_quic::ConnectionHandle;
use tether_ws::CloseCode;

use super::{H3Endpoint, Kind};
use crate::app::{App, CloseReason};
use crate::server::dispatch::Opening;
use crate::server::env::Lent;
use crate::server::websocket::{Session, accept_connect};

/// A WebTransport session serving the application as a WebSocket.
pub(super) struct WtSession {
    /// The application's session.
    pub(super) ws: Session,
    /// The server's stream that carries the application's messages.
    pub(super) events: LocalStream,
    /// The client's unidirectional streams being read, one message each.
    incoming: BTreeMap<u64, Vec<u8>>,
    /// A message that a WebSocket frame began and its continuation frames
    /// carry on.
    partial: Vec<u8>,
    /// Broadcasts are also sent as datagrams (`?datagrams=1`).
    datagrams: bool,
}

impl WtSession {
    /// The bytes held of messages arriving: on the client's streams, and
    /// in the application's session.
    pub(super) fn held_messages(&self) -> usize {
        self.incoming
            .values()
            .map(Vec::len)
            .fold(self.ws.held(), usize::saturating_add)
    }
}

/// The rules for reading the frames the application's session writes:
/// unmasked, no extension (none is negotiated over WebTransport), any
/// length the session was willing to write.
const OUTGOING: DecodeRules = DecodeRules {
    mask: MaskRule::Forbidden,
    allowed_rsv: Rsv::NONE,
    max_payload: u64::MAX,
};

/// The frames in `bytes`, whole, as the application's session wrote them:
/// each frame's header and payload. A frame cut short (which the session
/// never writes) ends the list.
fn frames(mut bytes: &[u8]) -> Vec<(FrameHeader, &[u8])> {
    let mut out = Vec::new();
    while let Ok(Status::Complete((header, used))) = decode_header(bytes, &OUTGOING) {
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        let Some(payload) = bytes.get(used..).and_then(|rest| rest.get(..len)) else {
            break;
        };
        out.push((header, payload));
        bytes = bytes.get(used + len..).unwrap_or_default();
    }
    out
}

/// The payload of one whole frame (a broadcast's shared frame).
pub(super) fn frame_payload(frame: &[u8]) -> Option<&[u8]> {
    frames(frame).first().map(|(_, payload)| *payload)
}

/// A client's message as the masked text frame a WebSocket client sends
/// (a zero mask: the payload unchanged).
fn client_text_frame(message: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::new(true, OpCode::Text, 0);
    header.mask = Some([0; 4]);
    let mut frame = Vec::with_capacity(message.len() + 14);
    // Only control frames can be refused, and this is a text frame.
    let _ = encode_frame(&mut frame, header, message);
    frame
}

impl H3Endpoint {
    /// Opens the WebTransport session an extended CONNECT asks for, as the
    /// WebSocket of route `tag`, or answers its refusal.
    pub(super) fn accept_webtransport<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        connect: &FieldRequest,
        opening: Opening<'_>,
    ) {
        let Opening { request, tag } = opening;
        let now = l.now;
        let (session, _) = match accept_connect(&l.env.handshake, &self.wt_config, connect, request, tag, now)
        {
            Ok(accepted) => accepted,
            Err(refusal) => {
                l.app.release(tag);
                return self.answer(now, conn, stream_id, &refusal, false);
            }
        };
        let opened = self
            .server
            .send_head(now, conn, stream_id, 200, &[])
            .and_then(|()| self.server.open_webtransport_stream(now, conn, stream_id));
        let events = match opened {
            Ok(events) => events,
            Err(e) => {
                debug!("HTTP/3 WebTransport session on stream {stream_id}: {e}");
                self.server
                    .reset(now, conn, stream_id, ErrorCode::H3_INTERNAL_ERROR);
                l.app.release(tag);
                return;
            }
        };
        let session = Kind::WebTransport(Box::new(WtSession {
            ws: session,
            events,
            incoming: BTreeMap::new(),
            partial: Vec::new(),
            datagrams: request.query_param("datagrams").as_deref() == Some("1"),
        }));
        self.open_session(l, conn, stream_id, session, request);
    }

    /// What the application's session wrote, for a WebTransport session:
    /// each message a line on the events stream; a close frame closes the
    /// session (CLOSE_WEBTRANSPORT_SESSION with its code and reason), and
    /// the application is told as it would be of a WebSocket closed.
    pub(super) fn wt_output<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        written: &[u8],
    ) {
        let now = l.now;
        let Some(Kind::WebTransport(wt)) = self.kind_mut(conn, stream_id) else {
            return;
        };
        let events = Target::Local(wt.events);
        let mut lines = Vec::new();
        let mut close = None;
        for (header, payload) in frames(written) {
            match header.opcode {
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    wt.partial.extend_from_slice(payload);
                    if header.fin {
                        lines.append(&mut wt.partial);
                        lines.push(b'\n');
                    }
                }
                OpCode::Close => {
                    let (code, reason) = tether_frame::parse_close_payload(payload)
                        .ok()
                        .flatten()
                        .map_or((CloseCode::NORMAL, String::new()), |(c, r)| (c, r.to_owned()));
                    close = Some((code, reason));
                    break;
                }
                _ => {}
            }
        }
        if !lines.is_empty()
            && let Err(e) = self.server.send_webtransport(now, conn, events, &lines, false)
        {
            debug!("HTTP/3 WebTransport events on stream {stream_id}: {e}");
        }
        if let Some((code, reason)) = close {
            let _ = self
                .server
                .close_webtransport(now, conn, stream_id, u32::from(code.0), &reason);
            self.gone(l, conn, stream_id, CloseReason::Closed(code));
        }
    }

    /// A client stream joined a session: a unidirectional one is read as
    /// one message; a bidirectional one is refused.
    pub(super) fn wt_stream(
        &mut self,
        conn: ConnectionHandle,
        stream_id: u64,
        session_id: u64,
        bidi: bool,
        now: Instant,
    ) {
        match self.kind_mut(conn, session_id) {
            Some(Kind::WebTransport(wt)) if !bidi => {
                wt.incoming.insert(stream_id, Vec::new());
            }
            _ => self
                .server
                .reset(now, conn, stream_id, ErrorCode::WT_BUFFERED_STREAM_REJECTED),
        }
    }

    /// Bytes of a client's unidirectional stream: at its end, one message
    /// for the application (the session's size limit applies: a longer
    /// one fails the session with 1009 as over a WebSocket).
    pub(super) fn wt_data<A: App>(
        &mut self,
        l: &mut Lent<'_, A>,
        conn: ConnectionHandle,
        stream_id: u64,
        data: &[u8],
        fin: bool,
    ) {
        let now = l.now;
        let Some(session_id) = self.wt_session_of(conn, stream_id) else {
            return;
        };
        let Some(Kind::WebTransport(wt)) = self.kind_mut(conn, session_id) else {
            return;
        };
        let limit = wt.ws.ws.config().max_message_size.saturating_add(1);
        let Some(message) = wt.incoming.get_mut(&stream_id) else {
            return;
        };
        let room = limit.saturating_sub(message.len());
        message.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        if !fin && message.len() < limit {
            // Still arriving: held against the connection's budget.
            let held = message.len();
            return self.check_shared_budget(l, conn, session_id, held);
        }
        let message = wt.incoming.remove(&stream_id).unwrap_or_default();
        if !fin {
            // Past the limit: the rest is not wanted.
            self.server
                .reset(now, conn, stream_id, ErrorCode::H3_EXCESSIVE_LOAD);
        }
        let mut frame = client_text_frame(&message);
        self.ws_input(l, conn, session_id, &mut frame);
    }

    /// The session a client unidirectional stream being read belongs to.
    fn wt_session_of(&self, conn: ConnectionHandle, stream_id: u64) -> Option<u64> {
        self.conns
            .get(&conn)?
            .streams
            .iter()
            .find_map(|(&id, kind)| match kind {
                Kind::WebTransport(wt) if wt.incoming.contains_key(&stream_id) => Some(id),
                _ => None,
            })
    }

    /// A client stream of a session was reset: its message is dropped.
    pub(super) fn wt_stream_reset(&mut self, conn: ConnectionHandle, stream_id: u64) {
        if let Some(session_id) = self.wt_session_of(conn, stream_id)
            && let Some(Kind::WebTransport(wt)) = self.kind_mut(conn, session_id)
        {
            wt.incoming.remove(&stream_id);
        }
    }

    /// The client stopped reading a session's events stream: the session
    /// is over.
    pub(super) fn wt_stopped<A: App>(&mut self, l: &mut Lent<'_, A>, conn: ConnectionHandle, target: Target) {
        let now = l.now;
        let session = self.conns.get(&conn).and_then(|c| {
            c.streams.iter().find_map(|(&id, kind)| match kind {
                Kind::WebTransport(wt) if Target::Local(wt.events) == target => Some(id),
                _ => None,
            })
        });
        if let Some(session_id) = session {
            let _ = self
                .server
                .close_webtransport(now, conn, session_id, 0, "events stream stopped");
            self.gone(l, conn, session_id, CloseReason::Dropped);
        }
    }

    /// Queues a broadcast's message as a line on the events stream of the
    /// session on `session_id` (and as a datagram when it asked for them
    /// and the message fits); whether the client now leaves more than
    /// `max_output` unsent on the stream.
    pub(super) fn wt_push(
        &mut self,
        conn: ConnectionHandle,
        session_id: u64,
        message: &[u8],
        max_output: usize,
        now: Instant,
    ) -> Option<bool> {
        let Some(Kind::WebTransport(wt)) = self.kind_mut(conn, session_id) else {
            return None;
        };
        let (events, datagrams) = (wt.events, wt.datagrams);
        let mut line = Vec::with_capacity(message.len() + 1);
        line.extend_from_slice(message);
        line.push(b'\n');
        let target = Target::Local(events);
        self.server
            .send_webtransport(now, conn, target, &line, false)
            .ok()?;
        if datagrams
            && self
                .server
                .max_datagram_payload(conn, session_id)
                .is_some_and(|max| message.len() <= max)
        {
            // Lossy by design: a datagram not sent is not missed, the
            // stream has the message.
            let _ = self.server.send_datagram(now, conn, session_id, message);
        }
        Some(self.server.unsent_on(conn, target) > max_output)
    }

    /// The slow-consumer policy on a WebTransport session: closed (its
    /// CONNECT stream carries the close; the connection's other streams
    /// go on).
    pub(super) fn wt_cut_loose(&mut self, conn: ConnectionHandle, session_id: u64, now: Instant) {
        let _ = self
            .server
            .close_webtransport(now, conn, session_id, 0, "slow consumer");
    }
}

/// What the application is told when the client ended a session: the
/// code it gave in CLOSE_WEBTRANSPORT_SESSION, or a drop.
pub(super) fn client_close_reason(close: Option<&tether_h3::webtransport::capsule::Close>) -> CloseReason {
    close.map_or(CloseReason::Dropped, |c| {
        CloseReason::Closed(CloseCode(u16::try_from(c.code).unwrap_or(1000)))
    })
}
