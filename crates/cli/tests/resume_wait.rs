//! `tether serve --resume-wait SECONDS` (config key `resume-wait`): a
//! client resuming from an id the node has not seen yet (another node
//! ahead of this one on the bus gave it) is held for it that long, and
//! gets the gap signal only after; by default ten seconds, which covers a
//! node catching up with its bus after a partition (the network fault
//! tests, conformance/netfault, found clients resumed with a gap and the
//! whole backlog again after one to two seconds).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

#[path = "serve/process.rs"]
mod process;

use std::net::SocketAddr;
use std::time::Duration;

use process::{Process, request, serve_hub};

const TOKEN: &str = "resume-wait-token";

fn start(more: &[&str]) -> (Process, SocketAddr) {
    let mut args = vec!["--publish-token", TOKEN];
    args.extend_from_slice(more);
    let (process, addr, _) = serve_hub(&args, None);
    (process, addr)
}

/// Publishes one event and returns the id of the one five after it: an
/// id this node has not seen.
fn an_id_ahead(addr: SocketAddr) -> String {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, body) = request(Duration::from_secs(10), addr, "POST", "/topics/t", &auth, "one");
    assert_eq!(status, 200, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (epoch, seq) = id["id"].as_str().unwrap().split_once('-').unwrap();
    format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 5)
}

/// A long poll from `since` held at most `timeout` seconds: its answer.
fn poll(addr: SocketAddr, since: &str, timeout: u32) -> serde_json::Value {
    let target = format!("/topics/t/poll?since={since}&timeout={timeout}");
    let (status, body) = request(Duration::from_secs(20), addr, "GET", &target, "", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_client_ahead_of_the_node_is_held_for_the_resume_wait() {
    // The default, ten seconds: a poll held four seconds ends with no gap
    // signal and nothing repeated.
    let (_node, addr) = start(&[]);
    let ahead = an_id_ahead(addr);
    let answer = poll(addr, &ahead, 4);
    assert!(answer["gap"].is_null(), "a gap before the resume wait: {answer}");
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(0), "{answer}");

    // One second: the same poll gets the gap signal and the backlog.
    let (_node, addr) = start(&["--resume-wait", "1"]);
    let ahead = an_id_ahead(addr);
    let answer = poll(addr, &ahead, 8);
    assert!(
        answer["gap"].is_object(),
        "no gap after a one-second resume wait: {answer}"
    );
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(1), "{answer}");
}
