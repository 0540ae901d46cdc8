//! The hub with a broker that replicates topics on demand, as a Redis
//! bridge would: subscribers wait for the topic's backlog, then replay
//! from it exactly; a second backlog (the broker lost continuity) makes
//! subscribers resume.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, SseClient, WsClient, config};
use tether_hub::{Broker, Context, Error, Event, EventId, HistoryQuery, HubMessage, Publish, ReplyTo};
use tether_hub_app::{HubSettings, HubShared};
use tether_server::{CloseCode, Handshake, Server};

use support::running::Running;

const TOKEN: &str = "broker-token";

/// Keeps every topic's events itself; a loop gets a topic only while it
/// follows it: first its backlog (`Ready`), then its new events. An event
/// of type `resync` is not stored: it makes the broker send the backlog
/// again, as after a lost connection.
#[derive(Default)]
struct OnDemand {
    topics: HashMap<Arc<str>, Vec<Arc<Event>>>,
    following: HashSet<Arc<str>>,
    follows: Arc<AtomicUsize>,
    unfollows: Arc<AtomicUsize>,
    /// Takes history questions, as a bus does, and never answers them;
    /// without it, keeps no history (the default `Broker::history`).
    silent_history: bool,
    /// A followed topic's history comes only after its next publish (a
    /// bus slow to read it, an event published meanwhile).
    late_history: bool,
    /// Followed topics whose history has not been sent yet.
    unready: HashSet<Arc<str>>,
}

impl OnDemand {
    fn ready(&self, topic: &Arc<str>, cx: &mut dyn Context) {
        let history = self.topics.get(topic).cloned().unwrap_or_default();
        let here = cx.this_loop();
        cx.post(
            here,
            HubMessage::Ready {
                topic: topic.clone(),
                history,
                dropped: None,
            },
        );
    }
}

impl Broker for OnDemand {
    fn publish(&mut self, publish: Publish, cx: &mut dyn Context) -> Result<(), Error> {
        let result = if publish.event_type == "resync" {
            if self.following.contains(&publish.topic) {
                self.ready(&publish.topic, cx);
            }
            Ok(EventId::ZERO)
        } else {
            let events = self.topics.entry(publish.topic.clone()).or_default();
            let id = EventId::new(1, events.len() as u64 + 1);
            let event = Event::of_payload(
                publish.topic.clone(),
                id,
                &publish.event_type,
                &publish.data,
                None,
            )?;
            events.push(event.clone());
            if self.unready.remove(&publish.topic) {
                self.ready(&publish.topic, cx);
            } else if self.following.contains(&publish.topic) {
                let here = cx.this_loop();
                cx.post(here, HubMessage::Deliver(event));
            }
            Ok(id)
        };
        if let Some(reply) = publish.reply {
            cx.post(
                reply.loop_index,
                HubMessage::Published {
                    token: reply.token,
                    result,
                },
            );
        }
        Ok(())
    }

    fn complete(&self) -> bool {
        false
    }

    fn follow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        self.follows.fetch_add(1, Ordering::Relaxed);
        self.following.insert(topic.clone());
        if self.late_history {
            self.unready.insert(topic.clone());
        } else {
            self.ready(topic, cx);
        }
    }

    fn unfollow(&mut self, topic: &Arc<str>, _cx: &mut dyn Context) {
        self.unfollows.fetch_add(1, Ordering::Relaxed);
        self.following.remove(topic);
        self.unready.remove(topic);
    }

    fn history(&mut self, _query: &HistoryQuery, _reply: ReplyTo, _cx: &mut dyn Context) -> bool {
        self.silent_history
    }

    fn kind(&self) -> &'static str {
        "on-demand"
    }
}

/// The hub with the test token and this broker, on its own thread.
struct Hub {
    addr: SocketAddr,
    _running: Running,
}

fn start(broker: OnDemand) -> Hub {
    let (addr, running) = Running::server(move || {
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        // How long a request waits for the broker (a hang guard here).
        settings.publish_timeout = Duration::from_secs(1);
        let app = HubShared::new(settings, 1).app_with_broker(0, Box::new(broker));
        Server::bind(config(), Handshake::new(), app)
    });
    Hub {
        addr,
        _running: running,
    }
}

fn publish(conn: &mut HttpConn, topic: &str, event: &str, data: &str) {
    let head = format!(
        "POST /topics/{topic}?event={event} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n{data}",
        data.len()
    );
    conn.send(head.as_bytes());
    assert_eq!(conn.response().status, 200);
}

