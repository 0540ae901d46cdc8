//! QPACK's primitives (RFC 9204 §4.1): prefixed integers and string
//! literals whose Huffman flag sits just above an N-bit length prefix.
//! Both are HPACK's (RFC 7541 §5), shared with `tether-h2`.

use tether_h2::hpack::{self, huffman, integer};

use crate::error::Violation;

fn violation(e: hpack::Error) -> Violation {
    match e {
        hpack::Error::IntegerOverflow => Violation::QpackIntegerOverflow,
        hpack::Error::HuffmanEos => Violation::HuffmanEos,
        hpack::Error::HuffmanPadding => Violation::HuffmanPadding,
        hpack::Error::HeaderListTooLarge => Violation::FieldSectionTooLarge,
        _ => Violation::QpackTruncated,
    }
}

/// Reads an integer with a `prefix`-bit prefix at `*pos`.
///
/// Values above `u32::MAX` are refused as [`Violation::QpackIntegerOverflow`]
/// (the shared HPACK decoder's bound): no index, length or capacity this
/// decoder accepts comes near it.
pub(crate) fn read_int(src: &[u8], pos: &mut usize, prefix: u8) -> Result<u64, Violation> {
    let value = integer::decode(src, pos, prefix).map_err(violation)?;
    u64::try_from(value).map_err(|_| Violation::QpackIntegerOverflow)
}

/// Appends an integer with a `prefix`-bit prefix under the high bits
/// `first`.
pub(crate) fn write_int(dst: &mut Vec<u8>, prefix: u8, first: u8, value: u64) {
    integer::encode(dst, prefix, first, usize::try_from(value).unwrap_or(usize::MAX));
}

/// The limits on one string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StringLimits {
    /// The most bytes a string may take on the wire (Huffman-coded or not):
    /// checked before anything is decoded or waited for.
    pub(crate) max_wire: u64,
    /// The most bytes it may decode to.
    pub(crate) max_decoded: usize,
}

/// Reads a string literal whose length has a `prefix`-bit prefix and
/// whose Huffman flag is the bit above it.
pub(crate) fn read_string(
    src: &[u8],
    pos: &mut usize,
    prefix: u8,
    limits: StringLimits,
) -> Result<Vec<u8>, Violation> {
    let first = *src.get(*pos).ok_or(Violation::QpackTruncated)?;
    let huffman_coded = first & (1 << prefix) != 0;
    let len = read_int(src, pos, prefix)?;
    if len > limits.max_wire {
        return Err(Violation::StringTooLong(len));
    }
    let len = usize::try_from(len).map_err(|_| Violation::StringTooLong(len))?;
    let end = pos.checked_add(len).ok_or(Violation::QpackTruncated)?;
    let raw = src.get(*pos..end).ok_or(Violation::QpackTruncated)?;
    let mut out = Vec::new();
    if huffman_coded {
        huffman::decode(raw, limits.max_decoded, &mut out).map_err(violation)?;
    } else {
        if raw.len() > limits.max_decoded {
            return Err(Violation::FieldSectionTooLarge);
        }
        out.extend_from_slice(raw);
    }
    *pos = end;
    Ok(out)
}

/// Appends a string literal with a `prefix`-bit length prefix under the
/// high bits `first`, Huffman-coded when that is shorter.
pub(crate) fn write_string(dst: &mut Vec<u8>, prefix: u8, first: u8, s: &[u8]) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        write_int(
            dst,
            prefix,
            first | (1 << prefix),
            u64::try_from(coded).unwrap_or(u64::MAX),
        );
        huffman::encode(s, dst);
    } else {
        write_int(dst, prefix, first, u64::try_from(s.len()).unwrap_or(u64::MAX));
        dst.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: StringLimits = StringLimits {
        max_wire: 1024,
        max_decoded: 1024,
    };

    #[test]
    fn strings_round_trip_at_every_prefix() {
        for prefix in [3u8, 5, 7] {
            for s in [&b""[..], b"custom-key", b"\x00\xff binary", &[b'a'; 300]] {
                let mut wire = Vec::new();
                write_string(&mut wire, prefix, 0, s);
                let mut pos = 0;
                assert_eq!(read_string(&wire, &mut pos, prefix, ROOMY).unwrap(), s);
                assert_eq!(pos, wire.len());
                for cut in 0..wire.len() {
                    let mut pos = 0;
                    assert_eq!(
                        read_string(&wire[..cut], &mut pos, prefix, ROOMY),
                        Err(Violation::QpackTruncated)
                    );
                }
            }
        }
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        // A length of 2^20 announced with nothing behind it.
        let mut wire = Vec::new();
        write_int(&mut wire, 7, 0x80, 1 << 20);
        let mut pos = 0;
        assert_eq!(
            read_string(&wire, &mut pos, 7, ROOMY),
            Err(Violation::StringTooLong(1 << 20))
        );
        // Huffman output past the decoded limit.
        let mut wire = Vec::new();
        write_string(&mut wire, 7, 0, &[b'a'; 100]);
        let tight = StringLimits {
            max_wire: 1024,
            max_decoded: 99,
        };
        let mut pos = 0;
        assert_eq!(
            read_string(&wire, &mut pos, 7, tight),
            Err(Violation::FieldSectionTooLarge)
        );
        // EOS and bad padding.
        let mut pos = 0;
        assert_eq!(
            read_string(&[0x84, 0xff, 0xff, 0xff, 0xff], &mut pos, 7, ROOMY),
            Err(Violation::HuffmanEos)
        );
        let mut pos = 0;
        assert_eq!(
            read_string(&[0x81, 0x00], &mut pos, 7, ROOMY),
            Err(Violation::HuffmanPadding)
        );
        // An integer past u32.
        let mut pos = 0;
        assert_eq!(
            read_string(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, 7, ROOMY),
            Err(Violation::QpackIntegerOverflow)
        );
    }
}
