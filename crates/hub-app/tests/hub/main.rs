//! The pub/sub hub end to end, over real sockets on one event loop:
//! publishing, replay over SSE (header and query) and WebSocket, the gap
//! signal, long polls, publish auth, tickets, the origin allowlist and the
//! metrics page.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

// Shared with the other test targets of the crate, one directory up.
#[path = "../support/mod.rs"]
mod support;

use tether_testkit as common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{HttpConn, Response, SseClient, WsClient, config, tcp};
use serde_json::Value;
use tether_hub_app::{HubSettings, HubShared};
use tether_server::{Config, Handshake, Server};

use support::running::Running;

const TOKEN: &str = "s3cret-token";

/// A hub with the test token, on its own thread.
struct HubServer {
    addr: SocketAddr,
    _running: Running,
}

impl HubServer {
    fn start(settings: HubSettings) -> HubServer {
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

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
}

fn auth() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

/// One request with a body on a keep-alive connection.
fn request(conn: &mut HttpConn, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    conn.send(head.as_bytes());
    conn.send(body);
    conn.response()
}

/// Publishes `data` and returns the event's id.
fn publish(conn: &mut HttpConn, topic: &str, event: Option<&str>, data: &str) -> String {
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

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))
}

fn ws_json(client: &mut WsClient) -> Value {
    json(client.recv_text().as_bytes())
}

