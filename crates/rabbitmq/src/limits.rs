//! Connection counts and revocations across nodes. Each node sends its
//! counts per subject ([`tether_bus::wire`]) over the control exchange
//! every [`LIMITS_PERIOD`]; a node sums the others' heard within
//! [`COUNTS_TTL`] on its own clock (a node that shuts down sends empty
//! counts; one that dies stops counting after that). Revocations are
//! messages of the revocations' stream, which every node reads from its
//! first offset, so that a node started later, or away meanwhile, has
//! every one the stream holds.

use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use tether_bus::{COUNTS_TTL, LIMITS_PERIOD};
use tether_bus::{SharedLimits, add_count, wire};
use tokio::time::Instant;

/// What the bridge holds of limits.
#[derive(Default)]
pub(crate) struct Limits {
    /// The hub's, once shared.
    pub(crate) hub: Option<SharedLimits>,
    /// The other nodes' counts, as last heard.
    others: HashMap<String, (Instant, HashMap<Arc<str>, usize>)>,
    /// Every revocation read, `entry → until`.
    revoked: HashMap<String, u64>,
    /// Revocations read since the hub was last told.
    changed: bool,
}

impl Limits {
    /// Another node's counts (refused bytes are logged and dropped).
    pub(crate) fn heard_counts(&mut self, node: &str, body: &[u8], now: Instant) {
        let mut counts = HashMap::new();
        match wire::decode_counts(body, &mut counts) {
            Ok(()) if counts.is_empty() => {
                self.others.remove(node);
            }
            Ok(()) => {
                self.others.insert(node.to_owned(), (now, counts));
            }
            Err(e) => log::debug!("rabbitmq: counts of node {node} refused: {e}"),
        }
    }

    /// A revocation read from the stream.
    pub(crate) fn heard_revocation(&mut self, body: &[u8], now_s: u64) {
        match wire::decode_revocation(body) {
            Ok((entry, until)) if until > now_s => {
                let kept = self.revoked.entry(entry).or_insert(0);
                if until > *kept {
                    *kept = until;
                    self.changed = true;
                }
            }
            Ok(_) => {}
            Err(e) => log::debug!("rabbitmq: a revocation refused: {e}"),
        }
    }

    /// Tells the hub the others' counts, and the revocations if they
    /// changed (all of them, the expired dropped).
    pub(crate) fn tell_hub(&mut self, now: Instant, now_s: u64) {
        let Some(hub) = &self.hub else {
            return;
        };
        self.others
            .retain(|_, (at, _)| now.duration_since(*at) < COUNTS_TTL);
        let mut sum = HashMap::new();
        for (_, counts) in self.others.values() {
            for (subject, count) in counts {
                add_count(&mut sum, subject, *count);
            }
        }
        hub.0.set_connections_elsewhere(sum);
        if std::mem::take(&mut self.changed) {
            self.revoked.retain(|_, until| *until > now_s);
            hub.0
                .revoked(self.revoked.iter().map(|(e, u)| (e.clone(), *u)).collect());
        }
    }

    /// A new hub: it is told every revocation.
    pub(crate) fn share(&mut self, hub: SharedLimits) {
        self.hub = Some(hub);
        self.changed = true;
    }
}
