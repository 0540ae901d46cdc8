//! What a caller is answered: `{"control":"rpc-result","id":N,"data":…}`
//! or `{"control":"rpc-error","id":N,"code":C,"reason":"…"}`, and what a
//! backend's decision about a call makes of it. The code is the status
//! `POST /rpc` answers with.

use tether_hub::{Decision, json_string};

use crate::json_text::Cursor;

/// How deep a result may nest (as deep as the hooks' JSON reader takes).
const MAX_RESULT_DEPTH: usize = 128;

/// A call's outcome: its result as JSON text, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Result(String),
    Error { code: u16, reason: String },
}

impl Outcome {
    pub(crate) fn error(code: u16, reason: impl Into<String>) -> Outcome {
        Outcome::Error {
            code,
            reason: reason.into(),
        }
    }

    /// The message a multiplexed socket's caller of call `id` gets.
    pub(crate) fn message(&self, id: u64) -> String {
        match self {
            Outcome::Result(data) => format!("{{\"control\":\"rpc-result\",\"id\":{id},\"data\":{data}}}"),
            Outcome::Error { code, reason } => format!(
                "{{\"control\":\"rpc-error\",\"id\":{id},\"code\":{code},\"reason\":{}}}",
                json_string(reason)
            ),
        }
    }
}

/// What the backend's `decision` about a call makes of it: an allow's
/// data (JSON text; `null` if it gave none) is the result, if it is one
/// JSON value; a refusal is an error with its status (a 4xx, 403 if the
/// backend said another); no decision, an error 504 for a timeout and
/// 503 otherwise (never a result).
pub(crate) fn of_decision(decision: Decision) -> Outcome {
    match decision {
        Decision::Allow(allowed) => {
            let data = allowed.data.unwrap_or_else(|| "null".to_owned());
            if is_one_value(&data) {
                Outcome::Result(data.trim().to_owned())
            } else {
                log::warn!("hub: the backend's rpc answer is not one JSON value");
                Outcome::error(
                    503,
                    "the application's backend answered something that is not JSON",
                )
            }
        }
        Decision::Deny { status, reason } => {
            let code = if (400..500).contains(&status) { status } else { 403 };
            let reason = if reason.is_empty() {
                "refused".to_owned()
            } else {
                reason
            };
            Outcome::error(code, reason)
        }
        Decision::Unavailable { reason } => {
            let code = if reason == "timeout" { 504 } else { 503 };
            Outcome::error(
                code,
                format!("the application's backend did not answer ({reason})"),
            )
        }
        other => {
            log::debug!("hub: an rpc call decided as {other:?}");
            Outcome::error(503, "the application's backend did not answer")
        }
    }
}

/// Whether `text` is exactly one JSON value (spaces around it aside).
fn is_one_value(text: &str) -> bool {
    let mut cursor = Cursor::new(text);
    cursor.skip_space();
    if cursor.raw_value(MAX_RESULT_DEPTH).is_err() {
        return false;
    }
    cursor.skip_space();
    cursor.at_end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_hub::Allowed;

    #[test]
    fn answers_are_json_naming_the_call() {
        assert_eq!(
            Outcome::Result("{\"a\":[1]}".to_owned()).message(7),
            r#"{"control":"rpc-result","id":7,"data":{"a":[1]}}"#
        );
        assert_eq!(
            Outcome::error(404, "no \"such\" method").message(0),
            r#"{"control":"rpc-error","id":0,"code":404,"reason":"no \"such\" method"}"#
        );
    }

    #[test]
    fn a_decision_is_a_result_only_when_allowed_with_json() {
        let allowed = |data: Option<&str>| Decision::Allow(Allowed::new().data(data.map(str::to_owned)));
        assert_eq!(of_decision(allowed(None)), Outcome::Result("null".to_owned()));
        assert_eq!(
            of_decision(allowed(Some(" [1, \"x\"] "))),
            Outcome::Result("[1, \"x\"]".to_owned())
        );
        for bad in ["", "{", "1 2", "[1]]", "nope"] {
            assert!(
                matches!(of_decision(allowed(Some(bad))), Outcome::Error { code: 503, .. }),
                "{bad:?}"
            );
        }
        assert_eq!(
            of_decision(Decision::Deny {
                status: 404,
                reason: "no such method".into()
            }),
            Outcome::error(404, "no such method")
        );
        assert_eq!(
            of_decision(Decision::Deny {
                status: 500,
                reason: String::new()
            }),
            Outcome::error(403, "refused")
        );
        assert!(matches!(
            of_decision(Decision::Unavailable { reason: "timeout" }),
            Outcome::Error { code: 504, .. }
        ));
        assert!(matches!(
            of_decision(Decision::Unavailable { reason: "malformed" }),
            Outcome::Error { code: 503, .. }
        ));
    }
}
