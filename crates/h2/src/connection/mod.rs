//! The server side of an HTTP/2 connection (RFC 9113), sans-IO.
//!
//! A [`ServerConnection`] is fed the bytes the client sent with
//! [`ServerConnection::receive`], which says how many it took (the caller
//! keeps the rest, an incomplete frame, and passes it again with more),
//! appends what the connection must send at once (SETTINGS and PING
//! acknowledgements, WINDOW_UPDATE, RST_STREAM, GOAWAY) to the caller's
//! output buffer, and pushes [`Event`]s. The caller answers with
//! [`ServerConnection::send_headers`], [`ServerConnection::send_data`],
//! [`ServerConnection::reset`], [`ServerConnection::release`] and
//! [`ServerConnection::go_away`], which append to the same buffer; writing
//! that buffer to the socket, and dropping what was written, is the
//! caller's job. No clock is read and nothing is sent on its own.
//!
//! The connection:
//! - checks the client preface (a mismatch is
//!   [`ConnectionError::NotHttp2`], with nothing written, so that the
//!   caller can fall back to HTTP/1.1), then sends its SETTINGS (from
//!   [`Config`], with SETTINGS_ENABLE_PUSH 0 and
//!   SETTINGS_ENABLE_CONNECT_PROTOCOL 1) and, if [`Config::connection_window`]
//!   is above 65535, a WINDOW_UPDATE for the connection;
//! - requires the client's first frame to be SETTINGS; applies and
//!   acknowledges every SETTINGS; applies its own frame size, header table
//!   size and initial window once the client acknowledges them;
//! - answers PING (and sends one on request), and reports the client's
//!   GOAWAY as an event (it refuses streams the server would open, and
//!   this one opens none, so the connection goes on until the client
//!   closes it);
//! - opens a stream per request (odd, increasing identifiers), joins
//!   HEADERS and CONTINUATION, decodes the block with HPACK and checks the
//!   request ([`Request`]), and its body against its content-length: a
//!   malformed request is reset with PROTOCOL_ERROR, the connection goes
//!   on;
//! - counts received DATA against the connection and stream windows and
//!   opens them again as the caller [`release`](ServerConnection::release)s
//!   what it consumed (padding, and DATA on streams that are gone, is
//!   released at once);
//! - sends only what the peer's windows allow, and reports more room with
//!   [`Event::WindowOpened`];
//! - ends the connection on a connection error with GOAWAY and the code,
//!   reported as [`Event::ConnectionError`].
//!
//! # Protections against a hostile client
//!
//! - **Concurrent streams**: a HEADERS that would open more streams than
//!   [`Config::max_concurrent_streams`] is answered with RST_STREAM
//!   REFUSED_STREAM (safe for the client to retry, §8.7).
//! - **Rapid reset** (CVE-2023-44487): every stream the client resets, and
//!   every stream we reset or refuse because of the client, costs one unit
//!   of a budget of [`Config::max_resets`]; every stream that ends
//!   normally (END_STREAM both ways) gives one back. When it is spent the
//!   connection ends with GOAWAY ENHANCE_YOUR_CALM. It counts streams, not
//!   time, so it needs no clock.
//! - **SETTINGS and PING floods**: acknowledgements are counted while the
//!   output buffer is not drained (the count restarts when `receive` is
//!   called with an empty buffer, or `receive_queued` with nothing unsent);
//!   beyond [`Config::max_queued_acks`] the connection ends with GOAWAY ENHANCE_YOUR_CALM. "Drained" means
//!   written to the socket: a caller that moves the output into an
//!   unbounded buffer of its own while the client does not read defeats
//!   this.
//! - **SETTINGS with many parameters** (CVE-2020-11080): a SETTINGS
//!   frame with more than [`Config::max_settings_per_frame`] parameters
//!   ends the connection with ENHANCE_YOUR_CALM; the streams' windows move
//!   once per frame, by the net change of SETTINGS_INITIAL_WINDOW_SIZE.
//! - **CONTINUATION flood**: a header block (HEADERS and its
//!   CONTINUATIONs) larger than [`Config::max_header_list_size`] ends the
//!   connection with ENHANCE_YOUR_CALM as soon as the frame that passes the
//!   limit arrives; empty CONTINUATIONs count as empty frames (below).
//! - **Empty frames**: DATA frames with no data and no END_STREAM, and
//!   empty CONTINUATIONs, are counted; each DATA frame with data takes one
//!   off. Beyond [`Config::max_empty_frames`] the connection ends with
//!   ENHANCE_YOUR_CALM.
//! - **Stream identifier exhaustion**: once a client opens a stream with an
//!   identifier at or above [`Config::goaway_stream_id`], a GOAWAY NO_ERROR
//!   is sent (graceful: the open streams finish) so that the client opens a
//!   new connection before it runs out of identifiers.
//!
//! # Not handled here
//!
//! - SETTINGS_TIMEOUT: there is no clock; see
//!   [`ServerConnection::settings_acked`].
//! - The client's SETTINGS_MAX_HEADER_LIST_SIZE is advisory and is not
//!   checked against our responses.
//! - Priorities (PRIORITY frames and the fields of HEADERS) are parsed and
//!   ignored, as RFC 9113 §5.3.2 allows; a stream that depends on itself
//!   is still reset.
//! - Server push, and the HTTP/1.1 `Upgrade: h2c` path: a connection
//!   starts with the client preface (prior knowledge, or ALPN `h2`).
//!
//! # Example
//!
//! A GET answered with 200 and a body (the client side is written by hand
//! with [`crate::frame`] and [`crate::hpack`]).
//!
//! ```
//! use tether_h2::connection::{Config, Event, ServerConnection};
//! use tether_h2::frame::{self, Frame, FrameDecoder, Headers, PREFACE};
//! use tether_h2::hpack::{Decoder, Encoder, Field};
//!
//! // What a client sends: the preface, its SETTINGS and a request.
//! let mut wire = PREFACE.to_vec();
//! frame::encode_settings(&mut wire, &[], 16_384)?;
//! let mut block = Vec::new();
//! Encoder::new().encode(
//!     &[
//!         Field::new(":method", "GET"),
//!         Field::new(":scheme", "https"),
//!         Field::new(":path", "/hello"),
//!         Field::new(":authority", "example.com"),
//!     ],
//!     &mut block,
//! );
//! let mut headers = Headers::new(1, &block);
//! headers.end_stream = true;
//! headers.encode(&mut wire, 16_384)?;
//!
//! let mut conn = ServerConnection::new(Config::default())?;
//! let mut out = Vec::new();
//! let mut events = Vec::new();
//! let used = conn.receive(&wire, &mut out, &mut events);
//! assert_eq!(used, wire.len());
//! let Some(Event::Request { stream, request, end_stream: true }) = events.pop() else {
//!     panic!("no request");
//! };
//! assert_eq!((request.method.as_str(), request.path.as_deref()), ("GET", Some("/hello")));
//!
//! conn.send_headers(stream, &[Field::new(":status", "200")], false, &mut out)?;
//! assert_eq!(conn.send_data(stream, b"hello", true, &mut out)?, 5);
//!
//! // The client reads: SETTINGS, the ACK of its own, HEADERS, DATA.
//! let mut decoder = FrameDecoder::new();
//! let mut hpack = Decoder::new(4096);
//! let mut rest = &out[..];
//! let mut body = Vec::new();
//! while let (n, Ok(Some(f))) = decoder.decode(rest) {
//!     match f {
//!         Frame::Headers(h) => assert_eq!(hpack.decode(h.fragment)?, [Field::new(":status", "200")]),
//!         Frame::Data(d) => body.extend_from_slice(d.data),
//!         _ => {}
//!     }
//!     rest = &rest[n..];
//! }
//! assert_eq!(body, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
pub(crate) mod endpoint;
mod error;
mod receive;
pub(crate) mod request;
pub(crate) mod shared;

