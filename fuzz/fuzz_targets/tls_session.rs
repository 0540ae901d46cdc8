//! Fuzzing of the server's TLS session as the loop drives it
//! (`tether_server::tls_harness`): the rustls handshake, the handover of
//! the keys after a TLS 1.3 handshake, and the session's own record layer
//! after it, with the client's bytes arriving in pieces of any size.
//!
//! The first byte's low two bits pick what the client is:
//! - 0: arbitrary bytes, from the first (a hello of any shape);
//! - 1, 2: a real rustls client (TLS 1.3, TLS 1.2) up to its last flight,
//!   which it sends after what the input asks of it first (a KeyUpdate,
//!   data), followed by the input's bytes as they are (records it would
//!   never send); with bit 3 set, 2 is instead a TLS 1.2 client after the
//!   handshake that seals records of the input's making under the
//!   session's keys (records it would never send either, which rustls
//!   opens: a handshake message cut short, say);
//! - 3: a real TLS 1.3 client after the handshake, doing what the input
//!   says: data, KeyUpdates, raw bytes, a flipped bit, deliveries in
//!   pieces, writes from the server, a socket that pushes back.
//!
//! With bit 2 set, the client's stream ends after what it sent, before
//! the server's last write and its close (which must still go to rustls
//! with what rustls kept of the client's records).
//!
//! The rule: the session reads, refuses with an error, or waits; it never
//! panics, never holds more than its bounds, and a client that sent only
//! what rustls makes gets back what the server wrote and reads what it
//! sent.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tether_server::tls::rustls;
use tether_server::tls_harness::Harness;
use tether_server::tls_harness::tls12::Peer;

/// What the session may hold at most: a record or handshake message not
/// complete yet, a read's plaintext, and a write's records.
const HELD_BOUND: usize = 2 * Harness::INCOMING_LIMIT + 256 * 1024;

struct Configs {
    server: Arc<rustls::ServerConfig>,
    tls13: Arc<rustls::ClientConfig>,
    tls12: Arc<rustls::ClientConfig>,
}

fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
        let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
        let mut server = (*tether_server::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes())
            .expect("a server configuration"))
        .clone();
        // As the server sets it: the keys leave rustls after TLS 1.3.
        server.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).expect("a root");
        let roots = Arc::new(roots);
        let client = |version| {
            let mut config = rustls::ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            // For the records a TLS 1.2 client seals by hand.
            config.enable_secret_extraction = true;
            Arc::new(config)
        };
        Configs {
            server: Arc::new(server),
            tls13: client(&rustls::version::TLS13),
            tls12: client(&rustls::version::TLS12),
        }
    })
}

fn client(tls13: bool) -> rustls::ClientConnection {
    let config = if tls13 { &configs().tls13 } else { &configs().tls12 };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    rustls::ClientConnection::new(config.clone(), name).expect("a client")
}

/// The client's bytes on their way to the server.
fn from_client(client: &mut rustls::ClientConnection) -> Vec<u8> {
    let mut wire = Vec::new();
    while client.wants_write() {
        if client.write_tls(&mut wire).is_err() {
            break;
        }
    }
    wire
}

/// The client reads `wire`: its plaintext, or `None` once it failed.
fn to_client(client: &mut rustls::ClientConnection, wire: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = wire;
    let mut plain = Vec::new();
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).ok()?;
        client.process_new_packets().ok()?;
        let mut buf = [0; 4096];
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return None,
            }
        }
    }
    Some(plain)
}

/// The session reads what arrived: its plaintext, and whether it refused
/// the peer.
fn server_reads(harness: &mut Harness) -> (Vec<u8>, bool) {
    let (plain, error) = harness.read_all();
    assert!(
        harness.held_bytes() <= HELD_BOUND,
        "{} bytes held",
        harness.held_bytes()
    );
    let refused = error.is_some_and(|e| e.kind() != ErrorKind::WouldBlock);
    (plain, refused)
}

