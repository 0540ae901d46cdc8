//! Cursors: the position of every topic of a multi-topic event stream,
//! in one `id:`.

use core::fmt;

use crate::error::{BadCursor, Error};
use crate::id::EventId;

/// The longest cursor text [`Cursor::decode`] takes, in bytes; a longer
/// one is refused with [`BadCursor::TooLong`] before it is read.
pub const MAX_CURSOR_LEN: usize = 4096;

/// The format's version: a cursor's first byte.
const VERSION: u8 = 1;

/// What the longest cursor text decodes to: its base64 characters (all
/// but the `~`), six bits each.
const MAX_BINARY_LEN: usize = (MAX_CURSOR_LEN - 1) * 3 / 4;

/// A LEB128 varint of 64 (or 65) bits is at most this long.
const MAX_VARINT_LEN: usize = 10;

/// The most a cursor's header takes: version, count, fingerprint.
const MAX_HEADER_LEN: usize = 1 + MAX_VARINT_LEN + 4;

/// The most one topic's position takes: `h` and `seq`.
const MAX_POSITION_LEN: usize = 2 * MAX_VARINT_LEN;

/// The largest `h`: `2^64`, the zigzag of a difference of `2^63`, plus one.
const MAX_H: u128 = 1 << 64;

/// `MAX_H` as a varint: nine bytes of seven zero bits, then bit 64.
const MAX_H_VARINT: [u8; MAX_VARINT_LEN] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02];

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Each byte's six-bit value in [`ALPHABET`], `NOT_BASE64` for the others.
const NOT_BASE64: u8 = 0xff;
// Evaluated when the crate is built: an index out of bounds or a value
// that does not fit fails the build, not a request.
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const DECODE: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The position of every topic of a multi-topic event stream
/// (`GET /events?topic=A&topic=B`): what each of its `id:` lines says, so
/// that the `Last-Event-ID` a browser's `EventSource` sends back by itself
/// resumes every topic exactly, not only the one of the last event.
///
/// A cursor is made for one list of topics, in its order
/// ([`Cursor::new`]): it holds the list's length, its fingerprint and one
/// position per topic (an [`EventId`], or none: followed from its next
/// event). Its text is `~` and unpadded base64url of a version byte (1),
/// the topic count (a varint), the 32-bit FNV-1a of the topics joined by
/// `\n` (little-endian), then per topic a varint `h`: 0 for no position;
/// otherwise `h - 1` is the zigzag of the difference (modulo 2^64, as a
/// signed 64-bit number) between its `ms` and that of the previous topic
/// with a position (the first against 0), followed by a varint `seq`.
/// Varints are LEB128 in their shortest form, and base64's unused bits are
/// zero: each cursor has one spelling.
///
/// Sans-IO, as the rest of the crate: the caller keeps the cursor beside
/// its stream, sets a topic's position ([`Cursor::positions_mut`]) as each
/// event goes out, [`Cursor::encode`]s it into its own output buffer for
/// the event's `id:` line, and [`Cursor::decode`]s the `Last-Event-ID` of
/// a client that comes back. Encoding allocates nothing once the caller's
/// buffer has room; decoding allocates nothing at all, and reads at most
/// [`MAX_CURSOR_LEN`] bytes.
///
/// ```
/// use tether_hub::{Cursor, EventId};
///
/// let mut cursor = Cursor::new(["A", "B"]);
/// cursor.positions_mut()[0] = Some(EventId::new(1_718_000_000_000, 8));
/// cursor.positions_mut()[1] = Some(EventId::new(1_718_000_004_521, 3));
/// let mut id = Vec::new();
/// cursor.encode(&mut id);
/// assert_eq!(id, b"~AQLQ9A6sgfC8jIBkCNNGAw");
///
/// // A client that comes back with it resumes both topics.
/// let mut resumed = Cursor::new(["A", "B"]);
/// resumed.decode(&id)?;
/// assert_eq!(resumed.positions(), cursor.positions());
/// // Not for another list, nor another order.
/// assert!(Cursor::new(["B", "A"]).decode(&id).is_err());
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    fingerprint: u32,
    positions: Box<[Option<EventId>]>,
}

