//! Helpers shared by the connection tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use tether_frame::{FrameHeader, OpCode, Rsv, encode_frame};
use tether_ws::{Config, Connection, Event, Incoming, Role};

/// A deterministic mask source for client connections in tests.
pub fn counting_masks() -> tether_ws::MaskSource {
    let mut n: u32 = 0x1234_5678;
    Box::new(move || {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        n.to_be_bytes()
    })
}

pub fn server(config: Config, now: Instant) -> Connection {
    Connection::new(Role::Server, config, now)
}

pub fn client(config: Config, now: Instant) -> Connection {
    Connection::new(Role::Client(counting_masks()), config, now)
}

/// Feeds `input` in pieces of `piece` bytes, collecting every event and
/// every byte written in reply.
pub fn feed(conn: &mut Connection, input: &[u8], piece: usize, now: Instant) -> (Vec<Event>, Vec<u8>) {
    let mut events = Vec::new();
    let mut out = Vec::new();
    for mut chunk in input.chunks(piece.max(1)) {
        while !chunk.is_empty() {
            let (used, event) = conn.receive(chunk, now, &mut out);
            assert!(used > 0 || event.is_some(), "receive made no progress");
            chunk = &chunk[used..];
            events.extend(event);
        }
    }
    (events, out)
}

/// As [`feed`], through [`Connection::receive_in_place`] (on a copy of
/// the input): borrowed messages are made owned events, and counted.
pub fn feed_in_place(
    conn: &mut Connection,
    input: &[u8],
    piece: usize,
    now: Instant,
) -> (Vec<Event>, Vec<u8>, usize) {
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut borrowed = 0;
    let mut input = input.to_vec();
    for chunk in input.chunks_mut(piece.max(1)) {
        let mut chunk = &mut chunk[..];
        while !chunk.is_empty() {
            let (used, incoming) = conn.receive_in_place(chunk, now, &mut out);
            assert!(used > 0 || incoming.is_some(), "receive made no progress");
            match incoming {
                Some(Incoming::Borrowed(message)) => {
                    borrowed += 1;
                    events.push(Event::Message(message.to_owned()));
                }
                Some(Incoming::Event(event)) => events.push(event),
                None => {}
            }
            chunk = &mut chunk[used..];
        }
    }
    (events, out, borrowed)
}

/// Feeds `input` whole, one byte at a time and in odd pieces (a fresh
/// connection each time), with [`Connection::receive`] and with
/// [`Connection::receive_in_place`]; asserts that every way gives the same
/// events and replies, and returns them.
pub fn feed_every_way(make: impl Fn() -> Connection, input: &[u8], now: Instant) -> (Vec<Event>, Vec<u8>) {
    let whole = feed(&mut make(), input, input.len(), now);
    for piece in [1, 2, 3, 7, 64, input.len()] {
        assert_eq!(feed(&mut make(), input, piece, now), whole, "pieces of {piece}");
        let (events, out, _) = feed_in_place(&mut make(), input, piece, now);
        assert_eq!((events, out), whole, "in place, pieces of {piece}");
    }
    whole
}

/// A frame as a client would send it (masked with a fixed key).
pub fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        FrameHeader::new(fin, opcode, 0).with_mask([0xa1, 0xb2, 0xc3, 0xd4]),
        payload,
    )
    .unwrap();
    out
}

/// Same, with RSV bits.
pub fn client_frame_rsv(fin: bool, opcode: OpCode, rsv: Rsv, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = FrameHeader::new(fin, opcode, 0)
        .with_mask([9, 8, 7, 6])
        .with_rsv(rsv);
    encode_frame(&mut out, header, payload).unwrap();
    out
}

/// A frame as a server would send it (unmasked).
pub fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, FrameHeader::new(fin, opcode, 0), payload).unwrap();
    out
}

pub fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}