/// Reads the response head of a request written to `stream` by hand.
fn read_head(stream: &mut std::net::TcpStream) -> String {
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

fn upgrade_request(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[test]
fn sse_subscribers_resume_exactly_by_header_and_by_query() {
    let server = HubServer::start(settings());
    let mut publisher = HttpConn::connect(server.addr);
    // (id, type, data) of everything published, in order.
    let mut published: Vec<(String, &str, String)> = Vec::new();
    for i in 1..=3 {
        let data = format!("item {i}\nsecond line");
        published.push((
            publish(&mut publisher, "news", Some("update"), &data),
            "update",
            data,
        ));
    }
    // Ids are epoch-seq, increasing.
    let seqs: Vec<u64> = published
        .iter()
        .map(|(id, ..)| id.split_once('-').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let first = published[0].0.clone();

    for (target, header) in [
        (
            "/topics/news/events".to_owned(),
            format!("Last-Event-ID: {first}\r\n"),
        ),
        (format!("/topics/news/events?lastEventId={first}"), String::new()),
    ] {
        let mut stream = SseClient::connect(server.addr, &target, &header);
        assert_eq!(stream.response.status, 200);
        assert_eq!(stream.response.header("content-type"), Some("text/event-stream"));
        // Exactly what followed the id, in order...
        for (id, event_type, data) in &published[1..] {
            let event = stream.next_event();
            assert_eq!(
                (event.event_type(), event.data(), event.last_event_id()),
                (*event_type, data.as_str(), id.as_str()),
                "{target}"
            );
        }
        // ...then live, nothing in between.
        let live = publish(&mut publisher, "news", None, "live");
        let event = stream.next_event();
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            ("message", "live", live.as_str())
        );
        published.push((live, "message", "live".to_owned()));
    }
    // A fresh subscriber gets only what comes next.
    let mut fresh = SseClient::connect(server.addr, "/topics/news/events", "");
    let next = publish(&mut publisher, "news", None, "next");
    assert_eq!(fresh.next_event().last_event_id(), next);
}

#[test]
fn websocket_subscribers_resume_and_publish_where_allowed() {
    let mut settings = settings();
    settings.ws_publish = vec!["room.*".to_owned()];
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let first = publish(&mut publisher, "room.a", None, "one");
    let second = publish(&mut publisher, "room.a", Some("note"), "two \"quoted\"");

    let mut ws = WsClient::connect(server.addr, &format!("/topics/room.a/ws?lastEventId={first}"));
    let event = ws_json(&mut ws);
    assert_eq!(event["topic"], "room.a");
    assert_eq!(event["id"], second.as_str());
    assert_eq!(event["event"], "note");
    assert_eq!(event["data"], "two \"quoted\"");

    // Anyone may publish to room.*: the publisher sees its own event, in
    // the topic's order, as does every other subscriber.
    let mut other = WsClient::connect(server.addr, "/topics/room.a/ws?event=chat");
    ws.send_text("from the socket");
    for client in [&mut ws, &mut other] {
        let event = ws_json(client);
        assert_eq!(
            (event["data"].as_str(), event["event"].as_str()),
            (Some("from the socket"), Some("message"))
        );
    }
    other.send_text("typed");
    assert_eq!(ws_json(&mut ws)["event"], "chat");

    // Elsewhere publishing is refused with a control message; binary too.
    let mut news = WsClient::connect(server.addr, "/topics/news/ws");
    news.send_text("nope");
    let error = ws_json(&mut news);
    assert_eq!(error["control"], "error");
    assert!(error["error"].as_str().unwrap().contains("not allowed"));
    ws.send_binary(b"bytes");
    assert_eq!(ws_json(&mut ws)["control"], "error");
    // A bad ?event= is refused before the upgrade.
    let mut raw = tcp(server.addr);
    raw.write_all(upgrade_request("/topics/room.a/ws?event=gap", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut raw).starts_with("HTTP/1.1 400 "));
}

#[test]
fn a_token_holder_may_publish_over_websocket_anywhere() {
    let server = HubServer::start(settings());
    let upgrade = common::Upgrade::new(server.addr, "/topics/news/ws");
    // Splice the Authorization header into the upgrade request.
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let with_auth = text.replacen("\r\n", &format!("\r\n{}", auth()), 1);
    let mut stream = tcp(server.addr);
    stream.write_all(with_auth.as_bytes()).unwrap();
    // The request bytes in `upgrade` are not used again: it validates the 101.
    let mut ws = WsClient::finish(stream, upgrade);
    ws.send_text("by token");
    assert_eq!(ws_json(&mut ws)["data"], "by token");
}

#[test]
fn ids_that_are_too_old_or_unknown_get_the_gap_signal() {
    let mut settings = settings();
    settings.hub.max_backlog_events = 2;
    // The shortest resume wait (one second: one to two ticks), for the
    // id ahead of the topic at the end.
    settings.hub.resume_wait = std::time::Duration::from_secs(1);
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let ids: Vec<String> = (1..=5)
        .map(|i| publish(&mut publisher, "g", None, &format!("e{i}")))
        .collect();
    // Held: e4, e5; e3 was the last dropped.
    for requested in [
        ids[0].clone(),
        "0-0".to_owned(),
        "1-1".to_owned(),
        "garbage".to_owned(),
    ] {
        let mut stream = SseClient::connect(
            server.addr,
            "/topics/g/events",
            &format!("Last-Event-ID: {requested}\r\n"),
        );
        let gap = stream.next_event();
        assert_eq!(gap.event_type(), "gap", "for {requested}");
        assert_eq!(
            gap.last_event_id(),
            ids[2],
            "the gap moves the client to the last dropped id"
        );
        let data = json(gap.data().as_bytes());
        assert_eq!(data["requested"], requested.as_str());
        assert_eq!(data["first"], ids[3].as_str());
        assert_eq!(data["resume"], ids[2].as_str());
        assert_eq!(stream.next_event().data(), "e4");
        assert_eq!(stream.next_event().data(), "e5");
    }
    // The last dropped id itself is known: exactly e4 and e5, no gap.
    let mut stream = SseClient::connect(
        server.addr,
        "/topics/g/events",
        &format!("Last-Event-ID: {}\r\n", ids[2]),
    );
    assert_eq!(stream.next_event().data(), "e4");
    // Over WebSocket, a control message.
    let mut ws = WsClient::connect(server.addr, &format!("/topics/g/ws?lastEventId={}", ids[0]));
    let gap = ws_json(&mut ws);
    assert_eq!(gap["control"], "gap");
    assert_eq!(
        (gap["first"].as_str(), gap["resume"].as_str()),
        (Some(ids[3].as_str()), Some(ids[2].as_str()))
    );
    assert_eq!(ws_json(&mut ws)["data"], "e4");
    assert_eq!(ws_json(&mut ws)["data"], "e5");
    // An id ahead of the topic may be an event still on its way from
    // another loop: it is held, and gets the signal after the resume
    // wait (here one to two ticks) when nothing comes.
    let (epoch, _) = ids[4].split_once('-').unwrap();
    let ahead = format!("{epoch}-99");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/g/ws?lastEventId={ahead}"));
    let gap = ws_json(&mut ws);
    assert_eq!(
        (gap["control"].as_str(), gap["requested"].as_str()),
        (Some("gap"), Some(ahead.as_str()))
    );
    assert_eq!(ws_json(&mut ws)["data"], "e4");
}

#[test]
fn long_polls_answer_at_once_or_when_an_event_arrives() {
    let server = HubServer::start(settings());
    let mut publisher = HttpConn::connect(server.addr);
    // Nothing yet: held until the next event, published from elsewhere.
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/p/poll?since=0-0", "");
    let first = publish(&mut publisher, "p", None, "first");
    let answer = poll.response();
    assert_eq!(answer.status, 200);
    let body = json(&answer.body);
    assert_eq!(body["topic"], "p");
    assert_eq!(body["events"][0]["data"], "first");
    assert_eq!(body["events"][0]["id"], first.as_str());
    assert_eq!(body["next"], first.as_str());
    assert!(body["gap"].is_null());
    // Events already there are answered at once, on the same connection.
    let second = publish(&mut publisher, "p", None, "second");
    let third = publish(&mut publisher, "p", None, "third");
    poll.request("GET", &format!("/topics/p/poll?since={first}"), "");
    let body = json(&poll.response().body);
    let ids: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), third.as_str()]);
    assert_eq!(body["next"], third.as_str());
    // Up to date and nothing comes: the timeout answers, next unchanged.
    poll.request("GET", &format!("/topics/p/poll?since={third}&timeout=0.2"), "");
    let body = json(&poll.response().body);
    assert_eq!(body["events"].as_array().unwrap().len(), 0);
    assert_eq!(body["next"], third.as_str());
    // No since: the timeout's next is the topic's head.
    poll.request("GET", "/topics/p/poll?timeout=0", "");
    assert_eq!(json(&poll.response().body)["next"], third.as_str());
    // An unknown id: the gap field, and everything held.
    poll.request("GET", "/topics/p/poll?since=7-7", "");
    let body = json(&poll.response().body);
    assert_eq!(body["gap"]["requested"], "7-7");
    assert_eq!(body["gap"]["resume"], "0-0");
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
    // A poller that goes away is forgotten; the next one still works.
    let mut gone = HttpConn::connect(server.addr);
    gone.request("GET", &format!("/topics/p/poll?since={third}"), "");
    drop(gone);
    poll.request("GET", &format!("/topics/p/poll?since={third}"), "");
    let fourth = publish(&mut publisher, "p", None, "fourth");
    assert_eq!(json(&poll.response().body)["next"], fourth.as_str());
    // Only GET.
    let refused = request(
        &mut HttpConn::connect(server.addr),
        "POST",
        "/topics/p/poll",
        "",
        b"",
    );
    assert_eq!(refused.status, 405);
}

