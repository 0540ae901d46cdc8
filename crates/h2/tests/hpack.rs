//! HPACK against RFC 7541 Appendix C, its error paths, and round trips of
//! random header lists through one encoder and one decoder.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_h2::hpack::{Decoder, Encoder, Error, Field};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f(name: &str, value: &str) -> Field {
    Field::new(name, value)
}

fn table(d: &Decoder) -> Vec<(String, String)> {
    d.table_entries()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// One step of an Appendix C sequence: the block, the list it decodes to,
/// the dynamic table after it (newest first) and the table's size.
struct Step {
    block: &'static str,
    fields: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

fn run_sequence(table_size: usize, steps: &[Step]) {
    let mut d = Decoder::new(table_size);
    for (i, step) in steps.iter().enumerate() {
        let fields = d
            .decode(&hex(step.block))
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
        let want: Vec<Field> = step.fields.iter().map(|&(n, v)| f(n, v)).collect();
        assert_eq!(fields, want, "step {i}");
        assert_eq!(table(&d), pairs(step.table), "step {i}");
        assert_eq!(d.table_size(), step.size, "step {i}");
    }
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_T2: &[(&str, &str)] = &[("cache-control", "no-cache"), (":authority", "www.example.com")];
const REQ_T3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RESP_T1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESP_T2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESP_T3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

const C3: &[&str] = &[
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: &[&str] = &[
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
const C5: &[&str] = &[
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31",
];
const C6: &[&str] = &[
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
];

fn request_steps(blocks: &'static [&'static str]) -> Vec<Step> {
    vec![
        Step {
            block: blocks[0],
            fields: REQ1,
            table: REQ_T1,
            size: 57,
        },
        Step {
            block: blocks[1],
            fields: REQ2,
            table: REQ_T2,
            size: 110,
        },
        Step {
            block: blocks[2],
            fields: REQ3,
            table: REQ_T3,
            size: 164,
        },
    ]
}

fn response_steps(blocks: &'static [&'static str]) -> Vec<Step> {
    vec![
        Step {
            block: blocks[0],
            fields: RESP1,
            table: RESP_T1,
            size: 222,
        },
        Step {
            block: blocks[1],
            fields: RESP2,
            table: RESP_T2,
            size: 222,
        },
        Step {
            block: blocks[2],
            fields: RESP3,
            table: RESP_T3,
            size: 215,
        },
    ]
}

#[test]
fn c_2_1_literal_with_indexing() {
    let mut d = Decoder::new(4096);
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(d.decode(&block).unwrap(), [f("custom-key", "custom-header")]);
    assert_eq!(table(&d), pairs(&[("custom-key", "custom-header")]));
    assert_eq!(d.table_size(), 55);
}

#[test]
fn c_2_2_literal_without_indexing() {
    let mut d = Decoder::new(4096);
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    assert_eq!(d.decode(&block).unwrap(), [f(":path", "/sample/path")]);
    assert_eq!(d.table_size(), 0);
}

#[test]
fn c_2_3_literal_never_indexed() {
    let mut d = Decoder::new(4096);
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    assert_eq!(
        d.decode(&block).unwrap(),
        [Field::sensitive("password", "secret")]
    );
    assert_eq!(d.table_size(), 0);
}

#[test]
fn c_2_4_indexed() {
    let mut d = Decoder::new(4096);
    assert_eq!(d.decode(&[0x82]).unwrap(), [f(":method", "GET")]);
    assert_eq!(d.table_size(), 0);
}

#[test]
fn c_3_requests_without_huffman() {
    run_sequence(4096, &request_steps(C3));
}

#[test]
fn c_4_requests_with_huffman() {
    run_sequence(4096, &request_steps(C4));
}

#[test]
fn c_5_responses_without_huffman() {
    run_sequence(256, &response_steps(C5));
}

#[test]
fn c_6_responses_with_huffman() {
    run_sequence(256, &response_steps(C6));
}

fn list(pairs: &[(&str, &str)]) -> Vec<Field> {
    pairs.iter().map(|&(n, v)| f(n, v)).collect()
}

/// This encoder's policy makes exactly the blocks of C.4.
#[test]
fn the_encoder_reproduces_c_4() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for (fields, block) in [REQ1, REQ2, REQ3].into_iter().zip(C4) {
        let mut out = Vec::new();
        e.encode(&list(fields), &mut out);
        assert_eq!(out, hex(block));
        assert_eq!(d.decode(&out).unwrap(), list(fields));
    }
    assert_eq!(e.table_size(), 164);
}

/// C.3's lists decode back from what the encoder makes (with Huffman, so
/// the bytes are C.4's).
#[test]
fn the_encoder_output_for_c_3_decodes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for fields in [REQ1, REQ2, REQ3] {
        let mut out = Vec::new();
        e.encode(&list(fields), &mut out);
        assert_eq!(d.decode(&out).unwrap(), list(fields));
    }
    assert_eq!(table(&d), pairs(REQ_T3));
}

/// With a 256-byte table the encoder first announces the size, then makes
/// C.6's blocks with two differences: "307" is as long Huffman-coded as
/// raw, so it goes raw (as in C.5.2); and `set-cookie` is never indexed: a
/// never-indexed literal (0001 + index 55) where C.6.3 indexes it (0x77).
#[test]
fn the_encoder_follows_c_6_with_a_256_byte_table() {
    let mut e = Encoder::new();
    e.set_max_table_size(256);
    let mut d = Decoder::new(256);
    let mut blocks = Vec::new();
    for fields in [RESP1, RESP2, RESP3] {
        let mut out = Vec::new();
        e.encode(&list(fields), &mut out);
        let decoded = d.decode(&out).unwrap();
        let mut want = list(fields);
        if let Some(cookie) = want.iter_mut().find(|f| f.name == b"set-cookie") {
            cookie.never_indexed = true;
        }
        assert_eq!(decoded, want);
        blocks.push(out);
    }
    // 256 in a 5-bit prefix after 001: 3f e1 01.
    assert_eq!(blocks[0][..3], [0x3f, 0xe1, 0x01]);
    assert_eq!(blocks[0][3..], hex(C6[0]));
    assert_eq!(blocks[1], hex(C5[1]));
    let mut want = hex(C6[2]);
    let at = want.iter().position(|&b| b == 0x77).unwrap();
    want.splice(at..=at, [0x1f, 0x28]);
    assert_eq!(blocks[2], want);
    assert_eq!(
        table(&d),
        pairs(&[
            ("content-encoding", "gzip"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            (":status", "307"),
            ("location", "https://www.example.com"),
        ])
    );
}

/// The C.5 lists, without Huffman on the wire, decode the same way from
/// the encoder's output, block after block.
#[test]
fn the_encoder_output_for_c_5_decodes() {
    let mut e = Encoder::new();
    e.set_max_table_size(256);
    let mut d = Decoder::new(256);
    for fields in [RESP1, RESP2, RESP3, RESP1, RESP3] {
        let mut out = Vec::new();
        e.encode(&list(fields), &mut out);
        let decoded = d.decode(&out).unwrap();
        assert_eq!(decoded.len(), fields.len());
        for (got, &(n, v)) in decoded.iter().zip(fields) {
            assert_eq!((&got.name[..], &got.value[..]), (n.as_bytes(), v.as_bytes()));
            assert_eq!(got.never_indexed, n == "set-cookie");
        }
        assert!(d.table_size() <= 256);
        assert_eq!(d.table_size(), e.table_size());
    }
}

// ---- errors ----

fn decode_fresh(block: &[u8]) -> Result<Vec<Field>, Error> {
    Decoder::new(4096).decode(block)
}

#[test]
fn truncated_representations() {
    // An integer cut short.
    assert_eq!(decode_fresh(&[0xff]), Err(Error::Truncated));
    assert_eq!(decode_fresh(&[0xff, 0x80]), Err(Error::Truncated));
    // A literal with no value.
    assert_eq!(decode_fresh(&[0x41]), Err(Error::Truncated));
    // A new name with no name.
    assert_eq!(decode_fresh(&[0x40]), Err(Error::Truncated));
    // A string announcing more bytes than there are.
    assert_eq!(decode_fresh(b"\x41\x05abcd"), Err(Error::Truncated));
    assert_eq!(decode_fresh(b"\x41\x85abcd"), Err(Error::Truncated));
    // A string length that itself is cut.
    assert_eq!(decode_fresh(b"\x41\x7f"), Err(Error::Truncated));
    // A size update cut short.
    assert_eq!(decode_fresh(&[0x3f]), Err(Error::Truncated));
    // A length past u32 is refused for its size before anything is read.
    assert_eq!(
        decode_fresh(&[0x41, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        Err(Error::IntegerOverflow)
    );
}

#[test]
fn integer_overflow() {
    assert_eq!(
        decode_fresh(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        Err(Error::IntegerOverflow)
    );
    assert_eq!(
        decode_fresh(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(Error::IntegerOverflow)
    );
}

#[test]
fn invalid_indices() {
    assert_eq!(decode_fresh(&[0x80]), Err(Error::InvalidIndex(0)));
    // 62 is the first dynamic index; the table is empty.
    assert_eq!(decode_fresh(&[0xbe]), Err(Error::InvalidIndex(62)));
    // A literal whose name index is past the table.
    assert_eq!(decode_fresh(&[0x7e, 0x00]), Err(Error::InvalidIndex(62)));
    assert_eq!(decode_fresh(&[0x0f, 0x30, 0x00]), Err(Error::InvalidIndex(63)));
    // Index 61 is the last static entry; 62 exists once one is added.
    assert_eq!(decode_fresh(&[0xbd]).unwrap(), [f("www-authenticate", "")]);
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(b"\x40\x01a\x01b\xbe").unwrap(),
        [f("a", "b"), f("a", "b")]
    );
    assert_eq!(d.decode(&[0xbf]), Err(Error::InvalidIndex(63)));
}

#[test]
fn an_evicted_entry_is_gone() {
    let mut d = Decoder::new(34);
    assert_eq!(d.decode(b"\x40\x01a\x01b").unwrap(), [f("a", "b")]);
    assert_eq!(
        d.decode(b"\x40\x01c\x01d\xbe").unwrap(),
        [f("c", "d"), f("c", "d")]
    );
    assert_eq!(d.decode(&[0xbf]), Err(Error::InvalidIndex(63)));
}

#[test]
fn huffman_errors() {
    // A value of four bytes of ones: EOS and then 2 bits.
    assert_eq!(
        decode_fresh(&[0x01, 0x84, 0xff, 0xff, 0xff, 0xff]),
        Err(Error::HuffmanEos)
    );
    // A byte of ones: padding longer than 7 bits.
    assert_eq!(decode_fresh(&[0x01, 0x81, 0xff]), Err(Error::HuffmanPadding));
    // '0' (00000) and padding 000.
    assert_eq!(decode_fresh(&[0x01, 0x81, 0x00]), Err(Error::HuffmanPadding));
    // The same in a name.
    assert_eq!(
        decode_fresh(&[0x00, 0x81, 0x06, 0x00]),
        Err(Error::HuffmanPadding)
    );
    // '0' and padding 111 is fine.
    assert_eq!(decode_fresh(&[0x01, 0x81, 0x07]).unwrap(), [f(":authority", "0")]);
}

#[test]
fn table_size_updates() {
    let mut d = Decoder::new(4096);
    // 4096 is allowed, 4097 is not.
    assert_eq!(d.decode(&[0x3f, 0xe1, 0x1f]).unwrap(), []);
    assert_eq!(
        d.decode(&[0x3f, 0xe2, 0x1f]),
        Err(Error::TableSizeTooLarge {
            size: 4097,
            max: 4096
        })
    );
    // Two at the start are fine; one after a field is not.
    let mut d = Decoder::new(4096);
    assert_eq!(
        d.decode(&[0x20, 0x3f, 0x11, 0x82]).unwrap(),
        [f(":method", "GET")]
    );
    assert_eq!(d.decode(&[0x82, 0x20]), Err(Error::LateTableSizeUpdate));
}

#[test]
fn a_size_update_evicts() {
    let mut d = Decoder::new(4096);
    d.decode(b"\x40\x01a\x01b\x40\x01c\x01d").unwrap();
    assert_eq!(d.table_size(), 68);
    d.decode(&[0x3f, 0x05]).unwrap(); // 36
    assert_eq!(table(&d), pairs(&[("c", "d")]));
    d.decode(&[0x20]).unwrap();
    assert_eq!(d.table_size(), 0);
    // Size 0 stays 0: an entry added now is dropped at once.
    assert_eq!(d.decode(b"\x40\x01e\x01f").unwrap(), [f("e", "f")]);
    assert_eq!(d.table_entries().count(), 0);
}

#[test]
fn a_lowered_limit_requires_an_update() {
    let mut d = Decoder::new(4096);
    d.decode(b"\x40\x01a\x01b").unwrap();
    d.set_max_table_size(100);
    let mut missing = d.clone();
    assert_eq!(missing.decode(&[0x82]), Err(Error::MissingTableSizeUpdate));
    let mut empty = d.clone();
    assert_eq!(empty.decode(&[]), Err(Error::MissingTableSizeUpdate));
    // An update above the new limit is refused.
    let mut above = d.clone();
    assert_eq!(
        above.decode(&[0x3f, 0x46]),
        Err(Error::TableSizeTooLarge { size: 101, max: 100 })
    );
    // The update, and then the required flag is gone.
    assert_eq!(d.decode(&[0x3f, 0x45, 0xbe]).unwrap(), [f("a", "b")]);
    assert_eq!(d.decode(&[0x82]).unwrap(), [f(":method", "GET")]);
    // Raising the limit requires nothing.
    d.set_max_table_size(8192);
    assert_eq!(d.decode(&[0x82]).unwrap(), [f(":method", "GET")]);
    assert_eq!(d.max_table_size(), 8192);
}

/// The fuzzer's case: a table that starts at 0, raised to 64 by a later
/// SETTINGS, takes a size update to 63 and then an entry of 47 bytes; one
/// of 65 bytes would be evicted at once.
#[test]
fn a_raised_limit_lets_the_table_grow_to_it() {
    let mut d = Decoder::new(0);
    assert_eq!(d.decode(&[0x50, 0x00]).unwrap(), [f("accept-encoding", "")]);
    assert_eq!(d.table_size(), 0);
    d.set_max_table_size(64);
    assert_eq!(
        d.decode(&[0x3f, 0x20, 0x09, 0x00, 0x50, 0x00]).unwrap(),
        [f(":status", ""), f("accept-encoding", "")]
    );
    assert_eq!(d.table_size(), 47);
    assert_eq!(d.decode(&[0xbe]).unwrap(), [f("accept-encoding", "")]);
    assert_eq!(
        d.decode(&[0x50, 0x02, b'a', b'b']).unwrap(),
        [f("accept-encoding", "ab")]
    );
    assert_eq!(d.table_size(), 49);
    let mut too_big = vec![0x40, 0x01, b'x', 0x20];
    too_big.extend_from_slice(&[b'v'; 32]);
    assert_eq!(d.decode(&too_big).unwrap()[0].value.len(), 32);
    assert_eq!(d.table_size(), 0);
}

#[test]
fn the_header_list_limit() {
    // ":method GET" is 7 + 3 + 32 = 42 bytes.
    let mut d = Decoder::new(4096).with_max_header_list_size(84);
    assert_eq!(d.decode(&[0x82, 0x82]).unwrap().len(), 2);
    assert_eq!(d.decode(&[0x82, 0x82, 0x82]), Err(Error::HeaderListTooLarge));
    // The count starts again with each block.
    assert_eq!(d.decode(&[0x82, 0x82]).unwrap().len(), 2);
    // A literal: 1 + 50 + 32 = 83 fits, 84 + 1 does not.
    let mut block = b"\x00\x01a\x32".to_vec();
    block.extend([b'v'; 50]);
    assert_eq!(d.decode(&block).unwrap()[0].value.len(), 50);
    let mut block = b"\x00\x01a\x34".to_vec();
    block.extend([b'v'; 52]);
    assert_eq!(d.decode(&block), Err(Error::HeaderListTooLarge));
    // A name alone too long.
    let mut block = b"\x00\x35".to_vec();
    block.extend([b'n'; 53]);
    block.push(0);
    assert_eq!(d.decode(&block), Err(Error::HeaderListTooLarge));
    // A Huffman value that decodes past the limit: 60 '0's in 38 bytes.
    let mut e = Encoder::new();
    let mut block = Vec::new();
    e.encode(&[Field::new("a", "0".repeat(60))], &mut block);
    assert!(block.len() < 50);
    assert_eq!(d.decode(&block), Err(Error::HeaderListTooLarge));
    // A name from the table that does not fit.
    let mut d = Decoder::new(4096).with_max_header_list_size(40);
    assert_eq!(d.decode(&[0x0f, 0x05, 0x00]), Err(Error::HeaderListTooLarge));
    assert_eq!(d.max_header_list_size(), 40);
    d.set_max_header_list_size(100);
    assert_eq!(
        d.decode(&[0x0f, 0x05, 0x00]).unwrap(),
        [f("access-control-allow-origin", "")]
    );
    // Under 32 bytes not even an empty field fits.
    let mut d = Decoder::new(4096).with_max_header_list_size(31);
    assert_eq!(d.decode(&[0x00, 0x00, 0x00]), Err(Error::HeaderListTooLarge));
    assert_eq!(d.decode(&[]).unwrap(), []);
}

/// A small block that adds a 4000-byte entry and refers to it 1000 times
/// would expand to 4 MB: it is refused by the list limit at the fourth
/// reference. (`hpack_bomb.rs` measures the memory it costs.)
#[test]
fn the_hpack_bomb_is_refused() {
    let mut block = vec![0x40, 0x01, b'x', 0x7f];
    // 4000 = 127 + 3873; 3873 = 0x21 + 30 * 128.
    block.extend([0xa1, 0x1e]);
    block.extend([b'a'; 4000]);
    block.extend([0xbe; 1000]);
    assert!(block.len() < 5100);
    let mut d = Decoder::new(4096).with_max_header_list_size(16 * 1024);
    assert_eq!(d.decode(&block).err(), Some(Error::HeaderListTooLarge));
    // The first part alone is a valid block: the entry is real.
    let mut d = Decoder::new(4096).with_max_header_list_size(16 * 1024);
    let fields = d.decode(&block[..block.len() - 997]).unwrap();
    assert_eq!(fields.len(), 4);
    assert_eq!(fields[3].value.len(), 4000);
}

#[test]
fn errors_display() {
    let all = [
        Error::Truncated,
        Error::IntegerOverflow,
        Error::InvalidIndex(0),
        Error::HuffmanEos,
        Error::HuffmanPadding,
        Error::TableSizeTooLarge { size: 2, max: 1 },
        Error::LateTableSizeUpdate,
        Error::MissingTableSizeUpdate,
        Error::HeaderListTooLarge,
    ];
    for e in all {
        assert!(e.to_string().starts_with("hpack: "), "{e}");
    }
}

// ---- the encoder's policy ----

fn encode_one(e: &mut Encoder, field: Field) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(&[field], &mut out);
    out
}

#[test]
fn sensitive_fields_are_never_indexed() {
    let mut e = Encoder::new();
    for name in ["authorization", "proxy-authorization", "cookie", "set-cookie"] {
        let first = encode_one(&mut e, f(name, "v"));
        assert_eq!(first[0] & 0xf0, 0x10, "{name}");
        // Nor indexed the second time.
        assert_eq!(encode_one(&mut e, f(name, "v")), first, "{name}");
    }
    let first = encode_one(&mut e, Field::sensitive("x-token", "abc"));
    assert_eq!(first[0], 0x10);
    assert_eq!(encode_one(&mut e, Field::sensitive("x-token", "abc")), first);
    // Even a sensitive field that is in the static table is a literal.
    assert_eq!(
        encode_one(&mut e, Field::sensitive(":method", "GET")),
        [0x12, 0x03, b'G', b'E', b'T']
    );
    assert_eq!(e.table_size(), 0);
}

#[test]
fn ordinary_fields_are_indexed_once_and_then_referenced() {
    let mut e = Encoder::new();
    let first = encode_one(&mut e, f("x-topic", "news"));
    assert_eq!(first[0], 0x40);
    assert_eq!(encode_one(&mut e, f("x-topic", "news")), [0xbe]);
    assert_eq!(e.table_size(), 7 + 4 + 32);
}

#[test]
fn volatile_and_large_fields_are_not_indexed() {
    let mut e = Encoder::new();
    assert_eq!(encode_one(&mut e, f("content-length", "12"))[0], 0x0f);
    assert_eq!(encode_one(&mut e, f("etag", "\"x\""))[0], 0x0f);
    // More than half the table.
    let big = "v".repeat(2100);
    assert_eq!(encode_one(&mut e, f("x-big", &big))[0], 0x00);
    assert_eq!(e.table_size(), 0);
}

#[test]
fn strings_are_huffman_coded_only_when_shorter() {
    let mut e = Encoder::new();
    // "0" is 5 bits: 1 byte either way, so the raw form.
    assert_eq!(
        encode_one(&mut e, f("content-length", "0")),
        [0x0f, 0x0d, 0x01, b'0']
    );
    // "00" is 10 bits, 2 bytes either way.
    assert_eq!(
        encode_one(&mut e, f("content-length", "00")),
        [0x0f, 0x0d, 0x02, b'0', b'0']
    );
    // "000" is 15 bits, 2 bytes: coded.
    assert_eq!(
        encode_one(&mut e, f("content-length", "000"))[..3],
        [0x0f, 0x0d, 0x82]
    );
    // Bytes with long codes are sent raw.
    assert_eq!(encode_one(&mut e, f("content-length", "\u{7f}"))[2], 0x01);
}

#[test]
fn the_encoder_announces_table_size_changes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let mut out = Vec::new();
    e.encode(&[f("x-a", "1")], &mut out);
    d.decode(&out).unwrap();
    // Lowered to 0 and raised back before the next block: 0 then 4096.
    e.set_max_table_size(0);
    d.set_max_table_size(0);
    e.set_max_table_size(4096);
    d.set_max_table_size(4096);
    out.clear();
    e.encode(&[], &mut out);
    assert_eq!(out, [0x20, 0x3f, 0xe1, 0x1f]);
    assert_eq!(d.decode(&out).unwrap(), []);
    assert_eq!(d.table_size(), 0);
    // Nothing changed since: no update.
    out.clear();
    e.encode(&[f(":method", "GET")], &mut out);
    assert_eq!(out, [0x82]);
    // A larger limit than 4096 is not used, so not announced.
    e.set_max_table_size(1 << 20);
    out.clear();
    e.encode(&[f(":method", "GET")], &mut out);
    assert_eq!(out, [0x82]);
    // Lowered once: one update.
    e.set_max_table_size(100);
    out.clear();
    e.encode(&[], &mut out);
    assert_eq!(out, [0x3f, 0x45]);
    // Raised once: one update.
    e.set_max_table_size(200);
    out.clear();
    e.encode(&[], &mut out);
    assert_eq!(out, [0x3f, 0xa9, 0x01]);
}

// ---- properties ----

/// The encoder's fixed list of names always sent never-indexed.
fn always_sensitive(name: &[u8]) -> bool {
    [
        &b"authorization"[..],
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
    ]
    .contains(&name)
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b":method".to_vec()),
        Just(b":path".to_vec()),
        Just(b":status".to_vec()),
        Just(b"content-type".to_vec()),
        Just(b"cookie".to_vec()),
        Just(b"set-cookie".to_vec()),
        Just(b"authorization".to_vec()),
        Just(b"content-length".to_vec()),
        Just(b"x-custom".to_vec()),
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..20),
        "[a-z-]{1,12}".prop_map(String::into_bytes),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET".to_vec()),
        Just(b"/".to_vec()),
        Just(b"200".to_vec()),
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..40),
        "[ -~]{0,30}".prop_map(String::into_bytes),
        // Sometimes too large to index.
        proptest::collection::vec(any::<u8>(), 2000..2200),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    (name(), value(), any::<bool>()).prop_map(|(name, value, never_indexed)| Field {
        name,
        value,
        never_indexed,
    })
}

