//! What a multiplexed socket's client sends: one JSON object a text
//! message, `{"type":"subscribe"|"unsubscribe"|"publish"|"auth"|"rpc",...}`.
//! A member not of its type, a member twice, a value of the wrong type,
//! text that is not one flat JSON object: each is refused with what was
//! wrong, and the topic when the message named one (so that the answer
//! can say which subscription it was about).

use tether_hub::Payload;

use crate::json_text::flat_object;

/// The largest call id a client may use: the largest integer a
/// JavaScript number holds exactly.
pub(crate) const MAX_CALL_ID: u64 = (1 << 53) - 1;

/// The longest method name, in bytes.
pub(crate) const MAX_METHOD_LEN: usize = 64;

/// How deep a call's data may nest arrays and objects.
pub(crate) const MAX_DATA_DEPTH: usize = 32;

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
    /// `{"type":"publish","topic":"T","data":"…","event":"E","id":"KEY"}`;
    /// with `"encoding":"base64"`, `data` is a binary event's bytes in
    /// standard base64.
    Publish {
        topic: String,
        data: Payload,
        event: Option<String>,
        key: Option<String>,
    },
    /// `{"type":"auth","token":"…"}`.
    Auth { token: String },
    /// `{"type":"rpc","id":N,"method":"M","data":…}`: `data` any JSON
    /// value, kept as its text (`None` when left out).
    Rpc {
        id: u64,
        method: String,
        data: Option<String>,
    },
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
                members.push(("data", text(&data.base64())));
                members.push(("encoding", data.is_binary().then(|| text("base64")).flatten()));
                members.push(("event", optional(event)));
                members.push(("id", optional(key)));
            }
            ClientMessage::Auth { token } => {
                members.push(("type", text("auth")));
                members.push(("token", text(token)));
            }
            ClientMessage::Rpc { id, method, data } => {
                members.push(("type", text("rpc")));
                members.push(("id", Some(id.to_string())));
                members.push(("method", text(method)));
                members.push(("data", data.clone()));
            }
        }
        let members: Vec<String> = members
            .into_iter()
            .filter_map(|(name, value)| Some(format!("\"{name}\":{}", value?)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// Why a message was refused, and the topic it named, if it named one;
/// for a call whose id could be read, that id (its caller is answered
/// by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) topic: Option<String>,
    pub(crate) call: Option<u64>,
    pub(crate) error: String,
}

/// A member's value: these messages hold strings and, for `presence` and
/// `delta`, booleans; a call's id and data are any other JSON, kept as
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Flag(bool),
    Raw(String),
}

/// The members of a flat JSON object, in order: strings and booleans
/// read, any other value checked and kept as its text.
fn members(text: &str) -> Result<Vec<(String, Value)>, String> {
    flat_object(
        text,
        "a message is a JSON object, such as {\"type\":\"subscribe\",\"topic\":\"T\"}",
        |p, _| match p.peek() {
            Some(b'"') => Ok(Value::Text(p.string()?)),
            _ if p.literal("true") => Ok(Value::Flag(true)),
            _ if p.literal("false") => Ok(Value::Flag(false)),
            _ => Ok(Value::Raw(p.raw_value(MAX_DATA_DEPTH)?.to_owned())),
        },
    )
}

/// A call's id: a whole number from 0 to [`MAX_CALL_ID`], written plain.
fn call_id(value: &Value) -> Option<u64> {
    match value {
        Value::Raw(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok().filter(|&id| id <= MAX_CALL_ID)
        }
        _ => None,
    }
}

/// Whether `method` is a method's name: 1 to [`MAX_METHOD_LEN`] bytes of
/// letters, digits and `.` `_` `-` `:` `/`.
pub(crate) fn is_method(method: &str) -> bool {
    (1..=MAX_METHOD_LEN).contains(&method.len())
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
}

