//! Property tests of the server connection: however the client's bytes are
//! cut, the events and the output are the same.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_h2::connection::{Config, Event, ServerConnection};
use tether_h2::frame::{self, Continuation, Data, Headers, PREFACE, Setting};
use tether_h2::hpack::{Encoder, Field};

/// A client conversation: preface, SETTINGS, then requests with bodies
/// whose sizes the test chooses, some with their block in CONTINUATIONs.
fn conversation(bodies: &[(usize, bool)]) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut w = PREFACE.to_vec();
    frame::encode_settings(&mut w, &[Setting::InitialWindowSize(1 << 20)], 16_384).unwrap();
    frame::encode_settings_ack(&mut w);
    for (i, &(len, split)) in bodies.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        let mut block = Vec::new();
        enc.encode(
            &[
                Field::new(":method", "POST"),
                Field::new(":scheme", "https"),
                Field::new(":path", format!("/{i}")),
                Field::new(":authority", "example.com"),
            ],
            &mut block,
        );
        let cut = if split { block.len() / 2 } else { block.len() };
        let mut h = Headers::new(stream, &block[..cut]);
        h.end_headers = !split;
        h.encode(&mut w, 16_384).unwrap();
        if split {
            Continuation {
                stream_id: stream,
                fragment: &block[cut..],
                end_headers: true,
            }
            .encode(&mut w, 16_384)
            .unwrap();
        }
        let body = vec![i as u8; len];
        let mut d = Data::new(stream, &body);
        d.end_stream = true;
        d.encode(&mut w, 16_384).unwrap();
    }
    w
}

/// Feeds `input` cut at `cuts`, answering each request and releasing each
/// body as it comes; returns the events and every byte written.
fn run(input: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let mut conn = ServerConnection::new(Config::default()).unwrap();
    let (mut events, mut written, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    for pair in bounds.windows(2) {
        pending.extend_from_slice(&input[pair[0]..pair[1]]);
        let (mut out, mut new) = (Vec::new(), Vec::new());
        let n = conn.receive(&pending, &mut out, &mut new);
        pending.drain(..n);
        for e in &new {
            if let Event::Data {
                stream,
                data,
                end_stream,
            } = e
            {
                conn.release(*stream, data.len(), &mut out);
                if *end_stream {
                    conn.send_headers(*stream, &[Field::new(":status", "204")], true, &mut out)
                        .unwrap();
                }
            }
        }
        events.extend(new);
        written.extend(out);
    }
    assert!(pending.is_empty());
    (events, written)
}

proptest! {
    #[test]
    fn any_cutting_gives_the_same_result(
        bodies in prop::collection::vec((0usize..3000, any::<bool>()), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let input = conversation(&bodies);
        let whole = run(&input, &[]);
        let requests = whole.0.iter().filter(|e| matches!(e, Event::Request { .. })).count();
        prop_assert_eq!(requests, bodies.len());
        prop_assert!(!whole.0.iter().any(|e| matches!(e, Event::ConnectionError(_))));
        prop_assert_eq!(run(&input, &cuts), whole);
    }
}
