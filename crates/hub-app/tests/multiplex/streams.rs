//! Several topics on one event stream (`GET /events?topic=A&topic=B`):
//! each event naming its topic, every `id:` a cursor of every topic's
//! position, a reconnect with the browser's own `Last-Event-ID` resuming
//! each topic exactly (a topic that had no event too), an unreadable
//! cursor answered with each topic's gap signal, refusals per topic
//! inside the stream, and the list refused whole when it cannot be
//! followed.

use serde_json::Value;
use tether_sse::MessageEvent;
use tether_testkit::{SseClient, request};

use crate::helpers::{Hub, TOKEN, settings, token};
use crate::presence::eventually_members;

/// An event stream of `query`'s topics, with `headers`; 200 checked.
fn stream(hub: &Hub, query: &str, headers: &str) -> SseClient {
    let client = SseClient::connect(hub.addr(), &format!("/events?{query}"), headers);
    assert_eq!(
        client.response.status,
        200,
        "{}",
        String::from_utf8_lossy(&client.raw)
    );
    assert_eq!(client.response.header("content-type"), Some("text/event-stream"));
    client
}

/// An event's data as JSON.
fn data(event: &MessageEvent) -> Value {
    serde_json::from_str(event.data()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", event.data()))
}

/// The next event, which must be one of a topic's: (topic, data), its
/// cursor checked to be one.
fn next_of_topic(stream: &mut SseClient) -> (String, String) {
    let event = stream.next_event();
    let json = data(&event);
    assert!(json["id"].is_string(), "an event: {json}");
    assert!(
        event.last_event_id().starts_with('~'),
        "a cursor: {:?}",
        event.last_event_id()
    );
    (
        json["topic"].as_str().unwrap().to_owned(),
        json["data"].as_str().unwrap().to_owned(),
    )
}

fn pair(topic: &str, data: &str) -> (String, String) {
    (topic.to_owned(), data.to_owned())
}

/// The status of `GET /events?QUERY` with `headers`.
fn status_of(hub: &Hub, query: &str, headers: &str) -> (u16, String) {
    let answer = request(hub.addr(), "GET", &format!("/events?{query}"), headers, b"");
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

#[test]
fn one_stream_carries_every_listed_topic_and_resumes_each_from_its_cursor() {
    let hub = Hub::start(settings(), 2);
    hub.publish("news", "n0");
    let mut first = stream(&hub, "topic=news&topic=feed&topic=quiet", "");
    hub.publish("news", "n1");
    hub.publish("feed", "f1");
    assert_eq!(next_of_topic(&mut first), pair("news", "n1"));
    let event = first.next_event();
    assert_eq!(event.event_type(), "message");
    assert_eq!(
        (data(&event)["topic"].as_str(), data(&event)["data"].as_str()),
        (Some("feed"), Some("f1"))
    );
    let cursor = event.last_event_id().to_owned();
    drop(first);
    // Published while the browser was away, to each topic: "quiet" had
    // no event at all while the stream was open.
    hub.publish("quiet", "q1");
    hub.publish("news", "n2");
    hub.publish("feed", "f2");
    let mut again = stream(
        &hub,
        "topic=news&topic=feed&topic=quiet",
        &format!("Last-Event-ID: {cursor}\r\n"),
    );
    let mut got: Vec<(String, String)> = (0..3).map(|_| next_of_topic(&mut again)).collect();
    got.sort();
    assert_eq!(got, [pair("feed", "f2"), pair("news", "n2"), pair("quiet", "q1")]);
    // And live after that, exactly once each.
    hub.publish("quiet", "q2");
    assert_eq!(next_of_topic(&mut again), pair("quiet", "q2"));
    // `?lastEventId=` stands for the header.
    let mut by_query = stream(
        &hub,
        &format!("topic=news&topic=feed&topic=quiet&lastEventId={cursor}"),
        "",
    );
    let mut got: Vec<(String, String)> = (0..4).map(|_| next_of_topic(&mut by_query)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            pair("feed", "f2"),
            pair("news", "n2"),
            pair("quiet", "q1"),
            pair("quiet", "q2")
        ]
    );
}

#[test]
fn a_typed_event_keeps_its_type_and_a_cursor_of_another_list_is_a_gap_for_each_topic() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    let hub = Hub::start(settings, 1);
    let answer = request(
        hub.addr(),
        "POST",
        "/topics/a?event=update",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        b"typed",
    );
    assert_eq!(answer.status, 200);
    hub.publish("b", "b1");
    hub.publish("b", "b2");
    hub.publish("b", "b3");
    let mut typed = stream(&hub, "topic=a&topic=b", "");
    hub.publish("a", "plain");
    let event = typed.next_event();
    assert_eq!(data(&event)["data"], "plain");
    // A cursor made for another list, an event id, garbage: each topic
    // gets its gap signal and what is held, never a refusal (an
    // EventSource answered with an error gives up for good).
    let cursor = event.last_event_id().to_owned();
    for bad in [cursor.as_str(), "1-1", "~~~", &"~A".repeat(3000)] {
        let mut stream = stream(&hub, "topic=b&topic=a", &format!("Last-Event-ID: {bad}\r\n"));
        let mut gaps = Vec::new();
        let mut events = Vec::new();
        while events.len() < 4 {
            let event = stream.next_event();
            let json = data(&event);
            if event.event_type() == "gap" {
                gaps.push(json["topic"].as_str().unwrap().to_owned());
                assert_eq!(json["requested"], "~", "{json}");
                assert!(event.last_event_id().starts_with('~'));
            } else {
                events.push((
                    event.event_type().to_owned(),
                    json["data"].as_str().unwrap().to_owned(),
                ));
            }
        }
        gaps.sort();
        assert_eq!(gaps, ["a", "b"], "{bad}");
        events.sort();
        assert_eq!(
            events,
            [
                ("message".to_owned(), "b2".to_owned()),
                ("message".to_owned(), "b3".to_owned()),
                ("message".to_owned(), "plain".to_owned()),
                ("update".to_owned(), "typed".to_owned()),
            ],
            "{bad}"
        );
    }
}

