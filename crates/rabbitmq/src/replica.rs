//! What a node holds of a topic it reads (the backlog, kept as the
//! stream goes on, with its publish keys) and the hub's event of a
//! stream message.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use lapin::message::Delivery;
use tether_hub::{DEFAULT_EVENT_TYPE, Error as HubError, Event, EventId, HubMessage};

use crate::bridge::{BINARY, ENCODING_HEADER, EVENT_HEADER, KEY_HEADER, header_text};
use crate::topic::EPOCH;

/// What a node holds of a topic: the backlog it hands a loop that starts
/// to follow, and where it stands in the stream.
pub(crate) struct Replica {
    pub(crate) events: VecDeque<Arc<Event>>,
    pub(crate) bytes: usize,
    /// The id before `events`, if the stream held anything before them.
    pub(crate) dropped: Option<EventId>,
    /// The publish keys of `events`, for duplicates.
    pub(crate) keys: HashMap<Arc<str>, EventId>,
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
}

impl Replica {
    pub(crate) fn push(&mut self, event: Arc<Event>) {
        self.bytes += event.cost();
        if let Some(key) = event.key() {
            self.keys.insert(Arc::from(key), event.id());
        }
        self.events.push_back(event);
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.cost();
            if let Some(key) = old.key()
                && self.keys.get(key) == Some(&old.id())
            {
                self.keys.remove(key);
            }
            self.dropped = Some(old.id());
        }
    }

    pub(crate) fn ready(&self, topic: &Arc<str>) -> HubMessage {
        HubMessage::Ready {
            topic: topic.clone(),
            history: self.events.iter().cloned().collect(),
            dropped: self.dropped,
        }
    }
}

/// The hub's event of a stream message; `None` (logged) when it is not
/// one tether wrote.
pub(crate) fn to_event(topic: &Arc<str>, offset: u64, delivery: &Delivery) -> Option<Arc<Event>> {
    let headers = delivery.properties.headers().as_ref();
    let event_type = header_text(headers, EVENT_HEADER).unwrap_or(DEFAULT_EVENT_TYPE);
    let key = header_text(headers, KEY_HEADER);
    let id = EventId::new(EPOCH, offset);
    let event = if header_text(headers, ENCODING_HEADER) == Some(BINARY) {
        Event::binary(topic.clone(), id, event_type, &delivery.data, key)
    } else {
        std::str::from_utf8(&delivery.data)
            .map_err(|_| HubError::InvalidEventType)
            .and_then(|data| Event::keyed(topic.clone(), id, event_type, data, key))
    };
    match event {
        Ok(event) => Some(event),
        Err(e) => {
            log::warn!("rabbitmq: offset {offset} of topic {topic} is not an event ({e}): skipped");
            None
        }
    }
}
