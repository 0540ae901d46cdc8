//! What a multiplexed socket's client sends: one JSON object a text
//! message, `{"type":"subscribe"|"unsubscribe"|"publish"|"auth",...}`.
//! A member not of its type, a member twice, a value of the wrong type,
//! text that is not one flat JSON object: each is refused with what was
//! wrong, and the topic when the message named one (so that the answer
//! can say which subscription it was about).

use crate::json_text::flat_object;

/// One message of a multiplexed socket's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientMessage {
    /// `{"type":"subscribe","topic":"T","since":"ID","presence":true,"ticket":"…","delta":true}`.
    Subscribe {
        topic: String,
        since: Option<String>,
        presence: bool,
        ticket: Option<String>,
        /// It takes deltas where the topic's namespace sends them.
        delta: bool,
    },
    /// `{"type":"unsubscribe","topic":"T"}`.
    Unsubscribe { topic: String },
    /// `{"type":"publish","topic":"T","data":"…","event":"E","id":"KEY"}`.
    Publish {
        topic: String,
        data: String,
        event: Option<String>,
        key: Option<String>,
    },
    /// `{"type":"auth","token":"…"}`.
    Auth { token: String },
}

impl ClientMessage {
    /// The message as a client writes it: what [`parse`] reads back as
    /// itself (the fuzz target's invariant, and the tests').
    pub(crate) fn to_json(&self) -> String {
        let mut members: Vec<(&str, Option<String>)> = Vec::new();
        let text = |value: &str| Some(tether_hub::json_string(value));
        let optional = |value: &Option<String>| value.as_deref().map(tether_hub::json_string);
        match self {
            ClientMessage::Subscribe {
                topic,
                since,
                presence,
                ticket,
                delta,
            } => {
                members.push(("type", text("subscribe")));
                members.push(("topic", text(topic)));
                members.push(("since", optional(since)));
                members.push(("presence", presence.then(|| "true".to_owned())));
                members.push(("ticket", optional(ticket)));
                members.push(("delta", delta.then(|| "true".to_owned())));
            }
            ClientMessage::Unsubscribe { topic } => {
                members.push(("type", text("unsubscribe")));
                members.push(("topic", text(topic)));
            }
            ClientMessage::Publish {
                topic,
                data,
                event,
                key,
            } => {
                members.push(("type", text("publish")));
                members.push(("topic", text(topic)));
                members.push(("data", text(data)));
                members.push(("event", optional(event)));
                members.push(("id", optional(key)));
            }
            ClientMessage::Auth { token } => {
                members.push(("type", text("auth")));
                members.push(("token", text(token)));
            }
        }
        let members: Vec<String> = members
            .into_iter()
            .filter_map(|(name, value)| Some(format!("\"{name}\":{}", value?)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// Why a message was refused, and the topic it named, if it named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) topic: Option<String>,
    pub(crate) error: String,
}

/// A member's value: these messages hold strings and, for `presence` and
/// `delta`, booleans.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Flag(bool),
}

/// The members of a flat JSON object whose values are strings or
/// booleans, in order.
fn members(text: &str) -> Result<Vec<(String, Value)>, String> {
    flat_object(
        text,
        "a message is a JSON object, such as {\"type\":\"subscribe\",\"topic\":\"T\"}",
        |p, name| match p.peek() {
            Some(b'"') => Ok(Value::Text(p.string()?)),
            _ if p.literal("true") => Ok(Value::Flag(true)),
            _ if p.literal("false") => Ok(Value::Flag(false)),
            _ => Err(format!(
                "{} must be a string or a boolean",
                tether_hub::json_string(name)
            )),
        },
    )
}

/// The members each type takes, beside `type`.
fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "subscribe" => &["topic", "since", "presence", "ticket", "delta"],
        "unsubscribe" => &["topic"],
        "publish" => &["topic", "data", "event", "id"],
        "auth" => &["token"],
        _ => return None,
    })
}

