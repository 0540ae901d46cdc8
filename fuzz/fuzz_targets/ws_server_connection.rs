//! A server-role connection fed arbitrary bytes, whole and in pieces whose
//! sizes come from the input, copied out (`receive`) and in place
//! (`receive_in_place`): never a panic, the same events and replies however
//! the bytes are split and received, and memory bounded by the limits. A
//! message lent in place, framed back where it lies, is the frame `send`
//! writes.
#![no_main]

use std::ops::Range;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tether_ws::{Config, Connection, Event, Incoming, Message, MessageKind, Role, State};

const MAX_MESSAGE: usize = 4096;

fn run(input: &[u8], sizes: &[u8], in_place: bool, now: Instant) -> (Vec<Event>, Vec<u8>, State) {
    let config = Config::default()
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(2048)
        .max_fragments(64);
    let mut conn = Connection::new(Role::Server, config, now);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let size = if sizes.is_empty() {
            rest.len()
        } else {
            (sizes[i % sizes.len()] as usize).clamp(1, rest.len())
        };
        i += 1;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut copy = chunk.to_vec();
        let mut chunk = &mut copy[..];
        while !chunk.is_empty() {
            let (used, event) = if in_place {
                let start = chunk.as_ptr() as usize;
                let (used, incoming) = conn.receive_in_place(chunk, now, &mut out);
                let mut lent = None;
                let event = incoming.map(|incoming| match incoming {
                    Incoming::Borrowed(message) => {
                        lent = Some((message.as_bytes().as_ptr() as usize - start, message.kind()));
                        Event::Message(message.to_owned())
                    }
                    Incoming::Event(event) => event,
                });
                if let (Some((at, kind)), Some(Event::Message(message))) = (lent, &event) {
                    echo_in_place(chunk, at..used, kind, message, now);
                }
                (used, event)
            } else {
                conn.receive(chunk, now, &mut out)
            };
            assert!(used > 0 || event.is_some(), "no progress");
            chunk = &mut chunk[used..];
            if let Some(event) = event {
                if let Event::Message(m) = &event {
                    assert!(m.as_bytes().len() <= MAX_MESSAGE);
                    if m.is_text() {
                        assert!(m.as_text().is_some(), "text events are valid UTF-8");
                    }
                }
                events.push(event);
            }
        }
    }
    (events, out, conn.state())
}

/// A lent message framed where it lies (an echo without a copy) is the
/// frame `send` writes for it; it is refused only when its header came in
/// an earlier input, leaving too little room before the payload.
fn echo_in_place(data: &mut [u8], payload: Range<usize>, kind: MessageKind, message: &Message, now: Instant) {
    let mut echoer = Connection::new(Role::Server, Config::default(), now);
    let mut expected = Vec::new();
    echoer
        .send(message, &mut expected)
        .expect("an open connection sends");
    let header_len = expected.len() - message.as_bytes().len();
    match echoer.frame_in_place(kind, data, payload.clone()) {
        Some(start) => assert_eq!(data[start..payload.end], expected[..]),
        None => assert!(payload.start < header_len, "refused with room for the header"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = (data[0] as usize).min(data.len() - 1);
    let (sizes, input) = data[1..].split_at(split.min(16));
    let now = Instant::now();
    let whole = run(input, &[], false, now);
    let pieces = run(input, sizes, false, now);
    assert_eq!(whole, pieces);
    assert_eq!(run(input, &[], true, now), whole);
    assert_eq!(run(input, sizes, true, now), whole);
    // At most one terminal event, and nothing after it.
    if let Some(pos) = whole
        .0
        .iter()
        .position(|e| matches!(e, Event::Failed(_) | Event::Close(_)))
    {
        assert_eq!(pos, whole.0.len() - 1);
        assert_eq!(whole.2, State::Closed);
    }
});
