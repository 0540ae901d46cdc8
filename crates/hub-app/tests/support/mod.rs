//! Helpers shared by the hub's integration tests: the hub wrapped to
//! announce each subscriber's loop, requests on a connection of their
//! own (the server API's among them), signed tokens, a server running
//! for one test, an application backend for the hooks, and reading a
//! topic's backlog through the server API.

// Each test file uses a part.
#![allow(dead_code)]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod announcing;
pub(crate) mod backend;
pub(crate) mod http;
pub(crate) mod jwt;
pub(crate) mod running;

use std::net::SocketAddr;

use serde_json::Value;

use self::http::{bearer, json, request};

/// `GET /api/history?topic=TOPIC` with `token`: the answer as JSON.
pub(crate) fn history(addr: SocketAddr, topic: &str, token: &str) -> Value {
    let response = request(
        addr,
        "GET",
        &format!("/api/history?topic={topic}"),
        &bearer(token),
        "",
    );
    json(&response)
}

/// The data of each event in a page of history, in order.
pub(crate) fn datas(page: &Value) -> Vec<&str> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect()
}
