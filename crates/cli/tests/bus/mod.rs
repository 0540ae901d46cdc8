//! What the end-to-end tests of `tether serve --app hub` over a shared
//! bus (Redis, NATS) have in common: publishing over HTTP (with or
//! without a publish key), subscribers over SSE and WebSocket and what
//! they see, and the test bodies that are the same whichever bus carries
//! the events. Each test file brings its bus: how its server is started
//! and the options that point a node at it.

#![allow(dead_code)] // each test file uses a part

pub(crate) mod refused;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::serve::Node;
use super::support::{PATIENCE, wait_until};
use tether_client::{Event as WsEvent, WebSocket};
use tether_sse::{Item as SseItem, Parser};

/// The publish token the nodes of these tests are started with.
pub(crate) const TOKEN: &str = "e2e-token";
/// The topic these tests publish to and subscribe to.
pub(crate) const TOPIC: &str = "e2e";

/// A test's directory for its nodes (logs, configuration files):
/// `tether-e2e-NAME-PID` in the system's temporary directory, removed
/// when dropped (declare it before the nodes, so that they go first).
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("tether-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Publishes over HTTP; the event's id, or the status of a refusal.
pub(crate) fn publish(node: &Node, data: &str) -> Result<String, u16> {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    match node.request("POST", &format!("/topics/{TOPIC}"), &auth, data) {
        (200, body) => {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            Ok(json["id"].as_str().unwrap().to_owned())
        }
        (status, _) => Err(status),
    }
}

/// What a subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Event {
        id: String,
        data: String,
    },
    Gap {
        resume: String,
    },
    /// The subscription ended (the WebSocket close code, if one came).
    End(Option<u16>),
}

/// A subscriber over SSE or WebSocket.
pub(crate) enum Subscriber {
    Sse { stream: TcpStream, parser: Parser },
    Ws(Box<WebSocket>),
}

impl Subscriber {
    /// `GET /topics/e2e/events` with `Last-Event-ID`.
    pub(crate) fn sse(node: &Node, last_id: &str) -> Subscriber {
        Subscriber::sse_with(node, &format!("Last-Event-ID: {last_id}\r\n"))
    }

    /// `GET /topics/e2e/events` from nowhere (no `Last-Event-ID`).
    pub(crate) fn sse_from_nowhere(node: &Node) -> Subscriber {
        Subscriber::sse_with(node, "")
    }

    /// `GET /topics/e2e/events` with these header lines.
    fn sse_with(node: &Node, headers: &str) -> Subscriber {
        Subscriber::sse_at(node, &format!("/topics/{TOPIC}/events"), headers)
    }

    /// An event stream of `target` with these header lines.
    pub(crate) fn sse_at(node: &Node, target: &str, headers: &str) -> Subscriber {
        let mut stream = TcpStream::connect(node.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                stream.read(&mut byte).expect("a response head"),
                1,
                "closed early"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("text/event-stream"), "{head}");
        Subscriber::Sse {
            stream,
            parser: Parser::new(),
        }
    }

    /// `GET /topics/e2e/ws?lastEventId=...`.
    pub(crate) fn ws(node: &Node, last_id: &str) -> Subscriber {
        Subscriber::ws_at(node, &format!("?lastEventId={last_id}"))
    }

    /// `GET /topics/e2e/ws` from nowhere (no `lastEventId`).
    pub(crate) fn ws_from_nowhere(node: &Node) -> Subscriber {
        Subscriber::ws_at(node, "")
    }

    /// `GET /topics/e2e/ws` with this query.
    fn ws_at(node: &Node, query: &str) -> Subscriber {
        let url = format!("ws://{}/topics/{TOPIC}/ws{query}", node.addr);
        let ws = WebSocket::builder(url)
            .ping_interval(None)
            // A hang guard: a silent connection fails the test (the
            // server's pings come every 30 s).
            .idle_timeout(Some(PATIENCE))
            .connect()
            .expect("a WebSocket");
        Subscriber::Ws(Box::new(ws))
    }

