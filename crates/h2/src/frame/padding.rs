//! Padding shared by DATA, HEADERS and PUSH_PROMISE (RFC 9113 §6.1, §6.2,
//! §6.6).

use crate::error::{Error, ErrorCode, Violation};

/// The parts of a possibly padded payload.
pub(crate) struct Split<'a> {
    /// The Pad Length, when PADDED was set.
    pub(crate) padding: Option<u8>,
    /// The `fixed` octets of mandatory fields after the Pad Length.
    pub(crate) fields: &'a [u8],
    /// What is left once the padding is cut off.
    pub(crate) body: &'a [u8],
}

/// Splits `payload` into Pad Length, `fixed` octets of fields, body and
/// padding. A payload too short for the Pad Length and the fields is a
/// FRAME_SIZE_ERROR; padding that does not fit in what remains, i.e. a Pad
/// Length at least the length of the whole payload (or of the payload less
/// the fields), is a PROTOCOL_ERROR. Both are connection errors: every
/// padded frame type either carries a field block or counts against the
/// connection's flow-control window.
pub(crate) fn split(padded: bool, payload: &[u8], fixed: usize) -> Result<Split<'_>, Error> {
    let too_short = Error::connection(ErrorCode::FRAME_SIZE_ERROR, Violation::PayloadTooShort);
    let (padding, rest) = if padded {
        let (&pad, rest) = payload.split_first().ok_or(too_short)?;
        (Some(pad), rest)
    } else {
        (None, payload)
    };
    let (fields, rest) = rest.split_at_checked(fixed).ok_or(too_short)?;
    let body_len = rest
        .len()
        .checked_sub(usize::from(padding.unwrap_or(0)))
        .ok_or(Error::connection(
            ErrorCode::PROTOCOL_ERROR,
            Violation::PaddingTooLong,
        ))?;
    Ok(Split {
        padding,
        fields,
        body: rest.get(..body_len).unwrap_or_default(),
    })
}

/// The payload length of a frame with this padding, `fixed` octets of
/// fields and `body_len` octets of body (saturating: the caller compares
/// it with a maximum far below `usize::MAX`).
pub(crate) fn payload_len(padding: Option<u8>, fixed: usize, body_len: usize) -> usize {
    let pad = padding.map_or(0, |p| 1 + usize::from(p));
    pad.saturating_add(fixed).saturating_add(body_len)
}

/// Appends Pad Length, fields, body and zeroed padding.
pub(crate) fn write(out: &mut Vec<u8>, padding: Option<u8>, fields: &[u8], body: &[u8]) {
    if let Some(pad) = padding {
        out.push(pad);
    }
    out.extend_from_slice(fields);
    out.extend_from_slice(body);
    if let Some(pad) = padding {
        out.resize(out.len() + usize::from(pad), 0);
    }
}

/// The PADDED flag for this padding.
pub(crate) fn flag(padding: Option<u8>) -> u8 {
    if padding.is_some() {
        super::flags::PADDED
    } else {
        0
    }
}
