//! Differential fuzzing of `tether_h2::frame::FrameDecoder` and the client
//! preface check.
//!
//! The first input byte picks whether the stream starts with the client
//! preface, a chunk size and our maximum frame size; the rest is the byte
//! stream. It is decoded twice, from one slice and in chunks through a
//! buffer (as a connection reads), and the two runs must agree on every
//! frame, every stream error and the error that ends the stream, if any.
//! Every decoded frame is re-encoded, which must give exactly as many bytes
//! as it took and decode again to an equal frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_h2::Error;
use tether_h2::frame::{FRAME_HEADER_LEN, Frame, FrameDecoder, FrameHeader, PREFACE, PrefaceMatcher};

/// What one run saw, in order.
#[derive(Debug, PartialEq)]
enum Event {
    /// A frame, re-encoded.
    Frame(Vec<u8>),
    /// A stream error, after which decoding went on.
    StreamError(Error),
}

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<Event>,
    /// The preface or connection error that ended the run.
    end: Option<Error>,
}

/// Re-encodes `frame`, which took `used` bytes, and checks it decodes back.
fn check_frame(frame: &Frame<'_>, used: usize, max: u32) -> Vec<u8> {
    let mut out = vec![0xa5];
    frame.encode(&mut out, max).expect("a decoded frame encodes");
    assert_eq!(out[0], 0xa5, "encode touched bytes it did not append");
    out.remove(0);
    assert_eq!(out.len(), used, "re-encoding {frame:?}");
    let header = FrameHeader::decode(&out).expect("a whole header");
    let again = Frame::parse(header, &out[FRAME_HEADER_LEN..]).expect("a re-encoded frame parses");
    assert_eq!(&again, frame);
    // A fresh decoder agrees, unless the frame is a CONTINUATION, which a
    // fresh decoder refuses for coming outside a field block.
    if !matches!(frame, Frame::Continuation(_)) {
        let mut fresh = FrameDecoder::new();
        fresh.set_max_frame_size(max).unwrap();
        assert_eq!(fresh.decode(&out), (used, Ok(Some(again))));
    }
    out
}

fn run(stream: &[u8], preface: bool, max: u32, chunk: usize) -> Run {
    let mut matcher = PrefaceMatcher::new();
    let mut decoder = FrameDecoder::new();
    decoder.set_max_frame_size(max).unwrap();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        let mut piece = piece;
        if preface && !matcher.is_complete() {
            match matcher.feed(piece) {
                Ok(None) => continue,
                Ok(Some(n)) => piece = &piece[n..],
                Err(e) => return Run { events, end: Some(e) },
            }
        }
        buffer.extend_from_slice(piece);
        loop {
            let (used, result) = decoder.decode(&buffer);
            assert!(used <= buffer.len());
            match result {
                Ok(Some(frame)) => {
                    let header = FrameHeader::decode(&buffer).unwrap();
                    assert!(header.length <= max);
                    assert_eq!(used, FRAME_HEADER_LEN + header.length as usize);
                    events.push(Event::Frame(check_frame(&frame, used, max)));
                }
                Ok(None) => {
                    assert_eq!(used, 0);
                    // Never more than one frame (at most `max` payload) is
                    // held waiting.
                    assert!(buffer.len() < FRAME_HEADER_LEN + max as usize);
                    break;
                }
                Err(e @ Error::Stream { .. }) => {
                    assert!(used >= FRAME_HEADER_LEN && e.code().is_some());
                    events.push(Event::StreamError(e));
                }
                Err(e) => {
                    assert!(e.is_connection_error(), "{e:?}");
                    assert!(!e.to_string().is_empty());
                    // The decoder stays failed.
                    assert_eq!(decoder.decode(&buffer[used..]), (0, Err(e)));
                    return Run { events, end: Some(e) };
                }
            }
            buffer.drain(..used);
        }
    }
    if preface && !matcher.is_complete() {
        assert!(events.is_empty());
    }
    Run { events, end: None }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let preface = selector & 1 != 0;
    let chunk = [1, 2, 3, 5, 9, 10, 17, 64][usize::from(selector >> 1 & 7)];
    let max = if selector & 0x10 != 0 { 16_384 } else { 16_777_215 };
    // With the preface bit and a leading 0 byte, the preface is put in
    // front of the data, so that the frames behind it get fuzzed too.
    let owned;
    let stream = if preface && rest.first() == Some(&0) {
        owned = [&PREFACE[..], &rest[1..]].concat();
        &owned[..]
    } else {
        rest
    };
    let whole = run(stream, preface, max, stream.len());
    let chunked = run(stream, preface, max, chunk);
    assert_eq!(whole, chunked);
    if let Some(Error::NotHttp2 { offset }) = whole.end {
        assert!(preface);
        assert!(offset < PREFACE.len() && offset < stream.len());
        assert_eq!(stream[..offset], PREFACE[..offset]);
        assert_ne!(stream[offset], PREFACE[offset]);
    }
});
