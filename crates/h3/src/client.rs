//! The client side of an HTTP/3 connection, sans-IO.
//!
//! [`ClientSession`] opens nothing and reads no socket: the caller's QUIC
//! stack opens the streams, writes to them the bytes this session puts in
//! its buffers, and hands in every byte the server's streams deliver,
//! with the stream's ID and whether the stream ended. Out come the
//! server's SETTINGS and GOAWAY, and each response's head, body pieces,
//! trailers and end.
//!
//! Its QPACK is the smallest that interoperates: requests are encoded with
//! the static table and literals, and the session advertises a dynamic
//! table of 0 bytes, so the server's sections never refer to a table and
//! never block a stream. Every length the server sends is checked against
//! the limits given to [`ClientSession::new`] before it is buffered.

use std::collections::HashMap;

use tether_h2::hpack::Field;

use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::frame::Frame;
use crate::qpack::{self, Decoder, Section};
use crate::response::{ResponseEvent, ResponseStream};
use crate::settings::Settings;
use crate::stream::{ControlEvent, ControlStream, Role, StreamType, StreamTypeReader, UniStreams};

/// What the server said, in the order it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent<'a> {
    /// The server's SETTINGS (once, first on its control stream).
    Settings(Settings),
    /// GOAWAY: requests on streams from this ID up were not processed and
    /// may be retried on another connection.
    Goaway(u64),
    /// The final response head of the request on `stream_id` (its
    /// `:status` checked; informational heads are not reported).
    Response {
        /// The request stream.
        stream_id: u64,
        /// The status, 200 to 599.
        status: u16,
        /// The fields, `:status` first as sent.
        fields: Vec<Field>,
    },
    /// A piece of a response body, borrowed from the input.
    Data {
        /// The request stream.
        stream_id: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// The trailers of a response.
    Trailers {
        /// The request stream.
        stream_id: u64,
        /// The fields.
        fields: Vec<Field>,
    },
    /// The response on `stream_id` ended (after its head, and its
    /// trailers if any); the stream is forgotten.
    Finished {
        /// The request stream.
        stream_id: u64,
    },
}

/// The limits a [`ClientSession`] applies to what the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// The largest HEADERS or control frame payload buffered.
    pub max_frame_payload: usize,
    /// The largest decoded field section (SETTINGS_MAX_FIELD_SECTION_SIZE,
    /// as advertised).
    pub max_field_section_size: usize,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            max_frame_payload: crate::frame::DEFAULT_MAX_PAYLOAD,
            max_field_section_size: qpack::DEFAULT_MAX_FIELD_SECTION_SIZE,
        }
    }
}

/// One of the server's unidirectional streams.
#[derive(Debug)]
enum UniStream {
    /// Its type not read whole yet.
    Typed(StreamTypeReader),
    /// The control stream.
    Control,
    /// The QPACK encoder stream.
    Encoder,
    /// A stream whose bytes are read and dropped: the QPACK decoder
    /// stream (this client's encoder inserts nothing, so it can only say
    /// a stream was cancelled) and streams of unknown types.
    Ignored,
}

