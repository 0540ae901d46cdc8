//! The extension interface, with a toy extension that "compresses" by
//! run-length encoding, so the RSV1 rules and the inflate limit can be
//! tested without a real DEFLATE.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::Instant;

use common::*;
use tether_frame::{OpCode, Rsv};
use tether_ws::{
    CloseCode, Config, Connection, Error, Event, Extension, ExtensionError, Message, MessageKind, Role,
};

/// Encodes a message as (count, byte) pairs. Decoding is streamed: a pair
/// may be split between pieces.
#[derive(Default)]
struct RunLength {
    held: Option<u8>,
    min_size: usize,
}

impl Extension for RunLength {
    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn decode(
        &mut self,
        input: &[u8],
        end: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ExtensionError> {
        for &b in input {
            match self.held.take() {
                None => self.held = Some(b),
                Some(count) => {
                    if out.len() + count as usize > limit {
                        return Err(ExtensionError {
                            code: CloseCode::TOO_BIG,
                            reason: "inflated past the limit",
                        });
                    }
                    out.extend(std::iter::repeat_n(b, count as usize));
                }
            }
        }
        if end && self.held.is_some() {
            return Err(ExtensionError {
                code: CloseCode::PROTOCOL_ERROR,
                reason: "truncated pair",
            });
        }
        Ok(())
    }

    fn encode(
        &mut self,
        _: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Rsv>, ExtensionError> {
        // Write something even when declining, to check that the
        // connection throws it away.
        out.extend_from_slice(b"junk");
        if payload.len() < self.min_size {
            return Ok(None);
        }
        out.truncate(out.len() - 4);
        for run in payload.chunk_by(|a, b| a == b) {
            for piece in run.chunks(255) {
                out.extend_from_slice(&[piece.len() as u8, piece[0]]);
            }
        }
        Ok(Some(Rsv::RSV1))
    }
}

fn server_with_ext(config: Config, now: Instant) -> Connection {
    Connection::new(Role::Server, config, now).with_extension(Box::new(RunLength::default()))
}

#[test]
fn transformed_messages_are_decoded_in_any_split() {
    let now = Instant::now();
    let input = concat(&[
        client_frame_rsv(false, OpCode::Text, Rsv::RSV1, &[3, b'a', 2]),
        client_frame(true, OpCode::Ping, b""),
        client_frame_rsv(true, OpCode::Continuation, Rsv::NONE, b"b"),
        // A plain message still passes untouched.
        client_frame(true, OpCode::Binary, b"raw"),
    ]);
    let (events, _) = feed_every_way(|| server_with_ext(Config::default(), now), &input, now);
    assert_eq!(events.len(), 3);
    assert_eq!(events[1], Event::Message(Message::text("aaabb")));
    assert_eq!(events[2], Event::Message(Message::binary(b"raw".to_vec())));
    // Received in place, only the plain message is lent: a transformed one
    // is decoded into a buffer of its own.
    let single = client_frame_rsv(true, OpCode::Binary, Rsv::RSV1, &[2, b'z']);
    let (_, _, borrowed) = feed_in_place(
        &mut server_with_ext(Config::default(), now),
        &single,
        single.len(),
        now,
    );
    assert_eq!(borrowed, 0);
    let (_, _, borrowed) = feed_in_place(
        &mut server_with_ext(Config::default(), now),
        &input,
        input.len(),
        now,
    );
    assert_eq!(borrowed, 1);
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_is_a_protocol_error() {
    let now = Instant::now();
    let input = concat(&[
        client_frame_rsv(false, OpCode::Binary, Rsv::RSV1, &[1, b'a']),
        client_frame_rsv(true, OpCode::Continuation, Rsv::RSV1, &[1, b'b']),
    ]);
    let (events, _) = feed_every_way(|| server_with_ext(Config::default(), now), &input, now);
    assert_eq!(events, [Event::Failed(Error::MisplacedRsv)]);
    let (events, _) = feed_every_way(
        || server_with_ext(Config::default(), now),
        &client_frame_rsv(true, OpCode::Ping, Rsv::RSV1, b""),
        now,
    );
    assert_eq!(events, [Event::Failed(Error::MisplacedRsv)]);
    // RSV2 is still not owned by anyone.
    let (events, _) = feed_every_way(
        || server_with_ext(Config::default(), now),
        &client_frame_rsv(true, OpCode::Text, Rsv::RSV2, b""),
        now,
    );
    assert_eq!(
        events,
        [Event::Failed(tether_frame::Error::ReservedBits(0b010).into())]
    );
}

#[test]
fn decoded_size_counts_against_the_message_limit() {
    let now = Instant::now();
    // 4 bytes on the wire that would expand to 510.
    let input = client_frame_rsv(true, OpCode::Binary, Rsv::RSV1, &[255, 0, 255, 0]);
    let (events, out) = feed_every_way(
        || server_with_ext(Config::default().max_message_size(300), now),
        &input,
        now,
    );
    assert_eq!(
        events,
        [Event::Failed(Error::Extension(ExtensionError {
            code: CloseCode::TOO_BIG,
            reason: "inflated past the limit"
        }))]
    );
    assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xf1]);
}

#[test]
fn decoded_text_is_validated() {
    let now = Instant::now();
    let input = client_frame_rsv(true, OpCode::Text, Rsv::RSV1, &[1, 0xff]);
    let (events, _) = feed_every_way(|| server_with_ext(Config::default(), now), &input, now);
    assert_eq!(events, [Event::Failed(tether_frame::Error::InvalidUtf8.into())]);
}

#[test]
fn outgoing_messages_carry_rsv1_only_when_encoded() {
    let now = Instant::now();
    let mut conn =
        Connection::new(Role::Server, Config::default(), now).with_extension(Box::new(RunLength {
            min_size: 4,
            ..Default::default()
        }));
    let mut out = Vec::new();
    conn.send_text("aaaaaaaa", &mut out).unwrap();
    assert_eq!(out, [0xC1, 0x02, 8, b'a']);
    out.clear();
    conn.send_text("abc", &mut out).unwrap();
    assert_eq!(
        out,
        [0x81, 0x03, b'a', b'b', b'c'],
        "below the size threshold: sent as is"
    );
    out.clear();
    conn.ping(b"aaaaaaaa", &mut out).unwrap();
    assert_eq!(out[0], 0x89, "control frames are never transformed");
}

#[test]
fn encoded_frames_have_the_right_header_for_every_length_in_both_roles() {
    let now = Instant::now();
    // Alternating bytes encode to twice their length: encoded payloads of
    // 0, 124, 126, 65534 and 70000 bytes cover all three length forms.
    for n in [0usize, 62, 63, 32767, 35000] {
        let payload: Vec<u8> = (0..n).map(|i| b"ab"[i % 2]).collect();
        for role in ["server", "client"] {
            let ext = RunLength::default();
            let mut sender = if role == "server" {
                Connection::new(Role::Server, Config::default(), now)
            } else {
                Connection::new(Role::Client(counting_masks()), Config::default(), now)
            }
            .with_extension(Box::new(ext));
            // Bytes already queued stay in front, untouched.
            let mut out = b"queued".to_vec();
            sender.send_binary(&payload, &mut out).unwrap();
            assert_eq!(&out[..6], b"queued");
            let wire = &out[6..];
            assert_eq!(wire[0], 0xC2, "{role} {n}");
            let mut receiver = if role == "server" {
                Connection::new(Role::Client(counting_masks()), Config::default(), now)
            } else {
                Connection::new(Role::Server, Config::default(), now)
            }
            .with_extension(Box::new(RunLength::default()));
            let (events, _) = feed(&mut receiver, wire, wire.len().max(1), now);
            assert_eq!(
                events,
                [Event::Message(Message::binary(payload.clone()))],
                "{role} {n}"
            );
        }
    }
}

#[test]
fn with_an_extension_a_payload_is_not_framed_where_it_lies() {
    // The extension may transform it: only `send` knows how it goes out.
    let now = Instant::now();
    let mut data = b"......payload".to_vec();
    let mut conn = server_with_ext(Config::default(), now);
    assert_eq!(conn.frame_in_place(MessageKind::Binary, &mut data, 6..13), None);
    assert_eq!(data, b"......payload");
}

/// An extension that breaks the rules: it passes input through, but
/// refuses a message with `code`, or (with no code) drops all its output
/// at the end of a message and the header room when encoding.
struct Unruly {
    code: Option<CloseCode>,
}

impl Extension for Unruly {
    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn decode(&mut self, input: &[u8], end: bool, out: &mut Vec<u8>, _: usize) -> Result<(), ExtensionError> {
        if let Some(code) = self.code {
            return Err(ExtensionError {
                code,
                reason: "refused",
            });
        }
        out.extend_from_slice(input);
        if end {
            out.clear();
        }
        Ok(())
    }

