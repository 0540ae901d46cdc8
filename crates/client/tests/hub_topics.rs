//! `EventSource` following several topics of a real hub on one stream
//! (`/events?topic=a&topic=b&topic=c`): each event names its topic, and
//! after the connection is cut, the cursor it resends as `Last-Event-ID`
//! resumes every topic, one that had no event yet included, each event
//! once and in order.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod common;

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use common::HANG_GUARD;
use common::relay::Relay;
use tether_apps::{HubPublisher, HubSettings, HubShared};
use tether_client::{EventSource, SseEvent};
use tether_server::{Cluster, Handle, Handshake};

/// The hub on two loops of its own, published to from the test.
struct Hub {
    addr: SocketAddr,
    publisher: HubPublisher,
    handle: Handle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Hub {
    fn start() -> Hub {
        let loops = 2;
        let shared = HubShared::new(HubSettings::default(), loops);
        let config = common::config("127.0.0.1:0".parse().unwrap());
        let cluster = Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i)).unwrap();
        let publisher = shared.publisher(cluster.poster());
        let (addr, handle) = (cluster.local_addr(), cluster.handle());
        let thread = Some(std::thread::spawn(move || cluster.run()));
        Hub {
            addr,
            publisher,
            handle,
            thread,
        }
    }

    /// Publishes `data` to `topic` as an `update`; the event's JSON as a
    /// multi-topic stream carries it.
    fn publish(&self, topic: &str, data: &str) -> String {
        let id = self
            .publisher
            .publish(topic, Some("update"), data)
            .wait()
            .unwrap();
        format!(r#"{{"topic":"{topic}","id":"{id}","event":"update","data":"{data}"}}"#)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

/// The next event's data, checked to be an `update` with a cursor for
/// its id; an opening or a reconnection here fails the test.
fn next_update(source: &mut EventSource) -> String {
    match source.next_event() {
        Some(Ok(SseEvent::Message(event))) => {
            assert_eq!(event.event_type(), "update");
            assert!(
                event.last_event_id().starts_with('~'),
                "not a cursor: {}",
                event.last_event_id()
            );
            event.data().to_owned()
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

/// `count` events, sorted by topic, each topic's in the order they came.
fn updates(source: &mut EventSource, count: usize) -> Vec<Vec<String>> {
    let mut by_topic = vec![Vec::new(); 3];
    for _ in 0..count {
        let data = next_update(source);
        let topic = ["a", "b", "c"]
            .iter()
            .position(|t| data.starts_with(&format!(r#"{{"topic":"{t}","#)))
            .unwrap_or_else(|| panic!("an event of no topic followed: {data}"));
        by_topic[topic].push(data);
    }
    by_topic
}

#[test]
fn several_topics_resume_from_the_cursor_after_the_connection_is_cut() {
    let hub = Hub::start();
    let relay = Relay::start(hub.addr);
    let url = format!("http://{}/events?topic=a&topic=b&topic=c", relay.addr);
    let mut source = EventSource::builder(url)
        .retry(Duration::from_millis(10))
        .connect_timeout(HANG_GUARD)
        .read_timeout(Some(HANG_GUARD))
        .build()
        .unwrap();
    assert!(matches!(source.next_event(), Some(Ok(SseEvent::Open))));

    // Subscribed once the head has come: both events are live.
    let a1 = hub.publish("a", "a1");
    let b1 = hub.publish("b", "b1");
    assert_eq!(updates(&mut source, 2), [vec![a1], vec![b1], vec![]]);
    let cursor = source.last_event_id().to_owned();

    // The network fails; the client sees its stream end. It reconnects
    // only when asked for its next event: everything published until
    // then reaches it by its cursor alone, `c` (no event yet) included.
    relay.cut();
    match source.next_event() {
        Some(Ok(SseEvent::Reconnecting { .. })) => {}
        other => panic!("expected the reconnection, got {other:?}"),
    }
    assert_eq!(source.last_event_id(), cursor);
    let a2 = hub.publish("a", "a2");
    let c1 = hub.publish("c", "c1");
    let b2 = hub.publish("b", "b2");
    let a3 = hub.publish("a", "a3");
    let c2 = hub.publish("c", "c2");
    assert!(matches!(source.next_event(), Some(Ok(SseEvent::Open))));
    assert_eq!(updates(&mut source, 5), [vec![a2, a3], vec![b2], vec![c1, c2]]);
    assert_ne!(source.last_event_id(), cursor);

    // Nothing came twice: the next event is the next one published.
    let a4 = hub.publish("a", "a4");
    assert_eq!(next_update(&mut source), a4);
    source.close();
}