/// The client side of one HTTP/3 connection.
///
/// The calling contract, as in every tether sans-IO crate: bytes in (each
/// server stream's, by QUIC stream ID, via [`ClientSession::receive`]),
/// events out, outgoing bytes appended to the caller's buffers; no I/O,
/// no clock.
///
/// 1. Open a unidirectional stream and write [`ClientSession::control_stream`]
///    to it (and never end it).
/// 2. For each request, open a bidirectional stream and write what
///    [`ClientSession::request`] appends for it (ending the stream when
///    the request has no more body).
/// 3. Hand in what each stream from the server delivers.
///
/// ```
/// use tether_h2::hpack::Field;
/// use tether_h3::client::{ClientEvent, ClientSession};
/// use tether_h3::frame::{Frame, encode_data};
/// use tether_h3::qpack;
///
/// let mut session = ClientSession::new(Default::default());
/// let mut control = Vec::new();
/// session.control_stream(&mut control)?;
/// let mut request = Vec::new();
/// let get = [Field::new(":method", "GET"), Field::new(":scheme", "https"),
///            Field::new(":authority", "example.com"), Field::new(":path", "/")];
/// session.request(0, &get, &mut request)?;
///
/// // The server answers on stream 0: a head, a body, the end.
/// let mut section = Vec::new();
/// qpack::encode(&[Field::new(":status", "200")], &mut section);
/// let mut answer = Vec::new();
/// Frame::Headers(section).encode(&mut answer)?;
/// encode_data(b"hi", &mut answer)?;
/// let mut events = Vec::new();
/// session.receive(0, &answer, true, &mut events).unwrap();
/// assert!(matches!(events[0], ClientEvent::Response { stream_id: 0, status: 200, .. }));
/// assert_eq!(events[1], ClientEvent::Data { stream_id: 0, data: b"hi" });
/// assert_eq!(events[2], ClientEvent::Finished { stream_id: 0 });
/// # Ok::<(), tether_h3::Misuse>(())
/// ```
#[derive(Debug)]
pub struct ClientSession {
    limits: ClientLimits,
    decoder: Decoder,
    responses: HashMap<u64, ResponseStream>,
    uni: HashMap<u64, UniStream>,
    opened: UniStreams,
    control: ControlStream,
}

impl ClientSession {
    /// A session before anything was sent or received.
    pub fn new(limits: ClientLimits) -> ClientSession {
        ClientSession {
            limits,
            decoder: Decoder::new(0, 0).with_max_field_section_size(limits.max_field_section_size),
            responses: HashMap::new(),
            uni: HashMap::new(),
            opened: UniStreams::new(Role::Client),
            control: ControlStream::new(Role::Client, limits.max_frame_payload),
        }
    }

    /// The settings this client sends: no dynamic table, no blocked
    /// streams, its field-section limit.
    pub fn settings(&self) -> Settings {
        Settings {
            qpack_max_table_capacity: Some(0),
            max_field_section_size: Some(
                u64::try_from(self.limits.max_field_section_size).unwrap_or(u64::MAX),
            ),
            qpack_blocked_streams: Some(0),
            ..Settings::default()
        }
    }

    /// Appends the start of this client's control stream (its type and
    /// SETTINGS) to `dst`.
    pub fn control_stream(&self, dst: &mut Vec<u8>) -> Result<(), Misuse> {
        crate::varint::encode(StreamType::Control.value(), dst)?;
        Frame::Settings(self.settings()).encode(dst)
    }

    /// Appends the HEADERS frame of a request with `fields` to `dst`, for
    /// the client-initiated bidirectional stream `stream_id`, and starts
    /// waiting for its response. A body, if any, follows as DATA frames
    /// ([`crate::frame::encode_data`]).
    pub fn request(&mut self, stream_id: u64, fields: &[Field], dst: &mut Vec<u8>) -> Result<(), Misuse> {
        let mut section = Vec::new();
        qpack::encode(fields, &mut section);
        Frame::Headers(section).encode(dst)?;
        self.responses
            .insert(stream_id, ResponseStream::new(self.limits.max_frame_payload));
        Ok(())
    }

    /// Requests waiting for their response or reading it.
    pub fn open_requests(&self) -> usize {
        self.responses.len()
    }

