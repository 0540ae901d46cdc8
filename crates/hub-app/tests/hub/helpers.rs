//! What every subject's tests share: a hub with the test's token on a
//! loop of its own, requests written by hand, publishing, and reading
//! JSON and the metrics page.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;

use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::{Config, Handshake, Server};
use tether_testkit::{HttpConn, Response, WsClient, config};

use crate::support::running::Running;

const TOKEN: &str = "s3cret-token";

/// A hub with the test token, on its own thread.
pub(crate) struct HubServer {
    pub(crate) addr: SocketAddr,
    _running: Running,
}

impl HubServer {
    pub(crate) fn start(settings: HubSettings) -> HubServer {
        HubServer::start_with(config(), settings)
    }

    fn start_with(config: Config, settings: HubSettings) -> HubServer {
        let (addr, running) = Running::server(move || {
            let shared = HubShared::new(settings, 1);
            let handshake = shared.settings().origin_policy(Handshake::new());
            Server::bind(config, handshake, shared.app(0))
        });
        HubServer {
            addr,
            _running: running,
        }
    }
}

pub(crate) fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
}

pub(crate) fn auth() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

/// One request with a body on a keep-alive connection.
pub(crate) fn request(
    conn: &mut HttpConn,
    method: &str,
    target: &str,
    headers: &str,
    body: &[u8],
) -> Response {
    // One write: a request the hub refuses on its head while the body is
    // still to come is answered with the connection closed (its body is
    // not read in vain), and the tests send their next request on the
    // same connection.
    let mut bytes = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    conn.send(&bytes);
    conn.response()
}

/// Publishes `data` and returns the event's id.
pub(crate) fn publish(conn: &mut HttpConn, topic: &str, event: Option<&str>, data: &str) -> String {
    let target = match event {
        Some(event) => format!("/topics/{topic}?event={event}"),
        None => format!("/topics/{topic}"),
    };
    let response = request(conn, "POST", &target, &auth(), data.as_bytes());
    assert_eq!(
        response.status,
        200,
        "publish: {:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    json(&response.body)["id"].as_str().expect("an id").to_owned()
}

pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))
}

pub(crate) fn ws_json(client: &mut WsClient) -> Value {
    json(client.recv_text().as_bytes())
}

/// Reads the response head of a request written to `stream` by hand.
pub(crate) fn read_head(stream: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("read the head"),
            1,
            "closed in the head"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII head")
}

pub(crate) fn upgrade_request(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// `name{labels} value` lines by name and labels; checks the format.
pub(crate) fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name, value) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert!(is_name(name), "{line}");
            match keyword {
                "HELP" => assert!(!value.is_empty()),
                "TYPE" => {
                    assert!(matches!(value, "counter" | "gauge" | "histogram"), "{line}");
                    assert!(
                        types.insert(name.to_owned(), value.to_owned()).is_none(),
                        "two TYPEs: {line}"
                    );
                }
                _ => panic!("unknown comment: {line}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(is_name(name), "{line}");
        // A histogram's samples are its name with a suffix.
        let histogram = ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| types.get(base).is_some_and(|t| t == "histogram"))
        });
        assert!(types.contains_key(name) || histogram, "no TYPE before {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .expect("braces");
            for pair in inner.split(',') {
                let (key, quoted) = pair.split_once('=').expect("key=value");
                assert!(
                    is_name(key) && quoted.starts_with('"') && quoted.ends_with('"'),
                    "{line}"
                );
            }
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}
