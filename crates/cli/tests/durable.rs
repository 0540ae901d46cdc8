//! `tether serve --app hub --data-dir DIR`: events published before a
//! stop (SIGTERM, or `kill -9` during a storm of publishes with
//! `--fsync always`) are replayed after a restart to an event-stream
//! subscriber that resumes with its old `Last-Event-ID`, exactly, with no
//! gap signal; new publishes get greater ids.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_sse::{Item, Parser};

use process::{Process, address};
use temp_dir::TempDir;

const TOKEN: &str = "durable-token";
const PATIENCE: Duration = Duration::from_secs(15);

/// A `tether serve --app hub --data-dir DIR` process.
struct Server {
    process: Process,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(data: &Path, fsync: &str, log: &Path) -> Server {
        Server::start_with(data, fsync, log, &[])
    }

    /// With more arguments.
    fn start_with(data: &Path, fsync: &str, log: &Path, more: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
        command
            .args([
                "serve",
                "--app",
                "hub",
                "--port",
                "0",
                "--threads",
                "2",
                "--log-level",
                "info",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(["--fsync", fsync])
            .args(more)
            .env("TETHER_PUBLISH_TOKEN", TOKEN)
            .stderr(std::fs::File::create(log).unwrap());
        let (process, line) = Process::start(&mut command);
        let addr = address(&line).unwrap_or_else(|| {
            panic!(
                "did not start: {line:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        Server {
            process,
            addr,
            log: log.to_path_buf(),
        }
    }

    /// SIGTERM, and waits for the process to end.
    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.process.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.process.child.wait().unwrap();
        assert!(status.success(), "{status:?}: {}", self.log());
    }

    /// `kill -9`.
    fn kill(&mut self) {
        self.process.kill();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Publishes over HTTP on a connection of its own: the id, or the status.
fn publish(addr: SocketAddr, topic: &str, data: &str) -> Result<String, u16> {
    let mut stream = TcpStream::connect(addr).map_err(|_| 0u16)?;
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST /topics/{topic} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n{data}",
        data.len()
    );
    stream.write_all(head.as_bytes()).map_err(|_| 0u16)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|_| 0u16)?;
    let status: u16 = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(status);
    }
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    Ok(json["id"].as_str().unwrap().to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Event {
        id: String,
        data: String,
    },
    /// The gap signal, with its data.
    Gap(String),
}

/// Subscribes over SSE with `Last-Event-ID` and collects `count` items
/// (events, and gap signals if any come).
fn subscribe(addr: SocketAddr, topic: &str, last_id: &str, count: usize) -> Vec<Seen> {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "GET /topics/{topic}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\
         Last-Event-ID: {last_id}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed early");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut parser = Parser::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < count {
        match parser.poll() {
            Some(Ok(Item::Event(event))) if event.event_type() == "gap" => {
                seen.push(Seen::Gap(event.data().to_owned()))
            }
            Some(Ok(Item::Event(event))) => seen.push(Seen::Event {
                id: event.last_event_id().to_owned(),
                data: event.data().to_owned(),
            }),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("a malformed event stream: {e:?}"),
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "only {} of {count} within {PATIENCE:?}: {seen:?}",
                    seen.len()
                );
                stream.set_read_timeout(Some(left)).unwrap();
                let mut buf = [0u8; 8192];
                match stream.read(&mut buf) {
                    Ok(0) => panic!("the stream ended after {seen:?}"),
                    Ok(n) => parser.feed(&buf[..n]),
                    Err(e) => panic!("reading the event stream after {} items: {e}", seen.len()),
                }
            }
        }
    }
    seen
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap();
    (ms.parse().unwrap(), seq.parse().unwrap())
}