impl Cursor {
    /// A cursor for `topics` (in this order), every position empty.
    pub fn new<I>(topics: I) -> Cursor
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut fingerprint = FNV_OFFSET;
        let mut count = 0;
        for topic in topics {
            if count > 0 {
                fingerprint = fnv1a(fingerprint, b"\n");
            }
            fingerprint = fnv1a(fingerprint, topic.as_ref().as_bytes());
            count += 1;
        }
        Cursor {
            fingerprint,
            positions: vec![None; count].into_boxed_slice(),
        }
    }

    /// The 32-bit FNV-1a of the topics joined by `\n`: a cursor made for
    /// another list (or order) has another one, but for a chance in 2^32.
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// How many topics the cursor is for.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether it is for no topic at all.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Each topic's position, in the order of the list.
    pub fn positions(&self) -> &[Option<EventId>] {
        &self.positions
    }

    /// Each topic's position, to set as events go out.
    pub fn positions_mut(&mut self) -> &mut [Option<EventId>] {
        &mut self.positions
    }

    /// Appends the cursor's text to `out` and returns its length.
    ///
    /// Nothing is allocated when `out` has room for the longest text a
    /// cursor of this many topics can have (15 + 20 bytes per topic, in
    /// base64, plus the `~`): a buffer reused from one event to the next
    /// has it after the first. The text of a cursor of many topics with
    /// ids far apart can be longer than [`MAX_CURSOR_LEN`] (above about
    /// 150 topics at 20 bytes each; realistic ids take far fewer, see the
    /// design page): a client resuming from it gets a gap signal for every
    /// topic, as from any id not understood.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let longest = MAX_HEADER_LEN + MAX_POSITION_LEN * self.positions.len();
        out.reserve(1 + base64_len(longest));
        out.push(b'~');
        let binary = out.len();
        out.push(VERSION);
        push_varint(out, u64::try_from(self.positions.len()).unwrap_or(u64::MAX));
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        let mut previous = 0;
        for position in &self.positions {
            let Some(id) = position else {
                out.push(0);
                continue;
            };
            match zigzag(id.ms().wrapping_sub(previous)).checked_add(1) {
                Some(h) => push_varint(out, h),
                None => out.extend_from_slice(&MAX_H_VARINT),
            }
            push_varint(out, id.seq());
            previous = id.ms();
        }
        base64_in_place(out, binary);
        out.len() - start
    }

    /// Reads a cursor's text (a client's `Last-Event-ID`) into this
    /// cursor's positions, all of them; on an error they are left as they
    /// were.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCursor`], with what is wrong: not a cursor (a plain
    /// event id, say), not base64url, another version, cut short, bytes
    /// left over, a varint too large or longer than it needs to be, made
    /// for a list of another length or another list, longer than
    /// [`MAX_CURSOR_LEN`].
    pub fn decode(&mut self, text: impl AsRef<[u8]>) -> Result<(), Error> {
        self.read(text.as_ref()).map_err(Error::InvalidCursor)
    }

    fn read(&mut self, text: &[u8]) -> Result<(), BadCursor> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(BadCursor::TooLong { len: text.len() });
        }
        let Some((&b'~', chars)) = text.split_first() else {
            return Err(BadCursor::NotACursor);
        };
        let mut binary = [0; MAX_BINARY_LEN];
        let len = base64_decode(chars, &mut binary)?;
        let bytes = binary.get(..len).unwrap_or_default();
        // Checked whole first, so that a bad cursor changes nothing.
        let (count, fingerprint) = (self.positions.len(), self.fingerprint);
        read_positions(bytes, count, fingerprint, |_, _| ())?;
        let positions = &mut self.positions;
        read_positions(bytes, count, fingerprint, |i, position| {
            if let Some(slot) = positions.get_mut(i) {
                *slot = position;
            }
        })
    }
}

/// The cursor's text; [`Cursor::encode`] writes the same into a buffer
/// without allocating.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.encode(&mut text);
        f.write_str(core::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        hash = (hash ^ u32::from(byte)).wrapping_mul(FNV_PRIME);
    }
    hash
}

