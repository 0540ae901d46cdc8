//! `tether serve`'s hook options end to end: the hub's connect and
//! subscribe decisions asked of a real backend process over HTTP
//! (`hook_backend.py`, Python's standard library), configured from a
//! `--config` file: who a cookie names and what it may read, a refusal's
//! status and reason, a backend too slow or gone (503 with Retry-After,
//! never an allow), a namespace that asks the backend for each
//! subscription; and the options that do not go together refused at
//! start.
//!
//! Skipped (with a printed reason) when `python3` is not installed.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{Process, address};
use temp_dir::TempDir;

/// Long enough for a loaded machine; only catches a hang.
const PATIENCE: Duration = Duration::from_secs(20);

const TOKEN: &str = "hooks-e2e-publish-token";

fn python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The backend: its process and where it listens.
fn backend(dir: &Path) -> (Process, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hook_backend.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(dir.join("asked.jsonl"));
    let (process, line) = Process::start(&mut command);
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port from the backend: {line:?}"));
    (process, port)
}

/// `tether serve --app hub` with `config` as its `--config` file.
fn tether(dir: &Path, config: &str) -> (Process, SocketAddr) {
    let file = dir.join("tether.toml");
    std::fs::write(&file, config).unwrap();
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
            "--memory",
        ])
        .arg("--config")
        .arg(&file)
        .args(["--log-level", "warn"]);
    let (process, line) = Process::start(&mut command);
    let addr = address(&line).unwrap_or_else(|| panic!("tether did not start: {line:?}"));
    (process, addr)
}

/// The file's hook keys, with the backend on `port`.
fn config(port: u16) -> String {
    format!(
        r#"publish-token = "{TOKEN}"
hook-connect = "http://127.0.0.1:{port}/connect"
hook-subscribe = "http://127.0.0.1:{port}/subscribe"
hook-publish = "http://127.0.0.1:{port}/publish"
hook-refresh = "http://127.0.0.1:{port}/refresh"
hook-rpc = "http://127.0.0.1:{port}/rpc"
hook-latest = "http://127.0.0.1:{port}/latest"
hook-timeout = 1
hook-forward-cookie = ["session"]
hook-forward-header = ["X-User"]
hook-workers = 4
namespace = ["chat.* subscribe=token", "room.* subscribe=hook", "vote.* publish=hook", "score.* publish=backend latest=on"]
"#
    )
}

/// The status, the head and as much of the body as came within a moment.
struct Answer {
    status: u16,
    head: String,
    body: String,
    stream: TcpStream,
}

/// Sends `request` on a new connection and reads the answer's head (and
/// what of the body is there).
fn send(addr: SocketAddr, request: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    let end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buf).expect("an answer");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        assert!(started.elapsed() < PATIENCE, "no answer");
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = String::from_utf8_lossy(&got[end + 4..]).into_owned();
    Answer {
        status,
        head,
        body,
        stream,
    }
}

fn events(addr: SocketAddr, topic: &str, headers: &str) -> Answer {
    send(
        addr,
        &format!(
            "GET /topics/{topic}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n"
        ),
    )
}

fn publish(addr: SocketAddr, topic: &str, data: &str) {
    let mut answer = send(
        addr,
        &format!(
            "POST /topics/{topic} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{data}",
            data.len()
        ),
    );
    let mut rest = String::new();
    let _ = answer.stream.read_to_string(&mut rest);
    assert_eq!(answer.status, 200, "{}{}{rest}", answer.head, answer.body);
}

/// Reads `stream` until `needle` has come.
fn read_until(answer: &mut Answer, needle: &str) {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while !answer.body.contains(needle) {
        let n = answer.stream.read(&mut buf).expect("more of the stream");
        assert!(n > 0, "the stream ended before {needle:?}: {:?}", answer.body);
        answer.body.push_str(&String::from_utf8_lossy(&buf[..n]));
        assert!(started.elapsed() < PATIENCE, "no {needle:?}");
    }
}

fn full_body(mut answer: Answer) -> String {
    let mut rest = String::new();
    let _ = answer.stream.read_to_string(&mut rest);
    answer.body + &rest
}

/// A WebSocket to `topic` with the `session` cookie `user`, upgraded.
fn upgrade(addr: SocketAddr, topic: &str, user: &str) -> TcpStream {
    let answer = send(
        addr,
        &format!(
            "GET /topics/{topic}/ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: session={user}\r\n\r\n"
        ),
    );
    assert_eq!(answer.status, 101, "{}", answer.head);
    answer.stream
}

