//! The hub's server API end to end, through sockets, on two event loops:
//! `POST /api/publish` and `POST /api/broadcast` answer each item's id or
//! error in order, their events reach SSE and WebSocket subscribers in
//! order; `GET /api/history` pages through a backlog and says when a
//! reader fell behind it; credentials, malformed bodies, limits and
//! unknown routes are refused in JSON.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::net::SocketAddr;

use common::h2::H2Client;
use common::{HttpConn, SseClient, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{Cluster, Handshake};

use support::datas;
use support::http::{Api, bearer, json};
use support::jwt::{sign, unix_now};
use support::running::Running;

const SECRET: &[u8] = b"an API test secret, 32 bytes lon";
const TOKEN: &str = "api-publish-token";
const MAX_EVENT: usize = 64;
const BACKLOG: usize = 5;

/// The hub on two event loops with the publish token and tokens
/// verified (`room.*` private).
struct Server {
    addr: SocketAddr,
    _running: Running,
}

impl Server {
    fn start() -> Server {
        let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
        auth.private = Private::new(["room.*"]).unwrap();
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.auth = Some(auth);
        settings.hub.max_event_size = MAX_EVENT;
        settings.hub.max_backlog_events = BACKLOG;
        let shared = HubShared::new(settings, 2);
        let cluster = Cluster::bind(config(), Handshake::new(), 2, |i| shared.app(i)).expect("bind");
        let (addr, running) = Running::cluster(cluster);
        Server {
            addr,
            _running: running,
        }
    }

    /// Publishes `data` to `topic`, one item each, and returns the ids.
    fn publish(&self, topic: &str, data: &[&str]) -> Vec<String> {
        let items: Vec<Value> = data
            .iter()
            .map(|d| json!({ "topic": topic, "data": d }))
            .collect();
        let (status, body) = self.post("/api/publish", &json!({ "items": items }));
        assert_eq!(status, 200, "{body}");
        body["results"].as_array().unwrap().iter().map(id).collect()
    }

    /// Subscribes to `topic` over SSE and waits until it is live (an
    /// event published after it arrives).
    fn sse(&self, topic: &str) -> SseClient {
        let mut stream = SseClient::connect(self.addr, &format!("/topics/{topic}/events"), "");
        assert_eq!(stream.response.status, 200);
        self.warm(topic, || stream.next_event().data().to_owned());
        stream
    }

    fn ws(&self, topic: &str) -> WsClient {
        let mut ws = WsClient::connect(self.addr, &format!("/topics/{topic}/ws"));
        self.warm(topic, || {
            serde_json::from_str::<Value>(&ws.recv_text()).unwrap()["data"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        ws
    }

    fn warm(&self, topic: &str, mut next: impl FnMut() -> String) {
        let response = self.request("POST", &format!("/topics/{topic}"), &bearer(TOKEN), b"warm");
        assert_eq!(response.status, 200);
        assert_eq!(next(), "warm");
    }
}

impl Api for Server {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn token(&self) -> &str {
        TOKEN
    }
}

fn jwt(publish: &[&str]) -> String {
    let exp = unix_now() + 600;
    sign(
        SECRET,
        &json!({ "sub": "backend", "exp": exp, "tether": { "pub": publish } }),
    )
}

fn id(result: &Value) -> String {
    result["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {result}"))
        .to_owned()
}

fn code(result: &Value) -> &str {
    result["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {result}"))
}

#[test]
fn a_batch_is_sequenced_item_by_item_and_delivered_in_order() {
    let server = Server::start();
    let mut a = server.sse("a");
    let mut b = server.ws("b");
    let (status, body) = server.post(
        "/api/publish",
        &json!({ "items": [
            { "topic": "a", "data": "one" },
            { "topic": "b", "data": { "n": 1 } },
            { "topic": "a", "data": "two", "type": "note" },
            { "topic": "a", "data": "three", "key": "k-3" },
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for (data, event_type, result) in [
        ("one", "message", &results[0]),
        ("two", "note", &results[2]),
        ("three", "message", &results[3]),
    ] {
        let event = a.next_event();
        assert_eq!(
            (event.data(), event.event_type(), event.last_event_id()),
            (data, event_type, id(result).as_str())
        );
    }
    let event: Value = serde_json::from_str(&b.recv_text()).unwrap();
    assert_eq!(event["data"], "{\"n\":1}");
    assert_eq!(event["id"], id(&results[1]));

    // The key is remembered: the same item again publishes nothing and
    // names the first event.
    let (status, again) = server.post(
        "/api/publish",
        &json!({ "items": [{ "topic": "a", "data": "three", "key": "k-3" }, { "topic": "a", "data": "four" }] }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        again["results"][0],
        json!({ "id": id(&results[3]), "duplicate": true })
    );
    assert_eq!(a.next_event().data(), "four");
}

#[test]
fn refused_items_do_not_stop_the_others() {
    let server = Server::start();
    let mut a = server.sse("a");
    let (status, body) = server.post(
        "/api/publish",
        &json!({ "items": [
            { "topic": "a b", "data": "x" },
            { "topic": "a", "data": "kept" },
            { "topic": "a", "data": "x", "type": "gap" },
            { "topic": "a", "data": "x".repeat(MAX_EVENT + 1) },
            { "topic": "a", "data": "x", "key": "" },
            { "topic": "a", "data": "also kept" },
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let codes: Vec<&str> = [0, 2, 3, 4].iter().map(|&i| code(&results[i])).collect();
    assert_eq!(
        codes,
        ["invalid_topic", "invalid_type", "too_large", "invalid_key"]
    );
    assert_eq!(a.next_event().data(), "kept");
    assert_eq!(a.next_event().data(), "also kept");
    // Nothing else was published.
    let response = server.request("POST", "/topics/a", &bearer(TOKEN), b"next");
    assert_eq!(response.status, 200);
    assert_eq!(a.next_event().data(), "next");
}

#[test]
fn a_token_publishes_where_it_is_granted_only() {
    let server = Server::start();
    let body = json!({ "items": [{ "topic": "room.7", "data": "x" }, { "topic": "room.8", "data": "y" }] });
    let response = server.request(
        "POST",
        "/api/publish",
        &bearer(&jwt(&["room.7"])),
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200);
    let results = json(&response)["results"].clone();
    id(&results[0]);
    assert_eq!(code(&results[1]), "forbidden");
}

#[test]
fn credentials_are_required() {
    let server = Server::start();
    let body = br#"{"items":[{"topic":"a","data":"x"}]}"#;
    for (headers, status, code_) in [
        (String::new(), 401, "unauthorized"),
        (bearer("wrong"), 401, "unauthorized"),
    ] {
        for target in ["/api/publish", "/api/broadcast"] {
            let response = server.request("POST", target, &headers, body);
            assert_eq!(response.status, status, "{target} {headers:?}");
            assert!(response.header("www-authenticate").is_some());
            assert_eq!(code(&json(&response)), code_);
        }
    }
}

#[test]
fn bad_requests_are_refused_in_json() {
    let server = Server::start();
    let headers = bearer(TOKEN);
    let cases: [(&str, &str, &[u8], u16, &str); 6] = [
        ("POST", "/api/publish", b"{\"items\":[", 400, "bad_request"),
        (
            "POST",
            "/api/publish",
            br#"{"items":[{"data":"x"}]}"#,
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/broadcast",
            br#"{"topics":"a","data":"x"}"#,
            400,
            "bad_request",
        ),
        ("GET", "/api/publish", b"", 405, "method_not_allowed"),
        ("POST", "/api/nope", b"{}", 404, "not_found"),
        ("GET", "/api/", b"", 404, "not_found"),
    ];
    for (method, target, body, status, code_) in cases {
        let response = server.request(method, target, &headers, body);
        assert_eq!(response.status, status, "{method} {target}");
        let answer = json(&response);
        assert_eq!(code(&answer), code_, "{answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let response = server.request("POST", "/api/publish", &headers, br#"{"items":[{"data":"x"}]}"#);
    assert_eq!(json(&response)["error"]["message"], "items[0].topic is required");
    let response = server.request("GET", "/api/publish", &headers, b"");
    assert_eq!(response.header("allow"), Some("POST"));
}

#[test]
fn batches_are_bounded() {
    let server = Server::start();
    let items: Vec<Value> = (0..1001).map(|_| json!({ "topic": "a", "data": "" })).collect();
    let (status, body) = server.post("/api/publish", &json!({ "items": items }));
    assert_eq!((status, code(&body)), (413, "too_many_items"));
    let topics: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let (status, body) = server.post("/api/broadcast", &json!({ "topics": topics, "data": "" }));
    assert_eq!((status, code(&body)), (413, "too_many_items"));
    // A thousand is fine.
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({ "topic": "a", "data": format!("{i}") }))
        .collect();
    let (status, body) = server.post("/api/publish", &json!({ "items": items }));
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(|r| r["id"].is_string()), "{body}");
    // A body larger than the server takes: refused before it is read.
    let mut conn = HttpConn::connect(server.addr);
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{}\r\n",
        (1 << 20) + 1,
        bearer(TOKEN)
    );
    conn.send(head.as_bytes());
    assert_eq!(conn.response().status, 413);
}

#[test]
fn a_broadcast_reaches_every_topic() {
    let server = Server::start();
    let mut a = server.sse("a");
    let mut b = server.ws("b");
    let (status, body) = server.post(
        "/api/broadcast",
        &json!({ "topics": ["a", "no such/topic", "b"], "data": "hello", "type": "news" }),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(code(&results[1]), "invalid_topic");
    let event = a.next_event();
    assert_eq!(
        (event.data(), event.event_type(), event.last_event_id()),
        ("hello", "news", id(&results[0]).as_str())
    );
    let event: Value = serde_json::from_str(&b.recv_text()).unwrap();
    assert_eq!(
        (event["data"].as_str(), event["id"].as_str()),
        (Some("hello"), Some(id(&results[2]).as_str()))
    );
}

#[test]
fn history_pages_through_the_backlog() {
    let server = Server::start();
    let ids = server.publish("h", &["1", "2", "3", "4", "5"]);
    let (status, page) = server.get("/api/history?topic=h&limit=2");
    assert_eq!(status, 200, "{page}");
    assert_eq!(datas(&page), ["1", "2"]);
    assert_eq!(
        (page["next"].as_str(), page["more"].as_bool()),
        (Some(ids[1].as_str()), Some(true))
    );
    assert!(page["gap"].is_null());
    assert_eq!(page["events"][0]["id"], ids[0]);
    let (_, page) = server.get(&format!("/api/history?topic=h&since={}&limit=2", ids[1]));
    assert_eq!(datas(&page), ["3", "4"]);
    let (_, page) = server.get(&format!("/api/history?topic=h&since={}&limit=2", ids[3]));
    assert_eq!(datas(&page), ["5"]);
    assert_eq!(
        (page["next"].as_str(), page["more"].as_bool()),
        (Some(ids[4].as_str()), Some(false))
    );
    // Caught up: nothing, and the same cursor.
    let (_, page) = server.get(&format!("/api/history?topic=h&since={}", ids[4]));
    assert_eq!(datas(&page), Vec::<&str>::new());
    assert_eq!(page["next"], ids[4]);
    // A topic with nothing published.
    let (status, page) = server.get("/api/history?topic=empty");
    assert_eq!((status, page["next"].as_str()), (200, Some("0-0")));
}

#[test]
fn history_says_when_since_is_older_than_the_backlog() {
    let server = Server::start();
    let ids = server.publish("g", &["1", "2", "3", "4", "5", "6", "7"]);
    // The backlog keeps five: 1 and 2 are gone, so after 1 is a gap.
    let (status, page) = server.get(&format!("/api/history?topic=g&since={}", ids[0]));
    assert_eq!(status, 200);
    assert!(page["gap"].is_object(), "{page}");
    assert_eq!(datas(&page), ["3", "4", "5", "6", "7"]);
    // After the last one dropped: no gap.
    let (_, page) = server.get(&format!("/api/history?topic=g&since={}", ids[1]));
    assert!(page["gap"].is_null(), "{page}");
    assert_eq!(datas(&page).len(), 5);
}

#[test]
fn history_is_refused_in_json() {
    let server = Server::start();
    for (target, headers, status, code_) in [
        ("/api/history?topic=a", String::new(), 401, "unauthorized"),
        (
            "/api/history?topic=room.8",
            bearer(&jwt(&["room.7"])),
            403,
            "forbidden",
        ),
        ("/api/history", bearer(TOKEN), 400, "bad_request"),
        ("/api/history?topic=a%20b", bearer(TOKEN), 400, "invalid_topic"),
        (
            "/api/history?topic=a&since=nope",
            bearer(TOKEN),
            400,
            "bad_request",
        ),
        (
            "/api/history?topic=a&limit=1001",
            bearer(TOKEN),
            400,
            "bad_request",
        ),
        ("/api/history?topic=a&limit=0", bearer(TOKEN), 400, "bad_request"),
    ] {
        let response = server.request("GET", target, &headers, b"");
        assert_eq!(response.status, status, "{target}");
        assert_eq!(code(&json(&response)), code_, "{target}");
    }
    let response = server.request("POST", "/api/history?topic=a", &bearer(TOKEN), b"");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    // A token that grants the topic reads it.
    let response = server.request(
        "GET",
        "/api/history?topic=room.7",
        &bearer(&jwt(&["room.7"])),
        b"",
    );
    assert_eq!(response.status, 200);
}

/// The book's examples of the server API (docs/src/guide/server-api.md),
/// run as written (the token aside). The page's refused example (a topic
/// in no namespace, `curl -s`) needs the page's namespaces, and is run
/// with the others by docs/run-snippets.py.
#[test]
fn the_books_examples_work() {
    let page = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/src/guide/server-api.md"
    ));
    let server = Server::start();
    let mut ran = 0;
    for line in page.lines().filter(|l| l.starts_with("curl -H ")) {
        assert!(line.contains("-H 'Authorization: Bearer s3cret'"), "{line}");
        let body = line
            .split_once("-d '")
            .map(|(_, rest)| rest.split_once('\'').expect("a closed body").0);
        let target = line
            .split_once("'http://127.0.0.1:8080")
            .and_then(|(_, rest)| rest.split_once('\''))
            .expect("a URL")
            .0;
        let method = if body.is_some() { "POST" } else { "GET" };
        let response = server.request(method, target, &bearer(TOKEN), body.unwrap_or("").as_bytes());
        assert_eq!(response.status, 200, "{line}");
        let answer = json(&response);
        let path = target.split('?').next().unwrap();
        match path {
            "/api/publish" | "/api/broadcast" => {
                let results = answer["results"].as_array().expect("results");
                assert!(results.iter().all(|r| r["id"].is_string()), "{line}: {answer}");
            }
            "/api/history" => {
                assert_eq!(answer["topic"], "news.world", "{line}: {answer}");
                assert_eq!(answer["events"].as_array().map(Vec::len), Some(2), "{answer}");
                // Oldest first, or newest first (the broadcast's event).
                let first = if target.contains("reverse=true") {
                    "breaking"
                } else {
                    "one"
                };
                assert_eq!(answer["events"][0]["data"], first, "{line}: {answer}");
                assert_eq!(answer["events"][1]["key"], "n-2", "{line}: {answer}");
            }
            "/api/presence" => assert_eq!(
                (&answer["topic"], &answer["count"]),
                (&json!("news.world"), &json!(0))
            ),
            "/api/presence/counts" => {
                assert_eq!(answer["counts"], json!({ "news.world": 0, "news.sports": 0 }))
            }
            "/api/topics" => {
                let names: Vec<&str> = answer["topics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["topic"].as_str().unwrap())
                    .collect();
                assert_eq!(names, ["news.sports", "news.world"], "{answer}");
            }
            // Two events from the first example, one from the broadcast.
            "/api/topics/info" => assert_eq!(answer["backlog_events"], 3, "{answer}"),
            "/api/disconnect" | "/api/unsubscribe" => assert_eq!(answer, json!({ "closed": 0 })),
            "/api/refresh" => assert_eq!(answer, json!({ "refreshed": 0 })),
            "/api/revoke" => assert_eq!(answer, json!({ "revoked": 1 })),
            // Both revocations of the examples before it.
            "/api/revoked" => assert_eq!(answer["revoked"].as_array().map(Vec::len), Some(2), "{answer}"),
            "/api/connections" => assert_eq!(
                answer,
                json!({ "user": "alice", "connections": [], "count": 0, "truncated": false })
            ),
            other => panic!("no check for {other}"),
        }
        ran += 1;
    }
    assert_eq!(ran, 15);
}

/// Over HTTP/2, two batches at once on one connection, each answered on
/// its own stream.
#[test]
fn batches_over_http2() {
    let server = Server::start();
    let mut client = H2Client::connect(server.addr);
    let bearer = format!("Bearer {TOKEN}");
    let fields = [("authorization", bearer.as_str())];
    let first = br#"{"items":[{"topic":"a","data":"1"},{"topic":"b","data":"2"}]}"#;
    let second = br#"{"topics":["a","b","c"],"data":"3"}"#;
    let one = client.request_with_body("POST", "/api/publish", &fields, first);
    let two = client.request_with_body("POST", "/api/broadcast", &fields, second);
    for (stream, len) in [(one, 2), (two, 3)] {
        let state = client.finish(stream);
        assert_eq!(state.status(), Some(200));
        let answer: Value = serde_json::from_slice(&state.data).unwrap();
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), len, "{answer}");
        assert!(results.iter().all(|r| r["id"].is_string()), "{answer}");
    }
    let refused = client.request_with_body("POST", "/api/publish", &[], first);
    let state = client.finish(refused);
    assert_eq!(state.status(), Some(401));
    assert_eq!(
        serde_json::from_slice::<Value>(&state.data).unwrap()["error"]["code"],
        "unauthorized"
    );
}

#[test]
fn a_broadcast_too_large_for_an_event_is_refused_whole() {
    let server = Server::start();
    let data = "x".repeat(MAX_EVENT + 1);
    let (status, body) = server.post("/api/broadcast", &json!({ "topics": ["a", "b"], "data": data }));
    assert_eq!((status, code(&body)), (413, "too_large"));
}
