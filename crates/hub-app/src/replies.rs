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

/// 429 for a publish over the rate, with the whole seconds to wait.
pub(super) fn rate_limited(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Response::text(429, "publishing faster than the rate limit\n")
        .header("Retry-After", &seconds.max(1).to_string())
}

/// 503 with Retry-After for a request the server's shutdown cut short:
/// nothing it asked for was done.
pub(super) fn shutting_down() -> Response {
    Response::text(503, "the server is shutting down\n").header("Retry-After", "1")
}

/// A close reason from text: at most 123 bytes (what a close frame holds),
/// cut at a character boundary.
pub(super) fn close_reason(text: &str) -> &str {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::close_reason;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert_eq!(cut.len(), 122);
        assert!(long.starts_with(cut));
        assert_eq!(close_reason(&"a".repeat(200)).len(), 123);
    }
}
