//! Frame opcodes (RFC 6455 section 5.2).

/// The opcode of a frame: what its payload means.
///
/// Only the six opcodes RFC 6455 defines exist here; the reserved values
/// (0x3-0x7 and 0xB-0xF) are refused by [`OpCode::from_u8`], so a decoded
/// frame can never carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// A continuation of a fragmented data message (0x0).
    Continuation,
    /// The first (or only) frame of a UTF-8 text message (0x1).
    Text,
    /// The first (or only) frame of a binary message (0x2).
    Binary,
    /// A close frame (0x8).
    Close,
    /// A ping frame (0x9).
    Ping,
    /// A pong frame (0xA).
    Pong,
}

impl OpCode {
    /// Maps the low four bits of a frame's first byte to an opcode, or
    /// `None` for a reserved value.
    ///
    /// ```
    /// use tether_frame::OpCode;
    /// assert_eq!(OpCode::from_u8(0x1), Some(OpCode::Text));
    /// assert_eq!(OpCode::from_u8(0x3), None);
    /// ```
    #[inline]
    pub const fn from_u8(value: u8) -> Option<OpCode> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The four-bit wire value.
    #[inline]
    pub const fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames (close, ping, pong) may not be fragmented and carry
    /// at most 125 payload bytes.
    #[inline]
    pub const fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }

    /// Text, binary or continuation.
    #[inline]
    pub const fn is_data(self) -> bool {
        !self.is_control()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_maps_back_or_is_reserved() {
        for v in 0u8..16 {
            match OpCode::from_u8(v) {
                Some(op) => assert_eq!(op.as_u8(), v),
                None => assert!(matches!(v, 0x3..=0x7 | 0xB..=0xF), "{v:#x}"),
            }
        }
    }

    #[test]
    fn control_and_data_split_at_bit_three() {
        assert!(OpCode::Close.is_control() && OpCode::Ping.is_control() && OpCode::Pong.is_control());
        assert!(OpCode::Text.is_data() && OpCode::Binary.is_data() && OpCode::Continuation.is_data());
    }
}