    /// The next thing this subscriber sees.
    pub(crate) fn next(&mut self) -> Seen {
        // A hang guard over all reads (heartbeat comments keep a quiet
        // stream from ever timing out a single read).
        let deadline = Instant::now() + PATIENCE;
        match self {
            Subscriber::Sse { stream, parser } => loop {
                match parser.poll() {
                    Some(Ok(SseItem::Event(event))) if event.event_type() == "gap" => {
                        return Seen::Gap {
                            resume: event.last_event_id().to_owned(),
                        };
                    }
                    Some(Ok(SseItem::Event(event))) => {
                        return Seen::Event {
                            id: event.last_event_id().to_owned(),
                            data: event.data().to_owned(),
                        };
                    }
                    Some(Ok(SseItem::Retry(_))) => continue,
                    Some(Err(e)) => panic!("a malformed event stream: {e:?}"),
                    None => {}
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "no event within {PATIENCE:?}");
                stream.set_read_timeout(Some(left)).unwrap();
                let mut buf = [0u8; 4096];
                match stream.read(&mut buf) {
                    Ok(0) => return Seen::End(None),
                    Ok(n) => parser.feed(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Seen::End(None),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        panic!("no event within {PATIENCE:?}")
                    }
                    Err(e) => panic!("reading the event stream: {e}"),
                }
            },
            Subscriber::Ws(ws) => loop {
                match ws.recv() {
                    Ok(WsEvent::Message(message)) => {
                        let Some(text) = message.as_text() else {
                            panic!("unexpected {message:?}")
                        };
                        let json: serde_json::Value = serde_json::from_str(text).unwrap();
                        if json["control"] == "gap" {
                            return Seen::Gap {
                                resume: json["resume"].as_str().unwrap().to_owned(),
                            };
                        }
                        assert!(json["control"].is_null(), "{text}");
                        return Seen::Event {
                            id: json["id"].as_str().unwrap().to_owned(),
                            data: json["data"].as_str().unwrap().to_owned(),
                        };
                    }
                    Ok(WsEvent::Closed(frame)) => return Seen::End(Some(u16::from(frame.code))),
                    Ok(_) => {}
                    Err(tether_client::Error::ConnectionLost | tether_client::Error::Closed) => {
                        return Seen::End(None);
                    }
                    Err(e) => panic!("WebSocket: {e}"),
                }
            },
        }
    }

    /// Everything up to the end of the subscription.
    pub(crate) fn rest(&mut self) -> (Vec<Seen>, Seen) {
        let mut seen = Vec::new();
        loop {
            match self.next() {
                end @ Seen::End(_) => return (seen, end),
                other => seen.push(other),
            }
        }
    }
}

/// The `Seen` events for `published` (id, data) pairs, in order.
pub(crate) fn events(published: &[(String, String)]) -> Vec<Seen> {
    published
        .iter()
        .map(|(id, data)| Seen::Event {
            id: id.clone(),
            data: data.clone(),
        })
        .collect()
}

/// The id of the last event in `seen`.
pub(crate) fn last_id(seen: &[Seen]) -> String {
    match seen.last() {
        Some(Seen::Event { id, .. }) => id.clone(),
        other => panic!("no last event: {other:?}"),
    }
}

/// Publishes `m{n}` on `node` and notes it (id, data) in `published`.
pub(crate) fn publish_next(node: &Node, published: &mut Vec<(String, String)>, n: usize) {
    let data = format!("m{n}");
    let id = publish(node, &data).expect("published");
    published.push((id, data));
}

