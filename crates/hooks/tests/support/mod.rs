//! What the hook tests share: the backends and asking one question at a
//! time.
#![allow(dead_code)]

pub(crate) mod drive;
pub(crate) mod fast_backend;
pub(crate) mod python_backend;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tether_hooks::{Answer, AskError, ConnectRequest, HookQueue, HookRequest, Transport};

/// Long enough for a loaded machine; only catches a hang.
pub(crate) const HANG: Duration = Duration::from_secs(60);

pub(crate) fn connect(topic: &str) -> HookRequest {
    HookRequest::Connect(ConnectRequest {
        transport: Transport::WebSocket,
        topic: Some(topic.to_string()),
        remote: Some("203.0.113.9".into()),
        headers: BTreeMap::new(),
        cookies: BTreeMap::new(),
    })
}

/// Asks and waits for the answer: the request's id and the answer.
pub(crate) fn ask(queue: &HookQueue, request: HookRequest) -> (u64, Answer) {
    ask_by(queue, request, None)
}

pub(crate) fn ask_by(queue: &HookQueue, request: HookRequest, deadline: Option<Instant>) -> (u64, Answer) {
    let (tx, rx) = mpsc::channel();
    let id = queue
        .ask(request, deadline, move |answer| tx.send(answer).unwrap())
        .expect("the ask is accepted");
    (id, rx.recv_timeout(HANG).expect("an answer"))
}

/// Asks without waiting: the id and where the answer will arrive.
pub(crate) fn ask_later(
    queue: &HookQueue,
    request: HookRequest,
) -> Result<(u64, mpsc::Receiver<Answer>), AskError> {
    let (tx, rx) = mpsc::channel();
    let id = queue.ask(request, None, move |answer| {
        let _ = tx.send(answer);
    })?;
    Ok((id, rx))
}

/// The parts of a subject `id-<id>/c<connection>/r<request>` the Python
/// backend answers a connect with.
pub(crate) fn subject_parts(subject: &str) -> (u64, u64, u64) {
    let mut parts = subject.split('/');
    let mut number = |prefix: &str| -> u64 {
        parts
            .next()
            .and_then(|p| p.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{subject:?} is id-N/cN/rN"))
    };
    (number("id-"), number("c"), number("r"))
}
