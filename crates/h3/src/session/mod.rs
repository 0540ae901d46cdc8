//! The server side of an HTTP/3 connection (RFC 9114), sans-IO.
//!
//! A [`ServerSession`] knows nothing of QUIC packets: the caller reads each
//! QUIC stream and hands its bytes in by stream ID
//! ([`ServerSession::receive`]); requests, bodies, ends and stream errors
//! come out as [`SessionEvent`]s; responses go in
//! ([`ServerSession::send_head`], [`ServerSession::send_data`],
//! [`ServerSession::finish`]) and the bytes to write on each stream come
//! out of [`ServerSession::take_writes`], among them this server's control
//! stream (SETTINGS first, later GOAWAY) and its QPACK decoder stream.
//!
//! An `Err` from a method that reads the peer's bytes is a connection error:
//! close the QUIC connection with [`Error::code`]; every later call gives
//! the same error. A malformed request is only a stream error,
//! [`SessionEvent::StreamError`]: reset that stream, the others go on.
//!
//! Memory is bounded per stream (a frame, a field section, what arrives
//! while a section waits for the QPACK encoder stream) and per connection
//! by the QPACK table and blocked-stream limits; the number of streams is
//! QUIC's limit, which the caller sets.
//!
//! WebTransport over HTTP/3 (draft-ietf-webtrans-http3, as browsers speak
//! it) is served when [`SessionConfig::max_webtransport_sessions`] is
//! above 0 (with extended CONNECT): its SETTINGS are sent, a
//! `:protocol = webtransport` CONNECT is a session once answered 2xx, the
//! client's streams that name a session in their first bytes come out as
//! raw bytes ([`SessionEvent::WebTransportData`]), the server opens
//! streams of its own ([`ServerSession::open_webtransport_stream`]), and
//! HTTP datagrams (RFC 9297) go both ways
//! ([`ServerSession::receive_datagram`], [`ServerSession::datagram`]).
//! See `webtransport.rs`.
//!
//! The session's state and the reading of request streams are here; the
//! rest is beside it: `config.rs` the limits, `event.rs` what comes out,
//! `uni.rs` the client's unidirectional streams, `send.rs` responses and
//! the bytes to write, and `webtransport.rs` WebTransport.

use std::collections::{BTreeMap, VecDeque};

use tether_h2::hpack::Field;

use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::frame::Frame;
use crate::head::{self, Malformed};
use crate::qpack::{Decoder, DecoderStreamReader, Section};
use crate::request::{RequestEvent, RequestStream};
use crate::settings::Settings;
use crate::stream::{ControlStream, Role, StreamType, StreamTypeReader, UniStreams};
use crate::stream_ids::StreamIds;
use crate::varint::VarintReader;

mod config;
mod event;
mod send;
mod uni;
mod webtransport;

pub use config::SessionConfig;
pub use event::SessionEvent;

use webtransport::WtState;

/// A unidirectional stream this server opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LocalStream {
    /// The control stream (SETTINGS, GOAWAY).
    Control,
    /// The QPACK decoder stream (acknowledgments for the client's
    /// encoder).
    QpackDecoder,
    /// A WebTransport unidirectional stream, by the ordinal
    /// [`ServerSession::open_webtransport_stream`] gave it; it ends when
    /// its writes say `fin`.
    WebTransport(u64),
}

/// Where bytes from [`ServerSession::take_writes`] go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The client bidirectional stream with this QUIC stream ID: a
    /// request's response, or a WebTransport stream's raw bytes.
    Request(u64),
    /// A unidirectional stream of this server's, which the caller opens
    /// the first time bytes are written to it (the control and QPACK
    /// streams are never finished).
    Local(LocalStream),
}

/// Bytes to write on one stream, in order after those taken before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The stream.
    pub target: Target,
    /// The bytes (may be empty when only `fin` is news).
    pub bytes: Vec<u8>,
    /// After these bytes the stream ends.
    pub fin: bool,
}

