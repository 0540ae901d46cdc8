//! Differential fuzzing of `tether_h3::frame::FrameDecoder`, the control
//! stream and the request stream.
//!
//! Byte 0 picks the chunk size (low nibble, plus 1) and the largest
//! buffered payload (high nibble, times 16); byte 1 picks the role of the
//! control stream's reader; the rest is one stream's bytes. Each reader
//! runs twice, on the whole input and on chunks of it, and the two runs
//! must agree on every event and on the error, if any. Every frame decoded
//! is re-encoded and must decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_h3::Error;
use tether_h3::frame::{Event, Frame, FrameDecoder};
use tether_h3::request::{RequestEvent, RequestStream};
use tether_h3::stream::{ControlStream, Role};

#[derive(Debug, PartialEq)]
enum Seen {
    Frame(Frame),
    DataStart(u64),
    Data(Vec<u8>),
    Skipped(u64, u64),
}

fn check_frame(frame: &Frame) {
    let mut wire = Vec::new();
    frame.encode(&mut wire).expect("a decoded frame encodes");
    let mut decoder = FrameDecoder::new(wire.len());
    let (used, event) = decoder.decode(&wire).expect("a re-encoded frame decodes");
    assert_eq!(used, wire.len());
    assert_eq!(event, Some(Event::Frame(frame.clone())));
}

fn frames(input: &[u8], chunk: usize, max: usize) -> (Vec<Seen>, Option<Error>) {
    let mut decoder = FrameDecoder::new(max);
    let mut seen: Vec<Seen> = Vec::new();
    for piece in input.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, event) = match decoder.decode(rest) {
                Ok(ok) => ok,
                Err(e) => return (seen, Some(e)),
            };
            assert!(used > 0 || event.is_some(), "no progress");
            rest = &rest[used..];
            match event {
                None => {}
                Some(Event::Frame(f)) => {
                    check_frame(&f);
                    seen.push(Seen::Frame(f));
                }
                Some(Event::DataStart { len }) => seen.push(Seen::DataStart(len)),
                // Pieces are joined so that both runs compare equal.
                Some(Event::Data(d)) => match seen.last_mut() {
                    Some(Seen::Data(v)) => v.extend_from_slice(d),
                    _ => seen.push(Seen::Data(d.to_vec())),
                },
                Some(Event::Skipped { frame_type, len }) => seen.push(Seen::Skipped(frame_type, len)),
            }
        }
    }
    (seen, decoder.finish().err())
}

fn control(input: &[u8], chunk: usize, max: usize, role: Role) -> (usize, Option<Error>) {
    let mut stream = ControlStream::new(role, max);
    let mut events = Vec::new();
    for piece in input.chunks(chunk) {
        if let Err(e) = stream.receive(piece, &mut events) {
            return (events.len(), Some(e));
        }
    }
    (events.len(), None)
}

fn request(input: &[u8], chunk: usize, max: usize) -> (Vec<(u8, Vec<u8>)>, Option<Error>) {
    let mut stream = RequestStream::new(max);
    let mut seen: Vec<(u8, Vec<u8>)> = Vec::new();
    for piece in input.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, event) = match stream.decode(rest) {
                Ok(ok) => ok,
                Err(e) => return (seen, Some(e)),
            };
            rest = &rest[used..];
            match event {
                None => {}
                Some(RequestEvent::Headers(h)) => seen.push((b'h', h)),
                Some(RequestEvent::Trailers(t)) => seen.push((b't', t)),
                Some(RequestEvent::Data(d)) => match seen.last_mut() {
                    Some((b'd', v)) => v.extend_from_slice(d),
                    _ => seen.push((b'd', d.to_vec())),
                },
            }
        }
    }
    (seen, stream.finish().err())
}

fuzz_target!(|data: &[u8]| {
    let [config, role, input @ ..] = data else {
        return;
    };
    let chunk = usize::from(config & 0x0f) + 1;
    let max = usize::from(config >> 4) * 16;
    let role = if role & 1 == 0 { Role::Server } else { Role::Client };

    assert_eq!(frames(input, input.len().max(1), max), frames(input, chunk, max));
    assert_eq!(
        control(input, input.len().max(1), max, role),
        control(input, chunk, max, role)
    );
    assert_eq!(
        request(input, input.len().max(1), max),
        request(input, chunk, max)
    );
});
