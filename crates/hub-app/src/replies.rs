//! How the hub says what went wrong: to a WebSocket subscriber, and in
//! an HTTP answer.

use std::time::Duration;

use tether_hub::Error as HubError;
use tether_server::Response;

/// How long a client refused for now (429, 503) waits by default.
pub(crate) const SOON: Duration = Duration::from_secs(1);

/// Every refusal the hub answers is written here: its status and text,
/// and, when the client may try again later, `Retry-After` in whole
/// seconds (rounded up, at least one). Its CORS fields are added as it
/// leaves, by `Cors`, as every answer's are.
pub(crate) fn refuse(status: u16, text: impl Into<String>, retry_after: Option<Duration>) -> Response {
    refusal(Response::text(status, text), retry_after)
}

/// [`refuse`] for an answer already made (the server API's JSON, a long
/// poll's last answer): `Retry-After` added when the client may try
/// again later.
pub(crate) fn refusal(response: Response, retry_after: Option<Duration>) -> Response {
    match retry_after {
        Some(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.header("Retry-After", &seconds.max(1).to_string())
        }
        None => response,
    }
}

pub(super) fn error_response(e: &HubError) -> Response {
    let retry = (e.http_status() == 503).then_some(SOON);
    refuse(e.http_status(), format!("{e}\n"), retry)
}

/// 429 for a publish over the rate, with the whole seconds to wait.
pub(super) fn rate_limited(wait: Duration) -> Response {
    refuse(429, "publishing faster than the rate limit\n", Some(wait))
}

/// 503 with Retry-After for a request the server's shutdown cut short:
/// nothing it asked for was done.
pub(super) fn shutting_down() -> Response {
    refuse(503, "the server is shutting down\n", Some(SOON))
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
    use super::*;

    #[test]
    fn a_refusal_says_when_to_come_back_in_whole_seconds() {
        let retry = |r: &Response| {
            r.headers
                .iter()
                .find(|(n, _)| n == "Retry-After")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(retry(&refuse(403, "no\n", None)), None);
        assert_eq!(retry(&refuse(503, "later\n", Some(SOON))).as_deref(), Some("1"));
        let wait = Duration::from_millis(1200);
        assert_eq!(retry(&refuse(429, "slower\n", Some(wait))).as_deref(), Some("2"));
        assert_eq!(
            retry(&refuse(429, "slower\n", Some(Duration::ZERO))).as_deref(),
            Some("1")
        );
        assert_eq!(refuse(429, "slower\n", None).status, 429);
    }

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
