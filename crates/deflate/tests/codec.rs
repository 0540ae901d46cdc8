//! The extension inside tether-ws connections: RFC 7692's own examples,
//! round trips in both roles for every parameter combination, the size
//! limit while inflating, window limits and the shared per-thread state.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::time::Instant;

use proptest::prelude::*;
use tether_deflate::{Deflate, Params, Role};
use tether_ws::{CloseCode, Config, Connection, Error, Event, Extension, ExtensionError, Message, OpCode};

fn counting_masks() -> tether_ws::MaskSource {
    let mut n = 0u32;
    Box::new(move || {
        n = n.wrapping_add(0x0101_0101);
        n.to_be_bytes()
    })
}

fn connection(role: Role, ext: Deflate, config: Config) -> Connection {
    let ws_role = match role {
        Role::Server => tether_ws::Role::Server,
        Role::Client => tether_ws::Role::Client(counting_masks()),
    };
    Connection::new(ws_role, config, Instant::now()).with_extension(Box::new(ext))
}

fn pair(params: Params, min_size: usize) -> (Connection, Connection) {
    let server = connection(
        Role::Server,
        Deflate::new(Role::Server, params).with_min_size(min_size),
        Config::default(),
    );
    let client = connection(
        Role::Client,
        Deflate::new(Role::Client, params).with_min_size(min_size),
        Config::default(),
    );
    (server, client)
}

/// Feeds `input` in pieces of `piece` bytes, collecting events.
fn feed(conn: &mut Connection, input: &[u8], piece: usize) -> Vec<Event> {
    let now = Instant::now();
    let mut events = Vec::new();
    let mut out = Vec::new();
    for mut chunk in input.chunks(piece.max(1)) {
        while !chunk.is_empty() {
            let (used, event) = conn.receive(chunk, now, &mut out);
            chunk = &chunk[used..];
            events.extend(event);
        }
    }
    events
}

/// An unmasked (server to client) frame.
fn server_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first_byte, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

/// RFC 7692 section 7.2.3: each example as received by a client, whole, a
/// byte at a time and followed by a ping.
#[test]
fn rfc7692_examples_decode() {
    let hello = Event::Message(Message::text("Hello"));
    type Case = (&'static str, Vec<Vec<u8>>, Vec<Event>);
    let cases: Vec<Case> = vec![
        (
            "7.2.3.1 one frame",
            vec![server_frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])],
            vec![hello.clone()],
        ),
        (
            "7.2.3.1 two fragments",
            vec![
                server_frame(0x41, &[0xf2, 0x48, 0xcd]),
                server_frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]),
            ],
            vec![hello.clone()],
        ),
        (
            "7.2.3.2 sharing the window",
            vec![
                server_frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
                server_frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            ],
            vec![hello.clone(), hello.clone()],
        ),
        (
            "7.2.3.3 stored block",
            vec![server_frame(
                0xc1,
                &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00],
            )],
            vec![hello.clone()],
        ),
        (
            "7.2.3.4 BFINAL set",
            vec![
                server_frame(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
                // The next message starts a new stream.
                server_frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            ],
            vec![hello.clone(), hello.clone()],
        ),
        (
            "7.2.3.5 two blocks",
            vec![server_frame(
                0xc1,
                &[
                    0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                ],
            )],
            vec![hello.clone()],
        ),
        (
            "7.2.3.6 empty message",
            vec![server_frame(0xc1, &[0x00])],
            vec![Event::Message(Message::text(""))],
        ),
    ];
    for (name, frames, want) in cases {
        let mut input: Vec<u8> = frames.concat();
        for trailing in [false, true] {
            if trailing {
                input.extend_from_slice(&[0x89, 0x00]);
            }
            for piece in [input.len(), 1, 3] {
                let mut client = connection(
                    Role::Client,
                    Deflate::new(Role::Client, Params::default()),
                    Config::default(),
                );
                let mut events = feed(&mut client, &input, piece);
                if trailing {
                    assert!(matches!(events.pop(), Some(Event::Ping(_))), "{name}");
                }
                assert_eq!(events, want, "{name}, pieces of {piece}");
            }
        }
    }
}

