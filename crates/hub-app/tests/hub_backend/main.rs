//! The hub asking the application's backend (through the `Backend` trait,
//! here an in-process one that answers from its own threads, as the HTTP
//! hooks do): who a request without credentials is (connect), who may
//! subscribe where a namespace says `subscribe=hook`, whether and as what
//! a publish goes out where one says `publish=hook`, and what happens
//! when the backend refuses, is slow, or is busy; over every transport,
//! through sockets, on two event loops.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the other test targets of the crate, one directory up.
#[path = "../support/mod.rs"]
mod support;

use tether_testkit as common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::h2::H2Client;
use common::{SseClient, TestServer, WsClient, config, request};
use tether_auth::Keys;
use tether_hub::{Allowed, Decision};
use tether_hub_app::{AnswerTo, Backend, Busy, Hook, HubAuth, HubSettings, HubShared, Namespace, Question};
use tether_server::{Handshake, Message};
use tether_ws::Event;

use support::jwt::{sign, unix_now};

const TOKEN: &str = "backend-test-publish-token";

type Decide = dyn Fn(&Question) -> Decision + Send + Sync;

/// A backend that answers each question on a thread of its own, after
/// `delay`, as `decide` says; `busy` refuses every question.
struct Fake {
    hooks: Vec<Hook>,
    decide: Arc<Decide>,
    delay: Duration,
    busy: bool,
    timeout: Duration,
    asked: Arc<Mutex<Vec<Question>>>,
    headers: Vec<String>,
    cookies: Vec<String>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Backend for Fake {
    fn answers(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }

    fn ask(&self, _loop_index: usize, question: Question, answer: AnswerTo) -> Result<(), Busy> {
        if self.busy {
            return Err(Busy);
        }
        self.asked.lock().unwrap().push(question.clone());
        let decide = self.decide.clone();
        // A publish of data starting "slow" is answered later than those
        // after it.
        let delay = match &question {
            Question::Publish { data, .. } if data.starts_with("slow") => {
                self.delay + Duration::from_millis(150)
            }
            _ => self.delay,
        };
        thread::spawn(move || {
            thread::sleep(delay);
            answer(decide(&question));
        });
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn forwarded_headers(&self) -> &[String] {
        &self.headers
    }

    fn forwarded_cookies(&self) -> &[String] {
        &self.cookies
    }
}

/// The connect decision this backend makes: the `session` cookie names
/// the user (`ann` may read `private.ann.*` and publish to `chat.*`), a
/// `deny` session is refused with 401, `garbage` gets no decision.
fn connect(question: &Question) -> Decision {
    let session = match question {
        Question::Connect { cookies, .. } => cookies
            .iter()
            .find(|(n, _)| n == "session")
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    match session.as_deref() {
        Some("deny") | None => Decision::Deny {
            status: 401,
            reason: "who are you".into(),
        },
        Some("garbage") => Decision::Unavailable { reason: "malformed" },
        // Good for three seconds; the refresh hook decides what then.
        Some(user @ ("brief" | "gone")) => Decision::Allow(
            Allowed::new()
                .identity(Some(user.to_owned()), vec![], vec![])
                .expires_at(Some(unix_now() + 3)),
        ),
        Some(user) => Decision::Allow(
            Allowed::new()
                .identity(
                    Some(user.to_owned()),
                    vec!["private.{sub}.*".into()],
                    vec!["chat.*".into(), "vote.*".into()],
                )
                .expires_at(Some(unix_now() + 3600)),
        ),
    }
}

/// The subscribe decision: `room.open` yes, anything else 403.
fn subscribe(question: &Question) -> Decision {
    match question {
        Question::Subscribe { topic, .. } if topic == "room.open" => Decision::Allow(Allowed::new()),
        _ => Decision::Deny {
            status: 403,
            reason: "closed room".into(),
        },
    }
}

fn both(question: &Question) -> Decision {
    match question {
        Question::Connect { .. } => connect(question),
        Question::Publish { .. } => publish_decision(question),
        // `brief` gets an hour more, anyone else no more.
        Question::Refresh { subject, .. } if subject == "brief" => {
            Decision::Allow(Allowed::new().expires_at(Some(unix_now() + 3600)))
        }
        Question::Refresh { .. } => Decision::Deny {
            status: 403,
            reason: "no more".into(),
        },
        _ => subscribe(question),
    }
}

/// The publish decision: data starting `deny` is refused (403 "not
/// that"), `garbage` gets no decision, `shout ...` goes out in capitals,
/// anything else as it is.
fn publish_decision(question: &Question) -> Decision {
    let Question::Publish { data, .. } = question else {
        return Decision::Unavailable { reason: "malformed" };
    };
    if data.starts_with("deny") {
        Decision::Deny {
            status: 403,
            reason: "not that".into(),
        }
    } else if data == "garbage" {
        Decision::Unavailable { reason: "malformed" }
    } else if data.starts_with("shout") {
        Decision::Allow(Allowed::new().data(Some(data.to_uppercase())))
    } else {
        Decision::Allow(Allowed::new())
    }
}

struct Hub {
    server: TestServer,
    asked: Arc<Mutex<Vec<Question>>>,
}

fn start(hooks: &[Hook], decide: fn(&Question) -> Decision, delay: Duration, busy: bool) -> Hub {
    start_with(hooks, decide, delay, busy, None, Duration::from_millis(300))
}

/// [`start`], with publishers who may also present a JWT `auth` checks,
/// and the backend's `timeout`.
fn start_with(
    hooks: &[Hook],
    decide: fn(&Question) -> Decision,
    delay: Duration,
    busy: bool,
    auth: Option<HubAuth>,
    timeout: Duration,
) -> Hub {
    start_tuned(hooks, decide, delay, busy, auth, timeout, |_| {})
}

/// The secret of the JWTs the server API tests sign.
const API_SECRET: &[u8] = b"a hub api test secret, 32 bytes!";

/// A hub whose backend `decide`s `hook` (20 ms, timeout 300 ms) and
/// whose callers may present a JWT signed with [`API_SECRET`], as the
/// server API tests use; and such a JWT for subject `pat` with `rights`.
fn start_for_api(hook: Hook, decide: fn(&Question) -> Decision) -> Hub {
    let auth = HubAuth::new(Keys::from_secret(API_SECRET).unwrap());
    start_with(
        &[hook],
        decide,
        Duration::from_millis(20),
        false,
        Some(auth),
        Duration::from_millis(300),
    )
}

/// A JWT for subject `pat` with these `tether` rights, signed with
/// [`API_SECRET`], valid for ten minutes.
fn api_jwt(rights: serde_json::Value) -> String {
    sign(
        API_SECRET,
        &serde_json::json!({ "sub": "pat", "exp": unix_now() + 600, "tether": rights }),
    )
}

/// [`start_with`], the settings changed by `tune` first.
fn start_tuned(
    hooks: &[Hook],
    decide: fn(&Question) -> Decision,
    delay: Duration,
    busy: bool,
    auth: Option<HubAuth>,
    timeout: Duration,
    tune: impl FnOnce(&mut HubSettings),
) -> Hub {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut settings = HubSettings::default();
    tune(&mut settings);
    settings.auth = auth;
    settings.publish_token = Some(TOKEN.to_owned());
    for spec in [
        "private.* subscribe=token",
        "room.* subscribe=hook",
        "chat.*",
        "vote.* publish=hook",
    ] {
        settings.namespaces.push(spec.parse::<Namespace>().unwrap());
    }
    settings.backend = Some(Arc::new(Fake {
        hooks: hooks.to_vec(),
        decide: Arc::new(decide),
        delay,
        busy,
        timeout,
        asked: asked.clone(),
        headers: vec!["x-app-user".into()],
        cookies: vec!["session".into()],
    }));
    let shared = HubShared::new(settings, 2);
    let server = TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i));
    Hub { server, asked }
}

fn publish(server: &TestServer, topic: &str, data: &str) {
    let answer = request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        data.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
}

fn get(server: &TestServer, target: &str, headers: &str) -> common::Response {
    request(server.addr, "GET", target, headers, b"")
}

#[test]
fn the_backend_says_who_a_request_without_credentials_is() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    // Its own private topics, as a token with these rights would allow.
    let mut events = SseClient::connect(
        server.addr,
        "/topics/private.ann.inbox/events",
        "Cookie: theme=dark; session=ann\r\nX-App-User: ann\r\n",
    );
    publish(server, "private.ann.inbox", "for ann");
    assert_eq!(events.next_event().data(), "for ann");
    // The question carried what the backend was configured to see, and
    // nothing else.
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        Question::Connect {
            transport: "sse",
            topic: Some("private.ann.inbox".into()),
            remote: Some("127.0.0.1".into()),
            headers: vec![("x-app-user".into(), "ann".into())],
            cookies: vec![("session".into(), "ann".into())],
        }
    );
    // Not another's.
    let refused = get(
        server,
        "/topics/private.bob.inbox/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!(refused.status, 403);
    // Refused by the backend: its status and reason, before any stream.
    let refused = get(server, "/topics/chat.lobby/events", "Cookie: session=deny\r\n");
    assert_eq!((refused.status, &refused.body[..]), (401, &b"who are you\n"[..]));
    // No decision: 503, come back later; never let in.
    let unavailable = get(server, "/topics/chat.lobby/events", "Cookie: session=garbage\r\n");
    assert_eq!(
        (unavailable.status, unavailable.header("retry-after")),
        (503, Some("1"))
    );
    hub.server.shutdown();
}

