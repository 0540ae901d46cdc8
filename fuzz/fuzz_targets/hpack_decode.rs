//! Arbitrary bytes as a few HPACK header blocks decoded by one decoder with
//! small limits: never a panic, never a list past the limit, never a table
//! past its size; and whatever decodes, re-encoded by one encoder and
//! decoded by a second decoder, gives the same list back, with both sides'
//! tables in step.
//!
//! Input layout: byte 0 picks the first decoder's table size (low nibble,
//! times 32) and header-list limit (high nibble, times 64, plus 32); byte 1
//! picks a table size for the encoder side, announced before the second
//! block, and (low nibble, times 16) a new limit for the first decoder's
//! table before the third block, which then must start with a size update
//! if the limit went below the table's size. Then blocks, each one length
//! byte followed by up to that many bytes, at most four.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_h2::hpack::{Decoder, Encoder, Field};

const SENSITIVE: [&[u8]; 4] = [b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"];

fuzz_target!(|data: &[u8]| {
    let [config, resize, rest @ ..] = data else {
        return;
    };
    let table = usize::from(config & 0x0f) * 32;
    let limit = usize::from(config >> 4) * 64 + 32;
    let mut decoder = Decoder::new(table).with_max_header_list_size(limit);
    // The largest limit ever in effect: a raised limit lets the peer grow
    // the table to it.
    let mut table_bound = table;

    let mut encoder = Encoder::new();
    let mut mirror = Decoder::new(4096).with_max_header_list_size(limit);

    let mut input = rest;
    for n in 0..4 {
        let Some((&len, tail)) = input.split_first() else {
            break;
        };
        let (block, tail) = tail.split_at(usize::from(len).min(tail.len()));
        input = tail;

        if n == 1 {
            let size = usize::from(*resize) * 24;
            encoder.set_max_table_size(size);
            mirror.set_max_table_size(size);
        }
        if n == 2 {
            let new_limit = usize::from(resize & 0x0f) * 16;
            decoder.set_max_table_size(new_limit);
            table_bound = table_bound.max(new_limit);
        }

        let fields = match decoder.decode(block) {
            Ok(fields) => fields,
            Err(_) => break,
        };
        let size: usize = fields.iter().map(Field::size).sum();
        assert!(size <= limit, "list of {size} past the limit {limit}");
        assert!(decoder.table_size() <= table_bound);
        assert!(decoder.table_size() <= decoder.max_table_size());

        let mut wire = Vec::new();
        encoder.encode(&fields, &mut wire);
        let again = mirror.decode(&wire).expect("the encoder's output decodes");
        let want: Vec<Field> = fields
            .into_iter()
            .map(|f| Field {
                never_indexed: f.never_indexed || SENSITIVE.iter().any(|s| f.name.eq_ignore_ascii_case(s)),
                ..f
            })
            .collect();
        assert_eq!(again, want);
        assert_eq!(mirror.table_size(), encoder.table_size());
    }
});
