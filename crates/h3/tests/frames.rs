//! Frames, the control stream, the unidirectional stream rules and the
//! request stream: every rule with its error code, whole and byte by byte.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tether_h3::frame::{self, Event, Frame, FrameDecoder, encode_data, encode_data_header, encode_unknown};
use tether_h3::request::{RequestEvent, RequestStream};
use tether_h3::settings::Settings;
use tether_h3::stream::{ControlEvent, ControlStream, Role, StreamType, StreamTypeReader, UniStreams};
use tether_h3::{ErrorCode, Misuse, Violation};

/// An event with its borrowed data copied, to compare across feedings.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Frame(Frame),
    DataStart(u64),
    Data(Vec<u8>),
    Skipped(u64, u64),
}

/// Decodes `wire` fed in pieces of `step` bytes; DATA pieces are joined.
fn decode_in_steps(wire: &[u8], step: usize, max: usize) -> Result<Vec<Owned>, tether_h3::Error> {
    let mut d = FrameDecoder::new(max);
    let mut out: Vec<Owned> = Vec::new();
    for piece in wire.chunks(step.max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            let (used, event) = d.decode(input)?;
            assert!(used > 0 || event.is_some(), "no progress");
            input = &input[used..];
            match event {
                None => {}
                Some(Event::Frame(f)) => out.push(Owned::Frame(f)),
                Some(Event::DataStart { len }) => out.push(Owned::DataStart(len)),
                Some(Event::Data(chunk)) => match out.last_mut() {
                    Some(Owned::Data(v)) => v.extend_from_slice(chunk),
                    _ => out.push(Owned::Data(chunk.to_vec())),
                },
                Some(Event::Skipped { frame_type, len }) => out.push(Owned::Skipped(frame_type, len)),
            }
        }
    }
    d.finish()?;
    Ok(out)
}

fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::Settings(Settings {
            qpack_max_table_capacity: Some(4096),
            qpack_blocked_streams: Some(16),
            enable_connect_protocol: Some(true),
            ..Settings::default()
        }),
        Frame::Headers(vec![0, 0, 0xd1]),
        Frame::CancelPush(3),
        Frame::PushPromise {
            push_id: 1 << 40,
            field_section: vec![0, 0],
        },
        Frame::Goaway(1 << 20),
        Frame::MaxPushId(0),
        Frame::Headers(Vec::new()),
    ]
}

#[test]
fn every_frame_round_trips_at_every_split() {
    let mut wire = Vec::new();
    let mut want = Vec::new();
    for f in sample_frames() {
        f.encode(&mut wire).unwrap();
        want.push(Owned::Frame(f));
    }
    encode_data(b"hello", &mut wire).unwrap();
    want.push(Owned::DataStart(5));
    want.push(Owned::Data(b"hello".to_vec()));
    encode_data(b"", &mut wire).unwrap();
    want.push(Owned::DataStart(0));
    encode_unknown(0x21, b"grease", &mut wire).unwrap();
    want.push(Owned::Skipped(0x21, 6));
    for step in [1, 2, 3, 7, wire.len()] {
        assert_eq!(decode_in_steps(&wire, step, 1024).unwrap(), want, "step {step}");
    }
}

#[test]
fn http2_frame_types_are_unexpected() {
    for t in [0x02u8, 0x06, 0x08, 0x09] {
        let e = decode_in_steps(&[t, 0x00], 1, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_UNEXPECTED);
        assert_eq!(e.violation, Violation::Http2FrameType(u64::from(t)));
    }
    assert_eq!(
        encode_unknown(0x06, b"", &mut Vec::new()),
        Err(Misuse::KnownFrameType(6))
    );
    assert_eq!(
        encode_unknown(0x01, b"", &mut Vec::new()),
        Err(Misuse::KnownFrameType(1))
    );
}

