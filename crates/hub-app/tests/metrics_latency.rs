//! The latency histograms of `/metrics`, scraped from a running hub:
//! publishes counted in `tether_hub_publish_seconds` when their outcome
//! comes (refusals before the broker not), and no delivery lag from the
//! in-process broker, whose event ids are not publish times.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tether_testkit as common;

use std::net::SocketAddr;

use common::{SseClient, TestServer, config, request};
use tether_hub_app::{HubApp, HubSettings};

const TOKEN: &str = "latency-publish-token";

/// The value of the sample written exactly `series` (name and labels).
fn sample(page: &str, series: &str) -> u64 {
    common::metric_sample(page, series).parse().unwrap()
}

/// The cumulative bucket counts of a histogram, in the page's order.
fn buckets(page: &str, name: &str) -> Vec<u64> {
    let prefix = format!("{name}_bucket{{");
    page.lines()
        .filter(|line| line.starts_with(&prefix))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn publish(addr: SocketAddr, topic: &str) -> u16 {
    let headers = format!("Authorization: Bearer {TOKEN}\r\n");
    request(addr, "POST", &format!("/topics/{topic}"), &headers, b"hi").status
}

#[test]
fn publishes_are_timed_to_their_outcome() {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    let server = TestServer::start(config(), HubApp::new(settings));
    let before = common::scrape_metrics(server.addr);
    assert_eq!(sample(&before, "tether_hub_publish_seconds_count"), 0);
    assert!(before.contains("# TYPE tether_hub_publish_seconds histogram\n"));
    let mut reader = SseClient::connect(server.addr, "/topics/timed/events", "");
    for _ in 0..3 {
        assert_eq!(publish(server.addr, "timed"), 200);
        reader.next_event();
    }
    // Refused before it reaches the broker: no outcome to wait for.
    assert_eq!(
        request(server.addr, "POST", "/topics/timed", "", b"hi").status,
        401
    );
    let after = common::scrape_metrics(server.addr);
    assert_eq!(sample(&after, "tether_hub_publish_seconds_count"), 3);
    let counts = buckets(&after, "tether_hub_publish_seconds");
    assert_eq!(counts.len(), 16, "{after}");
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(counts.last(), Some(&3));
    assert!(after.contains("tether_hub_publish_seconds_bucket{le=\"+Inf\"} 3\n"));
    // Delivered, but the in-process broker's ids say nothing of when an
    // event was published: no lag counted.
    assert_eq!(sample(&after, "tether_hub_delivery_lag_seconds_count"), 0);
    assert_eq!(
        sample(&after, "tether_hub_events_sent_total{transport=\"sse\"}"),
        3
    );
}
