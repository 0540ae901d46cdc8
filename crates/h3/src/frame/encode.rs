//! Writing frames.

use super::{DATA, Frame, is_http2_frame_type, is_known_frame_type};
use crate::error::Misuse;
use crate::varint;

/// The payload length as a varint: lengths of a `usize` always fit.
fn len_of(payload: usize) -> u64 {
    u64::try_from(payload).unwrap_or(u64::MAX)
}

/// Appends a frame header (type and length) to `dst`.
fn header(frame_type: u64, len: u64, dst: &mut Vec<u8>) -> Result<(), Misuse> {
    varint::encode(frame_type, dst)?;
    varint::encode(len, dst)
}

/// Appends the header of a DATA frame whose `len` payload bytes the caller
/// sends next (so that the payload need not be copied).
pub fn encode_data_header(len: u64, dst: &mut Vec<u8>) -> Result<(), Misuse> {
    header(DATA, len, dst)
}

/// Appends a whole DATA frame.
pub fn encode_data(payload: &[u8], dst: &mut Vec<u8>) -> Result<(), Misuse> {
    encode_data_header(len_of(payload.len()), dst)?;
    dst.extend_from_slice(payload);
    Ok(())
}

/// Appends a frame of a type this crate does not define, such as a
/// reserved type for greasing (RFC 9114 §7.2.8). Known types, and those
/// HTTP/2 reserves, are refused.
pub fn encode_unknown(frame_type: u64, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), Misuse> {
    if is_known_frame_type(frame_type) || is_http2_frame_type(frame_type) {
        return Err(Misuse::KnownFrameType(frame_type));
    }
    header(frame_type, len_of(payload.len()), dst)?;
    dst.extend_from_slice(payload);
    Ok(())
}

impl Frame {
    /// Appends the frame, header and payload, to `dst`. On an error `dst`
    /// is left as it was.
    pub fn encode(&self, dst: &mut Vec<u8>) -> Result<(), Misuse> {
        let mut payload = Vec::new();
        match self {
            Frame::Headers(section) => payload.extend_from_slice(section),
            Frame::CancelPush(id) | Frame::Goaway(id) | Frame::MaxPushId(id) => {
                varint::encode(*id, &mut payload)?;
            }
            Frame::Settings(settings) => settings.encode_payload(&mut payload)?,
            Frame::PushPromise {
                push_id,
                field_section,
            } => {
                varint::encode(*push_id, &mut payload)?;
                payload.extend_from_slice(field_section);
            }
        }
        let mut head = Vec::with_capacity(16);
        header(self.frame_type(), len_of(payload.len()), &mut head)?;
        dst.extend_from_slice(&head);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}
