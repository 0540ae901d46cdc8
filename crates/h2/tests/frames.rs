//! The frame layer against RFC 9113 §4 and §6: round trips of every frame
//! type, every parse rule with its error code and scope, the decoder's
//! incremental behaviour and limits, and the client preface.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_h2::frame::{
    Continuation, DEFAULT_MAX_FRAME_SIZE, Data, Frame, FrameDecoder, FrameHeader, FrameKind, GoAway, Headers,
    MAX_FRAME_SIZE_LIMIT, MAX_STREAM_ID, PREFACE, Ping, PrefaceMatcher, Priority, PushPromise, RstStream,
    Setting, Settings, StreamDependency, UnknownFrame, WindowUpdate, encode_settings, encode_settings_ack,
    flags,
};
use tether_h2::{Error, ErrorCode, Misuse, Violation};

const MAX: u32 = DEFAULT_MAX_FRAME_SIZE;

/// A frame's bytes written by hand, independent of the encoders.
fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes exactly one frame from `bytes` with a fresh decoder.
fn decode_one(bytes: &[u8]) -> Result<Frame<'_>, Error> {
    let (used, result) = FrameDecoder::new().decode(bytes);
    let frame = result?.expect("a whole frame");
    assert_eq!(used, bytes.len());
    Ok(frame)
}

fn conn(code: ErrorCode, violation: Violation) -> Error {
    Error::Connection { code, violation }
}

fn stream(id: u32, code: ErrorCode, violation: Violation) -> Error {
    Error::Stream {
        stream: id,
        code,
        violation,
    }
}

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out, MAX).expect("encodable");
    out
}

/// Encodes `frame`, checks the bytes against `wire`, and decodes them back.
fn round_trip(frame: Frame<'_>, wire: &[u8]) {
    let out = encoded(&frame);
    assert_eq!(out, wire, "encoding of {frame:?}");
    assert_eq!(decode_one(&out), Ok(frame));
}

// ---- round trips, checked against hand-written wire bytes ----

#[test]
fn data_round_trips() {
    let mut d = Data::new(1, b"hi");
    round_trip(Frame::Data(d), &raw(0, 0, 1, b"hi"));
    d.end_stream = true;
    round_trip(Frame::Data(d), &raw(0, flags::END_STREAM, 1, b"hi"));
    d.padding = Some(3);
    round_trip(Frame::Data(d), &raw(0, 0x9, 1, &[3, b'h', b'i', 0, 0, 0]));
    assert_eq!(d.flow_controlled_len(), 6);
    // Padding with no data at all, and an empty padding.
    let empty = Data {
        data: b"",
        padding: Some(0),
        ..d
    };
    round_trip(Frame::Data(empty), &raw(0, 0x9, 1, &[0]));
    let all_pad = Data {
        data: b"",
        padding: Some(2),
        ..d
    };
    round_trip(Frame::Data(all_pad), &raw(0, 0x9, 1, &[2, 0, 0]));
    round_trip(
        Frame::Data(Data::new(MAX_STREAM_ID, &[])),
        &raw(0, 0, MAX_STREAM_ID, &[]),
    );
}

#[test]
fn headers_round_trip() {
    let mut h = Headers::new(3, b"\x82\x86");
    round_trip(Frame::Headers(h), &raw(1, flags::END_HEADERS, 3, b"\x82\x86"));
    h.end_stream = true;
    h.end_headers = false;
    round_trip(Frame::Headers(h), &raw(1, flags::END_STREAM, 3, b"\x82\x86"));
    h.priority = Some(StreamDependency {
        exclusive: true,
        stream_id: 1,
        weight: 15,
    });
    h.padding = Some(1);
    round_trip(
        Frame::Headers(h),
        &raw(1, 0x29, 3, &[1, 0x80, 0, 0, 1, 15, 0x82, 0x86, 0]),
    );
    h.priority = Some(StreamDependency {
        exclusive: false,
        stream_id: MAX_STREAM_ID,
        weight: 255,
    });
    h.padding = None;
    round_trip(
        Frame::Headers(h),
        &raw(1, 0x21, 3, &[0x7f, 0xff, 0xff, 0xff, 255, 0x82, 0x86]),
    );
}

#[test]
fn fixed_size_frames_round_trip() {
    let p = Priority {
        stream_id: 5,
        dependency: StreamDependency {
            exclusive: true,
            stream_id: 3,
            weight: 200,
        },
    };
    round_trip(Frame::Priority(p), &raw(2, 0, 5, &[0x80, 0, 0, 3, 200]));
    let r = RstStream {
        stream_id: 7,
        code: ErrorCode::CANCEL,
    };
    round_trip(Frame::RstStream(r), &raw(3, 0, 7, &[0, 0, 0, 8]));
    let r = RstStream {
        stream_id: 7,
        code: ErrorCode(0xdead_beef),
    };
    round_trip(Frame::RstStream(r), &raw(3, 0, 7, &[0xde, 0xad, 0xbe, 0xef]));
    let ping = Ping {
        ack: false,
        data: *b"12345678",
    };
    round_trip(Frame::Ping(ping), &raw(6, 0, 0, b"12345678"));
    round_trip(
        Frame::Ping(Ping { ack: true, ..ping }),
        &raw(6, flags::ACK, 0, b"12345678"),
    );
    let w = WindowUpdate {
        stream_id: 0,
        increment: 1,
    };
    round_trip(Frame::WindowUpdate(w), &raw(8, 0, 0, &[0, 0, 0, 1]));
    let w = WindowUpdate {
        stream_id: 9,
        increment: (1 << 31) - 1,
    };
    round_trip(Frame::WindowUpdate(w), &raw(8, 0, 9, &[0x7f, 0xff, 0xff, 0xff]));
}

