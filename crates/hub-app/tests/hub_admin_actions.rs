//! The admin page's actions through real sockets: `/admin/api/...` (the
//! server API's endpoints, as the publish token) and `/admin/watch`, on
//! the admin listener only, behind the admin session, refused from
//! another site and, for anything but a read, without the session's CSRF
//! token; refused to everyone when no metrics token is set; and nothing
//! on the admin listener answered under a `Host` it does not serve (a
//! DNS-rebinding page's).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

mod support;

use tether_testkit as common;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{Response, SseClient, WsClient, config};
use serde_json::{Value, json};
use tether_auth::{Keys, Private};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{Cluster, Handle, Handshake};

use support::http::{bearer, json, request_to};
use support::jwt::{sign, unix_now};

const SECRET: &[u8] = b"an admin actions test secret, 32";
const PUBLISH_TOKEN: &str = "admin-actions-publish";
const METRICS_TOKEN: &str = "admin-actions-metrics";
/// A name the admin listener is told it serves (`--admin-host`).
const ADMIN_HOST: &str = "admin.example";

/// A hub with an admin listener (`room.*` private), stopped when dropped.
struct Running {
    main: SocketAddr,
    admin: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn hub(loops: usize, metrics_token: Option<&str>) -> Running {
        let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
        auth.private = Private::new(["room.*"]).unwrap();
        auth.query = true;
        let mut settings = HubSettings::default();
        settings.publish_token = Some(PUBLISH_TOKEN.to_owned());
        settings.metrics_token = metrics_token.map(str::to_owned);
        // `test`: the host `SseClient` names.
        settings.admin_hosts = vec!["test".to_owned(), ADMIN_HOST.to_owned()];
        settings.auth = Some(auth);
        let shared = HubShared::new(settings, loops);
        let mut config = config();
        config.admin_addr = Some("127.0.0.1:0".parse().unwrap());
        let cluster = Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i)).expect("bind");
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
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The admin's pages are served from its own address, which a browser
/// names as their `Host` (the origin its checks compare with).
fn request(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Response {
    request_to(addr, &addr.to_string(), method, target, headers, body)
}

/// A token for `sub` that may subscribe to `topics`.
fn jwt(sub: &str, jti: &str, topics: &[&str]) -> String {
    sign(
        SECRET,
        &json!({ "sub": sub, "jti": jti, "iat": unix_now() - 5, "exp": unix_now() + 600, "tether": { "sub": topics } }),
    )
}

/// A signed-in browser: its cookie, its page's CSRF token, and the
/// headers its page's requests carry.
struct Browser {
    admin: SocketAddr,
    cookie: String,
    csrf: String,
}

impl Browser {
    fn sign_in(admin: SocketAddr) -> Browser {
        let signed_in = request(
            admin,
            "POST",
            "/admin/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &format!("token={METRICS_TOKEN}"),
        );
        assert_eq!(signed_in.status, 303);
        let set_cookie = signed_in.header("set-cookie").expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
            assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
        }
        assert!(!set_cookie.contains("Secure"), "not over TLS: {set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = request(admin, "GET", "/admin", &format!("Cookie: {cookie}\r\n"), "");
        assert_eq!(page.status, 200);
        let csrf = csrf_of(&page);
        Browser { admin, cookie, csrf }
    }

    /// The headers of the page's own requests, with `csrf` as the token.
    fn headers(&self, csrf: Option<&str>) -> String {
        let mut headers = format!(
            "Cookie: {}\r\nOrigin: http://{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/json\r\n",
            self.cookie, self.admin
        );
        if let Some(csrf) = csrf {
            headers.push_str(&format!("X-CSRF-Token: {csrf}\r\n"));
        }
        headers
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = request(
            self.admin,
            "POST",
            &format!("/admin/api/{path}"),
            &self.headers(Some(&self.csrf)),
            &body.to_string(),
        );
        (response.status, json(&response))
    }

    fn get(&self, target: &str) -> (u16, Value) {
        let response = request(
            self.admin,
            "GET",
            &format!("/admin/api/{target}"),
            &self.headers(None),
            "",
        );
        (response.status, json(&response))
    }
}

/// The CSRF token a page carries in its `<meta name="csrf-token">`.
fn csrf_of(page: &Response) -> String {
    let html = String::from_utf8_lossy(&page.body);
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = html.find(marker).expect("a CSRF meta") + marker.len();
    let token = &html[start..start + html[start..].find('"').unwrap()];
    token.to_owned()
}

/// Polls `what` until it holds (for at most 10 s).
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not happen in 10 s");
}

