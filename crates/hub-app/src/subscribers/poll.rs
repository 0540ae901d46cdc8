//! Long polls: the wait a poll asks for, and its answer.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tether_hub::{Event, EventId, Gap, Hub, json_string};
use tether_server::{Request, Response};

/// The wait a long poll asked for with `?timeout=` seconds: none asked is
/// `longest`, a number of seconds from 0 up is that wait, clamped to
/// `longest`. Anything else (empty, text, `-1`, `NaN`, `inf`, `1e999`,
/// which is infinite as a float) is refused with the message the client
/// gets in its 400: held for `longest` it would look like a poll that
/// worked. The value is compared as a float before it becomes a
/// `Duration`, whose conversion panics past `u64::MAX` seconds.
fn poll_timeout(asked: Option<&str>, longest: Duration) -> Result<Duration, String> {
    let Some(asked) = asked else {
        return Ok(longest);
    };
    match asked.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(if t >= longest.as_secs_f64() {
            longest
        } else {
            Duration::try_from_secs_f64(t).map_or(longest, |t| t.min(longest))
        }),
        _ => Err(format!(
            "timeout is a number of seconds, 0 or more (0 answers at once, more than {0} waits {0})\n",
            longest.as_secs_f64()
        )),
    }
}

/// How long a long poll waits: what its `?timeout=` asks for, up to
/// `longest`, or the 400 that refuses it; a HEAD wants GET's head, not
/// its wait, so it is answered as a poll whose wait is over.
pub(crate) fn wait(request: &Request<'_>, longest: Duration) -> Result<Duration, Response> {
    match poll_timeout(request.query_param("timeout").as_deref(), longest) {
        Ok(_) if request.method() == "HEAD" => Ok(Duration::ZERO),
        Ok(timeout) => Ok(timeout),
        Err(refused) => Err(Response::text(400, refused)),
    }
}

/// The id a long poller passes as `since` next time.
pub(crate) fn next_id(
    events: &[Arc<Event>],
    gap: Option<Gap>,
    since: Option<&str>,
    head: impl FnOnce() -> EventId,
) -> EventId {
    if let Some(last) = events.last() {
        return last.id();
    }
    if let Some(gap) = gap {
        return gap.resume;
    }
    since.and_then(EventId::parse).unwrap_or_else(head)
}

/// A long poll's answer:
/// `{"topic":"T","events":[...],"next":"ID","gap":null|{...}}`.
pub(crate) fn poll_response(
    topic: &str,
    events: &[Arc<Event>],
    gap: Option<Gap>,
    since: Option<&str>,
    next: EventId,
) -> Response {
    let mut body = String::with_capacity(64 + events.iter().map(|e| e.json().len() + 1).sum::<usize>());
    body.push_str("{\"topic\":");
    body.push_str(&json_string(topic));
    body.push_str(",\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(event.json());
    }
    let _ = write!(body, "],\"next\":\"{next}\",\"gap\":");
    match gap {
        Some(gap) => body.push_str(&gap.json(topic, since.unwrap_or_default())),
        None => body.push_str("null"),
    }
    body.push('}');
    Response::json(200, body).header("Cache-Control", "no-cache")
}

/// A long poll that nothing answered in time.
pub(crate) fn poll_timeout_response(hub: &Hub<super::SubKey>, topic: &str, since: Option<&str>) -> Response {
    let next = next_id(&[], None, since, || hub.head(topic));
    poll_response(topic, &[], None, since, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeout_is_clamped_to_the_longest_wait_and_refuses_what_is_not_a_wait() {
        let longest = Duration::from_secs(25);
        assert_eq!(poll_timeout(None, longest), Ok(longest));
        assert_eq!(
            poll_timeout(Some("1.5"), longest),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(poll_timeout(Some("0"), longest), Ok(Duration::ZERO));
        assert_eq!(poll_timeout(Some("25"), longest), Ok(longest));
        for above in ["26", "1e20", "18446744073709551616"] {
            assert_eq!(poll_timeout(Some(above), longest), Ok(longest), "{above}");
        }
        for odd in ["", "soon", "NaN", "inf", "-inf", "1e999", "-1", "-0.5", "0x10"] {
            let refused = poll_timeout(Some(odd), longest).expect_err(odd);
            assert!(
                refused.contains("timeout is a number of seconds"),
                "{odd}: {refused}"
            );
        }
    }

    #[test]
    fn the_next_id_is_the_last_event_the_gap_or_where_the_poll_was() {
        let since = EventId::ZERO.to_string();
        assert_eq!(next_id(&[], None, Some(&since), || unreachable!()), EventId::ZERO);
        assert_eq!(next_id(&[], None, None, || EventId::ZERO), EventId::ZERO);
        assert_eq!(
            next_id(&[], None, Some("not an id"), || EventId::ZERO),
            EventId::ZERO
        );
    }

    #[test]
    fn an_empty_answer_names_its_topic_and_where_to_poll_from() {
        let response = poll_response("a", &[], None, None, EventId::ZERO);
        assert_eq!(response.status, 200);
        let body = String::from_utf8(response.body).unwrap();
        assert_eq!(
            body,
            format!(
                "{{\"topic\":\"a\",\"events\":[],\"next\":\"{}\",\"gap\":null}}",
                EventId::ZERO
            )
        );
    }
}