#[test]
fn goaway_round_trips() {
    let g = GoAway {
        last_stream_id: 41,
        code: ErrorCode::ENHANCE_YOUR_CALM,
        debug_data: b"slow down",
    };
    let mut payload = vec![0, 0, 0, 41, 0, 0, 0, 0xb];
    payload.extend_from_slice(b"slow down");
    round_trip(Frame::GoAway(g), &raw(7, 0, 0, &payload));
    let g = GoAway { debug_data: b"", ..g };
    round_trip(Frame::GoAway(g), &raw(7, 0, 0, &payload[..8]));
}

#[test]
fn push_promise_and_continuation_round_trip() {
    let p = PushPromise {
        stream_id: 1,
        promised_stream_id: 2,
        fragment: b"\x82",
        end_headers: true,
        padding: None,
    };
    round_trip(
        Frame::PushPromise(p),
        &raw(5, flags::END_HEADERS, 1, &[0, 0, 0, 2, 0x82]),
    );
    let p = PushPromise {
        padding: Some(2),
        end_headers: false,
        ..p
    };
    round_trip(
        Frame::PushPromise(p),
        &raw(5, flags::PADDED, 1, &[2, 0, 0, 0, 2, 0x82, 0, 0]),
    );
    let c = Continuation {
        stream_id: 1,
        fragment: b"\x84",
        end_headers: true,
    };
    let mut out = Vec::new();
    c.encode(&mut out, MAX).unwrap();
    assert_eq!(out, raw(9, flags::END_HEADERS, 1, b"\x84"));
    // A CONTINUATION alone is refused by the decoder (see below), but
    // parses on its own.
    let header = FrameHeader::decode(&out).unwrap();
    assert_eq!(Frame::parse(header, &out[9..]), Ok(Frame::Continuation(c)));
}

#[test]
fn settings_round_trip() {
    let list = [
        Setting::HeaderTableSize(0),
        Setting::EnablePush(false),
        Setting::MaxConcurrentStreams(100),
        Setting::InitialWindowSize((1 << 31) - 1),
        Setting::MaxFrameSize(MAX_FRAME_SIZE_LIMIT),
        Setting::MaxHeaderListSize(8192),
        Setting::EnableConnectProtocol(true),
        Setting::Unknown { id: 0x7, value: 9 },
        Setting::Unknown {
            id: 0xfafa,
            value: u32::MAX,
        },
    ];
    let mut out = Vec::new();
    encode_settings(&mut out, &list, MAX).unwrap();
    let payload: Vec<u8> = [
        (1u16, 0u32),
        (2, 0),
        (3, 100),
        (4, 0x7fff_ffff),
        (5, 0xff_ffff),
        (6, 8192),
        (8, 1),
        (7, 9),
        (0xfafa, u32::MAX),
    ]
    .iter()
    .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
    .collect();
    assert_eq!(out, raw(4, 0, 0, &payload));
    let Ok(Frame::Settings(s)) = decode_one(&out) else {
        panic!()
    };
    assert!(!s.is_ack());
    assert_eq!(s.iter().collect::<Vec<_>>(), list);
    assert_eq!(encoded(&Frame::Settings(s)), out);

    let mut ack = Vec::new();
    encode_settings_ack(&mut ack);
    assert_eq!(ack, raw(4, flags::ACK, 0, &[]));
    let Ok(Frame::Settings(s)) = decode_one(&ack) else {
        panic!()
    };
    assert!(s.is_ack());
    assert_eq!(s.iter().count(), 0);
    assert_eq!(encoded(&Frame::Settings(s)), ack);
}

#[test]
fn unknown_types_are_surfaced_whole() {
    let bytes = raw(0xfa, 0xff, 0x8000_0003, b"ext");
    let frame = decode_one(&bytes).unwrap();
    let expected = UnknownFrame {
        kind: 0xfa,
        flags: 0xff,
        stream_id: 3,
        payload: b"ext",
    };
    assert_eq!(frame, Frame::Unknown(expected));
    assert_eq!(frame.kind(), FrameKind::Unknown(0xfa));
    assert_eq!(frame.stream_id(), 3);
    // Re-encoded without the reserved bit.
    assert_eq!(encoded(&frame), raw(0xfa, 0xff, 3, b"ext"));
    // 0xa is the first type RFC 9113 leaves undefined.
    assert!(matches!(decode_one(&raw(0xa, 0, 0, b"")), Ok(Frame::Unknown(_))));
}

