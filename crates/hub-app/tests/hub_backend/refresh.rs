//! The refresh hook: asked, before a connection the connect hook let in
//! expires, whether it may stay longer.

use std::thread;
use std::time::Duration;

use tether_hub_app::{Hook, Question};
use tether_testkit::{SseClient, WsClient};

use crate::helpers::{both, next_text, publish, start};

#[test]
fn the_backend_is_asked_for_a_later_expiry_before_a_connection_it_let_in_expires() {
    let hub = start(
        &[Hook::Connect, Hook::Refresh],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut kept = SseClient::connect(server.addr, "/topics/news/events", "Cookie: session=brief\r\n");
    let mut socket = WsClient::connect_with(server.addr, "/topics/news/ws", "Cookie: session=brief\r\n");
    let mut ended = SseClient::connect(server.addr, "/topics/news/events", "Cookie: session=gone\r\n");
    // Past the three seconds the connect hook gave.
    thread::sleep(Duration::from_secs(5));
    publish(server, "news", "later");
    assert_eq!(kept.next_event().data(), "later");
    // The WebSocket is told its new expiry, as for a new token.
    let told = next_text(&mut socket);
    assert!(
        told.contains(r#""type":"auth-ok""#) && told.contains("expires_in"),
        "{told}"
    );
    assert!(next_text(&mut socket).contains("later"));
    // The one the backend refused more time ended when it was to.
    let mut heard = Vec::new();
    while let Some(item) = ended.next_item() {
        if let tether_sse::Item::Event(event) = item {
            heard.push(event.data().to_owned());
        }
    }
    assert!(!heard.iter().any(|data| data == "later"), "{heard:?}");
    let asked = hub.asked.lock().unwrap().clone();
    let refreshes: Vec<_> = asked
        .iter()
        .filter(|q| matches!(q, Question::Refresh { .. }))
        .collect();
    assert_eq!(refreshes.len(), 3, "{asked:?}");
    assert!(refreshes.contains(&&Question::Refresh {
        subject: "gone".into(),
        transport: "sse"
    }));
    hub.server.shutdown();
}
