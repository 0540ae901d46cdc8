//! What the end-to-end tests of `GET /api/history` over a bus share: the
//! same publishes (event types, publish keys, more than the backlog
//! holds) to a `tether serve --app hub --memory` node and to a node on
//! the bus give the same pages (data, types, order, `next`, `more`, the
//! gap signal, paging with `since` and `limit`, forward and `reverse`, a
//! `since` ahead of the topic, an unknown topic, the errors), the ids
//! apart: each bus numbers its own, and they are compared as the ids the
//! topic's subscriber got. Each test file brings its bus.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;

use super::bus::{Seen, Subscriber, TOKEN, TOPIC};
use super::serve::Node;
use super::support::PATIENCE;

/// The backlog every node keeps: fewer than the events published, so
/// that the oldest are dropped and a `since` among them gets the gap.
const BACKLOG: usize = 5;
/// The events published.
const EVENTS: usize = 8;

/// Starts a node with a small backlog and `args`.
pub(crate) fn start_node(dir: &Path, name: &str, args: &[&str]) -> Node {
    let mut all = vec!["--backlog-events", "5"];
    all.extend_from_slice(args);
    Node::start(dir, name, &all, &[("TETHER_PUBLISH_TOKEN", TOKEN)])
}

/// One `GET` with the publish token: the status, the head and the body.
pub(crate) fn get(node: &Node, target: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(node.addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Publishes the events (every other one an `update`, every third with a
/// publish key) through `POST /api/publish`, while an event-stream
/// subscriber of the topic watches: the ids it got, which must be the
/// ids the publishers got.
fn publish_all(node: &Node) -> Vec<String> {
    let mut subscriber = Subscriber::sse(node, "0-0");
    let mut published = Vec::new();
    for n in 0..EVENTS {
        let mut item = serde_json::json!({"topic": TOPIC, "data": format!("e{n}")});
        if n % 2 == 1 {
            item["type"] = "update".into();
        }
        if n % 3 == 0 {
            item["key"] = format!("k{n}").into();
        }
        let body = serde_json::json!({ "items": [item] }).to_string();
        let auth = format!("Authorization: Bearer {TOKEN}\r\n");
        let (status, answer) = node.request("POST", "/api/publish", &auth, &body);
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        published.push(answer["results"][0]["id"].as_str().expect("an id").to_owned());
    }
    let seen: Vec<String> = (0..EVENTS)
        .map(|n| match subscriber.next() {
            Seen::Event { id, data } => {
                assert_eq!(data, format!("e{n}"));
                id
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, published, "the ids the publishers got are the subscriber's");
    seen
}

/// An id after the topic's last: the last one's sequence plus a few.
fn ahead_of(last: &str) -> String {
    let (ms, seq) = last.split_once('-').unwrap();
    format!("{ms}-{}", seq.parse::<u64>().unwrap() + 5)
}

/// `value` with every id of `ids` written `#N` (its place among them)
/// and `ahead` written `AHEAD`: what is left is the same on every bus.
fn normal(value: &Value, ids: &[String], ahead: &str) -> Value {
    match value {
        Value::String(s) => match ids.iter().position(|id| id == s) {
            Some(n) => Value::String(format!("#{n}")),
            None if s == ahead => Value::String("AHEAD".to_owned()),
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| normal(v, ids, ahead)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normal(v, ids, ahead)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Publishes, then asks `node` every question of the comparison: each
/// answer's label, status and body (ids written as their places).
fn answers(node: &Node) -> Vec<(String, u16, Value)> {
    let ids = publish_all(node);
    let ahead = ahead_of(&ids[EVENTS - 1]);
    let mut out = Vec::new();
    let mut ask = |label: String, target: String| -> Value {
        let (status, head, body) = get(node, &target);
        assert!(head.contains("content-type: application/json"), "{label}: {head}");
        if status == 200 {
            assert!(head.contains("cache-control: no-cache"), "{label}: {head}");
        }
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{label}: {body}"));
        out.push((label, status, normal(&json, &ids, &ahead)));
        json
    };
    let base = format!("/api/history?topic={TOPIC}");
    ask("everything held".into(), base.clone());
    ask("at most 1000".into(), format!("{base}&limit=1000"));
    // Page by page from the oldest held, two at a time.
    let mut since = String::new();
    for page in 0.. {
        assert!(page <= EVENTS, "paging does not end");
        let json = ask(format!("page {page}"), format!("{base}&limit=2&since={since}"));
        if json["more"] != true {
            break;
        }
        since = json["next"].as_str().unwrap().to_owned();
    }
    // Newest first, page by page, back to the oldest held.
    let mut since = String::new();
    for page in 0.. {
        assert!(page <= EVENTS, "paging does not end");
        let json = ask(
            format!("reverse page {page}"),
            format!("{base}&limit=2&reverse=true&since={since}"),
        );
        if json["more"] != true {
            break;
        }
        since = json["next"].as_str().unwrap().to_owned();
    }
    // From each id: dropped ones get the gap, the one just before the
    // backlog and the held ones exactly what follows; newest first, what
    // is held before it.
    for (n, id) in ids.iter().enumerate() {
        ask(format!("since #{n}"), format!("{base}&limit=2&since={id}"));
        ask(
            format!("reverse since #{n}"),
            format!("{base}&limit=2&since={id}&reverse=1"),
        );
    }
    ask(
        "reverse since ahead".into(),
        format!("{base}&reverse=true&since={ahead}"),
    );
    ask("since 0-0".into(), format!("{base}&limit=3&since=0-0"));
    ask("since ahead".into(), format!("{base}&since={ahead}"));
    ask("unknown topic".into(), "/api/history?topic=nothing.here".into());
    ask(
        "unknown topic, since".into(),
        format!("/api/history?topic=nothing.here&since={}", ids[3]),
    );
    ask("bad since".into(), format!("{base}&since=x"));
    ask("bad limit".into(), format!("{base}&limit=1001"));
    ask("bad reverse".into(), format!("{base}&reverse=yes"));
    ask("bad topic".into(), "/api/history?topic=a%20b".into());
    ask("no topic".into(), "/api/history".into());
    out
}

/// The answers of a `--memory` node: what every bus must match.
fn one_node(dir: &Path) -> Vec<(String, u16, Value)> {
    let node = start_node(dir, "one", &["--memory"]);
    let answers = answers(&node);
    // The answers are the kinds the comparison is meant to cover.
    let find = |label: &str| &answers.iter().find(|(l, ..)| l == label).unwrap().2;
    assert_eq!(
        find("everything held")["events"].as_array().unwrap().len(),
        BACKLOG
    );
    assert_eq!(find("everything held")["events"][0]["event"], "update");
    assert!(find("since #0")["gap"].is_object(), "{answers:?}");
    assert!(find("since #2")["gap"].is_null(), "{answers:?}");
    assert_eq!(find("since #4")["more"], true);
    assert!(find("since ahead")["gap"].is_object(), "{answers:?}");
    assert_eq!(
        find("reverse page 0")["events"][0]["id"],
        format!("#{}", EVENTS - 1)
    );
    assert_eq!(find("reverse since #4")["events"][0]["id"], "#3");
    assert!(answers.iter().any(|(_, status, _)| *status == 400));
    answers
}

/// `bus` answers as one node does, question by question.
pub(crate) fn same_as_one_node(bus: &str, dir: &Path, node: &Node) {
    let expected = one_node(dir);
    let got = answers(node);
    assert_eq!(got.len(), expected.len(), "{bus}: {got:#?}");
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected, "{bus}: {}", expected.0);
    }
}

/// While the bus does not answer: 503 with `Retry-After`.
pub(crate) fn unavailable(node: &Node) {
    let (status, head, body) = get(node, &format!("/api/history?topic={TOPIC}"));
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "unavailable",
        "{body}"
    );
}
