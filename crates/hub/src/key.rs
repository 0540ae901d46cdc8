//! Publish keys (the publisher's own id for a publish, which makes
//! retries safe) and the window in which a topic remembers them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::id::EventId;

/// The longest publish key, in bytes.
pub const MAX_PUBLISH_KEY_LEN: usize = 128;

/// Whether `key` may be a publish key: 1 to [`MAX_PUBLISH_KEY_LEN`]
/// visible ASCII characters (`!` to `~`: no space, no control
/// character). A UUID, a hash, a `client:counter` pair all fit.
///
/// ```
/// assert!(tether_hub::is_valid_publish_key("order-42:retry"));
/// assert!(tether_hub::is_valid_publish_key("{\"q\"}"));
/// assert!(!tether_hub::is_valid_publish_key(""));
/// assert!(!tether_hub::is_valid_publish_key("two words"));
/// assert!(!tether_hub::is_valid_publish_key("café"));
/// ```
pub fn is_valid_publish_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_PUBLISH_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The keys of one topic that are still remembered: exactly those whose
/// events the topic's backlog still holds.
///
/// A [`crate::Backlog`] drops its oldest events while it holds more than
/// `max_events` or more than `max_bytes`; so an event is held exactly as
/// long as it and every later event fit within both bounds. This window
/// keeps only that suffix, from the oldest keyed event still held (the
/// cost and key of each event in it), so a topic that never sees a key
/// costs nothing, and one that does holds at most `max_events` entries.
#[derive(Debug, Clone)]
pub(crate) struct KeyWindow {
    max_events: usize,
    max_bytes: usize,
    /// From the oldest keyed event still held to the newest event.
    suffix: VecDeque<Slot>,
    /// The sum of the costs in `suffix`.
    bytes: usize,
    ids: HashMap<Arc<str>, EventId>,
}

#[derive(Debug, Clone)]
struct Slot {
    id: EventId,
    cost: usize,
    key: Option<Arc<str>>,
}

impl KeyWindow {
    /// An empty window for a backlog with these bounds.
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> KeyWindow {
        KeyWindow {
            max_events,
            max_bytes,
            suffix: VecDeque::new(),
            bytes: 0,
            ids: HashMap::new(),
        }
    }

    /// The id of the event published with `key`, while it is held.
    pub(crate) fn get(&self, key: &str) -> Option<EventId> {
        self.ids.get(key).copied()
    }

    /// Records the topic's next event (every event, keyed or not, in id
    /// order: each one moves the window), as the backlog will push it.
    pub(crate) fn push(&mut self, id: EventId, cost: usize, key: Option<&Arc<str>>) {
        if key.is_none() && self.suffix.is_empty() {
            return;
        }
        if let Some(key) = key {
            self.ids.insert(key.clone(), id);
        }
        self.bytes += cost;
        self.suffix.push_back(Slot {
            id,
            cost,
            key: key.cloned(),
        });
        while self.suffix.len() > self.max_events || self.bytes > self.max_bytes {
            self.pop();
        }
        // Events older than the oldest key are of no interest.
        while self.suffix.front().is_some_and(|slot| slot.key.is_none()) {
            self.pop();
        }
    }

    /// Forgets every key.
    pub(crate) fn clear(&mut self) {
        self.suffix.clear();
        self.bytes = 0;
        self.ids.clear();
    }

    fn pop(&mut self) {
        let Some(slot) = self.suffix.pop_front() else {
            return;
        };
        self.bytes -= slot.cost;
        if let Some(key) = slot.key
            && self.ids.get(&key) == Some(&slot.id)
        {
            self.ids.remove(&key);
        }
    }

    /// Keys remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backlog::Backlog;
    use crate::event::Event;

    fn id(seq: u64) -> EventId {
        EventId::new(1, seq)
    }

