//! TLS 1.3's record layer (RFC 8446 §5) once the handshake is done.
//!
//! rustls makes the handshake; then, as kTLS does, the session takes the
//! traffic keys out of it and opens and seals records here with ring's
//! AEADs. Of rustls there remains its `KernelConnection`, which derives
//! the next keys when either side updates them (a few hundred bytes). A
//! direction's AEAD key is kept as its bytes (up to 32, and a 12-byte IV)
//! and expanded for each batch of records, so that an idle connection
//! does not keep ring's expanded key and GHASH table (560 bytes a
//! direction with AES-GCM).
//!
//! Sans-IO: records in, plaintext out; plaintext in, records out.

use ring::aead;
use rustls::ConnectionTrafficSecrets;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;

/// A record's header: content type, legacy version, length.
const HEADER: usize = 5;
/// The AEAD tag of every suite TLS 1.3 has.
const TAG: usize = 16;
/// Plaintext in one record at most (2^14).
const MAX_PLAINTEXT: usize = 16 * 1024;
/// A record's inner plaintext at most: content, content type and padding
/// (2^14 + 1, §5.4).
const MAX_INNER: usize = MAX_PLAINTEXT + 1;
/// A protected record's body at most (2^14 + 256).
const MAX_BODY: usize = MAX_PLAINTEXT + 256;
/// What a record adds to the plaintext it seals: header, inner content
/// type, tag.
const OVERHEAD: usize = HEADER + 1 + TAG;

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
/// `legacy_record_version` of every TLS 1.3 record (and ignored when read).
const LEGACY_VERSION: [u8; 2] = [3, 3];
const HANDSHAKE_KEY_UPDATE: u8 = 24;
/// A KeyUpdate's length: type, a 24-bit length, and its one byte.
const KEY_UPDATE_LEN: usize = 5;
const ALERT_LEVEL_WARNING: u8 = 1;
const ALERT_LEVEL_FATAL: u8 = 2;
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_USER_CANCELED: u8 = 90;
/// Key updates a peer may make in a row without sending data between
/// them (each costs a key derivation): as many as rustls allows.
const KEY_UPDATES_WITHOUT_DATA: u8 = 32;
/// Warning alerts (`user_canceled`) a peer may send without data between.
const WARNINGS_WITHOUT_DATA: u8 = 4;

/// An alert this side sends before it gives up on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alert {
    UnexpectedMessage = 10,
    BadRecordMac = 20,
    RecordOverflow = 22,
    IllegalParameter = 47,
    DecodeError = 50,
    InternalError = 80,
}

/// Why the records cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// The peer broke the protocol: this alert tells it so.
    Send(Alert),
    /// The peer ended the connection with this fatal alert.
    Received(u8),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Send(alert) => write!(f, "TLS: the peer's records are bad ({alert:?})"),
            RecordError::Received(code) => write!(f, "TLS: the peer sent the fatal alert {code}"),
        }
    }
}

impl From<RecordError> for std::io::Error {
    fn from(e: RecordError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    }
}

/// One direction's traffic key, as bytes.
#[cfg_attr(test, derive(Clone))]
struct Keys {
    algorithm: &'static aead::Algorithm,
    key: [u8; 32],
    key_len: u8,
    iv: [u8; aead::NONCE_LEN],
    /// The sequence number of the next record.
    seq: u64,
}

