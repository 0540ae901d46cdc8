//! The session as the loop drives it, over bytes in memory
//! ([`crate::tls_session::harness`]): what hostile or unlucky clients send
//! during and right after the handshake, and, for the records after it, a
//! comparison with a plain rustls server given the same records.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::harness::{Harness, tls12};
use crate::tls::records::tests::Peer;

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// A server configuration as the server makes it (the keys leave rustls
/// after a TLS 1.3 handshake), a client configuration that trusts it and
/// speaks `versions`.
fn configs(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    configs_with(versions, rustls::crypto::ring::default_provider())
}

/// [`configs`] with a client that offers what `provider` has.
fn configs_with(
    versions: &[&'static rustls::SupportedProtocolVersion],
    provider: rustls::crypto::CryptoProvider,
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut server = (*crate::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap()).clone();
    server.enable_secret_extraction = true;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.enable_secret_extraction = true;
    (Arc::new(server), Arc::new(client))
}

fn client(config: &Arc<rustls::ClientConfig>) -> rustls::ClientConnection {
    rustls::ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap()).unwrap()
}

/// What the client has to send.
fn from_client(client: &mut rustls::ClientConnection) -> Vec<u8> {
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    wire
}

/// The client reads `wire`: the plaintext it got, or the error it met.
fn to_client(client: &mut rustls::ClientConnection, wire: &[u8]) -> Result<Vec<u8>, rustls::Error> {
    let mut bytes = wire;
    let mut plain = Vec::new();
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).unwrap();
        client.process_new_packets()?;
        let mut buf = [0; 4096];
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    Ok(plain)
}

/// The server reads what arrived: `WouldBlock` is expected and nothing
/// else, and no plaintext.
fn server_reads_nothing(harness: &mut Harness) {
    let (plain, error) = harness.read_all();
    assert!(plain.is_empty(), "{plain:?}");
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::WouldBlock));
}

/// The handshake up to the client's last flight, which it holds: the
/// server's flight is read.
fn up_to_finished(harness: &mut Harness, client: &mut rustls::ClientConnection) {
    for _ in 0..4 {
        harness.receive(&from_client(client));
        server_reads_nothing(harness);
        to_client(client, &harness.take_sent()).unwrap();
        if !client.is_handshaking() {
            return;
        }
    }
    panic!("no handshake");
}

/// A whole handshake: the client's last flight read too, and what the
/// server sent after it.
fn connected(versions: &[&'static rustls::SupportedProtocolVersion]) -> (Harness, rustls::ClientConnection) {
    connected_with(&configs(versions))
}

/// [`connected`] with these configurations.
fn connected_with(
    (server, client_config): &(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>),
) -> (Harness, rustls::ClientConnection) {
    let mut harness = Harness::new(server).unwrap();
    let mut client = client(client_config);
    up_to_finished(&mut harness, &mut client);
    harness.receive(&from_client(&mut client));
    server_reads_nothing(&mut harness);
    to_client(&mut client, &harness.take_sent()).unwrap();
    (harness, client)
}

fn record(content: u8, body: &[u8]) -> Vec<u8> {
    let mut record = vec![content, 3, 3];
    record.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    record.extend_from_slice(body);
    record
}

/// The session refused the peer during the handshake: an error that says
/// so, a fatal alert in plaintext (there are no keys yet) as the last
/// record sent, and from then on what the peer sends is dropped.
fn refused_with_an_alert(harness: &mut Harness) {
    let (_, error) = harness.read_all();
    let error = error.expect("an error");
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    let sent = harness.take_sent();
    let alert = sent.get(sent.len().saturating_sub(7)..).unwrap_or_default();
    assert!(
        matches!(alert, [ALERT, 3, _, 0, 2, 2, _]),
        "no fatal alert at the end: {sent:?}"
    );
    harness.receive(&[HANDSHAKE; 1000]);
    assert_eq!(
        harness.read(&mut [0; 100]).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "what follows is dropped"
    );
    assert!(harness.take_sent().is_empty(), "nothing after the alert");
    harness.end_input();
    assert_eq!(harness.read(&mut [0; 100]).unwrap(), 0);
}

/// A little generator of bytes that look random, the same every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn records_that_claim_to_be_handshake_records_holding_garbage_are_refused() {
    let (server, _) = configs(rustls::ALL_VERSIONS);
    for split in [16 * 1024 + 5, 1000, 7] {
        let mut harness = Harness::new(&server).unwrap();
        let mut wire = Vec::new();
        for round in 0..64 {
            wire.extend_from_slice(&[HANDSHAKE, 3, 1, 0x3f, 0xfb]);
            wire.extend(noise(16379, round));
        }
        let mut error = None;
        for piece in wire.chunks(split) {
            harness.receive(piece);
            let (plain, e) = harness.read_all();
            assert!(plain.is_empty());
            assert!(harness.held_bytes() <= 2 * Harness::INCOMING_LIMIT + 64 * 1024);
            if let Some(e) = e.filter(|e| e.kind() != ErrorKind::WouldBlock) {
                error = Some(e);
                break;
            }
        }
        let error = error.expect("refused");
        assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    }
}

