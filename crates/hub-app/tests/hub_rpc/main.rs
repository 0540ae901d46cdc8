//! Calls from a multiplexed socket to the application's backend (the
//! rpc hook), against a real HTTP backend on a free port: the answer
//! reaches its caller alone, by its id and out of order; a refusal, a
//! timeout, an answer that is not JSON, no hook, a caller over its
//! calls in flight or its subject's rate: each an error to that call,
//! the socket left open; and the same over `POST /rpc`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod http;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tether_auth::Keys;
use tether_hooks::{Config, HookKind, Hooks};
use tether_hub_app::{HttpBackend, HubAuth, HubSettings, HubShared, PublishRate};
use tether_server::Handshake;
use tether_testkit::{TestServer, WsClient, config, scrape_metrics};

use self::backend::AppBackend;
use self::support::jwt::rights;

pub(crate) const SECRET: &[u8] = b"an rpc test secret of 32 bytes..";

/// The hook's timeout: `slow` takes longer.
const TIMEOUT: Duration = Duration::from_millis(500);

/// A hub on two loops whose rpc hook is `backend`'s (none: no hook).
pub(crate) fn hub(backend: Option<&AppBackend>, change: impl FnOnce(&mut HubSettings)) -> TestServer {
    hub_with(backend, &[HookKind::Rpc], change)
}

/// A hub on two loops whose `hooks` are `backend`'s (the connect hook
/// told the `session` cookie).
pub(crate) fn hub_with(
    backend: Option<&AppBackend>,
    hooks: &[HookKind],
    change: impl FnOnce(&mut HubSettings),
) -> TestServer {
    let mut settings = HubSettings::default();
    settings.auth = Some(HubAuth::new(Keys::from_secret(SECRET).unwrap()));
    if let Some(backend) = backend {
        let mut config = Config::new().workers(4);
        for &kind in hooks {
            config = config.hook(kind, &backend.url("/hook"), TIMEOUT).unwrap();
        }
        let hooks = Hooks::start(config).unwrap();
        let backend = HttpBackend::new(hooks, 2, 64).forward_cookies(["session"]);
        settings.backend = Some(Arc::new(backend));
    }
    change(&mut settings);
    let shared = HubShared::new(settings, 2);
    TestServer::start_loops(config(), Handshake::new(), 2, |i| shared.app(i))
}

/// A multiplexed socket of `subject`.
pub(crate) fn socket(server: &TestServer, subject: &str) -> WsClient {
    let token = rights(SECRET, subject, &[], &[], 3600);
    WsClient::connect_with(server.addr, "/ws", &format!("Authorization: Bearer {token}\r\n"))
}

pub(crate) fn call(ws: &mut WsClient, id: u64, method: &str, data: &Value) {
    ws.send_text(&json!({"type": "rpc", "id": id, "method": method, "data": data}).to_string());
}

/// The next message, as JSON.
pub(crate) fn next(ws: &mut WsClient) -> Value {
    serde_json::from_str(&ws.recv_text()).unwrap()
}

fn result(id: u64, data: Value) -> Value {
    json!({"control": "rpc-result", "id": id, "data": data})
}

fn error_code(answer: &Value, id: u64) -> u64 {
    assert_eq!(answer["control"], "rpc-error", "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    answer["code"].as_u64().unwrap()
}

#[test]
fn an_answer_reaches_its_caller_alone() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |_| {});
    let mut first = socket(&server, "ann");
    let mut second = socket(&server, "ann");
    let data = json!({"cart": [1, "two", null], "n": -2.5});
    call(&mut first, 1, "whoami", &data);
    let answer = json!({"subject": "ann", "transport": "websocket", "data": data});
    assert_eq!(next(&mut first), result(1, answer));
    // The same subject's other socket got nothing of it: its first
    // message is the answer to its own call (with the same id).
    call(&mut second, 1, "whoami", &json!("b"));
    let answer = json!({"subject": "ann", "transport": "websocket", "data": "b"});
    assert_eq!(next(&mut second), result(1, answer));
    // A call without data is asked with null; an anonymous caller's
    // subject is null.
    let mut anonymous = WsClient::connect(server.addr, "/ws");
    anonymous.send_text(r#"{"type":"rpc","id":5,"method":"whoami"}"#);
    let answer = json!({"subject": null, "transport": "websocket", "data": null});
    assert_eq!(next(&mut anonymous), result(5, answer));
    let page = scrape_metrics(server.addr);
    assert!(
        page.contains("tether_hub_backend_decisions_total{hook=\"rpc\",outcome=\"allowed\"} 3"),
        "{page}"
    );
    // Closed first: the server's shutdown waits for no close handshake.
    // Closed first: a shutdown waits for open sockets to answer its close.
    drop((first, second, anonymous));
    server.shutdown();
}