/// Why a response could not be queued: the caller's mistake, not the
/// client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No open request stream with this ID (never seen, finished, reset).
    UnknownStream(u64),
    /// A final head was already sent, or none yet before data.
    OutOfOrder(u64),
    /// A status outside 100..=599.
    InvalidStatus(u16),
    /// The head is larger than the client's SETTINGS_MAX_FIELD_SECTION_SIZE.
    HeadTooLarge(u64),
    /// An encoding limit (a length above 2^62).
    Encoding(Misuse),
    /// No live WebTransport session with this ID.
    UnknownSession(u64),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "cannot send: {self:?}")
    }
}

impl std::error::Error for SendError {}

impl From<Misuse> for SendError {
    fn from(misuse: Misuse) -> SendError {
        SendError::Encoding(misuse)
    }
}

/// Which section of a request a blocked QPACK section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    Head,
    Trailers,
}

/// The reading half of a request stream.
#[derive(Debug)]
struct Reading {
    framing: RequestStream,
    /// A section waiting for the encoder stream, and what arrived after it.
    blocked: Option<SectionKind>,
    pending: Vec<u8>,
    pending_fin: bool,
    content_length: Option<u64>,
    received: u64,
}

/// The sending half of a request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Nothing,
    Head,
    Finished,
}

#[derive(Debug)]
struct RequestState {
    /// `None` once the request has been read to its end (or given up).
    reading: Option<Reading>,
    sending: Sending,
}

#[derive(Debug)]
enum UniState {
    Type(StreamTypeReader),
    Control(ControlStream),
    Encoder,
    Decoder(DecoderStreamReader),
    /// A WebTransport stream whose session ID is being read.
    WebTransportPrefix(VarintReader),
    /// A WebTransport stream of a session: raw bytes.
    WebTransport,
}

/// The server's state of one HTTP/3 connection.
///
/// ```
/// use tether_h2::hpack::Field;
/// use tether_h3::session::{ServerSession, SessionConfig, SessionEvent, Target};
///
/// let mut session = ServerSession::new(SessionConfig::default());
/// // A GET on stream 0: HEADERS with a static-table section, then FIN.
/// let mut section = Vec::new();
/// tether_h3::qpack::encode(
///     &[
///         Field::new(":method", "GET"),
///         Field::new(":scheme", "https"),
///         Field::new(":authority", "a.example"),
///         Field::new(":path", "/"),
///     ],
///     &mut section,
/// );
/// let mut wire = Vec::new();
/// tether_h3::frame::Frame::Headers(section).encode(&mut wire)?;
/// session.receive(0, &wire, true)?;
/// assert!(matches!(session.poll_event(), Some(SessionEvent::Request { stream_id: 0, .. })));
/// assert_eq!(session.poll_event(), Some(SessionEvent::End { stream_id: 0 }));
///
/// session.send_head(0, 200, &[Field::new("content-type", "text/plain")])?;
/// session.send_data(0, b"hello")?;
/// session.finish(0)?;
/// let writes = session.take_writes();
/// // The control stream with SETTINGS, then the response.
/// assert!(writes.iter().any(|w| w.target == Target::Request(0) && w.fin));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    decoder: Decoder,
    uni: UniStreams,
    uni_streams: BTreeMap<u64, UniState>,
    requests: BTreeMap<u64, RequestState>,
    /// The client's request streams seen.
    request_ids: StreamIds,
    /// The client's unidirectional streams seen: one that is done with (an
    /// unknown type, ended) leaves `uni_streams` and its late bytes are
    /// dropped.
    uni_ids: StreamIds,
    /// The ID sent in GOAWAY: requests from it on are refused.
    goaway: Option<u64>,
    peer_settings: Option<Settings>,
    events: VecDeque<SessionEvent>,
    writes: BTreeMap<Target, (Vec<u8>, bool)>,
    decoder_stream_open: bool,
    error: Option<Error>,
    wt: WtState,
}