impl Keys {
    fn new(secrets: &ConnectionTrafficSecrets, seq: u64) -> Option<Keys> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, key, iv),
            _ => return None,
        };
        let key = key.as_ref();
        let mut keys = Keys {
            algorithm,
            key: [0; 32],
            key_len: u8::try_from(key.len()).ok()?,
            iv: iv.as_ref().try_into().ok()?,
            seq,
        };
        keys.key.get_mut(..key.len())?.copy_from_slice(key);
        Some(keys)
    }

    /// The expanded key, for a batch of records.
    fn expand(&self) -> Result<aead::LessSafeKey, Alert> {
        let bytes = self
            .key
            .get(..usize::from(self.key_len))
            .ok_or(Alert::InternalError)?;
        aead::UnboundKey::new(self.algorithm, bytes)
            .map(aead::LessSafeKey::new)
            .map_err(|_| Alert::InternalError)
    }

    /// The nonce of the next record (RFC 8446 §5.3), which then counts.
    fn next_nonce(&mut self) -> Result<aead::Nonce, Alert> {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().rev().zip(self.seq.to_le_bytes()) {
            *n ^= s;
        }
        // A sequence number must never wrap (the keys are updated long
        // before, on the sending side).
        self.seq = self.seq.checked_add(1).ok_or(Alert::InternalError)?;
        Ok(aead::Nonce::assume_unique_for_key(nonce))
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.key.fill(0);
        self.iv.fill(0);
        std::hint::black_box(&self.key);
    }
}

/// What [`Records::open`] found in the records it was given.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Bytes of the input done with: whole records, up to the first one
    /// not complete (or to the `close_notify`).
    pub(crate) used: usize,
    /// The peer sent `close_notify`: nothing after it was looked at.
    pub(crate) closed: bool,
    /// The peer updated its key and asked for ours to be updated too:
    /// [`Records::seal_key_update`] before the next data.
    pub(crate) update_requested: bool,
}

/// The record layer of one connection.
pub(crate) struct Records {
    kernel: KernelConnection<ServerConnectionData>,
    tx: Keys,
    rx: Keys,
    /// Records sealed under one key before it is updated: the suite's
    /// confidentiality limit.
    tx_limit: u64,
    /// Key updates and warning alerts left to the peer before it sends
    /// data again.
    key_updates_left: u8,
    warnings_left: u8,
    /// The start of a handshake message whose rest is in the peer's next
    /// record (§5.1 lets a message span records): after the handshake the
    /// only one a client may send is a KeyUpdate, so it is never longer
    /// than that.
    partial: [u8; KEY_UPDATE_LEN - 1],
    partial_len: u8,
}

impl Records {
    /// The record layer rustls hands over after the handshake: `None` for
    /// a protocol other than TLS 1.3 or a suite it does not know.
    pub(crate) fn new(
        secrets: rustls::ExtractedSecrets,
        kernel: KernelConnection<ServerConnectionData>,
    ) -> Option<Records> {
        if kernel.protocol_version() != rustls::ProtocolVersion::TLSv1_3 {
            return None;
        }
        let tx_limit = match kernel.negotiated_cipher_suite() {
            rustls::SupportedCipherSuite::Tls13(suite) => suite.common.confidentiality_limit,
            _ => return None,
        };
        let (tx_seq, tx) = &secrets.tx;
        let (rx_seq, rx) = &secrets.rx;
        Some(Records {
            tx: Keys::new(tx, *tx_seq)?,
            rx: Keys::new(rx, *rx_seq)?,
            kernel,
            tx_limit,
            key_updates_left: KEY_UPDATES_WITHOUT_DATA,
            warnings_left: WARNINGS_WITHOUT_DATA,
            partial: [0; KEY_UPDATE_LEN - 1],
            partial_len: 0,
        })
    }

