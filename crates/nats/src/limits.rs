//! What the nodes share about their users beside the topics, in two
//! JetStream key-value buckets: the state the bridge holds of it and the
//! values' format. The bridge's side (the buckets, the writes, the
//! watches) is in [`crate::limits_sync`].
//!
//! - Connections: each node puts its open connections per subject under
//!   its random name in `STREAM_conns` every [`LIMITS_PERIOD`]; the bucket
//!   forgets values older than [`COUNTS_TTL`]. Every node watches the
//!   bucket and sums the other nodes' counts heard within the last
//!   [`COUNTS_TTL`] (by its own clock, so that the nodes' clocks need not
//!   agree): a node that dies stops writing, and its counts vanish.
//! - Revocations: one key per `(entry, until)` in `STREAM_revoked` (file
//!   storage, so that they outlive a NATS restart), named by a hash of
//!   both (an entry may be 2048 bytes, more than a key should be), the
//!   value holding both; each is put with a per-message time to live up
//!   to its `until`, so that NATS drops it then. Every node watches the
//!   bucket (reading it whole when it connects) and hands the revocations
//!   in force to the hub whenever they changed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use async_nats::jetstream::kv::Store;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tether_bus::{add_count, wire};
use tokio::time::Instant;

use crate::shared::SharedLimits;

pub(crate) use tether_bus::{COUNTS_TTL, LIMITS_PERIOD};

/// The longest entry a `Revoker` takes, in bytes (longer ones are
/// dropped): the wire's bound.
pub(crate) use tether_bus::wire::MAX_ENTRY_LEN;

/// What the bridge holds of the shared limits.
#[derive(Default)]
pub(crate) struct Limits {
    /// The hub's side, once shared.
    pub(crate) hub: Option<SharedLimits>,
    /// The counts bucket, once found or made.
    pub(crate) counts: Option<Store>,
    /// The revocations bucket, once found or made.
    pub(crate) revoked: Option<Store>,
    /// The other nodes' counts, with when they were last heard of.
    pub(crate) elsewhere: HashMap<String, (Instant, HashMap<Arc<str>, usize>)>,
    /// When the counts' watch last delivered anything (this node's own
    /// writes included): a watch silent for longer than [`COUNTS_TTL`]
    /// while this node writes is made again.
    pub(crate) counts_heard: Option<Instant>,
    /// How many times the buckets were found (once per connection): a
    /// watch begun before the last time starts over.
    pub(crate) connection: u64,
    /// When to look for the buckets (again), if one is missing.
    pub(crate) find_at: Option<Instant>,
    /// The revocations in the bucket, by key, as `(entry, until)`.
    pub(crate) revocations: HashMap<String, (String, u64)>,
    /// The revocations changed since the hub was last told.
    pub(crate) revocations_changed: bool,
    /// Revocations of this node not yet written.
    pub(crate) revoking: Vec<(String, u64)>,
}

impl Limits {
    /// The other nodes' counts heard of within [`COUNTS_TTL`] before
    /// `now`, summed by subject (those older are forgotten).
    pub(crate) fn elsewhere(&mut self, now: Instant) -> HashMap<Arc<str>, usize> {
        self.elsewhere
            .retain(|_, (heard, _)| now.saturating_duration_since(*heard) < COUNTS_TTL);
        let mut sum: HashMap<Arc<str>, usize> = HashMap::new();
        for (_, counts) in self.elsewhere.values() {
            for (subject, count) in counts {
                add_count(&mut sum, subject, *count);
            }
        }
        sum
    }

    /// The revocations in force at `now` (Unix seconds), those expired
    /// forgotten, if they changed since last asked.
    pub(crate) fn changed_revocations(&mut self, now: u64) -> Option<Vec<(String, u64)>> {
        self.revocations.retain(|_, (_, until)| *until > now);
        if !std::mem::take(&mut self.revocations_changed) {
            return None;
        }
        Some(self.revocations.values().cloned().collect())
    }
}

/// A node's counts as a value, in the encoding of [`tether_bus::wire`]
/// (as every bus), and how many subjects were left out.
pub(crate) fn encode_counts(counts: &[(Arc<str>, usize)]) -> (Vec<u8>, usize) {
    wire::encode_counts(counts)
}

/// The counts of a value: this release's, or (for one release, while
/// nodes of the release before share the bucket) their JSON array of
/// `[subject, count]`; `None` for a value that is neither.
pub(crate) fn decode_counts(value: &[u8]) -> Option<HashMap<Arc<str>, usize>> {
    let mut counts: HashMap<Arc<str>, usize> = HashMap::new();
    if wire::decode_counts(value, &mut counts).is_ok() {
        return Some(counts);
    }
    if value.len() > wire::MAX_COUNTS_LEN {
        return None;
    }
    let Value::Array(pairs) = serde_json::from_slice(value).ok()? else {
        return None;
    };
    for pair in pairs {
        let subject = pair.get(0)?.as_str()?;
        let count = usize::try_from(pair.get(1)?.as_u64()?).ok()?;
        add_count(&mut counts, subject, count);
    }
    Some(counts)
}

