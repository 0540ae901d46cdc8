//! The server API beside the hooks: it publishes nothing the publish hook
//! would refuse, and reads a topic the subscribe hook guards only with
//! rights to it.

use std::time::Duration;

use tether_auth::Keys;
use tether_hub::Decision;
use tether_hub_app::{Hook, HubAuth, Question};
use tether_testkit::request;

use crate::helpers::{Hub, TOKEN, get, publish, start_with, subscribe};
use crate::support::jwt::{sign, unix_now};

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
