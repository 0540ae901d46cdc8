//! Several topics on one socket: each replayed exactly from its own
//! `since` (or told its gap), live events of each, an unsubscribe that
//! stops one, and the per-topic routes beside it unchanged.

use serde_json::json;
use tether_testkit::WsClient;

use crate::helpers::{Hub, settings};

#[test]
fn two_topics_replay_each_from_its_own_position_and_one_gets_its_gap() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    // One loop: its replica has every event once its publish is
    // answered, so the replay is decided by the backlog alone.
    let hub = Hub::start(settings, 1);
    // "news": a1 a2, resumed after a1: exactly a2. "feed": five events,
    // two kept, resumed after the first: its gap, then f4 f5.
    let news: Vec<String> = ["a1", "a2"].iter().map(|d| hub.publish("news", d)).collect();
    let feed: Vec<String> = (1..=5).map(|i| hub.publish("feed", &format!("f{i}"))).collect();
    let mut socket = hub.socket();
    socket.subscribe_since("news", &news[0]);
    socket.subscribed("news");
    let replayed = socket.next();
    assert_eq!(
        (replayed["topic"].as_str(), replayed["data"].as_str()),
        (Some("news"), Some("a2"))
    );
    assert_eq!(replayed["id"], news[1].as_str());
    socket.subscribe_since("feed", &feed[0]);
    socket.subscribed("feed");
    let gap = socket.next_text();
    // The gap signal is the one a per-topic socket gets, byte for byte.
    let mut alone = WsClient::connect(hub.addr(), &format!("/topics/feed/ws?lastEventId={}", feed[0]));
    assert_eq!(gap, alone.recv_text());
    let gap: serde_json::Value = serde_json::from_str(&gap).unwrap();
    assert_eq!(
        (
            gap["control"].as_str(),
            gap["topic"].as_str(),
            gap["requested"].as_str()
        ),
        (Some("gap"), Some("feed"), Some(feed[0].as_str()))
    );
    assert_eq!(
        (gap["first"].as_str(), gap["resume"].as_str()),
        (Some(feed[3].as_str()), Some(feed[2].as_str()))
    );
    assert_eq!(socket.event(), ("feed".to_owned(), "f4".to_owned()));
    assert_eq!(socket.event(), ("feed".to_owned(), "f5".to_owned()));
    // Then live, each topic's events in its order, each once.
    hub.publish("news", "a3");
    hub.publish("feed", "f6");
    hub.publish("news", "a4");
    assert_eq!(socket.event(), ("news".to_owned(), "a3".to_owned()));
    assert_eq!(socket.event(), ("feed".to_owned(), "f6".to_owned()));
    assert_eq!(socket.event(), ("news".to_owned(), "a4".to_owned()));
}

#[test]
fn an_event_is_the_bytes_a_per_topic_socket_gets() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket();
    socket.follow(&["a", "b"]);
    let mut alone = WsClient::connect(hub.addr(), "/topics/b/ws");
    // The per-topic socket is subscribed once it gets an event: publish
    // until it does (it gets no answer of its own to wait on).
    hub.publish("b", "one");
    let on_topic = alone.recv_text();
    assert_eq!(socket.next_text(), on_topic);
    let event: serde_json::Value = serde_json::from_str(&on_topic).unwrap();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("b"), Some("one"))
    );
}

#[test]
fn after_an_unsubscribe_no_event_of_that_topic_comes_and_the_others_flow() {
    let hub = Hub::start(settings(), 2);
    let mut socket = hub.socket();
    socket.follow(&["a", "b"]);
    socket.unsubscribe("a");
    let answer = socket.next();
    assert_eq!(answer, json!({ "control": "unsubscribed", "topic": "a" }));
    hub.publish("a", "not for it");
    hub.publish("b", "for it");
    // Events of one socket come in the order they were delivered to it:
    // had "a" still been followed, its event would come first.
    assert_eq!(socket.event(), ("b".to_owned(), "for it".to_owned()));
    // Unsubscribing again is an error, the socket open.
    socket.unsubscribe("a");
    let answer = socket.next();
    assert_eq!(
        (answer["control"].as_str(), answer["topic"].as_str()),
        (Some("error"), Some("a"))
    );
    // And subscribing again follows it from its next event.
    socket.follow(&["a"]);
    hub.publish("a", "again");
    assert_eq!(socket.event(), ("a".to_owned(), "again".to_owned()));
}

#[test]
fn the_per_topic_routes_still_serve_one_topic_a_connection() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket();
    socket.follow(&["a"]);
    let mut alone = WsClient::connect(hub.addr(), "/topics/a/ws");
    hub.publish("a", "x");
    let text = alone.recv_text();
    assert_eq!(socket.next_text(), text);
    // A per-topic socket's messages are still publishes of its topic,
    // not multiplexed messages: no publish right here, so refused.
    alone.send_text(r#"{"type":"subscribe","topic":"b"}"#);
    let answer: serde_json::Value = serde_json::from_str(&alone.recv_text()).unwrap();
    assert_eq!(answer["control"], "error");
    assert!(answer.get("topic").is_none(), "{answer}");
}
