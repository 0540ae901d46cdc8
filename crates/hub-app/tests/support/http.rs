//! Requests as the hub's tests send them, each on a connection of its
//! own (closed after the answer), and the server API's JSON answers.

use std::net::SocketAddr;

use serde_json::Value;
use tether_testkit::{HttpConn, Response};

/// `METHOD target` with these header lines (each ending in CRLF) and
/// `body`, with `Host: test`: the host `HttpConn` and `SseClient` name,
/// so `http://test` is the server's own origin.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
    body: impl AsRef<[u8]>,
) -> Response {
    request_to(addr, "test", method, target, headers, body)
}

/// [`request`] naming `host` as the `Host`: for pages whose origin is
/// the address they were served from, as a browser's would be.
pub(crate) fn request_to(
    addr: SocketAddr,
    host: &str,
    method: &str,
    target: &str,
    headers: &str,
    body: impl AsRef<[u8]>,
) -> Response {
    let body = body.as_ref();
    // One write: a server that refuses on the head alone (a body too
    // large, say) and closes finds the whole request sent already.
    let mut bytes = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    let mut conn = HttpConn::connect(addr);
    conn.send(&bytes);
    conn.response()
}

/// The header line that presents `token` as a bearer credential.
pub(crate) fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// The body of a server API answer, which is JSON and says so.
pub(crate) fn json(response: &Response) -> Value {
    let body = String::from_utf8_lossy(&response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{body:?}"
    );
    serde_json::from_slice(&response.body).unwrap_or_else(|e| panic!("JSON ({e}): {body:?}"))
}

/// A hub the tests ask through its server API, with one bearer token.
pub(crate) trait Api {
    /// Where the hub listens.
    fn addr(&self) -> SocketAddr;

    /// The token the API requests present.
    fn token(&self) -> &str;

    /// [`request`] to the hub.
    fn request(&self, method: &str, target: &str, headers: &str, body: impl AsRef<[u8]>) -> Response {
        request(self.addr(), method, target, headers, body)
    }

    /// `POST target` with `body` and the token: the status and the JSON
    /// answer.
    fn post(&self, target: &str, body: &Value) -> (u16, Value) {
        let response = self.request("POST", target, &bearer(self.token()), body.to_string());
        (response.status, json(&response))
    }

    /// `GET target` with the token: the status and the JSON answer.
    fn get(&self, target: &str) -> (u16, Value) {
        let response = self.request("GET", target, &bearer(self.token()), "");
        (response.status, json(&response))
    }
}
