//! The record and segment-header formats, without I/O.
//!
//! Version 2 (written): every record starts with the marker `0xFF 0x01`;
//! its header fields are written seven bits to a byte (every byte below
//! `0x80`), and every `0xFF` of its payload is written `0xFF 0x00`. So
//! `0xFF 0x01` is on disk only where a record starts, and a reader that
//! meets a damaged record finds the next one by searching for the marker:
//! no payload, whatever its bytes (a published event may hold the bytes of
//! an encoded record), can pass for a record start, and a marker the
//! damage itself made fails its checksum. Text payloads hold no `0xFF`, so
//! they cost no byte more.
//!
//! Version 1 (read only, as earlier releases wrote it): a `u32` length, a
//! CRC32C, the payload. Nothing in it tells a record start from payload,
//! so damage there costs the rest of its segment.

use std::ops::Range;

use crate::error::Error;

/// Bytes before a version 1 record's payload: its length and its CRC32C,
/// both little-endian `u32`.
pub const RECORD_HEADER_LEN_V1: usize = 8;

/// The most bytes before a record's payload: the marker, the CRC32C (5
/// bytes), the widths byte, the payload length (at most 5 bytes) and the
/// index (at most 10).
pub const MAX_RECORD_HEADER_LEN: usize = 2 + 5 + 1 + 5 + 10;

/// The two bytes that start every record (version 2), and appear nowhere
/// else in a segment's records.
pub const RECORD_MARKER: [u8; 2] = [0xFF, 0x01];

/// Bytes of a segment file's header: the magic, the format version, the
/// index of the segment's first record, and their CRC32C.
pub const SEGMENT_HEADER_LEN: usize = 24;

const MAGIC: [u8; 8] = *b"tetherlg";

/// The segment format written: version 2, records with markers.
pub const SEGMENT_VERSION: u32 = 2;

/// The format of earlier releases, still read.
pub const SEGMENT_VERSION_V1: u32 = 1;

/// The escape byte: the marker's first byte.
const ESCAPE: u8 = 0xFF;
/// What follows [`ESCAPE`] at a record start.
const START: u8 = 0x01;
/// What follows [`ESCAPE`] for a payload's own `0xFF`.
const LITERAL: u8 = 0x00;

const CRC_WIDTH: usize = 5;

/// The CRC32C (Castagnoli) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// How many 7-bit bytes `value` needs (at least one).
fn width7(value: u64) -> usize {
    let bits = 64usize.saturating_sub(value.leading_zeros() as usize).max(1);
    bits.div_ceil(7)
}

/// Writes the low `width * 7` bits of `value`, low group first.
fn put7(out: &mut Vec<u8>, mut value: u64, width: usize) {
    for _ in 0..width {
        out.push(u8::try_from(value & 0x7F).unwrap_or(0));
        value >>= 7;
    }
}

/// Reads a 7-bit field; `None` if a byte has its high bit set or the
/// value does not fit a `u64`.
fn get7(bytes: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x80 {
            return None;
        }
        let shift = u32::try_from(i.checked_mul(7)?).ok()?;
        let part = u64::from(b).checked_shl(shift)?;
        // Bits shifted out of a u64 mean a value that does not fit.
        if part >> shift != u64::from(b) {
            return None;
        }
        value |= part;
    }
    Some(value)
}

/// How many bytes `payload` takes on disk, escaped, given where its
/// first `0xFF` is (text has none: then nothing more is searched).
fn escaped_len(payload: &[u8], first: Option<usize>) -> usize {
    let Some(first) = first else {
        return payload.len();
    };
    let rest = payload.get(first.saturating_add(1)..).unwrap_or_default();
    payload
        .len()
        .saturating_add(1)
        .saturating_add(memchr::memchr_iter(ESCAPE, rest).count())
}

