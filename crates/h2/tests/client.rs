//! The client connection against the server connection in memory (the
//! bytes of each fed to the other), and against a hostile server written
//! by hand with the `frame` and `hpack` modules.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_h2::ErrorCode;
use tether_h2::client::{ClientConnection, Config as ClientConfig, ConnectionError, Event, SendError};
use tether_h2::connection::{Config, Event as SEvent, ServerConnection};
use tether_h2::frame::{
    self, Continuation, Data, FrameDecoder, GoAway, Headers, Ping, PushPromise, RstStream, Setting,
    WindowUpdate,
};
use tether_h2::hpack::{Encoder, Field};

/// A client and a server joined in memory.
struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    cevents: Vec<Event>,
    sevents: Vec<SEvent>,
    /// Feed the client one byte at a time.
    trickle: bool,
    /// Every byte the server wrote, in order.
    server_wrote: Vec<u8>,
}

impl Pair {
    fn new(cc: ClientConfig, sc: Config) -> Pair {
        let mut to_server = Vec::new();
        let client = ClientConnection::new(cc, &mut to_server).unwrap();
        Pair {
            client,
            server: ServerConnection::new(sc).unwrap(),
            to_server,
            to_client: Vec::new(),
            cevents: Vec::new(),
            sevents: Vec::new(),
            trickle: false,
            server_wrote: Vec::new(),
        }
    }

    fn default() -> Pair {
        Pair::new(ClientConfig::default(), Config::default())
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) {
        for _ in 0..1000 {
            if self.to_server.is_empty() && self.to_client.is_empty() {
                return;
            }
            let input = std::mem::take(&mut self.to_server);
            let used = self
                .server
                .receive(&input, &mut self.to_client, &mut self.sevents);
            assert!(
                used == input.len() || self.server.is_closed(),
                "the client writes whole frames"
            );
            self.server_wrote.extend_from_slice(&self.to_client);
            let input = std::mem::take(&mut self.to_client);
            if self.trickle {
                let mut pending = Vec::new();
                for &b in &input {
                    pending.push(b);
                    let used = self
                        .client
                        .receive(&pending, &mut self.to_server, &mut self.cevents);
                    pending.drain(..used);
                }
                assert!(pending.is_empty() || self.client.is_closed());
            } else {
                let used = self
                    .client
                    .receive(&input, &mut self.to_server, &mut self.cevents);
                assert!(used == input.len() || self.client.is_closed());
            }
        }
        panic!("the conversation does not settle");
    }

    fn take_client(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.cevents)
    }

    fn take_server(&mut self) -> Vec<SEvent> {
        std::mem::take(&mut self.sevents)
    }

    /// The server's streams with a request, in order.
    fn requests(&self) -> Vec<u32> {
        self.sevents
            .iter()
            .filter_map(|e| match e {
                SEvent::Request { stream, .. } => Some(*stream),
                _ => None,
            })
            .collect()
    }
}

fn get(path: &str) -> Vec<Field> {
    vec![
        Field::new(":method", "GET"),
        Field::new(":scheme", "http"),
        Field::new(":path", path),
        Field::new(":authority", "example.com"),
    ]
}

fn post(path: &str) -> Vec<Field> {
    let mut f = get(path);
    f[0] = Field::new(":method", "POST");
    f
}

