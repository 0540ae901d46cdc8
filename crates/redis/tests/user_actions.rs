//! The server API's user actions across two hub nodes (each on two event
//! loops) bridged by one real `redis-server`: `POST /api/disconnect`,
//! `/api/unsubscribe` and `/api/refresh` sent to one node reach the
//! user's connections on the other, through the control stream.
//!
//! Skipped (with a printed reason) when `redis-server` is not installed,
//! unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{RedisServer, available, wait_until};
use tether_apps::{HubAuth, HubSettings, HubShared};
use tether_auth::{Keys, Validation};
use tether_redis::{RedisBridge, RedisConfig};
use tether_server::{Cluster, Handle, Handshake};
use tether_testkit::{HttpConn, SseClient, WsClient, config};

const SECRET: &[u8] = b"a cross-node users secret, 32 b!";
const TOKEN: &str = "nodes-publish-token";
const LOOPS: usize = 2;

/// A hub node on two loops, bridged to Redis.
struct HubNode {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
    bridge: RedisBridge,
}

impl HubNode {
    fn start(redis: &RedisServer) -> HubNode {
        let mut auth = HubAuth::new(Keys::from_secret(SECRET).unwrap());
        auth.query = true;
        auth.validation = Validation::new().leeway(0);
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.auth = Some(auth);
        let mut redis_config = RedisConfig::new(redis.url()).backlog(&settings.hub);
        redis_config.prefix = "users-test:".to_owned();
        redis_config.presence_poll = Duration::from_millis(100);
        let bridge = RedisBridge::new(redis_config).unwrap();
        let shared = HubShared::new(settings, LOOPS);
        let cluster = Cluster::bind(config(), Handshake::new(), LOOPS, |i| {
            shared.app_with_broker(i, Box::new(bridge.broker()))
        })
        .expect("bind");
        let poster = cluster.poster();
        bridge.start(move |to, message| poster.post(to, message)).unwrap();
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        let thread = Some(thread::spawn(move || cluster.run()));
        let node = HubNode {
            addr,
            handle,
            thread,
            bridge,
        };
        wait_until("the bridge to be up", || {
            node.bridge.status().state == tether_hub::BrokerState::Up
        });
        node
    }

    fn post(&self, target: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let mut conn = HttpConn::connect(self.addr);
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\n\r\n",
            body.len()
        );
        conn.send(head.as_bytes());
        conn.send(body.as_bytes());
        let response = conn.response();
        (response.status, serde_json::from_slice(&response.body).unwrap())
    }

    /// The members of `topic` this node knows of (its own and, through
    /// Redis, the other's).
    fn members(&self, topic: &str) -> Vec<String> {
        let mut conn = HttpConn::connect(self.addr);
        let head = format!(
            "GET /api/presence?topic={topic} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\n\r\n"
        );
        conn.send(head.as_bytes());
        let response = conn.response();
        assert_eq!(response.status, 200);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for HubNode {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.bridge.shutdown();
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn jwt(sub: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": sub, "exp": unix_now() + 600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn sse(node: &HubNode, topic: &str, sub: &str) -> SseClient {
    let auth = format!("Authorization: Bearer {}\r\n", jwt(sub));
    let client = SseClient::connect(node.addr, &format!("/topics/{topic}/events"), &auth);
    assert_eq!(client.response.status, 200);
    client
}

fn ws(node: &HubNode, topic: &str, sub: &str) -> WsClient {
    WsClient::connect(node.addr, &format!("/topics/{topic}/ws?token={}", jwt(sub)))
}

/// Waits until each node knows every one of `members` on `topic`.
fn wait_for_members(nodes: &[&HubNode], topic: &str, members: &[&str]) {
    wait_until("the members to be known on every node", || {
        nodes.iter().all(|node| {
            let known = node.members(topic);
            members.iter().all(|m| known.iter().any(|k| k == m))
        })
    });
}

#[test]
fn a_disconnect_on_one_node_closes_the_users_connections_on_the_other() {
    if !available("a_disconnect_on_one_node_closes_the_users_connections_on_the_other") {
        return;
    }
    let redis = RedisServer::start();
    let a = HubNode::start(&redis);
    let b = HubNode::start(&redis);
    let mut here = ws(&a, "room", "alice");
    let mut there = ws(&b, "room", "alice");
    let mut stream = sse(&b, "lobby", "alice");
    let mut bystander = ws(&b, "room", "bob");
    wait_for_members(&[&a, &b], "room", &["alice", "bob"]);
    wait_for_members(&[&a, &b], "lobby", &["alice"]);

    let (status, body) = a.post(
        "/api/disconnect",
        &json!({ "user": "alice", "code": 4003, "reason": "gone everywhere" }),
    );
    assert_eq!(status, 200, "{body}");
    // This node's own connections are what it counts.
    assert_eq!(body["closed"], 1, "{body}");
    let close = here.recv_close();
    assert_eq!((close.code.0, close.reason.as_str()), (4003, "gone everywhere"));
    let close = there.recv_close();
    assert_eq!((close.code.0, close.reason.as_str()), (4003, "gone everywhere"));
    let rest = stream.read_to_end();
    assert!(stream.is_ended());
    assert_eq!(rest.last().map(|e| e.event_type()), Some("disconnect"));
    // Bob stays; alice is gone from both nodes' lists.
    wait_until("alice to leave everywhere", || {
        a.members("room") == ["bob"] && b.members("room") == ["bob"]
    });
    let (status, _) = a.post(
        "/api/publish",
        &json!({ "items": [{ "topic": "room", "data": "still there" }] }),
    );
    assert_eq!(status, 200);
    let event: Value = serde_json::from_str(&bystander.recv_text()).unwrap();
    assert_eq!(event["data"], "still there");
}

#[test]
fn unsubscribe_and_refresh_reach_the_other_node() {
    if !available("unsubscribe_and_refresh_reach_the_other_node") {
        return;
    }
    let redis = RedisServer::start();
    let a = HubNode::start(&redis);
    let b = HubNode::start(&redis);
    let mut in_room = ws(&b, "room", "carol");
    let mut in_hall = ws(&b, "hall", "carol");
    wait_for_members(&[&a, &b], "room", &["carol"]);
    wait_for_members(&[&a, &b], "hall", &["carol"]);

    let (status, body) = a.post("/api/unsubscribe", &json!({ "user": "carol", "topic": "room" }));
    assert_eq!((status, &body["closed"]), (200, &json!(0)), "{body}");
    let close = in_room.recv_close();
    assert_eq!(
        (close.code.0, close.reason.as_str()),
        (1008, "unsubscribed by the server")
    );

    // Carol's token is good for ten minutes; the refresh ends it sooner.
    let soon = unix_now() + 5;
    let (status, body) = a.post("/api/refresh", &json!({ "user": "carol", "expires_at": soon }));
    assert_eq!((status, &body["refreshed"]), (200, &json!(0)), "{body}");
    let warning: Value = serde_json::from_str(&in_hall.recv_text()).unwrap();
    assert_eq!(warning["type"], "auth-expiring", "{warning}");
    let close = in_hall.recv_close();
    assert_eq!((close.code.0, close.reason.as_str()), (1008, "token expired"));
    assert!(unix_now() >= soon);
}
