//! The HTTP/3 server session: requests in whole and in pieces, responses
//! out, the malformed requests that are stream errors, the connection
//! errors, and the limits.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tether_h2::hpack::Field;
use tether_h3::frame::{self, Event, Frame, FrameDecoder};
use tether_h3::head::Malformed;
use tether_h3::qpack::{self, Decoder, Section};
use tether_h3::session::{LocalStream, SendError, ServerSession, SessionConfig, SessionEvent, Target};
use tether_h3::settings::Settings;
use tether_h3::{ErrorCode, Violation};

/// The client's control stream: its type and an empty SETTINGS.
fn control_stream() -> Vec<u8> {
    let mut wire = vec![0x00];
    Frame::Settings(Settings::default()).encode(&mut wire).unwrap();
    wire
}

fn headers(fields: &[(&str, &str)]) -> Vec<u8> {
    let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
    let mut section = Vec::new();
    qpack::encode(&fields, &mut section);
    let mut wire = Vec::new();
    Frame::Headers(section).encode(&mut wire).unwrap();
    wire
}

fn get(path: &str) -> Vec<u8> {
    headers(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", path),
    ])
}

fn data(payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    frame::encode_data(payload, &mut wire).unwrap();
    wire
}

/// Every event, with the body pieces of a stream joined so that inputs cut
/// differently compare equal.
fn drain(session: &mut ServerSession) -> Vec<SessionEvent> {
    let mut out: Vec<SessionEvent> = Vec::new();
    while let Some(event) = session.poll_event() {
        if let SessionEvent::Data { stream_id, data } = &event
            && let Some(SessionEvent::Data {
                stream_id: last_id,
                data: last,
            }) = out.last_mut()
            && last_id == stream_id
        {
            last.extend_from_slice(data);
            continue;
        }
        out.push(event);
    }
    out
}

/// Feeds each (stream, bytes) in pieces of `step` bytes (all at once for
/// 0), the last piece with FIN where `fin` says so.
fn feed(session: &mut ServerSession, streams: &[(u64, Vec<u8>, bool)], step: usize) -> Vec<SessionEvent> {
    for (id, bytes, fin) in streams {
        if step == 0 || bytes.is_empty() {
            session.receive(*id, bytes, *fin).unwrap();
            continue;
        }
        let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            session
                .receive(*id, piece, *fin && i + 1 == pieces.len())
                .unwrap();
        }
    }
    drain(session)
}

fn request_of(event: &SessionEvent) -> &tether_h2::connection::Request {
    match event {
        SessionEvent::Request { request, .. } => request,
        other => panic!("not a request: {other:?}"),
    }
}

fn stream_error(session: &mut ServerSession, stream_id: u64, wire: &[u8]) -> (ErrorCode, Option<Malformed>) {
    session.receive(stream_id, wire, true).unwrap();
    let events = drain(session);
    match events.last() {
        Some(SessionEvent::StreamError {
            stream_id: id,
            code,
            malformed,
        }) if *id == stream_id => (*code, *malformed),
        other => panic!("no stream error: {other:?} in {events:?}"),
    }
}

#[test]
fn requests_whole_and_in_every_piece_size_give_the_same_events() {
    let post = [
        headers(&[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a.example"),
            (":path", "/topics/news"),
            ("content-length", "11"),
        ]),
        data(b"hello"),
        // An unknown frame type, skipped.
        vec![0x21, 0x02, 0xaa, 0xbb],
        data(b" world"),
        headers(&[("x-checksum", "abc")]),
    ]
    .concat();
    let streams = vec![
        (2, control_stream(), false),
        (0, get("/events"), true),
        (4, post, true),
    ];
    let mut whole = ServerSession::new(SessionConfig::default());
    let expected = feed(&mut whole, &streams, 0);
    assert_eq!(expected.len(), 7, "{expected:?}");
    assert_eq!(expected[0], SessionEvent::Settings(Settings::default()));
    let first = request_of(&expected[1]);
    assert_eq!(
        (first.method.as_str(), first.path.as_deref()),
        ("GET", Some("/events"))
    );
    assert_eq!(expected[2], SessionEvent::End { stream_id: 0 });
    assert_eq!(request_of(&expected[3]).field("content-length"), Some(&b"11"[..]));
    assert_eq!(
        expected[4],
        SessionEvent::Data {
            stream_id: 4,
            data: b"hello world".to_vec()
        }
    );
    assert_eq!(
        expected[5],
        SessionEvent::Trailers {
            stream_id: 4,
            fields: vec![Field::new("x-checksum", "abc")]
        }
    );
    assert_eq!(expected[6], SessionEvent::End { stream_id: 4 });
    for step in 1..=9 {
        let mut session = ServerSession::new(SessionConfig::default());
        assert_eq!(feed(&mut session, &streams, step), expected, "pieces of {step}");
    }
}

