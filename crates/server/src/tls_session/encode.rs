//! rustls' unbuffered output (handshake messages, alerts, TLS 1.2
//! records) into buffers that grow to the size it asks for.

use std::io;

use rustls::server::ServerConnectionData;
use rustls::unbuffered::{EncodeError, EncryptError, InsufficientSizeError, WriteTraffic};

/// Records' overhead per 16 KiB of plaintext, a generous estimate (TLS 1.2
/// with AES-GCM needs 29 bytes: header, explicit nonce and tag); rustls
/// says how much it needs when this is short.
const OVERHEAD_PER_RECORD: usize = 64;

/// Encrypts `plaintext` into `sealed` in rustls' records: how many bytes
/// of `sealed` they took.
pub(super) fn encrypt(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    plaintext: &[u8],
    sealed: &mut Vec<u8>,
) -> io::Result<usize> {
    let records = plaintext.len() / (16 * 1024) + 1;
    let mut room = plaintext.len() + records * OVERHEAD_PER_RECORD;
    for _ in 0..2 {
        if sealed.len() < room {
            sealed.resize(room, 0);
        }
        match traffic.encrypt(plaintext, sealed) {
            Ok(n) => return Ok(n),
            Err(EncryptError::InsufficientSize(size)) => room = size.required_size,
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
    Err(io::Error::other("TLS records larger than rustls said"))
}

/// Why an encoding into a buffer did not happen.
pub(super) enum SizeOrError {
    /// The buffer was too short: it needs this much.
    Size(InsufficientSizeError),
    Error(io::Error),
}

impl From<EncodeError> for SizeOrError {
    fn from(e: EncodeError) -> SizeOrError {
        match e {
            EncodeError::InsufficientSize(size) => SizeOrError::Size(size),
            other => SizeOrError::Error(io::Error::other(other.to_string())),
        }
    }
}

impl From<EncryptError> for SizeOrError {
    fn from(e: EncryptError) -> SizeOrError {
        match e {
            EncryptError::InsufficientSize(size) => SizeOrError::Size(size),
            other => SizeOrError::Error(io::Error::other(other.to_string())),
        }
    }
}

/// Appends what `encode` writes to `out`, growing it to the size rustls
/// asks for when short.
pub(super) fn encode_into<E: Into<SizeOrError>>(
    out: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<usize> {
    let held = out.len();
    let mut room = 4 * 1024;
    for _ in 0..2 {
        out.resize(held + room, 0);
        match encode(out.get_mut(held..).unwrap_or_default()).map_err(Into::into) {
            Ok(n) => {
                out.truncate(held + n);
                return Ok(n);
            }
            Err(SizeOrError::Size(size)) => room = size.required_size,
            Err(SizeOrError::Error(e)) => {
                out.truncate(held);
                return Err(e);
            }
        }
    }
    out.truncate(held);
    Err(io::Error::other("TLS record larger than rustls said"))
}
