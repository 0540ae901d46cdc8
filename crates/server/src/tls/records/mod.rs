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
//! Sans-IO: records in, plaintext out; plaintext in, records out. The
//! interface, which is all the session (`crate::tls_session`) uses:
//!
//! - [`Records::new`] takes the keys rustls hands over after a TLS 1.3
//!   handshake;
//! - [`Records::open`] opens the whole records at the start of a buffer,
//!   in place, gives their application data to a callback and says in
//!   [`Opened`] how far it read, whether the peer closed, and whether it
//!   asked for this side's key to be updated;
//! - [`Records::seal`] seals plaintext, [`Records::seal_key_update`]
//!   answers the peer's request, [`Records::seal_alert`] tells the peer
//!   why the connection ends and [`Records::seal_close_notify`] ends it;
//! - a [`RecordError`] is the alert to send ([`Alert`]), or the fatal
//!   alert the peer sent.
//!
//! [`Records::from_secrets`] makes the record layer without a handshake,
//! from the two traffic secrets, deriving the keys itself (§7): for the
//! tests and the fuzz target (`fuzz/fuzz_targets/tls_records.rs`, through
//! `tls_harness::records`).
//!
//! Inside: `open` reads records, `key_update` the peer's KeyUpdate,
//! `seal` writes records (this side's KeyUpdate too), `keys` holds a
//! direction's keys and derives the next ones, `alert` says what went
//! wrong. None of them calls into another that calls back.

mod alert;
mod key_update;
mod keys;
mod open;
mod seal;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use alert::{Alert, RecordError};
pub(crate) use keys::Suite;
use keys::{Keys, Schedule, Secret, Secrets};
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
    /// KeyUpdates read (each changed the key the next record is read
    /// under), asked for an answer or not.
    pub(crate) key_updates: u32,
}

/// The record layer of one connection.
pub(crate) struct Records {
    schedule: Schedule,
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
        let tx_limit = keys::confidentiality_limit(kernel.negotiated_cipher_suite())?;
        let (tx_seq, tx) = &secrets.tx;
        let (rx_seq, rx) = &secrets.rx;
        let (tx, rx) = (Keys::new(tx, *tx_seq)?, Keys::new(rx, *rx_seq)?);
        Some(Records::with(Schedule::Kernel(kernel), tx, rx, tx_limit))
    }

    /// The record layer of a side that reads under the traffic secret
    /// `rx_secret` and seals under `tx_secret` (each as long as the
    /// suite's hash), from their first records on, with its keys derived
    /// here (§7.3): for tests and fuzzing, without a handshake. `None` for
    /// a secret of the wrong length.
    pub(crate) fn from_secrets(suite: Suite, rx_secret: &[u8], tx_secret: &[u8]) -> Option<Records> {
        let secrets = Secrets {
            suite,
            tx: Secret::new(suite, tx_secret)?,
            rx: Secret::new(suite, rx_secret)?,
        };
        let (tx, rx) = secrets.keys()?;
        let tx_limit = keys::confidentiality_limit(suite.rustls())?;
        Some(Records::with(
            Schedule::Secrets(Box::new(secrets)),
            tx,
            rx,
            tx_limit,
        ))
    }

    fn with(schedule: Schedule, tx: Keys, rx: Keys, tx_limit: u64) -> Records {
        Records {
            schedule,
            tx,
            rx,
            tx_limit,
            key_updates_left: KEY_UPDATES_WITHOUT_DATA,
            warnings_left: WARNINGS_WITHOUT_DATA,
            partial: [0; KEY_UPDATE_LEN - 1],
            partial_len: 0,
        }
    }
}