/// Appends one record (version 2) with its index to `out`.
///
/// ```
/// use tether_log::{Decoded, decode_record, encode_record};
///
/// let mut wire = Vec::new();
/// encode_record(b"caf\xFF", 7, &mut wire)?;
/// assert_eq!(&wire[..2], [0xFF, 0x01]);
/// // The payload's 0xFF is written 0xFF 0x00: the marker appears once.
/// assert_eq!(wire.windows(2).filter(|w| w == &[0xFF, 0x01]).count(), 1);
/// let used = wire.len();
/// let Decoded::Record { index, payload, used: got } = decode_record(&mut wire, 1024) else { panic!() };
/// assert_eq!((index, payload, got), (7, &b"caf\xFF"[..], used));
/// # Ok::<(), tether_log::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::RecordTooLarge`] when the payload's length does not fit a
/// `u32`; `out` is unchanged then.
pub fn encode_record(payload: &[u8], index: u64, out: &mut Vec<u8>) -> Result<(), Error> {
    if u32::try_from(payload.len()).is_err() {
        return Err(Error::RecordTooLarge {
            len: payload.len(),
            max: u32::MAX,
        });
    }
    let first = memchr::memchr(ESCAPE, payload);
    let stored = escaped_len(payload, first);
    let stored64 = u64::try_from(stored).unwrap_or(u64::MAX);
    let len_width = width7(stored64);
    let index_width = width7(index);
    out.reserve(MAX_RECORD_HEADER_LEN.saturating_add(stored));
    out.extend_from_slice(&RECORD_MARKER);
    // The CRC comes first so that what it covers (the fields and the
    // payload) lies in one piece: one checksum call per record.
    let crc_at = out.len();
    put7(out, 0, CRC_WIDTH);
    let fields = out.len();
    // Both widths fit a nibble (at most 5 and 10): the byte is below 0x80.
    out.push(u8::try_from((len_width << 4) | index_width).unwrap_or(0));
    put7(out, stored64, len_width);
    put7(out, index, index_width);
    let mut rest = payload;
    let mut next = first;
    while let Some(at) = next {
        let (before, after) = rest.split_at(at.saturating_add(1));
        out.extend_from_slice(before);
        out.push(LITERAL);
        rest = after;
        next = memchr::memchr(ESCAPE, rest);
    }
    out.extend_from_slice(rest);
    let crc = crc32c::crc32c(out.get(fields..).unwrap_or_default());
    if let Some(slot) = out.get_mut(crc_at..fields) {
        let mut value = crc;
        for byte in slot {
            *byte = u8::try_from(value & 0x7F).unwrap_or(0);
            value >>= 7;
        }
    }
    Ok(())
}

/// What the bytes at the start of a buffer hold (version 2).
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record whose checksum holds.
    Record {
        /// Its index in the log, from its header.
        index: u64,
        /// Its payload, unescaped in place in the buffer.
        payload: &'a [u8],
        /// The record's bytes on disk, header included: where the next
        /// one starts.
        used: usize,
    },
    /// The buffer ends inside a record (or is empty); `needed` bytes would
    /// hold it whole, as far as its header tells.
    Incomplete {
        /// The bytes a whole record needs, at least.
        needed: usize,
    },
    /// Not a record.
    Invalid(Invalid),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The bytes do not begin with the record marker (version 2).
    NoMarker,
    /// A header field is malformed: a byte at or above `0x80`, or a width
    /// out of range (version 2).
    Header,
    /// The length field is above the largest payload allowed (on disk, a
    /// version 2 payload may take twice its length, escaped).
    TooLong {
        /// The length it gives.
        len: u64,
    },
    /// The CRC32C does not match; `used` is where the record would end.
    Checksum {
        /// The record's bytes, header included, had it been whole.
        used: usize,
    },
    /// The checksum holds but the payload's escapes do not (a `0xFF` not
    /// followed by `0x00`), or unescaped it is above the limit: no writer
    /// of this format made it.
    Escape {
        /// The record's bytes, header included.
        used: usize,
    },
}

/// A version 2 record found at the start of a buffer, before unescaping.
pub(crate) enum Raw {
    Record {
        index: u64,
        /// Where the escaped payload lies in the buffer.
        body: Range<usize>,
        used: usize,
    },
    Incomplete {
        needed: usize,
    },
    Invalid(Invalid),
}

