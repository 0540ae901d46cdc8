//! The connect hook on the multiplexed socket (`GET /ws`): an upgrade
//! without credentials is asked about as a per-topic one is, with no
//! topic (the socket names its topics later); the backend's subject and
//! rights are the socket's, for each subscribe, its subscribe hook and
//! its publishes; a refusal or no decision is the upgrade's answer.

use std::time::Duration;

use serde_json::{Value, json};
use tether_hub_app::{Hook, Question};
use tether_server::Message;
use tether_testkit::{WsClient, request};

use crate::helpers::{both, connect, next_text, publish, start};

/// The upgrade's head, with `headers`.
fn upgrade(headers: &str) -> String {
    format!(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{headers}"
    )
}

fn send(socket: &mut WsClient, message: &Value) {
    socket.send(&Message::text(message.to_string()));
}

fn next(socket: &mut WsClient) -> Value {
    serde_json::from_str(&next_text(socket)).unwrap()
}

/// `{"control":C,"topic":T}` next, and the whole answer.
fn answered(socket: &mut WsClient, control: &str, topic: &str) -> Value {
    let answer = next(socket);
    assert_eq!(
        (
            answer.get("control").and_then(Value::as_str),
            answer.get("topic").and_then(Value::as_str)
        ),
        (Some(control), Some(topic)),
        "{answer}"
    );
    answer
}

#[test]
fn the_backend_says_who_a_multiplexed_socket_without_credentials_is() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/ws", "Cookie: session=ann\r\nX-App-User: ann\r\n");
    // Asked once, at the upgrade, with no topic.
    assert_eq!(
        hub.asked.lock().unwrap().clone(),
        [Question::Connect {
            transport: "websocket",
            topic: None,
            remote: Some("127.0.0.1".into()),
            headers: vec![("x-app-user".into(), "ann".into())],
            cookies: vec![("session".into(), "ann".into())],
        }]
    );
    // Its rights are the backend's: its own private topics, not another's.
    send(
        &mut socket,
        &json!({ "type": "subscribe", "topic": "private.ann.inbox" }),
    );
    answered(&mut socket, "subscribed", "private.ann.inbox");
    send(
        &mut socket,
        &json!({ "type": "subscribe", "topic": "private.bob.inbox" }),
    );
    assert_eq!(
        answered(&mut socket, "refused", "private.bob.inbox")["status"],
        403
    );
    publish(server, "private.ann.inbox", "for ann");
    let event = next(&mut socket);
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("private.ann.inbox"), Some("for ann"))
    );
    // And to publish where the backend said.
    send(
        &mut socket,
        &json!({ "type": "publish", "topic": "chat.lobby", "data": "hi" }),
    );
    assert_eq!(
        answered(&mut socket, "published", "chat.lobby")["control"],
        "published"
    );
    send(
        &mut socket,
        &json!({ "type": "publish", "topic": "private.ann.inbox", "data": "no" }),
    );
    assert_eq!(
        answered(&mut socket, "error", "private.ann.inbox")["control"],
        "error"
    );
    // The subscribes after it asked no more questions.
    assert_eq!(hub.asked.lock().unwrap().len(), 1);
    drop(socket);
    hub.server.shutdown();
}

#[test]
fn a_multiplexed_upgrade_the_backend_refuses_or_does_not_decide_is_not_let_in() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    // Refused: its status and reason, as the upgrade's answer.
    let refused = request(
        server.addr,
        "GET",
        "/ws",
        &upgrade("Cookie: session=deny\r\n"),
        b"",
    );
    assert_eq!((refused.status, &refused.body[..]), (401, &b"who are you\n"[..]));
    // Nothing presented: the backend is asked all the same, and refuses.
    let nothing = request(server.addr, "GET", "/ws", &upgrade(""), b"");
    assert_eq!(nothing.status, 401);
    // No decision: 503, never let in.
    let undecided = request(
        server.addr,
        "GET",
        "/ws",
        &upgrade("Cookie: session=garbage\r\n"),
        b"",
    );
    assert_eq!(
        (undecided.status, undecided.header("retry-after")),
        (503, Some("1"))
    );
    hub.server.shutdown();
    let busy = start(&[Hook::Connect], connect, Duration::from_millis(20), true);
    let answer = request(
        busy.server.addr,
        "GET",
        "/ws",
        &upgrade("Cookie: session=ann\r\n"),
        b"",
    );
    assert_eq!(answer.status, 503);
    busy.server.shutdown();
}

