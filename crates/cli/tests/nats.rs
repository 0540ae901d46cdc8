//! Two `tether serve --app hub --nats ...` processes against a real
//! `nats-server` (a child process with JetStream on a free loopback port,
//! see `crates/nats/tests/support`): events published on one node reach
//! subscribers on the other over SSE and WebSocket, in order; a client
//! whose node is killed resumes on the other node with its last id and
//! gets every event exactly once; NATS restarted mid-stream (with its
//! store) is shown in `/metrics`, publishes are refused meanwhile, and the
//! subscriptions go on with nothing lost or twice; a publish key holds
//! across nodes.
//!
//! Skipped (with a printed reason) when `nats-server` is not installed,
//! unless `TETHER_REQUIRE_NATS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(feature = "nats")]

mod serve;
#[path = "../../nats/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use serve::{Node, request};
use support::{NatsServer, PATIENCE, available, wait_until};
use tether_client::{Event as WsEvent, WebSocket};
use tether_sse::{Item as SseItem, Parser};

const TOKEN: &str = "e2e-token";
const TOPIC: &str = "e2e";

/// A `tether serve --app hub --nats URL` node of these tests.
fn start_node(url: &str, dir: &Path, name: &str) -> Node {
    let args = ["--nats", url, "--nats-prefix", "e2e-test"];
    Node::start(dir, name, &args, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

/// Publishes over HTTP; the event's id, or the status of a refusal.
fn publish(node: &Node, data: &str) -> Result<String, u16> {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    match request(node.addr, "POST", &format!("/topics/{TOPIC}"), &auth, data) {
        (200, body) => {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            Ok(json["id"].as_str().unwrap().to_owned())
        }
        (status, _) => Err(status),
    }
}

/// What a subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
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
enum Subscriber {
    Sse { stream: TcpStream, parser: Parser },
    Ws(Box<WebSocket>),
}

impl Subscriber {
    /// `GET /topics/e2e/events` with `Last-Event-ID`.
    fn sse(node: &Node, last_id: &str) -> Subscriber {
        let mut stream = TcpStream::connect(node.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let request = format!(
            "GET /topics/{TOPIC}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\
             Last-Event-ID: {last_id}\r\n\r\n"
        );
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
    fn ws(node: &Node, last_id: &str) -> Subscriber {
        let url = format!("ws://{}/topics/{TOPIC}/ws?lastEventId={last_id}", node.addr);
        let ws = WebSocket::builder(url)
            .ping_interval(None)
            // A hang guard: a silent connection fails the test (the
            // server's pings come every 30 s).
            .idle_timeout(Some(PATIENCE))
            .connect()
            .expect("a WebSocket");
        Subscriber::Ws(Box::new(ws))
    }

    fn next(&mut self) -> Seen {
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
    fn rest(&mut self) -> (Vec<Seen>, Seen) {
        let mut seen = Vec::new();
        loop {
            match self.next() {
                end @ Seen::End(_) => return (seen, end),
                other => seen.push(other),
            }
        }
    }
}

fn events(published: &[(String, String)]) -> Vec<Seen> {
    published
        .iter()
        .map(|(id, data)| Seen::Event {
            id: id.clone(),
            data: data.clone(),
        })
        .collect()
}

fn last_id(seen: &[Seen]) -> String {
    match seen.last() {
        Some(Seen::Event { id, .. }) => id.clone(),
        other => panic!("no last event: {other:?}"),
    }
}

#[test]
fn two_nodes_share_topics_through_nats() {
    if !available("two_nodes_share_topics_through_nats") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tether-e2e-nats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut nats = NatsServer::start();
    let a = start_node(&nats.url(), &dir, "a");
    let mut b = start_node(&nats.url(), &dir, "b");

    // Subscribers on node b, from the topic's beginning; events
    // published on node a.
    let mut subscribers = [Subscriber::sse(&b, "0-0"), Subscriber::ws(&b, "0-0")];
    let mut published = Vec::new();
    let publish_on = |node: &Node, published: &mut Vec<(String, String)>, n: usize| {
        let data = format!("m{n}");
        let id = publish(node, &data).expect("published");
        published.push((id, data));
    };
    for n in 1..=10 {
        publish_on(&a, &mut published, n);
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
        publish_on(&a, &mut published, n);
    }
    b.kill();
    for n in 16..=20 {
        publish_on(&a, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        let (rest, end) = subscriber.rest();
        assert!(matches!(end, Seen::End(None)), "{end:?}");
        seen.extend(rest);
    }
    // Each resumes on node a from its last id: nothing lost, nothing
    // twice.
    let mut subscribers = [
        Subscriber::sse(&a, &last_id(&seen[0])),
        Subscriber::ws(&a, &last_id(&seen[1])),
    ];
    for n in 21..=22 {
        publish_on(&a, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        while seen.len() < published.len() {
            seen.push(subscriber.next());
        }
        assert_eq!(*seen, events(&published), "every event exactly once");
    }

    // NATS restarts mid-stream (with its store): the nodes say so and
    // refuse publishes meanwhile; back, the subscriptions go on, nothing
    // lost or twice, no resync.
    let c = start_node(&nats.url(), &dir, "c");
    nats.stop();
    for node in [&a, &c] {
        wait_until("the nodes to see NATS gone", || {
            node.metrics().contains("tether_nats_connected 0\n")
        });
        let metrics = node.metrics();
        assert!(metrics.contains("tether_broker_up 0\n"), "{metrics}");
        assert!(
            metrics.contains("tether_broker_state{broker=\"nats\",state=\"connecting\"} 1\n"),
            "{metrics}"
        );
    }
    assert_eq!(publish(&c, "refused"), Err(503));
    nats.restart();
    for node in [&a, &c] {
        wait_until("the nodes to reconnect", || {
            node.metrics().contains("tether_broker_up 1\n")
        });
        let log = node.log();
        assert!(log.contains("connection to"), "{log}");
        let metrics = node.metrics();
        assert!(metrics.contains("tether_nats_reconnects_total 1\n"), "{metrics}");
    }
    for n in 23..=25 {
        publish_on(&c, &mut published, n);
    }
    for (subscriber, seen) in subscribers.iter_mut().zip(&mut seen) {
        while seen.len() < published.len() {
            seen.push(subscriber.next());
        }
        assert_eq!(*seen, events(&published), "delivery went on");
    }
    assert!(a.metrics().contains("tether_nats_resyncs_total 0\n"));
    drop(subscribers);
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publishes over HTTP with a publish key (as `?id=` or as the
/// `Tether-Publish-Id` header): the status and the JSON answer.
fn publish_keyed(node: &Node, data: &str, key: &str, as_header: bool) -> (u16, serde_json::Value) {
    let mut headers = format!("Authorization: Bearer {TOKEN}\r\n");
    let mut target = format!("/topics/{TOPIC}");
    if as_header {
        headers.push_str(&format!("Tether-Publish-Id: {key}\r\n"));
    } else {
        target.push_str(&format!("?id={key}"));
    }
    let (status, body) = request(node.addr, "POST", &target, &headers, data);
    let json = if status == 200 {
        serde_json::from_str(&body).unwrap()
    } else {
        serde_json::Value::Null
    };
    (status, json)
}

#[test]
fn a_publish_key_holds_across_nodes() {
    if !available("a_publish_key_holds_across_nodes") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tether-e2e-nats-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nats = NatsServer::start();
    let a = start_node(&nats.url(), &dir, "a");
    // Node b has its bus from the environment (TETHER_NATS) and a
    // configuration file (nats-prefix), as a deployment would.
    let config = dir.join("b.toml");
    std::fs::write(&config, "nats-prefix = \"e2e-test\"\n").unwrap();
    let url = nats.url();
    let config_arg = config.to_str().unwrap();
    let b = Node::start(
        &dir,
        "b",
        &["--config", config_arg],
        &[("TETHER_PUBLISH_TOKEN", TOKEN), ("TETHER_NATS", url.as_str())],
    );
    let mut subscribers = [Subscriber::sse(&b, "0-0"), Subscriber::ws(&a, "0-0")];

    // Published on node a; retried on node b (the header form): the same
    // id, and nothing published again.
    let (status, first) = publish_keyed(&a, "once", "retry-me", false);
    assert_eq!(status, 200);
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(first.get("duplicate").is_none(), "{first}");
    for (node, as_header) in [(&b, true), (&a, true), (&b, false)] {
        let (status, again) = publish_keyed(node, "once", "retry-me", as_header);
        assert_eq!(status, 200);
        assert_eq!(again, serde_json::json!({"id": id, "duplicate": true}));
    }
    let next = publish(&b, "next").expect("published");
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
    let duplicates: u32 = [&a, &b]
        .iter()
        .map(|node| {
            let metrics = node.metrics();
            let line = metrics
                .lines()
                .find(|l| l.starts_with("tether_nats_duplicates_total "))
                .expect("the bridge's duplicates");
            line.rsplit_once(' ').unwrap().1.parse::<u32>().unwrap()
        })
        .sum();
    assert_eq!(duplicates, 3);
    drop(subscribers);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
