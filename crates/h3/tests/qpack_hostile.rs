//! The QPACK decoder against a hostile encoder: every limit, every index
//! check, every malformed representation is an error with its code, never
//! a panic, and memory stays bounded.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tether_h3::qpack::{Decoder, DecoderInstruction, DecoderStreamReader, Field, Section, encode};
use tether_h3::{ErrorCode, Violation};

/// Set Dynamic Table Capacity=220, Insert With Literal Name "a"="b".
const CAPACITY_220_AND_ONE_ENTRY: &[u8] = b"\x3f\xbd\x01\x41a\x01b";

fn encoder_error(decoder: &mut Decoder, bytes: &[u8]) -> Violation {
    let e = decoder.feed_encoder_stream(bytes).unwrap_err();
    assert_eq!(e.code, ErrorCode::QPACK_ENCODER_STREAM_ERROR, "{e}");
    e.violation
}

fn section_error(decoder: &mut Decoder, stream: u64, bytes: &[u8]) -> Violation {
    let e = decoder.decode_section(stream, bytes).unwrap_err();
    assert_eq!(e.code, ErrorCode::QPACK_DECOMPRESSION_FAILED, "{e}");
    e.violation
}

#[test]
fn a_capacity_above_the_advertised_one_is_refused() {
    let mut d = Decoder::new(100, 0);
    assert_eq!(
        encoder_error(&mut d, b"\x3f\xbd\x01"),
        Violation::TableCapacityTooLarge {
            capacity: 220,
            max: 100
        }
    );
    // With nothing advertised, any capacity but 0 is refused.
    let mut d = Decoder::new(0, 0);
    d.feed_encoder_stream(b"\x20").unwrap();
    assert_eq!(
        encoder_error(&mut d, b"\x21"),
        Violation::TableCapacityTooLarge { capacity: 1, max: 0 }
    );
}

#[test]
fn entries_larger_than_the_table_and_bad_references_are_refused() {
    // Capacity 40: a 34-byte entry fits, a 41-byte one does not.
    let mut d = Decoder::new(40, 0);
    d.feed_encoder_stream(b"\x3f\x09\x41a\x01b").unwrap();
    assert_eq!(d.table_size(), 34);
    assert_eq!(
        encoder_error(&mut d.clone(), b"\x41a\x08bbbbbbbb"),
        Violation::EntryTooLarge(41)
    );
    // Duplicate of relative index 1 when only one entry exists.
    assert_eq!(
        encoder_error(&mut d.clone(), b"\x01"),
        Violation::InvalidDynamicIndex(1)
    );
    // Insert with a dynamic name reference past the table.
    assert_eq!(
        encoder_error(&mut d.clone(), b"\x85\x01x"),
        Violation::InvalidDynamicIndex(5)
    );
    // A static name reference past the 99 entries.
    assert_eq!(
        encoder_error(&mut d.clone(), b"\xff\x24\x01x"),
        Violation::InvalidStaticIndex(99)
    );
    // Duplicating the only entry evicts it first-copy-then-evict: allowed,
    // and the copy is what remains.
    d.feed_encoder_stream(b"\x00").unwrap();
    assert_eq!(d.insert_count(), 2);
    assert_eq!(d.table_size(), 34);
}

#[test]
fn a_string_past_the_limit_is_refused_before_it_arrives() {
    let mut d = Decoder::new(4096, 0).with_max_string_len(64);
    d.feed_encoder_stream(b"\x3f\xe1\x1f").unwrap();
    // Insert With Literal Name announcing a 1000-byte name, none of it sent.
    assert_eq!(
        encoder_error(&mut d, b"\x5f\xc9\x07"),
        Violation::StringTooLong(1000)
    );
}

#[test]
fn integers_past_u32_are_refused() {
    let mut d = Decoder::new(4096, 0);
    assert_eq!(
        encoder_error(&mut d, b"\x3f\xff\xff\xff\xff\x7f"),
        Violation::QpackIntegerOverflow
    );
    let mut d = Decoder::new(4096, 0);
    assert_eq!(
        section_error(&mut d, 0, b"\x00\x00\xff\xff\xff\xff\xff\x7f"),
        Violation::QpackIntegerOverflow
    );
}

#[test]
fn the_blocked_stream_bomb_is_refused() {
    // Two blocked streams allowed: the third is a connection error.
    let mut d = Decoder::new(4096, 2);
    // Required Insert Count 1 (encoded 2), Base 1, indexed relative 0.
    let section = b"\x02\x00\x80";
    assert_eq!(d.decode_section(0, section).unwrap(), Section::Blocked);
    assert_eq!(d.decode_section(4, section).unwrap(), Section::Blocked);
    assert_eq!(
        section_error(&mut d, 8, section),
        Violation::TooManyBlockedStreams
    );
    // None allowed (the default a peer assumes): the first one fails.
    let mut d = Decoder::new(4096, 0);
    assert_eq!(
        section_error(&mut d, 0, section),
        Violation::TooManyBlockedStreams
    );
    // A second section of a stream that is still blocked is the caller's
    // mistake, reported.
    let mut d = Decoder::new(4096, 2);
    d.decode_section(0, section).unwrap();
    let e = d.decode_section(0, section).unwrap_err();
    assert_eq!(e.violation, Violation::StreamAlreadyBlocked(0));
}