fn data_of(events: &[Event], stream: u32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data { stream: s, data, .. } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn server_body(events: &[SEvent], stream: u32) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            SEvent::Data { stream: s, data, .. } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn preface_settings_and_their_acknowledgements() {
    let mut out = Vec::new();
    let cc = ClientConfig {
        initial_window_size: 1 << 20,
        ..ClientConfig::default()
    };
    let _client = ClientConnection::new(cc, &mut out).unwrap();
    assert!(out.starts_with(frame::PREFACE));
    let mut dec = FrameDecoder::new();
    let rest = &out[frame::PREFACE.len()..];
    let (n, f) = dec.decode(rest);
    let Some(frame::Frame::Settings(s)) = f.unwrap() else {
        panic!("SETTINGS first")
    };
    let settings: Vec<Setting> = s.iter().collect();
    assert!(settings.contains(&Setting::EnablePush(false)));
    assert!(settings.contains(&Setting::InitialWindowSize(1 << 20)));
    let (_, f) = dec.decode(&rest[n..]);
    assert_eq!(
        f.unwrap(),
        Some(frame::Frame::WindowUpdate(WindowUpdate {
            stream_id: 0,
            increment: (1 << 20) - 65_535
        }))
    );

    let mut p = Pair::default();
    p.pump();
    let events = p.take_client();
    assert_eq!(events.first(), Some(&Event::Settings));
    assert!(events.contains(&Event::SettingsAcked));
    assert!(p.client.settings_received() && p.client.settings_acked());
    assert!(p.server.settings_acked());
    assert!(p.client.connect_protocol_enabled());
    assert_eq!(p.client.peer_settings().max_concurrent_streams, Some(100));
    assert!(
        ClientConnection::new(
            ClientConfig {
                max_frame_size: 100,
                ..ClientConfig::default()
            },
            &mut Vec::new()
        )
        .is_err()
    );
}

#[test]
fn a_request_and_its_response_whole_and_byte_at_a_time() {
    let run = |trickle: bool| {
        let mut p = Pair::default();
        p.trickle = trickle;
        let s1 = p.client.open_stream(&get("/a"), true, &mut p.to_server).unwrap();
        let s3 = p
            .client
            .open_stream(&post("/b"), false, &mut p.to_server)
            .unwrap();
        assert_eq!((s1, s3), (1, 3));
        assert_eq!(p.client.send_data(s3, b"body", true, &mut p.to_server), Ok(4));
        p.pump();
        assert_eq!(p.requests(), [1, 3]);
        assert_eq!(server_body(&p.sevents, 3), b"body");
        let fields = [
            Field::new(":status", "200"),
            Field::new("content-type", "text/plain"),
        ];
        p.server
            .send_headers(1, &fields, false, &mut p.to_client)
            .unwrap();
        p.server.send_data(1, b"hello", false, &mut p.to_client).unwrap();
        p.server
            .send_headers(1, &[Field::new("x-done", "yes")], true, &mut p.to_client)
            .unwrap();
        p.server
            .send_headers(3, &[Field::new(":status", "204")], true, &mut p.to_client)
            .unwrap();
        p.pump();
        let events: Vec<Event> = p
            .take_client()
            .into_iter()
            .filter(|e| {
                !matches!(
                    e,
                    Event::Settings | Event::SettingsAcked | Event::WindowOpened { .. }
                )
            })
            .collect();
        assert_eq!(p.client.active_streams(), 0);
        events
    };
    let whole = run(false);
    assert_eq!(
        whole,
        [
            Event::Response {
                stream: 1,
                status: 200,
                fields: vec![Field::new("content-type", "text/plain")],
                end_stream: false
            },
            Event::Data {
                stream: 1,
                data: b"hello".to_vec(),
                end_stream: false
            },
            Event::Trailers {
                stream: 1,
                fields: vec![Field::new("x-done", "yes")]
            },
            Event::Response {
                stream: 3,
                status: 204,
                fields: vec![],
                end_stream: true
            },
        ]
    );
    assert_eq!(run(true), whole);
}

#[test]
fn bodies_both_ways_go_by_the_windows() {
    let mut p = Pair::default();
    p.pump();
    p.take_client();
    // Upload: the server's stream window is 65535 until it releases.
    let body = vec![7u8; 100_000];
    let s = p
        .client
        .open_stream(&post("/up"), false, &mut p.to_server)
        .unwrap();
    let sent = p.client.send_data(s, &body, true, &mut p.to_server).unwrap();
    assert_eq!(sent, 65_535);
    assert_eq!(p.client.send_capacity(s), Some(0));
    p.pump();
    assert_eq!(server_body(&p.sevents, s).len(), 65_535);
    p.server.release(s, 65_535, &mut p.to_client);
    p.pump();
    assert!(p.take_client().contains(&Event::WindowOpened { stream: s }));
    assert_eq!(
        p.client.send_data(s, &body[sent..], true, &mut p.to_server),
        Ok(34_465)
    );
    p.pump();
    assert_eq!(server_body(&p.sevents, s), body);
    assert!(
        p.sevents
            .iter()
            .any(|e| matches!(e, SEvent::Data { end_stream: true, .. }))
    );
    p.server
        .send_headers(s, &[Field::new(":status", "201")], true, &mut p.to_client)
        .unwrap();

    // Download: our stream window is 65535; the server sends what fits,
    // and more as we release.
    let g = p
        .client
        .open_stream(&get("/down"), true, &mut p.to_server)
        .unwrap();
    p.pump();
    p.server
        .send_headers(g, &[Field::new(":status", "200")], false, &mut p.to_client)
        .unwrap();
    let big = vec![9u8; 150_000];
    let mut off = p.server.send_data(g, &big, true, &mut p.to_client).unwrap();
    assert_eq!(off, 65_535);
    let mut got = Vec::new();
    while off < big.len() || got.len() < big.len() {
        p.pump();
        let events = p.take_client();
        let d = data_of(&events, g);
        p.client.release(g, d.len(), &mut p.to_server);
        got.extend(d);
        p.pump();
        if off < big.len() {
            off += p
                .server
                .send_data(g, &big[off..], true, &mut p.to_client)
                .unwrap();
        }
    }
    assert_eq!(got, big);
    assert_eq!(p.client.active_streams(), 0);
}

#[test]
fn a_larger_client_window_lets_the_server_send_more() {
    let cc = ClientConfig {
        initial_window_size: 1 << 20,
        connection_window: 4 << 20,
        ..ClientConfig::default()
    };
    let mut p = Pair::new(cc, Config::default());
    let g = p.client.open_stream(&get("/"), true, &mut p.to_server).unwrap();
    p.pump();
    p.server
        .send_headers(g, &[Field::new(":status", "200")], false, &mut p.to_client)
        .unwrap();
    assert_eq!(
        p.server.send_data(g, &[1; 500_000], false, &mut p.to_client),
        Ok(500_000)
    );
    p.pump();
    assert_eq!(data_of(&p.take_client(), g).len(), 500_000);
}

#[test]
fn frames_are_cut_by_the_servers_frame_size() {
    let sc = Config {
        max_header_list_size: 1 << 20,
        ..Config::default()
    };
    let mut p = Pair::new(ClientConfig::default(), sc);
    p.pump();
    let mut fields = post("/x");
    fields.push(Field::new("x-big", vec![b'a'; 40_000]));
    let s = p.client.open_stream(&fields, false, &mut p.to_server).unwrap();
    p.client
        .send_data(s, &[5; 40_000], true, &mut p.to_server)
        .unwrap();
    // Every frame the client wrote fits in 16384 bytes.
    let mut dec = FrameDecoder::new();
    let mut rest = &p.to_server[..];
    let (mut continuations, mut datas) = (0, 0);
    while !rest.is_empty() {
        let (n, f) = dec.decode(rest);
        match f.unwrap().unwrap() {
            frame::Frame::Continuation(_) => continuations += 1,
            frame::Frame::Data(_) => datas += 1,
            _ => {}
        }
        rest = &rest[n..];
    }
    assert!(continuations >= 1);
    assert_eq!(datas, 3);
    p.pump();
    let Some(SEvent::Request { request, .. }) =
        p.sevents.iter().find(|e| matches!(e, SEvent::Request { .. }))
    else {
        panic!("no request");
    };
    assert_eq!(request.field("x-big").map(<[u8]>::len), Some(40_000));
    assert_eq!(server_body(&p.sevents, s).len(), 40_000);
}

#[test]
fn the_servers_concurrency_limit_is_kept() {
    let sc = Config {
        max_concurrent_streams: 2,
        ..Config::default()
    };
    let mut p = Pair::new(ClientConfig::default(), sc);
    p.pump();
    let a = p.client.open_stream(&get("/1"), true, &mut p.to_server).unwrap();
    let _b = p.client.open_stream(&get("/2"), true, &mut p.to_server).unwrap();
    assert!(!p.client.can_open());
    assert_eq!(
        p.client.open_stream(&get("/3"), true, &mut p.to_server),
        Err(SendError::StreamLimit)
    );
    p.pump();
    p.server
        .send_headers(a, &[Field::new(":status", "200")], true, &mut p.to_client)
        .unwrap();
    p.pump();
    assert!(p.client.can_open());
    let c = p.client.open_stream(&get("/3"), true, &mut p.to_server).unwrap();
    assert_eq!(c, 5);
    p.pump();
    // The server refused nothing.
    assert!(!p.sevents.iter().any(|e| matches!(e, SEvent::Reset { .. })));
    assert_eq!(p.requests(), [1, 3, 5]);
}

#[test]
fn resets_both_ways() {
    let mut p = Pair::default();
    let a = p.client.open_stream(&get("/a"), true, &mut p.to_server).unwrap();
    let b = p
        .client
        .open_stream(&post("/b"), false, &mut p.to_server)
        .unwrap();
    p.pump();
    p.server
        .reset(a, ErrorCode::INTERNAL_ERROR, &mut p.to_client)
        .unwrap();
    p.pump();
    assert!(p.take_client().contains(&Event::Reset {
        stream: a,
        code: ErrorCode::INTERNAL_ERROR,
        by_peer: true
    }));
    p.client.reset(b, ErrorCode::CANCEL, &mut p.to_server).unwrap();
    assert_eq!(
        p.client.send_data(b, b"x", false, &mut p.to_server),
        Err(SendError::StreamNotOpen(b))
    );
    assert_eq!(
        p.client.reset(b, ErrorCode::CANCEL, &mut p.to_server),
        Err(SendError::StreamNotOpen(b))
    );
    p.pump();
    assert!(p.take_server().contains(&SEvent::Reset {
        stream: b,
        code: ErrorCode::CANCEL,
        by_peer: true
    }));
    // What the server had sent on it before it saw the reset counts
    // against the connection window and is given back.
    assert_eq!(p.client.active_streams(), 0);
}

#[test]
fn data_after_our_reset_is_given_back_to_the_connection() {
    let mut p = Pair::default();
    let mut total = 0;
    // More than the connection window (1 MiB) in all, on streams we
    // reset as their data arrives: the window must not shrink for good.
    for _ in 0..40 {
        let s = p.client.open_stream(&get("/"), true, &mut p.to_server).unwrap();
        p.pump();
        p.server
            .send_headers(s, &[Field::new(":status", "200")], false, &mut p.to_client)
            .unwrap();
        let sent = p
            .server
            .send_data(s, &[0; 40_000], false, &mut p.to_client)
            .unwrap();
        assert_eq!(sent, 40_000, "the windows are given back");
        total += sent;
        // We reset before reading what the server sent.
        p.client.reset(s, ErrorCode::CANCEL, &mut p.to_server).unwrap();
        p.pump();
        p.server.release(s, usize::MAX, &mut p.to_client);
        p.pump();
    }
    assert!(total > 1 << 20);
}

#[test]
fn goaway_refuses_the_streams_above_its_last() {
    let mut p = Pair::default();
    let a = p.client.open_stream(&get("/a"), true, &mut p.to_server).unwrap();
    p.pump();
    // The server goes away having seen stream 1; stream 3 crosses it.
    p.server.go_away(ErrorCode::NO_ERROR, &mut p.to_client);
    let b = p.client.open_stream(&get("/b"), true, &mut p.to_server).unwrap();
    p.pump();
    let events = p.take_client();
    assert!(events.contains(&Event::GoAway {
        last_stream_id: a,
        code: ErrorCode::NO_ERROR,
        debug_data: vec![]
    }));
    assert!(events.contains(&Event::Reset {
        stream: b,
        code: ErrorCode::REFUSED_STREAM,
        by_peer: true
    }));
    assert!(p.client.goaway_received());
    assert_eq!(
        p.client.open_stream(&get("/c"), true, &mut p.to_server),
        Err(SendError::GoingAway)
    );
    assert!(!p.client.is_finished());
    // Stream 1 still finishes.
    p.server
        .send_headers(a, &[Field::new(":status", "200")], true, &mut p.to_client)
        .unwrap();
    p.pump();
    assert!(p.client.is_finished());

    // Our own GOAWAY.
    let mut p = Pair::default();
    p.pump();
    p.client.go_away(ErrorCode::NO_ERROR, &mut p.to_server);
    assert_eq!(
        p.client.open_stream(&get("/"), true, &mut p.to_server),
        Err(SendError::GoingAway)
    );
    p.pump();
    assert!(p.take_server().iter().any(|e| matches!(
        e,
        SEvent::GoAway {
            code: ErrorCode::NO_ERROR,
            ..
        }
    )));
    p.client.go_away(ErrorCode::PROTOCOL_ERROR, &mut p.to_server);
    assert!(p.client.is_closed());
}

#[test]
fn extended_connect_waits_for_the_servers_setting() {
    let mut p = Pair::default();
    let connect = [
        Field::new(":method", "CONNECT"),
        Field::new(":protocol", "websocket"),
        Field::new(":scheme", "http"),
        Field::new(":path", "/chat"),
        Field::new(":authority", "example.com"),
        Field::new("sec-websocket-version", "13"),
    ];
    assert_eq!(
        p.client.open_stream(&connect, false, &mut p.to_server),
        Err(SendError::ExtendedConnectDisabled)
    );
    p.pump();
    let s = p.client.open_stream(&connect, false, &mut p.to_server).unwrap();
    p.pump();
    let Some(SEvent::Request { request, .. }) = p
        .take_server()
        .into_iter()
        .find(|e| matches!(e, SEvent::Request { .. }))
    else {
        panic!("no request");
    };
    assert!(request.is_extended_connect("websocket"));
    p.server
        .send_headers(s, &[Field::new(":status", "200")], false, &mut p.to_client)
        .unwrap();
    p.server
        .send_data(s, b"\x81\x02hi", false, &mut p.to_client)
        .unwrap();
    p.client.send_data(s, b"frames", false, &mut p.to_server).unwrap();
    p.pump();
    let events = p.take_client();
    assert!(events.contains(&Event::Response {
        stream: s,
        status: 200,
        fields: vec![],
        end_stream: false
    }));
    assert_eq!(data_of(&events, s), b"\x81\x02hi");
    assert_eq!(server_body(&p.sevents, s), b"frames");
}

#[test]
fn pings_both_ways() {
    let mut p = Pair::default();
    p.pump();
    assert!(p.client.ping(*b"12345678", &mut p.to_server));
    assert!(!p.client.ping(*b"again!!!", &mut p.to_server));
    assert!(p.server.ping(*b"abcdefgh", &mut p.to_client));
    p.pump();
    assert!(p.take_client().contains(&Event::PingAck { data: *b"12345678" }));
    assert!(p.take_server().contains(&SEvent::PingAck { data: *b"abcdefgh" }));
}

// --- a hostile server ---------------------------------------------------

/// A server written by hand: its frames go to a fresh client.
struct Raw {
    client: ClientConnection,
    hpack: Encoder,
    out: Vec<u8>,
    events: Vec<Event>,
}

impl Raw {
    fn new(config: ClientConfig) -> Raw {
        let mut out = Vec::new();
        let client = ClientConnection::new(config, &mut out).unwrap();
        Raw {
            client,
            hpack: Encoder::new(),
            out,
            events: Vec::new(),
        }
    }

    /// A client whose server sent its SETTINGS (with `settings`), and that
    /// has opened stream 1 (a GET).
    fn started(settings: &[Setting]) -> Raw {
        let mut r = Raw::new(ClientConfig::default());
        let mut out = Vec::new();
        assert_eq!(r.client.open_stream(&get("/"), true, &mut out), Ok(1));
        let mut w = Vec::new();
        frame::encode_settings(&mut w, settings, 16_384).unwrap();
        r.feed(&w);
        r.events.clear();
        r.out.clear();
        r
    }

    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.client.receive(bytes, &mut self.out, &mut self.events)
    }

    fn block(&mut self, fields: &[Field]) -> Vec<u8> {
        let mut b = Vec::new();
        self.hpack.encode(fields, &mut b);
        b
    }

    fn headers(&mut self, stream: u32, fields: &[Field], end_stream: bool) -> Vec<u8> {
        let block = self.block(fields);
        let mut h = Headers::new(stream, &block);
        h.end_stream = end_stream;
        let mut w = Vec::new();
        h.encode(&mut w, 16_384).unwrap();
        w
    }

    fn error(&self) -> Option<ConnectionError> {
        self.events.iter().find_map(|e| match e {
            Event::ConnectionError(c) => Some(*c),
            _ => None,
        })
    }

    fn resets(&self) -> Vec<(u32, ErrorCode)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Reset {
                    stream,
                    code,
                    by_peer: false,
                } => Some((*stream, *code)),
                _ => None,
            })
            .collect()
    }

    /// The GOAWAY code in what the client wrote, if any.
    fn goaway(&self) -> Option<ErrorCode> {
        let mut dec = FrameDecoder::new();
        let mut rest = &self.out[..];
        if rest.starts_with(frame::PREFACE) {
            rest = &rest[frame::PREFACE.len()..];
        }
        while let (n, Ok(Some(f))) = dec.decode(rest) {
            if let frame::Frame::GoAway(g) = f {
                return Some(g.code);
            }
            rest = &rest[n..];
        }
        None
    }
}

