//! The durable broker through its public interface: a restart keeps
//! events, keys and growing ids; lost or damaged records are gaps, never
//! wrong replays; retention, time to live, the loop layout and the
//! directory's lock.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tether_hub::{
    Broker, Config, Context, Event, EventId, Gap, Hub, HubMessage, Payload, Publish, ReplyTo, Subscribed,
    TopicLimits, Transport,
};
use tether_hub_durable::{DurableBroker, DurableConfig, Fsync};

/// Loops whose posts are queued, with a wall clock the test sets.
struct Loops {
    count: usize,
    this: usize,
    now_ms: u64,
    posted: Vec<(usize, HubMessage)>,
}

impl Context for Loops {
    fn loops(&self) -> usize {
        self.count
    }
    fn this_loop(&self) -> usize {
        self.this
    }
    fn post(&mut self, to: usize, message: HubMessage) {
        self.posted.push((to, message));
    }
    fn unix_ms(&self) -> u64 {
        self.now_ms
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("tether-hub-durable-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn durable(dir: &TempDir) -> DurableConfig {
    let mut config = DurableConfig::new(&dir.0);
    config.fsync = Fsync::Never;
    config
}

/// Publishes on loop 0 of one: the outcome.
fn publish(
    broker: &mut DurableBroker,
    cx: &mut Loops,
    topic: &str,
    data: impl Into<Payload>,
    key: Option<&str>,
) -> HubMessage {
    let config = Config::default();
    let mut publish = Publish::new(topic, None, data, &config)
        .unwrap()
        .reply_to(ReplyTo {
            loop_index: 0,
            token: 7,
        });
    if let Some(key) = key {
        publish = publish.with_key(key).unwrap();
    }
    broker.publish(publish, cx).unwrap();
    cx.posted.pop().unwrap().1
}

/// One loop, at `now_ms`.
fn one_loop(now_ms: u64) -> Loops {
    Loops {
        count: 1,
        this: 0,
        now_ms,
        posted: Vec::new(),
    }
}

/// Publishes `count` events to `topic`, each `data(n)`.
fn publish_many(
    broker: &mut DurableBroker,
    cx: &mut Loops,
    topic: &str,
    count: u64,
    data: impl Fn(u64) -> String,
) {
    for n in 1..=count {
        published_id(publish(broker, cx, topic, data(n), None));
    }
}

fn published_id(message: HubMessage) -> EventId {
    match message {
        HubMessage::Published { result: Ok(id), .. } => id,
        other => panic!("{other:?}"),
    }
}

/// What a loop's hub answers a subscriber resuming from `last_id`,
/// after following the topic: the gap, if any, and the events' data.
fn resume(broker: &mut DurableBroker, cx: &mut Loops, topic: &str, last_id: &str) -> (bool, Vec<String>) {
    let (gap, data) = resume_gap(broker, cx, topic, last_id);
    (gap.is_some(), data)
}

fn resume_gap(
    broker: &mut DurableBroker,
    cx: &mut Loops,
    topic: &str,
    last_id: &str,
) -> (Option<Gap>, Vec<String>) {
    let (gap, events) = resumed(broker, cx, topic, last_id);
    (gap, events.iter().map(|e| e.json().to_owned()).collect())
}

/// [`resume_gap`], the events themselves.
fn resumed(
    broker: &mut DurableBroker,
    cx: &mut Loops,
    topic: &str,
    last_id: &str,
) -> (Option<Gap>, Vec<Arc<Event>>) {
    let mut hub: Hub<u32> = Hub::new(Config::default(), false);
    let topic: Arc<str> = Arc::from(topic);
    assert!(matches!(
        hub.subscribe(&topic, 1, Transport::EventStream, Some(last_id))
            .unwrap(),
        Subscribed::Held { follow: true }
    ));
    cx.posted.clear();
    broker.follow(&topic, cx);
    let Some((
        _,
        HubMessage::Ready {
            topic,
            history,
            dropped,
        },
    )) = cx.posted.pop()
    else {
        panic!()
    };
    let readied = hub.ready(&topic, history, dropped).unwrap();
    let resumed = readied.resumed.into_iter().next().unwrap();
    (resumed.gap, resumed.events.into_iter().collect())
}

/// The base index of each segment of loop 0's log, in order.
fn segment_bases(dir: &TempDir) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir.0.join("loop-0"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn open(dir: &TempDir, now_ms: u64) -> DurableBroker {
    DurableBroker::open_all(&Config::default(), &durable(dir), 1, now_ms)
        .unwrap()
        .pop()
        .unwrap()
}

#[test]
fn a_restart_keeps_events_keys_and_growing_ids() {
    let dir = TempDir::new("restart");
    let mut cx = Loops {
        count: 1,
        this: 0,
        now_ms: 1_000,
        posted: Vec::new(),
    };
    let mut broker = open(&dir, 1_000);
    let first = published_id(publish(&mut broker, &mut cx, "news", "a", Some("k1")));
    let second = published_id(publish(&mut broker, &mut cx, "news", "b", None));
    assert_eq!((first, second), (EventId::new(1_000, 1), EventId::new(1_000, 2)));
    drop(broker);

    cx.now_ms = 2_000;
    let mut broker = open(&dir, 2_000);
    assert_eq!(broker.recovered().records, 2);
    let (gap, events) = resume(&mut broker, &mut cx, "news", "1000-1");
    assert!(!gap);
    assert_eq!(events.len(), 1);
    assert!(events[0].contains(r#""id":"1000-2""#), "{events:?}");
    // The key is remembered across the restart.
    assert!(matches!(
        publish(&mut broker, &mut cx, "news", "again", Some("k1")),
        HubMessage::Duplicate { id, .. } if id == first
    ));
    // A new epoch, after every old id; the history goes on.
    let third = published_id(publish(&mut broker, &mut cx, "news", "c", None));
    assert_eq!(third, EventId::new(2_000, 1));
    drop(broker);

    let mut broker = open(&dir, 3_000);
    let (gap, events) = resume(&mut broker, &mut cx, "news", "1000-1");
    assert!(!gap);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[1].contains(r#""id":"2000-1""#));
}

#[test]
fn binary_events_come_back_byte_for_byte_after_a_restart() {
    let dir = TempDir::new("binary");
    let mut cx = one_loop(1_000);
    let mut broker = open(&dir, 1_000);
    let all: Vec<u8> = (0..=255).collect();
    let first = published_id(publish(&mut broker, &mut cx, "pix", "text first", None));
    published_id(publish(
        &mut broker,
        &mut cx,
        "pix",
        Payload::Binary(all.clone()),
        None,
    ));
    published_id(publish(&mut broker, &mut cx, "pix", "text after", None));
    drop(broker);

    let mut broker = open(&dir, 2_000);
    assert_eq!(broker.recovered().records, 3);
    let (gap, events) = resumed(&mut broker, &mut cx, "pix", &first.to_string());
    assert!(gap.is_none());
    let got: Vec<_> = events.iter().map(|e| e.payload()).collect();
    assert_eq!(
        got,
        [Payload::Binary(all), Payload::from("text after")],
        "resumed after the first, each as it was published"
    );
}

#[test]
fn a_namespace_kept_in_memory_is_not_written_and_starts_over_after_a_restart() {
    let dir = TempDir::new("volatile");
    let mut config = Config::default();
    let mut cache = TopicLimits::new("cache.*", &config);
    cache.durable = false;
    config.namespaces.push(cache);
    let open = |now_ms| {
        DurableBroker::open_all(&config, &durable(&dir), 1, now_ms)
            .unwrap()
            .pop()
            .unwrap()
    };
    let mut cx = one_loop(1_000);
    let mut broker = open(1_000);
    published_id(publish(&mut broker, &mut cx, "cache.prices", "a", None));
    published_id(publish(&mut broker, &mut cx, "news", "b", None));
    // Replayed from memory while the process runs.
    let (gap, events) = resume(&mut broker, &mut cx, "cache.prices", "0-0");
    assert!(!gap);
    assert_eq!(events.len(), 1);
    drop(broker);
    let mut broker = open(2_000);
    // Only the durable topic's event was in the log, and only it is back.
    assert_eq!((broker.recovered().records, broker.recovered().topics), (1, 1));
    assert!(broker.backlog("cache.prices").is_none());
    let (gap, events) = resume(&mut broker, &mut cx, "news", "0-0");
    assert!(!gap);
    assert_eq!(events.len(), 1);
}

#[test]
fn a_lost_segment_is_a_gap_not_a_wrong_replay() {
    let dir = TempDir::new("hole");
    let mut cx = Loops {
        count: 1,
        this: 0,
        now_ms: 5_000,
        posted: Vec::new(),
    };
    let mut config = durable(&dir);
    // A segment for each event or two.
    config.segment_bytes = 120;
    let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 5_000)
        .unwrap()
        .pop()
        .unwrap();
    for n in 0..6 {
        published_id(publish(&mut broker, &mut cx, "news", format!("event {n}"), None));
    }
    let segments = segment_bases(&dir);
    assert!(segments.len() >= 3, "{segments:?}");
    drop(broker);
    // The second segment goes missing.
    let name = format!("{:020}.log", segments[1]);
    std::fs::remove_file(dir.0.join("loop-0").join(name)).unwrap();

    let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 6_000)
        .unwrap()
        .pop()
        .unwrap();
    let (gap, events) = resume(&mut broker, &mut cx, "news", "5000-1");
    assert!(gap, "events were lost after 5000-1: {events:?}");
    // After the hole, the events that are left are known again.
    let last = segments[2]; // the first index after the hole
    let (gap, _) = resume(&mut broker, &mut cx, "news", &format!("5000-{last}"));
    assert!(!gap);
}

/// The issue's reproduction: a byte flipped in the middle of the only
/// segment costs the one event it hit; a client resuming from the
/// first id gets the gap signal naming it, then every other event in
/// order; one resuming from the lost id (it had it) misses nothing.
#[test]
fn a_damaged_record_costs_itself_and_a_replay_across_it_is_a_gap() {
    let dir = TempDir::new("flip");
    let mut cx = one_loop(7_000);
    let mut broker = open(&dir, 7_000);
    let body = "x".repeat(1024);
    publish_many(&mut broker, &mut cx, "news", 300, |n| format!("{n} {body}"));
    drop(broker);
    let segment = dir.0.join("loop-0").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();

    let mut broker = open(&dir, 8_000);
    let recovered = broker.recovered().clone();
    assert_eq!(
        (recovered.records, recovered.lost_records, recovered.holes),
        (299, 1, 1)
    );
    assert_eq!(recovered.quarantined, 0);
    // The event the flip hit: the one a replay from the start lacks.
    let (_, events) = resume_gap(&mut broker, &mut cx, "news", "0-0");
    assert_eq!(events.len(), 299);
    let lost = (1..=300u64)
        .find(|n| !events.iter().any(|e| e.contains(&format!("\"id\":\"7000-{n}\""))))
        .unwrap();
    assert!(lost > 1 && lost < 300, "the flip is in the middle: {lost}");
    let (gap, events) = resume_gap(&mut broker, &mut cx, "news", "7000-1");
    let gap = gap.expect("the replay crosses the lost event");
    let lost_id = EventId::new(7_000, lost);
    assert_eq!(gap.lost, Some((lost_id, lost_id)));
    assert_eq!(
        (gap.first, gap.resume),
        (Some(EventId::new(7_000, 2)), EventId::new(7_000, 1))
    );
    let expected: Vec<u64> = (2..=300).filter(|&n| n != lost).collect();
    let got: Vec<u64> = events
        .iter()
        .map(|e| {
            let at = e.find("\"id\":\"7000-").unwrap() + 11;
            e[at..].split('"').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(got, expected);
    // From the lost id itself, or after it: nothing missed.
    let (gap, events) = resume_gap(&mut broker, &mut cx, "news", &format!("7000-{lost}"));
    assert!(gap.is_none());
    assert_eq!(events.len(), 300 - usize::try_from(lost).unwrap());
    let (gap, _) = resume_gap(&mut broker, &mut cx, "news", "7000-300");
    assert!(gap.is_none());
    // The damaged bytes are kept beside the segment.
    assert!(
        dir.0
            .join("loop-0")
            .join(format!("{:020}.log.damaged", 0))
            .exists()
    );
    let mut metrics = String::new();
    broker.write_metrics(&mut metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tether_log_lost_records") && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// A topic's last event lost with a damaged record: no later event of
/// it shows a hole, yet a client resuming from the event before it
/// (or from the lost one) must be told that it may have missed
/// something; a topic whose events come after the damage is not.
#[test]
fn a_topic_whose_last_event_was_lost_answers_a_resume_with_a_gap() {
    let dir = TempDir::new("tail");
    let mut cx = one_loop(7_000);
    let mut broker = open(&dir, 7_000);
    let body = "y".repeat(512);
    publish_many(&mut broker, &mut cx, "a", 10, |n| format!("a{n:02} {body}"));
    publish_many(&mut broker, &mut cx, "b", 10, |n| format!("b{n:02} {body}"));
    drop(broker);
    let segment = dir.0.join("loop-0").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(4).position(|w| w == b"a10 ").unwrap();
    bytes[at + 100] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();

    let mut broker = open(&dir, 8_000);
    let recovered = broker.recovered().clone();
    assert_eq!((recovered.lost_records, recovered.tails_maybe_lost), (1, 1));
    // From a's last event left: a gap. (An id past the last, such as
    // the lost 7000-10, is held by the hub for an event on its way, and
    // then answered with a gap; after the next event, at once, below.)
    let (gap, events) = resume_gap(&mut broker, &mut cx, "a", "7000-9");
    assert!(gap.is_some(), "{events:?}");
    assert!(events.is_empty(), "{events:?}");
    // From before it: a gap too, then what is left.
    let (gap, events) = resume_gap(&mut broker, &mut cx, "a", "7000-7");
    assert!(gap.is_some());
    assert_eq!(events.len(), 2);
    // b's events (of the next epoch, as a new topic's are) all came
    // after the damage: nothing missed.
    let (gap, events) = resume_gap(&mut broker, &mut cx, "b", "7001-1");
    assert!(gap.is_none(), "{gap:?} {events:?}");
    assert_eq!(events.len(), 9);
    // a goes on in a new epoch: a resume from there is exact.
    cx.now_ms = 9_000;
    let next = published_id(publish(&mut broker, &mut cx, "a", "after", None));
    for from in ["7000-9", "7000-10"] {
        let (gap, events) = resume_gap(&mut broker, &mut cx, "a", from);
        assert!(gap.is_some(), "from {from}");
        assert_eq!(events.len(), 1, "from {from}");
    }
    let (gap, events) = resume_gap(&mut broker, &mut cx, "a", &next.to_string());
    assert!(gap.is_none());
    assert!(events.is_empty());
}

#[test]
fn topics_past_their_ttl_and_events_past_retention_are_not_recovered() {
    let dir = TempDir::new("ttl");
    let mut cx = Loops {
        count: 1,
        this: 0,
        now_ms: 10_000,
        posted: Vec::new(),
    };
    let mut config = durable(&dir);
    config.retention = Some(Duration::from_secs(60));
    let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 10_000)
        .unwrap()
        .pop()
        .unwrap();
    publish(&mut broker, &mut cx, "news", "old", None);
    cx.now_ms = 50_000;
    publish(&mut broker, &mut cx, "news", "new", None);
    drop(broker);

    // 80 s later: the first event is past the 60 s retention.
    let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 80_000)
        .unwrap()
        .pop()
        .unwrap();
    let (gap, events) = resume(&mut broker, &mut cx, "news", "10000-1");
    assert!(!gap);
    assert_eq!(events.len(), 1);
    let (gap, _) = resume(&mut broker, &mut cx, "news", "0-0");
    assert!(gap, "the first event is gone");
    drop(broker);

    // Past the topic's time to live (an hour): forgotten.
    let broker = DurableBroker::open_all(&Config::default(), &config, 1, 50_000 + 3_600_000)
        .unwrap()
        .pop()
        .unwrap();
    assert!(broker.backlog("news").is_none());
}

#[test]
fn another_number_of_loops_is_refused() {
    let dir = TempDir::new("loops");
    let config = durable(&dir);
    drop(DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap());
    let error = DurableBroker::open_all(&Config::default(), &config, 3, 0).unwrap_err();
    assert!(error.contains("--threads 2"), "{error}");
}

#[test]
fn a_directory_in_use_is_refused_until_its_brokers_are_gone() {
    let dir = TempDir::new("lock");
    let config = durable(&dir);
    let first = DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap();
    let error = DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap_err();
    assert!(error.contains("in use by another process"), "{error}");
    // One loop's broker still holds the lock.
    let mut first = first;
    first.pop();
    assert!(DurableBroker::open_all(&Config::default(), &config, 2, 0).is_err());
    drop(first);
    DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap();
}