/// A ClientHello rustls refuses (its one cipher suite is none rustls
/// has), with the header of another handshake message after it in its
/// record.
#[test]
fn a_refused_client_hello_with_more_handshake_bytes_in_its_record() {
    let (server, _) = configs(rustls::ALL_VERSIONS);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x00, 0x01, 1, 0, 0, 0]);
    let mut handshake = vec![1, 0, 0, u8::try_from(body.len()).unwrap()];
    handshake.extend(body);
    handshake.extend_from_slice(&[1, 0, 0, 16]);
    let mut harness = Harness::new(&server).unwrap();
    harness.receive(&record(HANDSHAKE, &handshake));
    refused_with_an_alert(&mut harness);
}

/// The client's hello in two records, of which the server has the
/// first when it closes (a graceful shutdown) and when it writes.
#[test]
fn half_a_client_hello_held_while_the_server_writes_and_closes() {
    let (server, client_config) = configs(rustls::ALL_VERSIONS);
    let hello = from_client(&mut client(&client_config));
    let body = &hello[5..];
    let first = &body[..body.len() / 2];
    let mut harness = Harness::new(&server).unwrap();
    harness.receive(&record(HANDSHAKE, first));
    server_reads_nothing(&mut harness);
    assert_eq!(
        harness.write(b"too early").unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    harness.close();
    assert!(harness.take_sent().is_empty());

    // And the same hello, whole, still makes a handshake.
    let mut harness = Harness::new(&server).unwrap();
    let mut client = client(&client_config);
    let hello = from_client(&mut client);
    let body = &hello[5..];
    let (first, second_part) = body.split_at(body.len() / 2);
    harness.receive(&record(HANDSHAKE, first));
    server_reads_nothing(&mut harness);
    assert_eq!(
        harness.write(b"too early").unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    harness.receive(&record(HANDSHAKE, second_part));
    server_reads_nothing(&mut harness);
    to_client(&mut client, &harness.take_sent()).unwrap();
    harness.receive(&from_client(&mut client));
    server_reads_nothing(&mut harness);
    harness.write(b"hello").unwrap();
    assert_eq!(to_client(&mut client, &harness.take_sent()).unwrap(), b"hello");
}

/// TLS 1.2: the client's last flight starts with a record holding only
/// the start of its first message; the server writes (a timer's event,
/// say) before the rest comes.
#[test]
fn a_write_while_a_tls12_handshake_message_is_half_read() {
    let (server, client_config) = configs(&[&rustls::version::TLS12]);
    let mut harness = Harness::new(&server).unwrap();
    let mut client = client(&client_config);
    harness.receive(&from_client(&mut client));
    server_reads_nothing(&mut harness);
    to_client(&mut client, &harness.take_sent()).unwrap();
    let flight = from_client(&mut client);
    assert_eq!(flight[0], HANDSHAKE);
    let len = usize::from(u16::from_be_bytes([flight[3], flight[4]]));
    let (head, rest) = flight.split_at(5 + len);
    let body = &head[5..];
    harness.receive(&record(HANDSHAKE, &body[..3]));
    server_reads_nothing(&mut harness);
    assert_eq!(harness.write(b"tick").unwrap_err().kind(), ErrorKind::WouldBlock);
    harness.close();
    let mut more = record(HANDSHAKE, &body[3..]);
    more.extend_from_slice(rest);
    harness.receive(&more);
    server_reads_nothing(&mut harness);
    to_client(&mut client, &harness.take_sent()).unwrap();
    assert!(!client.is_handshaking());
}

/// The TLS 1.2 client whose records the tests seal by hand
/// ([`tls12::Peer`]) speaks each of rustls' TLS 1.2 suites as rustls
/// does: the session reads what it seals, and it opens what the session
/// writes.
#[test]
fn a_hand_sealed_tls12_client_and_the_session_understand_each_other() {
    use rustls::crypto::ring::cipher_suite;
    for suite in [
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ] {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: vec![suite],
            ..rustls::crypto::ring::default_provider()
        };
        let (mut harness, client) = connected_with(&configs_with(&[&rustls::version::TLS12], provider));
        assert_eq!(client.negotiated_cipher_suite(), Some(suite));
        let mut peer = tls12::Peer::new(client.dangerous_extract_secrets().unwrap()).unwrap();
        for round in 0..3u8 {
            harness.receive(&peer.seal(APPLICATION_DATA, &[round; 100]).unwrap());
            assert_eq!(harness.read_all().0, [round; 100], "{suite:?}");
            harness.write(&[round; 200]).unwrap();
            assert_eq!(
                peer.open(&harness.take_sent()),
                Some(vec![(APPLICATION_DATA, vec![round; 200])]),
                "{suite:?}"
            );
        }
    }
}

/// The first half of a ClientHello in a record of its own, then the end
/// of the client's stream: the end is read as the end, and a write and
/// the close after it send nothing (there is no handshake to speak
/// under). rustls keeps the half message in the bytes it was given, by
/// position, so those bytes go to it again after the end too: given
/// none, it sliced past the end of the empty buffer and panicked.
#[test]
fn half_a_client_hello_then_the_end_of_the_stream() {
    let (server, client_config) = configs(rustls::ALL_VERSIONS);
    let hello = from_client(&mut client(&client_config));
    let body = &hello[5..];
    let mut harness = Harness::new(&server).unwrap();
    harness.receive(&record(HANDSHAKE, &body[..body.len() / 2]));
    harness.end_input();
    let (plain, error) = harness.read_all();
    assert!(plain.is_empty(), "{plain:?}");
    assert!(error.is_none(), "the end, not {error:?}");
    assert_eq!(harness.write(b"late").unwrap_err().kind(), ErrorKind::WouldBlock);
    harness.close();
    assert!(harness.take_sent().is_empty());
}

/// Issue 72: TLS 1.2, a request answered, then one record under the
/// session's keys holding the start of a handshake message (a
/// ClientHello's header announcing 100 bytes, and 10 of them), and the
/// end of the client's stream. rustls decrypts the record in place and
/// keeps the message's start there; the close after the end gives it
/// those bytes again (it gave it none, and rustls panicked). The end is
/// read as the end, and the close sends close_notify.
#[test]
fn a_tls12_handshake_message_cut_short_by_the_end_of_the_stream() {
    let (mut harness, mut client) = connected(&[&rustls::version::TLS12]);
    client
        .writer()
        .write_all(b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    harness.receive(&from_client(&mut client));
    let (request, error) = harness.read_all();
    assert!(request.starts_with(b"GET /nope "), "{request:?}");
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::WouldBlock));
    let answer = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    harness.write(answer).unwrap();
    assert_eq!(to_client(&mut client, &harness.take_sent()).unwrap(), answer);

    let mut peer = tls12::Peer::new(client.dangerous_extract_secrets().unwrap()).unwrap();
    let hello_start = [&[1, 0, 0, 100][..], &[0; 10]].concat();
    harness.receive(&peer.seal(HANDSHAKE, &hello_start).unwrap());
    harness.end_input();
    let (plain, error) = harness.read_all();
    assert!(plain.is_empty(), "{plain:?}");
    assert!(error.is_none(), "the end, not {error:?}");
    harness.close();
    assert_eq!(
        peer.open(&harness.take_sent()),
        Some(vec![(ALERT, vec![1, 0])]),
        "close_notify"
    );
}

