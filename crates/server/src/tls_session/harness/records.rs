//! The session's record layer on its own, made from traffic secrets
//! without a handshake: for the fuzz target
//! (`fuzz/fuzz_targets/tls_records.rs`); not part of the server's API.
//!
//! Two [`RecordLayer`]s made from the same two secrets are a server and
//! its client: each opens what the other seals. The client can also seal
//! records the server's peer would never send ([`RecordLayer::seal_any`]).

use crate::tls::records::{self, RecordError};

/// A cipher suite of TLS 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// `TLS_AES_128_GCM_SHA256`.
    Aes128GcmSha256,
    /// `TLS_AES_256_GCM_SHA384`.
    Aes256GcmSha384,
    /// `TLS_CHACHA20_POLY1305_SHA256`.
    Chacha20Poly1305Sha256,
}

impl Suite {
    /// Every suite.
    pub const ALL: [Suite; 3] = [
        Suite::Aes128GcmSha256,
        Suite::Aes256GcmSha384,
        Suite::Chacha20Poly1305Sha256,
    ];

    /// The length of its traffic secrets (its hash's).
    pub fn secret_len(self) -> usize {
        match self {
            Suite::Aes256GcmSha384 => 48,
            Suite::Aes128GcmSha256 | Suite::Chacha20Poly1305Sha256 => 32,
        }
    }

    fn own(self) -> records::Suite {
        match self {
            Suite::Aes128GcmSha256 => records::Suite::Aes128GcmSha256,
            Suite::Aes256GcmSha384 => records::Suite::Aes256GcmSha384,
            Suite::Chacha20Poly1305Sha256 => records::Suite::Chacha20Poly1305Sha256,
        }
    }
}

/// What [`RecordLayer::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Bytes of the input done with.
    pub used: usize,
    /// The peer sent `close_notify`.
    pub closed: bool,
    /// The peer asked for this side's key to be updated.
    pub update_requested: bool,
    /// KeyUpdates read (the key records are read under changed so often).
    pub key_updates: u32,
}

/// Why the records cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This side sends the alert of this `AlertDescription` (RFC 8446 §6).
    Send(u8),
    /// The peer sent the fatal alert of this description.
    Received(u8),
}

impl From<RecordError> for Refused {
    fn from(e: RecordError) -> Refused {
        match e {
            RecordError::Send(alert) => Refused::Send(alert as u8),
            RecordError::Received(code) => Refused::Received(code),
        }
    }
}

/// One side's record layer.
pub struct RecordLayer(records::Records);

impl RecordLayer {
    /// The server's side: it reads under `client_secret` and seals under
    /// `server_secret`, each as long as the suite's hash ([`Suite::secret_len`]);
    /// `None` otherwise.
    pub fn server(suite: Suite, client_secret: &[u8], server_secret: &[u8]) -> Option<RecordLayer> {
        records::Records::from_secrets(suite.own(), client_secret, server_secret).map(RecordLayer)
    }

    /// The client's side of the same secrets.
    pub fn client(suite: Suite, client_secret: &[u8], server_secret: &[u8]) -> Option<RecordLayer> {
        records::Records::from_secrets(suite.own(), server_secret, client_secret).map(RecordLayer)
    }

    /// Opens the whole records at the start of `received`, in place,
    /// giving their application data to `data`.
    ///
    /// # Errors
    ///
    /// The alert to send, or the one the peer sent.
    pub fn open(&mut self, received: &mut [u8], data: impl FnMut(&[u8])) -> Result<Opened, Refused> {
        let opened = self.0.open(received, data)?;
        Ok(Opened {
            used: opened.used,
            closed: opened.closed,
            update_requested: opened.update_requested,
            key_updates: opened.key_updates,
        })
    }

    /// Appends `plaintext` sealed as application data.
    ///
    /// # Errors
    ///
    /// `internal_error` if it cannot (never with a working AEAD).
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        Ok(self.0.seal(plaintext, out)?)
    }

    /// Appends a KeyUpdate and changes to the next key.
    ///
    /// # Errors
    ///
    /// As [`RecordLayer::seal`].
    pub fn seal_key_update(&mut self, out: &mut Vec<u8>) -> Result<(), Refused> {
        Ok(self.0.seal_key_update(out)?)
    }

    /// Appends a record whose inner plaintext is `plaintext` and then
    /// `content` (which, if 0, is padding): any record at all. The key
    /// stays as it is, whatever the record says.
    ///
    /// # Errors
    ///
    /// As [`RecordLayer::seal`]; a plaintext too long for a record.
    pub fn seal_any(&mut self, content: u8, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Refused> {
        Ok(self.0.seal_any(content, plaintext, out)?)
    }

    /// Changes to the next sending key, as after a KeyUpdate sealed with
    /// [`RecordLayer::seal_any`].
    ///
    /// # Errors
    ///
    /// As [`RecordLayer::seal`].
    pub fn next_tx_key(&mut self) -> Result<(), Refused> {
        Ok(self.0.next_tx_key()?)
    }

    /// The most bytes of plaintext one record carries (2^14).
    pub const MAX_PLAINTEXT: usize = 16 * 1024;
}