use std::collections::{HashMap, VecDeque};

pub use config::Config;
pub use error::{ConnectionError, SendError};
pub use request::{Malformed, Request, check_trailers, content_length, parse_request};

use crate::error::{Error, ErrorCode};
use crate::frame::{DEFAULT_MAX_FRAME_SIZE, PrefaceMatcher, Settings, encode_settings};
use crate::hpack::Field;
use endpoint::{Endpoint, Side};

/// Something the client did, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A well-formed request opened `stream`; `end_stream` says it has no
    /// body. Answer with [`ServerConnection::send_headers`].
    Request {
        /// The stream.
        stream: u32,
        /// The request.
        request: Request,
        /// The client sends nothing more on this stream.
        end_stream: bool,
    },
    /// Body bytes on a stream. Once consumed, give the room back with
    /// [`ServerConnection::release`].
    Data {
        /// The stream.
        stream: u32,
        /// The bytes (padding removed).
        data: Vec<u8>,
        /// The client sends nothing more on this stream.
        end_stream: bool,
    },
    /// A trailer section, which ends the request.
    Trailers {
        /// The stream.
        stream: u32,
        /// The fields.
        fields: Vec<Field>,
    },
    /// A stream the caller knew about (one with a [`Event::Request`]) is
    /// gone: reset by the client (`by_peer`), or by this connection
    /// because of something the client sent on it (the RST_STREAM is
    /// already in the output).
    Reset {
        /// The stream.
        stream: u32,
        /// The code sent or received.
        code: ErrorCode,
        /// Whether the client reset it.
        by_peer: bool,
    },
    /// The client's window grew, for `stream` or (0) the connection: data
    /// that [`ServerConnection::send_data`] did not take may now fit.
    WindowOpened {
        /// The stream, or 0.
        stream: u32,
    },
    /// The client acknowledged our SETTINGS; they now apply.
    SettingsAcked,
    /// The client answered the PING sent with [`ServerConnection::ping`].
    PingAck {
        /// The opaque data, as sent.
        data: [u8; 8],
    },
    /// The client sent GOAWAY: it opens no new stream.
    GoAway {
        /// The last stream it may have processed.
        last_stream_id: u32,
        /// Its code.
        code: ErrorCode,
        /// Its debug data.
        debug_data: Vec<u8>,
    },
    /// The connection ended on an error; a GOAWAY with its code is in the
    /// output (except for [`ConnectionError::NotHttp2`]). Send the output,
    /// then close.
    ConnectionError(ConnectionError),
}

