//! The `process_*` series of `/metrics`, scraped from a running hub:
//! there on Linux, with values that follow what the process does (the
//! descriptors grow by the connections opened).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use common::{HttpConn, TestServer, config};
use tether_hub_app::{HubApp, HubSettings};

/// The value of an unlabelled series.
fn value(page: &str, name: &str) -> f64 {
    common::metric_sample(page, name).parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn process_series_follow_the_process() {
    let server = TestServer::start(config(), HubApp::new(HubSettings::default()));
    let before = common::scrape_metrics(server.addr);
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(before.contains(&format!("# TYPE {name} ")), "{name} in\n{before}");
    }
    let open_before = value(&before, "process_open_fds");
    assert!(value(&before, "process_max_fds") >= open_before, "{before}");
    assert!(
        value(&before, "process_resident_memory_bytes") >= 1024.0 * 1024.0,
        "{before}"
    );
    assert!(
        value(&before, "process_virtual_memory_bytes") >= value(&before, "process_resident_memory_bytes")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&before, "process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started >= now - 3600.0,
        "{started} vs {now}"
    );

    // Each connection answered holds two descriptors of this process:
    // the test's end and the server's.
    const CONNECTIONS: usize = 16;
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut conn = HttpConn::connect(server.addr);
        conn.request("GET", "/healthz", "");
        let _ = conn.response();
        held.push(conn);
    }
    let after = common::scrape_metrics(server.addr);
    let open_after = value(&after, "process_open_fds");
    assert!(
        open_after >= open_before + 2.0 * CONNECTIONS as f64,
        "{open_before} -> {open_after}"
    );
    assert!(value(&after, "process_cpu_seconds_total") >= value(&before, "process_cpu_seconds_total"));
    drop(held);
}