/// Whether a QUIC stream ID is a client-initiated bidirectional one.
const fn is_request_stream(stream_id: u64) -> bool {
    stream_id & 0x3 == 0
}

/// Whether a QUIC stream ID is a client-initiated unidirectional one.
const fn is_client_uni_stream(stream_id: u64) -> bool {
    stream_id & 0x3 == 2
}

impl ServerSession {
    /// A session whose control stream (its type and SETTINGS) is already
    /// queued in [`ServerSession::take_writes`].
    pub fn new(config: SessionConfig) -> ServerSession {
        let decoder = Decoder::new(config.qpack_max_table_capacity, config.qpack_blocked_streams)
            .with_max_field_section_size(config.max_field_section_size);
        let mut session = ServerSession {
            decoder,
            uni: UniStreams::new(Role::Server),
            uni_streams: BTreeMap::new(),
            requests: BTreeMap::new(),
            request_ids: StreamIds::new(0),
            uni_ids: StreamIds::new(2),
            goaway: None,
            peer_settings: None,
            events: VecDeque::new(),
            writes: BTreeMap::new(),
            decoder_stream_open: false,
            error: None,
            wt: WtState::default(),
            config,
        };
        let settings = session.settings();
        let mut control = vec![0x00];
        // Encoding fails only for values above 2^62, which usize
        // settings on 64-bit targets do not reach; a failure leaves
        // SETTINGS empty rather than panicking.
        if Frame::Settings(settings).encode(&mut control).is_err() {
            control.truncate(1);
            let _ = Frame::Settings(Settings::default()).encode(&mut control);
        }
        session.queue(Target::Local(LocalStream::Control), &control, false);
        session
    }

    /// The SETTINGS this server sends.
    pub fn settings(&self) -> Settings {
        let wt = self.webtransport_enabled();
        Settings {
            qpack_max_table_capacity: Some(self.config.qpack_max_table_capacity),
            max_field_section_size: Some(
                u64::try_from(self.config.max_field_section_size).unwrap_or(u64::MAX),
            ),
            qpack_blocked_streams: Some(self.config.qpack_blocked_streams),
            enable_connect_protocol: self.config.enable_connect_protocol.then_some(true),
            h3_datagram: wt.then_some(true),
            enable_webtransport: wt.then_some(true),
            webtransport_max_sessions_draft07: wt.then_some(self.config.max_webtransport_sessions),
            wt_max_sessions: wt.then_some(self.config.max_webtransport_sessions),
            unknown: Vec::new(),
        }
    }

    /// The client's SETTINGS, once its control stream delivered them.
    pub fn peer_settings(&self) -> Option<&Settings> {
        self.peer_settings.as_ref()
    }

