//! Fuzzing of the TLS 1.3 record layer on its own, opening records
//! (`tether_server::tls_harness::records`): a server and its client made
//! from the same traffic secrets, no handshake. The client seals what the
//! input says, honest records and records no TLS stack would send, so
//! that the input gets past the AEAD into the inner plaintext (content
//! type, padding, lengths) and the reassembly of a KeyUpdate; raw bytes
//! and flipped bits go on the wire too.
//!
//! Byte 0 picks the suite; bytes 1 to 4 the sizes of the pieces the
//! records arrive in; the rest is operations of 5 bytes `[op, a, b, c, d]`
//! (`n` is `c d` as a big-endian number):
//! - 0: application data, `n % 40 000` bytes, sealed as the server's
//!   peer seals it;
//! - 1: one record of any inner plaintext: `data`, the content type `a`,
//!   then zeros; `data` is `b % 16` bytes taken from the input and then
//!   `n % 16 500` zeros, or (when `b >= 128`) `n % 16 500` bytes not
//!   zero and `b % 64` zeros;
//! - 2: a KeyUpdate as the peer sends it (asking for an answer when
//!   `a` is odd), in fragments over records where the bits of `b` say;
//! - 3: `a % 32` bytes taken from the input, as they are;
//! - 4: a bit flipped in what is on the wire so far;
//! - 5: close_notify, which ends the input.
//!
//! The wire is opened twice: whole, and in pieces by a server that keeps
//! what it did not use, as the session does. The rule: each run gives
//! plaintext and then Ok or an alert (never internal_error), never a
//! panic; both runs agree; the server never keeps waiting on more than
//! one record; the plaintext it gives is plaintext that was sealed, in
//! order; and if every record was one a client may send, it reads them
//! all: every byte of data, every KeyUpdate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_server::tls_harness::records::{Opened, RecordLayer, Refused, Suite};

const MAX_INNER: usize = RecordLayer::MAX_PLAINTEXT + 1;
/// A record at most: header and the largest protected body.
const MAX_RECORD: usize = 5 + RecordLayer::MAX_PLAINTEXT + 256;
const APPLICATION_DATA: u8 = 23;
/// The alerts the record layer sends: unexpected_message,
/// bad_record_mac, record_overflow, illegal_parameter, decode_error
/// (internal_error would be its own fault).
const ALERTS: [u8; 5] = [10, 20, 22, 47, 50];

fn layers(suite: Suite) -> (RecordLayer, RecordLayer) {
    let len = suite.secret_len();
    let client_secret: Vec<u8> = (1..=len).map(|i| i as u8).collect();
    let server_secret: Vec<u8> = (1..=len).map(|i| (i * 7) as u8).collect();
    (
        RecordLayer::server(suite, &client_secret, &server_secret).expect("a server"),
        RecordLayer::client(suite, &client_secret, &server_secret).expect("a client"),
    )
}

/// What the client sealed, and what the server must make of it.
#[derive(Default)]
struct Sent {
    wire: Vec<u8>,
    /// The plaintext of every record of application data, in order.
    data: Vec<u8>,
    key_updates: u32,
    update_requested: bool,
    closed: bool,
    /// Only records a client may send, in an order it may send them.
    honest: bool,
}

