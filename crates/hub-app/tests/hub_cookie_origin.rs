//! A token that came in a cookie counts only from the server's own origin
//! or a trusted one: another site's page, whose requests the browser
//! sends with the user's cookie and its own `Origin`, is refused (403)
//! before the upgrade, the stream or the body, on every route family
//! (WebSocket, the multiplexed `/ws` among them, SSE, long poll,
//! presence, publish, tickets), over HTTP/1.1,
//! HTTP/2 (h2c; an RFC 8441 CONNECT carries `origin` too) and TLS, and
//! counted in `tether_auth_denied_total{reason="cross_origin_cookie"}`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::h2::H2Client;
use common::{HttpConn, Response, SseClient, TestServer, config, tcp};
use serde_json::json;
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubApp, HubAuth, HubSettings};
use tether_server::tls;

use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
const APP: &str = "http://app.test";
const EVIL: &str = "http://evil.test";
/// What `HttpConn` and `SseClient` send as `Host`: the server's own
/// origin over plain HTTP is therefore this.
const OWN: &str = "http://test";

fn alice() -> String {
    let now = unix_now();
    sign(
        SECRET,
        &json!({
            "sub": "alice",
            "exp": now + 600,
            "tether": { "sub": ["user.{sub}", "room.*"], "pub": ["room.*", "user.*"] },
        }),
    )
}

fn settings(trusted: &[&str]) -> HubSettings {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.validation = Validation::new().leeway(0);
    auth.private = Private::new(["user.*"]).unwrap();
    let mut settings = HubSettings::default();
    settings.auth = Some(auth);
    settings.trusted_origins = trusted.iter().map(|o| (*o).to_owned()).collect();
    settings
}

fn hub(trusted: &[&str]) -> TestServer {
    TestServer::start(config(), HubApp::new(settings(trusted)))
}

fn cookie() -> String {
    format!("Cookie: theme=dark; tether_token={}\r\n", alice())
}

/// The status of each route family for a request with these header lines,
/// by name.
fn statuses(server: &TestServer, headers: &str) -> Vec<(&'static str, u16)> {
    let sse = SseClient::connect(server.addr, "/topics/user.alice/events", headers)
        .response
        .status;
    let poll = request(server, "GET", "/topics/user.alice/poll?timeout=0", headers, "").status;
    let presence = request(server, "GET", "/topics/user.alice/presence", headers, "").status;
    // A form post, as another site's page can make without a preflight.
    let form = format!("{headers}Content-Type: text/plain\r\n");
    let publish = request(server, "POST", "/topics/room.1", &form, "hello").status;
    let ticket = request(server, "POST", "/tickets", headers, "").status;
    let ws = upgrade(server, "/topics/user.alice/ws", headers);
    vec![
        ("sse", sse),
        ("poll", poll),
        ("presence", presence),
        ("publish", publish),
        ("ticket", ticket),
        ("ws", ws),
    ]
}

fn request(server: &TestServer, method: &str, target: &str, headers: &str, body: &str) -> Response {
    support::http::request(server.addr, method, target, headers, body)
}

/// The status of a WebSocket upgrade with these header lines.
fn upgrade(server: &TestServer, target: &str, headers: &str) -> u16 {
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        )
        .as_bytes(),
    );
    conn.head_response().status
}

fn all(expected: u16) -> Vec<(&'static str, u16)> {
    let ws = if expected == 200 { 101 } else { expected };
    vec![
        ("sse", expected),
        ("poll", expected),
        ("presence", expected),
        ("publish", expected),
        ("ticket", expected),
        ("ws", ws),
    ]
}

