//! Records in: each one's header checked, its body opened in place, its
//! inner plaintext (§5.4) read for its content type.

use ring::aead;

use super::{
    ALERT_CLOSE_NOTIFY, ALERT_LEVEL_WARNING, ALERT_USER_CANCELED, Alert, CONTENT_ALERT,
    CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE, HEADER, KEY_UPDATES_WITHOUT_DATA, MAX_BODY, MAX_INNER,
    Opened, RecordError, Records, TAG, WARNINGS_WITHOUT_DATA,
};

impl Records {
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
                return Err(Alert::UnexpectedMessage.into());
            }
            if len > MAX_BODY {
                return Err(Alert::RecordOverflow.into());
            }
            if len < TAG {
                // Too short to hold a tag: it cannot be authentic (as
                // rustls answers it).
                return Err(Alert::BadRecordMac.into());
            }
            let Some((header, body)) = rest
                .get_mut(..HEADER + len)
                .and_then(|record| record.split_at_mut_checked(HEADER))
            else {
                return Ok(opened);
            };
            let header: [u8; HEADER] = (&*header).try_into().map_err(|_| Alert::InternalError)?;
            let opener = match &mut key {
                Some(opener) => opener,
                slot @ None => slot.insert(self.rx.expand().ok_or(Alert::InternalError)?),
            };
            let nonce = self.rx.next_nonce().ok_or(Alert::InternalError)?;
            let plain = opener
                .open_in_place(nonce, aead::Aad::from(header), body)
                .map_err(|_| Alert::BadRecordMac)?;
            opened.used += HEADER + len;
            if plain.len() > MAX_INNER {
                return Err(Alert::RecordOverflow.into());
            }
            // The inner content type is the last byte that is not
            // padding (§5.4).
            let Some(end) = plain.iter().rposition(|&b| b != 0) else {
                return Err(Alert::UnexpectedMessage.into());
            };
            let (inner, padded) = plain.split_at(end);
            let content = padded.get(..1).unwrap_or_default();
            if self.partial_len > 0 && content != [CONTENT_HANDSHAKE] {
                // A handshake message's fragments must not be interleaved
                // with other records (§5.1).
                return Err(Alert::UnexpectedMessage.into());
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
                            .ok_or(Alert::UnexpectedMessage)?;
                    }
                    [_, description] => return Err(RecordError::Received(*description)),
                    // An alert record holds exactly one alert (§5.1): none
                    // at all is unexpected, a part or more is malformed.
                    [] => return Err(Alert::UnexpectedMessage.into()),
                    _ => return Err(Alert::DecodeError.into()),
                },
                [CONTENT_HANDSHAKE] => {
                    if let Some(update) = self.handshake_fragment(inner)? {
                        opened.update_requested |= update;
                        opened.key_updates = opened.key_updates.saturating_add(1);
                        key = None;
                    }
                }
                _ => return Err(Alert::UnexpectedMessage.into()),
            }
        }
    }
}