#[test]
fn publishing_over_http_needs_the_token() {
    let server = HubServer::start(settings());
    let mut conn = HttpConn::connect(server.addr);
    let missing = request(&mut conn, "POST", "/topics/a", "", b"x");
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"tether\"")
    );
    let mut conn = HttpConn::connect(server.addr);
    let wrong = request(
        &mut conn,
        "POST",
        "/topics/a",
        "Authorization: Bearer nope\r\n",
        b"x",
    );
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let mut conn = HttpConn::connect(server.addr);
    let basic = request(
        &mut conn,
        "POST",
        "/topics/a",
        "Authorization: Basic czNjcmV0\r\n",
        b"x",
    );
    assert_eq!(basic.status, 401);
    // With it: the checks on what is published.
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(
        request(&mut conn, "POST", "/topics/bad%20name", &auth(), b"x").status,
        400
    );
    assert_eq!(
        request(&mut conn, "POST", "/topics/a?event=gap", &auth(), b"x").status,
        400
    );
    assert_eq!(
        request(&mut conn, "POST", "/topics/a", &auth(), b"\xff\xfe").status,
        400
    );
    let big = vec![b'x'; 64 * 1024 + 1];
    assert_eq!(request(&mut conn, "POST", "/topics/a", &auth(), &big).status, 413);
    let typed = request(
        &mut conn,
        "POST",
        "/topics/a",
        &format!("{}Tether-Event: kind\r\n", auth()),
        b"x",
    );
    assert_eq!(typed.status, 200);
    assert_eq!(request(&mut conn, "GET", "/topics/a", "", b"").status, 405);

    // No token configured: publishing over HTTP is off.
    let open = HubServer::start(HubSettings::default());
    let mut conn = HttpConn::connect(open.addr);
    let refused = request(&mut conn, "POST", "/topics/a", &auth(), b"x");
    assert_eq!(refused.status, 403);
    assert!(String::from_utf8_lossy(&refused.body).contains("disabled"));
}

