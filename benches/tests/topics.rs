//! `loadgen topics` and `loadgen idle --subscribe` against a hub: every
//! topic of every multiplexed socket checked, a publish the hub refuses
//! and a subscribe it refuses reported as failures.
// A test: a failed unwrap is the failure it reports.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::process::Command;

use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::Handshake;
use tether_testkit::{TestServer, config};

/// A hub on one loop whose `bench.mux.*` topics take publishes from
/// their WebSocket subscribers when `open` (else from nobody).
fn hub(open: bool) -> TestServer {
    let mut settings = HubSettings::default();
    if open {
        settings.ws_publish = vec!["bench.mux.*".to_owned()];
    }
    let shared = HubShared::new(settings, 1);
    TestServer::start_loops(config(), Handshake::new(), 1, |i| shared.app(i))
}

/// Runs the load generator: its exit success and its JSON line.
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
fn every_topic_of_every_socket_is_delivered_in_order() {
    let server = hub(true);
    let addr = server.addr.to_string();
    let (ok, json) = loadgen(&[
        "topics",
        "--addr",
        &addr,
        "-n",
        "6",
        "-k",
        "4",
        "--published",
        "3",
        "-r",
        "300",
        "-s",
        "24",
        "-d",
        "1",
        "--drain",
        "10",
    ]);
    assert!(ok, "{json}");
    let published = json["published"].as_u64().unwrap();
    assert!(published >= 30, "{json}");
    let by_topic: Vec<u64> = (json["published_by_topic"].as_array().unwrap().iter())
        .map(|n| n.as_u64().unwrap())
        .collect();
    // In turn to the first three topics, none to the fourth.
    assert_eq!(by_topic.len(), 4);
    assert_eq!(by_topic.iter().sum::<u64>(), published);
    assert_eq!(by_topic[3], 0);
    assert!(by_topic[..3].iter().all(|&n| n + 1 >= published / 3), "{json}");
    assert_eq!(json["delivered"], published * 6);
    assert_eq!(json["acked"], published);
    // The publisher follows the topics it publishes to, and gets each back.
    assert_eq!(json["publisher_echoes"], published);
    assert_eq!(json["missing"], 0);
    assert_eq!(json["out_of_order"], 0);
    assert_eq!(json["unreadable"], 0);
    assert_eq!(json["problems"], 0);
}

#[test]
fn a_publish_the_hub_refuses_fails_the_run() {
    // No topic takes publishes from its subscribers.
    let server = hub(false);
    let addr = server.addr.to_string();
    let (ok, json) = loadgen(&[
        "topics", "--addr", &addr, "-n", "2", "-k", "2", "-r", "50", "-d", "0.2", "--drain", "1",
    ]);
    assert!(!ok, "{json}");
    assert_eq!(json["acked"], 0);
    assert_eq!(json["delivered"], 0);
    assert!(json["problems"].as_u64().unwrap() >= 2, "{json}");
}

#[test]
fn idle_sockets_hold_their_subscriptions() {
    let server = hub(false);
    let addr = server.addr.to_string();
    let pid = std::process::id().to_string();
    let (ok, json) = loadgen(&[
        "idle",
        "--addr",
        &addr,
        "--path",
        "/ws",
        "-c",
        "4",
        "--subscribe",
        "12",
        "--settle",
        "0.1",
        "--hold",
        "0.2",
        "--pid",
        &pid,
    ]);
    assert!(ok, "{json}");
    assert_eq!(json["subscriptions_per_conn"], 12);
    assert_eq!(json["connections"], 4);
    assert_eq!(json["closed"], 0);
    // A topic name the hub refuses: the run fails with its answer.
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "idle",
            "--addr",
            &addr,
            "--path",
            "/ws",
            "-c",
            "2",
            "--subscribe",
            "2",
            "--topic-prefix",
            "no/such",
            "--settle",
            "0",
            "--hold",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#""control":"refused""#), "{stderr}");
}
