//! Publishing over a multiplexed socket: to any topic the credential may
//! publish to (subscribed or not), each acknowledged naming its topic, a
//! publish key remembered (`duplicate`), a refusal an error naming the
//! topic; the event reaches every subscriber, the publisher's own
//! subscription included.

use serde_json::json;

use crate::helpers::{Hub, settings, token};

#[test]
fn publishes_are_acknowledged_per_topic_and_a_key_is_remembered() {
    let hub = Hub::start(settings(), 2);
    let mut reader = hub.socket();
    reader.follow(&["news", "chat"]);
    let mut writer = hub.socket_with(&token("pub", &[], &["news", "chat"]));
    writer.follow(&["chat"]);
    writer.send(&json!({ "type": "publish", "topic": "news", "data": "n1", "id": "key-1" }));
    let ack = writer.next();
    assert_eq!(
        (
            ack["control"].as_str(),
            ack["topic"].as_str(),
            ack["key"].as_str()
        ),
        (Some("published"), Some("news"), Some("key-1")),
        "{ack}"
    );
    assert!(ack.get("duplicate").is_none(), "{ack}");
    let first = ack["id"].as_str().unwrap().to_owned();
    // The same key again: the same id, nothing published.
    writer.send(&json!({ "type": "publish", "topic": "news", "data": "n1", "id": "key-1" }));
    let again = writer.next();
    assert_eq!(
        (again["id"].as_str(), again["duplicate"].as_bool()),
        (Some(first.as_str()), Some(true)),
        "{again}"
    );
    writer.send(&json!({ "type": "publish", "topic": "chat", "data": "c1", "event": "note" }));
    // Its own subscription gets the event; the ack names the topic.
    let mut seen = [writer.next(), writer.next()];
    seen.sort_by_key(|m| m["control"].is_null());
    assert_eq!(
        (seen[0]["control"].as_str(), seen[0]["topic"].as_str()),
        (Some("published"), Some("chat"))
    );
    assert_eq!(
        (seen[1]["event"].as_str(), seen[1]["data"].as_str()),
        (Some("note"), Some("c1"))
    );
    // Two topics, each sequenced on its own loop: in either order.
    let mut events = [reader.next(), reader.next()];
    events.sort_by_key(|e| e["topic"].as_str().unwrap().to_owned());
    assert_eq!(
        (events[0]["topic"].as_str(), events[0]["data"].as_str()),
        (Some("chat"), Some("c1"))
    );
    assert_eq!(
        (events[1]["topic"].as_str(), events[1]["id"].as_str()),
        (Some("news"), Some(first.as_str()))
    );
}

#[test]
fn a_publish_the_credential_may_not_make_is_an_error_naming_its_topic() {
    let hub = Hub::start(settings(), 1);
    let mut socket = hub.socket_with(&token("ann", &[], &["mine"]));
    socket.follow(&["theirs"]);
    socket.send(&json!({ "type": "publish", "topic": "theirs", "data": "x", "id": "k" }));
    let error = socket.next();
    assert_eq!(
        (error["control"].as_str(), error["topic"].as_str()),
        (Some("error"), Some("theirs")),
        "{error}"
    );
    // An invalid key is the hub's refusal, with the topic.
    socket.send(&json!({ "type": "publish", "topic": "mine", "data": "x", "id": "a b" }));
    let error = socket.next();
    assert_eq!(
        (error["control"].as_str(), error["topic"].as_str()),
        (Some("error"), Some("mine")),
        "{error}"
    );
    // Nothing was published to "theirs"; the socket is open.
    hub.publish("theirs", "from the server");
    assert_eq!(
        socket.event(),
        ("theirs".to_owned(), "from the server".to_owned())
    );
    // No credential, no publish.
    let mut anonymous = hub.socket();
    anonymous.send(&json!({ "type": "publish", "topic": "mine", "data": "x" }));
    assert_eq!(anonymous.next()["control"], "error");
}

#[test]
fn binary_data_is_published_in_base64_and_delivered_marked() {
    let hub = Hub::start(settings(), 1);
    let mut reader = hub.socket();
    reader.follow(&["pix"]);
    let mut writer = hub.socket_with(&token("pub", &[], &["pix"]));
    let all: Vec<u8> = (0..=255).collect();
    let b64 = tether_hub::Payload::Binary(all).base64();
    writer.send(&json!({ "type": "publish", "topic": "pix", "data": b64, "encoding": "base64" }));
    assert_eq!(writer.next()["control"], "published");
    let event = reader.next();
    assert_eq!(
        (event["data"].as_str(), event["encoding"].as_str()),
        (Some(b64.as_str()), Some("base64")),
        "{event}"
    );
    // Not base64: an error naming the topic; nothing published.
    writer.send(&json!({ "type": "publish", "topic": "pix", "data": "AP8", "encoding": "base64" }));
    let error = writer.next();
    assert_eq!(
        (error["control"].as_str(), error["topic"].as_str()),
        (Some("error"), Some("pix")),
        "{error}"
    );
    // A binary frame: an error, the socket stays.
    writer.0.send_binary(b"\x00\xff");
    let error = writer.next();
    assert!(error["error"].as_str().unwrap().contains("base64"), "{error}");
    writer.send(&json!({ "type": "publish", "topic": "pix", "data": "text" }));
    assert_eq!(writer.next()["control"], "published");
    assert_eq!(reader.next()["data"], "text");
}