fn ticket(addr: SocketAddr, query: &str) -> String {
    let mut conn = HttpConn::connect(addr);
    let response = request(&mut conn, "POST", &format!("/tickets{query}"), &auth(), b"");
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let body = json(&response.body);
    assert!(body["expires_in"].as_f64().unwrap() > 0.0);
    let ticket = body["ticket"].as_str().unwrap().to_owned();
    assert_eq!(ticket.len(), 32);
    ticket
}

#[test]
fn tickets_are_single_use_scoped_and_expire() {
    let mut settings = settings();
    settings.require_ticket = true;
    settings.ticket_ttl = Duration::from_millis(300);
    let server = HubServer::start(settings);
    let status =
        |target: &str, headers: &str| SseClient::connect(server.addr, target, headers).response.status;

    // Tickets need the token.
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/tickets", "", b"").status, 401);
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "GET", "/tickets", &auth(), b"").status, 405);

    assert_eq!(status("/topics/t/events", ""), 401, "no ticket");
    let one = ticket(server.addr, "");
    assert_eq!(status(&format!("/topics/t/events?ticket={one}"), ""), 200);
    assert_eq!(
        status(&format!("/topics/t/events?ticket={one}"), ""),
        403,
        "used already"
    );
    assert_eq!(
        status("/topics/t/events?ticket=00112233445566778899aabbccddeeff", ""),
        403
    );
    // The token works as well as a ticket for clients that can send it.
    assert_eq!(status("/topics/t/events", &auth()), 200);
    // Scoped to a topic.
    let scoped = ticket(server.addr, "?topic=t");
    assert_eq!(status(&format!("/topics/u/events?ticket={scoped}"), ""), 403);
    let scoped = ticket(server.addr, "?topic=t");
    assert_eq!(status(&format!("/topics/t/events?ticket={scoped}"), ""), 200);
    // Long polls and WebSockets need one too.
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/t/poll?timeout=0", "");
    assert_eq!(poll.response().status, 401);
    let mut raw = tcp(server.addr);
    raw.write_all(upgrade_request("/topics/t/ws", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut raw).starts_with("HTTP/1.1 401 "));
    // A ticket that grants publishing on its topic.
    let publisher = ticket(server.addr, "?topic=t&publish=1");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/t/ws?ticket={publisher}"));
    ws.send_text("with a ticket");
    assert_eq!(ws_json(&mut ws)["data"], "with a ticket");
    let plain = ticket(server.addr, "");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/t/ws?ticket={plain}"));
    ws.send_text("without the grant");
    assert_eq!(ws_json(&mut ws)["control"], "error");
    // Expiry: a ticket older than its 300 ms is refused.
    let stale = ticket(server.addr, "");
    thread::sleep(Duration::from_millis(600));
    assert_eq!(status(&format!("/topics/t/events?ticket={stale}"), ""), 403);
}

#[test]
fn origins_outside_the_allowlist_are_refused() {
    let mut settings = settings();
    settings.trusted_origins = vec!["http://good.example".to_owned()];
    let server = HubServer::start(settings);
    let try_upgrade = |extra: &str| {
        let mut raw = tcp(server.addr);
        raw.write_all(upgrade_request("/topics/t/ws", extra).as_bytes())
            .unwrap();
        read_head(&mut raw)
    };
    assert!(try_upgrade("Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403 "));
    assert!(try_upgrade("Origin: http://good.example\r\n").starts_with("HTTP/1.1 101 "));
    assert!(
        try_upgrade("").starts_with("HTTP/1.1 101 "),
        "no Origin: not a browser"
    );
    let sse = |headers: &str| {
        SseClient::connect(server.addr, "/topics/t/events", headers)
            .response
            .status
    };
    assert_eq!(sse("Origin: http://evil.example\r\n"), 403);
    assert_eq!(sse("Origin: http://GOOD.example\r\n"), 200);
    let mut conn = HttpConn::connect(server.addr);
    let post = request(
        &mut conn,
        "POST",
        "/topics/t",
        &format!("{}Origin: http://evil.example\r\n", auth()),
        b"x",
    );
    assert_eq!(post.status, 403);
}