/// The client's KeyUpdate, asking for the server's, in the same write as
/// its Finished: the server's answer and its next records are read by
/// the client under the keys it expects.
#[test]
fn a_key_update_sent_with_the_finished_is_answered() {
    let (server, client_config) = configs(&[&rustls::version::TLS13]);
    let mut harness = Harness::new(&server).unwrap();
    let mut client = client(&client_config);
    up_to_finished(&mut harness, &mut client);
    client.refresh_traffic_keys().unwrap();
    client.writer().write_all(b"first words").unwrap();
    harness.receive(&from_client(&mut client));
    let (plain, error) = harness.read_all();
    assert_eq!(plain, b"first words");
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::WouldBlock));
    harness.write(b"the answer").unwrap();
    assert_eq!(
        to_client(&mut client, &harness.take_sent()).unwrap(),
        b"the answer"
    );
    // And both ways again after it.
    client.writer().write_all(b"more").unwrap();
    harness.receive(&from_client(&mut client));
    assert_eq!(harness.read_all().0, b"more");
    harness.write(b"more back").unwrap();
    assert_eq!(
        to_client(&mut client, &harness.take_sent()).unwrap(),
        b"more back"
    );
}

/// The Finished, then in the same write a record holding two KeyUpdates
/// (a message after a key change in its record: §5.1's
/// unexpected_message).
#[test]
fn two_key_updates_in_the_record_after_the_finished() {
    let (server, client_config) = configs(&[&rustls::version::TLS13]);
    let mut harness = Harness::new(&server).unwrap();
    let mut client = client(&client_config);
    up_to_finished(&mut harness, &mut client);
    let mut wire = from_client(&mut client);
    let mut peer = Peer::new(client);
    let update = [24, 0, 0, 1, 1];
    wire.extend(peer.record(HANDSHAKE, &[update, update].concat()));
    harness.receive(&wire);
    let (_, error) = harness.read_all();
    assert_eq!(error.unwrap().kind(), ErrorKind::InvalidData);
    let opened = peer.open(&harness.take_sent());
    assert_eq!(opened.last(), Some(&Some((ALERT, vec![2, 10]))), "{opened:?}");
}

