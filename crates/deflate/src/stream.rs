//! A compressed response body made of pieces compressed once and shared
//! by every response they go into (an event stream's events, fanned out):
//! each piece is deflate blocks that refer to nothing before them and end
//! in a sync flush, so any sequence of pieces, after a header, is a valid
//! deflate stream, flushed at every piece. What differs between two
//! responses is only the checksum the trailer carries, kept per response
//! and moved along by combining the pieces' own checksums.

use std::sync::Arc;

use crate::accept::ContentCoding;
use crate::codec::{Key, compress_into, return_compressor, take_compressor};
use crate::params::MAX_WINDOW_BITS;
use crate::quick;

/// The sync flush's empty stored block: BFINAL 0, BTYPE 00, then LEN 0
/// and NLEN 0xffff, byte-aligned.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The most a stored block holds.
const MAX_STORED: usize = 0xffff;

/// Level 1, as permessage-deflate's shared frames: an event stream sends
/// each piece once per event, and the fastest level gets most of the gain
/// on JSON.
const LEVEL: u8 = 1;

/// The gzip header (RFC 1952): deflate, no flags, no time, fastest
/// compression, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

/// The zlib header (RFC 1950): deflate with a 32 KiB window, fastest
/// level, no dictionary (0x7801 is a multiple of 31).
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];

/// The last block: empty, final, fixed codes (BFINAL 1, BTYPE 01, then
/// the end-of-block code, seven zero bits), padded to the byte.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Some bytes of a response body as deflate blocks that stand alone (no
/// reference to anything before them, ending byte-aligned in a sync
/// flush), with what a response needs to account for them in its
/// trailer: their checksums and length. Made once, and written as they
/// are into any number of responses ([`StreamCoding::add`]).
///
/// ```
/// use tether_deflate::{ContentCoding, Piece, StreamCoding};
///
/// let event = Piece::new(b"event: quote\ndata: {\"bid\":101.25,\"ask\":101.5}\n\n", 0);
/// let mut body = Vec::new();
/// let mut stream = StreamCoding::new(ContentCoding::Gzip);
/// body.extend_from_slice(stream.header());
/// for _ in 0..3 {
///     stream.add(&event); // the same shared bytes in every stream
///     body.extend_from_slice(event.bytes());
/// }
/// body.extend_from_slice(&stream.trailer());
/// assert_eq!(&body[..2], [0x1f, 0x8b]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    bytes: Arc<[u8]>,
    crc: u32,
    /// `crc32_combine_gen` of the length: what combining needs, worked
    /// out once here rather than per response.
    crc_op: u32,
    adler: u32,
    len: u64,
}

impl Piece {
    /// `plain` compressed on its own, or, when it is shorter than
    /// `min_size` or does not shrink, the same bytes in stored blocks
    /// (five bytes more per 64 KiB). Empty input makes an empty piece.
    pub fn new(plain: &[u8], min_size: usize) -> Piece {
        let bytes = if plain.is_empty() {
            Vec::new()
        } else if plain.len() < min_size {
            stored(plain)
        } else {
            compressed(plain).unwrap_or_else(|| stored(plain))
        };
        Piece::of(plain, bytes)
    }

    /// `plain` in stored blocks, uncompressed: for bytes too short to
    /// shrink (a heartbeat, an id line).
    pub fn stored(plain: &[u8]) -> Piece {
        Piece::of(plain, stored(plain))
    }

    fn of(plain: &[u8], bytes: Vec<u8>) -> Piece {
        let len = plain.len() as u64;
        Piece {
            bytes: bytes.into(),
            crc: zlib_rs::crc32::crc32(0, plain),
            crc_op: zlib_rs::crc32::crc32_combine_gen(len),
            adler: zlib_rs::adler32::adler32(1, plain),
            len,
        }
    }

    /// The deflate blocks, to be written as they are after whatever a
    /// response sent before.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }

    /// The length of the bytes it stands for, uncompressed.
    pub fn plain_len(&self) -> u64 {
        self.len
    }
}

/// The bytes compressed at level 1 with a fresh window, ending in a
/// sync flush; `None` unless that is smaller than storing them.
fn compressed(plain: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if plain.len() <= quick::MAX_LEN {
        quick::compress(plain, 1 << MAX_WINDOW_BITS, &mut out);
    } else {
        let key = Key::new(MAX_WINDOW_BITS, LEVEL);
        let mut compressor = take_compressor(key);
        let result = compress_into(&mut compressor, plain, &mut out);
        return_compressor(key, compressor);
        result.ok()?;
    }
    // Both stripped the flush's tail (permessage-deflate's form): here it
    // stays, so that the piece ends byte-aligned for the next.
    out.extend_from_slice(&SYNC_TAIL);
    (out.len() < stored_len(plain.len())).then_some(out)
}

/// What [`stored`] makes of `len` bytes.
fn stored_len(len: usize) -> usize {
    len + 5 * len.div_ceil(MAX_STORED).max(1)
}

/// `plain` as non-final stored blocks.
fn stored(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored_len(plain.len()));
    for chunk in plain.chunks(MAX_STORED) {
        // At most MAX_STORED, so it fits.
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// One response's compression: its coding, and the checksum and length
/// of what it has been sent so far, for its trailer (8 bytes of state,
/// whatever the number of pieces).
///
/// Calling contract: write [`StreamCoding::header`] first, then each
/// piece's [`Piece::bytes`] as it is [`StreamCoding::add`]ed, then
/// [`StreamCoding::trailer`] to end the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCoding {
    coding: ContentCoding,
    /// CRC-32 for gzip, Adler-32 for deflate.
    check: u32,
    /// The length modulo 2^32, as gzip's trailer carries it.
    len: u32,
}

