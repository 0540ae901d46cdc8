//! Asks as fast as each loop's bound allows, from several threads, and
//! checks that every answer is an allow carrying its own request's id.

use std::collections::HashSet;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tether_hooks::{AskError, ConnectRequest, Decision, HookRequest, Hooks, Transport};

/// `loops` threads, each with its own queue of `bound`, ask `per_loop`
/// connects each; a thread that is busy waits for one of its answers, as
/// an event loop would. The time it all took.
pub(crate) fn drive(hooks: &Hooks, loops: usize, per_loop: usize, bound: usize) -> Duration {
    let started = Instant::now();
    let threads: Vec<_> = (0..loops)
        .map(|_| {
            let queue = hooks.queue(bound);
            thread::spawn(move || {
                let (tx, rx) = mpsc::channel();
                let mut waiting = HashSet::new();
                let check = |answer: tether_hooks::Answer, waiting: &mut HashSet<u64>| {
                    let subject = match answer {
                        Ok(Decision::Allow(allow)) => allow.subject.unwrap_or_default(),
                        other => panic!("not an allow: {other:?}"),
                    };
                    let id: u64 = subject
                        .strip_prefix("id-")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("subject {subject:?}"));
                    assert!(
                        waiting.remove(&id),
                        "answer for id {id}, not one of this loop's asks"
                    );
                };
                let mut asked = 0;
                while asked < per_loop {
                    let tx = tx.clone();
                    let request = HookRequest::Connect(ConnectRequest {
                        transport: Transport::WebSocket,
                        topic: Some("bench".into()),
                        remote: Some("127.0.0.1".into()),
                        headers: Default::default(),
                        cookies: Default::default(),
                    });
                    match queue.ask(request, None, move |answer| {
                        let _ = tx.send(answer);
                    }) {
                        Ok(id) => {
                            waiting.insert(id);
                            asked += 1;
                        }
                        Err(AskError::Busy) => {
                            let answer = rx.recv_timeout(Duration::from_secs(60)).expect("an answer");
                            check(answer, &mut waiting);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                while !waiting.is_empty() {
                    let answer = rx.recv_timeout(Duration::from_secs(60)).expect("an answer");
                    check(answer, &mut waiting);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("every answer checked");
    }
    started.elapsed()
}
