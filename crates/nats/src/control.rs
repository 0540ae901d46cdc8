//! User actions between nodes (`POST /api/disconnect`, `/api/unsubscribe`,
//! `/api/refresh`): each action taken on a node is published on the core
//! NATS subject `PREFIX.control` (outside the stream's `PREFIX.topic.*`)
//! as a small JSON object naming the node; every node subscribes to it
//! and relays the other nodes' actions to its loops. Core NATS delivers
//! at most once: an action published while a node is disconnected does
//! not reach that node.

use std::sync::Arc;

use serde_json::{Value, json};
use tether_hub::{UserAction, is_valid_topic};

/// The control subject.
pub(crate) fn subject(prefix: &str) -> String {
    format!("{prefix}.control")
}

/// The message of `action`, taken on `node`.
pub(crate) fn encode(node: &str, action: &UserAction) -> Option<String> {
    let value = match action {
        UserAction::Disconnect { user, code, reason } => json!({
            "node": node, "kind": "disconnect", "user": &**user, "code": code, "reason": reason,
        }),
        UserAction::Unsubscribe {
            user,
            topic,
            code,
            reason,
        } => json!({
            "node": node, "kind": "unsubscribe", "user": &**user, "topic": &**topic,
            "code": code, "reason": reason,
        }),
        UserAction::Refresh { user, expires_at } => json!({
            "node": node, "kind": "refresh", "user": &**user, "expires_at": expires_at,
        }),
        _ => return None,
    };
    Some(value.to_string())
}

/// The node and action of a message, checked as the API checks them;
/// `None` for a message that is not one.
pub(crate) fn decode(payload: &[u8]) -> Option<(String, UserAction)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let text = |name: &str| value.get(name).and_then(Value::as_str);
    let node = text("node")?.to_owned();
    let user: Arc<str> = Arc::from(text("user").filter(|u| !u.is_empty() && u.len() <= 256)?);
    let code = || {
        value
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| matches!(c, 1000 | 1008 | 4000..=4999))
    };
    let reason = || text("reason").filter(|r| r.len() <= 123).map(str::to_owned);
    let action = match text("kind")? {
        "disconnect" => UserAction::Disconnect {
            user,
            code: code()?,
            reason: reason()?,
        },
        "unsubscribe" => UserAction::Unsubscribe {
            user,
            topic: Arc::from(text("topic").filter(|t| is_valid_topic(t))?),
            code: code()?,
            reason: reason()?,
        },
        "refresh" => UserAction::Refresh {
            user,
            expires_at: value.get("expires_at").and_then(Value::as_u64)?,
        },
        _ => return None,
    };
    Some((node, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        let actions = [
            UserAction::Disconnect {
                user: Arc::from("alice"),
                code: 4001,
                reason: "banned\nfor good".into(),
            },
            UserAction::Unsubscribe {
                user: Arc::from("bob"),
                topic: Arc::from("chat.lobby"),
                code: 1008,
                reason: String::new(),
            },
            UserAction::Refresh {
                user: Arc::from("carol"),
                expires_at: 1_800_000_000,
            },
        ];
        for action in actions {
            let message = encode("n1", &action).unwrap();
            assert_eq!(decode(message.as_bytes()), Some(("n1".to_owned(), action)));
        }
    }

    #[test]
    fn what_the_api_would_refuse_is_dropped() {
        for bad in [
            r#"{"node":"n","kind":"disconnect","user":"a","code":1001,"reason":""}"#,
            r#"{"node":"n","kind":"disconnect","user":"","code":1000,"reason":""}"#,
            r#"{"node":"n","kind":"unsubscribe","user":"a","topic":"a b","code":1000,"reason":""}"#,
            r#"{"node":"n","kind":"refresh","user":"a"}"#,
            r#"{"node":"n","kind":"other","user":"a"}"#,
            "not json",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