/// What a server answers to records a client sends after the handshake.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// The plaintext it read.
    data: Vec<u8>,
    /// The alert it sent, if any: (level, description).
    alert: Option<(u8, u8)>,
}

fn alert_in(opened: &[Option<(u8, Vec<u8>)>]) -> Option<(u8, u8)> {
    opened
        .iter()
        .flatten()
        .find_map(|(content, body)| match (content, body.as_slice()) {
            (&ALERT, &[level, description]) => Some((level, description)),
            _ => None,
        })
}

/// tether's session, given `wire` after a TLS 1.3 handshake.
fn tether_outcome(records: &dyn Fn(&mut Peer) -> Vec<u8>) -> Outcome {
    let (mut harness, client) = connected(&[&rustls::version::TLS13]);
    let mut peer = Peer::new(client);
    harness.receive(&records(&mut peer));
    let (data, _) = harness.read_all();
    Outcome {
        data,
        alert: alert_in(&peer.open(&harness.take_sent())),
    }
}

/// A plain rustls server, given `wire` after a TLS 1.3 handshake.
fn rustls_outcome(records: &dyn Fn(&mut Peer) -> Vec<u8>) -> Outcome {
    let (server_config, client_config) = configs(&[&rustls::version::TLS13]);
    let mut server = rustls::ServerConnection::new(server_config).unwrap();
    let mut client = client(&client_config);
    for _ in 0..6 {
        let wire = from_client(&mut client);
        server.read_tls(&mut &wire[..]).unwrap();
        server.process_new_packets().unwrap();
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        to_client(&mut client, &back).unwrap();
    }
    assert!(!server.is_handshaking() && !client.is_handshaking());
    let mut peer = Peer::new(client);
    let wire = records(&mut peer);
    let mut bytes = &wire[..];
    let mut data = Vec::new();
    while !bytes.is_empty() {
        if server.read_tls(&mut bytes).unwrap() == 0 {
            break;
        }
        let processed = server.process_new_packets();
        let mut buf = [0; 4096];
        while let Ok(n) = server.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        if processed.is_err() {
            break;
        }
    }
    let mut back = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut back).unwrap();
    }
    Outcome {
        data,
        alert: alert_in(&peer.open(&back)),
    }
}