/// Reads what the session wrote on one target.
fn written(writes: &[tether_h3::session::Write], target: Target) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut fin = false;
    for w in writes.iter().filter(|w| w.target == target) {
        bytes.extend_from_slice(&w.bytes);
        fin |= w.fin;
    }
    (bytes, fin)
}

/// A stream's frames, with DATA payloads joined per frame.
#[derive(Debug, PartialEq)]
enum Owned {
    Frame(Frame),
    Data(Vec<u8>),
}

fn frames(mut wire: &[u8]) -> Vec<Owned> {
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut out = Vec::new();
    while !wire.is_empty() {
        let (used, event) = decoder.decode(wire).unwrap();
        wire = &wire[used..];
        match event {
            Some(Event::Frame(f)) => out.push(Owned::Frame(f)),
            Some(Event::DataStart { .. }) => out.push(Owned::Data(Vec::new())),
            Some(Event::Data(d)) => match out.last_mut() {
                Some(Owned::Data(payload)) => payload.extend_from_slice(d),
                _ => panic!("data outside a DATA frame"),
            },
            Some(Event::Skipped { .. }) | None => {}
        }
    }
    out
}

#[test]
fn responses_and_the_control_stream_are_written() {
    let config = SessionConfig {
        enable_connect_protocol: true,
        max_field_section_size: 8000,
        ..SessionConfig::default()
    };
    let mut session = ServerSession::new(config);
    session.receive(0, &get("/"), true).unwrap();
    drain(&mut session);
    session
        .send_head(0, 103, &[Field::new("link", "</a.css>")])
        .unwrap();
    session
        .send_head(0, 200, &[Field::new("content-type", "text/plain")])
        .unwrap();
    session.send_data(0, b"hi").unwrap();
    session.send_data(0, b"").unwrap();
    session.send_data(0, b" there").unwrap();
    session.finish(0).unwrap();
    assert_eq!(session.open_requests(), 0, "read and answered: forgotten");
    let writes = session.take_writes();

    let (control, fin) = written(&writes, Target::Local(LocalStream::Control));
    assert!(!fin);
    assert_eq!(control[0], 0x00, "control stream type");
    let [Owned::Frame(Frame::Settings(settings))] = &frames(&control[1..])[..] else {
        panic!("{control:?}");
    };
    assert_eq!(settings, &session.settings());
    assert_eq!(settings.enable_connect_protocol, Some(true));
    assert_eq!(settings.max_field_section_size, Some(8000));
    assert_eq!(settings.qpack_max_table_capacity, Some(4096));

    let (response, fin) = written(&writes, Target::Request(0));
    assert!(fin);
    let events = frames(&response);
    let mut decoder = Decoder::new(0, 0);
    let mut heads = Vec::new();
    let mut body = Vec::new();
    for event in events {
        match event {
            Owned::Frame(Frame::Headers(section)) => {
                let Section::Decoded(fields) = decoder.decode_section(0, &section).unwrap() else {
                    panic!("blocked")
                };
                heads.push(fields);
            }
            Owned::Data(d) => body.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        heads[0],
        [Field::new(":status", "103"), Field::new("link", "</a.css>")]
    );
    assert_eq!(
        heads[1],
        [
            Field::new(":status", "200"),
            Field::new("content-type", "text/plain")
        ]
    );
    assert_eq!(body, b"hi there");
    // Nothing more to write, and the stream is gone.
    assert!(session.take_writes().is_empty());
    assert_eq!(session.send_data(0, b"x"), Err(SendError::UnknownStream(0)));
}

#[test]
fn sending_out_of_order_or_too_large_is_refused() {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut client = control_stream();
    client.truncate(1);
    // SETTINGS_MAX_FIELD_SECTION_SIZE = 100.
    Frame::Settings(Settings {
        max_field_section_size: Some(100),
        ..Settings::default()
    })
    .encode(&mut client)
    .unwrap();
    session.receive(2, &client, false).unwrap();
    session.receive(0, &get("/"), false).unwrap();
    assert_eq!(session.peer_settings().unwrap().max_field_section_size, Some(100));
    assert_eq!(session.send_data(0, b"x"), Err(SendError::OutOfOrder(0)));
    assert_eq!(session.finish(0), Err(SendError::OutOfOrder(0)));
    assert_eq!(session.send_head(0, 99, &[]), Err(SendError::InvalidStatus(99)));
    assert_eq!(session.send_head(4, 200, &[]), Err(SendError::UnknownStream(4)));
    let big = Field::new("x-big", "v".repeat(100));
    assert!(matches!(
        session.send_head(0, 200, &[big]),
        Err(SendError::HeadTooLarge(_))
    ));
    session.send_head(0, 204, &[]).unwrap();
    assert_eq!(session.send_head(0, 200, &[]), Err(SendError::OutOfOrder(0)));
    session.finish(0).unwrap();
    // Still being read: kept until its request ends.
    assert_eq!(session.open_requests(), 1);
    session.receive(0, &[], true).unwrap();
    assert_eq!(session.open_requests(), 0);
}

#[test]
fn malformed_requests_are_stream_errors_and_the_connection_goes_on() {
    let mut session = ServerSession::new(SessionConfig::default());
    let no_path = headers(&[(":method", "GET"), (":scheme", "https"), (":authority", "a")]);
    assert_eq!(
        stream_error(&mut session, 0, &no_path),
        (ErrorCode::H3_MESSAGE_ERROR, Some(Malformed::MissingPseudo))
    );
    let upper = [get("/"), headers(&[("X-Upper", "1")])].concat();
    // Trailers with an uppercase name.
    assert_eq!(stream_error(&mut session, 4, &upper).1, Some(Malformed::Name));
    let short_body = [
        headers(&[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a"),
            (":path", "/"),
            ("content-length", "5"),
        ]),
        data(b"abc"),
    ]
    .concat();
    assert_eq!(
        stream_error(&mut session, 8, &short_body),
        (ErrorCode::H3_MESSAGE_ERROR, Some(Malformed::ContentLength))
    );
    let long_body = [
        headers(&[
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "a"),
            (":path", "/"),
            ("content-length", "1"),
        ]),
        data(b"abc"),
    ]
    .concat();
    session.receive(12, &long_body, false).unwrap();
    let events = drain(&mut session);
    // The body up to content-length, then the error, however it was cut.
    assert_eq!(
        events[events.len() - 2],
        SessionEvent::Data {
            stream_id: 12,
            data: b"a".to_vec()
        }
    );
    assert!(matches!(
        events.last(),
        Some(SessionEvent::StreamError {
            stream_id: 12,
            code: ErrorCode::H3_MESSAGE_ERROR,
            ..
        })
    ));
    // Later bytes of a stream given up are dropped.
    session.receive(12, &data(b"more"), true).unwrap();
    assert!(drain(&mut session).is_empty());
    // An end before HEADERS: H3_REQUEST_INCOMPLETE on that stream only.
    assert_eq!(
        stream_error(&mut session, 16, &[]),
        (ErrorCode::H3_REQUEST_INCOMPLETE, None)
    );
    assert_eq!(session.open_requests(), 0);
    // The connection still serves.
    session.receive(20, &get("/ok"), true).unwrap();
    let events = drain(&mut session);
    assert_eq!(request_of(&events[0]).path.as_deref(), Some("/ok"));
}

