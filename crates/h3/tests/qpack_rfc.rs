//! RFC 9204 Appendix B, exchange by exchange: the encoder-stream bytes and
//! field sections in, the fields, table state and decoder-stream bytes
//! out — whole, and fed one byte at a time.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tether_h3::qpack::{Decoder, Field, Section, Unblocked};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Feeds encoder-stream bytes whole, or one byte at a time.
fn feed(decoder: &mut Decoder, bytes: &[u8], bytewise: bool) -> Vec<Unblocked> {
    if !bytewise {
        return decoder.feed_encoder_stream(bytes).unwrap();
    }
    let mut out = Vec::new();
    for b in bytes {
        out.extend(decoder.feed_encoder_stream(std::slice::from_ref(b)).unwrap());
    }
    out
}

fn run(bytewise: bool) {
    // Our SETTINGS: a 220-byte table is within what we allow.
    let mut decoder = Decoder::new(220, 1);

    // B.1: a literal with a static name reference, no table.
    let section = hex("0000 510b 2f69 6e64 6578 2e68 746d 6c");
    assert_eq!(
        decoder.decode_section(0, &section).unwrap(),
        Section::Decoded(vec![Field::new(":path", "/index.html")])
    );
    assert!(decoder.take_decoder_stream().is_empty());

    // B.2: capacity, two inserts with static name references.
    let encoder = hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468");
    assert!(feed(&mut decoder, &encoder, bytewise).is_empty());
    assert_eq!(decoder.table_capacity(), 220);
    assert_eq!(decoder.insert_count(), 2);
    assert_eq!(decoder.table_size(), 106);
    let section = hex("0381 10 11");
    assert_eq!(
        decoder.decode_section(4, &section).unwrap(),
        Section::Decoded(vec![
            Field::new(":authority", "www.example.com"),
            Field::new(":path", "/sample/path"),
        ])
    );
    assert_eq!(decoder.take_decoder_stream(), [0x84]);

    // B.3: a speculative insert with a literal name.
    let encoder = hex("4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565");
    assert!(feed(&mut decoder, &encoder, bytewise).is_empty());
    assert_eq!(decoder.table_size(), 160);
    assert_eq!(decoder.take_decoder_stream(), [0x01]);

    // B.4: the section arrives before the Duplicate it needs: blocked,
    // then the stream is cancelled.
    let section = hex("0500 80 c1 81");
    assert_eq!(decoder.decode_section(8, &section).unwrap(), Section::Blocked);
    assert_eq!(decoder.blocked_streams(), 1);
    decoder.cancel_stream(8);
    assert_eq!(decoder.blocked_streams(), 0);
    assert_eq!(decoder.take_decoder_stream(), [0x48]);
    assert!(feed(&mut decoder, &hex("02"), bytewise).is_empty());
    assert_eq!(decoder.insert_count(), 4);
    assert_eq!(decoder.table_size(), 217);
    // Had it not been cancelled, it would now decode.
    assert_eq!(
        decoder.decode_section(8, &section).unwrap(),
        Section::Decoded(vec![
            Field::new(":authority", "www.example.com"),
            Field::new(":path", "/"),
            Field::new("custom-key", "custom-value"),
        ])
    );
    assert_eq!(decoder.take_decoder_stream(), [0x88]);

    // B.5: an insert with a dynamic name reference evicts entry 0.
    let encoder = hex("810d 6375 7374 6f6d 2d76 616c 7565 32");
    assert!(feed(&mut decoder, &encoder, bytewise).is_empty());
    assert_eq!(decoder.insert_count(), 5);
    assert_eq!(decoder.table_size(), 215);
    assert_eq!(decoder.take_decoder_stream(), [0x01]);
    // Entry 0 is gone: a reference to it fails; entry 4 is there.
    // RIC 5 encodes as 5 % (2 * 6) + 1 = 6; Base 5; relative 4 is abs 0.
    let err = decoder.decode_section(12, &hex("0600 84")).unwrap_err();
    assert_eq!(err.code, tether_h3::ErrorCode::QPACK_DECOMPRESSION_FAILED);
    assert_eq!(
        decoder.decode_section(12, &hex("0600 80")).unwrap(),
        Section::Decoded(vec![Field::new("custom-key", "custom-value2")])
    );
}

#[test]
fn appendix_b_whole() {
    run(false);
}

#[test]
fn appendix_b_byte_at_a_time() {
    run(true);
}

#[test]
fn a_blocked_section_is_decoded_when_its_inserts_arrive() {
    let mut decoder = Decoder::new(220, 1);
    // B.2's section before B.2's encoder stream.
    assert_eq!(
        decoder.decode_section(4, &hex("0381 10 11")).unwrap(),
        Section::Blocked
    );
    let encoder = hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468");
    // The first insert is not enough; the second unblocks it.
    let cut = 3 + 17;
    assert!(decoder.feed_encoder_stream(&encoder[..cut]).unwrap().is_empty());
    assert_eq!(decoder.blocked_streams(), 1);
    let unblocked = decoder.feed_encoder_stream(&encoder[cut..]).unwrap();
    assert_eq!(
        unblocked,
        [Unblocked {
            stream_id: 4,
            fields: vec![
                Field::new(":authority", "www.example.com"),
                Field::new(":path", "/sample/path"),
            ],
        }]
    );
    assert_eq!(decoder.blocked_streams(), 0);
    assert_eq!(decoder.take_decoder_stream(), [0x84]);
}

#[test]
fn a_blocked_section_is_decoded_before_a_later_insert_evicts_its_entry() {
    // Capacity 34 holds one "a"="b"-sized entry: the second insert evicts
    // the first. The section needs only the first.
    let mut decoder = Decoder::new(4096, 1);
    assert_eq!(
        decoder.decode_section(0, &hex("0200 80")).unwrap(),
        Section::Blocked
    );
    let unblocked = decoder
        .feed_encoder_stream(b"\x3f\x03\x41a\x01b\x41a\x01c")
        .unwrap();
    assert_eq!(
        unblocked,
        [Unblocked {
            stream_id: 0,
            fields: vec![Field::new("a", "b")],
        }]
    );
}
