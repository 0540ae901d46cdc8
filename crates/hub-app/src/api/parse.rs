//! The bodies and queries of the server API, read into what the hub
//! acts on: unknown members are refused, every error names its field.

use serde_json::Value;
use tether_hub::{
    Error as HubError, EventId, HistoryQuery, MAX_HISTORY, Payload, is_valid_topic, json_string,
};

use super::{ApiError, MAX_ITEMS};

/// One event to publish: as `POST /topics/NAME` with `?event=TYPE` and
/// `?id=KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) topic: String,
    pub(crate) data: Payload,
    pub(crate) event_type: Option<String>,
    pub(crate) key: Option<String>,
}

/// The body of `POST /api/publish`:
/// `{"items":[{"topic":"a","data":...,"type":"T","key":"K"},...]}`
/// (`"encoding":"base64"` beside a string `data`: a binary event).
pub(crate) fn parse_publish(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let mut root = parse_object(body, &["items"])?;
    let items = take_array(&mut root, "items")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let name = format!("items[{i}]");
        let Value::Object(mut item) = item else {
            return Err(ApiError::bad(format!("{name} must be an object")));
        };
        check_members(&item, &name, &["topic", "data", "encoding", "type", "key"])?;
        out.push(Item {
            topic: take_string(&mut item, &name, "topic")?,
            data: take_data(&mut item, &name)?,
            event_type: take_optional_string(&mut item, &name, "type")?,
            key: take_optional_string(&mut item, &name, "key")?,
        });
    }
    Ok(out)
}

/// The body of `POST /api/broadcast`:
/// `{"topics":["a","b"],"data":...,"type":"T"}`: one item per topic.
/// Data larger than `max_data` (the largest event) refuses the whole
/// request, before it is copied for every topic.
pub(crate) fn parse_broadcast(body: &[u8], max_data: usize) -> Result<Vec<Item>, ApiError> {
    let mut root = parse_object(body, &["topics", "data", "encoding", "type"])?;
    let topics = take_array(&mut root, "topics")?;
    let data = take_data(&mut root, "")?;
    if data.len() > max_data {
        return Err(ApiError::of_hub(&HubError::EventTooLarge {
            size: data.len(),
            max: max_data,
        }));
    }
    let event_type = take_optional_string(&mut root, "", "type")?;
    let mut out = Vec::with_capacity(topics.len());
    for (i, topic) in topics.into_iter().enumerate() {
        let Value::String(topic) = topic else {
            return Err(ApiError::bad(format!("topics[{i}] must be a string")));
        };
        out.push(Item {
            topic,
            data: data.clone(),
            event_type: event_type.clone(),
            key: None,
        });
    }
    Ok(out)
}

type Object = serde_json::Map<String, Value>;

/// The body as a JSON object with only these members.
fn parse_object(body: &[u8], members: &[&str]) -> Result<Object, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad("the body must be a JSON object"));
    };
    check_members(&object, "", members)?;
    Ok(object)
}

/// `parent.member` for a message (`member` alone at the top).
fn field(parent: &str, member: &str) -> String {
    if parent.is_empty() {
        member.to_owned()
    } else {
        format!("{parent}.{member}")
    }
}

