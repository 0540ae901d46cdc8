//! The durable broker's record: one event as its log stores it. Pure
//! bytes: the log (`tether-log`) frames and checks them.

use tether_hub::{Event, EventId, is_valid_event_type, is_valid_publish_key, is_valid_topic};

/// The record's format version.
const RECORD_VERSION: u8 = 1;

/// A record's flag: the first event of a topic's new epoch that goes on
/// from the epoch before (a restart), rather than starting the topic over
/// (it was forgotten).
const CONTINUES: u8 = 1;

/// A record's flag: the data is binary (any bytes); without it, UTF-8
/// text. Records written before binary events existed never have it, so
/// they read as they always did; a release before it refuses a record
/// with it (its data is not UTF-8) as it refuses any damaged record.
const BINARY: u8 = 2;

/// The hub's record: version, flags, topic, id, publish time, event
/// type, key, data (each name with a one-byte length, the data the rest:
/// its bytes exactly, text or binary as the flags say).
pub(crate) fn encode_event(out: &mut Vec<u8>, event: &Event, unix_ms: u64, continues: bool) {
    out.clear();
    out.push(RECORD_VERSION);
    let binary = if event.is_binary() { BINARY } else { 0 };
    out.push(if continues { CONTINUES } else { 0 } | binary);
    push_short(out, event.topic());
    out.extend_from_slice(&event.id().ms().to_le_bytes());
    out.extend_from_slice(&event.id().seq().to_le_bytes());
    out.extend_from_slice(&unix_ms.to_le_bytes());
    push_short(out, event.event_type());
    push_short(out, event.key().unwrap_or(""));
    out.extend_from_slice(event.data_bytes());
}

/// A name of at most 255 bytes (topics, event types and keys are all
/// shorter) with its length.
fn push_short(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or_default());
}

/// A hub record read back.
pub(crate) struct Stored<'a> {
    pub(crate) continues: bool,
    pub(crate) topic: &'a str,
    pub(crate) id: EventId,
    pub(crate) unix_ms: u64,
    pub(crate) event_type: &'a str,
    pub(crate) key: Option<&'a str>,
    pub(crate) data: &'a [u8],
    /// The data is binary; else it is UTF-8.
    pub(crate) binary: bool,
}

fn take_short<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let (&len, rest) = bytes.split_first()?;
    let (text, rest) = rest.split_at_checked(usize::from(len))?;
    *bytes = rest;
    std::str::from_utf8(text).ok()
}

fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    *bytes = rest;
    Some(u64::from_le_bytes(*value))
}

/// Reads a hub record, checking every name as a publish is checked.
pub(crate) fn decode_event(mut bytes: &[u8]) -> Option<Stored<'_>> {
    let (&version, rest) = bytes.split_first()?;
    if version != RECORD_VERSION {
        return None;
    }
    let (&flags, rest) = rest.split_first()?;
    bytes = rest;
    let topic = take_short(&mut bytes)?;
    let ms = take_u64(&mut bytes)?;
    let seq = take_u64(&mut bytes)?;
    let unix_ms = take_u64(&mut bytes)?;
    let event_type = take_short(&mut bytes)?;
    let key = take_short(&mut bytes)?;
    let binary = flags & BINARY != 0;
    if !binary {
        std::str::from_utf8(bytes).ok()?;
    }
    let data = bytes;
    let key = (!key.is_empty()).then_some(key);
    if !is_valid_topic(topic)
        || !is_valid_event_type(event_type)
        || key.is_some_and(|key| !is_valid_publish_key(key))
        || seq == 0
    {
        return None;
    }
    Some(Stored {
        continues: flags & CONTINUES != 0,
        topic,
        id: EventId::new(ms, seq),
        unix_ms,
        event_type,
        key,
        data,
        binary,
    })
}

impl Stored<'_> {
    /// The event this record holds, `None` if it is not one a publish
    /// could have made.
    pub(crate) fn event(&self) -> Option<std::sync::Arc<Event>> {
        let topic = std::sync::Arc::from(self.topic);
        let made = if self.binary {
            Event::binary(topic, self.id, self.event_type, self.data, self.key)
        } else {
            let text = std::str::from_utf8(self.data).ok()?;
            Event::keyed(topic, self.id, self.event_type, text, self.key)
        };
        made.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn records_round_trip_and_foreign_payloads_are_refused() {
        let event = Event::keyed(Arc::from("t"), EventId::new(3, 4), "tick", "dätä", Some("k")).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, &event, 99, true);
        let stored = decode_event(&out).unwrap();
        assert_eq!(
            (
                stored.continues,
                stored.topic,
                stored.id,
                stored.unix_ms,
                stored.event_type,
                stored.key,
                stored.data
            ),
            (
                true,
                "t",
                EventId::new(3, 4),
                99,
                "tick",
                Some("k"),
                "dätä".as_bytes()
            )
        );
        assert!(!stored.binary);
        for cut in 0..out.len() - "dätä".len() {
            assert!(decode_event(&out[..cut]).is_none(), "cut at {cut}");
        }
        let mut bad = out.clone();
        bad[0] = 2;
        assert!(decode_event(&bad).is_none(), "another version");
        let mut bad = out.clone();
        bad[3] = b' ';
        assert!(decode_event(&bad).is_none(), "a topic that is not a name");
    }

    #[test]
    fn binary_records_keep_every_byte_and_old_records_still_read() {
        let all: Vec<u8> = (0..=255).collect();
        let event = Event::binary(Arc::from("t"), EventId::new(3, 5), "message", &all, None).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, &event, 7, false);
        assert_eq!(out[1], BINARY);
        let stored = decode_event(&out).unwrap();
        assert!(stored.binary);
        let back = stored.event().unwrap();
        assert!(back.is_binary());
        assert_eq!(back.data_bytes(), &all[..]);
        // Without the flag the same bytes are not text: refused, not
        // read as something else.
        out[1] = 0;
        assert!(decode_event(&out).is_none());
        // A record as the release before binary events wrote it, byte for
        // byte: version 1, flags 1, then the names, the id, the time, the
        // data.
        let mut old = vec![1, 1, 1, b't'];
        old.extend_from_slice(&3u64.to_le_bytes());
        old.extend_from_slice(&4u64.to_le_bytes());
        old.extend_from_slice(&99u64.to_le_bytes());
        old.extend_from_slice(b"\x04tick\x01kd\xc3\xa4t\xc3\xa4");
        let stored = decode_event(&old).unwrap();
        assert!(stored.continues && !stored.binary);
        let back = stored.event().unwrap();
        assert_eq!(
            (back.data_text(), back.key(), back.event_type()),
            (Some("dätä"), Some("k"), "tick")
        );
    }
}
