//! The durable broker's record: one event as its log stores it. Pure
//! bytes: the log (`tether-log`) frames and checks them.

use tether_hub::{Event, EventId, is_valid_event_type, is_valid_publish_key, is_valid_topic};

/// The record's format version.
const RECORD_VERSION: u8 = 1;

/// A record's flag: the first event of a topic's new epoch that goes on
/// from the epoch before (a restart), rather than starting the topic over
/// (it was forgotten).
const CONTINUES: u8 = 1;

/// The hub's record: version, flags, topic, id, publish time, event
/// type, key, data (each name with a one-byte length, the data the rest).
pub(crate) fn encode_event(out: &mut Vec<u8>, event: &Event, data: &str, unix_ms: u64, continues: bool) {
    out.clear();
    out.push(RECORD_VERSION);
    out.push(if continues { CONTINUES } else { 0 });
    push_short(out, event.topic());
    out.extend_from_slice(&event.id().ms().to_le_bytes());
    out.extend_from_slice(&event.id().seq().to_le_bytes());
    out.extend_from_slice(&unix_ms.to_le_bytes());
    push_short(out, event.event_type());
    push_short(out, event.key().unwrap_or(""));
    out.extend_from_slice(data.as_bytes());
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
    pub(crate) data: &'a str,
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
    let data = std::str::from_utf8(bytes).ok()?;
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
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn records_round_trip_and_foreign_payloads_are_refused() {
        let event = Event::keyed(Arc::from("t"), EventId::new(3, 4), "tick", "dätä", Some("k")).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, &event, "dätä", 99, true);
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
            (true, "t", EventId::new(3, 4), 99, "tick", Some("k"), "dätä")
        );
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
}
