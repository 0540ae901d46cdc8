//! Receiving in place: a message that lies whole in the input is unmasked
//! there and lent out; everything else is received as `receive` would.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::Instant;

use common::*;
use proptest::prelude::*;
use tether_frame::OpCode;
use tether_ws::{CloseCode, Config, Error, Event, Incoming, Message, MessageKind, MessageRef};

#[test]
fn a_whole_frame_is_lent_from_the_input_unmasked() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut input = client_frame(true, OpCode::Text, "grüße".as_bytes());
    input.extend(client_frame(true, OpCode::Binary, &[0, 1, 2, 255]));
    let span = input.as_ptr_range();
    let mut out = Vec::new();

    let (used, incoming) = conn.receive_in_place(&mut input, now, &mut out);
    let Some(Incoming::Borrowed(MessageRef::Text(text))) = incoming else {
        panic!("expected borrowed text, got {incoming:?}");
    };
    assert_eq!(text, "grüße");
    assert!(span.contains(&text.as_ptr()), "the text is the input's own bytes");
    assert_eq!(used, 6 + "grüße".len());

    let (rest, incoming) = conn.receive_in_place(&mut input[used..], now, &mut out);
    assert_eq!(rest, 6 + 4);
    assert!(matches!(
        incoming,
        Some(Incoming::Borrowed(MessageRef::Binary(&[0, 1, 2, 255])))
    ));
    assert!(out.is_empty());
}

#[test]
fn a_message_split_across_inputs_or_frames_is_owned() {
    let now = Instant::now();
    let frame = client_frame(true, OpCode::Binary, &[7; 300]);
    let mut conn = server(Config::default(), now);
    let (events, _, borrowed) = feed_in_place(&mut conn, &frame, 100, now);
    assert_eq!(events, [Event::Message(Message::binary(vec![7; 300]))]);
    assert_eq!(borrowed, 0);

    let mut fragmented = client_frame(false, OpCode::Text, b"ab");
    fragmented.extend(client_frame(true, OpCode::Continuation, b"cd"));
    let mut conn = server(Config::default(), now);
    let (events, _, borrowed) = feed_in_place(&mut conn, &fragmented, fragmented.len(), now);
    assert_eq!(events, [Event::Message(Message::text("abcd"))]);
    assert_eq!(borrowed, 0);
}

#[test]
fn a_header_read_before_its_whole_payload_is_lent_still() {
    // The header arrives alone, then the payload in one piece: it is whole
    // in that input, so it is lent too.
    let now = Instant::now();
    let frame = client_frame(true, OpCode::Text, b"later");
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    let mut head = frame[..6].to_vec();
    assert!(matches!(
        conn.receive_in_place(&mut head, now, &mut out),
        (6, None)
    ));
    let mut payload = frame[6..].to_vec();
    let (used, incoming) = conn.receive_in_place(&mut payload, now, &mut out);
    assert_eq!(used, 5);
    assert!(matches!(
        incoming,
        Some(Incoming::Borrowed(MessageRef::Text("later")))
    ));
    // No room before it to frame it back where it lies: `send` it is.
    assert_eq!(conn.frame_in_place(MessageKind::Text, &mut payload, 0..5), None);
    assert_eq!(payload, b"later");
}

#[test]
fn invalid_utf8_in_a_lent_text_fails_with_1007() {
    let now = Instant::now();
    let mut input = client_frame(true, OpCode::Text, &[b'a', 0xff, b'b']);
    input.extend(client_frame(true, OpCode::Text, b"never seen"));
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    let len = input.len();
    let (used, incoming) = conn.receive_in_place(&mut input, now, &mut out);
    assert_eq!(used, len, "a failed connection uses up its input");
    let Some(Incoming::Event(Event::Failed(Error::Frame(tether_frame::Error::InvalidUtf8)))) = incoming
    else {
        panic!("expected an invalid UTF-8 failure, got {incoming:?}");
    };
    assert_eq!(out[..4], [0x88, 0x0f, 0x03, 0xef], "close 1007");
    assert_eq!(conn.state(), tether_ws::State::Closed);
}

#[test]
fn the_message_limit_holds_before_anything_is_lent() {
    let now = Instant::now();
    let mut input = client_frame(true, OpCode::Binary, &[1; 101]);
    let mut conn = server(Config::default().max_message_size(100), now);
    let mut out = Vec::new();
    let (_, incoming) = conn.receive_in_place(&mut input, now, &mut out);
    assert!(
        matches!(
            incoming,
            Some(Incoming::Event(Event::Failed(Error::Limit { .. })))
        ),
        "{incoming:?}"
    );
}

