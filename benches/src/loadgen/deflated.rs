//! Echo with permessage-deflate (`loadgen echo --deflate`): the message is
//! compressed once and the same frame sent every time; what the server
//! echoes is collected, inflated when it came compressed, and checked.

use std::io;

use tether_deflate::Deflate;
use tether_frame::{FrameHeader, OpCode, encode_frame};
use tether_ws::Extension;

use super::conn::Conn;
use super::echoes::{Options, end_problem};
use super::messages::write_message;
use super::wire::{self, Event};

/// The payload of a deflate echo: text of a made-up JSON feed (about 3 to
/// 1 with deflate, as such feeds are), not the repeating alphabet of the
/// plain echo, which deflate shrinks to almost nothing.
pub fn payload(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    write_message(&mut out, 1, 0, size, true);
    out
}

/// The frame every message goes in: `body` compressed by the first
/// connection's compressor, which has compressed nothing before, so the
/// bytes stand alone and suit every connection (a client may always
/// compress without context, whatever was agreed). A body the compressor
/// leaves plain (below its minimum size, or not smaller compressed) goes
/// plain. Returns the frame and the payload's size on the wire.
pub fn frame(conns: &mut [Conn], opcode: OpCode, body: &[u8]) -> io::Result<(Vec<u8>, usize)> {
    if let Some(i) = conns.iter().position(|c| c.deflate.is_none()) {
        return Err(io::Error::other(format!(
            "connection {i}: the server did not accept permessage-deflate"
        )));
    }
    let Some(deflate) = conns.first_mut().and_then(|c| c.deflate.as_deref_mut()) else {
        return Ok((wire::frame(opcode, body), body.len()));
    };
    let mut compressed = Vec::with_capacity(body.len());
    let rsv = deflate
        .encode(opcode, body, &mut compressed)
        .map_err(|e| io::Error::other(format!("compressing the message: {}", e.reason)))?;
    let Some(rsv) = rsv else {
        return Ok((wire::frame(opcode, body), body.len()));
    };
    let header = FrameHeader::new(true, opcode, compressed.len() as u64)
        .with_mask(wire::MASK)
        .with_rsv(rsv);
    let mut out = Vec::with_capacity(compressed.len() + 14);
    encode_frame(&mut out, header, &compressed).map_err(|e| io::Error::other(format!("{e:?}")))?;
    Ok((out, compressed.len()))
}

/// A connection's echo being read: its bytes as they came, then inflated.
#[derive(Debug, Default)]
pub struct Collect {
    message: Vec<u8>,
    inflated: Vec<u8>,
}