    /// How many request streams the session holds (being read or
    /// answered).
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Bytes arrived on the client's stream `stream_id` (`fin`: the stream
    /// ended after them). An `Err` is a connection error.
    pub fn receive(&mut self, stream_id: u64, data: &[u8], fin: bool) -> Result<(), Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = if is_request_stream(stream_id) {
            self.receive_request(stream_id, data, fin)
        } else if is_client_uni_stream(stream_id) {
            self.receive_uni(stream_id, data, fin)
        } else {
            Err(Error::new(
                ErrorCode::H3_STREAM_CREATION_ERROR,
                Violation::ServerStreamFromPeer(stream_id),
            ))
        };
        self.fail_on(result)
    }

    /// The client reset its stream `stream_id` (RESET_STREAM): a request
    /// is [`SessionEvent::Cancelled`], a control or QPACK stream a
    /// connection error.
    pub fn reset_by_peer(&mut self, stream_id: u64, code: u64) -> Result<(), Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if is_request_stream(stream_id) {
            // A stream reset before its first bytes is done with too.
            self.request_ids.first_seen(stream_id);
            if !self.webtransport_reset(stream_id, code) {
                self.cancel(stream_id, code);
            }
            return Ok(());
        }
        if self.webtransport_reset(stream_id, code) {
            return Ok(());
        }
        let result = match self.uni_streams.remove(&stream_id) {
            Some(UniState::Control(_)) => self.uni.closed(StreamType::Control),
            Some(UniState::Encoder) => self.uni.closed(StreamType::QpackEncoder),
            Some(UniState::Decoder(_)) => self.uni.closed(StreamType::QpackDecoder),
            Some(UniState::Type(_) | UniState::WebTransportPrefix(_) | UniState::WebTransport) | None => {
                // Seen now, if it never was: nothing more is read from it.
                self.uni_ids.first_seen(stream_id);
                Ok(())
            }
        };
        self.fail_on(result)
    }

    /// The client stopped reading what this server sends on `target`
    /// (STOP_SENDING): a response is [`SessionEvent::Cancelled`]; for a
    /// control or QPACK stream it is a connection error.
    pub fn stopped_by_peer(&mut self, target: Target, code: u64) -> Result<(), Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.webtransport_stopped(target, code) {
            return Ok(());
        }
        let result = match target {
            Target::Request(stream_id) => {
                self.cancel(stream_id, code);
                Ok(())
            }
            Target::Local(LocalStream::Control) => self.uni.closed(StreamType::Control),
            Target::Local(LocalStream::QpackDecoder) => self.uni.closed(StreamType::QpackDecoder),
            Target::Local(LocalStream::WebTransport(_)) => Ok(()),
        };
        self.fail_on(result)
    }

    fn fail_on(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        if let Err(error) = result {
            self.error = Some(error);
        }
        result
    }

    fn cancel(&mut self, stream_id: u64, code: u64) {
        self.session_stream_ended(stream_id);
        if let Some(state) = self.requests.remove(&stream_id) {
            if state.reading.is_some() {
                self.decoder.cancel_stream(stream_id);
            }
            self.writes.remove(&Target::Request(stream_id));
            self.events.push_back(SessionEvent::Cancelled { stream_id, code });
        }
    }

    fn receive_request(&mut self, stream_id: u64, data: &[u8], fin: bool) -> Result<(), Error> {
        if self.request_ids.first_seen(stream_id) {
            if self.goaway.is_some_and(|id| stream_id >= id) {
                // RFC 9114 §5.2: a request past GOAWAY is refused.
                self.events.push_back(SessionEvent::StreamError {
                    stream_id,
                    code: ErrorCode::H3_REQUEST_REJECTED,
                    malformed: None,
                });
                return Ok(());
            }
            if self.webtransport_enabled() {
                // A request or a WebTransport stream: its first bytes say.
                self.wt.starting.insert(stream_id, Vec::new());
            } else {
                self.new_request(stream_id);
            }
        }
        if self.wt.starting.contains_key(&stream_id) {
            return self.receive_start(stream_id, data, fin);
        }
        if self.wt.client_streams.contains_key(&stream_id) {
            self.stream_data(stream_id, data.to_vec(), fin);
            return Ok(());
        }
        self.read_request(stream_id, data, fin)
    }

    /// A client bidirectional stream is a request: its reading begins.
    fn new_request(&mut self, stream_id: u64) {
        self.requests.insert(
            stream_id,
            RequestState {
                reading: Some(Reading {
                    framing: RequestStream::new(self.config.max_frame_payload),
                    blocked: None,
                    pending: Vec::new(),
                    pending_fin: false,
                    content_length: None,
                    received: 0,
                }),
                sending: Sending::Nothing,
            },
        );
    }

    /// Reads a request stream's bytes, unless it is done with (an earlier
    /// stream, an ended or abandoned one: its late bytes are dropped).
    fn read_request(&mut self, stream_id: u64, data: &[u8], fin: bool) -> Result<(), Error> {
        let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut()) else {
            return Ok(());
        };
        if reading.blocked.is_some() {
            if reading.pending.len().saturating_add(data.len()) > self.config.max_blocked_bytes {
                self.stream_error(stream_id, ErrorCode::H3_EXCESSIVE_LOAD, None);
                return Ok(());
            }
            reading.pending.extend_from_slice(data);
            reading.pending_fin |= fin;
            return Ok(());
        }
        let mut input = data;
        loop {
            let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut()) else {
                return Ok(());
            };
            let (used, event) = reading.framing.decode(input)?;
            input = input.get(used..).unwrap_or_default();
            let Some(event) = event else {
                break;
            };
            match event {
                RequestEvent::Headers(section) => self.section(stream_id, SectionKind::Head, &section)?,
                RequestEvent::Trailers(section) => {
                    self.section(stream_id, SectionKind::Trailers, &section)?
                }
                RequestEvent::Data(chunk) if self.wt.sessions.contains_key(&stream_id) => {
                    self.session_capsules(stream_id, chunk);
                }
                RequestEvent::Data(chunk) => {
                    let before = reading.received;
                    reading.received = before.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
                    if let Some(limit) = reading.content_length
                        && reading.received > limit
                    {
                        // The body up to content-length, then the error:
                        // the same events however the bytes were cut.
                        let allowed = usize::try_from(limit - before).unwrap_or(usize::MAX);
                        let head = chunk.get(..allowed).unwrap_or(chunk);
                        if !head.is_empty() {
                            self.events.push_back(SessionEvent::Data {
                                stream_id,
                                data: head.to_vec(),
                            });
                        }
                        self.stream_error(
                            stream_id,
                            ErrorCode::H3_MESSAGE_ERROR,
                            Some(Malformed::ContentLength),
                        );
                        return Ok(());
                    }
                    if !chunk.is_empty() {
                        self.events.push_back(SessionEvent::Data {
                            stream_id,
                            data: chunk.to_vec(),
                        });
                    }
                }
            }
            // A section that blocked keeps the rest for later.
            if let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut())
                && reading.blocked.is_some()
            {
                if input.len() > self.config.max_blocked_bytes {
                    self.stream_error(stream_id, ErrorCode::H3_EXCESSIVE_LOAD, None);
                    return Ok(());
                }
                reading.pending.extend_from_slice(input);
                reading.pending_fin |= fin;
                return Ok(());
            }
        }
        if fin {
            self.end_request(stream_id)?;
        }
        Ok(())
    }

    fn end_request(&mut self, stream_id: u64) -> Result<(), Error> {
        if self.wt.sessions.contains_key(&stream_id) {
            // A session's CONNECT stream ending ends the session.
            self.done_reading(stream_id);
            self.session_stream_ended(stream_id);
            return Ok(());
        }
        let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut()) else {
            return Ok(());
        };
        if let Err(error) = reading.framing.finish() {
            if error.code == ErrorCode::H3_REQUEST_INCOMPLETE {
                self.stream_error(stream_id, error.code, None);
                return Ok(());
            }
            return Err(error);
        }
        if reading.content_length.is_some_and(|n| n != reading.received) {
            self.stream_error(
                stream_id,
                ErrorCode::H3_MESSAGE_ERROR,
                Some(Malformed::ContentLength),
            );
            return Ok(());
        }
        self.done_reading(stream_id);
        self.events.push_back(SessionEvent::End { stream_id });
        Ok(())
    }

    /// A request or trailer section: decoded now, or kept until the
    /// encoder stream delivers what it refers to.
    fn section(&mut self, stream_id: u64, kind: SectionKind, section: &[u8]) -> Result<(), Error> {
        match self.decoder.decode_section(stream_id, section) {
            Ok(Section::Decoded(fields)) => self.fields(stream_id, kind, fields),
            Ok(Section::Blocked) => {
                if let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut()) {
                    reading.blocked = Some(kind);
                }
                Ok(())
            }
            Err(error) if error.violation == Violation::FieldSectionTooLarge => {
                self.decoder.cancel_stream(stream_id);
                self.done_reading(stream_id);
                self.events.push_back(SessionEvent::HeadTooLarge { stream_id });
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// A decoded section, checked.
    fn fields(&mut self, stream_id: u64, kind: SectionKind, fields: Vec<Field>) -> Result<(), Error> {
        match kind {
            SectionKind::Head => {
                let content_length = match head::content_length(&fields) {
                    Ok(n) => n,
                    Err(malformed) => {
                        self.stream_error(stream_id, ErrorCode::H3_MESSAGE_ERROR, Some(malformed));
                        return Ok(());
                    }
                };
                match head::parse_request(fields, self.config.enable_connect_protocol) {
                    Ok(request) if !self.webtransport_request(stream_id, &request) => {}
                    Ok(request) => {
                        if let Some(reading) =
                            self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut())
                        {
                            reading.content_length = content_length;
                        }
                        self.events
                            .push_back(SessionEvent::Request { stream_id, request });
                    }
                    Err(malformed) => {
                        self.stream_error(stream_id, ErrorCode::H3_MESSAGE_ERROR, Some(malformed))
                    }
                }
            }
            SectionKind::Trailers => match head::check_trailers(&fields) {
                Ok(()) => self
                    .events
                    .push_back(SessionEvent::Trailers { stream_id, fields }),
                Err(malformed) => self.stream_error(stream_id, ErrorCode::H3_MESSAGE_ERROR, Some(malformed)),
            },
        }
        Ok(())
    }

    /// A request stream is given up: reported, and forgotten.
    fn stream_error(&mut self, stream_id: u64, code: ErrorCode, malformed: Option<Malformed>) {
        self.session_stream_ended(stream_id);
        if let Some(state) = self.requests.remove(&stream_id)
            && state.reading.as_ref().is_some_and(|r| r.blocked.is_some())
        {
            self.decoder.cancel_stream(stream_id);
        }
        self.writes.remove(&Target::Request(stream_id));
        self.events.push_back(SessionEvent::StreamError {
            stream_id,
            code,
            malformed,
        });
    }

    fn done_reading(&mut self, stream_id: u64) {
        if let Some(state) = self.requests.get_mut(&stream_id) {
            state.reading = None;
            if state.sending == Sending::Finished {
                self.requests.remove(&stream_id);
            }
        }
    }

    /// A blocked section's fields arrived: hand them on, then read what
    /// came after the section.
    fn unblocked(&mut self, stream_id: u64, fields: Vec<Field>) -> Result<(), Error> {
        let Some(reading) = self.requests.get_mut(&stream_id).and_then(|s| s.reading.as_mut()) else {
            return Ok(());
        };
        let Some(kind) = reading.blocked.take() else {
            return Ok(());
        };
        let pending = std::mem::take(&mut reading.pending);
        let fin = std::mem::replace(&mut reading.pending_fin, false);
        self.fields(stream_id, kind, fields)?;
        self.read_request(stream_id, &pending, fin)
    }

    /// Ends the response; the stream is forgotten once its request has been
    /// read too.
    pub fn finish(&mut self, stream_id: u64) -> Result<(), SendError> {
        let state = self
            .requests
            .get_mut(&stream_id)
            .ok_or(SendError::UnknownStream(stream_id))?;
        if state.sending != Sending::Head {
            return Err(SendError::OutOfOrder(stream_id));
        }
        state.sending = Sending::Finished;
        if state.reading.is_none() {
            self.requests.remove(&stream_id);
        }
        self.queue(Target::Request(stream_id), &[], true);
        Ok(())
    }

    fn queue(&mut self, target: Target, bytes: &[u8], fin: bool) {
        let entry = self.writes.entry(target).or_insert_with(|| (Vec::new(), false));
        entry.0.extend_from_slice(bytes);
        entry.1 |= fin;
    }
}
