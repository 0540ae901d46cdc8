//! The `consumer` protocol's `range` assignor, as Kafka's own clients
//! run it: each topic's partitions, in order, cut into consecutive
//! ranges among the members subscribed to it (sorted by member id), the
//! first members one more when they do not divide evenly. Its
//! subscription and assignment encodings (version 0, which every
//! client reads) are here too.

use std::collections::BTreeMap;

use crate::group::Partition;
use crate::wire::Request;

/// The assignor's name in `JoinGroup`.
pub(crate) const RANGE: &str = "range";

/// A member's subscription to `topics` (version 0, no user data).
pub(crate) fn subscription(topics: &[String]) -> Vec<u8> {
    let mut out = Request::plain();
    out.i16(0);
    out.len(topics.len());
    for topic in topics {
        out.string(topic);
    }
    out.i32(-1);
    out.into_plain()
}

/// A member's assignment of `partitions` (version 0, no user data).
pub(crate) fn assignment(partitions: &[Partition]) -> Vec<u8> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut out = Request::plain();
    out.i16(0);
    out.len(by_topic.len());
    for (topic, partitions) in by_topic {
        out.string(topic);
        out.len(partitions.len());
        for partition in partitions {
            out.i32(partition);
        }
    }
    out.i32(-1);
    out.into_plain()
}

/// The range assignment of the partitions of `topics` (topic → its
/// partition count) to `members` (id → topics subscribed): every member
/// named, with its partitions. A topic no member subscribes to, or
/// whose count is unknown, is assigned to nobody.
pub(crate) fn range(
    members: &[(String, Vec<String>)],
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<Partition>> {
    let mut out: BTreeMap<String, Vec<Partition>> =
        members.iter().map(|(id, _)| (id.clone(), Vec::new())).collect();
    for (topic, &count) in topics {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|(_, subscribed)| subscribed.contains(topic))
            .map(|(id, _)| id.as_str())
            .collect();
        subscribed.sort_unstable();
        subscribed.dedup();
        let Ok(n) = i32::try_from(subscribed.len()) else {
            continue;
        };
        if n == 0 || count <= 0 {
            continue;
        }
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in (0..).zip(subscribed) {
            let take = each + i32::from(i < extra);
            if let Some(partitions) = out.get_mut(id) {
                partitions.extend((next..next + take).map(|p| (topic.clone(), p)));
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers;

    fn members(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(id, topics)| ((*id).to_owned(), topics.iter().map(|t| (*t).to_owned()).collect()))
            .collect()
    }

    fn parts(list: &[(&str, i32)]) -> Vec<Partition> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    /// Kafka's `RangeAssignor` documentation example: two members, two
    /// topics of three partitions.
    #[test]
    fn ranges_as_kafka_cuts_them() {
        let topics = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
        let assigned = range(&members(&[("C1", &["t0", "t1"]), ("C0", &["t0", "t1"])]), &topics);
        assert_eq!(
            assigned["C0"],
            parts(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)])
        );
        assert_eq!(assigned["C1"], parts(&[("t0", 2), ("t1", 2)]));
    }

    #[test]
    fn more_members_than_partitions_and_partial_subscriptions() {
        let topics = BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 1), ("c".to_owned(), 4)]);
        let assigned = range(
            &members(&[("m1", &["a", "b"]), ("m2", &["a"]), ("m3", &["a"])]),
            &topics,
        );
        assert_eq!(assigned["m1"], parts(&[("a", 0), ("b", 0)]));
        assert_eq!(assigned["m2"], parts(&[("a", 1)]));
        assert!(assigned["m3"].is_empty(), "named, with nothing");
        let all: usize = assigned.values().map(Vec::len).sum();
        assert_eq!(all, 3, "c is subscribed by nobody");
    }

    #[test]
    fn encodings_read_back() {
        let topics = vec!["orders".to_owned(), "paid".to_owned()];
        assert_eq!(answers::subscription(&subscription(&topics)).unwrap(), topics);
        let partitions = parts(&[("orders", 0), ("orders", 2), ("paid", 1)]);
        assert_eq!(answers::assignment(&assignment(&partitions)).unwrap(), partitions);
        assert!(answers::assignment(&assignment(&[])).unwrap().is_empty());
        assert!(answers::assignment(&[]).unwrap().is_empty());
    }
}
