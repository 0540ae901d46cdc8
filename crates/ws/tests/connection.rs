//! The connection state machine, case by case, each input fed whole, in
//! pieces, one byte at a time and (where it matters) with trailing bytes.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tether_frame::{CloseCode, OpCode, Rsv};
use tether_ws::{Config, Connection, Error, Event, Limit, Message, Role, SharedConfig, State};

fn text(s: &str) -> Event {
    Event::Message(Message::text(s))
}

fn close_code_of(out: &[u8]) -> Option<u16> {
    // An unmasked server close frame: 0x88, len, code...
    assert_eq!(out[0], 0x88, "expected a close frame, got {out:02x?}");
    (out[1] >= 2).then(|| u16::from_be_bytes([out[2], out[3]]))
}

#[test]
fn rfc_masked_hello_reaches_the_server() {
    let now = Instant::now();
    let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let (events, out) = feed_every_way(|| server(Config::default(), now), &wire, now);
    assert_eq!(events, [text("Hello")]);
    assert!(out.is_empty());
}

#[test]
fn rfc_unmasked_hello_and_fragments_reach_the_client() {
    let now = Instant::now();
    let (events, _) = feed_every_way(
        || client(Config::default(), now),
        &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
        now,
    );
    assert_eq!(events, [text("Hello")]);
    let fragmented = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let (events, _) = feed_every_way(|| client(Config::default(), now), &fragmented, now);
    assert_eq!(events, [text("Hello")]);
}

