//! How the hub says what went wrong: to a WebSocket subscriber, and in
//! an HTTP answer.

use tether_hub::{Error as HubError, json_string};
use tether_server::{ConnId, Ctx, Message, Response};

/// `{"control":"error","error":"..."}` to a WebSocket subscriber.
pub(super) fn send_error<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, message: &str) {
    let text = format!("{{\"control\":\"error\",\"error\":{}}}", json_string(message));
    ctx.send(conn, &Message::text(text));
}

pub(super) fn error_response(e: &HubError) -> Response {
    let response = Response::text(e.http_status(), format!("{e}\n"));
    if e.http_status() == 503 {
        response.header("Retry-After", "1")
    } else {
        response
    }
}
