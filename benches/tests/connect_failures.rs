//! The load generator reports connections it could not open by cause, in
//! its JSON line, also when the run is spread over processes.
// A test: a failed unwrap is the failure it reports.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::process::Command;

use serde_json::{Value, json};

/// A port nobody listens on: the port of a listener just closed.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs the load generator and returns its exit success and its JSON line.
fn loadgen(args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!(
            "no JSON line in {stdout:?}; stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), serde_json::from_str(line).unwrap())
}

#[test]
fn refused_connections_are_counted_over_the_processes() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let common = [
        "fanout",
        "--addr",
        &addr,
        "-n",
        "4",
        "-d",
        "1",
        "--connect-timeout",
        "10",
    ];
    // One process: four subscribers and the publisher, all refused.
    let (ok, json) = loadgen(&common);
    assert!(!ok);
    assert_eq!(json["mode"], "fanout");
    assert_eq!(json["connect_failures"], json!({"refused": 5}));
    assert_eq!(
        (
            json["connections_wanted"].as_u64(),
            json["connections_opened"].as_u64()
        ),
        (Some(5), Some(0))
    );
    // Two processes: the parent adds up what each counted.
    let mut two = common.to_vec();
    two.extend(["--procs", "2"]);
    let (ok, json) = loadgen(&two);
    assert!(!ok);
    assert_eq!(json["connect_failures"], json!({"refused": 5}), "{json}");
    assert_eq!(json["procs"], 2);
    assert_eq!(json["procs_ready"], 0);
}

#[test]
fn the_plan_refuses_too_few_sources() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "plan",
            "--connections",
            "100001",
            "--servers",
            "7",
            "--procs",
            "7",
            "--port-range",
            "32768 60999",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "11\n");
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("11 source addresses")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "plan",
            "--connections",
            "100001",
            "--sources",
            "8",
            "--port-range",
            "32768 60999",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--sources 8 puts 12501 connections"), "{err}");
}