#[test]
fn an_action_needs_the_session_the_same_origin_and_the_csrf_token() {
    let server = Running::hub(1, Some(METRICS_TOKEN));
    let publish = json!({ "items": [{ "topic": "news", "data": "from the page" }] }).to_string();
    let mut reader = SseClient::connect(server.main, "/topics/news/events", "");
    assert_eq!(reader.response.status, 200);

    // No session: 401, for an action, a read and a watch alike.
    let origin = format!("Origin: http://{}\r\n", server.admin);
    let none = request(server.admin, "POST", "/admin/api/publish", &origin, &publish);
    assert_eq!(none.status, 401);
    assert_eq!(json(&none)["error"]["code"], "unauthorized");
    assert_eq!(
        request(server.admin, "GET", "/admin/api/topics", "", "").status,
        401
    );
    assert_eq!(
        request(server.admin, "GET", "/admin/watch?topic=news", "", "").status,
        401
    );
    let stale = "Cookie: tether_admin=0123456789abcdef0123456789abcdef\r\n";
    assert_eq!(
        request(server.admin, "POST", "/admin/api/publish", stale, &publish).status,
        401
    );
    // Not on the main listener at all.
    assert_eq!(
        request(server.main, "POST", "/admin/api/publish", "", &publish).status,
        404
    );

    let browser = Browser::sign_in(server.admin);
    assert_eq!(browser.csrf.len(), 32, "{}", browser.csrf);
    let send = |headers: String| request(server.admin, "POST", "/admin/api/publish", &headers, &publish);
    // The cookie alone, as another site's form would send it (were it
    // sent): 403.
    let without = send(browser.headers(None));
    assert_eq!(without.status, 403);
    assert_eq!(json(&without)["error"]["code"], "csrf");
    // Another token: 403.
    let wrong = send(browser.headers(Some("00112233445566778899aabbccddeeff")));
    assert_eq!(wrong.status, 403);
    assert_eq!(json(&wrong)["error"]["code"], "csrf");
    // Another session's token: 403.
    let other = Browser::sign_in(server.admin);
    assert_ne!(other.csrf, browser.csrf);
    assert_eq!(send(browser.headers(Some(&other.csrf))).status, 403);
    // The right token from another site's page: 403.
    let right = browser.headers(Some(&browser.csrf));
    let cross = right.replace(&format!("http://{}", server.admin), "https://elsewhere.example");
    let refused = send(cross);
    assert_eq!(refused.status, 403);
    assert_eq!(json(&refused)["error"]["code"], "forbidden");
    let cross_site = right.replace("Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: cross-site");
    assert_eq!(send(cross_site).status, 403);
    // Nothing was published so far; the right token from the page: 200,
    // and the subscriber gets it.
    let done = send(right);
    assert_eq!(done.status, 200, "{:?}", String::from_utf8_lossy(&done.body));
    let id = json(&done)["results"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let event = reader.next_event();
    assert_eq!(
        (event.data(), event.last_event_id()),
        ("from the page", id.as_str())
    );

    // A read needs no CSRF token, but the same origin.
    let (status, topics) = browser.get("topics");
    assert_eq!(status, 200);
    assert_eq!(topics["topics"][0]["topic"], "news");
    // The refused ones published nothing.
    assert_eq!(topics["topics"][0]["backlog_events"], 1);
    let from_elsewhere = browser.headers(None).replace("same-origin", "cross-site");
    assert_eq!(
        request(server.admin, "GET", "/admin/api/topics", &from_elsewhere, "").status,
        403
    );

    // The metrics token as a bearer token needs neither (no browser sends it
    // on its own); another token is 401.
    let bearer = format!("Authorization: Bearer {METRICS_TOKEN}\r\n");
    let broadcast = json!({ "topics": ["a", "b"], "data": "both" }).to_string();
    let by_bearer = request(server.admin, "POST", "/admin/api/broadcast", &bearer, &broadcast);
    assert_eq!(
        by_bearer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&by_bearer.body)
    );
    assert_eq!(json(&by_bearer)["results"].as_array().map(Vec::len), Some(2));
    let wrong_bearer = "Authorization: Bearer not-it\r\n";
    assert_eq!(
        request(
            server.admin,
            "POST",
            "/admin/api/broadcast",
            wrong_bearer,
            &broadcast
        )
        .status,
        401
    );
    // The publish token is not the admin's.
    let publish_bearer = format!("Authorization: Bearer {PUBLISH_TOKEN}\r\n");
    assert_eq!(
        request(
            server.admin,
            "POST",
            "/admin/api/broadcast",
            &publish_bearer,
            &broadcast
        )
        .status,
        401
    );

    // Signed out, the token is worth nothing.
    let signed_out = request(server.admin, "POST", "/admin/logout", &browser.headers(None), "");
    assert_eq!(signed_out.status, 303);
    assert_eq!(send(browser.headers(Some(&browser.csrf))).status, 401);
}