/// Reads the header and checks the checksum of the record at the start of
/// `buf`, without changing it.
pub(crate) fn decode_raw(buf: &[u8], max_payload: u32) -> Raw {
    // The marker, the CRC field, the widths byte.
    const FIXED: usize = 2 + CRC_WIDTH + 1;
    let Some((marker, rest)) = buf.split_first_chunk::<2>() else {
        return match buf {
            [] | [ESCAPE] => Raw::Incomplete { needed: FIXED },
            _ => Raw::Invalid(Invalid::NoMarker),
        };
    };
    if *marker != RECORD_MARKER {
        return Raw::Invalid(Invalid::NoMarker);
    }
    let Some((crc_field, rest)) = rest.split_first_chunk::<CRC_WIDTH>() else {
        return Raw::Incomplete { needed: FIXED };
    };
    let Some((&widths, rest)) = rest.split_first() else {
        return Raw::Incomplete { needed: FIXED };
    };
    let len_width = usize::from(widths >> 4);
    let index_width = usize::from(widths & 0x0F);
    if widths >= 0x80 || !(1..=5).contains(&len_width) || !(1..=10).contains(&index_width) {
        return Raw::Invalid(Invalid::Header);
    }
    let header_len = FIXED.saturating_add(len_width).saturating_add(index_width);
    let Some(rest) = rest.get(..header_len.saturating_sub(FIXED)) else {
        return Raw::Incomplete { needed: header_len };
    };
    let (len_field, index_field) = rest.split_at(len_width.min(rest.len()));
    let (Some(len), Some(index), Some(crc)) = (get7(len_field), get7(index_field), get7(crc_field)) else {
        return Raw::Invalid(Invalid::Header);
    };
    // Escaped, a payload of the limit takes at most twice its bytes.
    if len > u64::from(max_payload).saturating_mul(2) {
        return Raw::Invalid(Invalid::TooLong { len });
    }
    let Ok(crc) = u32::try_from(crc) else {
        return Raw::Invalid(Invalid::Header);
    };
    let stored = usize::try_from(len).unwrap_or(usize::MAX);
    let used = header_len.saturating_add(stored);
    let Some(covered) = buf.get(FIXED - 1..used) else {
        return Raw::Incomplete { needed: used };
    };
    if crc32c::crc32c(covered) != crc {
        return Raw::Invalid(Invalid::Checksum { used });
    }
    Raw::Record {
        index,
        body: header_len..used,
        used,
    }
}

/// How many escapes `body` holds, if it is a well-escaped payload: every
/// `0xFF` followed by `0x00`.
fn escapes(body: &[u8]) -> Option<usize> {
    let mut rest = body;
    let mut count = 0usize;
    while let Some(at) = memchr::memchr(ESCAPE, rest) {
        match rest.get(at.saturating_add(1)..) {
            Some([LITERAL, after @ ..]) => {
                rest = after;
                count = count.saturating_add(1);
            }
            _ => return None,
        }
    }
    Some(count)
}

/// Unescapes a well-escaped payload in place (see [`escapes`]) and
/// returns its length; nothing moves when it holds no `0xFF`.
fn unescape_in_place(body: &mut [u8]) -> usize {
    let Some(first) = memchr::memchr(ESCAPE, body) else {
        return body.len();
    };
    // Bytes before the first escape stay where they are.
    let mut write = first.saturating_add(1);
    let mut read = first.saturating_add(2);
    while read < body.len() {
        let next = body
            .get(read..)
            .and_then(|rest| memchr::memchr(ESCAPE, rest))
            .map_or(body.len(), |at| read.saturating_add(at).saturating_add(1));
        body.copy_within(read..next, write);
        write = write.saturating_add(next.saturating_sub(read));
        // Skip the LITERAL after the escape just copied.
        read = next.saturating_add(1);
    }
    write
}

/// Checks and unescapes the record [`decode_raw`] found at `body`;
/// `Err` with why not.
pub(crate) fn unescape_record(
    buf: &mut [u8],
    body: Range<usize>,
    used: usize,
    max_payload: u32,
) -> Result<Range<usize>, Invalid> {
    let start = body.start;
    let Some(bytes) = buf.get_mut(body) else {
        return Err(Invalid::Escape { used });
    };
    // Everything is checked before a byte moves: a record refused here is
    // left as it lies, so that the search for the next marker never reads
    // bytes this changed (compacting `0xFF 0x00 0x01` would make one).
    let first = memchr::memchr(ESCAPE, bytes);
    let count = match first {
        // Text: nothing to check or move, one search.
        None => 0,
        Some(first) => match bytes.get(first..).and_then(escapes) {
            Some(count) => count,
            None => return Err(Invalid::Escape { used }),
        },
    };
    let unescaped = bytes.len().saturating_sub(count);
    if u64::try_from(unescaped).map_or(true, |len| len > u64::from(max_payload)) {
        return Err(Invalid::Escape { used });
    }
    if first.is_some() {
        unescape_in_place(bytes);
    }
    Ok(start..start.saturating_add(unescaped))
}