    /// Opens the whole records at the start of `received`, in place, and
    /// gives each record's application data to `data` (empty records
    /// too). Stops at the first record not complete, or after
    /// `close_notify`.
    pub(crate) fn open(
        &mut self,
        received: &mut [u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<Opened, RecordError> {
        let mut opened = Opened::default();
        let mut key: Option<aead::LessSafeKey> = None;
        loop {
            let rest = received.get_mut(opened.used..).unwrap_or_default();
            let Some(&[content, _, _, high, low]) = rest.get(..HEADER) else {
                return Ok(opened);
            };
            let len = usize::from(u16::from_be_bytes([high, low]));
            if content != CONTENT_APPLICATION_DATA {
                // After the handshake every record is protected; a
                // change_cipher_spec now is unexpected too (§5).
                return Err(RecordError::Send(Alert::UnexpectedMessage));
            }
            if len > MAX_BODY {
                return Err(RecordError::Send(Alert::RecordOverflow));
            }
            if len < TAG {
                // Too short to hold a tag: it cannot be authentic (as
                // rustls answers it).
                return Err(RecordError::Send(Alert::BadRecordMac));
            }
            let Some((header, body)) = rest
                .get_mut(..HEADER + len)
                .and_then(|record| record.split_at_mut_checked(HEADER))
            else {
                return Ok(opened);
            };
            let header: [u8; HEADER] = (&*header)
                .try_into()
                .map_err(|_| RecordError::Send(Alert::InternalError))?;
            let opener = match &mut key {
                Some(opener) => opener,
                slot @ None => slot.insert(self.rx.expand().map_err(RecordError::Send)?),
            };
            let nonce = self.rx.next_nonce().map_err(RecordError::Send)?;
            let plain = opener
                .open_in_place(nonce, aead::Aad::from(header), body)
                .map_err(|_| RecordError::Send(Alert::BadRecordMac))?;
            opened.used += HEADER + len;
            if plain.len() > MAX_INNER {
                return Err(RecordError::Send(Alert::RecordOverflow));
            }
            // The inner content type is the last byte that is not
            // padding (§5.4).
            let Some(end) = plain.iter().rposition(|&b| b != 0) else {
                return Err(RecordError::Send(Alert::UnexpectedMessage));
            };
            let (inner, padded) = plain.split_at(end);
            let content = padded.get(..1).unwrap_or_default();
            if self.partial_len > 0 && content != [CONTENT_HANDSHAKE] {
                // A handshake message's fragments must not be interleaved
                // with other records (§5.1).
                return Err(RecordError::Send(Alert::UnexpectedMessage));
            }
            match content {
                [CONTENT_APPLICATION_DATA] => {
                    if !inner.is_empty() {
                        self.key_updates_left = KEY_UPDATES_WITHOUT_DATA;
                        self.warnings_left = WARNINGS_WITHOUT_DATA;
                    }
                    data(inner);
                }
                [CONTENT_ALERT] => match inner {
                    [_, ALERT_CLOSE_NOTIFY] => {
                        opened.closed = true;
                        return Ok(opened);
                    }
                    // Followed by close_notify (§6.1): nothing to do yet.
                    [ALERT_LEVEL_WARNING, ALERT_USER_CANCELED] => {
                        self.warnings_left = self
                            .warnings_left
                            .checked_sub(1)
                            .ok_or(RecordError::Send(Alert::UnexpectedMessage))?;
                    }
                    [_, description] => return Err(RecordError::Received(*description)),
                    // An alert record holds exactly one alert (§6): none
                    // at all is unexpected, a part or more is malformed.
                    [] => return Err(RecordError::Send(Alert::UnexpectedMessage)),
                    _ => return Err(RecordError::Send(Alert::DecodeError)),
                },
                [CONTENT_HANDSHAKE] => {
                    if let Some(update) = self.handshake_fragment(inner)? {
                        opened.update_requested |= update;
                        key = None;
                    }
                }
                _ => return Err(RecordError::Send(Alert::UnexpectedMessage)),
            }
        }
    }

    /// Takes a record's handshake fragment. After the handshake a client
    /// may send one handshake message to a server that asked for no
    /// certificate: KeyUpdate, which may come in fragments over several
    /// records (§5.1) and must end its record, as it changes the key the
    /// next record is read under. `Some(update_requested)` once a whole
    /// KeyUpdate was read (the key changed).
    fn handshake_fragment(&mut self, fragment: &[u8]) -> Result<Option<bool>, RecordError> {
        use Alert::{DecodeError, IllegalParameter, InternalError, UnexpectedMessage};
        if fragment.is_empty() {
            // No zero-length handshake fragments (§5.1).
            return Err(RecordError::Send(UnexpectedMessage));
        }
        let mut message = [0u8; KEY_UPDATE_LEN];
        let held = usize::from(self.partial_len);
        let joined = held + fragment.len();
        for (to, from) in message.iter_mut().zip(
            self.partial
                .get(..held)
                .unwrap_or_default()
                .iter()
                .chain(fragment),
        ) {
            *to = *from;
        }
        let have = joined.min(KEY_UPDATE_LEN);
        if message.first() != Some(&HANDSHAKE_KEY_UPDATE) {
            // A new ClientHello (no renegotiation in TLS 1.3), or any
            // other message a server that asked for nothing never expects.
            return Err(RecordError::Send(UnexpectedMessage));
        }
        if have >= 4 && message.get(1..4) != Some(&[0, 0, 1][..]) {
            return Err(RecordError::Send(DecodeError));
        }
        if joined < KEY_UPDATE_LEN {
            self.partial = [0; KEY_UPDATE_LEN - 1];
            for (to, from) in self
                .partial
                .iter_mut()
                .zip(message.get(..have).unwrap_or_default())
            {
                *to = *from;
            }
            self.partial_len = u8::try_from(have).map_err(|_| RecordError::Send(InternalError))?;
            return Ok(None);
        }
        self.partial_len = 0;
        if joined > KEY_UPDATE_LEN {
            // More after the KeyUpdate in its record: a message that spans
            // the key change (§5.1).
            return Err(RecordError::Send(UnexpectedMessage));
        }
        self.key_updates_left = self
            .key_updates_left
            .checked_sub(1)
            .ok_or(RecordError::Send(UnexpectedMessage))?;
        let requested = match message.get(4) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(RecordError::Send(IllegalParameter)),
        };
        let (seq, secrets) = self
            .kernel
            .update_rx_secret()
            .map_err(|_| RecordError::Send(InternalError))?;
        self.rx = Keys::new(&secrets, seq).ok_or(RecordError::Send(InternalError))?;
        Ok(Some(requested))
    }

    /// Appends `plaintext` to `out` sealed as application data, in
    /// records of [`MAX_PLAINTEXT`] at most; updates this side's key
    /// first when it has sealed as many records as its suite allows.
    pub(crate) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let mut key = self.tx.expand().map_err(RecordError::Send)?;
        out.reserve(plaintext.len() + plaintext.len().div_ceil(MAX_PLAINTEXT).max(1) * OVERHEAD);
        let mut chunks = plaintext.chunks(MAX_PLAINTEXT);
        let mut next = chunks.next().or(Some(&[][..]));
        while let Some(chunk) = next {
            // The KeyUpdate is the last record under the old key.
            if self.tx.seq.saturating_add(1) >= self.tx_limit {
                self.update_tx(&key, out)?;
                key = self.tx.expand().map_err(RecordError::Send)?;
            }
            seal_record(&mut self.tx, &key, CONTENT_APPLICATION_DATA, chunk, out)?;
            next = chunks.next();
        }
        Ok(())
    }