#[test]
fn ping_is_answered_with_a_pong_carrying_its_payload() {
    let now = Instant::now();
    let (events, out) = feed_every_way(
        || server(Config::default(), now),
        &client_frame(true, OpCode::Ping, b"Hello"),
        now,
    );
    assert!(matches!(&events[..], [Event::Ping(p)] if p.as_slice() == b"Hello"));
    assert_eq!(out, [0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']);
    // RFC example: a masked pong reaches the server as a Pong event.
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let (events, out) = feed_every_way(|| server(Config::default(), now), &pong, now);
    assert!(matches!(&events[..], [Event::Pong(p)] if p.as_slice() == b"Hello"));
    assert!(out.is_empty());
}

#[test]
fn client_pongs_are_masked() {
    let now = Instant::now();
    let mut c = client(Config::default(), now);
    let (_, out) = feed(&mut c, &server_frame(true, OpCode::Ping, b"abc"), 100, now);
    assert_eq!(out[0], 0x8a);
    assert_eq!(out[1], 0x80 | 3, "mask bit set");
    let mut s = server(Config::default(), now);
    let (events, _) = feed(&mut s, &out, 100, now);
    assert!(matches!(&events[..], [Event::Pong(p)] if p.as_slice() == b"abc"));
}

#[test]
fn control_frames_may_interleave_with_fragments() {
    let now = Instant::now();
    let input = concat(&[
        client_frame(false, OpCode::Text, b"Hel"),
        client_frame(true, OpCode::Ping, b"p1"),
        client_frame(false, OpCode::Continuation, b""),
        client_frame(true, OpCode::Pong, b""),
        client_frame(true, OpCode::Continuation, b"lo"),
    ]);
    let (events, out) = feed_every_way(|| server(Config::default(), now), &input, now);
    assert_eq!(events.len(), 3);
    assert!(matches!(&events[0], Event::Ping(p) if p.as_slice() == b"p1"));
    assert!(matches!(&events[1], Event::Pong(p) if p.is_empty()));
    assert_eq!(events[2], text("Hello"));
    assert_eq!(out, [0x8a, 0x02, b'p', b'1']);
}

#[test]
fn empty_messages_and_binary() {
    let now = Instant::now();
    let input = concat(&[
        client_frame(true, OpCode::Text, b""),
        client_frame(true, OpCode::Binary, b""),
        client_frame(false, OpCode::Binary, &[0, 1]),
        client_frame(true, OpCode::Continuation, &[0xff]),
    ]);
    let (events, _) = feed_every_way(|| server(Config::default(), now), &input, now);
    assert_eq!(
        events,
        [
            text(""),
            Event::Message(Message::binary(vec![])),
            Event::Message(Message::binary(vec![0, 1, 0xff]))
        ]
    );
}

/// Fails the connection with `error`, writing a close frame with `code`.
fn assert_fails(input: &[u8], config: Config, error: Error, code: u16) {
    let now = Instant::now();
    let (events, out) = feed_every_way(|| server(config, now), input, now);
    assert_eq!(
        events.last(),
        Some(&Event::Failed(error.clone())),
        "events: {events:?}"
    );
    assert_eq!(close_code_of(&out), Some(code));
    assert_eq!(error.close_code().map(|c| c.0), Some(code));
    let mut conn = server(config, now);
    feed(&mut conn, input, input.len(), now);
    assert_eq!(conn.state(), State::Closed);
    // Input after failure is consumed and ignored.
    let mut out = Vec::new();
    assert_eq!(conn.receive(b"junk", now, &mut out), (4, None));
    assert!(out.is_empty());
}

#[test]
fn continuation_without_a_message_is_a_protocol_error() {
    assert_fails(
        &client_frame(true, OpCode::Continuation, b"x"),
        Config::default(),
        Error::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn new_message_inside_a_fragmented_one_is_a_protocol_error() {
    let input = concat(&[
        client_frame(false, OpCode::Text, b"a"),
        client_frame(true, OpCode::Binary, b"b"),
    ]);
    assert_fails(&input, Config::default(), Error::ExpectedContinuation, 1002);
}

#[test]
fn frame_level_errors_close_with_1002() {
    // Unmasked frame to a server.
    assert_fails(
        &server_frame(true, OpCode::Text, b"hi"),
        Config::default(),
        tether_frame::Error::UnmaskedFrame.into(),
        1002,
    );
    // RSV1 with no extension.
    let rsv = client_frame_rsv(true, OpCode::Text, Rsv::RSV1, b"hi");
    assert_fails(
        &rsv,
        Config::default(),
        tether_frame::Error::ReservedBits(0b100).into(),
        1002,
    );
    // Reserved opcode.
    assert_fails(
        &[0x83, 0x80, 0, 0, 0, 0],
        Config::default(),
        tether_frame::Error::ReservedOpcode(3).into(),
        1002,
    );
    // Fragmented ping.
    assert_fails(
        &[0x09, 0x80, 1, 2, 3, 4],
        Config::default(),
        tether_frame::Error::FragmentedControlFrame.into(),
        1002,
    );
}

#[test]
fn invalid_utf8_fails_fast_within_a_frame() {
    let now = Instant::now();
    // A 20-byte text frame whose 3rd byte already makes it invalid: the
    // failure must come before the remaining bytes arrive.
    let mut payload = b"ab\xff".to_vec();
    payload.resize(20, b'c');
    let frame = client_frame(true, OpCode::Text, &payload);
    let header_len = 6;
    let mut conn = server(Config::default(), now);
    let (events, out) = feed(&mut conn, &frame[..header_len + 3], 1, now);
    assert_eq!(
        events,
        [Event::Failed(Error::Frame(tether_frame::Error::InvalidUtf8))]
    );
    assert_eq!(close_code_of(&out), Some(1007));
}

#[test]
fn invalid_utf8_fails_fast_across_fragments() {
    let now = Instant::now();
    // "κόσμε" then a fragment starting a surrogate: invalid at its 2nd byte.
    let input = concat(&[
        client_frame(false, OpCode::Text, "κόσμε".as_bytes()),
        client_frame(false, OpCode::Continuation, b"\xed\xa0\x80"),
    ]);
    let (events, out) = feed_every_way(|| server(Config::default(), now), &input, now);
    assert_eq!(
        events,
        [Event::Failed(Error::Frame(tether_frame::Error::InvalidUtf8))]
    );
    assert_eq!(close_code_of(&out), Some(1007));
    // A character split between fragments is fine.
    let euro = "€".as_bytes();
    let input = concat(&[
        client_frame(false, OpCode::Text, &euro[..1]),
        client_frame(false, OpCode::Continuation, &euro[1..2]),
        client_frame(true, OpCode::Continuation, &euro[2..]),
    ]);
    let (events, _) = feed_every_way(|| server(Config::default(), now), &input, now);
    assert_eq!(events, [text("€")]);
}

#[test]
fn text_ending_inside_a_character_is_invalid() {
    let input = client_frame(true, OpCode::Text, b"ok\xe2\x82");
    assert_fails(
        &input,
        Config::default(),
        Error::Frame(tether_frame::Error::InvalidUtf8),
        1007,
    );
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let now = Instant::now();
    let (events, _) = feed_every_way(
        || server(Config::default(), now),
        &client_frame(true, OpCode::Binary, b"\xff\xfe"),
        now,
    );
    assert_eq!(events, [Event::Message(Message::binary(b"\xff\xfe".to_vec()))]);
}

#[test]
fn limits_close_with_1009_and_name_the_limit() {
    let frame_limit = Config::default().max_frame_size(10);
    assert_fails(
        &client_frame(true, OpCode::Binary, &[0; 11]),
        frame_limit,
        Error::Frame(tether_frame::Error::FrameTooLarge { len: 11, max: 10 }),
        1009,
    );
    let message_limit = Config::default().max_message_size(10);
    let input = concat(&[
        client_frame(false, OpCode::Binary, &[0; 6]),
        client_frame(true, OpCode::Continuation, &[0; 5]),
    ]);
    assert_fails(
        &input,
        message_limit,
        Error::Limit {
            limit: Limit::MessageSize,
            max: 10,
        },
        1009,
    );
    assert_fails(
        &client_frame(true, OpCode::Text, &[b'a'; 11]),
        message_limit,
        Error::Limit {
            limit: Limit::MessageSize,
            max: 10,
        },
        1009,
    );
    let fragment_limit = Config::default().max_fragments(3);
    let input = concat(&[
        client_frame(false, OpCode::Binary, b"a"),
        client_frame(false, OpCode::Continuation, b"b"),
        client_frame(false, OpCode::Continuation, b"c"),
        client_frame(true, OpCode::Continuation, b"d"),
    ]);
    assert_fails(
        &input,
        fragment_limit,
        Error::Limit {
            limit: Limit::Fragments,
            max: 3,
        },
        1009,
    );
    // The close reason says which limit.
    let now = Instant::now();
    let (_, out) = feed(&mut server(fragment_limit, now), &input, 100, now);
    assert!(String::from_utf8_lossy(&out[4..]).contains("fragment count"));
}

#[test]
fn message_limit_is_checked_before_the_payload_arrives() {
    let now = Instant::now();
    let frame = client_frame(true, OpCode::Binary, &[7; 1000]);
    let mut conn = server(Config::default().max_message_size(999), now);
    // Only the header (2 + 2 length + 4 mask bytes).
    let (events, _) = feed(&mut conn, &frame[..8], 8, now);
    assert_eq!(
        events,
        [Event::Failed(Error::Limit {
            limit: Limit::MessageSize,
            max: 999
        })]
    );
}

#[test]
fn peer_initiated_close_is_echoed_and_closes() {
    let now = Instant::now();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let input = concat(&[
        client_frame(true, OpCode::Close, &payload),
        client_frame(true, OpCode::Text, b"late"),
    ]);
    let (events, out) = feed_every_way(|| server(Config::default(), now), &input, now);
    assert_eq!(
        events,
        [Event::Close(tether_ws::CloseFrame {
            code: CloseCode::NORMAL,
            reason: "bye".into()
        })]
    );
    assert_eq!(out, [0x88, 0x02, 0x03, 0xe8], "the code is echoed");
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    let (used, _) = conn.receive(&input, now, &mut out);
    assert_eq!(used, input.len(), "data after the close frame is discarded");
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.send_text("x", &mut out), Err(Error::AlreadyClosing));
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let now = Instant::now();
    let (events, out) = feed_every_way(
        || server(Config::default(), now),
        &client_frame(true, OpCode::Close, b""),
        now,
    );
    assert_eq!(
        events,
        [Event::Close(tether_ws::CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        })]
    );
    assert_eq!(out, [0x88, 0x00]);
}

#[test]
fn bad_close_payloads_fail_the_connection() {
    assert_fails(
        &client_frame(true, OpCode::Close, b"\x03"),
        Config::default(),
        tether_frame::Error::TruncatedClosePayload.into(),
        1002,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_fails(
            &client_frame(true, OpCode::Close, &code.to_be_bytes()),
            Config::default(),
            tether_frame::Error::InvalidCloseCode(code).into(),
            1002,
        );
    }
    assert_fails(
        &client_frame(true, OpCode::Close, b"\x03\xe8\xce\xba\xe1\xbd"),
        Config::default(),
        tether_frame::Error::InvalidUtf8.into(),
        1007,
    );
}

#[test]
fn valid_close_codes_are_echoed() {
    let now = Instant::now();
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let (events, out) = feed(
            &mut server(Config::default(), now),
            &client_frame(true, OpCode::Close, &code.to_be_bytes()),
            64,
            now,
        );
        assert!(matches!(&events[..], [Event::Close(f)] if f.code.0 == code));
        assert_eq!(close_code_of(&out), Some(code));
    }
}

#[test]
fn locally_initiated_close_waits_for_the_peer() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    conn.close(CloseCode::GOING_AWAY, "restart", now, &mut out)
        .unwrap();
    assert_eq!(close_code_of(&out), Some(1001));
    assert_eq!(conn.state(), State::Closing);
    assert!(!conn.can_send());
    assert_eq!(conn.send_binary(b"x", &mut out), Err(Error::AlreadyClosing));
    assert_eq!(
        conn.close(CloseCode::NORMAL, "", now, &mut out),
        Err(Error::AlreadyClosing)
    );
    // Data still arrives; a ping is not answered any more.
    let mut reply = Vec::new();
    let (events, _) = feed(
        &mut conn,
        &concat(&[
            client_frame(true, OpCode::Text, b"in flight"),
            client_frame(true, OpCode::Ping, b""),
        ]),
        100,
        now,
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], text("in flight"));
    // The peer's close completes the handshake without another frame.
    let (used, event) = conn.receive(
        &client_frame(true, OpCode::Close, &1001u16.to_be_bytes()),
        now,
        &mut reply,
    );
    assert_eq!(used, 8);
    assert!(matches!(event, Some(Event::Close(f)) if f.code == CloseCode::GOING_AWAY));
    assert!(reply.is_empty());
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn close_timeout_gives_up_on_a_silent_peer() {
    let now = Instant::now();
    let config = Config::default().close_timeout(Duration::from_secs(2));
    let mut conn = server(config, now);
    let mut out = Vec::new();
    conn.close(CloseCode::NORMAL, "", now, &mut out).unwrap();
    let deadline = now + Duration::from_secs(2);
    assert_eq!(conn.poll_timeout(), Some(deadline));
    assert_eq!(
        conn.handle_timeout(deadline - Duration::from_millis(1), &mut out),
        None
    );
    assert_eq!(
        conn.handle_timeout(deadline, &mut out),
        Some(Event::Failed(Error::CloseTimeout))
    );
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn keepalive_pings_then_gives_up() {
    let now = Instant::now();
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(30)))
        .idle_timeout(Some(Duration::from_secs(60)));
    let mut conn = server(config, now);
    let t30 = now + Duration::from_secs(30);
    assert_eq!(conn.poll_timeout(), Some(t30));
    let mut out = Vec::new();
    assert_eq!(conn.handle_timeout(t30, &mut out), None);
    assert_eq!(out, [0x89, 0x00], "an empty ping");
    assert_eq!(conn.poll_timeout(), Some(now + Duration::from_secs(60)));
    // A pong (any input) resets both timers.
    let t40 = now + Duration::from_secs(40);
    feed(&mut conn, &client_frame(true, OpCode::Pong, b""), 10, t40);
    assert_eq!(conn.poll_timeout(), Some(t40 + Duration::from_secs(30)));
    // Silence past the idle timeout fails with 1001.
    out.clear();
    let t100 = t40 + Duration::from_secs(60);
    assert_eq!(
        conn.handle_timeout(t100, &mut out),
        Some(Event::Failed(Error::IdleTimeout))
    );
    assert_eq!(close_code_of(&out), Some(1001));
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn connections_of_one_shared_config_keep_their_own_exact_timers() {
    // The shared epoch lies after one connection's times and before the
    // other's: timers are exact either way.
    let now = Instant::now();
    let later = now + Duration::from_secs(3600);
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(30)))
        .close_timeout(Duration::from_millis(2500))
        .max_fragments(7);
    let shared = SharedConfig::new(config, now + Duration::from_secs(600));
    assert_eq!(shared.config(), config);
    let mut early = Connection::with_shared(Role::Server, &shared, now);
    let mut late = Connection::with_shared(Role::Server, &shared, later);
    assert_eq!(early.config(), config);
    assert_eq!(early.poll_timeout(), Some(now + Duration::from_secs(30)));
    assert_eq!(late.poll_timeout(), Some(later + Duration::from_secs(30)));
    let t = now + Duration::from_nanos(1_234_567_891);
    feed(&mut early, &client_frame(true, OpCode::Pong, b""), 10, t);
    assert_eq!(early.poll_timeout(), Some(t + Duration::from_secs(30)));
    assert_eq!(late.poll_timeout(), Some(later + Duration::from_secs(30)));
    let mut out = Vec::new();
    late.close(CloseCode::NORMAL, "", later, &mut out).unwrap();
    assert_eq!(late.poll_timeout(), Some(later + Duration::from_millis(2500)));
    assert_eq!(
        late.handle_timeout(later + Duration::from_millis(2499), &mut out),
        None
    );
    assert_eq!(
        late.handle_timeout(later + Duration::from_millis(2500), &mut out),
        Some(Event::Failed(Error::CloseTimeout))
    );
    assert_eq!(early.state(), State::Open);
    // The shared limits apply to each: an eighth fragment is refused.
    out.clear();
    let mut frames = client_frame(false, OpCode::Text, b"a");
    for _ in 0..7 {
        frames.extend(client_frame(false, OpCode::Continuation, b"a"));
    }
    let (events, _) = feed(&mut early, &frames, frames.len(), t);
    assert!(
        matches!(events.last(), Some(Event::Failed(Error::Limit { .. }))),
        "{events:?}"
    );
}

