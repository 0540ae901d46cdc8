//! Prefix integers (RFC 7541 section 5.1).
//!
//! An integer starts in the low `prefix` bits of a byte whose high bits
//! belong to the representation; values that do not fit continue in 7-bit
//! groups, least significant first.
//!
//! Public because QPACK (RFC 9204 section 4.1.1) uses the same integers:
//! `tether-h3` shares them rather than keeping a copy.

use super::Error;

/// Continuation bytes allowed after the prefix: five hold 35 bits, enough
/// for any value up to `u32::MAX` even when the prefix is full. More can
/// only be zero padding, which a peer has no reason to send.
const MAX_CONTINUATION: usize = 5;

/// Appends `value` with the given prefix size (1 to 8 bits); `first` holds
/// the representation's high bits, which must not overlap the prefix.
///
/// ```
/// let mut wire = Vec::new();
/// tether_h2::hpack::integer::encode(&mut wire, 5, 0, 1337);
/// assert_eq!(wire, [0x1f, 0x9a, 0x0a]);
/// ```
pub fn encode(dst: &mut Vec<u8>, prefix: u8, first: u8, value: usize) {
    debug_assert!((1..=8).contains(&prefix));
    let max_prefix = (1usize << prefix) - 1;
    // Every value pushed below is under 256 (the prefix mask, a value below
    // it, seven bits, a last group below 0x80): `low` loses nothing.
    let low = |v: usize| v.to_le_bytes().first().copied().unwrap_or_default();
    if value < max_prefix {
        dst.push(first | low(value));
        return;
    }
    dst.push(first | low(max_prefix));
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.push(0x80 | low(rest & 0x7f));
        rest >>= 7;
    }
    dst.push(low(rest));
}

/// Decodes an integer with a `prefix`-bit prefix from `src[*pos..]` and
/// moves `*pos` past it. The high bits of the first byte are ignored.
///
/// Every integer HPACK carries is an index, a string length or a table
/// size, and none of those is meaningful past 32 bits: larger values are
/// refused as [`Error::IntegerOverflow`].
pub fn decode(src: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, Error> {
    debug_assert!((1..=8).contains(&prefix));
    let max_prefix = (1u32 << prefix) - 1;
    let first = *src.get(*pos).ok_or(Error::Truncated)?;
    let mut value = u32::from(first) & max_prefix;
    let mut at = *pos + 1;
    if value == max_prefix {
        let mut shift = 0u32;
        loop {
            if at - *pos > MAX_CONTINUATION {
                return Err(Error::IntegerOverflow);
            }
            let byte = *src.get(at).ok_or(Error::Truncated)?;
            at += 1;
            let add = u64::from(byte & 0x7f) << shift;
            value = u64::from(value)
                .checked_add(add)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(Error::IntegerOverflow)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
    }
    *pos = at;
    usize::try_from(value).map_err(|_| Error::IntegerOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(prefix: u8, first: u8, value: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, prefix, first, value);
        v
    }

    fn dec(src: &[u8], prefix: u8) -> Result<(usize, usize), Error> {
        let mut pos = 0;
        decode(src, &mut pos, prefix).map(|v| (v, pos))
    }

    /// RFC 7541 C.1.1: 10 with a 5-bit prefix.
    #[test]
    fn c_1_1_ten_in_five_bits() {
        assert_eq!(enc(5, 0, 10), [0b0000_1010]);
        assert_eq!(dec(&[0b1110_1010], 5), Ok((10, 1)));
    }

    /// RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    #[test]
    fn c_1_2_1337_in_five_bits() {
        assert_eq!(enc(5, 0, 1337), [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        assert_eq!(dec(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
    }

    /// RFC 7541 C.1.3: 42 starting at an octet boundary.
    #[test]
    fn c_1_3_42_in_eight_bits() {
        assert_eq!(enc(8, 0, 42), [42]);
        assert_eq!(dec(&[42], 8), Ok((42, 1)));
    }

    #[test]
    fn high_bits_are_kept_on_encode_and_ignored_on_decode() {
        assert_eq!(enc(6, 0x40, 62), [0x40 | 62]);
        assert_eq!(enc(6, 0x40, 63), [0x7f, 0]);
        assert_eq!(dec(&[0x7f, 0], 6), Ok((63, 2)));
        assert_eq!(dec(&[0xff, 0x9a, 0x0a], 5), Ok((1337, 3)));
    }

    #[test]
    fn trailing_bytes_are_left_alone() {
        assert_eq!(dec(&[0x1f, 0x9a, 0x0a, 0xff], 5), Ok((1337, 3)));
    }

    #[test]
    fn every_prefix_round_trips_edge_values() {
        for prefix in 1..=8u8 {
            let max_prefix = (1usize << prefix) - 1;
            for value in [
                0,
                1,
                max_prefix - 1,
                max_prefix,
                max_prefix + 1,
                127,
                128,
                16_383,
                16_384,
            ]
            .into_iter()
            .chain([u32::MAX as usize - 1, u32::MAX as usize])
            {
                let wire = enc(prefix, 0, value);
                assert_eq!(dec(&wire, prefix), Ok((value, wire.len())), "{prefix} {value}");
                // Every proper prefix of the encoding is incomplete.
                for cut in 0..wire.len() {
                    assert_eq!(
                        dec(&wire[..cut], prefix),
                        Err(Error::Truncated),
                        "{prefix} {value} {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_past_u32_are_refused() {
        let wire = enc(5, 0, u32::MAX as usize + 1);
        assert_eq!(dec(&wire, 5), Err(Error::IntegerOverflow));
        let wire = enc(8, 0, usize::MAX);
        assert_eq!(dec(&wire, 8), Err(Error::IntegerOverflow));
    }

    #[test]
    fn zero_padded_continuations_are_refused_past_five_bytes() {
        // Five continuation bytes are allowed even when they only pad.
        assert_eq!(dec(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5), Ok((31, 6)));
        // A sixth is refused before it is read, however long the run.
        assert_eq!(
            dec(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(Error::IntegerOverflow)
        );
        let mut long = vec![0x80; 64];
        long[0] = 0x1f;
        assert_eq!(dec(&long, 5), Err(Error::IntegerOverflow));
    }

    #[test]
    fn truncated_and_empty_inputs() {
        assert_eq!(dec(&[], 7), Err(Error::Truncated));
        assert_eq!(dec(&[0x7f], 7), Err(Error::Truncated));
        assert_eq!(dec(&[0x7f, 0x80], 7), Err(Error::Truncated));
    }
}
