//! The peer's KeyUpdate (RFC 8446 §4.6.3), read from its handshake
//! records, which may carry it in fragments (§5.1). This side's own is
//! sealed in `seal`.

use super::{Alert, HANDSHAKE_KEY_UPDATE, KEY_UPDATE_LEN, RecordError, Records};

impl Records {
    /// Takes a record's handshake fragment. After the handshake a client
    /// may send one handshake message to a server that asked for no
    /// certificate: KeyUpdate, which may come in fragments over several
    /// records (§5.1) and must end its record, as it changes the key the
    /// next record is read under. `Some(update_requested)` once a whole
    /// KeyUpdate was read (the key changed).
    pub(super) fn handshake_fragment(&mut self, fragment: &[u8]) -> Result<Option<bool>, RecordError> {
        use Alert::{DecodeError, IllegalParameter, InternalError, UnexpectedMessage};
        if fragment.is_empty() {
            // No zero-length handshake fragments (§5.1).
            return Err(UnexpectedMessage.into());
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
            // A new ClientHello (no renegotiation in TLS 1.3, §4.1.2), or
            // any other message a server that asked for nothing never
            // expects (§4).
            return Err(UnexpectedMessage.into());
        }
        if have >= 4 && message.get(1..4) != Some(&[0, 0, 1][..]) {
            return Err(DecodeError.into());
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
            self.partial_len = u8::try_from(have).map_err(|_| InternalError)?;
            return Ok(None);
        }
        self.partial_len = 0;
        if joined > KEY_UPDATE_LEN {
            // More after the KeyUpdate in its record: a message that spans
            // the key change (§5.1).
            return Err(UnexpectedMessage.into());
        }
        self.key_updates_left = self.key_updates_left.checked_sub(1).ok_or(UnexpectedMessage)?;
        let requested = match message.get(4) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(IllegalParameter.into()),
        };
        self.rx = self.schedule.next_rx().ok_or(InternalError)?;
        Ok(Some(requested))
    }
}
