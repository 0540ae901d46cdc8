//! The backend's answer times in `tether_hub_backend_seconds`, by hook:
//! each question counted once, when its answer comes, under its hook.

use std::time::Duration;

use tether_hub_app::Hook;
use tether_server::Message;
use tether_testkit as common;

use common::{SseClient, WsClient};

use crate::helpers::{both, get, start};

fn sample(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        .parse()
        .unwrap()
}

#[test]
fn the_backend_answer_time_is_counted_by_hook() {
    // Each answer comes 20 ms after its question at the soonest, a
    // publish of "slow ..." 170 ms.
    let hub = start(&[Hook::Publish], both, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut reader = SseClient::connect(server.addr, "/topics/vote.2/events", "");
    let mut socket = WsClient::connect_with(server.addr, "/topics/vote.2/ws", "");
    for text in ["slow one", "two"] {
        socket.send(&Message::text(text));
    }
    for expected in ["slow one", "two"] {
        assert_eq!(reader.next_event().data(), expected);
    }
    let page = String::from_utf8(get(server, "/metrics", "").body).unwrap();
    let count = |hook: &str| {
        sample(
            &page,
            &format!("tether_hub_backend_seconds_count{{hook=\"{hook}\"}}"),
        )
    };
    assert_eq!(count("publish"), 2, "{page}");
    assert_eq!(
        count("connect") + count("subscribe") + count("refresh"),
        0,
        "{page}"
    );
    let bucket = |le: &str| {
        sample(
            &page,
            &format!("tether_hub_backend_seconds_bucket{{hook=\"publish\",le=\"{le}\"}}"),
        )
    };
    // Neither answered within 10 ms; the slow one not within 100 ms.
    assert_eq!(bucket("0.01"), 0, "{page}");
    assert!(bucket("0.1") <= 1, "{page}");
    assert_eq!(bucket("+Inf"), 2, "{page}");
    // Both went on to the broker, and their outcome came, each timed
    // from its arrival: its wait for the backend counts.
    assert_eq!(sample(&page, "tether_hub_publish_seconds_count"), 2, "{page}");
    assert_eq!(
        sample(&page, "tether_hub_publish_seconds_bucket{le=\"0.01\"}"),
        0,
        "{page}"
    );
}
