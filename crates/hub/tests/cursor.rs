//! Cursors, the ids of multi-topic event streams: every cursor decodes to
//! what was encoded, for the list it was made for only; every malformed
//! one is refused with what is wrong, never a panic; the examples of the
//! design page.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_hub::{BadCursor, Cursor, Error, EventId, MAX_CURSOR_LEN};

fn topics(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("room.{i}")).collect()
}

fn cursor(topics: &[String], positions: &[Option<EventId>]) -> Cursor {
    let mut cursor = Cursor::new(topics);
    cursor.positions_mut().copy_from_slice(positions);
    cursor
}

fn text(cursor: &Cursor) -> Vec<u8> {
    let mut out = Vec::new();
    let len = cursor.encode(&mut out);
    assert_eq!(len, out.len());
    out
}

fn refused(cursor: &mut Cursor, text: &[u8]) -> BadCursor {
    let before = cursor.clone();
    match cursor.decode(text) {
        Err(Error::InvalidCursor(why)) => {
            assert_eq!(*cursor, before, "a refused cursor changes nothing");
            why
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
    }
}

/// Ids of every size: the edges of u64 and the differences between
/// them, and plain timestamps.
fn id() -> impl Strategy<Value = EventId> {
    let part = prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(1u64 << 63),
        Just((1u64 << 63) - 1),
        1_600_000_000_000u64..1_900_000_000_000,
        any::<u64>(),
    ];
    (part.clone(), part).prop_map(|(ms, seq)| EventId::new(ms, seq))
}

