//! Live delivery through the announcement stream (`PREFIX!bus`) against a
//! real `redis-server` (see `support`): a reader whose connection is
//! killed again and again while events are published loses, repeats and
//! reorders none; announcements missed while connected are caught up
//! from the topics' streams; and a node that follows ten thousand topics
//! still reads one stream, not ten thousand.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use node::{Node, PREFIX, data, stream_ids};
use support::{RedisServer, available, wait_until};
use tether_hub::{EventId, HubMessage};

const TOPICS: [&str; 3] = ["k1", "k2", "k3"];

#[test]
fn a_reader_killed_mid_stream_loses_repeats_and_reorders_nothing() {
    if !available("a_reader_killed_mid_stream_loses_repeats_and_reorders_nothing") {
        return;
    }
    let redis = RedisServer::start();
    let quick = |c: &mut tether_redis::RedisConfig| {
        c.backoff_min = Duration::from_millis(5);
        c.backoff_max = Duration::from_millis(50);
    };
    let mut a = Node::start(&redis.url(), quick);
    let mut b = Node::start(&redis.url(), quick);
    for topic in TOPICS {
        b.follow(0, topic);
        b.ready(0);
    }
    // Node a publishes without pause on its own thread while node b's
    // reader connection is killed again and again.
    const EVENTS: usize = 1800;
    let publisher = std::thread::spawn(move || {
        for n in 0..EVENTS {
            let topic = TOPICS[n % TOPICS.len()];
            a.publish_ok(n % 2, topic, format!("{topic}-{n}"));
        }
        a
    });
    let mut kills = 0;
    while !publisher.is_finished() {
        kills += redis.kill_clients("tether-redis-reader");
        std::thread::sleep(Duration::from_millis(15));
    }
    let _a = publisher.join().unwrap();
    assert!(kills >= 3, "the reader was killed only {kills} times");

    // Every event of each topic once, in its stream's order.
    let mut delivered: HashMap<String, Vec<EventId>> = HashMap::new();
    let mut count = 0;
    while count < EVENTS {
        match b.next(0) {
            HubMessage::Deliver(event) => {
                delivered
                    .entry(event.topic().to_string())
                    .or_default()
                    .push(event.id());
                count += 1;
            }
            other => panic!("only deliveries, no resync: got {other:?}"),
        }
    }
    b.expect_quiet(0);
    for topic in TOPICS {
        let ids = stream_ids(&redis, topic);
        assert_eq!(ids.len(), EVENTS / TOPICS.len());
        assert_eq!(delivered[topic], ids, "topic {topic}");
    }
    let status = b.bridge.status();
    assert_eq!(status.resyncs, 0);
    assert!(status.reconnects >= 3, "{status:?}");
    assert_eq!(status.read, EVENTS as u64);
}

#[test]
fn missed_announcements_are_caught_up_from_the_streams() {
    if !available("missed_announcements_are_caught_up_from_the_streams") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    b.follow_a_new_topic("gap");
    let first = a.publish_ok(0, "gap", "e1");
    assert_eq!(b.deliver(0).id(), first);
    assert_eq!(b.deliver(1).id(), first);

    // The counter jumps (as if announcements were trimmed away before
    // node b read them): the next announcement shows a hole, and node b
    // reads the topic's stream instead.
    let _: () = redis::cmd("INCRBY")
        .arg(format!("{PREFIX}!bus-seq"))
        .arg(5)
        .query(&mut redis.client())
        .unwrap();
    let second = a.publish_ok(0, "gap", "e2");
    let third = a.publish_ok(0, "gap", "e3");
    for l in 0..2 {
        let events = [b.deliver(l), b.deliver(l)];
        assert_eq!(events.clone().map(|e| e.id()), [second, third]);
        assert_eq!(data(&events), ["e2", "e3"]);
        b.expect_quiet(l);
    }
    // The bus trimmed to nothing under the reader (past the place it
    // reads from): it goes on with the next announcement.
    let _: i64 = redis::cmd("XTRIM")
        .arg(format!("{PREFIX}!bus"))
        .arg("MAXLEN")
        .arg(0)
        .query(&mut redis.client())
        .unwrap();
    let fourth = a.publish_ok(1, "gap", "e4");
    assert_eq!(b.deliver(0).id(), fourth);
    assert_eq!(b.bridge.status().resyncs, 0);
    assert_eq!(stream_ids(&redis, "gap"), [first, second, third, fourth]);
}

