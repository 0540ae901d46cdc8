//! What every hook's tests share: a hub on two loops whose backend is
//! in-process and answers from threads of its own, as the HTTP hooks do;
//! the decisions it makes; publishing and asking the hub.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tether_hub::{Allowed, Decision};
use tether_hub_app::{AnswerTo, Backend, Busy, Hook, HubAuth, HubSettings, HubShared, Namespace, Question};
use tether_server::Handshake;
use tether_testkit as common;
use tether_ws::Event;

use common::{TestServer, WsClient, config, request};

use crate::support::jwt::unix_now;

pub(crate) const TOKEN: &str = "backend-test-publish-token";

type Decide = dyn Fn(&Question) -> Decision + Send + Sync;

/// How long a `hold` session's connect question holds its loop.
const HOLD: Duration = Duration::from_millis(1600);

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
        // A `hold` session holds the loop that asks, as a stalled machine
        // would: its ticks come late.
        if let Question::Connect { cookies, .. } = &question
            && cookies.iter().any(|(n, v)| n == "session" && v == "hold")
        {
            thread::sleep(HOLD);
        }
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
pub(crate) fn connect(question: &Question) -> Decision {
    let session = match question {
        Question::Connect { cookies, .. } => cookies
            .iter()
            .find(|(n, _)| n == "session")
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    match session.as_deref() {
        Some("deny" | "hold") | None => Decision::Deny {
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
pub(crate) fn subscribe(question: &Question) -> Decision {
    match question {
        Question::Subscribe { topic, .. } if topic == "room.open" => Decision::Allow(Allowed::new()),
        _ => Decision::Deny {
            status: 403,
            reason: "closed room".into(),
        },
    }
}

pub(crate) fn both(question: &Question) -> Decision {
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
pub(crate) fn publish_decision(question: &Question) -> Decision {
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

pub(crate) struct Hub {
    pub(crate) server: TestServer,
    pub(crate) asked: Arc<Mutex<Vec<Question>>>,
}

pub(crate) fn start(hooks: &[Hook], decide: fn(&Question) -> Decision, delay: Duration, busy: bool) -> Hub {
    start_with(hooks, decide, delay, busy, None, Duration::from_millis(300))
}

/// [`start`], with publishers who may also present a JWT `auth` checks,
/// and the backend's `timeout`.
pub(crate) fn start_with(
    hooks: &[Hook],
    decide: fn(&Question) -> Decision,
    delay: Duration,
    busy: bool,
    auth: Option<HubAuth>,
    timeout: Duration,
) -> Hub {
    start_on_loops(hooks, decide, delay, busy, auth, timeout, |_| {}, 2)
}

/// [`start_with`], the settings changed by `tune` first, on `loops`
/// loops.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_on_loops(
    hooks: &[Hook],
    decide: fn(&Question) -> Decision,
    delay: Duration,
    busy: bool,
    auth: Option<HubAuth>,
    timeout: Duration,
    tune: impl FnOnce(&mut HubSettings),
    loops: usize,
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
    let shared = HubShared::new(settings, loops);
    let server = TestServer::start_loops(config(), Handshake::new(), loops, |i| shared.app(i));
    Hub { server, asked }
}

pub(crate) fn publish(server: &TestServer, topic: &str, data: &str) {
    let answer = request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        data.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
}

pub(crate) fn get(server: &TestServer, target: &str, headers: &str) -> common::Response {
    request(server.addr, "GET", target, headers, b"")
}

/// The next text message on `socket`.
pub(crate) fn next_text(socket: &mut WsClient) -> String {
    match socket.next_event() {
        Some(Event::Message(m)) => m.as_text().unwrap().to_owned(),
        other => panic!("{other:?}"),
    }
}
