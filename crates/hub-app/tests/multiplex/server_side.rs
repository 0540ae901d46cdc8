//! Server-side subscriptions: `POST /api/subscribe` subscribes every
//! multiplexed socket of a subject, on every loop, without closing
//! anything; `POST /api/unsubscribe` ends that subscription on a
//! multiplexed socket, and still closes a per-topic connection to the
//! topic.

use serde_json::json;
use tether_server::CloseCode;
use tether_testkit::{SseClient, WsClient};

use crate::helpers::{Hub, settings, token};

#[test]
fn the_server_subscribes_and_unsubscribes_a_live_socket() {
    let hub = Hub::start(settings(), 2);
    let ann = token("ann", &["room.*"], &[]);
    // Two sockets of hers (on either loop), one of someone else's.
    let mut first = hub.socket_with(&ann);
    let mut second = hub.socket_with(&ann);
    let mut other = hub.socket_with(&token("bob", &[], &[]));
    first.follow(&["open"]);
    second.follow(&["open"]);
    other.follow(&["open"]);
    let (status, body) = hub.api("subscribe", &json!({ "user": "ann", "topic": "inbox.ann" }));
    assert_eq!((status, body), (200, json!({ "subscribed": 2 })));
    for socket in [&mut first, &mut second] {
        assert_eq!(
            socket.next(),
            json!({ "control": "subscribed", "topic": "inbox.ann", "by": "server" })
        );
    }
    // Listed once per topic each socket follows.
    let (status, listed) = hub.api_get("/api/connections?user=ann");
    assert_eq!((status, listed["count"].as_u64()), (200, Some(4)), "{listed}");
    let mut topics: Vec<&str> = (listed["connections"].as_array().unwrap().iter())
        .map(|c| c["topic"].as_str().unwrap())
        .collect();
    topics.sort_unstable();
    assert_eq!(topics, ["inbox.ann", "inbox.ann", "open", "open"]);
    hub.publish("inbox.ann", "hello ann");
    assert_eq!(first.event(), ("inbox.ann".to_owned(), "hello ann".to_owned()));
    assert_eq!(second.event(), ("inbox.ann".to_owned(), "hello ann".to_owned()));
    // Asked again: each follows it already.
    let (status, body) = hub.api("subscribe", &json!({ "user": "ann", "topic": "inbox.ann" }));
    assert_eq!((status, body), (200, json!({ "subscribed": 0 })));
    // A per-topic socket of hers to the topic: closed by the unsubscribe,
    // the multiplexed ones told and left open.
    let mut alone = WsClient::connect_with(
        hub.addr(),
        "/topics/inbox.ann/ws",
        &format!("Authorization: Bearer {ann}\r\n"),
    );
    let (status, body) = hub.api("unsubscribe", &json!({ "user": "ann", "topic": "inbox.ann" }));
    assert_eq!((status, body), (200, json!({ "closed": 3 })));
    for socket in [&mut first, &mut second] {
        assert_eq!(
            socket.next(),
            json!({ "control": "unsubscribed", "topic": "inbox.ann", "reason": "unsubscribed by the server" })
        );
    }
    let frame = alone.recv_close();
    assert_eq!(frame.code, CloseCode::POLICY);
    hub.publish("inbox.ann", "gone");
    hub.publish("open", "still open");
    for socket in [&mut first, &mut second, &mut other] {
        assert_eq!(socket.event(), ("open".to_owned(), "still open".to_owned()));
    }
}

#[test]
fn the_listing_says_which_connections_are_multiplexed() {
    let hub = Hub::start(settings(), 2);
    let ann = token("ann", &["room.*"], &[]);
    let auth = format!("Authorization: Bearer {ann}\r\n");
    let mut socket = hub.socket_with(&ann);
    socket.follow(&["room.1"]);
    let stream = SseClient::connect(hub.addr(), "/events?topic=room.1&topic=room.2", &auth);
    assert_eq!(stream.response.status, 200);
    let _alone = WsClient::connect_with(hub.addr(), "/topics/room.1/ws", &auth);
    let (status, listed) = hub.api_get("/api/connections?user=ann");
    assert_eq!(status, 200, "{listed}");
    let mut rows: Vec<(&str, &str, bool)> = (listed["connections"].as_array().unwrap().iter())
        .map(|c| {
            let multiplexed = c["multiplexed"].as_bool();
            (
                c["transport"].as_str().unwrap(),
                c["topic"].as_str().unwrap(),
                multiplexed.unwrap_or_else(|| panic!("no multiplexed: {c}")),
            )
        })
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [
            ("sse", "room.1", true),
            ("sse", "room.2", true),
            ("websocket", "room.1", false),
            ("websocket", "room.1", true),
        ]
    );
}

#[test]
fn subscribe_takes_the_publish_token_and_a_valid_body() {
    let hub = Hub::start(settings(), 1);
    let answer = tether_testkit::request(
        hub.addr(),
        "POST",
        "/api/subscribe",
        &format!("Authorization: Bearer {}\r\n", token("ann", &["*"], &["*"])),
        br#"{"user":"ann","topic":"t"}"#,
    );
    assert_eq!(answer.status, 403, "{:?}", String::from_utf8_lossy(&answer.body));
    for bad in [
        json!({ "user": "ann" }),
        json!({ "user": "ann", "topic": "a b" }),
        json!({ "topic": "t" }),
    ] {
        let (status, _) = hub.api("subscribe", &bad);
        assert_eq!(status, 400, "{bad}");
    }
}