#[test]
fn timers_can_be_turned_off() {
    let now = Instant::now();
    let conn = server(Config::default().ping_interval(None).idle_timeout(None), now);
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn caller_errors_leave_the_connection_open() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    let e = conn.ping(&[0; 126], &mut out).unwrap_err();
    assert_eq!(e, Error::ControlPayloadTooLong(126));
    assert!(e.is_usage_error() && e.close_code().is_none());
    let e = conn.close(CloseCode::NO_STATUS, "", now, &mut out).unwrap_err();
    assert!(e.is_usage_error());
    let e = conn
        .close(CloseCode::NORMAL, &"x".repeat(124), now, &mut out)
        .unwrap_err();
    assert!(e.is_usage_error());
    assert!(out.is_empty());
    assert_eq!(conn.state(), State::Open);
    conn.send_text("still fine", &mut out).unwrap();
}

#[test]
fn trailing_partial_frame_is_kept_for_the_next_read() {
    let now = Instant::now();
    let second = client_frame(true, OpCode::Text, b"second");
    let mut input = client_frame(true, OpCode::Text, b"first");
    input.extend_from_slice(&second[..4]);
    let mut conn = server(Config::default(), now);
    let (events, _) = feed(&mut conn, &input, input.len(), now);
    assert_eq!(events, [text("first")]);
    let (events, _) = feed(&mut conn, &second[4..], 100, now);
    assert_eq!(events, [text("second")]);
}

