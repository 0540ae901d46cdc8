//! What the hub tells a multiplexed socket about its subscriptions, each
//! answer naming the topic it is about: `subscribed`, `refused` (with
//! the status the topic's own route would answer), `unsubscribed` (with
//! a reason when the hub ended it), `error`.

use tether_hub::json_string;

/// `{"control":"subscribed","topic":"T"}`, with `"by":"server"` when the
/// server subscribed the socket, and `"delta":true` when the events after
/// the first whole one come as deltas.
pub(crate) fn subscribed(topic: &str, by_server: bool, delta: bool) -> String {
    let by = if by_server { ",\"by\":\"server\"" } else { "" };
    let delta = if delta { ",\"delta\":true" } else { "" };
    format!(
        "{{\"control\":\"subscribed\",\"topic\":{}{by}{delta}}}",
        json_string(topic)
    )
}

/// `{"control":"refused","topic":"T","status":N,"error":"…"}`.
pub(crate) fn refused(topic: &str, status: u16, error: &str) -> String {
    format!(
        "{{\"control\":\"refused\",\"topic\":{},\"status\":{status},\"error\":{}}}",
        json_string(topic),
        json_string(error.trim_end())
    )
}

/// `{"control":"unsubscribed","topic":"T"}`, with `"reason":"…"` when the
/// hub ended the subscription.
pub(crate) fn unsubscribed(topic: &str, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!(
            "{{\"control\":\"unsubscribed\",\"topic\":{},\"reason\":{}}}",
            json_string(topic),
            json_string(reason)
        ),
        None => format!(
            "{{\"control\":\"unsubscribed\",\"topic\":{}}}",
            json_string(topic)
        ),
    }
}

/// `{"control":"error","error":"…"}`, with `"topic"` when the message
/// named one.
pub(crate) fn error(topic: Option<&str>, error: &str) -> String {
    match topic {
        Some(topic) => format!(
            "{{\"control\":\"error\",\"topic\":{},\"error\":{}}}",
            json_string(topic),
            json_string(error)
        ),
        None => format!("{{\"control\":\"error\",\"error\":{}}}", json_string(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_json_that_names_the_topic() {
        assert_eq!(
            subscribed("a", false, false),
            r#"{"control":"subscribed","topic":"a"}"#
        );
        assert_eq!(
            subscribed("a", false, true),
            r#"{"control":"subscribed","topic":"a","delta":true}"#
        );
        assert_eq!(
            subscribed("a", true, false),
            r#"{"control":"subscribed","topic":"a","by":"server"}"#
        );
        assert_eq!(
            refused("a\"", 403, "no\n"),
            r#"{"control":"refused","topic":"a\"","status":403,"error":"no"}"#
        );
        assert_eq!(
            unsubscribed("a", None),
            r#"{"control":"unsubscribed","topic":"a"}"#
        );
        assert_eq!(
            unsubscribed("a", Some("topic no longer granted")),
            r#"{"control":"unsubscribed","topic":"a","reason":"topic no longer granted"}"#
        );
        assert_eq!(error(None, "x"), r#"{"control":"error","error":"x"}"#);
        assert_eq!(
            error(Some("t"), "x"),
            r#"{"control":"error","topic":"t","error":"x"}"#
        );
    }
}
