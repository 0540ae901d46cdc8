//! The server's CPU per delivery on a delta topic, against whole events:
//! one hub loop, `SUBSCRIBERS` multiplexed sockets following one topic of
//! a namespace with `delta=on` (all asking for deltas, or none), and
//! `EVENTS` publishes of a 2 KB JSON state with a few fields changing.
//! The loop thread's CPU time (its scheduler's run time) over the
//! publishes, divided by the deliveries, and the bytes each subscriber
//! read per event. The publishes cost the same in both runs; the
//! difference is the fan-out's.
//!
//!     cargo run --release -p tether-benches --example delta_fanout [SUBSCRIBERS [EVENTS]]
//!
//! Prints one JSON line per run: whole, then deltas, then whole again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(clippy::cast_possible_truncation)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use tether_hub_app::{HubSettings, HubShared, Namespace};
use tether_server::Handshake;
use tether_testkit::{TestServer, WsClient, config, request};

const TOKEN: &str = "delta-fanout-token";

/// A device's state after `n` events: the sequence number, the
/// temperature, the status and one of 24 readings change.
fn state(n: u64) -> String {
    let mut out =
        String::from("{\"device\":\"pump-7\",\"site\":\"north hall, level 2\",\"firmware\":\"4.2.1\",");
    let status = if n.is_multiple_of(2) { "ok" } else { "warm" };
    write!(
        out,
        "\"seq\":{n},\"temperature\":{:.1},\"status\":\"{status}\",\"readings\":[",
        20.5 + n as f64 / 10.0
    )
    .unwrap();
    for i in 0..24u64 {
        let value = if i == n % 24 { 1000 + n * 7 + i } else { 1000 + i };
        let comma = if i == 0 { "" } else { "," };
        write!(out, "{comma}{{\"sensor\":\"pressure-{i:02}\",\"unit\":\"kPa\",\"value\":{value},\"min\":900,\"max\":1200,\"ok\":true}}").unwrap();
    }
    out.push_str("]}");
    out
}

/// The run time of this process's thread named `name`, in nanoseconds
/// (the first field of its schedstat). The test server runs its one
/// loop on its `tether-cluster` thread.
fn thread_ns(name: &str) -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap();
            return stat.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no thread {name}");
}

fn run(deltas: bool, subscribers: usize, events: u64) {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
        .namespaces
        .push("state.* publish=backend delta=on".parse::<Namespace>().unwrap());
    let shared = HubShared::new(settings, 1);
    let server = TestServer::start_loops(config(), Handshake::new(), 1, |i| shared.app(i));
    let read = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut ws = WsClient::connect(server.addr, "/ws");
            ws.send_text(&format!(
                r#"{{"type":"subscribe","topic":"state.pump","delta":{deltas}}}"#
            ));
            assert!(ws.recv_text().contains("subscribed"));
            let read = Arc::clone(&read);
            thread::spawn(move || {
                for _ in 0..events {
                    let text = ws.recv_text();
                    read.fetch_add(text.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let (cpu, wall) = (thread_ns("tether-cluster"), Instant::now());
    for n in 0..events {
        let answer = request(
            server.addr,
            "POST",
            "/topics/state.pump",
            &format!("Authorization: Bearer {TOKEN}\r\n"),
            state(n).as_bytes(),
        );
        assert_eq!(answer.status, 200);
    }
    for reader in readers {
        reader.join().unwrap();
    }
    let (cpu, wall) = (thread_ns("tether-cluster") - cpu, wall.elapsed());
    let deliveries = subscribers as u64 * events;
    println!(
        r#"{{"mode":"{}","subscribers":{subscribers},"events":{events},"loop_cpu_ms":{:.1},"ns_per_delivery":{:.0},"payload_bytes_per_delivery":{:.0},"wall_ms":{}}}"#,
        if deltas { "deltas" } else { "whole" },
        cpu as f64 / 1e6,
        cpu as f64 / deliveries as f64,
        read.load(Ordering::Relaxed) as f64 / deliveries as f64,
        wall.as_millis()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers = args.next().map_or(200, |a| a.parse().unwrap());
    let events = args.next().map_or(300, |a| a.parse().unwrap());
    for deltas in [false, true, false, true] {
        run(deltas, subscribers, events);
    }
}
