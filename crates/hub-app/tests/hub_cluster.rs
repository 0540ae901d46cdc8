//! The hub on several event loops: one order per topic on every loop,
//! resuming on another loop with nothing lost or repeated, and slow
//! consumers that never hold up the publisher or the other subscribers.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{HttpConn, SseClient, WsClient, config};
use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::{CloseCode, Cluster, Config, Handshake};

use support::announcing::Announcing;
use support::running::Running;

const TOKEN: &str = "cluster-token";

struct ClusterServer {
    addr: SocketAddr,
    _running: Running,
}

impl ClusterServer {
    fn start(config: Config, loops: usize) -> ClusterServer {
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.ws_publish = vec!["*".to_owned()];
        let shared = HubShared::new(settings, loops);
        let cluster =
            Cluster::bind(config, Handshake::new(), loops, |i| Announcing(shared.app(i))).expect("bind");
        let (addr, running) = Running::cluster(cluster);
        ClusterServer {
            addr,
            _running: running,
        }
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// A WebSocket subscriber and the loop it is on.
fn ws(addr: SocketAddr, target: &str) -> (WsClient, u64) {
    let mut client = WsClient::connect(addr, target);
    let hello = json(&client.recv_text());
    let index = hello["loop"].as_u64().expect("the loop announcement");
    (client, index)
}

/// An event-stream subscriber and the loop it is on.
fn sse(addr: SocketAddr, target: &str, headers: &str) -> (SseClient, u64) {
    let mut client = SseClient::connect(addr, target, headers);
    assert_eq!(client.response.status, 200);
    let hello = client.next_event();
    assert_eq!(hello.event_type(), "loop");
    (client, hello.data().parse().unwrap())
}

/// Connects until `per_loop` clients are on each of `loops` loops; the
/// others are dropped.
fn on_every_loop<C>(loops: u64, per_loop: usize, mut connect: impl FnMut() -> (C, u64)) -> Vec<(C, u64)> {
    let mut kept: Vec<(C, u64)> = Vec::new();
    for _ in 0..500 {
        if (0..loops).all(|l| kept.iter().filter(|(_, i)| *i == l).count() >= per_loop) {
            return kept;
        }
        let (client, index) = connect();
        if kept.iter().filter(|(_, i)| *i == index).count() < per_loop {
            kept.push((client, index));
        }
    }
    panic!("500 connections did not reach every loop");
}

/// (id, data) of the next event over WebSocket.
fn ws_event(client: &mut WsClient) -> (String, String) {
    let event = json(&client.recv_text());
    assert!(
        event.get("control").is_none(),
        "unexpected control message {event}"
    );
    (
        event["id"].as_str().unwrap().to_owned(),
        event["data"].as_str().unwrap().to_owned(),
    )
}

fn sse_event(client: &mut SseClient) -> (String, String) {
    let event = client.next_event();
    assert_eq!(event.event_type(), "message", "{event:?}");
    (event.last_event_id().to_owned(), event.data().to_owned())
}

fn seq(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("ms-seq");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

#[test]
fn three_loops_deliver_one_order_and_resume_anywhere() {
    const LOOPS: u64 = 3;
    const EACH: usize = 100;
    let server = ClusterServer::start(config(), LOOPS as usize);
    // A publisher and a subscriber over WebSocket, and a subscriber over
    // SSE, on every loop.
    let mut sockets = on_every_loop(LOOPS, 2, || ws(server.addr, "/topics/order/ws"));
    let mut streams = on_every_loop(LOOPS, 1, || sse(server.addr, "/topics/order/events", ""));
    let mut publishers = Vec::new();
    for l in 0..LOOPS {
        let at = sockets.iter().position(|(_, i)| *i == l).unwrap();
        publishers.push(sockets.remove(at));
    }

    // Every publisher sends at once, from its own thread, and reads the
    // whole topic back.
    let threads: Vec<_> = publishers
        .into_iter()
        .map(|(mut client, l)| {
            thread::spawn(move || {
                for n in 0..EACH {
                    client.send_text(&format!("p{l}-{n}"));
                }
                (0..EACH * LOOPS as usize)
                    .map(|_| ws_event(&mut client))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut orders: Vec<Vec<(String, String)>> = threads
        .into_iter()
        .map(|t| t.join().expect("a publisher"))
        .collect();
    for (client, _) in &mut sockets {
        orders.push((0..EACH * LOOPS as usize).map(|_| ws_event(client)).collect());
    }
    for (client, _) in &mut streams {
        orders.push((0..EACH * LOOPS as usize).map(|_| sse_event(client)).collect());
    }
    let order = orders[0].clone();
    for other in &orders {
        assert!(*other == order, "two subscribers saw different orders");
    }
    // Ids increase; each publisher's messages keep their order; none is
    // missing or repeated.
    assert!(order.windows(2).all(|w| seq(&w[0].0) < seq(&w[1].0)));
    for l in 0..LOOPS {
        let mine: Vec<&str> = order
            .iter()
            .map(|(_, d)| d.as_str())
            .filter(|d| d.starts_with(&format!("p{l}-")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|n| format!("p{l}-{n}")).collect();
        assert_eq!(mine, expected, "publisher on loop {l}");
    }

    // Resume from the middle on every loop, over both transports: exactly
    // the rest, no gap, no duplicate.
    let middle = &order[EACH - 1].0;
    let rest = &order[EACH..];
    let resumed = on_every_loop(LOOPS, 1, || {
        sse(
            server.addr,
            "/topics/order/events",
            &format!("Last-Event-ID: {middle}\r\n"),
        )
    });
    for (mut client, l) in resumed {
        let got: Vec<(String, String)> = (0..rest.len()).map(|_| sse_event(&mut client)).collect();
        assert!(got == rest, "SSE resume on loop {l}");
    }
    let resumed = on_every_loop(LOOPS, 1, || {
        ws(server.addr, &format!("/topics/order/ws?lastEventId={middle}"))
    });
    for (mut client, l) in resumed {
        let got: Vec<(String, String)> = (0..rest.len()).map(|_| ws_event(&mut client)).collect();
        assert!(got == rest, "WebSocket resume on loop {l}");
        // And live afterwards.
        client.send_text("after");
        assert_eq!(ws_event(&mut client).1, "after");
    }
}

/// Message number `i`, `len` bytes long.
fn numbered(i: usize, len: usize) -> String {
    let mut text = format!("message {i:06} ");
    while text.len() < len {
        text.push(char::from(b'a' + (i % 26) as u8));
    }
    text
}

fn metric(addr: SocketAddr, series: &str) -> f64 {
    let response = common::get(addr, "/metrics");
    let text = String::from_utf8(response.body).unwrap();
    let line = text
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series))
        .unwrap_or_else(|| panic!("no {series} in {text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[test]
fn a_subscriber_that_never_reads_holds_up_nobody() {
    const SIZE: usize = 16 * 1024;
    let mut config = config();
    config.max_output = 64 * 1024;
    let server = ClusterServer::start(config, 2);
    let (mut reader, _) = ws(server.addr, "/topics/flood/ws");
    let (mut events, _) = sse(server.addr, "/topics/flood/events", "");
    // These two never read a byte after their announcement.
    let (mut stuck_ws, _) = ws(server.addr, "/topics/flood/ws");
    let (mut stuck_sse, _) = sse(server.addr, "/topics/flood/events", "");
    let mut publisher = HttpConn::connect(server.addr);

    // Lock step: every healthy subscriber reads each event before the next
    // is published, so only the stuck ones fall behind. Every POST must be
    // answered (the read timeout would fail the test otherwise).
    let mut sent = 0;
    // Messages published since both stuck subscribers were cut loose.
    let mut after_cut = None;
    while after_cut != Some(20) {
        assert!(
            sent < 4000,
            "64 MiB went out and the stuck subscribers are still there"
        );
        let text = numbered(sent, SIZE);
        let head = format!(
            "POST /topics/flood HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        publisher.send(head.as_bytes());
        publisher.stream.write_all(text.as_bytes()).unwrap();
        let answer = publisher.response();
        assert_eq!(answer.status, 200, "publish {sent}");
        assert!(
            ws_event(&mut reader).1 == text,
            "WebSocket reader, message {sent}"
        );
        assert!(sse_event(&mut events).1 == text, "event stream, message {sent}");
        sent += 1;
        after_cut = match after_cut {
            Some(n) => Some(n + 1),
            None if sent % 10 == 0 && metric(server.addr, "tether_hub_slow_consumer_drops_total") == 2.0 => {
                Some(0)
            }
            None => None,
        };
    }
    assert_eq!(metric(server.addr, "tether_slow_consumers_total"), 2.0);
    assert_eq!(
        metric(server.addr, "tether_hub_subscribers{transport=\"websocket\"}"),
        1.0
    );
    assert_eq!(
        metric(server.addr, "tether_hub_subscribers{transport=\"sse\"}"),
        1.0
    );

    // What the stuck ones got is a prefix, in order, then the end: close
    // 1008 for the WebSocket, the end of the stream for SSE.
    let mut next = 0;
    let close = loop {
        match stuck_ws.next_event() {
            Some(tether_ws::Event::Message(m)) => {
                let event = json(m.as_text().unwrap());
                assert!(
                    event["data"].as_str().unwrap() == numbered(next, SIZE),
                    "stuck WebSocket, message {next}"
                );
                next += 1;
            }
            Some(tether_ws::Event::Close(frame)) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::POLICY);
    assert!(next < sent, "it cannot have had everything");
    let mut next = 0;
    for event in stuck_sse.read_to_end() {
        assert!(
            event.data() == numbered(next, SIZE),
            "stuck stream, message {next}"
        );
        next += 1;
    }
    assert!(stuck_sse.is_ended());
    assert!(next < sent);
}

/// A keep-alive HTTP publisher: POSTs `data` with the token and a
/// publish key; the answer's JSON.
fn post_keyed(conn: &mut HttpConn, topic: &str, key: Option<&str>, data: &str) -> Value {
    let key = key.map_or(String::new(), |k| format!("Tether-Publish-Id: {k}\r\n"));
    let head = format!(
        "POST /topics/{topic} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n{key}Content-Length: {}\r\n\r\n{data}",
        data.len()
    );
    conn.send(head.as_bytes());
    let answer = conn.response();
    assert_eq!(answer.status, 200);
    json(std::str::from_utf8(&answer.body).unwrap())
}

#[test]
fn loops_publishing_the_same_key_at_once_make_one_event() {
    const LOOPS: u64 = 3;
    const ROUNDS: usize = 20;
    let server = ClusterServer::start(config(), LOOPS as usize);
    // An enveloped WebSocket publisher and an event-stream subscriber on
    // every loop, and as many HTTP publishers (on whatever loops).
    let publishers = on_every_loop(LOOPS, 1, || ws(server.addr, "/topics/race/ws?envelope=1"));
    let mut streams = on_every_loop(LOOPS, 1, || sse(server.addr, "/topics/race/events", ""));
    let posters: Vec<HttpConn> = (0..LOOPS).map(|_| HttpConn::connect(server.addr)).collect();
    let mut sentinel = HttpConn::connect(server.addr);

    // Each publisher waits for the round's start on its own channel (so
    // that a failed thread ends the test instead of holding up a barrier)
    // and answers on a shared one.
    let (tx, rx) = mpsc::channel::<(usize, String, bool)>();
    let mut starts = Vec::new();
    let mut threads = Vec::new();
    for (mut client, l) in publishers {
        let (start_tx, start) = mpsc::channel::<()>();
        starts.push(start_tx);
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            for round in 0..ROUNDS {
                if start.recv().is_err() {
                    return;
                }
                let key = format!("k{round}");
                client.send_text(&format!(r#"{{"data":"ws {l}","id":"{key}"}}"#));
                // This round's event reaches the publisher before its
                // acknowledgement, whichever publish made it.
                let event = json(&client.recv_text());
                assert_eq!(event["key"].as_str(), Some(key.as_str()), "loop {l}: {event}");
                let ack = json(&client.recv_text());
                assert_eq!(
                    (ack["control"].as_str(), ack["key"].as_str()),
                    (Some("published"), Some(key.as_str()))
                );
                assert_eq!(ack["id"], event["id"]);
                let duplicate = ack["duplicate"].as_bool().unwrap_or(false);
                tx.send((round, ack["id"].as_str().unwrap().to_owned(), duplicate))
                    .unwrap();
                // The round's sentinel.
                let sentinel = json(&client.recv_text());
                assert_eq!(sentinel["data"], format!("end {round}"));
            }
        }));
    }
    for mut conn in posters {
        let (start_tx, start) = mpsc::channel::<()>();
        starts.push(start_tx);
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            for round in 0..ROUNDS {
                if start.recv().is_err() {
                    return;
                }
                let answer = post_keyed(&mut conn, "race", Some(&format!("k{round}")), "http");
                let duplicate = answer["duplicate"].as_bool().unwrap_or(false);
                tx.send((round, answer["id"].as_str().unwrap().to_owned(), duplicate))
                    .unwrap();
            }
        }));
    }
    drop(tx);
    for round in 0..ROUNDS {
        for start in &starts {
            start.send(()).unwrap();
        }
        // Every answer of the round names one event; exactly one answer
        // says it published it. (A hang guard: a publisher that failed
        // never answers.)
        let answers: Vec<(usize, String, bool)> = (0..2 * LOOPS as usize)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .expect("every publisher answers (see any failure above)")
            })
            .collect();
        assert!(
            answers
                .iter()
                .all(|(r, id, _)| *r == round && *id == answers[0].1),
            "{answers:?}"
        );
        assert_eq!(
            answers.iter().filter(|(_, _, duplicate)| !duplicate).count(),
            1,
            "{answers:?}"
        );
        // Every answer is in: a second event of the round would come
        // before this one.
        post_keyed(&mut sentinel, "race", None, &format!("end {round}"));
        for (stream, l) in &mut streams {
            let (id, _) = sse_event(stream);
            assert_eq!(id, answers[0].1, "loop {l}, round {round}");
            let (_, data) = sse_event(stream);
            assert_eq!(data, format!("end {round}"), "loop {l}: one event for the key");
        }
    }
    for thread in threads {
        thread.join().expect("a publisher");
    }
    assert_eq!(
        metric(server.addr, "tether_hub_publishes_total{result=\"duplicate\"}"),
        ((2 * LOOPS as usize - 1) * ROUNDS) as f64
    );
}
