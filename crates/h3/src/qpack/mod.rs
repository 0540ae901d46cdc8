//! QPACK: field compression for HTTP/3 (RFC 9204).
//!
//! A [`Decoder`] keeps the dynamic table the peer's encoder fills through
//! its encoder stream, bounded by the capacity this endpoint advertised;
//! it decodes field sections, holds back those that refer to entries not
//! yet received (up to the number of blocked streams advertised), and
//! produces the decoder-stream bytes that acknowledge them. Every integer,
//! string length, index and size it reads is checked before use, and the
//! decoded section is measured as it grows.
//!
//! [`encode`] writes sections with the static table and literals only: it
//! never uses the peer's dynamic table, so it needs no encoder stream and
//! never blocks a stream. [`DecoderStreamReader`] checks the peer's decoder
//! stream against that.
//!
//! Prefixed integers and Huffman coding are HPACK's, shared with
//! `tether-h2`; fields are [`Field`]s as there, with `never_indexed`
//! standing for QPACK's N bit.

mod decoder;
mod encoder;
mod field_line;
mod instructions;
mod literal;
pub mod static_table;
mod table;

pub use decoder::{DEFAULT_MAX_FIELD_SECTION_SIZE, DEFAULT_MAX_STRING_LEN, Decoder, Section, Unblocked};
pub use encoder::{DecoderStreamReader, encode, field_section_size};
pub use instructions::{
    DecoderInstruction, insert_count_increment, section_acknowledgment, stream_cancellation,
};
pub use tether_h2::hpack::Field;