/// What the server keeps per stream: the request's content-length, and
/// the body bytes received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body {
    content_length: Option<u64>,
    received: u64,
}

type Stream = endpoint::Stream<Body>;

/// The server side of one HTTP/2 connection: see the module docs.
///
/// Sans-IO, in the words every tether crate uses: bytes in
/// ([`receive`](Self::receive)), events and bytes out ([`Event`]s into the
/// caller's `events`, frames into the caller's `out`); no time passed in
/// and no deadline out: nothing here is sent on a timer, and the caller's
/// loop times the idle connection.
#[derive(Debug, Clone)]
pub struct ServerConnection {
    config: Config,
    preface: PrefaceMatcher,
    ep: Endpoint,
    streams: HashMap<u32, Stream>,
    /// The highest stream the client opened (or tried to).
    last_stream: u32,
    recently_reset: VecDeque<u32>,
    recently_closed: VecDeque<u32>,
    reset_budget: u32,
    /// The last stream of the graceful GOAWAY sent, if one was: the same
    /// one is not sent twice.
    graceful_goaway: Option<u32>,
}

impl ServerConnection {
    /// A connection waiting for the client preface. Fails with
    /// [`Misuse::InvalidValue`] if a [`Config`] value is out of its range.
    ///
    /// [`Misuse::InvalidValue`]: crate::Misuse::InvalidValue
    pub fn new(config: Config) -> Result<Self, Error> {
        config.check()?;
        let local = config.local();
        Ok(Self {
            config,
            preface: PrefaceMatcher::new(),
            ep: Endpoint::new(
                local,
                config.max_queued_acks,
                config.max_empty_frames,
                config.max_settings_per_frame,
            ),
            streams: HashMap::new(),
            last_stream: 0,
            recently_reset: VecDeque::new(),
            recently_closed: VecDeque::new(),
            reset_budget: config.max_resets,
            graceful_goaway: None,
        })
    }

    /// Takes the bytes received, from the start of what the caller has not
    /// yet had taken: returns how many were taken (whole frames, or
    /// preface bytes); the rest is an incomplete frame, to pass again with
    /// the bytes that follow. Appends what must be sent to `out` and what
    /// happened to `events`. After a connection error, or once the
    /// connection is closed, nothing is taken.
    pub fn receive(&mut self, input: &[u8], out: &mut Vec<u8>, events: &mut Vec<Event>) -> usize {
        self.receive_queued(input, 0, out, events)
    }