/// Refuses members other than these, so that a misspelt `key` cannot
/// silently turn deduplication off.
fn check_members(object: &Object, parent: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(other) => Err(ApiError::bad(format!(
            "unknown member {} (allowed: {})",
            json_string(&field(parent, other)),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The array `name`, of at most [`MAX_ITEMS`] elements.
fn take_array(object: &mut Object, name: &str) -> Result<Vec<Value>, ApiError> {
    match object.remove(name) {
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => Err(ApiError::new(
            413,
            "too_many_items",
            format!("{name} has {} elements: at most {MAX_ITEMS}", items.len()),
        )),
        Some(Value::Array(items)) if items.is_empty() => {
            Err(ApiError::bad(format!("{name} must not be empty")))
        }
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::bad(format!("{name} must be an array"))),
        None => Err(ApiError::bad(format!("{name} is required"))),
    }
}

fn take_string(object: &mut Object, parent: &str, name: &str) -> Result<String, ApiError> {
    take_optional_string(object, parent, name)?
        .ok_or_else(|| ApiError::bad(format!("{} is required", field(parent, name))))
}

fn take_optional_string(object: &mut Object, parent: &str, name: &str) -> Result<Option<String>, ApiError> {
    match object.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad(format!("{} must be a string", field(parent, name)))),
    }
}

/// `data`: a string is published as it is, any other JSON value as its
/// JSON text; with `"encoding":"base64"`, a string of standard base64 is
/// a binary event's bytes.
fn take_data(object: &mut Object, parent: &str) -> Result<Payload, ApiError> {
    let base64 = match take_optional_string(object, parent, "encoding")?.as_deref() {
        None => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::bad(format!(
                "{} must be \"base64\"",
                field(parent, "encoding")
            )));
        }
    };
    match (object.remove("data"), base64) {
        (None, _) => Err(ApiError::bad(format!("{} is required", field(parent, "data")))),
        (Some(Value::String(s)), true) => Payload::from_base64(&s)
            .ok_or_else(|| ApiError::bad(format!("{} is not standard base64", field(parent, "data")))),
        (Some(_), true) => Err(ApiError::bad(format!(
            "{} must be a string",
            field(parent, "data")
        ))),
        (Some(Value::String(s)), false) => Ok(Payload::Text(s)),
        (Some(other), false) => Ok(Payload::Text(other.to_string())),
    }
}

/// The events `GET /api/history` answers by default.
const DEFAULT_HISTORY: usize = 100;

/// Reads a history query from `topic`, `since`, `limit` and `reverse`
/// (`None` where the request has no such parameter).
pub(crate) fn parse_history(
    topic: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    reverse: Option<String>,
) -> Result<HistoryQuery, ApiError> {
    let topic = topic.ok_or_else(|| ApiError::bad("topic is required"))?;
    if !is_valid_topic(&topic) {
        return Err(ApiError::of_hub(&HubError::InvalidTopic));
    }
    let since = match since.as_deref() {
        None | Some("") => None,
        Some(text) => {
            Some(EventId::parse(text).ok_or_else(|| ApiError::bad("since must be an event id (ms-seq)"))?)
        }
    };
    let limit = match limit {
        None => DEFAULT_HISTORY,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "limit must be a number from 1 to {MAX_HISTORY}"
                )));
            }
        },
    };
    let reverse = match reverse.as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::bad("reverse must be true or false")),
    };
    Ok(HistoryQuery {
        topic: topic.into(),
        since,
        limit,
        reverse,
    })
}

/// The longest close reason a WebSocket close frame carries.
pub(crate) const MAX_REASON: usize = 123;

/// The body of `POST /api/disconnect` (`topic`: `None`) or
/// `POST /api/unsubscribe` (`topic` required):
/// `{"user":"SUB","topic":"T","code":4000,"reason":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserClose {
    pub(crate) user: String,
    pub(crate) topic: Option<String>,
    pub(crate) code: u16,
    pub(crate) reason: String,
}

