//! User actions between nodes (`POST /api/disconnect`, `/api/unsubscribe`,
//! `/api/refresh`): each action taken on a node is published on the core
//! NATS subject `PREFIX.control` (outside the stream's `PREFIX.topic.*`)
//! as a small JSON object naming the node; every node subscribes to it
//! and relays the other nodes' actions to its loops. Core NATS delivers
//! at most once: an action published while a node is disconnected does
//! not reach that node.

use serde_json::{Map, Value};
use tether_bus::action::{self, ActionFields, Field};
use tether_hub::UserAction;

/// The control subject.
pub(crate) fn subject(prefix: &str) -> String {
    format!("{prefix}.control")
}

/// The message of `action`, taken on `node`: its fields
/// ([`action::fields`]) and the node's name, as a JSON object.
pub(crate) fn encode(node: &str, action: &UserAction) -> Option<String> {
    let mut object = Map::new();
    object.insert("node".to_owned(), Value::from(node));
    for (name, value) in action::fields(action)? {
        let value = match value {
            Field::Text(text) => Value::from(text),
            Field::Number(number) => Value::from(number),
        };
        object.insert(name.to_owned(), value);
    }
    Some(Value::Object(object).to_string())
}

/// A message's JSON object, read as an action's fields.
struct Fields(Value);

impl ActionFields for Fields {
    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.0.get(name).and_then(Value::as_u64)
    }
}

/// The node and action of a message, checked as the API checks them
/// ([`action::action_of`]); `None` for a message that is not one.
pub(crate) fn decode(payload: &[u8]) -> Option<(String, UserAction)> {
    let fields = Fields(serde_json::from_slice(payload).ok()?);
    let node = fields.text("node")?.to_owned();
    Some((node, action::action_of(&fields)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
