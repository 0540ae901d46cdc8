//! The tokio `EventSource` following several topics of a real hub on one
//! stream (`/events?topic=a&topic=b&topic=c`): each event names its
//! topic, and after the network is cut, the cursor it resends as
//! `Last-Event-ID` resumes every topic, one that had no event yet
//! included, each event once and in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "client")]

#[path = "../examples/axum_with_hub.rs"]
#[allow(dead_code)]
mod example;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use example::Hub;
use tether_apps::HubSettings;
use tether_backoff::Backoff;
use tether_server::Config;
use tether_tokio::client::EventSource;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Only to fail a test that would otherwise hang; never what passes it.
const LIMIT: Duration = Duration::from_secs(20);

/// A TCP relay to the hub that can fail like a network: `cut` ends every
/// connection it carries and drops new ones until `restore`.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (up, open) = (up.clone(), open.clone());
            tokio::spawn(async move {
                loop {
                    let (mut client, _) = listener.accept().await.unwrap();
                    // Taken under the lock `cut` holds, so that no
                    // connection slips past a cut.
                    let mut open = open.lock().await;
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    open.push(tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(server).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    }));
                }
            })
        };
        Relay {
            addr,
            up,
            open,
            accept,
        }
    }

    async fn cut(&self) {
        let mut open = self.open.lock().await;
        self.up.store(false, Ordering::SeqCst);
        for connection in open.drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Publishes `data` to `topic` as an `update`; the event's JSON as a
/// multi-topic stream carries it.
async fn publish(hub: &Hub, topic: &str, data: &str) -> String {
    let id = hub.publisher.publish(topic, Some("update"), data).await.unwrap();
    format!(r#"{{"topic":"{topic}","id":"{id}","event":"update","data":"{data}"}}"#)
}

/// `count` events' data, sorted by topic, each topic's in the order they
/// came; and the last one's id.
async fn updates(events: &mut mpsc::Receiver<(String, String)>, count: usize) -> (Vec<Vec<String>>, String) {
    let mut by_topic = vec![Vec::new(); 3];
    let mut last = String::new();
    for _ in 0..count {
        let (data, id) = timeout(LIMIT, events.recv()).await.unwrap().unwrap();
        assert!(id.starts_with('~'), "not a cursor: {id}");
        let topic = ["a", "b", "c"]
            .iter()
            .position(|t| data.starts_with(&format!(r#"{{"topic":"{t}","#)))
            .unwrap_or_else(|| panic!("an event of no topic followed: {data}"));
        by_topic[topic].push(data);
        last = id;
    }
    (by_topic, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_topics_resume_from_the_cursor_after_the_network_is_cut() {
    let mut config = Config::new(([127, 0, 0, 1], 0).into());
    config.raise_fd_limit = false;
    config.linger = Duration::from_millis(200);
    // The `retry:` hint, so that the reconnection is quick.
    config.sse_retry = Duration::from_millis(20);
    let hub = Hub::start(config, HubSettings::default(), 2).unwrap();
    let relay = Relay::start(hub.addr).await;

    let url = format!("http://{}/events?topic=a&topic=b&topic=c", relay.addr);
    let mut source = EventSource::new(&url)
        .unwrap()
        .reconnection_time(Duration::from_millis(20))
        .backoff(
            Backoff::new()
                .initial(Duration::from_millis(10))
                .max(Duration::from_millis(50)),
        );
    let (tx, mut events) = mpsc::channel(16);
    let reader = tokio::spawn(async move {
        while let Some(event) = source.next().await.unwrap() {
            assert_eq!(event.event_type(), "update");
            let sent = (event.data().to_owned(), event.last_event_id().to_owned());
            if tx.send(sent).await.is_err() {
                break;
            }
        }
    });

    // The client says nothing when its stream opens: `a` is published to
    // until an event arrives, and from that one on, every later one does.
    let mut sent = Vec::new();
    let got = loop {
        sent.push(publish(&hub, "a", &format!("a{}", sent.len() + 1)).await);
        if let Ok(got) = timeout(Duration::from_millis(100), events.recv()).await {
            break got.unwrap().0;
        }
    };
    let from = sent.iter().position(|s| *s == got).expect("an event published");
    let b1 = publish(&hub, "b", "b1").await;
    let (rest, cursor) = updates(&mut events, sent.len() - from).await;
    assert_eq!(rest, [sent[from + 1..].to_vec(), vec![b1], vec![]]);

    // The network fails; nothing can reach the client until it is back,
    // and what was published meanwhile comes by the cursor alone, `c`
    // (no event yet) included.
    relay.cut().await;
    let a2 = publish(&hub, "a", "after-1").await;
    let c1 = publish(&hub, "c", "after-2").await;
    let b2 = publish(&hub, "b", "after-3").await;
    let a3 = publish(&hub, "a", "after-4").await;
    let c2 = publish(&hub, "c", "after-5").await;
    relay.restore();
    let (resumed, last) = updates(&mut events, 5).await;
    assert_eq!(resumed, [vec![a2, a3], vec![b2], vec![c1, c2]]);
    assert_ne!(last, cursor);

    // Nothing came twice: the next event is the next one published.
    let a4 = publish(&hub, "a", "a-last").await;
    assert_eq!(timeout(LIMIT, events.recv()).await.unwrap().unwrap().0, a4);

    drop(events);
    reader.abort();
    drop(relay);
    tokio::task::spawn_blocking(move || hub.stop())
        .await
        .unwrap()
        .unwrap();
}
