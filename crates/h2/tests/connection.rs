//! The server connection driven by a small client made of the `frame` and
//! `hpack` modules: every rule, every error with its scope and code, and
//! every protection against a hostile client.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_h2::ErrorCode;
use tether_h2::connection::{Config, ConnectionError, Event, SendError, ServerConnection};
use tether_h2::frame::{
    self, Continuation, Data, Frame, FrameDecoder, GoAway, Headers, MAX_STREAM_ID, PREFACE, Ping, RstStream,
    Setting, StreamDependency, UnknownFrame, WindowUpdate,
};
use tether_h2::hpack::{Decoder, Encoder, Field};

/// A frame the server wrote, owned, with field blocks joined and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum F {
    Settings(Vec<Setting>),
    SettingsAck,
    /// Fields, END_STREAM, and how many frames carried the block.
    Headers(u32, Vec<Field>, bool, usize),
    Data(u32, Vec<u8>, bool),
    Rst(u32, ErrorCode),
    GoAway(u32, ErrorCode),
    Ping(bool, [u8; 8]),
    Window(u32, u32),
}

struct Client {
    encoder: Encoder,
    decoder: Decoder,
    frames: FrameDecoder,
    block: Option<(u32, bool, Vec<u8>, usize)>,
}

impl Client {
    fn new() -> Self {
        Self {
            encoder: Encoder::new(),
            decoder: Decoder::new(4096).with_max_header_list_size(1 << 20),
            frames: FrameDecoder::new(),
            block: None,
        }
    }

    /// Decodes everything the server wrote; it must all be whole frames.
    fn read(&mut self, mut bytes: &[u8]) -> Vec<F> {
        let mut got = Vec::new();
        while !bytes.is_empty() {
            let (n, frame) = self.frames.decode(bytes);
            let frame = frame
                .expect("the server writes valid frames")
                .expect("whole frames");
            bytes = &bytes[n..];
            let f = match frame {
                Frame::Settings(s) if s.is_ack() => F::SettingsAck,
                Frame::Settings(s) => F::Settings(s.iter().collect()),
                Frame::Headers(h) => {
                    self.block = Some((h.stream_id, h.end_stream, h.fragment.to_vec(), 1));
                    if !h.end_headers {
                        continue;
                    }
                    self.finish_block()
                }
                Frame::Continuation(c) => {
                    let block = self.block.as_mut().unwrap();
                    block.2.extend_from_slice(c.fragment);
                    block.3 += 1;
                    if !c.end_headers {
                        continue;
                    }
                    self.finish_block()
                }
                Frame::Data(d) => F::Data(d.stream_id, d.data.to_vec(), d.end_stream),
                Frame::RstStream(r) => F::Rst(r.stream_id, r.code),
                Frame::GoAway(g) => F::GoAway(g.last_stream_id, g.code),
                Frame::Ping(p) => F::Ping(p.ack, p.data),
                Frame::WindowUpdate(w) => F::Window(w.stream_id, w.increment),
                other => panic!("unexpected frame {other:?}"),
            };
            got.push(f);
        }
        got
    }

    fn finish_block(&mut self) -> F {
        let (stream, end, bytes, n) = self.block.take().unwrap();
        F::Headers(stream, self.decoder.decode(&bytes).unwrap(), end, n)
    }

    fn block(&mut self, fields: &[Field]) -> Vec<u8> {
        let mut b = Vec::new();
        self.encoder.encode(fields, &mut b);
        b
    }
}

fn fields(list: &[(&str, &str)]) -> Vec<Field> {
    list.iter().map(|(n, v)| Field::new(*n, *v)).collect()
}

fn get(path: &str) -> Vec<Field> {
    fields(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", path),
        (":authority", "example.com"),
    ])
}

fn post() -> Vec<Field> {
    fields(&[
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/upload"),
        (":authority", "example.com"),
        ("content-type", "text/plain"),
    ])
}

// Client frame encoders.
fn settings(list: &[Setting]) -> Vec<u8> {
    let mut w = Vec::new();
    frame::encode_settings(&mut w, list, 16_384).unwrap();
    w
}
fn settings_ack() -> Vec<u8> {
    let mut w = Vec::new();
    frame::encode_settings_ack(&mut w);
    w
}
fn headers_frame(stream: u32, block: &[u8], end_stream: bool, end_headers: bool) -> Vec<u8> {
    let mut h = Headers::new(stream, block);
    h.end_stream = end_stream;
    h.end_headers = end_headers;
    let mut w = Vec::new();
    h.encode(&mut w, frame::MAX_FRAME_SIZE_LIMIT).unwrap();
    w
}
fn continuation(stream: u32, fragment: &[u8], end_headers: bool) -> Vec<u8> {
    let mut w = Vec::new();
    Continuation {
        stream_id: stream,
        fragment,
        end_headers,
    }
    .encode(&mut w, frame::MAX_FRAME_SIZE_LIMIT)
    .unwrap();
    w
}
fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    data_padded(stream, bytes, end_stream, None)
}
fn data_padded(stream: u32, bytes: &[u8], end_stream: bool, padding: Option<u8>) -> Vec<u8> {
    let mut d = Data::new(stream, bytes);
    d.end_stream = end_stream;
    d.padding = padding;
    let mut w = Vec::new();
    d.encode(&mut w, frame::MAX_FRAME_SIZE_LIMIT).unwrap();
    w
}
fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    let mut w = Vec::new();
    WindowUpdate {
        stream_id: stream,
        increment,
    }
    .encode(&mut w)
    .unwrap();
    w
}
fn rst(stream: u32, code: ErrorCode) -> Vec<u8> {
    let mut w = Vec::new();
    RstStream {
        stream_id: stream,
        code,
    }
    .encode(&mut w)
    .unwrap();
    w
}
fn ping(ack: bool, data: [u8; 8]) -> Vec<u8> {
    let mut w = Vec::new();
    Ping { ack, data }.encode(&mut w);
    w
}

/// A server connection and the client talking to it.
struct Test {
    conn: ServerConnection,
    client: Client,
    /// What the server wrote and the client has not read.
    out: Vec<u8>,
    /// What the server has not taken yet.
    pending: Vec<u8>,
}