    /// Appends a KeyUpdate that asks nothing back, sealed under the
    /// current key, and changes to the next key (the answer to a peer's
    /// request, §4.6.3).
    pub(crate) fn seal_key_update(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let key = self.tx.expand().map_err(RecordError::Send)?;
        self.update_tx(&key, out)
    }

    /// Appends a fatal alert, before the connection is given up.
    pub(crate) fn seal_alert(&mut self, alert: Alert, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_alert_record(ALERT_LEVEL_FATAL, alert as u8, out)
    }

    /// Appends `close_notify`.
    pub(crate) fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_alert_record(ALERT_LEVEL_WARNING, ALERT_CLOSE_NOTIFY, out)
    }

    fn seal_alert_record(
        &mut self,
        level: u8,
        description: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        let key = self.tx.expand().map_err(RecordError::Send)?;
        seal_record(&mut self.tx, &key, CONTENT_ALERT, &[level, description], out)
    }

    fn update_tx(&mut self, key: &aead::LessSafeKey, out: &mut Vec<u8>) -> Result<(), RecordError> {
        seal_record(
            &mut self.tx,
            key,
            CONTENT_HANDSHAKE,
            &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0],
            out,
        )?;
        let (seq, secrets) = self
            .kernel
            .update_tx_secret()
            .map_err(|_| RecordError::Send(Alert::InternalError))?;
        self.tx = Keys::new(&secrets, seq).ok_or(RecordError::Send(Alert::InternalError))?;
        Ok(())
    }
}

