//! The delta's numbers: unsigned integers in Fossil's base-64 digits
//! (`0-9`, `A-Z`, `_`, `a-z`, `~`), most significant first, no padding.

use alloc::vec::Vec;

const DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/// The most digits a number may have: 11 hold any `u64`, and a delta
/// never needs more than the 6 of a 1 GiB length.
const MAX_DIGITS: usize = 11;

/// Appends `n` in base-64 digits.
pub(crate) fn write(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; MAX_DIGITS];
    let mut at = buf.len();
    loop {
        at -= 1;
        // `n & 63` is below 64: always a digit.
        let digit = DIGITS.get((n & 63) as usize).copied().unwrap_or(b'0');
        if let Some(slot) = buf.get_mut(at) {
            *slot = digit;
        }
        n >>= 6;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(at..).unwrap_or_default());
}

/// How many digits [`write`] writes for `n`.
pub(crate) fn len(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(6).max(1)
}

/// The value of one digit, if it is one.
fn value(byte: u8) -> Option<u64> {
    Some(u64::from(match byte {
        b'0'..=b'9' => byte - b'0',
        b'A'..=b'Z' => byte - b'A' + 10,
        b'_' => 36,
        b'a'..=b'z' => byte - b'a' + 37,
        b'~' => 63,
        _ => return None,
    }))
}

/// Reads a number at the start of `input`: its value and the bytes
/// after it. At least one digit, at most [`MAX_DIGITS`], and no overflow.
pub(crate) fn read(input: &[u8]) -> Option<(u64, &[u8])> {
    let digits = input.iter().take_while(|b| value(**b).is_some()).count();
    if digits == 0 || digits > MAX_DIGITS {
        return None;
    }
    let (number, rest) = input.split_at_checked(digits)?;
    let mut n: u64 = 0;
    for byte in number {
        n = n.checked_mul(64)?.checked_add(value(*byte)?)?;
    }
    Some((n, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_their_length_is_known() {
        for n in [0, 1, 9, 10, 63, 64, 4095, 4096, 1 << 30, u64::MAX] {
            let mut out = Vec::new();
            write(&mut out, n);
            assert_eq!(out.len(), len(n), "{n}");
            out.push(b'@');
            assert_eq!(read(&out), Some((n, &b"@"[..])), "{n}");
        }
        let mut out = Vec::new();
        write(&mut out, 100);
        assert_eq!(out, b"1_");
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(read(b""), None);
        assert_eq!(read(b"@1"), None);
        // 12 digits, and 11 that overflow.
        assert_eq!(read(b"111111111111"), None);
        assert_eq!(read(b"~~~~~~~~~~~"), None);
        assert!(read(b"F~~~~~~~~~~").is_some());
    }
}
