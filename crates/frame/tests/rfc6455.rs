//! Header decoding and encoding against RFC 6455's own examples and rules,
//! fed whole, one byte at a time, and with trailing bytes.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_frame::{
    DecodeRules, Error, FrameDecoder, FrameHeader, Item, MaskRule, OpCode, Rsv, Status, apply_mask,
    decode_header, encode_frame,
};

/// A decoded frame: header and unmasked payload.
#[derive(Debug, PartialEq)]
struct Frame {
    header: FrameHeader,
    payload: Vec<u8>,
}

/// Runs a FrameDecoder over `input` split into `piece`-byte chunks and
/// collects the frames, with whether the input ended on a frame boundary.
fn decode_all(input: &[u8], piece: usize, rules: DecodeRules) -> Result<(Vec<Frame>, bool), Error> {
    let mut decoder = FrameDecoder::new(rules);
    let mut frames: Vec<Frame> = Vec::new();
    for mut chunk in input.chunks(piece.max(1)) {
        loop {
            let (used, item) = decoder.decode(chunk)?;
            chunk = &chunk[used..];
            match item {
                None => break,
                Some(Item::Header(header)) => frames.push(Frame {
                    header,
                    payload: Vec::new(),
                }),
                Some(Item::Payload { data, offset, .. }) => {
                    let frame = frames.last_mut().unwrap();
                    let start = frame.payload.len();
                    assert_eq!(start as u64, offset);
                    frame.payload.extend_from_slice(data);
                    if let Some(mask) = frame.header.mask {
                        apply_mask(&mut frame.payload[start..], mask, offset as usize);
                    }
                }
            }
            if chunk.is_empty() {
                break;
            }
        }
    }
    Ok((frames, decoder.is_idle()))
}

fn any_rules() -> DecodeRules {
    DecodeRules {
        mask: MaskRule::Any,
        ..DecodeRules::server()
    }
}

/// Every split must give the same frames.
fn decode_every_way(input: &[u8], rules: DecodeRules) -> Result<Vec<Frame>, Error> {
    let (whole, idle) = decode_all(input, input.len(), rules)?;
    assert!(idle, "input should end on a frame boundary");
    for piece in [1, 2, 3, 5, 7, 13] {
        let (frames, _) = decode_all(input, piece, rules)?;
        assert_eq!(frames, whole, "pieces of {piece}");
    }
    Ok(whole)
}

#[test]
fn section_5_7_single_frame_unmasked_text() {
    let frames =
        decode_every_way(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], DecodeRules::client()).unwrap();
    assert_eq!(frames.len(), 1);
    assert!(frames[0].header.fin);
    assert_eq!(frames[0].header.opcode, OpCode::Text);
    assert_eq!(frames[0].payload, b"Hello");
}

#[test]
fn section_5_7_single_frame_masked_text() {
    let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let frames = decode_every_way(&wire, DecodeRules::server()).unwrap();
    assert_eq!(frames[0].payload, b"Hello");
    assert_eq!(frames[0].header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    // And encoding gives back the same bytes.
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        FrameHeader::new(true, OpCode::Text, 0).with_mask([0x37, 0xfa, 0x21, 0x3d]),
        b"Hello",
    )
    .unwrap();
    assert_eq!(out, wire);
}

#[test]
fn section_5_7_fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let frames = decode_every_way(&wire, DecodeRules::client()).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0].header.fin, frames[0].header.opcode),
        (false, OpCode::Text)
    );
    assert_eq!(
        (frames[1].header.fin, frames[1].header.opcode),
        (true, OpCode::Continuation)
    );
    assert_eq!(
        [&frames[0].payload[..], &frames[1].payload[..]].concat(),
        b"Hello"
    );
}

#[test]
fn section_5_7_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let frames = decode_every_way(&ping, DecodeRules::client()).unwrap();
    assert_eq!(
        (frames[0].header.opcode, &frames[0].payload[..]),
        (OpCode::Ping, &b"Hello"[..])
    );
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let frames = decode_every_way(&pong, DecodeRules::server()).unwrap();
    assert_eq!(
        (frames[0].header.opcode, &frames[0].payload[..]),
        (OpCode::Pong, &b"Hello"[..])
    );
}

#[test]
fn section_5_7_binary_256_and_64k_headers() {
    let h256 = FrameHeader::new(true, OpCode::Binary, 256).to_bytes();
    assert_eq!(h256.as_slice(), &[0x82, 0x7E, 0x01, 0x00]);
    let h64k = FrameHeader::new(true, OpCode::Binary, 65536).to_bytes();
    assert_eq!(
        h64k.as_slice(),
        &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
    for (head, len) in [(h256, 256usize), (h64k, 65536)] {
        let mut wire = head.to_vec();
        wire.extend((0..len).map(|i| i as u8));
        let frames = decode_every_way(&wire, DecodeRules::client()).unwrap();
        assert_eq!(frames[0].header.payload_len, len as u64);
        assert_eq!(frames[0].payload.len(), len);
        assert_eq!(frames[0].payload[255], 255);
    }
}

#[test]
fn trailing_bytes_are_left_for_the_next_frame() {
    let mut wire = vec![0x81, 0x02, b'h', b'i'];
    let next = [0x82, 0x7E, 0x01];
    wire.extend_from_slice(&next);
    let Status::Complete((header, used)) = decode_header(&wire, &DecodeRules::client()).unwrap() else {
        panic!("complete header expected");
    };
    assert_eq!((header.payload_len, used), (2, 2));
    let mut decoder = FrameDecoder::new(DecodeRules::client());
    let (n1, _) = decoder.decode(&wire).unwrap();
    let (n2, item) = decoder.decode(&wire[n1..]).unwrap();
    assert_eq!(
        item,
        Some(Item::Payload {
            data: b"hi",
            offset: 0,
            last: true
        })
    );
    assert!(decoder.is_idle());
    // The trailing partial header is taken (kept inside the decoder) without error.
    let (n3, item) = decoder.decode(&wire[n1 + n2..]).unwrap();
    assert_eq!((n3, item), (3, None));
    assert!(!decoder.is_idle());
}

#[test]
fn empty_payload_frames_yield_only_a_header() {
    let wire = [0x89, 0x00, 0x81, 0x00];
    let frames = decode_every_way(&wire, DecodeRules::client()).unwrap();
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.payload.is_empty()));
}