#[test]
fn answers_come_back_by_id_in_the_order_the_backend_gives_them() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |_| {});
    let mut ws = socket(&server, "ann");
    call(&mut ws, 10, "held", &json!(null));
    backend.gate.until_waiting(1);
    call(&mut ws, 11, "whoami", &json!(1));
    assert_eq!(next(&mut ws)["id"], 11);
    // An id in flight is not taken twice.
    call(&mut ws, 10, "whoami", &json!(2));
    assert_eq!(error_code(&next(&mut ws), 10), 409);
    backend.gate.open();
    assert_eq!(next(&mut ws), result(10, json!("released")));
    drop(ws);
    server.shutdown();
}

#[test]
fn a_refusal_a_timeout_and_nonsense_are_errors_to_that_call_alone() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |_| {});
    let mut ws = socket(&server, "ann");
    call(&mut ws, 1, "refuse", &json!({}));
    let refused = next(&mut ws);
    assert_eq!(error_code(&refused, 1), 404);
    assert_eq!(refused["reason"], "no such method");
    call(&mut ws, 2, "garbage", &json!({}));
    let nonsense = next(&mut ws);
    assert_eq!(error_code(&nonsense, 2), 503);
    assert!(
        nonsense["reason"].as_str().unwrap().contains("malformed"),
        "{nonsense}"
    );
    call(&mut ws, 3, "slow", &json!({}));
    let late = next(&mut ws);
    assert_eq!(error_code(&late, 3), 504);
    // A call the hub cannot read is answered by its id, not asked.
    ws.send_text(r#"{"type":"rpc","id":4,"method":"no spaces"}"#);
    assert_eq!(error_code(&next(&mut ws), 4), 400);
    ws.send_text(r#"{"type":"rpc","id":9007199254740992,"method":"whoami"}"#);
    let unread = next(&mut ws);
    assert_eq!(unread["control"], "error", "{unread}");
    // The socket is still open, and its calls answered.
    call(&mut ws, 5, "whoami", &json!(5));
    assert_eq!(next(&mut ws)["control"], "rpc-result");
    drop(ws);
    server.shutdown();
}

#[test]
fn without_an_rpc_hook_every_call_is_refused_501() {
    let server = hub(None, |_| {});
    let mut ws = socket(&server, "ann");
    call(&mut ws, 1, "whoami", &json!(1));
    let answer = next(&mut ws);
    assert_eq!(error_code(&answer, 1), 501);
    assert!(
        answer["reason"].as_str().unwrap().contains("no rpc hook"),
        "{answer}"
    );
    drop(ws);
    server.shutdown();
}

#[test]
fn a_subject_calling_faster_than_its_rate_is_refused_429_over_all_its_sockets() {
    let backend = AppBackend::start();
    // Three calls, then (practically) none: the refill is a call every
    // thousand seconds.
    let server = hub(Some(&backend), |s| {
        s.rpc_rate = Some(PublishRate::new(0.001, 3.0))
    });
    let mut first = socket(&server, "ann");
    let mut second = socket(&server, "ann");
    for id in 1..=2 {
        call(&mut first, id, "whoami", &json!(id));
        assert_eq!(next(&mut first)["control"], "rpc-result");
    }
    call(&mut second, 3, "whoami", &json!(3));
    assert_eq!(next(&mut second)["control"], "rpc-result");
    // The subject's fourth call, from either socket, is refused, and so
    // is every one of a flood; the socket stays open.
    for id in 4..40 {
        call(&mut second, id, "whoami", &json!(id));
    }
    for id in 4..40 {
        assert_eq!(error_code(&next(&mut second), id), 429);
    }
    call(&mut first, 40, "whoami", &json!(40));
    assert_eq!(error_code(&next(&mut first), 40), 429);
    // Another subject has its own.
    let mut other = socket(&server, "bob");
    call(&mut other, 1, "whoami", &json!(1));
    assert_eq!(next(&mut other)["control"], "rpc-result");
    drop((first, second, other));
    server.shutdown();
}

#[test]
fn calls_in_flight_are_bounded_per_socket_and_a_caller_that_left_is_forgotten() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |s| s.max_rpc_in_flight = 2);
    let mut ws = socket(&server, "ann");
    call(&mut ws, 1, "held", &json!(null));
    call(&mut ws, 2, "held", &json!(null));
    call(&mut ws, 3, "held", &json!(null));
    let over = next(&mut ws);
    assert_eq!(error_code(&over, 3), 429);
    assert!(
        over["reason"].as_str().unwrap().contains("2 calls in flight"),
        "{over}"
    );
    // Another socket has its own bound; it leaves with its calls out.
    let mut leaving = socket(&server, "ann");
    call(&mut leaving, 1, "held", &json!(null));
    backend.gate.until_waiting(3);
    drop(leaving);
    backend.gate.open();
    let mut answered: Vec<u64> = (0..2).map(|_| next(&mut ws)["id"].as_u64().unwrap()).collect();
    answered.sort_unstable();
    assert_eq!(answered, [1, 2]);
    // With its calls answered, the socket calls again.
    call(&mut ws, 4, "whoami", &json!(4));
    assert_eq!(next(&mut ws)["id"], 4);
    drop(ws);
    server.shutdown();
}
