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

#[path = "support/mod.rs"]
mod support;

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

/// The application's backend for the latest hook: a plain HTTP/1.1
/// server on a free port that answers by topic, and keeps each topic it
/// was asked about, in order.
///
/// | topic | answer |
/// | --- | --- |
/// | `score.gated` and `score.raced` | `{"home":1}` as a `score` event, once the test opens the gate |
/// | `score.nothing` | no value |
/// | `score.garbage` | a 200 that is not JSON |
/// | any other | its own name, as the value |
mod backend {
    use std::sync::{Arc, Condvar, Mutex};

    use serde_json::{Value, json};

    #[derive(Default)]
    pub(crate) struct Shared {
        /// The topics asked about, in order; and whether the gate is open.
        state: Mutex<(Vec<String>, bool)>,
        changed: Condvar,
    }

    impl Shared {
        pub(crate) fn asked(&self) -> Vec<String> {
            self.state.lock().unwrap().0.clone()
        }

        /// Waits until `topic` has been asked about (a few seconds at most:
        /// only catches a hang).
        pub(crate) fn until_asked(&self, topic: &str) {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut state = self.state.lock().unwrap();
            while !state.0.iter().any(|t| t == topic) {
                let left = until.saturating_duration_since(std::time::Instant::now());
                assert!(!left.is_zero(), "{topic} was not asked about: {:?}", state.0);
                state = self.changed.wait_timeout(state, left).unwrap().0;
            }
        }

        pub(crate) fn open(&self) {
            self.state.lock().unwrap().1 = true;
            self.changed.notify_all();
        }

        fn answer(&self, topic: &str) -> String {
            let mut state = self.state.lock().unwrap();
            state.0.push(topic.to_owned());
            self.changed.notify_all();
            match topic {
                "score.gated" | "score.raced" => {
                    while !state.1 {
                        state = self.changed.wait(state).unwrap();
                    }
                    json!({"allow": true, "data": {"home": 1}, "event": "score"}).to_string()
                }
                "score.nothing" => json!({"allow": true}).to_string(),
                "score.garbage" => "not JSON".to_owned(),
                other => json!({"allow": true, "data": other}).to_string(),
            }
        }
    }

    /// Listens on a free port of 127.0.0.1: its URL.
    pub(crate) fn start(shared: &Arc<Shared>) -> String {
        let shared = Arc::clone(shared);
        let port = crate::support::backend::start(Arc::new(move |question: &Value| {
            shared.answer(question["topic"].as_str().unwrap_or_default())
        }));
        format!("http://127.0.0.1:{port}/latest")
    }
}

/// The hub of [`start`] on `loops` loops, with the latest hook answered
/// by a [`backend`] of its own (one worker: questions go out in the
/// order they were asked).
fn start_with_hook(loops: usize) -> (TestServer, std::sync::Arc<backend::Shared>) {
    use std::sync::Arc;
    use tether_hooks::{Config, HookKind, Hooks};
    let shared = Arc::new(backend::Shared::default());
    let url = backend::start(&shared);
    let config_of_hooks = Config::new()
        .workers(1)
        .hook(HookKind::Latest, &url, std::time::Duration::from_secs(5))
        .unwrap();
    let hooks = Hooks::start(config_of_hooks).unwrap();
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.backend = Some(Arc::new(tether_hub_app::HttpBackend::new(hooks, loops, 64)));
    for spec in ["score.* publish=backend latest=on", "chat.*"] {
        settings.namespaces.push(spec.parse::<Namespace>().unwrap());
    }
    let hub = HubShared::new(settings, loops);
    let server = TestServer::start_loops(config(), Handshake::new(), loops, |i| hub.app(i));
    (server, shared)
}