/// `tether_auth_denied_total{reason="cross_origin_cookie"}`.
fn cross_origin_denials(server: &TestServer) -> u64 {
    let metrics = request(server, "GET", "/metrics", "", "");
    let text = String::from_utf8(metrics.body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("tether_auth_denied_total{reason=\"cross_origin_cookie\"} "))
        .expect("the series is there")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_cookie_from_another_origin_is_refused_on_every_route() {
    let server = hub(&[APP]);
    let cookie = cookie();
    assert_eq!(cross_origin_denials(&server), 0);
    // Another site's page: the browser adds the cookie and its Origin.
    assert_eq!(
        statuses(&server, &format!("{cookie}Origin: {EVIL}\r\n")),
        all(403)
    );
    assert_eq!(cross_origin_denials(&server), 6);
    // The app's trusted origin, the server's own, and no Origin at all
    // (not a browser's cross-origin request): the cookie counts.
    assert_eq!(statuses(&server, &format!("{cookie}Origin: {APP}\r\n")), all(200));
    assert_eq!(statuses(&server, &format!("{cookie}Origin: {OWN}\r\n")), all(200));
    assert_eq!(statuses(&server, &cookie), all(200));
    assert_eq!(cross_origin_denials(&server), 6);
    server.shutdown();
}

#[test]
fn with_no_trusted_origin_only_the_servers_own_may_use_the_cookie() {
    // No trusted origin: any origin may come in without credentials, but
    // the cookie counts only from the server's own.
    let server = hub(&[]);
    let cookie = cookie();
    assert_eq!(
        statuses(&server, &format!("{cookie}Origin: {EVIL}\r\n")),
        all(403)
    );
    assert_eq!(statuses(&server, &format!("{cookie}Origin: {OWN}\r\n")), all(200));
    // A page of the same site on another port, or another scheme, is
    // another origin.
    for other in ["http://test:8080", "https://test", "null"] {
        let refused = statuses(&server, &format!("{cookie}Origin: {other}\r\n"));
        assert_eq!(refused, all(403), "{other}");
    }
    // The token in Authorization is not a cookie: another origin may send
    // it (a script that holds it), and an open topic needs nothing.
    let bearer = format!("Authorization: Bearer {}\r\nOrigin: {EVIL}\r\n", alice());
    assert_eq!(statuses(&server, &bearer), all(200));
    let open = SseClient::connect(server.addr, "/topics/news/events", &format!("Origin: {EVIL}\r\n"));
    assert_eq!(open.response.status, 200);
    server.shutdown();
}

#[test]
fn sec_fetch_site_is_a_second_opinion() {
    let server = hub(&[APP]);
    let cookie = cookie();
    // Without Origin, a browser's word that another site made the request
    // refuses the cookie; its word that the request is this origin's, or
    // the user's own (typed, bookmarked), keeps it.
    for site in ["cross-site", "same-site"] {
        let headers = format!("{cookie}Sec-Fetch-Site: {site}\r\n");
        assert_eq!(statuses(&server, &headers), all(403), "{site}");
    }
    for site in ["same-origin", "none"] {
        let headers = format!("{cookie}Sec-Fetch-Site: {site}\r\n");
        assert_eq!(statuses(&server, &headers), all(200), "{site}");
    }
    // It never lets in what Origin refuses...
    let headers = format!("{cookie}Origin: {EVIL}\r\nSec-Fetch-Site: same-origin\r\n");
    assert_eq!(statuses(&server, &headers), all(403));
    // ... and a request claiming this origin that the browser says another
    // site made is refused.
    let headers = format!("{cookie}Origin: {OWN}\r\nSec-Fetch-Site: cross-site\r\n");
    assert_eq!(statuses(&server, &headers), all(403));
    // A trusted origin is another site, and says so: it keeps the cookie.
    let headers = format!("{cookie}Origin: {APP}\r\nSec-Fetch-Site: cross-site\r\n");
    assert_eq!(statuses(&server, &headers), all(200));
    server.shutdown();
}

#[test]
fn an_evil_page_gets_no_private_event_and_publishes_nothing() {
    // The whole attack, told as the browser would: alice's private events
    // reach her own page and never the other site's.
    let server = hub(&[APP]);
    let cookie = cookie();
    let mut own = SseClient::connect(
        server.addr,
        "/topics/user.alice/events",
        &format!("{cookie}Origin: {APP}\r\n"),
    );
    assert_eq!(own.response.status, 200);
    let evil = SseClient::connect(
        server.addr,
        "/topics/user.alice/events",
        &format!("{cookie}Origin: {EVIL}\r\n"),
    );
    assert_eq!(evil.response.status, 403);
    // The forged publish is refused; the app's own goes through.
    let form = format!("{cookie}Origin: {EVIL}\r\nContent-Type: text/plain\r\n");
    assert_eq!(
        request(&server, "POST", "/topics/user.alice", &form, "forged").status,
        403
    );
    let form = format!("{cookie}Origin: {APP}\r\nContent-Type: text/plain\r\n");
    assert_eq!(
        request(&server, "POST", "/topics/user.alice", &form, "real").status,
        200
    );
    let event = own.next_event();
    assert_eq!(event.data(), "real");
    server.shutdown();
}

#[test]
fn over_http2_the_rule_is_the_same() {
    let server = hub(&[APP]);
    let mut client = H2Client::connect(server.addr);
    let token = format!("tether_token={}", alice());
    // `:authority` is `localhost`: the server's own origin on h2c is
    // http://localhost.
    let cases = [(EVIL, 403), ("http://localhost", 200), (APP, 200)];
    for (origin, expected) in cases {
        let fields = [("cookie", token.as_str()), ("origin", origin)];
        let sse = client.get("/topics/user.alice/events", &fields);
        assert_eq!(client.head(sse).status(), Some(expected), "sse {origin}");
        let poll = client.get("/topics/user.alice/poll?timeout=0", &fields);
        assert_eq!(client.finish(poll).status(), Some(expected), "poll {origin}");
        let publish = client.request_with_body("POST", "/topics/room.1", &fields, b"x");
        assert_eq!(
            client.finish(publish).status(),
            Some(expected),
            "publish {origin}"
        );
        let ticket = client.request_with_body("POST", "/tickets", &fields, b"");
        assert_eq!(client.finish(ticket).status(), Some(expected), "ticket {origin}");
        // An RFC 8441 WebSocket: the CONNECT carries `origin` as an
        // upgrade's GET does.
        let ws = client.websocket("/topics/user.alice/ws", &fields);
        assert_eq!(client.head(ws).status(), Some(expected), "ws {origin}");
    }
    drop(client);
    assert_eq!(cross_origin_denials(&server), 5);
    server.shutdown();
}

#[test]
fn the_multiplexed_socket_takes_the_cookie_by_the_same_rule_over_http1_and_http2() {
    let server = hub(&[APP]);
    let cookie = cookie();
    // HTTP/1.1: another site's page is refused before the upgrade.
    assert_eq!(
        upgrade(&server, "/ws", &format!("{cookie}Origin: {EVIL}\r\n")),
        403
    );
    assert_eq!(cross_origin_denials(&server), 1);
    for origin in [APP, OWN] {
        assert_eq!(
            upgrade(&server, "/ws", &format!("{cookie}Origin: {origin}\r\n")),
            101
        );
    }
    // From the trusted page the cookie is alice's credential: her private
    // topic is hers.
    let headers = format!("{cookie}Origin: {APP}\r\n");
    let mut socket = common::WsClient::connect_with(server.addr, "/ws", &headers);
    socket.send_text(r#"{"type":"subscribe","topic":"user.alice"}"#);
    assert_eq!(
        socket.recv_text(),
        r#"{"control":"subscribed","topic":"user.alice"}"#
    );
    drop(socket);
    // HTTP/2: an RFC 8441 CONNECT to /ws, the same answers, counted the
    // same.
    let mut client = H2Client::connect(server.addr);
    let token = format!("tether_token={}", alice());
    for (origin, expected) in [(EVIL, 403), ("http://localhost", 200), (APP, 200)] {
        let fields = [("cookie", token.as_str()), ("origin", origin)];
        let ws = client.websocket("/ws", &fields);
        assert_eq!(client.head(ws).status(), Some(expected), "ws {origin}");
    }
    drop(client);
    assert_eq!(cross_origin_denials(&server), 2);
    server.shutdown();
}

#[test]
fn over_tls_the_own_origin_is_https() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut config = config();
    config.tls = Some(tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("TLS"));
    let server = TestServer::start(config, HubApp::new(settings(&[])));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("the root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let host = format!("localhost:{}", server.addr.port());
    let status = |origin: &str| {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let session = rustls::ClientConnection::new(client_config.clone(), name).expect("a session");
        let mut stream = rustls::StreamOwned::new(session, tcp(server.addr));
        write!(
            stream,
            "GET /topics/user.alice/poll?timeout=0 HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
             Cookie: tether_token={}\r\nConnection: close\r\n\r\n",
            alice()
        )
        .expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer
            .get(9..12)
            .and_then(|code| code.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("a status line: {answer:?}"))
    };
    assert_eq!(status(&format!("https://{host}")), 200);
    // The same host and port over http:// is another origin.
    assert_eq!(status(&format!("http://{host}")), 403);
    assert_eq!(status(EVIL), 403);
    server.shutdown();
}

#[test]
fn behind_a_proxy_that_ends_tls_x_forwarded_proto_names_the_scheme() {
    let server = hub(&[]);
    let cookie = cookie();
    let proxied = format!("{cookie}X-Forwarded-Proto: https\r\nOrigin: https://test\r\n");
    assert_eq!(statuses(&server, &proxied), all(200));
    let proxied = format!("{cookie}X-Forwarded-Proto: https\r\nOrigin: {OWN}\r\n");
    assert_eq!(statuses(&server, &proxied), all(403));
    server.shutdown();
}

#[test]
fn one_list_decides_who_comes_in_and_who_gets_cors() {
    let server = hub(&[APP]);
    // A trusted origin gets CORS on its event stream, long poll and
    // publish, so that the browser lets the page read what it may.
    let events = SseClient::connect(server.addr, "/topics/news/events", &format!("Origin: {APP}\r\n"));
    assert_eq!(events.response.status, 200);
    assert_eq!(events.response.header("access-control-allow-origin"), Some(APP));
    let poll = request(
        &server,
        "GET",
        "/topics/news/poll?timeout=0",
        &format!("Origin: {APP}\r\n"),
        "",
    );
    assert_eq!(poll.header("access-control-allow-origin"), Some(APP));
    let presence = request(
        &server,
        "GET",
        "/topics/news/presence",
        &format!("Origin: {APP}\r\n"),
        "",
    );
    assert_eq!(presence.status, 200);
    assert_eq!(presence.header("access-control-allow-origin"), Some(APP));
    // The server's own origin comes in, with no CORS header (none needed);
    // any other is refused, on every route family.
    let own = SseClient::connect(server.addr, "/topics/news/events", &format!("Origin: {OWN}\r\n"));
    assert_eq!(own.response.status, 200);
    assert_eq!(own.response.header("access-control-allow-origin"), None);
    let evil = format!("Origin: {EVIL}\r\n");
    assert_eq!(
        SseClient::connect(server.addr, "/topics/news/events", &evil)
            .response
            .status,
        403
    );
    assert_eq!(upgrade(&server, "/topics/news/ws", &evil), 403);
    assert_eq!(request(&server, "POST", "/tickets", &evil, "").status, 403);
    server.shutdown();
}
