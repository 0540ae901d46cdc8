//! A direction's traffic keys, and where the next ones come from when a
//! side updates its key: rustls' key schedule after a real handshake, or
//! this module's own (RFC 8446 §7.2 and §7.3) from traffic secrets given
//! to it, for tests and fuzzing without a handshake.

use ring::hkdf::KeyType as _;
use ring::{aead, hkdf};
use rustls::ConnectionTrafficSecrets;
use rustls::crypto::ring::cipher_suite;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;

/// The cipher suites of TLS 1.3 the record layer seals and opens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suite {
    Aes128GcmSha256,
    Aes256GcmSha384,
    Chacha20Poly1305Sha256,
}

impl Suite {
    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Suite::Aes128GcmSha256 => &aead::AES_128_GCM,
            Suite::Aes256GcmSha384 => &aead::AES_256_GCM,
            Suite::Chacha20Poly1305Sha256 => &aead::CHACHA20_POLY1305,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Suite::Aes256GcmSha384 => hkdf::HKDF_SHA384,
            Suite::Aes128GcmSha256 | Suite::Chacha20Poly1305Sha256 => hkdf::HKDF_SHA256,
        }
    }

    /// rustls' own description of the suite.
    pub(crate) fn rustls(self) -> rustls::SupportedCipherSuite {
        match self {
            Suite::Aes128GcmSha256 => cipher_suite::TLS13_AES_128_GCM_SHA256,
            Suite::Aes256GcmSha384 => cipher_suite::TLS13_AES_256_GCM_SHA384,
            Suite::Chacha20Poly1305Sha256 => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        }
    }
}

/// Records sealed under one key at most before it is updated: the
/// suite's confidentiality limit, as rustls has it.
pub(super) fn confidentiality_limit(suite: rustls::SupportedCipherSuite) -> Option<u64> {
    match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => Some(suite.common.confidentiality_limit),
        _ => None,
    }
}

/// One direction's traffic key, as bytes.
#[cfg_attr(test, derive(Clone))]
pub(super) struct Keys {
    algorithm: &'static aead::Algorithm,
    key: [u8; 32],
    key_len: u8,
    iv: [u8; aead::NONCE_LEN],
    /// The sequence number of the next record.
    pub(super) seq: u64,
}

impl Keys {
    /// The keys rustls hands over.
    pub(super) fn new(secrets: &ConnectionTrafficSecrets, seq: u64) -> Option<Keys> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, key, iv),
            _ => return None,
        };
        Keys::from_parts(algorithm, key.as_ref(), iv.as_ref(), seq)
    }

    /// The keys of a traffic secret (§7.3): `key` and `iv` expanded from
    /// it.
    fn derive(suite: Suite, secret: &Secret) -> Option<Keys> {
        let algorithm = suite.aead();
        let mut key = [0; 32];
        let key = key.get_mut(..algorithm.key_len())?;
        expand_label(suite, secret.bytes(), b"key", key)?;
        let mut iv = [0; aead::NONCE_LEN];
        expand_label(suite, secret.bytes(), b"iv", &mut iv)?;
        Keys::from_parts(algorithm, key, &iv, 0)
    }

    fn from_parts(algorithm: &'static aead::Algorithm, key: &[u8], iv: &[u8], seq: u64) -> Option<Keys> {
        let mut keys = Keys {
            algorithm,
            key: [0; 32],
            key_len: u8::try_from(key.len()).ok()?,
            iv: iv.try_into().ok()?,
            seq,
        };
        keys.key.get_mut(..key.len())?.copy_from_slice(key);
        Some(keys)
    }

    /// The expanded key, for a batch of records.
    pub(super) fn expand(&self) -> Option<aead::LessSafeKey> {
        let bytes = self.key.get(..usize::from(self.key_len))?;
        aead::UnboundKey::new(self.algorithm, bytes)
            .map(aead::LessSafeKey::new)
            .ok()
    }

    /// The nonce of the next record (RFC 8446 §5.3), which then counts:
    /// `None` once the sequence number would wrap, which it must never
    /// do (the sending side updates its key long before).
    pub(super) fn next_nonce(&mut self) -> Option<aead::Nonce> {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().rev().zip(self.seq.to_le_bytes()) {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1)?;
        Some(aead::Nonce::assume_unique_for_key(nonce))
    }

    /// Whether both are the same key and IV (the sequence numbers aside).
    #[cfg(test)]
    pub(super) fn same_key(&self, other: &Keys) -> bool {
        std::ptr::eq(self.algorithm, other.algorithm)
            && self.key == other.key
            && self.key_len == other.key_len
            && self.iv == other.iv
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.key.fill(0);
        self.iv.fill(0);
        std::hint::black_box(&self.key);
    }
}