impl StreamCoding {
    /// A response in `coding`, nothing sent yet.
    pub fn new(coding: ContentCoding) -> StreamCoding {
        StreamCoding {
            coding,
            check: match coding {
                ContentCoding::Gzip => 0,
                ContentCoding::Deflate => 1,
            },
            len: 0,
        }
    }

    /// The coding.
    pub fn coding(&self) -> ContentCoding {
        self.coding
    }

    /// The first bytes of the body: the format's header.
    pub fn header(&self) -> &'static [u8] {
        match self.coding {
            ContentCoding::Gzip => &GZIP_HEADER,
            ContentCoding::Deflate => &ZLIB_HEADER,
        }
    }

    /// Accounts for `piece`, whose bytes the caller writes next.
    pub fn add(&mut self, piece: &Piece) {
        self.check = match self.coding {
            ContentCoding::Gzip => zlib_rs::crc32::crc32_combine_op(self.check, piece.crc, piece.crc_op),
            ContentCoding::Deflate => zlib_rs::adler32::adler32_combine(self.check, piece.adler, piece.len),
        };
        // gzip keeps the length modulo 2^32: the low half is all it needs.
        let low = u32::try_from(piece.len & u64::from(u32::MAX)).unwrap_or(0);
        self.len = self.len.wrapping_add(low);
    }

    /// The last bytes of the body: an empty final block, then the
    /// checksum (and, for gzip, the length).
    pub fn trailer(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&FINAL_BLOCK);
        match self.coding {
            ContentCoding::Gzip => {
                out.extend_from_slice(&self.check.to_le_bytes());
                out.extend_from_slice(&self.len.to_le_bytes());
            }
            ContentCoding::Deflate => out.extend_from_slice(&self.check.to_be_bytes()),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A whole body inflated by zlib-rs in the format of `coding`, or
    /// what it refused.
    fn inflate(coding: ContentCoding, body: &[u8]) -> Result<Vec<u8>, String> {
        // 15 + 16: gzip; 15: zlib.
        let bits = match coding {
            ContentCoding::Gzip => 31,
            ContentCoding::Deflate => 15,
        };
        let mut out = vec![0; 1 << 20];
        let (plain, status) =
            zlib_rs::decompress_slice(&mut out, body, zlib_rs::InflateConfig { window_bits: bits });
        match status {
            zlib_rs::ReturnCode::Ok => Ok(plain.to_vec()),
            other => Err(format!("{other:?}")),
        }
    }

    fn body(coding: ContentCoding, pieces: &[Piece]) -> Vec<u8> {
        let mut stream = StreamCoding::new(coding);
        let mut body = stream.header().to_vec();
        for piece in pieces {
            stream.add(piece);
            body.extend_from_slice(piece.bytes());
        }
        body.extend_from_slice(&stream.trailer());
        body
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x9e37_79b9;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn shared_pieces_make_a_valid_body_in_both_formats() {
        let json = br#"id: 1-7
event: quote
data: {"symbol":"ACME","bid":101.25,"ask":101.5,"note":"repeated repeated repeated"}

"#;
        let event = Piece::new(json, 0);
        assert!(event.bytes().len() < json.len(), "it shrinks");
        assert!(event.bytes().ends_with(&SYNC_TAIL));
        let heartbeat = Piece::stored(b":\n");
        let big = Piece::new(&json.repeat(400), 0);
        let incompressible = Piece::new(&noise(70_000), 0);
        assert_eq!(incompressible.bytes().len(), stored_len(70_000));
        let pieces = [
            Piece::stored(b"retry: 3000\n"),
            event.clone(),
            heartbeat.clone(),
            event.clone(),
            big,
            incompressible,
            Piece::new(b"", 0),
            event,
        ];
        let plain: Vec<u8> = [
            &b"retry: 3000\n"[..],
            json,
            b":\n",
            json,
            &json.repeat(400),
            &noise(70_000),
            json,
        ]
        .concat();
        for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
            assert_eq!(
                inflate(coding, &body(coding, &pieces)).unwrap(),
                plain,
                "{coding:?}"
            );
        }
    }

    #[test]
    fn a_floor_stores_short_bytes() {
        let text = b"data: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\n";
        assert_eq!(&Piece::new(text, 1000).bytes()[..], &stored(text)[..]);
        assert!(Piece::new(text, 10).bytes().len() < text.len());
        for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
            let pieces = [Piece::new(text, 1000), Piece::new(text, 10)];
            assert_eq!(inflate(coding, &body(coding, &pieces)).unwrap(), text.repeat(2));
        }
    }

    #[test]
    fn a_wrong_checksum_is_caught() {
        // The trailer is checked by the inflater: a piece not accounted
        // for fails it (the test is able to fail).
        let piece = Piece::new(b"data: x\n\n", 0);
        let mut stream = StreamCoding::new(ContentCoding::Gzip);
        let mut body = stream.header().to_vec();
        body.extend_from_slice(piece.bytes());
        body.extend_from_slice(piece.bytes());
        stream.add(&piece);
        body.extend_from_slice(&stream.trailer());
        assert!(inflate(ContentCoding::Gzip, &body).is_err());
    }

    proptest! {
        #[test]
        fn any_pieces_in_any_order(
            texts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..8),
            repeat in 1usize..40,
            floor in 0usize..200,
        ) {
            let pieces: Vec<Piece> = texts.iter().map(|t| Piece::new(&t.repeat(repeat), floor)).collect();
            let plain: Vec<u8> = texts.iter().flat_map(|t| t.repeat(repeat)).collect();
            for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
                prop_assert_eq!(inflate(coding, &body(coding, &pieces)).unwrap(), plain.clone());
            }
        }
    }
}
