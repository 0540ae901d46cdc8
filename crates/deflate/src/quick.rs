//! Level 1 for a message that stands alone (no context takeover): one
//! pass of greedy matching, written with the fixed Huffman codes of RFC
//! 1951 section 3.2.6, in one non-final block and the sync flush's empty
//! stored block (whose LEN/NLEN tail RFC 7692 section 7.2.1 strips).
//!
//! zlib-rs's level 1 writes the same kind of output, but each message
//! needs a reset compressor, and zlib-rs's reset zeroes a 64 Ki-entry
//! (128 KiB) hash table: for a chat message of a few hundred bytes that
//! costs several times the compression itself. Here the hash table is
//! sized to the message, so preparing it costs about as much as reading
//! the message once.

use std::cell::RefCell;

/// Messages up to this many bytes are compressed here; longer ones by
/// zlib-rs, whose reset is small beside them.
pub(crate) const MAX_LEN: usize = 16 * 1024;

/// The shortest match worth a length and distance: with the fixed codes a
/// 3-byte match costs about as much as its three literals.
const MIN_MATCH: usize = 4;
/// The longest match deflate can express.
const MAX_MATCH: usize = 258;
/// The most hash-table bits: 16 Ki entries for messages of 16 KiB.
const MAX_TABLE_BITS: u32 = 14;
/// The fewest: 64 entries.
const MIN_TABLE_BITS: u32 = 6;

thread_local! {
    /// The hash table, kept by the thread between messages so that only
    /// zeroing it is paid per message. Entries are positions in the message.
    static TABLE: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// Appends `payload` compressed to `out`, referring back at most
/// `max_distance` bytes (the peer's window) and never before the message's
/// start. `payload` must be at most [`MAX_LEN`] bytes.
pub(crate) fn compress(payload: &[u8], max_distance: usize, out: &mut Vec<u8>) {
    let bits = table_bits(payload.len());
    TABLE.with_borrow_mut(|table| {
        table.clear();
        table.resize(1 << bits, 0);
        encode(payload, max_distance, bits, table, out);
    });
}

/// About one entry a byte, within the bounds.
fn table_bits(len: usize) -> u32 {
    let ceil_log2 = usize::BITS - len.saturating_sub(1).leading_zeros();
    ceil_log2.clamp(MIN_TABLE_BITS, MAX_TABLE_BITS)
}

fn encode(data: &[u8], max_distance: usize, bits: u32, table: &mut [u16], out: &mut Vec<u8>) {
    // Fixed codes take at most 9 bits a literal.
    out.reserve(data.len() + data.len() / 8 + 8);
    let mut w = BitWriter {
        out,
        bits: 0,
        count: 0,
    };
    // BFINAL 0, BTYPE 01 (fixed Huffman codes).
    w.put(0b010, 3);
    let mut i = 0;
    while let Some(word) = read_u32(data, i) {
        // Positions fit: messages here are at most MAX_LEN bytes.
        let here = u16::try_from(i).unwrap_or(0);
        let candidate = table
            .get_mut(hash(word, bits))
            .map_or(0, |slot| usize::from(std::mem::replace(slot, here)));
        let distance = i.wrapping_sub(candidate);
        if candidate < i && distance <= max_distance && read_u32(data, candidate) == Some(word) {
            let len =
                MIN_MATCH + common_prefix(data, candidate + MIN_MATCH, i + MIN_MATCH, MAX_MATCH - MIN_MATCH);
            w.put_match(len, distance);
            i += len;
        } else {
            w.put_literal(word.to_le_bytes()[0]);
            i += 1;
        }
    }
    for &byte in data.get(i..).unwrap_or_default() {
        w.put_literal(byte);
    }
    // End of block: symbol 256, seven zero bits.
    w.put(0, 7);
    // The sync flush: an empty stored block, BFINAL 0 and BTYPE 00, up to
    // the byte boundary; its LEN and NLEN are the stripped tail.
    w.put(0, 3);
    w.finish();
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn hash(word: u32, bits: u32) -> usize {
    let h = word.wrapping_mul(0x9E37_79B1) >> (32 - bits);
    usize::try_from(h).unwrap_or(0)
}

/// How many bytes from `earlier` and from `later` are equal, at most `max`
/// and never past the end of `data` (`earlier` < `later`).
fn common_prefix(data: &[u8], earlier: usize, later: usize, max: usize) -> usize {
    let (Some(a), Some(b)) = (data.get(earlier..), data.get(later..)) else {
        return 0;
    };
    let limit = max.min(b.len());
    let mut n = 0;
    while n + 8 <= limit {
        let (Some(x), Some(y)) = (read_u64(a, n), read_u64(b, n)) else {
            break;
        };
        let diff = x ^ y;
        if diff != 0 {
            let same = usize::try_from(diff.trailing_zeros() / 8).unwrap_or(0);
            return n + same;
        }
        n += 8;
    }
    while n < limit && a.get(n) == b.get(n) {
        n += 1;
    }
    n
}

/// Bits into bytes, least significant first (RFC 1951 section 3.1.1).
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    bits: u64,
    count: u32,
}

impl BitWriter<'_> {
    /// Appends the low `count` bits of `value`; at most 32 at a time.
    fn put(&mut self, value: u32, count: u32) {
        self.bits |= u64::from(value) << self.count;
        self.count += count;
        if self.count >= 32 {
            let [a, b, c, d, ..] = self.bits.to_le_bytes();
            self.out.extend_from_slice(&[a, b, c, d]);
            self.bits >>= 32;
            self.count -= 32;
        }
    }

    fn put_literal(&mut self, byte: u8) {
        let (code, len) = fixed_code(u32::from(byte));
        self.put(code, len);
    }

    /// A length (3 to 258) and distance (1 to 32768) pair: at most 8 + 5
    /// bits of length and 5 + 13 of distance, so one `put` takes both halves
    /// in turn.
    fn put_match(&mut self, len: usize, distance: usize) {
        let (symbol, extra_bits, extra) = length_code(u32::try_from(len - 3).unwrap_or(0));
        let (code, code_len) = fixed_code(257 + symbol);
        self.put(code | extra << code_len, code_len + extra_bits);
        let (symbol, extra_bits, extra) = distance_code(u32::try_from(distance - 1).unwrap_or(0));
        self.put(reverse(symbol, 5) | extra << 5, 5 + extra_bits);
    }

    /// Pads the last byte with zero bits and writes it.
    fn finish(self) {
        let bytes = self.bits.to_le_bytes();
        let whole = usize::try_from(self.count.div_ceil(8)).unwrap_or(0);
        self.out.extend_from_slice(bytes.get(..whole).unwrap_or_default());
    }
}