/// Publishes over HTTP with a publish key (as `?id=` or as the
/// `Tether-Publish-Id` header): the status and the JSON answer.
pub(crate) fn publish_keyed(node: &Node, data: &str, key: &str, as_header: bool) -> (u16, serde_json::Value) {
    let mut headers = format!("Authorization: Bearer {TOKEN}\r\n");
    let mut target = format!("/topics/{TOPIC}");
    if as_header {
        headers.push_str(&format!("Tether-Publish-Id: {key}\r\n"));
    } else {
        target.push_str(&format!("?id={key}"));
    }
    let (status, body) = node.request("POST", &target, &headers, data);
    let json = if status == 200 {
        serde_json::from_str(&body).unwrap()
    } else {
        serde_json::Value::Null
    };
    (status, json)
}

/// Two subscribers (SSE, WebSocket) resumed on node a after node b died
/// under them, with everything published so far and what each has seen.
pub(crate) struct Resumed {
    /// The SSE subscriber, then the WebSocket one, both on node a.
    pub(crate) subscribers: [Subscriber; 2],
    /// What each subscriber has seen, all of `published`.
    pub(crate) seen: Vec<Vec<Seen>>,
    /// The (id, data) of every event published, in order.
    pub(crate) published: Vec<(String, String)>,
}

/// Events published on node `a` reach subscribers on node `b` in order;
/// `b` is killed with events in flight and more come while it is gone;
/// the subscribers resume on `a` from their last ids and get every event
/// exactly once.
pub(crate) fn events_cross_nodes_and_survive_a_killed_node(a: &Node, b: &mut Node) -> Resumed {
    // Subscribers on node b, from the topic's beginning; events
    // published on node a.
    let mut subscribers = [Subscriber::sse(b, "0-0"), Subscriber::ws(b, "0-0")];
    let mut published = Vec::new();
    for n in 1..=10 {
        publish_next(a, &mut published, n);
    }
    let mut seen: Vec<Vec<Seen>> = vec![Vec::new(), Vec::new()];
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        for _ in 0..10 {
            seen.push(subscriber.next());
        }
        assert_eq!(*seen, events(&published), "in order, on the other node");
    }

    // Node b dies with events in flight; more come while it is gone.
    for n in 11..=15 {
        publish_next(a, &mut published, n);
    }
    b.kill();
    for n in 16..=20 {
        publish_next(a, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        let (rest, end) = subscriber.rest();
        assert!(matches!(end, Seen::End(None)), "{end:?}");
        seen.extend(rest);
    }
    // Each resumes on node a from its last id: nothing lost, nothing
    // twice.
    let mut subscribers = [
        Subscriber::sse(a, &last_id(&seen[0])),
        Subscriber::ws(a, &last_id(&seen[1])),
    ];
    for n in 21..=22 {
        publish_next(a, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        while seen.len() < published.len() {
            seen.push(subscriber.next());
        }
        assert_eq!(*seen, events(&published), "every event exactly once");
    }
    Resumed {
        subscribers,
        seen,
        published,
    }
}

/// A publish key holds across nodes `a` and `b` on one bus: a publish
/// retried on either node, with the key as a query or as a header, gets
/// the first publish's id and publishes nothing again; both nodes count
/// the duplicates, `tether_{bus}_duplicates_total` adding up to the
/// three retries.
pub(crate) fn a_publish_key_holds_across_nodes(a: &Node, b: &Node, bus: &str) {
    let mut subscribers = [Subscriber::sse(b, "0-0"), Subscriber::ws(a, "0-0")];
    // A 503 is a publish whose outcome the node could not learn in time
    // (a bus slow under load, RabbitMQ's confirm and read-back above
    // all): a client tries it again with its key, as this one does.
    let mut retried = 0;
    let mut keyed = |node: &Node, as_header: bool| loop {
        match publish_keyed(node, "once", "retry-me", as_header) {
            (503, _) if retried < 5 => {
                retried += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            (status, answer) => {
                assert_eq!(status, 200, "{answer}");
                return answer;
            }
        }
    };

    // Published on node a; retried on node b (the header form): the same
    // id, and nothing published again.
    let first = keyed(a, false);
    let id = first["id"].as_str().unwrap().to_owned();
    let first_retried = first.get("duplicate").is_some();
    for (node, as_header) in [(b, true), (a, true), (b, false)] {
        let again = keyed(node, as_header);
        assert_eq!(again, serde_json::json!({"id": id, "duplicate": true}));
    }
    // Only an attempt answered 503 can have been published already.
    assert!(!first_retried || retried > 0, "{first}");
    assert_eq!(publish_keyed(b, "x", "not+valid", false).0, 400);
    let next = publish(b, "next").expect("published");
    for subscriber in &mut subscribers {
        assert_eq!(
            [subscriber.next(), subscriber.next()],
            [
                Seen::Event {
                    id: id.clone(),
                    data: "once".to_owned()
                },
                Seen::Event {
                    id: next.clone(),
                    data: "next".to_owned()
                }
            ],
            "one event for the key, on both nodes"
        );
    }
    for node in [a, b] {
        assert!(
            node.metrics()
                .contains("tether_hub_publishes_total{result=\"duplicate\"} ")
        );
    }
    let metric = format!("tether_{bus}_duplicates_total ");
    let duplicates: u32 = [a, b]
        .iter()
        .map(|node| {
            let metrics = node.metrics();
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&metric))
                .expect("the bridge's duplicates");
            line.rsplit_once(' ').unwrap().1.parse::<u32>().unwrap()
        })
        .sum();
    // Each retry of a 503 may have been found a duplicate too.
    assert!(
        (3..=3 + retried).contains(&duplicates),
        "{duplicates} for {retried} retried"
    );
}

