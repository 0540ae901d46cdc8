//! Property tests: varints, frames and field lists round-trip, however the
//! bytes are cut; the decoders never panic on arbitrary input.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use tether_h3::frame::{Event, Frame, FrameDecoder};
use tether_h3::qpack::{Decoder, Field, Section, encode};
use tether_h3::settings::Settings;
use tether_h3::stream::{ControlStream, Role};
use tether_h3::varint::{self, VarintReader};

fn varint_value() -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, 0..16_384u64, 0..(1u64 << 30), 0..=varint::MAX]
}

fn frame() -> impl Strategy<Value = Frame> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        bytes.clone().prop_map(Frame::Headers),
        varint_value().prop_map(Frame::CancelPush),
        varint_value().prop_map(Frame::Goaway),
        varint_value().prop_map(Frame::MaxPushId),
        (varint_value(), bytes).prop_map(|(push_id, field_section)| Frame::PushPromise {
            push_id,
            field_section
        }),
        (
            proptest::option::of(varint_value()),
            proptest::option::of(varint_value()),
            proptest::option::of(any::<bool>()),
            proptest::collection::btree_map(0x40..=varint::MAX, varint_value(), 0..4),
        )
            .prop_map(|(cap, size, connect, unknown)| Frame::Settings(Settings {
                qpack_max_table_capacity: cap,
                max_field_section_size: size,
                enable_connect_protocol: connect,
                unknown: unknown.into_iter().collect(),
                ..Settings::default()
            })),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    let name = prop_oneof![
        Just(b":method".to_vec()),
        Just(b":path".to_vec()),
        Just(b"content-type".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    let value = prop_oneof![
        Just(b"GET".to_vec()),
        Just(b"/".to_vec()),
        Just(b"application/json".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..48),
    ];
    (name, value, any::<bool>()).prop_map(|(name, value, never_indexed)| Field {
        name,
        value,
        never_indexed,
    })
}

proptest! {
    #[test]
    fn varints_round_trip_in_pieces(value in varint_value(), cut in 0usize..8) {
        let mut wire = Vec::new();
        varint::encode(value, &mut wire).unwrap();
        prop_assert_eq!(varint::decode(&wire), Some((value, wire.len())));
        let cut = cut.min(wire.len());
        let mut reader = VarintReader::new();
        let (a, first) = reader.feed(&wire[..cut]);
        prop_assert_eq!(a, cut);
        let got = match first {
            Some(v) => v,
            None => reader.feed(&wire[cut..]).1.unwrap(),
        };
        prop_assert_eq!(got, value);
    }

    #[test]
    fn frames_round_trip_however_cut(
        frames in proptest::collection::vec(frame(), 0..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new(1 << 16);
        let mut got = Vec::new();
        for pair in points.windows(2) {
            let mut input = &wire[pair[0]..pair[1]];
            while !input.is_empty() {
                let (used, event) = decoder.decode(input).unwrap();
                input = &input[used..];
                match event {
                    Some(Event::Frame(f)) => got.push(f),
                    None => {}
                    Some(other) => panic!("unexpected {other:?}"),
                }
            }
        }
        decoder.finish().unwrap();
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn field_lists_round_trip_through_encoder_and_decoder(
        fields in proptest::collection::vec(field(), 0..16),
    ) {
        let mut section = Vec::new();
        encode(&fields, &mut section);
        let mut decoder = Decoder::new(0, 0).with_max_field_section_size(1 << 20);
        prop_assert_eq!(decoder.decode_section(0, &section).unwrap(), Section::Decoded(fields));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        encoder_stream in proptest::collection::vec(any::<u8>(), 0..128),
        section in proptest::collection::vec(any::<u8>(), 0..128),
        control in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut decoder = Decoder::new(256, 4).with_max_field_section_size(512);
        let _ = decoder.feed_encoder_stream(&encoder_stream);
        if let Ok(Section::Decoded(fields)) = decoder.decode_section(0, &section) {
            let size: usize = fields.iter().map(|f| f.name.len() + f.value.len() + 32).sum();
            prop_assert!(size <= 512);
        }
        prop_assert!(decoder.table_size() <= 256);
        let mut stream = ControlStream::new(Role::Server, 64);
        let _ = stream.receive(&control, &mut Vec::new());
    }
}