#[test]
fn an_oversized_frame_is_refused_from_its_header() {
    // HEADERS announcing 2^30 bytes: refused before any payload.
    let e = decode_in_steps(&[0x01, 0xc0, 0, 0, 0, 0x40, 0, 0, 0], 1, 1024).unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_EXCESSIVE_LOAD);
    assert_eq!(
        e.violation,
        Violation::FrameTooLarge {
            frame_type: frame::HEADERS,
            len: 1 << 30
        }
    );
    // A huge DATA or unknown frame is streamed or skipped, not refused.
    let mut d = FrameDecoder::new(16);
    let mut wire = Vec::new();
    encode_data_header(1 << 50, &mut wire).unwrap();
    wire.extend_from_slice(&[7; 100]);
    let (used, event) = d.decode(&wire).unwrap();
    assert_eq!(event, Some(Event::DataStart { len: 1 << 50 }));
    let (_, event) = d.decode(&wire[used..]).unwrap();
    assert_eq!(event, Some(Event::Data(&[7; 100][..])));
    assert!(!d.is_at_frame_boundary());
    assert_eq!(d.finish().unwrap_err().code, ErrorCode::H3_FRAME_ERROR);

    let mut d = FrameDecoder::new(16);
    let grease = [0x40, 0x21 + 0x1f, 0xc0, 0, 0, 0xff, 0, 0, 0, 0];
    let (used, event) = d.decode(&grease).unwrap();
    assert_eq!(used, grease.len());
    assert!(matches!(event, Some(Event::Skipped { frame_type: 0x40, .. })));
    let (used, event) = d.decode(&[0; 4096]).unwrap();
    assert_eq!((used, event), (4096, None));
}

#[test]
fn payloads_with_extra_or_missing_bytes_are_frame_errors() {
    for wire in [
        &[0x07, 0x02, 0x01, 0x01][..],   // GOAWAY with two varints
        &[0x07, 0x00],                   // GOAWAY with none
        &[0x0d, 0x01, 0x40],             // MAX_PUSH_ID with half a varint
        &[0x03, 0x03, 0x01, 0x00, 0x00], // CANCEL_PUSH with trailing bytes
        &[0x05, 0x01, 0x40],             // PUSH_PROMISE with half a push ID
        &[0x04, 0x01, 0x01],             // SETTINGS with half a pair
    ] {
        let e = decode_in_steps(wire, 1, 1024).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_ERROR, "{wire:?}");
    }
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_a_frame_error() {
    let mut wire = Vec::new();
    Frame::Goaway(1000).encode(&mut wire).unwrap();
    for cut in 1..wire.len() {
        let e = decode_in_steps(&wire[..cut], 1, 1024).unwrap_err();
        assert_eq!(e.violation, Violation::TruncatedFrame);
    }
}

fn control(role: Role, wire: &[u8]) -> Result<Vec<ControlEvent>, tether_h3::Error> {
    // Whole and byte by byte must agree.
    let mut whole = ControlStream::new(role, 1024);
    let mut a = Vec::new();
    let ra = whole.receive(wire, &mut a);
    let mut bytewise = ControlStream::new(role, 1024);
    let mut b = Vec::new();
    let mut rb = Ok(());
    for byte in wire {
        rb = bytewise.receive(std::slice::from_ref(byte), &mut b);
        if rb.is_err() {
            break;
        }
    }
    assert_eq!(ra, rb);
    assert_eq!(a, b);
    ra.map(|()| a)
}

fn frames(list: &[Frame]) -> Vec<u8> {
    let mut wire = Vec::new();
    for f in list {
        f.encode(&mut wire).unwrap();
    }
    wire
}

