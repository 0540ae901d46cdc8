//! The WebTransport part of [`ServerSession`]: sessions opened by extended
//! CONNECT, the client's streams that name them in their first bytes, the
//! server's own unidirectional streams, capsules on the CONNECT stream,
//! and HTTP datagrams.
//!
//! A session is known from its request on (pending) and live once the
//! caller answered it 2xx; a non-2xx answer forgets it. Streams and
//! datagrams naming a session that is not known are refused (streams
//! reset with WT_BUFFERED_STREAM_REJECTED) or dropped (datagrams, as RFC
//! 9297 allows). When a session ends (its CONNECT stream ends, is reset,
//! or carries CLOSE_WEBTRANSPORT_SESSION; or the server closes it), the
//! client's streams of it are reset with WT_SESSION_GONE and the server's
//! ended.

use std::collections::{BTreeMap, BTreeSet};

use tether_h2::connection::Request;
use tether_h2::hpack::Field;

use super::{LocalStream, SendError, ServerSession, SessionEvent, Target};
use crate::error::{Error, ErrorCode};
use crate::frame;
use crate::varint;
use crate::webtransport::capsule::{Capsule, CapsuleReader, Close, encode_close};
use crate::webtransport::{self, BIDI_SIGNAL, MAX_PREFIX_LEN, datagram};

/// One session, from its request on.
#[derive(Debug)]
pub(super) struct WtSession {
    /// Answered 2xx.
    accepted: bool,
    /// The client sent `sec-webtransport-http3-draft02: 1`.
    draft02: bool,
    capsules: CapsuleReader,
    /// The client's streams of this session.
    client_streams: BTreeSet<u64>,
    /// The server's unidirectional streams of it, by ordinal.
    local_streams: BTreeSet<u64>,
}

/// What the session keeps of WebTransport.
#[derive(Debug, Default)]
pub(super) struct WtState {
    pub(super) sessions: BTreeMap<u64, WtSession>,
    /// Each client stream (uni or bidi) that belongs to a session, with
    /// the session's ID.
    pub(super) client_streams: BTreeMap<u64, u64>,
    /// The client bidirectional streams of sessions this server may still
    /// write on.
    pub(super) bidi_sending: BTreeSet<u64>,
    /// The client bidirectional streams of sessions whose reading ended
    /// while this server still writes on them.
    reading_done: BTreeSet<u64>,
    /// The first bytes of new client bidirectional streams, until they
    /// tell a request from a WebTransport stream (at most
    /// [`MAX_PREFIX_LEN`] each).
    pub(super) starting: BTreeMap<u64, Vec<u8>>,
    /// The server's unidirectional streams by ordinal, with their session.
    pub(super) local_streams: BTreeMap<u64, u64>,
    next_local: u64,
    /// Datagrams received for no live session.
    pub(super) dropped_datagrams: u64,
}

/// What the first bytes of a client bidirectional stream are.
enum Start {
    /// Not enough bytes yet.
    Unknown,
    /// A request: its bytes so far are HTTP/3 frames.
    Request,
    /// A WebTransport stream of this session; its payload starts after
    /// `prefix` bytes.
    WebTransport { session_id: u64, prefix: usize },
}

fn classify(bytes: &[u8]) -> Start {
    let Some((signal, n)) = varint::decode(bytes) else {
        return Start::Unknown;
    };
    if signal != BIDI_SIGNAL {
        return Start::Request;
    }
    match bytes.get(n..).and_then(varint::decode) {
        Some((session_id, m)) => Start::WebTransport {
            session_id,
            prefix: n + m,
        },
        None => Start::Unknown,
    }
}

impl ServerSession {
    /// Whether this server speaks WebTransport (configured with sessions
    /// and extended CONNECT).
    pub(super) fn webtransport_enabled(&self) -> bool {
        self.config.max_webtransport_sessions > 0 && self.config.enable_connect_protocol
    }

    /// The WebTransport sessions held (pending an answer or live).
    pub fn webtransport_sessions(&self) -> usize {
        self.wt.sessions.len()
    }

    /// Datagrams received that named no live session and were dropped.
    pub fn dropped_datagrams(&self) -> u64 {
        self.wt.dropped_datagrams
    }

