//! Publish keys (`?id=`, `Tether-Publish-Id`, a WebSocket envelope's
//! `id`): a key publishes once while its event is held, and every later
//! publish with it is answered with the first one's id.

use serde_json::Value;
use tether_testkit as common;

use common::{HttpConn, SseClient, WsClient};

use crate::helpers::{HubServer, auth, json, parse_metrics, publish, request, settings, ws_json};

/// POSTs `data` to `target` with the token and these headers; the
/// status and the JSON answer (or `Null`).
fn post(conn: &mut HttpConn, target: &str, headers: &str, data: &str) -> (u16, Value) {
    let response = request(
        conn,
        "POST",
        target,
        &format!("{}{headers}", auth()),
        data.as_bytes(),
    );
    let body = if response.status == 200 {
        json(&response.body)
    } else {
        Value::Null
    };
    (response.status, body)
}

#[test]
fn a_publish_key_publishes_once_and_answers_the_first_id() {
    let server = HubServer::start(settings());
    let mut events = SseClient::connect(server.addr, "/topics/keys/events", "");
    let mut ws = WsClient::connect(server.addr, "/topics/keys/ws");
    let mut conn = HttpConn::connect(server.addr);

    let (status, first) = post(&mut conn, "/topics/keys?id=order-1", "", "one");
    assert_eq!(status, 200);
    assert_eq!(first.as_object().unwrap().len(), 1, "as without a key: {first}");
    let id = first["id"].as_str().unwrap().to_owned();
    // Again, by query or by header, whatever the data: the same id, and
    // nothing published.
    for (target, headers, data) in [
        ("/topics/keys?id=order-1", "", "one"),
        ("/topics/keys", "Tether-Publish-Id: order-1\r\n", "one"),
        (
            "/topics/keys?id=order-1",
            "Tether-Publish-Id: order-1\r\n",
            "other data",
        ),
    ] {
        let (status, again) = post(&mut conn, target, headers, data);
        assert_eq!(status, 200);
        assert_eq!(again, serde_json::json!({"id": id, "duplicate": true}));
    }
    // Without a key, and with another key, publishes as always.
    let plain = publish(&mut conn, "keys", None, "one");
    let (_, second) = post(&mut conn, "/topics/keys", "Tether-Publish-Id: order-2\r\n", "two");
    let second = second["id"].as_str().unwrap().to_owned();
    // Keys are per topic.
    let (_, elsewhere) = post(&mut conn, "/topics/other?id=order-1", "", "x");
    assert!(elsewhere.get("duplicate").is_none(), "{elsewhere}");

    // Each subscriber got each event once, in order; the JSON forms carry
    // the key, the event stream's id stays the hub's.
    let expected = [
        (id.as_str(), "one", Some("order-1")),
        (plain.as_str(), "one", None),
        (second.as_str(), "two", Some("order-2")),
    ];
    for (id, data, key) in expected {
        let event = events.next_event();
        assert_eq!((event.last_event_id(), event.data()), (id, data));
        let event = ws_json(&mut ws);
        assert_eq!(
            (event["id"].as_str(), event["data"].as_str()),
            (Some(id), Some(data))
        );
        assert_eq!(event["key"].as_str(), key);
    }
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/keys/poll?since=0-0", "");
    let answer = json(&poll.response().body);
    let keys: Vec<Value> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [Value::from("order-1"), Value::Null, Value::from("order-2")]
    );
    // Nothing else was published: the next event is the next one.
    let next = publish(&mut conn, "keys", None, "next");
    assert_eq!(events.next_event().last_event_id(), next);
    assert_eq!(ws_json(&mut ws)["id"], next.as_str());

    let metrics = parse_metrics(std::str::from_utf8(&common::get(server.addr, "/metrics").body).unwrap());
    assert_eq!(metrics["tether_hub_publishes_total{result=\"duplicate\"}"], 3.0);
    assert_eq!(metrics["tether_hub_publishes_total{result=\"ok\"}"], 5.0);
}