/// Appends one record of `content` sealed under `keys` (expanded as
/// `key`), and counts it.
fn seal_record(
    keys: &mut Keys,
    key: &aead::LessSafeKey,
    content: u8,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let len =
        u16::try_from(plaintext.len() + 1 + TAG).map_err(|_| RecordError::Send(Alert::InternalError))?;
    let [high, low] = len.to_be_bytes();
    let [v0, v1] = LEGACY_VERSION;
    let header = [CONTENT_APPLICATION_DATA, v0, v1, high, low];
    let start = out.len();
    out.extend_from_slice(&header);
    out.extend_from_slice(plaintext);
    out.push(content);
    let nonce = keys.next_nonce().map_err(RecordError::Send)?;
    let sealed = out
        .get_mut(start + HEADER..)
        .ok_or(RecordError::Send(Alert::InternalError))
        .and_then(|body| {
            key.seal_in_place_separate_tag(nonce, aead::Aad::from(header), body)
                .map_err(|_| RecordError::Send(Alert::InternalError))
        });
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! A rustls client and the server's records, in memory: the handshake
    //! is rustls' on both sides, then the server's records are these.

    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls::crypto::ring::cipher_suite;
    use rustls::server::UnbufferedServerConnection;
    use rustls::unbuffered::{ConnectionState, UnbufferedStatus};

    use super::*;

    fn provider(suite: rustls::SupportedCipherSuite) -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: vec![suite],
            ..rustls::crypto::ring::default_provider()
        })
    }

    /// A finished handshake: the client, and the server's record layer.
    pub(super) fn connected(suite: rustls::SupportedCipherSuite) -> (rustls::ClientConnection, Records) {
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
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = UnbufferedServerConnection::new(server_config).unwrap();
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() && to_server.is_empty() {
                let (secrets, kernel) = server.dangerous_into_kernel_connection().unwrap();
                return (client, Records::new(secrets, kernel).unwrap());
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
    fn from_client(client: &mut rustls::ClientConnection, plaintext: &[u8]) -> Vec<u8> {
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
    fn open_all(records: &mut Records, wire: &mut [u8]) -> Result<(Vec<u8>, Opened), RecordError> {
        let mut data = Vec::new();
        let opened = records.open(wire, |d| data.extend_from_slice(d))?;
        Ok((data, opened))
    }

    /// The client reads `wire`: the plaintext it got.
    fn to_client(client: &mut rustls::ClientConnection, wire: &[u8]) -> Vec<u8> {
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

    fn pattern(len: usize) -> Vec<u8> {
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

    #[test]
    fn close_notify_ends_what_is_read() {
        let (mut client, mut records) = connected(SUITES[2]);
        let mut wire = from_client(&mut client, b"last words");
        client.send_close_notify();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        wire.extend_from_slice(b"ignored after close_notify");
        let (got, opened) = open_all(&mut records, &mut wire).unwrap();
        assert_eq!(got, b"last words");
        assert!(opened.closed);
        assert_eq!(opened.used, wire.len() - b"ignored after close_notify".len());
        // And the server's own close_notify reaches the client.
        let mut out = Vec::new();
        records.seal_close_notify(&mut out).unwrap();
        to_client(&mut client, &out);
        let mut buf = [0; 8];
        assert_eq!(client.reader().read(&mut buf).unwrap(), 0, "close_notify seen");
    }

    /// Records sealed with the client's own keys, to say what rustls would
    /// never send.
    pub(super) struct Forger(Keys);

    pub(super) fn forger(client: rustls::ClientConnection) -> Forger {
        Forger::new(client)
    }

    impl Forger {
        fn new(client: rustls::ClientConnection) -> Forger {
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

    fn refused(wire: &mut [u8], records: &mut Records) -> RecordError {
        open_all(records, wire)
            .map(|(d, o)| (d.len(), o.used))
            .unwrap_err()
    }

    #[test]
    fn bad_records_are_refused_with_the_alert_that_says_why() {
        use Alert::*;
        // On the wire: a bit flipped, a record not protected, too long,
        // too short to hold a tag (empty, or one byte short).
        let (mut client, mut records) = connected(SUITES[0]);
        let mut wire = from_client(&mut client, b"hello");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert_eq!(refused(&mut wire, &mut records), RecordError::Send(BadRecordMac));
        let (_, mut records) = connected(SUITES[0]);
        assert_eq!(
            refused(&mut [20, 3, 3, 0, 1, 1], &mut records),
            RecordError::Send(UnexpectedMessage)
        );
        let (_, mut records) = connected(SUITES[0]);
        let [h, l] = u16::try_from(MAX_BODY + 1).unwrap().to_be_bytes();
        assert_eq!(
            refused(&mut [23, 3, 3, h, l], &mut records),
            RecordError::Send(RecordOverflow)
        );
        for short in [0, 1, TAG - 1] {
            let (_, mut records) = connected(SUITES[0]);
            let mut wire = vec![23, 3, 3, 0, u8::try_from(short).unwrap()];
            wire.extend(std::iter::repeat_n(0, short));
            assert_eq!(
                refused(&mut wire, &mut records),
                RecordError::Send(BadRecordMac),
                "{short} bytes"
            );
        }

        // Inside the protection: what the content says.
        let oversize = vec![1; MAX_PLAINTEXT + 1];
        // Data, its content type and padding over 2^14 + 1 bytes (§5.4):
        // sealed as content type 0 ending in the real type and zeros.
        let mut overpadded = vec![b'x', CONTENT_APPLICATION_DATA];
        overpadded.extend_from_slice(&[0; MAX_PLAINTEXT]);
        let cases: [(u8, &[u8], RecordError); 14] = [
            (CONTENT_ALERT, &[2, 40], RecordError::Received(40)),
            (CONTENT_ALERT, &[2], RecordError::Send(DecodeError)),
            (CONTENT_ALERT, &[2, 40, 0, 1], RecordError::Send(DecodeError)),
            (CONTENT_ALERT, &[], RecordError::Send(UnexpectedMessage)),
            (
                CONTENT_HANDSHAKE,
                &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 2],
                RecordError::Send(IllegalParameter),
            ),
            (
                CONTENT_HANDSHAKE,
                &[HANDSHAKE_KEY_UPDATE, 0, 0, 2, 0, 0],
                RecordError::Send(DecodeError),
            ),
            // A message after the KeyUpdate in its record, which would
            // span the key change (§5.1): two KeyUpdates, or the start of
            // one.
            (
                CONTENT_HANDSHAKE,
                &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0, 24],
                RecordError::Send(UnexpectedMessage),
            ),
            (
                CONTENT_HANDSHAKE,
                &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0, HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0],
                RecordError::Send(UnexpectedMessage),
            ),
            // No zero-length handshake fragment (§5.1).
            (CONTENT_HANDSHAKE, &[], RecordError::Send(UnexpectedMessage)),
            // A new ClientHello: no renegotiation in TLS 1.3.
            (
                CONTENT_HANDSHAKE,
                &[1, 0, 0, 0],
                RecordError::Send(UnexpectedMessage),
            ),
            (20, &[1], RecordError::Send(UnexpectedMessage)),
            (0, &[], RecordError::Send(UnexpectedMessage)),
            (
                CONTENT_APPLICATION_DATA,
                &oversize,
                RecordError::Send(RecordOverflow),
            ),
            (0, &overpadded, RecordError::Send(RecordOverflow)),
        ];
        for (content, plaintext, expected) in cases {
            let (client, mut records) = connected(SUITES[0]);
            let mut wire = Forger::new(client).record(content, plaintext);
            assert_eq!(
                refused(&mut wire, &mut records),
                expected,
                "{content} {plaintext:?}"
            );
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

        // Another record between the fragments is refused.
        let (client, mut records) = connected(SUITES[0]);
        let mut forger = Forger::new(client);
        let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0]);
        wire.extend(forger.record(CONTENT_APPLICATION_DATA, b"between"));
        assert_eq!(
            refused(&mut wire, &mut records),
            RecordError::Send(Alert::UnexpectedMessage)
        );
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

    #[test]
    fn key_updates_and_warnings_without_data_are_limited() {
        let (client, mut records) = connected(SUITES[0]);
        let mut forger = Forger::new(client);
        for _ in 0..KEY_UPDATES_WITHOUT_DATA {
            let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0]);
            let (_, opened) = open_all(&mut records, &mut wire).unwrap();
            // The server reads under its next key now; so does the forger.
            forger.0 = records.rx.clone();
            assert!(!opened.update_requested);
        }
        let mut wire = forger.record(CONTENT_HANDSHAKE, &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0]);
        assert_eq!(
            refused(&mut wire, &mut records),
            RecordError::Send(Alert::UnexpectedMessage)
        );

        let (client, mut records) = connected(SUITES[0]);
        let mut forger = Forger::new(client);
        for round in 0..3 {
            for _ in 0..WARNINGS_WITHOUT_DATA {
                let mut wire = forger.record(CONTENT_ALERT, &[ALERT_LEVEL_WARNING, ALERT_USER_CANCELED]);
                open_all(&mut records, &mut wire).unwrap();
            }
            if round < 2 {
                // Data between makes room again.
                let mut wire = forger.record(CONTENT_APPLICATION_DATA, b"data");
                open_all(&mut records, &mut wire).unwrap();
            }
        }
        let mut wire = forger.record(CONTENT_ALERT, &[ALERT_LEVEL_WARNING, ALERT_USER_CANCELED]);
        assert_eq!(
            refused(&mut wire, &mut records),
            RecordError::Send(Alert::UnexpectedMessage)
        );
    }
}

