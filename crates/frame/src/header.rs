//! Frame headers: decoding (incremental, strict) and encoding.

use crate::error::Error;
use crate::mask::apply_mask;
use crate::opcode::OpCode;

/// The three reserved bits of a frame's first byte, kept in the low three
/// bits: RSV1 is `0b100`, RSV2 `0b010`, RSV3 `0b001`.
///
/// Extensions own RSV bits (permessage-deflate owns RSV1); without one, any
/// set bit is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rsv(u8);

impl Rsv {
    /// No bits.
    pub const NONE: Rsv = Rsv(0);
    /// RSV1, the bit permessage-deflate uses to mark a compressed message.
    pub const RSV1: Rsv = Rsv(0b100);
    /// RSV2.
    pub const RSV2: Rsv = Rsv(0b010);
    /// RSV3.
    pub const RSV3: Rsv = Rsv(0b001);

    /// Builds a value from the low three bits of `bits`; higher bits are
    /// dropped.
    #[inline]
    pub const fn from_bits(bits: u8) -> Rsv {
        Rsv(bits & 0b111)
    }

    /// The bits, RSV1 highest.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Rsv) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in either.
    #[inline]
    pub const fn union(self, other: Rsv) -> Rsv {
        Rsv(self.0 | other.0)
    }
}

/// Whether frames must, or must not, carry a mask.
///
/// RFC 6455 section 5.1: a client masks every frame it sends and a server
/// never masks; each side closes on a frame that breaks this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskRule {
    /// Every frame must be masked (what a server receives).
    Required,
    /// No frame may be masked (what a client receives).
    Forbidden,
    /// Accept either (for tools that inspect captured traffic).
    Any,
}

/// What [`decode_header`] and [`FrameDecoder`] accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeRules {
    /// Whether incoming frames must be masked.
    pub mask: MaskRule,
    /// RSV bits owned by negotiated extensions; any other set bit is an
    /// error.
    pub allowed_rsv: Rsv,
    /// The largest payload a single frame may announce. A larger one is
    /// refused from its header alone, before any payload is buffered.
    pub max_payload: u64,
}

impl DecodeRules {
    /// The default maximum frame payload: 16 MiB.
    pub const DEFAULT_MAX_PAYLOAD: u64 = 16 << 20;

    /// Rules for a server: masked frames, no extension, 16 MiB frames.
    pub const fn server() -> DecodeRules {
        DecodeRules {
            mask: MaskRule::Required,
            allowed_rsv: Rsv::NONE,
            max_payload: Self::DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Rules for a client: unmasked frames, no extension, 16 MiB frames.
    pub const fn client() -> DecodeRules {
        DecodeRules {
            mask: MaskRule::Forbidden,
            ..Self::server()
        }
    }
}

/// A decoded (or to-be-encoded) frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// The reserved bits.
    pub rsv: Rsv,
    /// What the payload means.
    pub opcode: OpCode,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// The most bytes a header can take: 2 + 8 (length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// Result of an incremental parse: complete, or more bytes needed.
///
/// Needing more bytes is not an error: the caller keeps the bytes and calls
/// again when more have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The value, with the number of input bytes it took.
    Complete(T),
    /// The input ends before the value does.
    Partial,
}

impl FrameHeader {
    /// An unmasked header with no RSV bits.
    ///
    /// ```
    /// use tether_frame::{FrameHeader, OpCode};
    /// let h = FrameHeader::new(true, OpCode::Text, 5);
    /// assert_eq!(h.to_bytes().as_slice(), &[0x81, 0x05]);
    /// ```
    #[inline]
    pub const fn new(fin: bool, opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: Rsv::NONE,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// The same header with a masking key.
    #[inline]
    pub const fn with_mask(mut self, mask: [u8; 4]) -> FrameHeader {
        self.mask = Some(mask);
        self
    }

    /// The same header with RSV bits.
    #[inline]
    pub const fn with_rsv(mut self, rsv: Rsv) -> FrameHeader {
        self.rsv = rsv;
        self
    }

    /// How many bytes [`FrameHeader::to_bytes`] produces.
    #[inline]
    pub const fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        if self.mask.is_some() { len + 4 } else { len }
    }

