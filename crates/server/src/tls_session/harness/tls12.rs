//! A TLS 1.2 client's record protection, made from the secrets rustls
//! hands out once the handshake is done: records the client would never
//! send (the start of a handshake message and no more, any content
//! type) sealed as it would seal them, and the server's records opened.
//! rustls sends no such record itself, and after a TLS 1.2 handshake
//! every record goes to rustls, so this is how a test or the fuzz target
//! (`fuzz/fuzz_targets/tls_session.rs`) reaches rustls' handling of them.
//! Not part of the server's API.

use ring::aead;
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets};

/// The AEAD tag after each record's ciphertext.
const TAG: usize = 16;

/// The client of a TLS 1.2 connection, as far as its records go.
pub struct Peer {
    tx: Direction,
    rx: Direction,
}

impl Peer {
    /// The client whose secrets rustls gave out
    /// (`ClientConnection::dangerous_extract_secrets`): `None` unless the
    /// suite is one of TLS 1.2's AEADs (AES-GCM, ChaCha20-Poly1305).
    pub fn new(secrets: ExtractedSecrets) -> Option<Peer> {
        Some(Peer {
            tx: Direction::new(secrets.tx)?,
            rx: Direction::new(secrets.rx)?,
        })
    }

    /// One record of `content` holding `plaintext`, sealed as the client
    /// seals its next record: `None` for a plaintext longer than a record
    /// can say.
    pub fn seal(&mut self, content: u8, plaintext: &[u8]) -> Option<Vec<u8>> {
        self.tx.seal(content, plaintext)
    }

    /// The server's records in `wire`, opened in order: each one's content
    /// type and plaintext. `None` if one does not open, or is cut short.
    pub fn open(&mut self, wire: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
        let mut opened = Vec::new();
        let mut rest = wire;
        while let Some((&[content, _, _, high, low], after)) = rest.split_first_chunk() {
            let len = usize::from(u16::from_be_bytes([high, low]));
            opened.push((content, self.rx.open(content, after.get(..len)?)?));
            rest = after.get(len..)?;
        }
        rest.is_empty().then_some(opened)
    }
}

/// One direction's key, IV and sequence number.
struct Direction {
    key: aead::LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
    /// AES-GCM: the record carries the last 8 bytes of its nonce (RFC
    /// 5288); ChaCha20-Poly1305 carries none (RFC 7905).
    explicit: bool,
    seq: u64,
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Option<Direction> {
        let (algorithm, key, iv, explicit) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv, true),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv, false)
            }
            _ => return None,
        };
        Some(Direction {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(algorithm, key.as_ref()).ok()?),
            iv: iv.as_ref().try_into().ok()?,
            explicit,
            seq,
        })
    }

    /// The nonce of the record at the sequence number: the IV with the
    /// number XORed into its last 8 bytes. RFC 7905 says so for
    /// ChaCha20-Poly1305; for AES-GCM RFC 5288 leaves those 8 bytes to
    /// the sender, and rustls makes them so.
    fn nonce(&self) -> [u8; aead::NONCE_LEN] {
        let mut nonce = self.iv;
        for (byte, seq) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *byte ^= seq;
        }
        nonce
    }

    /// The additional data of a record (RFC 5246 §6.2.3.3): the sequence
    /// number, the content type, the version and the plaintext's length.
    fn aad(&self, content: u8, len: usize) -> Option<aead::Aad<[u8; 13]>> {
        let mut aad = [0; 13];
        let len = u16::try_from(len).ok()?.to_be_bytes();
        let fields = self
            .seq
            .to_be_bytes()
            .into_iter()
            .chain([content, 3, 3])
            .chain(len);
        for (byte, field) in aad.iter_mut().zip(fields) {
            *byte = field;
        }
        Some(aead::Aad::from(aad))
    }

    fn seal(&mut self, content: u8, plaintext: &[u8]) -> Option<Vec<u8>> {
        let nonce = self.nonce();
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                self.aad(content, plaintext.len())?,
                &mut sealed,
            )
            .ok()?;
        let explicit = if self.explicit { nonce.get(4..)? } else { &[] };
        let len = u16::try_from(explicit.len() + sealed.len()).ok()?;
        let mut record = vec![content, 3, 3];
        record.extend_from_slice(&len.to_be_bytes());
        record.extend_from_slice(explicit);
        record.extend(sealed);
        self.seq += 1;
        Some(record)
    }

    fn open(&mut self, content: u8, body: &[u8]) -> Option<Vec<u8>> {
        let (nonce, sealed) = match body.split_first_chunk::<8>() {
            Some((explicit, sealed)) if self.explicit => {
                let mut nonce = self.iv;
                for (byte, part) in nonce.iter_mut().skip(4).zip(explicit) {
                    *byte = *part;
                }
                (nonce, sealed)
            }
            None if self.explicit => return None,
            _ => (self.nonce(), body),
        };
        let aad = self.aad(content, sealed.len().checked_sub(TAG)?)?;
        let mut sealed = sealed.to_vec();
        let plaintext = self
            .key
            .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aad, &mut sealed)
            .ok()?
            .to_vec();
        self.seq += 1;
        Some(plaintext)
    }
}
