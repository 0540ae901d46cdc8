//! One message compressed once and sent as it is to many connections
//! (fan-out): a whole server-to-client frame, compressed with a fresh
//! window, valid on every connection whose server does not keep context.

use tether_frame::{FrameHeader, OpCode, Rsv};

use crate::codec::{Key, compress_into, return_compressor, take_compressor};
use crate::params::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};

/// The compression level of shared frames: the fastest, as
/// [`DeflateConfig`](crate::negotiate::DeflateConfig)'s default.
const LEVEL: u8 = 1;

/// Compresses one whole message on its own (a fresh LZ77 window, sync
/// flush, its `00 00 ff ff` tail removed: RFC 7692 section 7.2.1) and
/// returns it as one unmasked, final frame with RSV1 set (server to
/// client), or `None` when the compressed payload is not smaller than
/// `payload` (send the plain frame instead: on a permessage-deflate
/// connection a message may go uncompressed).
///
/// Such a frame refers to nothing sent before it, so any number of
/// connections can be sent the same bytes, provided that on each of them
/// the server compresses without context takeover (the response carried
/// `server_no_context_takeover`: [`Params::server_no_context_takeover`](crate::params::Params::server_no_context_takeover))
/// and `server_max_window_bits` is at least [`window_bits_for`] of the
/// payload's length. Where the server keeps context, its own compressor
/// would not know of the message the peer's window now holds: send the
/// plain frame there.
///
/// ```
/// use std::time::Instant;
/// use tether_deflate::{Deflate, Params, Role, shared_frame};
/// use tether_ws::{Config, Connection, Event, Message, OpCode};
///
/// let text = "{\"event\":\"tick\",\"data\":\"".to_owned() + &"tock ".repeat(40) + "\"}";
/// let frame = shared_frame(OpCode::Text, text.as_bytes()).expect("smaller than the text");
/// assert_eq!(frame[0], 0xC1, "FIN, RSV1 (compressed), text");
///
/// // Any client that agreed on permessage-deflate reads it.
/// let now = Instant::now();
/// let params = Params { server_no_context_takeover: true, ..Params::default() };
/// let mut client = Connection::new(tether_ws::Role::Client(Box::new(|| [0; 4])), Config::default(), now)
///     .with_extension(Box::new(Deflate::new(Role::Client, params)));
/// let (used, event) = client.receive(&frame, now, &mut Vec::new());
/// assert_eq!(used, frame.len());
/// assert_eq!(event, Some(Event::Message(Message::text(text))));
/// ```
pub fn shared_frame(opcode: OpCode, payload: &[u8]) -> Option<Vec<u8>> {
    let key = Key::new(MAX_WINDOW_BITS, LEVEL);
    let mut compressor = take_compressor(key);
    let mut compressed = Vec::new();
    let result = compress_into(&mut compressor, payload, &mut compressed);
    return_compressor(key, compressor);
    if result.is_err() || compressed.len() >= payload.len() {
        return None;
    }
    let len = u64::try_from(compressed.len()).ok()?;
    let header = FrameHeader::new(true, opcode, len).with_rsv(Rsv::RSV1).to_bytes();
    let mut frame = Vec::with_capacity(header.len().checked_add(compressed.len())?);
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&compressed);
    Some(frame)
}

