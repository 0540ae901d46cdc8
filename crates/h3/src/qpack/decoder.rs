//! The QPACK decoder (RFC 9204 §2.2): the peer's encoder stream in, field
//! sections in, fields and decoder-stream bytes out.

use tether_h2::hpack::Field;

use super::field_line::{SectionLimits, read_lines, read_prefix};
use super::instructions::{
    EncoderInstruction, insert_count_increment, parse_encoder_instruction, section_acknowledgment,
    stream_cancellation,
};
use super::literal::StringLimits;
use super::static_table;
use super::table::DynamicTable;
use crate::error::{Error, ErrorCode, Violation};

/// The field-section limit a [`Decoder`] starts with: 16 KiB of name +
/// value + 32 per field line, tether's head limit for every HTTP version.
/// Announce it with SETTINGS_MAX_FIELD_SECTION_SIZE.
pub const DEFAULT_MAX_FIELD_SECTION_SIZE: usize = 16 * 1024;

/// The longest string a [`Decoder`] reads by default, on the wire: 8 KiB.
pub const DEFAULT_MAX_STRING_LEN: u64 = 8 * 1024;

/// What [`Decoder::decode_section`] made of a field section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// The fields, in order.
    Decoded(Vec<Field>),
    /// The section refers to entries the encoder stream has not delivered
    /// yet. The decoder keeps it and decodes it when they arrive; it is
    /// handed back by [`Decoder::feed_encoder_stream`] as [`Unblocked`].
    Blocked,
}

/// A section that was blocked, decoded once its entries arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unblocked {
    /// The stream the section came on.
    pub stream_id: u64,
    /// Its fields.
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Blocked {
    stream_id: u64,
    required_insert_count: u64,
    section: Vec<u8>,
}

/// Decodes the field sections of one direction of a connection.
///
/// Configure it with what this endpoint advertises in its SETTINGS:
/// SETTINGS_QPACK_MAX_TABLE_CAPACITY (the largest table the peer's encoder
/// may set), SETTINGS_QPACK_BLOCKED_STREAMS, and
/// SETTINGS_MAX_FIELD_SECTION_SIZE. Feed it the peer's encoder stream
/// (after its type byte) with [`Decoder::feed_encoder_stream`] and each
/// HEADERS frame's section with [`Decoder::decode_section`]; write what
/// [`Decoder::take_decoder_stream`] returns to this endpoint's decoder
/// stream.
///
/// Memory is bounded: the table by its maximum capacity, a partial
/// encoder-stream instruction by twice the string limit, and blocked
/// sections by the number of blocked streams times the size of a section
/// (which the caller's frame limit bounds).
///
/// ```
/// use tether_h2::hpack::Field;
/// use tether_h3::qpack::{Decoder, Section};
///
/// let mut decoder = Decoder::new(4096, 16);
/// // RFC 9204 B.1: a literal with a static name reference.
/// let section = b"\x00\x00\x51\x0b/index.html";
/// assert_eq!(
///     decoder.decode_section(0, section)?,
///     Section::Decoded(vec![Field::new(":path", "/index.html")])
/// );
/// # Ok::<(), tether_h3::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    max_blocked_streams: usize,
    max_field_section_size: usize,
    max_string_len: u64,
    /// The start of an encoder-stream instruction not yet complete.
    pending: Vec<u8>,
    blocked: Vec<Blocked>,
    /// Inserts the encoder knows we have (through acknowledgments and
    /// increments sent).
    known_received_count: u64,
    decoder_stream: Vec<u8>,
}

