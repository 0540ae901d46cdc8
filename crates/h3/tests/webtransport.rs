//! WebTransport over HTTP/3 on the server session: the SETTINGS, a
//! session opened by extended CONNECT and answered, the client's streams
//! told apart from requests by their first bytes (given one byte at a
//! time too), the server's own streams, datagrams, and the ends of a
//! session.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tether_h2::hpack::Field;
use tether_h3::frame::{self, Event, Frame, FrameDecoder};
use tether_h3::qpack;
use tether_h3::session::{LocalStream, SendError, ServerSession, SessionConfig, SessionEvent, Target};
use tether_h3::settings::Settings;
use tether_h3::webtransport::capsule::{self, Close};
use tether_h3::webtransport::datagram;
use tether_h3::{ErrorCode, Violation, varint};

fn config() -> SessionConfig {
    SessionConfig {
        enable_connect_protocol: true,
        max_webtransport_sessions: 1,
        ..SessionConfig::default()
    }
}

fn headers(fields: &[(&str, &str)]) -> Vec<u8> {
    let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
    let mut section = Vec::new();
    qpack::encode(&fields, &mut section);
    let mut wire = Vec::new();
    Frame::Headers(section).encode(&mut wire).unwrap();
    wire
}

fn connect(draft02: bool) -> Vec<u8> {
    let mut fields = vec![
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/topics/news/wt"),
        ("origin", "https://a.example"),
    ];
    if draft02 {
        fields.push(("sec-webtransport-http3-draft02", "1"));
    }
    headers(&fields)
}

fn get() -> Vec<u8> {
    headers(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/"),
    ])
}

fn varints(values: &[u64]) -> Vec<u8> {
    let mut wire = Vec::new();
    for v in values {
        varint::encode(*v, &mut wire).unwrap();
    }
    wire
}

