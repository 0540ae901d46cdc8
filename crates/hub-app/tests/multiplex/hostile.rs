//! What a client may get wrong or do on purpose: messages that are not
//! messages, a binary frame, one too large, the same topic twice, more
//! topics than a socket may follow, floods of subscribes and
//! unsubscribes. Each is answered, the socket stays open, and the other
//! subscriptions keep flowing.

use serde_json::json;

use crate::helpers::{Hub, settings};

/// Asserts that the next message is an error (about `topic`, if given).
fn error(socket: &mut crate::helpers::Mux, topic: Option<&str>) -> String {
    let answer = socket.next();
    assert_eq!(answer["control"], "error", "{answer}");
    assert_eq!(answer["topic"].as_str(), topic, "{answer}");
    answer["error"].as_str().unwrap().to_owned()
}

#[test]
fn what_is_not_a_message_is_answered_and_the_socket_goes_on() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket();
    socket.follow(&["a"]);
    for bad in [
        "",
        "not json",
        "[1]",
        r#"{"type":"subscribe"}"#,
        r#"{"type":"teleport","topic":"x"}"#,
        r#"{"type":"subscribe","topic":7}"#,
        r#"{"type":"subscribe","topic":"b","topic":"c"}"#,
        r#"{"type":"subscribe","topic":"b","since":{}}"#,
        r#"{"type":"subscribe","topic":"b","extra":"x"}"#,
        r#"{"type":"publish","topic":"b"}"#,
    ] {
        socket.0.send_text(bad);
        let answer = socket.next();
        assert_eq!(answer["control"], "error", "{bad:?}: {answer}");
    }
    let e = {
        socket
            .0
            .send_text(r#"{"type":"subscribe","topic":"b","presence":"yes"}"#);
        error(&mut socket, Some("b"))
    };
    assert!(e.contains("presence"), "{e}");
    socket.0.send_binary(b"{\"type\":\"subscribe\",\"topic\":\"b\"}");
    let e = error(&mut socket, None);
    assert!(e.contains("text"), "{e}");
    // Larger than any publish could be.
    let longest = settings().hub.max_event_size * 6 + 64 * 1024;
    let huge = format!(
        r#"{{"type":"publish","topic":"a","data":"{}"}}"#,
        "x".repeat(longest)
    );
    socket.0.send_text(&huge);
    let e = error(&mut socket, None);
    assert!(e.contains("at most"), "{e}");
    // An invalid topic name is refused as the topic's own route would.
    socket.subscribe("a b");
    assert_eq!(socket.refused("a b").0, 400);
    // Through all of it, "a" is followed.
    hub.publish("a", "still here");
    assert_eq!(socket.event(), ("a".to_owned(), "still here".to_owned()));
}

#[test]
fn the_same_topic_twice_is_a_conflict_and_one_too_many_is_too_many() {
    let mut settings = settings();
    settings.max_subscriptions = 3;
    let hub = Hub::start(settings, 1);
    let mut socket = hub.socket();
    socket.follow(&["a", "b", "c"]);
    socket.subscribe("a");
    assert_eq!(socket.refused("a").0, 409);
    socket.subscribe("d");
    let (status, error) = socket.refused("d");
    assert_eq!(status, 429);
    assert!(error.contains("at most 3"), "{error}");
    // One given back makes room.
    socket.unsubscribe("c");
    assert_eq!(socket.next()["control"], "unsubscribed");
    socket.follow(&["d"]);
    hub.publish("d", "in");
    assert_eq!(socket.event(), ("d".to_owned(), "in".to_owned()));
}

#[test]
fn ten_thousand_topics_asked_for_are_each_answered_within_the_limit() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket();
    socket.follow(&["kept"]);
    // Sent all at once, read after: the answers queue on the socket.
    let count = 10_000;
    let topics: Vec<String> = (0..count).map(|i| format!("t.{i}")).collect();
    let (mut taken, mut refused) = (0, 0);
    for chunk in topics.chunks(500) {
        for topic in chunk {
            socket.send(&json!({ "type": "subscribe", "topic": topic }));
        }
        for topic in chunk {
            let answer = socket.next();
            assert_eq!(answer["topic"], topic.as_str(), "{answer}");
            match answer["control"].as_str() {
                Some("subscribed") => taken += 1,
                Some("refused") => {
                    assert_eq!(answer["status"], 429, "{answer}");
                    refused += 1;
                }
                _ => panic!("{answer}"),
            }
        }
    }
    // 128 at most, "kept" among them.
    assert_eq!((taken, refused), (127, count - 127));
    hub.publish("kept", "flowing");
    assert_eq!(socket.event(), ("kept".to_owned(), "flowing".to_owned()));
    // The topics each have one subscriber: the socket's.
    let (status, info) = hub.api_get("/api/topics/info?topic=t.5");
    assert_eq!((status, info["websocket"].as_u64()), (200, Some(1)), "{info}");
}

#[test]
fn a_flood_of_subscribes_and_unsubscribes_leaves_nothing_behind() {
    let hub = Hub::start(settings(), 2);
    let mut socket = hub.socket();
    socket.follow(&["steady"]);
    for round in 0..300 {
        let topic = format!("churn.{}", round % 7);
        socket.subscribe(&topic);
        socket.unsubscribe(&topic);
    }
    for round in 0..300 {
        let topic = format!("churn.{}", round % 7);
        socket.subscribed(&topic);
        let answer = socket.next();
        assert_eq!(
            (answer["control"].as_str(), answer["topic"].as_str()),
            (Some("unsubscribed"), Some(topic.as_str()))
        );
    }
    hub.publish("churn.3", "nobody");
    hub.publish("steady", "somebody");
    assert_eq!(socket.event(), ("steady".to_owned(), "somebody".to_owned()));
    // No subscriber is left on the churned topics.
    let (status, info) = hub.api_get("/api/topics/info?topic=churn.3");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["websocket"], 0, "{info}");
}
