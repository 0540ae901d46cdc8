//! A request body arriving over several reads. Its request's head waits
//! alone in [`super::Requests::partial`]; the body is kept here, so that
//! each read costs what it brings and not what is already buffered.

use crate::server::body::{Gathered, gather};

/// A body still arriving, as its framing says.
pub(in crate::server) enum PendingBody {
    /// `Transfer-Encoding: chunked`: the decoder's state and what the body
    /// decoded to so far.
    Chunked {
        decoder: tether_http1::BodyDecoder,
        decoded: Vec<u8>,
        /// Bytes of the body on the wire so far, framing included.
        wire: usize,
    },
    /// `Content-Length: length`: the body's bytes so far.
    Length { body: Vec<u8>, length: usize },
}

impl PendingBody {
    /// A body of `length` bytes, of which `start` came with the head.
    pub(in crate::server) fn length(start: &[u8], length: usize) -> PendingBody {
        let mut body = Vec::new();
        let (now, _) = take_length(&mut body, start, length);
        debug_assert_eq!(now, start.len(), "a body begun with its head is not whole");
        PendingBody::Length { body, length }
    }
}

/// Appends to `body` what of `data` belongs to a body of `length` bytes:
/// how many bytes of `data` that was, and whether the body is whole. The
/// buffer grows by doubling, as a `Vec` would, but never past `length`
/// (which the head limits bound: at most the largest body).
pub(in crate::server) fn take_length(body: &mut Vec<u8>, data: &[u8], length: usize) -> (usize, bool) {
    let wanted = length.saturating_sub(body.len()).min(data.len());
    let piece = data.get(..wanted).unwrap_or_default();
    // Within `length` by construction, and no budget is shared here.
    let gathered = gather(body, piece, 0, length, usize::MAX);
    debug_assert_eq!(gathered, Gathered::Taken);
    (wanted, body.len() >= length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_body_takes_its_own_bytes_and_no_more() {
        let mut body = b"ab".to_vec();
        assert_eq!(take_length(&mut body, b"cd", 5), (2, false));
        assert_eq!(take_length(&mut body, b"eGET /", 5), (1, true));
        assert_eq!(body, b"abcde");
        assert_eq!(body.capacity(), 5, "never grown past the length");
        assert_eq!(take_length(&mut body, b"more", 5), (0, true));
        let PendingBody::Length { body, length } = PendingBody::length(b"xyz", 10) else {
            panic!("a length body");
        };
        assert_eq!((&body[..], length), (&b"xyz"[..], 10));
    }
}
