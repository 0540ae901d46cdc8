#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod close;
mod close_code;
mod error;
mod header;
mod mask;
mod opcode;
mod utf8;

pub use close::{MAX_CLOSE_REASON, encode_close_payload, parse_close_payload};
pub use close_code::CloseCode;
pub use error::Error;
pub use header::{
    DecodeRules, FrameDecoder, FrameHeader, FrameReader, HeaderBytes, Item, MAX_HEADER_LEN, MaskRule, Rsv,
    Status, decode_header, encode_frame,
};
pub use mask::apply_mask;
pub use opcode::OpCode;
pub use utf8::{Utf8Validator, str_from_utf8};