/// Where tether's answer differs from rustls' on purpose: RFC 8446 names
/// the alert, and rustls sends another or none. Each with the RFC's words.
const UNEXPECTED_PER_RFC: [(&str, &str); 7] = [
    (
        "no content type",
        "§5.4: a cleartext with no non-zero octet MUST get unexpected_message (rustls closes without an alert)",
    ),
    (
        "an empty alert",
        "§5.4: an Alert with zero-length content MUST get unexpected_message (rustls: decode_error)",
    ),
    (
        "an empty handshake record",
        "§5.4: a Handshake record with zero-length content MUST get unexpected_message (rustls reads on)",
    ),
    (
        "half a KeyUpdate, then data",
        "§5.1: handshake fragments MUST NOT be interleaved with other records; §5: an unexpected record type MUST get unexpected_message (rustls closes without an alert)",
    ),
    (
        "a new ClientHello",
        "§4.1.2: a ClientHello after a TLS 1.3 handshake MUST get unexpected_message (rustls parses it first: decode_error)",
    ),
    (
        "an unknown content type",
        "§5: an unexpected record type MUST get unexpected_message (rustls: decode_error)",
    ),
    (
        "a record not protected",
        "§5: after the handshake every record is application_data outside; any other is an unexpected record type (rustls tries to decrypt it: bad_record_mac)",
    ),
];