#[test]
fn a_topic_with_no_event_is_given_the_backends_value_once_as_an_event_with_an_id() {
    // Two loops: the subscribers below are on either, and the node asks
    // once for all of them.
    let (server, backend) = start_with_hook(2);
    // The first subscriber's question is held at the backend while more
    // arrive: over a WebSocket, a long poll and the multiplexed socket.
    let mut first = stream(&server, "/topics/score.gated/events", "");
    backend.until_asked("score.gated");
    let mut ws = WsClient::connect(server.addr, "/topics/score.gated/ws");
    let poll = std::thread::spawn({
        let addr = server.addr;
        move || request(addr, "GET", "/topics/score.gated/poll?timeout=20", "", b"")
    });
    let mut mux = WsClient::connect(server.addr, "/ws");
    mux.send_text(&json!({"type": "subscribe", "topic": "score.gated"}).to_string());
    let subscribed: Value = serde_json::from_str(&mux.recv_text()).unwrap();
    assert_eq!(subscribed["control"], "subscribed", "{subscribed}");
    backend.open();
    let event = first.next_event();
    assert_eq!((event.event_type(), event.data()), ("score", r#"{"home":1}"#));
    let id = event.last_event_id().to_owned();
    let json: Value = serde_json::from_str(&ws.recv_text()).unwrap();
    assert_eq!(
        (json["data"].as_str(), json["id"].as_str()),
        (Some(r#"{"home":1}"#), Some(id.as_str()))
    );
    let polled_answer = poll.join().unwrap();
    let body: Value = serde_json::from_slice(&polled_answer.body).unwrap();
    assert_eq!(
        polled(&body),
        vec![pair("score.gated", r#"{"home":1}"#)],
        "{body}"
    );
    let muxed: Value = serde_json::from_str(&mux.recv_text()).unwrap();
    assert_eq!(
        (muxed["data"].as_str(), muxed["id"].as_str()),
        (Some(r#"{"home":1}"#), Some(id.as_str()))
    );
    assert_eq!(backend.asked(), ["score.gated"]);
    // One after it gets the same event as the topic's latest, and a
    // client that resumes from its id gets nothing again.
    let mut later = stream(&server, "/topics/score.gated/events", "");
    let again = later.next_event();
    assert_eq!(
        (again.data(), again.last_event_id()),
        (r#"{"home":1}"#, id.as_str())
    );
    let (_, body) = get(&server, &format!("/topics/score.gated/poll?since={id}&timeout=0"));
    assert_eq!(polled(&body), vec![], "{body}");
    let (_, history) = get(&server, "/topics/score.gated/poll?since=0-0&timeout=0");
    assert_eq!(polled(&history).len(), 1, "{history}");
}

#[test]
fn an_event_that_comes_before_the_backends_answer_is_the_latest_and_the_answer_is_dropped() {
    let (server, backend) = start_with_hook(1);
    let mut waiting = stream(&server, "/topics/score.raced/events", "");
    backend.until_asked("score.raced");
    let real = publish(&server, "score.raced", "2-2");
    let event = waiting.next_event();
    assert_eq!((event.data(), event.last_event_id()), ("2-2", real.as_str()));
    backend.open();
    // Asked after it, in order: once its value is here, the raced one's
    // answer has been dropped or published.
    let mut sentinel = stream(&server, "/topics/score.sentinel/events", "");
    assert_eq!(sentinel.next_event().data(), "score.sentinel");
    publish(&server, "score.raced", "3-2");
    assert_eq!(waiting.next_event().data(), "3-2");
    let (_, history) = get(&server, "/topics/score.raced/poll?since=0-0&timeout=0");
    let datas: Vec<(String, String)> = polled(&history);
    assert_eq!(
        datas,
        vec![pair("score.raced", "2-2"), pair("score.raced", "3-2")]
    );
}

#[test]
fn only_a_latest_topic_with_no_event_is_asked_and_no_value_or_nonsense_is_waited_through() {
    let (server, backend) = start_with_hook(1);
    // An event, read back by a poll that resumes from the start (not a
    // subscriber from nowhere, which would ask): the loop has it.
    publish(&server, "score.had", "1-1");
    let (_, body) = get(&server, "/topics/score.had/poll?since=0-0&timeout=5");
    assert_eq!(polled(&body), vec![pair("score.had", "1-1")], "{body}");
    let mut had = stream(&server, "/topics/score.had/events", "");
    assert_eq!(had.next_event().data(), "1-1");
    let mut chat = stream(&server, "/topics/chat.room/events", "");
    let mut news = stream(&server, "/topics/news/events", "");
    // A subscriber that resumes from an id is not one from nowhere.
    let mut resumed = stream(&server, "/topics/score.resumed/events?lastEventId=0-0", "");
    let mut nothing = stream(&server, "/topics/score.nothing/events", "");
    let mut garbage = stream(&server, "/topics/score.garbage/events", "");
    // One worker: once the sentinel's value is here, every question
    // asked before it has been answered.
    let mut sentinel = stream(&server, "/topics/score.sentinel/events", "");
    assert_eq!(sentinel.next_event().data(), "score.sentinel");
    assert_eq!(
        backend.asked(),
        ["score.nothing", "score.garbage", "score.sentinel"]
    );
    for (topic, client) in [
        ("chat.room", &mut chat),
        ("news", &mut news),
        ("score.resumed", &mut resumed),
        ("score.nothing", &mut nothing),
        ("score.garbage", &mut garbage),
    ] {
        publish(&server, topic, "first");
        assert_eq!(client.next_event().data(), "first", "{topic}");
    }
    let metrics = tether_testkit::scrape_metrics(server.addr);
    assert!(
        metrics.contains(r#"tether_hub_backend_decisions_total{hook="latest",outcome="allowed"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tether_hub_backend_decisions_total{hook="latest",outcome="unavailable"} 1"#),
        "{metrics}"
    );
}
