//! The constants of RFC 6455 both sides share, and the
//! `Sec-WebSocket-Accept` value the server derives and the client checks.

use base64::Engine as _;
use sha1::Digest as _;

/// The GUID RFC 6455 section 1.3 appends to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only `Sec-WebSocket-Version` RFC 6455 defines, and the one this
/// crate speaks.
pub const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455
/// section 4.2.2): base64 of the SHA-1 of the key followed by
/// [`WEBSOCKET_GUID`]. Always 28 ASCII bytes.
///
/// ```
/// let accept = tether_handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let digest = sha1::Sha1::new()
        .chain_update(key)
        .chain_update(WEBSOCKET_GUID)
        .finalize();
    let mut out = [0u8; 28];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_rfc_examples() {
        // RFC 6455 sections 1.3 and 4.2.2; then the key section 4.1 item 7
        // builds from the bytes 1..=16, with its accept value computed
        // independently (Python's hashlib and base64).
        let cases: &[(&[u8], &[u8; 28])] = &[
            (b"dGhlIHNhbXBsZSBub25jZQ==", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            (b"AQIDBAUGBwgJCgsMDQ4PEA==", b"C/0nmHhBztSRGR1CwL6Tf4ZjwpY="),
        ];
        for (key, want) in cases {
            assert_eq!(&accept_key(key), *want);
        }
    }
}
