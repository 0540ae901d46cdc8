//! The admin listener (`--metrics-listen`) as `tether serve` sets it up:
//! the warnings at start that name what is left open without a metrics
//! token (a read-only admin page; metrics on an address others reach),
//! and `--admin-host`, the names it serves besides its own address, from
//! the command line and from a configuration file.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use process::{Process, address, output, serve_hub};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(15);

const READ_ONLY: &str = "admin: the admin page is read-only: no metrics token is set";
const ADMIN_OPEN: &str = "metrics: /metrics and the admin page's counters are readable by anyone who reaches";
const MAIN_OPEN: &str = "metrics: /metrics on the main port is readable by anyone who reaches";

/// `tether serve --app hub` with `more` options, its log in `dir`: the
/// process, the admin listener's address if it has one, and the log so
/// far. The warnings at start are written before the line that says where
/// it listens, so the log holds them once that line is read.
fn start(dir: &TempDir, more: &[&str]) -> (Process, Option<SocketAddr>, String) {
    let log = dir.0.join("log");
    let (mut process, _, _) = serve_hub(more, Some(&log));
    let admin = more
        .contains(&"--metrics-listen")
        .then(|| address(&process.next_line()).expect("the admin listener's address"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    (process, admin, text)
}

/// The status and body of `GET target` naming `host` as its `Host`.
fn get(addr: SocketAddr, host: &str, target: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

#[test]
fn without_a_metrics_token_the_start_says_what_is_open() {
    // On the loopback: the admin page is read-only, and said so; nothing
    // else is open.
    let dir = TempDir::new("loopback");
    let (_process, admin, log) = start(&dir, &["--metrics-listen", "127.0.0.1:0"]);
    assert!(log.contains(READ_ONLY), "{log}");
    assert!(log.contains("--metrics-token or TETHER_METRICS_TOKEN"), "{log}");
    assert!(!log.contains(ADMIN_OPEN) && !log.contains(MAIN_OPEN), "{log}");
    // And it is: the counters are there, the actions refused.
    let admin = admin.unwrap();
    let own = admin.to_string();
    assert_eq!(get(admin, &own, "/admin", "").0, 200);
    let (status, body) = get(admin, &own, "/admin/api/topics", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no_admin_credential"), "{body}");

    // On every address: the metrics are anyone's who reaches it, too.
    let dir = TempDir::new("everywhere");
    let (_process, _, log) = start(&dir, &["--addr", "0.0.0.0", "--metrics-listen", "0.0.0.0:0"]);
    assert!(log.contains(READ_ONLY), "{log}");
    assert!(
        log.contains(&format!("{ADMIN_OPEN} any address of this machine (0.0.0.0)")),
        "{log}"
    );
    // /metrics is not on the main port.
    assert!(!log.contains(MAIN_OPEN), "{log}");

    // No listener of its own, on every address: /metrics on the main
    // port is anyone's.
    let dir = TempDir::new("main-port");
    let (_process, _, log) = start(&dir, &["--addr", "0.0.0.0"]);
    assert!(log.contains(MAIN_OPEN), "{log}");
    assert!(log.contains("(--metrics-listen)"), "{log}");
    assert!(!log.contains(READ_ONLY), "{log}");

    // A token, from the variable: none of it.
    let dir = TempDir::new("token");
    let log_path = dir.0.join("log");
    let (mut process, _, _) = process::serve(
        &[
            "--app",
            "hub",
            "--memory",
            "--port",
            "0",
            "--threads",
            "1",
            "--addr",
            "0.0.0.0",
            "--metrics-listen",
            "0.0.0.0:0",
        ],
        &[("TETHER_METRICS_TOKEN", "a-metrics-token")],
        Some(&log_path),
    );
    let admin = address(&process.next_line()).expect("the admin listener");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    for warning in [READ_ONLY, ADMIN_OPEN, MAIN_OPEN] {
        assert!(!log.contains(warning), "{warning}: {log}");
    }
    let local = format!("127.0.0.1:{}", admin.port());
    let admin = local.parse().unwrap();
    assert_eq!(get(admin, &local, "/metrics", "").0, 401);
    let bearer = "Authorization: Bearer a-metrics-token\r\n";
    assert_eq!(get(admin, &local, "/metrics", bearer).0, 200);
}

#[test]
fn the_admin_listener_serves_its_address_localhost_and_the_admin_hosts_only() {
    let dir = TempDir::new("hosts");
    let (_process, admin, _) = start(
        &dir,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-token",
            "hosts-token",
            "--admin-host",
            "admin.example",
            "--admin-host",
            "ops.example:8443",
        ],
    );
    let admin = admin.unwrap();
    let port = admin.port();
    let bearer = "Authorization: Bearer hosts-token\r\n";
    for host in [
        admin.to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("admin.example:{port}"),
        "ops.example:8443".to_owned(),
    ] {
        assert_eq!(get(admin, &host, "/metrics", bearer).0, 200, "{host}");
    }
    for host in [
        format!("rebind.example:{port}"),
        format!("ops.example:{port}"),
        "admin.example.rebind.example".to_owned(),
    ] {
        let (status, body) = get(admin, &host, "/metrics", bearer);
        assert_eq!(status, 421, "{host}: {body}");
        let (status, _) = get(admin, &host, "/admin/api/topics", bearer);
        assert_eq!(status, 421, "{host}");
    }

    // From a file, checked by check-config: names, not patterns or URLs.
    let good = dir.write(
        "good.toml",
        b"app = \"hub\"\nmetrics-listen = \"127.0.0.1:9090\"\nadmin-host = [\"admin.example\", \"ops.example:8443\"]\n",
    );
    let out = output(&["check-config", &good], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for bad in ["*.example", "https://admin.example", "admin.example:port"] {
        let file = dir.write(
            "bad.toml",
            format!("app = \"hub\"\nadmin-host = [\"{bad}\"]\n").as_bytes(),
        );
        let out = output(&["check-config", &file], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} passed");
        assert!(stderr.contains("not a host"), "{bad}: {stderr}");
    }
}
