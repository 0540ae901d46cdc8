//! A rustls client and the server's records, in memory: the handshake
//! is rustls' on both sides, then the server's records are these.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use ring::aead;
use rustls::crypto::ring::cipher_suite;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};

use super::keys::Keys;
use super::seal::seal_record;
use super::*;

mod alerts;
mod properties;

fn provider(suite: rustls::SupportedCipherSuite) -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![suite],
        ..rustls::crypto::ring::default_provider()
    })
}

/// The traffic secrets of a connection, from the client's key log: the
/// client's and the server's, as the handshake left them.
#[derive(Debug, Default)]
pub(super) struct TrafficSecrets {
    pub(super) client: Vec<u8>,
    pub(super) server: Vec<u8>,
}

#[derive(Debug, Default)]
struct SecretLog(Mutex<TrafficSecrets>);

impl rustls::KeyLog for SecretLog {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        let mut secrets = self.0.lock().unwrap();
        match label {
            "CLIENT_TRAFFIC_SECRET_0" => secrets.client = secret.to_vec(),
            "SERVER_TRAFFIC_SECRET_0" => secrets.server = secret.to_vec(),
            _ => {}
        }
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// A finished handshake: the client, and the server's record layer.
pub(super) fn connected(suite: rustls::SupportedCipherSuite) -> (rustls::ClientConnection, Records) {
    let (client, records, _) = connected_with_secrets(suite);
    (client, records)
}

/// A finished handshake, and its traffic secrets.
pub(super) fn connected_with_secrets(
    suite: rustls::SupportedCipherSuite,
) -> (rustls::ClientConnection, Records, TrafficSecrets) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let server_config = {
        let mut c = rustls::ServerConfig::builder_with_provider(provider(suite))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![made.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into()),
            )
            .unwrap();
        c.enable_secret_extraction = true;
        Arc::new(c)
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider(suite))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.enable_secret_extraction = true;
    let log = Arc::new(SecretLog::default());
    client_config.key_log = log.clone();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
    let mut server = UnbufferedServerConnection::new(server_config).unwrap();
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() && to_server.is_empty() {
            let (secrets, kernel) = server.dangerous_into_kernel_connection().unwrap();
            let traffic = std::mem::take(&mut *log.0.lock().unwrap());
            return (client, Records::new(secrets, kernel).unwrap(), traffic);
        }
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        loop {
            let UnbufferedStatus { discard, state } = server.process_tls_records(&mut to_server);
            let more = match state.unwrap() {
                ConnectionState::EncodeTlsData(mut data) => {
                    let mut buf = vec![0; 64 * 1024];
                    let n = data.encode(&mut buf).unwrap();
                    to_client.extend_from_slice(&buf[..n]);
                    true
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    true
                }
                ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => false,
                other => panic!("the server's handshake: {other:?}"),
            };
            to_server.drain(..discard);
            if !more {
                break;
            }
        }
        client.read_tls(&mut &to_client[..]).unwrap();
        to_client.clear();
        client.process_new_packets().unwrap();
    }
    panic!("no handshake");
}

pub(super) const SUITES: [rustls::SupportedCipherSuite; 3] = [
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// What the client sends, as records on the wire.
pub(super) fn from_client(client: &mut rustls::ClientConnection, plaintext: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut rest = plaintext;
    loop {
        // rustls takes up to its buffer's limit at a time.
        let n = client.writer().write(rest).unwrap();
        rest = &rest[n..];
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        if rest.is_empty() {
            return wire;
        }
    }
}

/// Opens `wire` whole: the data, and what else was found.
pub(super) fn open_all(records: &mut Records, wire: &mut [u8]) -> Result<(Vec<u8>, Opened), RecordError> {
    let mut data = Vec::new();
    let opened = records.open(wire, |d| data.extend_from_slice(d))?;
    Ok((data, opened))
}

/// The client reads `wire`: the plaintext it got.
pub(super) fn to_client(client: &mut rustls::ClientConnection, wire: &[u8]) -> Vec<u8> {
    let mut bytes = wire;
    let mut plain = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).unwrap();
        client.process_new_packets().unwrap();
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    plain
}

pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

#[test]
fn each_suite_carries_data_both_ways() {
    for suite in SUITES {
        let (mut client, mut records) = connected(suite);
        for len in [
            0,
            1,
            5,
            MAX_PLAINTEXT - 1,
            MAX_PLAINTEXT,
            MAX_PLAINTEXT + 1,
            100_000,
        ] {
            let sent = pattern(len);
            let mut wire = from_client(&mut client, &sent);
            let (got, opened) = open_all(&mut records, &mut wire).unwrap();
            assert_eq!(got, sent, "{suite:?}: {len} bytes from the client");
            assert_eq!(opened.used, wire.len());
            let mut out = Vec::new();
            records.seal(&sent, &mut out).unwrap();
            let records_made = len.div_ceil(MAX_PLAINTEXT).max(1);
            assert_eq!(out.len(), len + records_made * OVERHEAD, "{len}");
            assert_eq!(
                to_client(&mut client, &out),
                sent,
                "{suite:?}: {len} bytes to the client"
            );
        }
    }
}

