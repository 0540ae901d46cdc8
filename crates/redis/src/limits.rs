//! What the nodes share about their users beside the topics: each node's
//! open connections per subject, and the revoked tokens. No I/O here: the
//! presence thread sends what these build, every [`LIMITS_PERIOD`].
//!
//! - Connections: each node `SET`s its counts (in the encoding of
//!   [`tether_bus::wire`], as every bus), under
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

use redis::Value;
use tether_bus::wire;

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

/// A revocation's member: its bytes in the one encoding of
/// [`tether_bus::wire`] (the same entry revoked again until another time
/// is another member; the longest wins). `None` for an entry that cannot
/// be one (empty, or past the bound).
pub(crate) fn revoked_member(entry: &str, until: u64) -> Option<Vec<u8>> {
    wire::encode_revocation(entry, until).ok()
}

/// The `(entry, until)` of a member (of this release, or the `UNTIL:ENTRY`
/// of the release before); `None` for one that is neither.
pub(crate) fn parse_revoked_member(member: &[u8]) -> Option<(String, u64)> {
    wire::decode_revocation(member).ok()
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
    fn revocation_members_carry_their_time() {
        let member = revoked_member("jti:a:b", 1_700_000_000).unwrap();
        assert_eq!(
            parse_revoked_member(&member),
            Some(("jti:a:b".to_owned(), 1_700_000_000))
        );
        // The release before's members are read too.
        assert_eq!(
            parse_revoked_member(b"1700000000:jti:a:b"),
            Some(("jti:a:b".to_owned(), 1_700_000_000))
        );
        assert_eq!(revoked_member("", 1), None);
        assert_eq!(parse_revoked_member(b"nope"), None);
        assert_eq!(parse_revoked_member(b"x:jti:a"), None);
        assert_eq!(nodes_key("t:"), "t:!conns");
        assert_eq!(counts_key("t:", "n1"), "t:!conns!n1");
        assert_eq!(revoked_key("t:"), "t:!revoked");
        assert_eq!(revoked_generation_key("t:"), "t:!revoked!gen");
    }
}
