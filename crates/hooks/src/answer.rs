//! The backend's answers, and [`parse_answer`]: status and body in, a
//! decision or the reason there is none out. No I/O.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::protocol::HookKind;

/// Bytes of a subject, at most (as for a token's `sub`).
pub const MAX_SUBJECT_LEN: usize = 64;

/// Bytes of a deny reason, at most: a WebSocket close reason is 123
/// bytes. A longer one is cut at a character boundary.
pub const MAX_REASON_LEN: usize = 123;

/// Patterns in one list of a `tether` grant, at most.
pub const MAX_PATTERNS: usize = 256;

/// What the backend decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow(Allow),
    /// Refuse, with the status and reason to give the client.
    Deny(Deny),
}

impl Decision {
    /// Whether it allows.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// An allow, with what the hook's kind adds to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allow {
    /// Connect: the connection's subject (always present on a connect
    /// allow). `None` for the other hooks.
    pub subject: Option<String>,
    /// Connect: the rights granted (`"tether"`), if the backend sent them.
    pub grant: Option<Grant>,
    /// Connect (optional) and refresh (always present): when the
    /// connection expires, in Unix seconds.
    pub exp: Option<u64>,
    /// Publish: the payload to publish in place of the one asked about.
    /// Rpc: the call's result, as JSON text (`null` when the answer has
    /// no `data`), any JSON value the backend sent.
    /// Latest: the topic's current value (`None`: it has none), a string
    /// as it is, any other JSON value as its JSON text.
    pub data: Option<String>,
    /// Latest: the type of the event the value is published as, if the
    /// backend named one.
    pub event: Option<String>,
}

/// The rights a connect allow grants, in the shape of a token's `tether`
/// claim: `{"sub": [patterns], "pub": [patterns]}`, either list optional.
/// The patterns are passed on unchecked: the hub checks them as it checks
/// a token's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// Patterns of the topics that may be subscribed to (`"sub"`).
    pub subscribe: Vec<String>,
    /// Patterns of the topics that may be published to (`"pub"`).
    pub publish: Vec<String>,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deny {
    /// The status to answer the client with: 400 to 499, 403 unless the
    /// backend said otherwise.
    pub status: u16,
    /// Why, for the client (at most [`MAX_REASON_LEN`] bytes; may be
    /// empty).
    pub reason: String,
}

/// Why there is no decision. Never an allow: the hub answers 503 with
/// `Retry-After` (or closes with 1011/1013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unavailable {
    /// The deadline passed: while queued, connecting, writing or waiting
    /// for the answer.
    Timeout,
    /// The backend could not be reached (connection refused, reset, or
    /// closed before answering).
    Down,
    /// The backend answered something that is not a valid answer: not
    /// HTTP, not JSON, the wrong shape, too large.
    Malformed,
    /// The backend answered with this status, not 200.
    Status(u16),
    /// Too many asks outstanding: the asking loop's bound or the queue's.
    Busy,
    /// The hooks are shutting down.
    ShuttingDown,
}

impl Unavailable {
    /// A short name for logs and metrics labels (`timeout`, `down`,
    /// `malformed`, `status`, `busy`, `shutting_down`).
    pub fn name(self) -> &'static str {
        match self {
            Unavailable::Timeout => "timeout",
            Unavailable::Down => "down",
            Unavailable::Malformed => "malformed",
            Unavailable::Status(_) => "status",
            Unavailable::Busy => "busy",
            Unavailable::ShuttingDown => "shutting_down",
        }
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Status(code) => write!(f, "backend answered status {code}"),
            other => f.write_str(other.name()),
        }
    }
}

impl std::error::Error for Unavailable {}

/// What a callback receives: a decision, or why there is none.
pub type Answer = Result<Decision, Unavailable>;