/// Feeds bytes of one connection through its reader: returns how many
/// echoes they completed (each inflated if it came compressed, then
/// checked as `echoes::take_echoes` checks a plain
/// one), sets `mismatch` if verified bytes differ, and appends pongs to
/// `pong`.
#[allow(clippy::too_many_arguments)]
pub fn take_echoes(
    reader: &mut wire::EventReader,
    mut deflate: Option<&mut Deflate>,
    collect: &mut Collect,
    bytes: &[u8],
    mismatch: &mut bool,
    body: &[u8],
    opts: &Options,
    pong: &mut Vec<u8>,
) -> io::Result<u32> {
    let mut done = 0u32;
    let mut bad: Option<String> = None;
    let Collect { message, inflated } = collect;
    reader
        .feed(bytes, &mut |event| match event {
            Event::Data { chunk, .. } => message.extend_from_slice(chunk),
            Event::End { text, compressed, .. } => {
                let plain: &[u8] = if compressed {
                    inflated.clear();
                    // Twice the body is room enough to tell a too-long echo.
                    let limit = body.len().saturating_mul(2).max(64);
                    match deflate.as_deref_mut() {
                        Some(d) => {
                            if let Err(e) = d.decode(message, true, inflated, limit) {
                                bad.get_or_insert(format!("inflating an echo: {}", e.reason));
                            }
                        }
                        None => {
                            bad.get_or_insert("a compressed echo without permessage-deflate".to_owned());
                        }
                    }
                    inflated
                } else {
                    message
                };
                if let Some(why) = end_problem(text, plain.len() as u64, body, opts) {
                    bad.get_or_insert(why);
                }
                if opts.verify && plain != body {
                    *mismatch = true;
                }
                done += 1;
                message.clear();
            }
            Event::Ping(payload) => wire::push_frame(pong, OpCode::Pong, payload),
            Event::Pong => {}
            Event::Close(code) => {
                bad.get_or_insert(format!("close frame from the server: {code:?}"));
            }
        })
        .map_err(io::Error::other)?;
    match bad {
        Some(why) => Err(io::Error::other(why)),
        None => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use tether_deflate::{ClientOffer, DeflateConfig, Params};

    use super::*;
    use crate::loadgen::echoes::test_options;

    /// `body` as a server sends it with permessage-deflate: compressed,
    /// RSV1, unmasked, cut into `pieces` frames.
    fn server_frames(server: &mut Deflate, body: &[u8], pieces: usize) -> Vec<u8> {
        let mut compressed = Vec::new();
        let rsv = server
            .encode(OpCode::Text, body, &mut compressed)
            .unwrap()
            .unwrap();
        let step = compressed.len().div_ceil(pieces);
        let mut out = Vec::new();
        for (i, chunk) in compressed.chunks(step).enumerate() {
            let opcode = if i == 0 {
                OpCode::Text
            } else {
                OpCode::Continuation
            };
            let last = (i + 1) * step >= compressed.len();
            let mut header = FrameHeader::new(last, opcode, chunk.len() as u64);
            if i == 0 {
                header = header.with_rsv(rsv);
            }
            encode_frame(&mut out, header, chunk).unwrap();
        }
        out
    }

    fn pair() -> (Deflate, Deflate) {
        let params = Params::default();
        (
            DeflateConfig::new().extension(params),
            ClientOffer::new().extension(params),
        )
    }

    #[test]
    fn compressed_echoes_are_inflated_and_checked_however_they_arrive() {
        let body = payload(1024);
        assert_eq!(body.len(), 1024);
        let (mut server, mut client) = pair();
        let opts = test_options(1024, true);
        for pieces in [1, 3] {
            let wire = server_frames(&mut server, &body, pieces);
            assert!(wire.len() < body.len(), "the feed text compresses");
            for split in [1, 7, wire.len() / 2, wire.len()] {
                let (mut reader, mut collect) = (wire::EventReader::new(), Collect::default());
                let (mut mismatch, mut pong, mut done) = (false, Vec::new(), 0);
                for part in wire.chunks(split) {
                    done += take_echoes(
                        &mut reader,
                        Some(&mut client),
                        &mut collect,
                        part,
                        &mut mismatch,
                        &body,
                        &opts,
                        &mut pong,
                    )
                    .unwrap();
                }
                assert_eq!((done, mismatch), (1, false), "{pieces} frames, reads of {split}");
            }
        }
    }

    /// One read of `wire` by a fresh reader: the echoes it completed, and
    /// whether a verified byte differed.
    fn take_all(wire: &[u8], deflate: Option<&mut Deflate>, body: &[u8]) -> io::Result<(u32, bool)> {
        let (mut mismatch, mut pong) = (false, Vec::new());
        let opts = test_options(body.len(), true);
        let mut collect = Collect::default();
        let mut reader = wire::EventReader::new();
        let done = take_echoes(
            &mut reader,
            deflate,
            &mut collect,
            wire,
            &mut mismatch,
            body,
            &opts,
            &mut pong,
        )?;
        Ok((done, mismatch))
    }

    #[test]
    fn a_wrong_or_uncompressible_echo_is_found() {
        let body = payload(1024);
        let (mut server, mut client) = pair();
        // Other bytes of the same length: a mismatch.
        let mut other = body.clone();
        other[500] ^= 1;
        let wire = server_frames(&mut server, &other, 1);
        assert_eq!(take_all(&wire, Some(&mut client), &body).unwrap(), (1, true));
        // A compressed message without permessage-deflate: an error.
        let wire = server_frames(&mut server, &body, 1);
        let err = take_all(&wire, None, &body).unwrap_err();
        assert!(err.to_string().contains("without permessage-deflate"), "{err}");
        // Not deflate data at all: an error, not a panic.
        let mut bad = Vec::new();
        let header = FrameHeader::new(true, OpCode::Text, 4).with_rsv(tether_frame::Rsv::RSV1);
        encode_frame(&mut bad, header, &[0xff; 4]).unwrap();
        let err = take_all(&bad, Some(&mut client), &body).unwrap_err();
        assert!(err.to_string().contains("inflating"), "{err}");
    }
}
