//! `POST /rpc`: a call beside an event stream, with the credentials a
//! publish takes. Its body is `{"method":"M","data":…}` (`data` any JSON,
//! left out for `null`); it is answered `200 {"data":…}` or, with the
//! error's code as its status, `{"code":C,"reason":"…"}`.

use std::time::Duration;

use tether_server::Response;

use super::Call;
use super::answer::Outcome;
use crate::json_text::{Cursor, flat_object};
use crate::multiplex::message::{MAX_DATA_DEPTH, MAX_METHOD_LEN, is_method};
use crate::replies::{SOON, refusal};

/// Reads the body of `POST /rpc`: the call, or why it is none (400).
pub(crate) fn read_call(body: &[u8]) -> Result<Call, Outcome> {
    let bad = |reason: String| Outcome::error(400, reason);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".to_owned()))?;
    let members = flat_object(
        text,
        "the body is a JSON object, such as {\"method\":\"M\",\"data\":{}}",
        |p, _| p.raw_value(MAX_DATA_DEPTH).map(str::to_owned),
    )
    .map_err(bad)?;
    let (mut method, mut data) = (None, None);
    for (name, value) in members {
        let slot = match name.as_str() {
            "method" => &mut method,
            "data" => &mut data,
            other => {
                let other = tether_hub::json_string(other);
                return Err(bad(format!("unknown member {other} (method, data)")));
            }
        };
        if slot.replace(value).is_some() {
            return Err(bad(format!(
                "the body has {} twice",
                tether_hub::json_string(&name)
            )));
        }
    }
    let method = method
        .and_then(|raw| Cursor::new(&raw).string().ok())
        .filter(|method| is_method(method))
        .ok_or_else(|| {
            bad(format!(
                "\"method\" must be a string of 1 to {MAX_METHOD_LEN} letters, digits or ._-:/"
            ))
        })?;
    Ok(Call { id: 0, method, data })
}

/// The answer to `POST /rpc` for its call's `outcome`: a busy backend or
/// a caller over its rate is told when to come back.
pub(crate) fn response(outcome: &Outcome, retry_after: Option<Duration>) -> Response {
    match outcome {
        Outcome::Result(data) => Response::json(200, format!("{{\"data\":{data}}}")),
        Outcome::Error { code, reason } => {
            let body = format!(
                "{{\"code\":{code},\"reason\":{}}}",
                tether_hub::json_string(reason)
            );
            let retry = retry_after.or((*code == 503).then_some(SOON));
            refusal(Response::json(*code, body), retry)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_a_method_and_any_data() {
        assert_eq!(
            read_call(br#"{"method":"cart.add","data":{"sku":[7]}}"#),
            Ok(Call {
                id: 0,
                method: "cart.add".into(),
                data: Some(r#"{"sku":[7]}"#.into())
            })
        );
        assert_eq!(
            read_call(br#" {"method":"ping"} "#),
            Ok(Call {
                id: 0,
                method: "ping".into(),
                data: None
            })
        );
        for bad in [
            &b""[..],
            b"[]",
            b"\xff",
            br#"{"data":1}"#,
            br#"{"method":7}"#,
            br#"{"method":"a b"}"#,
            br#"{"method":"m","method":"m"}"#,
            br#"{"method":"m","topic":"t"}"#,
            br#"{"method":"m","data":[1,}"#,
            br#"{"method":"m"} x"#,
        ] {
            let Err(Outcome::Error { code, .. }) = read_call(bad) else {
                panic!("{:?} taken", String::from_utf8_lossy(bad))
            };
            assert_eq!(code, 400);
        }
    }

    #[test]
    fn answers_carry_the_result_or_the_error_as_json() {
        let ok = response(&Outcome::Result("[1]".into()), None);
        assert_eq!((ok.status, ok.body.as_slice()), (200, &br#"{"data":[1]}"#[..]));
        let busy = response(&Outcome::error(503, "busy"), None);
        assert_eq!(busy.status, 503);
        assert_eq!(busy.body, br#"{"code":503,"reason":"busy"}"#);
        assert!(busy.headers.iter().any(|(n, v)| n == "Retry-After" && v == "1"));
        let fast = response(
            &Outcome::error(429, "slow down"),
            Some(Duration::from_millis(2500)),
        );
        assert!(fast.headers.iter().any(|(n, v)| n == "Retry-After" && v == "3"));
    }
}
