//! The client side of an HTTP/2 connection (RFC 9113), sans-IO.
//!
//! The calling contract mirrors [`ServerConnection`](crate::connection::ServerConnection)'s:
//! [`ClientConnection::new`] appends the connection preface and our
//! SETTINGS to the caller's output buffer; [`ClientConnection::receive`]
//! is fed the bytes the server sent, says how many it took (the caller
//! keeps the rest, an incomplete frame, and passes it again with more),
//! appends what must be sent at once (SETTINGS and PING
//! acknowledgements, WINDOW_UPDATE, RST_STREAM, GOAWAY) and pushes
//! [`Event`]s. Requests go out with [`ClientConnection::open_stream`]
//! (odd stream identifiers, increasing), bodies with
//! [`ClientConnection::send_data`]; [`ClientConnection::release`],
//! [`ClientConnection::reset`], [`ClientConnection::ping`] and
//! [`ClientConnection::go_away`] do the rest. Writing the buffer to the
//! socket is the caller's job; no clock is read and nothing is sent on its
//! own.
//!
//! The connection:
//! - requires the server's first frame to be SETTINGS, applies and
//!   acknowledges every SETTINGS, and applies its own (frame size, header
//!   table size, initial window) once the server acknowledges them;
//! - keeps to the server's SETTINGS_MAX_CONCURRENT_STREAMS
//!   ([`SendError::StreamLimit`]) and SETTINGS_MAX_FRAME_SIZE, and sends
//!   an extended CONNECT (a `:protocol` field, RFC 8441) only once the
//!   server has announced SETTINGS_ENABLE_CONNECT_PROTOCOL
//!   ([`ClientConnection::connect_protocol_enabled`]);
//! - joins HEADERS and CONTINUATION, decodes responses with HPACK within
//!   [`Config::max_header_list_size`], checks them (`:status`, field names
//!   and values) and resets a stream whose response is malformed;
//!   informational (1xx) responses are skipped;
//! - counts received DATA against the windows and opens them again as the
//!   caller [`release`](ClientConnection::release)s what it consumed, and
//!   sends only what the server's windows allow;
//! - refuses server push (SETTINGS_ENABLE_PUSH 0: a PUSH_PROMISE is a
//!   connection error);
//! - on GOAWAY opens no new stream, and reports the streams above its last
//!   stream identifier as reset with REFUSED_STREAM (safe to retry on a
//!   new connection).
//!
//! A hostile server meets the same limits as a hostile client does on the
//! server side: header blocks larger than the header list limit and floods
//! of unread acknowledgements or empty frames end the connection with
//! ENHANCE_YOUR_CALM; every size is checked before anything is allocated.
//!
//! # Example
//!
//! A client and a [`ServerConnection`](crate::connection::ServerConnection)
//! in memory: a GET answered with a body.
//!
//! ```
//! use tether_h2::client::{ClientConnection, Config as ClientConfig, Event};
//! use tether_h2::connection::{Config, Event as ServerEvent, ServerConnection};
//! use tether_h2::hpack::Field;
//!
//! let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
//! let mut client = ClientConnection::new(ClientConfig::default(), &mut to_server)?;
//! let mut server = ServerConnection::new(Config::default())?;
//! let request = [
//!     Field::new(":method", "GET"),
//!     Field::new(":scheme", "http"),
//!     Field::new(":path", "/hello"),
//!     Field::new(":authority", "example.com"),
//! ];
//! let stream = client.open_stream(&request, true, &mut to_server)?;
//!
//! let mut server_events = Vec::new();
//! server.receive(&to_server, &mut to_client, &mut server_events);
//! let Some(ServerEvent::Request { stream: s, .. }) = server_events.pop() else { panic!() };
//! server.send_headers(s, &[Field::new(":status", "200")], false, &mut to_client)?;
//! server.send_data(s, b"hello", true, &mut to_client)?;
//!
//! let (mut out, mut events) = (Vec::new(), Vec::new());
//! assert_eq!(client.receive(&to_client, &mut out, &mut events), to_client.len());
//! assert!(events.contains(&Event::Response {
//!     stream,
//!     status: 200,
//!     fields: vec![],
//!     end_stream: false,
//! }));
//! assert!(events.contains(&Event::Data { stream, data: b"hello".to_vec(), end_stream: true }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use crate::connection::endpoint::{self, Endpoint, Local, Side};
use crate::connection::request;
use crate::connection::shared::{self, Block, DEFAULT_WINDOW, StreamFlow};
pub use crate::connection::{ConnectionError, SendError};
use crate::error::{Error, ErrorCode};
use crate::frame::{
    DEFAULT_MAX_FRAME_SIZE, Data, MAX_STREAM_ID, PREFACE, Setting, Settings, encode_settings,
};
use crate::hpack::Field;