/// Gives `wire` to the session in pieces of `piece` bytes, reading after
/// each, and writing between them when `write` says so: whether it
/// refused the peer.
fn deliver(harness: &mut Harness, wire: &[u8], piece: usize, write: bool) -> bool {
    for chunk in wire.chunks(piece.max(1)) {
        harness.receive(chunk);
        if server_reads(harness).1 {
            return true;
        }
        if write {
            let _ = harness.write(b"a write between the pieces");
        }
    }
    false
}

/// The handshake up to the client's last flight, which it holds.
fn up_to_last_flight(harness: &mut Harness, client: &mut rustls::ClientConnection) -> bool {
    for _ in 0..4 {
        let hello = from_client(client);
        harness.receive(&hello);
        if server_reads(harness).1 {
            return false;
        }
        if to_client(client, &harness.take_sent()).is_none() {
            return false;
        }
        // TLS 1.3: the client is done; TLS 1.2: it waits for the server's
        // Finished, after its flight.
        if !client.is_handshaking() || client.wants_write() {
            return true;
        }
    }
    false
}

/// The client's stream ends: the session reads the end.
fn end(harness: &mut Harness) {
    harness.end_input();
    let _ = server_reads(harness);
}

fn raw_client(harness: &mut Harness, input: &[u8], ends: bool) {
    let Some((&piece, wire)) = input.split_first() else {
        return;
    };
    let piece = usize::from(piece) * 67 + 1;
    deliver(harness, wire, piece, piece % 2 == 0);
    if ends {
        end(harness);
    }
    harness.close();
    let _ = harness.flush();
    let _ = harness.take_sent();
}

fn last_flight_then(harness: &mut Harness, tls13: bool, input: &[u8], ends: bool) {
    let Some((&ask, rest)) = input.split_first() else {
        return;
    };
    let mut client = client(tls13);
    if !up_to_last_flight(harness, &mut client) {
        return;
    }
    if tls13 && ask & 1 != 0 {
        let _ = client.refresh_traffic_keys();
    }
    if ask & 2 != 0 {
        let _ = client.writer().write_all(b"first words");
    }
    let mut wire = from_client(&mut client);
    wire.extend_from_slice(rest);
    let piece = usize::from(ask >> 2) * 97 + 1;
    deliver(harness, &wire, piece, ask & 2 == 0);
    if ends {
        end(harness);
    }
    let _ = harness.write(b"answer");
    harness.close();
    let _ = harness.take_sent();
}

/// A TLS 1.2 client done with its handshake seals the input's records
/// under the session's keys: after the first byte (the pieces they
/// arrive in, and whether the server writes between them), each record
/// is a content type, a length byte and that many bytes. Whatever they
/// are, every record the server sends opens at the client.
fn sealed_tls12_records(harness: &mut Harness, input: &[u8], ends: bool) {
    let Some((&ask, mut rest)) = input.split_first() else {
        return;
    };
    let mut client = client(false);
    if !up_to_last_flight(harness, &mut client) {
        return;
    }
    harness.receive(&from_client(&mut client));
    assert!(!server_reads(harness).1, "an honest client was refused");
    if to_client(&mut client, &harness.take_sent()).is_none() || client.is_handshaking() {
        return;
    }
    let Some(mut peer) = client.dangerous_extract_secrets().ok().and_then(Peer::new) else {
        return;
    };
    let mut wire = Vec::new();
    while let Some((&[content, len], after)) = rest.split_first_chunk() {
        let body = after.get(..usize::from(len)).unwrap_or(after);
        wire.extend(peer.seal(content, body).unwrap_or_default());
        rest = &after[body.len()..];
    }
    let piece = usize::from(ask >> 1) * 97 + 1;
    deliver(harness, &wire, piece, ask & 1 != 0);
    if ends {
        end(harness);
    }
    let _ = harness.write(b"answer");
    harness.close();
    let sent = harness.take_sent();
    assert!(
        peer.open(&sent).is_some(),
        "a record the client cannot open: {sent:?}"
    );
}

