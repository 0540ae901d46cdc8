//! Delta updates (a namespace with `delta=on`) end to end, over real
//! sockets: a subscription that asks for deltas gets its first event
//! whole, then each event that directly follows the one it had as a
//! Fossil delta against it; after a resume or a gap, whole again; one
//! that did not ask, or of a topic outside the namespace, gets every
//! event whole. The deltas are applied here with `tether-delta`, and
//! what they build is checked against what was published.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use serde_json::{Value, json};
use tether_hub_app::{HubSettings, HubShared, Namespace};
use tether_server::Handshake;
use tether_testkit::{SseClient, TestServer, WsClient, config, request};

const TOKEN: &str = "delta-publish-token";

/// The hub on `loops` loops: `state.*` sends deltas, `plain.*` does not;
/// a topic keeps `backlog` events.
fn start(loops: usize, backlog: usize) -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings.hub.max_backlog_events = backlog;
    for spec in ["state.* publish=backend delta=on", "plain.*"] {
        settings.namespaces.push(spec.parse::<Namespace>().unwrap());
    }
    let shared = HubShared::new(settings, loops);
    TestServer::start_loops(config(), Handshake::new(), loops, |i| shared.app(i))
}

/// A device's state, some 2 KB of JSON of which a few fields change with
/// `n`.
fn state(n: u64) -> String {
    let readings: Vec<Value> = (0..24)
        .map(|i| json!({ "sensor": format!("pressure-{i}"), "unit": "kPa", "value": if i == n % 24 { 100 + n } else { 100 }, "ok": true }))
        .collect();
    json!({
        "device": "pump-7", "site": "north hall", "firmware": "4.2.1",
        "seq": n, "temperature": 20.5 + n as f64 / 10.0, "status": if n.is_multiple_of(2) { "ok" } else { "warm" },
        "readings": readings,
    })
    .to_string()
}

