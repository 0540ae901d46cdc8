//! Property test of the decoder's dynamic table: a small encoder written
//! here inserts every field on the encoder stream and refers to each from
//! a section with an arbitrary Base (relative and post-base indexes both),
//! the section arriving first; the encoder stream, cut anywhere, unblocks
//! it exactly when its last insert completes.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use tether_h2::hpack::integer;
use tether_h3::qpack::{Decoder, Field, Section};

const CAPACITY: usize = 4096;

fn string(dst: &mut Vec<u8>, prefix: u8, first: u8, s: &[u8]) {
    integer::encode(dst, prefix, first, s.len());
    dst.extend_from_slice(s);
}

fn encoder_stream(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    integer::encode(&mut out, 5, 0x20, CAPACITY);
    for f in fields {
        string(&mut out, 5, 0x40, &f.name);
        string(&mut out, 7, 0x00, &f.value);
    }
    out
}

fn section(n: usize, base: usize) -> Vec<u8> {
    let max_entries = CAPACITY / 32;
    let mut out = Vec::new();
    integer::encode(&mut out, 8, 0, n % (2 * max_entries) + 1);
    if base >= n {
        integer::encode(&mut out, 7, 0x00, base - n);
    } else {
        integer::encode(&mut out, 7, 0x80, n - base - 1);
    }
    for abs in 0..n {
        if abs < base {
            integer::encode(&mut out, 6, 0x80, base - 1 - abs);
        } else {
            integer::encode(&mut out, 4, 0x10, abs - base);
        }
    }
    out
}

fn field() -> impl Strategy<Value = Field> {
    (
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(name, value)| Field::new(name, value))
}

proptest! {
    #[test]
    fn sections_unblock_when_their_last_insert_arrives(
        fields in proptest::collection::vec(field(), 1..24),
        base in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let n = fields.len();
        let base = base.index(n);
        let stream = encoder_stream(&fields);
        let mut decoder = Decoder::new(CAPACITY as u64, 1).with_max_field_section_size(1 << 20);
        prop_assert_eq!(decoder.decode_section(4, &section(n, base)).unwrap(), Section::Blocked);
        let cut = cut.index(stream.len());
        prop_assert!(decoder.feed_encoder_stream(&stream[..cut]).unwrap().is_empty());
        let unblocked = decoder.feed_encoder_stream(&stream[cut..]).unwrap();
        prop_assert_eq!(unblocked.len(), 1);
        prop_assert_eq!(unblocked[0].stream_id, 4);
        prop_assert_eq!(&unblocked[0].fields, &fields);
        // The acknowledgment covers the inserts: no increment follows.
        prop_assert_eq!(decoder.take_decoder_stream(), vec![0x84]);
        // Decoded again, now without blocking.
        prop_assert_eq!(
            decoder.decode_section(8, &section(n, base)).unwrap(),
            Section::Decoded(fields)
        );
    }
}
