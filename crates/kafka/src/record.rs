//! What a Kafka record becomes: the event published for it, or the
//! reason it is skipped.

use rskafka::record::RecordAndOffset;

use crate::config::KafkaConfig;

/// The header that names the tether topic.
pub const TOPIC_HEADER: &str = "tether-topic";
/// The header that names the event type.
pub const EVENT_HEADER: &str = "tether-event";

/// A record as the event it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordEvent {
    pub(crate) topic: String,
    pub(crate) event_type: Option<String>,
    pub(crate) data: String,
    pub(crate) key: String,
}

impl RecordEvent {
    pub(crate) fn event(&self) -> tether_ingest::Event<'_> {
        tether_ingest::Event {
            topic: &self.topic,
            event_type: self.event_type.as_deref(),
            data: &self.data,
            key: &self.key,
        }
    }
}

/// The event of the record at `offset` of partition `partition` of
/// `kafka_topic`, or why it has none (its value missing or not UTF-8, a
/// header not UTF-8).
pub(crate) fn event_of(
    config: &KafkaConfig,
    kafka_topic: &str,
    partition: i32,
    record: RecordAndOffset,
) -> Result<RecordEvent, String> {
    let RecordAndOffset { record, offset } = record;
    let header = |name: &str| -> Result<Option<String>, String> {
        record
            .headers
            .get(name)
            .map(|value| {
                String::from_utf8(value.clone()).map_err(|_| format!("its {name} header is not UTF-8"))
            })
            .transpose()
    };
    let topic = match header(TOPIC_HEADER)? {
        Some(topic) => topic,
        None => config.tether_topic(kafka_topic).to_owned(),
    };
    let event_type = header(EVENT_HEADER)?;
    let data = match record.value {
        Some(value) => String::from_utf8(value).map_err(|_| "its value is not UTF-8".to_owned())?,
        None => return Err("it has no value (a tombstone)".to_owned()),
    };
    Ok(RecordEvent {
        topic,
        event_type,
        data,
        key: format!("kafka:{kafka_topic}:{partition}:{offset}"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rskafka::chrono::{TimeZone, Utc};
    use rskafka::record::Record;

    use super::*;

    fn now_millis() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
    }

    fn record(value: Option<&[u8]>, headers: &[(&str, &[u8])]) -> RecordAndOffset {
        RecordAndOffset {
            record: Record {
                key: None,
                value: value.map(<[u8]>::to_vec),
                headers: headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                    .collect::<BTreeMap<_, _>>(),
                timestamp: Utc.timestamp_millis_opt(now_millis()).unwrap(),
            },
            offset: 41,
        }
    }

    #[test]
    fn the_topic_from_the_header_then_the_mapping_then_the_name() {
        let mut config = KafkaConfig::new(vec!["k:9092".into()], vec!["a".into(), "b".into()]);
        config.mapping.push(("a".into(), "mapped".into()));
        let event = event_of(&config, "a", 3, record(Some(b"x"), &[])).unwrap();
        assert_eq!(event.topic, "mapped");
        assert_eq!(event.key, "kafka:a:3:41");
        assert_eq!(event.event_type, None);
        let event = event_of(&config, "b", 0, record(Some(b"x"), &[])).unwrap();
        assert_eq!(event.topic, "b");
        let headers: &[(&str, &[u8])] = &[(TOPIC_HEADER, b"from.header"), (EVENT_HEADER, b"order")];
        let event = event_of(&config, "a", 0, record(Some(b"x"), headers)).unwrap();
        assert_eq!(event.topic, "from.header");
        assert_eq!(event.event_type.as_deref(), Some("order"));
    }

    #[test]
    fn records_without_an_event_say_why() {
        let config = KafkaConfig::new(vec!["k:9092".into()], vec!["a".into()]);
        let err = event_of(&config, "a", 0, record(Some(&[0xff, 0xfe]), &[])).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let err = event_of(&config, "a", 0, record(None, &[])).unwrap_err();
        assert!(err.contains("no value"), "{err}");
        let headers: &[(&str, &[u8])] = &[(TOPIC_HEADER, &[0xc3])];
        let err = event_of(&config, "a", 0, record(Some(b"x"), headers)).unwrap_err();
        assert!(err.contains("tether-topic"), "{err}");
    }
}
