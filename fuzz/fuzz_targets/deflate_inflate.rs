//! Fuzzing of `tether_deflate::Deflate`, the permessage-deflate extension.
//!
//! The first input byte picks the mode and the parameters, the second a
//! piece size and a split point; the rest is data.
//!
//! - Inflate (mode bit clear): the data, cut in two at the split point, is
//!   two compressed messages fed to a server-side decoder in pieces, with a
//!   small message limit (1 to 4096 bytes). Every call must return Ok or a
//!   1002/1009 error, never panic, and never leave more than `limit` bytes
//!   of output (nor more than `limit + 1` bytes of capacity it allocated).
//! - Round trip (mode bit set): the data, cut in two, is two messages
//!   compressed by a client-side encoder with the chosen context takeover
//!   and window, then inflated by the server side, which enforces the
//!   negotiated window; both must come back exactly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_deflate::{Deflate, Params, Role};
use tether_ws::{CloseCode, Extension, OpCode};

fn params(byte: u8) -> Params {
    Params {
        server_no_context_takeover: byte & 0x02 != 0,
        client_no_context_takeover: byte & 0x04 != 0,
        server_max_window_bits: 8 + (byte >> 3 & 7),
        client_max_window_bits: 8 + (byte >> 5 & 7),
    }
}

fn inflate(p: Params, limit: usize, piece: usize, messages: [&[u8]; 2]) {
    let mut decoder = Deflate::new(Role::Server, p);
    for message in messages {
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in message.chunks(piece) {
            result = decoder.decode(chunk, false, &mut out, limit);
            assert!(out.len() <= limit, "{} bytes past a limit of {limit}", out.len());
            assert!(
                out.capacity() <= limit + 1,
                "capacity {} for a limit of {limit}",
                out.capacity()
            );
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = decoder.decode(&[], true, &mut out, limit);
            assert!(out.len() <= limit);
        }
        match result {
            Ok(()) => {}
            Err(e) => {
                assert!(
                    e.code == CloseCode::PROTOCOL_ERROR || e.code == CloseCode::TOO_BIG,
                    "{e:?}"
                );
                // A failed connection is closed: nothing more is fed.
                return;
            }
        }
    }
}

fn round_trip(p: Params, level: u8, piece: usize, messages: [&[u8]; 2]) {
    let mut encoder = Deflate::new(Role::Client, p).with_min_size(0).with_level(level);
    let mut decoder = Deflate::new(Role::Server, p);
    for message in messages {
        let mut wire = Vec::new();
        let Some(_) = encoder
            .encode(OpCode::Binary, message, &mut wire)
            .expect("compression works")
        else {
            // Sent plain (it did not shrink without context): never decoded.
            assert!(p.client_no_context_takeover);
            continue;
        };
        let mut out = Vec::new();
        for chunk in wire.chunks(piece) {
            decoder
                .decode(chunk, false, &mut out, usize::MAX)
                .expect("our own output inflates");
        }
        decoder
            .decode(&[], true, &mut out, usize::MAX)
            .expect("our own output inflates");
        assert_eq!(out, message);
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, shape, rest @ ..] = data else {
        return;
    };
    let p = params(*mode);
    let piece = usize::from(shape & 0x0f) * 37 + 1;
    let split = rest.len() * usize::from(shape >> 4) / 16;
    let (a, b) = rest.split_at(split);
    if mode & 1 == 0 {
        let limit = 1 + usize::from(*mode) * 16;
        inflate(p, limit, piece, [a, b]);
    } else {
        round_trip(p, shape % 10, piece, [a, b]);
    }
});
