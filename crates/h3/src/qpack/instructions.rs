//! The instructions of QPACK's two streams (RFC 9204 §4.3 and §4.4).
//!
//! Encoder instructions (peer's encoder to our decoder) are parsed here
//! and applied by the decoder; decoder instructions are written by our
//! decoder and parsed for our encoder.

use super::literal::{StringLimits, read_int, read_string, write_int};
use crate::error::Violation;

/// An instruction on the encoder stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EncoderInstruction {
    /// Set Dynamic Table Capacity (§4.3.1).
    SetCapacity(u64),
    /// Insert with Name Reference (§4.3.2): a static index, or a dynamic
    /// one relative to the newest entry.
    InsertWithNameRef {
        is_static: bool,
        index: u64,
        value: Vec<u8>,
    },
    /// Insert with Literal Name (§4.3.3).
    InsertWithLiteralName { name: Vec<u8>, value: Vec<u8> },
    /// Duplicate (§4.3.4), relative to the newest entry.
    Duplicate(u64),
}

/// Parses the instruction at the start of `src`: it and the bytes it
/// took. [`Violation::QpackTruncated`] means `src` ends inside it.
pub(crate) fn parse_encoder_instruction(
    src: &[u8],
    limits: StringLimits,
) -> Result<(EncoderInstruction, usize), Violation> {
    let first = *src.first().ok_or(Violation::QpackTruncated)?;
    let mut pos = 0;
    let instruction = if first & 0x80 != 0 {
        let index = read_int(src, &mut pos, 6)?;
        let value = read_string(src, &mut pos, 7, limits)?;
        EncoderInstruction::InsertWithNameRef {
            is_static: first & 0x40 != 0,
            index,
            value,
        }
    } else if first & 0x40 != 0 {
        let name = read_string(src, &mut pos, 5, limits)?;
        let value = read_string(src, &mut pos, 7, limits)?;
        EncoderInstruction::InsertWithLiteralName { name, value }
    } else if first & 0x20 != 0 {
        EncoderInstruction::SetCapacity(read_int(src, &mut pos, 5)?)
    } else {
        EncoderInstruction::Duplicate(read_int(src, &mut pos, 5)?)
    };
    Ok((instruction, pos))
}

/// Appends a Section Acknowledgment (§4.4.1) for `stream_id`.
pub fn section_acknowledgment(stream_id: u64, dst: &mut Vec<u8>) {
    write_int(dst, 7, 0x80, stream_id);
}

/// Appends a Stream Cancellation (§4.4.2) for `stream_id`.
pub fn stream_cancellation(stream_id: u64, dst: &mut Vec<u8>) {
    write_int(dst, 6, 0x40, stream_id);
}

/// Appends an Insert Count Increment (§4.4.3) of `increment` (never 0).
pub fn insert_count_increment(increment: u64, dst: &mut Vec<u8>) {
    write_int(dst, 6, 0x00, increment);
}

/// An instruction on the decoder stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderInstruction {
    /// Section Acknowledgment for a stream.
    SectionAcknowledgment(u64),
    /// Stream Cancellation for a stream.
    StreamCancellation(u64),
    /// Insert Count Increment.
    InsertCountIncrement(u64),
}

/// Parses the decoder instruction at the start of `src`: it and the bytes
/// it took. [`Violation::QpackTruncated`] means `src` ends inside it.
pub(crate) fn parse_decoder_instruction(src: &[u8]) -> Result<(DecoderInstruction, usize), Violation> {
    let first = *src.first().ok_or(Violation::QpackTruncated)?;
    let mut pos = 0;
    let instruction = if first & 0x80 != 0 {
        DecoderInstruction::SectionAcknowledgment(read_int(src, &mut pos, 7)?)
    } else if first & 0x40 != 0 {
        DecoderInstruction::StreamCancellation(read_int(src, &mut pos, 6)?)
    } else {
        DecoderInstruction::InsertCountIncrement(read_int(src, &mut pos, 6)?)
    };
    Ok((instruction, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: StringLimits = StringLimits {
        max_wire: 1024,
        max_decoded: 1024,
    };

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_appendix_b_encoder_instructions() {
        assert_eq!(
            parse_encoder_instruction(&hex("3fbd01"), ROOMY),
            Ok((EncoderInstruction::SetCapacity(220), 3))
        );
        let wire = hex("c00f 7777 772e 6578 616d 706c 652e 636f 6d");
        assert_eq!(
            parse_encoder_instruction(&wire, ROOMY),
            Ok((
                EncoderInstruction::InsertWithNameRef {
                    is_static: true,
                    index: 0,
                    value: b"www.example.com".to_vec()
                },
                wire.len()
            ))
        );
        let wire = hex("4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565");
        assert_eq!(
            parse_encoder_instruction(&wire, ROOMY),
            Ok((
                EncoderInstruction::InsertWithLiteralName {
                    name: b"custom-key".to_vec(),
                    value: b"custom-value".to_vec()
                },
                wire.len()
            ))
        );
        assert_eq!(
            parse_encoder_instruction(&hex("02"), ROOMY),
            Ok((EncoderInstruction::Duplicate(2), 1))
        );
        let wire = hex("810d 6375 7374 6f6d 2d76 616c 7565 32");
        assert_eq!(
            parse_encoder_instruction(&wire, ROOMY),
            Ok((
                EncoderInstruction::InsertWithNameRef {
                    is_static: false,
                    index: 1,
                    value: b"custom-value2".to_vec()
                },
                wire.len()
            ))
        );
        for cut in 0..wire.len() {
            assert_eq!(
                parse_encoder_instruction(&wire[..cut], ROOMY),
                Err(Violation::QpackTruncated)
            );
        }
    }

    #[test]
    fn rfc_appendix_b_decoder_instructions() {
        let mut out = Vec::new();
        section_acknowledgment(4, &mut out);
        insert_count_increment(1, &mut out);
        stream_cancellation(8, &mut out);
        assert_eq!(out, [0x84, 0x01, 0x48]);
        let mut rest = &out[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            let (instruction, n) = parse_decoder_instruction(rest).unwrap();
            got.push(instruction);
            rest = &rest[n..];
        }
        assert_eq!(
            got,
            [
                DecoderInstruction::SectionAcknowledgment(4),
                DecoderInstruction::InsertCountIncrement(1),
                DecoderInstruction::StreamCancellation(8)
            ]
        );
        assert_eq!(parse_decoder_instruction(&[0xff]), Err(Violation::QpackTruncated));
    }
}
