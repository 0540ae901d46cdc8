//! Huffman coding of string literals (RFC 7541 section 5.2 and Appendix B).
//!
//! Public because QPACK (RFC 9204 section 4.1.2) uses the same code for
//! its string literals: `tether-h3` shares it rather than keeping a copy.

use super::Error;
use super::huffman_table::CODES;

/// A child slot of the decoding tree: an internal node's index, or a
/// symbol when [`LEAF`] is set. Slot value 0 never appears as a child (node
/// 0 is the root), so it marks "not yet built" while the tree is made.
const LEAF: u16 = 0x8000;
const EOS: u16 = 256;

/// The decoding tree, built from [`CODES`] at compile time: a complete
/// prefix code with 257 symbols has exactly 256 internal nodes. Building it
/// here means a wrong table (a code that is a prefix of another, or a gap)
/// fails the build instead of decoding wrongly. Only the build uses it: the
/// decoder walks [`STEPS`], made from it.
const TREE: [[u16; 2]; 256] = build_tree();

/// What the decoder does with four bits from an internal node of [`TREE`]:
/// the node it ends at, and the symbol it completes on the way, if any.
/// Since the shortest code has 5 bits, four bits complete at most one.
#[derive(Debug, Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// [`Step::sym`] was completed.
const EMIT: u8 = 1;
/// The four bits complete EOS.
const FAIL: u8 = 2;

static STEPS: [[Step; 16]; 256] = build_steps();

/// The nodes where a string may end: the root (no padding) and the first
/// seven nodes down the all-ones path (1 to 7 bits of EOS as padding).
static ACCEPT: [bool; 256] = build_accept();

// Runs only at compile time (for the statics): an index out of range or a
// failed assert is a build error, never a panic at run time; a const fn has
// no iterators to index with instead.
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const fn build_tree() -> [[u16; 2]; 256] {
    let mut nodes = [[0u16; 2]; 256];
    let mut next = 1u16;
    let mut sym = 0;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        let mut node = 0usize;
        let mut i = len;
        while i > 1 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            let child = nodes[node][bit];
            assert!(child & LEAF == 0, "a code is a prefix of another");
            if child == 0 {
                nodes[node][bit] = next;
                node = next as usize;
                next += 1;
            } else {
                node = child as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(nodes[node][bit] == 0, "a code is a prefix of another");
        nodes[node][bit] = LEAF | sym as u16;
        sym += 1;
    }
    // A complete code leaves no slot empty.
    let mut n = 0;
    while n < nodes.len() {
        assert!(nodes[n][0] != 0 && nodes[n][1] != 0, "the code is not complete");
        n += 1;
    }
    nodes
}

// Runs only at compile time (for the statics): an index out of range or a
// failed assert is a build error, never a panic at run time; a const fn has
// no iterators to index with instead.
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const fn build_steps() -> [[Step; 16]; 256] {
    let mut steps = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut node = 0;
    while node < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut at = node;
            let mut sym = 0;
            let mut flags = 0;
            let mut i = 4;
            while i > 0 {
                i -= 1;
                let child = TREE[at][(nibble >> i) & 1];
                if child & LEAF == 0 {
                    at = child as usize;
                    continue;
                }
                if child & !LEAF == EOS {
                    flags = FAIL;
                    break;
                }
                assert!(flags & EMIT == 0, "two symbols in four bits");
                flags |= EMIT;
                sym = (child & !LEAF) as u8;
                at = 0;
            }
            steps[node][nibble] = Step {
                next: at as u8,
                sym,
                flags,
            };
            nibble += 1;
        }
        node += 1;
    }
    steps
}

// Runs only at compile time (for the statics): an index out of range or a
// failed assert is a build error, never a panic at run time; a const fn has
// no iterators to index with instead.
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const fn build_accept() -> [bool; 256] {
    let mut accept = [false; 256];
    accept[0] = true;
    let mut at = 0;
    let mut depth = 0;
    while depth < 7 {
        let child = TREE[at][1];
        assert!(child & LEAF == 0, "a code of 8 or fewer ones");
        at = child as usize;
        accept[at] = true;
        depth += 1;
    }
    accept
}

