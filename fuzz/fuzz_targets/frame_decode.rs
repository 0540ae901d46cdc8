//! Differential fuzzing of `tether_frame::FrameDecoder`.
//!
//! The first input byte picks the decode rules and a chunk size; the rest is
//! a byte stream. It is decoded twice, from one slice and in chunks, and the
//! two runs must agree on every frame (header and unmasked payload bytes)
//! and on the error that ends the stream, if any. On the way, each complete
//! frame is checked against `decode_header`, re-encoded with `encode_frame`
//! (which must give back the exact input bytes, since the decoder only
//! accepts minimal encodings), its payload is run through `Utf8Validator`
//! (whole and in the chunked run's pieces) against `std::str::from_utf8`,
//! and close payloads through `parse_close_payload`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_frame::{
    CloseCode, DecodeRules, Error, FrameDecoder, FrameHeader, Item, MaskRule, OpCode, Rsv, Status,
    Utf8Validator, apply_mask, decode_header, encode_frame, parse_close_payload,
};

/// A frame as one run saw it.
#[derive(Debug, PartialEq)]
struct Frame {
    header: FrameHeader,
    /// Unmasked payload bytes received so far (all of them once complete).
    payload: Vec<u8>,
    /// Where each payload piece ended, as delivered.
    pieces: Vec<usize>,
    /// Raw input bytes of the frame, header included.
    raw: Vec<u8>,
}

/// Everything one run produced.
#[derive(Debug)]
struct Run {
    frames: Vec<Frame>,
    error: Option<Error>,
    idle: bool,
}

fn rules_and_chunk(selector: u8) -> (DecodeRules, usize) {
    let mask = match selector & 0b11 {
        0 => MaskRule::Required,
        1 => MaskRule::Forbidden,
        _ => MaskRule::Any,
    };
    let allowed_rsv = Rsv::from_bits(selector >> 2);
    let (max_payload, chunk) = match selector >> 5 {
        0 => (DecodeRules::DEFAULT_MAX_PAYLOAD, 1),
        1 => (DecodeRules::DEFAULT_MAX_PAYLOAD, 2),
        2 => (DecodeRules::DEFAULT_MAX_PAYLOAD, 3),
        3 => (DecodeRules::DEFAULT_MAX_PAYLOAD, 5),
        4 => (DecodeRules::DEFAULT_MAX_PAYLOAD, 16),
        5 => (100, 1),
        6 => (125, 7),
        _ => (u64::MAX, 13),
    };
    (
        DecodeRules {
            mask,
            allowed_rsv,
            max_payload,
        },
        chunk,
    )
}

/// Decodes `stream` handed over in pieces of `chunk` bytes (the whole
/// stream at once when `chunk` is at least its length).
fn run(stream: &[u8], rules: DecodeRules, chunk: usize) -> Run {
    let mut decoder = FrameDecoder::new(rules);
    let mut frames: Vec<Frame> = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            let before = input;
            let (used, item) = match decoder.decode(input) {
                Ok(step) => step,
                Err(error) => {
                    // Header bytes held back before the error are not a frame.
                    take_stash(&mut frames);
                    return Run {
                        frames,
                        error: Some(error),
                        idle: false,
                    };
                }
            };
            assert!(used <= input.len(), "used {used} of {}", input.len());
            // With input left, every call must take something, or a caller
            // looping until the input is used up would spin forever.
            assert!(used > 0 || item.is_some(), "no progress on {} bytes", input.len());
            input = &input[used..];
            match item {
                None => {
                    // The bytes went into a partial header: keep them for the
                    // frame's raw bytes.
                    assert!(input.is_empty(), "a partial header left input unread");
                    stash(&mut frames, &before[..used]);
                }
                Some(Item::Header(header)) => {
                    assert!(header.payload_len <= rules.max_payload);
                    match rules.mask {
                        MaskRule::Required => assert!(header.mask.is_some()),
                        MaskRule::Forbidden => assert!(header.mask.is_none()),
                        MaskRule::Any => {}
                    }
                    assert!(rules.allowed_rsv.contains(header.rsv));
                    if header.opcode.is_control() {
                        assert!(header.fin && header.payload_len <= 125, "{header:?}");
                    }
                    let mut raw = take_stash(&mut frames);
                    raw.extend_from_slice(&before[..used]);
                    assert_eq!(raw.len(), header.to_bytes().len(), "header bytes for {header:?}");
                    frames.push(Frame {
                        header,
                        payload: Vec::new(),
                        pieces: Vec::new(),
                        raw,
                    });
                }
                Some(Item::Payload { data, offset, last }) => {
                    assert_eq!(used, data.len());
                    assert!(!data.is_empty(), "empty payload piece");
                    let frame = frames.last_mut().expect("a payload piece before any header");
                    assert_eq!(offset, frame.payload.len() as u64, "pieces not contiguous");
                    let end = offset + data.len() as u64;
                    assert!(end <= frame.header.payload_len);
                    assert_eq!(last, end == frame.header.payload_len);
                    frame.raw.extend_from_slice(data);
                    let start = frame.payload.len();
                    frame.payload.extend_from_slice(data);
                    if let Some(mask) = frame.header.mask {
                        apply_mask(&mut frame.payload[start..], mask, offset as usize);
                    }
                    frame.pieces.push(frame.payload.len());
                }
            }
        }
    }
    let idle = decoder.is_idle();
    Run {
        frames,
        error: None,
        idle,
    }
}