#[test]
fn a_closing_connection_still_lends_and_a_closed_one_ignores_input() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut out = Vec::new();
    conn.close(CloseCode::NORMAL, "bye", now, &mut out).unwrap();
    let mut input = client_frame(true, OpCode::Text, b"last words");
    input.extend(client_frame(true, OpCode::Close, &[0x03, 0xe8]));
    input.extend(client_frame(true, OpCode::Text, b"after close"));
    let (used, incoming) = conn.receive_in_place(&mut input, now, &mut out);
    assert!(matches!(
        incoming,
        Some(Incoming::Borrowed(MessageRef::Text("last words")))
    ));
    let rest = &mut input[used..];
    let len = rest.len();
    let (used, incoming) = conn.receive_in_place(rest, now, &mut out);
    assert_eq!(used, len);
    assert!(matches!(incoming, Some(Incoming::Event(Event::Close(_)))));
}

/// Receives `frame` (one client frame) in place and frames its payload
/// back where it lies with `conn`: the bytes to send.
fn echo_in_place(conn: &mut tether_ws::Connection, frame: &mut [u8], now: Instant) -> Vec<u8> {
    let base = frame.as_ptr() as usize;
    let (used, incoming) = conn.receive_in_place(frame, now, &mut Vec::new());
    let Some(Incoming::Borrowed(message)) = incoming else {
        panic!("expected a lent message, got {incoming:?}");
    };
    let at = message.as_bytes().as_ptr() as usize - base;
    let kind = message.kind();
    assert_eq!(at + message.as_bytes().len(), used);
    let start = conn
        .frame_in_place(kind, frame, at..used)
        .expect("room for the header");
    frame[start..used].to_vec()
}

#[test]
fn a_payload_framed_where_it_lies_is_the_frame_send_writes() {
    let now = Instant::now();
    for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
        for opcode in [OpCode::Text, OpCode::Binary] {
            let payload = vec![b'e'; len];
            let mut frame = client_frame(true, opcode, &payload);
            let echoed = echo_in_place(&mut server(Config::default(), now), &mut frame, now);
            let mut expected = Vec::new();
            let message = match opcode {
                OpCode::Text => MessageRef::Text(std::str::from_utf8(&payload).unwrap()),
                _ => MessageRef::Binary(&payload),
            };
            server(Config::default(), now)
                .send(message, &mut expected)
                .unwrap();
            assert_eq!(echoed, expected, "{len} bytes, {opcode:?}");
        }
    }
}

#[test]
fn a_client_masks_a_payload_framed_where_it_lies_as_send_would() {
    let now = Instant::now();
    let payload = b"masked where it lies".to_vec();
    // Room for a masked header (2 + 4 bytes) before the payload.
    let at = 6;
    let mut room = [vec![0; at], payload.clone()].concat();
    let mut too_little = [vec![0; at - 1], payload.clone()].concat();
    assert_eq!(
        client(Config::default(), now).frame_in_place(MessageKind::Binary, &mut too_little, 5..25),
        None
    );
    let start = client(Config::default(), now)
        .frame_in_place(MessageKind::Binary, &mut room, at..at + payload.len())
        .unwrap();
    let mut expected = Vec::new();
    client(Config::default(), now)
        .send(MessageRef::Binary(&payload), &mut expected)
        .unwrap();
    assert_eq!(room[start..], expected[..]);
}

#[test]
fn framing_in_place_is_refused_without_room_after_close_or_out_of_bounds() {
    let now = Instant::now();
    let mut conn = server(Config::default(), now);
    let mut data = vec![1, 2, 3, 4];
    assert_eq!(
        conn.frame_in_place(MessageKind::Binary, &mut data, 1..4),
        None,
        "no room"
    );
    assert_eq!(
        conn.frame_in_place(MessageKind::Binary, &mut data, 2..9),
        None,
        "past the end"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 3..2;
    assert_eq!(
        conn.frame_in_place(MessageKind::Binary, &mut data, reversed),
        None,
        "reversed"
    );
    assert_eq!(data, [1, 2, 3, 4], "nothing changed");
    conn.close(CloseCode::NORMAL, "", now, &mut Vec::new()).unwrap();
    assert_eq!(
        conn.frame_in_place(MessageKind::Binary, &mut data, 2..4),
        None,
        "closing"
    );
    assert_eq!(data, [1, 2, 3, 4], "nothing changed");
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::text),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Message::binary),
        // Text that may not be UTF-8.
        prop::collection::vec(any::<u8>(), 0..20)
            .prop_map(|bytes| Message::text(String::from_utf8_lossy(&bytes))),
    ]
}