#[test]
fn a_socket_let_in_by_the_backend_publishes_with_its_rights() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut reader = SseClient::connect(server.addr, "/topics/chat.lobby/events", "Cookie: session=cy\r\n");
    let mut socket = WsClient::connect_with(server.addr, "/topics/chat.lobby/ws", "Cookie: session=cy\r\n");
    socket.send(&Message::text("hello from cy"));
    assert_eq!(reader.next_event().data(), "hello from cy");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("hello from cy"), "{m:?}"),
        other => panic!("{other:?}"),
    }
    // Over HTTP, its rights to publish.
    let posted = request(
        server.addr,
        "POST",
        "/topics/chat.lobby",
        "Cookie: session=cy\r\n",
        b"posted by cy",
    );
    assert_eq!(posted.status, 200, "{:?}", String::from_utf8_lossy(&posted.body));
    assert_eq!(reader.next_event().data(), "posted by cy");
    let outside = request(
        server.addr,
        "POST",
        "/topics/room.open",
        "Cookie: session=cy\r\n",
        b"x",
    );
    assert_eq!(outside.status, 403);
    hub.server.shutdown();
}

#[test]
fn long_polls_and_http2_streams_wait_for_the_backend_too() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(20), false);
    let server = &hub.server;
    publish(server, "private.di.feed", "first");
    let polled = get(
        server,
        "/topics/private.di.feed/poll?since=0-0",
        "Cookie: session=di\r\n",
    );
    assert_eq!(polled.status, 200);
    assert!(String::from_utf8_lossy(&polled.body).contains("first"));
    let mut h2 = H2Client::connect(server.addr);
    let events = h2.get(
        "/topics/private.di.feed/events",
        &[("cookie", "session=di"), ("last-event-id", "0-0")],
    );
    assert_eq!(h2.head(events).status(), Some(200));
    h2.data_contains(events, b"data: first\n");
    let refused = h2.get("/topics/private.di.feed/events", &[("cookie", "session=deny")]);
    assert_eq!(h2.finish(refused).status(), Some(401));
    hub.server.shutdown();
}