fn connection_error(streams: &[(u64, Vec<u8>, bool)]) -> (ErrorCode, Violation) {
    let mut session = ServerSession::new(SessionConfig::default());
    for (id, bytes, fin) in streams {
        if let Err(e) = session.receive(*id, bytes, *fin) {
            // Every later call gives the same error.
            assert_eq!(session.receive(0, &get("/"), true), Err(e));
            assert_eq!(session.reset_by_peer(0, 0), Err(e));
            return (e.code, e.violation);
        }
    }
    panic!("no connection error")
}

#[test]
fn broken_framing_and_streams_are_connection_errors() {
    // DATA before HEADERS.
    assert_eq!(
        connection_error(&[(0, data(b"x"), false)]).0,
        ErrorCode::H3_FRAME_UNEXPECTED
    );
    // A SETTINGS frame on a request stream.
    assert_eq!(
        connection_error(&[(0, control_stream()[1..].to_vec(), false)]).0,
        ErrorCode::H3_FRAME_UNEXPECTED
    );
    // A stream that ends inside a frame.
    let mut cut = get("/");
    cut.pop();
    assert_eq!(connection_error(&[(0, cut, true)]).0, ErrorCode::H3_FRAME_ERROR);
    // A control stream that does not start with SETTINGS.
    assert_eq!(
        connection_error(&[(2, vec![0x00, 0x07, 0x01, 0x00], false)]).0,
        ErrorCode::H3_MISSING_SETTINGS
    );
    // A second control stream.
    assert_eq!(
        connection_error(&[(2, control_stream(), false), (6, vec![0x00], false)]).0,
        ErrorCode::H3_STREAM_CREATION_ERROR
    );
    // The control stream closed, and the encoder stream closed.
    assert_eq!(
        connection_error(&[(2, control_stream(), true)]).0,
        ErrorCode::H3_CLOSED_CRITICAL_STREAM
    );
    assert_eq!(
        connection_error(&[(6, vec![0x02], true)]).0,
        ErrorCode::H3_CLOSED_CRITICAL_STREAM
    );
    // A push stream from a client.
    assert_eq!(
        connection_error(&[(2, vec![0x01], false)]).0,
        ErrorCode::H3_STREAM_CREATION_ERROR
    );
    // A stream ID only the server opens.
    assert_eq!(
        connection_error(&[(3, vec![0x00], false)]),
        (
            ErrorCode::H3_STREAM_CREATION_ERROR,
            Violation::ServerStreamFromPeer(3)
        )
    );
    // A Section Acknowledgment on the decoder stream, for a section that
    // needed none.
    assert_eq!(
        connection_error(&[(10, vec![0x03, 0x80], false)]).0,
        ErrorCode::QPACK_DECODER_STREAM_ERROR
    );
    // An encoder stream inserting past the advertised capacity.
    assert_eq!(
        connection_error(&[(10, vec![0x02, 0x3f, 0xe1, 0xff, 0x03], false)]).0,
        ErrorCode::QPACK_ENCODER_STREAM_ERROR
    );
}