#[test]
fn the_first_frame_must_be_settings() {
    let mut r = Raw::new(ClientConfig::default());
    let mut w = Vec::new();
    Ping {
        ack: false,
        data: [0; 8],
    }
    .encode(&mut w);
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::SettingsExpected));
    assert_eq!(r.goaway(), Some(ErrorCode::PROTOCOL_ERROR));
    assert!(r.client.is_closed());
    assert_eq!(r.feed(&w), 0, "nothing is taken once closed");
    let mut out = Vec::new();
    assert_eq!(
        r.client.open_stream(&get("/"), true, &mut out),
        Err(SendError::ConnectionClosed)
    );
}

#[test]
fn push_promise_and_frames_on_idle_streams_end_the_connection() {
    let mut r = Raw::started(&[]);
    let mut w = Vec::new();
    PushPromise {
        stream_id: 1,
        promised_stream_id: 2,
        fragment: &[0x82],
        end_headers: true,
        padding: None,
    }
    .encode(&mut w, 16_384)
    .unwrap();
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::PushPromise));

    for (stream, want) in [
        (3, ConnectionError::IdleStream(3)),
        (2, ConnectionError::IdleStream(2)),
    ] {
        let mut r = Raw::started(&[]);
        let mut w = Vec::new();
        Data::new(stream, b"x").encode(&mut w, 16_384).unwrap();
        r.feed(&w);
        assert_eq!(r.error(), Some(want));
    }
    let mut r = Raw::started(&[]);
    let w = r.headers(5, &[Field::new(":status", "200")], true);
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::StreamId(5)));
    let mut r = Raw::started(&[]);
    let mut w = Vec::new();
    RstStream {
        stream_id: 7,
        code: ErrorCode::CANCEL,
    }
    .encode(&mut w)
    .unwrap();
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::IdleStream(7)));
}