#[cfg(test)]
mod properties {
    //! Whatever a peer sends, sealed with its keys or not: the records
    //! are opened, or refused with an alert; never a panic, never data
    //! that was not sent.

    use proptest::prelude::*;

    use super::tests::{SUITES, connected, forger};
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_content_sealed_by_the_peer_opens_or_is_refused(
            records in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 1..6),
            suite in 0..3usize,
        ) {
            let (client, mut server) = connected(SUITES[suite]);
            let mut forger = forger(client);
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            let mut clean = true;
            for (content, plaintext) in &records {
                wire.extend(forger.record(*content, plaintext));
                // What a record of application data carries: its bytes
                // up to the padding (trailing zeros are padding).
                if clean {
                    match content {
                        &CONTENT_APPLICATION_DATA => expected.extend_from_slice(plaintext),
                        _ => clean = false,
                    }
                }
            }
            let mut got = Vec::new();
            let result = server.open(&mut wire, |d| got.extend_from_slice(d));
            if clean {
                let opened = result.unwrap();
                prop_assert_eq!(opened.used, wire.len());
                prop_assert_eq!(got, expected);
            } else {
                // Data before the first other record came through as it
                // was sent; nothing else did.
                prop_assert!(expected.starts_with(&got) || got.starts_with(&expected));
            }
        }

        #[test]
        fn any_bytes_on_the_wire_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, mut server) = connected(SUITES[0]);
            let mut wire = wire;
            let mut got = Vec::new();
            if let Ok(opened) = server.open(&mut wire, |d| got.extend_from_slice(d)) {
                // Nothing can open without the peer's key.
                prop_assert_eq!(opened.used, 0);
                prop_assert!(got.is_empty());
            }
        }
    }
}
