//! The QPACK encoder: the static table and literals only.
//!
//! It never inserts into the peer's dynamic table, so it needs no encoder
//! stream traffic, never blocks a stream, and works whatever
//! SETTINGS_QPACK_MAX_TABLE_CAPACITY the peer sent (including 0, the
//! default). Every section starts with a Required Insert Count and Base of
//! 0.

use tether_h2::hpack::Field;

use super::instructions::{DecoderInstruction, parse_decoder_instruction};
use super::literal::{write_int, write_string};
use super::static_table::{self, Match};
use crate::error::{Error, ErrorCode, Violation};

/// Appends the encoded field section of `fields` to `dst`.
///
/// A field in the static table is one indexed byte or two; a field whose
/// name is there is a name reference and a literal value; any other is a
/// literal name and value. Strings are Huffman-coded when that is shorter.
/// A field marked `never_indexed` is sent as a literal with the N bit, so
/// that no intermediary indexes it.
///
/// ```
/// use tether_h2::hpack::Field;
/// use tether_h3::qpack::{Decoder, Section, encode};
///
/// let fields = [Field::new(":status", "200"), Field::new("content-type", "text/event-stream")];
/// let mut section = Vec::new();
/// encode(&fields, &mut section);
/// assert_eq!(&section[..3], [0x00, 0x00, 0xc0 | 25]);
/// let mut decoder = Decoder::new(0, 0);
/// assert_eq!(decoder.decode_section(0, &section)?, Section::Decoded(fields.to_vec()));
/// # Ok::<(), tether_h3::Error>(())
/// ```
pub fn encode(fields: &[Field], dst: &mut Vec<u8>) {
    // Required Insert Count 0, Base 0.
    dst.extend_from_slice(&[0x00, 0x00]);
    for field in fields {
        let never = field.never_indexed;
        match static_table::find(&field.name, &field.value) {
            Some(Match::Field(index)) if !never => {
                write_int(dst, 6, 0xc0, u64::try_from(index).unwrap_or(0));
            }
            Some(Match::Field(index) | Match::Name(index)) => {
                let n = if never { 0x20 } else { 0x00 };
                write_int(dst, 4, 0x50 | n, u64::try_from(index).unwrap_or(0));
                write_string(dst, 7, 0x00, &field.value);
            }
            None => {
                let n = if never { 0x10 } else { 0x00 };
                write_string(dst, 3, 0x20 | n, &field.name);
                write_string(dst, 7, 0x00, &field.value);
            }
        }
    }
}

/// The size of a field list as SETTINGS_MAX_FIELD_SECTION_SIZE counts it
/// (name + value + 32 per field), to check against the peer's limit
/// before sending.
pub fn field_section_size(fields: &[Field]) -> u64 {
    fields.iter().fold(0u64, |acc, f| {
        let len = u64::try_from(f.name.len() + f.value.len()).unwrap_or(u64::MAX);
        acc.saturating_add(len).saturating_add(32)
    })
}

/// Reads the peer's decoder stream for this encoder.
///
/// Since the encoder never uses the dynamic table, the only instruction
/// that may come is Stream Cancellation; a Section Acknowledgment (no
/// section of ours needs one) or an Insert Count Increment (we inserted
/// nothing) is a QPACK_DECODER_STREAM_ERROR (RFC 9204 §4.4).
#[derive(Debug, Clone, Default)]
pub struct DecoderStreamReader {
    pending: Vec<u8>,
}

impl DecoderStreamReader {
    /// A reader at the start of the stream (after its type byte).
    pub fn new() -> DecoderStreamReader {
        DecoderStreamReader::default()
    }

    /// Reads all of `src`, returning the instructions it completes.
    pub fn feed(&mut self, src: &[u8]) -> Result<Vec<DecoderInstruction>, Error> {
        let error = |v| Error::new(ErrorCode::QPACK_DECODER_STREAM_ERROR, v);
        self.pending.extend_from_slice(src);
        let mut used = 0;
        let mut out = Vec::new();
        loop {
            let rest = self.pending.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match parse_decoder_instruction(rest) {
                Ok((instruction, n)) => {
                    used += n;
                    match instruction {
                        DecoderInstruction::StreamCancellation(_) => out.push(instruction),
                        _ => return Err(error(Violation::InvalidDecoderInstruction)),
                    }
                }
                Err(Violation::QpackTruncated) => break,
                Err(v) => return Err(error(v)),
            }
        }
        self.pending.drain(..used);
        Ok(out)
    }
}
