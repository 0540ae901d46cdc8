//! The hub's readers of network input, driven by the fuzz targets with
//! the invariants each must keep checked here, beside the code they are
//! about (the fuzz crate sees only the public API).

/// Reads `text` as a multiplexed socket's client message (`GET /ws`)
/// and checks what a reader must keep: never a panic, an error that
/// says what was wrong in an answer that is the JSON it claims, and a
/// message that reads, written again as a client writes it, reads as
/// the same message. Panics when one does not hold.
pub fn mux_message(text: &str) {
    use crate::multiplex::message::parse;
    match parse(text) {
        Ok(message) => {
            let again = message.to_json();
            assert_eq!(parse(&again), Ok(message), "{text:?} written as {again:?}");
        }
        Err(malformed) if malformed.call.is_some() => {
            // A call the hub cannot read is answered by its id: the
            // answer is JSON naming that id and the error.
            let id = malformed.call.unwrap_or_default();
            let answer = crate::rpc::answer::Outcome::error(400, malformed.error.clone()).message(id);
            let read: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            let expected = serde_json::json!({
                "control": "rpc-error", "id": id, "code": 400, "reason": malformed.error,
            });
            assert_eq!(read, expected, "{text:?} answered {answer:?}");
        }
        Err(malformed) => {
            assert!(!malformed.error.is_empty(), "{text:?}: an empty error");
            // The answer the socket gets reads back as the JSON it
            // says it is, naming that topic and that error.
            let topic = malformed.topic.as_deref();
            let answer = crate::multiplex::answer::error(topic, &malformed.error);
            let read = crate::json_text::flat_object(&answer, "", |p, _| p.string());
            let mut expected = vec![("control".to_owned(), "error".to_owned())];
            expected.extend(topic.map(|t| ("topic".to_owned(), t.to_owned())));
            expected.push(("error".to_owned(), malformed.error.clone()));
            assert_eq!(read, Ok(expected), "{text:?} answered {answer:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_and_unread_keep_the_invariants() {
        for text in [
            r#"{"type":"rpc","id":7,"method":"cart.add","data":{"sku":[1,"two",null],"n":-2.5e3}}"#,
            r#"{"type":"rpc","id":0,"method":"m","data":"\u00e9\ud83d\ude00"}"#,
            r#"{"type":"rpc","id":1,"method":"a b"}"#,
            r#"{"type":"rpc","id":2,"method":"m","data":[1,}"#,
            r#"{"type":"rpc","id":3,"method":"m","extra":true}"#,
            r#"{"type":"rpc","id":-3,"method":"m"}"#,
            r#"{"type":"rpc","id":3,"id":4,"method":"m"}"#,
        ] {
            mux_message(text);
        }
    }
}
