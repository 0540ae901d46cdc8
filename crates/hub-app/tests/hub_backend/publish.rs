//! The publish hook, where a namespace says `publish=hook`: whether and as
//! what each publish goes out, in the order sent, over WebSocket and HTTP;
//! what a stopping server answers for a publish not decided yet; publishes
//! waiting for the backend count against the in-flight bound.

use std::thread;
use std::time::Duration;

use tether_auth::Keys;
use tether_hub_app::{Hook, HubAuth, Question};
use tether_server::Message;
use tether_testkit as common;
use tether_ws::Event;

use common::{SseClient, WsClient, request};

use crate::helpers::{Hub, both, next_text, publish, publish_decision, start, start_on_loops, start_with};
use crate::support::jwt::{sign, unix_now};

#[test]
fn a_namespace_may_leave_each_publish_to_the_backend_in_the_order_sent() {
    let hub = start(&[Hook::Publish], both, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut reader = SseClient::connect(server.addr, "/topics/vote.1/events", "");
    let mut socket = WsClient::connect_with(server.addr, "/topics/vote.1/ws", "");
    // The first is decided last; they go out in the order sent all the
    // same, as the backend decided each.
    for text in ["slow first", "second", "shout third", "deny fourth", "fifth"] {
        socket.send(&Message::text(text));
    }
    for expected in ["slow first", "second", "SHOUT THIRD", "fifth"] {
        assert_eq!(reader.next_event().data(), expected);
    }
    // The socket hears its own events, and the refusal with its reason.
    let mut heard = Vec::new();
    while heard.len() < 5 {
        heard.push(next_text(&mut socket));
    }
    assert!(
        heard
            .iter()
            .any(|m| m.contains(r#""control":"error""#) && m.contains("not that")),
        "{heard:?}"
    );
    // No decision: an error, and nothing published.
    socket.send(&Message::text("garbage"));
    assert!(next_text(&mut socket).contains("did not decide"));
    socket.send(&Message::text("sixth"));
    assert_eq!(reader.next_event().data(), "sixth");
    // The publish token is the backend itself: never asked.
    publish(server, "vote.1", "from the backend");
    assert_eq!(reader.next_event().data(), "from the backend");
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 7, "{asked:?}");
    assert_eq!(
        asked[0],
        Question::Publish {
            subject: None,
            topic: "vote.1".into(),
            data: "slow first".into(),
            event: None,
            encoding: None,
        }
    );
    hub.server.shutdown();
}

#[test]
fn a_raw_publisher_refused_by_the_backend_is_closed_with_the_reason() {
    let hub = start(&[Hook::Publish], both, Duration::from_millis(10), false);
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/topics/vote.2/ws?format=raw", "");
    socket.send(&Message::text("deny this"));
    loop {
        match socket.next_event() {
            Some(Event::Close(frame)) => {
                assert_eq!((frame.code.0, frame.reason.as_str()), (1008, "not that"));
                break;
            }
            Some(Event::Message(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    hub.server.shutdown();
}

#[test]
fn an_http_publish_waits_for_the_backend_and_gets_its_answer() {
    let hub = start(
        &[Hook::Connect, Hook::Publish],
        both,
        Duration::from_millis(20),
        false,
    );
    let server = &hub.server;
    // The reader too is who the backend says (any public topic is open).
    let mut reader = SseClient::connect(server.addr, "/topics/vote.3/events", "Cookie: session=rd\r\n");
    let post = |data: &str| {
        request(
            server.addr,
            "POST",
            "/topics/vote.3",
            "Cookie: session=cy\r\n",
            data.as_bytes(),
        )
    };
    let posted = post("shout yes");
    assert_eq!(posted.status, 200, "{:?}", String::from_utf8_lossy(&posted.body));
    assert!(String::from_utf8_lossy(&posted.body).contains(r#""id""#));
    assert_eq!(reader.next_event().data(), "SHOUT YES");
    let refused = post("deny no");
    assert_eq!((refused.status, &refused.body[..]), (403, &b"not that\n"[..]));
    let undecided = post("garbage");
    assert_eq!(
        (undecided.status, undecided.header("retry-after")),
        (503, Some("1"))
    );
    assert_eq!(post("plain").status, 200);
    assert_eq!(reader.next_event().data(), "plain");
    // Who published, as the connect hook said.
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(
            |q| matches!(q, Question::Publish { subject: Some(s), data, .. } if s == "cy" && data == "plain")
        ),
        "{asked:?}"
    );
    hub.server.shutdown();
}

/// Posts to a `publish=hook` topic, stops the server as soon as the
/// backend has the publish question, and returns the publish's answer.
fn publish_cut_short_by_shutdown(hub: Hub, credentials: String) -> common::Response {
    let addr = hub.server.addr;
    let poster = thread::spawn(move || request(addr, "POST", "/topics/vote.9", &credentials, b"undecided"));
    let asked = |hub: &Hub| {
        hub.asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| matches!(q, Question::Publish { data, .. } if data == "undecided"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !asked(&hub) {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend was never asked"
        );
        thread::sleep(Duration::from_millis(5));
    }
    hub.server.begin_shutdown();
    let answer = poster.join().unwrap();
    hub.server.join();
    answer
}

#[test]
fn an_http_publish_the_backend_has_not_decided_when_the_server_stops_is_a_503() {
    const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
    // The backend answers after 2 s, long after the server was told to
    // stop, and well before its timeout.
    let (delay, timeout) = (Duration::from_secs(2), Duration::from_secs(10));
    // Who the publisher is, the connect hook said first; or a JWT.
    let by_cookie = start_with(&[Hook::Connect, Hook::Publish], both, delay, false, None, timeout);
    let by_jwt = start_with(
        &[Hook::Publish],
        publish_decision,
        delay,
        false,
        Some(HubAuth::new(Keys::from_secret(SECRET).unwrap())),
        timeout,
    );
    let jwt = sign(
        SECRET,
        &serde_json::json!({ "sub": "pat", "exp": unix_now() + 600, "tether": { "pub": ["vote.*"] } }),
    );
    for (hub, credentials) in [
        (by_cookie, "Cookie: session=cy\r\n".to_owned()),
        (by_jwt, format!("Authorization: Bearer {jwt}\r\n")),
    ] {
        let answer = publish_cut_short_by_shutdown(hub, credentials);
        // Not published, and said so at once: the client may send it again
        // to another node.
        assert_eq!(
            (answer.status, answer.header("retry-after"), &answer.body[..]),
            (503, Some("1"), &b"the server is shutting down\n"[..])
        );
    }
}

#[test]
fn empty_publishes_held_for_the_backend_count_against_the_in_flight_bound() {
    // The backend answers after 3 s: every publish meanwhile is in flight.
    let hub = start_on_loops(
        &[Hook::Publish],
        publish_decision,
        Duration::from_secs(3),
        false,
        None,
        Duration::from_secs(10),
        |settings| settings.max_publish_in_flight = 4096,
        2,
    );
    let mut socket = WsClient::connect_with(hub.server.addr, "/topics/vote.5/ws", "");
    // Empty messages carry no bytes, but each costs the hub a publish
    // held: they reach the bound all the same, long before 1000.
    for _ in 0..1000 {
        socket.send(&Message::text(""));
    }
    let (_, close) = socket.texts_then_close();
    assert_eq!(close.code, tether_server::CloseCode::POLICY);
    assert_eq!(close.reason, "publishing faster than the hub sequences");
    assert!(hub.asked.lock().unwrap().len() < 100);
    hub.server.shutdown();
}