    /// Reads `src`, the next bytes of the server's stream `stream_id`
    /// (`fin`: the stream ended after them), appending what they say to
    /// `out`. After an error the connection must be closed with its code.
    pub fn receive<'a>(
        &mut self,
        stream_id: u64,
        src: &'a [u8],
        fin: bool,
        out: &mut Vec<ClientEvent<'a>>,
    ) -> Result<(), Error> {
        match stream_id & 0x03 {
            0x00 => self.receive_response(stream_id, src, fin, out),
            0x03 => self.receive_uni(stream_id, src, fin, out),
            0x01 => Err(Error::new(
                ErrorCode::H3_STREAM_CREATION_ERROR,
                Violation::BidiStreamFromServer(stream_id),
            )),
            // This client's own unidirectional streams carry nothing in.
            _ => Ok(()),
        }
    }

    /// The server reset `stream_id`: a request's response is abandoned; a
    /// critical stream's reset is an error.
    pub fn reset(&mut self, stream_id: u64) -> Result<(), Error> {
        self.responses.remove(&stream_id);
        match self.uni.remove(&stream_id) {
            Some(UniStream::Control) => self.opened.closed(StreamType::Control),
            Some(UniStream::Encoder) => self.opened.closed(StreamType::QpackEncoder),
            _ => Ok(()),
        }
    }

    /// This client gave up on the response of `stream_id` (it stops
    /// reading it): its state is dropped.
    pub fn abandon(&mut self, stream_id: u64) {
        self.responses.remove(&stream_id);
    }

    fn receive_response<'a>(
        &mut self,
        stream_id: u64,
        src: &'a [u8],
        fin: bool,
        out: &mut Vec<ClientEvent<'a>>,
    ) -> Result<(), Error> {
        let max_payload = self.limits.max_frame_payload;
        let stream = self
            .responses
            .entry(stream_id)
            .or_insert_with(|| ResponseStream::new(max_payload));
        let mut rest = src;
        loop {
            let (used, event) = stream.decode(rest)?;
            rest = rest.get(used..).unwrap_or_default();
            let Some(event) = event else {
                break;
            };
            match event {
                ResponseEvent::Data(data) => out.push(ClientEvent::Data { stream_id, data }),
                ResponseEvent::Headers(section) => {
                    let fields = decode(&mut self.decoder, stream_id, &section)?;
                    let status = status_of(&fields)?;
                    if (100..200).contains(&status) {
                        stream.informational();
                    } else if status >= 200 {
                        out.push(ClientEvent::Response {
                            stream_id,
                            status,
                            fields,
                        });
                    } else {
                        return Err(malformed());
                    }
                }
                ResponseEvent::Trailers(section) => {
                    let fields = decode(&mut self.decoder, stream_id, &section)?;
                    if fields.iter().any(|f| f.name.starts_with(b":")) {
                        return Err(malformed());
                    }
                    out.push(ClientEvent::Trailers { stream_id, fields });
                }
            }
        }
        if fin {
            stream.finish()?;
            self.responses.remove(&stream_id);
            out.push(ClientEvent::Finished { stream_id });
        }
        Ok(())
    }

    fn receive_uni<'a>(
        &mut self,
        stream_id: u64,
        src: &'a [u8],
        fin: bool,
        out: &mut Vec<ClientEvent<'a>>,
    ) -> Result<(), Error> {
        let state = self
            .uni
            .entry(stream_id)
            .or_insert_with(|| UniStream::Typed(StreamTypeReader::new()));
        let mut rest = src;
        if let UniStream::Typed(reader) = state {
            let (used, ty) = reader.feed(rest);
            rest = rest.get(used..).unwrap_or_default();
            if let Some(ty) = ty {
                self.opened.opened(ty)?;
                *state = match ty {
                    StreamType::Control => UniStream::Control,
                    StreamType::QpackEncoder => UniStream::Encoder,
                    // A push without MAX_PUSH_ID sent is an H3_ID_ERROR
                    // (RFC 9114 §4.6): this client never allows one.
                    StreamType::Push => {
                        return Err(Error::new(
                            ErrorCode::H3_ID_ERROR,
                            Violation::UnexpectedFrame(crate::frame::PUSH_PROMISE),
                        ));
                    }
                    // This client opens no WebTransport session: a stream
                    // of one names nothing it has, and is read and dropped.
                    StreamType::QpackDecoder | StreamType::WebTransport | StreamType::Unknown(_) => {
                        UniStream::Ignored
                    }
                };
            }
        }
        match state {
            UniStream::Typed(_) | UniStream::Ignored => {}
            UniStream::Control => {
                let mut said = Vec::new();
                self.control.receive(rest, &mut said)?;
                out.extend(said.into_iter().filter_map(|event| match event {
                    ControlEvent::Settings(settings) => Some(ClientEvent::Settings(settings)),
                    ControlEvent::Goaway(id) => Some(ClientEvent::Goaway(id)),
                    ControlEvent::MaxPushId(_) | ControlEvent::CancelPush(_) => None,
                }));
            }
            UniStream::Encoder => {
                // With a table of 0 bytes allowed, any insert or capacity
                // above 0 is the decoder's error; nothing can unblock.
                self.decoder.feed_encoder_stream(rest)?;
            }
        }
        if fin {
            match self.uni.remove(&stream_id) {
                Some(UniStream::Control) => return Err(self.control.finish()),
                Some(UniStream::Encoder) => self.opened.closed(StreamType::QpackEncoder)?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn decode(decoder: &mut Decoder, stream_id: u64, section: &[u8]) -> Result<Vec<Field>, Error> {
    match decoder.decode_section(stream_id, section)? {
        Section::Decoded(fields) => Ok(fields),
        // With no table there is nothing to wait for: a section that
        // needs entries is refused by the decoder before it gets here.
        Section::Blocked => Err(Error::new(
            ErrorCode::QPACK_DECOMPRESSION_FAILED,
            Violation::TooManyBlockedStreams,
        )),
    }
}

fn malformed() -> Error {
    Error::new(ErrorCode::H3_MESSAGE_ERROR, Violation::MalformedResponse)
}

/// The `:status` of a response head: the only pseudo-header, first, once,
/// three digits (RFC 9114 §4.3.2).
fn status_of(fields: &[Field]) -> Result<u16, Error> {
    let Some((first, rest)) = fields.split_first() else {
        return Err(malformed());
    };
    if first.name != b":status" || rest.iter().any(|f| f.name.starts_with(b":")) {
        return Err(malformed());
    }
    match *first.value.as_slice() {
        [a, b, c] if [a, b, c].iter().all(u8::is_ascii_digit) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_data;

    /// What the events said, owned, with the Data pieces of each stream
    /// joined into one.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Seen {
        events: Vec<String>,
        bodies: HashMap<u64, Vec<u8>>,
    }

    fn note(seen: &mut Seen, events: Vec<ClientEvent<'_>>) {
        for event in events {
            match event {
                ClientEvent::Data { stream_id, data } => {
                    seen.bodies.entry(stream_id).or_default().extend_from_slice(data);
                }
                other => seen.events.push(format!("{other:?}")),
            }
        }
    }

    fn head(fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
        let mut section = Vec::new();
        qpack::encode(&fields, &mut section);
        let mut wire = Vec::new();
        Frame::Headers(section).encode(&mut wire).unwrap_or_default();
        wire
    }

    /// The server's streams: its control stream (SETTINGS, GOAWAY), its
    /// QPACK encoder stream (capacity 0), an unknown stream, and two
    /// responses, one with an informational head and trailers.
    fn server_streams() -> Vec<(u64, Vec<u8>, bool)> {
        let mut control = vec![0x00];
        let settings = Settings {
            qpack_max_table_capacity: Some(0),
            ..Settings::default()
        };
        Frame::Settings(settings).encode(&mut control).unwrap_or_default();
        Frame::Goaway(8).encode(&mut control).unwrap_or_default();
        let mut sse = head(&[(":status", "200"), ("content-type", "text/event-stream")]);
        encode_data(b"data: one\n\n", &mut sse).unwrap_or_default();
        encode_data(b"data: two\n\n", &mut sse).unwrap_or_default();
        let mut page = head(&[(":status", "103"), ("link", "</a.css>")]);
        page.extend(head(&[(":status", "404")]));
        encode_data(b"not here", &mut page).unwrap_or_default();
        page.extend(head(&[("x-checksum", "1")]));
        vec![
            (3, control, false),
            (7, vec![0x02, 0x20], false),
            (11, vec![0x21, 1, 2, 3], true),
            (0, sse, false),
            (4, page, true),
        ]
    }

    fn run(step: usize) -> Seen {
        let mut session = ClientSession::new(ClientLimits::default());
        let get = [Field::new(":method", "GET"), Field::new(":path", "/")];
        let mut out = Vec::new();
        session.request(0, &get, &mut out).unwrap_or_default();
        session.request(4, &get, &mut out).unwrap_or_default();
        let mut seen = Seen::default();
        for (id, bytes, fin) in server_streams() {
            let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
            for (i, piece) in pieces.iter().enumerate() {
                let mut events = Vec::new();
                let last = fin && i + 1 == pieces.len();
                let result = session.receive(id, piece, last, &mut events);
                assert_eq!(result, Ok(()), "stream {id}");
                note(&mut seen, events);
            }
        }
        assert_eq!(session.open_requests(), 1);
        seen
    }

    #[test]
    fn responses_settings_and_goaway_whole_and_byte_at_a_time() {
        let whole = run(usize::MAX);
        assert_eq!(
            whole.bodies.get(&0).map(Vec::as_slice),
            Some(&b"data: one\n\ndata: two\n\n"[..])
        );
        assert_eq!(whole.bodies.get(&4).map(Vec::as_slice), Some(&b"not here"[..]));
        let kinds: Vec<&str> = whole
            .events
            .iter()
            .map(|e| e.split([' ', '(']).next().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "Settings", "Goaway", "Response", "Response", "Trailers", "Finished"
            ]
        );
        assert!(whole.events[3].contains("status: 404"), "{:?}", whole.events);
        assert_eq!(run(1), whole);
        assert_eq!(run(3), whole);
    }

    #[test]
    fn the_control_stream_opens_with_settings() {
        let session = ClientSession::new(ClientLimits::default());
        let mut wire = Vec::new();
        session.control_stream(&mut wire).unwrap_or_default();
        assert_eq!(wire.first(), Some(&0x00));
        let mut control = ControlStream::new(Role::Server, 1024);
        let mut events = Vec::new();
        assert_eq!(control.receive(&wire[1..], &mut events), Ok(()));
        assert_eq!(events, [ControlEvent::Settings(session.settings())]);
    }

    fn error_of(streams: &[(u64, &[u8], bool)]) -> Error {
        let mut session = ClientSession::new(ClientLimits::default());
        for (id, bytes, fin) in streams {
            let mut events = Vec::new();
            if let Err(e) = session.receive(*id, bytes, *fin, &mut events) {
                return e;
            }
        }
        Error::new(ErrorCode::H3_NO_ERROR, Violation::TruncatedFrame)
    }

    #[test]
    fn what_a_server_may_not_send_is_refused() {
        let code = |streams: &[(u64, &[u8], bool)]| error_of(streams).code;
        // A server-initiated bidirectional stream.
        assert_eq!(code(&[(1, b"", false)]), ErrorCode::H3_STREAM_CREATION_ERROR);
        // A second control stream, the control stream ended, no SETTINGS.
        let control: &[u8] = &[0x00, 0x04, 0x00];
        assert_eq!(
            code(&[(3, control, false), (7, control, false)]),
            ErrorCode::H3_STREAM_CREATION_ERROR
        );
        assert_eq!(code(&[(3, control, true)]), ErrorCode::H3_CLOSED_CRITICAL_STREAM);
        assert_eq!(
            code(&[(3, &[0x00, 0x07, 0x01, 0x00], false)]),
            ErrorCode::H3_MISSING_SETTINGS
        );
        // A push stream: no push was allowed.
        assert_eq!(code(&[(3, &[0x01], false)]), ErrorCode::H3_ID_ERROR);
        // A table capacity above the 0 advertised.
        assert_eq!(
            code(&[(3, &[0x02, 0x3f, 0x01], false)]),
            ErrorCode::QPACK_ENCODER_STREAM_ERROR
        );
        // Responses without a valid :status, or ended before a head.
        for bad in [
            head(&[("content-type", "text/plain")]),
            head(&[(":status", "20")]),
            head(&[(":status", "099")]),
            head(&[(":status", "200"), (":path", "/")]),
        ] {
            assert_eq!(code(&[(0, &bad, false)]), ErrorCode::H3_MESSAGE_ERROR, "{bad:?}");
        }
        assert_eq!(code(&[(0, b"", true)]), ErrorCode::H3_MESSAGE_ERROR);
        // A reset control stream.
        let mut session = ClientSession::new(ClientLimits::default());
        let mut events = Vec::new();
        assert_eq!(session.receive(3, control, false, &mut events), Ok(()));
        assert_eq!(
            session.reset(3).map_err(|e| e.code),
            Err(ErrorCode::H3_CLOSED_CRITICAL_STREAM)
        );
    }
}
