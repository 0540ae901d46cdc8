//! A graceful shutdown keeps what the server promised: a publish answered
//! `200` reaches every subscriber connected when it was made, on every
//! loop; a long poll in flight gets an answer; a publish that comes after
//! the drain began gets `503` with `Retry-After`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{HttpConn, SseClient, WsClient, config};
use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::{Cluster, Handle, Handshake};
use tether_ws::Event;

const TOKEN: &str = "shutdown-token";
const TOPIC: &str = "storm";

/// A hub of `loops` loops on its own thread.
struct Hub {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Hub {
    fn start(loops: usize, poll_timeout: Duration) -> Hub {
        Hub::start_with(loops, poll_timeout, false)
    }

    /// With `signals`, SIGTERM starts the shutdown (one loop takes the
    /// signal, the others follow).
    fn start_with(loops: usize, poll_timeout: Duration, signals: bool) -> Hub {
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.poll_timeout = poll_timeout;
        let shared = HubShared::new(settings, loops);
        let mut config = config();
        config.shutdown_timeout = Duration::from_secs(10);
        let mut cluster = Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i)).expect("bind");
        if signals {
            cluster.handle_signals().expect("signal handlers");
        }
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        let thread = Some(thread::spawn(move || cluster.run()));
        Hub { addr, handle, thread }
    }

    fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("no loop panicked")
                .expect("every loop shut down cleanly");
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a publisher saw of one publish.
#[derive(Debug)]
enum Outcome {
    /// `200`, with the event's id.
    Acknowledged(String),
    /// `503` with `Retry-After`.
    Refused,
    /// The connection ended without an answer.
    Unanswered,
}

/// Publishes on one keep-alive connection until the server stops taking
/// publishes; returns what each publish got.
fn publish_until_refused(addr: SocketAddr, publisher: usize) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return outcomes;
    };
    stream
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("read timeout");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    for n in 0.. {
        let body = format!("p{publisher}-{n}");
        let request = format!(
            "POST /topics/{TOPIC} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(request.as_bytes()).is_err() {
            outcomes.push(Outcome::Unanswered);
            break;
        }
        let Some((status, closes, retry_after, body)) = read_response(&mut stream, &mut buf) else {
            outcomes.push(Outcome::Unanswered);
            break;
        };
        match status {
            200 => {
                let json: Value = serde_json::from_slice(&body).expect("a JSON answer");
                let id = json["id"].as_str().expect("the event's id").to_owned();
                outcomes.push(Outcome::Acknowledged(id));
            }
            503 => {
                assert!(retry_after, "a 503 says when to come back");
                outcomes.push(Outcome::Refused);
                break;
            }
            other => panic!("publish answered {other}: {:?}", String::from_utf8_lossy(&body)),
        }
        if closes {
            break;
        }
    }
    outcomes
}

/// Reads one response: status, `Connection: close`, `Retry-After`, body.
/// `None` if the connection ends first.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool, bool, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buf).expect("a well-formed response") {
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let length: usize = header("content-length")?.parse().expect("a Content-Length");
            if buf.len() >= head_len + length {
                let status = response.code.expect("a status");
                let closes = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let retry_after = header("retry-after").is_some();
                let body = buf[head_len..head_len + length].to_vec();
                buf.drain(..head_len + length);
                return Some((status, closes, retry_after, body));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a publish's answer: {e}"),
        }
    }
}

/// The ids a WebSocket subscriber receives until the server closes.
fn ws_ids(mut client: WsClient) -> HashSet<String> {
    let mut ids = HashSet::new();
    while let Some(event) = client.next_event() {
        match event {
            Event::Message(message) => {
                let json: Value = serde_json::from_str(message.as_text().expect("text")).expect("JSON");
                if let Some(id) = json["id"].as_str() {
                    ids.insert(id.to_owned());
                }
            }
            Event::Close(_) => {}
            _ => {}
        }
    }
    ids
}

/// The ids an event-stream subscriber receives until the stream ends.
fn sse_ids(mut client: SseClient) -> HashSet<String> {
    client
        .read_to_end()
        .into_iter()
        .map(|event| event.last_event_id().to_owned())
        .collect()
}

