//! Binary events: bytes published over HTTP (a binary `Content-Type`) or as
//! a raw socket's binary messages reach a raw socket as binary messages,
//! byte for byte, and every text transport (the JSON envelopes, event
//! streams, the long poll) in base64, marked; and what is hostile about
//! them is refused with the right status or close code.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod support;

use std::io::Write;
use std::net::SocketAddr;

use serde_json::Value;
use tether_hub::Payload;
use tether_hub_app::{HubApp, HubSettings};
use tether_server::deflate::{Deflate, DeflateConfig, Params, Role as DeflateRole};
use tether_server::{CloseCode, Handshake, Message};
use tether_testkit::{SseClient, TestServer, Upgrade, WsClient, client_connection, config, tcp};

use support::http::{bearer, request};

const TOKEN: &str = "binary-publish-token";

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.ws_publish = vec!["room.*".to_owned()];
    settings
}

fn hub() -> TestServer {
    TestServer::start(config(), HubApp::new(settings()))
}

/// Every byte value, and bytes that are not UTF-8 in any order.
fn all_bytes() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend_from_slice(b"\xff\xfe\xc3\x28\xed\xa0\x80\x00\r\n");
    bytes
}

fn b64(bytes: &[u8]) -> String {
    Payload::Binary(bytes.to_vec()).base64()
}

fn publish_bytes(addr: SocketAddr, topic: &str, content_type: &str, body: &[u8]) -> tether_testkit::Response {
    let headers = format!("{}Content-Type: {content_type}\r\n", bearer(TOKEN));
    request(addr, "POST", &format!("/topics/{topic}"), &headers, body)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))
}

/// The bytes a JSON form of a binary event carries, checking its mark.
fn bytes_of(event: &Value) -> Vec<u8> {
    assert_eq!(event["encoding"].as_str(), Some("base64"), "{event}");
    match Payload::from_base64(event["data"].as_str().expect("data")) {
        Some(Payload::Binary(bytes)) => bytes,
        other => panic!("not base64: {other:?}"),
    }
}

#[test]
fn bytes_published_over_http_reach_every_transport() {
    let server = hub();
    let addr = server.addr;
    let data = all_bytes();
    let mut raw = WsClient::connect(addr, "/topics/pix/ws?format=raw");
    let mut enveloped = WsClient::connect(addr, "/topics/pix/ws");
    let mut mux = WsClient::connect(addr, "/ws");
    mux.send_text(r#"{"type":"subscribe","topic":"pix"}"#);
    assert_eq!(json(mux.recv_text().as_bytes())["control"], "subscribed");
    let mut events = SseClient::connect(addr, "/topics/pix/events", "");
    let mut multi = SseClient::connect(addr, "/events?topic=pix", "");
    // A text event first: the long poll resumes after it.
    let first = publish_bytes(addr, "pix", "text/plain", b"first");
    assert_eq!(first.status, 200);
    let first_id = json(&first.body)["id"].as_str().unwrap().to_owned();
    let published = publish_bytes(addr, "pix", "application/octet-stream", &data);
    assert_eq!(
        published.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&published.body)
    );
    let id = json(&published.body)["id"].as_str().unwrap().to_owned();

    // Raw: a binary message with the bytes exactly (after the text one).
    assert_eq!(raw.recv(), Message::text("first"));
    assert_eq!(raw.recv(), Message::binary(data.clone()));
    // The JSON envelopes: base64, marked.
    for socket in [&mut enveloped, &mut mux] {
        assert_eq!(json(socket.recv_text().as_bytes())["data"], "first");
        let event = json(socket.recv_text().as_bytes());
        assert_eq!(
            (event["id"].as_str(), event["topic"].as_str()),
            (Some(id.as_str()), Some("pix"))
        );
        assert_eq!(bytes_of(&event), data);
    }
    // The event stream: base64 data, an `encoding: base64` line.
    assert_eq!(events.next_event().data(), "first");
    let event = events.next_event();
    assert_eq!(
        (event.last_event_id(), event.data()),
        (id.as_str(), b64(&data).as_str())
    );
    let marked = format!(
        "id: {id}\nevent: message\nencoding: base64\ndata: {}\n\n",
        b64(&data)
    );
    // The multi-topic stream: the JSON, marked.
    assert_eq!(json(multi.next_event().data().as_bytes())["data"], "first");
    assert_eq!(bytes_of(&json(multi.next_event().data().as_bytes())), data);
    // The long poll from the text event: the binary one, marked.
    let poll = request(
        addr,
        "GET",
        &format!("/topics/pix/poll?since={first_id}&timeout=0"),
        "",
        "",
    );
    assert_eq!(poll.status, 200, "{:?}", String::from_utf8_lossy(&poll.body));
    let polled = json(&poll.body);
    let polled = polled["events"].as_array().unwrap_or_else(|| panic!("{polled}"));
    assert_eq!(polled.len(), 1, "{polled:?}");
    assert_eq!(bytes_of(&polled[0]), data);
    // The stream's bytes as sent: the mark before the data.
    assert!(
        String::from_utf8_lossy(&events.raw).contains(&marked),
        "{:?}",
        String::from_utf8_lossy(&events.raw)
    );
}

