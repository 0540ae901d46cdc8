//! Property tests: encode/decode round trips, split invariance, masking.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_frame::{
    DecodeRules, FrameDecoder, FrameHeader, Item, MaskRule, OpCode, Rsv, Utf8Validator, apply_mask,
    encode_frame,
};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

prop_compose! {
    fn frame()(opcode in opcode(), fin in any::<bool>(), rsv in 0u8..8, mask in any::<Option<[u8; 4]>>(),
               payload in prop::collection::vec(any::<u8>(), 0..300))
        -> (FrameHeader, Vec<u8>) {
        let (fin, payload) = if opcode.is_control() {
            (true, payload.into_iter().take(125).collect())
        } else {
            (fin, payload)
        };
        let header = FrameHeader::new(fin, opcode, payload.len() as u64).with_rsv(Rsv::from_bits(rsv));
        (match mask { Some(m) => header.with_mask(m), None => header }, payload)
    }
}

fn permissive() -> DecodeRules {
    DecodeRules {
        mask: MaskRule::Any,
        allowed_rsv: Rsv::from_bits(0b111),
        max_payload: u64::MAX,
    }
}

/// Decodes a stream fed in the given chunk sizes (cycled), returning the
/// frames with payloads unmasked.
fn decode(stream: &[u8], sizes: &[usize]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut decoder = FrameDecoder::new(permissive());
    let mut out: Vec<(FrameHeader, Vec<u8>)> = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() {
            let (used, item) = decoder.decode(chunk).expect("valid stream");
            chunk = &chunk[used..];
            match item {
                Some(Item::Header(h)) => out.push((h, Vec::new())),
                Some(Item::Payload { data, offset, .. }) => {
                    let (h, p) = out.last_mut().unwrap();
                    let start = p.len();
                    p.extend_from_slice(data);
                    if let Some(m) = h.mask {
                        apply_mask(&mut p[start..], m, offset as usize);
                    }
                }
                None => {}
            }
        }
    }
    assert!(decoder.is_idle());
    out
}

proptest! {
    #[test]
    fn any_frame_encodes_and_decodes_to_itself(frames in prop::collection::vec(frame(), 1..8)) {
        let mut stream = Vec::new();
        for (h, p) in &frames {
            encode_frame(&mut stream, *h, p).unwrap();
        }
        let decoded = decode(&stream, &[stream.len()]);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn any_split_gives_the_same_frames(frames in prop::collection::vec(frame(), 1..8),
                                        sizes in prop::collection::vec(1usize..40, 1..10)) {
        let mut stream = Vec::new();
        for (h, p) in &frames {
            encode_frame(&mut stream, *h, p).unwrap();
        }
        prop_assert_eq!(decode(&stream, &sizes), decode(&stream, &[stream.len()]));
    }

    #[test]
    fn masking_twice_is_identity(data in prop::collection::vec(any::<u8>(), 0..200), mask in any::<[u8; 4]>(),
                                 offset in 0usize..16) {
        let mut twice = data.clone();
        apply_mask(&mut twice, mask, offset);
        apply_mask(&mut twice, mask, offset);
        prop_assert_eq!(twice, data);
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole(data in prop::collection::vec(any::<u8>(), 0..200),
                                              mask in any::<[u8; 4]>(), cut in 0usize..200) {
        let cut = cut.min(data.len());
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(cut);
        apply_mask(a, mask, 0);
        apply_mask(b, mask, cut);
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn utf8_validator_agrees_with_std(bytes in prop::collection::vec(any::<u8>(), 0..64), cut in 0usize..64) {
        let cut = cut.min(bytes.len());
        let mut v = Utf8Validator::new();
        let ok = v.feed(&bytes[..cut]).and_then(|()| v.feed(&bytes[cut..])).and_then(|()| v.finish()).is_ok();
        prop_assert_eq!(ok, std::str::from_utf8(&bytes).is_ok());
    }

    #[test]
    fn utf8_validator_accepts_any_string_split_anywhere(s in any::<String>(), cut in 0usize..400) {
        let bytes = s.as_bytes();
        let cut = cut.min(bytes.len());
        let mut v = Utf8Validator::new();
        v.feed(&bytes[..cut]).unwrap();
        v.feed(&bytes[cut..]).unwrap();
        prop_assert!(v.finish().is_ok());
    }
}
