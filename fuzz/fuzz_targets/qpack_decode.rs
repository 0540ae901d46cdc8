//! Arbitrary encoder-stream bytes and field sections against a bounded
//! QPACK decoder: never a panic, never a table past its capacity or a
//! capacity past the advertised one, never a section past the limit or
//! more blocked streams than allowed. A second decoder fed the same
//! encoder stream one byte at a time must agree with the first on every
//! result and on the decoder-stream bytes. Every decoded field list,
//! re-encoded by the static-only encoder, decodes back to itself.
//!
//! Input layout: byte 0 picks the advertised table capacity (low nibble,
//! times 32) and the blocked streams allowed (high nibble, 0 to 15); byte 1
//! the field-section limit (times 8, plus 64). Then records: a kind byte
//! and a length byte followed by up to that many bytes. Kind & 3 is 0 or 1:
//! encoder-stream bytes; 2: a field section on stream (kind >> 2) * 4; 3:
//! that stream is cancelled (no bytes follow).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_h3::qpack::{Decoder, Field, Section, encode};

fn check_fields(fields: &[Field], limit: usize) {
    let size: usize = fields.iter().map(|f| f.name.len() + f.value.len() + 32).sum();
    assert!(size <= limit, "section of {size} past the limit {limit}");
    let mut wire = Vec::new();
    encode(fields, &mut wire);
    let mut fresh = Decoder::new(0, 0).with_max_field_section_size(usize::MAX);
    assert_eq!(
        fresh
            .decode_section(0, &wire)
            .expect("the encoder's output decodes"),
        Section::Decoded(fields.to_vec())
    );
}

fuzz_target!(|data: &[u8]| {
    let [config, limit, input @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = input;
    let capacity = u64::from(config & 0x0f) * 32;
    let blocked = u64::from(config >> 4);
    let limit = usize::from(*limit) * 8 + 64;
    let mut whole = Decoder::new(capacity, blocked).with_max_field_section_size(limit);
    let mut bytewise = whole.clone();

    while let [kind, len, tail @ ..] = rest {
        let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        let stream = u64::from(kind >> 2) * 4;
        match kind & 3 {
            0 | 1 => {
                let a = whole.feed_encoder_stream(bytes);
                let mut b = Ok(Vec::new());
                for byte in bytes {
                    match bytewise.feed_encoder_stream(std::slice::from_ref(byte)) {
                        Ok(unblocked) => {
                            if let Ok(all) = &mut b {
                                all.extend(unblocked);
                            }
                        }
                        Err(e) => {
                            b = Err(e);
                            break;
                        }
                    }
                }
                assert_eq!(a, b);
                let Ok(unblocked) = a else {
                    return;
                };
                for u in &unblocked {
                    check_fields(&u.fields, limit);
                }
            }
            2 => {
                let a = whole.decode_section(stream, bytes);
                assert_eq!(a, bytewise.decode_section(stream, bytes));
                match a {
                    Ok(Section::Decoded(fields)) => check_fields(&fields, limit),
                    Ok(Section::Blocked) => {}
                    Err(_) => return,
                }
            }
            _ => {
                whole.cancel_stream(stream);
                bytewise.cancel_stream(stream);
            }
        }
        assert!(whole.table_capacity() <= capacity);
        assert!(whole.table_size() <= whole.table_capacity());
        assert!(whole.blocked_streams() as u64 <= blocked);
        assert_eq!(whole.insert_count(), bytewise.insert_count());
        assert_eq!(whole.table_size(), bytewise.table_size());
        assert_eq!(whole.take_decoder_stream(), bytewise.take_decoder_stream());
    }
});