    /// Encodes the header, always in the minimal length form.
    ///
    /// Encoding does not judge: a control frame without FIN or with a long
    /// payload is written as asked. [`encode_frame`] checks those rules.
    // A const fn has neither `get` nor `try_from`. Every index is below
    // MAX_HEADER_LEN (14): 0 and 1, 2 to 9 for the length, and at most 10
    // to 13 for the key; each cast is exact in its arm (a length up to 125
    // into u8, up to 0xFFFF into u16, a header length of at most 14).
    #[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
    pub const fn to_bytes(&self) -> HeaderBytes {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[0] = (if self.fin { 0x80 } else { 0 }) | (self.rsv.bits() << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            0..=125 => {
                bytes[1] = mask_bit | self.payload_len as u8;
                2
            }
            126..=0xFFFF => {
                bytes[1] = mask_bit | 126;
                let l = (self.payload_len as u16).to_be_bytes();
                bytes[2] = l[0];
                bytes[3] = l[1];
                4
            }
            _ => {
                bytes[1] = mask_bit | 127;
                let l = self.payload_len.to_be_bytes();
                let mut i = 0;
                while i < 8 {
                    bytes[2 + i] = l[i];
                    i += 1;
                }
                10
            }
        };
        if let Some(mask) = self.mask {
            bytes[len] = mask[0];
            bytes[len + 1] = mask[1];
            bytes[len + 2] = mask[2];
            bytes[len + 3] = mask[3];
            len += 4;
        }
        HeaderBytes {
            bytes,
            len: len as u8,
        }
    }
}

/// An encoded header held by value, so it can go into a vectored write
/// beside a payload that lives elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBytes {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBytes {
    /// The encoded bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl core::ops::Deref for HeaderBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Decodes one frame header from the start of `buf`.
///
/// Returns [`Status::Partial`] when `buf` ends inside the header. Errors are
/// reported as early as the bytes allow: a reserved opcode or an unowned RSV
/// bit is refused from the first byte alone, an oversized control frame from
/// the second, a bad extended length before the mask bytes arrive.
///
/// ```
/// use tether_frame::{decode_header, DecodeRules, OpCode, Status};
/// // RFC 6455 section 5.7: a masked "Hello" from a client.
/// let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let Status::Complete((header, used)) = decode_header(&frame, &DecodeRules::server())? else {
///     unreachable!()
/// };
/// assert_eq!((header.opcode, header.payload_len, used), (OpCode::Text, 5, 6));
/// assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(decode_header(&frame[..3], &DecodeRules::server())?, Status::Partial);
/// # Ok::<(), tether_frame::Error>(())
/// ```
pub fn decode_header(buf: &[u8], rules: &DecodeRules) -> Result<Status<(FrameHeader, usize)>, Error> {
    let Some(&b0) = buf.first() else {
        return Ok(Status::Partial);
    };
    let fin = b0 & 0x80 != 0;
    let rsv = Rsv::from_bits(b0 >> 4);
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(Error::ReservedOpcode(b0 & 0x0F))?;
    let unowned = rsv.bits() & !rules.allowed_rsv.bits();
    if unowned != 0 {
        return Err(Error::ReservedBits(unowned));
    }
    if opcode.is_control() && !fin {
        return Err(Error::FragmentedControlFrame);
    }
    let Some(&b1) = buf.get(1) else {
        return Ok(Status::Partial);
    };
    let masked = b1 & 0x80 != 0;
    match (rules.mask, masked) {
        (MaskRule::Required, false) => return Err(Error::UnmaskedFrame),
        (MaskRule::Forbidden, true) => return Err(Error::MaskedFrame),
        _ => {}
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() && len7 > 125 {
        return Err(Error::ControlFrameTooLong);
    }
    let (payload_len, mut pos) = match len7 {
        126 => {
            let Some(&[a, b]) = buf.get(2..4) else {
                return Ok(Status::Partial);
            };
            let len = u64::from(u16::from_be_bytes([a, b]));
            if len < 126 {
                return Err(Error::NonMinimalLength);
            }
            (len, 4)
        }
        127 => {
            let Some(ext) = buf.get(2..10) else {
                return Ok(Status::Partial);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(ext);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(Error::LengthOverflow);
            }
            if len <= 0xFFFF {
                return Err(Error::NonMinimalLength);
            }
            (len, 10)
        }
        short => (short as u64, 2),
    };
    if payload_len > rules.max_payload {
        return Err(Error::FrameTooLarge {
            len: payload_len,
            max: rules.max_payload,
        });
    }
    let mask = if masked {
        let Some(&[a, b, c, d]) = buf.get(pos..pos + 4) else {
            return Ok(Status::Partial);
        };
        pos += 4;
        Some([a, b, c, d])
    } else {
        None
    };
    Ok(Status::Complete((
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        },
        pos,
    )))
}

/// Appends a whole frame, header and payload, to `out`, masking the payload
/// when the header carries a mask. The header's `payload_len` is set from
/// `payload`.
///
/// Refuses (with `out` untouched) a control frame that the protocol does
/// not allow: FIN clear or more than 125 payload bytes.
///
/// ```
/// use tether_frame::{encode_frame, FrameHeader, OpCode};
/// let mut out = Vec::new();
/// encode_frame(&mut out, FrameHeader::new(true, OpCode::Text, 0), b"Hello")?;
/// assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// # Ok::<(), tether_frame::Error>(())
/// ```
pub fn encode_frame(
    out: &mut alloc::vec::Vec<u8>,
    mut header: FrameHeader,
    payload: &[u8],
) -> Result<(), Error> {
    header.payload_len = payload.len() as u64;
    if header.opcode.is_control() && (!header.fin || payload.len() > 125) {
        return Err(Error::InvalidControlFrame);
    }
    let head = header.to_bytes();
    out.reserve(head.len() + payload.len());
    out.extend_from_slice(&head);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = header.mask {
        apply_mask(out.get_mut(start..).unwrap_or_default(), mask, 0);
    }
    Ok(())
}

/// One step of [`FrameDecoder::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A frame header. A frame with an empty payload yields nothing after
    /// its header: the frame ends here.
    Header(FrameHeader),
    /// A piece of the current frame's payload, still masked as it came off
    /// the wire: unmask it with the header's key at `offset` (see
    /// [`apply_mask`]). Borrowed from the input, never copied.
    Payload {
        /// The payload bytes.
        data: &'a [u8],
        /// Where `data` starts within the frame's payload.
        offset: u64,
        /// Whether this piece ends the frame.
        last: bool,
    },
}