#[test]
fn client_frames_are_masked_and_decode_on_a_server() {
    let now = Instant::now();
    let mut c = client(Config::default(), now);
    let mut wire = Vec::new();
    c.send_text("from the client", &mut wire).unwrap();
    c.send_binary(&[1, 2, 3], &mut wire).unwrap();
    c.ping(b"p", &mut wire).unwrap();
    assert_ne!(wire[1] & 0x80, 0);
    let (events, _) = feed_every_way(|| server(Config::default(), now), &wire, now);
    assert_eq!(events[0], text("from the client"));
    assert_eq!(events[1], Event::Message(Message::binary(vec![1, 2, 3])));
    assert!(matches!(events[2], Event::Ping(_)));
}

#[test]
fn send_owned_hands_back_large_payloads_and_copies_small_ones() {
    let now = Instant::now();
    for size in [0, 10, 4095, 4096, 70_000] {
        let message = Message::binary((0..size).map(|i| i as u8).collect::<Vec<u8>>());
        let mut c = client(Config::default(), now);
        let mut wire = Vec::new();
        let rest = c.send_owned(message.clone(), &mut wire).unwrap();
        assert_eq!(rest.is_some(), size >= 4096, "size {size}");
        if let Some(payload) = rest {
            assert_eq!(payload.len(), size);
            wire.extend_from_slice(&payload);
        }
        let (events, _) = feed(&mut server(Config::default(), now), &wire, 1000, now);
        assert_eq!(
            events,
            [Event::Message(message)],
            "size {size}: the server sees the same message"
        );
    }
    let mut s = server(Config::default(), now);
    let mut out = Vec::new();
    s.close(CloseCode::NORMAL, "", now, &mut out).unwrap();
    assert_eq!(
        s.send_owned(Message::text("x".repeat(5000)), &mut out),
        Err(Error::AlreadyClosing)
    );
}