#[test]
fn the_origin_policy_guards_every_websocket_route() {
    // Not only the hub's: an echo on every path, behind the same policy.
    let mut settings = HubSettings::default();
    settings.trusted_origins = vec!["http://good.example".to_owned()];
    let handshake = settings.origin_policy(Handshake::new());
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let server = Server::bind(config(), handshake, tether_apps::Echo::everywhere())?;
        tx.send((server.local_addr(), server.handle()))
            .expect("the test waits");
        server.run()
    });
    let (addr, handle) = rx.recv().expect("the server binds");
    let try_upgrade = |extra: &str| {
        let mut raw = tcp(addr);
        raw.write_all(upgrade_request("/anything", extra).as_bytes())
            .unwrap();
        read_head(&mut raw)
    };
    assert!(try_upgrade("Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403 "));
    assert!(try_upgrade("Origin: http://good.example\r\n").starts_with("HTTP/1.1 101 "));
    handle.shutdown();
    thread.join().expect("no panic").expect("run() returned Ok");
}

/// `name{labels} value` lines by name and labels; checks the format.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
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
                    assert!(matches!(value, "counter" | "gauge"), "{line}");
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
        assert!(types.contains_key(name), "no TYPE before {line}");
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

#[test]
fn metrics_parse_and_count() {
    let mut settings = settings();
    settings.metrics_topics = true;
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let _sse = SseClient::connect(server.addr, "/topics/m/events", "");
    let mut ws = WsClient::connect(server.addr, "/topics/m/ws");
    for i in 0..3 {
        publish(&mut publisher, "m", None, &format!("{i}"));
    }
    for _ in 0..3 {
        ws.recv_text();
    }
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/topics/m", "", b"x").status, 401);
    let response = common::get(server.addr, "/metrics");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = parse_metrics(std::str::from_utf8(&response.body).unwrap());
    assert_eq!(m["tether_connections{transport=\"websocket\"}"], 1.0);
    assert_eq!(m["tether_connections{transport=\"sse\"}"], 1.0);
    assert_eq!(m["tether_hub_subscribers{transport=\"websocket\"}"], 1.0);
    assert_eq!(m["tether_hub_subscribers{transport=\"sse\"}"], 1.0);
    assert_eq!(m["tether_hub_publishes_total{result=\"ok\"}"], 3.0);
    assert_eq!(m["tether_hub_events_sent_total{transport=\"websocket\"}"], 3.0);
    assert_eq!(m["tether_hub_topic_backlog_events{topic=\"m\"}"], 3.0);
    assert_eq!(m["tether_hub_backlog_events"], 3.0);
    assert!(m["tether_hub_backlog_bytes"] > 0.0);
    assert_eq!(m["tether_hub_topics"], 1.0);
    assert_eq!(m["tether_hub_refused_total{status=\"401\"}"], 1.0);
    assert_eq!(m["tether_broker_up"], 1.0);
    assert_eq!(m["tether_broker_state{broker=\"local\",state=\"up\"}"], 1.0);
    assert_eq!(m["tether_broker_state{broker=\"local\",state=\"down\"}"], 0.0);
    assert!(m["tether_bytes_sent_total"] > 0.0 && m["tether_bytes_received_total"] > 0.0);
    assert!(m["tether_messages_sent_total"] >= 6.0);
    assert_eq!(m["tether_slow_consumers_total"], 0.0);
    assert!(m["tether_http_requests_total"] >= 5.0);
}

#[test]
fn unknown_hub_paths_and_methods() {
    let server = HubServer::start(settings());
    assert_eq!(common::get(server.addr, "/topics/a/nope").status, 404);
    assert_eq!(common::get(server.addr, "/elsewhere").status, 404);
    assert_eq!(common::get(server.addr, "/topics/").status, 400);
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/metrics", "", b"").status, 405);
}

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