fn table_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(64),
        Just(256),
        Just(4096),
        Just(1 << 16),
        0usize..5000,
    ]
}

/// One block's worth: zero to two table size changes before it, then a list.
fn step() -> impl Strategy<Value = (Vec<usize>, Vec<Field>)> {
    (
        proptest::collection::vec(table_size(), 0..3),
        proptest::collection::vec(field(), 0..12),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn lists_round_trip_through_shared_tables(steps in proptest::collection::vec(step(), 1..8)) {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096).with_max_header_list_size(usize::MAX);
        for (sizes, fields) in &steps {
            for &size in sizes {
                e.set_max_table_size(size);
                d.set_max_table_size(size);
            }
            let mut block = Vec::new();
            e.encode(fields, &mut block);
            let want: Vec<Field> = fields
                .iter()
                .map(|f| Field { never_indexed: f.never_indexed || always_sensitive(&f.name), ..f.clone() })
                .collect();

            // Every truncation: an error, or (cut at a field's end) a
            // shorter prefix of the list; never a panic or another list.
            for cut in 0..block.len() {
                let mut trial = d.clone();
                if let Ok(got) = trial.decode(&block[..cut]) {
                    // Only size updates cut away leave the list whole.
                    prop_assert!(got.len() < want.len() || want.is_empty(), "cut {} of {}", cut, block.len());
                    prop_assert_eq!(&got[..], &want[..got.len()]);
                }
            }

            let got = d.decode(&block).unwrap();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(d.table_size(), e.table_size());
            prop_assert!(d.table_size() <= 4096);
        }
    }

    #[test]
    fn arbitrary_blocks_never_panic(
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..4),
        limit in 0usize..512,
        table in 0usize..512,
    ) {
        let mut d = Decoder::new(table).with_max_header_list_size(limit);
        for block in &blocks {
            match d.decode(block) {
                Ok(fields) => {
                    let size: usize = fields.iter().map(Field::size).sum();
                    prop_assert!(size <= limit);
                    prop_assert!(d.table_size() <= table);
                }
                Err(_) => break,
            }
        }
    }
}