/// What the client announces and the limits it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window; at most
    /// 2^31-1; default 65535.
    pub initial_window_size: u32,
    /// The connection's receive window; at least 65535 (raised with a
    /// WINDOW_UPDATE at the start), at most 2^31-1; default 1 MiB.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE, 16384..=16777215; default 16384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, also the largest header block
    /// accepted before it is decoded; at least 1; default 64 KiB.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK decoder's table; default 4096.
    pub header_table_size: u32,
    /// Acknowledgements (SETTINGS, PING) queued in an undrained output
    /// before the connection ends; default 64.
    pub max_queued_acks: u32,
    /// DATA frames without data or END_STREAM, and empty CONTINUATIONs,
    /// before the connection ends (each DATA frame with data takes one
    /// off); default 100.
    pub max_empty_frames: u32,
    /// Parameters in one SETTINGS frame before the connection ends with
    /// ENHANCE_YOUR_CALM (each may cost a walk over the open streams);
    /// default 32, as nghttp2.
    pub max_settings_per_frame: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            initial_window_size: DEFAULT_WINDOW,
            connection_window: 1 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 64 * 1024,
            header_table_size: 4096,
            max_queued_acks: 64,
            max_empty_frames: 100,
            max_settings_per_frame: 32,
        }
    }
}

impl Config {
    fn local(&self) -> Local {
        Local {
            initial_window_size: self.initial_window_size,
            max_frame_size: self.max_frame_size,
            header_table_size: self.header_table_size,
            max_header_list_size: self.max_header_list_size,
        }
    }

    fn settings(&self) -> [Setting; 5] {
        [
            Setting::EnablePush(false),
            Setting::InitialWindowSize(self.initial_window_size),
            Setting::MaxFrameSize(self.max_frame_size),
            Setting::MaxHeaderListSize(self.max_header_list_size),
            Setting::HeaderTableSize(self.header_table_size),
        ]
    }
}

/// Something the server did, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A SETTINGS frame from the server was applied (and acknowledged);
    /// see [`ClientConnection::peer_settings`]. The first one comes before
    /// anything else the server sends.
    Settings,
    /// The final response head on `stream` (informational 1xx responses
    /// are skipped).
    Response {
        /// The stream.
        stream: u32,
        /// `:status`.
        status: u16,
        /// The regular fields, in the order received.
        fields: Vec<Field>,
        /// The server sends nothing more on this stream.
        end_stream: bool,
    },
    /// Response body bytes. Once consumed, give the room back with
    /// [`ClientConnection::release`].
    Data {
        /// The stream.
        stream: u32,
        /// The bytes (padding removed).
        data: Vec<u8>,
        /// The server sends nothing more on this stream.
        end_stream: bool,
    },
    /// A trailer section, which ends the response.
    Trailers {
        /// The stream.
        stream: u32,
        /// The fields.
        fields: Vec<Field>,
    },
    /// A stream is gone: reset by the server (`by_peer`; also the streams
    /// a GOAWAY left unprocessed, with REFUSED_STREAM), or by this
    /// connection because of what the server sent on it (the RST_STREAM is
    /// already in the output).
    Reset {
        /// The stream.
        stream: u32,
        /// The code sent or received.
        code: ErrorCode,
        /// Whether the server reset it.
        by_peer: bool,
    },
    /// The server's window grew, for `stream` or (0) the connection: data
    /// that [`ClientConnection::send_data`] did not take may now fit.
    WindowOpened {
        /// The stream, or 0.
        stream: u32,
    },
    /// The server acknowledged our SETTINGS; they now apply.
    SettingsAcked,
    /// The server answered the PING sent with [`ClientConnection::ping`].
    PingAck {
        /// The opaque data, as sent.
        data: [u8; 8],
    },
    /// The server sent GOAWAY: no new stream may be opened.
    GoAway {
        /// The last stream it may have processed.
        last_stream_id: u32,
        /// Its code.
        code: ErrorCode,
        /// Its debug data.
        debug_data: Vec<u8>,
    },
    /// The connection ended on an error; a GOAWAY with its code is in the
    /// output. Send the output, then close.
    ConnectionError(ConnectionError),
}

