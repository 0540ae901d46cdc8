//! The connect hook: who a request without credentials is, and what
//! rights that gives it, on every transport; a cookie counts only from the
//! server's own page; a backend slow or busy lets no one in.

use std::time::Duration;

use tether_hub_app::{Hook, Question};
use tether_server::Message;
use tether_testkit::h2::H2Client;
use tether_testkit::{SseClient, WsClient, request};
use tether_ws::Event;

use crate::helpers::{connect, get, publish, start};

#[test]
fn the_backend_says_who_a_request_without_credentials_is() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    // Its own private topics, as a token with these rights would allow.
    let mut events = SseClient::connect(
        server.addr,
        "/topics/private.ann.inbox/events",
        "Cookie: theme=dark; session=ann\r\nX-App-User: ann\r\n",
    );
    publish(server, "private.ann.inbox", "for ann");
    assert_eq!(events.next_event().data(), "for ann");
    // The question carried what the backend was configured to see, and
    // nothing else.
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        Question::Connect {
            transport: "sse",
            topic: Some("private.ann.inbox".into()),
            remote: Some("127.0.0.1".into()),
            headers: vec![("x-app-user".into(), "ann".into())],
            cookies: vec![("session".into(), "ann".into())],
        }
    );
    // Not another's.
    let refused = get(
        server,
        "/topics/private.bob.inbox/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!(refused.status, 403);
    // Refused by the backend: its status and reason, before any stream.
    let refused = get(server, "/topics/chat.lobby/events", "Cookie: session=deny\r\n");
    assert_eq!((refused.status, &refused.body[..]), (401, &b"who are you\n"[..]));
    // No decision: 503, come back later; never let in.
    let unavailable = get(server, "/topics/chat.lobby/events", "Cookie: session=garbage\r\n");
    assert_eq!(
        (unavailable.status, unavailable.header("retry-after")),
        (503, Some("1"))
    );
    hub.server.shutdown();
}

#[test]
fn a_socket_let_in_by_the_backend_publishes_with_its_rights() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut reader = SseClient::connect(server.addr, "/topics/chat.lobby/events", "Cookie: session=cy\r\n");
    let mut socket = WsClient::connect_with(server.addr, "/topics/chat.lobby/ws", "Cookie: session=cy\r\n");
    socket.send(&Message::text("hello from cy"));
    assert_eq!(reader.next_event().data(), "hello from cy");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("hello from cy"), "{m:?}"),
        other => panic!("{other:?}"),
    }
    // Over HTTP, its rights to publish.
    let posted = request(
        server.addr,
        "POST",
        "/topics/chat.lobby",
        "Cookie: session=cy\r\n",
        b"posted by cy",
    );
    assert_eq!(posted.status, 200, "{:?}", String::from_utf8_lossy(&posted.body));
    assert_eq!(reader.next_event().data(), "posted by cy");
    let outside = request(
        server.addr,
        "POST",
        "/topics/room.open",
        "Cookie: session=cy\r\n",
        b"x",
    );
    assert_eq!(outside.status, 403);
    hub.server.shutdown();
}

#[test]
fn long_polls_and_http2_streams_wait_for_the_backend_too() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    publish(server, "private.di.feed", "first");
    let polled = get(
        server,
        "/topics/private.di.feed/poll?since=0-0",
        "Cookie: session=di\r\n",
    );
    assert_eq!(polled.status, 200);
    assert!(String::from_utf8_lossy(&polled.body).contains("first"));
    let mut h2 = H2Client::connect(server.addr);
    let events = h2.get(
        "/topics/private.di.feed/events",
        &[("cookie", "session=di"), ("last-event-id", "0-0")],
    );
    assert_eq!(h2.head(events).status(), Some(200));
    h2.data_contains(events, b"data: first\n");
    let refused = h2.get("/topics/private.di.feed/events", &[("cookie", "session=deny")]);
    assert_eq!(h2.finish(refused).status(), Some(401));
    hub.server.shutdown();
}

#[test]
fn a_cookie_from_another_sites_page_is_not_passed_to_the_backend() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(10), false);
    let server = &hub.server;
    // A page elsewhere makes the browser open a WebSocket with the cookie:
    // the backend hears of no cookie, and refuses.
    let hijack = get(
        server,
        "/topics/chat.lobby/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\nCookie: session=ann\r\n",
    );
    assert_eq!(hijack.status, 401);
    let sent_by_browser = get(
        server,
        "/topics/chat.lobby/events",
        "Sec-Fetch-Site: cross-site\r\nCookie: session=ann\r\n",
    );
    assert_eq!(sent_by_browser.status, 401);
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .all(|q| matches!(q, Question::Connect { cookies, .. } if cookies.is_empty())),
        "{asked:?}"
    );
    // From the server's own page, it is.
    let own = SseClient::connect(
        server.addr,
        "/topics/chat.lobby/events",
        "Origin: http://test\r\nCookie: session=ann\r\n",
    );
    assert_eq!(own.response.status, 200);
    hub.server.shutdown();
}

#[test]
fn a_slow_or_busy_backend_is_a_503_never_an_allow() {
    // Slower than its own timeout and the hold's margin.
    let slow = start(&[Hook::Connect], connect, Duration::from_millis(2500), false);
    let answer = get(
        &slow.server,
        "/topics/chat.lobby/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!((answer.status, answer.header("retry-after")), (503, Some("1")));
    slow.server.shutdown();
    let busy = start(&[Hook::Connect], connect, Duration::ZERO, true);
    let answer = get(
        &busy.server,
        "/topics/chat.lobby/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!(answer.status, 503);
    let metrics = get(&busy.server, "/metrics", "");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("tether_hub_backend_decisions_total{hook=\"connect\",outcome=\"unavailable\"} 1"),
        "{text}"
    );
    busy.server.shutdown();
}