#[test]
fn without_a_metrics_token_nobody_acts() {
    let server = Running::hub(1, None);
    // The page: the counters, read-only, with no CSRF token to act with.
    let page = request(server.admin, "GET", "/admin", "", "");
    assert_eq!(page.status, 200);
    assert_eq!(csrf_of(&page), "");
    assert!(String::from_utf8_lossy(&page.body).contains("data-auth=\"off\""));
    let mut counters = SseClient::connect(server.admin, "/admin/events", "");
    assert_eq!(counters.response.status, 200);
    assert_eq!(counters.next_event().event_type(), "snapshot");
    let mut reader = SseClient::connect(server.main, "/topics/news/events", "");
    assert_eq!(reader.response.status, 200);

    // Every action, whatever comes with it: 403, saying what to set.
    let page_origin = format!(
        "Origin: http://{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/json\r\n",
        server.admin
    );
    let presented = [
        String::new(),
        page_origin.clone(),
        format!("{page_origin}X-CSRF-Token: 00112233445566778899aabbccddeeff\r\n"),
        bearer("anything"),
        bearer(PUBLISH_TOKEN),
        "Cookie: tether_admin=0123456789abcdef0123456789abcdef\r\n".to_owned(),
    ];
    let publish = json!({ "items": [{ "topic": "news", "data": "nobody's" }] }).to_string();
    let actions = [
        ("POST", "/admin/api/publish", publish.as_str()),
        ("POST", "/admin/api/revoke", r#"{"jti":"token-1"}"#),
        ("POST", "/admin/api/disconnect", r#"{"user":"ann"}"#),
        ("GET", "/admin/api/topics", ""),
        ("GET", "/admin/api/history?topic=news", ""),
        ("GET", "/admin/watch?topic=news", ""),
    ];
    for headers in &presented {
        for (method, target, body) in actions {
            let refused = request(server.admin, method, target, headers, body);
            assert_eq!(refused.status, 403, "{method} {target} with {headers:?}");
            let answer = json(&refused);
            assert_eq!(answer["error"]["code"], "no_admin_credential", "{answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("--metrics-token") && message.contains("TETHER_METRICS_TOKEN"),
                "{message}"
            );
        }
    }
    // Signing in opens nothing: there is nothing to sign in to.
    let signed_in = request(
        server.admin,
        "POST",
        "/admin/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "token=",
    );
    assert_eq!(signed_in.status, 303);
    assert!(signed_in.header("set-cookie").is_none());

    // Nothing was published or revoked: the publish token's event is the
    // subscriber's first, and the revocation list is empty.
    let by_token = request(
        server.main,
        "POST",
        "/topics/news",
        &bearer(PUBLISH_TOKEN),
        "by the token",
    );
    assert_eq!(by_token.status, 200);
    assert_eq!(reader.next_event().data(), "by the token");
    let revoked = request(server.main, "GET", "/api/revoked", &bearer(PUBLISH_TOKEN), "");
    assert_eq!(revoked.status, 200);
    assert!(!json(&revoked).to_string().contains("token-1"));
}

#[test]
fn a_host_the_admin_listener_does_not_serve_gets_nothing_with_or_without_a_token() {
    for token in [None, Some(METRICS_TOKEN)] {
        let server = Running::hub(1, token);
        let port = server.admin.port();
        let mut reader = SseClient::connect(server.main, "/topics/news/events", "");
        assert_eq!(reader.response.status, 200);
        let with_token = bearer(METRICS_TOKEN);
        // A page on rebind.example, whose name now points at the
        // listener: its requests name rebind.example, and get 421 before
        // anything looks at their path or credential.
        let rebound = format!("rebind.example:{port}");
        let from_page = format!("{with_token}Origin: http://{rebound}\r\nContent-Type: application/json\r\n");
        let publish = json!({ "items": [{ "topic": "news", "data": "rebound" }] }).to_string();
        let form = "Content-Type: application/x-www-form-urlencoded\r\n";
        let login = format!("token={METRICS_TOKEN}");
        for (method, target, headers, body) in [
            ("GET", "/admin", "", ""),
            ("GET", "/admin", with_token.as_str(), ""),
            ("GET", "/admin/events", with_token.as_str(), ""),
            ("GET", "/metrics", with_token.as_str(), ""),
            ("GET", "/nothing-here", "", ""),
            ("POST", "/admin/login", form, login.as_str()),
            ("POST", "/admin/api/publish", from_page.as_str(), publish.as_str()),
            ("GET", "/admin/api/topics", from_page.as_str(), ""),
            ("GET", "/admin/watch?topic=news", with_token.as_str(), ""),
        ] {
            for host in [
                rebound.as_str(),
                "rebind.example",
                "127.0.0.1.rebind.example",
                "localhost.evil",
            ] {
                let refused = request_to(server.admin, host, method, target, headers, body);
                assert_eq!(refused.status, 421, "{method} {target} as {host} ({token:?})");
                assert!(refused.header("set-cookie").is_none());
            }
        }

        // Over HTTP/2 (prior knowledge), the name is the `:authority`.
        let mut h2 = H2Client::connect(server.admin);
        let authorization = format!("Bearer {METRICS_TOKEN}");
        let own_address = server.admin.to_string();
        let mut metrics_as = |authority: &str| {
            let stream = h2.open(
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/metrics"),
                    (":authority", authority),
                    ("authorization", &authorization),
                ],
                true,
            );
            h2.head(stream).status()
        };
        assert_eq!(metrics_as(&rebound), Some(421), "over HTTP/2 ({token:?})");
        assert_eq!(metrics_as(&own_address), Some(200), "over HTTP/2 ({token:?})");

        // The listener's own names: its address, localhost, the IPv6
        // loopback, and the name it was given (any port).
        for host in [
            server.admin.to_string(),
            format!("localhost:{port}"),
            format!("LocalHost:{port}"),
            format!("[::1]:{port}"),
            format!("{ADMIN_HOST}:{port}"),
            format!("{ADMIN_HOST}:443"),
        ] {
            let metrics = request_to(server.admin, &host, "GET", "/metrics", &with_token, "");
            assert_eq!(metrics.status, 200, "/metrics as {host}");
            let page = request_to(server.admin, &host, "GET", "/admin", &with_token, "");
            assert_eq!(page.status, 200, "/admin as {host}");
        }
        // Under its own name, the action is what the token makes it.
        let own = format!("{ADMIN_HOST}:{port}");
        let acted = request_to(
            server.admin,
            &own,
            "POST",
            "/admin/api/publish",
            &with_token,
            &publish,
        );
        match token {
            Some(_) => {
                assert_eq!(acted.status, 200, "{:?}", String::from_utf8_lossy(&acted.body));
                assert_eq!(reader.next_event().data(), "rebound");
            }
            None => assert_eq!(acted.status, 403),
        }
        // Nothing the rebound page sent was published.
        let (status, history) = {
            let answer = request(
                server.main,
                "GET",
                "/api/history?topic=news",
                &bearer(PUBLISH_TOKEN),
                "",
            );
            (answer.status, json(&answer))
        };
        assert_eq!(status, 200);
        let published = history["events"].as_array().map_or(0, Vec::len);
        assert_eq!(published, usize::from(token.is_some()), "{history}");
    }
}

#[test]
fn find_a_user_disconnect_and_revoke() {
    let server = Running::hub(2, Some(METRICS_TOKEN));
    let browser = Browser::sign_in(server.admin);
    let before = unix_now();
    let ann = jwt("ann", "ann-1", &["room.*", "news"]);
    let mut ws = WsClient::connect(server.main, &format!("/topics/room.1/ws?token={ann}"));
    let mut sse = SseClient::connect(
        server.main,
        "/topics/news/events",
        &format!("Authorization: Bearer {ann}\r\n"),
    );
    assert_eq!(sse.response.status, 200);
    let bob = jwt("bob", "bob-1", &["news"]);
    let mut bobs = SseClient::connect(
        server.main,
        "/topics/news/events",
        &format!("Authorization: Bearer {bob}\r\n"),
    );
    assert_eq!(bobs.response.status, 200);

    // Find: ann's two connections, whichever loop holds them.
    let mut found = Value::Null;
    until("ann's connections listed", || {
        let (status, answer) = browser.get("connections?user=ann");
        assert_eq!(status, 200);
        found = answer;
        found["count"] == 2
    });
    assert_eq!(found["user"], "ann");
    assert_eq!(found["truncated"], false);
    let mut listed: Vec<(String, String)> = found["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let since = c["since"].as_u64().expect("since");
            assert!(since >= before && since <= unix_now(), "{c}");
            assert!(c["loop"].as_u64().is_some_and(|l| l < 2), "{c}");
            (
                c["transport"].as_str().unwrap().to_owned(),
                c["topic"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("sse".to_owned(), "news".to_owned()),
            ("websocket".to_owned(), "room.1".to_owned())
        ]
    );
    let (status, nobody) = browser.get("connections?user=carol");
    assert_eq!((status, nobody["count"].as_u64()), (200, Some(0)));
    let (status, bad) = browser.get("connections");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    // Disconnect one: ann's connection to room.1 (an unsubscribe), then
    // the rest of hers; bob's goes on.
    let (status, closed) = browser.post("unsubscribe", &json!({ "user": "ann", "topic": "room.1" }));
    assert_eq!((status, closed["closed"].as_u64()), (200, Some(1)));
    ws.recv_close();
    let (status, closed) = browser.post("disconnect", &json!({ "user": "ann" }));
    assert_eq!((status, closed["closed"].as_u64()), (200, Some(1)));
    let ended = sse.read_to_end();
    assert!(ended.iter().any(|e| e.event_type() == "disconnect"), "{ended:?}");
    let (_, left) = browser.get("connections?user=ann");
    assert_eq!(left["count"], 0);

    // Revoke bob (the subject): his stream ends, and his token is refused.
    let (status, revoked) = browser.post("revoke", &json!({ "subject": "bob" }));
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(1)));
    bobs.read_to_end();
    assert!(bobs.is_ended());
    let again = SseClient::connect(
        server.main,
        "/topics/news/events",
        &format!("Authorization: Bearer {bob}\r\n"),
    );
    assert_eq!(again.response.status, 401);
    // Revoke a token by its id.
    let (status, revoked) = browser.post("revoke", &json!({ "jti": "ann-1" }));
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(1)));
    let (status, list) = browser.get("revoked");
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(text.contains("bob") && text.contains("ann-1"), "{text}");
    let refused = SseClient::connect(
        server.main,
        "/topics/news/events",
        &format!("Authorization: Bearer {ann}\r\n"),
    );
    assert_eq!(refused.response.status, 401);
}