#[test]
fn a_raw_socket_publishes_its_binary_messages_as_binary_events() {
    let server = hub();
    let data = all_bytes();
    let mut publisher = WsClient::connect(server.addr, "/topics/room.1/ws?format=raw&event=blob");
    let mut reader = WsClient::connect(server.addr, "/topics/room.1/ws?format=raw");
    let mut plain = WsClient::connect(server.addr, "/topics/room.1/ws");
    publisher.send_binary(&data);
    publisher.send_text("and text");
    for client in [&mut publisher, &mut reader] {
        assert_eq!(client.recv(), Message::binary(data.clone()));
        assert_eq!(client.recv(), Message::text("and text"));
    }
    let event = json(plain.recv_text().as_bytes());
    assert_eq!(event["event"], "blob");
    assert_eq!(bytes_of(&event), data);
    let event = json(plain.recv_text().as_bytes());
    assert_eq!(
        (event["data"].as_str(), event.get("encoding")),
        (Some("and text"), None)
    );
}

#[test]
fn an_enveloped_socket_publishes_base64_and_refuses_what_is_not() {
    let server = hub();
    let data = all_bytes();
    let mut publisher = WsClient::connect(server.addr, "/topics/room.2/ws?envelope=1");
    let mut reader = WsClient::connect(server.addr, "/topics/room.2/ws?format=raw");
    let envelope = serde_json::json!({ "data": b64(&data), "encoding": "base64", "id": "k1" });
    publisher.send_text(&envelope.to_string());
    assert_eq!(reader.recv(), Message::binary(data.clone()));
    // Not base64: an error, nothing published.
    publisher.send_text(r#"{"data":"not base64!","encoding":"base64"}"#);
    publisher.send_text(r#"{"data":"after"}"#);
    assert_eq!(reader.recv(), Message::text("after"));
    // Its own events and acknowledgements, in either order, and the
    // error, until "after" is both acknowledged and delivered.
    let (mut error, mut acks, mut after) = (None, 0, false);
    while acks < 2 || !after {
        let message = json(publisher.recv_text().as_bytes());
        match message["control"].as_str() {
            Some("error") => error = Some(message),
            Some("published") => acks += 1,
            _ => after |= message["data"] == "after",
        }
    }
    let error = error.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("not standard base64"),
        "{error}"
    );
    // A binary message on an enveloped socket: an error naming the way.
    publisher.send_binary(&data);
    let error = json(publisher.recv_text().as_bytes());
    assert_eq!(error["control"], "error", "{error}");
    assert!(error["error"].as_str().unwrap().contains("base64"), "{error}");
}

#[test]
fn hostile_binary_input_is_refused() {
    let server = hub();
    let addr = server.addr;
    // No right to publish: 1008.
    let mut raw = WsClient::connect(addr, "/topics/news/ws?format=raw");
    raw.send_binary(b"\x00\xff");
    assert_eq!(raw.recv_close().code, CloseCode::POLICY);
    // Larger than an event may be: 413, as for text.
    let huge = vec![0xa5; 64 * 1024 + 1];
    assert_eq!(
        publish_bytes(addr, "pix", "application/octet-stream", &huge).status,
        413
    );
    // Over a raw socket: 1008 with the hub's reason.
    let mut publisher = WsClient::connect(addr, "/topics/room.3/ws?format=raw");
    publisher.send_binary(&huge);
    let close = publisher.recv_close();
    assert_eq!(close.code, CloseCode::POLICY);
    assert!(close.reason.contains("exceeds the limit"), "{:?}", close.reason);
    // Bytes that are not UTF-8 under a text type: 400.
    let refused = publish_bytes(addr, "pix", "text/plain", b"\xff\xfe");
    assert_eq!(refused.status, 400);
    assert!(String::from_utf8_lossy(&refused.body).contains("binary Content-Type"));
}

#[test]
fn a_compressed_binary_message_that_inflates_past_the_limit_closes_with_1009() {
    let mut config = config();
    config.ws.max_message_size = 1 << 20;
    let handshake = Handshake::new().negotiator(DeflateConfig::new());
    let server = TestServer::start_with(config, handshake, HubApp::new(settings()));
    let offer = "permessage-deflate; client_no_context_takeover";
    let upgrade = Upgrade::offering(server.addr, "/topics/room.4/ws?format=raw", Some(offer));
    let mut stream = tcp(server.addr);
    stream.write_all(&upgrade.request).unwrap();
    let mut bomb = WsClient::finish(stream, upgrade);
    let mut reader = WsClient::connect(server.addr, "/topics/room.4/ws?format=raw");
    bomb.conn = client_connection(4).with_extension(Box::new(Deflate::new(
        DeflateRole::Client,
        Params {
            client_no_context_takeover: true,
            ..Params::default()
        },
    )));
    // 4 MiB of zeros: a few KiB on the wire.
    let mut out = Vec::new();
    bomb.conn
        .send(&Message::binary(vec![0; 4 << 20]), &mut out)
        .unwrap();
    assert!(out.len() < 64 * 1024, "{}", out.len());
    bomb.send_raw(&out);
    assert_eq!(bomb.recv_close().code, CloseCode::TOO_BIG);
    // Nothing was published; the hub goes on.
    let next = publish_bytes(server.addr, "room.4", "application/octet-stream", b"\x01");
    assert_eq!(next.status, 200);
    assert_eq!(reader.recv(), Message::binary(vec![1]));
}