/// What the client keeps per stream: whether the final response head has
/// come.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    responded: bool,
}

type Stream = endpoint::Stream<Progress>;

/// The client side of one HTTP/2 connection: see the module docs.
#[derive(Debug, Clone)]
pub struct ClientConnection {
    ep: Endpoint,
    streams: HashMap<u32, Stream>,
    /// The identifier the next stream gets; above MAX_STREAM_ID once they
    /// are spent.
    next_stream: u32,
}

impl ClientConnection {
    /// A connection that has written the client preface, its SETTINGS
    /// (SETTINGS_ENABLE_PUSH 0 and the values of `config`) and, if
    /// [`Config::connection_window`] is above 65535, a WINDOW_UPDATE for
    /// the connection, to `out`. Requests may be opened at once (§3.4).
    /// Fails with [`Misuse::InvalidValue`](crate::Misuse::InvalidValue), writing nothing, if a
    /// [`Config`] value is out of its range.
    pub fn new(config: Config, out: &mut Vec<u8>) -> Result<Self, Error> {
        let local = config.local();
        local.check(config.connection_window)?;
        let mut ep = Endpoint::new(
            local,
            config.max_queued_acks,
            config.max_empty_frames,
            config.max_settings_per_frame,
        );
        out.extend_from_slice(PREFACE);
        // Every value was checked; 5 settings fit.
        let _ = encode_settings(out, &config.settings(), DEFAULT_MAX_FRAME_SIZE);
        ep.flow.open_to(config.connection_window, out);
        Ok(Self {
            ep,
            streams: HashMap::new(),
            next_stream: 1,
        })
    }

    /// Takes the bytes received, from the start of what the caller has not
    /// yet had taken: returns how many were taken (whole frames); the rest
    /// is an incomplete frame, to pass again with the bytes that follow.
    /// Appends what must be sent to `out` and what happened to `events`.
    /// After a connection error, or once the connection is closed, nothing
    /// is taken.
    pub fn receive(&mut self, input: &[u8], out: &mut Vec<u8>, events: &mut Vec<Event>) -> usize {
        if out.is_empty() {
            self.ep.budgets.drained();
        }
        endpoint::receive_frames(self, input, 0, out, events)
    }

