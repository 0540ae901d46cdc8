//! What the nodes share about their users beside the topics (each node's
//! open connections per subject, and the revoked tokens): the pace and
//! lifetimes every bus keeps, the handle that adds revocations, and the
//! sum of the other nodes' counts. How a bus stores them is its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::broker::Bus;
use crate::control::Control;

/// How often a node writes its counts, and reads (or hands the hub) the
/// others' and the changed revocations.
pub const LIMITS_PERIOD: Duration = Duration::from_millis(500);

/// How long a node's counts outlive their last write: a node that dies
/// stops writing, and its counts vanish after this.
pub const COUNTS_TTL: Duration = Duration::from_secs(3);

/// Adds `count` connections of `subject` into `into`, saturating (the
/// counts of several nodes add up; a bad peer's huge numbers do not
/// overflow).
pub fn add_count(into: &mut HashMap<Arc<str>, usize>, subject: &str, count: usize) {
    match into.get_mut(subject) {
        Some(total) => *total = total.saturating_add(count),
        None => {
            into.insert(Arc::from(subject), count);
        }
    }
}

/// Hands revocations to the bridge's thread, which adds them to the bus
/// for every node (this one reads them back too). Cheap to clone; from
/// a bridge's `share_limits`.
#[derive(Clone)]
pub struct Revoker {
    send: Arc<dyn Fn(Control) + Send + Sync>,
}

impl Revoker {
    /// A revoker that hands revocations to `bus`.
    pub fn new<B: Bus>(bus: Arc<B>) -> Revoker {
        Revoker {
            send: Arc::new(move |message| bus.control(message)),
        }
    }

    /// Adds these `(entry, until)` revocations (entries are opaque text
    /// of at most 2048 bytes, until in Unix seconds) to the bus; they are
    /// kept until their time. Never blocks.
    pub fn revoke(&self, entries: Vec<(String, u64)>) {
        (self.send)(Control::Revoke(entries));
    }
}

impl fmt::Debug for Revoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revoker").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_without_overflowing() {
        let mut counts = HashMap::new();
        add_count(&mut counts, "alice", 2);
        add_count(&mut counts, "alice", 3);
        add_count(&mut counts, "bob", usize::MAX);
        add_count(&mut counts, "bob", 1);
        assert_eq!(counts.get("alice"), Some(&5));
        assert_eq!(counts.get("bob"), Some(&usize::MAX));
    }
}
