//! Connection counts and revocations across nodes through JetStream
//! key-value buckets: the bridge's side of [`crate::limits`] (which holds
//! the state and the values' format) — finding the buckets, writing this
//! node's counts and revocations every [`LIMITS_PERIOD`], watching the
//! other nodes', and telling the hub.

use std::rc::Rc;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, Store};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::bridge::Bridge;
use crate::limits::{
    COUNTS_TTL, LIMITS_PERIOD, MAX_ENTRY_LEN, decode_counts, decode_revocation, encode_counts,
    encode_revocation, revocation_key,
};
use crate::presence::unix_ms;
use crate::shared::{SharedLimits, add};

/// How long NATS keeps the marker it leaves where a revocation expired.
const EXPIRY_MARKER_TTL: Duration = Duration::from_secs(60);

/// How long after failing to find a bucket it is looked for again.
const FIND_AGAIN: Duration = Duration::from_secs(5);

/// Which of the two buckets a watch follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Counts,
    Revoked,
}

impl Bridge {
    /// The hub shares its limits from now on: the watches start (once),
    /// and the buckets are looked for at the next period.
    pub(crate) fn share_limits(self: &Rc<Self>, hub: SharedLimits) {
        let mut limits = self.limits.borrow_mut();
        let first = limits.hub.replace(hub).is_none();
        if first {
            limits.find_at = Some(Instant::now());
            drop(limits);
            tokio::task::spawn_local(watch(self.clone(), Bucket::Counts));
            tokio::task::spawn_local(watch(self.clone(), Bucket::Revoked));
        }
    }

    /// Finds the two buckets, or makes them, if the hub shares its
    /// limits (at each connection: a bucket in memory is gone after a
    /// NATS restart); the watches start over, reading them whole. The
    /// bridge is up without them: one not found is looked for again
    /// every [`FIND_AGAIN`], its side staying on this node meanwhile.
    pub(crate) async fn ensure_limits(&self) {
        if self.limits.borrow().hub.is_none() {
            return;
        }
        let config = &self.shared.config;
        let counts_bucket = format!("{}_conns", config.stream_name());
        let counts = self
            .key_value(kv::Config {
                bucket: counts_bucket.clone(),
                history: 1,
                max_age: COUNTS_TTL,
                num_replicas: config.replicas.max(1),
                storage: StorageType::Memory,
                ..Default::default()
            })
            .await;
        let revoked_bucket = format!("{}_revoked", config.stream_name());
        let revoked = self
            .key_value(kv::Config {
                bucket: revoked_bucket.clone(),
                history: 1,
                num_replicas: config.replicas.max(1),
                storage: StorageType::File,
                // Per-message times to live (NATS 2.11 and later).
                limit_markers: Some(EXPIRY_MARKER_TTL),
                ..Default::default()
            })
            .await;
        let mut limits = self.limits.borrow_mut();
        let mut found = true;
        match counts {
            Ok(store) => limits.counts = Some(store),
            Err(e) => {
                found = false;
                log::warn!("nats: the bucket {counts_bucket}: {e}; connection counts not shared for now");
            }
        }
        match revoked {
            Ok(store) => limits.revoked = Some(store),
            Err(e) => {
                found = false;
                log::warn!("nats: the bucket {revoked_bucket}: {e}; revocations not shared for now");
            }
        }
        if !found {
            add(&self.shared.stats.errors, 1);
        }
        limits.find_at = (!found).then(|| Instant::now() + FIND_AGAIN);
        limits.connection += 1;
    }

    /// Every [`LIMITS_PERIOD`]: writes this node's counts and the
    /// revocations waiting (while connected), and tells the hub the other
    /// nodes' counts and the revocations if they changed.
    pub(crate) async fn tick_limits(self: &Rc<Self>) {
        let Some(SharedLimits(hub)) = self.limits.borrow().hub.clone() else {
            return;
        };
        if *self.up.borrow() {
            let find_at = self.limits.borrow().find_at;
            if find_at.is_some_and(|at| at <= Instant::now()) {
                self.ensure_limits().await;
            }
            let (counts, left_out) = encode_counts(&hub.connections_here());
            if left_out > 0 {
                log::debug!("nats: {left_out} subjects' connection counts not shared (empty or too long)");
            }
            self.put_counts(counts);
            self.write_revocations();
        }
        let elsewhere = self.limits.borrow_mut().elsewhere(Instant::now());
        hub.set_connections_elsewhere(elsewhere);
        let changed = self.limits.borrow_mut().changed_revocations(unix_ms() / 1000);
        if let Some(entries) = changed {
            hub.revoked(entries);
        }
    }

    /// This node's revocations, to write at the next period.
    pub(crate) fn revoke(&self, entries: Vec<(String, u64)>) {
        let now = unix_ms() / 1000;
        let mut limits = self.limits.borrow_mut();
        for (entry, until) in entries {
            if entry.is_empty() || entry.len() > MAX_ENTRY_LEN {
                log::warn!("nats: a revocation of {} bytes not shared", entry.len());
            } else if until > now {
                limits.revoking.push((entry, until));
            }
        }
    }

