//! The header block decoder (RFC 7541 sections 3, 4 and 6).

use super::table::{DynamicTable, ENTRY_OVERHEAD, STATIC, entry_size};
use super::{Error, Field, huffman, integer};

/// The header-list limit a [`Decoder`] starts with, in RFC 9113 section
/// 6.5.2 bytes. The same 16 KiB as the HTTP/1.1 head limit of
/// `tether-http1`; announce it with SETTINGS_MAX_HEADER_LIST_SIZE.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 16 * 1024;

/// Decodes the header blocks of one direction of a connection.
///
/// ```
/// use tether_h2::hpack::{Decoder, Error, Field};
///
/// let mut decoder = Decoder::new(4096).with_max_header_list_size(8 * 1024);
/// // RFC 7541 C.3.1: three static entries and a literal that is indexed.
/// let block = b"\x82\x86\x84\x41\x0fwww.example.com";
/// let fields = decoder.decode(block)?;
/// assert_eq!(fields[3], Field::new(":authority", "www.example.com"));
/// assert_eq!(decoder.table_size(), 57);
///
/// // Index 0 does not exist.
/// assert_eq!(decoder.decode(b"\x80"), Err(Error::InvalidIndex(0)));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    /// SETTINGS_HEADER_TABLE_SIZE as announced (and acknowledged): the
    /// largest size update the peer may send.
    max_table_size: usize,
    /// The limit went below the table's size; the next block must start
    /// with a size update.
    update_required: bool,
    max_header_list_size: usize,
}