#[test]
fn records_arriving_a_byte_at_a_time_open_once_whole() {
    let (mut client, mut records) = connected(SUITES[0]);
    let sent = pattern(40_000);
    let wire = from_client(&mut client, &sent);
    let (mut buffer, mut got, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    for (i, byte) in wire.iter().enumerate() {
        buffer.push(*byte);
        let opened = records.open(&mut buffer, |d| got.extend_from_slice(d)).unwrap();
        if opened.used > 0 {
            ends.push(i + 1);
        }
        buffer.drain(..opened.used);
    }
    assert_eq!(got, sent);
    assert!(buffer.is_empty());
    // A record opens when its last byte comes, not before.
    let mut end = 0;
    let mut expected = Vec::new();
    while end < wire.len() {
        end += HEADER + usize::from(u16::from_be_bytes([wire[end + 3], wire[end + 4]]));
        expected.push(end);
    }
    assert_eq!(ends, expected);
}

#[test]
fn a_key_update_the_client_asks_for_is_answered_before_the_next_data() {
    let (mut client, mut records) = connected(SUITES[0]);
    for round in 0..3 {
        client.refresh_traffic_keys().unwrap();
        let mut wire = from_client(&mut client, b"after the update");
        let (got, opened) = open_all(&mut records, &mut wire).unwrap();
        assert_eq!(got, b"after the update", "round {round}");
        assert!(opened.update_requested);
        let mut out = Vec::new();
        records.seal_key_update(&mut out).unwrap();
        records.seal(b"the answer", &mut out).unwrap();
        assert_eq!(to_client(&mut client, &out), b"the answer");
    }
    // The client reads under the key it changed to when the server's
    // KeyUpdate came: one record since (the answer).
    let secrets = client.dangerous_extract_secrets().unwrap();
    assert_eq!(secrets.rx.0, 1);
    assert_eq!(secrets.tx.0, 1);
}

#[test]
fn the_server_updates_its_key_before_the_suites_limit() {
    let (mut client, mut records) = connected(SUITES[1]);
    records.tx_limit = 3;
    let mut got = Vec::new();
    for i in 0..5u8 {
        let mut out = Vec::new();
        records.seal(&[i], &mut out).unwrap();
        got.extend(to_client(&mut client, &out));
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    // Under one key (since the session tickets, which count too),
    // the client would be at 5 records or more; it reads under the
    // key the server changed to, with the server's count.
    let secrets = client.dangerous_extract_secrets().unwrap();
    assert!(secrets.rx.0 < 3, "{}", secrets.rx.0);
    assert_eq!(secrets.rx.0, records.tx.seq);
}

/// Records sealed with the client's own keys, to say what rustls would
/// never send.
pub(super) struct Forger(pub(super) Keys);

pub(super) fn forger(client: rustls::ClientConnection) -> Forger {
    Forger::new(client)
}

impl Forger {
    pub(super) fn new(client: rustls::ClientConnection) -> Forger {
        let secrets = client.dangerous_extract_secrets().unwrap();
        Forger(Keys::new(&secrets.tx.1, secrets.tx.0).unwrap())
    }

    pub(super) fn record(&mut self, content: u8, plaintext: &[u8]) -> Vec<u8> {
        let key = self.0.expand().unwrap();
        let mut out = Vec::new();
        seal_record(&mut self.0, &key, content, plaintext, &mut out).unwrap();
        out
    }
}

/// A client's two directions, taken from it: records it would never
/// send, sealed with its keys, and the server's records opened.
pub(crate) struct Peer {
    tx: Forger,
    rx: Keys,
}

impl Peer {
    /// The keys of `client`, whose handshake is done.
    pub(crate) fn new(client: rustls::ClientConnection) -> Peer {
        let secrets = client.dangerous_extract_secrets().unwrap();
        Peer {
            tx: Forger(Keys::new(&secrets.tx.1, secrets.tx.0).unwrap()),
            rx: Keys::new(&secrets.rx.1, secrets.rx.0).unwrap(),
        }
    }

    /// One record of `content`, sealed as the client would.
    pub(crate) fn record(&mut self, content: u8, plaintext: &[u8]) -> Vec<u8> {
        self.tx.record(content, plaintext)
    }

    /// The server's records in `wire`, opened in order: each one's
    /// content type and content. Stops at the first that does not
    /// open (`None` then ends the list).
    pub(crate) fn open(&mut self, wire: &[u8]) -> Vec<Option<(u8, Vec<u8>)>> {
        let mut opened = Vec::new();
        let mut rest = wire;
        while rest.len() >= HEADER {
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            let Some(record) = rest.get(..HEADER + len) else {
                break;
            };
            let header: [u8; HEADER] = record[..HEADER].try_into().unwrap();
            let mut body = record[HEADER..].to_vec();
            let key = self.rx.expand().unwrap();
            let nonce = self.rx.next_nonce().unwrap();
            let Ok(plain) = key.open_in_place(nonce, aead::Aad::from(header), &mut body) else {
                opened.push(None);
                break;
            };
            let end = plain.iter().rposition(|&b| b != 0).unwrap();
            opened.push(Some((plain[end], plain[..end].to_vec())));
            rest = &rest[HEADER + len..];
        }
        opened
    }
}

#[test]
fn a_key_update_in_fragments_over_records_is_joined() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    let before = records.rx.seq;
    let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE]);
    wire.extend(forger.record(CONTENT_HANDSHAKE, &[0, 0]));
    wire.extend(forger.record(CONTENT_HANDSHAKE, &[1, 1]));
    let (_, opened) = open_all(&mut records, &mut wire).unwrap();
    assert_eq!(opened.used, wire.len());
    assert!(opened.update_requested);
    // Read under the next key now, from its first record.
    assert_eq!(records.rx.seq, 0, "was {before}");
    forger.0 = records.rx.clone();
    let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"under the new key");
    let (got, _) = open_all(&mut records, &mut wire).unwrap();
    assert_eq!(got, b"under the new key");
}