fn drain(session: &mut ServerSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

/// Feeds `bytes` one byte at a time (FIN with the last when `fin`), or
/// whole.
fn feed(session: &mut ServerSession, stream_id: u64, bytes: &[u8], fin: bool, bytewise: bool) {
    if !bytewise || bytes.is_empty() {
        session.receive(stream_id, bytes, fin).unwrap();
        return;
    }
    for (i, b) in bytes.iter().enumerate() {
        session
            .receive(stream_id, std::slice::from_ref(b), fin && i + 1 == bytes.len())
            .unwrap();
    }
}

/// WebTransport data events joined per stream, the others as they are.
fn joined(events: Vec<SessionEvent>) -> Vec<SessionEvent> {
    let mut out: Vec<SessionEvent> = Vec::new();
    for event in events {
        if let SessionEvent::WebTransportData { stream_id, data, fin } = &event
            && let Some(SessionEvent::WebTransportData {
                stream_id: last_id,
                data: last,
                fin: last_fin,
            }) = out.last_mut()
            && last_id == stream_id
            && !*last_fin
        {
            last.extend_from_slice(data);
            *last_fin = *fin;
            continue;
        }
        if let SessionEvent::WebTransportData { data, fin: false, .. } = &event
            && data.is_empty()
        {
            continue;
        }
        out.push(event);
    }
    out
}

/// A session opened on stream 0 and accepted; the writes so far taken.
fn open_session(bytewise: bool, draft02: bool) -> (ServerSession, Vec<Field>) {
    let mut session = ServerSession::new(config());
    feed(&mut session, 0, &connect(draft02), false, bytewise);
    let events = drain(&mut session);
    let [
        SessionEvent::Request {
            stream_id: 0,
            request,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert!(request.is_extended_connect("webtransport"));
    session.send_head(0, 200, &[]).unwrap();
    let writes = session.take_writes();
    let head = writes
        .iter()
        .find(|w| w.target == Target::Request(0))
        .map(|w| decode_head(&w.bytes))
        .unwrap();
    assert_eq!(session.webtransport_sessions(), 1);
    (session, head)
}

fn decode_head(mut wire: &[u8]) -> Vec<Field> {
    let mut decoder = FrameDecoder::new(1 << 16);
    loop {
        let (used, event) = decoder.decode(wire).unwrap();
        wire = &wire[used..];
        if let Some(Event::Frame(Frame::Headers(section))) = event {
            let mut qpack = qpack::Decoder::new(0, 0);
            let qpack::Section::Decoded(fields) = qpack.decode_section(0, &section).unwrap() else {
                panic!("blocked")
            };
            return fields;
        }
        assert!(!wire.is_empty(), "no HEADERS");
    }
}

#[test]
fn settings_offer_webtransport_and_datagrams_only_when_configured() {
    let session = ServerSession::new(config());
    let s = session.settings();
    assert_eq!(s.enable_connect_protocol, Some(true));
    assert_eq!(s.h3_datagram, Some(true));
    assert_eq!(s.enable_webtransport, Some(true));
    assert_eq!(s.webtransport_max_sessions_draft07, Some(1));
    assert_eq!(s.wt_max_sessions, Some(1));
    // The control stream carries them, under their codepoints.
    let mut wire = Vec::new();
    s.encode_payload(&mut wire).unwrap();
    let parsed = Settings::parse(&wire).unwrap();
    assert!(parsed.supports_webtransport());
    assert!(parsed.unknown.is_empty());
    for codepoint in [0x33, 0x2b60_3742, 0xc671_706a, 0x14e9_cd29] {
        let mut id = Vec::new();
        varint::encode(codepoint, &mut id).unwrap();
        assert!(wire.windows(id.len()).any(|w| w == id), "{codepoint:#x}");
    }
    let plain = ServerSession::new(SessionConfig {
        enable_connect_protocol: true,
        ..SessionConfig::default()
    });
    assert!(!plain.settings().supports_webtransport());
    assert_eq!(plain.settings().h3_datagram, None);
}

#[test]
fn a_draft02_client_gets_the_field_it_checks() {
    for bytewise in [false, true] {
        let (_, head) = open_session(bytewise, true);
        assert!(head.contains(&Field::new(":status", "200")));
        assert!(head.contains(&Field::new("sec-webtransport-http3-draft", "draft02")));
        let (_, head) = open_session(bytewise, false);
        assert!(!head.iter().any(|f| f.name == b"sec-webtransport-http3-draft"));
    }
}

#[test]
fn client_streams_are_told_apart_by_their_first_bytes_in_any_pieces() {
    for bytewise in [false, true] {
        let (mut session, _) = open_session(bytewise, false);
        // A unidirectional stream: type 0x54, session 0, then raw bytes.
        let mut uni = varints(&[0x54, 0]);
        uni.extend_from_slice(b"publish me");
        feed(&mut session, 2, &uni, true, bytewise);
        // A bidirectional one: signal 0x41 (two bytes), session 0.
        let mut bidi = varints(&[0x41, 0]);
        bidi.extend_from_slice(b"\x01\x02raw, not frames");
        feed(&mut session, 4, &bidi, false, bytewise);
        // A request beside them is still a request.
        feed(&mut session, 8, &get(), true, bytewise);
        let events = joined(drain(&mut session));
        assert_eq!(
            events[..4],
            [
                SessionEvent::WebTransportStream {
                    stream_id: 2,
                    session_id: 0,
                    bidirectional: false
                },
                SessionEvent::WebTransportData {
                    stream_id: 2,
                    data: b"publish me".to_vec(),
                    fin: true
                },
                SessionEvent::WebTransportStream {
                    stream_id: 4,
                    session_id: 0,
                    bidirectional: true
                },
                SessionEvent::WebTransportData {
                    stream_id: 4,
                    data: b"\x01\x02raw, not frames".to_vec(),
                    fin: false
                },
            ],
            "bytewise {bytewise}"
        );
        assert!(matches!(events[4], SessionEvent::Request { stream_id: 8, .. }));
        assert_eq!(events[5], SessionEvent::End { stream_id: 8 });
        assert_eq!(events.len(), 6);
        // The server answers on the bidirectional stream with raw bytes.
        session.take_writes();
        session
            .send_webtransport(Target::Request(4), b"pong", true)
            .unwrap();
        let writes = session.take_writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(
            (writes[0].target, &writes[0].bytes[..], writes[0].fin),
            (Target::Request(4), &b"pong"[..], true)
        );
        assert_eq!(
            session.send_webtransport(Target::Request(4), b"more", false),
            Err(SendError::UnknownStream(4))
        );
    }
}

#[test]
fn streams_naming_no_session_are_refused() {
    let (mut session, _) = open_session(false, false);
    // Session 8 does not exist.
    session.receive(2, &varints(&[0x54, 8]), false).unwrap();
    session.receive(4, &varints(&[0x41, 8]), false).unwrap();
    let events = drain(&mut session);
    assert_eq!(
        events,
        [
            SessionEvent::StopSending {
                stream_id: 2,
                code: ErrorCode::WT_BUFFERED_STREAM_REJECTED
            },
            SessionEvent::StreamError {
                stream_id: 4,
                code: ErrorCode::WT_BUFFERED_STREAM_REJECTED,
                malformed: None
            },
        ]
    );
    // Their later bytes are dropped.
    session.receive(2, b"late", true).unwrap();
    session.receive(4, b"late", true).unwrap();
    assert!(drain(&mut session).is_empty());
    // Without WebTransport configured a 0x54 stream is an unknown type.
    let mut plain = ServerSession::new(SessionConfig {
        enable_connect_protocol: true,
        ..SessionConfig::default()
    });
    plain.receive(2, &varints(&[0x54, 0]), false).unwrap();
    assert_eq!(
        drain(&mut plain),
        [SessionEvent::StopSending {
            stream_id: 2,
            code: ErrorCode::H3_STREAM_CREATION_ERROR
        }]
    );
}

#[test]
fn server_streams_carry_their_prefix_and_end_with_the_session() {
    let (mut session, _) = open_session(false, false);
    let stream = session.open_webtransport_stream(0).unwrap();
    assert_eq!(stream, LocalStream::WebTransport(0));
    session
        .send_webtransport(Target::Local(stream), b"{\"id\":1}\n", false)
        .unwrap();
    let writes = session.take_writes();
    let w = writes.iter().find(|w| w.target == Target::Local(stream)).unwrap();
    let mut expected = varints(&[0x54, 0]);
    expected.extend_from_slice(b"{\"id\":1}\n");
    assert_eq!((&w.bytes[..], w.fin), (&expected[..], false));
    // A second session is refused while the first is held.
    session.receive(4, &connect(false), false).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::StreamError {
            stream_id: 4,
            code: ErrorCode::H3_REQUEST_REJECTED,
            malformed: None
        }]
    );
    // The client closes with the capsule, in a DATA frame.
    let mut capsule = Vec::new();
    capsule::encode_close(
        &Close {
            code: 7,
            reason: "done".into(),
        },
        &mut capsule,
    )
    .unwrap();
    // Bytes after the close capsule, in the same DATA frame and in a
    // later one, are dropped.
    capsule.push(0x00);
    let mut wire = Vec::new();
    frame::encode_data(&capsule, &mut wire).unwrap();
    frame::encode_data(b"late", &mut wire).unwrap();
    for b in &wire {
        session.receive(0, std::slice::from_ref(b), false).unwrap();
    }
    assert_eq!(
        drain(&mut session),
        [SessionEvent::WebTransportClosed {
            session_id: 0,
            close: Some(Close {
                code: 7,
                reason: "done".into()
            })
        }]
    );
    let writes = session.take_writes();
    // Its stream and the CONNECT stream are ended.
    assert!(writes.iter().any(|w| w.target == Target::Local(stream) && w.fin));
    assert!(writes.iter().any(|w| w.target == Target::Request(0) && w.fin));
    assert_eq!(session.webtransport_sessions(), 0);
    assert_eq!(
        session.send_webtransport(Target::Local(stream), b"x", false),
        Err(SendError::UnknownStream(0))
    );
    assert_eq!(
        session.open_webtransport_stream(0),
        Err(SendError::UnknownSession(0))
    );
}

#[test]
fn the_connect_stream_ending_resets_the_sessions_streams() {
    let (mut session, _) = open_session(false, false);
    session.receive(2, &varints(&[0x54, 0]), false).unwrap();
    session.receive(4, &varints(&[0x41, 0]), false).unwrap();
    drain(&mut session);
    session.receive(0, &[], true).unwrap();
    assert_eq!(
        drain(&mut session),
        [
            SessionEvent::StopSending {
                stream_id: 2,
                code: ErrorCode::WT_SESSION_GONE
            },
            SessionEvent::StreamError {
                stream_id: 4,
                code: ErrorCode::WT_SESSION_GONE,
                malformed: None
            },
            SessionEvent::WebTransportClosed {
                session_id: 0,
                close: None
            },
        ]
    );
    // A new session may open now.
    session.receive(8, &connect(false), false).unwrap();
    assert!(matches!(
        drain(&mut session)[..],
        [SessionEvent::Request { stream_id: 8, .. }]
    ));
}

#[test]
fn a_reset_connect_stream_or_a_bad_capsule_ends_the_session() {
    let (mut session, _) = open_session(false, false);
    session.reset_by_peer(0, 0x10c).unwrap();
    let events = drain(&mut session);
    assert_eq!(
        events[0],
        SessionEvent::WebTransportClosed {
            session_id: 0,
            close: None
        }
    );
    assert_eq!(session.webtransport_sessions(), 0);

    let (mut session, _) = open_session(false, false);
    // A close capsule shorter than its code.
    let mut wire = Vec::new();
    frame::encode_data(&[0x68, 0x43, 0x01, 0x00], &mut wire).unwrap();
    session.receive(0, &wire, false).unwrap();
    let events = drain(&mut session);
    assert_eq!(
        events,
        [
            SessionEvent::WebTransportClosed {
                session_id: 0,
                close: None
            },
            SessionEvent::StreamError {
                stream_id: 0,
                code: ErrorCode::H3_MESSAGE_ERROR,
                malformed: None
            }
        ]
    );
}

#[test]
fn a_refused_session_is_forgotten() {
    let mut session = ServerSession::new(config());
    session.receive(0, &connect(false), false).unwrap();
    drain(&mut session);
    session.send_head(0, 403, &[]).unwrap();
    assert_eq!(session.webtransport_sessions(), 0);
    assert_eq!(session.datagram(0, b"x"), Err(SendError::UnknownSession(0)));
}

#[test]
fn client_streams_reset_or_stopped_are_reported() {
    let (mut session, _) = open_session(false, false);
    session.receive(2, &varints(&[0x54, 0]), false).unwrap();
    session.receive(4, &varints(&[0x41, 0]), false).unwrap();
    drain(&mut session);
    session.reset_by_peer(2, 9).unwrap();
    session.stopped_by_peer(Target::Request(4), 10).unwrap();
    let stream = session.open_webtransport_stream(0).unwrap();
    session.stopped_by_peer(Target::Local(stream), 11).unwrap();
    assert_eq!(
        drain(&mut session),
        [
            SessionEvent::WebTransportReset {
                stream_id: 2,
                code: 9
            },
            SessionEvent::WebTransportStopped {
                target: Target::Request(4),
                code: 10
            },
            SessionEvent::WebTransportStopped {
                target: Target::Local(stream),
                code: 11
            },
        ]
    );
    // A stream reset before its prefix was whole is simply gone.
    session.receive(8, &[0x40], false).unwrap();
    session.reset_by_peer(8, 1).unwrap();
    assert!(drain(&mut session).is_empty());
}

#[test]
fn datagrams_go_both_ways_and_malformed_ones_close_the_connection() {
    let (mut session, _) = open_session(false, false);
    let mut wire = Vec::new();
    datagram::encode(0, b"hello", &mut wire).unwrap();
    session.receive_datagram(&wire).unwrap();
    // One for no session is dropped and counted.
    let mut other = Vec::new();
    datagram::encode(40, b"lost", &mut other).unwrap();
    session.receive_datagram(&other).unwrap();
    assert_eq!(
        drain(&mut session),
        [SessionEvent::Datagram {
            session_id: 0,
            data: b"hello".to_vec()
        }]
    );
    assert_eq!(session.dropped_datagrams(), 1);
    assert_eq!(session.datagram(0, b"out").unwrap(), [0x00, b'o', b'u', b't']);
    let e = session.receive_datagram(&[0x40]).unwrap_err();
    assert_eq!(
        (e.code, e.violation),
        (ErrorCode::H3_DATAGRAM_ERROR, Violation::MalformedDatagram)
    );
    assert_eq!(session.receive(0, b"", false), Err(e));
}

#[test]
fn server_close_sends_the_capsule_and_ends_the_connect_stream() {
    let (mut session, _) = open_session(false, false);
    session.close_webtransport(0, 3, "going away").unwrap();
    let writes = session.take_writes();
    let w = writes.iter().find(|w| w.target == Target::Request(0)).unwrap();
    assert!(w.fin);
    let mut decoder = FrameDecoder::new(1 << 16);
    let (used, event) = decoder.decode(&w.bytes).unwrap();
    assert!(matches!(event, Some(Event::DataStart { .. })), "{event:?}");
    let (_, event) = decoder.decode(&w.bytes[used..]).unwrap();
    let Some(Event::Data(payload)) = event else {
        panic!("{event:?}")
    };
    let mut reader = capsule::CapsuleReader::new();
    let mut out = Vec::new();
    reader.feed(payload, &mut out).unwrap();
    assert_eq!(
        out,
        [capsule::Capsule::Close(Close {
            code: 3,
            reason: "going away".into()
        })]
    );
    assert!(drain(&mut session).is_empty());
    assert_eq!(
        session.close_webtransport(0, 0, ""),
        Err(SendError::UnknownSession(0))
    );
}

#[test]
fn an_abandoned_connect_stream_frees_the_session_slot() {
    let (mut session, _) = open_session(false, false);
    session.receive(4, &varints(&[0x41, 0]), false).unwrap();
    drain(&mut session);
    session.abandon(0);
    assert_eq!(session.webtransport_sessions(), 0);
    assert_eq!(
        drain(&mut session),
        [SessionEvent::StreamError {
            stream_id: 4,
            code: ErrorCode::WT_SESSION_GONE,
            malformed: None
        }]
    );
    // A new session may open.
    session.receive(8, &connect(false), false).unwrap();
    assert!(matches!(
        drain(&mut session)[..],
        [SessionEvent::Request { stream_id: 8, .. }]
    ));
    // An abandoned WebTransport stream leaves its session.
    session.send_head(8, 200, &[]).unwrap();
    session.receive(12, &varints(&[0x41, 8]), false).unwrap();
    drain(&mut session);
    session.abandon(12);
    assert_eq!(
        session.send_webtransport(Target::Request(12), b"x", false),
        Err(SendError::UnknownStream(12))
    );
}