#[test]
fn resets_cancel_requests_and_close_critical_streams() {
    let mut session = ServerSession::new(SessionConfig::default());
    session.receive(2, &control_stream(), false).unwrap();
    session.receive(0, &get("/events"), false).unwrap();
    session.receive(4, &get("/other"), true).unwrap();
    drain(&mut session);
    session.send_head(0, 200, &[]).unwrap();
    session.reset_by_peer(0, 0x10c).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::Cancelled {
            stream_id: 0,
            code: 0x10c
        }]
    );
    // Its queued response is dropped with it.
    assert!(written(&session.take_writes(), Target::Request(0)).0.is_empty());
    session.stopped_by_peer(Target::Request(4), 0x10c).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::Cancelled {
            stream_id: 4,
            code: 0x10c
        }]
    );
    assert_eq!(session.open_requests(), 0);
    // An unknown stream type: stop reading it.
    session.receive(6, &[0x21, 1, 2, 3], false).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::StopSending {
            stream_id: 6,
            code: ErrorCode::H3_STREAM_CREATION_ERROR
        }]
    );
    // Its later bytes are dropped, and nothing is kept for it.
    session.receive(6, &[4, 5, 6], true).unwrap();
    assert!(drain(&mut session).is_empty());
    session.reset_by_peer(6, 0).unwrap();
    // A request stream reset before its bytes: they are dropped too.
    session.reset_by_peer(16, 0x10c).unwrap();
    session.receive(16, &get("/late"), true).unwrap();
    assert!(drain(&mut session).is_empty());
    let err = session
        .stopped_by_peer(Target::Local(LocalStream::Control), 0)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::H3_CLOSED_CRITICAL_STREAM);

    let mut session = ServerSession::new(SessionConfig::default());
    session.receive(2, &control_stream(), false).unwrap();
    assert_eq!(
        session.reset_by_peer(2, 0).unwrap_err().code,
        ErrorCode::H3_CLOSED_CRITICAL_STREAM
    );
}

