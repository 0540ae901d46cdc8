//! Helpers shared by the hub's integration tests: the hub wrapped to
//! announce each subscriber's loop, and reading a topic's backlog
//! through the server API.

#![allow(dead_code)] // each test file uses a part

pub(crate) mod announcing;

use std::net::SocketAddr;

use serde_json::Value;
use tether_testkit::request;

/// `GET /api/history?topic=TOPIC` with `token`: the answer as JSON.
pub(crate) fn history(addr: SocketAddr, topic: &str, token: &str) -> Value {
    let headers = format!("Authorization: Bearer {token}\r\n");
    let response = request(addr, "GET", &format!("/api/history?topic={topic}"), &headers, b"");
    serde_json::from_slice(&response.body).unwrap()
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