#[test]
fn browse_and_watch_a_private_topic() {
    let server = Running::hub(2, Some(METRICS_TOKEN));
    let browser = Browser::sign_in(server.admin);
    let cookie = format!("Cookie: {}\r\n", browser.cookie);
    // A topic no token here may read; the admin watches it anyway.
    let mut watch = SseClient::connect(server.admin, "/admin/watch?topic=room.secret", &cookie);
    assert_eq!(watch.response.status, 200);
    assert!(
        watch
            .response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"))
    );
    let ann = jwt("ann", "ann-2", &["room.*"]);
    let mut member = WsClient::connect(server.main, &format!("/topics/room.secret/ws?token={ann}"));
    for n in 0..3 {
        let (status, answer) = browser.post(
            "publish",
            &json!({ "items": [{ "topic": "room.secret", "data": format!("secret {n}") }] }),
        );
        assert_eq!(status, 200, "{answer}");
    }
    for n in 0..3 {
        assert_eq!(watch.next_event().data(), format!("secret {n}"));
        let text = member.recv_text();
        assert!(text.contains(&format!("secret {n}")), "{text}");
    }

    // Browse: the topic, its last events and who is present; the watch
    // is nobody's presence.
    let (status, topics) = browser.get("topics");
    assert_eq!(status, 200);
    assert!(
        topics["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["topic"] == "room.secret")
    );
    let (status, history) = browser.get("history?topic=room.secret");
    assert_eq!(status, 200);
    let data: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(data, ["secret 0", "secret 1", "secret 2"]);
    let mut present = Value::Null;
    until("ann present", || {
        present = browser.get("presence?topic=room.secret").1;
        present["count"] == 1
    });
    assert_eq!(present["members"], json!(["ann"]));

    // A watch from another site's page is refused; one of a bad topic is
    // a 400.
    let cross = format!("{cookie}Sec-Fetch-Site: cross-site\r\n");
    assert_eq!(
        request(server.admin, "GET", "/admin/watch?topic=room.secret", &cross, "").status,
        403
    );
    assert_eq!(
        request(server.admin, "GET", "/admin/watch?topic=", &cookie, "").status,
        400
    );
    assert_eq!(
        request(server.admin, "GET", "/admin/watch", &cookie, "").status,
        400
    );

    // Signing out ends the watch (within the next tick).
    let signed_out = request(server.admin, "POST", "/admin/logout", &browser.headers(None), "");
    assert_eq!(signed_out.status, 303);
    watch.read_to_end();
    assert!(watch.is_ended());
}