/// Reads one message.
pub(crate) fn parse(text: &str) -> Result<ClientMessage, Malformed> {
    let members = members(text).map_err(|error| Malformed { topic: None, error })?;
    // The topic, if it names one as a string, for the refusal's answer.
    let topic = members
        .iter()
        .find_map(|(name, value)| match (name.as_str(), value) {
            ("topic", Value::Text(topic)) => Some(topic.clone()),
            _ => None,
        });
    let refuse = |error: String| Malformed {
        topic: topic.clone(),
        error,
    };
    let kind = match members.iter().find(|(name, _)| name == "type") {
        Some((_, Value::Text(kind))) => kind.as_str(),
        Some(_) => return Err(refuse("\"type\" must be a string".to_owned())),
        None => {
            return Err(refuse(
                "the message has no \"type\" (subscribe, unsubscribe, publish, auth)".to_owned(),
            ));
        }
    };
    let Some(allowed) = allowed(kind) else {
        return Err(refuse(format!(
            "unknown type {} (subscribe, unsubscribe, publish, auth)",
            tether_hub::json_string(kind)
        )));
    };
    let mut seen: Vec<&str> = Vec::with_capacity(members.len());
    for (name, _) in &members {
        if seen.contains(&name.as_str()) {
            return Err(refuse(format!(
                "the message has {} twice",
                tether_hub::json_string(name)
            )));
        }
        if name != "type" && !allowed.contains(&name.as_str()) {
            return Err(refuse(format!(
                "unknown member {} of a {kind} message ({})",
                tether_hub::json_string(name),
                allowed.join(", ")
            )));
        }
        seen.push(name);
    }
    let text = |name: &str| -> Result<Option<String>, Malformed> {
        match members.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Value::Text(value))) => Ok(Some(value.clone())),
            Some(_) => Err(refuse(format!(
                "{} must be a string",
                tether_hub::json_string(name)
            ))),
        }
    };
    let required = |name: &str| -> Result<String, Malformed> {
        text(name)?.ok_or_else(|| {
            refuse(format!(
                "a {kind} message needs {}",
                tether_hub::json_string(name)
            ))
        })
    };
    Ok(match kind {
        "subscribe" => {
            let flag = |name: &str| match members.iter().find(|(n, _)| n == name) {
                None => Ok(false),
                Some((_, Value::Flag(flag))) => Ok(*flag),
                Some(_) => Err(refuse(format!(
                    "{} must be true or false",
                    tether_hub::json_string(name)
                ))),
            };
            ClientMessage::Subscribe {
                topic: required("topic")?,
                since: text("since")?,
                presence: flag("presence")?,
                ticket: text("ticket")?,
                delta: flag("delta")?,
            }
        }
        "unsubscribe" => ClientMessage::Unsubscribe {
            topic: required("topic")?,
        },
        "publish" => ClientMessage::Publish {
            topic: required("topic")?,
            data: required("data")?,
            event: text("event")?,
            key: text("id")?,
        },
        _ => ClientMessage::Auth {
            token: required("token")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn error(text: &str) -> Malformed {
        match parse(text) {
            Err(malformed) => malformed,
            Ok(message) => panic!("{text}: taken as {message:?}"),
        }
    }

    #[test]
    fn each_type_reads_its_members() {
        assert_eq!(
            parse(
                r#"{"type":"subscribe","topic":"a","since":"1-0","presence":true,"ticket":"t","delta":true}"#
            ),
            Ok(ClientMessage::Subscribe {
                topic: "a".to_owned(),
                since: Some("1-0".to_owned()),
                presence: true,
                ticket: Some("t".to_owned()),
                delta: true,
            })
        );
        assert_eq!(
            parse(r#" { "topic" : "b" , "type" : "subscribe" } "#),
            Ok(ClientMessage::Subscribe {
                topic: "b".to_owned(),
                since: None,
                presence: false,
                ticket: None,
                delta: false,
            })
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","topic":"a"}"#),
            Ok(ClientMessage::Unsubscribe {
                topic: "a".to_owned()
            })
        );
        assert_eq!(
            parse(r#"{"type":"publish","topic":"a","data":"hi\n","event":"e","id":"k"}"#),
            Ok(ClientMessage::Publish {
                topic: "a".to_owned(),
                data: "hi\n".to_owned(),
                event: Some("e".to_owned()),
                key: Some("k".to_owned()),
            })
        );
        assert_eq!(
            parse(r#"{"type":"auth","token":"x.y.z"}"#),
            Ok(ClientMessage::Auth {
                token: "x.y.z".to_owned()
            })
        );
    }

    #[test]
    fn what_is_not_a_message_is_refused_with_its_topic_when_it_named_one() {
        for bad in ["", "null", "[]", "{", "{}x", r#"{"type":1}"#, "\"type\""] {
            assert_eq!(error(bad).topic, None, "{bad:?}");
        }
        let e = error(r#"{"type":"subscribe","topic":"a","topic":"b"}"#);
        assert_eq!(e.topic.as_deref(), Some("a"));
        assert!(e.error.contains("twice"), "{}", e.error);
        let e = error(r#"{"type":"subscribe","topic":"a","sinse":"1-0"}"#);
        assert!(e.error.contains("unknown member \"sinse\""), "{}", e.error);
        let e = error(r#"{"type":"subscribe","topic":"a","presence":"yes"}"#);
        assert!(e.error.contains("presence"), "{}", e.error);
        let e = error(r#"{"type":"subscribe","topic":"a","since":true}"#);
        assert!(e.error.contains("since"), "{}", e.error);
        let e = error(r#"{"type":"publish","topic":"a"}"#);
        assert!(e.error.contains("\"data\""), "{}", e.error);
        let e = error(r#"{"type":"subscribe"}"#);
        assert!(e.error.contains("\"topic\""), "{}", e.error);
        let e = error(r#"{"type":"dance","topic":"a"}"#);
        assert!(e.error.contains("unknown type"), "{}", e.error);
        assert_eq!(e.topic.as_deref(), Some("a"));
        let e = error(r#"{"topic":"a"}"#);
        assert!(e.error.contains("no \"type\""), "{}", e.error);
        let e = error(r#"{"type":"subscribe","topic":"a","presence":1}"#);
        assert!(e.error.contains("string or a boolean"), "{}", e.error);
    }

    fn message() -> impl Strategy<Value = ClientMessage> {
        let text = || any::<String>();
        let maybe = || proptest::option::of(any::<String>());
        prop_oneof![
            (text(), maybe(), any::<bool>(), maybe(), any::<bool>()).prop_map(
                |(topic, since, presence, ticket, delta)| ClientMessage::Subscribe {
                    topic,
                    since,
                    presence,
                    ticket,
                    delta,
                }
            ),
            text().prop_map(|topic| ClientMessage::Unsubscribe { topic }),
            (text(), text(), maybe(), maybe()).prop_map(|(topic, data, event, key)| {
                ClientMessage::Publish {
                    topic,
                    data,
                    event,
                    key,
                }
            }),
            text().prop_map(|token| ClientMessage::Auth { token }),
        ]
    }

    proptest! {
        /// Every message, written as a client writes it, reads back as
        /// itself (the fuzz target checks the other way round: what
        /// reads, written again, reads the same).
        #[test]
        fn messages_read_back_as_written(message in message()) {
            prop_assert_eq!(parse(&message.to_json()), Ok(message));
        }

        /// Any text: a message or an error, never a panic.
        #[test]
        fn never_panics(text in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&text);
            let _ = parse(&String::from_utf8_lossy(&bytes));
            let _ = parse(&format!("{{\"type\":\"subscribe\",\"topic\":{text:?}"));
        }
    }
}
