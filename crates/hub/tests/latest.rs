//! Subscribers from nowhere that start at the topic's latest event
//! ([`Start::Latest`]): on a hub that has every topic, and on one that
//! waits for a topic's history first; beside them, subscribers from
//! nowhere that start at the next event and ones that resume from an id,
//! unchanged.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tether_hub::{Config, Event, EventId, Hub, Polled, Replay, Start, Subscribed, Transport};

fn event(topic: &str, seq: u64, data: &str) -> Arc<Event> {
    Event::new(Arc::from(topic), EventId::new(10, seq), "message", data).unwrap()
}

/// The replay of a live subscriber: whether it has a gap signal, and its
/// events' sequence numbers.
fn replayed(subscribed: Subscribed<'_>) -> (bool, Vec<u64>) {
    let data = |events: tether_hub::Events<'_>| events.map(|e| e.id().seq()).collect();
    match subscribed {
        Subscribed::Live(Replay::Events(events)) => (false, data(events)),
        Subscribed::Live(Replay::Gap(_, events)) => (true, data(events)),
        Subscribed::Held { .. } => panic!("held"),
    }
}

fn polled_now(polled: Polled) -> Vec<u64> {
    match polled {
        Polled::Now {
            gap: None, events, ..
        } => events.iter().map(|e| e.id().seq()).collect(),
        other => panic!("not answered at once: {other:?}"),
    }
}

#[test]
fn a_subscriber_from_nowhere_gets_the_latest_event_then_the_live_ones() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    for (seq, score) in [(1, "1-0"), (2, "2-0"), (3, "2-1")] {
        hub.deliver(event("score", seq, score)).unwrap();
    }
    for (sub, transport) in [
        (1, Transport::WebSocket),
        (2, Transport::RawWebSocket),
        (3, Transport::EventStream),
    ] {
        let subscribed = hub.subscribe_at("score", sub, transport, Start::Latest).unwrap();
        assert_eq!(replayed(subscribed), (false, vec![3]), "{transport:?}");
    }
    // From nowhere without it: nothing; resuming: exactly what follows.
    let next = hub.subscribe_at("score", 4, Transport::WebSocket, Start::Next);
    assert_eq!(replayed(next.unwrap()), (false, vec![]));
    let after = hub.subscribe_at("score", 5, Transport::WebSocket, Start::After("10-1"));
    assert_eq!(replayed(after.unwrap()), (false, vec![2, 3]));
    let after_latest = hub.subscribe_at("score", 6, Transport::EventStream, Start::After("10-3"));
    assert_eq!(replayed(after_latest.unwrap()), (false, vec![]));
    // Then live, every one of them.
    let delivery = hub.deliver(event("score", 4, "3-1")).unwrap();
    assert_eq!(
        delivery.websocket.len() + delivery.raw_websocket.len() + delivery.event_stream.len(),
        6
    );
}

#[test]
fn a_long_poll_from_nowhere_is_answered_at_once_with_the_latest_event() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), true);
    // No event yet: it waits for the first, as any poll from nowhere.
    assert!(matches!(hub.poll_at("price", 1, Start::Latest), Ok(Polled::Wait)));
    let delivery = hub.deliver(event("price", 1, "100")).unwrap();
    assert_eq!(delivery.waiters, [1]);
    hub.deliver(event("price", 2, "101")).unwrap();
    assert_eq!(polled_now(hub.poll_at("price", 2, Start::Latest).unwrap()), [2]);
    assert!(hub.subscription(2).is_none(), "answered, not registered");
    // Without it, a poll from nowhere waits; one from an id is unchanged.
    assert!(matches!(hub.poll_at("price", 3, Start::Next), Ok(Polled::Wait)));
    assert_eq!(
        polled_now(hub.poll_at("price", 4, Start::After("10-1")).unwrap()),
        [2]
    );
    assert!(matches!(
        hub.poll_at("price", 5, Start::After("10-2")),
        Ok(Polled::Wait)
    ));
}

#[test]
fn a_latest_event_the_backlog_does_not_hold_is_not_replayed() {
    // The backlog keeps 64 bytes: the last event is too large to keep, and
    // the one before it is no longer the latest.
    let mut config = Config::default();
    config.max_backlog_bytes = 64;
    let mut hub: Hub<u32> = Hub::new(config, true);
    hub.deliver(event("t", 1, "a")).unwrap();
    hub.deliver(event("t", 2, &"b".repeat(100))).unwrap();
    let subscribed = hub
        .subscribe_at("t", 1, Transport::WebSocket, Start::Latest)
        .unwrap();
    assert_eq!(replayed(subscribed), (false, vec![]));
    assert!(matches!(hub.poll_at("t", 2, Start::Latest), Ok(Polled::Wait)));
}

#[test]
fn subscribers_held_for_the_history_get_its_latest_event_when_it_comes() {
    let mut hub: Hub<u32> = Hub::new(Config::default(), false);
    let held = hub
        .subscribe_at("score", 1, Transport::WebSocket, Start::Latest)
        .unwrap();
    assert!(matches!(held, Subscribed::Held { follow: true }));
    let held = hub
        .subscribe_at("score", 2, Transport::EventStream, Start::Next)
        .unwrap();
    assert!(matches!(held, Subscribed::Held { follow: false }));
    assert!(matches!(
        hub.poll_at("score", 3, Start::Latest),
        Ok(Polled::Held { follow: false })
    ));
    assert!(matches!(
        hub.poll_at("score", 4, Start::Next),
        Ok(Polled::Held { .. })
    ));
    let held = hub.subscribe_at("score", 5, Transport::WebSocket, Start::After("10-1"));
    assert!(matches!(held, Ok(Subscribed::Held { .. })));

    let history = vec![event("score", 1, "1-0"), event("score", 2, "1-1")];
    let readied = hub.ready("score", history, None).unwrap();
    let mut resumed: Vec<(u32, Vec<u64>)> = readied
        .resumed
        .iter()
        .map(|r| {
            assert!(r.gap.is_none());
            (r.sub, r.events.iter().map(|e| e.id().seq()).collect())
        })
        .collect();
    resumed.sort();
    let latest = vec![2];
    assert_eq!(
        resumed,
        [(1, latest.clone()), (2, vec![]), (3, latest.clone()), (5, latest)]
    );
    // The answered poll is gone; the one from nowhere waits for the next
    // event with the live subscribers.
    assert!(hub.subscription(3).is_none());
    let delivery = hub.deliver(event("score", 3, "2-1")).unwrap();
    assert_eq!(delivery.waiters, [4]);
    assert_eq!((delivery.websocket.len(), delivery.event_stream.len()), (2, 1));
}