proptest! {
    #[test]
    fn what_is_encoded_decodes_for_its_list_only(
        positions in prop::collection::vec(prop::option::of(id()), 0..40),
    ) {
        let list = topics(positions.len());
        let encoded = text(&cursor(&list, &positions));
        prop_assert!(encoded.starts_with(b"~"));
        prop_assert!(encoded[1..].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'));
        // Decoded into a cursor of the same list that held other
        // positions: every one is replaced.
        let mut back = Cursor::new(&list);
        for p in back.positions_mut() {
            *p = Some(EventId::new(3, 3));
        }
        back.decode(&encoded).unwrap();
        prop_assert_eq!(back.positions(), &positions[..]);
        // One spelling: encoding what was decoded gives the same text.
        prop_assert_eq!(text(&back), encoded.clone());
        // Another list of the same length, or one more topic, refuses it.
        if !list.is_empty() {
            let mut other = list.clone();
            other[0].push('x');
            let mut other = Cursor::new(&other);
            prop_assert!(
                matches!(refused(&mut other, &encoded), BadCursor::Fingerprint { .. }),
                "another list"
            );
        }
        let longer = topics(positions.len() + 1);
        prop_assert_eq!(
            refused(&mut Cursor::new(&longer), &encoded),
            BadCursor::TopicCount { expected: positions.len() + 1, found: positions.len() as u64 }
        );
    }

    #[test]
    fn any_text_is_a_cursor_or_an_error(text in prop::collection::vec(any::<u8>(), 0..64), n in 0usize..4) {
        let list = topics(n);
        let mut cursor = Cursor::new(&list);
        let mut prefixed = b"~".to_vec();
        prefixed.extend_from_slice(&text);
        for candidate in [&text[..], &prefixed[..]] {
            if cursor.decode(candidate).is_ok() {
                prop_assert_eq!(self::text(&cursor), candidate.to_vec());
            }
        }
    }
}

#[test]
fn the_design_pages_example() {
    // docs/src/design/multiplexing.md: A and B, each with a position.
    let list = ["A", "B"];
    let mut a = Cursor::new(list);
    a.positions_mut()[0] = Some(EventId::new(1_718_000_000_000, 8));
    a.positions_mut()[1] = Some(EventId::new(1_718_000_004_521, 3));
    assert_eq!(text(&a), b"~AQLQ9A6sgfC8jIBkCNNGAw");
    assert_eq!(a.to_string(), "~AQLQ9A6sgfC8jIBkCNNGAw");
    assert_eq!(a.fingerprint(), 0xac0e_f4d0, "FNV-1a of \"A\\nB\"");
    // B with no position yet, then neither.
    a.positions_mut()[1] = None;
    assert_eq!(text(&a), b"~AQLQ9A6sgfC8jIBkCAA");
    assert_eq!(text(&Cursor::new(["A"])), b"~AQHM9gvEAA");
    assert_eq!(text(&Cursor::new::<[&str; 0]>([])), b"~AQDFnRyB");
}

#[test]
fn every_prefix_of_a_cursor_is_refused() {
    let list = topics(5);
    let positions = [
        Some(EventId::new(1_718_000_000_000, 8)),
        None,
        Some(EventId::new(1_717_999_000_000, 70_000)),
        Some(EventId::new(u64::MAX, u64::MAX)),
        Some(EventId::ZERO),
    ];
    let whole = text(&cursor(&list, &positions));
    let mut reader = Cursor::new(&list);
    for len in 0..whole.len() {
        let why = refused(&mut reader, &whole[..len]);
        let expected: &[BadCursor] = match len {
            0 => &[BadCursor::NotACursor],
            // Cut inside a base64 group: a length base64 never has, or
            // bits over that the next character would have used.
            _ if (len - 1) % 4 != 0 => &[BadCursor::Truncated, BadCursor::Base64],
            _ => &[BadCursor::Truncated],
        };
        assert!(expected.contains(&why), "{len}: {why:?}");
    }
    reader.decode(&whole).unwrap();
    assert_eq!(reader.positions(), positions);
}

#[test]
fn malformed_cursors_are_refused_with_what_is_wrong() {
    let two = || Cursor::new(["A", "B"]);
    let b64 = |bytes: &[u8]| {
        // Any bytes as a cursor's text: base64url written here, apart
        // from the code under test.
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = b"~".to_vec();
        for chunk in bytes.chunks(3) {
            let mut g = [0u8; 3];
            g[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from_be_bytes([0, g[0], g[1], g[2]]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            }
        }
        out
    };
    // The header of a cursor for A and B: version, count, fingerprint.
    let header = |count: u8| {
        let mut bytes = vec![1, count];
        bytes.extend_from_slice(&0xac0e_f4d0u32.to_le_bytes());
        bytes
    };
    let with = |tail: &[u8]| {
        let mut bytes = header(2);
        bytes.extend_from_slice(tail);
        b64(&bytes)
    };
    assert_eq!(with(&[0, 0]), b"~AQLQ9A6sAAA", "both without a position");
    two().decode(with(&[0, 0])).unwrap();

    let cases: Vec<(&str, Vec<u8>, BadCursor)> = vec![
        ("a plain id", b"1718000000000-8".to_vec(), BadCursor::NotACursor),
        ("empty", Vec::new(), BadCursor::NotACursor),
        ("no bytes at all", b"~".to_vec(), BadCursor::Truncated),
        ("padding", b"~AQLQ9A6sAAA=".to_vec(), BadCursor::Base64),
        ("standard base64's +", b"~AQLQ9A6s+AA".to_vec(), BadCursor::Base64),
        ("a space", b"~AQLQ 9A6sAAA".to_vec(), BadCursor::Base64),
        (
            "one character past a group",
            b"~AQLQ9".to_vec(),
            BadCursor::Base64,
        ),
        (
            "bits over that are not zero",
            b"~AQLQ9A6sAAB".to_vec(),
            BadCursor::Base64,
        ),
        ("non-ASCII", "~AQLQ9A6sAAé".as_bytes().to_vec(), BadCursor::Base64),
        (
            "version 2",
            b64(&[2, 2, 0xd0, 0xf4, 0x0e, 0xac, 0, 0]),
            BadCursor::Version(2),
        ),
        ("version 0", b64(&[0]), BadCursor::Version(0)),
        ("one topic missing", with(&[0]), BadCursor::Truncated),
        ("a seq missing", with(&[0, 1]), BadCursor::Truncated),
        ("a varint cut short", with(&[0, 0x81]), BadCursor::Truncated),
        (
            "the fingerprint cut short",
            b64(&[1, 2, 0xd0, 0xf4]),
            BadCursor::Truncated,
        ),
        (
            "a byte after the last topic",
            with(&[0, 0, 0]),
            BadCursor::TrailingBytes,
        ),
        (
            "a seq over 64 bits",
            with(&[0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            BadCursor::VarintOverflow,
        ),
        (
            "an h over 2^64",
            with(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x03, 0]),
            BadCursor::VarintOverflow,
        ),
        (
            "a varint of 11 bytes",
            with(&[
                0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ]),
            BadCursor::VarintOverflow,
        ),
        (
            "a varint longer than it needs",
            with(&[0, 0x81, 0x00, 0]),
            BadCursor::OverlongVarint,
        ),
        (
            "a count longer than it needs",
            b64(&[1, 0x82, 0x00]),
            BadCursor::OverlongVarint,
        ),
        (
            "three topics",
            b64(&header(3)),
            BadCursor::TopicCount {
                expected: 2,
                found: 3,
            },
        ),
        (
            "another list",
            b64(&[1, 2, 0xd1, 0xf4, 0x0e, 0xac, 0, 0]),
            BadCursor::Fingerprint {
                expected: 0xac0e_f4d0,
                found: 0xac0e_f4d1,
            },
        ),
        (
            "over 4 KiB",
            [b"~".to_vec(), vec![b'A'; MAX_CURSOR_LEN]].concat(),
            BadCursor::TooLong {
                len: MAX_CURSOR_LEN + 1,
            },
        ),
    ];
    for (what, text, why) in cases {
        let mut cursor = two();
        cursor.positions_mut()[0] = Some(EventId::new(5, 5));
        assert_eq!(refused(&mut cursor, &text), why, "{what}");
        assert_eq!(Error::InvalidCursor(why).http_status(), 400, "{what}");
        assert!(!Error::InvalidCursor(why).to_string().is_empty());
    }
    // The largest h (a difference of 2^63) is in range, and reads back.
    let far = [Some(EventId::new(0, 1)), Some(EventId::new(1 << 63, 2))];
    let encoded = text(&cursor(&["A".to_owned(), "B".to_owned()], &far));
    let mut back = two();
    back.decode(&encoded).unwrap();
    assert_eq!(back.positions(), far);
    // A cursor of exactly 4 KiB is read (and found to be of another
    // list), one byte more is not.
    let mut long = b"~".to_vec();
    long.extend_from_slice(&b64(&[1, 2, 0, 0, 0, 0])[1..]);
    long.resize(MAX_CURSOR_LEN, b'A');
    assert!(!matches!(refused(&mut two(), &long), BadCursor::TooLong { .. }));
}

#[test]
fn a_reused_buffer_grows_once() {
    let list = topics(100);
    let mut cursor = Cursor::new(&list);
    let mut out = Vec::new();
    cursor.encode(&mut out);
    let (capacity, pointer) = (out.capacity(), out.as_ptr());
    for round in 0..200u64 {
        for (i, p) in cursor.positions_mut().iter_mut().enumerate() {
            *p = Some(EventId::new(u64::MAX - round * 7919 * i as u64, u64::MAX - round));
        }
        out.clear();
        cursor.encode(&mut out);
        assert_eq!((out.capacity(), out.as_ptr()), (capacity, pointer), "{round}");
    }
}

#[test]
fn realistic_ids_take_a_few_bytes_per_topic() {
    // One node's topics made within ten seconds of each other, each with a
    // few hundred events: about 5 bytes of binary, 7 characters, each.
    let list = topics(100);
    let mut cursor = Cursor::new(&list);
    for (i, p) in cursor.positions_mut().iter_mut().enumerate() {
        let i = i as u64;
        *p = Some(EventId::new(
            1_718_000_000_000 + (i * 7_919) % 10_000,
            100 + i * 37 % 900,
        ));
    }
    let len = text(&cursor).len();
    assert!(len <= 100 * 8, "{len} bytes for 100 topics");
}