/// The smallest `server_max_window_bits` (8 to 15) under which a message
/// of `len` bytes compressed on its own is valid: its back-references
/// reach at most `len - 1` bytes, so a window of `len` bytes or more
/// holds them all; 15 for anything longer than 16 KiB, since a compressor
/// never refers further than the 32 KiB window RFC 7692 allows.
///
/// ```
/// use tether_deflate::window_bits_for;
///
/// assert_eq!(window_bits_for(0), 8);
/// assert_eq!(window_bits_for(256), 8);
/// assert_eq!(window_bits_for(257), 9);
/// assert_eq!(window_bits_for(1024), 10);
/// assert_eq!(window_bits_for(1 << 20), 15);
/// ```
pub fn window_bits_for(len: usize) -> u8 {
    (MIN_WINDOW_BITS..MAX_WINDOW_BITS)
        .find(|&bits| len <= 1usize << bits)
        .unwrap_or(MAX_WINDOW_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift bytes: nothing for deflate to find.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x9e37_79b9;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn inflate(frame: &[u8], server_bits: u8) -> Result<Vec<u8>, tether_ws::Error> {
        use std::time::Instant;
        use tether_ws::{Config, Connection, Event};
        let params = crate::params::Params {
            server_no_context_takeover: true,
            server_max_window_bits: server_bits,
            ..crate::params::Params::default()
        };
        let now = Instant::now();
        let mut client = Connection::new(
            tether_ws::Role::Client(Box::new(|| [0; 4])),
            Config::default(),
            now,
        )
        .with_extension(Box::new(crate::codec::Deflate::new(
            crate::codec::Role::Client,
            params,
        )));
        match client.receive(frame, now, &mut Vec::new()) {
            (_, Some(Event::Message(message))) => Ok(message.as_bytes().to_vec()),
            (_, Some(Event::Failed(e))) => Err(e),
            other => panic!("no message: {other:?}"),
        }
    }

    #[test]
    fn a_frame_inflates_to_the_message_and_stands_alone() {
        let json = br#"{"topic":"prices","id":"1-7","event":"quote","data":"{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.5}"}"#
            .repeat(12);
        let frame = shared_frame(OpCode::Text, &json).expect("repetitive JSON shrinks");
        assert_eq!(frame[0], 0xC1);
        assert!(frame.len() < json.len() / 3, "{} of {}", frame.len(), json.len());
        // Does not end with the sync flush's tail (it was removed).
        assert!(!frame.ends_with(&[0, 0, 0xff, 0xff]));
        assert_eq!(inflate(&frame, 15).unwrap(), json);
        // The same message twice gives the same bytes: no context carried
        // over from the first.
        assert_eq!(shared_frame(OpCode::Text, &json).unwrap(), frame);
    }

    #[test]
    fn a_message_that_does_not_shrink_is_not_compressed() {
        assert_eq!(shared_frame(OpCode::Text, b""), None);
        assert_eq!(shared_frame(OpCode::Text, b"hi"), None);
        assert_eq!(shared_frame(OpCode::Binary, &noise(600)), None);
    }

    #[test]
    fn long_frames_get_the_long_length_forms() {
        let big = "abcdefgh".repeat(100_000);
        let frame = shared_frame(OpCode::Binary, big.as_bytes()).unwrap();
        assert_eq!(frame[0], 0xC2);
        assert_eq!(frame[1], 126, "a 16-bit length");
        assert_eq!(inflate(&frame, 15).unwrap(), big.as_bytes());
    }

    /// Inflates a frame's payload with a raw inflater of `bits`, as a
    /// client that asked for `server_max_window_bits=bits` may.
    fn inflate_window(frame: &[u8], bits: u8) -> Option<Vec<u8>> {
        let header_len = match frame[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let mut input = frame[header_len..].to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut inflater = zlib_rs::Inflate::new(false, bits);
        // Output in small pieces, so that references go through the
        // inflater's window and not the output buffer.
        let mut out = Vec::new();
        let mut rest = &input[..];
        loop {
            let mut piece = [0u8; 64];
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            inflater
                .decompress(rest, &mut piece, zlib_rs::InflateFlush::SyncFlush)
                .ok()?;
            let written = usize::try_from(inflater.total_out() - out_before).unwrap();
            rest = &rest[usize::try_from(inflater.total_in() - in_before).unwrap()..];
            out.extend_from_slice(&piece[..written]);
            if rest.is_empty() && written < piece.len() {
                return Some(out);
            }
        }
    }

    #[test]
    fn a_short_message_fits_a_small_window() {
        // 400 bytes compressed alone never refer back 512 bytes or more, so
        // a client that asked for server_max_window_bits=9 reads them.
        let text = "0123456789abcdefghij".repeat(20);
        assert_eq!(window_bits_for(text.len()), 9);
        let frame = shared_frame(OpCode::Text, text.as_bytes()).unwrap();
        assert_eq!(inflate_window(&frame, 9).unwrap(), text.as_bytes());
        let letters: String = noise(1500).iter().map(|b| char::from(b'a' + b % 26)).collect();
        let far = format!("{letters}{}", &letters[..600]);
        assert_eq!(window_bits_for(far.len()), 12);
        let frame = shared_frame(OpCode::Text, far.as_bytes()).unwrap();
        assert_eq!(inflate_window(&frame, 12).unwrap(), far.as_bytes());
    }
}