/// Reads a disconnect (`with_topic` false) or an unsubscribe body. The
/// close code is 1000, 1008 or one of 4000 to 4999 (1008 if none is
/// given); the reason at most [`MAX_REASON`] bytes.
pub(crate) fn parse_user_close(body: &[u8], with_topic: bool) -> Result<UserClose, ApiError> {
    let members: &[&str] = if with_topic {
        &["user", "topic", "code", "reason"]
    } else {
        &["user", "code", "reason"]
    };
    let mut root = parse_object(body, members)?;
    let user = take_user(&mut root)?;
    let topic = if with_topic {
        let topic = take_string(&mut root, "", "topic")?;
        if !is_valid_topic(&topic) {
            return Err(ApiError::of_hub(&HubError::InvalidTopic));
        }
        Some(topic)
    } else {
        None
    };
    let code = match root.remove("code") {
        None => 1008,
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(code @ (1000 | 1008 | 4000..=4999)) => code,
            _ => return Err(ApiError::bad("code must be 1000, 1008 or from 4000 to 4999")),
        },
        Some(_) => return Err(ApiError::bad("code must be a number")),
    };
    let default = if with_topic {
        "unsubscribed by the server"
    } else {
        "disconnected by the server"
    };
    let reason = take_optional_string(&mut root, "", "reason")?.unwrap_or_else(|| default.to_owned());
    if reason.len() > MAX_REASON {
        return Err(ApiError::bad(format!(
            "reason must be at most {MAX_REASON} bytes"
        )));
    }
    Ok(UserClose {
        user,
        topic,
        code,
        reason,
    })
}

/// The body of `POST /api/refresh`: `{"user":"SUB","expires_at":SECONDS}`.
/// The body of `POST /api/subscribe`: `{"user":"SUB","topic":"T"}`.
pub(crate) fn parse_subscribe(body: &[u8]) -> Result<(String, String), ApiError> {
    let mut root = parse_object(body, &["user", "topic"])?;
    let user = take_user(&mut root)?;
    let topic = take_string(&mut root, "", "topic")?;
    if !is_valid_topic(&topic) {
        return Err(ApiError::of_hub(&HubError::InvalidTopic));
    }
    Ok((user, topic))
}

pub(crate) fn parse_refresh(body: &[u8]) -> Result<(String, u64), ApiError> {
    let mut root = parse_object(body, &["user", "expires_at"])?;
    let user = take_user(&mut root)?;
    let expires_at = match root.remove("expires_at") {
        None => return Err(ApiError::bad("expires_at is required")),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ApiError::bad("expires_at must be a whole number of Unix seconds"))?,
        Some(_) => return Err(ApiError::bad("expires_at must be a number (Unix seconds)")),
    };
    Ok((user, expires_at))
}

/// The body of `POST /api/revoke`: `{"jti":"ID"}` and/or
/// `{"subject":"SUB","before":T}` (`before`: Unix seconds, now if left
/// out), with an optional `"until":T` (Unix seconds, after `now`; by
/// default `now` plus `default_ttl` seconds).
pub(crate) fn parse_revoke(
    body: &[u8],
    now: u64,
    default_ttl: u64,
) -> Result<Vec<crate::access::Revocation>, ApiError> {
    use crate::access::{Revocation, Revoked};
    let mut root = parse_object(body, &["jti", "subject", "before", "until"])?;
    let jti = take_optional_string(&mut root, "", "jti")?;
    if jti.as_ref().is_some_and(|id| id.is_empty() || id.len() > 1024) {
        return Err(ApiError::bad("jti must be a token id of 1 to 1024 bytes"));
    }
    let subject = take_optional_string(&mut root, "", "subject")?;
    if subject.as_ref().is_some_and(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::bad("subject must be a subject of 1 to 256 bytes"));
    }
    let seconds = |root: &mut Object, name: &str| match root.remove(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("{name} must be a whole number of Unix seconds"))),
        Some(_) => Err(ApiError::bad(format!("{name} must be a number (Unix seconds)"))),
    };
    let before = seconds(&mut root, "before")?;
    let until = seconds(&mut root, "until")?.unwrap_or_else(|| now.saturating_add(default_ttl));
    if until <= now {
        return Err(ApiError::bad("until must be after now (Unix seconds)"));
    }
    if before.is_some() && subject.is_none() {
        return Err(ApiError::bad("before goes with subject"));
    }
    let mut out = Vec::new();
    if let Some(id) = jti {
        out.push(Revocation {
            what: Revoked::Token(id),
            until,
        });
    }
    if let Some(subject) = subject {
        out.push(Revocation {
            what: Revoked::Subject {
                subject,
                before: before.unwrap_or(now),
            },
            until,
        });
    }
    if out.is_empty() {
        return Err(ApiError::bad("name what to revoke: jti, or subject (and before)"));
    }
    Ok(out)
}