/// A traffic secret: as long as the suite's hash (32 or 48 bytes).
pub(super) struct Secret {
    bytes: [u8; 48],
    len: u8,
}

impl Secret {
    /// `bytes` as the traffic secret of `suite`: `None` if its length is
    /// not the suite's hash's.
    pub(super) fn new(suite: Suite, bytes: &[u8]) -> Option<Secret> {
        if bytes.len() != suite.hkdf().len() {
            return None;
        }
        let mut secret = Secret {
            bytes: [0; 48],
            len: u8::try_from(bytes.len()).ok()?,
        };
        secret.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(secret)
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The next traffic secret, after a KeyUpdate (§7.2).
    fn next(&self, suite: Suite) -> Option<Secret> {
        let mut next = Secret {
            bytes: [0; 48],
            len: self.len,
        };
        let out = next.bytes.get_mut(..usize::from(self.len))?;
        expand_label(suite, self.bytes(), b"traffic upd", out)?;
        Some(next)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.fill(0);
        std::hint::black_box(&self.bytes);
    }
}

/// `HKDF-Expand-Label(secret, label, "", out.len())` (§7.1) into `out`.
fn expand_label(suite: Suite, secret: &[u8], label: &[u8], out: &mut [u8]) -> Option<()> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    const PREFIX: &[u8] = b"tls13 ";
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(PREFIX.len() + label.len()).ok()?];
    // HkdfLabel: length, label (with its prefix), empty context.
    let info: [&[u8]; 5] = [&length, &label_len, PREFIX, label, &[0]];
    let prk = hkdf::Prk::new_less_safe(suite.hkdf(), secret);
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// Where a side's next keys come from when it updates them.
#[allow(
    clippy::large_enum_variant,
    reason = "the kernel is what every connection has, inline in the boxed session; the secrets, for tests and fuzzing, are boxed"
)]
pub(super) enum Schedule {
    /// rustls' key schedule, handed over after the handshake.
    Kernel(KernelConnection<ServerConnectionData>),
    /// This module's, from the traffic secrets it was given.
    Secrets(Box<Secrets>),
}

/// The two current traffic secrets, and their suite.
pub(super) struct Secrets {
    pub(super) suite: Suite,
    pub(super) tx: Secret,
    pub(super) rx: Secret,
}

impl Secrets {
    /// The keys of the current secrets: sending, receiving.
    pub(super) fn keys(&self) -> Option<(Keys, Keys)> {
        Some((
            Keys::derive(self.suite, &self.tx)?,
            Keys::derive(self.suite, &self.rx)?,
        ))
    }
}

impl Schedule {
    /// This side's next sending keys (sequence number 0).
    pub(super) fn next_tx(&mut self) -> Option<Keys> {
        match self {
            Schedule::Kernel(kernel) => {
                let (seq, secrets) = kernel.update_tx_secret().ok()?;
                Keys::new(&secrets, seq)
            }
            Schedule::Secrets(secrets) => {
                secrets.tx = secrets.tx.next(secrets.suite)?;
                Keys::derive(secrets.suite, &secrets.tx)
            }
        }
    }

    /// The peer's next sending keys, which this side reads with.
    pub(super) fn next_rx(&mut self) -> Option<Keys> {
        match self {
            Schedule::Kernel(kernel) => {
                let (seq, secrets) = kernel.update_rx_secret().ok()?;
                Keys::new(&secrets, seq)
            }
            Schedule::Secrets(secrets) => {
                secrets.rx = secrets.rx.next(secrets.suite)?;
                Keys::derive(secrets.suite, &secrets.rx)
            }
        }
    }
}