#[test]
fn a_connection_stays_small() {
    // Every idle WebSocket of a server holds one; the server's budget is
    // 256 bytes of memory per idle connection, all included.
    let size = std::mem::size_of::<tether_ws::Connection>();
    assert!(size <= 88, "Connection is {size} bytes");
}

#[test]
fn a_lent_buffer_receives_the_next_message_and_is_given_back_when_unused() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut lent = Vec::with_capacity(4096);
    lent.extend_from_slice(b"stale bytes");
    let address = lent.as_ptr();
    assert_eq!(conn.lend_buffer(lent), None, "taken");
    let (events, _) = feed(
        &mut conn,
        &client_frame(true, OpCode::Text, b"into the lent buffer"),
        100,
        now,
    );
    let [Event::Message(message)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        message.as_text(),
        Some("into the lent buffer"),
        "cleared before use"
    );
    assert_eq!(message.as_bytes().as_ptr(), address, "no new allocation");
    assert_eq!(conn.reclaim_buffer(), None, "the message took it");
    // Unused: handed back whole, so an idle connection keeps nothing.
    assert_eq!(conn.lend_buffer(Vec::with_capacity(100)), None);
    assert!(
        conn.lend_buffer(Vec::with_capacity(100)).is_some(),
        "one at a time"
    );
    assert_eq!(conn.reclaim_buffer().map(|b| b.capacity() >= 100), Some(true));
    assert_eq!(conn.reclaim_buffer(), None);
    // Not while a message is half received.
    feed(&mut conn, &client_frame(false, OpCode::Binary, b"part"), 100, now);
    assert!(conn.lend_buffer(Vec::with_capacity(100)).is_some(), "handed back");
    assert_eq!(conn.reclaim_buffer(), None);
}