/// `user`: a credential's subject, not empty, at most 256 bytes.
fn take_user(object: &mut Object) -> Result<String, ApiError> {
    let user = take_string(object, "", "user")?;
    if user.is_empty() || user.len() > 256 {
        return Err(ApiError::bad("user must be a subject of 1 to 256 bytes"));
    }
    Ok(user)
}

/// The body of `POST /api/presence/counts`: `{"topics":["a","b"]}`, at
/// most [`MAX_ITEMS`] valid names, each once.
pub(crate) fn parse_counts(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let mut root = parse_object(body, &["topics"])?;
    let mut topics = Vec::new();
    for (i, topic) in take_array(&mut root, "topics")?.into_iter().enumerate() {
        let Value::String(topic) = topic else {
            return Err(ApiError::bad(format!("topics[{i}] must be a string")));
        };
        if !is_valid_topic(&topic) {
            return Err(ApiError::new(
                400,
                "invalid_topic",
                format!("topics[{i}] is not a valid topic name"),
            ));
        }
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    Ok(topics)
}

/// A `topic` query parameter: required, and valid.
/// `?user=SUB` of `GET /api/connections`: a subject, as `take_user` takes it.
pub(crate) fn parse_user(user: Option<String>) -> Result<String, ApiError> {
    let user = user.ok_or_else(|| ApiError::bad("user is required"))?;
    if user.is_empty() || user.len() > 256 {
        return Err(ApiError::bad("user must be a subject of 1 to 256 bytes"));
    }
    Ok(user)
}

pub(crate) fn parse_topic(topic: Option<String>) -> Result<String, ApiError> {
    let topic = topic.ok_or_else(|| ApiError::bad("topic is required"))?;
    if !is_valid_topic(&topic) {
        return Err(ApiError::of_hub(&HubError::InvalidTopic));
    }
    Ok(topic)
}

/// The topics `GET /api/topics` lists at most, and by default.
pub(crate) const MAX_TOPICS_PAGE: usize = 1000;
const DEFAULT_TOPICS_PAGE: usize = 100;

/// What `GET /api/topics?after=NAME&limit=N` asks for: the topics after
/// `after` by name, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicsQuery {
    pub(crate) after: Option<String>,
    pub(crate) limit: usize,
}