#[test]
fn a_namespace_may_leave_each_subscription_to_the_backend() {
    let hub = start(&[Hook::Subscribe], subscribe, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut open = SseClient::connect(server.addr, "/topics/room.open/events", "");
    publish(server, "room.open", "welcome");
    assert_eq!(open.next_event().data(), "welcome");
    let closed = get(server, "/topics/room.closed/events", "");
    assert_eq!((closed.status, &closed.body[..]), (403, &b"closed room\n"[..]));
    // Other namespaces are not asked; the publish token never is.
    let _chat = SseClient::connect(server.addr, "/topics/chat.lobby/events", "Connection: close\r\n");
    let token = SseClient::connect(
        server.addr,
        "/topics/room.closed/events",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    drop(token);
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    hub.server.shutdown();
}

#[test]
fn connect_then_subscribe_asks_both_in_turn() {
    let hub = start(
        &[Hook::Connect, Hook::Subscribe],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/topics/room.open/ws", "Cookie: session=eve\r\n");
    publish(server, "room.open", "to eve");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("to eve")),
        other => panic!("{other:?}"),
    }
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        matches!(
            &asked[0],
            Question::Connect {
                transport: "websocket",
                ..
            }
        ),
        "{asked:?}"
    );
    assert_eq!(
        asked[1],
        Question::Subscribe {
            subject: Some("eve".into()),
            topic: "room.open".into(),
            transport: "websocket",
        }
    );
    let refused = get(server, "/topics/room.shut/ws", "Cookie: session=eve\r\n");
    assert_eq!(refused.status, 403);
    hub.server.shutdown();
}

