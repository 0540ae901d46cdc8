//! Verifies a file of token cases with tether-auth and checks each outcome:
//! accepted (with the subject and rights asked for) or refused for the
//! reason named.
//!
//! ```text
//! cargo run -q -p tether-auth --example verify_cases -- cases.json
//! ```
//!
//! The file is a JSON list of cases (`conformance/auth/make_cases.py` writes
//! one from tokens made by another JWT library):
//!
//! ```json
//! [{"name": "hs256/valid", "token": "eyJ...", "key_file": "hs256.secret",
//!   "key_kind": "secret", "now": 1700000000, "expect": "ok",
//!   "audience": ["tether"], "issuer": ["https://issuer.example"],
//!   "subject": "alice", "may_subscribe": ["room.7"],
//!   "may_not_subscribe": ["room.8"], "may_publish": ["room.7"]}]
//! ```
//!
//! `key_file` is relative to the cases file; `key_kind` is `secret`, `pem`
//! or `jwks`; `expect` is `ok` or the reason of [`reason`]. One line per
//! case, then `auth-interop: N passed, M failed`; the exit status is 1 if
//! any case failed, 2 if the file cannot be read.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use tether_auth::{Error, Identity, Keys, Validation, verify};

/// The name of a refusal, as a cases file spells it.
fn reason(e: &Error) -> String {
    match e {
        Error::TokenTooLong => "token_too_long".into(),
        Error::Malformed => "malformed".into(),
        Error::UnsupportedAlgorithm => "unsupported_algorithm".into(),
        Error::AlgorithmMismatch => "algorithm_mismatch".into(),
        Error::UnknownKeyId => "unknown_key_id".into(),
        Error::AmbiguousKey => "ambiguous_key".into(),
        Error::CriticalHeader => "critical_header".into(),
        Error::BadSignature => "bad_signature".into(),
        Error::InvalidClaims => "invalid_claims".into(),
        Error::MissingExpiry => "missing_expiry".into(),
        Error::Expired => "expired".into(),
        Error::NotYetValid => "not_yet_valid".into(),
        Error::IssuedInFuture => "issued_in_future".into(),
        Error::Audience => "audience".into(),
        Error::Issuer => "issuer".into(),
        Error::Grant(_) => "grant".into(),
        // A key problem is never what a case expects: it says so in full.
        other => format!("error: {other}"),
    }
}

fn strings(case: &Value, field: &str) -> Result<Vec<String>, String> {
    match case.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or(format!("\"{field}\" holds a non-string"))
            })
            .collect(),
        Some(_) => Err(format!("\"{field}\" is not a list")),
    }
}

fn text<'c>(case: &'c Value, field: &str) -> Result<&'c str, String> {
    case.get(field)
        .and_then(Value::as_str)
        .ok_or(format!("no string \"{field}\""))
}

/// What is wrong with an accepted token, given what the case asks of it.
fn check_identity(case: &Value, who: &Identity) -> Result<(), String> {
    if let Some(subject) = case.get("subject") {
        let want = subject.as_str().ok_or("\"subject\" is not a string")?;
        if who.subject.as_deref() != Some(want) {
            return Err(format!("subject {:?}, expected {want:?}", who.subject));
        }
    }
    for topic in strings(case, "may_subscribe")? {
        if !who.rights.may_subscribe(&topic) {
            return Err(format!("may not subscribe to {topic}"));
        }
    }
    for topic in strings(case, "may_not_subscribe")? {
        if who.rights.may_subscribe(&topic) {
            return Err(format!("may subscribe to {topic}"));
        }
    }
    for topic in strings(case, "may_publish")? {
        if !who.rights.may_publish(&topic) {
            return Err(format!("may not publish to {topic}"));
        }
    }
    Ok(())
}

/// Runs one case: `Ok` with what happened if it went as expected.
fn run(case: &Value, dir: &Path) -> Result<String, String> {
    let token = text(case, "token")?;
    let contents = std::fs::read(dir.join(text(case, "key_file")?)).map_err(|e| format!("key file: {e}"))?;
    let keys = match text(case, "key_kind")? {
        "secret" => Keys::from_secret(&contents),
        "pem" => Keys::from_pem(&contents),
        "jwks" => Keys::from_jwks(&contents),
        kind => return Err(format!("unknown key_kind {kind:?}")),
    }
    .map_err(|e| format!("key refused: {e}"))?;
    let now = case
        .get("now")
        .and_then(Value::as_u64)
        .ok_or("no \"now\" in seconds")?;
    let validation = Validation::new()
        .audience(strings(case, "audience")?)
        .issuer(strings(case, "issuer")?);
    let expect = text(case, "expect")?;
    match (verify(token, &keys, &validation, now), expect) {
        (Ok(who), "ok") => check_identity(case, &who).map(|()| "ok".into()),
        (Ok(_), want) => Err(format!("accepted, expected {want}")),
        (Err(e), "ok") => Err(format!("refused ({}), expected ok", reason(&e))),
        (Err(e), want) if reason(&e) == want => Ok(format!("refused: {want}")),
        (Err(e), want) => Err(format!("refused ({}), expected {want}", reason(&e))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file] = args.as_slice() else {
        eprintln!("usage: verify_cases CASES.json");
        return ExitCode::from(2);
    };
    let path = Path::new(file);
    let cases: Vec<Value> = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("verify_cases: {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, case) in cases.iter().enumerate() {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("case {i}"), String::from);
        match run(case, dir) {
            Ok(what) => {
                passed += 1;
                println!("ok   {name}: {what}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    if cases.is_empty() {
        // A file of no cases proves nothing.
        failed += 1;
        println!("FAIL {file}: no cases");
    }
    println!("auth-interop: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
