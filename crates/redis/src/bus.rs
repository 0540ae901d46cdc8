//! The announcement stream (on one Redis server): every publish adds its
//! event to its topic's stream *and*, in the same script (see
//! [`crate::publish`]), a copy to one stream every node reads
//! (`PREFIX!bus`), numbered by a counter (`PREFIX!bus-seq`) so that a
//! reader sees at once when it missed some. A node's reader waits on this
//! one stream, whatever the number of topics it follows. Here: how the
//! reader reads its entries. No I/O.

use redis::{RedisError, Value};
use tether_hub::EventId;

use crate::commands::{self, Entry};

/// The bus's field that holds the event's topic.
const FIELD_TOPIC: &str = "topic";
/// The bus's field that holds the event's id in its topic's stream.
const FIELD_ID: &str = "id";
/// The bus's field that holds the announcement's number (1, 2, 3... as
/// the counter gives them).
const FIELD_SEQ: &str = "n";

/// One announcement read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// Its id in the bus (where the reader goes on from).
    pub(crate) bus_id: EventId,
    /// Its number; `None` for an entry this crate did not write.
    pub(crate) seq: Option<u64>,
    /// The event's topic; `None` if the entry names none.
    pub(crate) topic: Option<String>,
    /// The event, with its id in its topic's stream (`None`: the entry
    /// names no valid id, it is skipped).
    pub(crate) entry: Option<Entry>,
}

/// The announcements of an `XRANGE`/`XREVRANGE`/`XREAD` list of bus
/// entries, in the reply's order.
pub(crate) fn parse(value: &Value) -> Result<Vec<Announcement>, RedisError> {
    let Value::Array(entries) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            _ => Err(commands::malformed("a list of bus entries")),
        };
    };
    entries
        .iter()
        .map(|value| {
            let bus_entry = commands::parse_entry(value)?;
            let (mut seq, mut topic, mut id) = (None, None, None);
            if let Value::Array(parts) = value
                && let [_, fields] = &parts[..]
            {
                for (field, value) in commands::pairs(fields).unwrap_or_default() {
                    let field = commands::text(field);
                    let text = commands::text(value).and_then(|v| std::str::from_utf8(v).ok());
                    match (field, text) {
                        (Some(f), Some(v)) if f == FIELD_TOPIC.as_bytes() => topic = Some(v.to_owned()),
                        (Some(f), Some(v)) if f == FIELD_ID.as_bytes() => id = EventId::parse(v),
                        (Some(f), Some(v)) if f == FIELD_SEQ.as_bytes() => seq = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            Ok(Announcement {
                bus_id: bus_entry.id,
                seq,
                topic,
                entry: id.map(|id| Entry { id, ..bus_entry }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::bulk;

    #[test]
    fn announcements() {
        let entry = |id: &str, fields: &[&str]| {
            Value::Array(vec![
                bulk(id),
                Value::Array(fields.iter().map(|f| bulk(f)).collect()),
            ])
        };
        let reply = Value::Array(vec![
            entry(
                "9-0",
                &[
                    "topic", "news", "id", "5-1", "n", "7", "event", "update", "data", "one", "key", "k",
                ],
            ),
            entry("9-1", &["topic", "news", "id", "nope"]),
            entry("9-2", &["w", "1"]),
        ]);
        let read = parse(&reply).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(
            (read[0].bus_id, read[0].seq, read[0].topic.as_deref()),
            (EventId::new(9, 0), Some(7), Some("news"))
        );
        let event = read[0].entry.clone().unwrap();
        assert_eq!(
            (
                event.id,
                &*event.event_type,
                event.data.as_text().unwrap(),
                event.key.as_deref()
            ),
            (EventId::new(5, 1), "update", "one", Some("k"))
        );
        assert_eq!((read[1].seq, read[1].entry.clone()), (None, None));
        assert_eq!((read[2].topic.clone(), read[2].entry.clone()), (None, None));
        assert!(parse(&Value::Nil).unwrap().is_empty());
        assert!(parse(&Value::Int(3)).is_err());
        assert!(parse(&Value::Array(vec![bulk("x")])).is_err());
    }
}
