//! The header block encoder.

use super::table::{DynamicTable, Match, find};
use super::{DEFAULT_TABLE_SIZE, Field, huffman, integer};

/// Names whose fields are always sent as never-indexed literals, whatever
/// [`Field::never_indexed`] says: credentials that compression could reveal
/// (RFC 7541 section 7.1.3).
const SENSITIVE: &[&[u8]] = &[b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"];

/// Names whose values rarely repeat: indexing them would only push useful
/// entries out of the table, so they are sent without indexing.
const VOLATILE: &[&[u8]] = &[
    b"content-length",
    b"content-range",
    b"age",
    b"etag",
    b"last-modified",
    b"if-modified-since",
    b"if-none-match",
    b"if-unmodified-since",
];

/// Encodes the header lists of one direction of a connection into header
/// blocks.
///
/// How each field is sent:
/// - a field found whole in the static or dynamic table: its index;
/// - a sensitive field (marked [`Field::never_indexed`], or named
///   `authorization`, `proxy-authorization`, `cookie` or `set-cookie`): a
///   never-indexed literal, with the name's index if the name is in a table;
/// - a field whose name rarely repeats with the same value
///   (`content-length`, `etag`, `age`, the conditional and validator
///   headers), or that would take more than half the table: a literal
///   without indexing;
/// - anything else: a literal added to the dynamic table.
///
/// Strings are Huffman-coded when that is shorter.
///
/// The table is at most 4096 bytes ([`DEFAULT_TABLE_SIZE`]) whatever the
/// peer allows, so that a peer cannot make this side spend more memory on
/// it; a smaller limit from the peer is followed (see
/// [`Encoder::set_max_table_size`]).
///
/// ```
/// use tether_h2::hpack::{Decoder, Encoder, Field};
///
/// let mut encoder = Encoder::new();
/// let mut block = Vec::new();
/// encoder.encode(&[Field::new(":status", "200"), Field::new("cookie", "id=1")], &mut block);
/// // :status 200 is static entry 8; the cookie is a never-indexed literal
/// // whose name is static entry 32.
/// assert_eq!(block[..2], [0x88, 0x1f]);
///
/// let fields = Decoder::new(4096).decode(&block)?;
/// assert!(fields[1].never_indexed);
/// # Ok::<(), tether_h2::hpack::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    table: DynamicTable,
    /// The most this side spends on its table, whatever the peer allows.
    own_limit: usize,
    /// The smallest and the latest table size chosen since the last block,
    /// when they differ from the table's: to be announced at the start of
    /// the next block (section 4.2).
    pending: Option<(usize, usize)>,
}

impl Encoder {
    /// An encoder whose table starts at the HTTP/2 default of 4096 bytes.
    pub fn new() -> Encoder {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            own_limit: DEFAULT_TABLE_SIZE,
            pending: None,
        }
    }

    /// Follows the peer's SETTINGS_HEADER_TABLE_SIZE, to be called when its
    /// SETTINGS frame is received (RFC 9113 section 6.5.3): the table is
    /// resized to that value (but to no more than 4096 bytes), and the next
    /// block starts with the dynamic table size update(s) that tell the
    /// peer: the smallest size chosen since the last block, then the final
    /// one, as section 4.2 requires. Nothing is sent if the size ends where
    /// it was.
    pub fn set_max_table_size(&mut self, peer_max: usize) {
        let size = peer_max.min(self.own_limit);
        let current = self.table.capacity();
        let smallest = self.pending.map_or(current, |(smallest, _)| smallest);
        self.pending = Some((smallest.min(size), size));
    }

    /// The dynamic table's size: the sum of its entries' sizes.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Appends the header block of `fields` to `dst`. The block must reach
    /// the peer before any block encoded after it.
    pub fn encode(&mut self, fields: &[Field], dst: &mut Vec<u8>) {
        if let Some((smallest, last)) = self.pending.take() {
            let current = self.table.capacity();
            if smallest < last && smallest < current {
                self.size_update(smallest, dst);
                self.size_update(last, dst);
            } else if last != current {
                self.size_update(last, dst);
            }
        }
        for field in fields {
            self.encode_field(field, dst);
        }
    }

    fn size_update(&mut self, size: usize, dst: &mut Vec<u8>) {
        integer::encode(dst, 5, 0x20, size);
        self.table.set_capacity(size);
    }

    fn encode_field(&mut self, field: &Field, dst: &mut Vec<u8>) {
        let (name, value) = (&field.name[..], &field.value[..]);
        let sensitive = field.never_indexed || SENSITIVE.iter().any(|s| name.eq_ignore_ascii_case(s));
        let name_index = match find(&self.table, name, value) {
            Match::Full(index) if !sensitive => {
                integer::encode(dst, 7, 0x80, index);
                return;
            }
            Match::Full(index) | Match::Name(index) => index,
            Match::None => 0,
        };
        if sensitive {
            literal(dst, 4, 0x10, name_index, name, value);
        } else if field.size() <= self.table.capacity() / 2
            && !VOLATILE.iter().any(|v| name.eq_ignore_ascii_case(v))
        {
            literal(dst, 6, 0x40, name_index, name, value);
            self.table.insert(name, value);
        } else {
            literal(dst, 4, 0x00, name_index, name, value);
        }
    }
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

/// Section 6.2: a literal field, its name by index when `name_index` is not
/// 0.
fn literal(dst: &mut Vec<u8>, prefix: u8, first: u8, name_index: usize, name: &[u8], value: &[u8]) {
    integer::encode(dst, prefix, first, name_index);
    if name_index == 0 {
        string(dst, name);
    }
    string(dst, value);
}

/// Section 5.2: a string, Huffman-coded when that is shorter.
fn string(dst: &mut Vec<u8>, s: &[u8]) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        integer::encode(dst, 7, 0x80, coded);
        huffman::encode(s, dst);
    } else {
        integer::encode(dst, 7, 0, s.len());
        dst.extend_from_slice(s);
    }
}