#[test]
fn the_control_stream_starts_with_settings_once() {
    let settings = Frame::Settings(Settings::default());
    let events = control(
        Role::Server,
        &frames(&[
            settings.clone(),
            Frame::MaxPushId(4),
            Frame::CancelPush(1),
            Frame::Goaway(8),
        ]),
    )
    .unwrap();
    assert_eq!(
        events,
        [
            ControlEvent::Settings(Settings::default()),
            ControlEvent::MaxPushId(4),
            ControlEvent::CancelPush(1),
            ControlEvent::Goaway(8),
        ]
    );
    // Not SETTINGS first, even a grease frame.
    let e = control(Role::Server, &frames(&[Frame::Goaway(0)])).unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_MISSING_SETTINGS);
    let mut grease = Vec::new();
    encode_unknown(0x21, b"", &mut grease).unwrap();
    assert_eq!(
        control(Role::Server, &grease).unwrap_err().code,
        ErrorCode::H3_MISSING_SETTINGS
    );
    // Grease after SETTINGS is skipped.
    let mut wire = frames(std::slice::from_ref(&settings));
    wire.extend_from_slice(&grease);
    assert_eq!(control(Role::Server, &wire).unwrap().len(), 1);
    // A second SETTINGS.
    let e = control(Role::Server, &frames(&[settings.clone(), settings.clone()])).unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_FRAME_UNEXPECTED);
    // DATA, HEADERS, PUSH_PROMISE.
    let mut with_data = frames(std::slice::from_ref(&settings));
    encode_data(b"", &mut with_data).unwrap();
    for wire in [
        with_data,
        frames(&[settings.clone(), Frame::Headers(vec![0, 0])]),
        frames(&[
            settings.clone(),
            Frame::PushPromise {
                push_id: 0,
                field_section: vec![0, 0],
            },
        ]),
    ] {
        let e = control(Role::Server, &wire).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_UNEXPECTED);
    }
}

#[test]
fn goaway_and_max_push_id_move_one_way() {
    let s = Frame::Settings(Settings::default());
    // A client receiving MAX_PUSH_ID: unexpected.
    let e = control(Role::Client, &frames(&[s.clone(), Frame::MaxPushId(1)])).unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_FRAME_UNEXPECTED);
    // MAX_PUSH_ID going down.
    let e = control(
        Role::Server,
        &frames(&[s.clone(), Frame::MaxPushId(5), Frame::MaxPushId(4)]),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_ID_ERROR);
    // GOAWAY going up.
    let e = control(
        Role::Client,
        &frames(&[s.clone(), Frame::Goaway(8), Frame::Goaway(12)]),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_ID_ERROR);
    // A server's GOAWAY must name a client bidirectional stream.
    let e = control(Role::Client, &frames(&[s.clone(), Frame::Goaway(2)])).unwrap_err();
    assert_eq!(e.violation, Violation::InvalidGoawayId(2));
    // A client's GOAWAY carries a push ID: any value.
    assert!(
        control(
            Role::Server,
            &frames(&[s.clone(), Frame::Goaway(3), Frame::Goaway(3)])
        )
        .is_ok()
    );
}

#[test]
fn critical_streams_are_opened_once_and_never_closed() {
    let mut streams = UniStreams::new(Role::Server);
    for t in [
        StreamType::Control,
        StreamType::QpackEncoder,
        StreamType::QpackDecoder,
    ] {
        streams.opened(t).unwrap();
        let e = streams.opened(t).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_STREAM_CREATION_ERROR);
        assert_eq!(e.violation, Violation::DuplicateStream(t.value()));
        let e = streams.closed(t).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_CLOSED_CRITICAL_STREAM);
    }
    // Reserved types are allowed, as many as come, and may close.
    streams.opened(StreamType::from_value(0x21)).unwrap();
    streams.opened(StreamType::from_value(0x21)).unwrap();
    streams.closed(StreamType::from_value(0x21)).unwrap();
    // A client may not open a push stream; a server may.
    let e = streams.opened(StreamType::Push).unwrap_err();
    assert_eq!(e.violation, Violation::PushStreamFromClient);
    UniStreams::new(Role::Client).opened(StreamType::Push).unwrap();
    let control = ControlStream::new(Role::Server, 16);
    assert_eq!(control.finish().code, ErrorCode::H3_CLOSED_CRITICAL_STREAM);
}

#[test]
fn stream_types_are_read_in_pieces() {
    let mut r = StreamTypeReader::new();
    assert_eq!(r.feed(&[0x40]), (1, None));
    assert!(r.is_partial());
    assert_eq!(r.feed(&[0x02, 0xff]), (1, Some(StreamType::QpackEncoder)));
    assert_eq!(
        StreamTypeReader::new().feed(&[0x00, 0x04]),
        (1, Some(StreamType::Control))
    );
    assert_eq!(
        StreamTypeReader::new().feed(&[0x21]),
        (1, Some(StreamType::Unknown(0x21)))
    );
}

