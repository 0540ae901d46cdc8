//! The bridge against a real Redis Cluster of three primaries and three
//! replicas (see `support::cluster`), in both layouts (topics in 16
//! partitions, the default, and a slot per topic): topics spread over
//! every primary reach other nodes in order with their stream ids,
//! publish keys hold, a follow replays a topic's stream, no command ever
//! spans two slots (Redis's own error counts show no `CROSSSLOT`), and a
//! primary killed with SIGKILL is survived: its replica takes over,
//! publishes go on, and every subscriber gets every event exactly once,
//! in order. Partitioned, a node's reads do not grow with the topics it
//! follows, and connections killed again and again mid-stream lose,
//! repeat and reorder nothing. A topic whose key Redis refuses (not a
//! stream) refuses its own publishes only, not the others sent with them.
//!
//! Skipped (with a printed reason) when `redis-server` or `redis-cli` is
//! not installed, unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::{Node, PREFIX, data};
use support::PATIENCE;
use support::cluster::{self, RedisCluster};
use tether_hub::{Error as HubError, Event, EventId, HubMessage};
use tether_redis::{RedisBridge, RedisConfig};

/// How the keys are laid out: the topics in this many partitions (0: a
/// slot per topic).
#[derive(Clone, Copy)]
struct Layout(usize);

const PARTITIONED: Layout = Layout(16);
const SLOT_PER_TOPIC: Layout = Layout(0);

impl Layout {
    /// Sets a node's configuration to this layout.
    fn set(self, config: &mut RedisConfig) {
        config.prefix = PREFIX.to_owned();
        config.cluster_partitions = self.0;
    }

    /// The stream key of `topic`, as the bridge names it.
    fn stream_key(self, topic: &str) -> String {
        let mut config = RedisConfig::new("redis+cluster://127.0.0.1:1");
        self.set(&mut config);
        RedisBridge::new(config).unwrap().stream_key(topic)
    }

    /// The keys of `topic`'s publish-key index.
    fn index_keys(self, topic: &str) -> [String; 2] {
        if self.0 == 0 {
            return ["!pub:", "!pub-ms:"].map(|kind| format!("{PREFIX}{kind}{{{topic}}}"));
        }
        let stream = self.stream_key(topic);
        let tag = &stream[..=stream.find('}').unwrap()];
        ["!pub:", "!pub-ms:"].map(|kind| format!("{tag}{kind}{topic}"))
    }
}

/// `per_primary` topics served by each primary, in primary order.
fn topics_on_every_primary(cluster: &RedisCluster, layout: Layout, per_primary: usize) -> Vec<String> {
    let mut by_primary: HashMap<u16, Vec<String>> = HashMap::new();
    for n in 0.. {
        let topic = format!("t{n}");
        let primary = cluster.primary_of(cluster.slot(&layout.stream_key(&topic)));
        let topics = by_primary.entry(primary).or_default();
        if topics.len() < per_primary {
            topics.push(topic);
        }
        if by_primary.len() == 3 && by_primary.values().all(|t| t.len() == per_primary) {
            break;
        }
        assert!(n < 1000, "no topics on every primary: {by_primary:?}");
    }
    let mut primaries: Vec<u16> = by_primary.keys().copied().collect();
    primaries.sort_unstable();
    primaries.iter().flat_map(|p| by_primary[p].clone()).collect()
}

fn crossslot_errors(cluster: &RedisCluster) -> u64 {
    cluster.error_counts().get("CROSSSLOT").copied().unwrap_or(0)
}

#[test]
fn topics_on_every_primary_work_as_on_one_server() {
    if cluster::available("topics_on_every_primary_work_as_on_one_server") {
        on_every_primary(PARTITIONED);
    }
}

#[test]
fn topics_on_every_primary_work_as_on_one_server_with_a_slot_per_topic() {
    if cluster::available("topics_on_every_primary_work_as_on_one_server_with_a_slot_per_topic") {
        on_every_primary(SLOT_PER_TOPIC);
    }
}

