//! The admin page, through real sockets: `/admin` and `/admin/events` on
//! the admin listener only, behind the metrics token when one is set (a
//! bearer token, or the session a sign-in opens), and an event stream
//! whose snapshots follow the server's counters.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use tether_testkit as common;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{HttpConn, Response, SseClient, WsClient, config};
use serde_json::Value;
use tether_apps::{Demo, HubSettings, HubShared};
use tether_server::{App, Cluster, Config, Handle, Handshake};

const PUBLISH_TOKEN: &str = "admin-test-publish";
/// Characters a form body must escape, to check the sign-in decodes them.
const METRICS_TOKEN: &str = "scrape+token/=%&ok";

/// A server with an admin listener, stopped when dropped.
struct Running {
    main: SocketAddr,
    admin: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start<A, F>(loops: usize, make_app: F) -> Running
    where
        A: App + Send + 'static,
        F: FnMut(usize) -> A,
    {
        Running::start_with(config(), loops, make_app)
    }

    fn start_with<A, F>(mut config: Config, loops: usize, make_app: F) -> Running
    where
        A: App + Send + 'static,
        F: FnMut(usize) -> A,
    {
        config.admin_addr = Some("127.0.0.1:0".parse().expect("an address"));
        let cluster = Cluster::bind(config, Handshake::new(), loops, make_app).expect("bind");
        let main = cluster.local_addr();
        let admin = cluster.admin_addr().expect("an admin listener");
        let handle = cluster.handle();
        let thread = std::thread::spawn(move || cluster.run());
        Running {
            main,
            admin,
            handle,
            thread: Some(thread),
        }
    }

