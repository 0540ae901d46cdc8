//! `POST /rpc`: the same calls beside an event stream, with a publish's
//! credentials (a token, the connect hook's answer, none), answered with
//! the result or the error as JSON and the error's code as the status.

use serde_json::{Value, json};
use tether_hooks::HookKind;
use tether_hub_app::PublishRate;
use tether_testkit::{Response, request};

use crate::backend::AppBackend;
use crate::support::jwt::rights;
use crate::{SECRET, call, hub, hub_with, next, socket};

fn post(server: &tether_testkit::TestServer, headers: &str, body: &Value) -> Response {
    request(server.addr, "POST", "/rpc", headers, body.to_string().as_bytes())
}

fn bearer(subject: &str) -> String {
    format!(
        "Authorization: Bearer {}\r\n",
        rights(SECRET, subject, &[], &[], 3600)
    )
}

fn body(answer: &Response) -> Value {
    assert_eq!(answer.header("content-type"), Some("application/json"));
    serde_json::from_slice(&answer.body).unwrap()
}

#[test]
fn a_call_over_http_is_answered_with_its_result_as_json() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |_| {});
    let data = json!({"q": ["a", 1]});
    let answer = post(
        &server,
        &bearer("ann"),
        &json!({"method": "whoami", "data": data}),
    );
    assert_eq!(answer.status, 200);
    let expected = json!({"data": {"subject": "ann", "transport": "http", "data": data}});
    assert_eq!(body(&answer), expected);
    // Anonymous, without data.
    let answer = post(&server, "", &json!({"method": "whoami"}));
    let expected = json!({"data": {"subject": null, "transport": "http", "data": null}});
    assert_eq!((answer.status, body(&answer)), (200, expected));
    server.shutdown();
}

#[test]
fn errors_over_http_are_their_code_as_the_status() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |s| {
        s.trusted_origins = vec!["https://app.example".into()]
    });
    let ann = bearer("ann");
    let answer = post(&server, &ann, &json!({"method": "refuse"}));
    let expected = json!({"code": 404, "reason": "no such method"});
    assert_eq!((answer.status, body(&answer)), (404, expected));
    let answer = post(&server, &ann, &json!({"method": "garbage"}));
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(body(&answer)["code"], 503);
    let answer = post(&server, &ann, &json!({"method": "slow"}));
    assert_eq!((answer.status, body(&answer)["code"].clone()), (504, json!(504)));
    let answer = post(&server, &ann, &json!({"method": "m", "topic": "t"}));
    assert_eq!(answer.status, 400);
    assert!(body(&answer)["reason"].as_str().unwrap().contains("\"topic\""));
    // What a publish would be refused, before any question.
    let answer = request(server.addr, "GET", "/rpc", &ann, b"");
    assert_eq!(answer.status, 405);
    let answer = post(
        &server,
        "Authorization: Bearer not.a.token\r\n",
        &json!({"method": "whoami"}),
    );
    assert_eq!(answer.status, 401);
    let foreign = format!("{ann}Origin: https://elsewhere.example\r\n");
    let answer = post(&server, &foreign, &json!({"method": "whoami"}));
    assert_eq!(answer.status, 403);
    let trusted = format!("{ann}Origin: https://app.example\r\n");
    let answer = post(&server, &trusted, &json!({"method": "whoami"}));
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let answer = request(
        server.addr,
        "POST",
        "/rpc?ticket=t",
        &ann,
        b"{\"method\":\"whoami\"}",
    );
    assert_eq!(answer.status, 400);
    server.shutdown();
    let server = hub(None, |_| {});
    let answer = post(&server, &ann, &json!({"method": "whoami"}));
    assert_eq!((answer.status, body(&answer)["code"].clone()), (501, json!(501)));
    server.shutdown();
}

#[test]
fn the_connect_hook_names_an_http_caller_that_presents_nothing() {
    let backend = AppBackend::start();
    let server = hub_with(Some(&backend), &[HookKind::Connect, HookKind::Rpc], |_| {});
    let answer = post(
        &server,
        "Cookie: session=carol\r\n",
        &json!({"method": "whoami", "data": 1}),
    );
    let expected = json!({"data": {"subject": "carol", "transport": "http", "data": 1}});
    assert_eq!((answer.status, body(&answer)), (200, expected));
    // A page elsewhere cannot call with the user's cookie: the backend
    // is told of none, and refuses.
    let headers = "Cookie: session=carol\r\nOrigin: https://elsewhere.example\r\n";
    let answer = post(&server, headers, &json!({"method": "whoami"}));
    assert_eq!(answer.status, 401);
    server.shutdown();
}

#[test]
fn a_subjects_rate_counts_its_calls_over_http_and_its_sockets() {
    let backend = AppBackend::start();
    let server = hub(Some(&backend), |s| {
        s.rpc_rate = Some(PublishRate::new(0.001, 2.0))
    });
    let ann = bearer("ann");
    assert_eq!(post(&server, &ann, &json!({"method": "whoami"})).status, 200);
    let mut ws = socket(&server, "ann");
    call(&mut ws, 1, "whoami", &json!(1));
    assert_eq!(next(&mut ws)["control"], "rpc-result");
    let answer = post(&server, &ann, &json!({"method": "whoami"}));
    assert_eq!(answer.status, 429);
    assert!(answer.header("retry-after").is_some());
    call(&mut ws, 2, "whoami", &json!(2));
    assert_eq!(next(&mut ws)["code"], 429);
    drop(ws);
    server.shutdown();
}
