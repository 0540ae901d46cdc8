//! A node that cannot reach its bus (a refused TLS handshake, a master no
//! sentinel names, a password missing): what `/readyz`, the log and a
//! publish then say.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::TOKEN;
use crate::serve::process::{Process, request, serve};
use crate::support::PATIENCE;

/// A node with the bus options `bus` that is not expected to reach its
/// bus: the process, its address, and its log's path.
pub(crate) fn start_refused(dir: &Path, name: &str, bus: &[&str]) -> (Process, SocketAddr, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let mut args = vec![
        "--app",
        "hub",
        "--port",
        "0",
        "--threads",
        "1",
        "--log-level",
        "info",
    ];
    args.extend_from_slice(bus);
    let (process, addr, _) = serve(&args, &[("TETHER_PUBLISH_TOKEN", TOKEN)], Some(&log));
    (process, addr, log)
}

/// `/readyz`'s `bus` line (without its `[+] bus: ` or `[-] bus: ` mark)
/// once it holds `words` (a state to reach, not a time to measure): the
/// status, the line and the whole body.
pub(crate) fn wait_for_bus_line(addr: SocketAddr, words: &str) -> (u16, String, String) {
    let start = Instant::now();
    loop {
        let (status, body) = request(PATIENCE, addr, "GET", "/readyz", "", "");
        let line = body
            .lines()
            .find_map(|l| {
                l.strip_prefix("[+] bus: ")
                    .or_else(|| l.strip_prefix("[-] bus: "))
            })
            .unwrap_or_default()
            .to_owned();
        if line.contains(words) {
            return (status, line, body);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "/readyz never said {words:?}; last: {status} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `/readyz`'s body once it answers 200: every check passes (a state to
/// reach; the bus line says up before a check such as the replicas'
/// `--redis-wait-replicas` count has been made).
pub(crate) fn wait_for_ready(addr: SocketAddr) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = request(PATIENCE, addr, "GET", "/readyz", "", "");
        if status == 200 {
            return body;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "/readyz never answered 200; last: {status} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A node with the bus options `bus` cannot reach its bus, for the
/// reason `words` name: `/readyz` is 503 with a `bus` line that starts
/// with `line_start` and ends with that reason, its log says so at start,
/// and its publishes are refused.
pub(crate) fn assert_refused(dir: &Path, name: &str, bus: &[&str], words: &str, line_start: &str) {
    let (_process, addr, log) = start_refused(dir, name, bus);
    let (status, line, body) = wait_for_bus_line(addr, words);
    println!("{name}: {status} {body}");
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("not ready: bus\n"), "{body}");
    assert!(line.starts_with(line_start), "{line}");
    assert!(
        line.contains("not reached since this node started; last error: "),
        "{line}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("cannot connect to") && l.contains(words)),
        "{name}: the log does not say {words:?}:\n{log}"
    );
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, _) = request(PATIENCE, addr, "POST", "/topics/e2e", &auth, "no");
    assert_eq!(status, 503);
}