#[test]
fn malformed_responses_reset_their_stream() {
    let bad: [&[Field]; 6] = [
        &[Field::new("content-type", "text/plain")],
        &[Field::new(":status", "2000")],
        &[Field::new(":status", "200"), Field::new(":path", "/")],
        &[Field::new(":status", "200"), Field::new("Upper", "x")],
        &[Field::new(":status", "200"), Field::new("connection", "close")],
        &[Field::new(":status", "101")],
    ];
    for fields in bad {
        let mut r = Raw::started(&[]);
        let w = r.headers(1, fields, false);
        r.feed(&w);
        assert_eq!(r.resets(), [(1, ErrorCode::PROTOCOL_ERROR)], "{fields:?}");
        assert_eq!(r.error(), None);
    }
    // An interim response is skipped; one that ends the stream is
    // malformed.
    let mut r = Raw::started(&[]);
    let mut w = r.headers(1, &[Field::new(":status", "103")], false);
    w.extend(r.headers(1, &[Field::new(":status", "200")], true));
    r.feed(&w);
    assert_eq!(
        r.events,
        [Event::Response {
            stream: 1,
            status: 200,
            fields: vec![],
            end_stream: true
        }]
    );
    let mut r = Raw::started(&[]);
    let w = r.headers(1, &[Field::new(":status", "100")], true);
    r.feed(&w);
    assert_eq!(r.resets(), [(1, ErrorCode::PROTOCOL_ERROR)]);
    // Trailers without END_STREAM, or with a pseudo-header.
    for (fields, end) in [
        (vec![Field::new("x", "y")], false),
        (vec![Field::new(":status", "200")], true),
    ] {
        let mut r = Raw::started(&[]);
        let mut w = r.headers(1, &[Field::new(":status", "200")], false);
        w.extend(r.headers(1, &fields, end));
        r.feed(&w);
        assert_eq!(r.resets(), [(1, ErrorCode::PROTOCOL_ERROR)]);
    }
    // DATA before the response head.
    let mut r = Raw::started(&[]);
    let mut w = Vec::new();
    Data::new(1, b"early").encode(&mut w, 16_384).unwrap();
    r.feed(&w);
    assert_eq!(r.resets(), [(1, ErrorCode::PROTOCOL_ERROR)]);
    // DATA after END_STREAM.
    let mut r = Raw::started(&[]);
    let mut out = Vec::new();
    r.client.open_stream(&post("/"), false, &mut out).unwrap();
    let mut w = r.headers(3, &[Field::new(":status", "200")], true);
    Data::new(3, b"late").encode(&mut w, 16_384).unwrap();
    r.feed(&w);
    assert_eq!(r.error(), None);
    assert_eq!(r.resets(), [(3, ErrorCode::STREAM_CLOSED)]);
}

