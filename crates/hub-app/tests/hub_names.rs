//! What the hub accepts as names and ids from a request: topic names a URL
//! can address, and the "missed events" signal for a `Last-Event-ID` that
//! is malformed in any way, invalid UTF-8 included.

use tether_testkit as common;

use std::io::{Read, Write};

use common::{HttpConn, TestServer, config, tcp};
use tether_hub_app::{HubApp, HubSettings};
use tether_sse::{Item, Parser};

const TOKEN: &str = "names-token";

fn hub() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    TestServer::start(config(), HubApp::new(settings))
}

fn publish(conn: &mut HttpConn, topic: &str, data: &str) -> u16 {
    conn.send(
        format!(
            "POST /topics/{topic} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\n\r\n{data}",
            data.len()
        )
        .as_bytes(),
    );
    conn.response().status
}

#[test]
fn dot_segments_are_not_topic_names() {
    let server = hub();
    let mut conn = HttpConn::connect(server.addr);
    for topic in [".", ".."] {
        assert_eq!(publish(&mut conn, topic, "x"), 400, "publish to {topic:?}");
        for endpoint in ["events", "ws", "poll"] {
            let mut get = HttpConn::connect(server.addr);
            get.request("GET", &format!("/topics/{topic}/{endpoint}"), "");
            let response = get.response();
            assert_eq!(response.status, 400, "/topics/{topic}/{endpoint}");
            assert!(
                String::from_utf8_lossy(&response.body).contains("not . or .."),
                "the answer says why: {:?}",
                String::from_utf8_lossy(&response.body)
            );
        }
    }
    // Dots are fine elsewhere in a name, three of them included.
    assert_eq!(publish(&mut conn, "...", "x"), 200);
    assert_eq!(publish(&mut conn, "a..b", "x"), 200);
    drop(conn);
    server.shutdown();
}

#[test]
fn a_last_event_id_that_is_not_utf8_gets_the_gap_signal() {
    let server = hub();
    let mut conn = HttpConn::connect(server.addr);
    for data in ["e1", "e2"] {
        assert_eq!(publish(&mut conn, "utf", data), 200);
    }
    let mut stream = tcp(server.addr);
    let mut request = b"GET /topics/utf/events HTTP/1.1\r\nHost: test\r\nLast-Event-ID: ".to_vec();
    request.extend_from_slice(b"\xff\xfe1-1");
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).expect("the request");

    // The gap signal, then both events, as for any other malformed id.
    let mut raw = Vec::new();
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut body_started = false;
    while events.len() < 3 {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("the stream");
        assert!(n > 0, "the stream ended: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&chunk[..n]);
        if !body_started {
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(
                raw.starts_with(b"HTTP/1.1 200 "),
                "{:?}",
                String::from_utf8_lossy(&raw)
            );
            parser.feed(&raw[end + 4..]);
            body_started = true;
        } else {
            parser.feed(&chunk[..n]);
        }
        while let Some(item) = parser.poll() {
            if let Item::Event(event) = item.expect("a well-formed stream") {
                events.push((event.event_type().to_owned(), event.data().to_owned()));
            }
        }
    }
    assert_eq!(events[0].0, "gap", "{events:?}");
    assert!(
        events[0].1.contains('\u{fffd}'),
        "the gap names what was asked: {}",
        events[0].1
    );
    assert_eq!(
        events[1..]
            .iter()
            .map(|(_, data)| data.as_str())
            .collect::<Vec<_>>(),
        ["e1", "e2"]
    );
    drop((conn, stream));
    server.shutdown();
}