#[test]
fn rfc7692_examples_encode() {
    // Level 6 and a kept context give the RFC's bytes exactly.
    let mut server = connection(
        Role::Server,
        Deflate::new(Role::Server, Params::default())
            .with_min_size(0)
            .with_level(6),
        Config::default(),
    );
    let mut out = Vec::new();
    server.send_text("Hello", &mut out).unwrap();
    assert_eq!(out, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    out.clear();
    server.send_text("Hello", &mut out).unwrap();
    assert_eq!(out, [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    // An empty message compresses to the single byte 0x00 (section 7.2.3.6).
    out.clear();
    server.send_binary(b"", &mut out).unwrap();
    assert_eq!(out, [0xc2, 0x01, 0x00]);
}

fn all_params() -> impl Strategy<Value = Params> {
    (any::<bool>(), any::<bool>(), 8u8..=15, 8u8..=15).prop_map(|(s, c, sb, cb)| Params {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        server_max_window_bits: sb,
        client_max_window_bits: cb,
    })
}

/// Messages that compress (repeats near and far) and ones that do not.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (proptest::collection::vec(any::<u8>(), 1..40), 1usize..200)
            .prop_map(|(unit, times)| unit.repeat(times)),
        "[a-d ]{0,2000}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn messages_round_trip_both_ways(
        params in all_params(),
        messages in proptest::collection::vec(message(), 1..6),
        min_size in prop_oneof![Just(0usize), Just(64)],
        piece in 1usize..700,
    ) {
        let (mut server, mut client) = pair(params, min_size);
        for server_sends in [true, false] {
            let (sender, receiver) = if server_sends {
                (&mut server, &mut client)
            } else {
                (&mut client, &mut server)
            };
            let mut wire = Vec::new();
            for m in &messages {
                sender.send_binary(m, &mut wire).unwrap();
            }
            let events = feed(receiver, &wire, piece);
            let want: Vec<Event> = messages.iter().map(|m| Event::Message(Message::binary(m.clone()))).collect();
            prop_assert_eq!(events, want);
        }
    }
}

/// A server's messages under an 8-bit window must inflate with a strict
/// 256-byte window, kept across messages when the context is.
#[test]
fn window_of_8_bits_is_honoured() {
    let text: Vec<u8> = (0..4000u32)
        .map(|i| b"the quick brown fox jumps over the lazy dog "[(i as usize * 7) % 44])
        .collect();
    for no_context in [false, true] {
        let params = Params {
            server_no_context_takeover: no_context,
            server_max_window_bits: 8,
            ..Params::default()
        };
        let mut ext = Deflate::new(Role::Server, params).with_min_size(0).with_level(9);
        let mut strict = zlib_rs::Inflate::new(false, 8);
        for m in [&text[..], &text[..300], &text[1000..3000]] {
            let mut wire = Vec::new();
            let rsv = ext.encode(OpCode::Binary, m, &mut wire).unwrap();
            if rsv.is_none() {
                assert!(no_context, "with context every message is compressed");
                continue;
            }
            assert!(wire.len() < m.len(), "run-length coding still shrinks repeats");
            wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut plain = vec![0u8; m.len() + 16];
            let before = strict.total_out();
            strict
                .decompress(&wire, &mut plain, zlib_rs::InflateFlush::SyncFlush)
                .expect("valid for a 256-byte window");
            assert_eq!(&plain[..(strict.total_out() - before) as usize], m);
            if no_context {
                strict.reset(false);
                strict = zlib_rs::Inflate::new(false, 8);
            }
        }
    }
}

/// Messages that stand alone, compressed at level 1 (tether-deflate's own
/// encoder up to 16 KiB, zlib-rs above), with a block repeated at
/// distances around each window size, come back whole. (zlib-rs inflates
/// a too-distant match without complaint, so the distances themselves are
/// checked by the encoder's own tests, which decode its output.)
#[test]
fn messages_that_stand_alone_round_trip_at_every_window() {
    let noise: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let block = &noise[..300];
    for bits in 8..=15u8 {
        let params = Params {
            server_no_context_takeover: true,
            server_max_window_bits: bits,
            ..Params::default()
        };
        let mut ext = Deflate::new(Role::Server, params).with_min_size(0);
        for gap in [0, 100, 250, 500, 1000, 5000, 12_000, 20_000] {
            // block, `gap` bytes of noise, the block again: its repeat lies
            // 300 + gap bytes back.
            let m = [block, &noise[1000..1000 + gap], block].concat();
            let mut wire = Vec::new();
            if ext.encode(OpCode::Binary, &m, &mut wire).unwrap().is_none() {
                continue;
            }
            wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut inflater = zlib_rs::Inflate::new(false, bits);
            let mut plain = vec![0u8; m.len() + 16];
            inflater
                .decompress(&wire, &mut plain, zlib_rs::InflateFlush::SyncFlush)
                .unwrap_or_else(|e| panic!("window {bits}, gap {gap}: {e:?}"));
            plain.truncate(inflater.total_out() as usize);
            assert_eq!(plain, m, "window {bits}, gap {gap}");
        }
    }
}

#[test]
fn windows_9_to_15_are_honoured_across_messages() {
    // Repeats 300..20000 bytes apart: a larger window would use them.
    let block: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bits in 9..=15 {
        let params = Params {
            server_max_window_bits: bits,
            ..Params::default()
        };
        let mut ext = Deflate::new(Role::Server, params).with_min_size(0);
        let mut strict = zlib_rs::Inflate::new(false, bits);
        for m in [&block[..], &block[..], &block[500..9000]] {
            let mut wire = Vec::new();
            ext.encode(OpCode::Binary, m, &mut wire).unwrap().unwrap();
            wire.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut plain = vec![0u8; m.len() + 16];
            let before = strict.total_out();
            strict
                .decompress(&wire, &mut plain, zlib_rs::InflateFlush::SyncFlush)
                .unwrap_or_else(|e| panic!("window {bits}: {e:?}"));
            assert_eq!(
                &plain[..(strict.total_out() - before) as usize],
                m,
                "window {bits}"
            );
        }
    }
}

fn compress_raw(data: &[u8]) -> Vec<u8> {
    let mut c = zlib_rs::Deflate::new(9, false, 15);
    let mut out = vec![0u8; data.len() / 2 + 1024];
    c.compress(data, &mut out, zlib_rs::DeflateFlush::SyncFlush)
        .unwrap();
    out.truncate(c.total_out() as usize);
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A client frame (masked with a zero key, which leaves bytes as they are).
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first_byte];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn zip_bomb_fails_with_1009_before_the_memory_is_spent() {
    let bomb = compress_raw(&vec![0u8; 50 << 20]);
    assert!(bomb.len() < 60_000, "{} bytes on the wire", bomb.len());
    let limit = 1 << 20;
    // Straight into the extension: the output never grows past limit + 1.
    for piece in [bomb.len(), 4096, 7] {
        let mut ext = Deflate::new(Role::Server, Params::default());
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in bomb.chunks(piece) {
            result = ext.decode(chunk, false, &mut out, limit);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err().code, CloseCode::TOO_BIG);
        assert!(
            out.len() <= limit && out.capacity() <= limit + 1,
            "capacity {}",
            out.capacity()
        );
    }
    // Through a connection with that limit: 1009 and a close frame.
    let mut server = connection(
        Role::Server,
        Deflate::new(Role::Server, Params::default()),
        Config::default().max_message_size(limit),
    );
    let mut out = Vec::new();
    let (_, event) = server.receive(&client_frame(0xc2, &bomb), Instant::now(), &mut out);
    assert!(
        matches!(
            event,
            Some(Event::Failed(Error::Extension(ExtensionError {
                code: CloseCode::TOO_BIG,
                ..
            })))
        ),
        "{event:?}"
    );
    assert_eq!(&out[..4], &[0x88, out[1], 0x03, 0xf1]);
}

#[test]
fn exactly_the_limit_is_allowed_and_no_limit_works() {
    let data = vec![7u8; 10_000];
    let wire = compress_raw(&data);
    for limit in [9_999, 10_000, usize::MAX] {
        let mut ext = Deflate::new(Role::Server, Params::default());
        let mut out = Vec::new();
        let result = ext
            .decode(&wire, false, &mut out, limit)
            .and_then(|()| ext.decode(&[], true, &mut out, limit));
        if limit >= 10_000 {
            assert_eq!(result, Ok(()));
            assert_eq!(out, data);
        } else {
            assert_eq!(result.unwrap_err().code, CloseCode::TOO_BIG);
        }
    }
}

#[test]
fn inflating_zeroes_room_near_the_output_not_a_fixed_step() {
    // Every byte of room given to the inflater is zeroed first: a small
    // message must not cost a large buffer, and a very compressible one
    // must still get its room in a few doubling steps.
    for (data, most) in [
        (CHAT_LIKE.repeat(6).into_bytes(), 4 << 10),
        // The buffer grows by doubling, so up to about twice the output.
        (vec![b'x'; 200_000], 3 * 200_000),
    ] {
        let wire = compress_raw(&data);
        let mut ext = Deflate::new(Role::Server, Params::default());
        let mut out = Vec::new();
        ext.decode(&wire, true, &mut out, usize::MAX).unwrap();
        assert_eq!(out, data);
        assert!(
            out.capacity() <= most,
            "{} bytes inflated into a buffer of {}",
            data.len(),
            out.capacity()
        );
    }
}

const CHAT_LIKE: &str = r#"{"room":"general","user":"ada","text":"deploy at 10:42, dashboard fine"},"#;

#[test]
fn corrupt_data_fails_with_1002() {
    let cases: &[(&str, &[u8])] = &[
        ("reserved block type", &[0xff, 0xff, 0xff]),
        ("stored length check", &[0x00, 0x05, 0x00, 0x00, 0x00]),
        // RFC 7692 section 7.2.3.2's second message refers back into the
        // first; alone, it reaches before the start of the stream.
        ("distance too far back", &[0xf2, 0x00, 0x11, 0x00, 0x00]),
    ];
    for (name, payload) in cases {
        for piece in [payload.len(), 1] {
            let mut server = connection(
                Role::Server,
                Deflate::new(Role::Server, Params::default()),
                Config::default(),
            );
            let events = feed(&mut server, &client_frame(0xc2, payload), piece);
            assert!(
                matches!(
                    events.as_slice(),
                    [Event::Failed(Error::Extension(ExtensionError {
                        code: CloseCode::PROTOCOL_ERROR,
                        ..
                    }))]
                ),
                "{name}: {events:?}"
            );
        }
    }
}

#[test]
fn compressed_text_is_utf8_checked() {
    let wire = compress_raw(b"ok \xff");
    let mut server = connection(
        Role::Server,
        Deflate::new(Role::Server, Params::default()),
        Config::default(),
    );
    let events = feed(&mut server, &client_frame(0xc1, &wire), 1);
    assert_eq!(events.len(), 1);
    let Event::Failed(error) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(matches!(error, Error::Frame(_)), "{error:?}");
    assert_eq!(error.close_code(), Some(CloseCode::INVALID_PAYLOAD));
}

#[test]
fn small_or_incompressible_messages_go_out_plain() {
    let no_context = Params {
        server_no_context_takeover: true,
        ..Params::default()
    };
    let mut ext = Deflate::new(Role::Server, no_context).with_min_size(10);
    let mut out = Vec::new();
    assert_eq!(ext.encode(OpCode::Text, b"tiny", &mut out).unwrap(), None);
    let noise: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    assert_eq!(
        ext.encode(OpCode::Binary, &noise, &mut out).unwrap(),
        None,
        "does not shrink"
    );
    out.clear();
    assert!(
        ext.encode(OpCode::Text, &[b'a'; 500], &mut out)
            .unwrap()
            .is_some()
    );
    assert!(out.len() < 20);
    // With context kept, a compressed message is sent even if it grew: the
    // peer's window must see it.
    let mut ext = Deflate::new(Role::Server, Params::default()).with_min_size(0);
    out.clear();
    assert!(ext.encode(OpCode::Binary, &noise, &mut out).unwrap().is_some());
    assert!(out.len() > noise.len());
}

#[test]
fn context_takeover_shrinks_repeated_messages() {
    let msg = br#"[{"type":"chat","room":"lobby","user":"ada","text":"see you at the meeting tomorrow"},{"type":"chat","room":"lobby","user":"bob","text":"see you"}]"#;
    let size = |params: Params| {
        let mut ext = Deflate::new(Role::Server, params).with_min_size(0);
        let mut first = Vec::new();
        ext.encode(OpCode::Text, msg, &mut first).unwrap().unwrap();
        let mut second = Vec::new();
        ext.encode(OpCode::Text, msg, &mut second).unwrap().unwrap();
        (first, second)
    };
    let (a, b) = size(Params::default());
    assert!(
        b.len() < a.len() / 4,
        "with context: {} then {}",
        a.len(),
        b.len()
    );
    let (a, b) = size(Params {
        server_no_context_takeover: true,
        ..Params::default()
    });
    assert_eq!(a, b, "without context every message stands alone");
    assert!(a.len() < msg.len());
}

/// Connections on one thread share compressors and lend each other
/// inflaters; interleaved fragmented messages must not mix.
#[test]
fn shared_state_does_not_leak_between_connections() {
    let params = Params {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..Params::default()
    };
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("{{\"n\":{i},\"body\":\"{}\"}}", "xyz".repeat(50 + i)).into_bytes())
        .collect();
    let mut servers: Vec<Connection> = (0..4)
        .map(|_| {
            connection(
                Role::Server,
                Deflate::new(Role::Server, params).with_min_size(0),
                Config::default(),
            )
        })
        .collect();
    // Each client message split in two frames; deliver all first halves,
    // then all second halves.
    let mut halves = Vec::new();
    for t in &texts {
        let wire = compress_raw(t);
        let (a, b) = wire.split_at(wire.len() / 2);
        halves.push((client_frame(0x42, a), client_frame(0x80, b)));
    }
    for (server, (first, _)) in servers.iter_mut().zip(&halves) {
        assert_eq!(feed(server, first, 1000), []);
    }
    for ((server, (_, second)), t) in servers.iter_mut().zip(&halves).zip(&texts) {
        let events = feed(server, second, 1000);
        assert_eq!(events, [Event::Message(Message::binary(t.clone()))]);
    }
    // Same message, same bytes, whichever connection sends it.
    let mut outs = Vec::new();
    for server in &mut servers {
        let mut out = Vec::new();
        server.send_binary(&texts[0], &mut out).unwrap();
        outs.push(out);
    }
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn default_minimum_size_follows_context_takeover() {
    let chat = br#"{"type":"message","room":"general","user":"ada","text":"the build is green again after we fixed the flaky test in staging, thanks"}"#;
    assert!(
        chat.len() > tether_deflate::MIN_SIZE_WITH_CONTEXT
            && chat.len() < tether_deflate::MIN_SIZE_WITHOUT_CONTEXT
    );
    let mut out = Vec::new();
    let alone = Params {
        server_no_context_takeover: true,
        ..Params::default()
    };
    let mut ext = Deflate::new(Role::Server, alone);
    assert_eq!(ext.encode(OpCode::Text, chat, &mut out).unwrap(), None);
    assert!(
        ext.encode(OpCode::Text, &chat.repeat(3), &mut out)
            .unwrap()
            .is_some()
    );
    let mut ext = Deflate::new(Role::Server, Params::default());
    assert!(ext.encode(OpCode::Text, chat, &mut out).unwrap().is_some());
    assert_eq!(ext.encode(OpCode::Text, b"short", &mut out).unwrap(), None);
    // The server config passes its own setting through, or the default.
    let config = tether_deflate::DeflateConfig::new();
    let runs = [b'a'; 100];
    let mut ext = config.extension(alone);
    assert_eq!(ext.encode(OpCode::Text, &runs, &mut out).unwrap(), None);
    let mut ext = config.min_size(0).extension(alone);
    assert!(ext.encode(OpCode::Text, &runs, &mut out).unwrap().is_some());
}
