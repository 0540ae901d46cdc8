//! Several topics on one long poll (`GET /poll?topic=A&topic=B&since=
//! CURSOR`): answered at once with every topic's news, or held until one
//! topic has some; `next` the cursor of every topic's position, so that
//! polling from it misses nothing and repeats nothing; refusals and gap
//! signals per topic.

use std::thread;

use serde_json::Value;
use tether_testkit::request;

use crate::helpers::{Hub, settings, token};

/// `GET /poll?QUERY` with `headers`: the status and the body as JSON.
fn poll(hub: &Hub, query: &str, headers: &str) -> (u16, Value) {
    let answer = request(hub.addr(), "GET", &format!("/poll?{query}"), headers, b"");
    let body = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
    (answer.status, body)
}

/// An answer's events as (topic, data).
fn events(body: &Value) -> Vec<(String, String)> {
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {body}"))
        .iter()
        .map(|e| {
            (
                e["topic"].as_str().unwrap().to_owned(),
                e["data"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(topic: &str, data: &str) -> (String, String) {
    (topic.to_owned(), data.to_owned())
}

#[test]
fn polls_from_the_cursor_miss_nothing_and_repeat_nothing() {
    let hub = Hub::start(settings(), 2);
    hub.publish("a", "old");
    // Where every topic is now: nothing yet, a cursor.
    let (status, first) = poll(&hub, "topic=a&topic=b&timeout=0", "");
    assert_eq!(status, 200, "{first}");
    assert_eq!(events(&first), []);
    let next = first["next"].as_str().unwrap().to_owned();
    assert!(next.starts_with('~'), "{next}");
    hub.publish("b", "b1");
    hub.publish("a", "a1");
    hub.publish("b", "b2");
    let (_, second) = poll(&hub, &format!("topic=a&topic=b&since={next}"), "");
    let mut got = events(&second);
    got.sort();
    assert_eq!(got, [pair("a", "a1"), pair("b", "b1"), pair("b", "b2")]);
    // Held until a topic has news: the answer carries it alone.
    let next = second["next"].as_str().unwrap().to_owned();
    let held = {
        let addr = hub.addr();
        let query = format!("/poll?topic=a&topic=b&since={next}&timeout=20");
        thread::spawn(move || request(addr, "GET", &query, "", b""))
    };
    hub.publish("b", "b3");
    let answer = held.join().unwrap();
    let third: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(events(&third), [pair("b", "b3")]);
    // Nothing since: an empty answer whose cursor stays where it was.
    let next = third["next"].as_str().unwrap().to_owned();
    let (_, fourth) = poll(&hub, &format!("topic=a&topic=b&since={next}&timeout=0"), "");
    assert_eq!(events(&fourth), []);
    assert_eq!(fourth["next"], next.as_str());
    hub.publish("a", "a2");
    let (_, fifth) = poll(&hub, &format!("topic=a&topic=b&since={next}"), "");
    assert_eq!(events(&fifth), [pair("a", "a2")]);
}

#[test]
fn refusals_and_gaps_are_each_topics_own() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    let hub = Hub::start(settings, 1);
    let ann = token("ann", &["room.1"], &[]);
    let auth = format!("Authorization: Bearer {ann}\r\n");
    for i in 1..=3 {
        hub.publish("room.1", &format!("r{i}"));
    }
    // A cursor that cannot be read: each topic's gap signal and what is
    // held; the topic not granted is refused in the answer.
    let (status, body) = poll(&hub, "topic=room.1&topic=room.2&since=garbage", &auth);
    assert_eq!(status, 200, "{body}");
    assert_eq!(events(&body), [pair("room.1", "r2"), pair("room.1", "r3")]);
    assert_eq!(body["gaps"][0]["topic"], "room.1");
    assert_eq!(body["gaps"][0]["requested"], "~");
    assert_eq!(body["refused"][0]["topic"], "room.2");
    assert_eq!(body["refused"][0]["status"], 403);
    // Nothing it may follow: the first topic's refusal as the status.
    assert_eq!(poll(&hub, "topic=room.2", &auth).0, 403);
    assert_eq!(poll(&hub, "topic=room.2", "").0, 401);
    assert_eq!(poll(&hub, "topic=a&topic=a", "").0, 400);
    assert_eq!(poll(&hub, "topic=a&timeout=soon", "").0, 400);
}

#[test]
fn a_poll_lets_go_of_its_tickets_holders() {
    let mut settings = settings();
    settings.max_tickets_per_subject = 2;
    let hub = Hub::start(settings, 1);
    let ann = token("ann", &["room.*"], &[]);
    let mint = |topic: &str| {
        request(
            hub.addr(),
            "POST",
            &format!("/tickets?topic={topic}"),
            &format!("Authorization: Bearer {ann}\r\n"),
            b"",
        )
    };
    // Two polls, each with the subject's two tickets: had a poll kept
    // their holders, the subject could not be given more.
    for _ in 0..2 {
        let tickets: Vec<String> = ["room.1", "room.2"]
            .iter()
            .map(|topic| {
                let answer = mint(topic);
                assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
                let body: Value = serde_json::from_slice(&answer.body).unwrap();
                body["ticket"].as_str().unwrap().to_owned()
            })
            .collect();
        let query = format!(
            "topic=room.1&topic=room.2&ticket={}&ticket={}&timeout=0",
            tickets[0], tickets[1]
        );
        let (status, body) = poll(&hub, &query, "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["refused"], serde_json::json!([]), "{body}");
    }
}