    fn hub(loops: usize, metrics_token: Option<&str>) -> Running {
        let shared = HubShared::new(settings(metrics_token), loops);
        Running::start(loops, |index| shared.app(index))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn settings(metrics_token: Option<&str>) -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(PUBLISH_TOKEN.to_owned());
    settings.metrics_token = metrics_token.map(str::to_owned);
    settings.metrics_on_admin_listener = true;
    // The host `SseClient` names; `request` names the listener's address.
    settings.admin_hosts = vec!["test".to_owned()];
    settings
}

fn request(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Response {
    let mut conn = HttpConn::connect(addr);
    conn.send(
        format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    if method == "HEAD" {
        conn.head_response()
    } else {
        conn.response()
    }
}

fn get(addr: SocketAddr, target: &str, headers: &str) -> Response {
    request(addr, "GET", target, headers, "")
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn publish(addr: SocketAddr, topic: &str, data: &str) {
    let response = request(
        addr,
        "POST",
        &format!("/topics/{topic}"),
        &bearer(PUBLISH_TOKEN),
        data,
    );
    assert_eq!(response.status, 200);
}

fn body(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Opens `/admin/events` on the admin listener and checks it is a stream.
fn admin_stream(addr: SocketAddr, headers: &str) -> SseClient {
    let stream = SseClient::connect(addr, "/admin/events", headers);
    assert_eq!(stream.response.status, 200, "{:?}", stream.response);
    assert!(
        stream
            .response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
    );
    stream
}

fn next_snapshot(stream: &mut SseClient) -> Value {
    let event = stream.next_event();
    assert_eq!(event.event_type(), "snapshot");
    serde_json::from_str(event.data()).expect("a snapshot is JSON")
}

/// Reads snapshots until one satisfies `done` (for at most 15 s); returns it.
fn snapshot_until(stream: &mut SseClient, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = next_snapshot(stream);
        if done(&last) {
            return last;
        }
    }
    panic!("no snapshot showed {what} in 15 s; the last: {last}");
}

/// The nonce a page's `Content-Security-Policy` allows scripts with.
fn script_nonce(response: &Response) -> String {
    let policy = response.header("content-security-policy").expect("a CSP");
    let nonce = policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("script-src 'nonce-"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no script nonce in {policy}"));
    nonce.to_owned()
}

#[test]
fn the_page_is_on_the_admin_listener_only() {
    let server = Running::hub(1, None);
    for target in ["/admin", "/admin/", "/admin/events"] {
        assert_eq!(
            get(server.main, target, "").status,
            404,
            "{target} on the main port"
        );
    }
    let response = request(server.main, "POST", "/admin/login", "", "token=x");
    assert_eq!(response.status, 404);

    let page = get(server.admin, "/admin", "");
    assert_eq!(page.status, 200, "{}", body(&page));
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let policy = page.header("content-security-policy").expect("a CSP").to_owned();
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(policy.contains(directive), "{policy} lacks {directive}");
    }
    assert!(!policy.contains("unsafe-"), "{policy}");
    let nonce = script_nonce(&page);
    assert!(nonce.len() >= 32, "{nonce}");
    let html = body(&page);
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "the script carries the nonce"
    );
    assert!(
        html.contains(&format!("<style nonce=\"{nonce}\">")),
        "the style carries the nonce"
    );
    assert!(!html.contains("{{"), "a placeholder left in the page");
    // No metrics token: read-only, and it says why.
    assert!(html.contains("data-auth=\"off\""));
    assert!(html.contains("Read-only: no admin credential is set"));
    assert!(html.contains("new EventSource('/admin/events')"));
    // A fresh nonce for every answer.
    assert_ne!(script_nonce(&get(server.admin, "/admin", "")), nonce);
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // HEAD is the head alone; other methods are refused.
    let head = request(server.admin, "HEAD", "/admin", "", "");
    assert_eq!(head.status, 200);
    assert!(head.header("content-security-policy").is_some());
    let post = request(server.admin, "POST", "/admin", "", "x");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(get(server.admin, "/admin/login", "").status, 405);
    assert_eq!(get(server.admin, "/admin/other", "").status, 404);

    // The stream, and /metrics beside it as before.
    let mut stream = admin_stream(server.admin, "");
    let first = next_snapshot(&mut stream);
    assert_eq!(first["loops"], 1);
    assert_eq!(first["broker"]["state"], "up");
    assert_eq!(get(server.admin, "/metrics", "").status, 200);
    assert_eq!(get(server.main, "/metrics", "").status, 404);
}

#[test]
fn the_demo_serves_it_on_its_admin_listener() {
    let shared = HubShared::new(Demo::settings(settings(None)), 1);
    let server = Running::start(1, |index| Demo::with_hub(shared.app(index)));
    assert_eq!(get(server.main, "/admin", "").status, 404);
    assert_eq!(get(server.main, "/admin/events", "").status, 404);
    // The demo's own page is still there.
    assert_eq!(get(server.main, "/", "").status, 200);
    let page = get(server.admin, "/admin", "");
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some());
    let mut stream = admin_stream(server.admin, "");
    // The demo publishes a tick a second to its clock topic.
    snapshot_until(&mut stream, "the clock's publishes", |s| {
        s["publishes"]["ok"].as_u64() > Some(0) && s["topics"].as_u64() >= Some(1)
    });
}

#[test]
fn the_metrics_token_guards_the_page_and_its_stream() {
    let server = Running::hub(1, Some(METRICS_TOKEN));
    // Without it: the sign-in form (a page of its own, also under a CSP),
    // and no stream.
    let denied = get(server.admin, "/admin", "");
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    assert!(denied.header("content-security-policy").is_some());
    let form = body(&denied);
    assert!(form.contains("action=\"/admin/login\""), "{form}");
    assert!(!form.contains("<script"), "{form}");
    assert_eq!(get(server.admin, "/admin/events", "").status, 401);
    assert_eq!(get(server.admin, "/admin", &bearer("wrong")).status, 401);
    assert_eq!(
        get(server.admin, "/admin/events", &bearer(PUBLISH_TOKEN)).status,
        401
    );
    // Not on the main port, whatever is presented.
    assert_eq!(get(server.main, "/admin", &bearer(METRICS_TOKEN)).status, 404);

    // With it in Authorization (curl, scripts).
    let page = get(server.admin, "/admin", &bearer(METRICS_TOKEN));
    assert_eq!(page.status, 200);
    assert!(body(&page).contains("data-auth=\"on\""));
    let mut stream = admin_stream(server.admin, &bearer(METRICS_TOKEN));
    next_snapshot(&mut stream);

    // A sign-in: the wrong token gets the form again, another site's form
    // is refused, the right one opens a session.
    let form_body = |token: &str| {
        let mut encoded = String::from("token=");
        for b in token.bytes() {
            if b.is_ascii_alphanumeric() {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        encoded
    };
    let form_type = "Content-Type: application/x-www-form-urlencoded\r\n";
    let wrong = request(
        server.admin,
        "POST",
        "/admin/login",
        form_type,
        &form_body("nope"),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let cross_site = request(
        server.admin,
        "POST",
        "/admin/login",
        &format!("{form_type}Origin: https://elsewhere.example\r\n"),
        &form_body(METRICS_TOKEN),
    );
    assert_eq!(cross_site.status, 403);
    assert!(cross_site.header("set-cookie").is_none());
    // An opaque origin counts only where the browser says it is this one.
    let opaque = |site: &str| {
        request(
            server.admin,
            "POST",
            "/admin/login",
            &format!("{form_type}Origin: null\r\nSec-Fetch-Site: {site}\r\n"),
            &form_body(METRICS_TOKEN),
        )
        .status
    };
    assert_eq!(opaque("cross-site"), 403);
    assert_eq!(opaque("same-origin"), 303);
    let origin = format!("Origin: http://{}\r\n", server.admin);
    let signed_in = request(
        server.admin,
        "POST",
        "/admin/login",
        &format!("{form_type}{origin}"),
        &form_body(METRICS_TOKEN),
    );
    assert_eq!(signed_in.status, 303, "{}", body(&signed_in));
    assert_eq!(signed_in.header("location"), Some("/admin"));
    let set_cookie = signed_in
        .header("set-cookie")
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
    }
    assert!(
        !set_cookie.contains("scrape"),
        "the token itself is not the cookie: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    assert!(cookie.starts_with("tether_admin=") && cookie.len() > "tether_admin=".len() + 16);
    let with_cookie = format!("Cookie: {cookie}\r\n");
    assert_eq!(get(server.admin, "/admin", &with_cookie).status, 200);
    // Another session id is nothing.
    assert_eq!(
        get(
            server.admin,
            "/admin",
            "Cookie: tether_admin=0123456789abcdef\r\n"
        )
        .status,
        401
    );
    let mut session_stream = admin_stream(server.admin, &with_cookie);
    next_snapshot(&mut session_stream);

    // Signing out ends the session and the stream opened with it; the
    // bearer's stream goes on.
    let signed_out = request(
        server.admin,
        "POST",
        "/admin/logout",
        &format!("{with_cookie}{origin}"),
        "",
    );
    assert_eq!(signed_out.status, 303);
    assert!(
        signed_out
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_eq!(get(server.admin, "/admin", &with_cookie).status, 401);
    assert_eq!(get(server.admin, "/admin/events", &with_cookie).status, 401);
    session_stream.read_to_end();
    assert!(session_stream.is_ended());
    next_snapshot(&mut stream);
}

#[test]
fn snapshots_follow_the_counters() {
    // Two loops: the counters are added up over both, as /metrics does.
    let server = Running::hub(2, None);
    let mut stream = admin_stream(server.admin, "");
    let first = next_snapshot(&mut stream);
    assert_eq!(first["loops"], 2);
    assert_eq!(first["publishes"]["ok"], 0);
    assert_eq!(first["deliveries"]["total"], 0);
    assert_eq!(first["topics"], 0);
    assert_eq!(first["connections"]["websocket"], 0);
    assert_eq!(first["connections"]["http2"], 0);
    assert_eq!(first["auth_denials"]["total"], 0);
    // Its own stream is an open event stream.
    assert_eq!(first["connections"]["sse"], 1);

    // Subscribers over every transport, HTTP/2 among them, then publishes.
    let mut sse = SseClient::connect(server.main, "/topics/news/events", "");
    assert_eq!(sse.response.status, 200);
    let mut ws = WsClient::connect(server.main, "/topics/news/ws");
    let mut h2 = H2Client::connect(server.main);
    let h2_stream = h2.get("/topics/news/events", &[]);
    assert_eq!(h2.head(h2_stream).status(), Some(200));
    let mut poll = HttpConn::connect(server.main);
    poll.request("GET", "/topics/other/poll?timeout=30", "");
    snapshot_until(&mut stream, "the subscribers", |s| {
        s["connections"]["websocket"] == 1
            && s["connections"]["sse"] == 3
            && s["connections"]["http2"] == 1
            && s["connections"]["long_poll"] == 1
            && s["subscribers"]["sse"] == 2
    });
    for n in 0..5 {
        publish(server.main, "news", &format!("event {n}"));
    }
    for _ in 0..5 {
        sse.next_event();
        ws.recv_text();
    }
    // The snapshot that first shows them has the rates of the second
    // they were made in, above zero.
    let (mut publish_rate, mut delivery_rate) = (0.0f64, 0.0f64);
    let moved = snapshot_until(&mut stream, "the publishes and their deliveries", |s| {
        publish_rate = publish_rate.max(s["publishes"]["per_second"].as_f64().unwrap_or(0.0));
        delivery_rate = delivery_rate.max(s["deliveries"]["per_second"].as_f64().unwrap_or(0.0));
        s["publishes"]["ok"] == 5 && s["deliveries"]["total"] == 15
    });
    assert!(
        publish_rate > 0.0 && delivery_rate > 0.0,
        "{publish_rate} {delivery_rate}"
    );
    assert_eq!(moved["deliveries"]["sse"], 10, "{moved}");
    assert_eq!(moved["deliveries"]["websocket"], 5, "{moved}");
    // The topics of the admin listener's loop's replica, which holds every
    // topic's backlog (a topic with subscribers alone, on another loop,
    // is not there: /metrics counts the same).
    assert!(moved["topics"].as_u64() >= Some(1), "{moved}");
    assert_eq!(moved["backlog"]["events"], 5, "{moved}");

    // A refused publish is an auth denial.
    let refused = request(server.main, "POST", "/topics/news", "", "x");
    assert_eq!(refused.status, 401);
    snapshot_until(&mut stream, "the denial", |s| {
        s["auth_denials"]["total"] == 1
            && s["auth_denials"]["by_reason"]["missing"] == 1
            && s["auth_denials"]["refused_401"] == 1
    });

    // And back down as they leave; the rates fall to zero once nothing
    // is published.
    drop((sse, ws, h2, poll));
    snapshot_until(&mut stream, "the subscribers gone", |s| {
        s["connections"]["websocket"] == 0
            && s["connections"]["sse"] == 1
            && s["connections"]["http2"] == 0
            && s["connections"]["long_poll"] == 0
            && s["publishes"]["per_second"] == 0.0
    });
}

#[test]
fn slow_consumer_cuts_show() {
    let mut config = config();
    config.max_output = 64 * 1024;
    let shared = HubShared::new(settings(None), 1);
    let server = Running::start_with(config, 1, |index| shared.app(index));
    let mut stream = admin_stream(server.admin, "");
    let first = next_snapshot(&mut stream);
    assert_eq!(first["slow_consumer_cuts"]["connections"], 0);
    assert_eq!(first["slow_consumer_cuts"]["hub_subscribers"], 0);
    // It never reads a byte after its head.
    let stuck = SseClient::connect(server.main, "/topics/flood/events", "");
    assert_eq!(stuck.response.status, 200);
    let event = "x".repeat(16 * 1024);
    let mut publisher = HttpConn::connect(server.main);
    let mut sent = 0;
    loop {
        for _ in 0..50 {
            publisher.send(
                format!(
                    "POST /topics/flood HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PUBLISH_TOKEN}\r\n\
                     Content-Length: {}\r\n\r\n{event}",
                    event.len()
                )
                .as_bytes(),
            );
            assert_eq!(publisher.response().status, 200);
        }
        sent += 50;
        let snapshot = next_snapshot(&mut stream);
        if snapshot["slow_consumer_cuts"]["connections"] == 1 {
            assert_eq!(snapshot["slow_consumer_cuts"]["hub_subscribers"], 1, "{snapshot}");
            assert_eq!(snapshot["subscribers"]["sse"], 0, "{snapshot}");
            break;
        }
        assert!(
            sent < 4000,
            "64 MiB went out and the stuck subscriber is still there: {snapshot}"
        );
    }
    drop(stuck);
}

#[test]
fn a_new_metrics_token_ends_the_sessions_and_streams_of_the_old_one() {
    let shared = HubShared::new(settings(Some("first-token")), 1);
    let server = Running::start(1, |index| shared.app(index));
    let signed_in = request(
        server.admin,
        "POST",
        "/admin/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "token=first-token",
    );
    assert_eq!(signed_in.status, 303);
    let cookie = signed_in
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let with_cookie = format!("Cookie: {cookie}\r\n");
    let mut by_session = admin_stream(server.admin, &with_cookie);
    let mut by_bearer = admin_stream(server.admin, &bearer("first-token"));
    next_snapshot(&mut by_session);
    next_snapshot(&mut by_bearer);

    // SIGHUP with --config does this.
    let kept = shared.reload(settings(Some("second-token")));
    assert!(kept.is_empty(), "{kept:?}");
    by_session.read_to_end();
    by_bearer.read_to_end();
    assert!(by_session.is_ended() && by_bearer.is_ended());
    assert_eq!(get(server.admin, "/admin", &with_cookie).status, 401);
    assert_eq!(get(server.admin, "/admin", &bearer("first-token")).status, 401);
    assert_eq!(get(server.admin, "/admin", &bearer("second-token")).status, 200);
    let mut fresh = admin_stream(server.admin, &bearer("second-token"));
    next_snapshot(&mut fresh);
}