#[test]
fn a_slow_or_busy_backend_is_a_503_never_an_allow() {
    // Slower than its own timeout and the hold's margin.
    let slow = start(&[Hook::Connect], connect, Duration::from_millis(2500), false);
    let answer = get(
        &slow.server,
        "/topics/chat.lobby/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!((answer.status, answer.header("retry-after")), (503, Some("1")));
    slow.server.shutdown();
    let busy = start(&[Hook::Connect], connect, Duration::ZERO, true);
    let answer = get(
        &busy.server,
        "/topics/chat.lobby/events",
        "Cookie: session=ann\r\n",
    );
    assert_eq!(answer.status, 503);
    let metrics = get(&busy.server, "/metrics", "");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("tether_hub_backend_decisions_total{hook=\"connect\",outcome=\"unavailable\"} 1"),
        "{text}"
    );
    busy.server.shutdown();
}

/// The next text message on `socket`.
fn next_text(socket: &mut WsClient) -> String {
    match socket.next_event() {
        Some(Event::Message(m)) => m.as_text().unwrap().to_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_namespace_may_leave_each_publish_to_the_backend_in_the_order_sent() {
    let hub = start(&[Hook::Publish], both, Duration::from_millis(20), false);
    let server = &hub.server;
    let mut reader = SseClient::connect(server.addr, "/topics/vote.1/events", "");
    let mut socket = WsClient::connect_with(server.addr, "/topics/vote.1/ws", "");
    // The first is decided last; they go out in the order sent all the
    // same, as the backend decided each.
    for text in ["slow first", "second", "shout third", "deny fourth", "fifth"] {
        socket.send(&Message::text(text));
    }
    for expected in ["slow first", "second", "SHOUT THIRD", "fifth"] {
        assert_eq!(reader.next_event().data(), expected);
    }
    // The socket hears its own events, and the refusal with its reason.
    let mut heard = Vec::new();
    while heard.len() < 5 {
        heard.push(next_text(&mut socket));
    }
    assert!(
        heard
            .iter()
            .any(|m| m.contains(r#""control":"error""#) && m.contains("not that")),
        "{heard:?}"
    );
    // No decision: an error, and nothing published.
    socket.send(&Message::text("garbage"));
    assert!(next_text(&mut socket).contains("did not decide"));
    socket.send(&Message::text("sixth"));
    assert_eq!(reader.next_event().data(), "sixth");
    // The publish token is the backend itself: never asked.
    publish(server, "vote.1", "from the backend");
    assert_eq!(reader.next_event().data(), "from the backend");
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 7, "{asked:?}");
    assert_eq!(
        asked[0],
        Question::Publish {
            subject: None,
            topic: "vote.1".into(),
            data: "slow first".into(),
            event: None,
        }
    );
    hub.server.shutdown();
}

#[test]
fn a_raw_publisher_refused_by_the_backend_is_closed_with_the_reason() {
    let hub = start(&[Hook::Publish], both, Duration::from_millis(10), false);
    let server = &hub.server;
    let mut socket = WsClient::connect_with(server.addr, "/topics/vote.2/ws?format=raw", "");
    socket.send(&Message::text("deny this"));
    loop {
        match socket.next_event() {
            Some(Event::Close(frame)) => {
                assert_eq!((frame.code.0, frame.reason.as_str()), (1008, "not that"));
                break;
            }
            Some(Event::Message(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    hub.server.shutdown();
}

#[test]
fn an_http_publish_waits_for_the_backend_and_gets_its_answer() {
    let hub = start(
        &[Hook::Connect, Hook::Publish],
        both,
        Duration::from_millis(20),
        false,
    );
    let server = &hub.server;
    // The reader too is who the backend says (any public topic is open).
    let mut reader = SseClient::connect(server.addr, "/topics/vote.3/events", "Cookie: session=rd\r\n");
    let post = |data: &str| {
        request(
            server.addr,
            "POST",
            "/topics/vote.3",
            "Cookie: session=cy\r\n",
            data.as_bytes(),
        )
    };
    let posted = post("shout yes");
    assert_eq!(posted.status, 200, "{:?}", String::from_utf8_lossy(&posted.body));
    assert!(String::from_utf8_lossy(&posted.body).contains(r#""id""#));
    assert_eq!(reader.next_event().data(), "SHOUT YES");
    let refused = post("deny no");
    assert_eq!((refused.status, &refused.body[..]), (403, &b"not that\n"[..]));
    let undecided = post("garbage");
    assert_eq!(
        (undecided.status, undecided.header("retry-after")),
        (503, Some("1"))
    );
    assert_eq!(post("plain").status, 200);
    assert_eq!(reader.next_event().data(), "plain");
    // Who published, as the connect hook said.
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(
            |q| matches!(q, Question::Publish { subject: Some(s), data, .. } if s == "cy" && data == "plain")
        ),
        "{asked:?}"
    );
    hub.server.shutdown();
}

#[test]
fn the_backend_is_asked_for_a_later_expiry_before_a_connection_it_let_in_expires() {
    let hub = start(
        &[Hook::Connect, Hook::Refresh],
        both,
        Duration::from_millis(10),
        false,
    );
    let server = &hub.server;
    let mut kept = SseClient::connect(server.addr, "/topics/news/events", "Cookie: session=brief\r\n");
    let mut socket = WsClient::connect_with(server.addr, "/topics/news/ws", "Cookie: session=brief\r\n");
    let mut ended = SseClient::connect(server.addr, "/topics/news/events", "Cookie: session=gone\r\n");
    // Past the three seconds the connect hook gave.
    thread::sleep(Duration::from_secs(5));
    publish(server, "news", "later");
    assert_eq!(kept.next_event().data(), "later");
    // The WebSocket is told its new expiry, as for a new token.
    let told = next_text(&mut socket);
    assert!(
        told.contains(r#""type":"auth-ok""#) && told.contains("expires_in"),
        "{told}"
    );
    assert!(next_text(&mut socket).contains("later"));
    // The one the backend refused more time ended when it was to.
    let mut heard = Vec::new();
    while let Some(item) = ended.next_item() {
        if let tether_sse::Item::Event(event) = item {
            heard.push(event.data().to_owned());
        }
    }
    assert!(!heard.iter().any(|data| data == "later"), "{heard:?}");
    let asked = hub.asked.lock().unwrap().clone();
    let refreshes: Vec<_> = asked
        .iter()
        .filter(|q| matches!(q, Question::Refresh { .. }))
        .collect();
    assert_eq!(refreshes.len(), 3, "{asked:?}");
    assert!(refreshes.contains(&&Question::Refresh {
        subject: "gone".into(),
        transport: "sse"
    }));
    hub.server.shutdown();
}

#[test]
fn a_cookie_from_another_sites_page_is_not_passed_to_the_backend() {
    let hub = start(&[Hook::Connect], connect, Duration::from_millis(10), false);
    let server = &hub.server;
    // A page elsewhere makes the browser open a WebSocket with the cookie:
    // the backend hears of no cookie, and refuses.
    let hijack = get(
        server,
        "/topics/chat.lobby/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\nCookie: session=ann\r\n",
    );
    assert_eq!(hijack.status, 401);
    let sent_by_browser = get(
        server,
        "/topics/chat.lobby/events",
        "Sec-Fetch-Site: cross-site\r\nCookie: session=ann\r\n",
    );
    assert_eq!(sent_by_browser.status, 401);
    let asked = hub.asked.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .all(|q| matches!(q, Question::Connect { cookies, .. } if cookies.is_empty())),
        "{asked:?}"
    );
    // From the server's own page, it is.
    let own = SseClient::connect(
        server.addr,
        "/topics/chat.lobby/events",
        "Origin: http://test\r\nCookie: session=ann\r\n",
    );
    assert_eq!(own.response.status, 200);
    hub.server.shutdown();
}

/// Posts to a `publish=hook` topic, stops the server as soon as the
/// backend has the publish question, and returns the publish's answer.
fn publish_cut_short_by_shutdown(hub: Hub, credentials: String) -> common::Response {
    let addr = hub.server.addr;
    let poster = thread::spawn(move || request(addr, "POST", "/topics/vote.9", &credentials, b"undecided"));
    let asked = |hub: &Hub| {
        hub.asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| matches!(q, Question::Publish { data, .. } if data == "undecided"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !asked(&hub) {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend was never asked"
        );
        thread::sleep(Duration::from_millis(5));
    }
    hub.server.begin_shutdown();
    let answer = poster.join().unwrap();
    hub.server.join();
    answer
}

#[test]
fn an_http_publish_the_backend_has_not_decided_when_the_server_stops_is_a_503() {
    const SECRET: &[u8] = b"a hub test secret, 32 bytes long";
    // The backend answers after 2 s, long after the server was told to
    // stop, and well before its timeout.
    let (delay, timeout) = (Duration::from_secs(2), Duration::from_secs(10));
    // Who the publisher is, the connect hook said first; or a JWT.
    let by_cookie = start_with(&[Hook::Connect, Hook::Publish], both, delay, false, None, timeout);
    let by_jwt = start_with(
        &[Hook::Publish],
        publish_decision,
        delay,
        false,
        Some(HubAuth::new(Keys::from_secret(SECRET).unwrap())),
        timeout,
    );
    let jwt = sign(
        SECRET,
        &serde_json::json!({ "sub": "pat", "exp": unix_now() + 600, "tether": { "pub": ["vote.*"] } }),
    );
    for (hub, credentials) in [
        (by_cookie, "Cookie: session=cy\r\n".to_owned()),
        (by_jwt, format!("Authorization: Bearer {jwt}\r\n")),
    ] {
        let answer = publish_cut_short_by_shutdown(hub, credentials);
        // Not published, and said so at once: the client may send it again
        // to another node.
        assert_eq!(
            (answer.status, answer.header("retry-after"), &answer.body[..]),
            (503, Some("1"), &b"the server is shutting down\n"[..])
        );
    }
}

/// Every publish refused.
fn deny_publishes(_question: &Question) -> Decision {
    Decision::Deny {
        status: 403,
        reason: "never".into(),
    }
}

#[test]
fn the_server_api_does_not_publish_past_the_publish_hook() {
    let hub = start_for_api(Hook::Publish, deny_publishes);
    let server = &hub.server;
    let jwt = api_jwt(serde_json::json!({ "pub": ["vote.*", "chat.*"] }));
    let post = |target: &str, token: &str, body: serde_json::Value| {
        let answer = request(
            server.addr,
            "POST",
            target,
            &format!("Authorization: Bearer {token}\r\n"),
            body.to_string().as_bytes(),
        );
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&answer.body)));
        (answer.status, json)
    };
    // What the backend would refuse on `POST /topics/vote.1` is not
    // published through the API either; a topic without the hook is.
    let items = serde_json::json!({"items": [
        {"topic": "vote.1", "data": "x"},
        {"topic": "chat.1", "data": "y"},
    ]});
    let (_, answer) = post("/api/publish", &jwt, items);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["error"]["code"], "forbidden", "{answer}");
    assert!(results[1]["id"].is_string(), "{answer}");
    let (_, answer) = post(
        "/api/broadcast",
        &jwt,
        serde_json::json!({"topics": ["vote.2"], "data": "x"}),
    );
    assert_eq!(answer["results"][0]["error"]["code"], "forbidden", "{answer}");
    // Nothing was published, nor was the backend asked.
    for topic in ["vote.1", "vote.2"] {
        let polled = request(
            server.addr,
            "GET",
            &format!("/topics/{topic}/poll?timeout=0"),
            "",
            b"",
        );
        let polled: serde_json::Value = serde_json::from_slice(&polled.body).unwrap();
        assert_eq!(polled["events"], serde_json::json!([]), "{polled}");
    }
    assert!(hub.asked.lock().unwrap().is_empty());
    // The publish token is trusted there, as on the topic's own route.
    let (_, answer) = post(
        "/api/publish",
        TOKEN,
        serde_json::json!({"items": [{"topic": "vote.1", "data": "z"}]}),
    );
    assert!(answer["results"][0]["id"].is_string(), "{answer}");
    hub.server.shutdown();
}

#[test]
fn the_server_api_reads_a_topic_the_backend_guards_only_with_rights_to_it() {
    let hub = start_for_api(Hook::Subscribe, subscribe);
    let server = &hub.server;
    publish(server, "room.7", "secret");
    publish(server, "chat.7", "public");
    let jwt = api_jwt;
    let ask = |token: &str, topic: &str| {
        let auth = format!("Authorization: Bearer {token}\r\n");
        let history = get(server, &format!("/api/history?topic={topic}"), &auth).status;
        let presence = get(server, &format!("/api/presence?topic={topic}"), &auth).status;
        let body = serde_json::json!({ "topics": [topic] }).to_string();
        let counts = request(
            server.addr,
            "POST",
            "/api/presence/counts",
            &auth,
            body.as_bytes(),
        )
        .status;
        [history, presence, counts]
    };
    // The backend refuses room.7's subscribers: a token without rights
    // to it reads nothing of it either; an open topic it reads.
    let nobody = jwt(serde_json::json!({}));
    assert_eq!(ask(&nobody, "room.7"), [403; 3]);
    assert_eq!(ask(&nobody, "chat.7"), [200; 3]);
    // Rights to it, or the publish token: read.
    assert_eq!(
        ask(&jwt(serde_json::json!({ "sub": ["room.*"] })), "room.7"),
        [200; 3]
    );
    assert_eq!(ask(TOKEN, "room.7"), [200; 3]);
    hub.server.shutdown();
}

#[test]
fn empty_publishes_held_for_the_backend_count_against_the_in_flight_bound() {
    // The backend answers after 3 s: every publish meanwhile is in flight.
    let hub = start_tuned(
        &[Hook::Publish],
        publish_decision,
        Duration::from_secs(3),
        false,
        None,
        Duration::from_secs(10),
        |settings| settings.max_publish_in_flight = 4096,
    );
    let mut socket = WsClient::connect_with(hub.server.addr, "/topics/vote.5/ws", "");
    // Empty messages carry no bytes, but each costs the hub a publish
    // held: they reach the bound all the same, long before 1000.
    for _ in 0..1000 {
        socket.send(&Message::text(""));
    }
    let (_, close) = socket.texts_then_close();
    assert_eq!(close.code, tether_server::CloseCode::POLICY);
    assert_eq!(close.reason, "publishing faster than the hub sequences");
    assert!(hub.asked.lock().unwrap().len() < 100);
    hub.server.shutdown();
}

/// Every subscription allowed.
fn allow_subscribes(question: &Question) -> Decision {
    match question {
        Question::Subscribe { .. } => Decision::Allow(Allowed::new()),
        _ => Decision::Unavailable {
            reason: "not asked here",
        },
    }
}

/// A ticket asked for by the publish token for the holder `claims`.
fn ticket_for(server: &TestServer, claims: &str) -> String {
    let answer = request(
        server.addr,
        "POST",
        "/tickets",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        claims.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    answer
        .get("ticket")
        .and_then(serde_json::Value::as_str)
        .unwrap()
        .to_owned()
}

#[test]
fn a_ticket_subscribes_to_a_topic_the_backend_decides_asked_once_for_its_holder() {
    let hub = start(
        &[Hook::Subscribe],
        allow_subscribes,
        Duration::from_millis(20),
        false,
    );
    let server = &hub.server;
    let holder = format!(r#"{{"sub":"ann","exp":{}}}"#, unix_now() + 600);
    let ticket = ticket_for(server, &holder);
    let mut events = SseClient::connect(server.addr, &format!("/topics/room.1/events?ticket={ticket}"), "");
    assert_eq!(
        events.response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&events.response.body)
    );
    let ticket = ticket_for(server, &holder);
    let mut socket = WsClient::connect(server.addr, &format!("/topics/room.1/ws?ticket={ticket}"));
    publish(server, "room.1", "to ann");
    assert_eq!(events.next_event().data(), "to ann");
    match socket.next_event() {
        Some(Event::Message(m)) => assert!(m.as_text().unwrap().contains("to ann"), "{m:?}"),
        other => panic!("{other:?}"),
    }
    // Asked once each, with the holder's subject.
    let asked = hub.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            Question::Subscribe {
                subject: Some("ann".into()),
                topic: "room.1".into(),
                transport: "sse",
            },
            Question::Subscribe {
                subject: Some("ann".into()),
                topic: "room.1".into(),
                transport: "websocket",
            },
        ]
    );
    // Still single use: the same ticket again is refused, the backend
    // not asked.
    let again = get(server, &format!("/topics/room.1/events?ticket={ticket}"), "");
    assert_eq!(again.status, 403, "{:?}", String::from_utf8_lossy(&again.body));
    assert_eq!(hub.asked.lock().unwrap().len(), 2);
    hub.server.shutdown();
}