/// The fixed Huffman code of a literal/length symbol (RFC 1951 section
/// 3.2.6), bit-reversed for writing least significant bit first, and its
/// length.
fn fixed_code(symbol: u32) -> (u32, u32) {
    let (code, len) = match symbol {
        0..=143 => (0x30 + symbol, 8),
        144..=255 => (0x190 + symbol - 144, 9),
        256..=279 => (symbol - 256, 7),
        _ => (0xC0 + symbol - 280, 8),
    };
    (reverse(code, len), len)
}

fn reverse(code: u32, len: u32) -> u32 {
    code.reverse_bits() >> (32 - len)
}

/// Length minus 3 (0 to 255) to its code's offset from 257, its extra bits
/// and their value (RFC 1951 section 3.2.5): eight codes without extra
/// bits, then four codes for each count of extra bits, and 258 alone.
fn length_code(x: u32) -> (u32, u32, u32) {
    if x == 255 {
        (28, 0, 0)
    } else if x < 8 {
        (x, 0, 0)
    } else {
        let log = 31 - x.leading_zeros();
        let extra_bits = log - 2;
        (
            4 * (log - 1) + ((x >> extra_bits) & 3),
            extra_bits,
            x & ((1 << extra_bits) - 1),
        )
    }
}

/// Distance minus 1 (0 to 32767) to its code, extra bits and their value:
/// four codes without extra bits, then two codes for each count.
fn distance_code(x: u32) -> (u32, u32, u32) {
    if x < 4 {
        (x, 0, 0)
    } else {
        let log = 31 - x.leading_zeros();
        let extra_bits = log - 1;
        (
            2 * log + ((x >> extra_bits) & 1),
            extra_bits,
            x & ((1 << extra_bits) - 1),
        )
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// Inflates raw deflate data that ends with a sync flush whose tail was
    /// stripped, with a window of `window_bits`.
    fn inflate(compressed: &[u8], window_bits: u8) -> Vec<u8> {
        let mut inflater = zlib_rs::Inflate::new(false, window_bits);
        let mut input = compressed.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = vec![0; 4 * MAX_LEN + 1024];
        let status = inflater.decompress(&input, &mut out, zlib_rs::InflateFlush::SyncFlush);
        assert!(status.is_ok(), "{status:?}");
        assert_eq!(inflater.total_in(), input.len() as u64, "all input consumed");
        out.truncate(inflater.total_out() as usize);
        out
    }

    fn round_trip(data: &[u8], window_bits: u8) -> usize {
        let mut out = Vec::new();
        compress(data, 1 << window_bits, &mut out);
        assert_eq!(inflate(&out, window_bits.max(9)), data);
        let (decoded, farthest) = decode_fixed(&out);
        assert_eq!(decoded, data);
        assert!(
            farthest <= 1 << window_bits,
            "{farthest} back, window {window_bits}"
        );
        out.len()
    }

    /// Decodes this encoder's output on its own reading of RFC 1951 (one
    /// block with the fixed codes, then the empty stored block's header),
    /// and returns the bytes and the farthest distance referred back:
    /// zlib-rs inflates a match beyond its window without complaint when
    /// the output is in one buffer.
    fn decode_fixed(data: &[u8]) -> (Vec<u8>, usize) {
        const LEN_BASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
            163, 195, 227, 258,
        ];
        const LEN_EXTRA: [u32; 29] = [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
        ];
        const DIST_BASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
            3073, 4097, 6145, 8193, 12289, 16385, 24577,
        ];
        let mut at = 0usize;
        let mut bit = |n: u32| -> usize {
            let mut v = 0;
            for k in 0..n {
                let b = (data[at / 8] >> (at % 8)) & 1;
                v |= usize::from(b) << k;
                at += 1;
            }
            v
        };
        // Huffman codes are packed most significant bit first.
        let code = |n: u32, bit: &mut dyn FnMut(u32) -> usize| (0..n).fold(0, |c, _| c << 1 | bit(1));
        assert_eq!(bit(3), 0b010, "BFINAL 0, fixed codes");
        let (mut out, mut farthest) = (Vec::new(), 0);
        loop {
            let mut c = code(7, &mut bit);
            let symbol = if c <= 0b001_0111 {
                256 + c
            } else {
                c = c << 1 | bit(1);
                match c {
                    0x30..=0xBF => c - 0x30,
                    0xC0..=0xC7 => 280 + c - 0xC0,
                    _ => 144 + (c << 1 | bit(1)) - 0x190,
                }
            };
            match symbol {
                0..=255 => out.push(symbol as u8),
                256 => break,
                _ => {
                    let i = symbol - 257;
                    let len = LEN_BASE[i] + bit(LEN_EXTRA[i]);
                    let d = code(5, &mut bit);
                    let distance = DIST_BASE[d] + bit((d as u32).saturating_sub(2) / 2);
                    assert!(distance <= out.len(), "before the message's start");
                    farthest = farthest.max(distance);
                    for _ in 0..len {
                        out.push(out[out.len() - distance]);
                    }
                }
            }
        }
        assert_eq!(bit(3), 0, "the empty stored block");
        assert_eq!(data.len(), at.div_ceil(8), "nothing after it");
        (out, farthest)
    }

    proptest::proptest! {
        #[test]
        fn any_message_round_trips(
            pieces in proptest::collection::vec(
                (proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40), 1usize..60),
                0..40,
            ),
            bits in 8u8..=15,
        ) {
            // Pieces repeated: matches of every length and many distances.
            let data: Vec<u8> = pieces.iter().flat_map(|(piece, times)| piece.repeat(*times)).take(MAX_LEN).collect();
            round_trip(&data, bits);
        }
    }

    #[test]
    fn length_codes_match_the_rfc_table() {
        // (length, code, extra bits, extra value), from RFC 1951 3.2.5.
        for (len, code, bits, extra) in [
            (3, 257, 0, 0),
            (10, 264, 0, 0),
            (11, 265, 1, 0),
            (12, 265, 1, 1),
            (13, 266, 1, 0),
            (19, 269, 2, 0),
            (22, 269, 2, 3),
            (35, 273, 3, 0),
            (67, 277, 4, 0),
            (131, 281, 5, 0),
            (227, 284, 5, 0),
            (257, 284, 5, 30),
            (258, 285, 0, 0),
        ] {
            let (offset, b, e) = length_code(len - 3);
            assert_eq!((257 + offset, b, e), (code, bits, extra), "length {len}");
        }
    }

    #[test]
    fn distance_codes_match_the_rfc_table() {
        for (distance, code, bits, extra) in [
            (1, 0, 0, 0),
            (4, 3, 0, 0),
            (5, 4, 1, 0),
            (6, 4, 1, 1),
            (7, 5, 1, 0),
            (9, 6, 2, 0),
            (257, 16, 7, 0),
            (24577, 29, 13, 0),
            (32768, 29, 13, 8191),
        ] {
            assert_eq!(
                distance_code(distance - 1),
                (code, bits, extra),
                "distance {distance}"
            );
        }
    }

    #[test]
    fn known_output_for_a_short_message() {
        // zlib's own output for "Hello" with a sync flush, tail stripped
        // (RFC 7692 section 7.2.3.1).
        let mut out = Vec::new();
        compress(b"Hello", 1 << 15, &mut out);
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    }

    #[test]
    fn round_trips_edges() {
        round_trip(b"", 15);
        round_trip(b"a", 15);
        round_trip(b"abcd", 15);
        round_trip(&[7; 1000], 15);
        round_trip(&[0; MAX_LEN], 15);
        let text: Vec<u8> = (0..MAX_LEN)
            .map(|i| b"{\"user\":\"ann\",\"text\":\"hi\"}"[i % 26])
            .collect();
        let size = round_trip(&text, 15);
        assert!(size < text.len() / 10, "{size}");
    }

    #[test]
    fn refers_back_only_within_the_window() {
        let mut seed = 0x9e37_79b9_u32;
        let noise: Vec<u8> = (0..MAX_LEN)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                seed.to_le_bytes()[3]
            })
            .collect();
        let block = &noise[..300];
        for bits in 8..=15u8 {
            for gap in [0, 100, 250, 500, 1000, 5000, 12_000] {
                // The block, `gap` bytes of noise, the block again: the
                // repeat lies 300 + gap bytes back.
                let data = [block, &noise[1000..1000 + gap], block].concat();
                let mut out = Vec::new();
                compress(&data, 1 << bits, &mut out);
                let (decoded, farthest) = decode_fixed(&out);
                assert_eq!(decoded, data, "window {bits}, gap {gap}");
                assert!(farthest <= 1 << bits, "window {bits}, gap {gap}: {farthest} back");
                let repeat_fits = 300 + gap <= 1 << bits;
                assert_eq!(
                    farthest == 300 + gap,
                    repeat_fits,
                    "window {bits}, gap {gap}: {farthest}"
                );
            }
        }
    }

    #[test]
    fn never_refers_past_a_small_window() {
        // A 300-byte block repeated: with a 512-byte window the repeat is
        // found; with a 256-byte one (RFC 7692's smallest) it must not be.
        let mut seed = 0x2545_f491_u32;
        let block: Vec<u8> = (0..300)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                seed.to_le_bytes()[3]
            })
            .collect();
        let data = [block.as_slice(), block.as_slice()].concat();
        let near = round_trip(&data, 9);
        let mut far = Vec::new();
        compress(&data, 256, &mut far);
        assert_eq!(inflate(&far, 9), data);
        assert!(near < far.len(), "{near} vs {}", far.len());
        // Random bytes do not repeat within 256 bytes, so nothing shrank.
        assert!(far.len() > data.len(), "{} of {}", far.len(), data.len());
    }
}