#[test]
fn ten_thousand_followed_topics_still_read_one_stream() {
    if !available("ten_thousand_followed_topics_still_read_one_stream") {
        return;
    }
    const FOLLOWED: usize = 10_000;
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    for n in 0..FOLLOWED {
        b.follow(n % 2, &format!("many-{n}"));
    }
    let mut ready = 0;
    while ready < FOLLOWED {
        for l in 0..2 {
            if let Some(message) = b.next_within(l, Duration::from_millis(10)) {
                assert!(matches!(message, HubMessage::Ready { .. }), "{message:?}");
                ready += 1;
            }
        }
    }
    wait_until("node b to follow every topic", || {
        b.bridge.status().followed_topics == FOLLOWED as u64
    });

    // From now on, every command Redis runs is logged with its arguments.
    let mut con = redis.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(100_000)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).unwrap();

    // A few of them get events: they arrive, in order, on their loop.
    for n in [0, 1, 4_999, 9_998, 9_999] {
        let topic = format!("many-{n}");
        let ids = [a.publish_ok(0, &topic, "x"), a.publish_ok(1, &topic, "y")];
        let events = [b.deliver(n % 2), b.deliver(n % 2)];
        assert_eq!(events.clone().map(|e| e.id()), ids);
        assert!(events.iter().all(|e| **e.topic() == *topic));
    }
    b.expect_quiet(0);
    b.expect_quiet(1);

    // Node b's reader named two streams in each read (the bus and its
    // wake stream), never its ten thousand topics, and read no topic's
    // stream for these events.
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(&mut con).unwrap();
    let mut reads = 0;
    for entry in &log {
        let redis::Value::Array(fields) = entry else {
            panic!("a slow log entry: {entry:?}")
        };
        let args: Vec<String> = match &fields[3] {
            redis::Value::Array(args) => args
                .iter()
                .map(|a| redis::from_redis_value_ref::<String>(a).unwrap())
                .collect(),
            other => panic!("the arguments: {other:?}"),
        };
        let name = &args[0].to_ascii_uppercase();
        if name == "XREAD" {
            reads += 1;
            assert!(args.len() <= 10, "an XREAD of {} arguments", args.len());
        }
        let topic_read = ["XRANGE", "XREVRANGE"].contains(&name.as_str())
            && args
                .get(1)
                .is_some_and(|key| key.starts_with(&format!("{PREFIX}many-")));
        assert!(!topic_read, "a topic's stream was read: {args:?}");
    }
    assert!(reads > 0, "the reader read");
}

/// The number of calls of `command` Redis ran so far (`INFO commandstats`).
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.client())
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn publishes_send_the_scripts_digest_and_survive_a_flushed_script_cache() {
    if !available("publishes_send_the_scripts_digest_and_survive_a_flushed_script_cache") {
        return;
    }
    let redis = RedisServer::start();
    let mut a = Node::start(&redis.url(), |_| {});
    let mut b = Node::start(&redis.url(), |_| {});
    b.follow(0, "cache");
    b.ready(0);
    let first = a.publish_ok(0, "cache", "one");
    assert_eq!(b.deliver(0).id(), first);
    assert_eq!(calls(&redis, "evalsha"), 1);
    assert_eq!(calls(&redis, "eval"), 0);

    // Redis forgets its scripts: the next publish is refused (503, the
    // publisher may send it again), and the writer sends the text from
    // then on.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.client())
        .unwrap();
    let token = a.publish(0, "cache", "refused").unwrap();
    assert_eq!(a.published(0, token), Err(tether_hub::Error::BrokerUnavailable));
    let second = a.publish_ok(0, "cache", "two");
    assert_eq!(data(&[b.deliver(0)]), ["two"]);
    assert!(second > first);
    b.expect_quiet(0);
    assert_eq!(calls(&redis, "eval"), 1);
    assert_eq!(stream_ids(&redis, "cache"), [first, second]);
}
