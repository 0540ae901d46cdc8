//! The subscribe hook asked about the subject that receives the events:
//! a WebSocket that names its subject after its upgrade (its first
//! message, `?auth=1`, or a token sent in band by a socket let in without
//! one) on a `subscribe=hook` topic is asked about for that subject, and
//! takes it (subscribed, told `auth-ok`) only when the backend allows it;
//! a deny closes it with 1008.
//!
//! The backend here holds each question about a named subject until the
//! test lets its answer go, so that what the socket gets while the
//! question is out is seen, without timing.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use tether_testkit as common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, WsClient, config, request};
use tether_auth::Keys;
use tether_hub::{Allowed, Decision};
use tether_hub_app::{AnswerTo, Backend, Busy, Hook, HubAuth, HubSettings, HubShared, Namespace, Question};
use tether_server::{CloseCode, Handshake};
use tether_ws::Event;

use support::jwt::{sign, unix_now};

const TOKEN: &str = "hooks-late-test-publish-token";
const SECRET: &[u8] = b"a late subject test secret, 32 b";
/// How long a test waits for the backend to be asked before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// The questions asked, and those about a named subject still held.
#[derive(Debug, Default)]
struct Held {
    asked: Vec<Question>,
    waiting: Vec<Question>,
}

/// A backend that answers questions about no one at once and holds those
/// about a named subject until the test releases them; `mallory` is
/// refused, anyone else allowed.
struct Gate {
    held: Arc<Mutex<Held>>,
    answers: Arc<Mutex<Vec<AnswerTo>>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Backend for Gate {
    fn answers(&self, hook: Hook) -> bool {
        hook == Hook::Subscribe
    }

    fn ask(&self, _loop_index: usize, question: Question, answer: AnswerTo) -> Result<(), Busy> {
        let decision = match &question {
            Question::Subscribe {
                subject: Some(subject),
                ..
            } if subject == "mallory" => Decision::Deny {
                status: 403,
                reason: "not mallory".into(),
            },
            _ => Decision::Allow(Allowed::new()),
        };
        let mut held = self.held.lock().unwrap();
        held.asked.push(question.clone());
        match &question {
            // No one (an anonymous socket's upgrade): answered at once.
            Question::Subscribe { subject: None, .. } => answer(decision),
            _ => {
                held.waiting.push(question);
                let mut answers = self.answers.lock().unwrap();
                answers.push(Box::new(move |_| answer(decision)));
            }
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        // Longer than any wait here: the test lets the answers go.
        Duration::from_secs(60)
    }

    fn forwarded_headers(&self) -> &[String] {
        &[]
    }

    fn forwarded_cookies(&self) -> &[String] {
        &[]
    }
}

struct Hub {
    server: TestServer,
    held: Arc<Mutex<Held>>,
    answers: Arc<Mutex<Vec<AnswerTo>>>,
}

impl Hub {
    fn start() -> Hub {
        let held = Arc::new(Mutex::new(Held::default()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.auth = Some(HubAuth::new(Keys::from_secret(SECRET).unwrap()));
        settings
            .namespaces
            .push("room.* subscribe=hook".parse::<Namespace>().unwrap());
        settings.backend = Some(Arc::new(Gate {
            held: held.clone(),
            answers: answers.clone(),
        }));
        let shared = HubShared::new(settings, 2);
        let server = TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i));
        Hub {
            server,
            held,
            answers,
        }
    }

    /// Waits until the backend holds a question about `subject`.
    fn wait_for_question(&self, subject: &str) -> Question {
        let start = Instant::now();
        loop {
            let held = self.held.lock().unwrap();
            let found = held
                .waiting
                .iter()
                .find(|q| matches!(q, Question::Subscribe { subject: Some(s), .. } if s == subject));
            if let Some(question) = found {
                return question.clone();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the backend was never asked about {subject}: {:?}",
                held.asked
            );
            drop(held);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the held answers go.
    fn release(&self) {
        let answers: Vec<AnswerTo> = std::mem::take(&mut *self.answers.lock().unwrap());
        for answer in answers {
            // The decision was made when asked; this argument is unused.
            answer(Decision::Unavailable { reason: "unused" });
        }
    }

    fn publish(&self, topic: &str, data: &str) {
        let answer = request(
            self.server.addr,
            "POST",
            &format!("/topics/{topic}"),
            &format!("Authorization: Bearer {TOKEN}\r\n"),
            data.as_bytes(),
        );
        assert_eq!(answer.status, 200);
    }

    fn asked(&self) -> Vec<Question> {
        self.held.lock().unwrap().asked.clone()
    }
}

fn jwt(subject: &str) -> String {
    let now = unix_now();
    sign(SECRET, &serde_json::json!({ "sub": subject, "exp": now + 600 }))
}

fn auth_message(subject: &str) -> String {
    format!("{{\"type\":\"auth\",\"token\":\"{}\"}}", jwt(subject))
}

fn subscribe_question(subject: Option<&str>, topic: &str) -> Question {
    Question::Subscribe {
        subject: subject.map(str::to_owned),
        topic: topic.to_owned(),
        transport: "websocket",
    }
}

/// The next text message, skipping pings and pongs.
fn next_text(socket: &mut WsClient) -> String {
    loop {
        match socket.next_event() {
            Some(Event::Message(m)) => return m.into_text().unwrap(),
            Some(Event::Ping(_) | Event::Pong(_)) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close frame, with no message before it (pings and pongs aside).
fn close_of(socket: &mut WsClient) -> (CloseCode, String) {
    loop {
        match socket.next_event() {
            Some(Event::Close(frame)) => return (frame.code, frame.reason),
            Some(Event::Ping(_) | Event::Pong(_)) => {}
            other => panic!("expected the close, got {other:?}"),
        }
    }
}

#[test]
fn a_first_message_socket_is_asked_about_for_its_tokens_subject_and_gets_nothing_before() {
    let hub = Hub::start();
    let mut socket = WsClient::connect(hub.server.addr, "/topics/room.a/ws?auth=1");
    socket.send_text(&auth_message("ann"));
    assert_eq!(
        hub.wait_for_question("ann"),
        subscribe_question(Some("ann"), "room.a")
    );
    // Published while the backend decides: not for ann, who is not yet
    // subscribed.
    hub.publish("room.a", "early");
    hub.release();
    let ok = next_text(&mut socket);
    assert!(ok.contains("auth-ok"), "{ok}");
    hub.publish("room.a", "after");
    let event = next_text(&mut socket);
    assert!(event.contains("after") && !event.contains("early"), "{event}");
    // Asked once, about ann: never about no one at the upgrade.
    assert_eq!(hub.asked(), vec![subscribe_question(Some("ann"), "room.a")]);

    let mut refused = WsClient::connect(hub.server.addr, "/topics/room.a/ws?auth=1");
    refused.send_text(&auth_message("mallory"));
    hub.wait_for_question("mallory");
    hub.publish("room.a", "not for mallory");
    hub.release();
    assert_eq!(
        close_of(&mut refused),
        (CloseCode::POLICY, "not mallory".to_owned())
    );
    hub.server.shutdown();
}

#[test]
fn an_anonymous_socket_naming_its_subject_in_band_takes_it_only_when_allowed() {
    let hub = Hub::start();
    let mut socket = WsClient::connect(hub.server.addr, "/topics/room.b/ws");
    // Let in as no one, decided at the upgrade.
    assert_eq!(hub.asked(), vec![subscribe_question(None, "room.b")]);
    socket.send_text(&auth_message("ann"));
    assert_eq!(
        hub.wait_for_question("ann"),
        subscribe_question(Some("ann"), "room.b")
    );
    // While the backend decides, the socket is still no one's: what it
    // gets is what no one was allowed, and its token is not taken yet.
    hub.publish("room.b", "to no one");
    let event = next_text(&mut socket);
    assert!(event.contains("to no one"), "{event}");
    hub.release();
    let ok = next_text(&mut socket);
    assert!(ok.contains("auth-ok"), "{ok}");
    hub.publish("room.b", "to ann");
    let event = next_text(&mut socket);
    assert!(event.contains("to ann"), "{event}");

    let mut refused = WsClient::connect(hub.server.addr, "/topics/room.b/ws");
    refused.send_text(&auth_message("mallory"));
    hub.wait_for_question("mallory");
    hub.release();
    assert_eq!(
        close_of(&mut refused),
        (CloseCode::POLICY, "not mallory".to_owned())
    );
    let page = request(hub.server.addr, "GET", "/metrics", "", b"");
    let text = String::from_utf8_lossy(&page.body);
    assert!(
        text.contains("tether_hub_backend_decisions_total{hook=\"subscribe\",outcome=\"denied\"} 1"),
        "{text}"
    );
    hub.server.shutdown();
}