    /// The first bytes of a new client bidirectional stream, held until
    /// they say whether it is a request or a WebTransport stream.
    pub(super) fn receive_start(&mut self, stream_id: u64, data: &[u8], fin: bool) -> Result<(), Error> {
        let buffered = self.wt.starting.entry(stream_id).or_default();
        let take = MAX_PREFIX_LEN.saturating_sub(buffered.len()).min(data.len());
        buffered.extend_from_slice(data.get(..take).unwrap_or_default());
        let rest = data.get(take..).unwrap_or_default();
        let start = classify(buffered);
        if matches!(start, Start::Unknown) && !fin {
            // Fewer than MAX_PREFIX_LEN bytes, so all of `data` was taken.
            return Ok(());
        }
        let first = self.wt.starting.remove(&stream_id).unwrap_or_default();
        match start {
            Start::WebTransport { session_id, prefix } => {
                if !self.associate(stream_id, session_id, true) {
                    return Ok(());
                }
                let mut payload = first.get(prefix..).unwrap_or_default().to_vec();
                payload.extend_from_slice(rest);
                self.stream_data(stream_id, payload, fin);
                Ok(())
            }
            Start::Request | Start::Unknown => {
                self.new_request(stream_id);
                if rest.is_empty() {
                    return self.read_request(stream_id, &first, fin);
                }
                self.read_request(stream_id, &first, false)?;
                self.read_request(stream_id, rest, fin)
            }
        }
    }

    /// A client stream names `session_id`: it joins the session
    /// ([`SessionEvent::WebTransportStream`]), or, when the session is
    /// not known, is refused. Whether it joined.
    pub(super) fn associate(&mut self, stream_id: u64, session_id: u64, bidirectional: bool) -> bool {
        let Some(session) = self.wt.sessions.get_mut(&session_id) else {
            let code = ErrorCode::WT_BUFFERED_STREAM_REJECTED;
            self.events.push_back(if bidirectional {
                SessionEvent::StreamError {
                    stream_id,
                    code,
                    malformed: None,
                }
            } else {
                SessionEvent::StopSending { stream_id, code }
            });
            return false;
        };
        session.client_streams.insert(stream_id);
        self.wt.client_streams.insert(stream_id, session_id);
        if bidirectional {
            self.wt.bidi_sending.insert(stream_id);
        }
        self.events.push_back(SessionEvent::WebTransportStream {
            stream_id,
            session_id,
            bidirectional,
        });
        true
    }

    /// Bytes on a client stream of a session; the stream leaves the
    /// session's reading once it ends.
    pub(super) fn stream_data(&mut self, stream_id: u64, data: Vec<u8>, fin: bool) {
        if data.is_empty() && !fin {
            return;
        }
        if fin {
            self.leave_reading(stream_id);
        }
        self.events
            .push_back(SessionEvent::WebTransportData { stream_id, data, fin });
    }

    /// A client stream is no longer read: it leaves its session unless the
    /// server still writes on it.
    fn leave_reading(&mut self, stream_id: u64) {
        if self.wt.bidi_sending.contains(&stream_id) {
            self.wt.reading_done.insert(stream_id);
            return;
        }
        self.wt.reading_done.remove(&stream_id);
        if let Some(session_id) = self.wt.client_streams.remove(&stream_id)
            && let Some(session) = self.wt.sessions.get_mut(&session_id)
        {
            session.client_streams.remove(&stream_id);
        }
    }

    /// A request head: a WebTransport CONNECT becomes a pending session,
    /// or, past the limit of sessions, is refused (H3_REQUEST_REJECTED)
    /// without the caller seeing it. Whether the caller is told of it.
    pub(super) fn webtransport_request(&mut self, stream_id: u64, request: &Request) -> bool {
        if !self.webtransport_enabled() || !request.is_extended_connect(webtransport::PROTOCOL) {
            return true;
        }
        let limit = usize::try_from(self.config.max_webtransport_sessions).unwrap_or(usize::MAX);
        if self.wt.sessions.len() >= limit {
            self.stream_error(stream_id, ErrorCode::H3_REQUEST_REJECTED, None);
            return false;
        }
        let draft02 = request
            .field(webtransport::DRAFT02_REQUEST_FIELD)
            .is_some_and(|v| v == b"1");
        self.wt.sessions.insert(
            stream_id,
            WtSession {
                accepted: false,
                draft02,
                capsules: CapsuleReader::new(),
                client_streams: BTreeSet::new(),
                local_streams: BTreeSet::new(),
            },
        );
        true
    }

    /// A final head for `stream_id` is being sent: a pending session's is
    /// its acceptance (2xx, with the field a draft-02 client checks added
    /// to `fields`) or its refusal.
    pub(super) fn webtransport_answer(&mut self, stream_id: u64, status: u16, fields: &mut Vec<Field>) {
        let Some(session) = self.wt.sessions.get_mut(&stream_id) else {
            return;
        };
        if session.accepted || status < 200 {
            return;
        }
        if (200..300).contains(&status) {
            session.accepted = true;
            if session.draft02 {
                fields.push(Field::new(
                    webtransport::DRAFT02_RESPONSE_FIELD,
                    webtransport::DRAFT02_RESPONSE_VALUE,
                ));
            }
        } else {
            self.end_session(stream_id, None, false);
        }
    }

