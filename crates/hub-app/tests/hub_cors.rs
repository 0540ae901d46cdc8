//! CORS on the hub's HTTP routes: an allowed origin gets
//! `Access-Control-Allow-Origin` naming it, with credentials, on publishes,
//! long polls (answered at once and later), tickets and refusals; others
//! get no CORS header; preflights are answered 204 or 403; and one list
//! of trusted origins decides both who may come in and who gets CORS.

mod support;

use tether_testkit as common;

use common::{HttpConn, Response, SseClient, TestServer, config};
use tether_hub_app::{HubApp, HubSettings};

const ADMIN: &str = "admin-publish-token";
const APP: &str = "https://app.example.com";

fn hub(more_trusted: &[&str]) -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(ADMIN.into());
    settings.trusted_origins = vec![APP.into()];
    settings
        .trusted_origins
        .extend(more_trusted.iter().map(|o| (*o).to_owned()));
    TestServer::start(config(), HubApp::new(settings))
}

fn request(server: &TestServer, method: &str, target: &str, headers: &str, body: &str) -> Response {
    support::http::request(server.addr, method, target, headers, body)
}

fn origin(origin: &str) -> String {
    format!("Origin: {origin}\r\n")
}

fn admin() -> String {
    format!("Authorization: Bearer {ADMIN}\r\n")
}

fn assert_cors(response: &Response, origin: &str) {
    assert_eq!(response.header("access-control-allow-origin"), Some(origin));
    assert_eq!(response.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(response.header("vary"), Some("Origin"));
    // Once each: a browser refuses an answer with two of them.
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "vary",
    ] {
        let count = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count();
        assert_eq!(count, 1, "{name} in {:?}", response.headers);
    }
}

fn assert_no_cors(response: &Response) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
    ] {
        assert_eq!(response.header(name), None, "{name}");
    }
}

#[test]
fn an_allowed_origin_gets_cors_headers_on_every_http_route() {
    let server = hub(&[]);
    let from_app = format!("{}{}", origin(APP), admin());
    let response = request(&server, "POST", "/topics/news", &from_app, "hello");
    assert_eq!(response.status, 200);
    assert_cors(&response, APP);
    assert!(
        response
            .header("access-control-expose-headers")
            .is_some_and(|h| h.contains("WWW-Authenticate"))
    );

    // A long poll answered at once, and one answered later.
    let response = request(&server, "GET", "/topics/news/poll?timeout=0", &origin(APP), "");
    assert_eq!(response.status, 200);
    assert_cors(&response, APP);
    let mut waiting = HttpConn::connect(server.addr);
    waiting.request(
        "GET",
        "/topics/quiet/poll?timeout=5",
        &format!("{}Connection: close\r\n", origin(APP)),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        request(&server, "POST", "/topics/quiet", &admin(), "later").status,
        200
    );
    let response = waiting.response();
    assert_eq!(response.status, 200);
    assert_cors(&response, APP);
    // One that times out.
    let response = request(&server, "GET", "/topics/empty/poll?timeout=0.2", &origin(APP), "");
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["events"], serde_json::json!([]), "{body}");
    assert_cors(&response, APP);

    let response = request(&server, "POST", "/tickets?topic=news", &from_app, "");
    assert_eq!(response.status, 200);
    assert_cors(&response, APP);

    // Refusals too, so that a script can read why.
    let response = request(&server, "POST", "/topics/news", &origin(APP), "x");
    assert_eq!(response.status, 401);
    assert_cors(&response, APP);
    let response = request(&server, "GET", "/topics/bad%20name/poll", &origin(APP), "");
    assert_eq!(response.status, 400);
    assert_cors(&response, APP);
}

#[test]
fn other_origins_and_requests_without_one_get_no_cors_headers() {
    let server = hub(&[]);
    for headers in [
        origin("https://evil.example"),
        String::new(),
        origin("*"),
        origin("null"),
    ] {
        let response = request(
            &server,
            "POST",
            "/topics/news",
            &format!("{headers}{}", admin()),
            "x",
        );
        // With trusted origins, a page of any other origin is refused
        // (one list: who comes in is who gets CORS); a request without
        // `Origin` is not a browser's cross-origin one.
        let expected = if headers.is_empty() { 200 } else { 403 };
        assert_eq!(response.status, expected, "{headers:?}");
        assert_no_cors(&response);
        assert_eq!(response.header("vary"), Some("Origin"));
        let response = request(&server, "GET", "/topics/news/poll?timeout=0", &headers, "");
        assert_no_cors(&response);
    }
    // The origin is compared whole.
    let response = request(
        &server,
        "GET",
        "/topics/news/poll?timeout=0",
        &origin("https://app.example.com.evil"),
        "",
    );
    assert_no_cors(&response);

    // Without CORS origins, no CORS header and no Vary.
    let server = TestServer::start(config(), HubApp::new(HubSettings::default()));
    let response = request(&server, "GET", "/topics/news/poll?timeout=0", &origin(APP), "");
    assert_no_cors(&response);
    assert_eq!(response.header("vary"), None);
}