    fn encode(&mut self, _: OpCode, _: &[u8], out: &mut Vec<u8>) -> Result<Option<Rsv>, ExtensionError> {
        out.clear();
        Ok(Some(Rsv::RSV1))
    }
}

#[test]
fn an_extension_code_that_cannot_be_sent_closes_without_a_payload() {
    let now = Instant::now();
    let code = CloseCode::NO_STATUS;
    let input = client_frame_rsv(true, OpCode::Text, Rsv::RSV1, b"hi");
    let (events, out) = feed_every_way(
        || {
            Connection::new(Role::Server, Config::default(), now)
                .with_extension(Box::new(Unruly { code: Some(code) }))
        },
        &input,
        now,
    );
    assert_eq!(
        events,
        [Event::Failed(Error::Extension(ExtensionError {
            code,
            reason: "refused"
        }))]
    );
    assert_eq!(out, [0x88, 0x00]);
}

#[test]
fn an_extension_that_removes_bytes_fails_the_connection_with_1011() {
    let now = Instant::now();
    let make = || {
        Connection::new(Role::Server, Config::default(), now).with_extension(Box::new(Unruly { code: None }))
    };
    let input = client_frame_rsv(true, OpCode::Text, Rsv::RSV1, b"hi");
    let (events, out) = feed_every_way(make, &input, now);
    assert!(
        matches!(&events[..], [Event::Failed(Error::Extension(e))] if e.code == CloseCode::INTERNAL_ERROR),
        "{events:?}"
    );
    assert_eq!(&out[2..4], &[0x03, 0xf3]);
    let mut out = Vec::new();
    let refused = make().send_text("hello", &mut out).unwrap_err();
    assert!(matches!(refused, Error::Extension(e) if e.code == CloseCode::INTERNAL_ERROR));
    assert!(out.is_empty());
}