impl Decoder {
    /// A decoder that lets the peer's encoder use a table of up to
    /// `max_table_capacity` bytes and block up to `max_blocked_streams`
    /// streams, with the default limits on sections and strings.
    pub fn new(max_table_capacity: u64, max_blocked_streams: u64) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_capacity),
            max_blocked_streams: usize::try_from(max_blocked_streams).unwrap_or(usize::MAX),
            max_field_section_size: DEFAULT_MAX_FIELD_SECTION_SIZE,
            max_string_len: DEFAULT_MAX_STRING_LEN,
            pending: Vec::new(),
            blocked: Vec::new(),
            known_received_count: 0,
            decoder_stream: Vec::new(),
        }
    }

    /// Sets the largest decoded section (name + value + 32 per line).
    pub fn with_max_field_section_size(mut self, max: usize) -> Decoder {
        self.max_field_section_size = max;
        self
    }

    /// Sets the longest string, as sent (before Huffman decoding), in a
    /// section or an encoder-stream instruction.
    pub fn with_max_string_len(mut self, max: u64) -> Decoder {
        self.max_string_len = max;
        self
    }

    /// How many entries the peer's encoder has inserted.
    pub fn insert_count(&self) -> u64 {
        self.table.inserted()
    }

    /// The dynamic table's size (names, values and 32 per entry).
    pub fn table_size(&self) -> u64 {
        self.table.size()
    }

    /// The dynamic table's capacity as the peer's encoder set it.
    pub fn table_capacity(&self) -> u64 {
        self.table.capacity()
    }

    /// How many streams are blocked.
    pub fn blocked_streams(&self) -> usize {
        self.blocked.len()
    }

    fn string_limits(&self) -> StringLimits {
        StringLimits {
            max_wire: self.max_string_len,
            // An entry larger than the table is refused anyway.
            max_decoded: usize::try_from(self.table.max_capacity()).unwrap_or(usize::MAX),
        }
    }

    /// Reads the peer's encoder stream (its bytes after the stream type),
    /// applying each complete instruction; the start of an incomplete one
    /// is kept for the next call. Returns the blocked sections that the new
    /// entries let be decoded, in the order they arrived.
    ///
    /// Errors are QPACK_ENCODER_STREAM_ERROR, or, for a section that was
    /// blocked and turns out malformed, QPACK_DECOMPRESSION_FAILED.
    pub fn feed_encoder_stream(&mut self, src: &[u8]) -> Result<Vec<Unblocked>, Error> {
        let stream_error = |v| Error::new(ErrorCode::QPACK_ENCODER_STREAM_ERROR, v);
        self.pending.extend_from_slice(src);
        let mut used = 0;
        let mut unblocked = Vec::new();
        loop {
            let rest = self.pending.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            match parse_encoder_instruction(rest, self.string_limits()) {
                Ok((instruction, n)) => {
                    used += n;
                    let before = self.table.inserted();
                    self.apply(instruction).map_err(stream_error)?;
                    // A section is decoded as soon as its last insert is
                    // in, before a later insert can evict what it needs:
                    // the result does not depend on how the stream is cut.
                    if self.table.inserted() != before {
                        unblocked.extend(self.unblock()?);
                    }
                }
                Err(Violation::QpackTruncated) => break,
                Err(v) => return Err(stream_error(v)),
            }
        }
        self.pending.drain(..used);
        Ok(unblocked)
    }

    fn apply(&mut self, instruction: EncoderInstruction) -> Result<(), Violation> {
        match instruction {
            EncoderInstruction::SetCapacity(capacity) => self.table.set_capacity(capacity),
            EncoderInstruction::InsertWithNameRef {
                is_static,
                index,
                value,
            } => {
                let name = if is_static {
                    static_table::get(index)
                        .ok_or(Violation::InvalidStaticIndex(index))?
                        .0
                        .to_vec()
                } else {
                    self.dynamic(index)?.0
                };
                self.table.insert(name, value)
            }
            EncoderInstruction::InsertWithLiteralName { name, value } => self.table.insert(name, value),
            EncoderInstruction::Duplicate(index) => {
                let (name, value) = self.dynamic(index)?;
                self.table.insert(name, value)
            }
        }
    }

    /// A copy of the entry at an encoder-stream relative index: the copy
    /// survives the eviction the insert may cause.
    fn dynamic(&self, relative: u64) -> Result<(Vec<u8>, Vec<u8>), Violation> {
        self.table
            .relative(relative)
            .and_then(|absolute| self.table.get(absolute))
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .ok_or(Violation::InvalidDynamicIndex(relative))
    }

    fn unblock(&mut self) -> Result<Vec<Unblocked>, Error> {
        let inserted = self.table.inserted();
        if !self.blocked.iter().any(|b| b.required_insert_count <= inserted) {
            return Ok(Vec::new());
        }
        let (ready, waiting): (Vec<Blocked>, Vec<Blocked>) = std::mem::take(&mut self.blocked)
            .into_iter()
            .partition(|b| b.required_insert_count <= inserted);
        self.blocked = waiting;
        let mut out = Vec::with_capacity(ready.len());
        for b in ready {
            match self.decode_section(b.stream_id, &b.section)? {
                Section::Decoded(fields) => out.push(Unblocked {
                    stream_id: b.stream_id,
                    fields,
                }),
                // Cannot happen: its entries are all here now.
                Section::Blocked => {}
            }
        }
        Ok(out)
    }

    /// Decodes the field section of a HEADERS or PUSH_PROMISE frame that
    /// came on `stream_id`. A section that refers to entries not yet
    /// received is kept and [`Section::Blocked`] returned; hand the next
    /// section of that stream in only once it is unblocked.
    ///
    /// Errors are QPACK_DECOMPRESSION_FAILED (a malformed section, an
    /// invalid reference, more blocked streams than allowed), or
    /// H3_EXCESSIVE_LOAD for a section past the size limit — which, since
    /// it leaves the table intact, the caller may instead answer with a 431
    /// response and [`Decoder::cancel_stream`].
    pub fn decode_section(&mut self, stream_id: u64, section: &[u8]) -> Result<Section, Error> {
        let failed = |v| match v {
            Violation::FieldSectionTooLarge => Error::new(ErrorCode::H3_EXCESSIVE_LOAD, v),
            _ => Error::new(ErrorCode::QPACK_DECOMPRESSION_FAILED, v),
        };
        let mut pos = 0;
        let prefix = read_prefix(
            section,
            &mut pos,
            self.table.max_capacity(),
            self.table.inserted(),
        )
        .map_err(failed)?;
        if prefix.required_insert_count > self.table.inserted() {
            if self.blocked.iter().any(|b| b.stream_id == stream_id) {
                return Err(Error::new(
                    ErrorCode::H3_INTERNAL_ERROR,
                    Violation::StreamAlreadyBlocked(stream_id),
                ));
            }
            if self.blocked.len() >= self.max_blocked_streams {
                return Err(failed(Violation::TooManyBlockedStreams));
            }
            self.blocked.push(Blocked {
                stream_id,
                required_insert_count: prefix.required_insert_count,
                section: section.to_vec(),
            });
            return Ok(Section::Blocked);
        }
        let limits = SectionLimits {
            max_section: self.max_field_section_size,
            max_string: self.max_string_len,
        };
        let fields = read_lines(section, pos, prefix, &self.table, limits).map_err(failed)?;
        if prefix.required_insert_count > 0 {
            section_acknowledgment(stream_id, &mut self.decoder_stream);
            self.known_received_count = self.known_received_count.max(prefix.required_insert_count);
        }
        Ok(Section::Decoded(fields))
    }

    /// The stream was reset or its reading abandoned: its blocked section,
    /// if any, is dropped, and a Stream Cancellation is queued for the
    /// decoder stream (unless the table's maximum capacity is 0, where
    /// RFC 9204 §4.4.2 lets it be left out).
    pub fn cancel_stream(&mut self, stream_id: u64) {
        self.blocked.retain(|b| b.stream_id != stream_id);
        if self.table.max_capacity() > 0 {
            stream_cancellation(stream_id, &mut self.decoder_stream);
        }
    }

    /// The bytes to write to this endpoint's decoder stream: the
    /// acknowledgments and cancellations queued so far, then an Insert
    /// Count Increment for inserts the encoder does not yet know we have.
    pub fn take_decoder_stream(&mut self) -> Vec<u8> {
        let inserted = self.table.inserted();
        if inserted > self.known_received_count {
            insert_count_increment(inserted - self.known_received_count, &mut self.decoder_stream);
            self.known_received_count = inserted;
        }
        std::mem::take(&mut self.decoder_stream)
    }
}