#[test]
fn records_after_the_handshake_are_answered_as_rustls_answers_them() {
    const KEY_UPDATE: [u8; 5] = [24, 0, 0, 1, 0];
    type Records = Box<dyn Fn(&mut Peer) -> Vec<u8>>;
    let cases: Vec<(&str, Records)> = vec![
        ("data", Box::new(|p| p.record(APPLICATION_DATA, b"hello"))),
        (
            "empty data, then data",
            Box::new(|p| [p.record(APPLICATION_DATA, b""), p.record(APPLICATION_DATA, b"x")].concat()),
        ),
        (
            "padded data",
            Box::new(|p| {
                p.record(
                    0,
                    &[b"padded".as_slice(), &[APPLICATION_DATA], &[0; 300]].concat(),
                )
            }),
        ),
        ("no content type", Box::new(|p| p.record(0, &[0; 20]))),
        ("an empty alert", Box::new(|p| p.record(ALERT, b""))),
        ("half an alert", Box::new(|p| p.record(ALERT, &[2]))),
        ("two alerts", Box::new(|p| p.record(ALERT, &[1, 90, 1, 90]))),
        (
            "user_canceled, then data",
            Box::new(|p| [p.record(ALERT, &[1, 90]), p.record(APPLICATION_DATA, b"still")].concat()),
        ),
        ("the peer's fatal alert", Box::new(|p| p.record(ALERT, &[2, 40]))),
        (
            "a KeyUpdate in two records, then data under the old key",
            Box::new(|p| {
                [
                    p.record(HANDSHAKE, &KEY_UPDATE[..2]),
                    p.record(HANDSHAKE, &KEY_UPDATE[2..]),
                    p.record(APPLICATION_DATA, b"old key"),
                ]
                .concat()
            }),
        ),
        (
            "two KeyUpdates in one record",
            Box::new(|p| p.record(HANDSHAKE, &[KEY_UPDATE, KEY_UPDATE].concat())),
        ),
        (
            "a KeyUpdate and a byte more",
            Box::new(|p| p.record(HANDSHAKE, &[&KEY_UPDATE[..], &[24]].concat())),
        ),
        (
            "a KeyUpdate asking something unknown",
            Box::new(|p| p.record(HANDSHAKE, &[24, 0, 0, 1, 2])),
        ),
        (
            "a KeyUpdate of the wrong length",
            Box::new(|p| p.record(HANDSHAKE, &[24, 0, 0, 2, 0, 0])),
        ),
        (
            "half a KeyUpdate, then data",
            Box::new(|p| [p.record(HANDSHAKE, &[24, 0]), p.record(APPLICATION_DATA, b"x")].concat()),
        ),
        (
            "an empty handshake record",
            Box::new(|p| p.record(HANDSHAKE, b"")),
        ),
        (
            "a new ClientHello",
            Box::new(|p| p.record(HANDSHAKE, &[1, 0, 0, 0])),
        ),
        ("change_cipher_spec, protected", Box::new(|p| p.record(20, &[1]))),
        ("an unknown content type", Box::new(|p| p.record(99, b"?"))),
        (
            "data of 2^14 + 1 bytes",
            Box::new(|p| p.record(APPLICATION_DATA, &[1; 16 * 1024 + 1])),
        ),
        (
            "data of 2^14 bytes",
            Box::new(|p| p.record(APPLICATION_DATA, &[1; 16 * 1024])),
        ),
        (
            "data and padding over 2^14 + 1 bytes",
            Box::new(|p| p.record(0, &[&[b'x', APPLICATION_DATA][..], &[0; 16 * 1024]].concat())),
        ),
        (
            "a record of no bytes",
            Box::new(|_| record(APPLICATION_DATA, b"")),
        ),
        (
            "a record of 15 bytes",
            Box::new(|_| record(APPLICATION_DATA, &[0; 15])),
        ),
        (
            "a record of 16 bytes",
            Box::new(|_| record(APPLICATION_DATA, &[0; 16])),
        ),
        (
            "a record not protected",
            Box::new(|_| record(HANDSHAKE, &[24, 0, 0, 1, 0])),
        ),
        (
            "a bit flipped",
            Box::new(|p| {
                let mut r = p.record(APPLICATION_DATA, b"tampered");
                let last = r.len() - 1;
                r[last] ^= 1;
                r
            }),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, records) in &cases {
        let tether = tether_outcome(records.as_ref());
        let rustls = rustls_outcome(records.as_ref());
        let rfc = UNEXPECTED_PER_RFC.iter().find(|(case, _)| case == name);
        match rfc {
            None if tether != rustls => wrong.push(format!("{name}: tether {tether:?}, rustls {rustls:?}")),
            Some((_, reason)) if tether.alert != Some((2, 10)) || tether == rustls => {
                wrong.push(format!(
                    "{name}: tether {tether:?}, rustls {rustls:?}; expected: {reason}"
                ));
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    for (name, _) in UNEXPECTED_PER_RFC {
        assert!(cases.iter().any(|(case, _)| *case == name), "{name}");
    }
}