#[test]
fn the_subscribe_hook_is_asked_about_the_subject_the_connect_hook_named() {
    let hub = start(
        &[Hook::Connect, Hook::Subscribe],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/ws", "Cookie: session=eve\r\n");
    send(&mut socket, &json!({ "type": "subscribe", "topic": "room.open" }));
    answered(&mut socket, "subscribed", "room.open");
    send(&mut socket, &json!({ "type": "subscribe", "topic": "room.shut" }));
    let refused = answered(&mut socket, "refused", "room.shut");
    assert_eq!(
        (refused["status"].as_u64(), refused["error"].as_str()),
        (Some(403), Some("closed room"))
    );
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        matches!(&asked[0], Question::Connect { topic: None, .. }),
        "{asked:?}"
    );
    for topic in ["room.open", "room.shut"] {
        assert!(
            asked.contains(&Question::Subscribe {
                subject: Some("eve".into()),
                topic: topic.into(),
                transport: "websocket",
            }),
            "{asked:?}"
        );
    }
    publish(server, "room.open", "welcome");
    let event = next(&mut socket);
    assert_eq!(event["data"], "welcome", "{event}");
    drop(socket);
    hub.server.shutdown();
}

#[test]
fn a_multiplexed_socket_the_backend_let_in_is_refreshed_before_it_expires() {
    let hub = start(
        &[Hook::Connect, Hook::Refresh],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut kept = WsClient::connect_with(server.addr, "/ws", "Cookie: session=brief\r\n");
    let mut ended = WsClient::connect_with(server.addr, "/ws", "Cookie: session=gone\r\n");
    for socket in [&mut kept, &mut ended] {
        send(socket, &json!({ "type": "subscribe", "topic": "news" }));
        answered(socket, "subscribed", "news");
    }
    // Past the three seconds the connect hook gave.
    std::thread::sleep(Duration::from_secs(5));
    publish(server, "news", "later");
    // Told its new expiry, as for a new token, and still subscribed.
    let told = next(&mut kept);
    assert_eq!(told["type"], "auth-ok", "{told}");
    assert_eq!(next(&mut kept)["data"], "later");
    // The one the backend refused more time was closed when it was to.
    let (texts, frame) = ended.texts_then_close();
    assert_eq!(frame.code, tether_server::CloseCode::POLICY, "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("later")), "{texts:?}");
    let asked = hub.asked.lock().unwrap().clone();
    for subject in ["brief", "gone"] {
        assert!(
            asked.contains(&Question::Refresh {
                subject: subject.into(),
                transport: "websocket"
            }),
            "{asked:?}"
        );
    }
    drop(kept);
    hub.server.shutdown();
}

#[test]
fn the_backend_says_who_a_multi_topic_stream_without_credentials_is() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut stream = tether_testkit::SseClient::connect(
        server.addr,
        "/events?topic=private.ann.inbox&topic=private.bob.inbox",
        "Cookie: session=ann\r\nX-App-User: ann\r\n",
    );
    assert_eq!(stream.response.status, 200);
    // Asked once, with no topic: each listed topic is decided after.
    assert_eq!(
        hub.asked.lock().unwrap().clone(),
        [Question::Connect {
            transport: "sse",
            topic: None,
            remote: Some("127.0.0.1".into()),
            headers: vec![("x-app-user".into(), "ann".into())],
            cookies: vec![("session".into(), "ann".into())],
        }]
    );
    // Its rights are the backend's: its own private topic, not another's.
    let refused = stream.next_event();
    assert_eq!(refused.event_type(), "refused");
    let refused: Value = serde_json::from_str(refused.data()).unwrap();
    assert_eq!(
        (refused["topic"].as_str(), refused["status"].as_u64()),
        (Some("private.bob.inbox"), Some(403))
    );
    publish(server, "private.bob.inbox", "for bob");
    publish(server, "private.ann.inbox", "for ann");
    let event: Value = serde_json::from_str(stream.next_event().data()).unwrap();
    assert_eq!(
        (event["topic"].as_str(), event["data"].as_str()),
        (Some("private.ann.inbox"), Some("for ann"))
    );
    // The long poll of the same topics is asked about the same way.
    let poll = request(
        server.addr,
        "GET",
        "/poll?topic=private.ann.inbox&topic=private.bob.inbox&timeout=0",
        "Cookie: session=ann\r\n",
        b"",
    );
    assert_eq!(poll.status, 200, "{}", String::from_utf8_lossy(&poll.body));
    let body: Value = serde_json::from_slice(&poll.body).unwrap();
    assert_eq!(body["refused"][0]["topic"], "private.bob.inbox");
    assert!(matches!(
        hub.asked.lock().unwrap().last(),
        Some(Question::Connect {
            transport: "poll",
            topic: None,
            ..
        })
    ));
}
