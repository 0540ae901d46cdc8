//! What the nodes share about their users beside the topics: each node's
//! open connections per subject, and the revoked tokens. No I/O here: the
//! presence thread sends what these build, every [`LIMITS_PERIOD`].
//!
//! - Connections: each node `SET`s its counts, as one string, under
//!   `PREFIX!conns!NODE` with a time to live of a few periods, and scores
//!   itself in the sorted set `PREFIX!conns` (by the Unix millisecond its
//!   counts expire at); it reads the others' with `GET`. A node that dies
//!   stops writing, and its counts vanish with their key.
//! - Revocations: members of the sorted set `PREFIX!revoked`, scored by
//!   the Unix second they are kept until (expired ones are removed), with
//!   `PREFIX!revoked!gen` counting the changes: a node reads the whole set
//!   when it connects, and again whenever the count moved.
//!
//! Every command names one key, so on a Redis Cluster each goes to its
//! key's slot.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;
use tether_bus::add_count;

use crate::commands::text;

pub(crate) use tether_bus::{COUNTS_TTL, LIMITS_PERIOD};

/// What a node shares with the others about its users (the hub's, for
/// every bus; see [`RedisBridge::share_limits`](crate::RedisBridge::share_limits)).
pub use tether_hub::NodeLimits;

/// The sorted set of the nodes that count connections.
pub(crate) fn nodes_key(prefix: &str) -> String {
    format!("{prefix}!conns")
}

/// A node's counts.
pub(crate) fn counts_key(prefix: &str, node: &str) -> String {
    format!("{prefix}!conns!{node}")
}

/// The sorted set of revocations.
pub(crate) fn revoked_key(prefix: &str) -> String {
    format!("{prefix}!revoked")
}

/// The count of changes to the revocations.
pub(crate) fn revoked_generation_key(prefix: &str) -> String {
    format!("{prefix}!revoked!gen")
}

/// A revocation's member: `UNTIL:ENTRY` (the same entry revoked again
/// until another time is another member; the longest wins).
pub(crate) fn revoked_member(entry: &str, until: u64) -> String {
    format!("{until}:{entry}")
}

/// The `(entry, until)` of a member; `None` for one this crate did not
/// write.
pub(crate) fn parse_revoked_member(member: &[u8]) -> Option<(String, u64)> {
    let member = std::str::from_utf8(member).ok()?;
    let (until, entry) = member.split_once(':')?;
    Some((entry.to_owned(), until.parse().ok()?))
}

/// Counts as one string: `COUNT LEN SUBJECT` after one another (the
/// length in bytes, so that a subject may hold any byte).
pub(crate) fn encode_counts(counts: &[(Arc<str>, usize)]) -> String {
    let mut out = String::new();
    for (subject, count) in counts {
        out.push_str(&format!("{count} {} {subject}", subject.len()));
    }
    out
}

/// The counts of [`encode_counts`]'s text, added into `into`; `false` if
/// the text is not such (what was read before the fault is kept).
pub(crate) fn decode_counts(text: &[u8], into: &mut HashMap<Arc<str>, usize>) -> bool {
    let mut rest = text;
    while !rest.is_empty() {
        let Some((count, after)) = number(rest) else {
            return false;
        };
        let Some((len, after)) = number(after) else {
            return false;
        };
        let Some(subject) = after.get(..len).and_then(|s| std::str::from_utf8(s).ok()) else {
            return false;
        };
        rest = after.get(len..).unwrap_or_default();
        add_count(into, subject, count);
    }
    true
}

/// A decimal number and the space after it.
fn number(text: &[u8]) -> Option<(usize, &[u8])> {
    let space = text.iter().position(|&b| b == b' ')?;
    let digits = std::str::from_utf8(text.get(..space)?).ok()?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, text.get(space + 1..)?))
}

/// The members of a `ZRANGEBYSCORE` reply (without scores).
pub(crate) fn members(value: &Value) -> Vec<&[u8]> {
    match value {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_whatever_the_subject_holds() {
        let counts = [
            (Arc::from("alice"), 2),
            (Arc::from("a b 3 c"), 1),
            (Arc::from("é"), 7),
        ];
        let text = encode_counts(&counts);
        let mut read = HashMap::new();
        assert!(decode_counts(text.as_bytes(), &mut read));
        // A second node's counts add up.
        assert!(decode_counts(b"3 5 alice", &mut read));
        assert_eq!(read.get("alice"), Some(&5));
        assert_eq!(read.get("a b 3 c"), Some(&1));
        assert_eq!(read.get("é"), Some(&7));
        assert!(decode_counts(b"", &mut read));
        for bad in [
            &b"1 9 short"[..],
            b"x 1 a",
            b"1 1",
            b"-1 1 a",
            b"1  a",
            b"99999999999999999999 1 a",
        ] {
            assert!(!decode_counts(bad, &mut HashMap::new()), "{bad:?}");
        }
    }

    #[test]
    fn revocation_members_carry_their_time() {
        let member = revoked_member("jti:a:b", 1_700_000_000);
        assert_eq!(
            parse_revoked_member(member.as_bytes()),
            Some(("jti:a:b".to_owned(), 1_700_000_000))
        );
        assert_eq!(parse_revoked_member(b"nope"), None);
        assert_eq!(parse_revoked_member(b"x:jti:a"), None);
        assert_eq!(nodes_key("t:"), "t:!conns");
        assert_eq!(counts_key("t:", "n1"), "t:!conns!n1");
        assert_eq!(revoked_key("t:"), "t:!revoked");
        assert_eq!(revoked_generation_key("t:"), "t:!revoked!gen");
    }
}
