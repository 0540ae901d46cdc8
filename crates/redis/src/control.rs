//! User actions between nodes (`POST /api/disconnect`, `/api/unsubscribe`,
//! `/api/refresh`): the control stream's key, the entry a node adds for
//! an action, and the entries it reads back. No I/O here: the presence
//! thread sends what these build.
//!
//! Each action is an entry of one stream (`PREFIX!control`, bounded with
//! `MAXLEN ~`), with the node that added it: every node reads the entries
//! added since it first connected, and relays those of the other nodes
//! to its loops. `!` is not allowed in topic names, so no topic's stream
//! has this key.

use std::collections::HashMap;

use redis::{Cmd, Value};
use tether_bus::action::{self, ActionFields, Field};
use tether_hub::{EventId, UserAction};

use crate::commands::{pairs, parse_id, text};

/// Entries the control stream keeps, about.
const MAX_LEN: usize = 1000;
/// Entries read in one command at most.
pub(crate) const READ_COUNT: usize = 256;

/// The control stream's key.
pub(crate) fn key(prefix: &str) -> String {
    format!("{prefix}!control")
}

/// `XADD key MAXLEN ~ 1000 * node NODE kind KIND ...`: the node, then
/// the action's fields ([`action::fields`]).
pub(crate) fn add(key: &str, node: &str, action: &UserAction) -> Option<Cmd> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("MAXLEN").arg("~").arg(MAX_LEN).arg("*");
    cmd.arg("node").arg(node);
    for (name, value) in action::fields(action)? {
        cmd.arg(name);
        match value {
            Field::Text(text) => cmd.arg(text),
            Field::Number(number) => cmd.arg(number),
        };
    }
    Some(cmd)
}

/// One entry of the control stream: its id, the node that added it, and
/// the action (`None` for an entry that is not one this crate writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: EventId,
    pub(crate) node: String,
    pub(crate) action: Option<UserAction>,
}

/// The entries of an `XREAD` of the control stream alone: `[[key,
/// entries]]` (RESP2) or `{key: entries}` (RESP3), nil when there are
/// none; `None` if the reply is not one.
pub(crate) fn parse_xread(value: &Value) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    match value {
        Value::Nil => {}
        Value::Array(streams) => {
            for stream in streams {
                let Value::Array(kv) = stream else { return None };
                let [_, entries] = &kv[..] else { return None };
                out.extend(parse_range(entries)?);
            }
        }
        Value::Map(map) => {
            for (_, entries) in map {
                out.extend(parse_range(entries)?);
            }
        }
        _ => return None,
    }
    Some(out)
}

/// The entries of an `XRANGE` or `XREVRANGE`: `[[id, [field, value,
/// ...]], ...]`.
pub(crate) fn parse_range(value: &Value) -> Option<Vec<Entry>> {
    let Value::Array(entries) = value else {
        return None;
    };
    entries.iter().map(parse_entry).collect()
}

fn parse_entry(value: &Value) -> Option<Entry> {
    let Value::Array(parts) = value else {
        return None;
    };
    let [id, fields_value] = &parts[..] else {
        return None;
    };
    let id = parse_id(id)?;
    let mut fields = Fields(HashMap::new());
    for (field, value) in pairs(fields_value)? {
        if let (Some(field), Some(value)) = (text(field), text(value)) {
            fields
                .0
                .insert(field.to_vec(), String::from_utf8_lossy(value).into_owned());
        }
    }
    Some(Entry {
        id,
        node: fields.text("node").unwrap_or_default().to_owned(),
        action: action::action_of(&fields),
    })
}

/// An entry's fields, by name.
struct Fields(HashMap<Vec<u8>, String>);

impl ActionFields for Fields {
    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name.as_bytes()).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_values::bulk;

    /// The entry Redis would hold for `cmd` (its fields after `*`).
    fn entry_of(cmd: &Cmd, id: &str) -> Value {
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .collect();
        let star = args.iter().position(|a| a == b"*").unwrap();
        let fields = args[star + 1..]
            .iter()
            .map(|a| Value::BulkString(a.clone()))
            .collect();
        Value::Array(vec![bulk(id), Value::Array(fields)])
    }

    #[test]
    fn actions_round_trip_through_entries() {
        let actions = [
            UserAction::Disconnect {
                user: Arc::from("alice"),
                code: 4001,
                reason: "banned".to_owned(),
            },
            UserAction::Unsubscribe {
                user: Arc::from("bob"),
                topic: Arc::from("room.1"),
                code: 1008,
                reason: String::new(),
            },
            UserAction::Refresh {
                user: Arc::from("carol"),
                expires_at: 1_700_000_000,
            },
        ];
        for action in actions {
            let cmd = add("t:!control", "n1", &action).unwrap();
            let reply = Value::Array(vec![Value::Array(vec![
                bulk("t:!control"),
                Value::Array(vec![entry_of(&cmd, "5-1")]),
            ])]);
            let entries = parse_xread(&reply).unwrap();
            assert_eq!(
                entries,
                [Entry {
                    id: EventId::new(5, 1),
                    node: "n1".to_owned(),
                    action: Some(action.clone())
                }]
            );
            // An XREVRANGE reply: the entries alone.
            let range = Value::Array(vec![entry_of(&cmd, "6-0")]);
            assert_eq!(parse_range(&range).unwrap()[0].id, EventId::new(6, 0));
        }
        assert_eq!(key("t:"), "t:!control");
    }

    #[test]
    fn bad_entries_carry_no_action() {
        let entry = |fields: &[&str]| {
            let fields = fields.iter().map(|f| bulk(f)).collect();
            let reply = Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(fields)])]);
            parse_xread(&Value::Array(vec![Value::Array(vec![bulk("k"), reply])]))
                .unwrap()
                .remove(0)
        };
        assert!(
            entry(&[
                "node",
                "n",
                "kind",
                "disconnect",
                "user",
                "a",
                "code",
                "1001",
                "reason",
                ""
            ])
            .action
            .is_none()
        );
        assert!(
            entry(&[
                "node",
                "n",
                "kind",
                "disconnect",
                "user",
                "",
                "code",
                "1000",
                "reason",
                ""
            ])
            .action
            .is_none()
        );
        assert!(
            entry(&[
                "node",
                "n",
                "kind",
                "unsubscribe",
                "user",
                "a",
                "topic",
                "a b",
                "code",
                "1000",
                "reason",
                ""
            ])
            .action
            .is_none()
        );
        assert!(
            entry(&["node", "n", "kind", "refresh", "user", "a", "expires_at", "-1"])
                .action
                .is_none()
        );
        assert!(
            entry(&["node", "n", "kind", "other", "user", "a"])
                .action
                .is_none()
        );
        assert_eq!(entry(&["kind", "refresh"]).node, "");
        assert_eq!(parse_xread(&Value::Nil), Some(Vec::new()));
        assert_eq!(parse_xread(&Value::Int(3)), None);
        assert_eq!(parse_range(&Value::Array(vec![bulk("x")])), None);
    }
}