#[test]
fn goaway_refuses_later_requests_and_serves_the_earlier_ones() {
    let mut session = ServerSession::new(SessionConfig::default());
    session.receive(0, &get("/a"), true).unwrap();
    drain(&mut session);
    session.goaway();
    assert!(!session.is_drained());
    let (control, _) = written(&session.take_writes(), Target::Local(LocalStream::Control));
    let frames = frames(&control[1..]);
    assert_eq!(frames.last(), Some(&Owned::Frame(Frame::Goaway(4))));
    assert_eq!(
        stream_error(&mut session, 4, &get("/b")),
        (ErrorCode::H3_REQUEST_REJECTED, None)
    );
    // A second GOAWAY never raises the ID.
    session.goaway();
    let (control, _) = written(&session.take_writes(), Target::Local(LocalStream::Control));
    assert_eq!(
        tether_h3::frame::FrameDecoder::new(64)
            .decode(&control)
            .unwrap()
            .1,
        Some(Event::Frame(Frame::Goaway(4)))
    );
    session.send_head(0, 200, &[]).unwrap();
    session.finish(0).unwrap();
    assert!(session.is_drained());
}

fn connect(protocol: bool) -> Vec<u8> {
    let mut fields = vec![(":method", "CONNECT")];
    if protocol {
        fields.push((":protocol", "websocket"));
    }
    fields.extend([
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/ws"),
    ]);
    headers(&fields)
}

#[test]
fn extended_connect_only_when_enabled() {
    let mut off = ServerSession::new(SessionConfig::default());
    assert_eq!(off.settings().enable_connect_protocol, None);
    assert_eq!(
        stream_error(&mut off, 0, &connect(true)),
        (
            ErrorCode::H3_MESSAGE_ERROR,
            Some(Malformed::ConnectProtocolDisabled)
        )
    );
    let mut on = ServerSession::new(SessionConfig {
        enable_connect_protocol: true,
        ..SessionConfig::default()
    });
    on.receive(0, &connect(true), false).unwrap();
    on.receive(0, &data(b"tunnel bytes"), false).unwrap();
    let events = drain(&mut on);
    assert!(request_of(&events[0]).is_extended_connect("websocket"));
    assert_eq!(
        events[1],
        SessionEvent::Data {
            stream_id: 0,
            data: b"tunnel bytes".to_vec()
        }
    );
    // A CONNECT with :path but no :protocol is malformed either way.
    assert_eq!(
        stream_error(&mut on, 4, &connect(false)).1,
        Some(Malformed::ForbiddenPseudo)
    );
}

/// RFC 9204 B.2: the encoder stream inserting :authority and :path, and a
/// section on stream 4 that refers to both.
const ENCODER_INSERTS: &[u8] = b"\x02\x3f\xbd\x01\xc0\x0fwww.example.com\xc1\x0c/sample/path";

fn blocked_request() -> Vec<u8> {
    // Required Insert Count 2, Base 0, post-base 0 and 1, then :method GET
    // and :scheme https from the static table.
    let section = b"\x03\x81\x10\x11\xd1\xd7".to_vec();
    let mut wire = Vec::new();
    Frame::Headers(section).encode(&mut wire).unwrap();
    wire.extend(data(b"body"));
    wire
}

