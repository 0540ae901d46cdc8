//! Readiness beside liveness: `/readyz` answers 200 on a hub that takes
//! work, 503 with `Retry-After` while its bus (a real `redis-server`) is
//! away and 200 again once it is back, and 503 from SIGTERM on, while the
//! node still serves for `--drain-delay`; `/healthz` answers 200
//! throughout. And what the build says of itself: `tether version`,
//! `tether --version` and the `tether_build_info` metric.
//!
//! The Redis test is skipped (with a printed reason) when `redis-server`
//! is not installed, unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[cfg(feature = "redis")]
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use process::{output, request, serve};

const PATIENCE: Duration = Duration::from_secs(15);

/// The status line's code and the head of the answer to `GET path`.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"));
    let head = response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(h, _)| h);
    (status, head.to_ascii_lowercase())
}

/// Asks `/readyz` until it answers `status` (a state to reach, not a
/// time to measure: the patience only catches a hang).
fn wait_for_readyz(addr: SocketAddr, status: u16) -> String {
    let start = Instant::now();
    loop {
        let (now, head) = get(addr, "/readyz");
        if now == status {
            return head;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "/readyz still {now}, waiting for {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hub(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["--app", "hub", "--memory", "--publish-token", "s3", "--port", "0"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn publish(addr: SocketAddr) -> u16 {
    let auth = "Authorization: Bearer s3\r\nContent-Type: text/plain\r\n";
    request(PATIENCE, addr, "POST", "/topics/news", auth, "hello").0
}

#[test]
fn a_memory_hub_is_ready_and_alive() {
    let (_server, addr, _) = serve(&strs(&hub(&[])), &[], None);
    let (status, _) = get(addr, "/readyz");
    assert_eq!(status, 200);
    assert_eq!(get(addr, "/healthz").0, 200);
    // Only GET and HEAD.
    let (status, _) = request(PATIENCE, addr, "POST", "/readyz", "", "");
    assert_eq!(status, 405);
}

#[test]
fn sigterm_turns_readiness_off_and_the_node_serves_on_while_it_drains() {
    let (mut server, addr, _) = serve(&strs(&hub(&["--drain-delay", "600"])), &[], None);
    assert_eq!(get(addr, "/readyz").0, 200);
    let pid = server.child.id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success());
    };
    kill("-TERM");
    let head = wait_for_readyz(addr, 503);
    assert!(head.contains("\r\nretry-after: "), "{head}");
    // Still alive, still accepting, still taking publishes.
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(publish(addr), 200);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "it exited while draining"
    );
    // A second signal does not wait for the rest of the delay.
    kill("-TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < PATIENCE, "the second SIGTERM did not stop it");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn version_says_the_commit_and_the_build_date() {
    let version = String::from_utf8(output(&["version"], &[]).stdout).unwrap();
    let flag = String::from_utf8(output(&["--version"], &[]).stdout).unwrap();
    assert_eq!(version, flag);
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct"]));
    // The date as date(1) says it, against build.rs's own arithmetic.
    let date = epoch.map_or_else(
        || "unknown".to_owned(),
        |epoch| {
            let out = Command::new("date")
                .args(["-u", "-d", &format!("@{epoch}"), "+%F"])
                .output()
                .expect("date");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        },
    );
    let expected = format!(
        "tether {} (commit {commit}, built {date})\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(version, expected);

    let (_server, addr, _) = serve(&strs(&hub(&[])), &[], None);
    let (status, metrics) = request(PATIENCE, addr, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    let line = format!(
        "\ntether_build_info{{version=\"{}\",commit=\"{commit}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.contains(&line), "{metrics}");
}

#[cfg(feature = "redis")]
#[test]
fn readiness_follows_the_bus() {
    use support::{RedisServer, available};
    if !available("readiness_follows_the_bus") {
        return;
    }
    let mut redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--app",
        "hub",
        "--publish-token",
        "s3",
        "--port",
        "0",
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "readiness-test:",
    ];
    let (_server, addr, _) = serve(&args, &[], None);
    wait_for_readyz(addr, 200);
    redis.stop();
    let head = wait_for_readyz(addr, 503);
    assert!(head.contains("\r\nretry-after: "), "{head}");
    assert_eq!(get(addr, "/healthz").0, 200, "alive without its bus");
    redis.restart();
    wait_for_readyz(addr, 200);
}