/// One round: subscribers on every loop, a publish storm from several
/// keep-alive publishers, and a shutdown in the middle of it. Returns how
/// many publishes were acknowledged.
fn storm_and_shut_down(loops: usize, round: u64, by_signal: bool) -> usize {
    const PUBLISHERS: usize = 4;
    const SUBSCRIBERS: usize = 4;
    let hub = Hub::start_with(loops, Duration::from_secs(25), by_signal);
    let mut ws = Vec::new();
    let mut sse = Vec::new();
    for _ in 0..SUBSCRIBERS {
        // Subscribed once the upgrade (or the stream's head) is answered.
        ws.push(WsClient::connect(hub.addr, &format!("/topics/{TOPIC}/ws")));
        let stream = SseClient::connect(hub.addr, &format!("/topics/{TOPIC}/events"), "");
        assert_eq!(stream.response.status, 200);
        sse.push(stream);
    }
    let readers: Vec<thread::JoinHandle<HashSet<String>>> = ws
        .into_iter()
        .map(|c| thread::spawn(move || ws_ids(c)))
        .chain(sse.into_iter().map(|c| thread::spawn(move || sse_ids(c))))
        .collect();
    let started = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let addr = hub.addr;
            let started = started.clone();
            thread::spawn(move || {
                started.store(true, Ordering::Relaxed);
                publish_until_refused(addr, p)
            })
        })
        .collect();
    while !started.load(Ordering::Relaxed) {
        thread::yield_now();
    }
    // Land the shutdown at a different point of the storm each round.
    thread::sleep(Duration::from_millis(5 + (round * 7) % 40));
    if by_signal {
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).expect("raise SIGTERM");
    } else {
        hub.handle.shutdown();
    }

    let outcomes: Vec<Outcome> = publishers
        .into_iter()
        .flat_map(|p| p.join().expect("a publisher"))
        .collect();
    let received: Vec<HashSet<String>> = readers
        .into_iter()
        .map(|r| r.join().expect("a subscriber"))
        .collect();
    hub.join();

    let acknowledged: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Acknowledged(id) => Some(id),
            _ => None,
        })
        .collect();
    for (i, ids) in received.iter().enumerate() {
        let missing: Vec<&&String> = acknowledged
            .iter()
            .filter(|id| !ids.contains(id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{loops} loop(s), round {round}: subscriber {i} never received acknowledged {missing:?} \
             (it got {} events; outcomes {outcomes:?})",
            ids.len()
        );
    }
    acknowledged.len()
}

/// Several rounds for each number of loops.
fn storms(loop_counts: &[usize], rounds: u64, by_signal: bool) {
    for &loops in loop_counts {
        let acknowledged: usize = (0..rounds)
            .map(|round| storm_and_shut_down(loops, round, by_signal))
            .sum();
        // The storm ran before the shutdown: the checks had something to
        // check.
        assert!(acknowledged > 0, "{loops} loop(s): no publish was acknowledged");
    }
}

#[test]
fn every_acknowledged_publish_reaches_every_subscriber_through_a_shutdown() {
    storms(&[1, 2, 3], 8, false);
}

/// The same through SIGTERM, which reaches one loop first. The only test
/// of this binary that installs signal handlers: the signal goes to the
/// whole process.
#[test]
fn every_acknowledged_publish_reaches_every_subscriber_through_sigterm() {
    storms(&[1, 2], 6, true);
}

#[test]
fn a_long_poll_in_flight_is_answered_at_shutdown() {
    let hub = Hub::start(2, Duration::from_secs(60));
    let mut polls: Vec<HttpConn> = (0..4)
        .map(|_| {
            let mut conn = HttpConn::connect(hub.addr);
            conn.request("GET", "/topics/quiet/poll?timeout=60", "");
            conn
        })
        .collect();
    // Time for the requests to arrive and wait.
    thread::sleep(Duration::from_millis(200));
    hub.handle.shutdown();
    for conn in &mut polls {
        let response = conn.response();
        assert_eq!(
            response.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(response.header("retry-after").is_some());
        assert!(response.closes());
        let json: Value = serde_json::from_slice(&response.body).expect("JSON");
        assert_eq!(json["events"], Value::Array(Vec::new()));
        conn.expect_eof();
    }
    hub.join();
}

#[test]
fn a_publish_after_the_drain_began_is_refused_with_retry_after() {
    let hub = Hub::start(1, Duration::from_secs(60));
    let mut publisher = HttpConn::connect(hub.addr);
    publisher.request("GET", "/healthz", "");
    assert_eq!(publisher.response().status, 200);
    // Half a request before the shutdown, the rest after: the connection
    // is not idle, so it is not closed under the request.
    let body = "late";
    let head = format!(
        "POST /topics/{TOPIC} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    publisher.send(head.as_bytes());
    thread::sleep(Duration::from_millis(100));
    hub.handle.shutdown();
    thread::sleep(Duration::from_millis(100));
    publisher.send(format!("\r\n{body}").as_bytes());
    let response = publisher.response();
    assert_eq!(
        response.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(response.closes());
    publisher.expect_eof();
    hub.join();
}
