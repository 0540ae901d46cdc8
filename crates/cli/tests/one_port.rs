//! One process per port unless asked: a second `tether serve` on a port
//! another process listens on is refused, whatever either one's loop
//! count, with one message (`address in use`, the address, the listener,
//! and how to share on purpose) and a non-zero exit: a server started
//! with `--reuse-port` joins no server that did not ask, and a server
//! without it joins none that did. Started with `--reuse-port` (or
//! `reuse-port = true` in its file) on every one of them, several servers
//! share the port, and connections reach each of them.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use process::{output, request, serve};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(15);

/// A hub whose publish token is `token`, with `extra`; two loops unless
/// `extra` says.
fn hub(token: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--app",
        "hub",
        "--memory",
        "--publish-token",
        token,
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    if !extra.contains(&"--threads") {
        args.extend(["--threads".to_owned(), "2".to_owned()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `tether serve` with `args` to its end, which must be the refusal
/// of `listener` on `addr`.
fn assert_refused(args: &[String], addr: SocketAddr, listener: &str) {
    let mut all = vec!["serve".to_owned()];
    all.extend_from_slice(args);
    let out = output(&strs(&all), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for part in [
        "address in use: ",
        &format!("TCP {addr}, {listener},"),
        "--reuse-port",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    assert!(!stderr.contains("os error"), "{stderr}");
    assert!(out.stdout.is_empty(), "it said it listens: {:?}", out.stdout);
}

/// An address on a port that is free just now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The status of a publish with the token `s3`: accepted by a hub whose
/// token it is, 401 from any other.
fn publish(addr: SocketAddr) -> u16 {
    let auth = "Authorization: Bearer s3\r\nContent-Type: text/plain\r\n";
    request(PATIENCE, addr, "POST", "/topics/news", auth, "hello").0
}

#[test]
fn a_second_server_on_a_held_port_is_refused() {
    let (_first, addr, _) = serve(&strs(&hub("s3", &["--port", "0"])), &[], None);
    assert_refused(
        &hub("s3", &["--port", &addr.port().to_string()]),
        addr,
        "the main listener",
    );
    // The first still serves.
    let (status, _) = request(PATIENCE, addr, "GET", "/healthz", "", "");
    assert_eq!(status, 200);
}

#[test]
fn a_server_asking_to_share_joins_no_server_that_did_not_ask() {
    // Whatever the first one's loop count.
    for threads in ["1", "2"] {
        let first = hub("s3", &["--port", "0", "--threads", threads]);
        let (_first, addr, _) = serve(&strs(&first), &[], None);
        let port = addr.port().to_string();
        for second_threads in ["1", "2"] {
            let second = hub(
                "t4",
                &["--port", &port, "--reuse-port", "--threads", second_threads],
            );
            assert_refused(&second, addr, "the main listener");
        }
        // Every publish still reaches the first, the only one there.
        for _ in 0..20 {
            assert_eq!(publish(addr), 200, "{threads} loop(s)");
        }
    }
}

#[test]
fn the_metrics_listener_is_refused_and_shared_the_same_way() {
    let metrics = free_addr().to_string();
    let first = hub("s3", &["--port", "0", "--metrics-listen", &metrics]);
    let (_first, _, _) = serve(&strs(&first), &[], None);
    let addr: SocketAddr = metrics.parse().unwrap();
    for asks in [false, true] {
        let mut second = vec!["--port", "0", "--metrics-listen", &metrics];
        if asks {
            second.push("--reuse-port");
        }
        assert_refused(&hub("t4", &second), addr, "the admin (metrics) listener");
    }

    let shared = free_addr().to_string();
    let first = hub(
        "s3",
        &["--port", "0", "--metrics-listen", &shared, "--reuse-port"],
    );
    let (_shared_first, _, _) = serve(&strs(&first), &[], None);
    let addr: SocketAddr = shared.parse().unwrap();
    assert_refused(
        &hub("t4", &["--port", "0", "--metrics-listen", &shared]),
        addr,
        "the admin (metrics) listener",
    );
    let second = hub(
        "t4",
        &["--port", "0", "--metrics-listen", &shared, "--reuse-port"],
    );
    let (_shared_second, _, banner) = serve(&strs(&second), &[], None);
    assert!(banner.contains("listening"), "{banner}");
}

#[test]
fn servers_that_all_ask_share_the_port_and_each_serves() {
    let first = hub("s3", &["--port", "0", "--reuse-port"]);
    let (_first, addr, _) = serve(&strs(&first), &[], None);
    let port = addr.port().to_string();

    // A server that did not ask is refused a port others share.
    assert_refused(&hub("t4", &["--port", &port]), addr, "the main listener");
    assert_refused(
        &hub("t4", &["--port", &port, "--threads", "1"]),
        addr,
        "the main listener",
    );

    // The option, and the same from a configuration file.
    let second = hub("t4", &["--port", &port, "--reuse-port"]);
    let (_second, second_addr, banner) = serve(&strs(&second), &[], None);
    assert_eq!(second_addr, addr, "{banner}");
    let dir = TempDir::new("one-port");
    let file = dir.write("tether.toml", b"reuse-port = true\n");
    let (_third, third_addr, banner) = serve(
        &strs(&hub("t4", &["--port", &port, "--config", &file])),
        &[],
        None,
    );
    assert_eq!(third_addr, addr, "{banner}");

    // Connections reach the first (whose token s3 is: 200) and the others
    // (401): each of the 6 loops' sockets takes a new connection with a
    // chance of 1 in 6, so 200 all missing either side would happen
    // about once in 10^15 runs.
    let mut statuses = BTreeSet::new();
    for _ in 0..200 {
        statuses.insert(publish(addr));
        if statuses.len() == 2 {
            break;
        }
    }
    assert_eq!(statuses, BTreeSet::from([200, 401]));
}
