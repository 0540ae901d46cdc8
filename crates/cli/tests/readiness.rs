//! Readiness beside liveness: `/readyz` answers 200 on a hub that takes
//! work, its body naming each check, and 503 with `Retry-After` from
//! SIGTERM on, while the node still serves for `--drain-delay`;
//! `/healthz` answers 200 throughout. A node that recovers its data dir
//! answers no probe until it has (what a Kubernetes `startupProbe` waits
//! for), then both. And what the build says of itself: `tether version`,
//! `tether --version` and the `tether_build_info` metric. The bus's part
//! of readiness (away, not reached, replicas) is in `readiness_redis.rs`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use process::{output, request, serve};

const PATIENCE: Duration = Duration::from_secs(15);

/// The status line's code and the head (lower case) of the answer to
/// `GET path`.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, head, _) = get_all(addr, path);
    (status, head)
}

/// The status, the head (lower case) and the body of the answer to `GET path`.
fn get_all(addr: SocketAddr, path: &str) -> (u16, String, String) {
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
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
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
    let (status, _, body) = get_all(addr, "/readyz");
    assert_eq!(status, 200);
    // Each check named: the node's own and its bus (here, in process).
    assert_eq!(body, "ready\n[+] draining: no\n[+] bus: up (local)\n");
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
    let (_, _, body) = get_all(addr, "/readyz");
    assert!(
        body.starts_with("not ready: draining\n[-] draining: yes: shutting down after its drain delay\n"),
        "{body}"
    );
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

/// A node on a data dir recovers its logs before it listens: a probe is
/// refused (no answer at all) until it has, which is what a Kubernetes
/// `startupProbe` on `/healthz` waits through (the liveness probe waits
/// for it), and nothing answers before the recovery is done. Then
/// `/healthz` and `/readyz` answer 200 and the backlog is there.
#[test]
fn a_node_recovering_its_data_dir_answers_no_probe_until_it_has() {
    let dir = std::env::temp_dir().join(format!("tether-readiness-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap();
    let durable = |port: &str| -> Vec<String> {
        [
            "--app",
            "hub",
            "--publish-token",
            "s3",
            "--threads",
            "1",
            "--port",
            port,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--data-dir".to_owned(), data_arg.to_owned()])
        .collect()
    };
    // A log with something to recover: events on many topics.
    let (mut first, addr, _) = serve(&strs(&durable("0")), &[], None);
    let auth = "Authorization: Bearer s3\r\nContent-Type: text/plain\r\n";
    let data = "x".repeat(2048);
    for n in 0..300 {
        let topic = format!("/topics/recovered-{}", n % 30);
        assert_eq!(request(PATIENCE, addr, "POST", &topic, auth, &data).0, 200);
    }
    let port = addr.port();
    first.kill();

    // The same port again, the log recovered first.
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("second.log");
    let mut second = process::tether(&["serve"], &[])
        .args(durable(&port.to_string()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start tether");
    let probe = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    let mut refused = 0;
    let answered = loop {
        match TcpStream::connect(probe) {
            Ok(_) => {
                // It listens: the recovery is over, by the order of the
                // start, and its log says so already.
                let log = std::fs::read_to_string(&log).unwrap();
                assert!(
                    log.contains("hub: events kept in"),
                    "answered before it recovered:\n{log}"
                );
                break get_all(probe, "/healthz");
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => panic!("probe: {e}"),
        }
        refused += 1;
        assert!(
            second.try_wait().unwrap().is_none() && start.elapsed() < PATIENCE,
            "the node never listened:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(answered.0, 200, "{answered:?}");
    let (status, _, body) = get_all(probe, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (200, "ready\n[+] draining: no\n[+] bus: up (durable)\n")
    );
    // What it recovered is there: a topic's backlog replayed.
    let (status, page) = request(
        PATIENCE,
        probe,
        "GET",
        "/api/history?topic=recovered-0&limit=100",
        "Authorization: Bearer s3\r\n",
        "",
    );
    assert_eq!(status, 200, "{page}");
    let history: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(history["events"].as_array().map(Vec::len), Some(10), "{page}");
    println!("probes refused while it recovered: {refused}");
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