/// The code of a byte: every byte has one (EOS, the 257th, is never
/// encoded), so the fallback is never taken and folds away.
#[inline]
fn code_of(b: u8) -> (u32, u8) {
    CODES.get(usize::from(b)).copied().unwrap_or((0, 0))
}

/// The length in bytes of `src` once Huffman coded, padding included.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: u64 = src.iter().map(|&b| u64::from(code_of(b).1)).sum();
    usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX)
}

/// Appends the Huffman coding of `src` to `dst`, padded with the most
/// significant bits of EOS (ones) to a whole byte.
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    // Holds at most 7 pending bits plus one code of at most 30.
    let mut acc = 0u64;
    let mut pending = 0u32;
    for &b in src {
        let (code, len) = code_of(b);
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            let [low, ..] = (acc >> pending).to_le_bytes();
            dst.push(low);
        }
    }
    if pending > 0 {
        let [low, ..] = (acc << (8 - pending)).to_le_bytes();
        dst.push(low | (0xff >> pending));
    }
}

/// Appends the decoding of `src` to `dst`, refusing (with
/// [`Error::HeaderListTooLarge`]) to append more than `max_len` bytes.
///
/// Section 5.2: EOS inside the string, padding longer than 7 bits and
/// padding that is not the high bits of EOS (all ones) are errors.
pub fn decode(src: &[u8], max_len: usize, dst: &mut Vec<u8>) -> Result<(), Error> {
    let start = dst.len();
    // A u8 indexes the 256 rows and a nibble the 16 steps of a row: no
    // lookup can miss, and the compiler drops the checks.
    let mut node = 0u8;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let Some(&step) = STEPS
                .get(usize::from(node))
                .and_then(|row| row.get(usize::from(nibble)))
            else {
                return Err(Error::HuffmanEos);
            };
            if step.flags & FAIL != 0 {
                return Err(Error::HuffmanEos);
            }
            if step.flags & EMIT != 0 {
                if dst.len() - start >= max_len {
                    return Err(Error::HeaderListTooLarge);
                }
                dst.push(step.sym);
            }
            node = step.next;
        }
    }
    // The bits since the last symbol are the padding: at most 7, all ones.
    if ACCEPT.get(usize::from(node)) != Some(&true) {
        return Err(Error::HuffmanPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(s, &mut v);
        assert_eq!(v.len(), encoded_len(s));
        v
    }

    fn dec(s: &[u8]) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        decode(s, usize::MAX, &mut v).map(|()| v)
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The Huffman strings of RFC 7541 Appendix C.4 and C.6.
    const RFC_STRINGS: &[(&str, &str)] = &[
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("307", "640e ff"),
        ("private", "aec3 771a 4b"),
        (
            "Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (
            "Mon, 21 Oct 2013 20:13:22 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff",
        ),
        (
            "https://www.example.com",
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
        ),
        ("gzip", "9bd9 ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ),
    ];

    #[test]
    fn rfc_strings_encode_and_decode() {
        for &(plain, coded) in RFC_STRINGS {
            assert_eq!(enc(plain.as_bytes()), hex(coded), "{plain}");
            assert_eq!(dec(&hex(coded)).unwrap(), plain.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn every_byte_round_trips_alone_and_together() {
        for b in 0..=255u8 {
            assert_eq!(dec(&enc(&[b])).unwrap(), [b], "{b}");
            assert_eq!(dec(&enc(&[b, b, b])).unwrap(), [b, b, b], "{b}");
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(dec(&enc(&all)).unwrap(), all);
        let rev: Vec<u8> = (0..=255).rev().collect();
        assert_eq!(dec(&enc(&rev)).unwrap(), rev);
    }

    #[test]
    fn lengths_follow_the_code() {
        assert_eq!(encoded_len(b""), 0);
        assert!(enc(b"").is_empty());
        // '0' is 5 bits, so one fills a byte and eight fill five.
        assert_eq!(encoded_len(b"0"), 1);
        assert_eq!(encoded_len(b"00000000"), 5);
        // Byte 10 (LF) is 30 bits.
        assert_eq!(encoded_len(b"\n"), 4);
    }

    #[test]
    fn empty_input_decodes_to_nothing() {
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    #[test]
    fn eos_inside_the_string_is_refused() {
        // EOS alone: 30 ones, then two more ones of padding.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), Err(Error::HuffmanEos));
        // A symbol, then EOS.
        // 'a' is 00011 (5 bits), then EOS (30 ones), then 5 ones of padding.
        let bits: u64 = (0b00011 << 30) | 0x3fff_ffff;
        let padded = (bits << 5) | 0x1f;
        let wire = padded.to_be_bytes()[3..].to_vec();
        assert_eq!(dec(&wire), Err(Error::HuffmanEos));
    }

    #[test]
    fn padding_longer_than_seven_bits_is_refused() {
        // A whole byte of ones after a complete symbol.
        let mut wire = enc(b"0"); // 00000 + 111
        assert_eq!(dec(&wire).unwrap(), b"0");
        wire.push(0xff);
        assert_eq!(dec(&wire), Err(Error::HuffmanPadding));
        // One byte of ones alone: 8 bits of padding, no symbol.
        assert_eq!(dec(&[0xff]), Err(Error::HuffmanPadding));
        // 16 ones: still padding, still too long.
        assert_eq!(dec(&[0xff, 0xff]), Err(Error::HuffmanPadding));
    }

    #[test]
    fn padding_that_is_not_all_ones_is_refused() {
        // '0' (00000) followed by 110 instead of 111.
        assert_eq!(dec(&[0b0000_0110]), Err(Error::HuffmanPadding));
        // '0' followed by 000: three zeros are the start of a code, not padding.
        assert_eq!(dec(&[0b0000_0000]), Err(Error::HuffmanPadding));
        // 'a' (00011) followed by 011.
        assert_eq!(dec(&[0b0001_1011]), Err(Error::HuffmanPadding));
    }

    /// The bit-at-a-time walk of [`TREE`] that [`STEPS`] and [`ACCEPT`]
    /// speed up, as the reference they must agree with.
    fn reference(src: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let (mut node, mut depth, mut ones) = (0usize, 0, true);
        for &byte in src {
            for shift in (0..8).rev() {
                let bit = (byte >> shift) & 1;
                let child = TREE[node][usize::from(bit)];
                if child & LEAF == 0 {
                    (node, depth) = (usize::from(child), depth + 1);
                    ones &= bit == 1;
                } else if child & !LEAF == EOS {
                    return Err(Error::HuffmanEos);
                } else {
                    out.push(u8::try_from(child & !LEAF).unwrap());
                    (node, depth, ones) = (0, 0, true);
                }
            }
        }
        if depth > 7 || !ones {
            return Err(Error::HuffmanPadding);
        }
        Ok(out)
    }

    #[test]
    fn the_nibble_table_agrees_with_the_tree() {
        for a in 0..=255u8 {
            assert_eq!(dec(&[a]), reference(&[a]), "{a:02x}");
            for b in 0..=255u8 {
                assert_eq!(dec(&[a, b]), reference(&[a, b]), "{a:02x}{b:02x}");
            }
        }
        // Longer inputs from a fixed pseudo-random sequence, biased to ones
        // so that long codes and EOS come up.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000 {
            let input: Vec<u8> = (0..len % 40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let [a, b, c, ..] = x.to_le_bytes();
                    a | (b & c)
                })
                .collect();
            assert_eq!(dec(&input), reference(&input), "{input:02x?}");
        }
    }

    #[test]
    fn the_output_limit_holds() {
        let wire = enc(b"hello");
        let mut out = Vec::new();
        assert_eq!(decode(&wire, 4, &mut out), Err(Error::HeaderListTooLarge));
        assert!(out.len() <= 4);
        let mut out = Vec::new();
        assert_eq!(decode(&wire, 5, &mut out), Ok(()));
        assert_eq!(out, b"hello");
        // The limit counts only what this call appends.
        let mut out = b"xy".to_vec();
        assert_eq!(decode(&wire, 5, &mut out), Ok(()));
        assert_eq!(out, b"xyhello");
    }
}