#[test]
fn unknown_flags_are_ignored() {
    // Every flag bit but END_STREAM and PADDED on a DATA frame.
    let bytes = raw(0, 0xf6, 1, b"x");
    let frame = decode_one(&bytes).unwrap();
    assert_eq!(frame, Frame::Data(Data::new(1, b"x")));
    // PING reads ACK only.
    let bytes = raw(6, 0xfe, 0, &[0; 8]);
    let frame = decode_one(&bytes).unwrap();
    assert_eq!(
        frame,
        Frame::Ping(Ping {
            ack: false,
            data: [0; 8]
        })
    );
    // Flags on types that define none.
    let bytes = raw(3, 0xff, 1, &[0, 0, 0, 0]);
    let frame = decode_one(&bytes).unwrap();
    assert_eq!(
        frame,
        Frame::RstStream(RstStream {
            stream_id: 1,
            code: ErrorCode::NO_ERROR
        })
    );
    let bytes = raw(8, 0xff, 1, &[0, 0, 0, 1]);
    let frame = decode_one(&bytes).unwrap();
    assert_eq!(frame.kind(), FrameKind::WindowUpdate);
    // A SETTINGS frame with flags other than ACK is not an ACK.
    let bytes = raw(4, 0xfe, 0, &[]);
    let Ok(Frame::Settings(s)) = decode_one(&bytes) else {
        panic!()
    };
    assert!(!s.is_ack());
}