#[test]
fn events_survive_a_graceful_restart() {
    let dir = TempDir::new("graceful");
    let data = dir.0.join("data");
    let log = dir.0.join("server.log");
    let mut server = Server::start(&data, "interval=10", &log);
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(publish(server.addr, "news", &format!("event {n}")).unwrap());
    }
    // A topic sequenced by the other loop too.
    let other: Vec<String> = (0..3)
        .map(|n| publish(server.addr, "weather", &format!("w{n}")).unwrap())
        .collect();
    server.terminate();

    let mut server = Server::start(&data, "interval=10", &log);
    // A client that had seen event 4 resumes: events 5 to 19, no gap.
    let seen = subscribe(server.addr, "news", &ids[4], 15);
    let expected: Vec<Seen> = (5..20)
        .map(|n| Seen::Event {
            id: ids[n].clone(),
            data: format!("event {n}"),
        })
        .collect();
    assert_eq!(seen, expected);
    let seen = subscribe(server.addr, "weather", "0-0", 3);
    assert_eq!(
        seen.iter()
            .map(|s| match s {
                Seen::Event { id, .. } => id.clone(),
                Seen::Gap(_) => "gap".into(),
            })
            .collect::<Vec<_>>(),
        other
    );
    // New publishes come after the old ones, and reach a subscriber that
    // has every old event; a second restart keeps both epochs' events.
    let new = publish(server.addr, "news", "after").unwrap();
    assert!(parse_id(&new) > parse_id(&ids[19]), "{new} after {}", ids[19]);
    let seen = subscribe(server.addr, "news", &ids[19], 1);
    assert_eq!(
        seen,
        [Seen::Event {
            id: new.clone(),
            data: "after".into()
        }]
    );
    server.terminate();
    let server = Server::start(&data, "interval=10", &log);
    let seen = subscribe(server.addr, "news", &ids[17], 3);
    let got: Vec<&Seen> = seen.iter().collect();
    assert_eq!(
        got,
        [
            &Seen::Event {
                id: ids[18].clone(),
                data: "event 18".into()
            },
            &Seen::Event {
                id: ids[19].clone(),
                data: "event 19".into()
            },
            &Seen::Event {
                id: new,
                data: "after".into()
            },
        ]
    );
}

/// `GET /api/history?QUERY` with the publish token: the JSON answer.
fn history(addr: SocketAddr, query: &str) -> serde_json::Value {
    api_get(addr, &format!("history?{query}"))
}

/// `GET /api/WHAT` with the publish token: the JSON answer.
fn api_get(addr: SocketAddr, what: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET /api/{what} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap()
}