    /// Puts this node's counts under its name.
    fn put_counts(self: &Rc<Self>, counts: Vec<u8>) {
        let Some(store) = self.limits.borrow().counts.clone() else {
            return;
        };
        let bridge = self.clone();
        let timeout = self.shared.config.request_timeout;
        tokio::task::spawn_local(async move {
            let put = tokio::time::timeout(timeout, store.put(&bridge.node, Bytes::from(counts))).await;
            if !matches!(put, Ok(Ok(_))) {
                add(&bridge.shared.stats.errors, 1);
                log::debug!(
                    "nats: this node's connection counts not written (written again in {LIMITS_PERIOD:?})"
                );
            }
        });
    }

    /// Writes the revocations waiting, each kept by NATS until its time;
    /// those not written wait for the next period.
    fn write_revocations(self: &Rc<Self>) {
        let (store, revoking) = {
            let mut limits = self.limits.borrow_mut();
            let Some(store) = limits.revoked.clone() else {
                return;
            };
            (store, std::mem::take(&mut limits.revoking))
        };
        let now = unix_ms() / 1000;
        let timeout = self.shared.config.request_timeout;
        for (entry, until) in revoking {
            let Some(ttl) = until.checked_sub(now).filter(|&s| s > 0) else {
                continue;
            };
            let bridge = self.clone();
            let store = store.clone();
            tokio::task::spawn_local(async move {
                let key = revocation_key(&entry, until);
                // Entries were checked as they came (`revoke`).
                let Some(value) = encode_revocation(&entry, until).map(Bytes::from) else {
                    return;
                };
                let create = store.create_with_ttl(&key, value, Duration::from_secs(ttl));
                match tokio::time::timeout(timeout, create).await {
                    Ok(Ok(_)) => {}
                    // The same entry and time, revoked before.
                    Ok(Err(e)) if e.kind() == CreateErrorKind::AlreadyExists => {}
                    failed => {
                        add(&bridge.shared.stats.errors, 1);
                        let why =
                            failed.map_or_else(|_| "timed out".to_owned(), |r| format!("{:?}", r.err()));
                        log::warn!(
                            "nats: a revocation not written ({why}); tried again in {LIMITS_PERIOD:?}"
                        );
                        bridge.limits.borrow_mut().revoking.push((entry, until));
                    }
                }
            });
        }
    }

    /// Removes this node's counts (at shutdown), so that the others stop
    /// counting them at once.
    pub(crate) async fn clear_counts(&self) {
        let store = self.limits.borrow().counts.clone();
        if let Some(store) = store {
            let _ = tokio::time::timeout(self.shared.config.request_timeout, store.delete(&self.node)).await;
        }
    }

    /// The bucket a watch follows, with the connection it was found on.
    fn bucket(&self, which: Bucket) -> Option<(Store, u64)> {
        let limits = self.limits.borrow();
        let store = match which {
            Bucket::Counts => limits.counts.clone(),
            Bucket::Revoked => limits.revoked.clone(),
        }?;
        Some((store, limits.connection))
    }

    /// Takes an entry of the watched bucket.
    fn heard(&self, which: Bucket, entry: kv::Entry) {
        let mut limits = self.limits.borrow_mut();
        match which {
            Bucket::Counts => {
                let now = Instant::now();
                limits.counts_heard = Some(now);
                if entry.key == self.node {
                    return;
                }
                let counts = match entry.operation {
                    Operation::Put => decode_counts(&entry.value),
                    Operation::Delete | Operation::Purge => None,
                };
                match counts {
                    Some(counts) => {
                        limits.elsewhere.insert(entry.key, (now, counts));
                    }
                    None => {
                        limits.elsewhere.remove(&entry.key);
                    }
                }
            }
            Bucket::Revoked => {
                let revocation = match entry.operation {
                    Operation::Put => decode_revocation(&entry.value),
                    Operation::Delete | Operation::Purge => None,
                };
                let changed = match revocation {
                    Some(revocation) => {
                        limits.revocations.insert(entry.key, revocation.clone()) != Some(revocation)
                    }
                    None => limits.revocations.remove(&entry.key).is_some(),
                };
                limits.revocations_changed |= changed;
            }
        }
    }

    /// Whether a watch of `which` begun on `connection` should start
    /// over: the buckets were found again since, or (the counts') it has
    /// been silent for longer than this node's own writes allow.
    fn stale(&self, which: Bucket, connection: u64) -> bool {
        let limits = self.limits.borrow();
        if limits.connection != connection {
            return true;
        }
        which == Bucket::Counts
            && *self.up.borrow()
            && limits
                .counts_heard
                .is_some_and(|heard| heard.elapsed() > COUNTS_TTL)
    }
}

/// Follows one of the buckets, reading it whole first, for as long as
/// the bridge runs (its task ends with the bridge's thread).
async fn watch(bridge: Rc<Bridge>, which: Bucket) {
    loop {
        let Some((store, connection)) = bridge.bucket(which) else {
            tokio::time::sleep(LIMITS_PERIOD).await;
            continue;
        };
        let mut watch = match store.watch_with_history(">").await {
            Ok(watch) => watch,
            Err(e) => {
                log::debug!("nats: watching {which:?}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        bridge.limits.borrow_mut().counts_heard = Some(Instant::now());
        while !bridge.stale(which, connection) {
            match tokio::time::timeout(LIMITS_PERIOD, watch.next()).await {
                Ok(Some(Ok(entry))) => bridge.heard(which, entry),
                Err(_) => {}
                Ok(_) => break,
            }
        }
        log::debug!("nats: watching {which:?} again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