/// Reads one record (version 2) from the start of `buf`, allowing
/// payloads of at most `max_payload` bytes, and unescapes its payload in
/// place (the buffer is changed only for a record whose checksum holds).
/// The length is checked against the limit before anything else is read,
/// so no caller need allocate for a length it has not checked.
pub fn decode_record(buf: &mut [u8], max_payload: u32) -> Decoded<'_> {
    match decode_raw(buf, max_payload) {
        Raw::Record { index, body, used } => match unescape_record(buf, body, used, max_payload) {
            Ok(payload) => Decoded::Record {
                index,
                payload: buf.get(payload).unwrap_or_default(),
                used,
            },
            Err(why) => Decoded::Invalid(why),
        },
        Raw::Incomplete { needed } => Decoded::Incomplete { needed },
        Raw::Invalid(why) => Decoded::Invalid(why),
    }
}

/// Where the next record marker starts in `bytes`, if it holds one.
pub(crate) fn find_marker(bytes: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    loop {
        let at = from.saturating_add(memchr::memchr(ESCAPE, bytes.get(from..)?)?);
        if bytes.get(at.saturating_add(1)) == Some(&START) {
            return Some(at);
        }
        from = at.saturating_add(1);
    }
}

/// A version 1 record at the start of a buffer.
pub(crate) enum DecodedV1 {
    Record { used: usize },
    Incomplete { needed: usize },
    Invalid(Invalid),
}

/// The checksum of a version 1 record: the CRC32C of its length field
/// followed by its payload.
fn record_crc_v1(len_field: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_field), payload)
}