    /// [`receive`] for a caller that keeps output of its own besides `out`
    /// (a write queue of shared buffers, say): `unsent` is how many bytes of
    /// it are not yet written to the socket. The SETTINGS and PING
    /// acknowledgement count restarts only when that and `out` are both
    /// empty, so a client that does not read cannot have acks queued
    /// without end behind a caller's buffers.
    ///
    /// [`receive`]: ServerConnection::receive
    pub fn receive_queued(
        &mut self,
        input: &[u8],
        unsent: usize,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> usize {
        if self.ep.closed {
            return 0;
        }
        if out.is_empty() && unsent == 0 {
            self.ep.budgets.drained();
        }
        let mut used = 0;
        if !self.preface.is_complete() {
            match self.preface.feed(input) {
                Ok(None) => return input.len(),
                Ok(Some(n)) => {
                    used = n;
                    self.send_preface(out);
                }
                Err(e) => {
                    let offset = match e {
                        Error::NotHttp2 { offset } => offset,
                        _ => 0,
                    };
                    self.ep.closed = true;
                    events.push(Event::ConnectionError(ConnectionError::NotHttp2 { offset }));
                    return 0;
                }
            }
        }
        endpoint::receive_frames(self, input, used, out, events)
    }

    /// Sends response (or trailer) fields on `stream`, HPACK-encoded and
    /// split into HEADERS and CONTINUATION frames by the client's
    /// SETTINGS_MAX_FRAME_SIZE; `end_stream` ends our side of the stream.
    pub fn send_headers(
        &mut self,
        stream: u32,
        fields: &[Field],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        endpoint::writable(self, stream)?;
        let max = self.ep.peer.max_frame_size;
        shared::write_fields(&mut self.ep.encoder, stream, fields, end_stream, max, out);
        if end_stream {
            Side::end_local(self, stream);
        }
        Ok(())
    }

    /// Sends as much of `data` on `stream` as the stream's and the
    /// connection's windows allow, in DATA frames no larger than the
    /// client's SETTINGS_MAX_FRAME_SIZE, and returns how much it took.
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

    /// [`ServerConnection::send_data`] for a caller that appends the
    /// payload itself (bytes shared with other streams, say, without a
    /// copy): takes as much of `len` as the windows allow and fits in one
    /// DATA frame, writes that frame's 9-byte header to `out` and returns
    /// how many payload bytes it announced. The caller must append exactly
    /// that many bytes of its payload right after, before anything else
    /// goes into `out`. END_STREAM is set only if `end_stream` and all of
    /// `len` was taken; with `len` 0 and `end_stream`, an empty frame ends
    /// the stream. Returns 0, writing nothing, when no room is left.
    pub fn send_data_head(
        &mut self,
        stream: u32,
        len: usize,
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        let flow = endpoint::writable(self, stream)?;
        let max = self.ep.peer.max_frame_size;
        let take = len.min(self.ep.flow.room(&flow)).min(max as usize);
        let ends = end_stream && take == len;
        if take == 0 && !ends {
            return Ok(0);
        }
        shared::write_data_head(stream, take, ends, out);
        self.ep
            .flow
            .sent(self.streams.get_mut(&stream).map(|s| &mut s.flow), take);
        if ends {
            Side::end_local(self, stream);
        }
        Ok(take)
    }

    /// Resets `stream` with RST_STREAM and `code` (CANCEL, INTERNAL_ERROR,
    /// ...). The stream's window is given back, and frames the client sent
    /// before it saw the reset are ignored.
    pub fn reset(&mut self, stream: u32, code: ErrorCode, out: &mut Vec<u8>) -> Result<(), SendError> {
        endpoint::reset(self, stream, code, out)
    }

    /// Resets `stream` because of what the client did with it (a body over
    /// the caller's budget, say, with REFUSED_STREAM): as [`reset`], and it
    /// costs one unit of the rapid-reset budget like a reset by the client,
    /// so that a client cannot have streams refused without end. When the
    /// budget is spent the connection ends with GOAWAY ENHANCE_YOUR_CALM,
    /// returned as [`Event::ConnectionError`].
    ///
    /// [`reset`]: ServerConnection::reset
    pub fn refuse(
        &mut self,
        stream: u32,
        code: ErrorCode,
        out: &mut Vec<u8>,
    ) -> Result<Option<Event>, SendError> {
        endpoint::reset(self, stream, code, out)?;
        let mut events = Vec::new();
        Side::charge_reset(self, out, &mut events);
        Ok(events.pop())
    }

    /// Says that the caller consumed `n` bytes of [`Event::Data`] on
    /// `stream`: the connection's window (and the stream's, if the client
    /// may still send on it) grows again by that much, with WINDOW_UPDATE
    /// frames appended to `out`. Bytes beyond what was delivered and not
    /// yet released are ignored. The stream may be gone already: every
    /// byte delivered must be released some day, also after the stream was
    /// reset or ended, or the connection's window shrinks for good.
    pub fn release(&mut self, stream: u32, n: usize, out: &mut Vec<u8>) {
        endpoint::release(self, stream, n, out);
    }

    /// As [`ServerConnection::release`] for the connection's window only:
    /// the window of the stream the bytes came on stays shut by them until
    /// [`ServerConnection::release_stream`] gives them back. A caller that
    /// wants no more input on one stream for now (its answers wait unsent)
    /// holds it up this way without holding up the connection's other
    /// streams.
    pub fn release_connection(&mut self, n: usize, out: &mut Vec<u8>) {
        endpoint::release_connection(self, n, out);
    }

    /// Gives back to `stream`'s window up to `n` bytes delivered on it
    /// and released with [`ServerConnection::release_connection`] (bytes
    /// beyond those are ignored), with a WINDOW_UPDATE appended to `out`
    /// if the client may still send on it.
    pub fn release_stream(&mut self, stream: u32, n: usize, out: &mut Vec<u8>) {
        endpoint::release_stream(self, stream, n, out);
    }

    /// Sends GOAWAY with `code` and the last stream the client opened:
    /// streams above it are not processed. With NO_ERROR this is a
    /// graceful shutdown: open streams go on, new ones are ignored, and
    /// [`ServerConnection::is_finished`] tells when the last one is done;
    /// with another code the connection is closed at once. Before the
    /// client preface, nothing is written (our SETTINGS must come first)
    /// and the connection is closed.
    pub fn go_away(&mut self, code: ErrorCode, out: &mut Vec<u8>) {
        if self.ep.closed {
            return;
        }
        if !self.preface.is_complete() {
            // Our SETTINGS must be the first frame: before the preface
            // there is nothing to tell, and nothing more will be read.
            self.ep.closed = true;
            return;
        }
        if code == ErrorCode::NO_ERROR {
            // A graceful GOAWAY says which streams will be processed; the
            // same again tells the client nothing (a driver asking twice,
            // for an idle connection and a shutdown, sends one).
            if self.graceful_goaway == Some(self.last_stream) {
                return;
            }
            self.graceful_goaway = Some(self.last_stream);
        }
        self.ep.write_goaway(self.last_stream, code, out);
        if code != ErrorCode::NO_ERROR {
            self.ep.closed = true;
        }
    }

    /// Whether the connection has ended: after a connection error or a
    /// GOAWAY with an error code. Send the output, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.ep.closed
    }

