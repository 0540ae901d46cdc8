//! `tether serve --data-dir DIR --namespace 'score.* latest=on'`: after a
//! restart, a topic's latest event comes from the log to a subscriber
//! from nowhere (an event stream, a long poll, a multi-topic long poll),
//! then the live ones; a topic outside the namespace gets nothing until
//! its next event, and a resume from an id is exact, as before.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tether_sse::{Item, Parser};

use process::{Process, request, serve};
use temp_dir::TempDir;

const TOKEN: &str = "latest-durable-token";
const PATIENCE: Duration = Duration::from_secs(15);

/// The hub on two loops, keeping its topics in `data`.
fn start(data: &Path, log: &Path) -> (Process, SocketAddr) {
    let data = data.to_str().unwrap();
    let args = [
        "--app",
        "hub",
        "--port",
        "0",
        "--threads",
        "2",
        "--data-dir",
        data,
        "--namespace",
        "score.* publish=backend latest=on",
    ];
    let (process, addr, _) = serve(&args, &[("TETHER_PUBLISH_TOKEN", TOKEN)], Some(log));
    (process, addr)
}

/// SIGTERM, and the process ended well.
fn terminate(mut process: Process) {
    let pid = process.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(process.child.wait().unwrap().success());
}

fn publish(addr: SocketAddr, topic: &str, data: &str) -> String {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, body) = request(PATIENCE, addr, "POST", &format!("/topics/{topic}"), &auth, data);
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

/// `GET TARGET`: the status and the body as JSON.
fn get(addr: SocketAddr, target: &str) -> (u16, Value) {
    let (status, body) = request(PATIENCE, addr, "GET", target, "", "");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

/// A poll answer's events as (topic, data).
fn polled(body: &Value) -> Vec<(String, String)> {
    let events = body["events"].as_array().unwrap_or_else(|| panic!("{body}"));
    events
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

/// An event stream, read one event at a time.
struct Stream {
    stream: TcpStream,
    parser: Parser,
}

impl Stream {
    /// `GET TARGET` with `headers`: the response head read, 200 checked.
    fn open(addr: SocketAddr, target: &str, headers: &str) -> Stream {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let head =
            format!("GET {target} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed early");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Stream {
            stream,
            parser: Parser::new(),
        }
    }

    /// The next event: its id and data.
    fn next(&mut self) -> (String, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.parser.poll() {
                Some(Ok(Item::Event(event))) => {
                    return (event.last_event_id().to_owned(), event.data().to_owned());
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("a malformed event stream: {e:?}"),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within {PATIENCE:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the stream ended"),
                Ok(n) => self.parser.feed(&buf[..n]),
                Err(e) => panic!("reading the event stream: {e}"),
            }
        }
    }
}

#[test]
fn the_latest_event_comes_from_the_log_after_a_restart() {
    let dir = TempDir::new("latest");
    let (data, log) = (dir.0.join("data"), dir.0.join("server.log"));
    let (server, addr) = start(&data, &log);
    let first = publish(addr, "score.final", "1-0");
    let latest = publish(addr, "score.final", "2-1");
    publish(addr, "news", "old news");
    terminate(server);

    let (server, addr) = start(&data, &log);
    // A long poll from nowhere: answered at once with the latest event,
    // however long it may wait; its `next` is that event's id.
    let (status, body) = get(addr, "/topics/score.final/poll?timeout=20");
    assert_eq!(
        (status, polled(&body)),
        (200, vec![pair("score.final", "2-1")]),
        "{body}"
    );
    assert_eq!(body["next"], latest.as_str());
    let (_, body) = get(addr, "/topics/news/poll?timeout=0");
    assert_eq!(polled(&body), [], "{body}");
    let (_, body) = get(addr, "/poll?topic=news&topic=score.final&timeout=20");
    assert_eq!(polled(&body), [pair("score.final", "2-1")], "{body}");
    // Event streams from nowhere, inside the namespace and out, and one
    // resuming from the first id.
    let mut late = Stream::open(addr, "/topics/score.final/events", "");
    assert_eq!(late.next(), (latest.clone(), "2-1".to_owned()));
    let mut news = Stream::open(addr, "/topics/news/events", "");
    let mut resumed = Stream::open(
        addr,
        "/topics/score.final/events",
        &format!("Last-Event-ID: {first}\r\n"),
    );
    let fresh = publish(addr, "news", "fresh news");
    let next = publish(addr, "score.final", "3-1");
    assert_eq!(news.next(), (fresh, "fresh news".to_owned()));
    assert_eq!(late.next(), (next.clone(), "3-1".to_owned()));
    assert_eq!(resumed.next(), (latest, "2-1".to_owned()));
    assert_eq!(resumed.next(), (next, "3-1".to_owned()));
    terminate(server);
}