#[test]
fn required_insert_counts_that_no_encoder_sends_are_refused() {
    // No table: any non-zero Required Insert Count.
    let mut d = Decoder::new(0, 16);
    assert_eq!(
        section_error(&mut d, 0, b"\x01\x00"),
        Violation::InvalidRequiredInsertCount(1)
    );
    // A table of 4096 (128 entries, FullRange 256): 257 is out of range.
    let mut d = Decoder::new(4096, 16);
    assert_eq!(
        section_error(&mut d, 0, b"\xff\x02\x00"),
        Violation::InvalidRequiredInsertCount(257)
    );
    // One entry, a section that says it needs it and does not use it.
    let mut d = Decoder::new(4096, 16);
    d.feed_encoder_stream(CAPACITY_220_AND_ONE_ENTRY).unwrap();
    assert_eq!(
        section_error(&mut d, 0, b"\x02\x00\xd1"),
        Violation::InvalidRequiredInsertCount(1)
    );
    // A negative Base.
    assert_eq!(section_error(&mut d, 0, b"\x02\x81\x80"), Violation::InvalidBase);
}

#[test]
fn references_outside_the_table_or_past_the_count_are_refused() {
    let mut d = Decoder::new(4096, 16);
    d.feed_encoder_stream(CAPACITY_220_AND_ONE_ENTRY).unwrap();
    // Relative index 1 from Base 1: absolute -1.
    assert_eq!(
        section_error(&mut d, 0, b"\x02\x00\x81"),
        Violation::InvalidDynamicIndex(u64::MAX)
    );
    // Post-base index 0 from Base 1: absolute 1, at the Required Insert
    // Count (Base = RIC 1 + 0).
    assert_eq!(
        section_error(&mut d, 0, b"\x02\x00\x10"),
        Violation::InvalidDynamicIndex(1)
    );
    // Static index 99.
    assert_eq!(
        section_error(&mut d, 0, b"\x00\x00\xff\x24"),
        Violation::InvalidStaticIndex(99)
    );
    // The valid reference works.
    assert_eq!(
        d.decode_section(0, b"\x02\x00\x80").unwrap(),
        Section::Decoded(vec![Field::new("a", "b")])
    );
}

#[test]
fn evicted_entries_cannot_be_referenced() {
    // Capacity 34: each insert evicts the one before.
    let mut d = Decoder::new(4096, 16);
    d.feed_encoder_stream(b"\x3f\x03\x41a\x01b\x41a\x01c").unwrap();
    assert_eq!(d.insert_count(), 2);
    // RIC 2 (encoded 3), Base 2: relative 1 is absolute 0, evicted.
    assert_eq!(
        section_error(&mut d, 0, b"\x03\x00\x81\x80"),
        Violation::InvalidDynamicIndex(0)
    );
    assert_eq!(
        d.decode_section(0, b"\x03\x00\x80").unwrap(),
        Section::Decoded(vec![Field::new("a", "c")])
    );
}

#[test]
fn truncated_sections_and_bad_huffman_are_refused() {
    let mut d = Decoder::new(4096, 16);
    for bad in [
        &b""[..],
        b"\x00",
        b"\x00\x00\x51",
        b"\x00\x00\x51\x05abc",
        b"\x00\x00\x2f",
    ] {
        assert_eq!(
            section_error(&mut d, 0, bad),
            Violation::QpackTruncated,
            "{bad:?}"
        );
    }
    // A Huffman-coded value of 32 ones holds EOS.
    assert_eq!(
        section_error(&mut d, 0, b"\x00\x00\x51\x84\xff\xff\xff\xff"),
        Violation::HuffmanEos
    );
    // A Huffman-coded value padded with zeros.
    assert_eq!(
        section_error(&mut d, 0, b"\x00\x00\x51\x81\x00"),
        Violation::HuffmanPadding
    );
}

#[test]
fn the_field_section_limit_holds() {
    let mut d = Decoder::new(4096, 16).with_max_field_section_size(100);
    // ":path: /" is 5 + 1 + 32 = 38: two fit (76), three do not (114).
    assert!(d.decode_section(0, b"\x00\x00\xc1\xc1").is_ok());
    let e = d.decode_section(0, b"\x00\x00\xc1\xc1\xc1").unwrap_err();
    assert_eq!(e.code, ErrorCode::H3_EXCESSIVE_LOAD);
    assert_eq!(e.violation, Violation::FieldSectionTooLarge);
    // A small section that would expand: 50 static references to a long
    // value (content-security-policy, 53 + 23 + 32 bytes each).
    let mut d = Decoder::new(4096, 16);
    let mut section = vec![0, 0];
    section.extend(std::iter::repeat_n([0xff, 0x16], 200).flatten());
    let e = d.decode_section(0, &section).unwrap_err();
    assert_eq!(e.violation, Violation::FieldSectionTooLarge);
}

#[test]
fn the_encoder_output_decodes_with_no_table() {
    let fields = [
        Field::new(":method", "GET"),
        Field::new(":method", "PATCH"),
        Field::new(":path", "/topics/a/events"),
        Field::new("x-custom", "value"),
        Field::sensitive("authorization", "Bearer secret"),
        Field::sensitive(":method", "GET"),
        Field::sensitive("x-secret", "1"),
        Field::new("", ""),
    ];
    let mut section = Vec::new();
    encode(&fields, &mut section);
    let mut d = Decoder::new(0, 0);
    assert_eq!(
        d.decode_section(0, &section).unwrap(),
        Section::Decoded(fields.to_vec())
    );
    assert!(d.take_decoder_stream().is_empty());
}

#[test]
fn the_decoder_stream_reader_accepts_only_cancellations() {
    let mut r = DecoderStreamReader::new();
    // A cancellation in two pieces.
    assert!(r.feed(&[0x7f]).unwrap().is_empty());
    assert_eq!(
        r.feed(&[0x01]).unwrap(),
        [DecoderInstruction::StreamCancellation(64)]
    );
    for bad in [&[0x84][..], &[0x01]] {
        let e = DecoderStreamReader::new().feed(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::QPACK_DECODER_STREAM_ERROR);
    }
}
