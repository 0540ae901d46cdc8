//! The hub from a tokio application (examples/axum_with_hub.rs): the hub
//! on its own threads, publishes from tokio tasks through cloned
//! `HubPublisher`s, resolved with the ids an event-stream subscriber
//! sees, in each task's order; refusals; and no publish left waiting once
//! the hub has stopped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "../examples/axum_with_hub.rs"]
#[allow(dead_code)]
mod example;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use example::Hub;
use tether_apps::{HubSettings, PublishError};
use tether_hub::Error as HubError;
use tether_server::Config;
use tether_sse::{Item, MessageEvent, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Only to fail a test that would otherwise hang; never what passes it.
const LIMIT: Duration = Duration::from_secs(20);

fn start(settings: HubSettings) -> Hub {
    let mut config = Config::new(([127, 0, 0, 1], 0).into());
    config.raise_fd_limit = false;
    config.linger = Duration::from_millis(200);
    Hub::start(config, settings, 2).unwrap()
}

/// An event-stream subscriber over a plain TCP connection.
struct Subscriber {
    stream: TcpStream,
    parser: Parser,
}

impl Subscriber {
    /// Subscribed once the response head (200) has come.
    async fn connect(addr: SocketAddr, topic: &str) -> Subscriber {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /topics/{topic}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response head");
            head.extend_from_slice(&buf[..n]);
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let mut parser = Parser::new();
        parser.feed(&head[end..]);
        Subscriber { stream, parser }
    }

    async fn next(&mut self) -> MessageEvent {
        let mut buf = [0u8; 4096];
        loop {
            match self.parser.poll() {
                Some(Ok(Item::Event(event))) => return event,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("a malformed event stream: {e}"),
                None => {}
            }
            let n = self.stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the event stream ended");
            self.parser.feed(&buf[..n]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_from_tasks_resolve_with_the_ids_subscribers_see_in_order() {
    const TASKS: usize = 4;
    const EACH: usize = 25;
    let hub = start(HubSettings::default());
    let mut subscriber = Subscriber::connect(hub.addr, "orders").await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let publisher = hub.publisher.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            if task % 2 == 0 {
                // Each awaited before the next.
                for n in 0..EACH {
                    let id = publisher
                        .publish("orders", Some("order"), format!("{task}/{n}"))
                        .await;
                    ids.push((format!("{task}/{n}"), id.unwrap().to_string()));
                }
            } else {
                // All made at once, then awaited: the order is still the
                // order they were made in.
                let futures: Vec<_> = (0..EACH)
                    .map(|n| {
                        (
                            format!("{task}/{n}"),
                            publisher.publish("orders", Some("order"), format!("{task}/{n}")),
                        )
                    })
                    .collect();
                for (data, future) in futures {
                    ids.push((data, future.await.unwrap().to_string()));
                }
            }
            ids
        }));
    }
    let mut resolved = HashMap::new();
    for task in tasks {
        for (data, id) in timeout(LIMIT, task).await.unwrap().unwrap() {
            resolved.insert(data, id);
        }
    }
    assert_eq!(resolved.len(), TASKS * EACH);
    let mut next_of = [0usize; TASKS];
    let mut seen = Vec::new();
    for _ in 0..TASKS * EACH {
        let event = timeout(LIMIT, subscriber.next())
            .await
            .expect("every event delivered");
        assert_eq!(event.event_type(), "order");
        let (task, n) = event.data().split_once('/').unwrap();
        let (task, n): (usize, usize) = (task.parse().unwrap(), n.parse().unwrap());
        assert_eq!(n, next_of[task], "task {task}'s publishes out of order");
        next_of[task] += 1;
        assert_eq!(
            resolved[event.data()],
            event.last_event_id(),
            "{}: the publish resolved with another id than the subscriber saw",
            event.data()
        );
        seen.push(event.last_event_id().to_owned());
    }
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), TASKS * EACH, "an id given twice");
    tokio::task::spawn_blocking(move || hub.stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn refusals_resolve_with_the_hubs_error() {
    let mut settings = HubSettings::default();
    settings.hub.max_event_size = 64;
    settings.hub.max_topics = 1;
    let hub = start(settings);
    let publisher = &hub.publisher;
    assert_eq!(
        publisher.publish("no spaces", None, "x").await,
        Err(PublishError::Refused(HubError::InvalidTopic))
    );
    assert_eq!(
        publisher.publish("orders", Some("gap"), "x").await,
        Err(PublishError::Refused(HubError::InvalidEventType))
    );
    assert_eq!(
        publisher.publish("orders", None, "x".repeat(65)).await,
        Err(PublishError::Refused(HubError::EventTooLarge {
            size: 65,
            max: 64
        }))
    );
    // Refused in the loop, by the broker: one topic is the most.
    timeout(LIMIT, publisher.publish("orders", None, "x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        timeout(LIMIT, publisher.publish("returns", None, "x"))
            .await
            .unwrap(),
        Err(PublishError::Refused(HubError::TopicLimit { max: 1 }))
    );
    // The blocking form, from a thread outside the runtime.
    let blocking = hub.publisher.clone();
    let id = tokio::task::spawn_blocking(move || blocking.publish("orders", None, "y").wait());
    timeout(LIMIT, id).await.unwrap().unwrap().unwrap();
    tokio::task::spawn_blocking(move || hub.stop())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_publish_after_the_hub_stopped_resolves_unanswered() {
    let hub = start(HubSettings::default());
    let publisher = hub.publisher.clone();
    timeout(LIMIT, publisher.publish("orders", None, "before"))
        .await
        .unwrap()
        .unwrap();
    tokio::task::spawn_blocking(move || hub.stop())
        .await
        .unwrap()
        .unwrap();
    for topic in ["orders", "others", "more"] {
        assert_eq!(
            timeout(LIMIT, publisher.publish(topic, None, "after"))
                .await
                .expect("no hang"),
            Err(PublishError::Unanswered)
        );
    }
}

#[tokio::test]
async fn the_examples_route_publishes_to_the_hub() {
    let hub = start(HubSettings::default());
    let mut subscriber = Subscriber::connect(hub.addr, "orders").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = example::app(hub.publisher.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /orders HTTP/1.1\r\nHost: test\r\nContent-Length: 7\r\nConnection: close\r\n\r\none tea",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    timeout(LIMIT, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let event = timeout(LIMIT, subscriber.next()).await.unwrap();
    assert_eq!((event.event_type(), event.data()), ("order", "one tea"));
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, format!("{{\"id\":\"{}\"}}\n", event.last_event_id()));
    server.abort();
    tokio::task::spawn_blocking(move || hub.stop())
        .await
        .unwrap()
        .unwrap();
}