/// Waits until each of `nodes` shows `gone` (a line of `/metrics` that
/// says it lost `bus`), then checks that it reports its broker down and
/// connecting; each node's `/metrics` then, in the order of `nodes`.
pub(crate) fn wait_for_the_bus_gone(nodes: &[&Node], bus: &str, gone: &str) -> Vec<String> {
    let connecting = format!("tether_broker_state{{broker=\"{bus}\",state=\"connecting\"}} 1\n");
    nodes
        .iter()
        .map(|node| {
            wait_until(&format!("the nodes to see {bus} gone"), || {
                node.metrics().contains(gone)
            });
            let metrics = node.metrics();
            assert!(metrics.contains("tether_broker_up 0\n"), "{metrics}");
            assert!(metrics.contains(&connecting), "{metrics}");
            metrics
        })
        .collect()
}

/// Waits until each of `nodes` reports its broker up again; each node's
/// log and `/metrics` then, in the order of `nodes`.
pub(crate) fn wait_for_the_bus_back(nodes: &[&Node]) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|node| {
            wait_until("the nodes to reconnect", || {
                node.metrics().contains("tether_broker_up 1\n")
            });
            (node.log(), node.metrics())
        })
        .collect()
}

/// A client that resumes from an id `node` has not seen (one a node ahead
/// of it on the bus gave it) is held until the topic reaches that id,
/// past `--resume-wait` (the node must be started with `--resume-wait 1`):
/// a bus's ids are one sequence, so the client had every event up to it
/// and is not sent the backlog again. What it then sees is the events
/// after its id, in order, perhaps behind a gap signal from its id (the
/// topic went past the id without delivering it).
pub(crate) fn a_client_ahead_is_held_until_the_topic_reaches_its_id(node: &Node) {
    let first = publish(node, "had").expect("published");
    let (epoch, seq) = first.split_once('-').unwrap();
    let ahead = format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 2);
    let mut subscribers = [Subscriber::sse(node, &ahead), Subscriber::ws(node, &ahead)];
    // Three seconds: past the one-second resume wait (two ticks at most),
    // after which the backlog ("had") used to follow a gap signal.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut published = Vec::new();
    for n in 1..=3 {
        publish_next(node, &mut published, n);
    }
    let last = published.last().unwrap().0.clone();
    for subscriber in &mut subscribers {
        let mut seen = Vec::new();
        while !matches!(seen.last(), Some(Seen::Event { id, .. }) if *id == last) {
            seen.push(subscriber.next());
        }
        let events: Vec<&Seen> = seen.iter().filter(|s| matches!(s, Seen::Event { .. })).collect();
        let expected = self::events(&published);
        assert!(events.len() <= expected.len(), "events it had, again: {seen:?}");
        let suffix: Vec<&Seen> = expected[expected.len() - events.len()..].iter().collect();
        assert_eq!(events, suffix, "only events after {ahead}, in order: {seen:?}");
        for gap in seen.iter().filter(|s| matches!(s, Seen::Gap { .. })) {
            assert_eq!(
                *gap,
                Seen::Gap {
                    resume: ahead.clone()
                },
                "{seen:?}"
            );
        }
    }
}

