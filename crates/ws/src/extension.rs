//! The interface a WebSocket extension (such as permessage-deflate)
//! implements to transform message payloads.

use std::fmt;

use tether_frame::{CloseCode, OpCode, Rsv};

/// An extension's refusal of incoming data, with the close code to fail the
/// connection with (1002 for malformed data, 1009 when the decoded message
/// would exceed the limit, 1007 or others as the extension defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionError {
    /// The close code to send.
    pub code: CloseCode,
    /// A short reason, also sent in the close frame.
    pub reason: &'static str,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "extension: {} ({})", self.reason, self.code)
    }
}

/// A negotiated per-message extension.
///
/// The connection calls it for data messages only (control frames are
/// never transformed) and only for messages whose first frame carries one
/// of [`Extension::rsv`]'s bits.
pub trait Extension: Send {
    /// The RSV bits the extension owns. Frames with other RSV bits set are
    /// still protocol errors.
    fn rsv(&self) -> Rsv;

    /// Decodes the next piece of an incoming transformed message, appending
    /// the result to `out`.
    ///
    /// Pieces come in order, in whatever sizes they arrived;
    /// `end_of_message` is true on the last call for a message (its `input`
    /// may be empty). `out` may already hold earlier output of the same
    /// message; the extension must stop with an error (code 1009) before
    /// `out` would grow past `limit` bytes, so that a small message cannot
    /// expand beyond the limit in memory.
    fn decode(
        &mut self,
        input: &[u8],
        end_of_message: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ExtensionError>;

    /// Encodes an outgoing message payload by appending the encoded bytes
    /// to `out`, and returns the RSV bits to set on its first frame; or
    /// returns `None` to send this message unchanged (for example, one too
    /// small to be worth compressing), in which case whatever it appended is
    /// discarded.
    ///
    /// `out` is the connection's output buffer, with room for the frame
    /// header already set aside before the encoded bytes: the extension
    /// keeps no buffer of its own between messages, and the encoded payload
    /// is not copied again. Leave the bytes before `out.len()` alone.
    fn encode(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Rsv>, ExtensionError>;
}
