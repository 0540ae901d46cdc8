//! WebSocket frame codec (RFC 6455): frame headers, masking, opcodes, close
//! codes and incremental UTF-8 validation.
//!
//! This crate has no dependencies, does no I/O and works in `no_std` with
//! `alloc`. It is the bottom layer of tether: `tether-ws` builds the
//! connection state machine on it, and the server uses it directly to encode
//! a broadcast frame once for every subscriber.
//!
//! Decoding is incremental and strict: "need more bytes" is
//! [`Status::Partial`], never an error, while anything RFC 6455 forbids is
//! an [`Error`] that carries the close code to answer with.
//!
//! ```
//! use tether_frame::{encode_frame, DecodeRules, FrameDecoder, FrameHeader, Item, OpCode};
//!
//! // A client masks; a server decodes and checks that it did.
//! let mut wire = Vec::new();
//! let header = FrameHeader::new(true, OpCode::Binary, 0).with_mask([1, 2, 3, 4]);
//! encode_frame(&mut wire, header, &[10, 20, 30])?;
//!
//! let mut decoder = FrameDecoder::new(DecodeRules::server());
//! let (used, item) = decoder.decode(&wire)?;
//! let Some(Item::Header(h)) = item else { unreachable!() };
//! assert_eq!((h.opcode, h.payload_len), (OpCode::Binary, 3));
//! let (_, item) = decoder.decode(&wire[used..])?;
//! let Some(Item::Payload { data, offset, last: true }) = item else { unreachable!() };
//! let mut payload = data.to_vec();
//! tether_frame::apply_mask(&mut payload, h.mask.unwrap(), offset as usize);
//! assert_eq!(payload, [10, 20, 30]);
//! # Ok::<(), tether_frame::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod close;
mod error;
mod header;
mod mask;
mod opcode;
mod utf8;

pub use close::{CloseCode, MAX_CLOSE_REASON, encode_close_payload, parse_close_payload};
pub use error::Error;
pub use header::{
    DecodeRules, FrameDecoder, FrameHeader, FrameReader, HeaderBytes, Item, MAX_HEADER_LEN, MaskRule, Rsv,
    Status, decode_header, encode_frame,
};
pub use mask::apply_mask;
pub use opcode::OpCode;
pub use utf8::{Utf8Validator, str_from_utf8};