/// The namespace of [`a_latest_value_topic_new_to_a_node_starts_at_its_latest_event`]'s
/// nodes: the test's topic and others of its name replay their latest
/// event.
pub(crate) const LATEST_NAMESPACE: &str = "e2e* latest=on";

/// Two nodes started with `--namespace` [`LATEST_NAMESPACE`]: a topic `b`
/// has never followed starts its subscribers from nowhere (a long poll,
/// an event stream, a WebSocket, a multiplexed socket, a multi-topic
/// stream) at its latest event, read from the bus; one that resumes from
/// an id gets exactly what follows it.
pub(crate) fn a_latest_value_topic_new_to_a_node_starts_at_its_latest_event(a: &Node, b: &Node) {
    let first = publish(a, "1-0").unwrap();
    let latest = publish(a, "2-1").unwrap();
    // No one on b follows the topic: each of these waits for its history
    // from the bus, then starts at its latest event.
    let (status, body) = b.request("GET", &format!("/topics/{}/poll?timeout=20", TOPIC), "", "");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"][0]["data"], "2-1", "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1), "{body}");
    let mut late = [Subscriber::sse_from_nowhere(b), Subscriber::ws_from_nowhere(b)];
    let mut resumed = Subscriber::sse(b, &first);
    let then = |data: &str, id: &str| Seen::Event {
        id: id.to_owned(),
        data: data.to_owned(),
    };
    for subscriber in &mut late {
        assert_eq!(subscriber.next(), then("2-1", &latest));
    }
    let next = publish(a, "3-1").unwrap();
    for subscriber in &mut late {
        assert_eq!(subscriber.next(), then("3-1", &next));
    }
    // Resuming from an id: exactly what follows it.
    assert_eq!(resumed.next(), then("2-1", &latest));
    assert_eq!(resumed.next(), then("3-1", &next));
    // Topics b has never followed, on a multiplexed socket and on a
    // multi-topic event stream: each subscribe from nowhere waits for
    // its topic's history, then starts at its latest event.
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for topic in ["e2e.mux", "e2e.multi"] {
        for data in ["old", "current"] {
            let (status, _) = a.request("POST", &format!("/topics/{topic}"), &auth, data);
            assert_eq!(status, 200);
        }
    }
    let mut mux = tether_client::WebSocket::builder(format!("ws://{}/ws", b.addr))
        .ping_interval(None)
        .idle_timeout(Some(PATIENCE))
        .connect()
        .unwrap();
    mux.send_text(r#"{"type":"subscribe","topic":"e2e.mux"}"#)
        .unwrap();
    let mut next_json = || -> serde_json::Value {
        loop {
            if let tether_client::Event::Message(m) = mux.recv().unwrap() {
                return serde_json::from_str(m.as_text().unwrap()).unwrap();
            }
        }
    };
    assert_eq!(next_json()["control"], "subscribed");
    let event = next_json();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("e2e.mux"), Some("current")),
        "{event}"
    );
    let mut multi = Subscriber::sse_at(b, "/events?topic=e2e.multi", "");
    let Seen::Event { id: cursor, data } = multi.next() else {
        panic!("not an event")
    };
    let event: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("e2e.multi"), Some("current")),
        "{event}"
    );
    assert!(cursor.starts_with('~'), "a cursor: {cursor}");
    drop((late, resumed));
}