#[test]
fn a_server_that_ignores_the_windows() {
    // Past the stream's window: that stream is reset.
    let mut r = Raw::started(&[]);
    let mut w = r.headers(1, &[Field::new(":status", "200")], false);
    for _ in 0..4 {
        Data::new(1, &[0; 16_384]).encode(&mut w, 16_384).unwrap();
    }
    Data::new(1, &[0; 1000]).encode(&mut w, 16_384).unwrap();
    r.feed(&w);
    assert_eq!(r.resets(), [(1, ErrorCode::FLOW_CONTROL_ERROR)]);
    assert_eq!(r.error(), None);

    // Past the connection's window (65535 here): the connection ends.
    let mut r = Raw::new(ClientConfig {
        initial_window_size: 1 << 20,
        connection_window: 65_535,
        ..ClientConfig::default()
    });
    let mut w = Vec::new();
    frame::encode_settings(&mut w, &[], 16_384).unwrap();
    frame::encode_settings_ack(&mut w);
    r.feed(&w);
    let mut out = Vec::new();
    r.client.open_stream(&get("/"), true, &mut out).unwrap();
    let mut w = r.headers(1, &[Field::new(":status", "200")], false);
    for _ in 0..5 {
        Data::new(1, &[0; 16_384]).encode(&mut w, 16_384).unwrap();
    }
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::FlowControl));
    assert_eq!(r.goaway(), Some(ErrorCode::FLOW_CONTROL_ERROR));

    // A WINDOW_UPDATE past 2^31-1.
    let mut r = Raw::started(&[]);
    let mut w = Vec::new();
    WindowUpdate {
        stream_id: 0,
        increment: (1 << 31) - 1,
    }
    .encode(&mut w)
    .unwrap();
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::FlowControl));
}