    /// Opens a stream with the request `fields` (`:method`, `:scheme`,
    /// `:path`, `:authority`, then regular fields, names in lowercase),
    /// HPACK-encoded and cut into HEADERS and CONTINUATION frames by the
    /// server's SETTINGS_MAX_FRAME_SIZE; `end_stream` says the request has
    /// no body. Returns the stream's identifier.
    ///
    /// Fails, writing nothing, once the connection is closed or a GOAWAY
    /// went either way, when the server's SETTINGS_MAX_CONCURRENT_STREAMS
    /// streams are open, when identifiers are spent, and for an extended
    /// CONNECT (a `:protocol` field) the server has not enabled.
    pub fn open_stream(
        &mut self,
        fields: &[Field],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<u32, SendError> {
        let ep = &mut self.ep;
        if ep.closed {
            return Err(SendError::ConnectionClosed);
        }
        if ep.goaway_received || ep.goaway_sent {
            return Err(SendError::GoingAway);
        }
        if self.next_stream > MAX_STREAM_ID {
            return Err(SendError::StreamIdsExhausted);
        }
        if !self.can_open() {
            return Err(SendError::StreamLimit);
        }
        let ep = &mut self.ep;
        if !ep.peer.enable_connect_protocol && fields.iter().any(|f| f.name == b":protocol") {
            return Err(SendError::ExtendedConnectDisabled);
        }
        let stream = self.next_stream;
        self.next_stream += 2;
        shared::write_fields(
            &mut ep.encoder,
            stream,
            fields,
            end_stream,
            ep.peer.max_frame_size,
            out,
        );
        self.streams.insert(
            stream,
            Stream {
                remote_open: true,
                local_open: !end_stream,
                extra: Progress { responded: false },
                flow: StreamFlow::new(ep.peer.initial_window_size, ep.local_initial_window),
            },
        );
        Ok(stream)
    }

    /// Whether [`ClientConnection::open_stream`] may open one more stream
    /// now, as far as the server's concurrency limit goes.
    pub fn can_open(&self) -> bool {
        self.ep
            .peer
            .max_concurrent_streams
            .is_none_or(|max| self.streams.len() < max as usize)
    }

    /// Sends as much of `data` on `stream` as the stream's and the
    /// connection's windows allow, in DATA frames no larger than the
    /// server's SETTINGS_MAX_FRAME_SIZE, and returns how much it took.
    /// END_STREAM is set only if `end_stream` and all of `data` was taken
    /// (an empty `data` with `end_stream` sends an empty DATA frame that
    /// ends the stream). Keep the rest and try again after an
    /// [`Event::WindowOpened`].
    pub fn send_data(
        &mut self,
        stream: u32,
        data: &[u8],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        endpoint::send_data(self, stream, data, end_stream, out)
    }

    /// How much [`ClientConnection::send_data`] may send now on `stream`,
    /// or `None` if we cannot send on it.
    pub fn send_capacity(&self, stream: u32) -> Option<u64> {
        endpoint::send_capacity(&self.ep, &self.streams, stream)
    }

    /// Says that the caller consumed `n` bytes of [`Event::Data`] on
    /// `stream`: the connection's window (and the stream's, if the server
    /// may still send on it) grows again by that much, with WINDOW_UPDATE
    /// frames appended to `out`. Every byte delivered must be released
    /// some day, also after its stream ended or was reset, or the
    /// connection's window shrinks for good.
    pub fn release(&mut self, stream: u32, n: usize, out: &mut Vec<u8>) {
        endpoint::release(self, stream, n, out);
    }

    /// Resets `stream` with RST_STREAM and `code` (CANCEL: the response is
    /// no longer wanted). Frames the server sent before it saw the reset
    /// are ignored, and what they count against the connection's window is
    /// given back.
    pub fn reset(&mut self, stream: u32, code: ErrorCode, out: &mut Vec<u8>) -> Result<(), SendError> {
        endpoint::reset(self, stream, code, out)
    }

    /// Sends GOAWAY with `code`: no new stream will be opened (the server
    /// opens none). With NO_ERROR the open streams go on, and
    /// [`ClientConnection::is_finished`] tells when the last one is done;
    /// with another code the connection is closed at once.
    pub fn go_away(&mut self, code: ErrorCode, out: &mut Vec<u8>) {
        if self.ep.closed {
            return;
        }
        // The client accepts no stream from the server: the last one it
        // processed is 0.
        self.ep.write_goaway(0, code, out);
        if code != ErrorCode::NO_ERROR {
            self.ep.closed = true;
        }
    }

    /// Sends a PING with `data`; its answer comes as [`Event::PingAck`].
    /// Returns false, sending nothing, while an earlier PING is unanswered
    /// or once the connection is closed.
    pub fn ping(&mut self, data: [u8; 8], out: &mut Vec<u8>) -> bool {
        self.ep.ping(data, out)
    }

    /// Whether the connection has ended: after a connection error or a
    /// GOAWAY with an error code sent. Send the output, then close.
    pub fn is_closed(&self) -> bool {
        self.ep.closed
    }

    /// Whether there is nothing more to do: closed, or a GOAWAY went either
    /// way and no stream is left.
    pub fn is_finished(&self) -> bool {
        self.ep.is_finished(self.streams.len())
    }

    /// Whether the server has sent GOAWAY.
    pub fn goaway_received(&self) -> bool {
        self.ep.goaway_received
    }

    /// How many streams are open or half-closed.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether the server's SETTINGS have come (its first frame).
    pub fn settings_received(&self) -> bool {
        self.ep.started
    }

    /// Whether the server has acknowledged our SETTINGS.
    pub fn settings_acked(&self) -> bool {
        self.ep.settings_acked
    }

    /// Whether the server announced SETTINGS_ENABLE_CONNECT_PROTOCOL
    /// (RFC 8441): WebSockets may be opened with an extended CONNECT.
    pub fn connect_protocol_enabled(&self) -> bool {
        self.ep.peer.enable_connect_protocol
    }

    /// The server's settings, as received so far.
    pub fn peer_settings(&self) -> &Settings {
        &self.ep.peer
    }

    // --- receiving ------------------------------------------------------

    fn on_body(&mut self, d: &Data<'_>, len: i64, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        let stream = d.stream_id;
        let state = self
            .streams
            .get(&stream)
            .map(|s| (s.remote_open, s.extra.responded, s.flow.recv_window));
        let fault = match state {
            // Closed, or reset by us: what it counts is given back.
            None => {
                self.ep.flow.give_back(len, out);
                return;
            }
            Some((false, _, _)) => Some(ErrorCode::STREAM_CLOSED),
            // §8.1: DATA before the response head is malformed.
            Some((true, false, _)) => Some(ErrorCode::PROTOCOL_ERROR),
            Some((true, true, window)) if len > window => Some(ErrorCode::FLOW_CONTROL_ERROR),
            Some(_) => None,
        };
        if let Some(code) = fault {
            self.ep.flow.give_back(len, out);
            return self.reset_for_fault(stream, code, out, events);
        }
        endpoint::deliver(self, d, len, out, events);
    }

    fn on_response_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        block: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) {
        let Some(fields) = endpoint::decode_block(self, block, out, events) else {
            return;
        };
        let Some(s) = self.streams.get_mut(&stream) else {
            // A stream we reset or that ended: nothing more to do.
            return;
        };
        if !s.remote_open {
            return self.reset_for_fault(stream, ErrorCode::STREAM_CLOSED, out, events);
        }
        if s.extra.responded {
            // Trailers: END_STREAM and regular fields only.
            if !end_stream || request::check_trailers(&fields).is_err() {
                return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
            }
            s.remote_open = false;
            events.push(Event::Trailers { stream, fields });
            return self.maybe_remove(stream);
        }
        let (status, fields) = match request::parse_response(fields) {
            // §8.1: an interim response with END_STREAM, and 101 (no
            // Upgrade in HTTP/2), are malformed.
            Ok((status, _)) if status == 101 || (status < 200 && end_stream) => {
                return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events);
            }
            Ok((status, _)) if status < 200 => return,
            Ok(response) => response,
            Err(_) => return self.reset_for_fault(stream, ErrorCode::PROTOCOL_ERROR, out, events),
        };
        s.extra.responded = true;
        if end_stream {
            s.remote_open = false;
        }
        events.push(Event::Response {
            stream,
            status,
            fields,
            end_stream,
        });
        if end_stream {
            self.maybe_remove(stream);
        }
    }
}

