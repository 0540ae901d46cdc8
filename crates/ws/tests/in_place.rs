//! Receiving in place: a message that lies whole in the input is unmasked
//! there and lent out; everything else is received as `receive` would.

mod common;

use std::time::Instant;

use common::*;
use proptest::prelude::*;
use tether_frame::OpCode;
use tether_ws::{CloseCode, Config, Error, Event, Incoming, Message, MessageRef};

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
}