/// Reads a request stream whole or byte by byte; DATA pieces are joined.
fn request(wire: &[u8], bytewise: bool) -> Result<Vec<(char, Vec<u8>)>, tether_h3::Error> {
    let mut s = RequestStream::new(1024);
    let mut out: Vec<(char, Vec<u8>)> = Vec::new();
    let step = if bytewise { 1 } else { wire.len().max(1) };
    for piece in wire.chunks(step) {
        let mut input = piece;
        while !input.is_empty() {
            let (used, event) = s.decode(input)?;
            input = &input[used..];
            match event {
                Some(RequestEvent::Headers(h)) => out.push(('h', h)),
                Some(RequestEvent::Trailers(t)) => out.push(('t', t)),
                Some(RequestEvent::Data(d)) => match out.last_mut() {
                    Some(('d', v)) => v.extend_from_slice(d),
                    _ => out.push(('d', d.to_vec())),
                },
                None => {}
            }
        }
    }
    s.finish()?;
    Ok(out)
}

#[test]
fn a_request_is_headers_data_and_trailers() {
    let mut wire = Vec::new();
    encode_unknown(0x21, b"x", &mut wire).unwrap();
    Frame::Headers(vec![1]).encode(&mut wire).unwrap();
    encode_data(b"ab", &mut wire).unwrap();
    encode_unknown(0x40, b"", &mut wire).unwrap();
    encode_data(b"cd", &mut wire).unwrap();
    Frame::Headers(vec![2]).encode(&mut wire).unwrap();
    for bytewise in [false, true] {
        assert_eq!(
            request(&wire, bytewise).unwrap(),
            [('h', vec![1]), ('d', b"abcd".to_vec()), ('t', vec![2])]
        );
    }
    // Anything after the trailers but unknown frames.
    let mut after = wire.clone();
    encode_data(b"", &mut after).unwrap();
    assert_eq!(
        request(&after, true).unwrap_err().code,
        ErrorCode::H3_FRAME_UNEXPECTED
    );
    let mut after = wire.clone();
    Frame::Headers(vec![3]).encode(&mut after).unwrap();
    assert_eq!(
        request(&after, false).unwrap_err().code,
        ErrorCode::H3_FRAME_UNEXPECTED
    );
    // DATA first, even empty.
    let mut data_first = Vec::new();
    encode_data(b"", &mut data_first).unwrap();
    assert_eq!(
        request(&data_first, true).unwrap_err().code,
        ErrorCode::H3_FRAME_UNEXPECTED
    );
    // Control-stream frames and PUSH_PROMISE.
    for f in [
        Frame::Settings(Settings::default()),
        Frame::Goaway(0),
        Frame::MaxPushId(0),
        Frame::CancelPush(0),
        Frame::PushPromise {
            push_id: 0,
            field_section: vec![],
        },
    ] {
        let mut wire = frames(&[Frame::Headers(vec![1])]);
        f.encode(&mut wire).unwrap();
        let e = request(&wire, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::H3_FRAME_UNEXPECTED, "{f:?}");
    }
    // Ended before HEADERS, or inside a frame.
    assert_eq!(
        request(&[], false).unwrap_err().code,
        ErrorCode::H3_REQUEST_INCOMPLETE
    );
    assert_eq!(
        request(&[0x01, 0x02, 0x00], true).unwrap_err().code,
        ErrorCode::H3_FRAME_ERROR
    );
}

#[test]
fn bytes_after_a_frame_are_left_for_the_next_call() {
    for f in sample_frames() {
        let mut wire = Vec::new();
        f.encode(&mut wire).unwrap();
        let len = wire.len();
        wire.extend_from_slice(&[0x00, 0x05, b'a']);
        let mut d = FrameDecoder::new(1024);
        assert_eq!(d.decode(&wire).unwrap(), (len, Some(Event::Frame(f))));
        assert!(d.is_at_frame_boundary());
        // The DATA frame after it starts at once.
        assert_eq!(
            d.decode(&wire[len..]).unwrap(),
            (2, Some(Event::DataStart { len: 5 }))
        );
        assert_eq!(d.decode(&wire[len + 2..]).unwrap(), (1, Some(Event::Data(b"a"))));
    }
}