    /// Whether there is nothing more to do: closed, or our GOAWAY went out
    /// and no stream is left. The client's GOAWAY does not finish the
    /// connection: it refuses streams we would open, and we open none, so
    /// the client may go on (RFC 9113 §6.8; an unknown code in it must not
    /// change anything, §7) until it closes the connection itself.
    pub fn is_finished(&self) -> bool {
        self.ep.closed || (self.ep.goaway_sent && self.streams.is_empty())
    }

    /// Whether the client sent GOAWAY.
    pub fn goaway_received(&self) -> bool {
        self.ep.goaway_received
    }

    /// How many streams are open or half-closed.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// How much [`ServerConnection::send_data`] may send now on `stream`
    /// (the smaller of its window and the connection's, never negative),
    /// or `None` if we cannot send on it.
    pub fn send_capacity(&self, stream: u32) -> Option<u64> {
        endpoint::send_capacity(&self.ep, &self.streams, stream)
    }

    /// Sends a PING with `data` (to measure the round trip, or to see
    /// that the client is alive, by the caller's clock); its answer comes
    /// as [`Event::PingAck`]. Returns false, sending nothing, before the
    /// client preface, while an earlier PING is unanswered, or once the
    /// connection is closed.
    pub fn ping(&mut self, data: [u8; 8], out: &mut Vec<u8>) -> bool {
        self.preface.is_complete() && self.ep.ping(data, out)
    }

    /// Whether the client has acknowledged our SETTINGS. A caller that
    /// wants SETTINGS_TIMEOUT (§6.5.3) checks this against its own clock
    /// and calls [`ServerConnection::go_away`] with that code.
    pub fn settings_acked(&self) -> bool {
        self.ep.settings_acked
    }

    /// The client's settings, as received so far.
    pub fn peer_settings(&self) -> &Settings {
        &self.ep.peer
    }

    /// The highest stream identifier the client has used.
    pub fn last_stream_id(&self) -> u32 {
        self.last_stream
    }

    // --- sending --------------------------------------------------------

    fn send_preface(&mut self, out: &mut Vec<u8>) {
        // Every value was checked by `Config::check`; 7 settings fit.
        let _ = encode_settings(out, &self.config.settings(), DEFAULT_MAX_FRAME_SIZE);
        self.ep.flow.open_to(self.config.connection_window, out);
    }
}