/// Waits (a hang guard, not a timing check) until `counter` is `n`.
fn wait_for(counter: &AtomicUsize, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.load(Ordering::Relaxed) != n {
        assert!(
            Instant::now() < deadline,
            "{what}: {}",
            counter.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn subscribers_wait_for_the_backlog_and_resume_after_a_resync() {
    let broker = OnDemand::default();
    let (follows, unfollows) = (broker.follows.clone(), broker.unfollows.clone());
    let server = start(broker);
    let mut publisher = HttpConn::connect(server.addr);
    for n in 1..=3 {
        publish(&mut publisher, "od", "message", &format!("e{n}"));
    }
    assert_eq!(follows.load(Ordering::Relaxed), 0, "nobody follows the topic yet");

    // The first subscriber makes the loop follow the topic; it is held
    // until the backlog arrives, then replayed from it.
    let mut stream = SseClient::connect(server.addr, "/topics/od/events", "Last-Event-ID: 1-1\r\n");
    for (id, data) in [("1-2", "e2"), ("1-3", "e3")] {
        let event = stream.next_event();
        assert_eq!((event.last_event_id(), event.data()), (id, data));
    }
    assert_eq!(follows.load(Ordering::Relaxed), 1);
    publish(&mut publisher, "od", "message", "e4");
    assert_eq!(stream.next_event().last_event_id(), "1-4");

    // Later subscribers find the topic ready.
    let mut ws = WsClient::connect(server.addr, "/topics/od/ws?lastEventId=1-2");
    for id in ["1-3", "1-4"] {
        let event: serde_json::Value = serde_json::from_str(&ws.recv_text()).unwrap();
        assert_eq!(event["id"], id);
    }
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/od/poll?since=1-4", "");
    publish(&mut publisher, "od", "message", "e5");
    let answer: serde_json::Value = serde_json::from_slice(&poll.response().body).unwrap();
    assert_eq!(answer["events"][0]["id"], "1-5");
    assert_eq!(stream.next_event().last_event_id(), "1-5");
    assert_eq!(follows.load(Ordering::Relaxed), 1, "followed once");

    // The broker lost continuity: everyone resumes.
    publish(&mut publisher, "od", "resync", "");
    assert!(stream.read_to_end().is_empty(), "the stream just ends");
    let event: serde_json::Value = serde_json::from_str(&ws.recv_text()).unwrap();
    assert_eq!(event["id"], "1-5");
    assert_eq!(ws.recv_close().code, CloseCode::SERVICE_RESTART);
    // With the last subscriber gone, the loop unfollows.
    wait_for(&unfollows, 1, "unfollows");
    // A subscriber that comes back with its last id follows again and
    // gets exactly what it missed.
    let mut back = SseClient::connect(server.addr, "/topics/od/events", "Last-Event-ID: 1-3\r\n");
    assert_eq!(back.next_event().last_event_id(), "1-4");
    assert_eq!(back.next_event().last_event_id(), "1-5");
    assert_eq!(follows.load(Ordering::Relaxed), 2);

    let metrics = String::from_utf8(common::get(server.addr, "/metrics").body).unwrap();
    assert!(metrics.contains("tether_broker_state{broker=\"on-demand\",state=\"up\"} 1\n"));
}

/// History from a broker that keeps none is 501; from one that reads it
/// elsewhere (a bus) and does not answer in the request's time, 503 with
/// `Retry-After`, and the server goes on.
#[test]
fn history_a_broker_keeps_nowhere_or_does_not_answer() {
    for (silent, status, code) in [(false, 501, "not_implemented"), (true, 503, "unavailable")] {
        let server = start(OnDemand {
            silent_history: silent,
            ..OnDemand::default()
        });
        let mut publisher = HttpConn::connect(server.addr);
        publish(&mut publisher, "od", "message", "e1");
        let mut conn = HttpConn::connect(server.addr);
        conn.request(
            "GET",
            "/api/history?topic=od",
            &format!("Authorization: Bearer {TOKEN}\r\n"),
        );
        let answer = conn.response();
        assert_eq!(answer.status, status);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["error"]["code"], code, "{json}");
        assert_eq!(
            answer.header("retry-after").is_some(),
            silent,
            "{:?}",
            answer.headers
        );
        publish(&mut publisher, "od", "message", "e2");
    }
}

/// An event stream from nowhere (`target`, of `topics`) on a bus whose
/// history of a topic comes only after the topic's next publish: every
/// event published after the stream's response head was read reaches it.
/// A stream opened before its histories came would miss the first of
/// them: the history has it, and the stream starts after the history.
fn every_event_published_after_the_head_arrives(target: &str, topics: &[&str]) {
    let server = start(OnDemand {
        late_history: true,
        ..OnDemand::default()
    });
    let (addr, path) = (server.addr, target.to_owned());
    let (opened, head) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = opened.send(SseClient::connect(addr, &path, ""));
    });
    let mut publisher = HttpConn::connect(server.addr);
    // Whether the head came before anything was published (it should
    // not: the histories are not here), then "first" to every topic.
    let early = head.recv_timeout(Duration::from_secs(1)).ok();
    let opened_early = early.is_some();
    for topic in topics {
        publish(&mut publisher, topic, "message", "first");
    }
    let mut stream = early.unwrap_or_else(|| {
        (head.recv_timeout(Duration::from_secs(10))).expect("the head once the histories came")
    });
    assert_eq!(stream.response.status, 200);
    for topic in topics {
        publish(&mut publisher, topic, "message", "second");
    }
    let wanted: Vec<String> = (topics.iter())
        .flat_map(|topic| {
            let first = opened_early.then(|| format!("{topic} first"));
            first.into_iter().chain([format!("{topic} second")])
        })
        .collect();
    let mut got = Vec::new();
    while got.len() < topics.len() {
        let event = stream.next_event();
        got.push(match serde_json::from_str::<serde_json::Value>(event.data()) {
            // A multi-topic stream's event names its topic.
            Ok(value) if value.is_object() => format!(
                "{} {}",
                value["topic"].as_str().unwrap(),
                value["data"].as_str().unwrap()
            ),
            _ => format!("{} {}", topics[0], event.data()),
        });
    }
    let mut sorted = got.clone();
    sorted.sort();
    assert!(!opened_early, "the head came before the histories; got {got:?}");
    assert_eq!(sorted, wanted, "{got:?}");
}