#[test]
fn reserved_bits_are_ignored() {
    let bytes = raw(8, 0, 0x8000_0001, &[0x80, 0, 0, 5]);
    let Ok(Frame::WindowUpdate(w)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!((w.stream_id, w.increment), (1, 5));
    let bytes = raw(7, 0, 0, &[0x80, 0, 0, 7, 0, 0, 0, 0]);
    let Ok(Frame::GoAway(g)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!(g.last_stream_id, 7);
    let bytes = raw(5, 4, 1, &[0x80, 0, 0, 2]);
    let Ok(Frame::PushPromise(p)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!(p.promised_stream_id, 2);
}

// ---- stream identifier rules ----

#[test]
fn stream_frames_on_stream_zero_are_connection_errors() {
    let zero = conn(ErrorCode::PROTOCOL_ERROR, Violation::StreamIdZero);
    for (kind, payload) in [
        (0u8, &b"x"[..]),
        (1, b"x"),
        (2, &[0, 0, 0, 1, 0]),
        (3, &[0, 0, 0, 0]),
        (5, &[0, 0, 0, 2]),
    ] {
        assert_eq!(
            decode_one(&raw(kind, flags::END_HEADERS, 0, payload)),
            Err(zero),
            "type {kind}"
        );
    }
    // CONTINUATION on its own (the decoder would refuse it for coming
    // outside a field block first).
    let h = FrameHeader::decode(&raw(9, 0, 0, b"")).unwrap();
    assert_eq!(Frame::parse(h, b""), Err(zero));
    // Stream 0 wins over the length rules.
    assert_eq!(decode_one(&raw(2, 0, 0, &[0; 4])), Err(zero));
    assert_eq!(decode_one(&raw(3, 0, 0, &[0; 3])), Err(zero));
}

#[test]
fn connection_frames_on_a_stream_are_connection_errors() {
    let nonzero = conn(ErrorCode::PROTOCOL_ERROR, Violation::StreamIdNonZero);
    assert_eq!(decode_one(&raw(4, 0, 1, &[])), Err(nonzero));
    assert_eq!(decode_one(&raw(6, 0, 1, &[0; 8])), Err(nonzero));
    assert_eq!(decode_one(&raw(7, 0, 1, &[0; 8])), Err(nonzero));
}

// ---- padding ----

#[test]
fn data_padding_must_fit() {
    let pad = conn(ErrorCode::PROTOCOL_ERROR, Violation::PaddingTooLong);
    // Pad Length equal to the payload length (Pad Length octet included).
    assert_eq!(decode_one(&raw(0, flags::PADDED, 1, &[3, b'a', b'b'])), Err(pad));
    assert_eq!(decode_one(&raw(0, flags::PADDED, 1, &[255])), Err(pad));
    assert_eq!(decode_one(&raw(0, flags::PADDED, 1, &[1])), Err(pad));
    // One less fits, leaving no data.
    let bytes = raw(0, flags::PADDED, 1, &[2, b'a', b'b']);
    let Ok(Frame::Data(d)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!((d.data, d.padding), (&b""[..], Some(2)));
    // PADDED with no room for the Pad Length itself.
    assert_eq!(
        decode_one(&raw(0, flags::PADDED, 1, &[])),
        Err(conn(ErrorCode::FRAME_SIZE_ERROR, Violation::PayloadTooShort))
    );
}

#[test]
fn headers_padding_and_priority_must_fit() {
    let pad = conn(ErrorCode::PROTOCOL_ERROR, Violation::PaddingTooLong);
    let short = conn(ErrorCode::FRAME_SIZE_ERROR, Violation::PayloadTooShort);
    assert_eq!(decode_one(&raw(1, flags::PADDED | 4, 1, &[2, 0x82])), Err(pad));
    assert_eq!(decode_one(&raw(1, flags::PADDED | 4, 1, &[])), Err(short));
    // The padding fits the payload, but not once the priority fields are
    // taken out of it.
    let payload = [3, 0, 0, 0, 0, 16, 0x82];
    assert_eq!(decode_one(&raw(1, 0x2c, 1, &payload)), Err(pad));
    let bytes = raw(1, 0x2c, 1, &[1, 0, 0, 0, 0, 16, 0x82]);
    let Ok(Frame::Headers(h)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!(h.fragment, b"");
    // PRIORITY with fewer than 5 octets.
    assert_eq!(
        decode_one(&raw(1, flags::PRIORITY | 4, 1, &[0, 0, 0, 0])),
        Err(short)
    );
    assert_eq!(decode_one(&raw(1, 0x2c, 1, &[0, 0, 0, 0, 0])), Err(short));
}

#[test]
fn headers_priority_fields_are_parsed_and_kept_out_of_the_fragment() {
    let bytes = raw(1, 0x24, 3, &[0, 0, 0, 1, 7, 0x82, 0x84]);
    let Ok(Frame::Headers(h)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!(h.fragment, b"\x82\x84");
    assert_eq!(
        h.priority,
        Some(StreamDependency {
            exclusive: false,
            stream_id: 1,
            weight: 7
        })
    );
    // A self-dependency in HEADERS is left to the connection, which must
    // decode the block anyway.
    let bytes = raw(1, 0x24, 3, &[0, 0, 0, 3, 7, 0x82]);
    let Ok(Frame::Headers(h)) = decode_one(&bytes) else {
        panic!()
    };
    assert_eq!(h.priority.unwrap().stream_id, h.stream_id);
}

#[test]
fn push_promise_rules() {
    let short = conn(ErrorCode::FRAME_SIZE_ERROR, Violation::PayloadTooShort);
    assert_eq!(decode_one(&raw(5, 4, 1, &[0, 0, 2])), Err(short));
    assert_eq!(decode_one(&raw(5, 0xc, 1, &[0, 0, 0, 2])), Err(short));
    assert_eq!(
        decode_one(&raw(5, 0xc, 1, &[2, 0, 0, 0, 2, 0x82])),
        Err(conn(ErrorCode::PROTOCOL_ERROR, Violation::PaddingTooLong))
    );
    assert_eq!(
        decode_one(&raw(5, 4, 1, &[0, 0, 0, 0])),
        Err(conn(ErrorCode::PROTOCOL_ERROR, Violation::PromisedStreamIdZero))
    );
}

// ---- fixed lengths ----

#[test]
fn priority_length_is_a_stream_error() {
    for len in [0, 4, 6] {
        assert_eq!(
            decode_one(&raw(2, 0, 7, &vec![0; len])),
            Err(stream(7, ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength)),
            "length {len}"
        );
    }
}

#[test]
fn priority_on_itself_is_a_stream_error() {
    assert_eq!(
        decode_one(&raw(2, 0, 7, &[0x80, 0, 0, 7, 0])),
        Err(stream(7, ErrorCode::PROTOCOL_ERROR, Violation::SelfDependency))
    );
}

#[test]
fn rst_stream_ping_window_update_lengths() {
    let size = conn(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength);
    for len in [0, 3, 5] {
        assert_eq!(
            decode_one(&raw(3, 0, 1, &vec![0; len])),
            Err(size),
            "RST_STREAM {len}"
        );
        assert_eq!(
            decode_one(&raw(8, 0, 1, &vec![1; len])),
            Err(size),
            "WINDOW_UPDATE {len}"
        );
        assert_eq!(
            decode_one(&raw(8, 0, 0, &vec![1; len])),
            Err(size),
            "WINDOW_UPDATE {len}"
        );
    }
    for len in [0, 7, 9] {
        assert_eq!(decode_one(&raw(6, 0, 0, &vec![0; len])), Err(size), "PING {len}");
    }
}

#[test]
fn goaway_needs_eight_octets() {
    for len in 0..8 {
        assert_eq!(
            decode_one(&raw(7, 0, 0, &vec![0; len])),
            Err(conn(ErrorCode::FRAME_SIZE_ERROR, Violation::PayloadTooShort))
        );
    }
}

#[test]
fn zero_window_increment_scope_follows_the_stream() {
    let v = Violation::ZeroWindowIncrement;
    assert_eq!(
        decode_one(&raw(8, 0, 0, &[0, 0, 0, 0])),
        Err(conn(ErrorCode::PROTOCOL_ERROR, v))
    );
    assert_eq!(
        decode_one(&raw(8, 0, 5, &[0, 0, 0, 0])),
        Err(stream(5, ErrorCode::PROTOCOL_ERROR, v))
    );
    // Only the reserved bit set is still an increment of 0.
    assert_eq!(
        decode_one(&raw(8, 0, 5, &[0x80, 0, 0, 0])),
        Err(stream(5, ErrorCode::PROTOCOL_ERROR, v))
    );
}

// ---- SETTINGS ----

fn settings_payload(pairs: &[(u16, u32)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect()
}

#[test]
fn settings_length_rules() {
    for len in [1, 5, 7, 11] {
        assert_eq!(
            decode_one(&raw(4, 0, 0, &vec![0; len])),
            Err(conn(ErrorCode::FRAME_SIZE_ERROR, Violation::SettingsLength)),
            "length {len}"
        );
    }
    // An ACK with a well-formed payload is still refused.
    assert_eq!(
        decode_one(&raw(4, flags::ACK, 0, &settings_payload(&[(1, 0)]))),
        Err(conn(
            ErrorCode::FRAME_SIZE_ERROR,
            Violation::SettingsAckWithPayload
        ))
    );
}

#[test]
fn settings_value_ranges() {
    let bad = |id: u16, value: u32, code: ErrorCode| {
        assert_eq!(
            decode_one(&raw(4, 0, 0, &settings_payload(&[(1, 1), (id, value)]))),
            Err(conn(code, Violation::InvalidSetting(id))),
            "{id} = {value}"
        );
        assert_eq!(
            Setting::from_pair(id, value),
            Err(conn(code, Violation::InvalidSetting(id)))
        );
    };
    let good = |id: u16, value: u32| {
        let bytes = raw(4, 0, 0, &settings_payload(&[(id, value)]));
        let Ok(Frame::Settings(s)) = decode_one(&bytes) else {
            panic!("{id} = {value}")
        };
        let only = s.iter().collect::<Vec<_>>();
        assert_eq!((only[0].id(), only[0].value()), (id, value));
    };
    for id in [Setting::ENABLE_PUSH, Setting::ENABLE_CONNECT_PROTOCOL] {
        good(id, 0);
        good(id, 1);
        bad(id, 2, ErrorCode::PROTOCOL_ERROR);
        bad(id, u32::MAX, ErrorCode::PROTOCOL_ERROR);
    }
    good(Setting::INITIAL_WINDOW_SIZE, (1 << 31) - 1);
    bad(
        Setting::INITIAL_WINDOW_SIZE,
        1 << 31,
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    bad(
        Setting::INITIAL_WINDOW_SIZE,
        u32::MAX,
        ErrorCode::FLOW_CONTROL_ERROR,
    );
    good(Setting::MAX_FRAME_SIZE, 16_384);
    good(Setting::MAX_FRAME_SIZE, 16_777_215);
    bad(Setting::MAX_FRAME_SIZE, 16_383, ErrorCode::PROTOCOL_ERROR);
    bad(Setting::MAX_FRAME_SIZE, 16_777_216, ErrorCode::PROTOCOL_ERROR);
    bad(Setting::MAX_FRAME_SIZE, 0, ErrorCode::PROTOCOL_ERROR);
    for id in [
        Setting::HEADER_TABLE_SIZE,
        Setting::MAX_CONCURRENT_STREAMS,
        Setting::MAX_HEADER_LIST_SIZE,
    ] {
        good(id, 0);
        good(id, u32::MAX);
    }
}

#[test]
fn settings_defaults_and_application() {
    let d = Settings::default();
    assert_eq!(d, Settings::DEFAULT);
    assert_eq!(d.header_table_size, 4096);
    assert!(d.enable_push);
    assert_eq!(d.max_concurrent_streams, None);
    assert_eq!(d.initial_window_size, 65_535);
    assert_eq!(d.max_frame_size, 16_384);
    assert_eq!(d.max_header_list_size, None);
    assert!(!d.enable_connect_protocol);

    let pairs = [
        (2, 0),
        (0x99, 5),
        (3, 10),
        (8, 1),
        (4, 1),
        (4, 2),
        (5, 20_000),
        (6, 100),
        (1, 0),
        (0, 7),
    ];
    let bytes = raw(4, 0, 0, &settings_payload(&pairs));
    let Ok(Frame::Settings(frame)) = decode_one(&bytes) else {
        panic!()
    };
    let mut s = Settings::default();
    s.apply_frame(&frame);
    let expected = Settings {
        header_table_size: 0,
        enable_push: false,
        max_concurrent_streams: Some(10),
        // The last value of a repeated identifier holds (§6.5.3).
        initial_window_size: 2,
        max_frame_size: 20_000,
        max_header_list_size: Some(100),
        enable_connect_protocol: true,
    };
    assert_eq!(s, expected);
    // Unknown identifiers come out of the iterator but change nothing.
    assert!(frame.iter().any(|x| x == Setting::Unknown { id: 0x99, value: 5 }));
    let mut t = Settings::default();
    t.apply(Setting::Unknown { id: 0x99, value: 5 });
    assert_eq!(t, Settings::default());
}

// ---- encoders check what they are given ----

#[test]
fn encoders_refuse_frames_over_the_maximum_without_writing() {
    let big = vec![0; MAX as usize + 1];
    let mut out = vec![0xee];
    let too_large = |len| Error::Misuse(Misuse::FrameTooLarge { len, max: MAX });
    assert_eq!(
        Data::new(1, &big).encode(&mut out, MAX),
        Err(too_large(MAX as usize + 1))
    );
    assert_eq!(
        Headers::new(1, &big).encode(&mut out, MAX),
        Err(too_large(MAX as usize + 1))
    );
    // Padding and priority fields count.
    let fits = &big[..MAX as usize];
    let mut d = Data::new(1, fits);
    d.encode(&mut out, MAX).unwrap();
    out.truncate(1);
    d.padding = Some(0);
    assert_eq!(d.encode(&mut out, MAX), Err(too_large(MAX as usize + 1)));
    let mut h = Headers::new(1, &big[..MAX as usize - 4]);
    h.priority = Some(StreamDependency {
        exclusive: false,
        stream_id: 0,
        weight: 0,
    });
    assert_eq!(h.encode(&mut out, MAX), Err(too_large(MAX as usize + 1)));
    let c = Continuation {
        stream_id: 1,
        fragment: &big,
        end_headers: true,
    };
    assert_eq!(c.encode(&mut out, MAX), Err(too_large(MAX as usize + 1)));
    let g = GoAway {
        last_stream_id: 0,
        code: ErrorCode::NO_ERROR,
        debug_data: &big[..MAX as usize - 7],
    };
    assert_eq!(g.encode(&mut out, MAX), Err(too_large(MAX as usize + 1)));
    let many = vec![Setting::HeaderTableSize(0); 2731];
    assert_eq!(encode_settings(&mut out, &many, MAX), Err(too_large(2731 * 6)));
    assert_eq!(out, [0xee]);
    // A larger maximum lets the same frame through.
    Data::new(1, &big).encode(&mut out, MAX * 2).unwrap();
    assert_eq!(out.len(), 1 + 9 + big.len());
}

#[test]
fn encoders_refuse_values_the_peer_would_refuse() {
    let mut out = Vec::new();
    let bad_id = Err(Error::Misuse(Misuse::InvalidStreamId));
    let bad_value = Err(Error::Misuse(Misuse::InvalidValue));
    assert_eq!(Data::new(0, b"").encode(&mut out, MAX), bad_id);
    assert_eq!(Data::new(MAX_STREAM_ID + 1, b"").encode(&mut out, MAX), bad_id);
    assert_eq!(Headers::new(0, b"").encode(&mut out, MAX), bad_id);
    let rst = RstStream {
        stream_id: 0,
        code: ErrorCode::CANCEL,
    };
    assert_eq!(rst.encode(&mut out), bad_id);
    let dep = StreamDependency {
        exclusive: false,
        stream_id: 3,
        weight: 0,
    };
    assert_eq!(
        Priority {
            stream_id: 3,
            dependency: dep
        }
        .encode(&mut out),
        bad_id
    );
    assert_eq!(
        Priority {
            stream_id: 0,
            dependency: dep
        }
        .encode(&mut out),
        bad_id
    );
    let promise = PushPromise {
        stream_id: 1,
        promised_stream_id: 0,
        fragment: b"",
        end_headers: true,
        padding: None,
    };
    assert_eq!(promise.encode(&mut out, MAX), bad_id);
    let w = WindowUpdate {
        stream_id: 1,
        increment: 0,
    };
    assert_eq!(w.encode(&mut out), bad_value);
    let w = WindowUpdate {
        stream_id: 1,
        increment: 1 << 31,
    };
    assert_eq!(w.encode(&mut out), bad_value);
    for s in [
        Setting::MaxFrameSize(100),
        Setting::InitialWindowSize(1 << 31),
        Setting::Unknown { id: 2, value: 1 },
    ] {
        assert_eq!(encode_settings(&mut out, &[s], MAX), bad_value, "{s:?}");
    }
    let u = UnknownFrame {
        kind: 3,
        flags: 0,
        stream_id: 1,
        payload: b"",
    };
    assert_eq!(
        u.encode(&mut out, MAX),
        Err(Error::Misuse(Misuse::KnownFrameType))
    );
    assert!(out.is_empty());
    // `Frame::parse` with a payload of another length than the header's.
    let h = FrameHeader::decode(&raw(0, 0, 1, b"ab")).unwrap();
    assert_eq!(Frame::parse(h, b"a"), Err(Error::Misuse(Misuse::LengthMismatch)));
}

// ---- the decoder ----

#[test]
fn a_huge_length_is_refused_from_the_header_alone() {
    // 16 MiB - 1 announced, 16 KiB allowed: nine bytes are enough to say no.
    let header = [0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1];
    let mut decoder = FrameDecoder::new();
    for n in 0..9 {
        assert_eq!(decoder.decode(&header[..n]), (0, Ok(None)));
    }
    let too_large = conn(ErrorCode::FRAME_SIZE_ERROR, Violation::FrameTooLarge);
    assert_eq!(decoder.decode(&header), (0, Err(too_large)));
    // It stays refused.
    assert_eq!(decoder.decode(&raw(6, 0, 0, &[0; 8])), (0, Err(too_large)));
}

#[test]
fn the_limit_is_our_max_frame_size() {
    let at_limit = raw(0, 0, 1, &vec![7; 16_384]);
    let over = raw(0, 0, 1, &vec![7; 16_385]);
    assert!(decode_one(&at_limit).is_ok());
    let mut decoder = FrameDecoder::new();
    assert_eq!(
        decoder.decode(&over[..9]),
        (
            0,
            Err(conn(ErrorCode::FRAME_SIZE_ERROR, Violation::FrameTooLarge))
        )
    );
    let mut decoder = FrameDecoder::new();
    decoder.set_max_frame_size(16_385).unwrap();
    assert_eq!(decoder.max_frame_size(), 16_385);
    assert_eq!(decoder.decode(&over[..9]), (0, Ok(None)));
    assert!(matches!(
        decoder.decode(&over),
        (16_394, Ok(Some(Frame::Data(_))))
    ));
    let range = Err(Error::Misuse(Misuse::MaxFrameSizeOutOfRange));
    assert_eq!(decoder.set_max_frame_size(16_383), range);
    assert_eq!(decoder.set_max_frame_size(1 << 24), range);
    assert_eq!(decoder.max_frame_size(), 16_385);
    decoder.set_max_frame_size(MAX_FRAME_SIZE_LIMIT).unwrap();
}

#[test]
fn a_stream_error_skips_the_frame_and_decoding_goes_on() {
    let mut wire = raw(2, 0, 3, &[0; 4]);
    wire.extend(raw(8, 0, 5, &[0; 4]));
    wire.extend(raw(6, 0, 0, b"abcdefgh"));
    let mut decoder = FrameDecoder::new();
    let (used, result) = decoder.decode(&wire);
    assert_eq!(
        (used, result),
        (
            13,
            Err(stream(3, ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength))
        )
    );
    let (used2, result) = decoder.decode(&wire[used..]);
    assert_eq!(
        (used2, result),
        (
            13,
            Err(stream(
                5,
                ErrorCode::PROTOCOL_ERROR,
                Violation::ZeroWindowIncrement
            ))
        )
    );
    let (_, result) = decoder.decode(&wire[used + used2..]);
    assert!(matches!(result, Ok(Some(Frame::Ping(_)))));
}

#[test]
fn a_connection_error_ends_decoding() {
    let mut wire = raw(6, 0, 0, &[0; 7]);
    wire.extend(raw(6, 0, 0, &[0; 8]));
    let mut decoder = FrameDecoder::new();
    let error = conn(ErrorCode::FRAME_SIZE_ERROR, Violation::WrongLength);
    assert_eq!(decoder.decode(&wire), (0, Err(error)));
    assert_eq!(decoder.decode(&wire[16..]), (0, Err(error)));
}

#[test]
fn field_blocks_are_contiguous() {
    let open = raw(1, 0, 1, b"\x82");
    let cont = |stream, flags| raw(9, flags, stream, b"\x84");
    let expect = |stream| conn(ErrorCode::PROTOCOL_ERROR, Violation::ExpectedContinuation(stream));
    // Any other frame, of any type or stream, inside the block.
    for interloper in [
        raw(0, 0, 1, b"x"),
        raw(6, 0, 0, &[0; 8]),
        raw(0xfa, 0, 0, b""),
        raw(1, 4, 3, b""),
        cont(3, 4),
    ] {
        let mut d = FrameDecoder::new();
        assert!(matches!(d.decode(&open), (10, Ok(Some(_)))));
        assert_eq!(d.open_field_block(), Some(1));
        // Refused from the header alone.
        assert_eq!(d.decode(&interloper[..9]), (0, Err(expect(1))));
    }
    // A CONTINUATION with no open block.
    let unexpected = conn(ErrorCode::PROTOCOL_ERROR, Violation::UnexpectedContinuation);
    assert_eq!(FrameDecoder::new().decode(&cont(1, 4)), (0, Err(unexpected)));
    // HEADERS, CONTINUATION, CONTINUATION with END_HEADERS, then anything.
    let mut wire = open.clone();
    wire.extend(cont(1, 0));
    wire.extend(cont(1, flags::END_HEADERS));
    wire.extend(raw(0, 0, 1, b"body"));
    wire.extend(cont(1, 0));
    let mut d = FrameDecoder::new();
    let mut at = 0;
    for expected_open in [Some(1), Some(1), None, None] {
        let (used, result) = d.decode(&wire[at..]);
        assert!(result.unwrap().is_some());
        assert_eq!(d.open_field_block(), expected_open);
        at += used;
    }
    // The block is closed: one more CONTINUATION is out of place.
    assert_eq!(d.decode(&wire[at..]), (0, Err(unexpected)));
    // PUSH_PROMISE opens a block too.
    let mut d = FrameDecoder::new();
    let (used, _) = d.decode(&raw(5, 0, 1, &[0, 0, 0, 2]));
    assert_eq!((used, d.open_field_block()), (13, Some(1)));
    assert_eq!(d.decode(&raw(8, 0, 0, &[0, 0, 0, 1])), (0, Err(expect(1))));
}

/// A stream of one frame of every kind, with padding, priority, a field
/// block in three frames and an unknown type.
fn sample_stream() -> Vec<u8> {
    let mut wire = Vec::new();
    let mut out = |frame: Frame<'_>| frame.encode(&mut wire, MAX).unwrap();
    let mut list = Vec::new();
    encode_settings(
        &mut list,
        &[
            Setting::MaxConcurrentStreams(10),
            Setting::EnableConnectProtocol(true),
        ],
        MAX,
    )
    .unwrap();
    out(decode_one(&list).unwrap());
    let mut h = Headers::new(1, b"\x82\x86\x84");
    h.end_headers = false;
    h.padding = Some(4);
    h.priority = Some(StreamDependency {
        exclusive: true,
        stream_id: 0,
        weight: 9,
    });
    out(Frame::Headers(h));
    out(Frame::Continuation(Continuation {
        stream_id: 1,
        fragment: b"\x41\x01a",
        end_headers: false,
    }));
    out(Frame::Continuation(Continuation {
        stream_id: 1,
        fragment: b"",
        end_headers: true,
    }));
    out(Frame::Data(Data {
        stream_id: 1,
        data: b"hello",
        end_stream: true,
        padding: Some(7),
    }));
    out(Frame::Priority(Priority {
        stream_id: 3,
        dependency: StreamDependency {
            exclusive: false,
            stream_id: 1,
            weight: 0,
        },
    }));
    out(Frame::RstStream(RstStream {
        stream_id: 3,
        code: ErrorCode::REFUSED_STREAM,
    }));
    out(Frame::PushPromise(PushPromise {
        stream_id: 1,
        promised_stream_id: 2,
        fragment: b"\x82",
        end_headers: true,
        padding: Some(1),
    }));
    out(Frame::Ping(Ping {
        ack: true,
        data: [1, 2, 3, 4, 5, 6, 7, 8],
    }));
    out(Frame::WindowUpdate(WindowUpdate {
        stream_id: 0,
        increment: 1 << 20,
    }));
    out(Frame::Unknown(UnknownFrame {
        kind: 0x10,
        flags: 0x3,
        stream_id: 9,
        payload: b"??",
    }));
    out(Frame::GoAway(GoAway {
        last_stream_id: 3,
        code: ErrorCode::NO_ERROR,
        debug_data: b"bye",
    }));
    wire
}

/// Decodes `wire` handed over `chunk` bytes at a time into a buffer, as a
/// connection would; returns each frame re-encoded, and the bytes left.
fn decode_in_chunks(wire: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut decoder = FrameDecoder::new();
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    for piece in wire.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            let (used, result) = decoder.decode(&buffer);
            match result.expect("a valid stream") {
                Some(frame) => frames.push(encoded(&frame)),
                None => {
                    assert_eq!(used, 0);
                    break;
                }
            }
            buffer.drain(..used);
        }
    }
    (frames, buffer)
}

#[test]
fn whole_byte_at_a_time_and_trailing_bytes_agree() {
    let wire = sample_stream();
    let (whole, rest) = decode_in_chunks(&wire, wire.len());
    assert_eq!(whole.len(), 12);
    assert!(rest.is_empty());
    // Every frame came back as it was sent.
    assert_eq!(whole.concat(), wire);
    for chunk in [1, 2, 3, 7, 9, 10, 64] {
        assert_eq!(
            decode_in_chunks(&wire, chunk),
            (whole.clone(), vec![]),
            "chunk {chunk}"
        );
    }
    // Trailing bytes: the start of one more frame waits in the buffer.
    let mut longer = wire.clone();
    let next = raw(6, 0, 0, &[9; 8]);
    longer.extend_from_slice(&next[..12]);
    for chunk in [1, 5, longer.len()] {
        let (frames, rest) = decode_in_chunks(&longer, chunk);
        assert_eq!(frames, whole);
        assert_eq!(rest, next[..12]);
    }
}

// ---- the client preface ----

#[test]
fn preface_whole_and_byte_at_a_time() {
    let mut m = PrefaceMatcher::new();
    assert!(!m.is_complete());
    assert_eq!(m.feed(PREFACE), Ok(Some(24)));
    assert!(m.is_complete());
    // Past the preface, nothing more is taken.
    assert_eq!(m.feed(b"anything"), Ok(Some(0)));

    let mut m = PrefaceMatcher::new();
    for (i, &b) in PREFACE.iter().enumerate() {
        let expected = if i == 23 { Some(1) } else { None };
        assert_eq!(m.feed(&[b]), Ok(expected), "byte {i}");
        assert_eq!(m.feed(&[]), Ok(expected.map(|_| 0)));
    }
    assert!(m.is_complete());
}

#[test]
fn preface_followed_by_frames() {
    let mut wire = PREFACE.to_vec();
    let frames = sample_stream();
    wire.extend_from_slice(&frames);
    let mut m = PrefaceMatcher::new();
    assert_eq!(m.feed(&wire[..10]), Ok(None));
    assert_eq!(m.feed(&wire[10..]), Ok(Some(14)));
    assert_eq!(decode_in_chunks(&wire[24..], 3).0.concat(), frames);
}

#[test]
fn preface_mismatch_is_reported_at_the_first_wrong_byte() {
    for at in 0..PREFACE.len() {
        let mut bad = PREFACE.to_vec();
        bad[at] ^= 0x20;
        // Whole.
        assert_eq!(
            PrefaceMatcher::new().feed(&bad),
            Err(Error::NotHttp2 { offset: at })
        );
        // Byte at a time: fine up to the wrong byte, refused on it, and
        // refused from then on.
        let mut m = PrefaceMatcher::new();
        for &b in &bad[..at] {
            assert_eq!(m.feed(&[b]), Ok(None));
        }
        assert_eq!(m.feed(&bad[at..=at]), Err(Error::NotHttp2 { offset: at }));
        assert_eq!(m.feed(&PREFACE[at + 1..]), Err(Error::NotHttp2 { offset: at }));
        assert!(!m.is_complete());
    }
    // An HTTP/1.1 request is told apart on its first byte.
    assert_eq!(
        PrefaceMatcher::new().feed(b"GET / HTTP/1.1\r\n"),
        Err(Error::NotHttp2 { offset: 0 })
    );
    // "PRI * HTTP/1.1" differs at byte 11.
    assert_eq!(
        PrefaceMatcher::new().feed(b"PRI * HTTP/1.1"),
        Err(Error::NotHttp2 { offset: 11 })
    );
}

#[test]
fn frame_accessors() {
    let wire = sample_stream();
    let mut decoder = FrameDecoder::new();
    let mut at = 0;
    let mut kinds = Vec::new();
    while let (used, Ok(Some(frame))) = decoder.decode(&wire[at..]) {
        kinds.push((frame.kind(), frame.stream_id()));
        at += used;
    }
    use FrameKind::*;
    assert_eq!(
        kinds,
        [
            (Settings, 0),
            (Headers, 1),
            (Continuation, 1),
            (Continuation, 1),
            (Data, 1),
            (Priority, 3),
            (RstStream, 3),
            (PushPromise, 1),
            (Ping, 0),
            (WindowUpdate, 0),
            (Unknown(0x10), 9),
            (GoAway, 0),
        ]
    );
}
