//! What every subject's tests share: a hub (tokens verified, `room.*`
//! private), a multiplexed socket that reads JSON, publishing over HTTP.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tether_auth::{Keys, Private, Validation};
use tether_hub_app::{HubAuth, HubSettings, HubShared};
use tether_server::{CloseCode, Handshake};
use tether_testkit::{TestServer, WsClient, config, request};
use tether_ws::Event;

use crate::support::jwt::{rights, sign, unix_now};

pub(crate) const TOKEN: &str = "multiplex-test-publish-token";
pub(crate) const SECRET: &[u8] = b"a multiplexing test secret, 32 b";

/// Settings with the publish token, tokens verified, `room.*` private.
pub(crate) fn settings() -> HubSettings {
    let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
    auth.private = Private::new(["room.*"]).unwrap();
    // A token expires when it says, for the expiry tests.
    auth.validation = Validation::new().leeway(0);
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.auth = Some(auth);
    settings
}

/// A hub on `loops` event loops.
pub(crate) struct Hub {
    pub(crate) server: TestServer,
}

impl Hub {
    pub(crate) fn start(settings: HubSettings, loops: usize) -> Hub {
        let shared = HubShared::new(settings, loops);
        let server = TestServer::start_loops(config(), Handshake::new(), loops, |i| shared.app(i));
        Hub { server }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Publishes `data` to `topic` with the publish token: its id.
    pub(crate) fn publish(&self, topic: &str, data: &str) -> String {
        let answer = request(
            self.addr(),
            "POST",
            &format!("/topics/{topic}"),
            &format!("Authorization: Bearer {TOKEN}\r\n"),
            data.as_bytes(),
        );
        assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/PATH` with the publish token: the status and the body.
    pub(crate) fn api(&self, path: &str, body: &Value) -> (u16, Value) {
        let answer = request(
            self.addr(),
            "POST",
            &format!("/api/{path}"),
            &format!("Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"),
            body.to_string().as_bytes(),
        );
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, body)
    }

    /// `GET TARGET` with the publish token: the status and the body.
    pub(crate) fn api_get(&self, target: &str) -> (u16, Value) {
        let answer = request(
            self.addr(),
            "GET",
            target,
            &format!("Authorization: Bearer {TOKEN}\r\n"),
            b"",
        );
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, body)
    }

    /// A multiplexed socket with no credential.
    pub(crate) fn socket(&self) -> Mux {
        Mux(WsClient::connect(self.addr(), "/ws"))
    }

    /// A multiplexed socket with `token` in `Authorization`.
    pub(crate) fn socket_with(&self, token: &str) -> Mux {
        let header = format!("Authorization: Bearer {token}\r\n");
        Mux(WsClient::connect_with(self.addr(), "/ws", &header))
    }
}

/// A token for `subject` that may subscribe to `subscribe` and publish to
/// `publish`, good for ten minutes.
pub(crate) fn token(subject: &str, subscribe: &[&str], publish: &[&str]) -> String {
    rights(SECRET, subject, subscribe, publish, 600)
}

/// A token for `subject` that expires `secs` from now (no leeway is set).
pub(crate) fn token_expiring(subject: &str, subscribe: &[&str], secs: u64) -> String {
    sign(
        SECRET,
        &json!({ "sub": subject, "exp": unix_now() + secs, "tether": { "sub": subscribe } }),
    )
}

/// A multiplexed socket that speaks JSON.
pub(crate) struct Mux(pub(crate) WsClient);

impl Mux {
    pub(crate) fn send(&mut self, message: &Value) {
        self.0.send_text(&message.to_string());
    }

    pub(crate) fn subscribe(&mut self, topic: &str) {
        self.send(&json!({ "type": "subscribe", "topic": topic }));
    }

    pub(crate) fn subscribe_since(&mut self, topic: &str, since: &str) {
        self.send(&json!({ "type": "subscribe", "topic": topic, "since": since }));
    }

    pub(crate) fn unsubscribe(&mut self, topic: &str) {
        self.send(&json!({ "type": "unsubscribe", "topic": topic }));
    }

    /// The next text message as JSON (pings skipped).
    pub(crate) fn next(&mut self) -> Value {
        loop {
            match self.0.next_event() {
                Some(Event::Message(m)) => {
                    let text = m.into_text().expect("a text message");
                    return serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
                }
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next message's text as it came.
    pub(crate) fn next_text(&mut self) -> String {
        self.0.recv_text()
    }

    /// Reads `{"control":"subscribed","topic":T}` next.
    pub(crate) fn subscribed(&mut self, topic: &str) {
        let answer = self.next();
        assert_eq!(
            (answer["control"].as_str(), answer["topic"].as_str()),
            (Some("subscribed"), Some(topic)),
            "{answer}"
        );
    }

    /// Subscribes to each of `topics`, in order, and reads each answer.
    pub(crate) fn follow(&mut self, topics: &[&str]) {
        for topic in topics {
            self.subscribe(topic);
            self.subscribed(topic);
        }
    }

    /// Reads a `refused` answer for `topic` next: its status and error.
    pub(crate) fn refused(&mut self, topic: &str) -> (u64, String) {
        let answer = self.next();
        assert_eq!(
            (answer["control"].as_str(), answer["topic"].as_str()),
            (Some("refused"), Some(topic)),
            "{answer}"
        );
        (
            answer["status"].as_u64().unwrap(),
            answer["error"].as_str().unwrap().to_owned(),
        )
    }

    /// Reads the next event (a message with an id): its topic and data.
    pub(crate) fn event(&mut self) -> (String, String) {
        let event = self.next();
        assert!(event["id"].is_string(), "an event: {event}");
        (
            event["topic"].as_str().unwrap().to_owned(),
            event["data"].as_str().unwrap().to_owned(),
        )
    }

    /// Reads the server's close frame next (messages before it are
    /// returned).
    pub(crate) fn closed(&mut self) -> (Vec<String>, CloseCode, String) {
        let (texts, frame) = self.0.texts_then_close();
        (texts, frame.code, frame.reason.to_string())
    }
}