/// Appends one version 1 record (`len`, `crc`, `payload`) to `out`, as
/// earlier releases wrote them: for tests and tools that make segments of
/// that version; the log itself writes version 2 ([`encode_record`]).
///
/// # Errors
///
/// [`Error::RecordTooLarge`] when the payload's length does not fit a
/// `u32`; `out` is unchanged then.
pub fn encode_record_v1(payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u32::try_from(payload.len()).map_err(|_| Error::RecordTooLarge {
        len: payload.len(),
        max: u32::MAX,
    })?;
    let len_field = len.to_le_bytes();
    out.reserve(RECORD_HEADER_LEN_V1.saturating_add(payload.len()));
    out.extend_from_slice(&len_field);
    out.extend_from_slice(&record_crc_v1(len_field, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Reads one version 1 record from the start of `buf` (its payload is
/// the `used` bytes after the header).
pub(crate) fn decode_record_v1(buf: &[u8], max_payload: u32) -> DecodedV1 {
    let Some((head, rest)) = buf.split_first_chunk::<RECORD_HEADER_LEN_V1>() else {
        return DecodedV1::Incomplete {
            needed: RECORD_HEADER_LEN_V1,
        };
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *head;
    let len_field = [l0, l1, l2, l3];
    let len = u32::from_le_bytes(len_field);
    if len > max_payload {
        return DecodedV1::Invalid(Invalid::TooLong { len: u64::from(len) });
    }
    let payload_len = usize::try_from(len).unwrap_or(usize::MAX);
    let used = RECORD_HEADER_LEN_V1.saturating_add(payload_len);
    let Some(payload) = rest.get(..payload_len) else {
        return DecodedV1::Incomplete { needed: used };
    };
    if record_crc_v1(len_field, payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return DecodedV1::Invalid(Invalid::Checksum { used });
    }
    DecodedV1::Record { used }
}

/// A segment file's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The index of the segment's first record.
    pub base: u64,
    /// Its format: [`SEGMENT_VERSION`] or [`SEGMENT_VERSION_V1`].
    pub version: u32,
}

fn segment_header(base: u64, version: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    let (body, crc) = header.split_at_mut(SEGMENT_HEADER_LEN - 4);
    let (magic, rest) = body.split_at_mut(MAGIC.len());
    magic.copy_from_slice(&MAGIC);
    let (version_field, base_field) = rest.split_at_mut(4);
    version_field.copy_from_slice(&version.to_le_bytes());
    base_field.copy_from_slice(&base.to_le_bytes());
    crc.copy_from_slice(&crc32c(body).to_le_bytes());
    header
}

/// The header of the segment whose first record has index `base`, in the
/// format written ([`SEGMENT_VERSION`]).
pub fn encode_segment_header(base: u64) -> [u8; SEGMENT_HEADER_LEN] {
    segment_header(base, SEGMENT_VERSION)
}

/// The header of a version 1 segment, as earlier releases wrote it (for
/// tests and tools).
pub fn encode_segment_header_v1(base: u64) -> [u8; SEGMENT_HEADER_LEN] {
    segment_header(base, SEGMENT_VERSION_V1)
}

/// The header `bytes` begin with, if they begin with a valid one (magic,
/// a version this crate reads, checksum).
pub fn decode_segment_header(bytes: &[u8]) -> Option<SegmentHeader> {
    let header = bytes.first_chunk::<SEGMENT_HEADER_LEN>()?;
    let (body, crc) = header.split_last_chunk::<4>()?;
    if crc32c(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (magic, rest) = body.split_first_chunk::<8>()?;
    let (version, base) = rest.split_first_chunk::<4>()?;
    let version = u32::from_le_bytes(*version);
    if *magic != MAGIC || !(version == SEGMENT_VERSION || version == SEGMENT_VERSION_V1) {
        return None;
    }
    Some(SegmentHeader {
        base: u64::from_le_bytes(*base.first_chunk::<8>()?),
        version,
    })
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

    fn encoded(payload: &[u8], index: u64) -> Vec<u8> {
        let mut wire = Vec::new();
        encode_record(payload, index, &mut wire).unwrap();
        wire
    }

    #[test]
    fn record_layout() {
        let wire = encoded(b"ab", 3);
        // Marker, CRC, widths (length 1 byte, index 1 byte), length,
        // index, payload; the CRC covers all after it.
        assert_eq!(&wire[..2], &[0xFF, 0x01]);
        assert_eq!(&wire[7..10], &[0x11, 2, 3]);
        let mut crc_field = Vec::new();
        put7(&mut crc_field, u64::from(crc32c(&wire[7..])), 5);
        assert_eq!(&wire[2..7], &crc_field[..]);
        assert_eq!(&wire[10..], b"ab");
        assert!(wire[2..10].iter().all(|&b| b < 0x80));
    }

    #[test]
    fn wide_fields_round_trip() {
        for index in [0, 127, 128, 1 << 40, u64::MAX] {
            for payload in [&b""[..], b"x", &[0xFF; 300], &[0x01; 200]] {
                let mut wire = encoded(payload, index);
                let used = wire.len();
                assert_eq!(
                    decode_record(&mut wire, 300),
                    Decoded::Record { index, payload, used }
                );
            }
        }
    }

    #[test]
    fn the_marker_is_only_at_the_start() {
        // A payload that is itself an encoded record, markers and all.
        let inner = encoded(b"\xFF\x01\xFF\xFF\x00\xFF", 9);
        let wire = encoded(&inner, 1);
        assert_eq!(find_marker(&wire), Some(0));
        assert_eq!(find_marker(&wire[1..]), None);
        assert_eq!(
            wire.len(),
            inner.len() + 10 + inner.iter().filter(|&&b| b == 0xFF).count()
        );
    }

    #[test]
    fn whole_byte_at_a_time_and_trailing_bytes() {
        let payload = b"a\xFF\x01b\xFF\xFF";
        let wire = encoded(payload, 42);
        // Every prefix is incomplete, never invalid, and asks for more.
        for cut in 0..wire.len() {
            let mut part = wire[..cut].to_vec();
            match decode_record(&mut part, 64) {
                Decoded::Incomplete { needed } => assert!(needed > cut && needed <= wire.len(), "cut {cut}"),
                other => panic!("cut {cut}: {other:?}"),
            }
            assert_eq!(part, wire[..cut], "an incomplete record is left as it was");
        }
        let mut trailing = wire.clone();
        trailing.extend_from_slice(&encoded(b"next", 43));
        trailing.extend_from_slice(b"junk");
        let used = wire.len();
        assert_eq!(
            decode_record(&mut trailing, 64),
            Decoded::Record {
                index: 42,
                payload: &payload[..],
                used
            }
        );
        let mut rest = trailing[used..].to_vec();
        let next_used = rest.len() - 4;
        assert_eq!(
            decode_record(&mut rest, 64),
            Decoded::Record {
                index: 43,
                payload: &b"next"[..],
                used: next_used
            }
        );
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let wire = encoded(b"hello \xFF world", 1000);
        for byte in 0..wire.len() {
            for bit in 0..8 {
                let mut bad = wire.clone();
                bad[byte] ^= 1 << bit;
                let copy = bad.clone();
                match decode_record(&mut bad, 64) {
                    Decoded::Record { .. } => panic!("byte {byte} bit {bit} passed"),
                    Decoded::Incomplete { .. } | Decoded::Invalid(_) => {}
                }
                assert_eq!(bad, copy, "a record that fails is left as it was");
            }
        }
    }

    #[test]
    fn length_checked_before_payload() {
        let wire = encoded(&[7; 100], 0);
        let header = wire.len() - 100;
        assert_eq!(
            decode_record(&mut wire[..header].to_vec(), 49),
            Decoded::Invalid(Invalid::TooLong { len: 100 })
        );
        assert_eq!(
            decode_record(&mut wire[..header].to_vec(), 50),
            Decoded::Incomplete { needed: wire.len() }
        );
    }

    #[test]
    fn escapes_must_hold_even_under_a_good_checksum() {
        // A crafted record: a lone 0xFF before the end, checksum right.
        let covered = [0x11, 2, 0, b'a', 0xFF];
        let mut wire = vec![0xFF, 0x01];
        put7(&mut wire, u64::from(crc32c(&covered)), 5);
        wire.extend_from_slice(&covered);
        let used = wire.len();
        assert_eq!(
            decode_record(&mut wire, 64),
            Decoded::Invalid(Invalid::Escape { used })
        );
    }

    #[test]
    fn a_record_over_the_limit_unescaped_is_left_as_it_lies() {
        // Escaped it fits twice the limit, unescaped it is over the limit;
        // compacting it would turn `0xFF 0x00 0x01` into a marker.
        let payload = [0xFF, 0x01, 0xFF, 0x01, 0xFF];
        let mut wire = encoded(&payload, 5);
        let copy = wire.clone();
        let used = wire.len();
        assert_eq!(
            decode_record(&mut wire, 4),
            Decoded::Invalid(Invalid::Escape { used })
        );
        assert_eq!(wire, copy);
    }

    #[test]
    fn garbage_is_not_a_record() {
        assert_eq!(
            decode_record(&mut [0; 8], 16),
            Decoded::Invalid(Invalid::NoMarker)
        );
        assert_eq!(
            decode_record(&mut [0xFF, 0x01, 0, 0, 0, 0, 0, 0x80, 0, 0], 16),
            Decoded::Invalid(Invalid::Header)
        );
        assert_eq!(
            decode_record(&mut [0xFF, 0x01, 0, 0, 0, 0, 0, 0x61, 0, 0], 16),
            Decoded::Invalid(Invalid::Header)
        );
        // A CRC field of more than 32 bits.
        assert_eq!(
            decode_record(&mut [0xFF, 0x01, 0, 0, 0, 0, 0x7F, 0x11, 0, 0], 16),
            Decoded::Invalid(Invalid::Header)
        );
        assert_eq!(decode_record(&mut [0xFF], 16), Decoded::Incomplete { needed: 8 });
    }

    #[test]
    fn seven_bit_fields_refuse_overflow() {
        assert_eq!(get7(&[0x7F; 9]), Some((1 << 63) - 1));
        assert_eq!(
            get7(&[0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x7F, 0x01]),
            Some(u64::MAX)
        );
        assert_eq!(get7(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]), None);
        assert_eq!(get7(&[0x80]), None);
    }

    #[test]
    fn v1_records_still_read() {
        let mut wire = Vec::new();
        encode_record_v1(b"ab", &mut wire).unwrap();
        assert_eq!(&wire[..4], &2u32.to_le_bytes());
        assert!(matches!(
            decode_record_v1(&wire, 16),
            DecodedV1::Record { used: 10 }
        ));
        assert!(matches!(
            decode_record_v1(&[0; 8], 16),
            DecodedV1::Invalid(Invalid::Checksum { used: 8 })
        ));
    }

    #[test]
    fn segment_header_round_trip() {
        for base in [0, 1, 1 << 40, u64::MAX] {
            for (header, version) in [
                (encode_segment_header(base), 2),
                (encode_segment_header_v1(base), 1),
            ] {
                assert_eq!(
                    decode_segment_header(&header),
                    Some(SegmentHeader { base, version })
                );
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
}
