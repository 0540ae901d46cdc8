//! Refusals are answers, each with the status the topic's own route
//! would give, while the socket's other subscriptions keep flowing: a
//! topic the token does not grant (403), one that needs a token (401),
//! one in no namespace (404); and the backend's subscribe hook, asked for
//! that topic and that subject, deciding while events flow on the rest.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_hub::{Allowed, Decision};
use tether_hub_app::{AnswerTo, Backend, Busy, Hook, Namespace, Question, UnknownNamespace};

use crate::helpers::{Hub, settings, token};

#[test]
fn a_refused_topic_is_an_answer_and_the_granted_ones_flow() {
    let mut settings = settings();
    settings
        .namespaces
        .push("room.* subscribe=token".parse::<Namespace>().unwrap());
    settings.namespaces.push("open.*".parse::<Namespace>().unwrap());
    settings.unknown_namespace = UnknownNamespace::Refuse;
    let hub = Hub::start(settings, 2);
    let mut socket = hub.socket_with(&token("ann", &["room.1"], &[]));
    socket.follow(&["room.1", "open.a"]);
    // Not granted by the token: 403, as /topics/room.2/ws answers.
    socket.subscribe("room.2");
    let (status, error) = socket.refused("room.2");
    assert_eq!(status, 403);
    assert!(error.contains("does not grant"), "{error}");
    // In no namespace: 404.
    socket.subscribe("elsewhere");
    assert_eq!(socket.refused("elsewhere").0, 404);
    hub.publish("room.1", "r");
    hub.publish("open.a", "o");
    let mut got = vec![socket.event(), socket.event()];
    got.sort();
    assert_eq!(
        got,
        [
            ("open.a".to_owned(), "o".to_owned()),
            ("room.1".to_owned(), "r".to_owned())
        ]
    );
    // Without a token, a private topic needs one: 401; the open one is
    // taken.
    let mut anonymous = hub.socket();
    anonymous.subscribe("room.1");
    assert_eq!(anonymous.refused("room.1").0, 401);
    anonymous.follow(&["open.a"]);
}

#[test]
fn a_token_that_does_not_verify_is_refused_at_the_upgrade() {
    let hub = Hub::start(settings(), 1);
    let answer = tether_testkit::request(
        hub.addr(),
        "GET",
        "/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer not.a.token\r\n",
        b"",
    );
    assert_eq!(answer.status, 401);
    // A ticket is for one subscription, in its subscribe message.
    let answer = tether_testkit::request(
        hub.addr(),
        "GET",
        "/ws?ticket=abc",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n",
        b"",
    );
    assert_eq!(answer.status, 400);
}

#[test]
fn a_ticket_in_a_subscribe_is_redeemed_for_that_subscription_once() {
    let hub = Hub::start(settings(), 1);
    let mint = |topic: &str| {
        let answer = tether_testkit::request(
            hub.addr(),
            "POST",
            &format!("/tickets?topic={topic}"),
            &format!("Authorization: Bearer {}\r\n", token("ann", &["room.*"], &[])),
            b"",
        );
        assert_eq!(answer.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        body["ticket"].as_str().unwrap().to_owned()
    };
    let ticket = mint("room.7");
    let mut socket = hub.socket();
    socket.send(&serde_json::json!({ "type": "subscribe", "topic": "room.7", "ticket": ticket }));
    socket.subscribed("room.7");
    // Used: the same ticket again, for another topic, is refused (403).
    socket.send(&serde_json::json!({ "type": "subscribe", "topic": "room.8", "ticket": ticket }));
    assert_eq!(socket.refused("room.8").0, 403);
    hub.publish("room.7", "by ticket");
    assert_eq!(socket.event(), ("room.7".to_owned(), "by ticket".to_owned()));
}

/// The questions the backend holds, each with its answer to let go.
type Waiting = Arc<Mutex<Vec<(Question, AnswerTo)>>>;

/// A backend that answers the subscribe hook only when the test lets it:
/// `hooked.no` denied (403, `no entry`), any other allowed.
struct Gate(Waiting);

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
        self.0.lock().unwrap().push((question, answer));
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn forwarded_headers(&self) -> &[String] {
        &[]
    }

    fn forwarded_cookies(&self) -> &[String] {
        &[]
    }
}

