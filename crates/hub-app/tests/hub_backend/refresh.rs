//! The refresh hook: asked, before a connection the connect hook let in
//! expires, whether it may stay longer.

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_hub_app::{Hook, Question};
use tether_testkit::{SseClient, WsClient};

use crate::helpers::{both, get, next_text, publish, start, start_on_loops};

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

/// A loop held past the second its refresh was to be asked in (its
/// one-second tick slips, as on a busy machine) asks when it comes to the
/// expiry instead, and the connection waits for the answer rather than
/// ending with the backend never asked.
#[test]
fn a_refresh_missed_by_a_late_tick_is_asked_before_the_connection_ends() {
    let hub = start_on_loops(
        &[Hook::Connect, Hook::Refresh],
        both,
        Duration::from_millis(10),
        false,
        None,
        Duration::from_millis(300),
        |_| {},
        1,
    );
    let server = &hub.server;
    // Early in a second `s`: the connect hook's expiry is `s + 3`, its
    // refresh due in second `s + 2`.
    let since_second = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis()
    };
    while !(50..300).contains(&since_second()) {
        thread::sleep(Duration::from_millis(10));
    }
    let mut kept = SseClient::connect(server.addr, "/topics/news/events", "Cookie: session=brief\r\n");
    // From `s + 1.7` to `s + 3.3` the one loop is held: no tick in `s + 2`.
    thread::sleep(Duration::from_millis(1700).saturating_sub(Duration::from_millis(since_second().into())));
    let held = get(server, "/topics/other/events", "Cookie: session=hold\r\n");
    // Refused (401), or unanswered in the backend's time (503).
    assert!(matches!(held.status, 401 | 503), "{}", held.status);
    publish(server, "news", "later");
    assert_eq!(kept.next_event().data(), "later");
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&Question::Refresh {
            subject: "brief".into(),
            transport: "sse"
        }),
        "{asked:?}"
    );
    hub.server.shutdown();
}