proptest! {
    #[test]
    fn in_place_and_copied_receiving_agree(
        msgs in prop::collection::vec((message(), any::<bool>(), any::<bool>()), 1..8),
        raw_text in prop::collection::vec(any::<u8>(), 0..8),
        piece in 1usize..700,
    ) {
        let now = Instant::now();
        let mut wire = Vec::new();
        let mut single_frames = 0;
        for (m, fragmented, ping) in &msgs {
            let opcode = if m.is_text() { OpCode::Text } else { OpCode::Binary };
            let bytes = m.as_bytes();
            if *fragmented && bytes.len() > 1 {
                let (a, b) = bytes.split_at(bytes.len() / 2);
                wire.extend(client_frame(false, opcode, a));
                if *ping {
                    wire.extend(client_frame(true, OpCode::Ping, b"p"));
                }
                wire.extend(client_frame(true, OpCode::Continuation, b));
            } else {
                wire.extend(client_frame(true, opcode, bytes));
                single_frames += 1;
            }
        }
        // Possibly invalid text at the end.
        wire.extend(client_frame(true, OpCode::Text, &raw_text));
        let copied = feed(&mut server(Config::default(), now), &wire, piece, now);
        let (events, out, _) = feed_in_place(&mut server(Config::default(), now), &wire, piece, now);
        prop_assert_eq!((events, out), copied);
        // Fed whole, every single-frame message is lent.
        let (_, _, borrowed) = feed_in_place(&mut server(Config::default(), now), &wire, wire.len(), now);
        let last_valid = usize::from(std::str::from_utf8(&raw_text).is_ok());
        prop_assert_eq!(borrowed, single_frames + last_valid);
    }

    #[test]
    fn any_message_echoed_in_place_is_the_frame_send_writes(message in message()) {
        let now = Instant::now();
        let opcode = if message.is_text() { OpCode::Text } else { OpCode::Binary };
        let mut frame = client_frame(true, opcode, message.as_bytes());
        let echoed = echo_in_place(&mut server(Config::default(), now), &mut frame, now);
        let mut expected = Vec::new();
        server(Config::default(), now).send(&message, &mut expected).unwrap();
        prop_assert_eq!(echoed, expected);
    }
}

/// One frame of hostile input: any first byte (short data frames most
/// often), the mask bit either way, any length up to 130 (past the short
/// form's 125), a key of zeros or not, and fewer payload bytes than
/// announced at times.
fn hostile_frame() -> impl Strategy<Value = Vec<u8>> {
    let first = prop_oneof![
        4 => prop::sample::select(vec![0x81u8, 0x82]),
        1 => prop::sample::select(vec![0x01u8, 0x02, 0x00, 0x80, 0x89, 0x8A, 0x88, 0xC1, 0xA2, 0x91, 0x83]),
        1 => any::<u8>(),
    ];
    (
        first,
        any::<bool>(),
        0u8..=127,
        any::<[u8; 4]>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..140),
    )
        .prop_map(|(b0, masked, len, key, zero_key, payload)| {
            let mut frame = vec![b0, len | if masked { 0x80 } else { 0 }];
            if len == 126 {
                frame.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
            } else if len == 127 {
                frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            }
            if masked {
                frame.extend_from_slice(&if zero_key { [0; 4] } else { key });
            }
            let take = if len < 126 {
                usize::from(len).min(payload.len())
            } else {
                payload.len()
            };
            frame.extend_from_slice(&payload[..take]);
            frame
        })
}

proptest! {
    /// The short-message path of `receive_in_place` (a frame told from two
    /// bytes) decides as the general path does, on any input, in either
    /// role and under limits below a short frame's size.
    #[test]
    fn hostile_input_in_place_and_copied_agree(
        frames in prop::collection::vec(hostile_frame(), 1..10),
        client_role in any::<bool>(),
        max_frame in prop::sample::select(vec![0u64, 5, 20, 125, 1 << 20]),
        max_message in prop::sample::select(vec![0usize, 7, 20, 200, 1 << 20]),
        piece in 1usize..300,
    ) {
        let now = Instant::now();
        let wire = frames.concat();
        let config = Config::default().max_frame_size(max_frame).max_message_size(max_message);
        let make = || if client_role { client(config, now) } else { server(config, now) };
        let copied = feed(&mut make(), &wire, piece, now);
        let (events, out, _) = feed_in_place(&mut make(), &wire, piece, now);
        prop_assert_eq!((events, out), copied.clone());
        let whole = feed(&mut make(), &wire, wire.len(), now);
        let (events, out, _) = feed_in_place(&mut make(), &wire, wire.len(), now);
        prop_assert_eq!((events, out), whole);
    }
}