#[test]
fn receiving_len_counts_a_message_in_progress_and_a_carrier_can_fail_it() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    assert_eq!(conn.receiving_len(), 0);
    // A message whole in one read is not held.
    let whole = client_frame(true, OpCode::Binary, &[7; 40]);
    let (used, event) = conn.receive(&whole, now, &mut out);
    assert_eq!((used, conn.receiving_len()), (whole.len(), 0));
    assert!(matches!(event, Some(Event::Message(_))));
    // The first frame of two, then half of the second frame's payload.
    let first = client_frame(false, OpCode::Binary, &[1; 30]);
    assert_eq!(conn.receive(&first, now, &mut out), (first.len(), None));
    assert_eq!(conn.receiving_len(), 30);
    let second = client_frame(true, OpCode::Continuation, &[2; 20]);
    let half = second.len() - 10;
    assert_eq!(conn.receive(&second[..half], now, &mut out), (half, None));
    assert_eq!(conn.receiving_len(), 40);
    assert!(out.is_empty());
    // The carrier's budget was passed: 1009 with the limit as the reason,
    // the message dropped, the connection closed.
    let failed = conn.fail_over_limit(Limit::SharedMessages, 64, &mut out);
    let error = Error::Limit {
        limit: Limit::SharedMessages,
        max: 64,
    };
    assert_eq!(failed, Event::Failed(error.clone()));
    assert_eq!(close_code_of(&out), Some(1009));
    let reason = std::str::from_utf8(&out[4..]).unwrap();
    assert_eq!(reason, error.to_string());
    assert!(
        reason.contains("messages in progress on the connection"),
        "{reason}"
    );
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.receiving_len(), 0);
    // Once closing, no second close frame is written.
    let mut closing = server(Config::default(), now);
    closing
        .close(CloseCode::NORMAL, "", now, &mut Vec::new())
        .unwrap();
    let mut out = Vec::new();
    closing.fail_over_limit(Limit::SharedMessages, 64, &mut out);
    assert!(out.is_empty());
    assert_eq!(closing.state(), State::Closed);
}