    #[test]
    fn keys() {
        assert!(is_valid_publish_key("a"));
        assert!(is_valid_publish_key(&"k".repeat(MAX_PUBLISH_KEY_LEN)));
        assert!(is_valid_publish_key("!~\"\\/?#%&+="));
        for bad in ["", " ", "a b", "a\tb", "a\nb", "\u{7f}", "é", "a\u{0}"] {
            assert!(!is_valid_publish_key(bad), "{bad:?}");
        }
        assert!(!is_valid_publish_key(&"k".repeat(MAX_PUBLISH_KEY_LEN + 1)));
    }

    #[test]
    fn remembered_while_within_the_count_bound() {
        let mut window = KeyWindow::new(3, usize::MAX);
        let key: Arc<str> = Arc::from("k");
        window.push(id(1), 10, Some(&key));
        assert_eq!(window.get("k"), Some(id(1)));
        window.push(id(2), 10, None);
        window.push(id(3), 10, None);
        assert_eq!(window.get("k"), Some(id(1)), "three events held");
        window.push(id(4), 10, None);
        assert_eq!(window.get("k"), None, "the fourth pushed it out");
        assert!(window.suffix.is_empty() && window.bytes == 0 && window.len() == 0);
        // Unkeyed events alone cost nothing.
        for seq in 5..100 {
            window.push(id(seq), 10, None);
        }
        assert!(window.suffix.is_empty());
    }

    #[test]
    fn remembered_while_within_the_byte_bound() {
        let mut window = KeyWindow::new(usize::MAX, 100);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        window.push(id(1), 40, Some(&a));
        window.push(id(2), 40, Some(&b));
        window.push(id(3), 20, None);
        assert_eq!((window.get("a"), window.get("b")), (Some(id(1)), Some(id(2))));
        window.push(id(4), 1, None);
        assert_eq!((window.get("a"), window.get("b")), (None, Some(id(2))));
        // An event larger than the bound is never held: its key is not
        // remembered, and it pushes out everything before it.
        window.push(id(5), 101, Some(&a));
        assert_eq!((window.get("a"), window.get("b")), (None, None));
        assert_eq!(window.len(), 0);
    }

    #[test]
    fn a_key_published_again_after_its_window_is_remembered_again() {
        let mut window = KeyWindow::new(1, usize::MAX);
        let key: Arc<str> = Arc::from("k");
        window.push(id(1), 1, Some(&key));
        window.push(id(2), 1, None);
        assert_eq!(window.get("k"), None);
        window.push(id(3), 1, Some(&key));
        assert_eq!(window.get("k"), Some(id(3)));
    }

    proptest::proptest! {
        /// Whatever the events' sizes and keys, a key is remembered
        /// exactly while a backlog with the same bounds holds its event.
        #[test]
        fn the_window_is_the_backlog(
            max_events in 0usize..6,
            max_bytes in 0usize..2000,
            events in proptest::collection::vec((0usize..300, proptest::option::of(0u8..4)), 0..40),
        ) {
            let mut backlog = Backlog::new(max_events, max_bytes);
            let mut window = KeyWindow::new(max_events, max_bytes);
            let mut latest: HashMap<String, EventId> = HashMap::new();
            for (n, (len, key)) in events.into_iter().enumerate() {
                let key = key.map(|k| format!("k{k}"));
                let event = Event::new(Arc::from("t"), id(n as u64 + 1), "message", &"x".repeat(len)).unwrap();
                let shared = key.as_deref().map(Arc::<str>::from);
                window.push(event.id(), event.cost(), shared.as_ref());
                if let Some(key) = key {
                    latest.insert(key, event.id());
                }
                backlog.push(event).unwrap();
                for (key, id) in &latest {
                    let held = backlog.iter().any(|e| e.id() == *id);
                    proptest::prop_assert_eq!(window.get(key), held.then_some(*id), "{}", key);
                }
                proptest::prop_assert!(window.suffix.len() <= backlog.len());
            }
        }
    }
}