/// An incremental frame decoder: bytes in, headers and payload pieces out.
///
/// Feed it whatever arrived, in any split; it keeps at most the 13 bytes of
/// an unfinished header between calls and never copies a payload. Frame
/// boundaries, lengths and masking are checked here; message-level rules
/// (fragmentation order, UTF-8, close payloads) are the caller's, as in
/// `tether-ws`.
///
/// ```
/// use tether_frame::{DecodeRules, FrameDecoder, Item, OpCode, apply_mask};
/// let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut decoder = FrameDecoder::new(DecodeRules::server());
/// let mut text = Vec::new();
/// let mut mask = None;
/// let mut input = &frame[..];
/// while let (used, Some(item)) = decoder.decode(input)? {
///     input = &input[used..];
///     match item {
///         Item::Header(h) => mask = h.mask,
///         Item::Payload { data, offset, .. } => {
///             let start = text.len();
///             text.extend_from_slice(data);
///             apply_mask(&mut text[start..], mask.unwrap(), offset as usize);
///         }
///     }
/// }
/// assert_eq!(text, b"Hello");
/// # Ok::<(), tether_frame::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    rules: DecodeRules,
    reader: FrameReader,
}

/// A [`FrameDecoder`] that does not keep its rules: the caller passes them
/// to every call. For a caller that holds the rules once for many streams
/// (the limits of a server's many connections, say), this spares their
/// room in each stream: 24 bytes where a `FrameDecoder` takes 40.
///
/// ```
/// use tether_frame::{DecodeRules, FrameReader, Item};
/// let rules = DecodeRules::client();
/// let mut reader = FrameReader::new();
/// let (used, item) = reader.decode(&[0x81, 0x02, b'h', b'i'], &rules)?;
/// assert_eq!(used, 2);
/// assert!(matches!(item, Some(Item::Header(h)) if h.payload_len == 2));
/// # Ok::<(), tether_frame::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameReader {
    phase: Phase,
}

/// Where a [`FrameDecoder`] stands: in a header (the bytes of it kept so
/// far) or in a payload, never both, so the two share their room.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Between frames (`len` 0) or in an unfinished header.
    Head { len: u8, bytes: [u8; MAX_HEADER_LEN] },
    /// Payload bytes still to come in the current frame (never 0), and how
    /// many have gone by.
    Payload { remaining: u64, offset: u64 },
}

/// Between frames.
const IDLE: Phase = Phase::Head {
    len: 0,
    bytes: [0; MAX_HEADER_LEN],
};

impl FrameDecoder {
    /// A decoder that enforces `rules`.
    pub const fn new(rules: DecodeRules) -> FrameDecoder {
        FrameDecoder {
            rules,
            reader: FrameReader::new(),
        }
    }

    /// The rules in force.
    pub const fn rules(&self) -> &DecodeRules {
        &self.rules
    }

    /// Changes the rules, e.g. once an extension is negotiated. Takes effect
    /// from the next header.
    pub fn set_rules(&mut self, rules: DecodeRules) {
        self.rules = rules;
    }