fn seal(client: &mut RecordLayer, input: &[u8]) -> Sent {
    let mut sent = Sent {
        honest: true,
        ..Sent::default()
    };
    // As rustls, the server refuses more than 32 KeyUpdates in a row
    // without data between them.
    let mut updates_in_a_row = 0;
    let mut rest = input;
    while let Some((&[op, a, b, c, d], after)) = rest.split_first_chunk::<5>() {
        rest = after;
        let n = usize::from(u16::from_be_bytes([c, d]));
        match op % 6 {
            0 => {
                let data: Vec<u8> = (0..n % 40_000).map(|i| (i % 251) as u8).collect();
                client.seal(&data, &mut sent.wire).expect("sealed");
                sent.data.extend_from_slice(&data);
                if !data.is_empty() {
                    updates_in_a_row = 0;
                }
            }
            1 => {
                let (mut inner, zeros) = if b >= 128 {
                    let data: Vec<u8> = (0..n % 16_500).map(|i| (i % 255) as u8 + 1).collect();
                    (data, usize::from(b % 64))
                } else {
                    let take = usize::from(b % 16).min(rest.len());
                    let (data, after) = rest.split_at(take);
                    rest = after;
                    (data.to_vec(), n % 16_500)
                };
                inner.push(a);
                inner.resize(inner.len() + zeros, 0);
                // Sealed as content type 0: the record's inner plaintext
                // is exactly `inner`, zeros and all.
                let (last, front) = inner.split_last().expect("not empty");
                client.seal_any(*last, front, &mut sent.wire).expect("sealed");
                let end = inner.iter().rposition(|&b| b != 0);
                match end {
                    Some(end) if inner[end] == APPLICATION_DATA && inner.len() <= MAX_INNER => {
                        sent.data.extend_from_slice(&inner[..end]);
                        if end > 0 {
                            updates_in_a_row = 0;
                        }
                    }
                    _ => sent.honest = false,
                }
            }
            2 => {
                let message = [24, 0, 0, 1, a & 1];
                let mut from = 0;
                for to in 1..=message.len() {
                    if to == message.len() || b & (1 << to) != 0 {
                        client
                            .seal_any(22, &message[from..to], &mut sent.wire)
                            .expect("sealed");
                        from = to;
                    }
                }
                client.next_tx_key().expect("the next key");
                sent.key_updates += 1;
                sent.update_requested |= a & 1 == 1;
                updates_in_a_row += 1;
                sent.honest &= updates_in_a_row <= 32;
            }
            3 => {
                let take = usize::from(a % 32).min(rest.len());
                let (raw, after) = rest.split_at(take);
                rest = after;
                sent.wire.extend_from_slice(raw);
                sent.honest &= raw.is_empty();
            }
            4 => {
                let len = sent.wire.len();
                if let Some(byte) = sent.wire.get_mut(n % len.max(1)) {
                    *byte ^= 1 << (a % 8);
                    sent.honest = false;
                }
            }
            _ => {
                client.seal_any(21, &[1, 0], &mut sent.wire).expect("sealed");
                sent.closed = true;
                break;
            }
        }
    }
    sent
}

/// What a server made of the wire: its plaintext, and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    result: Result<Opened, Refused>,
}

fn check(result: &Result<Opened, Refused>) {
    if let Err(Refused::Send(alert)) = result {
        assert!(ALERTS.contains(alert), "alert {alert}");
    }
}

fn open_whole(server: &mut RecordLayer, wire: &[u8]) -> Outcome {
    let mut wire = wire.to_vec();
    let mut data = Vec::new();
    let result = server.open(&mut wire, |d| data.extend_from_slice(d));
    check(&result);
    if let Ok(opened) = &result {
        assert!(opened.closed || wire.len() - opened.used < MAX_RECORD);
    }
    Outcome { data, result }
}

/// Opens the wire as it arrives in pieces, keeping what is not used yet;
/// the outcome added up as if it were one call.
fn open_in_pieces(server: &mut RecordLayer, wire: &[u8], pieces: [u8; 4]) -> Outcome {
    let mut data = Vec::new();
    let mut kept = Vec::new();
    let mut total = Opened {
        used: 0,
        closed: false,
        update_requested: false,
        key_updates: 0,
    };
    let mut at = 0;
    for size in pieces.iter().cycle().map(|&p| usize::from(p) * 97 + 1) {
        if at >= wire.len() {
            break;
        }
        let end = (at + size).min(wire.len());
        kept.extend_from_slice(&wire[at..end]);
        at = end;
        let opened = match server.open(&mut kept, |d| data.extend_from_slice(d)) {
            Ok(opened) => opened,
            Err(e) => {
                check(&Err(e));
                return Outcome { data, result: Err(e) };
            }
        };
        kept.drain(..opened.used);
        total.used += opened.used;
        total.update_requested |= opened.update_requested;
        total.key_updates += opened.key_updates;
        if opened.closed {
            total.closed = true;
            break;
        }
        assert!(kept.len() < MAX_RECORD, "{} bytes kept", kept.len());
    }
    Outcome {
        data,
        result: Ok(total),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&[suite, p0, p1, p2, p3], ops)) = input.split_first_chunk::<5>() else {
        return;
    };
    let suite = Suite::ALL[usize::from(suite) % Suite::ALL.len()];
    let (mut whole, mut client) = layers(suite);
    let (mut pieces, _) = layers(suite);
    let sent = seal(&mut client, ops);
    let at_once = open_whole(&mut whole, &sent.wire);
    let in_pieces = open_in_pieces(&mut pieces, &sent.wire, [p0, p1, p2, p3]);
    assert_eq!(at_once, in_pieces, "whole and in pieces");
    // Plaintext that was sealed, in order, and nothing else.
    assert!(
        sent.data.starts_with(&at_once.data),
        "plaintext that was not sent"
    );
    if sent.honest {
        let opened = at_once.result.expect("an honest client was refused");
        assert_eq!(at_once.data, sent.data);
        assert_eq!(opened.used, sent.wire.len());
        assert_eq!(opened.key_updates, sent.key_updates);
        assert_eq!(opened.update_requested, sent.update_requested);
        assert_eq!(opened.closed, sent.closed);
    }
});