/// The members each type takes, beside `type`.
fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "subscribe" => &["topic", "since", "presence", "ticket", "delta"],
        "unsubscribe" => &["topic"],
        "publish" => &["topic", "data", "encoding", "event", "id"],
        "auth" => &["token"],
        "rpc" => &["id", "method", "data"],
        _ => return None,
    })
}

/// Reads one message.
pub(crate) fn parse(text: &str) -> Result<ClientMessage, Malformed> {
    let members = members(text).map_err(|error| Malformed {
        topic: None,
        call: None,
        error,
    })?;
    // The topic, if it names one as a string, for the refusal's answer.
    let topic = members
        .iter()
        .find_map(|(name, value)| match (name.as_str(), value) {
            ("topic", Value::Text(topic)) => Some(topic.clone()),
            _ => None,
        });
    let call = members
        .iter()
        .find(|(name, _)| name == "id")
        .and_then(|(_, value)| call_id(value))
        .filter(|_| {
            members
                .iter()
                .any(|(n, v)| n == "type" && *v == Value::Text("rpc".to_owned()))
        });
    let refuse = |error: String| Malformed {
        topic: topic.clone(),
        call,
        error,
    };
    let kind = match members.iter().find(|(name, _)| name == "type") {
        Some((_, Value::Text(kind))) => kind.as_str(),
        Some(_) => return Err(refuse("\"type\" must be a string".to_owned())),
        None => {
            return Err(refuse(
                "the message has no \"type\" (subscribe, unsubscribe, publish, auth, rpc)".to_owned(),
            ));
        }
    };
    let Some(allowed) = allowed(kind) else {
        return Err(refuse(format!(
            "unknown type {} (subscribe, unsubscribe, publish, auth, rpc)",
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
        "publish" => {
            let data = required("data")?;
            let data = match text("encoding")?.as_deref() {
                None => Payload::Text(data),
                Some("base64") => Payload::from_base64(&data)
                    .ok_or_else(|| refuse("\"data\" is not standard base64".to_owned()))?,
                Some(_) => return Err(refuse("\"encoding\" must be \"base64\"".to_owned())),
            };
            ClientMessage::Publish {
                topic: required("topic")?,
                data,
                event: text("event")?,
                key: text("id")?,
            }
        }
        "rpc" => {
            let id = match members.iter().find(|(n, _)| n == "id") {
                None => return Err(refuse("an rpc message needs \"id\"".to_owned())),
                Some((_, value)) => call_id(value).ok_or_else(|| {
                    refuse(format!("\"id\" must be a whole number from 0 to {MAX_CALL_ID}"))
                })?,
            };
            let method = required("method")?;
            if !is_method(&method) {
                return Err(refuse(format!(
                    "\"method\" must be 1 to {MAX_METHOD_LEN} letters, digits or ._-:/"
                )));
            }
            let data = members
                .iter()
                .find(|(n, _)| n == "data")
                .map(|(_, value)| match value {
                    Value::Text(text) => tether_hub::json_string(text),
                    Value::Flag(flag) => flag.to_string(),
                    Value::Raw(raw) => raw.clone(),
                });
            ClientMessage::Rpc { id, method, data }
        }
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
                data: Payload::from("hi\n"),
                event: Some("e".to_owned()),
                key: Some("k".to_owned()),
            })
        );
        assert_eq!(
            parse(r#"{"type":"publish","topic":"a","data":"AP8=","encoding":"base64"}"#),
            Ok(ClientMessage::Publish {
                topic: "a".to_owned(),
                data: Payload::Binary(vec![0, 0xff]),
                event: None,
                key: None,
            })
        );
        for (bad, error) in [
            (r#""data":"AP8","encoding":"base64""#, "is not standard base64"),
            (r#""data":"AP8=","encoding":"hex""#, "must be \"base64\""),
        ] {
            let message = format!(r#"{{"type":"publish","topic":"a",{bad}}}"#);
            let refused = parse(&message).unwrap_err();
            assert!(refused.error.contains(error), "{message}: {}", refused.error);
            assert_eq!(refused.topic.as_deref(), Some("a"));
        }
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
        assert!(
            e.error.contains("\"presence\" must be true or false"),
            "{}",
            e.error
        );
        let e = error(r#"{"type":"subscribe","topic":{"a":1}}"#);
        assert!(e.error.contains("\"topic\" must be a string"), "{}", e.error);
        let e = error(r#"{"type":"subscribe","topic":"a","since":[}"#);
        assert!(e.error.contains("malformed JSON"), "{}", e.error);
    }

    #[test]
    fn a_call_reads_its_id_method_and_data_and_a_bad_one_names_its_id() {
        assert_eq!(
            parse(r#"{"type":"rpc","id":7,"method":"cart.add","data":{"sku":[1, 2]}}"#),
            Ok(ClientMessage::Rpc {
                id: 7,
                method: "cart.add".to_owned(),
                data: Some(r#"{"sku":[1, 2]}"#.to_owned()),
            })
        );
        assert_eq!(
            parse(r#"{"type":"rpc","id":0,"method":"ping"}"#),
            Ok(ClientMessage::Rpc {
                id: 0,
                method: "ping".to_owned(),
                data: None,
            })
        );
        assert_eq!(
            parse(r#"{"type":"rpc","id":9007199254740991,"method":"m","data":"x\u0041"}"#),
            Ok(ClientMessage::Rpc {
                id: MAX_CALL_ID,
                method: "m".to_owned(),
                data: Some(r#""xA""#.to_owned()),
            })
        );
        for bad_id in ["9007199254740992", "-1", "1.5", "1e3", "\"7\"", "null"] {
            let e = error(&format!(r#"{{"type":"rpc","id":{bad_id},"method":"m"}}"#));
            assert_eq!(e.call, None, "{bad_id}");
            assert!(e.error.contains("\"id\""), "{bad_id}: {}", e.error);
        }
        let long = "m".repeat(MAX_METHOD_LEN + 1);
        for bad_method in ["", "a b", "é", long.as_str()] {
            let e = error(&format!(r#"{{"type":"rpc","id":3,"method":"{bad_method}"}}"#));
            assert_eq!(e.call, Some(3), "{bad_method}");
            assert!(e.error.contains("\"method\""), "{}", e.error);
        }
        let e = error(r#"{"type":"rpc","id":4,"method":"m","topic":"t"}"#);
        assert_eq!(e.call, Some(4));
        assert!(e.error.contains("unknown member \"topic\""), "{}", e.error);
        let deep = format!(
            r#"{{"type":"rpc","id":5,"method":"m","data":{}1{}}}"#,
            "[".repeat(33),
            "]".repeat(33)
        );
        assert!(error(&deep).error.contains("nested"));
        // An id on another type is not a call's.
        assert_eq!(error(r#"{"type":"publish","topic":"a","id":3}"#).call, None);
    }

    /// A call's data as a client writes it.
    fn data() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<String>().prop_map(|s| tether_hub::json_string(&s)),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("-0.5e-7".to_owned()),
        ];
        leaf.prop_recursive(4, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((any::<String>(), inner), 0..4).prop_map(|v| {
                    let members: Vec<String> = v
                        .into_iter()
                        .map(|(k, v)| format!("{} : {v}", tether_hub::json_string(&k)))
                        .collect();
                    format!("{{ {} }}", members.join(", "))
                }),
            ]
        })
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
                    data: Payload::Text(data),
                    event,
                    key,
                }
            }),
            (text(), proptest::collection::vec(any::<u8>(), 0..64), maybe()).prop_map(
                |(topic, bytes, key)| ClientMessage::Publish {
                    topic,
                    data: Payload::Binary(bytes),
                    event: None,
                    key,
                }
            ),
            text().prop_map(|token| ClientMessage::Auth { token }),
            (0..=MAX_CALL_ID, "[a-z._:/-]{1,64}", proptest::option::of(data()))
                .prop_map(|(id, method, data)| { ClientMessage::Rpc { id, method, data } }),
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
