//! What a client may get wrong or do on purpose: messages that are not
//! messages, a binary frame, one too large, the same topic twice, more
//! topics than a socket may follow, floods of subscribes and
//! unsubscribes (over the socket's rate). Each is answered, the socket stays open, and the other
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
    // Another socket was never in the way.
    let mut other = hub.socket();
    other.follow(&["t.5"]);
    hub.publish("t.5", "both");
    assert_eq!(other.event(), ("t.5".to_owned(), "both".to_owned()));
    assert_eq!(socket.event(), ("t.5".to_owned(), "both".to_owned()));
}

#[test]
fn a_flood_of_subscribes_and_unsubscribes_leaves_nothing_behind() {
    // Every message acted on: a burst as large as the flood.
    let mut settings = settings();
    settings.max_subscriptions = 1000;
    let hub = Hub::start(settings, 2);
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

#[test]
fn subscribes_and_unsubscribes_over_the_rate_are_answered_429_and_nothing_else_is_disturbed() {
    // The defaults: 50 a second, in bursts of 128.
    let hub = Hub::start(settings(), 2);
    let mut other = hub.socket();
    other.follow(&["steady", "churn"]);
    let mut socket = hub.socket();
    socket.follow(&["steady"]);
    let count = 10_000;
    // Whether "churn" is followed, as the answers say.
    let mut following = false;
    let (mut acted, mut refused, mut errors) = (0, 0, 0);
    for chunk in (0..count).collect::<Vec<usize>>().chunks(500) {
        for i in chunk {
            if i % 2 == 0 {
                socket.subscribe("churn");
            } else {
                socket.unsubscribe("churn");
            }
        }
        for i in chunk {
            let answer = socket.next();
            assert_eq!(answer["topic"], "churn", "{answer}");
            let error = answer["error"].as_str().unwrap_or("");
            match (i % 2 == 0, answer["control"].as_str()) {
                (true, Some("subscribed")) => {
                    assert!(!following, "{answer}");
                    following = true;
                    acted += 1;
                }
                (false, Some("unsubscribed")) => {
                    assert!(following, "{answer}");
                    following = false;
                    acted += 1;
                }
                (true, Some("refused")) if answer["status"] == 429 => {
                    assert!(error.contains("subscribes and unsubscribes a second"), "{answer}");
                    refused += 1;
                }
                // An unsubscribe over the rate leaves the subscription.
                (false, Some("error")) if error.contains("a second") => errors += 1,
                // A subscribe let through after one refused, or an
                // unsubscribe after an unsubscribe refused: answered as
                // the state it finds.
                (true, Some("refused")) if answer["status"] == 409 => acted += 1,
                (false, Some("error")) if error.contains("not subscribed") => acted += 1,
                _ => panic!("message {i}: {answer}"),
            }
        }
    }
    assert_eq!(acted + refused + errors, count);
    // The burst went through, then the rate held the rest back.
    assert!(acted >= 128, "{acted} acted on");
    assert!(refused > 0 && errors > 0, "{refused} refused, {errors} errors");
    assert!(acted < count / 2, "{acted} acted on");
    // The socket is open, its other subscription flows, and so does the
    // other socket's, on the churned topic too.
    hub.publish("steady", "still");
    assert_eq!(socket.event(), ("steady".to_owned(), "still".to_owned()));
    assert_eq!(other.event(), ("steady".to_owned(), "still".to_owned()));
    hub.publish("churn", "through");
    assert_eq!(other.event(), ("churn".to_owned(), "through".to_owned()));
    if following {
        assert_eq!(socket.event(), ("churn".to_owned(), "through".to_owned()));
    }
    // Its other messages are answered as ever.
    socket.0.send_text("not json");
    assert_eq!(socket.next()["control"], "error");
}