impl Test {
    fn new(config: Config) -> Self {
        Self {
            conn: ServerConnection::new(config).unwrap(),
            client: Client::new(),
            out: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Preface, SETTINGS both ways and their ACKs; what the server wrote is
    /// read and dropped.
    fn started(config: Config) -> Self {
        let mut t = Self::new(config);
        let ev = t.feed(&[&PREFACE[..], &settings(&[]), &settings_ack()].concat());
        assert_eq!(ev, [Event::SettingsAcked]);
        let frames = t.frames();
        assert!(matches!(frames[0], F::Settings(_)));
        assert!(frames.contains(&F::SettingsAck));
        t
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let n = self.conn.receive(&self.pending, &mut self.out, &mut events);
        self.pending.drain(..n);
        events
    }

    fn frames(&mut self) -> Vec<F> {
        let out = std::mem::take(&mut self.out);
        self.client.read(&out)
    }

    fn request(&mut self, stream: u32, fields: &[Field], end_stream: bool) -> Vec<Event> {
        let block = self.client.block(fields);
        self.feed(&headers_frame(stream, &block, end_stream, true))
    }

    /// Sends a request that must be refused with this stream error, and
    /// checks that the connection lives on.
    fn expect_rst(&mut self, stream: u32, bytes: &[u8], code: ErrorCode) {
        let ev = self.feed(bytes);
        assert!(
            ev.iter()
                .all(|e| !matches!(e, Event::Request { .. } | Event::ConnectionError(_))),
            "{ev:?}"
        );
        // DATA refused is given back to the connection's window first.
        let frames = self.frames();
        match &frames[..] {
            [F::Rst(s, c)] | [F::Window(0, _), F::Rst(s, c)] => assert_eq!((*s, *c), (stream, code)),
            other => panic!("{other:?}"),
        }
        assert!(!self.conn.is_closed());
    }

    /// Feeds bytes that must end the connection with this code.
    fn expect_goaway(&mut self, bytes: &[u8], code: ErrorCode) -> ConnectionError {
        let ev = self.feed(bytes);
        let Some(Event::ConnectionError(e)) = ev.last() else {
            panic!("no connection error: {ev:?}");
        };
        assert_eq!(e.code(), code);
        let frames = self.frames();
        assert!(
            matches!(frames.last(), Some(F::GoAway(_, c)) if *c == code),
            "{frames:?}"
        );
        assert!(self.conn.is_closed());
        // Nothing more is taken.
        let mut more = Vec::new();
        assert_eq!(
            self.conn.receive(&ping(false, [0; 8]), &mut self.out, &mut more),
            0
        );
        assert!(more.is_empty() && self.out.is_empty());
        *e
    }
}

fn small_window() -> Config {
    Config {
        connection_window: 65_535,
        ..Config::default()
    }
}

// --- connection start and control --------------------------------------

#[test]
fn settings_are_sent_once_the_preface_is_in() {
    let mut t = Test::new(Config::default());
    assert!(t.feed(&PREFACE[..10]).is_empty());
    assert!(t.out.is_empty(), "nothing before the whole preface");
    assert!(t.feed(&PREFACE[10..]).is_empty());
    assert_eq!(
        t.frames(),
        [
            F::Settings(vec![
                Setting::MaxConcurrentStreams(100),
                Setting::InitialWindowSize(65_535),
                Setting::MaxFrameSize(16_384),
                Setting::MaxHeaderListSize(16_384),
                Setting::HeaderTableSize(4096),
                Setting::EnablePush(false),
                Setting::EnableConnectProtocol(true),
            ]),
            F::Window(0, (1 << 20) - 65_535),
        ]
    );
    // The client's SETTINGS is acknowledged; ours is when it says so.
    assert!(t.feed(&settings(&[Setting::MaxConcurrentStreams(10)])).is_empty());
    assert_eq!(t.frames(), [F::SettingsAck]);
    assert_eq!(t.conn.peer_settings().max_concurrent_streams, Some(10));
    assert!(!t.conn.settings_acked());
    assert_eq!(t.feed(&settings_ack()), [Event::SettingsAcked]);
    assert!(t.conn.settings_acked());
    // A second ACK is ignored.
    assert!(t.feed(&settings_ack()).is_empty());
    assert!(t.frames().is_empty());
}

#[test]
fn a_connection_window_of_65535_sends_no_window_update() {
    let mut t = Test::new(small_window());
    t.feed(PREFACE);
    assert!(matches!(t.frames()[..], [F::Settings(_)]));
}

#[test]
fn config_values_out_of_range_are_refused() {
    for c in [
        Config {
            max_frame_size: 16_383,
            ..Config::default()
        },
        Config {
            initial_window_size: 1 << 31,
            ..Config::default()
        },
        Config {
            connection_window: 100,
            ..Config::default()
        },
        Config {
            max_header_list_size: 0,
            ..Config::default()
        },
        Config {
            max_resets: 0,
            ..Config::default()
        },
    ] {
        assert!(ServerConnection::new(c).is_err(), "{c:?}");
    }
}

#[test]
fn not_http2_is_reported_with_nothing_written() {
    let mut t = Test::new(Config::default());
    let ev = t.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        ev,
        [Event::ConnectionError(ConnectionError::NotHttp2 { offset: 0 })]
    );
    assert!(t.out.is_empty());
    assert!(t.conn.is_closed());
    // A mismatch later in the preface, fed in pieces.
    let mut t = Test::new(Config::default());
    assert!(t.feed(b"PRI * HTTP/2.0\r\n").is_empty());
    let ev = t.feed(b"\r\nXX");
    assert_eq!(
        ev,
        [Event::ConnectionError(ConnectionError::NotHttp2 { offset: 18 })]
    );
    assert!(t.out.is_empty());
}

#[test]
fn the_first_frame_must_be_settings() {
    let mut t = Test::new(Config::default());
    t.feed(PREFACE);
    t.frames();
    let e = t.expect_goaway(&ping(false, [1; 8]), ErrorCode::PROTOCOL_ERROR);
    assert_eq!(e, ConnectionError::SettingsExpected);
    let mut t = Test::new(Config::default());
    t.feed(PREFACE);
    t.frames();
    t.expect_goaway(&settings_ack(), ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn ping_is_answered_and_its_ack_is_not() {
    let mut t = Test::started(Config::default());
    assert!(t.feed(&ping(false, *b"12345678")).is_empty());
    assert_eq!(t.frames(), [F::Ping(true, *b"12345678")]);
    assert!(t.feed(&ping(true, *b"12345678")).is_empty());
    assert!(t.frames().is_empty());
}

#[test]
fn our_ping_is_reported_when_answered() {
    let mut t = Test::started(Config::default());
    assert!(t.conn.ping(*b"rtt-0001", &mut t.out));
    assert!(!t.conn.ping(*b"rtt-0002", &mut t.out), "one at a time");
    assert_eq!(t.frames(), [F::Ping(false, *b"rtt-0001")]);
    // An ACK with other data answers nothing.
    assert!(t.feed(&ping(true, *b"rtt-9999")).is_empty());
    assert_eq!(
        t.feed(&ping(true, *b"rtt-0001")),
        [Event::PingAck { data: *b"rtt-0001" }]
    );
    assert!(t.feed(&ping(true, *b"rtt-0001")).is_empty());
    assert!(t.conn.ping(*b"rtt-0002", &mut t.out));
}

#[test]
fn unknown_frames_and_priority_are_ignored() {
    let mut t = Test::started(Config::default());
    let mut w = Vec::new();
    UnknownFrame {
        kind: 0xfa,
        flags: 0,
        stream_id: 3,
        payload: b"hi",
    }
    .encode(&mut w, 16_384)
    .unwrap();
    frame::Priority {
        stream_id: 9,
        dependency: StreamDependency {
            exclusive: false,
            stream_id: 0,
            weight: 15,
        },
    }
    .encode(&mut w)
    .unwrap();
    assert!(t.feed(&w).is_empty());
    assert!(t.frames().is_empty());
    // PRIORITY on an idle stream did not open it.
    assert_eq!(t.conn.last_stream_id(), 0);
}

#[test]
fn our_frame_size_applies_once_acknowledged() {
    let config = Config {
        max_frame_size: 32_768,
        ..Config::default()
    };
    let big = data(1, &[0; 20_000], false);
    // Before the ACK, the 16384 default holds.
    let mut t = Test::new(config);
    t.feed(&[&PREFACE[..], &settings(&[])].concat());
    t.frames();
    let e = t.expect_goaway(&big, ErrorCode::FRAME_SIZE_ERROR);
    assert!(matches!(e, ConnectionError::Frame(_)));
    // After it, the frame is taken (and is DATA on a stream not open).
    let mut t = Test::started(config);
    t.request(1, &post(), false);
    t.frames();
    let ev = t.feed(&big);
    assert!(matches!(&ev[..], [Event::Data { data, .. }] if data.len() == 20_000));
}

#[test]
fn our_header_table_size_applies_once_acknowledged() {
    let config = Config {
        header_table_size: 0,
        ..Config::default()
    };
    // Before the ACK, a literal with indexing into the 4096-byte table is
    // fine; after it, the next block must start with a size update.
    let mut t = Test::new(config);
    t.feed(&[&PREFACE[..], &settings(&[])].concat());
    t.frames();
    let ev = t.request(1, &get("/a"), true);
    assert!(matches!(ev[..], [Event::Request { stream: 1, .. }]));
    t.feed(&settings_ack());
    let ev = t.request(3, &get("/b"), true);
    assert!(matches!(
        ev.last(),
        Some(Event::ConnectionError(ConnectionError::Compression(_)))
    ));
    // Stream 3 was never processed: the last stream is 1.
    assert_eq!(
        t.frames().last(),
        Some(&F::GoAway(1, ErrorCode::COMPRESSION_ERROR))
    );

    let mut t = Test::started(config);
    // A size update to 0 first, then indexed static entries only.
    let ev = t.feed(&headers_frame(1, b"\x20\x82\x87\x84\x41\x01a", true, true));
    let Some(Event::Request { request, .. }) = ev.first() else {
        panic!("{ev:?}");
    };
    assert_eq!(request.authority.as_deref(), Some("a"));
}

#[test]
fn goaway_from_the_client_is_an_event() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    let mut w = Vec::new();
    GoAway {
        last_stream_id: 0,
        code: ErrorCode::NO_ERROR,
        debug_data: b"bye",
    }
    .encode(&mut w, 16_384)
    .unwrap();
    let ev = t.feed(&w);
    assert_eq!(
        ev,
        [Event::GoAway {
            last_stream_id: 0,
            code: ErrorCode::NO_ERROR,
            debug_data: b"bye".to_vec()
        }]
    );
    assert!(t.conn.goaway_received());
    t.conn
        .send_headers(1, &fields(&[(":status", "204")]), true, &mut t.out)
        .unwrap();
    // It refuses only streams we would open: the connection goes on until
    // the client closes it (§6.8), a PING is answered, a request served.
    assert!(!t.conn.is_finished() && !t.conn.is_closed());
    t.frames();
    assert!(t.feed(&ping(false, [7; 8])).is_empty());
    assert_eq!(t.frames(), [F::Ping(true, [7; 8])]);
    let ev = t.request(3, &get("/"), true);
    assert!(matches!(ev[..], [Event::Request { stream: 3, .. }]), "{ev:?}");
}

#[test]
fn graceful_goaway_finishes_open_streams_and_ignores_new_ones() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    assert_eq!(t.frames(), [F::GoAway(1, ErrorCode::NO_ERROR)]);
    assert!(!t.conn.is_closed() && !t.conn.is_finished());
    // Stream 3 is above the last stream: not processed, and its DATA is
    // ignored, but HPACK stays in step for the next block.
    assert!(t.request(3, &post(), false).is_empty());
    let ev = t.feed(&data(3, b"xyz", true));
    assert!(ev.is_empty());
    assert_eq!(t.frames(), [F::Window(0, 3)]);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    assert_eq!(t.conn.send_data(1, b"ok", true, &mut t.out), Ok(2));
    assert_eq!(
        t.frames(),
        [
            F::Headers(1, fields(&[(":status", "200")]), false, 1),
            F::Data(1, b"ok".to_vec(), true)
        ]
    );
    assert!(t.conn.is_finished());
}

/// A driver may ask for the graceful GOAWAY twice (the idle timeout, then
/// a shutdown): the same one goes out once; a later one naming another
/// last stream, or an error, still goes out.
#[test]
fn the_same_graceful_goaway_goes_out_once() {
    let mut t = Test::started(Config::default());
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    assert_eq!(t.frames(), [F::GoAway(0, ErrorCode::NO_ERROR)]);
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    t.conn.go_away(ErrorCode::INTERNAL_ERROR, &mut t.out);
    assert_eq!(
        t.frames(),
        [
            F::GoAway(1, ErrorCode::NO_ERROR),
            F::GoAway(1, ErrorCode::INTERNAL_ERROR)
        ]
    );
}

#[test]
fn go_away_with_an_error_closes() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn.go_away(ErrorCode::INTERNAL_ERROR, &mut t.out);
    assert_eq!(t.frames(), [F::GoAway(1, ErrorCode::INTERNAL_ERROR)]);
    assert!(t.conn.is_closed());
    assert_eq!(
        t.conn.send_data(1, b"x", true, &mut t.out),
        Err(SendError::ConnectionClosed)
    );
}

