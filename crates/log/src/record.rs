//! The record and segment-header formats, without I/O.

use crate::Error;

/// Bytes before a record's payload: its length and its CRC32C, both
/// little-endian `u32`.
pub const RECORD_HEADER_LEN: usize = 8;

/// Bytes of a segment file's header: the magic, the format version, the
/// index of the segment's first record, and their CRC32C.
pub const SEGMENT_HEADER_LEN: usize = 24;

const MAGIC: [u8; 8] = *b"tetherlg";
const VERSION: u32 = 1;

/// The CRC32C (Castagnoli) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// The checksum of a record: the CRC32C of its length field followed by
/// its payload, so that a damaged length is caught as surely as damaged
/// data.
fn record_crc(len_field: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_field), payload)
}

/// Appends one record (`len`, `crc`, `payload`) to `out`.
///
/// ```
/// use tether_log::{Decoded, decode_record, encode_record};
///
/// let mut wire = Vec::new();
/// encode_record(b"hello", &mut wire)?;
/// assert_eq!(wire.len(), 8 + 5);
/// assert_eq!(decode_record(&wire, 1024), Decoded::Record { payload: &b"hello"[..], used: 13 });
/// assert_eq!(decode_record(&wire[..12], 1024), Decoded::Incomplete { needed: 13 });
/// # Ok::<(), tether_log::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::RecordTooLarge`] when the payload's length does not fit a
/// `u32`; `out` is unchanged then.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u32::try_from(payload.len()).map_err(|_| Error::RecordTooLarge {
        len: payload.len(),
        max: u32::MAX,
    })?;
    let len_field = len.to_le_bytes();
    out.reserve(RECORD_HEADER_LEN.saturating_add(payload.len()));
    out.extend_from_slice(&len_field);
    out.extend_from_slice(&record_crc(len_field, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record whose checksum holds.
    Record {
        /// Its payload, borrowed from the buffer.
        payload: &'a [u8],
        /// The record's bytes, header included: where the next one starts.
        used: usize,
    },
    /// The buffer ends inside a record (or is empty); `needed` bytes would
    /// hold it whole, as far as its header tells.
    Incomplete {
        /// The bytes a whole record needs, at least.
        needed: usize,
    },
    /// Not a record: its length is above the limit, or its checksum fails.
    Invalid(Invalid),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// The length field is above the largest payload allowed.
    TooLong {
        /// The length it gives.
        len: u32,
    },
    /// The CRC32C does not match; `used` is where the record would end.
    Checksum {
        /// The record's bytes, header included, had it been whole.
        used: usize,
    },
}

/// Reads one record from the start of `buf`, allowing payloads of at most
/// `max_payload` bytes. The length is checked against the limit before
/// anything else is read, so no caller need allocate for a length it has
/// not checked.
pub fn decode_record(buf: &[u8], max_payload: u32) -> Decoded<'_> {
    let Some((head, rest)) = buf.split_first_chunk::<RECORD_HEADER_LEN>() else {
        return Decoded::Incomplete {
            needed: RECORD_HEADER_LEN,
        };
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *head;
    let len_field = [l0, l1, l2, l3];
    let len = u32::from_le_bytes(len_field);
    if len > max_payload {
        return Decoded::Invalid(Invalid::TooLong { len });
    }
    // `len` is at most a u32 and the header is 8 bytes: fits a usize on
    // every target with 32 bits or more; saturate elsewhere.
    let payload_len = usize::try_from(len).unwrap_or(usize::MAX);
    let used = RECORD_HEADER_LEN.saturating_add(payload_len);
    let Some(payload) = rest.get(..payload_len) else {
        return Decoded::Incomplete { needed: used };
    };
    if record_crc(len_field, payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Decoded::Invalid(Invalid::Checksum { used });
    }
    Decoded::Record { payload, used }
}

/// The header of the segment whose first record has index `base`.
pub fn encode_segment_header(base: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    let (body, crc) = header.split_at_mut(SEGMENT_HEADER_LEN - 4);
    let (magic, rest) = body.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    let (version, base_field) = rest.split_at_mut(4);
    version.copy_from_slice(&VERSION.to_le_bytes());
    base_field.copy_from_slice(&base.to_le_bytes());
    crc.copy_from_slice(&crc32c(body).to_le_bytes());
    header
}

/// The base index a segment header holds, if `bytes` begin with a valid
/// one (magic, version 1, checksum).
pub fn decode_segment_header(bytes: &[u8]) -> Option<u64> {
    let header = bytes.first_chunk::<SEGMENT_HEADER_LEN>()?;
    let (body, crc) = header.split_last_chunk::<4>()?;
    if crc32c(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (magic, rest) = body.split_first_chunk::<8>()?;
    let (version, base) = rest.split_first_chunk::<4>()?;
    if *magic != MAGIC || u32::from_le_bytes(*version) != VERSION {
        return None;
    }
    Some(u64::from_le_bytes(*base.first_chunk::<8>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The check value of CRC-32C (RFC 3720, B.4): "123456789".
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
    }

    #[test]
    fn record_layout() {
        let mut wire = Vec::new();
        encode_record(b"ab", &mut wire).unwrap();
        assert_eq!(&wire[..4], &2u32.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c(&2u32.to_le_bytes()), b"ab");
        assert_eq!(&wire[4..8], &crc.to_le_bytes());
        assert_eq!(&wire[8..], b"ab");
    }

    #[test]
    fn empty_payload_is_a_record() {
        let mut wire = Vec::new();
        encode_record(b"", &mut wire).unwrap();
        assert_eq!(
            decode_record(&wire, 0),
            Decoded::Record {
                payload: b"",
                used: 8
            }
        );
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(
            decode_record(&[0; 8], 16),
            Decoded::Invalid(Invalid::Checksum { used: 8 })
        );
    }

    #[test]
    fn length_checked_before_payload() {
        let mut wire = Vec::new();
        encode_record(&[7; 100], &mut wire).unwrap();
        assert_eq!(
            decode_record(&wire[..8], 99),
            Decoded::Invalid(Invalid::TooLong { len: 100 })
        );
        assert_eq!(
            decode_record(&wire[..8], 100),
            Decoded::Incomplete { needed: 108 }
        );
        for cut in 0..8 {
            assert_eq!(
                decode_record(&wire[..cut], 100),
                Decoded::Incomplete { needed: 8 }
            );
        }
    }

    #[test]
    fn segment_header_round_trip() {
        for base in [0, 1, 1 << 40, u64::MAX] {
            let header = encode_segment_header(base);
            assert_eq!(decode_segment_header(&header), Some(base));
            for byte in 0..SEGMENT_HEADER_LEN {
                for bit in 0..8 {
                    let mut bad = header;
                    bad[byte] ^= 1 << bit;
                    assert_eq!(decode_segment_header(&bad), None, "byte {byte} bit {bit}");
                }
            }
            assert_eq!(decode_segment_header(&header[..SEGMENT_HEADER_LEN - 1]), None);
        }
    }
}
