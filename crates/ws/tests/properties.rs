//! Property tests: whatever a client sends, in whatever fragments and read
//! sizes, a server receives exactly, and the reverse.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::Instant;

use common::*;
use proptest::prelude::*;
use tether_frame::OpCode;
use tether_ws::{Config, Event, Message};

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::text),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Message::binary),
    ]
}

/// Splits a message into fragments at the given cut points, with a ping
/// between fragments when `ping` is set.
fn fragment(msg: &Message, cuts: &[usize], ping: bool) -> Vec<u8> {
    let bytes = msg.as_bytes();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        if p >= start {
            pieces.push(&bytes[start..p]);
            start = p;
        }
    }
    let first = if msg.is_text() {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let mut out = Vec::new();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { first } else { OpCode::Continuation };
        out.extend(client_frame(i == last, opcode, piece));
        if ping && i != last {
            out.extend(client_frame(true, OpCode::Ping, b"x"));
        }
    }
    out
}

proptest! {
    #[test]
    fn fragmented_messages_arrive_intact_in_any_read_size(
        msgs in prop::collection::vec((message(), prop::collection::vec(0usize..700, 0..4), any::<bool>()), 1..6),
        piece in 1usize..50,
    ) {
        let now = Instant::now();
        let wire: Vec<u8> = msgs.iter().flat_map(|(m, cuts, ping)| fragment(m, cuts, *ping)).collect();
        let mut conn = server(Config::default(), now);
        let (events, _) = feed(&mut conn, &wire, piece, now);
        let got: Vec<Message> = events.into_iter().filter_map(|e| match e {
            Event::Message(m) => Some(m),
            Event::Ping(_) => None,
            other => panic!("unexpected {other:?}"),
        }).collect();
        let want: Vec<Message> = msgs.into_iter().map(|(m, _, _)| m).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn client_to_server_and_back(msgs in prop::collection::vec(message(), 1..6), piece in 1usize..64) {
        let now = Instant::now();
        let mut c = client(Config::default(), now);
        let mut s = server(Config::default(), now);
        let mut wire = Vec::new();
        for m in &msgs {
            c.send(m, &mut wire).unwrap();
        }
        let (events, _) = feed(&mut s, &wire, piece, now);
        let mut back = Vec::new();
        for e in &events {
            let Event::Message(m) = e else { panic!("unexpected {e:?}") };
            s.send(m, &mut back).unwrap();
        }
        let (echoed, _) = feed(&mut c, &back, piece, now);
        let want: Vec<Event> = msgs.into_iter().map(Event::Message).collect();
        prop_assert_eq!(&events, &want);
        prop_assert_eq!(echoed, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200), piece in 1usize..20) {
        let now = Instant::now();
        let mut conn = server(Config::default().max_message_size(1000).max_frame_size(500), now);
        let (events, _) = feed(&mut conn, &bytes, piece, now);
        // At most one Failed/Close, and it is the last event.
        if let Some(pos) = events.iter().position(|e| matches!(e, Event::Failed(_) | Event::Close(_))) {
            prop_assert_eq!(pos, events.len() - 1);
        }
    }
}