/// Reads the backend's answer to a `kind` hook: `status` and the whole
/// `body`.
///
/// Only a 200 with a JSON object whose `allow` is a boolean is a decision;
/// everything else is [`Unavailable`], never an allow:
///
/// - any status but 200 (including 401, 403 and 404, whatever the body):
///   [`Unavailable::Status`];
/// - a body that is not a JSON object, `allow` missing or not a boolean, a
///   member of the wrong type: [`Unavailable::Malformed`];
/// - an allow to connect without a valid `subject` (a string of 1 to
///   [`MAX_SUBJECT_LEN`] bytes without control characters), an allow to
///   refresh without `exp`: [`Unavailable::Malformed`];
/// - a deny whose `status` is not in 400..=499: [`Unavailable::Malformed`].
///
/// Members a hook does not use are ignored. A deny's `reason` longer than
/// [`MAX_REASON_LEN`] bytes is cut at a character boundary.
///
/// ```
/// use tether_hooks::{parse_answer, Decision, HookKind, Unavailable};
///
/// let answer = parse_answer(HookKind::Connect, 200, br#"{"allow":true,"subject":"u1","exp":1900000000}"#);
/// let Ok(Decision::Allow(allow)) = answer else { panic!("an allow") };
/// assert_eq!((allow.subject.as_deref(), allow.exp), (Some("u1"), Some(1_900_000_000)));
///
/// let answer = parse_answer(HookKind::Subscribe, 200, br#"{"allow":false,"status":404,"reason":"no such room"}"#);
/// let Ok(Decision::Deny(deny)) = answer else { panic!("a deny") };
/// assert_eq!((deny.status, deny.reason.as_str()), (404, "no such room"));
///
/// assert_eq!(parse_answer(HookKind::Publish, 403, br#"{"allow":true}"#), Err(Unavailable::Status(403)));
/// assert_eq!(parse_answer(HookKind::Publish, 200, b"yes"), Err(Unavailable::Malformed));
/// ```
pub fn parse_answer(kind: HookKind, status: u16, body: &[u8]) -> Answer {
    if status != 200 {
        return Err(Unavailable::Status(status));
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(Unavailable::Malformed);
    };
    match object.get("allow") {
        Some(Value::Bool(true)) => allow(kind, &object).map(Decision::Allow),
        Some(Value::Bool(false)) => deny(&object).map(Decision::Deny),
        _ => Err(Unavailable::Malformed),
    }
}

fn allow(kind: HookKind, object: &Map<String, Value>) -> Result<Allow, Unavailable> {
    let mut allow = Allow::default();
    match kind {
        HookKind::Connect => {
            let subject = string(object, "subject")?.ok_or(Unavailable::Malformed)?;
            if !valid_subject(&subject) {
                return Err(Unavailable::Malformed);
            }
            allow.subject = Some(subject);
            allow.grant = match object.get("tether") {
                None | Some(Value::Null) => None,
                Some(value) => Some(grant(value)?),
            };
            allow.exp = exp(object)?;
        }
        HookKind::Refresh => allow.exp = Some(exp(object)?.ok_or(Unavailable::Malformed)?),
        HookKind::Publish => allow.data = string(object, "data")?,
        // Whatever the backend returns is the caller's: only its being
        // JSON is checked (it was parsed as such).
        HookKind::Rpc => allow.data = Some(object.get("data").unwrap_or(&Value::Null).to_string()),
        HookKind::Latest => {
            allow.data = match object.get("data") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(other) => Some(other.to_string()),
            };
            allow.event = string(object, "event")?;
        }
        HookKind::Subscribe => {}
    }
    Ok(allow)
}

fn deny(object: &Map<String, Value>) -> Result<Deny, Unavailable> {
    let status = match object.get("status") {
        None | Some(Value::Null) => 403,
        Some(value) => value
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..=499).contains(s))
            .ok_or(Unavailable::Malformed)?,
    };
    let mut reason = string(object, "reason")?.unwrap_or_default();
    if reason.len() > MAX_REASON_LEN {
        let mut cut = MAX_REASON_LEN;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    Ok(Deny { status, reason })
}