#[test]
fn the_servers_initial_window_moves_open_streams() {
    let mut r = Raw::started(&[]);
    let mut out = Vec::new();
    let s = r.client.open_stream(&post("/"), false, &mut out).unwrap();
    assert_eq!(r.client.send_capacity(s), Some(65_535));
    let mut w = Vec::new();
    frame::encode_settings(&mut w, &[Setting::InitialWindowSize(100)], 16_384).unwrap();
    r.feed(&w);
    assert_eq!(r.client.send_capacity(s), Some(100));
    assert_eq!(r.client.send_data(s, &[0; 500], false, &mut out), Ok(100));
    let mut w = Vec::new();
    frame::encode_settings(&mut w, &[Setting::InitialWindowSize(1000)], 16_384).unwrap();
    r.feed(&w);
    assert!(r.events.contains(&Event::WindowOpened { stream: s }));
    assert_eq!(r.client.send_capacity(s), Some(900));
    assert!(r.client.peer_settings().initial_window_size == 1000);
}

#[test]
fn floods_and_bombs_from_the_server() {
    // A header block larger than the limit, across CONTINUATIONs.
    let mut r = Raw::new(ClientConfig {
        max_header_list_size: 1000,
        ..ClientConfig::default()
    });
    let mut w = Vec::new();
    frame::encode_settings(&mut w, &[], 16_384).unwrap();
    r.feed(&w);
    let mut out = Vec::new();
    r.client.open_stream(&get("/"), true, &mut out).unwrap();
    let mut w = Vec::new();
    let mut h = Headers::new(1, &[0x88; 600]);
    h.end_headers = false;
    h.encode(&mut w, 16_384).unwrap();
    Continuation {
        stream_id: 1,
        fragment: &[0x88; 600],
        end_headers: false,
    }
    .encode(&mut w, 16_384)
    .unwrap();
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::HeaderBlockTooLarge));
    assert_eq!(r.goaway(), Some(ErrorCode::ENHANCE_YOUR_CALM));

    // An HPACK bomb: one large entry, then many references to it.
    let mut r = Raw::started(&[]);
    // :status 200, a literal added to the table (3000 bytes, length
    // 127 + 2873 as an HPACK integer), then 30 references to it.
    let mut block = vec![0x88, 0x40, 6];
    block.extend_from_slice(b"x-bomb");
    block.extend_from_slice(&[0x7f, 0xb9, 0x16]);
    block.extend_from_slice(&[b'a'; 3000]);
    block.extend_from_slice(&[0xbe; 30]);
    assert!(block.len() < 4000);
    let mut w = Vec::new();
    Headers::new(1, &block).encode(&mut w, 16_384).unwrap();
    r.feed(&w);
    assert!(matches!(r.error(), Some(ConnectionError::Compression(_))));
    assert_eq!(r.goaway(), Some(ErrorCode::COMPRESSION_ERROR));

    // PING flood while we do not drain the output.
    let mut r = Raw::started(&[]);
    let mut w = Vec::new();
    for _ in 0..65 {
        Ping {
            ack: false,
            data: [1; 8],
        }
        .encode(&mut w);
    }
    r.out.push(0); // not drained
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::TooManyAcks));

    // Empty DATA frames.
    let mut r = Raw::started(&[]);
    let mut w = r.headers(1, &[Field::new(":status", "200")], false);
    for _ in 0..101 {
        Data::new(1, &[]).encode(&mut w, 16_384).unwrap();
    }
    r.feed(&w);
    assert_eq!(r.error(), Some(ConnectionError::TooManyEmptyFrames));
}

#[test]
fn a_goaway_with_an_error_and_incomplete_frames() {
    let mut r = Raw::started(&[Setting::MaxConcurrentStreams(1)]);
    let mut out = Vec::new();
    assert_eq!(
        r.client.open_stream(&get("/"), true, &mut out),
        Err(SendError::StreamLimit)
    );
    let mut w = Vec::new();
    GoAway {
        last_stream_id: 0,
        code: ErrorCode::ENHANCE_YOUR_CALM,
        debug_data: b"bye",
    }
    .encode(&mut w, 16_384)
    .unwrap();
    // All but the last byte: nothing is taken.
    assert_eq!(r.feed(&w[..w.len() - 1]), 0);
    assert_eq!(r.feed(&w), w.len());
    assert_eq!(
        r.events,
        [
            Event::GoAway {
                last_stream_id: 0,
                code: ErrorCode::ENHANCE_YOUR_CALM,
                debug_data: b"bye".to_vec()
            },
            Event::Reset {
                stream: 1,
                code: ErrorCode::REFUSED_STREAM,
                by_peer: true
            },
        ]
    );
    assert!(r.client.is_finished());
}