fn on_every_primary(layout: Layout) {
    let cluster = RedisCluster::start();
    let topics = topics_on_every_primary(&cluster, layout, 2);
    let mut a = Node::start(&cluster.url(), |c| layout.set(c));
    let mut b = Node::start(&cluster.url(), |c| layout.set(c));
    // Node b's loop 0 follows all six at once (one `XREAD` over them
    // would be refused: CROSSSLOT); its loop 1 follows the first.
    for topic in &topics {
        b.follow(0, topic);
    }
    b.follow(1, &topics[0]);
    for _ in &topics {
        let (history, dropped) = b.ready(0);
        assert!(history.is_empty() && dropped.is_none());
    }
    b.ready(1);

    // Interleaved publishes from node a (whose loops follow nothing: each
    // answer is the next thing posted).
    let mut published: HashMap<&str, Vec<(EventId, String)>> = HashMap::new();
    for n in 1..=5 {
        for topic in &topics {
            let data = format!("{topic}-{n}");
            let id = a.publish_ok(0, topic, &data);
            published.entry(topic.as_str()).or_default().push((id, data));
        }
    }
    let mut delivered: HashMap<String, Vec<(EventId, String)>> = HashMap::new();
    for _ in 0..topics.len() * 5 {
        let event = b.deliver(0);
        let topic = event_topic(&event);
        delivered
            .entry(topic)
            .or_default()
            .push((event.id(), data(std::slice::from_ref(&event)).remove(0)));
    }
    for topic in &topics {
        assert_eq!(delivered[topic.as_str()], published[topic.as_str()], "{topic}");
        // The ids are the stream's own.
        let ids: Vec<EventId> = stream_ids(&cluster, &layout.stream_key(topic));
        let expected: Vec<EventId> = published[topic.as_str()].iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, expected);
    }
    let loop1: Vec<EventId> = (0..5).map(|_| b.deliver(1).id()).collect();
    let expected: Vec<EventId> = published[topics[0].as_str()].iter().map(|(id, _)| *id).collect();
    assert_eq!(loop1, expected);
    b.expect_quiet(0);
    b.expect_quiet(1);

    // A publish key holds across nodes; the script's keys are all in the
    // topic's slot.
    let keyed = &topics[3];
    let token = a.publish_keyed(0, keyed, "once", Some("k1")).unwrap();
    let (id, duplicate) = a.outcome(0, token);
    assert!(!duplicate);
    let token = b.publish_keyed(1, keyed, "once again", Some("k1")).unwrap();
    assert_eq!(b.outcome(1, token), (id, true));
    let event = b.deliver(0);
    assert_eq!((event.id(), event.key()), (id, Some("k1")));
    let slot = cluster.slot(&layout.stream_key(keyed));
    for key in layout.index_keys(keyed) {
        assert_eq!(cluster.slot(&key), slot, "{key}");
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query(&mut cluster.client())
            .unwrap();
        assert_eq!(exists, 1, "{key}");
    }
    let (sa, sb) = (a.bridge.status(), b.bridge.status());
    assert_eq!((sa.added, sa.duplicates, sb.duplicates), (31, 0, 1));

    // A node that never saw a topic replays it from its stream.
    let mut c = Node::start(&cluster.url(), |c| {
        layout.set(c);
        c.history_events = 3;
    });
    c.follow(0, &topics[5]);
    let (history, dropped) = c.ready(0);
    let all = &published[topics[5].as_str()];
    assert_eq!(
        history.iter().map(|e| e.id()).collect::<Vec<_>>(),
        all[2..].iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    assert_eq!(dropped, Some(all[1].0));
    let id = a.publish_ok(0, &topics[5], "after the backlog");
    assert_eq!(c.deliver(0).id(), id);

    // Nothing the bridges sent spanned two slots; and that count is
    // real: a command that does is counted.
    assert_eq!(crossslot_errors(&cluster), 0, "{:?}", cluster.error_counts());
    // (Two topics of two primaries: partitioned, two of one primary may
    // share a slot.)
    let mut node =
        cluster::node_client(cluster.primary_of(cluster.slot(&layout.stream_key(&topics[0])))).unwrap();
    let crossed = redis::cmd("XREAD")
        .arg("STREAMS")
        .arg(layout.stream_key(&topics[0]))
        .arg(layout.stream_key(&topics[2]))
        .arg("0-0")
        .arg("0-0")
        .query::<redis::Value>(&mut node);
    assert!(crossed.is_err(), "{crossed:?}");
    assert_eq!(crossslot_errors(&cluster), 1);
}

#[test]
fn a_topic_redis_refuses_refuses_its_own_publishes_only() {
    if cluster::available("a_topic_redis_refuses_refuses_its_own_publishes_only") {
        refused_topic(PARTITIONED);
    }
}

#[test]
fn a_topic_redis_refuses_refuses_its_own_publishes_only_with_a_slot_per_topic() {
    if cluster::available("a_topic_redis_refuses_refuses_its_own_publishes_only_with_a_slot_per_topic") {
        refused_topic(SLOT_PER_TOPIC);
    }
}