fn client_at_work(harness: &mut Harness, input: &[u8], ends: bool) {
    let mut client = client(true);
    if !up_to_last_flight(harness, &mut client) {
        return;
    }
    let mut pending = from_client(&mut client);
    // The session refuses more than 32 KeyUpdates without data between
    // them (each costs a key derivation), as rustls does.
    let mut updates_in_a_row = 0;
    // Whether only what rustls makes reached the session, and what the
    // session owes the client and has read of it.
    let mut honest = true;
    let (mut sent_plain, mut read_plain) = (Vec::new(), Vec::new());
    let (mut written, mut received) = (Vec::new(), Vec::new());
    let mut client_ok = true;
    let mut ops = input.chunks(3);
    while let Some(&[op, a, b]) = ops.next() {
        let n = usize::from(u16::from_be_bytes([a, b]));
        match op % 7 {
            0 => {
                let data: Vec<u8> = (0..n % 4096).map(|i| (i % 251) as u8).collect();
                let taken = client.writer().write(&data).unwrap_or(0);
                sent_plain.extend_from_slice(&data[..taken]);
                if taken > 0 {
                    updates_in_a_row = 0;
                }
                pending.extend(from_client(&mut client));
            }
            1 => {
                if client.refresh_traffic_keys().is_ok() {
                    updates_in_a_row += 1;
                    honest &= updates_in_a_row <= 32;
                    pending.extend(from_client(&mut client));
                }
            }
            2 => {
                pending.extend_from_slice(&[a, b]);
                honest = false;
            }
            3 => {
                if let Some(byte) = pending.get_mut(n % 4096) {
                    *byte ^= 1 << (a % 8);
                    honest = false;
                }
            }
            4 => {
                let take = (n % 8192).min(pending.len());
                let part: Vec<u8> = pending.drain(..take).collect();
                harness.receive(&part);
                let (plain, refused) = server_reads(harness);
                read_plain.extend(plain);
                if refused {
                    assert!(!honest, "an honest client was refused");
                    break;
                }
            }
            5 => {
                let data: Vec<u8> = (0..n % 40_000).map(|i| (i % 239) as u8).collect();
                if let Ok(taken) = harness.write(&data) {
                    written.extend_from_slice(&data[..taken]);
                }
                let _ = harness.flush();
                if client_ok {
                    match to_client(&mut client, &harness.take_sent()) {
                        Some(plain) => received.extend(plain),
                        None => client_ok = false,
                    }
                }
            }
            _ => harness.set_write_room(if a % 2 == 0 { None } else { Some(n % 1000) }),
        }
    }
    if honest {
        harness.receive(&pending);
        harness.set_write_room(None);
        let (plain, refused) = server_reads(harness);
        assert!(!refused, "an honest client was refused");
        read_plain.extend(plain);
        assert_eq!(read_plain, sent_plain, "the session read what the client sent");
        let _ = harness.flush();
        if client_ok {
            if let Some(plain) = to_client(&mut client, &harness.take_sent()) {
                received.extend(plain);
            }
            assert!(client_ok, "the client could read the server");
            assert_eq!(received, written, "the client read what the session wrote");
        }
    }
    if ends {
        end(harness);
    }
    harness.close();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let Ok(mut harness) = Harness::new(&configs().server) else {
        return;
    };
    let ends = mode & 4 != 0;
    match mode % 4 {
        0 => raw_client(&mut harness, input, ends),
        1 => last_flight_then(&mut harness, true, input, ends),
        2 if mode & 8 != 0 => sealed_tls12_records(&mut harness, input, ends),
        2 => last_flight_then(&mut harness, false, input, ends),
        _ => client_at_work(&mut harness, input, ends),
    }
});
