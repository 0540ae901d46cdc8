//! Close frame payloads (RFC 6455 sections 5.5.1 and 7.4).

use crate::close_code::CloseCode;
use crate::error::Error;

/// The most bytes a close reason can have: a control frame's 125, less the
/// two of the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// Parses a (unmasked) close frame payload.
///
/// An empty payload is `Ok(None)`: the peer gave no code. Otherwise the code
/// must be sendable and the reason valid UTF-8.
///
/// ```
/// use tether_frame::{parse_close_payload, CloseCode, Error};
/// assert_eq!(parse_close_payload(b""), Ok(None));
/// assert_eq!(parse_close_payload(b"\x03\xe8bye"), Ok(Some((CloseCode::NORMAL, "bye"))));
/// assert_eq!(parse_close_payload(b"\x03"), Err(Error::TruncatedClosePayload));
/// assert_eq!(parse_close_payload(b"\x03\xed"), Err(Error::InvalidCloseCode(1005)));
/// ```
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(CloseCode, &str)>, Error> {
    match payload {
        [] => Ok(None),
        [_] => Err(Error::TruncatedClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(Error::InvalidCloseCode(code.0));
            }
            let reason = core::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// Appends a close payload (code, then reason) to `out`.
///
/// Refuses, with `out` untouched, a code that may not be sent and a reason
/// over [`MAX_CLOSE_REASON`] bytes.
pub fn encode_close_payload(
    out: &mut alloc::vec::Vec<u8>,
    code: CloseCode,
    reason: &str,
) -> Result<(), Error> {
    if !code.is_sendable() {
        return Err(Error::InvalidCloseCode(code.0));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::CloseReasonTooLong(reason.len()));
    }
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(Error::InvalidUtf8));
        assert_eq!(
            parse_close_payload("\u{3}\u{e8}κόσμε".as_bytes()),
            Err(Error::InvalidCloseCode(0x03c3))
        );
        let mut payload = alloc::vec![0x0f, 0xa0];
        payload.extend_from_slice("κόσμε".as_bytes());
        assert_eq!(
            parse_close_payload(&payload),
            Ok(Some((CloseCode(4000), "κόσμε")))
        );
    }

    #[test]
    fn encode_round_trips_and_refuses_bad_input() {
        let mut out = alloc::vec::Vec::new();
        encode_close_payload(&mut out, CloseCode::GOING_AWAY, "bye").unwrap();
        assert_eq!(
            parse_close_payload(&out),
            Ok(Some((CloseCode::GOING_AWAY, "bye")))
        );
        let mut untouched = alloc::vec::Vec::new();
        assert_eq!(
            encode_close_payload(&mut untouched, CloseCode::NO_STATUS, ""),
            Err(Error::InvalidCloseCode(1005))
        );
        let long = "x".repeat(124);
        assert_eq!(
            encode_close_payload(&mut untouched, CloseCode::NORMAL, &long),
            Err(Error::CloseReasonTooLong(124))
        );
        assert!(untouched.is_empty());
    }
}