/// Publishes to six topics sent at once, so that the writer sends them in
/// batches, one topic's stream key holding a string: Redis answers
/// WRONGTYPE to each of that topic's publishes, and only to them.
fn refused_topic(layout: Layout) {
    let cluster = RedisCluster::start();
    let topics = topics_on_every_primary(&cluster, layout, 2);
    let bad = topics[2].clone();
    redis::cmd("SET")
        .arg(layout.stream_key(&bad))
        .arg("not a stream")
        .query::<()>(&mut cluster.client())
        .unwrap();
    let mut a = Node::start(&cluster.url(), |c| layout.set(c));
    let mut sent = Vec::new();
    for n in 0..30 {
        for (i, topic) in topics.iter().enumerate() {
            // Every other round with a publish key (the keyed script).
            let key = (n % 2 == 0).then(|| format!("k{n}-{i}"));
            let token = a.publish_keyed(0, topic, format!("{n}"), key.as_deref()).unwrap();
            sent.push((topic.clone(), token));
        }
    }
    let mut answers: HashMap<u64, Result<EventId, HubError>> = HashMap::new();
    while answers.len() < sent.len() {
        match a.next(0) {
            HubMessage::Published { token, result } => {
                answers.insert(token, result);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut ids: HashMap<&str, Vec<EventId>> = HashMap::new();
    for (topic, token) in &sent {
        match &answers[token] {
            Ok(id) => {
                assert_ne!(*topic, bad, "a publish to the refused topic answered {id}");
                ids.entry(topic.as_str()).or_default().push(*id);
            }
            Err(e) => assert_eq!(
                *topic, bad,
                "a publish to {topic} refused beside the bad one: {e}"
            ),
        }
    }
    // Each good topic's stream holds its 30 events, once each.
    for topic in topics.iter().filter(|t| **t != bad) {
        assert_eq!(
            stream_ids(&cluster, &layout.stream_key(topic)),
            ids[topic.as_str()],
            "{topic}"
        );
    }
    let status = a.bridge.status();
    assert_eq!(status.added, 5 * 30);
}

#[test]
fn a_killed_primary_loses_no_event() {
    if cluster::available("a_killed_primary_loses_no_event") {
        killed_primary(PARTITIONED);
    }
}

#[test]
fn a_killed_primary_loses_no_event_with_a_slot_per_topic() {
    if cluster::available("a_killed_primary_loses_no_event_with_a_slot_per_topic") {
        killed_primary(SLOT_PER_TOPIC);
    }
}

fn killed_primary(layout: Layout) {
    let mut cluster = RedisCluster::start();
    let topics = topics_on_every_primary(&cluster, layout, 1);
    let (doomed, other) = (&topics[0], &topics[1]);
    let doomed_primary = cluster.primary_of(cluster.slot(&layout.stream_key(doomed)));
    let quick = |c: &mut tether_redis::RedisConfig| {
        layout.set(c);
        c.backoff_min = Duration::from_millis(50);
        c.backoff_max = Duration::from_millis(500);
    };
    let mut a = Node::start(&cluster.url(), quick);
    let mut b = Node::start(&cluster.url(), quick);
    for topic in [doomed, other] {
        b.follow(0, topic);
        b.ready(0);
    }
    let mut published: HashMap<String, Vec<(EventId, String)>> = HashMap::new();
    let mut seen: HashMap<String, Vec<(EventId, String)>> = HashMap::new();
    for n in 1..=5 {
        for topic in [doomed, other] {
            publish_until_added(&mut a, topic, n, &mut published);
        }
    }
    collect(&mut b, &mut seen, 10);
    cluster.wait_replicated();
    // The promise under test is "nothing acknowledged and replicated is
    // lost": the replica that will take over holds the events, asked of
    // the replica itself.
    assert_eq!(
        replica_stream_len(replica_of(doomed_primary), &layout.stream_key(doomed)),
        Some(5)
    );

    cluster.kill(doomed_primary);
    // Publishes go on (refused while the slot has no primary, then
    // published again with the same key, so that one whose outcome was
    // unknown is added once).
    for n in 6..=20 {
        for topic in [doomed, other] {
            publish_until_added(&mut a, topic, n, &mut published);
        }
    }
    cluster.wait_healthy();
    assert_ne!(
        cluster.primary_of(cluster.slot(&layout.stream_key(doomed))),
        doomed_primary,
        "the replica took over"
    );
    collect(&mut b, &mut seen, 40);
    for topic in [doomed, other] {
        let expected: Vec<String> = (1..=20).map(|n| format!("{topic}-{n}")).collect();
        let got: Vec<String> = seen[topic].iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(got, expected, "{topic}: every event once, in order");
        assert_eq!(
            seen[topic], published[topic],
            "{topic}: with the ids publishers got"
        );
        assert_eq!(
            stream_ids(&cluster, &layout.stream_key(topic)),
            published[topic].iter().map(|(id, _)| *id).collect::<Vec<_>>()
        );
    }
    b.expect_quiet(0);
    let status = b.bridge.status();
    assert!(status.reconnects >= 1, "{status:?}");
}

#[test]
fn a_partitioned_nodes_reads_do_not_grow_with_the_topics_it_follows() {
    if !cluster::available("a_partitioned_nodes_reads_do_not_grow_with_the_topics_it_follows") {
        return;
    }
    let cluster = RedisCluster::start();
    let mut a = Node::start(&cluster.url(), |c| PARTITIONED.set(c));
    let mut b = Node::start(&cluster.url(), |c| PARTITIONED.set(c));
    // 2000 topics, over every partition.
    const TOPICS: usize = 2000;
    for n in 0..TOPICS {
        b.follow(0, &format!("many{n}"));
    }
    for _ in 0..TOPICS {
        b.ready(0);
    }
    // Idle for a second: each poll (20 ms) reads each partition's bus
    // once, 16 reads, where polling the streams would read 2000.
    let before = cluster.command_calls("xread");
    std::thread::sleep(Duration::from_secs(1));
    let reads = cluster.command_calls("xread") - before;
    let polls = 1000 / 20;
    assert!(reads <= 16 * polls * 3 / 2, "{reads} reads in one idle second");
    assert!(
        reads >= 16,
        "{reads} reads in one idle second: the buses are read"
    );
    // And every topic is still read: one event to each of a spread.
    for n in (0..TOPICS).step_by(97) {
        let topic = format!("many{n}");
        let id = a.publish_ok(0, &topic, &topic);
        let event = b.deliver(0);
        assert_eq!((event.id(), event_topic(&event)), (id, topic));
    }
    b.expect_quiet(0);
    assert_eq!(b.bridge.status().resyncs, 0);
}

#[test]
fn connections_killed_mid_stream_lose_repeat_and_reorder_nothing() {
    if !cluster::available("connections_killed_mid_stream_lose_repeat_and_reorder_nothing") {
        return;
    }
    let cluster = RedisCluster::start();
    let layout = PARTITIONED;
    let topics = topics_on_every_primary(&cluster, layout, 2);
    let quick = |c: &mut RedisConfig| {
        layout.set(c);
        c.backoff_min = Duration::from_millis(5);
        c.backoff_max = Duration::from_millis(50);
    };
    let mut a = Node::start(&cluster.url(), quick);
    let mut b = Node::start(&cluster.url(), quick);
    for topic in &topics {
        b.follow(0, topic);
        b.ready(0);
    }
    // Node a publishes without pause on its own thread (each event with a
    // key, again until added: an outcome lost with its connection is
    // published again and not added twice) while every connection to
    // every node is killed again and again.
    const ROUNDS: u32 = 100;
    let publishing = topics.clone();
    let publisher = std::thread::spawn(move || {
        let mut published = HashMap::new();
        for n in 1..=ROUNDS {
            for topic in &publishing {
                publish_until_added(&mut a, topic, n, &mut published);
            }
        }
        published
    });
    let mut kills = 0;
    while !publisher.is_finished() {
        kills += cluster.kill_clients();
        std::thread::sleep(Duration::from_millis(30));
    }
    let published = publisher.join().unwrap();
    assert!(kills >= 6, "connections were killed only {kills} times");

    let mut seen = HashMap::new();
    collect(&mut b, &mut seen, topics.len() * ROUNDS as usize);
    b.expect_quiet(0);
    for topic in &topics {
        let expected: Vec<String> = (1..=ROUNDS).map(|n| format!("{topic}-{n}")).collect();
        let got: Vec<String> = seen[topic].iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(got, expected, "{topic}: every event once, in order");
        assert_eq!(
            seen[topic], published[topic],
            "{topic}: with the ids publishers got"
        );
        assert_eq!(
            stream_ids(&cluster, &layout.stream_key(topic)),
            published[topic].iter().map(|(id, _)| *id).collect::<Vec<_>>()
        );
    }
    // (The cluster client makes a killed connection to a node again by
    // itself, within its retries, so the bridge may never see one lost.)
    assert_eq!(b.bridge.status().resyncs, 0);
}

#[test]
fn missed_announcements_on_a_partition_are_caught_up_from_the_streams() {
    if !cluster::available("missed_announcements_on_a_partition_are_caught_up_from_the_streams") {
        return;
    }
    let cluster = RedisCluster::start();
    let mut a = Node::start(&cluster.url(), |c| PARTITIONED.set(c));
    let mut b = Node::start(&cluster.url(), |c| PARTITIONED.set(c));
    b.follow_a_new_topic("gap");
    let first = a.publish_ok(0, "gap", "e1");
    assert_eq!(b.deliver(0).id(), first);
    assert_eq!(b.deliver(1).id(), first);

    // The partition's counter jumps (as if announcements were trimmed
    // away before node b read them): the next announcement shows a hole,
    // and node b reads the topic's stream instead.
    let stream = PARTITIONED.stream_key("gap");
    let tag = &stream[..=stream.find('}').unwrap()];
    let _: () = redis::cmd("INCRBY")
        .arg(format!("{tag}!bus-seq"))
        .arg(5)
        .query(&mut cluster.client())
        .unwrap();
    let second = a.publish_ok(0, "gap", "e2");
    let third = a.publish_ok(0, "gap", "e3");
    for l in 0..2 {
        let events = [b.deliver(l), b.deliver(l)];
        assert_eq!(events.clone().map(|e| e.id()), [second, third]);
        assert_eq!(data(&events), ["e2", "e3"]);
        b.expect_quiet(l);
    }

    // Node b stops following every topic of the partition, so it stops
    // reading its bus; events come meanwhile; followed again, the topic's
    // backlog has them and the bus goes on after it, with no hole and
    // nothing twice.
    b.unfollow(0, "gap");
    b.unfollow(1, "gap");
    let fourth = a.publish_ok(0, "gap", "e4");
    b.follow(0, "gap");
    let (history, _) = b.ready(0);
    assert_eq!(
        history.iter().map(|e| e.id()).collect::<Vec<_>>(),
        [first, second, third, fourth]
    );
    let fifth = a.publish_ok(0, "gap", "e5");
    assert_eq!(b.deliver(0).id(), fifth);
    b.expect_quiet(0);
    assert_eq!(b.bridge.status().resyncs, 0);
    assert_eq!(
        stream_ids(&cluster, &stream),
        [first, second, third, fourth, fifth]
    );
}

/// Publishes `TOPIC-n` with the key `n` from node `a`'s loop 0 until
/// Redis has it (refused while the cluster fails over); records its id.
#[test]
fn with_wait_replicas_an_acknowledged_event_is_on_its_replica() {
    if !cluster::available("with_wait_replicas_an_acknowledged_event_is_on_its_replica") {
        return;
    }
    let layout = PARTITIONED;
    let mut cluster = RedisCluster::start();
    let topics = topics_on_every_primary(&cluster, layout, 1);
    let (lonely, other) = (&topics[0], &topics[1]);
    // Every replica online (a replica's first sync may still be going).
    cluster.wait_replicated();
    let mut a = Node::start(&cluster.url(), |c| {
        layout.set(c);
        c.wait_replicas = 1;
        // Long enough for a replica's acknowledgement on a loaded
        // machine: the refusal below waits it out once.
        c.wait_timeout = Duration::from_secs(3);
    });
    // Every primary has its replica online: counted (the fewest of any
    // primary's), for readiness.
    let watch = a.bridge.replicas().expect("a watch, with wait_replicas");
    let online = |n| tether_bus::ReplicaCount::Online(n);
    support::wait_until("every primary's replica counted", || watch().online == online(1));
    let answer = |a: &mut Node, topic: &str, data: &str| -> Result<EventId, HubError> {
        let token = a.publish_keyed(0, topic, data, None).unwrap();
        match a.next(0) {
            HubMessage::Published { token: t, result } if t == token => result,
            other => panic!("unexpected {other:?}"),
        }
    };
    // Acknowledged means on the replica too, asked of the replica the
    // moment the publisher has its answer.
    for n in 1..=5 {
        for topic in [lonely, other] {
            answer(&mut a, topic, &n.to_string()).expect("acknowledged");
            let primary = cluster.primary_of(cluster.slot(&layout.stream_key(topic)));
            assert_eq!(
                replica_stream_len(replica_of(primary), &layout.stream_key(topic)),
                Some(n),
                "{topic}: acknowledged before its replica had it"
            );
        }
    }
    // The replica of one primary gone: that primary's publishes are
    // answered 503 (they are in its stream, not known to be replicated);
    // the other primaries', whose replicas are there, go on.
    let primary = cluster.primary_of(cluster.slot(&layout.stream_key(lonely)));
    cluster.kill(replica_of(primary));
    assert_eq!(
        answer(&mut a, lonely, "unreplicated"),
        Err(HubError::BrokerUnavailable)
    );
    answer(&mut a, other, "6").expect("another primary's publish");
    assert_eq!(stream_ids(&cluster, &layout.stream_key(lonely)).len(), 6);
    // The fewest of any primary's: that one has none now, once seen.
    support::wait_until("the lost replica counted", || watch().online == online(0));
    assert!(watch().seen);
}

fn publish_until_added(
    a: &mut Node,
    topic: &str,
    n: u32,
    published: &mut HashMap<String, Vec<(EventId, String)>>,
) {
    let data = format!("{topic}-{n}");
    let key = n.to_string();
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        assert!(Instant::now() < deadline, "{data} was never published");
        let token = match a.publish_keyed(0, topic, &data, Some(&key)) {
            Ok(token) => token,
            Err(HubError::BrokerUnavailable) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => panic!("{data}: {e:?}"),
        };
        match a.next(0) {
            HubMessage::Published {
                token: t,
                result: Ok(id),
            }
            | HubMessage::Duplicate { token: t, id }
                if t == token =>
            {
                published.entry(topic.to_owned()).or_default().push((id, data));
                return;
            }
            HubMessage::Published {
                token: t,
                result: Err(HubError::BrokerUnavailable),
            } if t == token => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("{data}: unexpected {other:?}"),
        }
    }
}

/// Takes what node `b`'s loop 0 is sent until it has `total` events, as
/// a subscriber would: each delivered event, and after a resync (a new
/// `Ready`) the backlog's events after the last one it has.
fn collect(b: &mut Node, seen: &mut HashMap<String, Vec<(EventId, String)>>, total: usize) {
    let after_last = |seen: &HashMap<String, Vec<(EventId, String)>>, event: &Arc<Event>| {
        seen.get(&event_topic(event))
            .and_then(|list| list.last())
            .is_none_or(|(last, _)| event.id() > *last)
    };
    let take = |seen: &mut HashMap<String, Vec<(EventId, String)>>, event: &Arc<Event>| {
        let entry = (event.id(), data(std::slice::from_ref(event)).remove(0));
        seen.entry(event_topic(event)).or_default().push(entry);
    };
    while seen.values().map(Vec::len).sum::<usize>() < total {
        match b.next(0) {
            HubMessage::Deliver(event) => {
                assert!(
                    after_last(seen, &event),
                    "{} delivered again or out of order",
                    event.json()
                );
                take(seen, &event);
            }
            HubMessage::Ready { history, .. } => {
                for event in &history {
                    if after_last(seen, event) {
                        take(seen, event);
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn event_topic(event: &Event) -> String {
    let json: serde_json::Value = serde_json::from_str(event.json()).unwrap();
    json["topic"].as_str().unwrap().to_owned()
}

/// The port of `primary`'s replica, from the primary's own account.
fn replica_of(primary: u16) -> u16 {
    let mut con = support::cluster::node_client(primary).expect("the primary answers");
    let info: String = redis::cmd("INFO").arg("replication").query(&mut con).unwrap();
    info.lines()
        .filter(|l| l.starts_with("slave"))
        .find_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("port=")))
        .and_then(|p| p.trim().parse().ok())
        .expect("a replica")
}

/// The length of the stream `key` as the replica at `port` holds it.
fn replica_stream_len(port: u16, key: &str) -> Option<usize> {
    let mut con = support::cluster::node_client(port)?;
    redis::cmd("READONLY").query::<()>(&mut con).ok()?;
    redis::cmd("XLEN").arg(key).query(&mut con).ok()
}

/// The ids of the stream `key`, from the cluster itself.
fn stream_ids(cluster: &RedisCluster, key: &str) -> Vec<EventId> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(&mut cluster.client())
        .unwrap();
    entries.iter().map(|(id, _)| id.parse().unwrap()).collect()
}