/// A difference modulo 2^64, read as a signed number, zigzagged: small
/// differences either way are small numbers.
fn zigzag(difference: u64) -> u64 {
    let signed = difference as i64;
    ((signed << 1) ^ (signed >> 63)) as u64
}

/// The difference (modulo 2^64) that [`zigzag`] made `zigzagged` of.
fn unzigzag(zigzagged: u64) -> u64 {
    (zigzagged >> 1) ^ (zigzagged & 1).wrapping_neg()
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        let [low, ..] = value.to_le_bytes();
        out.push(low | 0x80);
        value >>= 7;
    }
    let [low, ..] = value.to_le_bytes();
    out.push(low);
}

/// The length of `len` bytes in unpadded base64.
fn base64_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

/// Turns the bytes of `out` from `start` on into unpadded base64url, in
/// place: from the last group to the first, each group's three bytes are
/// read before its four characters are written, which land at or after
/// them and before the bytes of any later group still to be read.
fn base64_in_place(out: &mut Vec<u8>, start: usize) {
    let len = out.len().saturating_sub(start);
    let (groups, rest) = (len / 3, len % 3);
    out.resize(start + base64_len(len), 0);
    let Some(text) = out.get_mut(start..) else { return };
    if rest > 0 {
        let at = groups * 3;
        let first = text.get(at).copied().unwrap_or_default();
        let second = if rest == 2 {
            text.get(at + 1).copied().unwrap_or_default()
        } else {
            0
        };
        let chars = encode_group([first, second, 0]);
        if let Some(dst) = text.get_mut(groups * 4..) {
            for (d, c) in dst.iter_mut().zip(chars.iter().take(rest + 1)) {
                *d = *c;
            }
        }
    }
    for group in (0..groups).rev() {
        let (from, to) = (group * 3, group * 4);
        let Some(&[a, b, c]) = text.get(from..from + 3) else {
            return;
        };
        if let Some(dst) = text.get_mut(to..to + 4) {
            dst.copy_from_slice(&encode_group([a, b, c]));
        }
    }
}

fn encode_group([a, b, c]: [u8; 3]) -> [u8; 4] {
    let n = u32::from_be_bytes([0, a, b, c]);
    let char_at = |shift: u32| {
        let index = usize::try_from((n >> shift) & 63).unwrap_or_default();
        ALPHABET.get(index).copied().unwrap_or(b'A')
    };
    [char_at(18), char_at(12), char_at(6), char_at(0)]
}

/// Decodes unpadded base64url into `out`, whose room is enough for any
/// text of [`MAX_CURSOR_LEN`]; returns the number of bytes.
fn base64_decode(chars: &[u8], out: &mut [u8]) -> Result<usize, BadCursor> {
    // One character alone carries six bits: less than a byte.
    if chars.len() % 4 == 1 {
        return Err(BadCursor::Base64);
    }
    let mut len = 0;
    for group in chars.chunks(4) {
        let mut bits: u32 = 0;
        for &c in group {
            let value = DECODE.get(usize::from(c)).copied().unwrap_or(NOT_BASE64);
            if value == NOT_BASE64 {
                return Err(BadCursor::Base64);
            }
            bits = (bits << 6) | u32::from(value);
        }
        // 4 characters: 3 bytes; 3: 2 bytes and 2 bits over; 2: 1 byte
        // and 4 bits over, which must be zero.
        let bytes = group.len() - 1;
        let over = 6 * group.len() - 8 * bytes;
        if bits & ((1 << over) - 1) != 0 {
            return Err(BadCursor::Base64);
        }
        let [_, b0, b1, b2] = (bits >> over << (8 * (3 - bytes))).to_be_bytes();
        let dst = out
            .get_mut(len..len + bytes)
            .ok_or(BadCursor::TooLong { len: chars.len() + 1 })?;
        dst.copy_from_slice([b0, b1, b2].get(..bytes).unwrap_or_default());
        len += bytes;
    }
    Ok(len)
}

