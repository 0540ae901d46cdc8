//! QUIC variable-length integers (RFC 9000 §16).
//!
//! The two high bits of the first byte give the length (1, 2, 4 or 8
//! bytes); the rest, big-endian, is the value, so every value up to
//! [`MAX`] (2^62-1) has an encoding and nothing larger does. A value may be
//! sent in a longer encoding than it needs, and is accepted so.

use crate::error::Misuse;

/// The largest value a variable-length integer holds: 2^62-1.
pub const MAX: u64 = (1 << 62) - 1;

/// The length in bytes of `value`'s shortest encoding, or `None` above
/// [`MAX`].
pub const fn encoded_len(value: u64) -> Option<usize> {
    Some(match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        0x4000_0000..=MAX => 8,
        _ => return None,
    })
}

/// Appends `value`'s shortest encoding to `dst`.
///
/// ```
/// let mut wire = Vec::new();
/// tether_h3::varint::encode(151_288_809_941_952_652, &mut wire)?;
/// assert_eq!(wire, [0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]);
/// # Ok::<(), tether_h3::Misuse>(())
/// ```
pub fn encode(value: u64, dst: &mut Vec<u8>) -> Result<(), Misuse> {
    let bytes = value.to_be_bytes();
    let (tag, tail) = match encoded_len(value) {
        Some(1) => (0x00, bytes.get(7..)),
        Some(2) => (0x40, bytes.get(6..)),
        Some(4) => (0x80, bytes.get(4..)),
        Some(_) => (0xc0, bytes.get(..)),
        None => return Err(Misuse::VarintTooLarge(value)),
    };
    let tail = tail.unwrap_or_default();
    if let Some((&first, rest)) = tail.split_first() {
        dst.push(first | tag);
        dst.extend_from_slice(rest);
    }
    Ok(())
}

/// The length announced by a first byte.
const fn len_of(first: u8) -> usize {
    1 << (first >> 6)
}

/// Decodes one integer from the start of `src`: the value and the bytes it
/// took, or `None` if `src` ends before the integer does.
///
/// ```
/// use tether_h3::varint::decode;
/// assert_eq!(decode(&[0x7b, 0xbd, 0xff]), Some((15_293, 2)));
/// assert_eq!(decode(&[0x9d, 0x7f]), None);
/// ```
pub fn decode(src: &[u8]) -> Option<(u64, usize)> {
    let first = *src.first()?;
    let len = len_of(first);
    let bytes = src.get(..len)?;
    let value = bytes
        .iter()
        .skip(1)
        .fold(u64::from(first & 0x3f), |acc, &b| (acc << 8) | u64::from(b));
    Some((value, len))
}

/// Reads one integer that may arrive in pieces.
///
/// ```
/// use tether_h3::varint::VarintReader;
/// let mut reader = VarintReader::new();
/// assert_eq!(reader.feed(&[0x80, 0x00]), (2, None));
/// assert_eq!(reader.feed(&[0x40, 0x00, 0xff]), (2, Some(0x4000)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct VarintReader {
    buf: [u8; 8],
    have: usize,
}

impl VarintReader {
    /// A reader at the start of an integer.
    pub const fn new() -> VarintReader {
        VarintReader { buf: [0; 8], have: 0 }
    }

    /// Whether no byte of the integer has been read yet.
    pub const fn is_empty(&self) -> bool {
        self.have == 0
    }

    /// Takes bytes from `src` until the integer is complete: how many it
    /// took, and the value once complete (the reader is then ready for the
    /// next integer).
    pub fn feed(&mut self, src: &[u8]) -> (usize, Option<u64>) {
        let mut used = 0;
        for &byte in src {
            let Some(slot) = self.buf.get_mut(self.have) else {
                break;
            };
            *slot = byte;
            self.have += 1;
            used += 1;
            let want = self.buf.first().map_or(1, |&first| len_of(first));
            if self.have == want {
                let value = self.buf.get(..want).and_then(decode).map(|(v, _)| v);
                self.have = 0;
                return (used, value);
            }
        }
        (used, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9000 Appendix A.1's examples.
    #[test]
    fn rfc_examples() {
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (wire, value) in cases {
            assert_eq!(decode(wire), Some((value, wire.len())));
            let mut out = Vec::new();
            encode(value, &mut out).unwrap();
            assert_eq!(out, wire);
        }
        // 37 in two bytes is accepted.
        assert_eq!(decode(&[0x40, 0x25]), Some((37, 2)));
    }

    #[test]
    fn limits_and_lengths() {
        let mut out = Vec::new();
        assert_eq!(encode(MAX + 1, &mut out), Err(Misuse::VarintTooLarge(MAX + 1)));
        assert!(out.is_empty());
        encode(MAX, &mut out).unwrap();
        assert_eq!(out, [0xff; 8]);
        assert_eq!(decode(&out), Some((MAX, 8)));
        for (value, len) in [(0, 1), (63, 1), (64, 2), (16_383, 2), (16_384, 4), (1 << 30, 8)] {
            assert_eq!(encoded_len(value), Some(len));
        }
        assert_eq!(encoded_len(u64::MAX), None);
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn reader_takes_one_byte_at_a_time_and_stops_at_the_end() {
        for value in [0, 37, 15_293, 494_878_333, MAX] {
            let mut wire = Vec::new();
            encode(value, &mut wire).unwrap();
            wire.push(0xaa);
            let mut reader = VarintReader::new();
            let mut got = None;
            for (i, byte) in wire.iter().enumerate() {
                let (used, done) = reader.feed(std::slice::from_ref(byte));
                assert_eq!(used, 1);
                if let Some(v) = done {
                    assert_eq!(i + 2, wire.len());
                    got = Some(v);
                    break;
                }
            }
            assert_eq!(got, Some(value));
            assert!(reader.is_empty());
        }
    }
}