#[test]
fn preflights_are_answered_for_allowed_origins_only() {
    let server = hub(&[]);
    let ask = "Access-Control-Request-Method: POST\r\n\
               Access-Control-Request-Headers: authorization, content-type\r\n";
    for target in [
        "/topics/news",
        "/topics/news/events",
        "/topics/news/poll",
        "/tickets",
    ] {
        let response = request(&server, "OPTIONS", target, &format!("{}{ask}", origin(APP)), "");
        assert_eq!(response.status, 204, "{target}");
        assert_cors(&response, APP);
        let methods = response.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
        let headers = response.header("access-control-allow-headers").unwrap();
        for needed in ["Authorization", "Content-Type", "Last-Event-ID"] {
            assert!(headers.contains(needed), "{headers}");
        }
        assert_eq!(response.header("access-control-max-age"), Some("600"));

        let response = request(
            &server,
            "OPTIONS",
            target,
            &format!("{}{ask}", origin("https://evil.example")),
            "",
        );
        assert_eq!(response.status, 403, "{target}");
        assert_no_cors(&response);
        let response = request(&server, "OPTIONS", target, ask, "");
        assert_eq!(response.status, 403, "{target}");
    }
    // OPTIONS that is not a preflight is not answered as one.
    let response = request(&server, "OPTIONS", "/topics/news", &origin(APP), "");
    assert_eq!(response.status, 405);
    // Nor are paths that are not the hub's.
    let response = request(
        &server,
        "OPTIONS",
        "/elsewhere",
        &format!("{}{ask}", origin(APP)),
        "",
    );
    assert_eq!(response.status, 404);
}

#[test]
fn trusted_origins_pass_the_origin_check_and_get_cors() {
    let server = hub(&["https://site.example.com"]);
    let response = request(&server, "GET", "/topics/news/poll?timeout=0", &origin(APP), "");
    assert_eq!(response.status, 200);
    assert_cors(&response, APP);
    // Every trusted origin gets in and can read what it gets: one list,
    // where an origin let in used to get no CORS header.
    let response = request(
        &server,
        "GET",
        "/topics/news/poll?timeout=0",
        &origin("https://site.example.com"),
        "",
    );
    assert_eq!(response.status, 200);
    assert_cors(&response, "https://site.example.com");
    let events = SseClient::connect(
        server.addr,
        "/topics/news/events",
        &origin("https://site.example.com"),
    );
    assert_eq!(events.response.status, 200);
    assert_eq!(
        events.response.header("access-control-allow-origin"),
        Some("https://site.example.com")
    );
    let response = request(
        &server,
        "GET",
        "/topics/news/poll?timeout=0",
        &origin("https://evil.example"),
        "",
    );
    assert_eq!(response.status, 403);
    assert_no_cors(&response);
    let events = SseClient::connect(server.addr, "/topics/news/events", &origin(APP));
    assert_eq!(events.response.status, 200);
}

#[test]
fn event_streams_carry_cors_headers_for_an_allowed_origin_only() {
    let server = hub(&[]);
    let events = SseClient::connect(server.addr, "/topics/news/events", &origin(APP));
    assert_eq!(events.response.status, 200);
    assert_eq!(events.response.header("content-type"), Some("text/event-stream"));
    assert_cors(&events.response, APP);

    let other = SseClient::connect(
        server.addr,
        "/topics/news/events",
        &origin("https://elsewhere.example"),
    );
    assert_no_cors(&other.response);
    assert_eq!(other.response.header("vary"), Some("Origin"));

    // HEAD gets the same head, and no stream.
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "HEAD /topics/news/events HTTP/1.1\r\nHost: t\r\n{}\r\n",
            origin(APP)
        )
        .as_bytes(),
    );
    let head = conn.head_response();
    assert_eq!(head.status, 200);
    assert_cors(&head, APP);
}