/// A revocation's key: the SHA-256 of `UNTIL:ENTRY` in hex (the same
/// entry revoked until another time is another key; the hub keeps the
/// longest).
pub(crate) fn revocation_key(entry: &str, until: u64) -> String {
    let digest = Sha256::digest(format!("{until}:{entry}").as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// A revocation's value, in the encoding of [`tether_bus::wire`]; `None`
/// for an entry that cannot be one (empty, or past [`MAX_ENTRY_LEN`]).
pub(crate) fn encode_revocation(entry: &str, until: u64) -> Option<Vec<u8>> {
    wire::encode_revocation(entry, until).ok()
}

/// The `(entry, until)` of a revocation's value: this release's, or (for
/// one release) the JSON object of the release before; `None` for a value
/// that is neither.
pub(crate) fn decode_revocation(value: &[u8]) -> Option<(String, u64)> {
    if let Ok(revocation) = wire::decode_revocation(value) {
        return Some(revocation);
    }
    if value.len() > 2 * MAX_ENTRY_LEN + 64 {
        return None;
    }
    let value: Value = serde_json::from_slice(value).ok()?;
    let entry = value.get("entry")?.as_str()?;
    if entry.is_empty() || entry.len() > MAX_ENTRY_LEN {
        return None;
    }
    Some((entry.to_owned(), value.get("until")?.as_u64()?))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_round_trip_whatever_the_subject_holds() {
        let counts = [
            (Arc::from("alice"), 2),
            (Arc::from("a \"b\" [3]"), 1),
            (Arc::from("é"), 7),
        ];
        let read = decode_counts(&encode_counts(&counts).0).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read.get("alice"), Some(&2));
        assert_eq!(read.get("a \"b\" [3]"), Some(&1));
        assert_eq!(read.get("é"), Some(&7));
        assert_eq!(decode_counts(b"c1"), Some(HashMap::new()));
        // The release before's JSON, for one release.
        assert_eq!(decode_counts(b"[]"), Some(HashMap::new()));
        let old = decode_counts(br#"[["alice",2],["bob",1]]"#).unwrap();
        assert_eq!(old.get("alice"), Some(&2));
        assert_eq!(old.get("bob"), Some(&1));
        for bad in [
            &b"c1 1 9 short"[..],
            b"{}",
            b"[[\"a\"]]",
            b"[[\"a\", -1]]",
            b"[[1, 1]]",
            b"[[\"a\", 1.5]]",
            b"nope",
        ] {
            assert_eq!(decode_counts(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_others_counts_add_up_until_they_are_old() {
        let mut limits = Limits::default();
        let start = Instant::now();
        let counts = |pairs: &[(&str, usize)]| -> HashMap<Arc<str>, usize> {
            pairs.iter().map(|(s, c)| (Arc::from(*s), *c)).collect()
        };
        limits
            .elsewhere
            .insert("n1".into(), (start, counts(&[("alice", 2), ("bob", 1)])));
        limits.elsewhere.insert(
            "n2".into(),
            (start + Duration::from_secs(2), counts(&[("alice", 1)])),
        );
        let sum = limits.elsewhere(start + Duration::from_secs(2));
        assert_eq!(sum, counts(&[("alice", 3), ("bob", 1)]));
        // n1 was last heard of a whole time to live ago: it is gone.
        let sum = limits.elsewhere(start + COUNTS_TTL);
        assert_eq!(sum, counts(&[("alice", 1)]));
        assert_eq!(limits.elsewhere.len(), 1);
    }

    #[test]
    fn revocations_are_told_once_per_change_and_forgotten_when_expired() {
        let mut limits = Limits::default();
        assert_eq!(limits.changed_revocations(100), None);
        for (entry, until) in [("jti:a", 150), ("jti:b", 300)] {
            limits
                .revocations
                .insert(revocation_key(entry, until), (entry.to_owned(), until));
        }
        limits.revocations_changed = true;
        let mut told = limits.changed_revocations(100).unwrap();
        told.sort();
        assert_eq!(told, [("jti:a".to_owned(), 150), ("jti:b".to_owned(), 300)]);
        assert_eq!(limits.changed_revocations(100), None);
        limits.revocations_changed = true;
        assert_eq!(
            limits.changed_revocations(150),
            Some(vec![("jti:b".to_owned(), 300)])
        );
    }

    #[test]
    fn revocations_round_trip_and_their_keys_are_key_tokens() {
        let value = encode_revocation("sub:1700000000:a.b c", 1_800_000_000).unwrap();
        assert_eq!(
            decode_revocation(&value),
            Some(("sub:1700000000:a.b c".to_owned(), 1_800_000_000))
        );
        // The release before's JSON, for one release.
        assert_eq!(
            decode_revocation(br#"{"entry":"jti:a","until":1800000000}"#),
            Some(("jti:a".to_owned(), 1_800_000_000))
        );
        assert_eq!(decode_revocation(br#"{"entry":"","until":1}"#), None);
        assert_eq!(decode_revocation(br#"{"entry":"jti:a","until":-1}"#), None);
        let long = "x".repeat(MAX_ENTRY_LEN + 1);
        assert_eq!(encode_revocation(&long, 1), None);
        let long_json = format!(r#"{{"entry":"{long}","until":1}}"#);
        assert_eq!(decode_revocation(long_json.as_bytes()), None);
        let key = revocation_key(&"y".repeat(MAX_ENTRY_LEN), 1_800_000_000);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(key, revocation_key("jti:a", 1_800_000_000));
        assert_ne!(revocation_key("jti:a", 1), revocation_key("jti:a", 2));
        // SHA-256 of "1:jti:a": the same on every node, whatever its build.
        assert_eq!(
            revocation_key("jti:a", 1),
            "03e2f751cb1b64a2f844cb149c388ceda4d5806399102b1b7fdaac9b52c85f60"
        );
    }
}
