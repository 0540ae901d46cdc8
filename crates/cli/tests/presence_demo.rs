//! The demo's chat room (the page's `room.lobby`) over HTTP: a signed-in
//! visitor is listed by name in the room's presence and leaves with the
//! connection; what was said (through `/demo/say`) is still the room's
//! history after the server is killed and started again on the same data
//! directory (the durable log, the demo's default); and the page asks for
//! both.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "serve/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use process::{Process, address, request};

/// The page's room when its address names none, and its topic.
const ROOM: &str = "lobby";
const TOPIC: &str = "room.lobby";
const PATIENCE: Duration = Duration::from_secs(15);

/// `tether serve --app demo` on `data_dir`.
struct Demo {
    _process: Process,
    addr: SocketAddr,
}

impl Demo {
    fn start(data_dir: &Path) -> Demo {
        let (process, line) = Process::start(
            Command::new(env!("CARGO_BIN_EXE_tether"))
                .args(["serve", "--app", "demo", "--port", "0", "--threads", "2"])
                .arg("--data-dir")
                .arg(data_dir)
                .args(["--log-level", "warn"])
                .stderr(Stdio::null()),
        );
        let addr = address(&line).unwrap_or_else(|| panic!("the demo did not start: {line:?}"));
        Demo {
            _process: process,
            addr,
        }
    }

    /// One request on its own connection: the status and the body.
    fn request(&self, method: &str, target: &str, headers: &str, body: &str) -> (u16, String) {
        request(PATIENCE, self.addr, method, target, headers, body)
    }

    /// A token for `name` from the demo's sign-in.
    fn sign_in(&self, name: &str) -> String {
        let (status, body) = self.request(
            "POST",
            "/demo/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &format!("name={name}"),
        );
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        json["token"].as_str().unwrap().to_owned()
    }

    /// `text` said in the room as the page says it: the demo publishes
    /// it in the token's name (only the demo writes to `room.*`).
    fn say(&self, token: &str, text: &str) {
        let auth = format!("Authorization: Bearer {token}\r\n");
        let (status, body) = self.request("POST", &format!("/demo/say?room={ROOM}"), &auth, text);
        assert_eq!(status, 204, "{body}");
    }

    fn who(&self) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/topics/{TOPIC}/presence"), "", "");
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        json["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    }

    /// The room's history as the page gets it: the replay after `0-0`
    /// (here over SSE), its first `n` messages as `FROM: TEXT`.
    fn history(&self, n: usize) -> Vec<String> {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let request = format!(
            "GET /topics/{TOPIC}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\
             Last-Event-ID: 0-0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut parser = tether_sse::Parser::new();
        let mut head_done = false;
        let mut seen = Vec::new();
        while seen.len() < n {
            let got = stream.read(&mut chunk).expect("the replay");
            assert!(got > 0, "the stream ended after {seen:?}");
            if head_done {
                parser.feed(&chunk[..got]);
            } else {
                raw.extend_from_slice(&chunk[..got]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    head_done = true;
                    parser.feed(&raw[end + 4..]);
                }
            }
            while let Some(item) = parser.poll() {
                if let tether_sse::Item::Event(event) = item.expect("a well-formed stream") {
                    let message: Value = serde_json::from_str(event.data()).expect("a room message");
                    let field = |name: &str| message[name].as_str().expect("a string").to_owned();
                    seen.push(format!("{}: {}", field("from"), field("text")));
                }
            }
        }
        seen
    }
}

/// An event stream of the room, with a token.
fn join(demo: &Demo, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(demo.addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET /topics/{TOPIC}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
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
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_chat_room_keeps_its_history_across_a_restart_and_lists_who_is_here() {
    let dir = std::env::temp_dir().join(format!("tether-e2e-demo-presence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let demo = Demo::start(&dir);
    let (_, page) = demo.request("GET", "/", "", "");
    // The page, through the browser client: the room's topic and what is
    // said through the demo, the room's history from "0-0", join and
    // leave events, and the members listed.
    for part in [
        "\"room.\" + room",
        "/demo/say?room=",
        "chat-who",
        "/tether-client.js",
        "presence: true",
        "chat ? chat.lastId : \"0-0\"",
        "client.presence(topic)",
    ] {
        assert!(page.contains(part), "the page has no {part}");
    }
    let alice = demo.sign_in("alice");
    let in_room = join(&demo, &alice);
    assert_eq!(demo.who(), ["alice"]);
    demo.say(&alice, "hello");
    demo.say(&alice, "anyone here?");
    assert_eq!(demo.history(2), ["alice: hello", "alice: anyone here?"]);
    drop(in_room);
    eventually("alice to leave", || demo.who().is_empty());
    drop(demo);

    // Killed and started again: the history is there, nobody is.
    let demo = Demo::start(&dir);
    assert_eq!(demo.history(2), ["alice: hello", "alice: anyone here?"]);
    // The history was read by an anonymous subscriber of its own, which is
    // present until the server has seen it close.
    eventually("nobody to be here", || demo.who().is_empty());
    let bob = demo.sign_in("bob");
    let _bob_in_room = join(&demo, &bob);
    assert_eq!(demo.who(), ["bob"]);
    demo.say(&bob, "back");
    assert_eq!(
        demo.history(3),
        ["alice: hello", "alice: anyone here?", "bob: back"]
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
