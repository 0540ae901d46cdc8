//! The hooks against a real backend process (`tests/backend.py`): each
//! kind of answer, each kind of failure, the bounds, shutdown, and answers
//! matched to their requests under concurrency.
// Tests may panic on what they check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::python_backend::PythonBackend;
use support::{HANG, ask, ask_by, ask_later, connect, subject_parts};
use tether_hooks::{
    AskError, Config, Decision, Deny, HookKind, HookRequest, Hooks, PublishRequest, RefreshRequest,
    SubscribeRequest, Transport, Unavailable,
};

fn hooks(url: &str, timeout: Duration, workers: usize) -> Hooks {
    let mut config = Config::new().workers(workers);
    for kind in HookKind::ALL {
        config = config.hook(kind, url, timeout).unwrap();
    }
    Hooks::start(config).unwrap()
}

fn allowed_subject(answer: tether_hooks::Answer) -> String {
    match answer {
        Ok(Decision::Allow(allow)) => allow.subject.expect("a connect allow has a subject"),
        other => panic!("not an allow: {other:?}"),
    }
}

fn publish(data: &str) -> HookRequest {
    HookRequest::Publish(PublishRequest {
        subject: Some("u1".into()),
        topic: "chat.7".into(),
        data: data.into(),
        event: None,
        encoding: None,
    })
}

#[test]
fn allow_answers_carry_their_own_ids() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_secs(10), 2);
    let queue = hooks.queue(8);
    for _ in 0..3 {
        let (id, answer) = ask(&queue, connect("chat.7"));
        let Ok(Decision::Allow(allow)) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(subject_parts(allow.subject.as_deref().unwrap()).0, id);
        assert_eq!(allow.grant.unwrap().subscribe, ["chat.*"]);
        assert_eq!(allow.exp, Some(4_000_000_000));
    }
    let refresh = HookRequest::Refresh(RefreshRequest {
        subject: "u1".into(),
        transport: Transport::Sse,
    });
    let (_, answer) = ask(&queue, refresh);
    let Ok(Decision::Allow(allow)) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(allow.exp, Some(4_000_000_001));
    let subscribe = HookRequest::Subscribe(SubscribeRequest {
        subject: None,
        topic: "chat.7".into(),
        transport: Transport::Poll,
    });
    assert!(ask(&queue, subscribe).1.unwrap().is_allow());
    let stats = hooks.stats();
    assert_eq!((stats.asked, stats.allowed, stats.answered()), (5, 5, 5));
}

#[test]
fn deny_with_status_and_reason() {
    let backend = PythonBackend::start();
    let hooks = hooks(
        &backend.url("/deny?status=429&reason=slow%20down"),
        Duration::from_secs(10),
        1,
    );
    let answer = ask(&hooks.queue(1), publish("x")).1;
    let Ok(Decision::Deny(Deny { status, reason, .. })) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!((status, reason.as_str()), (429, "slow down"));
    let hooks = self::hooks(&backend.url("/deny"), Duration::from_secs(10), 1);
    let answer = ask(&hooks.queue(1), connect("t")).1;
    let Ok(Decision::Deny(Deny { status, reason, .. })) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!((status, reason.as_str()), (403, ""));
    assert_eq!(hooks.stats().denied, 1);
}

#[test]
fn publish_rewritten() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/rewrite"), Duration::from_secs(10), 1);
    let (id, answer) = ask(&hooks.queue(1), publish("hello"));
    let Ok(Decision::Allow(allow)) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(allow.data, Some(format!("HELLO|{id}")));
}

#[test]
fn chunked_answers_and_keep_alive() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/chunked"), Duration::from_secs(10), 1);
    let queue = hooks.queue(1);
    let mut connections = Vec::new();
    for _ in 0..3 {
        let (id, answer) = ask(&queue, connect("t"));
        let (echoed, connection, _) = subject_parts(&allowed_subject(answer));
        assert_eq!(echoed, id);
        connections.push(connection);
    }
    // One worker, one keep-alive connection for all three.
    assert!(
        connections.iter().all(|&c| c == connections[0]),
        "{connections:?}"
    );
}

#[test]
fn connection_close_is_honoured() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/close"), Duration::from_secs(10), 1);
    let queue = hooks.queue(1);
    let mut connections = Vec::new();
    for _ in 0..3 {
        let (id, answer) = ask(&queue, connect("t"));
        let (echoed, connection, _) = subject_parts(&allowed_subject(answer));
        assert_eq!(echoed, id);
        connections.push(connection);
    }
    connections.dedup();
    assert_eq!(connections.len(), 3, "a new connection each time");
}

#[test]
fn an_idle_connection_closed_by_the_backend_is_retried_once() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/idleclose"), Duration::from_secs(10), 1);
    let queue = hooks.queue(1);
    let mut connections = Vec::new();
    for _ in 0..4 {
        // Let the backend's close reach us, so the idle connection is
        // the dead one the retry is for.
        thread::sleep(Duration::from_millis(50));
        let (id, answer) = ask(&queue, connect("t"));
        let (echoed, connection, _) = subject_parts(&allowed_subject(answer));
        assert_eq!(echoed, id);
        connections.push(connection);
    }
    connections.dedup();
    assert_eq!(connections.len(), 4);
    assert_eq!(hooks.stats().unavailable.total(), 0);
}

