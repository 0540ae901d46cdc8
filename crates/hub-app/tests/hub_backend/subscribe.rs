//! The subscribe hook, where a namespace says `subscribe=hook`: asked for
//! each subscription (after the connect hook, when both are on), and once
//! for each subscription a ticket's holder opens.

use std::time::Duration;

use tether_hub::{Allowed, Decision};
use tether_hub_app::{Hook, Question};
use tether_testkit::{SseClient, TestServer, WsClient, request};
use tether_ws::Event;

use crate::helpers::{TOKEN, both, get, publish, start, subscribe};
use crate::support::jwt::unix_now;

#[test]
fn a_namespace_may_leave_each_subscription_to_the_backend() {
    let hub = start(&[Hook::Subscribe], subscribe, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut open = SseClient::connect(server.addr, "/topics/room.open/events", "");
    publish(server, "room.open", "welcome");
    assert_eq!(open.next_event().data(), "welcome");
    let closed = get(server, "/topics/room.closed/events", "");
    assert_eq!((closed.status, &closed.body[..]), (403, &b"closed room\n"[..]));
    // Other namespaces are not asked; the publish token never is.
    let _chat = SseClient::connect(server.addr, "/topics/chat.lobby/events", "Connection: close\r\n");
    let token = SseClient::connect(
        server.addr,
        "/topics/room.closed/events",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    drop(token);
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    hub.server.shutdown();
}

#[test]
fn connect_then_subscribe_asks_both_in_turn() {
    let hub = start(
        &[Hook::Connect, Hook::Subscribe],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/topics/room.open/ws", "Cookie: session=eve\r\n");
    publish(server, "room.open", "to eve");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("to eve")),
        other => panic!("{other:?}"),
    }
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        matches!(
            &asked[0],
            Question::Connect {
                transport: "websocket",
                ..
            }
        ),
        "{asked:?}"
    );
    assert_eq!(
        asked[1],
        Question::Subscribe {
            subject: Some("eve".into()),
            topic: "room.open".into(),
            transport: "websocket",
        }
    );
    let refused = get(server, "/topics/room.shut/ws", "Cookie: session=eve\r\n");
    assert_eq!(refused.status, 403);
    hub.server.shutdown();
}

/// Every subscription allowed.
fn allow_subscribes(question: &Question) -> Decision {
    match question {
        Question::Subscribe { .. } => Decision::Allow(Allowed::new()),
        _ => Decision::Unavailable {
            reason: "not asked here",
        },
    }
}

/// A ticket asked for by the publish token for the holder `claims`.
fn ticket_for(server: &TestServer, claims: &str) -> String {
    let answer = request(
        server.addr,
        "POST",
        "/tickets",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        claims.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    answer
        .get("ticket")
        .and_then(serde_json::Value::as_str)
        .unwrap()
        .to_owned()
}

#[test]
fn a_ticket_subscribes_to_a_topic_the_backend_decides_asked_once_for_its_holder() {
    let hub = start(
        &[Hook::Subscribe],
        allow_subscribes,
        Duration::from_millis(20),
        false,
    );
    let server = &hub.server;
    let holder = format!(r#"{{"sub":"ann","exp":{}}}"#, unix_now() + 600);
    let ticket = ticket_for(server, &holder);
    let mut events = SseClient::connect(server.addr, &format!("/topics/room.1/events?ticket={ticket}"), "");
    assert_eq!(
        events.response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&events.response.body)
    );
    let ticket = ticket_for(server, &holder);
    let mut socket = WsClient::connect(server.addr, &format!("/topics/room.1/ws?ticket={ticket}"));
    publish(server, "room.1", "to ann");
    assert_eq!(events.next_event().data(), "to ann");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("to ann"), "{m:?}"),
        other => panic!("{other:?}"),
    }
    // Asked once each, with the holder's subject.
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            Question::Subscribe {
                subject: Some("ann".into()),
                topic: "room.1".into(),
                transport: "sse",
            },
            Question::Subscribe {
                subject: Some("ann".into()),
                topic: "room.1".into(),
                transport: "websocket",
            },
        ]
    );
    // Still single use: the same ticket again is refused, the backend
    // not asked.
    let again = get(server, &format!("/topics/room.1/events?ticket={ticket}"), "");
    assert_eq!(again.status, 403, "{:?}", String::from_utf8_lossy(&again.body));
    assert_eq!(hub.asked.lock().unwrap().len(), 2);
    hub.server.shutdown();
}