/// Reads a cursor's bytes for a list of `count` topics whose fingerprint
/// is `fingerprint`, giving each topic's position to `put`.
fn read_positions(
    bytes: &[u8],
    count: usize,
    fingerprint: u32,
    mut put: impl FnMut(usize, Option<EventId>),
) -> Result<(), BadCursor> {
    let mut reader = Reader(bytes);
    let version = reader.byte()?;
    if version != VERSION {
        return Err(BadCursor::Version(version));
    }
    let found = reader.varint(u64::MAX.into())?;
    if found != u128::try_from(count).unwrap_or(u128::MAX) {
        return Err(BadCursor::TopicCount {
            expected: count,
            found: u64::try_from(found).unwrap_or(u64::MAX),
        });
    }
    let found = u32::from_le_bytes([reader.byte()?, reader.byte()?, reader.byte()?, reader.byte()?]);
    if found != fingerprint {
        return Err(BadCursor::Fingerprint {
            expected: fingerprint,
            found,
        });
    }
    let mut previous: u64 = 0;
    for i in 0..count {
        let h = reader.varint(MAX_H)?;
        let Some(zigzagged) = h.checked_sub(1) else {
            put(i, None);
            continue;
        };
        let ms = previous.wrapping_add(unzigzag(u64::try_from(zigzagged).unwrap_or(u64::MAX)));
        let seq = u64::try_from(reader.varint(u64::MAX.into())?).unwrap_or(u64::MAX);
        put(i, Some(EventId::new(ms, seq)));
        previous = ms;
    }
    if reader.0.is_empty() {
        Ok(())
    } else {
        Err(BadCursor::TrailingBytes)
    }
}

/// The bytes of a cursor not read yet.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, BadCursor> {
        let (&byte, rest) = self.0.split_first().ok_or(BadCursor::Truncated)?;
        self.0 = rest;
        Ok(byte)
    }

    /// A LEB128 varint of at most [`MAX_VARINT_LEN`] bytes, in its
    /// shortest form, no larger than `max`.
    fn varint(&mut self, max: u128) -> Result<u128, BadCursor> {
        let mut value: u128 = 0;
        for (i, &byte) in self.0.iter().take(MAX_VARINT_LEN).enumerate() {
            value |= u128::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(BadCursor::OverlongVarint);
                }
                if value > max {
                    return Err(BadCursor::VarintOverflow);
                }
                self.0 = self.0.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        if self.0.len() >= MAX_VARINT_LEN {
            Err(BadCursor::VarintOverflow)
        } else {
            Err(BadCursor::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_is_a_bijection_at_its_edges() {
        for difference in [0, 1, u64::MAX, 1 << 63, (1 << 63) - 1, (1 << 63) + 1, 12_345] {
            assert_eq!(unzigzag(zigzag(difference)), difference, "{difference}");
        }
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(u64::MAX), 1, "-1");
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(1 << 63), u64::MAX, "i64::MIN: the one h of 65 bits");
    }

    #[test]
    fn base64_in_place_agrees_with_the_alphabet_for_every_length() {
        // Against a plain forward encoding, for lengths around every
        // group boundary.
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len)
                .map(|i| u8::try_from((i * 37 + 11) % 256).unwrap())
                .collect();
            let mut out = b"prefix".to_vec();
            out.extend_from_slice(&bytes);
            base64_in_place(&mut out, 6);
            let mut expected = b"prefix".to_vec();
            for chunk in bytes.chunks(3) {
                let mut group = [0; 3];
                group[..chunk.len()].copy_from_slice(chunk);
                expected.extend_from_slice(&encode_group(group)[..chunk.len() + 1]);
            }
            assert_eq!(out, expected, "{len}");
            let mut back = [0; MAX_BINARY_LEN];
            let n = base64_decode(&out[6..], &mut back).unwrap();
            assert_eq!(&back[..n], &bytes[..], "{len}");
        }
    }

    #[test]
    fn the_largest_h_is_ten_bytes_and_reads_back() {
        let mut out = Vec::new();
        push_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), MAX_VARINT_LEN);
        let mut reader = Reader(&MAX_H_VARINT);
        assert_eq!(reader.varint(MAX_H), Ok(MAX_H));
        assert_eq!(
            Reader(&MAX_H_VARINT).varint(u64::MAX.into()),
            Err(BadCursor::VarintOverflow)
        );
    }
}