#[test]
fn a_stream_from_nowhere_opens_once_its_topics_history_is_here() {
    every_event_published_after_the_head_arrives("/topics/late/events", &["late"]);
}

#[test]
fn a_multi_topic_stream_from_nowhere_opens_once_every_topics_history_is_here() {
    every_event_published_after_the_head_arrives("/events?topic=late.a&topic=late.b", &["late.a", "late.b"]);
}

#[test]
fn a_sockets_subscribe_from_nowhere_is_answered_once_the_topics_history_is_here() {
    let server = start(OnDemand {
        late_history: true,
        ..OnDemand::default()
    });
    let addr = server.addr;
    let (answered, subscribed) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut ws = WsClient::connect(addr, "/ws");
        ws.send_text(r#"{"type":"subscribe","topic":"late"}"#);
        let first = ws.recv_text();
        let _ = answered.send((ws, first));
    });
    let mut publisher = HttpConn::connect(server.addr);
    // `subscribed` before anything was published would be early: the
    // history is not here.
    let early = subscribed.recv_timeout(Duration::from_secs(1)).ok();
    let answered_early = early.is_some();
    publish(&mut publisher, "late", "message", "first");
    let (mut ws, first) = early.unwrap_or_else(|| {
        (subscribed.recv_timeout(Duration::from_secs(10))).expect("subscribed once the history came")
    });
    assert_eq!(first, r#"{"control":"subscribed","topic":"late"}"#);
    publish(&mut publisher, "late", "message", "second");
    let event: serde_json::Value = serde_json::from_str(&ws.recv_text()).unwrap();
    assert!(
        !answered_early,
        "subscribed came before the history; then {event}"
    );
    assert_eq!(
        (&event["topic"], &event["data"]),
        (&"late".into(), &"second".into()),
        "{event}"
    );
}

#[test]
fn a_stream_from_nowhere_whose_history_never_comes_opens_after_the_wait() {
    let server = start(OnDemand {
        late_history: true,
        ..OnDemand::default()
    });
    // Nothing is published: the bus never sends the history. The stream
    // opens when the wait for it is up, placed when the history comes.
    let mut stream = SseClient::connect(server.addr, "/topics/silent/events", "");
    assert_eq!(stream.response.status, 200);
    let mut publisher = HttpConn::connect(server.addr);
    publish(&mut publisher, "silent", "message", "first");
    publish(&mut publisher, "silent", "message", "second");
    assert_eq!(stream.next_event().data(), "second");
}

#[test]
fn a_topics_websocket_from_nowhere_opens_once_its_history_is_here() {
    for (topic, target) in [
        ("late", "/topics/late/ws"),
        ("late.raw", "/topics/late.raw/ws?format=raw"),
    ] {
        let server = start(OnDemand {
            late_history: true,
            ..OnDemand::default()
        });
        let (addr, path) = (server.addr, target.to_owned());
        let (opened, upgraded) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ = opened.send(WsClient::connect(addr, &path));
        });
        let mut publisher = HttpConn::connect(server.addr);
        // A `101` before anything was published would be early: the
        // history is not here, and "first" would count as history.
        let early = upgraded.recv_timeout(Duration::from_secs(1)).ok();
        let opened_early = early.is_some();
        publish(&mut publisher, topic, "message", "first");
        let mut ws = early.unwrap_or_else(|| {
            (upgraded.recv_timeout(Duration::from_secs(10))).expect("the 101 once the history came")
        });
        publish(&mut publisher, topic, "message", "second");
        let text = ws.recv_text();
        assert!(
            !opened_early,
            "{target}: the 101 came before the history; then {text}"
        );
        let data = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) if value.is_object() => value["data"].as_str().unwrap().to_owned(),
            _ => text,
        };
        assert_eq!(data, "second", "{target}");
    }
}