    /// A piece of a session's CONNECT stream: capsules. `None` if the
    /// stream is no session's (the bytes are the caller's body).
    pub(super) fn session_capsules(&mut self, stream_id: u64, data: &[u8]) -> Option<()> {
        let session = self.wt.sessions.get_mut(&stream_id)?;
        let mut capsules = Vec::new();
        if session.capsules.feed(data, &mut capsules).is_err() {
            // The session ends with its stream.
            self.stream_error(stream_id, ErrorCode::H3_MESSAGE_ERROR, None);
            return Some(());
        }
        for capsule in capsules {
            match capsule {
                Capsule::Close(close) => {
                    // The session is over: whatever the stream carries
                    // after its close is dropped, however it was cut.
                    self.end_session(stream_id, Some(close), true);
                    self.done_reading(stream_id);
                    break;
                }
                // The client asks for a wind-down; this server's
                // sessions end when either side closes them.
                Capsule::Drain => {}
            }
        }
        Some(())
    }

    /// A session's CONNECT stream ended (FIN) or was reset: the session
    /// ends. Whether it was one.
    pub(super) fn session_stream_ended(&mut self, stream_id: u64) -> bool {
        if !self.wt.sessions.contains_key(&stream_id) {
            return false;
        }
        self.end_session(stream_id, None, true);
        true
    }

    /// Ends a session: the client's streams of it are reset
    /// (WT_SESSION_GONE), the server's ended, its CONNECT stream finished
    /// if it was answered, and, when `tell`, the caller told.
    fn end_session(&mut self, session_id: u64, close: Option<Close>, tell: bool) {
        let Some(session) = self.wt.sessions.remove(&session_id) else {
            return;
        };
        for stream_id in session.client_streams {
            self.wt.client_streams.remove(&stream_id);
            self.wt.bidi_sending.remove(&stream_id);
            self.wt.reading_done.remove(&stream_id);
            if let Some(super::UniState::WebTransport) = self.uni_streams.remove(&stream_id) {
                self.events.push_back(SessionEvent::StopSending {
                    stream_id,
                    code: ErrorCode::WT_SESSION_GONE,
                });
            } else {
                self.writes.remove(&Target::Request(stream_id));
                self.events.push_back(SessionEvent::StreamError {
                    stream_id,
                    code: ErrorCode::WT_SESSION_GONE,
                    malformed: None,
                });
            }
        }
        for ordinal in session.local_streams {
            self.wt.local_streams.remove(&ordinal);
            self.queue(Target::Local(LocalStream::WebTransport(ordinal)), &[], true);
        }
        if session.accepted {
            let _ = self.finish(session_id);
        }
        if tell {
            self.events
                .push_back(SessionEvent::WebTransportClosed { session_id, close });
        }
    }

    /// Closes a live session from the server's side: a
    /// CLOSE_WEBTRANSPORT_SESSION capsule with `code` and `reason` (cut to
    /// 1024 bytes) ends its CONNECT stream, and its streams are ended as
    /// when the client closes it (no [`SessionEvent::WebTransportClosed`]
    /// follows: the caller knows).
    pub fn close_webtransport(&mut self, session_id: u64, code: u32, reason: &str) -> Result<(), SendError> {
        if !self.wt.sessions.get(&session_id).is_some_and(|s| s.accepted) {
            return Err(SendError::UnknownSession(session_id));
        }
        let mut capsule = Vec::new();
        encode_close(
            &Close {
                code,
                reason: reason.to_owned(),
            },
            &mut capsule,
        )?;
        let mut bytes = Vec::with_capacity(capsule.len() + 9);
        frame::encode_data(&capsule, &mut bytes)?;
        self.queue(Target::Request(session_id), &bytes, false);
        self.end_session(session_id, None, false);
        Ok(())
    }