#[test]
fn a_section_blocked_on_the_encoder_stream_is_decoded_when_it_arrives() {
    for step in [0, 1, 3] {
        let mut session = ServerSession::new(SessionConfig::default());
        // The request first: blocked, its body kept.
        let events = feed(&mut session, &[(4, blocked_request(), true)], step);
        assert!(events.is_empty(), "{events:?}");
        let events = feed(&mut session, &[(6, ENCODER_INSERTS.to_vec(), false)], step);
        assert_eq!(events.len(), 3, "{events:?}");
        let request = request_of(&events[0]);
        assert_eq!(request.authority.as_deref(), Some("www.example.com"));
        assert_eq!(request.path.as_deref(), Some("/sample/path"));
        assert_eq!(
            events[1],
            SessionEvent::Data {
                stream_id: 4,
                data: b"body".to_vec()
            }
        );
        assert_eq!(events[2], SessionEvent::End { stream_id: 4 });
        // The decoder stream: its type, then Section Acknowledgment for 4.
        let (decoder, _) = written(&session.take_writes(), Target::Local(LocalStream::QpackDecoder));
        assert_eq!(decoder, [0x03, 0x84]);
    }
}

#[test]
fn limits_on_heads_frames_and_blocked_streams() {
    // A head past max_field_section_size: HeadTooLarge, the rest goes on.
    let mut session = ServerSession::new(SessionConfig {
        max_field_section_size: 200,
        ..SessionConfig::default()
    });
    let big = headers(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a"),
        (":path", "/"),
        ("x-big", &"v".repeat(300)),
    ]);
    session.receive(0, &big, false).unwrap();
    assert_eq!(drain(&mut session), [SessionEvent::HeadTooLarge { stream_id: 0 }]);
    // The caller may answer 431.
    session.send_head(0, 431, &[]).unwrap();
    session.finish(0).unwrap();
    session.receive(0, &data(b"ignored"), true).unwrap();
    assert!(drain(&mut session).is_empty());
    assert_eq!(session.open_requests(), 0);
    session.receive(4, &get("/"), true).unwrap();
    assert_eq!(drain(&mut session).len(), 2);

    // A HEADERS frame past max_frame_payload: refused from its header.
    let mut session = ServerSession::new(SessionConfig {
        max_frame_payload: 64,
        ..SessionConfig::default()
    });
    let err = session.receive(0, &[0x01, 0x41, 0x00], false).unwrap_err();
    assert_eq!(err.code, ErrorCode::H3_EXCESSIVE_LOAD);

    // Bytes kept while blocked are bounded: that stream is reset.
    let mut session = ServerSession::new(SessionConfig {
        max_blocked_bytes: 16,
        ..SessionConfig::default()
    });
    session.receive(4, &blocked_request(), false).unwrap();
    session.receive(4, &data(&[0; 32]), false).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::StreamError {
            stream_id: 4,
            code: ErrorCode::H3_EXCESSIVE_LOAD,
            malformed: None
        }]
    );
    // Its cancellation goes out on the decoder stream (type, then Stream
    // Cancellation for 4).
    let (decoder, _) = written(&session.take_writes(), Target::Local(LocalStream::QpackDecoder));
    assert_eq!(decoder, [0x03, 0x44]);

    // More blocked streams than advertised: the bomb is a connection error.
    let mut session = ServerSession::new(SessionConfig {
        qpack_blocked_streams: 2,
        ..SessionConfig::default()
    });
    session.receive(0, &blocked_request(), false).unwrap();
    session.receive(4, &blocked_request(), false).unwrap();
    let err = session.receive(8, &blocked_request(), false).unwrap_err();
    assert_eq!(
        (err.code, err.violation),
        (
            ErrorCode::QPACK_DECOMPRESSION_FAILED,
            Violation::TooManyBlockedStreams
        )
    );
}

#[test]
fn a_stream_whose_bytes_come_after_a_higher_ones_is_still_served() {
    let mut session = ServerSession::new(SessionConfig::default());
    // 12 first: 0, 4 and 8 are open too, their bytes late.
    session.receive(12, &get("/12"), true).unwrap();
    session.receive(4, &get("/4"), true).unwrap();
    session.receive(0, &get("/0"), true).unwrap();
    session.receive(8, &get("/8"), true).unwrap();
    let paths: Vec<String> = drain(&mut session)
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Request { request, .. } => request.path.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(paths, ["/12", "/4", "/0", "/8"]);
    // A stream done with stays done: its late bytes are dropped.
    session.receive(4, &get("/again"), true).unwrap();
    assert!(drain(&mut session).is_empty());
}
