//! Latest-value topics (a namespace with `latest=on`) end to end, over
//! real sockets, on every transport: a subscriber that arrives from
//! nowhere gets the topic's latest event at once, then the live ones; one
//! of a topic outside the namespace gets nothing until the next event; one
//! that resumes from an id gets exactly what follows it, as before.
//!
//! One event loop, and a witness subscribed before each publish that has
//! read the event before a late subscriber connects: the loop's replica
//! has the event by then, so "late" is certain, not a matter of timing.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use serde_json::{Value, json};
use tether_hub_app::{HubSettings, HubShared, Namespace};
use tether_server::Handshake;
use tether_testkit::{SseClient, TestServer, WsClient, config, request};
use tether_ws::Message;

const TOKEN: &str = "latest-value-publish-token";

/// The hub: `score.*` replays its latest event, `chat.*` does not (a
/// namespace without the option), topics outside both are the hub's.
fn start() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    for spec in ["score.* publish=backend latest=on", "chat.*"] {
        settings.namespaces.push(spec.parse::<Namespace>().unwrap());
    }
    let shared = HubShared::new(settings, 1);
    TestServer::start_loops(config(), Handshake::new(), 1, |i| shared.app(i))
}

/// Publishes `data` to `topic`: its id.
fn publish(server: &TestServer, topic: &str, data: &str) -> String {
    let answer = request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        data.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// An event stream of `target` from nowhere; 200 checked.
fn stream(server: &TestServer, target: &str, headers: &str) -> SseClient {
    let client = SseClient::connect(server.addr, target, headers);
    assert_eq!(
        client.response.status,
        200,
        "{}",
        String::from_utf8_lossy(&client.raw)
    );
    client
}

/// Publishes `datas` to `topic` in order, each read by a witness
/// subscribed before them: the loop has every one when this returns.
/// Their ids.
fn published(server: &TestServer, topic: &str, datas: &[&str]) -> Vec<String> {
    let mut witness = stream(server, &format!("/topics/{topic}/events"), "");
    let mut ids = Vec::new();
    for data in datas {
        ids.push(publish(server, topic, data));
        assert_eq!(witness.next_event().data(), *data);
    }
    ids
}

/// A one-topic WebSocket message's data (the JSON envelope's).
fn ws_data(ws: &mut WsClient) -> String {
    let text = ws.recv_text();
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert!(json["id"].is_string(), "an event: {json}");
    json["data"].as_str().unwrap().to_owned()
}

/// `GET TARGET`: the status and the body as JSON.
fn get(server: &TestServer, target: &str) -> (u16, Value) {
    let answer = request(server.addr, "GET", target, "", b"");
    let body = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&answer.body)));
    (answer.status, body)
}

