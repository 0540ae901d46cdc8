//! An event's data: text, or bytes marked binary.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// An event's data as published: text (UTF-8), or arbitrary bytes marked
/// binary.
///
/// A binary event goes whole and exact where a transport carries bytes
/// (a WebSocket binary frame, a WebTransport stream, the durable log, a
/// bus); where it carries text only (the JSON envelopes, event streams,
/// the long poll, the backend's hooks) its data is standard base64 with
/// padding, marked `"encoding":"base64"` (see [`crate::Event`]).
///
/// ```
/// use tether_hub::Payload;
///
/// let text = Payload::from("hi");
/// assert_eq!((text.as_bytes(), text.is_binary(), text.as_text()), (&b"hi"[..], false, Some("hi")));
/// let bytes = Payload::Binary(vec![0xff, 0]);
/// assert_eq!((bytes.len(), bytes.is_binary(), bytes.as_text()), (2, true, None));
/// assert_eq!(bytes.base64(), "/wA=");
/// assert_eq!(Payload::from_base64("/wA="), Some(bytes));
/// assert_eq!(Payload::from_base64("/wA"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Text.
    Text(String),
    /// Bytes, any of them, marked binary.
    Binary(Vec<u8>),
}

impl Payload {
    /// Text or bytes as `binary` says; text must be UTF-8 (`None` if not).
    pub fn from_bytes(bytes: Vec<u8>, binary: bool) -> Option<Payload> {
        if binary {
            return Some(Payload::Binary(bytes));
        }
        String::from_utf8(bytes).ok().map(Payload::Text)
    }

    /// The bytes of standard base64 (with padding) `text` decodes to, as a
    /// binary payload; `None` if it is not base64.
    pub fn from_base64(text: &str) -> Option<Payload> {
        STANDARD.decode(text).ok().map(Payload::Binary)
    }

    /// Its bytes (a text's UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(text) => text.as_bytes(),
            Payload::Binary(bytes) => bytes,
        }
    }

    /// The text, or `None` for a binary payload.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Payload::Text(text) => Some(text),
            Payload::Binary(_) => None,
        }
    }

    /// Whether it is binary.
    pub fn is_binary(&self) -> bool {
        matches!(self, Payload::Binary(_))
    }

    /// Its length in bytes (a binary payload's before any encoding).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a text-only carrier sends of it: the text itself, or a
    /// binary payload's bytes in standard base64.
    pub fn base64(&self) -> String {
        match self {
            Payload::Text(text) => text.clone(),
            Payload::Binary(bytes) => STANDARD.encode(bytes),
        }
    }
}

impl Default for Payload {
    fn default() -> Payload {
        Payload::Text(String::new())
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::Text(text)
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::Text(text.to_owned())
    }
}

impl From<&String> for Payload {
    fn from(text: &String) -> Payload {
        Payload::Text(text.clone())
    }
}

impl PartialEq<str> for Payload {
    fn eq(&self, other: &str) -> bool {
        self.as_text() == Some(other)
    }
}

impl PartialEq<&str> for Payload {
    fn eq(&self, other: &&str) -> bool {
        self.as_text() == Some(*other)
    }
}

/// `bytes` in standard base64 with padding, appended to `out`.
pub(crate) fn push_base64(out: &mut String, bytes: &[u8]) {
    STANDARD.encode_string(bytes, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_survives_base64() {
        let all: Vec<u8> = (0..=255).collect();
        let payload = Payload::Binary(all.clone());
        assert_eq!(Payload::from_base64(&payload.base64()), Some(payload));
        assert_eq!(Payload::from_bytes(all.clone(), false), None, "not UTF-8");
        assert_eq!(Payload::from_bytes(all.clone(), true), Some(Payload::Binary(all)));
        for bad in ["*", "AAA", "A===", "AA==AA==", " AAAA"] {
            assert_eq!(Payload::from_base64(bad), None, "{bad:?}");
        }
    }
}
