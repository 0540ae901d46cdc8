//! The most connections per subject: how many WebSockets and event
//! streams each credential subject has open on this node, over every
//! loop, and a slot per connection that gives its place back however the
//! connection ends (it is dropped with the subscriber).
//!
//! Long polls are not counted: each is one request, over in at most the
//! poll timeout, and a client that polls holds one at a time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Open connections by subject, shared by every loop of a node; with a
/// cluster, the other nodes' counts as last heard of too.
#[derive(Debug, Clone, Default)]
pub(super) struct SubjectConnections {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    /// This node's connections of each subject that has any.
    here: HashMap<Arc<str>, usize>,
    /// The other nodes' connections of each subject, as last read.
    elsewhere: HashMap<Arc<str>, usize>,
}

impl Counts {
    fn total(&self, subject: &str) -> usize {
        let here = self.here.get(subject).copied().unwrap_or(0);
        here.saturating_add(self.elsewhere.get(subject).copied().unwrap_or(0))
    }
}

/// One counted connection of a subject: dropping it frees the place.
pub(super) struct Slot {
    counts: Arc<Mutex<Counts>>,
    subject: Arc<str>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Slot").field(&self.subject).finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.here.get_mut(&self.subject) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.here.remove(&self.subject);
            }
        }
    }
}

impl SubjectConnections {
    /// Whether `subject` has `max` connections or more open (here, and
    /// elsewhere as last heard of): a new one would be refused.
    pub(super) fn is_full(&self, subject: &str, max: usize) -> bool {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total(subject)
            >= max
    }

    /// A slot for one more connection of `subject`, unless it has `max`
    /// open already (`None`: no limit, always a slot).
    pub(super) fn open(&self, subject: &str, max: Option<usize>) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if max.is_some_and(|max| counts.total(subject) >= max) {
            return None;
        }
        let (subject, count) = match counts.here.get_key_value(subject) {
            Some((key, &count)) => (key.clone(), count),
            None => (Arc::from(subject), 0),
        };
        counts.here.insert(subject.clone(), count.saturating_add(1));
        Some(Slot {
            counts: self.counts.clone(),
            subject,
        })
    }

    /// This node's connections of `subject`.
    #[cfg(test)]
    pub(super) fn here(&self, subject: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .here
            .get(subject)
            .copied()
            .unwrap_or(0)
    }

    /// Every subject with connections open on this node, and how many.
    pub(super) fn snapshot(&self) -> Vec<(Arc<str>, usize)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.here.iter().map(|(s, n)| (s.clone(), *n)).collect()
    }

    /// The other nodes' connections by subject, replacing what was last
    /// heard of.
    pub(super) fn set_elsewhere(&self, elsewhere: HashMap<Arc<str>, usize>) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).elsewhere = elsewhere;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_until_dropped() {
        let connections = SubjectConnections::default();
        let first = connections.open("alice", Some(2)).unwrap();
        let second = connections.open("alice", Some(2)).unwrap();
        assert!(connections.open("alice", Some(2)).is_none());
        assert!(connections.is_full("alice", 2));
        // Another subject has places of its own; no limit, always one.
        assert!(connections.open("bob", Some(2)).is_some());
        let third = connections.open("alice", None).unwrap();
        assert_eq!(connections.here("alice"), 3);
        drop(third);
        drop(first);
        assert_eq!(connections.here("alice"), 1);
        assert!(!connections.is_full("alice", 2));
        let again = connections.open("alice", Some(2)).unwrap();
        drop(again);
        drop(second);
        // A subject with no connection left is forgotten.
        assert_eq!(connections.here("alice"), 0);
        assert!(connections.snapshot().is_empty());
    }

    #[test]
    fn other_nodes_count_against_the_limit() {
        let connections = SubjectConnections::default();
        let _mine = connections.open("alice", Some(3)).unwrap();
        connections.set_elsewhere(HashMap::from([(Arc::from("alice"), 2)]));
        assert!(connections.is_full("alice", 3));
        assert!(connections.open("alice", Some(3)).is_none());
        // Only this node's own are published.
        assert_eq!(connections.snapshot(), [(Arc::from("alice"), 1)]);
        connections.set_elsewhere(HashMap::new());
        assert!(connections.open("alice", Some(3)).is_some());
    }
}