impl Decoder {
    /// A decoder whose table starts with, and is limited to,
    /// `max_table_size` bytes. On an HTTP/2 connection that is
    /// [`super::DEFAULT_TABLE_SIZE`] (4096), which the peer may assume until
    /// it acknowledges this endpoint's SETTINGS; a different
    /// SETTINGS_HEADER_TABLE_SIZE is applied with
    /// [`Decoder::set_max_table_size`] when the acknowledgment arrives. The
    /// header-list limit is [`DEFAULT_MAX_HEADER_LIST_SIZE`].
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            update_required: false,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
        }
    }

    /// Sets the header-list limit, as with
    /// [`Decoder::set_max_header_list_size`].
    pub fn with_max_header_list_size(mut self, max: usize) -> Decoder {
        self.max_header_list_size = max;
        self
    }

    /// Sets the largest header list [`Decoder::decode`] returns, counted as
    /// RFC 9113 section 6.5.2 does: for each field, the lengths of name and
    /// value plus 32. The count is kept as the block is decoded, and a
    /// string is refused before it is copied if it would pass the limit, so
    /// the memory a block costs is bounded by this limit and the table
    /// size, however its fields refer to one another.
    pub fn set_max_header_list_size(&mut self, max: usize) {
        self.max_header_list_size = max;
    }

    /// The header-list limit.
    pub fn max_header_list_size(&self) -> usize {
        self.max_header_list_size
    }

    /// Sets the limit on the dynamic table: call it with the new
    /// SETTINGS_HEADER_TABLE_SIZE once the peer has acknowledged it. The
    /// table keeps its size until the peer sends a size update; if the new
    /// limit is below that size, the next block must start with one
    /// (RFC 7541 section 4.2), or it is refused with
    /// [`Error::MissingTableSizeUpdate`].
    pub fn set_max_table_size(&mut self, max: usize) {
        self.max_table_size = max;
        if max < self.table.capacity() {
            self.update_required = true;
        }
    }

    /// The limit on the dynamic table, as last set.
    pub fn max_table_size(&self) -> usize {
        self.max_table_size
    }

    /// The dynamic table's size: the sum of its entries' sizes (name and
    /// value lengths plus 32 each).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's entries as `(name, value)`, newest (index 62)
    /// first.
    pub fn table_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.entries().map(|e| (&e.name[..], &e.value[..]))
    }

    /// Decodes one complete header block into its list of fields, updating
    /// the dynamic table as the block says.
    ///
    /// On an error the connection must be closed with COMPRESSION_ERROR:
    /// see [`Error`].
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, Error> {
        let mut fields = Vec::new();
        let mut pos = 0;
        let mut list_size = 0usize;
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            if first & 0xe0 == 0x20 {
                // Section 6.3: dynamic table size update.
                if !at_start {
                    return Err(Error::LateTableSizeUpdate);
                }
                let size = integer::decode(block, &mut pos, 5)?;
                if size > self.max_table_size {
                    return Err(Error::TableSizeTooLarge {
                        size,
                        max: self.max_table_size,
                    });
                }
                self.table.set_capacity(size);
                self.update_required = false;
                continue;
            }
            if at_start {
                if self.update_required {
                    return Err(Error::MissingTableSizeUpdate);
                }
                at_start = false;
            }
            // What is left of the list limit; list_size never passes it.
            let budget = self.max_header_list_size.saturating_sub(list_size);
            let field = if first & 0x80 != 0 {
                // Section 6.1: indexed header field.
                let index = integer::decode(block, &mut pos, 7)?;
                let (name, value) = self.lookup(index)?;
                if entry_size(name, value) > budget {
                    return Err(Error::HeaderListTooLarge);
                }
                Field {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    never_indexed: false,
                }
            } else {
                // Section 6.2: literal header field, with incremental
                // indexing (01), without indexing (0000) or never indexed
                // (0001).
                let (prefix, indexing, never_indexed) = match first {
                    0x40..=0x7f => (6, true, false),
                    0x10..=0x1f => (4, false, true),
                    _ => (4, false, false),
                };
                let index = integer::decode(block, &mut pos, prefix)?;
                let room = budget
                    .checked_sub(ENTRY_OVERHEAD)
                    .ok_or(Error::HeaderListTooLarge)?;
                let name = if index == 0 {
                    read_string(block, &mut pos, room)?
                } else {
                    let (name, _) = self.lookup(index)?;
                    if name.len() > room {
                        return Err(Error::HeaderListTooLarge);
                    }
                    name.to_vec()
                };
                let value = read_string(block, &mut pos, room - name.len())?;
                if indexing {
                    self.table.insert(&name, &value);
                }
                Field {
                    name,
                    value,
                    never_indexed,
                }
            };
            list_size += field.size();
            fields.push(field);
        }
        if at_start && self.update_required {
            return Err(Error::MissingTableSizeUpdate);
        }
        Ok(fields)
    }

    /// Section 2.3.3: index 1 to 61 is static, from 62 dynamic.
    fn lookup(&self, index: usize) -> Result<(&[u8], &[u8]), Error> {
        if index == 0 {
            return Err(Error::InvalidIndex(0));
        }
        if let Some(&(name, value)) = STATIC.get(index - 1) {
            return Ok((name, value));
        }
        self.table
            .get(index - 1 - STATIC.len())
            .map(|e| (&e.name[..], &e.value[..]))
            .ok_or(Error::InvalidIndex(index))
    }
}

impl Default for Decoder {
    /// A decoder with the default limits: a 4096-byte table and a 16 KiB
    /// header list.
    fn default() -> Decoder {
        Decoder::new(super::DEFAULT_TABLE_SIZE)
    }
}

/// Section 5.2: a string literal, Huffman-coded or not, of at most `max_len`
/// decoded bytes. Its length is checked against the input and the limit
/// before anything is allocated.
fn read_string(src: &[u8], pos: &mut usize, max_len: usize) -> Result<Vec<u8>, Error> {
    let huffman = src.get(*pos).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = integer::decode(src, pos, 7)?;
    let end = pos.checked_add(len).ok_or(Error::Truncated)?;
    let raw = src.get(*pos..end).ok_or(Error::Truncated)?;
    *pos = end;
    if huffman {
        // The shortest code is 5 bits, so 8/5 of the coded length bounds
        // the decoded length.
        let mut out = Vec::with_capacity((len.saturating_mul(8) / 5).min(max_len));
        huffman::decode(raw, max_len, &mut out)?;
        Ok(out)
    } else if len > max_len {
        Err(Error::HeaderListTooLarge)
    } else {
        Ok(raw.to_vec())
    }
}