pub(crate) fn parse_topics(after: Option<String>, limit: Option<String>) -> Result<TopicsQuery, ApiError> {
    let limit = match limit {
        None => DEFAULT_TOPICS_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_TOPICS_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "limit must be a number from 1 to {MAX_TOPICS_PAGE}"
                )));
            }
        },
    };
    Ok(TopicsQuery {
        after: after.filter(|a| !a.is_empty()),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(topic: &str, data: &str, event_type: Option<&str>, key: Option<&str>) -> Item {
        Item {
            topic: topic.to_owned(),
            data: Payload::from(data),
            event_type: event_type.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn batches_parse() {
        let body =
            br#"{"items":[{"topic":"a","data":"x"},{"topic":"b","data":{"n":1},"type":"t","key":"k"}]}"#;
        assert_eq!(
            parse_publish(body),
            Ok(vec![
                item("a", "x", None, None),
                item("b", r#"{"n":1}"#, Some("t"), Some("k")),
            ])
        );
        // Invalid names are the hub's to refuse, item by item.
        assert_eq!(
            parse_publish(br#"{"items":[{"topic":"a b","data":""}]}"#),
            Ok(vec![item("a b", "", None, None)])
        ); // Bytes, in base64; refused when not base64 or not a string.
        let binary = parse_publish(br#"{"items":[{"topic":"a","data":"AP8=","encoding":"base64"}]}"#);
        assert_eq!(binary.unwrap()[0].data, Payload::Binary(vec![0, 0xff]));
        for (body, error) in [
            (
                &br#"{"items":[{"topic":"a","data":"AP8","encoding":"base64"}]}"#[..],
                "items[0].data is not standard base64",
            ),
            (
                br#"{"items":[{"topic":"a","data":[1],"encoding":"base64"}]}"#,
                "items[0].data must be a string",
            ),
            (
                br#"{"items":[{"topic":"a","data":"x","encoding":"hex"}]}"#,
                "items[0].encoding must be",
            ),
        ] {
            let refused = parse_publish(body).unwrap_err();
            assert!(format!("{refused:?}").contains(error), "{refused:?}");
        }
        let broadcast = parse_broadcast(br#"{"topics":["a"],"data":"AP8=","encoding":"base64"}"#, 10);
        assert_eq!(broadcast.unwrap()[0].data, Payload::Binary(vec![0, 0xff]));
    }

    #[test]
    fn broadcasts_parse() {
        assert_eq!(
            parse_broadcast(br#"{"topics":["a","b"],"data":"x","type":"t"}"#, 10),
            Ok(vec![
                item("a", "x", Some("t"), None),
                item("b", "x", Some("t"), None)
            ])
        );
        assert_eq!(
            parse_broadcast(br#"{"topics":["a"],"data":[1,2]}"#, 10),
            Ok(vec![item("a", "[1,2]", None, None)])
        );
        // Too large for an event: refused before it is copied per topic.
        let e = parse_broadcast(br#"{"topics":["a","b"],"data":"12345678901"}"#, 10).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_large"));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        for (body, message) in [
            (&b"nope"[..], "malformed JSON"),
            (b"[]", "the body must be a JSON object"),
            (b"{}", "items is required"),
            (br#"{"items":{}}"#, "items must be an array"),
            (br#"{"items":[]}"#, "items must not be empty"),
            (br#"{"items":[1]}"#, "items[0] must be an object"),
            (br#"{"items":[{"data":"x"}]}"#, "items[0].topic is required"),
            (br#"{"items":[{"topic":"a"}]}"#, "items[0].data is required"),
            (
                br#"{"items":[{"topic":1,"data":"x"}]}"#,
                "items[0].topic must be a string",
            ),
            (
                br#"{"items":[{"topic":"a","data":"x","key":2}]}"#,
                "items[0].key must be a string",
            ),
            (
                br#"{"items":[{"topic":"a","data":"x","id":"k"}]}"#,
                "unknown member \"items[0].id\"",
            ),
            (br#"{"items":[],"other":1}"#, "unknown member \"other\""),
        ] {
            let e = parse_publish(body).unwrap_err();
            assert_eq!((e.status, e.code), (400, "bad_request"), "{body:?}");
            assert!(e.message.starts_with(message), "{body:?}: {}", e.message);
        }
        for (body, message) in [
            (&br#"{"data":"x"}"#[..], "topics is required"),
            (br#"{"topics":["a"]}"#, "data is required"),
            (br#"{"topics":[1],"data":"x"}"#, "topics[0] must be a string"),
            (
                br#"{"topics":["a"],"data":"x","key":"k"}"#,
                "unknown member \"key\"",
            ),
        ] {
            let e = parse_broadcast(body, 10).unwrap_err();
            assert!(e.message.starts_with(message), "{body:?}: {}", e.message);
        }
    }

    #[test]
    fn too_many_items() {
        let items = vec![r#"{"topic":"a","data":""}"#; MAX_ITEMS + 1].join(",");
        let e = parse_publish(format!("{{\"items\":[{items}]}}").as_bytes()).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_many_items"));
        let items = vec![r#"{"topic":"a","data":""}"#; MAX_ITEMS].join(",");
        assert_eq!(
            parse_publish(format!("{{\"items\":[{items}]}}").as_bytes()).map(|i| i.len()),
            Ok(MAX_ITEMS)
        );
        let topics = vec!["\"a\""; MAX_ITEMS + 1].join(",");
        let e =
            parse_broadcast(format!("{{\"topics\":[{topics}],\"data\":\"\"}}").as_bytes(), 10).unwrap_err();
        assert_eq!(e.status, 413);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let body = format!("{{\"items\":[{{\"topic\":\"a\",\"data\":{deep}}}]}}");
        assert_eq!(parse_publish(body.as_bytes()).unwrap_err().status, 400);
    }

    fn query(
        topic: Option<&str>,
        since: Option<&str>,
        limit: Option<&str>,
    ) -> Result<HistoryQuery, ApiError> {
        parse_history(
            topic.map(str::to_owned),
            since.map(str::to_owned),
            limit.map(str::to_owned),
            None,
        )
    }

    #[test]
    fn history_queries() {
        assert_eq!(
            query(Some("a"), Some("5-1"), Some("10")),
            Ok(HistoryQuery {
                topic: "a".into(),
                since: Some(EventId::new(5, 1)),
                limit: 10,
                reverse: false,
            })
        );
        let reverse = |text: &str| parse_history(Some("a".into()), None, None, Some(text.into()));
        for (text, reverse_of) in [
            ("true", true),
            ("1", true),
            ("false", false),
            ("0", false),
            ("", false),
        ] {
            assert_eq!(reverse(text).map(|q| q.reverse), Ok(reverse_of), "{text}");
        }
        for bad in ["yes", "TRUE", "2"] {
            assert_eq!(reverse(bad).unwrap_err().message, "reverse must be true or false");
        }
        assert_eq!(
            query(Some("a"), Some(""), None).map(|q| (q.since, q.limit)),
            Ok((None, 100))
        );
        assert_eq!(query(None, None, None).unwrap_err().message, "topic is required");
        assert_eq!(query(Some("a b"), None, None).unwrap_err().code, "invalid_topic");
        assert!(
            query(Some("a"), Some("x"), None)
                .unwrap_err()
                .message
                .starts_with("since")
        );
        for bad in ["0", "1001", "-1", "x", "", "99999999999999999999999"] {
            assert!(
                query(Some("a"), None, Some(bad))
                    .unwrap_err()
                    .message
                    .starts_with("limit"),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_actions_parse() {
        assert_eq!(
            parse_user_close(br#"{"user":"alice","code":4001,"reason":"bye"}"#, false),
            Ok(UserClose {
                user: "alice".to_owned(),
                topic: None,
                code: 4001,
                reason: "bye".to_owned()
            })
        );
        let defaults = parse_user_close(br#"{"user":"bob","topic":"a"}"#, true).unwrap();
        assert_eq!((defaults.code, defaults.topic.as_deref()), (1008, Some("a")));
        assert_eq!(defaults.reason, "unsubscribed by the server");
        for code in [1000, 1008, 4000, 4999] {
            let body = format!(r#"{{"user":"a","code":{code}}}"#);
            assert_eq!(parse_user_close(body.as_bytes(), false).unwrap().code, code);
        }
        for (body, with_topic, message) in [
            (&br#"{"code":1000}"#[..], false, "user is required"),
            (br#"{"user":""}"#, false, "user must be"),
            (br#"{"user":"a","code":1001}"#, false, "code must be 1000"),
            (br#"{"user":"a","code":5000}"#, false, "code must be 1000"),
            (br#"{"user":"a","code":-1}"#, false, "code must be 1000"),
            (br#"{"user":"a","code":"4000"}"#, false, "code must be a number"),
            (br#"{"user":"a","topic":"t"}"#, false, "unknown member \"topic\""),
            (br#"{"user":"a"}"#, true, "topic is required"),
            (br#"{"user":"a","topic":"a b"}"#, true, "invalid topic"),
        ] {
            let e = parse_user_close(body, with_topic).unwrap_err();
            assert_eq!(e.status, 400, "{body:?}");
            assert!(
                e.message.to_lowercase().starts_with(message),
                "{body:?}: {}",
                e.message
            );
        }
        let long = format!(r#"{{"user":"a","reason":"{}"}}"#, "r".repeat(MAX_REASON + 1));
        assert!(parse_user_close(long.as_bytes(), false).is_err());
        let fits = format!(r#"{{"user":"a","reason":"{}"}}"#, "r".repeat(MAX_REASON));
        assert!(parse_user_close(fits.as_bytes(), false).is_ok());
    }

    #[test]
    fn refreshes_parse() {
        assert_eq!(
            parse_refresh(br#"{"user":"a","expires_at":1700000000}"#),
            Ok(("a".to_owned(), 1_700_000_000))
        );
        for body in [
            &br#"{"user":"a"}"#[..],
            br#"{"user":"a","expires_at":-5}"#,
            br#"{"user":"a","expires_at":1.5}"#,
            br#"{"user":"a","expires_at":"5"}"#,
            br#"{"expires_at":5}"#,
            br#"{"user":"a","expires_at":5,"exp":5}"#,
        ] {
            assert_eq!(parse_refresh(body).unwrap_err().status, 400, "{body:?}");
        }
    }

    #[test]
    fn counts_and_topic_queries_parse() {
        assert_eq!(
            parse_counts(br#"{"topics":["a","b","a"]}"#),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            parse_counts(br#"{"topics":["a b"]}"#).unwrap_err().code,
            "invalid_topic"
        );
        assert_eq!(parse_counts(br#"{"topics":[]}"#).unwrap_err().status, 400);
        let many = vec!["\"a\""; MAX_ITEMS + 1].join(",");
        let e = parse_counts(format!("{{\"topics\":[{many}]}}").as_bytes()).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_many_items"));
        assert_eq!(parse_topic(Some("a".to_owned())), Ok("a".to_owned()));
        assert_eq!(parse_topic(None).unwrap_err().status, 400);
        assert_eq!(
            parse_topics(Some(String::new()), None),
            Ok(TopicsQuery {
                after: None,
                limit: 100
            })
        );
        assert_eq!(parse_topics(None, Some("7".to_owned())).map(|q| q.limit), Ok(7));
        for bad in ["0", "1001", "x"] {
            assert!(parse_topics(None, Some(bad.to_owned())).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod revoke_tests {
    use super::*;
    use crate::access::{Revocation, Revoked};

    #[test]
    fn revocations_are_read_with_their_defaults() {
        let parse = |body: &str| parse_revoke(body.as_bytes(), 1_000, 86_400);
        assert_eq!(
            parse(r#"{"jti":"t1"}"#).unwrap(),
            [Revocation {
                what: Revoked::Token("t1".into()),
                until: 87_400
            }]
        );
        assert_eq!(
            parse(r#"{"subject":"u1","jti":"t2","until":2000}"#).unwrap(),
            [
                Revocation {
                    what: Revoked::Token("t2".into()),
                    until: 2_000
                },
                Revocation {
                    what: Revoked::Subject {
                        subject: "u1".into(),
                        before: 1_000
                    },
                    until: 2_000
                }
            ]
        );
        assert_eq!(
            parse(r#"{"subject":"u1","before":900}"#).unwrap()[0].what,
            Revoked::Subject {
                subject: "u1".into(),
                before: 900
            }
        );
        for bad in [
            "{}",
            r#"{"jti":""}"#,
            r#"{"jti":7}"#,
            r#"{"subject":"u1","before":-1}"#,
            r#"{"subject":"u1","before":"now"}"#,
            r#"{"jti":"t","until":1000}"#,
            r#"{"jti":"t","before":10}"#,
            r#"{"jti":"t","other":1}"#,
            "[]",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "bad_request"), "{bad}");
        }
    }
}