// --- connection errors ---------------------------------------------------

#[test]
fn each_connection_error_gets_goaway_with_its_code() {
    type Case = (&'static str, fn(&mut Test) -> Vec<u8>, ErrorCode);
    let cases: &[Case] = &[
        (
            "DATA on an idle stream",
            |_| data(1, b"x", false),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "RST_STREAM on an idle stream",
            |_| rst(5, ErrorCode::CANCEL),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "WINDOW_UPDATE on an idle stream",
            |_| window_update(7, 1),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "HEADERS on an even stream",
            |t| {
                let b = t.client.block(&get("/"));
                headers_frame(2, &b, true, true)
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "a stream id below the last",
            |t| {
                t.request(5, &get("/"), true);
                t.frames();
                let b = t.client.block(&get("/"));
                headers_frame(3, &b, true, true)
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "HEADERS again on a stream that ended both ways",
            |t| {
                t.request(1, &get("/"), true);
                t.conn
                    .send_headers(1, &fields(&[(":status", "204")]), true, &mut t.out)
                    .unwrap();
                t.frames();
                let b = t.client.block(&get("/"));
                headers_frame(1, &b, true, true)
            },
            ErrorCode::STREAM_CLOSED,
        ),
        (
            "HEADERS again on a stream the client reset",
            |t| {
                t.request(1, &post(), false);
                t.feed(&rst(1, ErrorCode::CANCEL));
                t.frames();
                let b = t.client.block(&get("/"));
                headers_frame(1, &b, true, true)
            },
            ErrorCode::STREAM_CLOSED,
        ),
        (
            "PUSH_PROMISE from a client",
            |_| {
                let mut w = Vec::new();
                frame::PushPromise {
                    stream_id: 1,
                    promised_stream_id: 2,
                    fragment: b"\x82",
                    end_headers: true,
                    padding: None,
                }
                .encode(&mut w, 16_384)
                .unwrap();
                w
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "an HPACK index that does not exist",
            |_| headers_frame(1, b"\xff\x7f", true, true),
            ErrorCode::COMPRESSION_ERROR,
        ),
        (
            "WINDOW_UPDATE of 0 on an idle stream",
            |_| {
                let mut w = window_update(9, 1);
                w[12] = 0;
                w
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "connection window past 2^31-1",
            |_| window_update(0, MAX_STREAM_ID),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            "a frame larger than our maximum",
            |_| data(1, &[0; 16_385], false),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
        (
            "a field block interrupted",
            |t| {
                let b = t.client.block(&get("/"));
                [headers_frame(1, &b, true, false), ping(false, [0; 8])].concat()
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "a CONTINUATION out of the blue",
            |_| continuation(1, b"\x82", true),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "ENABLE_PUSH of 2",
            |_| {
                let mut w = settings(&[]);
                // Hand-made: the encoder refuses the value.
                w[2] = 6;
                w.extend_from_slice(&[0, 2, 0, 0, 0, 2]);
                w
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "INITIAL_WINDOW_SIZE above 2^31-1",
            |_| {
                let mut w = settings(&[]);
                w[2] = 6;
                w.extend_from_slice(&[0, 4, 0x80, 0, 0, 0]);
                w
            },
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            "a PING of 7 octets",
            |_| {
                let mut w = ping(false, [0; 8]);
                w[2] = 7;
                w.pop();
                w
            },
            ErrorCode::FRAME_SIZE_ERROR,
        ),
    ];
    for (name, make, code) in cases {
        let mut t = Test::started(Config::default());
        let bytes = make(&mut t);
        let ev = t.feed(&bytes);
        let Some(Event::ConnectionError(e)) = ev.last() else {
            panic!("{name}: {ev:?}");
        };
        assert_eq!(e.code(), *code, "{name}");
        let frames = t.frames();
        assert!(
            matches!(frames.last(), Some(F::GoAway(_, c)) if c == code),
            "{name}: {frames:?}"
        );
        assert!(t.conn.is_closed(), "{name}");
    }
}

#[test]
fn data_beyond_the_connection_window_is_a_connection_error() {
    let mut t = Test::started(Config {
        initial_window_size: 1 << 20,
        ..small_window()
    });
    t.request(1, &post(), false);
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_383], false));
    assert!(t.frames().is_empty(), "nothing released yet");
    let e = t.expect_goaway(&data(1, &[0; 2], false), ErrorCode::FLOW_CONTROL_ERROR);
    assert_eq!(e, ConnectionError::FlowControl);
}

// --- requests and responses ---------------------------------------------

#[test]
fn a_get_is_answered_with_headers_and_data() {
    let mut t = Test::started(Config::default());
    let ev = t.request(1, &[get("/index"), fields(&[("accept", "*/*")])].concat(), true);
    let [
        Event::Request {
            stream: 1,
            request,
            end_stream: true,
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}");
    };
    assert_eq!(request.method, "GET");
    assert_eq!(request.scheme.as_deref(), Some("https"));
    assert_eq!(request.authority.as_deref(), Some("example.com"));
    assert_eq!(request.path.as_deref(), Some("/index"));
    assert_eq!(request.protocol, None);
    assert_eq!(request.fields, fields(&[("accept", "*/*")]));
    assert_eq!(t.conn.active_streams(), 1);

    let response = fields(&[(":status", "200"), ("content-type", "text/plain")]);
    t.conn.send_headers(1, &response, false, &mut t.out).unwrap();
    assert_eq!(t.conn.send_data(1, b"hello ", false, &mut t.out), Ok(6));
    assert_eq!(t.conn.send_data(1, b"world", true, &mut t.out), Ok(5));
    assert_eq!(
        t.frames(),
        [
            F::Headers(1, response, false, 1),
            F::Data(1, b"hello ".to_vec(), false),
            F::Data(1, b"world".to_vec(), true),
        ]
    );
    assert_eq!(t.conn.active_streams(), 0);
    assert_eq!(
        t.conn.send_data(1, b"more", true, &mut t.out),
        Err(SendError::StreamNotOpen(1))
    );
}

#[test]
fn headers_only_response_and_empty_end_stream() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.request(3, &get("/"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "204")]), true, &mut t.out)
        .unwrap();
    t.conn
        .send_headers(3, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    assert_eq!(t.conn.send_data(3, b"", true, &mut t.out), Ok(0));
    assert_eq!(
        t.frames(),
        [
            F::Headers(1, fields(&[(":status", "204")]), true, 1),
            F::Headers(3, fields(&[(":status", "200")]), false, 1),
            F::Data(3, vec![], true),
        ]
    );
    assert_eq!(
        t.conn
            .send_headers(9, &fields(&[(":status", "200")]), true, &mut t.out),
        Err(SendError::StreamNotOpen(9))
    );
}

#[test]
fn a_large_header_block_is_split_by_the_peers_frame_size() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    let big = "v".repeat(40_000);
    let response = fields(&[(":status", "200"), ("x-big", &big)]);
    t.conn.send_headers(1, &response, true, &mut t.out).unwrap();
    // 40 000 bytes of literal: one HEADERS and two CONTINUATIONs.
    assert_eq!(t.frames(), [F::Headers(1, response, true, 3)]);
}

#[test]
fn a_request_block_over_continuations_is_joined() {
    let mut t = Test::started(Config::default());
    let block = t
        .client
        .block(&[get("/joined"), fields(&[("x-a", "1")])].concat());
    let (a, rest) = block.split_at(3);
    let (b, c) = rest.split_at(4);
    let bytes = [
        headers_frame(1, a, true, false),
        continuation(1, b, false),
        continuation(1, c, true),
    ]
    .concat();
    let ev = t.feed(&bytes);
    let [Event::Request { request, .. }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(request.path.as_deref(), Some("/joined"));
    assert_eq!(request.field("x-a"), Some(&b"1"[..]));
}

#[test]
fn a_post_body_is_delivered_and_released() {
    let mut t = Test::started(small_window());
    t.request(1, &post(), false);
    let mut body = Vec::new();
    for (i, chunk) in [&[1u8; 16_384][..], &[2; 16_384], &[3; 16_384], &[4; 16_383]]
        .iter()
        .enumerate()
    {
        let ev = t.feed(&data(1, chunk, i == 3));
        let [
            Event::Data {
                stream: 1,
                data,
                end_stream,
            },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(*end_stream, i == 3);
        body.extend_from_slice(data);
    }
    assert_eq!(body.len(), 65_535);
    // Both windows are spent: nothing was sent yet.
    assert!(t.frames().is_empty());
    // Released: the connection's window reopens; the stream's does not,
    // the client has ended it.
    t.conn.release(1, 65_535, &mut t.out);
    assert_eq!(t.frames(), [F::Window(0, 65_535)]);
    // Releasing more than was delivered does nothing.
    t.conn.release(1, 10, &mut t.out);
    assert!(t.frames().is_empty());
}

#[test]
fn window_updates_let_a_body_larger_than_the_window_through() {
    let mut t = Test::started(small_window());
    t.request(1, &post(), false);
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_383], false));
    // Consumed in part: both windows reopen by that much.
    t.conn.release(1, 30_000, &mut t.out);
    assert_eq!(t.frames(), [F::Window(0, 30_000), F::Window(1, 30_000)]);
    let ev = t.feed(&data(1, &[0; 16_384], false));
    assert!(matches!(ev[..], [Event::Data { .. }]));
    let ev = t.feed(&data(1, &[0; 13_616], true));
    assert!(matches!(ev[..], [Event::Data { end_stream: true, .. }]));
    assert!(t.frames().is_empty());
}

#[test]
fn a_stream_window_is_held_back_while_the_connection_window_reopens() {
    let mut t = Test::started(small_window());
    t.request(1, &post(), false);
    t.feed(&data(1, &[0; 16_384], false));
    t.feed(&data(1, &[0; 16_384], false));
    // The connection's window reopens; the stream's stays shut.
    t.conn.release_connection(32_768, &mut t.out);
    assert_eq!(t.frames(), [F::Window(0, 32_768)]);
    // Released to the connection already: a second time does nothing.
    t.conn.release_connection(10, &mut t.out);
    assert!(t.frames().is_empty());
    // The stream's window is given back later, at most what it was owed.
    t.conn.release_stream(1, 10_000, &mut t.out);
    assert_eq!(t.frames(), [F::Window(1, 10_000)]);
    t.conn.release_stream(1, 1 << 20, &mut t.out);
    assert_eq!(t.frames(), [F::Window(1, 22_768)]);
    t.conn.release_stream(1, 1, &mut t.out);
    assert!(t.frames().is_empty());
}

#[test]
fn data_beyond_a_stream_window_resets_only_that_stream() {
    let config = Config {
        initial_window_size: 1000,
        ..Config::default()
    };
    let mut t = Test::started(config);
    t.request(1, &post(), false);
    t.request(3, &post(), false);
    assert!(matches!(
        t.feed(&data(1, &[0; 1000], false))[..],
        [Event::Data { .. }]
    ));
    let ev = t.feed(&data(1, &[0; 1], false));
    assert_eq!(
        ev,
        [Event::Reset {
            stream: 1,
            code: ErrorCode::FLOW_CONTROL_ERROR,
            by_peer: false
        }]
    );
    // The refused byte is given back to the connection at once.
    assert_eq!(
        t.frames(),
        [F::Window(0, 1), F::Rst(1, ErrorCode::FLOW_CONTROL_ERROR)]
    );
    assert!(matches!(
        t.feed(&data(3, b"fine", true))[..],
        [Event::Data { stream: 3, .. }]
    ));
    assert!(!t.conn.is_closed());
}

#[test]
fn padding_counts_against_flow_control_and_is_released_at_once() {
    let config = Config {
        initial_window_size: 1000,
        ..Config::default()
    };
    let mut t = Test::started(config);
    t.request(1, &post(), false);
    let ev = t.feed(&data_padded(1, b"abc", false, Some(100)));
    assert_eq!(
        ev,
        [Event::Data {
            stream: 1,
            data: b"abc".to_vec(),
            end_stream: false
        }]
    );
    // 101 octets of padding (and its length) are given back.
    assert_eq!(t.frames(), [F::Window(1, 101), F::Window(0, 101)]);
    // 900 bytes fit a 997-byte window, with 200 of padding they do not.
    t.expect_rst(
        1,
        &data_padded(1, &[0; 900], false, Some(200)),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
}

#[test]
fn our_initial_window_applies_to_open_streams_when_acknowledged() {
    let config = Config {
        initial_window_size: 100,
        ..Config::default()
    };
    let mut t = Test::new(config);
    t.feed(&[&PREFACE[..], &settings(&[])].concat());
    t.request(1, &post(), false);
    t.frames();
    // Before the ACK the client may use the default 65535.
    assert!(matches!(
        t.feed(&data(1, &[0; 1000], false))[..],
        [Event::Data { .. }]
    ));
    t.feed(&settings_ack());
    // Now the stream's window is 100 - 1000: any byte is too many.
    t.expect_rst(1, &data(1, &[0; 1], false), ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn a_response_larger_than_the_window_waits_for_window_updates() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/big"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    let body = vec![7u8; 100_000];
    let mut sent = t.conn.send_data(1, &body, true, &mut t.out).unwrap();
    assert_eq!(sent, 65_535);
    let frames = t.frames();
    assert_eq!(frames.len(), 1 + 4);
    for f in &frames[1..] {
        let F::Data(1, d, end) = f else { panic!("{f:?}") };
        assert!(d.len() <= 16_384 && !end);
    }
    assert_eq!(t.conn.send_capacity(1), Some(0));
    assert_eq!(t.conn.send_data(1, &body[sent..], true, &mut t.out), Ok(0));
    assert!(t.out.is_empty());
    // The stream's window alone is not enough: the connection's is spent.
    assert_eq!(
        t.feed(&window_update(1, 50_000)),
        [Event::WindowOpened { stream: 1 }]
    );
    assert_eq!(t.conn.send_data(1, &body[sent..], true, &mut t.out), Ok(0));
    assert_eq!(
        t.feed(&window_update(0, 40_000)),
        [Event::WindowOpened { stream: 0 }]
    );
    sent += t.conn.send_data(1, &body[sent..], true, &mut t.out).unwrap();
    assert_eq!(sent, 65_535 + 34_465);
    let frames = t.frames();
    assert_eq!(
        frames.last(),
        Some(&F::Data(1, vec![7; 34_465 - 2 * 16_384], true))
    );
    assert_eq!(t.conn.active_streams(), 0);
}

#[test]
fn the_peers_max_frame_size_sets_our_data_frames() {
    let mut t = Test::started(Config::default());
    t.feed(&settings(&[Setting::MaxFrameSize(40_000)]));
    t.client.frames.set_max_frame_size(40_000).unwrap();
    t.frames();
    t.request(1, &get("/"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    assert_eq!(t.conn.send_data(1, &[1; 50_000], true, &mut t.out), Ok(50_000));
    let frames = t.frames();
    let sizes: Vec<usize> = frames
        .iter()
        .filter_map(|f| match f {
            F::Data(_, d, _) => Some(d.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [40_000, 10_000]);
}

#[test]
fn a_new_initial_window_moves_open_streams_and_may_go_negative() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    assert_eq!(t.conn.send_data(1, &[0; 60_000], false, &mut t.out), Ok(60_000));
    t.frames();
    // 5535 left; the initial window drops by 65535 - 1000.
    assert!(t.feed(&settings(&[Setting::InitialWindowSize(1000)])).is_empty());
    assert_eq!(t.frames(), [F::SettingsAck]);
    assert_eq!(t.conn.send_capacity(1), Some(0));
    // Window now -59000: an update of 59000 brings it to 0, one more to 1.
    t.feed(&window_update(1, 59_000));
    assert_eq!(t.conn.send_capacity(1), Some(0));
    t.feed(&window_update(1, 1));
    assert_eq!(t.conn.send_capacity(1), Some(1));
    // Raising it opens the window again, with an event.
    let ev = t.feed(&settings(&[Setting::InitialWindowSize(3000)]));
    assert_eq!(ev, [Event::WindowOpened { stream: 1 }]);
    assert_eq!(t.conn.send_capacity(1), Some(2001));
}

#[test]
fn window_overflow_on_a_stream_resets_it_and_through_settings_ends_the_connection() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.expect_rst(1, &window_update(1, MAX_STREAM_ID), ErrorCode::FLOW_CONTROL_ERROR);
    t.request(3, &get("/"), true);
    t.feed(&window_update(3, MAX_STREAM_ID - 65_535));
    assert_eq!(t.conn.send_capacity(3), Some(65_535));
    let e = t.expect_goaway(
        &settings(&[Setting::InitialWindowSize(65_536)]),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    assert_eq!(e, ConnectionError::FlowControl);
}

#[test]
fn trailers_end_a_request() {
    let mut t = Test::started(Config::default());
    t.request(1, &post(), false);
    t.feed(&data(1, b"body", false));
    let ev = t.request(1, &fields(&[("x-checksum", "abc")]), true);
    assert_eq!(
        ev,
        [Event::Trailers {
            stream: 1,
            fields: fields(&[("x-checksum", "abc")])
        }]
    );
    // The client has ended the stream: more DATA is STREAM_CLOSED.
    t.feed(&data(1, b"late", false));
    assert_eq!(t.frames(), [F::Window(0, 4), F::Rst(1, ErrorCode::STREAM_CLOSED)]);
}

#[test]
fn malformed_trailers_reset_the_stream() {
    let mut t = Test::started(Config::default());
    t.request(1, &post(), false);
    let ev = t.request(1, &fields(&[("x-a", "b")]), false);
    assert_eq!(
        ev,
        [Event::Reset {
            stream: 1,
            code: ErrorCode::PROTOCOL_ERROR,
            by_peer: false
        }]
    );
    assert_eq!(t.frames(), [F::Rst(1, ErrorCode::PROTOCOL_ERROR)]);
    t.request(3, &post(), false);
    let ev = t.request(3, &fields(&[(":path", "/")]), true);
    assert!(matches!(ev[..], [Event::Reset { stream: 3, .. }]));
    assert_eq!(t.frames(), [F::Rst(3, ErrorCode::PROTOCOL_ERROR)]);
    // A reset stream's late trailers are ignored, HPACK kept in step.
    assert!(t.request(3, &fields(&[("x-b", "c")]), true).is_empty());
    assert!(t.frames().is_empty());
    assert!(matches!(
        t.request(5, &get("/"), true)[..],
        [Event::Request { .. }]
    ));
}

#[test]
fn data_after_end_stream_is_stream_closed() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    let ev = t.feed(&data(1, b"x", false));
    assert!(matches!(
        ev[..],
        [Event::Reset {
            stream: 1,
            code: ErrorCode::STREAM_CLOSED,
            ..
        }]
    ));
    assert_eq!(t.frames(), [F::Window(0, 1), F::Rst(1, ErrorCode::STREAM_CLOSED)]);
}

#[test]
fn a_client_reset_closes_the_stream() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    let ev = t.feed(&rst(1, ErrorCode::CANCEL));
    assert_eq!(
        ev,
        [Event::Reset {
            stream: 1,
            code: ErrorCode::CANCEL,
            by_peer: true
        }]
    );
    assert!(t.frames().is_empty());
    assert_eq!(
        t.conn
            .send_headers(1, &fields(&[(":status", "200")]), true, &mut t.out),
        Err(SendError::StreamNotOpen(1))
    );
    // A second RST_STREAM and a WINDOW_UPDATE on the closed stream: ignored.
    assert!(
        t.feed(&[rst(1, ErrorCode::CANCEL), window_update(1, 5)].concat())
            .is_empty()
    );
    assert!(t.frames().is_empty());
}

#[test]
fn our_reset_is_sent_and_late_frames_are_ignored() {
    let mut t = Test::started(Config::default());
    t.request(1, &post(), false);
    t.conn.reset(1, ErrorCode::CANCEL, &mut t.out).unwrap();
    assert_eq!(t.frames(), [F::Rst(1, ErrorCode::CANCEL)]);
    assert_eq!(
        t.conn.reset(1, ErrorCode::CANCEL, &mut t.out),
        Err(SendError::StreamNotOpen(1))
    );
    // DATA the client sent before it saw the reset: no error, and the
    // connection window is given back.
    assert!(t.feed(&data(1, b"in flight", true)).is_empty());
    assert_eq!(t.frames(), [F::Window(0, 9)]);
}

#[test]
fn extended_connect_is_accepted() {
    let mut t = Test::started(Config::default());
    let ws = fields(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/chat"),
        (":authority", "example.com"),
        ("sec-websocket-version", "13"),
    ]);
    let ev = t.request(1, &ws, false);
    let [
        Event::Request {
            request,
            end_stream: false,
            ..
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}");
    };
    assert!(request.is_extended_connect("websocket"));
    assert_eq!(request.path.as_deref(), Some("/chat"));
    // A plain CONNECT (§8.5) has :authority only.
    let ev = t.request(
        3,
        &fields(&[(":method", "CONNECT"), (":authority", "example.com:443")]),
        false,
    );
    let [Event::Request { request, .. }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!((request.scheme.as_ref(), request.path.as_ref()), (None, None));
    assert!(!request.is_extended_connect("websocket"));
    assert!(t.frames().is_empty());
}

#[test]
fn each_malformed_request_is_reset_and_the_connection_survives() {
    let base = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "example.com"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let without = |name: &str| {
        base.iter()
            .copied()
            .filter(|(n, _)| *n != name)
            .collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no :method", without(":method")),
        ("no :scheme", without(":scheme")),
        ("no :path", without(":path")),
        ("empty :path", {
            let mut l = base.to_vec();
            l[2].1 = "";
            l
        }),
        ("a path that is not absolute", {
            let mut l = base.to_vec();
            l[2].1 = "index";
            l
        }),
        ("duplicate :path", with(&[(":path", "/b")])),
        ("duplicate :method", [&[(":method", "GET")][..], &base].concat()),
        ("unknown pseudo-header", with(&[(":foo", "bar")])),
        ("response pseudo-header", with(&[(":status", "200")])),
        (
            "pseudo-header after a field",
            [&base[..3], &[("accept", "*/*"), base[3]]].concat(),
        ),
        ("uppercase name", with(&[("Accept", "*/*")])),
        ("space in a name", with(&[("a b", "c")])),
        ("NUL in a value", with(&[("x", "a\0b")])),
        ("LF in a value", with(&[("x", "a\nb")])),
        ("leading space in a value", with(&[("x", " a")])),
        ("connection", with(&[("connection", "keep-alive")])),
        ("keep-alive", with(&[("keep-alive", "5")])),
        ("proxy-connection", with(&[("proxy-connection", "close")])),
        ("transfer-encoding", with(&[("transfer-encoding", "chunked")])),
        ("upgrade", with(&[("upgrade", "websocket")])),
        ("te other than trailers", with(&[("te", "gzip")])),
        (":protocol on GET", with(&[(":protocol", "websocket")])),
        (
            "extended CONNECT without :path",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":authority", "example.com"),
            ],
        ),
        (
            "extended CONNECT without :authority",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", "/"),
            ],
        ),
        (
            "CONNECT with :path",
            vec![(":method", "CONNECT"), (":authority", "a:1"), (":path", "/")],
        ),
        ("CONNECT without :authority", vec![(":method", "CONNECT")]),
        ("a host other than :authority", with(&[("host", "other.example")])),
    ];
    let mut t = Test::started(Config::default());
    let mut stream = 1;
    for (name, list) in cases {
        let ev = t.request(stream, &fields(&list), true);
        assert!(ev.is_empty(), "{name}: {ev:?}");
        assert_eq!(t.frames(), [F::Rst(stream, ErrorCode::PROTOCOL_ERROR)], "{name}");
        stream += 2;
        // The connection goes on: the next request is served.
        let ev = t.request(stream, &get("/ok"), true);
        assert!(matches!(ev[..], [Event::Request { .. }]), "after {name}: {ev:?}");
        t.conn
            .send_headers(stream, &fields(&[(":status", "204")]), true, &mut t.out)
            .unwrap();
        t.frames();
        stream += 2;
    }
}

#[test]
fn a_headers_frame_that_depends_on_its_own_stream_is_reset() {
    let mut t = Test::started(Config::default());
    let block = t.client.block(&get("/"));
    let mut h = Headers::new(1, &block);
    h.end_stream = true;
    h.priority = Some(StreamDependency {
        exclusive: false,
        stream_id: 1,
        weight: 0,
    });
    let mut w = Vec::new();
    h.encode(&mut w, 16_384).unwrap();
    t.expect_rst(1, &w, ErrorCode::PROTOCOL_ERROR);
    assert!(matches!(
        t.request(3, &get("/"), true)[..],
        [Event::Request { .. }]
    ));
}

// --- byte at a time --------------------------------------------------------

/// A whole conversation, as the client sends it.
fn script() -> Vec<u8> {
    let mut c = Client::new();
    let mut w = PREFACE.to_vec();
    w.extend(settings(&[
        Setting::InitialWindowSize(1000),
        Setting::HeaderTableSize(256),
    ]));
    w.extend(settings_ack());
    w.extend(ping(false, *b"pingpong"));
    let b = c.block(&get("/one"));
    w.extend(headers_frame(1, &b, true, true));
    let b = c.block(&[post(), fields(&[("x-long", &"y".repeat(300))])].concat());
    w.extend(headers_frame(3, &b[..100], false, false));
    w.extend(continuation(3, &b[100..], true));
    w.extend(data_padded(3, b"part one", false, Some(7)));
    w.extend(data(3, b"part two", false));
    let b = c.block(&fields(&[("x-trailer", "t")]));
    w.extend(headers_frame(3, &b, true, true));
    let b = c.block(&fields(&[(":method", "GET"), (":path", "/bad")]));
    w.extend(headers_frame(5, &b, true, true));
    w.extend(window_update(0, 1000));
    w.extend(rst(1, ErrorCode::CANCEL));
    w
}

fn run(config: Config, input: &[u8], step: usize) -> (Vec<Event>, Vec<u8>) {
    let mut conn = ServerConnection::new(config).unwrap();
    let (mut out, mut events, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in input.chunks(step) {
        pending.extend_from_slice(chunk);
        let n = conn.receive(&pending, &mut out, &mut events);
        pending.drain(..n);
    }
    assert!(pending.is_empty());
    (events, out)
}

#[test]
fn byte_at_a_time_gives_what_whole_gives() {
    let input = script();
    let whole = run(Config::default(), &input, input.len());
    // The script is what it seems.
    let kinds: Vec<&str> = whole
        .0
        .iter()
        .map(|e| match e {
            Event::Request { .. } => "request",
            Event::Data { .. } => "data",
            Event::Trailers { .. } => "trailers",
            Event::Reset { .. } => "reset",
            Event::WindowOpened { .. } => "window",
            Event::SettingsAcked => "acked",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "acked", "request", "request", "data", "data", "trailers", "window", "reset"
        ]
    );
    for step in [1, 2, 7, 100] {
        assert_eq!(run(Config::default(), &input, step), whole, "step {step}");
    }
}

#[test]
fn trailing_partial_frames_are_left_to_the_caller() {
    let input = script();
    let mut conn = ServerConnection::new(Config::default()).unwrap();
    let (mut out, mut events) = (Vec::new(), Vec::new());
    let cut = input.len() - 3;
    let n = conn.receive(&input[..cut], &mut out, &mut events);
    // The last frame (RST_STREAM, 13 bytes) is not all there.
    assert_eq!(n, input.len() - 13);
    let n2 = conn.receive(&input[n..], &mut out, &mut events);
    assert_eq!(n + n2, input.len());
}

// --- attack protections ---------------------------------------------------

#[test]
fn streams_beyond_the_concurrency_limit_are_refused() {
    let mut t = Test::started(Config {
        max_concurrent_streams: 2,
        ..Config::default()
    });
    t.request(1, &get("/"), true);
    t.request(3, &get("/"), true);
    let third = headers_frame(5, &t.client.block(&get("/")), true, true);
    t.expect_rst(5, &third, ErrorCode::REFUSED_STREAM);
    t.conn
        .send_headers(1, &fields(&[(":status", "204")]), true, &mut t.out)
        .unwrap();
    t.frames();
    assert!(matches!(
        t.request(7, &get("/"), true)[..],
        [Event::Request { stream: 7, .. }]
    ));
}

#[test]
fn rapid_reset_ends_the_connection() {
    let mut t = Test::started(Config {
        max_resets: 10,
        ..Config::default()
    });
    let mut stream = 1;
    for _ in 0..9 {
        t.request(stream, &get("/"), true);
        t.feed(&rst(stream, ErrorCode::CANCEL));
        stream += 2;
    }
    assert!(!t.conn.is_closed());
    t.request(stream, &get("/"), true);
    t.frames();
    let e = t.expect_goaway(&rst(stream, ErrorCode::CANCEL), ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::TooManyResets);
}

#[test]
fn streams_refused_because_of_the_client_spend_the_reset_budget() {
    let mut t = Test::started(Config {
        max_resets: 10,
        ..Config::default()
    });
    let mut stream = 1;
    for _ in 0..9 {
        t.request(stream, &post(), false);
        let event = t
            .conn
            .refuse(stream, ErrorCode::REFUSED_STREAM, &mut t.out)
            .unwrap();
        assert!(event.is_none());
        stream += 2;
    }
    assert!(!t.conn.is_closed());
    t.request(stream, &post(), false);
    let event = t
        .conn
        .refuse(stream, ErrorCode::REFUSED_STREAM, &mut t.out)
        .unwrap();
    assert!(matches!(
        event,
        Some(Event::ConnectionError(ConnectionError::TooManyResets))
    ));
    assert!(t.conn.is_closed());
}

#[test]
fn streams_that_end_normally_refill_the_reset_budget() {
    let mut t = Test::started(Config {
        max_resets: 10,
        ..Config::default()
    });
    let mut stream = 1;
    for _ in 0..100 {
        t.request(stream, &get("/"), true);
        t.feed(&rst(stream, ErrorCode::CANCEL));
        stream += 2;
        t.request(stream, &get("/"), true);
        t.conn
            .send_headers(stream, &fields(&[(":status", "204")]), true, &mut t.out)
            .unwrap();
        stream += 2;
    }
    assert!(!t.conn.is_closed());
}

#[test]
fn malformed_requests_count_against_the_reset_budget() {
    let mut t = Test::started(Config {
        max_resets: 5,
        ..Config::default()
    });
    for i in 0..4 {
        t.request(1 + 2 * i, &fields(&[(":method", "GET")]), true);
    }
    t.frames();
    let b = t.client.block(&fields(&[(":method", "GET")]));
    t.expect_goaway(&headers_frame(9, &b, true, true), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn a_settings_flood_with_an_undrained_output_ends_the_connection() {
    let mut t = Test::started(Config::default());
    let one = settings(&[Setting::MaxConcurrentStreams(5)]);
    let flood: Vec<u8> = one.iter().copied().cycle().take(one.len() * 64).collect();
    assert!(t.feed(&flood).is_empty());
    let e = t.expect_goaway(&one, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::TooManyAcks);
}

#[test]
fn a_settings_frame_past_the_parameter_limit_ends_the_connection() {
    let mut t = Test::started(Config::default());
    let at_limit = vec![Setting::MaxConcurrentStreams(5); 32];
    assert!(t.feed(&settings(&at_limit)).is_empty());
    assert_eq!(t.frames(), [F::SettingsAck]);
    let past = vec![Setting::MaxConcurrentStreams(5); 33];
    let e = t.expect_goaway(&settings(&past), ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::TooManySettings);
    // The limit is a knob.
    let mut t = Test::started(Config {
        max_settings_per_frame: 40,
        ..Config::default()
    });
    assert!(t.feed(&settings(&past)).is_empty());
    assert_eq!(t.frames(), [F::SettingsAck]);
}

#[test]
fn many_initial_window_sizes_in_one_frame_move_the_windows_once_by_the_net_change() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    t.frames();
    // Up and down again: no change, no window opened.
    let flap: Vec<_> = (0..32)
        .map(|i| Setting::InitialWindowSize(if i % 2 == 0 { 0 } else { 65_535 }))
        .collect();
    assert!(t.feed(&settings(&flap)).is_empty());
    assert_eq!(t.frames(), [F::SettingsAck]);
    assert_eq!(t.conn.send_capacity(1), Some(65_535));
    // The last value is the one that counts.
    let mut down = flap.clone();
    down[31] = Setting::InitialWindowSize(1000);
    assert!(t.feed(&settings(&down)).is_empty());
    assert_eq!(t.conn.send_capacity(1), Some(1000));
    let mut up = flap;
    up[31] = Setting::InitialWindowSize(3000);
    let ev = t.feed(&settings(&up));
    assert_eq!(ev, [Event::WindowOpened { stream: 1 }]);
    assert_eq!(t.conn.send_capacity(1), Some(3000));
    // A value on the way that pushes a window past 2^31-1 is still an error.
    t.feed(&window_update(1, MAX_STREAM_ID - 3000));
    let e = t.expect_goaway(
        &settings(&[Setting::InitialWindowSize(3001), Setting::InitialWindowSize(0)]),
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    assert_eq!(e, ConnectionError::FlowControl);
}

#[test]
fn a_ping_flood_with_an_undrained_output_ends_the_connection() {
    let mut t = Test::started(Config::default());
    for _ in 0..64 {
        t.feed(&ping(false, [1; 8]));
    }
    t.expect_goaway(&ping(false, [1; 8]), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn a_ping_flood_behind_the_callers_own_unsent_output_ends_the_connection() {
    // Each time `out` is handed over empty, but the caller still holds
    // unsent bytes of its own ahead of it: the count goes on.
    let mut t = Test::started(Config::default());
    let mut events = Vec::new();
    // Everything written so far is on the socket.
    t.conn.receive_queued(&[], 0, &mut Vec::new(), &mut events);
    for _ in 0..64 {
        let mut out = Vec::new();
        t.conn
            .receive_queued(&ping(false, [1; 8]), 100, &mut out, &mut events);
        assert!(!t.conn.is_closed());
    }
    let mut out = Vec::new();
    t.conn
        .receive_queued(&ping(false, [1; 8]), 100, &mut out, &mut events);
    assert!(matches!(
        events.last(),
        Some(Event::ConnectionError(ConnectionError::TooManyAcks))
    ));
    // With nothing unsent, the same pings are fine.
    let mut t = Test::started(Config::default());
    for _ in 0..1000 {
        let mut out = Vec::new();
        t.conn
            .receive_queued(&ping(false, [1; 8]), 0, &mut out, &mut events);
    }
    assert!(!t.conn.is_closed());
}

#[test]
fn pings_answered_as_the_output_drains_are_fine() {
    let mut t = Test::started(Config::default());
    for _ in 0..1000 {
        t.feed(&ping(false, [1; 8]));
        assert_eq!(t.frames(), [F::Ping(true, [1; 8])]);
    }
}

#[test]
fn a_continuation_flood_ends_the_connection_before_the_block_ends() {
    let mut t = Test::started(Config::default());
    let mut w = headers_frame(1, &[0x82; 1000], true, false);
    for _ in 0..15 {
        w.extend(continuation(1, &[0x82; 1000], false));
    }
    assert!(t.feed(&w).is_empty());
    // 16 000 bytes so far; 1000 more pass the 16 384 limit.
    let e = t.expect_goaway(
        &continuation(1, &[0x82; 1000], false),
        ErrorCode::ENHANCE_YOUR_CALM,
    );
    assert_eq!(e, ConnectionError::HeaderBlockTooLarge);
    // A single HEADERS frame over the limit, too.
    let mut t = Test::started(Config {
        max_frame_size: 32_768,
        ..Config::default()
    });
    t.expect_goaway(
        &headers_frame(1, &[0x82; 20_000], true, false),
        ErrorCode::ENHANCE_YOUR_CALM,
    );
}

#[test]
fn empty_continuations_are_counted() {
    let mut t = Test::started(Config::default());
    let mut w = headers_frame(1, b"\x82", true, false);
    for _ in 0..100 {
        w.extend(continuation(1, b"", false));
    }
    assert!(t.feed(&w).is_empty());
    let e = t.expect_goaway(&continuation(1, b"", false), ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::TooManyEmptyFrames);
}

#[test]
fn an_empty_data_flood_ends_the_connection() {
    let mut t = Test::started(Config::default());
    t.request(1, &post(), false);
    for _ in 0..100 {
        t.feed(&data(1, b"", false));
    }
    assert!(!t.conn.is_closed());
    let e = t.expect_goaway(&data(1, b"", false), ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(e, ConnectionError::TooManyEmptyFrames);
}

#[test]
fn empty_data_among_real_data_is_fine() {
    let mut t = Test::started(Config::default());
    t.request(1, &post(), false);
    for _ in 0..1000 {
        t.feed(&data(1, b"", false));
        t.feed(&data(1, b"x", false));
        t.conn.release(1, 1, &mut t.out);
    }
    // An empty DATA with END_STREAM is not counted.
    let ev = t.feed(&data(1, b"", true));
    assert!(matches!(ev[..], [Event::Data { end_stream: true, .. }]));
    assert!(!t.conn.is_closed());
}

#[test]
fn stream_ids_near_the_end_bring_a_graceful_goaway() {
    let mut t = Test::started(Config::default());
    let id = MAX_STREAM_ID - 2;
    let ev = t.request(id, &get("/"), true);
    assert!(matches!(ev[..], [Event::Request { .. }]));
    assert_eq!(t.frames(), [F::GoAway(id, ErrorCode::NO_ERROR)]);
    assert!(!t.conn.is_closed());
    t.conn
        .send_headers(id, &fields(&[(":status", "204")]), true, &mut t.out)
        .unwrap();
    assert!(t.conn.is_finished());
    // Below the threshold, nothing of the kind.
    let mut t = Test::started(Config::default());
    t.request(Config::default().goaway_stream_id - 2, &get("/"), true);
    assert!(t.frames().is_empty());
}

#[test]
fn a_body_must_match_its_content_length() {
    let with_length = |n: &'static str| [post(), fields(&[("content-length", n)])].concat();
    let mut t = Test::started(Config::default());
    // Exactly the length: fine, in two frames.
    t.request(1, &with_length("6"), false);
    assert!(matches!(
        t.feed(&data(1, b"abc", false))[..],
        [Event::Data { .. }]
    ));
    assert!(matches!(
        t.feed(&data(1, b"def", true))[..],
        [Event::Data { end_stream: true, .. }]
    ));
    assert!(t.frames().is_empty());
    // Past it.
    t.request(3, &with_length("2"), false);
    t.expect_rst(3, &data(3, b"abc", false), ErrorCode::PROTOCOL_ERROR);
    // Short of it at END_STREAM.
    t.request(5, &with_length("4"), false);
    t.expect_rst(5, &data(5, b"abc", true), ErrorCode::PROTOCOL_ERROR);
    // Short of it when trailers end the stream.
    t.request(7, &with_length("4"), false);
    t.feed(&data(7, b"abc", false));
    let b = t.client.block(&fields(&[("x-t", "1")]));
    t.expect_rst(7, &headers_frame(7, &b, true, true), ErrorCode::PROTOCOL_ERROR);
    // A request with END_STREAM on its HEADERS has an empty body.
    let b = t.client.block(&with_length("4"));
    t.expect_rst(9, &headers_frame(9, &b, true, true), ErrorCode::PROTOCOL_ERROR);
    let ev = t.request(11, &with_length("0"), true);
    assert!(matches!(ev[..], [Event::Request { stream: 11, .. }]));
    // Two different values, or not a number.
    let b = t
        .client
        .block(&[with_length("1"), fields(&[("content-length", "2")])].concat());
    t.expect_rst(13, &headers_frame(13, &b, false, true), ErrorCode::PROTOCOL_ERROR);
    let b = t.client.block(&with_length("0x10"));
    t.expect_rst(15, &headers_frame(15, &b, false, true), ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn frames_on_a_stream_closed_both_ways() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "204")]), true, &mut t.out)
        .unwrap();
    t.frames();
    assert_eq!(t.conn.active_streams(), 0);
    // WINDOW_UPDATE and RST_STREAM may cross our END_STREAM: ignored.
    assert!(
        t.feed(&[window_update(1, 10), rst(1, ErrorCode::CANCEL)].concat())
            .is_empty()
    );
    assert!(t.frames().is_empty());
    // DATA may not: STREAM_CLOSED.
    t.expect_rst(1, &data(1, b"x", false), ErrorCode::STREAM_CLOSED);
    // A host equal to :authority (without regard to case) is fine.
    let ev = t.request(3, &[get("/"), fields(&[("host", "Example.COM")])].concat(), true);
    assert!(matches!(ev[..], [Event::Request { .. }]));
}

#[test]
fn a_zero_window_increment_on_an_open_stream_resets_it() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/"), true);
    let mut w = window_update(1, 1);
    w[12] = 0;
    let ev = t.feed(&w);
    assert!(matches!(
        ev[..],
        [Event::Reset {
            stream: 1,
            code: ErrorCode::PROTOCOL_ERROR,
            by_peer: false
        }]
    ));
    assert_eq!(t.frames(), [F::Rst(1, ErrorCode::PROTOCOL_ERROR)]);
    assert!(!t.conn.is_closed());
}

#[test]
fn nothing_is_written_before_our_settings() {
    let mut t = Test::new(Config::default());
    t.feed(&PREFACE[..5]);
    assert!(!t.conn.ping([0; 8], &mut t.out));
    t.conn.go_away(ErrorCode::NO_ERROR, &mut t.out);
    assert!(t.out.is_empty());
    assert!(t.conn.is_closed());
    assert!(t.feed(&PREFACE[5..]).is_empty());
    assert!(t.out.is_empty());
}

#[test]
fn a_data_head_announces_one_frame_within_the_windows_for_the_caller_to_fill() {
    let mut t = Test::started(Config::default());
    t.request(1, &get("/shared"), true);
    t.conn
        .send_headers(1, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    // At most one frame of the peer's frame size.
    let payload = vec![3u8; 20_000];
    let n = t.conn.send_data_head(1, payload.len(), true, &mut t.out).unwrap();
    assert_eq!(n, 16_384);
    t.out.extend_from_slice(&payload[..n]);
    let mut sent = n;
    // Then what the 65535 windows leave.
    while sent < payload.len() {
        let n = t
            .conn
            .send_data_head(1, payload.len() - sent, true, &mut t.out)
            .unwrap();
        assert!(n > 0);
        t.out.extend_from_slice(&payload[sent..sent + n]);
        sent += n;
    }
    let frames = t.frames();
    let body: Vec<u8> = frames
        .iter()
        .filter_map(|f| match f {
            F::Data(1, d, _) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(body, payload);
    assert_eq!(frames.last(), Some(&F::Data(1, vec![3; 20_000 - 16_384], true)));
    assert_eq!(t.conn.active_streams(), 0);

    // A closed window: nothing is written.
    t.request(3, &get("/more"), true);
    t.conn
        .send_headers(3, &fields(&[(":status", "200")]), false, &mut t.out)
        .unwrap();
    t.frames();
    let big = 65_535 - 20_000;
    let mut left = big;
    while left > 0 {
        let n = t.conn.send_data_head(3, left, false, &mut t.out).unwrap();
        t.out.extend(std::iter::repeat_n(0u8, n));
        left -= n;
    }
    assert_eq!(t.conn.send_capacity(3), Some(0));
    t.frames();
    assert_eq!(t.conn.send_data_head(3, 10, false, &mut t.out), Ok(0));
    assert!(t.out.is_empty());
    // An empty frame that ends the stream needs no window.
    assert_eq!(t.conn.send_data_head(3, 0, true, &mut t.out), Ok(0));
    assert_eq!(t.frames(), [F::Data(3, Vec::new(), true)]);
    assert_eq!(
        t.conn.send_data_head(3, 1, false, &mut t.out),
        Err(SendError::StreamNotOpen(3))
    );
}