fn publish(server: &TestServer, topic: &str, data: &str) -> String {
    let answer = request(
        server.addr,
        "POST",
        &format!("/topics/{topic}"),
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        data.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// What a subscriber that applies deltas keeps of one topic: the last
/// event's id and data.
#[derive(Default)]
struct Follower {
    last: Option<(String, String)>,
    deltas: usize,
    wholes: usize,
}

impl Follower {
    /// Takes one JSON event (whole, or a delta against the last one):
    /// its id and data.
    fn take(&mut self, event: &Value) -> (String, String) {
        let id = event["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an event: {event}"))
            .to_owned();
        let data = if let Some(delta) = event["delta"].as_str() {
            assert!(event.get("data").is_none(), "a delta or the data: {event}");
            let (last_id, last_data) = self.last.as_ref().expect("a delta follows an event");
            assert_eq!(
                event["base"].as_str(),
                Some(last_id.as_str()),
                "its base is the last event"
            );
            let built = tether_delta::apply(last_data.as_bytes(), delta.as_bytes(), 1 << 20).unwrap();
            self.deltas += 1;
            String::from_utf8(built).unwrap()
        } else {
            self.wholes += 1;
            event["data"]
                .as_str()
                .unwrap_or_else(|| panic!("data: {event}"))
                .to_owned()
        };
        self.last = Some((id.clone(), data.clone()));
        (id, data)
    }
}

struct Mux(WsClient);

impl Mux {
    fn open(server: &TestServer) -> Mux {
        Mux(WsClient::connect(server.addr, "/ws"))
    }

    fn next(&mut self) -> Value {
        serde_json::from_str(&self.0.recv_text()).unwrap()
    }

    /// Subscribes (with `extra` members) and reads `subscribed`: it.
    fn subscribe(&mut self, topic: &str, extra: Value) -> Value {
        let mut message = json!({ "type": "subscribe", "topic": topic });
        message
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.0.send_text(&message.to_string());
        let answer = self.next();
        assert_eq!(answer["control"], "subscribed", "{answer}");
        answer
    }
}

#[test]
fn the_first_event_is_whole_and_those_that_follow_are_deltas() {
    let server = start(1, 1000);
    // `subscribed` says whether deltas will come.
    let mut delta = Mux::open(&server);
    let told = delta.subscribe("state.pump", json!({ "delta": true }));
    assert_eq!(told["delta"], true, "{told}");
    let mut plain = Mux::open(&server);
    let told = plain.subscribe("state.pump", json!({}));
    assert_eq!(told.get("delta"), None, "{told}");
    // Asked, but outside the namespace: whole.
    let mut outside = Mux::open(&server);
    let told = outside.subscribe("plain.pump", json!({ "delta": true }));
    assert_eq!(told.get("delta"), None, "{told}");
    let mut follower = Follower::default();
    for n in 1..=5 {
        let id = publish(&server, "state.pump", &state(n));
        publish(&server, "plain.pump", &state(n));
        let got = delta.next();
        assert_eq!(got.get("data").is_some(), n == 1, "only the first whole: {got}");
        assert_eq!(follower.take(&got), (id.clone(), state(n)));
        let whole = plain.next();
        assert_eq!(
            (whole["id"].as_str(), whole["data"].as_str()),
            (Some(id.as_str()), Some(state(n).as_str()))
        );
        assert_eq!(outside.next()["data"].as_str(), Some(state(n).as_str()));
        // What the delta saves on a 2 KB state with a few fields changed.
        if n > 1 {
            let (sent, whole) = (got.to_string().len(), whole.to_string().len());
            assert!(sent * 5 < whole, "{sent} bytes for {whole}");
        }
    }
    assert_eq!((follower.wholes, follower.deltas), (1, 4));
}

#[test]
fn a_resume_starts_whole_and_the_live_events_after_it_are_deltas() {
    let server = start(1, 1000);
    let ids: Vec<String> = (1..=3)
        .map(|n| publish(&server, "state.resume", &state(n)))
        .collect();
    let mut mux = Mux::open(&server);
    mux.subscribe("state.resume", json!({ "delta": true, "since": ids[0] }));
    let mut follower = Follower::default();
    // The replay: whole, exactly what follows the id.
    for (n, id) in (2..=3).zip(&ids[1..]) {
        let got = mux.next();
        assert!(got.get("data").is_some(), "a replay is whole: {got}");
        assert_eq!(follower.take(&got), (id.clone(), state(n)));
    }
    // Live: a delta against the replay's last event.
    let id = publish(&server, "state.resume", &state(4));
    let got = mux.next();
    assert_eq!(got["base"].as_str(), Some(ids[2].as_str()), "{got}");
    assert_eq!(follower.take(&got), (id, state(4)));
    // Resubscribed from the last id on another socket (a reconnect):
    // whole first again, then deltas.
    let mut again = Mux::open(&server);
    let last = follower.last.clone().unwrap().0;
    again.subscribe("state.resume", json!({ "delta": true, "since": last }));
    let mut second = Follower::default();
    for n in 5..=6 {
        let id = publish(&server, "state.resume", &state(n));
        assert_eq!(follower.take(&mux.next()), (id.clone(), state(n)));
        assert_eq!(second.take(&again.next()), (id, state(n)));
    }
    assert_eq!((second.wholes, second.deltas), (1, 1));
    assert_eq!((follower.wholes, follower.deltas), (2, 3));
}

#[test]
fn after_a_gap_the_events_are_whole() {
    // Three events kept: a resume from the first of six has a gap.
    let server = start(1, 3);
    let ids: Vec<String> = (1..=6)
        .map(|n| publish(&server, "state.gap", &state(n)))
        .collect();
    let mut mux = Mux::open(&server);
    mux.subscribe("state.gap", json!({ "delta": true, "since": ids[0] }));
    let gap = mux.next();
    assert_eq!(gap["control"], "gap", "{gap}");
    let mut follower = Follower::default();
    for n in 4..=6 {
        let got = mux.next();
        assert!(got.get("data").is_some(), "after a gap, whole: {got}");
        assert_eq!(follower.take(&got).1, state(n));
    }
    let id = publish(&server, "state.gap", &state(7));
    let got = mux.next();
    assert!(got.get("delta").is_some(), "{got}");
    assert_eq!(follower.take(&got), (id, state(7)));
}

#[test]
fn on_two_loops_every_subscriber_gets_the_same_delta() {
    let server = start(2, 1000);
    // Enough sockets that both loops have some.
    let mut muxes: Vec<Mux> = (0..6).map(|_| Mux::open(&server)).collect();
    for mux in &mut muxes {
        mux.subscribe("state.loops", json!({ "delta": true }));
    }
    let mut followers: Vec<Follower> = muxes.iter().map(|_| Follower::default()).collect();
    for n in 1..=4 {
        let id = publish(&server, "state.loops", &state(n));
        let got: Vec<Value> = muxes.iter_mut().map(Mux::next).collect();
        for (follower, event) in followers.iter_mut().zip(&got) {
            assert_eq!(follower.take(event), (id.clone(), state(n)));
        }
        // One delta per event, the same bytes for all.
        assert!(got.iter().all(|e| *e == got[0]), "{got:?}");
    }
    assert!(followers.iter().all(|f| (f.wholes, f.deltas) == (1, 3)));
    let metrics = request(
        server.addr,
        "GET",
        "/metrics",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        b"",
    );
    let body = String::from_utf8_lossy(&metrics.body);
    assert!(body.contains("tether_hub_deltas_sent_total 18\n"), "{body}");
}

#[test]
fn a_multi_topic_stream_that_asks_gets_deltas_and_its_cursor_resumes_whole() {
    let server = start(1, 1000);
    let stream = |headers: &str| {
        let client = SseClient::connect(
            server.addr,
            "/events?topic=state.sse&topic=plain.sse&delta=1",
            headers,
        );
        assert_eq!(client.response.status, 200);
        client
    };
    let mut sse = stream("");
    let mut follower = Follower::default();
    for n in 1..=3 {
        let id = publish(&server, "state.sse", &state(n));
        let event = sse.next_event();
        let json: Value = serde_json::from_str(event.data()).unwrap();
        assert_eq!(event.event_type(), "message");
        assert_eq!(json.get("delta").is_some(), n > 1, "{json}");
        assert_eq!(follower.take(&json), (id, state(n)));
        assert!(event.last_event_id().starts_with('~'), "a cursor");
    }
    // The topic outside the namespace: whole, on the same stream.
    publish(&server, "plain.sse", &state(9));
    let event = sse.next_event();
    let json: Value = serde_json::from_str(event.data()).unwrap();
    assert_eq!(json["data"].as_str(), Some(state(9).as_str()));
    let cursor = event.last_event_id().to_owned();
    // Reconnected from the cursor: the next event whole, then deltas.
    drop(sse);
    let mut again = stream(&format!("Last-Event-ID: {cursor}\r\n"));
    let mut second = Follower::default();
    for n in 4..=5 {
        let id = publish(&server, "state.sse", &state(n));
        let json: Value = serde_json::from_str(again.next_event().data()).unwrap();
        assert_eq!(json.get("data").is_some(), n == 4, "{json}");
        assert_eq!(second.take(&json), (id, state(n)));
    }
    // Without `delta=1`: whole.
    let mut plain = SseClient::connect(server.addr, "/events?topic=state.sse", "");
    let id = publish(&server, "state.sse", &state(6));
    let json: Value = serde_json::from_str(plain.next_event().data()).unwrap();
    assert_eq!(
        (json["id"].as_str(), json["data"].as_str()),
        (Some(id.as_str()), Some(state(6).as_str()))
    );
}

#[test]
fn a_one_topic_socket_that_asks_gets_deltas_and_a_raw_one_whole_data() {
    let server = start(1, 1000);
    let mut json = WsClient::connect(server.addr, "/topics/state.one/ws?delta=1");
    let mut raw = WsClient::connect(server.addr, "/topics/state.one/ws?format=raw&delta=1");
    // Both subscribed once a witness has the first event.
    let mut witness = SseClient::connect(server.addr, "/topics/state.one/events", "");
    assert_eq!(witness.response.status, 200);
    let mut follower = Follower::default();
    for n in 1..=3 {
        let id = publish(&server, "state.one", &state(n));
        assert_eq!(witness.next_event().data(), state(n));
        let got: Value = serde_json::from_str(&json.recv_text()).unwrap();
        assert_eq!(got.get("delta").is_some(), n > 1, "{got}");
        assert_eq!(follower.take(&got), (id, state(n)));
        assert_eq!(raw.recv_text(), state(n), "the raw socket: the data");
    }
}