/// A masked text frame (a client's), `text` shorter than 126 bytes.
fn masked_text(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[test]
fn the_backend_decides_who_connects_and_what_they_read() {
    if !python() {
        eprintln!("skipped: no python3 to run the backend");
        return;
    }
    let dir = TempDir::new("decides");
    let (mut backend, port) = backend(&dir.0);
    let (_tether, addr) = tether(&dir.0, &config(port));

    // The cookie names alice; her rights let her read chat.*, a namespace
    // that takes token rights.
    let mut alice = events(addr, "chat.lobby", "Cookie: theme=dark; session=alice\r\n");
    assert_eq!(alice.status, 200, "{}", alice.head);
    publish(addr, "chat.lobby", "hello alice");
    read_until(&mut alice, "data: hello alice");

    // Not what her rights leave out: chat.* needs them, the header
    // field's user has none.
    let bob = events(addr, "chat.lobby", "X-User: bob\r\nConnection: close\r\n");
    assert_eq!(bob.status, 403, "{}", bob.head);

    // No cookie, no header: the backend's refusal, its status and reason.
    let nobody = events(addr, "news", "Connection: close\r\n");
    assert_eq!(nobody.status, 401, "{}", nobody.head);
    assert!(full_body(nobody).contains("sign in first"));

    // A WebSocket too: the decision comes before the upgrade.
    let _socket = upgrade(addr, "chat.lobby", "alice");

    // room.* asks the backend for each subscription.
    let open = events(addr, "room.open", "Cookie: session=alice\r\n");
    assert_eq!(open.status, 200, "{}", open.head);
    let secret = events(
        addr,
        "room.secret",
        "Cookie: session=alice\r\nConnection: close\r\n",
    );
    assert_eq!(secret.status, 403, "{}", secret.head);
    assert!(full_body(secret).contains("members only"));

    // vote.* asks the backend for each publish: as it is, rewritten, or
    // refused with its reason (the WebSocket's in the order sent).
    let mut votes = events(addr, "vote.1", "Cookie: session=alice\r\n");
    assert_eq!(votes.status, 200, "{}", votes.head);
    let mut socket = upgrade(addr, "vote.1", "alice");
    for text in ["yes", "shout louder", "deny this", "no"] {
        socket.write_all(&masked_text(text)).unwrap();
    }
    read_until(&mut votes, "data: yes\n");
    read_until(&mut votes, "data: SHOUT LOUDER\n");
    read_until(&mut votes, "data: no\n");
    assert!(!votes.body.contains("deny this"), "{}", votes.body);
    let order = ["data: yes\n", "data: SHOUT LOUDER\n", "data: no\n"].map(|d| votes.body.find(d).unwrap());
    assert!(order.is_sorted(), "{}", votes.body);

    // A call, by the subject the connect hook named: its result alone.
    let body = r#"{"method":"echo","data":[1,"a"]}"#;
    let call = send(
        addr,
        &format!(
            "POST /rpc HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: session=alice\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(call.status, 200, "{}", call.head);
    let result: serde_json::Value = serde_json::from_str(&full_body(call)).unwrap();
    assert_eq!(
        result,
        serde_json::json!({"data": {"subject": "alice", "echo": [1, "a"]}})
    );

    // A latest-value topic with no event: the backend's current value
    // is published to it, so the first subscriber and one after it get
    // the same event, and the backend is asked once.
    let mut first = events(addr, "score.cup", "Cookie: session=alice\r\n");
    assert_eq!(first.status, 200, "{}", first.head);
    read_until(&mut first, "event: score\ndata: {");
    read_until(&mut first, "}\n\n");
    assert!(
        first.body.contains(r#""home":0"#) && first.body.contains(r#""away":0"#),
        "{}",
        first.body
    );
    let id = |body: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix("id: "))
            .map(str::to_owned)
    };
    let mut second = events(addr, "score.cup", "Cookie: session=alice\r\n");
    read_until(&mut second, "event: score\n");
    assert_eq!(id(&second.body), id(&first.body), "{}", second.body);
    // A topic the backend has no value of: waited for.
    let mut none = events(addr, "score.none", "Cookie: session=alice\r\n");
    assert_eq!(none.status, 200, "{}", none.head);
    publish(addr, "score.none", "1-0");
    read_until(&mut none, "data: 1-0\n");
    assert!(!none.body.contains("event: score"), "{}", none.body);

    // The backend was told what the file names, and only that. The
    // question about score.none was put as its subscriber came (before
    // the event that answered it): wait until the backend has written it.
    let started = Instant::now();
    let asked = loop {
        let asked = std::fs::read_to_string(dir.0.join("asked.jsonl")).unwrap();
        let none_asked = |l: &str| l.contains(r#""path": "/latest""#) && l.contains("score.none");
        if asked.lines().any(none_asked) && asked.ends_with('\n') {
            break asked;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "score.none never asked about: {asked}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let first: serde_json::Value = serde_json::from_str(asked.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], "/connect");
    assert_eq!(first["body"]["transport"], "sse");
    assert_eq!(first["body"]["topic"], "chat.lobby");
    assert_eq!(first["body"]["cookies"], serde_json::json!({"session": "alice"}));
    assert_eq!(first["body"]["headers"], serde_json::json!({}));
    assert!(asked.contains(r#""headers": {"x-user": "bob"}"#), "{asked}");
    assert!(asked.contains(r#""path": "/subscribe""#), "{asked}");
    let latest: Vec<&str> = asked
        .lines()
        .filter(|l| l.contains(r#""path": "/latest""#))
        .collect();
    assert_eq!(latest.len(), 2, "{asked}");
    assert!(latest[0].contains(r#""topic": "score.cup""#), "{asked}");

    // Too slow: 503 with Retry-After after the timeout, not an allow.
    let started = Instant::now();
    let slow = events(addr, "news", "Cookie: session=slow\r\nConnection: close\r\n");
    assert_eq!(slow.status, 503, "{}", slow.head);
    assert!(
        slow.head.to_ascii_lowercase().contains("retry-after:"),
        "{}",
        slow.head
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "answered before the timeout"
    );

    // Gone: 503 as well, and the open stream goes on.
    backend.kill();
    let down = events(addr, "news", "Cookie: session=alice\r\nConnection: close\r\n");
    assert_eq!(down.status, 503, "{}", down.head);
    publish(addr, "chat.lobby", "still here");
    read_until(&mut alice, "data: still here");
}

#[test]
fn hook_options_that_do_not_go_together_are_refused_at_start() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--hook-refresh", "http://127.0.0.1:9/r"],
            "--hook-refresh needs --hook-connect",
        ),
        (
            &["--namespace", "vote.* publish=hook"],
            "publish=hook needs --hook-publish",
        ),
        (
            &["--namespace", "room.* subscribe=hook"],
            "subscribe=hook needs --hook-subscribe",
        ),
        (&["--hook-forward-cookie", "session"], "need --hook-connect"),
        (
            &["--hook-connect", "https://backend.example/connect"],
            "--hook-connect",
        ),
        (
            &["--hook-connect", "http://127.0.0.1:9/c", "--hook-timeout", "0"],
            "--hook-timeout",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["serve", "--app", "hub", "--port", "0", "--memory"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tether serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn the_books_hook_example_is_a_file_tether_takes() {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/src/guide/hooks.md"
    ))
    .unwrap();
    let example = page
        .split("```toml file=hooks.toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the page's example");
    let dir = TempDir::new("readme");
    let file = dir.0.join("hooks.toml");
    std::fs::write(&file, example).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("run tether check-config");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_long_poll_the_backend_let_in_times_out_with_its_empty_200() {
    if !python() {
        eprintln!("skipped: no python3 to run the backend");
        return;
    }
    let dir = TempDir::new("hooks-poll");
    let (_backend, port) = backend(&dir.0);
    let (_tether, addr) = tether(&dir.0, &config(port));
    // Asked of the connect hook and then the subscribe hook, both
    // allowing: at once, again, and after a wait that runs out.
    for timeout in ["0", "0", "0.2"] {
        let answer = send(
            addr,
            &format!(
                "GET /topics/room.9/poll?timeout={timeout} HTTP/1.1\r\nHost: test\r\n\
                 Cookie: session=alice\r\nConnection: close\r\n\r\n"
            ),
        );
        let status = answer.status;
        let body = full_body(answer);
        assert_eq!(status, 200, "timeout={timeout}: {body}");
        assert!(body.contains("\"events\":[]"), "{body}");
    }
}