/// Bytes of a header still being assembled are kept in a placeholder frame
/// with an empty raw header, recognised by `pieces == [usize::MAX]`.
fn stash(frames: &mut Vec<Frame>, bytes: &[u8]) {
    if !frames.last().is_some_and(is_stash) {
        frames.push(Frame {
            header: FrameHeader::new(true, OpCode::Continuation, 0),
            payload: Vec::new(),
            pieces: vec![usize::MAX],
            raw: Vec::new(),
        });
    }
    frames.last_mut().unwrap().raw.extend_from_slice(bytes);
}

fn take_stash(frames: &mut Vec<Frame>) -> Vec<u8> {
    if frames.last().is_some_and(is_stash) {
        frames.pop().unwrap().raw
    } else {
        Vec::new()
    }
}

fn is_stash(frame: &Frame) -> bool {
    frame.pieces == [usize::MAX]
}

fn naive_unmask(data: &[u8], mask: [u8; 4]) -> Vec<u8> {
    data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect()
}

/// Feeds `text` to a validator in the given pieces and checks it against
/// the standard library after every piece and at the end.
fn check_utf8(text: &[u8], ends: &[usize]) {
    let mut validator = Utf8Validator::new();
    let mut start = 0;
    for &end in ends {
        let fed = validator.feed(&text[start..end]);
        // The validator must fail exactly when the text so far can no
        // longer become valid, whatever follows.
        let hopeless = match std::str::from_utf8(&text[..end]) {
            Ok(_) => false,
            Err(e) => e.error_len().is_some(),
        };
        assert_eq!(fed.is_err(), hopeless, "feed up to {end} of {text:x?}");
        if let Err(e) = fed {
            assert_eq!(e, Error::InvalidUtf8);
            return;
        }
        assert_eq!(
            validator.is_complete(),
            std::str::from_utf8(&text[..end]).is_ok(),
            "boundary after {end} of {text:x?}"
        );
        start = end;
    }
    assert_eq!(start, text.len());
    assert_eq!(validator.finish().is_ok(), std::str::from_utf8(text).is_ok());
    // `finish` leaves the validator ready for the next text.
    assert!(validator.is_complete());
    validator.feed(b"ok").unwrap();
    validator.finish().unwrap();
}

fn check_close(payload: &[u8]) {
    let parsed = parse_close_payload(payload);
    match payload {
        [] => assert_eq!(parsed, Ok(None)),
        [_] => assert_eq!(parsed, Err(Error::TruncatedClosePayload)),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                assert_eq!(parsed, Err(Error::InvalidCloseCode(code.0)));
            } else {
                match std::str::from_utf8(reason) {
                    Ok(text) => assert_eq!(parsed, Ok(Some((code, text)))),
                    Err(_) => assert_eq!(parsed, Err(Error::InvalidUtf8)),
                }
            }
        }
    }
    if let Err(e) = parsed {
        assert!(e.close_code().is_some());
        assert!(!e.to_string().is_empty());
    }
}

/// Checks one complete frame of the whole run.
fn check_frame(frame: &Frame, rules: &DecodeRules) {
    let header = frame.header;
    // The stand-alone header decoder agrees with the incremental one.
    match decode_header(&frame.raw, rules) {
        Ok(Status::Complete((h, len))) => {
            assert_eq!(h, header);
            assert_eq!(len, header.to_bytes().len());
            assert_eq!(len, header.encoded_len());
        }
        other => panic!("decode_header on a decoded frame: {other:?}"),
    }
    let head_len = header.encoded_len();
    let wire = &frame.raw[head_len..];
    match header.mask {
        Some(mask) => assert_eq!(frame.payload, naive_unmask(wire, mask)),
        None => assert_eq!(frame.payload, wire),
    }
    // Encoding the decoded frame gives back the exact bytes.
    let mut out = vec![0xEE];
    encode_frame(&mut out, header, &frame.payload).expect("a decoded frame encodes");
    assert_eq!(out[0], 0xEE, "encode_frame touched bytes it did not append");
    assert_eq!(&out[1..], &frame.raw[..], "re-encoding {header:?}");

    if header.opcode == OpCode::Close {
        check_close(&frame.payload);
    }
    // Any payload may be the text of a one-frame message.
    check_utf8(&frame.payload, &[frame.payload.len()]);
    check_utf8(&frame.payload, &frame.pieces);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let (rules, chunk) = rules_and_chunk(selector);
    let whole = run(stream, rules, stream.len());
    let chunked = run(stream, rules, chunk);

    assert_eq!(whole.error, chunked.error, "errors differ");
    assert_eq!(whole.idle, chunked.idle, "end states differ");
    assert_eq!(whole.frames.len(), chunked.frames.len(), "frame counts differ");
    for (a, b) in whole.frames.iter().zip(&chunked.frames) {
        assert_eq!(a.header, b.header);
        assert_eq!(a.payload, b.payload, "payload of {:?}", a.header);
        assert_eq!(a.raw, b.raw);
    }
    if let Some(e) = whole.error {
        assert!(e.close_code().is_some(), "a decode error is the peer's: {e:?}");
        assert!(!e.to_string().is_empty());
    }
    // The bytes of every frame but an unfinished last one add up to the
    // stream when the run ended without an error.
    if whole.error.is_none() {
        let total: usize = whole.frames.iter().map(|f| f.raw.len()).sum();
        assert_eq!(total, stream.len());
    }
    for frame in &whole.frames {
        if is_stash(frame) {
            continue;
        }
        let complete = frame.payload.len() as u64 == frame.header.payload_len;
        if complete {
            check_frame(frame, &rules);
        }
    }
    // The chunked run saw the same frames in its own pieces.
    for frame in &chunked.frames {
        if !is_stash(frame) && frame.payload.len() as u64 == frame.header.payload_len {
            check_utf8(&frame.payload, &frame.pieces);
        }
    }
});
