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
