//! Presence per subscription: a socket is present on each topic it
//! follows (as its subject), watches joins and leaves of those it asked
//! to, and leaves a topic when it unsubscribes from it alone.

use serde_json::json;

use crate::helpers::{Hub, settings, token};

/// The members of `topic` (`GET /api/presence`).
fn members(hub: &Hub, topic: &str) -> Vec<String> {
    let (status, body) = hub.api_get(&format!("/api/presence?topic={topic}"));
    assert_eq!(status, 200, "{body}");
    let mut members: Vec<String> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    members.sort();
    members
}

/// Waits until `topic`'s members are `expected` (presence is told to the
/// topic's sequencer loop by a post).
pub(crate) fn eventually_members(hub: &Hub, topic: &str, expected: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let now = members(hub, topic);
        if now == expected {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{topic}: {now:?}, not {expected:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_socket_is_present_on_each_topic_it_follows_and_leaves_each_alone() {
    let hub = Hub::start(settings(), 2);
    let mut watcher = hub.socket_with(&token("wat", &[], &[]));
    watcher.send(&json!({ "type": "subscribe", "topic": "lobby", "presence": true }));
    watcher.subscribed("lobby");
    // Its own join first.
    assert_eq!(
        watcher.next(),
        json!({ "topic": "lobby", "event": "join", "member": "wat" })
    );
    watcher.follow(&["quiet"]);
    let mut ann = hub.socket_with(&token("ann", &[], &[]));
    ann.follow(&["lobby", "quiet"]);
    assert_eq!(
        watcher.next(),
        json!({ "topic": "lobby", "event": "join", "member": "ann" })
    );
    eventually_members(&hub, "lobby", &["ann", "wat"]);
    eventually_members(&hub, "quiet", &["ann", "wat"]);
    // Ann leaves the lobby alone: told to its watcher; still in "quiet".
    ann.unsubscribe("lobby");
    assert_eq!(ann.next()["control"], "unsubscribed");
    assert_eq!(
        watcher.next(),
        json!({ "topic": "lobby", "event": "leave", "member": "ann" })
    );
    eventually_members(&hub, "quiet", &["ann", "wat"]);
    // Her socket closes: she leaves "quiet" too; no join or leave of a
    // topic the watcher did not ask for reaches it.
    drop(ann);
    eventually_members(&hub, "quiet", &["wat"]);
    hub.publish("lobby", "after");
    assert_eq!(watcher.event(), ("lobby".to_owned(), "after".to_owned()));
}