#[test]
fn invalid_publish_keys_are_refused() {
    let server = HubServer::start(settings());
    let mut conn = HttpConn::connect(server.addr);
    let long = "k".repeat(129);
    for (target, headers) in [
        ("/topics/bad?id=", ""),
        ("/topics/bad?id", ""),
        ("/topics/bad?id=two+words", ""),
        ("/topics/bad?id=a%20b", ""),
        ("/topics/bad?id=%C3%A9", ""),
        ("/topics/bad?id=a%0Ab", ""),
        (&format!("/topics/bad?id={long}"), ""),
        ("/topics/bad", "Tether-Publish-Id: two words\r\n"),
        ("/topics/bad", "Tether-Publish-Id: \r\n"),
        ("/topics/bad?id=a", "Tether-Publish-Id: b\r\n"),
    ] {
        let (status, _) = post(&mut conn, target, headers, "x");
        assert_eq!(status, 400, "{target} {headers:?}");
    }
    // The longest key, and the characters a query must escape.
    let (status, _) = post(&mut conn, &format!("/topics/bad?id={}", &long[1..]), "", "x");
    assert_eq!(status, 200);
    let (status, first) = post(&mut conn, "/topics/bad?id=a%2Bb%26c", "", "x");
    assert_eq!(status, 200);
    let (_, again) = post(&mut conn, "/topics/bad", "Tether-Publish-Id: a+b&c\r\n", "x");
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&first["id"], &Value::Bool(true))
    );
    // The token is checked first.
    assert_eq!(
        request(&mut conn, "POST", "/topics/bad?id=", "", b"x").status,
        401
    );
    // Nothing refused was published.
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/bad/poll?since=0-0", "");
    assert_eq!(json(&poll.response().body)["events"].as_array().unwrap().len(), 2);
}

#[test]
fn a_key_is_forgotten_once_its_event_leaves_the_backlog() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    let server = HubServer::start(settings);
    let mut conn = HttpConn::connect(server.addr);
    let (_, first) = post(&mut conn, "/topics/w?id=k", "", "x");
    publish(&mut conn, "w", None, "y");
    // Two events held: the key is remembered.
    let (_, again) = post(&mut conn, "/topics/w?id=k", "", "x");
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&first["id"], &Value::Bool(true))
    );
    publish(&mut conn, "w", None, "z");
    // Its event was dropped from the backlog: the key publishes again.
    let (status, later) = post(&mut conn, "/topics/w?id=k", "", "x");
    assert_eq!(status, 200);
    assert!(later.get("duplicate").is_none(), "{later}");
    assert_ne!(later["id"], first["id"]);
}

#[test]
fn websocket_publishers_may_send_envelopes_with_keys() {
    let mut settings = settings();
    settings.ws_publish = vec!["env".to_owned()];
    let server = HubServer::start(settings);
    let mut ws = WsClient::connect(server.addr, "/topics/env/ws?envelope=1&event=chat");
    let mut plain = WsClient::connect(server.addr, "/topics/env/ws");

    // The event, then the acknowledgement, to the publisher.
    ws.send_text(r#"{"data":"hello","id":"msg-1"}"#);
    let event = ws_json(&mut ws);
    assert_eq!(
        (
            event["data"].as_str(),
            event["event"].as_str(),
            event["key"].as_str()
        ),
        (Some("hello"), Some("chat"), Some("msg-1"))
    );
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ws_json(&mut ws),
        serde_json::json!({"control": "published", "id": id, "key": "msg-1"})
    );
    // Sent again (say after a reconnection): acknowledged as a duplicate,
    // nothing published. HTTP publishers share the topic's keys.
    ws.send_text(r#"{"data":"hello","id":"msg-1"}"#);
    assert_eq!(
        ws_json(&mut ws),
        serde_json::json!({"control": "published", "id": id, "key": "msg-1", "duplicate": true})
    );
    let mut conn = HttpConn::connect(server.addr);
    let (_, answer) = post(&mut conn, "/topics/env?id=msg-1", "", "hello");
    assert_eq!(answer["duplicate"], true);
    // Without a key, with its own type.
    ws.send_text(r#"{"event":"note","data":"no key"}"#);
    let event = ws_json(&mut ws);
    assert_eq!((event["event"].as_str(), event.get("key")), (Some("note"), None));
    let ack = ws_json(&mut ws);
    assert_eq!(
        ack,
        serde_json::json!({"control": "published", "id": event["id"]})
    );
    // A bad envelope is refused; the connection stays.
    for bad in [
        "not json",
        r#"{"data":"x","ID":"k"}"#,
        r#"{"data":"x","id":"a b"}"#,
    ] {
        ws.send_text(bad);
        let error = ws_json(&mut ws);
        assert_eq!(error["control"], "error", "{bad}");
    }
    ws.send_text(r#"{"data":"x","id":"k2","event":"gap"}"#);
    let error = ws_json(&mut ws);
    assert_eq!(
        (error["control"].as_str(), error["key"].as_str()),
        (Some("error"), Some("k2"))
    );

    // Without ?envelope= a message is the data, as it always was.
    plain.send_text(r#"{"data":"verbatim","id":"msg-1"}"#);
    let seen: Vec<Value> = (0..3).map(|_| ws_json(&mut plain)).collect();
    assert_eq!(seen[0]["key"], "msg-1");
    assert_eq!(seen[1]["event"], "note");
    assert_eq!(seen[2]["data"], r#"{"data":"verbatim","id":"msg-1"}"#);
    assert!(seen[2].get("key").is_none());
    let event = ws_json(&mut ws);
    assert_eq!(event["id"], seen[2]["id"], "no acknowledgement for the plain one");
}
