use super::*;

#[test]
fn topics_are_named_by_prefix_and_number() {
    assert_eq!(
        topic_names("bench.mux", 3),
        ["bench.mux.0", "bench.mux.1", "bench.mux.2"]
    );
    assert!(topic_names("x", 0).is_empty());
}

#[test]
fn a_publish_is_the_hubs_json() {
    let mut out = Vec::new();
    let mut text = Vec::new();
    write_message(&mut text, 7, 99, 20, false);
    write_publish(&mut out, "bench.mux.3", &text);
    let value: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(value["type"], "publish");
    assert_eq!(value["topic"], "bench.mux.3");
    assert_eq!(value["data"].as_str().map(str::len), Some(20));
}

#[test]
fn the_topic_of_an_event_or_an_answer() {
    assert_eq!(
        topic_of(br#"{"topic":"a.1","id":"5-1","data":"1 2 .."}"#),
        Some(&b"a.1"[..])
    );
    assert_eq!(
        topic_of(br#"{"control":"subscribed","topic":"a.2"}"#),
        Some(&b"a.2"[..])
    );
    assert_eq!(topic_of(br#"{"control":"error","error":"x"}"#), None);
    assert_eq!(topic_of(br#"{"topic":"unterminated"#), None);
}

fn event(topic: &str, seq: u64) -> Vec<u8> {
    let mut text = Vec::new();
    write_message(&mut text, seq, 1, 16, false);
    let data = String::from_utf8(text).expect("text");
    format!(r#"{{"topic":"{topic}","id":"1-{seq}","data":"{data}"}}"#).into_bytes()
}

#[test]
fn each_topic_is_checked_apart() {
    let names = topic_names("t", 2);
    let index: HashMap<&[u8], usize> = names.iter().enumerate().map(|(t, n)| (n.as_bytes(), t)).collect();
    let mut seen = Seen {
        topics: 2,
        tallies: (0..4).map(|_| Tally::new()).collect(),
        unreadable: 0,
        first_unreadable: None,
        delivered: 0,
    };
    let mut hist = report::latency_histogram();
    // Subscriber 0: both topics in order, interleaved.
    for (topic, seq) in [("t.0", 1), ("t.1", 1), ("t.0", 2), ("t.1", 2)] {
        seen.take(0, &event(topic, seq), &index, &mut hist, 10);
    }
    // Subscriber 1: topic 1's second message before its first.
    for (topic, seq) in [("t.0", 1), ("t.1", 2), ("t.1", 1), ("t.0", 2)] {
        seen.take(1, &event(topic, seq), &index, &mut hist, 10);
    }
    assert!(seen.all_in(&[2, 2]));
    assert!(seen.tallies[0].complete(2) && seen.tallies[1].complete(2));
    assert!(seen.tallies[2].complete(2));
    assert!(!seen.tallies[3].complete(2));
    assert_eq!(seen.delivered, 8);
    assert!(!seen.all_in(&[3, 2]));
    // A topic outside the run, or an answer while publishing.
    seen.take(0, &event("t.9", 1), &index, &mut hist, 10);
    seen.take(
        0,
        br#"{"control":"unsubscribed","topic":"t.0"}"#,
        &index,
        &mut hist,
        10,
    );
    assert_eq!(seen.unreadable, 2);
    assert_eq!(seen.delivered, 8);
    assert!(
        seen.first_unreadable
            .as_deref()
            .is_some_and(|t| t.contains("t.9"))
    );
}

#[test]
fn the_publisher_counts_acknowledgements_and_keeps_the_first_error() {
    let mut publisher = Publisher::default();
    publisher.take(br#"{"control":"published","topic":"t.0","id":"1-1"}"#);
    publisher.take(&event("t.0", 1));
    publisher.take(br#"{"control":"error","topic":"t.0","error":"not allowed"}"#);
    publisher.take(br#"{"control":"error","error":"second"}"#);
    assert_eq!((publisher.acks, publisher.echoes), (1, 1));
    assert!(
        publisher
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("not allowed"))
    );
}