    /// Opens a unidirectional stream of this server's for a live session:
    /// its prefix is queued, and the caller opens the QUIC stream when it
    /// first writes to the target.
    pub fn open_webtransport_stream(&mut self, session_id: u64) -> Result<LocalStream, SendError> {
        let session = self
            .wt
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.accepted)
            .ok_or(SendError::UnknownSession(session_id))?;
        let ordinal = self.wt.next_local;
        self.wt.next_local += 1;
        session.local_streams.insert(ordinal);
        self.wt.local_streams.insert(ordinal, session_id);
        let mut prefix = Vec::with_capacity(MAX_PREFIX_LEN);
        webtransport::encode_uni_prefix(session_id, &mut prefix)?;
        let stream = LocalStream::WebTransport(ordinal);
        self.queue(Target::Local(stream), &prefix, false);
        Ok(stream)
    }

    /// Queues raw bytes on a WebTransport stream this server writes on: one
    /// it opened (`Target::Local(LocalStream::WebTransport(_))`) or a
    /// client bidirectional one (`Target::Request(id)`); `fin` ends it.
    pub fn send_webtransport(&mut self, target: Target, data: &[u8], fin: bool) -> Result<(), SendError> {
        match target {
            Target::Local(LocalStream::WebTransport(ordinal)) => {
                if !self.wt.local_streams.contains_key(&ordinal) {
                    return Err(SendError::UnknownStream(ordinal));
                }
                if fin {
                    self.local_stream_done(ordinal);
                }
            }
            Target::Request(stream_id) => {
                if !self.wt.bidi_sending.contains(&stream_id) {
                    return Err(SendError::UnknownStream(stream_id));
                }
                if fin {
                    self.wt.bidi_sending.remove(&stream_id);
                    self.leave_reading_if_done(stream_id);
                }
            }
            Target::Local(LocalStream::Control | LocalStream::QpackDecoder) => {
                return Err(SendError::UnknownStream(0));
            }
        }
        self.queue(target, data, fin);
        Ok(())
    }

    /// A bidirectional stream whose sending ended: it leaves its session
    /// if its reading ended too.
    fn leave_reading_if_done(&mut self, stream_id: u64) {
        if self.wt.reading_done.remove(&stream_id) {
            self.leave_reading(stream_id);
        }
    }

    /// One of the server's streams is finished or stopped: forgotten.
    fn local_stream_done(&mut self, ordinal: u64) {
        if let Some(session_id) = self.wt.local_streams.remove(&ordinal)
            && let Some(session) = self.wt.sessions.get_mut(&session_id)
        {
            session.local_streams.remove(&ordinal);
        }
    }

    /// The client stopped reading one of the server's WebTransport
    /// streams (or reset a client one): forgotten, and the caller told.
    pub(super) fn webtransport_stopped(&mut self, target: Target, code: u64) -> bool {
        match target {
            Target::Local(LocalStream::WebTransport(ordinal)) => {
                if self.wt.local_streams.contains_key(&ordinal) {
                    self.local_stream_done(ordinal);
                    self.writes.remove(&target);
                    self.events
                        .push_back(SessionEvent::WebTransportStopped { target, code });
                }
                true
            }
            Target::Request(stream_id) if self.wt.bidi_sending.remove(&stream_id) => {
                self.writes.remove(&target);
                self.leave_reading_if_done(stream_id);
                self.events
                    .push_back(SessionEvent::WebTransportStopped { target, code });
                true
            }
            _ => false,
        }
    }

    /// The server gave a client bidirectional stream up
    /// ([`ServerSession::abandon`]): a session on it ends, a WebTransport
    /// stream leaves its session.
    pub(super) fn webtransport_abandoned(&mut self, stream_id: u64) {
        self.wt.starting.remove(&stream_id);
        self.end_session(stream_id, None, false);
        if self.wt.client_streams.contains_key(&stream_id) {
            self.wt.bidi_sending.remove(&stream_id);
            self.leave_reading(stream_id);
        }
    }

    /// The client reset one of its WebTransport streams. Whether it was
    /// one.
    pub(super) fn webtransport_reset(&mut self, stream_id: u64, code: u64) -> bool {
        if self.wt.starting.remove(&stream_id).is_some() {
            return true;
        }
        if !self.wt.client_streams.contains_key(&stream_id) {
            return false;
        }
        self.uni_streams.remove(&stream_id);
        self.wt.bidi_sending.remove(&stream_id);
        self.leave_reading(stream_id);
        self.writes.remove(&Target::Request(stream_id));
        self.events
            .push_back(SessionEvent::WebTransportReset { stream_id, code });
        true
    }

    /// A QUIC DATAGRAM frame's payload: an HTTP datagram for a live
    /// session is [`SessionEvent::Datagram`]; one for no live session is
    /// dropped (and counted). A payload that is no HTTP datagram is a
    /// connection error (H3_DATAGRAM_ERROR).
    pub fn receive_datagram(&mut self, payload: &[u8]) -> Result<(), Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = datagram::decode(payload);
        let (session_id, data) = match result {
            Ok(parsed) => parsed,
            Err(error) => return self.fail_on(Err(error)),
        };
        if self.wt.sessions.get(&session_id).is_some_and(|s| s.accepted) {
            self.events.push_back(SessionEvent::Datagram {
                session_id,
                data: data.to_vec(),
            });
        } else {
            self.wt.dropped_datagrams += 1;
        }
        Ok(())
    }

    /// The QUIC DATAGRAM payload carrying `payload` for a live session.
    pub fn datagram(&self, session_id: u64, payload: &[u8]) -> Result<Vec<u8>, SendError> {
        if !self.wt.sessions.get(&session_id).is_some_and(|s| s.accepted) {
            return Err(SendError::UnknownSession(session_id));
        }
        let mut bytes = Vec::with_capacity(payload.len() + datagram::overhead(session_id));
        datagram::encode(session_id, payload, &mut bytes)?;
        Ok(bytes)
    }
}