/// (bytes, rules, expected error), each checked whole and one byte at a time:
/// the error must come out no later than the byte that makes it certain.
#[test]
fn protocol_errors_with_their_close_codes() {
    let long126 = [0x82, 0x7E, 0x00, 0x7D];
    let long127 = [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
    let top_bit = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
    let cases: &[(&[u8], DecodeRules, Error, usize)] = &[
        (&[0x83], any_rules(), Error::ReservedOpcode(3), 1),
        (&[0x87], any_rules(), Error::ReservedOpcode(7), 1),
        (&[0x8B], any_rules(), Error::ReservedOpcode(0xB), 1),
        (&[0x8F], any_rules(), Error::ReservedOpcode(0xF), 1),
        (&[0xC1], any_rules(), Error::ReservedBits(0b100), 1),
        (&[0xA1], any_rules(), Error::ReservedBits(0b010), 1),
        (&[0x91], any_rules(), Error::ReservedBits(0b001), 1),
        (&[0x09, 0x00], any_rules(), Error::FragmentedControlFrame, 1),
        (&[0x08, 0x00], any_rules(), Error::FragmentedControlFrame, 1),
        (
            &[0x89, 0x7E, 0x00, 0x7E],
            any_rules(),
            Error::ControlFrameTooLong,
            2,
        ),
        (&[0x88, 0x7F], any_rules(), Error::ControlFrameTooLong, 2),
        (&long126, any_rules(), Error::NonMinimalLength, 4),
        (&long127, any_rules(), Error::NonMinimalLength, 10),
        (&top_bit, any_rules(), Error::LengthOverflow, 10),
        (
            &[0x81, 0x05, b'H'],
            DecodeRules::server(),
            Error::UnmaskedFrame,
            2,
        ),
        (&[0x81, 0x85], DecodeRules::client(), Error::MaskedFrame, 2),
    ];
    for &(bytes, rules, want, at) in cases {
        assert_eq!(decode_header(bytes, &rules), Err(want), "{bytes:x?}");
        assert!(want.close_code().is_some());
        for cut in 0..at {
            assert_eq!(
                decode_header(&bytes[..cut], &rules),
                Ok(Status::Partial),
                "{bytes:x?} cut at {cut}"
            );
        }
        let mut decoder = FrameDecoder::new(rules);
        let mut got = None;
        for byte in bytes.chunks(1) {
            if let Err(e) = decoder.decode(byte) {
                got = Some(e);
                break;
            }
        }
        assert_eq!(got, Some(want), "{bytes:x?} one byte at a time");
    }
}

#[test]
fn rsv_bits_owned_by_an_extension_pass() {
    let rules = DecodeRules {
        allowed_rsv: Rsv::RSV1,
        ..any_rules()
    };
    let Ok(Status::Complete((h, _))) = decode_header(&[0xC1, 0x00], &rules) else {
        panic!()
    };
    assert_eq!(h.rsv, Rsv::RSV1);
    assert_eq!(
        decode_header(&[0xE1, 0x00], &rules),
        Err(Error::ReservedBits(0b010))
    );
}

#[test]
fn frame_size_limit_is_checked_from_the_header() {
    let rules = DecodeRules {
        max_payload: 1000,
        ..DecodeRules::client()
    };
    let wire = FrameHeader::new(true, OpCode::Binary, 1001).to_bytes();
    let err = decode_header(&wire, &rules).unwrap_err();
    assert_eq!(err, Error::FrameTooLarge { len: 1001, max: 1000 });
    assert_eq!(err.close_code().unwrap().0, 1009);
    let ok = FrameHeader::new(true, OpCode::Binary, 1000).to_bytes();
    assert!(matches!(decode_header(&ok, &rules), Ok(Status::Complete(_))));
}

#[test]
fn encoding_refuses_illegal_control_frames() {
    let mut out = Vec::new();
    let long = [0u8; 126];
    assert_eq!(
        encode_frame(&mut out, FrameHeader::new(true, OpCode::Ping, 0), &long),
        Err(Error::InvalidControlFrame)
    );
    assert_eq!(
        encode_frame(&mut out, FrameHeader::new(false, OpCode::Close, 0), b""),
        Err(Error::InvalidControlFrame)
    );
    assert!(out.is_empty());
    assert_eq!(Error::InvalidControlFrame.close_code(), None);
}

#[test]
fn length_boundaries_use_the_minimal_form() {
    for (len, header_len) in [
        (0u64, 2),
        (125, 2),
        (126, 4),
        (0xFFFF, 4),
        (0x1_0000, 10),
        (u64::MAX >> 1, 10),
    ] {
        let h = FrameHeader::new(true, OpCode::Binary, len);
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), header_len);
        assert_eq!(h.encoded_len(), header_len);
        let rules = DecodeRules {
            max_payload: u64::MAX,
            ..DecodeRules::client()
        };
        assert_eq!(
            decode_header(&bytes, &rules),
            Ok(Status::Complete((h, header_len)))
        );
    }
}
