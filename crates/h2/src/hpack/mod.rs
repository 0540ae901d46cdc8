//! HPACK header compression (RFC 7541) for HTTP/2.
//!
//! A [`Decoder`] turns each complete header block (the fragments of a
//! HEADERS or PUSH_PROMISE frame and its CONTINUATION frames, joined) into a
//! list of [`Field`]s; an [`Encoder`] turns a list of fields into a header
//! block. Each side keeps a dynamic table that the blocks of one direction
//! of a connection share, so one connection needs one `Encoder` and one
//! `Decoder`, and blocks must be passed in the order they are sent.
//!
//! Both are sans-IO and have no dependencies. The decoder treats its input
//! as hostile: every integer, string length, table index and table size is
//! checked before it is used, and the header list is measured as it is
//! decoded (RFC 9113 section 6.5.2: name + value + 32 per field) so that a
//! small block cannot expand into a large list: see
//! [`Decoder::set_max_header_list_size`].
//!
//! Names and values are bytes. HTTP/2 requires lowercase names and forbids
//! some characters in values; that is checked by the layer that interprets
//! the fields, not by HPACK, which carries any bytes.
//!
//! ```
//! use tether_h2::hpack::{Decoder, Encoder, Field};
//!
//! let request = [
//!     Field::new(":method", "GET"),
//!     Field::new(":scheme", "https"),
//!     Field::new(":path", "/events"),
//!     Field::new(":authority", "example.com"),
//!     Field::new("accept", "text/event-stream"),
//!     Field::sensitive("x-api-key", "secret"),
//! ];
//!
//! let mut encoder = Encoder::new();
//! let mut block = Vec::new();
//! encoder.encode(&request, &mut block);
//!
//! // The peer's decoder, with the default 4096-byte table.
//! let mut decoder = Decoder::new(4096);
//! let fields = decoder.decode(&block)?;
//! assert_eq!(fields, request);
//!
//! // The second time, indexed fields take one byte each.
//! let mut again = Vec::new();
//! encoder.encode(&request, &mut again);
//! assert!(again.len() < block.len() / 2);
//! assert_eq!(decoder.decode(&again)?, request);
//! # Ok::<(), tether_h2::hpack::Error>(())
//! ```

mod decoder;
mod encoder;
pub mod huffman;
mod huffman_table;
pub mod integer;
mod table;

use std::fmt;

pub use decoder::{DEFAULT_MAX_HEADER_LIST_SIZE, Decoder};
pub use encoder::Encoder;

/// The initial value of SETTINGS_HEADER_TABLE_SIZE (RFC 9113 section
/// 6.5.2): the dynamic table size both sides start with.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One header field: a name, a value and whether it must never be indexed.
///
/// `never_indexed` (RFC 7541 section 7.1.3) marks a sensitive field, such as
/// a short secret that compression could reveal to an attacker who can
/// guess it. The encoder sends such a field as a literal that no
/// intermediary may add to a table; the decoder sets the flag when it
/// receives one, so that a proxy forwarding the field keeps it protected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Field {
    /// The name; lowercase in HTTP/2 (checked above HPACK).
    pub name: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Sent, or to be sent, as a never-indexed literal.
    pub never_indexed: bool,
}

impl Field {
    /// A field the encoder may index.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
            never_indexed: false,
        }
    }

    /// A sensitive field: never indexed, by this encoder or any
    /// intermediary.
    pub fn sensitive(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Field {
        Field {
            never_indexed: true,
            ..Field::new(name, value)
        }
    }

    /// The size the field counts for in a header list (RFC 9113 section
    /// 6.5.2) and in a dynamic table (RFC 7541 section 4.1): the lengths of
    /// name and value plus 32.
    pub fn size(&self) -> usize {
        table::entry_size(&self.name, &self.value)
    }
}

/// Why a header block could not be decoded.
///
/// Every variant means the peer sent a block this decoder refuses. HPACK
/// state is shared by all the blocks of a connection, so after any of them
/// the decoder's table can no longer be trusted to match the peer's: the
/// connection must be closed with a connection error of type
/// COMPRESSION_ERROR (RFC 9113 section 4.3), and the decoder not used again.
/// That includes [`Error::HeaderListTooLarge`]: refusing the list without
/// decoding the rest of the block leaves the table behind the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The block ended inside a representation: in an integer, or before
    /// the end of a string whose length was announced.
    Truncated,
    /// An integer larger than `u32::MAX`, or with more than five
    /// continuation bytes (section 5.1).
    IntegerOverflow,
    /// A table index that is 0 or past the end of the dynamic table
    /// (section 2.3.3).
    InvalidIndex(usize),
    /// A Huffman-coded string contains the EOS symbol (section 5.2).
    HuffmanEos,
    /// A Huffman-coded string ends with more than 7 bits of padding, or with
    /// padding that is not all ones (section 5.2).
    HuffmanPadding,
    /// A dynamic table size update above the limit this decoder announced
    /// (section 6.3).
    TableSizeTooLarge {
        /// The size asked for.
        size: usize,
        /// The limit (SETTINGS_HEADER_TABLE_SIZE as announced).
        max: usize,
    },
    /// A dynamic table size update after the first field of a block
    /// (section 4.2).
    LateTableSizeUpdate,
    /// The limit was lowered below the table's size, and the next block did
    /// not start with the size update that must follow (section 4.2).
    MissingTableSizeUpdate,
    /// The decoded header list would be larger than the decoder's
    /// maximum header list size, counting 32 bytes per field beside name and
    /// value (RFC 9113 section 6.5.2).
    HeaderListTooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated => f.write_str("hpack: header block ends inside a representation"),
            Error::IntegerOverflow => f.write_str("hpack: integer too large"),
            Error::InvalidIndex(i) => write!(f, "hpack: invalid table index {i}"),
            Error::HuffmanEos => f.write_str("hpack: EOS inside a Huffman-coded string"),
            Error::HuffmanPadding => f.write_str("hpack: invalid Huffman padding"),
            Error::TableSizeTooLarge { size, max } => {
                write!(
                    f,
                    "hpack: dynamic table size update to {size}, above the limit {max}"
                )
            }
            Error::LateTableSizeUpdate => f.write_str("hpack: dynamic table size update after a field"),
            Error::MissingTableSizeUpdate => {
                f.write_str("hpack: header block does not start with the required table size update")
            }
            Error::HeaderListTooLarge => f.write_str("hpack: header list too large"),
        }
    }
}

impl std::error::Error for Error {}
