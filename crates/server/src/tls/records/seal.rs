//! Records out: plaintext sealed as application data, this side's
//! KeyUpdate (§4.6.3), alerts, and any record a test or the fuzz target
//! asks for.

use ring::aead;

use super::keys::Keys;
use super::{
    ALERT_CLOSE_NOTIFY, ALERT_LEVEL_FATAL, ALERT_LEVEL_WARNING, Alert, CONTENT_ALERT,
    CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE, HANDSHAKE_KEY_UPDATE, HEADER, LEGACY_VERSION, MAX_PLAINTEXT,
    OVERHEAD, RecordError, Records, TAG,
};

impl Records {
    /// Appends `plaintext` to `out` sealed as application data, in
    /// records of [`MAX_PLAINTEXT`] at most; updates this side's key
    /// first when it has sealed as many records as its suite allows.
    pub(crate) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let mut key = self.tx.expand().ok_or(Alert::InternalError)?;
        out.reserve(plaintext.len() + plaintext.len().div_ceil(MAX_PLAINTEXT).max(1) * OVERHEAD);
        let mut chunks = plaintext.chunks(MAX_PLAINTEXT);
        let mut next = chunks.next().or(Some(&[][..]));
        while let Some(chunk) = next {
            // The KeyUpdate is the last record under the old key.
            if self.tx.seq.saturating_add(1) >= self.tx_limit {
                self.update_tx(&key, out)?;
                key = self.tx.expand().ok_or(Alert::InternalError)?;
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
        let key = self.tx.expand().ok_or(Alert::InternalError)?;
        self.update_tx(&key, out)
    }

    /// Appends this side's KeyUpdate under `key`, the current one, and
    /// changes to the next.
    fn update_tx(&mut self, key: &aead::LessSafeKey, out: &mut Vec<u8>) -> Result<(), RecordError> {
        seal_record(
            &mut self.tx,
            key,
            CONTENT_HANDSHAKE,
            &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0],
            out,
        )?;
        self.next_tx_key()
    }

    /// Changes to this side's next sending key without sealing anything:
    /// for a peer in tests and fuzzing that sealed its KeyUpdate itself
    /// ([`Records::seal_any`]).
    pub(crate) fn next_tx_key(&mut self) -> Result<(), RecordError> {
        self.tx = self.schedule.next_tx().ok_or(Alert::InternalError)?;
        Ok(())
    }

    /// Appends a fatal alert, before the connection is given up.
    pub(crate) fn seal_alert(&mut self, alert: Alert, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_any(CONTENT_ALERT, &[ALERT_LEVEL_FATAL, alert as u8], out)
    }

    /// Appends `close_notify`.
    pub(crate) fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_any(CONTENT_ALERT, &[ALERT_LEVEL_WARNING, ALERT_CLOSE_NOTIFY], out)
    }

    /// Appends one record whose inner plaintext is `plaintext` followed
    /// by the content type `content` (0 makes it padding, so that the
    /// inner plaintext is any bytes that end in a zero): what this side
    /// never sends on its own, for a peer in tests and fuzzing. Nothing
    /// else changes (a KeyUpdate sealed so leaves the key as it is).
    pub(crate) fn seal_any(
        &mut self,
        content: u8,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        let key = self.tx.expand().ok_or(Alert::InternalError)?;
        seal_record(&mut self.tx, &key, content, plaintext, out)
    }
}

/// Appends one record of `content` sealed under `keys` (expanded as
/// `key`), and counts it.
pub(super) fn seal_record(
    keys: &mut Keys,
    key: &aead::LessSafeKey,
    content: u8,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let len = u16::try_from(plaintext.len() + 1 + TAG).map_err(|_| Alert::InternalError)?;
    let [high, low] = len.to_be_bytes();
    let [v0, v1] = LEGACY_VERSION;
    let header = [CONTENT_APPLICATION_DATA, v0, v1, high, low];
    let start = out.len();
    out.extend_from_slice(&header);
    out.extend_from_slice(plaintext);
    out.push(content);
    let sealed = keys
        .next_nonce()
        .zip(out.get_mut(start + HEADER..))
        .ok_or(Alert::InternalError)
        .and_then(|(nonce, body)| {
            key.seal_in_place_separate_tag(nonce, aead::Aad::from(header), body)
                .map_err(|_| Alert::InternalError)
        });
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e.into())
        }
    }
}
