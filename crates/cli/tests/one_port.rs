//! One process per port unless asked: a second `tether serve` on a port
//! another process listens on is refused with `address in use`, naming
//! the address, and a non-zero exit; started with `--reuse-port` (or
//! `reuse-port = true` in its file) on every one of them, several
//! servers share the port.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::time::Duration;

use process::{output, request, serve};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(15);

const HUB: [&str; 6] = ["--app", "hub", "--memory", "--publish-token", "s3", "--log-level"];

/// A hub's options with `extra`; two loops unless `extra` says.
fn hub(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = HUB.iter().map(|s| (*s).to_owned()).collect();
    args.push("warn".to_owned());
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    if !extra.contains(&"--threads") {
        args.extend(["--threads".to_owned(), "2".to_owned()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_second_server_on_a_held_port_is_refused() {
    let first = hub(&["--port", "0"]);
    let (_first, addr, _) = serve(&strs(&first), &[], None);
    let port = addr.port().to_string();

    let mut second = vec!["serve".to_owned()];
    second.extend(hub(&["--port", &port]));
    let out = output(&strs(&second), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("address in use"), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(out.stdout.is_empty(), "it said it listens: {:?}", out.stdout);

    // The first still serves.
    let (status, _) = request(PATIENCE, addr, "GET", "/healthz", "", "");
    assert_eq!(status, 200);
}

#[test]
fn a_single_loop_server_is_refused_the_same_way() {
    let first = hub(&["--port", "0"]);
    let (_first, addr, _) = serve(&strs(&first), &[], None);
    let mut second = vec!["serve".to_owned()];
    second.extend(hub(&["--port", &addr.port().to_string(), "--threads", "1"]));
    let out = output(&strs(&second), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("address in use"), "{stderr}");
}

#[test]
fn servers_that_all_ask_share_the_port() {
    let first = hub(&["--port", "0", "--reuse-port"]);
    let (_first, addr, _) = serve(&strs(&first), &[], None);
    let port = addr.port().to_string();

    // The option, and the same from a configuration file.
    let (_second, second_addr, banner) = serve(&strs(&hub(&["--port", &port, "--reuse-port"])), &[], None);
    assert_eq!(second_addr, addr, "{banner}");
    let dir = TempDir::new("one-port");
    let file = dir.write("tether.toml", b"reuse-port = true\n");
    let (_third, third_addr, banner) = serve(&strs(&hub(&["--port", &port, "--config", &file])), &[], None);
    assert_eq!(third_addr, addr, "{banner}");

    // A server that did not ask is still refused a port others share.
    let mut fourth = vec!["serve".to_owned()];
    fourth.extend(hub(&["--port", &port]));
    let out = output(&strs(&fourth), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("address in use"), "{stderr}");
}