/// Waits until the backend holds `n` questions.
fn questions(waiting: &Waiting, n: usize) -> Vec<Question> {
    let start = Instant::now();
    loop {
        let held = waiting.lock().unwrap();
        if held.len() >= n {
            return held.iter().map(|(q, _)| q.clone()).collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "asked {} of {n}",
            held.len()
        );
        drop(held);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lets every held answer go, each decided by its topic.
fn release(waiting: &Waiting) {
    for (question, answer) in std::mem::take(&mut *waiting.lock().unwrap()) {
        let decision = match question {
            Question::Subscribe { topic, .. } if topic == "hooked.no" => Decision::Deny {
                status: 403,
                reason: "no entry".into(),
            },
            _ => Decision::Allow(Allowed::new()),
        };
        answer(decision);
    }
}

#[test]
fn the_hook_decides_each_topic_for_the_subject_while_the_others_flow() {
    let waiting: Waiting = Arc::default();
    let mut settings = settings();
    settings
        .namespaces
        .push("hooked.* subscribe=hook".parse::<Namespace>().unwrap());
    settings.backend = Some(Arc::new(Gate(waiting.clone())));
    let hub = Hub::start(settings, 2);
    let mut socket = hub.socket_with(&token("bea", &[], &[]));
    socket.follow(&["plain"]);
    socket.subscribe("hooked.yes");
    socket.subscribe("hooked.no");
    let asked = questions(&waiting, 2);
    for topic in ["hooked.yes", "hooked.no"] {
        assert!(
            asked.contains(&Question::Subscribe {
                subject: Some("bea".to_owned()),
                topic: topic.to_owned(),
                transport: "websocket",
            }),
            "{asked:?}"
        );
    }
    // While the backend decides, the other subscription flows.
    hub.publish("plain", "meanwhile");
    assert_eq!(socket.event(), ("plain".to_owned(), "meanwhile".to_owned()));
    release(&waiting);
    let mut answers = vec![socket.next(), socket.next()];
    answers.sort_by_key(|a| a["topic"].as_str().unwrap().to_owned());
    assert_eq!(answers[0]["control"], "refused", "{answers:?}");
    assert_eq!(
        (answers[0]["status"].as_u64(), answers[0]["error"].as_str()),
        (Some(403), Some("no entry"))
    );
    assert_eq!(answers[1]["control"], "subscribed", "{answers:?}");
    hub.publish("hooked.no", "not for it");
    hub.publish("hooked.yes", "allowed");
    assert_eq!(socket.event(), ("hooked.yes".to_owned(), "allowed".to_owned()));
    // An unsubscribe while the backend decides: its answer finds nothing.
    socket.subscribe("hooked.later");
    questions(&waiting, 1);
    socket.unsubscribe("hooked.later");
    assert_eq!(socket.next()["control"], "unsubscribed");
    release(&waiting);
    hub.publish("hooked.later", "not for it");
    hub.publish("plain", "after");
    assert_eq!(socket.event(), ("plain".to_owned(), "after".to_owned()));
}

#[test]
fn a_ticket_s_subscription_ends_when_its_holder_s_token_would() {
    let hub = Hub::start(settings(), 1);
    let short = crate::helpers::token_expiring("gus", &["room.*"], 3);
    let answer = tether_testkit::request(
        hub.addr(),
        "POST",
        "/tickets?topic=room.5",
        &format!("Authorization: Bearer {short}\r\n"),
        b"",
    );
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let mut socket = hub.socket();
    socket.follow(&["open"]);
    socket.send(&serde_json::json!({ "type": "subscribe", "topic": "room.5", "ticket": body["ticket"] }));
    socket.subscribed("room.5");
    // The socket itself has no deadline: only the ticket's subscription
    // ends, and the socket goes on.
    assert_eq!(
        socket.next(),
        serde_json::json!({ "control": "unsubscribed", "topic": "room.5", "reason": "ticket expired" })
    );
    hub.publish("room.5", "not any more");
    hub.publish("open", "still");
    assert_eq!(socket.event(), ("open".to_owned(), "still".to_owned()));
}

/// A backend whose connect hook lets anyone in as `guest`, with no
/// rights of its own.
#[derive(Debug)]
struct Door;

impl Backend for Door {
    fn answers(&self, hook: Hook) -> bool {
        hook == Hook::Connect
    }

    fn ask(&self, _loop_index: usize, _question: Question, answer: AnswerTo) -> Result<(), Busy> {
        answer(Decision::Allow(Allowed::new().identity(
            Some("guest".into()),
            vec![],
            vec![],
        )));
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn forwarded_headers(&self) -> &[String] {
        &[]
    }

    fn forwarded_cookies(&self) -> &[String] {
        &[]
    }
}

#[test]
fn with_a_connect_hook_an_upgrade_without_credentials_is_who_the_backend_says() {
    let mut settings = settings();
    settings.backend = Some(Arc::new(Door));
    let hub = Hub::start(settings, 1);
    // Let in as the backend's guest: open topics, not the private ones
    // (its rights grant none).
    let mut guest = hub.socket();
    guest.follow(&["open"]);
    guest.subscribe("room.1");
    assert_eq!(guest.refused("room.1").0, 403);
    // A token of another subject is not taken: a connection is one
    // subject's.
    guest.send(&serde_json::json!({ "type": "auth", "token": token("ann", &["room.*"], &[]) }));
    let (_, code, reason) = guest.closed();
    assert_eq!(
        (code, reason.as_str()),
        (
            tether_server::CloseCode::POLICY,
            "the token names another subject"
        )
    );
    // With a token it is the token's, and the backend is not asked.
    let mut socket = hub.socket_with(&token("ann", &["room.*"], &[]));
    socket.follow(&["room.1"]);
    hub.publish("room.1", "in");
    assert_eq!(socket.event(), ("room.1".to_owned(), "in".to_owned()));
}