    /// Whether the decoder stands between frames (no partial header, no
    /// payload pending).
    pub const fn is_idle(&self) -> bool {
        self.reader.is_idle()
    }

    /// Decodes the next item from `input`.
    ///
    /// Returns how many bytes of `input` were used and the item, if one was
    /// completed. `(n, None)` means all `n` bytes (possibly zero) went into
    /// an unfinished header: call again with more input. After an error the
    /// stream is broken; the decoder must not be used again.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Item<'a>>), Error> {
        self.reader.decode(input, &self.rules)
    }
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader::new()
    }
}

impl FrameReader {
    /// A reader between frames.
    pub const fn new() -> FrameReader {
        FrameReader { phase: IDLE }
    }

    /// Whether the reader stands between frames (no partial header, no
    /// payload pending).
    pub const fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { len: 0, .. })
    }

    /// As [`FrameDecoder::decode`], under `rules`. Rules changed between
    /// calls take effect from the next header.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        rules: &DecodeRules,
    ) -> Result<(usize, Option<Item<'a>>), Error> {
        let (len, bytes) = match &mut self.phase {
            Phase::Payload { remaining, offset } => {
                if input.is_empty() {
                    return Ok((0, None));
                }
                // Below the input's length, which is a usize.
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                let at = *offset;
                *remaining -= take as u64;
                *offset += take as u64;
                let last = *remaining == 0;
                if last {
                    self.phase = IDLE;
                }
                return Ok((
                    take,
                    Some(Item::Payload {
                        data: input.get(..take).unwrap_or_default(),
                        offset: at,
                        last,
                    }),
                ));
            }
            Phase::Head { len, bytes } => (len, bytes),
        };
        let had = usize::from(*len);
        let parsed = if had == 0 {
            decode_header(input, rules)?
        } else {
            let take = input.len().min(MAX_HEADER_LEN.saturating_sub(had));
            for (kept, &byte) in bytes.iter_mut().skip(had).take(take).zip(input) {
                *kept = byte;
            }
            decode_header(bytes.get(..had + take).unwrap_or_default(), rules)?
        };
        match parsed {
            Status::Complete((header, used)) => {
                self.phase = if header.payload_len > 0 {
                    Phase::Payload {
                        remaining: header.payload_len,
                        offset: 0,
                    }
                } else {
                    IDLE
                };
                Ok((used - had, Some(Item::Header(header))))
            }
            Status::Partial => {
                // A partial header is shorter than MAX_HEADER_LEN, so it
                // always fits; the bytes are kept, hence all are used.
                if had == 0 {
                    for (kept, &byte) in bytes.iter_mut().zip(input) {
                        *kept = byte;
                    }
                    *len = u8::try_from(input.len()).unwrap_or(u8::MAX);
                    Ok((input.len(), None))
                } else {
                    let take = input.len().min(MAX_HEADER_LEN.saturating_sub(had));
                    *len = u8::try_from(had + take).unwrap_or(u8::MAX);
                    Ok((take, None))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn a_decoder_stays_small() {
        // Every WebSocket connection holds one: the header being read and
        // the payload being counted share their room.
        let size = core::mem::size_of::<FrameDecoder>();
        assert!(size <= 40, "FrameDecoder is {size} bytes");
        let size = core::mem::size_of::<FrameReader>();
        assert!(size <= 24, "FrameReader is {size} bytes");
    }

    #[test]
    fn a_header_split_right_after_a_payload_is_read_whole() {
        // "Hel" then "lo" (RFC 6455 section 5.7, unmasked), cut inside
        // the second header and inside its payload.
        let wire = [0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o'];
        let mut decoder = FrameDecoder::new(DecodeRules::client());
        let mut items = Vec::new();
        for piece in [&wire[..4], &wire[4..6], &wire[6..8], &wire[8..]] {
            let mut input = piece;
            // `(n, None)`: all of the rest went into a partial header.
            while let (used, Some(item)) = decoder.decode(input).expect("valid") {
                input = &input[used..];
                items.push(item);
            }
        }
        let payload: Vec<(Vec<u8>, u64, bool)> = items
            .iter()
            .filter_map(|item| match *item {
                Item::Payload { data, offset, last } => Some((data.to_vec(), offset, last)),
                Item::Header(_) => None,
            })
            .collect();
        assert_eq!(
            payload,
            [
                (b"He".to_vec(), 0, false),
                (b"l".to_vec(), 2, true),
                (b"l".to_vec(), 0, false),
                (b"o".to_vec(), 1, true),
            ]
        );
        assert_eq!(items.iter().filter(|i| matches!(i, Item::Header(_))).count(), 2);
        assert!(decoder.is_idle());
    }
}