impl Side for ClientConnection {
    type Event = Event;
    type Extra = Progress;

    fn parts(&mut self) -> (&mut Endpoint, &mut HashMap<u32, Stream>) {
        (&mut self.ep, &mut self.streams)
    }

    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn on_data(&mut self, d: &Data<'_>, len: i64, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        self.on_body(d, len, out, events);
    }

    fn on_block(&mut self, b: Block<'_>, out: &mut Vec<u8>, events: &mut Vec<Event>) {
        self.on_response_block(b.stream, b.end_stream, &b.bytes, out, events);
    }

    /// Streams are ours (odd); an even one would be pushed, and push is
    /// off.
    fn is_idle(&self, stream: u32) -> bool {
        stream.is_multiple_of(2) || stream >= self.next_stream
    }

    fn headers_allowed(&self, stream: u32) -> bool {
        !self.is_idle(stream)
    }

    /// §6.8: the streams above the last one were not processed; they may
    /// be retried elsewhere.
    fn after_goaway(&mut self, last_stream_id: u32, events: &mut Vec<Event>) {
        let mut refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last_stream_id)
            .collect();
        refused.sort_unstable();
        for stream in refused {
            self.streams.remove(&stream);
            events.push(Event::Reset {
                stream,
                code: ErrorCode::REFUSED_STREAM,
                by_peer: true,
            });
        }
    }

    fn settings_applied(&mut self, events: &mut Vec<Event>) {
        events.push(Event::Settings);
    }

    /// The client accepts no stream from the server: the last one it
    /// processed is 0.
    fn goaway_last_stream(&self) -> u32 {
        0
    }

    fn connection_error(error: ConnectionError) -> Event {
        Event::ConnectionError(error)
    }

    fn window_opened(stream: u32) -> Event {
        Event::WindowOpened { stream }
    }

    fn settings_acked() -> Event {
        Event::SettingsAcked
    }

    fn ping_acked(data: [u8; 8]) -> Event {
        Event::PingAck { data }
    }

    fn goaway(last_stream_id: u32, code: ErrorCode, debug_data: Vec<u8>) -> Event {
        Event::GoAway {
            last_stream_id,
            code,
            debug_data,
        }
    }

    fn reset_event(stream: u32, code: ErrorCode, by_peer: bool) -> Event {
        Event::Reset {
            stream,
            code,
            by_peer,
        }
    }

    fn data_event(stream: u32, data: Vec<u8>, end_stream: bool) -> Event {
        Event::Data {
            stream,
            data,
            end_stream,
        }
    }
}
