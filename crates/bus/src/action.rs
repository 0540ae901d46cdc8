//! User actions (`POST /api/disconnect`, `/api/unsubscribe`,
//! `/api/refresh`) as the nodes exchange them: named fields, which each
//! bus writes in its own format (a Redis stream entry, a JSON message),
//! and the check of what a node reads back, as the API checks it.

use std::sync::Arc;

use tether_hub::{UserAction, is_valid_topic};

/// The longest user name an action may name, in bytes.
const MAX_USER_LEN: usize = 256;
/// The longest close reason, in bytes (what a close frame holds).
const MAX_REASON_LEN: usize = 123;

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// Text.
    Text(&'a str),
    /// A whole number.
    Number(u64),
}

/// The fields of `action` (`kind`, `user`, then those of its kind:
/// `topic`, `code`, `reason`, `expires_at`); `None` for an action this
/// version does not carry.
pub fn fields(action: &UserAction) -> Option<Vec<(&'static str, Field<'_>)>> {
    let mut out = Vec::with_capacity(5);
    match action {
        UserAction::Disconnect { code, reason, .. } => {
            out.push(("kind", Field::Text("disconnect")));
            out.push(("code", Field::Number(u64::from(*code))));
            out.push(("reason", Field::Text(reason)));
        }
        UserAction::Unsubscribe {
            topic, code, reason, ..
        } => {
            out.push(("kind", Field::Text("unsubscribe")));
            out.push(("topic", Field::Text(topic)));
            out.push(("code", Field::Number(u64::from(*code))));
            out.push(("reason", Field::Text(reason)));
        }
        UserAction::Subscribe { topic, .. } => {
            out.push(("kind", Field::Text("subscribe")));
            out.push(("topic", Field::Text(topic)));
        }
        UserAction::Refresh { expires_at, .. } => {
            out.push(("kind", Field::Text("refresh")));
            out.push(("expires_at", Field::Number(*expires_at)));
        }
        _ => return None,
    }
    out.push(("user", Field::Text(action.user())));
    Some(out)
}

/// The fields of an action read back, by name.
pub trait ActionFields {
    /// A text field.
    fn text(&self, name: &str) -> Option<&str>;

    /// A number field (by default, a text field in decimal).
    fn number(&self, name: &str) -> Option<u64> {
        self.text(name)?.parse().ok()
    }
}

/// The action the fields describe, checked as the API checks it (a user
/// of 1 to 256 bytes, a close code of 1000, 1008 or 4000 to 4999, a
/// reason of at most 123 bytes, a valid topic); `None` for fields that do
/// not describe one.
pub fn action_of(fields: &dyn ActionFields) -> Option<UserAction> {
    let user = fields
        .text("user")
        .filter(|u| !u.is_empty() && u.len() <= MAX_USER_LEN)?;
    let user: Arc<str> = Arc::from(user);
    let code = || {
        fields
            .number("code")
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| matches!(c, 1000 | 1008 | 4000..=4999))
    };
    let reason = || {
        fields
            .text("reason")
            .filter(|r| r.len() <= MAX_REASON_LEN)
            .map(str::to_owned)
    };
    Some(match fields.text("kind")? {
        "disconnect" => UserAction::Disconnect {
            user,
            code: code()?,
            reason: reason()?,
        },
        "unsubscribe" => UserAction::Unsubscribe {
            user,
            topic: Arc::from(fields.text("topic").filter(|t| is_valid_topic(t))?),
            code: code()?,
            reason: reason()?,
        },
        "subscribe" => UserAction::Subscribe {
            user,
            topic: Arc::from(fields.text("topic").filter(|t| is_valid_topic(t))?),
        },
        "refresh" => UserAction::Refresh {
            user,
            expires_at: fields.number("expires_at")?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Fields as text, as a stream entry holds them.
    struct Texts(HashMap<&'static str, String>);

    impl ActionFields for Texts {
        fn text(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }

    fn texts(action: &UserAction) -> Texts {
        let fields = fields(action).unwrap();
        Texts(
            fields
                .into_iter()
                .map(|(name, value)| match value {
                    Field::Text(t) => (name, t.to_owned()),
                    Field::Number(n) => (name, n.to_string()),
                })
                .collect(),
        )
    }

    #[test]
    fn actions_at_the_apis_bounds_round_trip_through_their_fields() {
        let longest_user: Arc<str> = Arc::from("u".repeat(MAX_USER_LEN));
        let longest_reason = "r".repeat(MAX_REASON_LEN);
        let mut actions = vec![
            UserAction::Refresh {
                user: Arc::from("é"),
                expires_at: u64::MAX,
            },
            UserAction::Subscribe {
                user: Arc::from("x"),
                topic: Arc::from("room.1"),
            },
        ];
        for code in [1000, 1008, 4000, 4999] {
            actions.push(UserAction::Disconnect {
                user: longest_user.clone(),
                code,
                reason: longest_reason.clone(),
            });
            actions.push(UserAction::Unsubscribe {
                user: Arc::from("x"),
                topic: Arc::from("a.b-c_d"),
                code,
                reason: String::new(),
            });
        }
        for action in actions {
            assert_eq!(action_of(&texts(&action)), Some(action));
        }
    }

    #[test]
    fn what_the_api_would_refuse_is_dropped() {
        let good = texts(&UserAction::Unsubscribe {
            user: Arc::from("bob"),
            topic: Arc::from("room.1"),
            code: 1000,
            reason: String::new(),
        });
        for (field, bad) in [
            ("user", String::new()),
            ("user", "u".repeat(MAX_USER_LEN + 1)),
            ("code", "1001".to_owned()),
            ("code", "70000".to_owned()),
            ("reason", "r".repeat(MAX_REASON_LEN + 1)),
            ("topic", "a b".to_owned()),
            ("kind", "other".to_owned()),
        ] {
            let mut fields = Texts(good.0.clone());
            fields.0.insert(field, bad);
            assert_eq!(action_of(&fields), None, "{field}");
        }
    }
}