#[test]
fn padding_and_empty_records_are_read_as_nothing() {
    let (client, mut records) = connected(SUITES[0]);
    let mut forger = Forger::new(client);
    let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"");
    // Padding is zeros after the content type (§5.4).
    let mut padded = b"padded".to_vec();
    padded.push(CONTENT_APPLICATION_DATA);
    padded.extend_from_slice(&[0; 100]);
    wire.extend(forger.record(0, &padded));
    let (got, opened) = open_all(&mut records, &mut wire).unwrap();
    assert_eq!(got, b"padded");
    assert_eq!(opened.used, wire.len());
}

/// The refusal that opening `wire` whole ends in.
pub(super) fn refused(wire: &mut [u8], records: &mut Records) -> RecordError {
    open_all(records, wire)
        .map(|(d, o)| (d.len(), o.used))
        .unwrap_err()
}

#[test]
fn keys_derived_from_the_traffic_secrets_are_the_ones_rustls_hands_over() {
    // §7.3 for the first keys, and §7.2 for each update: a record layer
    // made from the secrets alone talks to a rustls client, both ways,
    // across key updates of either side.
    for (suite, own) in SUITES.into_iter().zip(OWN_SUITES) {
        let (mut client, kernel, secrets) = connected_with_secrets(suite);
        let mut records = Records::from_secrets(own, &secrets.client, &secrets.server).unwrap();
        assert!(records.tx.same_key(&kernel.tx), "{suite:?}");
        assert!(records.rx.same_key(&kernel.rx), "{suite:?}");
        assert_eq!(records.tx_limit, kernel.tx_limit);
        // The server sent its session tickets under its first key.
        records.tx.seq = kernel.tx.seq;
        records.rx.seq = kernel.rx.seq;
        for round in 0..3 {
            client.refresh_traffic_keys().unwrap();
            let mut wire = from_client(&mut client, b"after the client's update");
            let (got, opened) = open_all(&mut records, &mut wire).unwrap();
            assert_eq!(got, b"after the client's update", "{suite:?} round {round}");
            assert_eq!((opened.key_updates, opened.update_requested), (1, true));
            let mut out = Vec::new();
            records.seal_key_update(&mut out).unwrap();
            records.seal(b"after the server's update", &mut out).unwrap();
            assert_eq!(to_client(&mut client, &out), b"after the server's update");
        }
    }
    // A secret of another length than the suite's hash is refused.
    assert!(Records::from_secrets(Suite::Aes256GcmSha384, &[1; 32], &[2; 48]).is_none());
    assert!(Records::from_secrets(Suite::Aes128GcmSha256, &[1; 32], &[2; 31]).is_none());
}

/// Two sides made from the same secrets, a server and its client: each
/// reads what the other seals.
pub(super) fn pair(suite: Suite) -> (Records, Records) {
    let (client_secret, server_secret) = (pattern(48), pattern(49).split_off(1));
    let len = match suite {
        Suite::Aes256GcmSha384 => 48,
        _ => 32,
    };
    let (c, s) = (&client_secret[..len], &server_secret[..len]);
    (
        Records::from_secrets(suite, c, s).unwrap(),
        Records::from_secrets(suite, s, c).unwrap(),
    )
}

pub(super) const OWN_SUITES: [Suite; 3] = [
    Suite::Aes128GcmSha256,
    Suite::Aes256GcmSha384,
    Suite::Chacha20Poly1305Sha256,
];