/// The events' data of a history page.
fn history_data(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_server_api_reads_history_and_topics_from_the_log_before_and_after_a_restart() {
    let dir = TempDir::new("history");
    let data = dir.0.join("data");
    let log = dir.0.join("server.log");
    let mut server = Server::start(&data, "interval=10", &log);
    let ids: Vec<String> = (0..5)
        .map(|n| publish(server.addr, "news", &format!("n{n}")).unwrap())
        .collect();
    // Asked several times: the connections land on both loops, and each
    // asks the topic's sequencer.
    for _ in 0..4 {
        let page = history(server.addr, "topic=news&limit=2");
        assert_eq!(history_data(&page), ["n0", "n1"], "{page}");
        assert_eq!(page["next"], ids[1].as_str());
        assert_eq!(page["more"], true);
        let page = history(server.addr, &format!("topic=news&since={}", ids[1]));
        assert_eq!(history_data(&page), ["n2", "n3", "n4"], "{page}");
        assert_eq!(page["more"], false);
        let none = history(server.addr, "topic=nothing.here");
        assert!(history_data(&none).is_empty(), "{none}");
    }
    // Listed with its backlog, though no one subscribes to it.
    let topics = api_get(server.addr, "topics");
    let listed: Vec<(&str, u64)> = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().unwrap(),
                t["backlog_events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("news", 5)], "{topics}");
    server.terminate();
    let server = Server::start(&data, "interval=10", &log);
    let info = api_get(server.addr, "topics/info?topic=news");
    assert_eq!(info["last_id"], ids[4].as_str(), "{info}");
    let page = history(server.addr, &format!("topic=news&since={}", ids[2]));
    assert_eq!(history_data(&page), ["n3", "n4"], "{page}");
    assert!(page["gap"].is_null(), "{page}");
}

/// The segment file of the data directory that holds the most bytes
/// (the one the topic's loop wrote).
fn largest_segment(data: &Path) -> PathBuf {
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(data)
        .unwrap()
        .flat_map(|entry| std::fs::read_dir(entry.unwrap().path()).into_iter().flatten())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .map(|path| (std::fs::metadata(&path).unwrap().len(), path))
        .collect();
    segments.sort();
    segments.pop().unwrap().1
}

/// The reproduction: 3000 events of 1 KiB, a byte flipped in the
/// middle of their segment while the server is stopped. After a restart
/// the flip costs the one event it hit: a client resuming from the first
/// event gets the gap signal naming it, then every other event, in order;
/// the damaged bytes are kept beside the segment and counted in /metrics.
#[test]
fn a_flipped_byte_costs_one_event_and_a_resume_across_it_gets_the_gap() {
    let dir = TempDir::new("flip");
    let data = dir.0.join("data");
    let log = dir.0.join("server.log");
    // A backlog (and an output bound) that hold every event, so that only
    // the damage can cost one.
    let room = [
        "--backlog-events",
        "4000",
        "--backlog-bytes",
        "33554432",
        "--max-output",
        "67108864",
    ];
    let mut server = Server::start_with(&data, "never", &log, &room);
    let body = "x".repeat(1024);
    let ids: Vec<String> = (1..=3000)
        .map(|n| publish(server.addr, "news", &format!("{n} {body}")).unwrap())
        .collect();
    server.terminate();

    let segment = largest_segment(&data);
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();

    let server = Server::start_with(&data, "never", &log, &room);
    let seen = subscribe(server.addr, "news", &ids[0], 1 + 2998);
    let Seen::Gap(gap) = &seen[0] else {
        panic!("no gap signal first: {:?}", &seen[..3])
    };
    let numbers: Vec<usize> = seen[1..]
        .iter()
        .map(|s| match s {
            Seen::Event { data, .. } => data.split(' ').next().unwrap().parse().unwrap(),
            Seen::Gap(_) => panic!("a second gap signal"),
        })
        .collect();
    let lost = (2..=3000).find(|n| !numbers.contains(n)).unwrap();
    let expected: Vec<usize> = (2..=3000).filter(|&n| n != lost).collect();
    assert_eq!(numbers, expected);
    let gap: serde_json::Value = serde_json::from_str(gap).unwrap();
    assert_eq!(gap["lost"]["first"], ids[lost - 1].as_str(), "{gap}");
    assert_eq!(gap["lost"]["last"], ids[lost - 1].as_str(), "{gap}");
    assert_eq!(gap["resume"], ids[0].as_str(), "{gap}");
    // Resuming from the last event: nothing missed, no gap.
    let new = publish(server.addr, "news", "after").unwrap();
    let seen = subscribe(server.addr, "news", &ids[2999], 1);
    assert_eq!(
        seen,
        [Seen::Event {
            id: new,
            data: "after".into()
        }]
    );
    let damaged = segment.with_extension("log.damaged");
    assert!(damaged.exists(), "the damaged bytes are kept");
    // Each loop shows its own log's figures, and any loop may answer:
    // ask until the one that owns the damaged segment does.
    let owner = segment.parent().unwrap().file_name().unwrap().to_str().unwrap();
    let series = format!(
        "tether_log_lost_records{{loop=\"{}\"}}",
        owner.trim_start_matches("loop-")
    );
    let line = (0..200)
        .find_map(|_| {
            get(server.addr, "/metrics")
                .lines()
                .find(|l| l.starts_with(&series))
                .map(str::to_owned)
        })
        .expect("the owning loop answers /metrics");
    assert_eq!(line, format!("{series} 1"));
    assert!(server.log().contains("records lost"), "{}", server.log());
}

/// A plain GET: the body.
fn get(addr: SocketAddr, path: &str) -> String {
    get_with_status(addr, path).1
}

/// A plain GET: the status line and the body.
fn get_with_status(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}

/// A multi-topic long poll "from nowhere" (`timeout=0`: where is every
/// topic now) on a node where no one follows its topics: the node loads
/// each topic's history from the log to answer, and lets go of the topics
/// when it answers. Its `next` must be each topic's head, read before the
/// topics are let go of: a cursor without positions would make the next
/// poll start from nowhere again, past what was published meanwhile.
#[test]
fn a_multi_topic_poll_from_nowhere_answers_every_topics_head_from_the_log() {
    let dir = TempDir::new("poll-nowhere");
    let data = dir.0.join("data");
    let log = dir.0.join("server.log");
    let mut server = Server::start(&data, "interval=10", &log);
    publish(server.addr, "sport", "goal").unwrap();
    publish(server.addr, "news", "rain").unwrap();
    server.terminate();
    let mut server = Server::start(&data, "interval=10", &log);
    for round in 0..4 {
        let (status, body) = get_with_status(server.addr, "/poll?topic=news&topic=sport&timeout=0");
        assert!(status.contains(" 200 "), "{status}\n{body}");
        let first: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(first["events"], serde_json::json!([]), "{body}");
        let next = first["next"].as_str().unwrap().to_owned();
        let penalty = format!("penalty {round}");
        publish(server.addr, "sport", &penalty).unwrap();
        let (status, body) =
            get_with_status(server.addr, &format!("/poll?topic=news&topic=sport&since={next}"));
        assert!(status.contains(" 200 "), "{status}\n{body}");
        let second: serde_json::Value = serde_json::from_str(&body).unwrap();
        let got: Vec<&str> = second["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            [penalty.as_str()],
            "round {round}: polled from {next}: {body}"
        );
    }
    server.terminate();
}

#[test]
fn acknowledged_events_survive_kill_9_with_fsync_always() {
    publish_storm_killed_and_replayed("always");
}

/// Killing the process loses nothing answered in the default mode either:
/// every event is written to the file before it is answered, and only a
/// power loss or a kernel crash can lose what was not synced yet.
#[test]
fn acknowledged_events_survive_kill_9_with_the_default_fsync_interval() {
    publish_storm_killed_and_replayed("interval=10");
}

/// Four publishers storm a topic; the server is killed (`kill -9`) after
/// at least 200 acknowledgements, started again with the same `--fsync`,
/// and every acknowledged event must be replayed, in order, without gap.
fn publish_storm_killed_and_replayed(fsync: &str) {
    let dir = TempDir::new(&format!("kill-{}", fsync.replace('=', "")));
    let data = dir.0.join("data");
    let log = dir.0.join("server.log");
    let mut server = Server::start(&data, fsync, &log);
    let addr = server.addr;
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 5000 {
                    let data = format!("p{p} n{n}");
                    match publish(addr, "storm", &data) {
                        Ok(id) => acknowledged.lock().unwrap().push((id, data)),
                        Err(_) => break,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let start = Instant::now();
    while acknowledged.lock().unwrap().len() < 200 && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Mid-storm: no goodbye.
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        publisher.join().unwrap();
    }
    let mut acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "{} acknowledged", acknowledged.len());
    acknowledged.sort_by_key(|(id, _)| parse_id(id));

    let server = Server::start(&data, fsync, &log);
    // Everything from the beginning: every acknowledged event is there, in
    // order (an event written but not yet acknowledged when the process
    // died may come too), and no gap.
    let last = parse_id(&acknowledged.last().unwrap().0);
    // One run of the server, one epoch: the ids up to the last
    // acknowledged one are its sequence numbers.
    let seen: Vec<(String, String)> = subscribe(server.addr, "storm", "0-0", last.1 as usize)
        .into_iter()
        .map(|s| match s {
            Seen::Event { id, data } => (id, data),
            Seen::Gap(_) => panic!("a gap signal"),
        })
        .collect();
    let mut replayed = seen.iter();
    for event in &acknowledged {
        assert!(
            replayed.any(|r| r == event),
            "acknowledged {event:?} not replayed in order"
        );
    }
    // Ids run without a hole.
    for pair in seen.windows(2) {
        let (a, b) = (parse_id(&pair[0].0), parse_id(&pair[1].0));
        assert_eq!((a.0, a.1 + 1), b, "{pair:?}");
    }
    let new = publish(server.addr, "storm", "after").unwrap();
    assert!(parse_id(&new) > last);
    assert!(server.log().contains("records"), "{}", server.log());
}
