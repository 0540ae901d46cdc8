//! A `HubNode` end to end: started on a free port in a thread, an event
//! published over HTTP, read back over SSE and from the history, shut
//! down; and its on-disk log found again by the next node.

// Integration tests are not `#[cfg(test)]` code to clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use tether_node::{Handle, HubNode, NodeConfig, NodeError};
use tether_testkit::request;

const TOKEN: &str = "a-publish-token";

/// A node of `config` running in a thread.
struct Running {
    addr: SocketAddr,
    handle: Handle,
    thread: JoinHandle<Result<(), NodeError>>,
}

fn start(mut config: NodeConfig) -> Running {
    config.hub.publish_token = Some(TOKEN.to_owned());
    config.handle_signals = false;
    config.threads = Some(2);
    let node = HubNode::new(config).expect("set up").bind().expect("bound");
    let (addr, handle) = (node.local_addr(), node.handle());
    let thread = std::thread::spawn(move || node.run());
    Running { addr, handle, thread }
}

impl Running {
    fn stop(self) {
        self.handle.shutdown();
        self.thread.join().expect("no panic").expect("a clean stop");
    }
}

fn publish(addr: SocketAddr, topic: &str, data: &str) {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let answer = request(addr, "POST", &format!("/topics/{topic}"), &auth, data.as_bytes());
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
}

fn history(addr: SocketAddr, topic: &str) -> String {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let answer = request(addr, "GET", &format!("/api/history?topic={topic}"), &auth, b"");
    assert_eq!(answer.status, 200);
    String::from_utf8(answer.body).expect("JSON")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

#[test]
fn publishes_reach_sse_subscribers_and_the_history() {
    let node = start(NodeConfig::new(localhost()));
    let mut stream = TcpStream::connect(node.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /topics/news/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        .expect("subscribe");
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    // The head first: the subscription is in place once it is answered.
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = stream.read(&mut buf).expect("the head");
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    publish(node.addr, "news", "hello over SSE");
    while !String::from_utf8_lossy(&seen).contains("data: hello over SSE\n") {
        let n = stream.read(&mut buf).expect("the event");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(history(node.addr, "news").contains(r#""data":"hello over SSE""#));
    drop(stream);
    node.stop();
}

/// A directory of its own under the system's temporary one, removed
/// when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_durable_node_recovers_its_events() {
    let dir = TempDir(std::env::temp_dir().join(format!("tether-node-test-{}", std::process::id())));
    let first = start(NodeConfig::new(localhost()).durable(&dir.0));
    publish(first.addr, "kept", "before the restart");
    first.stop();
    let second = start(NodeConfig::new(localhost()).durable(&dir.0));
    assert!(history(second.addr, "kept").contains(r#""data":"before the restart""#));
    second.stop();
}

#[test]
fn a_port_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind(localhost()).expect("a port");
    let addr = taken.local_addr().expect("its address");
    let mut config = NodeConfig::new(addr);
    config.handle_signals = false;
    let error = HubNode::new(config)
        .expect("set up")
        .bind()
        .err()
        .expect("refused");
    assert!(matches!(error, NodeError::Serve(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("address in use: "), "{message}");
    assert!(
        message.contains(&format!("TCP {addr}, the main listener")),
        "{message}"
    );
}
