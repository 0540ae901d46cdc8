//! HTTP datagrams (RFC 9297 §2.1): a QUIC DATAGRAM frame's payload is the
//! Quarter Stream ID (the request stream's ID divided by four, as a
//! variable-length integer) followed by the HTTP datagram's payload.

use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::varint;

/// The largest Quarter Stream ID: a client bidirectional stream ID is at
/// most 2^62 - 1, so its quarter at most 2^60 - 1 (RFC 9297 §2.1).
pub const MAX_QUARTER_STREAM_ID: u64 = (1 << 60) - 1;

/// Splits a QUIC datagram's payload into the request stream ID it
/// belongs to and the HTTP datagram's payload. One that does not start
/// with a whole Quarter Stream ID, or whose ID is too large, is an
/// H3_DATAGRAM_ERROR, a connection error.
///
/// ```
/// use tether_h3::webtransport::datagram;
/// assert_eq!(datagram::decode(&[0x01, b'h', b'i'])?, (4, &b"hi"[..]));
/// # Ok::<(), tether_h3::Error>(())
/// ```
pub fn decode(payload: &[u8]) -> Result<(u64, &[u8]), Error> {
    let malformed = Error::new(ErrorCode::H3_DATAGRAM_ERROR, Violation::MalformedDatagram);
    let (quarter, used) = varint::decode(payload).ok_or(malformed)?;
    if quarter > MAX_QUARTER_STREAM_ID {
        return Err(malformed);
    }
    Ok((quarter * 4, payload.get(used..).unwrap_or_default()))
}

/// Appends the QUIC datagram payload carrying `payload` for request stream
/// `stream_id` (a client bidirectional stream: a multiple of four).
pub fn encode(stream_id: u64, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), Misuse> {
    varint::encode(stream_id / 4, dst)?;
    dst.extend_from_slice(payload);
    Ok(())
}

/// How many bytes a datagram for `stream_id` adds before its payload.
pub fn overhead(stream_id: u64) -> usize {
    varint::encoded_len(stream_id / 4).unwrap_or(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        for id in [0, 4, 256, 1 << 40, MAX_QUARTER_STREAM_ID * 4] {
            let mut wire = Vec::new();
            encode(id, b"payload", &mut wire).unwrap();
            assert_eq!(wire.len(), overhead(id) + 7);
            assert_eq!(decode(&wire).unwrap(), (id, &b"payload"[..]));
        }
        let mut empty = Vec::new();
        encode(8, b"", &mut empty).unwrap();
        assert_eq!(decode(&empty).unwrap(), (8, &b""[..]));
    }

    #[test]
    fn malformed_datagrams_are_connection_errors() {
        for bad in [&[][..], &[0x40][..], &[0xff; 8][..]] {
            let e = decode(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::H3_DATAGRAM_ERROR);
            assert_eq!(e.violation, Violation::MalformedDatagram);
        }
    }
}
