//! The application's backend for these tests: a plain HTTP/1.1 server
//! on a free port that answers the rpc hook by the method called, and
//! the connect hook with the subject its `session` cookie names.
//!
//! | method | answer |
//! | --- | --- |
//! | `whoami` | the caller's subject, transport and data |
//! | `refuse` | a refusal, 404 `no such method` |
//! | `garbage` | a 200 that is not JSON |
//! | `slow` | nothing until after the hook's timeout |
//! | `held` | `"released"`, once the test releases the gate |

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

/// How long `slow` takes: past any timeout these tests configure.
const SLOW: Duration = Duration::from_secs(3);

/// A gate the `held` calls wait at until the test opens it.
#[derive(Default)]
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Calls waiting at it now.
    waiting: Mutex<usize>,
    waited: Condvar,
}

impl Gate {
    pub(crate) fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits until `n` calls wait at the gate.
    pub(crate) fn until_waiting(&self, n: usize) {
        let mut waiting = self.waiting.lock().unwrap();
        while *waiting < n {
            waiting = self.waited.wait(waiting).unwrap();
        }
    }

    fn pass(&self) {
        {
            *self.waiting.lock().unwrap() += 1;
            self.waited.notify_all();
        }
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

pub(crate) struct AppBackend {
    pub(crate) port: u16,
    pub(crate) gate: Arc<Gate>,
}

impl AppBackend {
    /// Listens on a free port of 127.0.0.1; its threads end with the
    /// test process.
    pub(crate) fn start() -> AppBackend {
        let gate = Arc::new(Gate::default());
        let shared = gate.clone();
        let port =
            crate::support::backend::start(Arc::new(move |question: &Value| answer(question, &shared)));
        AppBackend { port, gate }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn answer(question: &Value, gate: &Gate) -> String {
    if let Some(session) = question["cookies"]["session"].as_str() {
        return json!({"allow": true, "subject": session}).to_string();
    }
    match question["method"].as_str() {
        Some("whoami") => json!({
            "allow": true,
            "data": {
                "subject": question["subject"],
                "transport": question["transport"],
                "data": question["data"],
            }
        })
        .to_string(),
        Some("refuse") => json!({"allow": false, "status": 404, "reason": "no such method"}).to_string(),
        Some("garbage") => "this is not JSON".to_owned(),
        Some("slow") => {
            thread::sleep(SLOW);
            json!({"allow": true}).to_string()
        }
        Some("held") => {
            gate.pass();
            json!({"allow": true, "data": "released"}).to_string()
        }
        _ => json!({"allow": false, "status": 401, "reason": "not a call"}).to_string(),
    }
}