/// A string member: `None` if absent or null, Malformed if another type.
fn string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, Unavailable> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Unavailable::Malformed),
    }
}

/// `exp`: a whole number of seconds, not negative.
fn exp(object: &Map<String, Value>) -> Result<Option<u64>, Unavailable> {
    match object.get("exp") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(Unavailable::Malformed),
    }
}

fn valid_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.len() <= MAX_SUBJECT_LEN && !subject.chars().any(char::is_control)
}

fn grant(value: &Value) -> Result<Grant, Unavailable> {
    #[derive(Deserialize)]
    struct Lists {
        #[serde(default)]
        sub: Vec<String>,
        #[serde(default, rename = "pub")]
        publish: Vec<String>,
    }
    if !value.is_object() {
        return Err(Unavailable::Malformed);
    }
    let lists = Lists::deserialize(value).map_err(|_| Unavailable::Malformed)?;
    if lists.sub.len() > MAX_PATTERNS || lists.publish.len() > MAX_PATTERNS {
        return Err(Unavailable::Malformed);
    }
    Ok(Grant {
        subscribe: lists.sub,
        publish: lists.publish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: HookKind, body: &str) -> Answer {
        parse_answer(kind, 200, body.as_bytes())
    }

    #[test]
    fn connect_allow_with_every_member() {
        let answer = parse(
            HookKind::Connect,
            r#"{"allow":true,"subject":"u1","tether":{"sub":["chat.*"],"pub":["chat.7"]},"exp":1900000000,"extra":1}"#,
        );
        let Ok(Decision::Allow(allow)) = answer else {
            panic!("{answer:?}")
        };
        assert_eq!(allow.subject.as_deref(), Some("u1"));
        assert_eq!(allow.exp, Some(1_900_000_000));
        let grant = allow.grant.unwrap();
        assert_eq!(grant.subscribe, ["chat.*"]);
        assert_eq!(grant.publish, ["chat.7"]);
    }

    #[test]
    fn connect_allow_needs_a_valid_subject() {
        for body in [
            r#"{"allow":true}"#,
            r#"{"allow":true,"subject":7}"#,
            r#"{"allow":true,"subject":""}"#,
            r#"{"allow":true,"subject":"a\nb"}"#,
            r#"{"allow":true,"subject":"u1","tether":["x"]}"#,
            r#"{"allow":true,"subject":"u1","tether":{"sub":"x"}}"#,
            r#"{"allow":true,"subject":"u1","exp":-1}"#,
            r#"{"allow":true,"subject":"u1","exp":1.5}"#,
        ] {
            assert_eq!(
                parse(HookKind::Connect, body),
                Err(Unavailable::Malformed),
                "{body}"
            );
        }
        let long = format!(r#"{{"allow":true,"subject":"{}"}}"#, "a".repeat(65));
        assert_eq!(parse(HookKind::Connect, &long), Err(Unavailable::Malformed));
        let longest = format!(r#"{{"allow":true,"subject":"{}"}}"#, "a".repeat(64));
        assert!(parse(HookKind::Connect, &longest).unwrap().is_allow());
    }

    #[test]
    fn refresh_allow_needs_exp_and_publish_may_rewrite() {
        assert_eq!(
            parse(HookKind::Refresh, r#"{"allow":true}"#),
            Err(Unavailable::Malformed)
        );
        let Ok(Decision::Allow(allow)) = parse(HookKind::Refresh, r#"{"allow":true,"exp":5}"#) else {
            panic!("an allow")
        };
        assert_eq!(allow.exp, Some(5));
        let Ok(Decision::Allow(allow)) = parse(HookKind::Publish, r#"{"allow":true,"data":"new"}"#) else {
            panic!("an allow")
        };
        assert_eq!(allow.data.as_deref(), Some("new"));
        assert_eq!(
            parse(HookKind::Publish, r#"{"allow":true,"data":{"x":1}}"#),
            Err(Unavailable::Malformed)
        );
        assert_eq!(
            parse(HookKind::Subscribe, r#"{"allow":true}"#),
            Ok(Decision::Allow(Allow::default()))
        );
    }

    #[test]
    fn a_latest_allow_carries_a_value_as_text_and_its_event_type() {
        let value = |body: &str| match parse(HookKind::Latest, body) {
            Ok(Decision::Allow(allow)) => (allow.data, allow.event),
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            value(r#"{"allow":true,"data":"2-1"}"#),
            (Some("2-1".into()), None)
        );
        assert_eq!(
            value(r#"{"allow":true,"data":{"home":2},"event":"score"}"#),
            (Some(r#"{"home":2}"#.into()), Some("score".into()))
        );
        assert_eq!(value(r#"{"allow":true}"#), (None, None));
        assert_eq!(value(r#"{"allow":true,"data":null}"#), (None, None));
        assert_eq!(
            parse(HookKind::Latest, r#"{"allow":true,"data":"x","event":7}"#),
            Err(Unavailable::Malformed)
        );
    }

    #[test]
    fn rpc_allow_carries_any_json_as_text() {
        for (body, data) in [
            (
                r#"{"allow":true,"data":{"items":[1,"a",null]}}"#,
                r#"{"items":[1,"a",null]}"#,
            ),
            (r#"{"allow":true,"data":"ok"}"#, r#""ok""#),
            (r#"{"allow":true}"#, "null"),
        ] {
            let Ok(Decision::Allow(allow)) = parse(HookKind::Rpc, body) else {
                panic!("{body}: an allow")
            };
            assert_eq!(allow.data.as_deref(), Some(data), "{body}");
        }
        let Ok(Decision::Deny(deny)) = parse(
            HookKind::Rpc,
            r#"{"allow":false,"status":404,"reason":"no such method"}"#,
        ) else {
            panic!("a deny")
        };
        assert_eq!((deny.status, deny.reason.as_str()), (404, "no such method"));
        assert_eq!(parse(HookKind::Rpc, r#"{"data":1}"#), Err(Unavailable::Malformed));
    }

    #[test]
    fn deny_status_and_reason() {
        let deny = |body: &str| match parse(HookKind::Subscribe, body) {
            Ok(Decision::Deny(deny)) => Ok(deny),
            other => Err(format!("{other:?}")),
        };
        let d = deny(r#"{"allow":false}"#).unwrap();
        assert_eq!((d.status, d.reason.as_str()), (403, ""));
        let d = deny(r#"{"allow":false,"status":429,"reason":"slow down"}"#).unwrap();
        assert_eq!((d.status, d.reason.as_str()), (429, "slow down"));
        for body in [
            r#"{"allow":false,"status":500}"#,
            r#"{"allow":false,"status":399}"#,
            r#"{"allow":false,"status":"403"}"#,
            r#"{"allow":false,"reason":1}"#,
        ] {
            assert_eq!(
                parse(HookKind::Subscribe, body),
                Err(Unavailable::Malformed),
                "{body}"
            );
        }
        // 122 ASCII bytes then a 2-byte character: cut before it.
        let reason = format!("{}é", "a".repeat(122));
        let d = deny(&format!(r#"{{"allow":false,"reason":"{reason}"}}"#)).unwrap();
        assert_eq!(d.reason, "a".repeat(122));
    }

    #[test]
    fn anything_else_is_unavailable() {
        for status in [201, 204, 301, 401, 403, 404, 500, 503] {
            assert_eq!(
                parse_answer(HookKind::Subscribe, status, br#"{"allow":true}"#),
                Err(Unavailable::Status(status))
            );
        }
        for body in [
            "",
            "null",
            "true",
            "[]",
            "{}",
            r#"{"allow":1}"#,
            r#"{"allow":"true"}"#,
            "{\"allow\":true",
        ] {
            assert_eq!(
                parse(HookKind::Subscribe, body),
                Err(Unavailable::Malformed),
                "{body}"
            );
        }
    }
}