/// A poll answer's events as (topic, data); a one-topic poll's events
/// name their topic too.
fn polled(body: &Value) -> Vec<(String, String)> {
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
fn an_event_stream_from_nowhere_starts_at_the_latest_event() {
    let server = start();
    let ids = published(&server, "score.final", &["1-0", "2-0", "2-1"]);
    let mut late = stream(&server, "/topics/score.final/events", "");
    let first = late.next_event();
    assert_eq!((first.data(), first.last_event_id()), ("2-1", ids[2].as_str()));
    // Outside the namespace, and in one without the option: nothing
    // replayed, the next event first.
    published(&server, "news", &["old news"]);
    published(&server, "chat.lobby", &["old chat"]);
    let mut news = stream(&server, "/topics/news/events", "");
    let mut chat = stream(&server, "/topics/chat.lobby/events", "");
    publish(&server, "news", "fresh news");
    publish(&server, "chat.lobby", "fresh chat");
    assert_eq!(news.next_event().data(), "fresh news");
    assert_eq!(chat.next_event().data(), "fresh chat");
    // Resuming from an id: exactly what follows it, not the latest alone;
    // from the latest id, nothing again.
    let mut resumed = stream(
        &server,
        "/topics/score.final/events",
        &format!("Last-Event-ID: {}\r\n", ids[0]),
    );
    let mut current = stream(
        &server,
        &format!("/topics/score.final/events?lastEventId={}", ids[2]),
        "",
    );
    let next = publish(&server, "score.final", "3-1");
    assert_eq!(resumed.next_event().data(), "2-0");
    assert_eq!(resumed.next_event().data(), "2-1");
    assert_eq!(resumed.next_event().data(), "3-1");
    let after = current.next_event();
    assert_eq!((after.data(), after.last_event_id()), ("3-1", next.as_str()));
    // The late one is live after its replay.
    assert_eq!(late.next_event().data(), "3-1");
}

#[test]
fn a_topic_with_no_event_yet_is_waited_for() {
    let server = start();
    let mut waiting = stream(&server, "/topics/score.none/events", "");
    let mut ws = WsClient::connect(server.addr, "/topics/score.none/ws");
    let (status, body) = get(&server, "/topics/score.none/poll?timeout=0");
    assert_eq!((status, polled(&body)), (200, vec![]), "{body}");
    publish(&server, "score.none", "first");
    assert_eq!(waiting.next_event().data(), "first");
    assert_eq!(ws_data(&mut ws), "first");
}

#[test]
fn websockets_from_nowhere_start_at_the_latest_event_json_and_raw() {
    let server = start();
    published(&server, "score.ws", &["a", "b"]);
    let mut ws = WsClient::connect(server.addr, "/topics/score.ws/ws");
    let mut raw = WsClient::connect(server.addr, "/topics/score.ws/ws?format=raw");
    assert_eq!(ws_data(&mut ws), "b");
    assert_eq!(raw.recv(), Message::text("b"));
    published(&server, "news", &["old"]);
    let mut news = WsClient::connect(server.addr, "/topics/news/ws");
    let mut news_raw = WsClient::connect(server.addr, "/topics/news/ws?format=raw");
    publish(&server, "news", "new");
    publish(&server, "score.ws", "c");
    assert_eq!(ws_data(&mut news), "new");
    assert_eq!(news_raw.recv(), Message::text("new"));
    assert_eq!(ws_data(&mut ws), "c");
    assert_eq!(raw.recv(), Message::text("c"));
}

#[test]
fn a_websocket_resuming_from_an_id_gets_what_follows_it() {
    let server = start();
    let ids = published(&server, "score.resume", &["a", "b", "c"]);
    let mut ws = WsClient::connect(
        server.addr,
        &format!("/topics/score.resume/ws?lastEventId={}", ids[0]),
    );
    assert_eq!(ws_data(&mut ws), "b");
    assert_eq!(ws_data(&mut ws), "c");
    let mut current = WsClient::connect(
        server.addr,
        &format!("/topics/score.resume/ws?lastEventId={}", ids[2]),
    );
    publish(&server, "score.resume", "d");
    assert_eq!(ws_data(&mut current), "d");
    assert_eq!(ws_data(&mut ws), "d");
}

#[test]
fn a_long_poll_from_nowhere_is_answered_at_once_with_the_latest_event() {
    let server = start();
    let ids = published(&server, "score.poll", &["a", "b"]);
    // Answered at once, however long it may wait.
    let (status, body) = get(&server, "/topics/score.poll/poll?timeout=20");
    assert_eq!(status, 200, "{body}");
    assert_eq!(polled(&body), [pair("score.poll", "b")]);
    assert_eq!(body["next"], ids[1].as_str());
    // Polling on from its `next`: nothing again.
    let (_, again) = get(
        &server,
        &format!("/topics/score.poll/poll?since={}&timeout=0", ids[1]),
    );
    assert_eq!(
        (polled(&again), again["next"].as_str()),
        (vec![], Some(ids[1].as_str()))
    );
    // From an id: what follows it.
    let (_, resumed) = get(
        &server,
        &format!("/topics/score.poll/poll?since={}&timeout=0", ids[0]),
    );
    assert_eq!(polled(&resumed), [pair("score.poll", "b")]);
    let ids = published(&server, "chat.poll", &["x", "y"]);
    // Outside: from nowhere, only a future event answers; its `next` is
    // the head.
    let (_, outside) = get(&server, "/topics/chat.poll/poll?timeout=0");
    assert_eq!(
        (polled(&outside), outside["next"].as_str()),
        (vec![], Some(ids[1].as_str()))
    );
}

#[test]
fn a_multiplexed_socket_subscribing_from_nowhere_gets_the_latest_event() {
    let server = start();
    let ids = published(&server, "score.mux", &["a", "b", "c"]);
    published(&server, "news", &["old"]);
    let mut mux = WsClient::connect(server.addr, "/ws");
    let send = |mux: &mut WsClient, message: Value| mux.send_text(&message.to_string());
    let next = |mux: &mut WsClient| -> Value { serde_json::from_str(&mux.recv_text()).unwrap() };
    send(&mut mux, json!({ "type": "subscribe", "topic": "score.mux" }));
    let subscribed = next(&mut mux);
    assert_eq!(
        (subscribed["control"].as_str(), subscribed["topic"].as_str()),
        (Some("subscribed"), Some("score.mux"))
    );
    let latest = next(&mut mux);
    assert_eq!(
        (latest["data"].as_str(), latest["id"].as_str()),
        (Some("c"), Some(ids[2].as_str()))
    );
    send(&mut mux, json!({ "type": "subscribe", "topic": "news" }));
    assert_eq!(next(&mut mux)["control"], "subscribed");
    // Another socket resumes from an id: exactly what follows it.
    let mut resumed = WsClient::connect(server.addr, "/ws");
    send(
        &mut resumed,
        json!({ "type": "subscribe", "topic": "score.mux", "since": ids[0] }),
    );
    assert_eq!(next(&mut resumed)["control"], "subscribed");
    assert_eq!(next(&mut resumed)["data"], "b");
    assert_eq!(next(&mut resumed)["data"], "c");
    // Live next, on both; news had nothing replayed.
    publish(&server, "news", "new");
    publish(&server, "score.mux", "d");
    let got = next(&mut mux);
    assert_eq!(
        (got["topic"].as_str(), got["data"].as_str()),
        (Some("news"), Some("new"))
    );
    assert_eq!(next(&mut mux)["data"], "d");
    assert_eq!(next(&mut resumed)["data"], "d");
}

#[test]
fn a_multi_topic_stream_from_nowhere_starts_its_latest_topics_at_their_latest_event() {
    let server = start();
    published(&server, "score.a", &["a1", "a2"]);
    published(&server, "news", &["old"]);
    let mut multi = stream(&server, "/events?topic=news&topic=score.a", "");
    let first = multi.next_event();
    let json: Value = serde_json::from_str(first.data()).unwrap();
    assert_eq!(
        (json["topic"].as_str(), json["data"].as_str()),
        (Some("score.a"), Some("a2"))
    );
    let cursor = first.last_event_id().to_owned();
    assert!(cursor.starts_with('~'), "{cursor}");
    // Reconnecting from that cursor: the latest event is not sent again,
    // and no topic misses what comes next.
    let mut again = stream(
        &server,
        "/events?topic=news&topic=score.a",
        &format!("Last-Event-ID: {cursor}\r\n"),
    );
    publish(&server, "news", "new");
    publish(&server, "score.a", "a3");
    for client in [&mut multi, &mut again] {
        let got: Vec<(String, String)> = (0..2)
            .map(|_| {
                let event = client.next_event();
                let json: Value = serde_json::from_str(event.data()).unwrap();
                pair(json["topic"].as_str().unwrap(), json["data"].as_str().unwrap())
            })
            .collect();
        assert_eq!(got, [pair("news", "new"), pair("score.a", "a3")]);
    }
}

#[test]
fn a_multi_topic_poll_from_nowhere_is_answered_with_the_latest_events() {
    let server = start();
    published(&server, "score.p", &["p1", "p2"]);
    published(&server, "news", &["old"]);
    let (status, body) = get(&server, "/poll?topic=news&topic=score.p&timeout=20");
    assert_eq!(status, 200, "{body}");
    assert_eq!(polled(&body), [pair("score.p", "p2")]);
    let next = body["next"].as_str().unwrap().to_owned();
    // From its cursor: nothing again, on either topic.
    let (_, again) = get(
        &server,
        &format!("/poll?topic=news&topic=score.p&timeout=0&since={next}"),
    );
    assert_eq!(polled(&again), []);
    publish(&server, "news", "new");
    publish(&server, "score.p", "p3");
    let (_, after) = get(
        &server,
        &format!("/poll?topic=news&topic=score.p&timeout=0&since={next}"),
    );
    let mut got = polled(&after);
    got.sort();
    assert_eq!(got, [pair("news", "new"), pair("score.p", "p3")]);
}