#[test]
fn broken_answers_are_unavailable_never_allow() {
    let backend = PythonBackend::start();
    for (path, expected) in [
        ("/garbage", Unavailable::Malformed),
        ("/nonjson", Unavailable::Malformed),
        ("/status500", Unavailable::Status(500)),
        ("/status403", Unavailable::Status(403)),
        ("/truncated", Unavailable::Malformed),
        ("/huge", Unavailable::Malformed),
        ("/nothing-here", Unavailable::Status(404)),
    ] {
        let hooks = hooks(&backend.url(path), Duration::from_secs(10), 1);
        let queue = hooks.queue(1);
        for _ in 0..2 {
            assert_eq!(ask(&queue, connect("t")).1, Err(expected), "{path}");
        }
        // The connection is not reused after any of them: the next ask,
        // to a good hook on the same backend, is answered.
        let good = Hooks::start(
            Config::new()
                .workers(1)
                .hook(HookKind::Connect, &backend.url("/allow"), Duration::from_secs(10))
                .unwrap(),
        )
        .unwrap();
        assert!(ask(&good.queue(1), connect("t")).1.unwrap().is_allow());
    }
}

#[test]
fn a_larger_body_limit_takes_the_huge_answer() {
    let backend = PythonBackend::start();
    let config = Config::new()
        .workers(1)
        .max_body(1 << 20)
        .hook(
            HookKind::Subscribe,
            &backend.url("/huge"),
            Duration::from_secs(10),
        )
        .unwrap();
    let hooks = Hooks::start(config).unwrap();
    let subscribe = HookRequest::Subscribe(SubscribeRequest {
        subject: None,
        topic: "t".into(),
        transport: Transport::Sse,
    });
    assert!(ask(&hooks.queue(1), subscribe).1.unwrap().is_allow());
}

#[test]
fn a_backend_that_is_down() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hooks = hooks(
        &format!("http://127.0.0.1:{port}/allow"),
        Duration::from_secs(10),
        1,
    );
    assert_eq!(ask(&hooks.queue(1), connect("t")).1, Err(Unavailable::Down));
    assert_eq!(hooks.stats().unavailable.down, 1);
}

#[test]
fn a_slow_answer_times_out() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_millis(300), 1);
    assert_eq!(
        ask(&hooks.queue(1), connect("slow:3000")).1,
        Err(Unavailable::Timeout)
    );
    assert_eq!(hooks.stats().unavailable.timeout, 1);
}

/// The late answer to a timed-out request must never be read as the
/// answer to the next one: the connection is closed after the timeout.
#[test]
fn after_a_timeout_the_next_request_gets_its_own_answer() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_secs(10), 1);
    let queue = hooks.queue(1);
    let (id, answer) = ask(&queue, connect("t"));
    let (echoed, first_connection, _) = subject_parts(&allowed_subject(answer));
    assert_eq!(echoed, id);
    // On the same (only) worker, so on that keep-alive connection.
    let soon = Instant::now() + Duration::from_millis(400);
    assert_eq!(
        ask_by(&queue, connect("slow:1200"), Some(soon)).1,
        Err(Unavailable::Timeout)
    );
    // Asked at once, while the late answer is still on its way.
    for _ in 0..3 {
        let (id, answer) = ask(&queue, connect("t"));
        let (echoed, connection, _) = subject_parts(&allowed_subject(answer));
        assert_eq!(echoed, id, "its own answer");
        assert_ne!(connection, first_connection, "not the timed-out connection");
    }
    // Past the late answer too.
    thread::sleep(Duration::from_millis(1000));
    let (id, answer) = ask(&queue, connect("t"));
    assert_eq!(subject_parts(&allowed_subject(answer)).0, id);
}

#[test]
fn a_job_expired_in_the_queue_is_never_sent() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_secs(10), 1);
    let queue = hooks.queue(8);
    let (_, answer) = ask(&queue, connect("t"));
    let (_, _, before) = subject_parts(&allowed_subject(answer));
    // The only worker is busy for 800 ms with this one...
    let (_, slow) = ask_later(&queue, connect("slow:800")).unwrap();
    thread::sleep(Duration::from_millis(50));
    // ...so this one waits in the queue past its deadline.
    let soon = Instant::now() + Duration::from_millis(100);
    assert_eq!(
        ask_by(&queue, connect("t"), Some(soon)).1,
        Err(Unavailable::Timeout)
    );
    assert!(slow.recv_timeout(HANG).unwrap().unwrap().is_allow());
    let (_, answer) = ask(&queue, connect("t"));
    let (_, _, after) = subject_parts(&allowed_subject(answer));
    assert_eq!(
        after,
        before + 2,
        "the backend saw the slow request and this one, not the expired one"
    );
}