#[test]
fn a_topic_not_granted_is_refused_inside_the_stream_and_the_others_flow() {
    let hub = Hub::start(settings(), 2);
    let ann = token("ann", &["room.1"], &[]);
    let mut stream = stream(
        &hub,
        "topic=room.1&topic=room.2&topic=open",
        &format!("Authorization: Bearer {ann}\r\n"),
    );
    let refused = stream.next_event();
    assert_eq!(refused.event_type(), "refused");
    let json = data(&refused);
    assert_eq!(
        (json["topic"].as_str(), json["status"].as_u64()),
        (Some("room.2"), Some(403))
    );
    hub.publish("room.2", "secret");
    hub.publish("room.1", "r1");
    hub.publish("open", "o1");
    assert_eq!(next_of_topic(&mut stream), pair("room.1", "r1"));
    assert_eq!(next_of_topic(&mut stream), pair("open", "o1"));
    // Nothing it may follow: the first topic's refusal, before any stream.
    assert_eq!(
        status_of(
            &hub,
            "topic=room.2&topic=room.3",
            &format!("Authorization: Bearer {ann}\r\n")
        )
        .0,
        403
    );
    assert_eq!(status_of(&hub, "topic=room.2", "").0, 401);
    assert_eq!(
        status_of(&hub, "topic=open", "Authorization: Bearer not.a.token\r\n").0,
        401
    );
}

#[test]
fn each_ticket_lets_in_its_own_topic() {
    let hub = Hub::start(settings(), 1);
    let mint_for = |who: &str, topic: &str| {
        let answer = request(
            hub.addr(),
            "POST",
            &format!("/tickets?topic={topic}"),
            &format!("Authorization: Bearer {}\r\n", token(who, &["room.*"], &[])),
            b"",
        );
        assert_eq!(answer.status, 200);
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        body["ticket"].as_str().unwrap().to_owned()
    };
    let (seven, eight) = (mint_for("ann", "room.7"), mint_for("ann", "room.8"));
    let bobs = mint_for("bob", "room.9");
    // In any order: each ticket is for the topic it names. The stream is
    // its tickets' holder's: another holder's ticket lets nothing in.
    let mut stream = stream(
        &hub,
        &format!("topic=room.7&topic=room.8&topic=room.9&ticket={eight}&ticket={seven}&ticket={bobs}"),
        "",
    );
    let refused = stream.next_event();
    assert_eq!(refused.event_type(), "refused");
    assert_eq!(data(&refused)["topic"], "room.9", "{}", refused.data());
    hub.publish("room.8", "eight");
    hub.publish("room.7", "seven");
    assert_eq!(next_of_topic(&mut stream), pair("room.8", "eight"));
    assert_eq!(next_of_topic(&mut stream), pair("room.7", "seven"));
    // Present as its holder, as a per-topic stream with a ticket is.
    eventually_members(&hub, "room.7", &["ann"]);
    eventually_members(&hub, "room.8", &["ann"]);
    // Used: the same tickets again let nothing in.
    assert_eq!(
        status_of(
            &hub,
            &format!("topic=room.7&topic=room.8&ticket={eight}&ticket={seven}"),
            ""
        )
        .0,
        403
    );
}

#[test]
fn a_list_that_cannot_be_followed_is_refused_whole() {
    let mut settings = settings();
    settings.max_subscriptions = 3;
    let hub = Hub::start(settings, 1);
    for (query, status, says) in [
        ("", 400, "list the topics"),
        ("topic=a&topic=b&topic=a", 400, "listed twice"),
        ("topic=a&topic=b&topic=c&topic=d", 400, "at most 3 topics"),
        ("topic=a&topic=bad%20name", 400, "topic"),
        ("topic=a&presence=1", 400, "presence=1"),
    ] {
        let (got, body) = status_of(&hub, query, "");
        assert_eq!(got, status, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    // Ten thousand topics cost what one past the limit does.
    let many: Vec<String> = (0..10_000).map(|i| format!("topic=t{i}")).collect();
    let (got, _) = status_of(&hub, &many.join("&"), "");
    assert!(got == 400 || got == 431 || got == 414, "{got}");
    // A stream of the limit is served.
    let mut three = stream(&hub, "topic=a&topic=b&topic=c", "");
    hub.publish("c", "c1");
    assert_eq!(next_of_topic(&mut three), pair("c", "c1"));
}

#[test]
fn the_server_api_ends_one_subscription_of_a_stream_and_the_stream_goes_on() {
    let hub = Hub::start(settings(), 2);
    let ann = token("ann", &["room.*"], &[]);
    let mut stream = stream(
        &hub,
        "topic=room.1&topic=room.2",
        &format!("Authorization: Bearer {ann}\r\n"),
    );
    hub.publish("room.1", "before");
    assert_eq!(next_of_topic(&mut stream), pair("room.1", "before"));
    let (status, body) = hub.api(
        "unsubscribe",
        &serde_json::json!({ "user": "ann", "topic": "room.1" }),
    );
    assert_eq!(status, 200, "{body}");
    let ended = stream.next_event();
    assert_eq!(ended.event_type(), "unsubscribed");
    assert_eq!(data(&ended)["topic"], "room.1");
    hub.publish("room.1", "after");
    hub.publish("room.2", "still");
    assert_eq!(next_of_topic(&mut stream), pair("room.2", "still"));
}