#[test]
fn a_loop_over_its_bound_is_busy_and_loops_are_independent() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_secs(10), 2);
    let first = hooks.queue(2);
    let second = hooks.queue(1);
    let (_, a) = ask_later(&first, connect("slow:1000")).unwrap();
    let (_, b) = ask_later(&first, connect("slow:1000")).unwrap();
    assert_eq!(first.outstanding(), 2);
    assert_eq!(ask_later(&first, connect("t")).unwrap_err(), AskError::Busy);
    assert_eq!(
        ask_later(&first.clone(), connect("t")).unwrap_err(),
        AskError::Busy,
        "clones share the bound"
    );
    // The other loop has its own bound.
    let (id, answer) = ask(&second, connect("t"));
    assert_eq!(subject_parts(&allowed_subject(answer)).0, id);
    for rx in [a, b] {
        assert!(rx.recv_timeout(HANG).unwrap().unwrap().is_allow());
    }
    assert_eq!(first.outstanding(), 0);
    assert!(
        ask(&first, connect("t")).1.unwrap().is_allow(),
        "a slot freed is usable again"
    );
    assert_eq!(hooks.stats().busy, 2);
}

#[test]
fn the_shared_queue_bound() {
    let backend = PythonBackend::start();
    let config = Config::new()
        .workers(1)
        .queue_bound(2)
        .hook(HookKind::Connect, &backend.url("/allow"), Duration::from_secs(10))
        .unwrap();
    let hooks = Hooks::start(config).unwrap();
    let queue = hooks.queue(100);
    let mut accepted = Vec::new();
    let mut busy = 0;
    for _ in 0..6 {
        match ask_later(&queue, connect("slow:1000")) {
            Ok(pending) => accepted.push(pending),
            Err(AskError::Busy) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // One in the worker's hands at most, two queued.
    assert!((2..=3).contains(&accepted.len()), "{} accepted", accepted.len());
    assert_eq!(busy + accepted.len(), 6);
    for (id, rx) in accepted {
        let answer = rx.recv_timeout(HANG).unwrap();
        assert_eq!(subject_parts(&allowed_subject(answer)).0, id);
    }
}

#[test]
fn shutdown_answers_queued_asks_and_joins_the_workers() {
    let backend = PythonBackend::start();
    let config = Config::new()
        .workers(3)
        .thread_name("hookshut")
        .hook(HookKind::Connect, &backend.url("/allow"), Duration::from_secs(10))
        .unwrap();
    let mut hooks = Hooks::start(config).unwrap();
    let queue = hooks.queue(16);
    let workers = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("hookshut-"))
            .count()
    };
    if cfg!(target_os = "linux") {
        // Each thread names itself as it starts.
        let started = Instant::now();
        while workers() < 3 && started.elapsed() < HANG {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(workers(), 3);
    }
    let in_flight: Vec<_> = (0..3)
        .map(|_| ask_later(&queue, connect("slow:600")).unwrap().1)
        .collect();
    thread::sleep(Duration::from_millis(100));
    let queued: Vec<_> = (0..5)
        .map(|_| ask_later(&queue, connect("t")).unwrap().1)
        .collect();
    hooks.shutdown();
    for rx in queued {
        assert_eq!(rx.recv_timeout(HANG).unwrap(), Err(Unavailable::ShuttingDown));
    }
    // The asks in flight were finished, not dropped.
    for rx in in_flight {
        assert!(rx.recv_timeout(HANG).unwrap().unwrap().is_allow());
    }
    assert_eq!(
        ask_later(&queue, connect("t")).unwrap_err(),
        AskError::ShuttingDown
    );
    assert_eq!(queue.outstanding(), 0);
    assert_eq!(hooks.stats().unavailable.shutting_down, 5);
    if cfg!(target_os = "linux") {
        // A joined thread's task can stay listed a moment after the join
        // returns (the kernel wakes the joiner before it is reaped).
        let joined = Instant::now();
        while workers() > 0 && joined.elapsed() < HANG {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(workers(), 0, "no worker thread left");
    }
}

#[test]
fn thousands_of_asks_from_several_loops_each_get_their_own_answer() {
    let backend = PythonBackend::start();
    let hooks = hooks(&backend.url("/allow"), Duration::from_secs(30), 8);
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let queue = hooks.queue(32);
            thread::spawn(move || {
                let (tx, rx) = mpsc::channel();
                let mut asked = 0;
                for n in 0..1500 {
                    let tx = tx.clone();
                    let topic = format!("t.{n}");
                    loop {
                        let tx = tx.clone();
                        match queue.ask(connect(&topic), None, move |answer| tx.send(answer).unwrap()) {
                            Ok(_) => break,
                            Err(AskError::Busy) => thread::sleep(Duration::from_micros(200)),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    asked += 1;
                }
                drop(tx);
                let mut ids = Vec::new();
                for _ in 0..asked {
                    ids.push(rx.recv_timeout(HANG).unwrap());
                }
                ids
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for handle in loops {
        for answer in handle.join().unwrap() {
            let (id, _, _) = subject_parts(&allowed_subject(answer));
            assert!(seen.insert(id), "id {id} answered twice");
        }
    }
    assert_eq!(seen.len(), 6000);
    let stats = hooks.stats();
    assert_eq!((stats.asked, stats.allowed), (6000, 6000));
}
